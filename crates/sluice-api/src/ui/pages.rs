//! The pages, rendered with `maud`: every `(expr)` is HTML-escaped, and
//! nothing here uses `PreEscaped` on data. Statements, parameters, reasons
//! and names are attacker-controlled text.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use sluice_core::approval::{Approval, ApprovalKind, ApprovalStatus, Decision, Vote};

use super::Ui;
use super::session::Session;

/// A whole page.
pub(super) fn layout(title: &str, who: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sluice" }
                link rel="stylesheet" href="/ui/app.css";
                script src="/ui/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui" { "Sluice approvals" }
                    @if let Some(s) = who {
                        nav {
                            a href="/ui/overview" { "Overview" }
                            a href="/ui" { "Approvals" }
                            a href="/ui/history" { "History" }
                            a href="/ui/live" { "Live" }
                            a href="/ui/sessions" { "Sessions" }
                            a href="/ui/fleet" { "Fleet" }
                        }
                        span.who { "Signed in as " b { (s.identity.name) } }
                        form.inline method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page with no session-dependent parts.
pub(crate) fn plain(status: StatusCode, title: &str, body: Markup) -> Response {
    (status, Html(layout(title, None, body).into_string())).into_response()
}

/// A titled message (errors, "signed out").
pub(crate) fn message(_ui: &Ui, status: StatusCode, title: &str, text: &str) -> Response {
    plain(
        status,
        title,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/ui" { "Back to the approvals" } }
        },
    )
}

/// A titled message for a signed-in approver.
pub(crate) fn message_for(s: &Session, status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p.error { (text) }
        p { a href="/ui" { "Back to the approvals" } }
    };
    (status, Html(layout(title, Some(s), body).into_string())).into_response()
}

/// Signed in, but not in an approver group.
pub(crate) fn not_approver(ui: &Ui, s: &Session) -> Response {
    let groups = &ui.app.config.approvals.approver_groups;
    let body = html! {
        h1 { "You are not an approver" }
        p {
            "You are signed in as " b { (s.identity.name) } " (" code { (s.identity.subject) } ")"
            @if s.identity.groups.is_empty() { ", in no groups." }
            @else { ", in groups " (s.identity.groups.join(", ")) "." }
        }
        p {
            "Approvals are decided by members of "
            @if groups.is_empty() { "no group (none is configured)" }
            @else { b { (groups.join(", ")) } }
            ". Ask your identity provider's administrator if you should be one."
        }
    };
    (
        StatusCode::FORBIDDEN,
        Html(layout("Not an approver", Some(s), body).into_string()),
    )
        .into_response()
}

/// The list page: the pending approvals, kept live by `app.js`.
pub(crate) fn list(s: &Session, approvals: &[(Approval, Vec<Vote>)]) -> Markup {
    let body = html! {
        h1 { "Pending approvals " span #live.live { "" } }
        table.approvals {
            thead { tr {
                th { "Approval" } th { "Kind" } th { "Connection" } th { "Requester" }
                th { "What" } th { "Votes" } th { "Expires" }
            } }
            tbody #pending { (rows(approvals)) }
        }
    };
    layout("Pending approvals", Some(s), body)
}

/// The rows of the pending list (also served alone as `/ui/pending`).
pub(crate) fn rows(approvals: &[(Approval, Vec<Vote>)]) -> Markup {
    html! {
        @if approvals.is_empty() {
            tr.empty { td colspan="7" { "Nothing waits for a decision." } }
        }
        @for (a, votes) in approvals {
            tr data-id=(a.id) {
                td { a href={ "/ui/approvals/" (a.id) } { code { (a.id) } } }
                td { (a.kind.as_str()) }
                td { (a.connection) }
                td { (a.requester_name) }
                td.what { (summary(a)) }
                td { (approvals_of(votes)) " of " (a.min_approvals.max(1)) }
                td { (until(a.expires_at)) }
            }
        }
    }
}

pub(super) fn summary(a: &Approval) -> String {
    match (a.kind, &a.statement) {
        (ApprovalKind::Statement, Some(s)) => truncate(s, 120),
        _ => format!("grant: {}", truncate(&a.reason, 100)),
    }
}

fn truncate(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        one_line.chars().take(n).chain(['…']).collect()
    }
}

fn approvals_of(votes: &[Vote]) -> usize {
    votes
        .iter()
        .filter(|v| v.decision == Decision::Approve)
        .count()
}

fn until(t: DateTime<Utc>) -> String {
    let secs = (t - sluice_core::clock::now()).num_seconds();
    if secs <= 0 {
        return "now".into();
    }
    let d = std::time::Duration::from_secs(secs as u64);
    format!("in {}", humantime::format_duration(d))
}

pub(super) fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What the viewer may do on the detail page.
pub(crate) struct Viewer<'a> {
    pub session: &'a Session,
    /// Why the viewer cannot vote, if they cannot.
    pub cannot_vote: Option<String>,
    /// A flash line after a vote.
    pub flash: Option<&'a str>,
}

/// One approval in full.
pub(crate) fn detail(v: &Viewer, a: &Approval, votes: &[Vote]) -> Markup {
    let body = html! {
        p { a href="/ui" { "← Pending approvals" } }
        p #changed.notice hidden { "This approval changed. " a href={ "/ui/approvals/" (a.id) } { "Reload" } }
        @if let Some(f) = v.flash { p.notice { (f) } }
        h1 data-approval-id=(a.id) {
            (match a.kind { ApprovalKind::Grant => "Grant approval ", ApprovalKind::Statement => "Statement approval " })
            code { (a.id) } " "
            span class={ "status " (a.status.as_str()) } { (a.status.as_str()) }
        }
        dl.facts {
            dt { "Requester" } dd { b { (a.requester_name) } " · " code { (a.requester_subject) } " · " (a.requester_issuer) }
            dt { "Connection" } dd { (a.connection) }
            dt { "Grant" } dd { code { (a.grant_id) } }
            dt { "Grant reason" } dd { (a.reason) }
            @if let (ApprovalKind::Grant, Some(g)) = (a.kind, &a.analysis) { (grant_facts(g)) }
            @if let Some(r) = &a.rule { dt { "Rule" } dd { (r) } }
            @if let Some(s) = &a.session_id {
                dt { "Session" } dd { a href={ "/ui/sessions/" (super::segment(s)) } { code { (s) } } }
            }
            dt { "Opened" } dd { (at(a.created_at)) }
            dt { "Expires" } dd { (at(a.expires_at)) " (" (until(a.expires_at)) ")" }
            dt { "Approvals" } dd { (approvals_of(votes)) " of " (a.min_approvals.max(1)) " needed" }
            @if let Some(by) = &a.decided_by { dt { "Decided by" } dd { (by) } }
            @if let Some(r) = &a.decision_reason { dt { "Decision reason" } dd { (r) } }
        }
        @if let Some(stmt) = &a.statement {
            h2 { "Statement" }
            pre.statement { code { (stmt) } }
        }
        @if let Some(params) = &a.parameters {
            h2 { "Bound parameters" }
            @if params.is_empty() { p { "None." } }
            ol.params {
                @for p in params {
                    li { @match p { Some(t) => code { (t) }, None => i { "NULL" } } }
                }
            }
        }
        @if let (ApprovalKind::Statement, Some(analysis)) = (a.kind, &a.analysis) {
            h2 { "Analysis" }
            (analysis_view(analysis))
        }
        @if let Some(fp) = &a.fingerprint { p.fingerprint { "Shape (fingerprint) " code { (fp) } } }
        h2 { "Votes" }
        @if votes.is_empty() { p { "No votes yet." } }
        @else {
            table.votes {
                thead { tr { th { "Approver" } th { "Decision" } th { "Scope" } th { "Reason" } th { "At" } } }
                tbody { @for vote in votes { tr {
                    td { (vote.approver_name) } td { (vote.decision.as_str()) } td { (vote.scope.as_str()) }
                    td { (vote.reason) } td { (at(vote.created_at)) }
                } } }
            }
        }
        @if a.status == ApprovalStatus::Pending {
            h2 { "Your decision" }
            @match &v.cannot_vote {
                Some(why) => p.notice { (why) },
                None => form.decide method="post" action={ "/ui/approvals/" (a.id) } {
                    input type="hidden" name="csrf" value=(v.session.csrf);
                    label for="reason" { "Reason (required to deny; shown to the requester)" }
                    textarea #reason name="reason" maxlength="1000" rows="3" {}
                    div.buttons {
                        button #approve.approve type="submit" name="decision" value="approve" { "Approve once" }
                        @if a.kind == ApprovalKind::Statement {
                            button #approve-shape.approve type="submit" name="decision" value="shape"
                                title="Every statement of this shape, for the rest of the grant" { "Approve this shape" }
                        }
                        button #deny.deny type="submit" name="decision" value="deny" { "Deny" }
                    }
                },
            }
        }
    };
    layout(&format!("Approval {}", a.id), Some(v.session), body)
}

/// What a grant approval asks for: the profile, the life asked for, and
/// the life it gets under the rule's cap.
fn grant_facts(g: &Value) -> Markup {
    let secs = |k: &str| {
        g[k].as_u64()
            .map(|s| humantime::format_duration(std::time::Duration::from_secs(s)).to_string())
    };
    let asked = secs("ttl_requested_secs");
    let gets = secs("ttl_secs");
    let cap = secs("max_ttl_secs");
    html! {
        @if let Some(p) = g["profile"].as_str() { dt { "Profile" } dd #grant-profile { b { (p) } } }
        dt { "Life asked for" }
        dd #grant-ttl-asked { @match &asked { Some(t) => (t), None => "the default" } }
        @if let Some(t) = &gets {
            dt { "Life if approved" }
            dd #grant-ttl {
                (t)
                @if let (Some(a), Some(c)) = (&asked, &cap) { @if a != t { " (cut to the rule's cap of " (c) ")" } }
            }
        }
        @if let Some(c) = &cap { dt { "Rule's cap" } dd #grant-ttl-cap { (c) } }
    }
}

/// The analysis (`reason`, and per statement its classes, commands,
/// tables, functions…) as nested definition lists; deeper or unusual values
/// as JSON text. Everything is escaped.
fn analysis_view(analysis: &Value) -> Markup {
    value_view(analysis, 0)
}

fn value_view(v: &Value, depth: usize) -> Markup {
    html! {
        @match v {
            Value::String(s) => (s),
            Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
                (items.iter().map(scalar).collect::<Vec<_>>().join(", "))
            },
            Value::Array(items) if depth < 3 => {
                ol.analysis { @for i in items { li { (value_view(i, depth + 1)) } } }
            },
            Value::Object(obj) if depth < 3 => {
                dl.facts.analysis {
                    @for (k, v) in obj {
                        // The statement text is shown above, in full.
                        @if k != "text" {
                            dt { (k) }
                            dd { (value_view(v, depth + 1)) }
                        }
                    }
                }
            },
            other => code { (other.to_string()) },
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_by_characters_on_one_line() {
        assert_eq!(truncate("select\n  1", 20), "select 1");
        assert_eq!(truncate("ééééé", 3), "ééé…");
    }

    #[test]
    fn analysis_values_are_escaped() {
        let m = analysis_view(&serde_json::json!({
            "class": "<b>write</b>",
            "tables": ["<t>"],
            "n": {"x": "<y>"}
        }))
        .into_string();
        assert!(
            !m.contains("<b>") && !m.contains("<t>") && !m.contains("<y>"),
            "{m}"
        );
        assert!(m.contains("&lt;b&gt;write&lt;/b&gt;"));
    }
}
