//! Recorded sessions as pages, rendered with `maud` like every other page:
//! every `(expr)` is HTML-escaped and nothing uses `PreEscaped`. Statement
//! texts, result values and column names are whatever the session's client
//! sent or the database returned: attacker-controlled text.
//!
//! The timeline's words come from `sluice_audit::replay`, the same as the
//! CLI's `sessions replay`, so both say the same thing.

use maud::{Markup, html};
use serde_json::Value;
use sluice_audit::replay::{self, Entry, Request, Results, Timeline, What};

use super::pages::layout;
use super::segment;
use super::session::Session;
use crate::sessions::ListQuery;

/// The list page: a filter form and the sessions found.
pub(crate) fn list(s: &Session, q: &ListQuery, rows: &[Value], error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Recorded sessions" }
        form.filters method="get" action="/ui/sessions" {
            (field("identity", "Identity", "subject or name", q.identity.as_deref()))
            (field("connection", "Connection", "name", q.connection.as_deref()))
            (field("since", "Since", "2h, or 2024-05-01T12:00:00Z", q.since.as_deref()))
            (field("until", "Until", "30m, or an RFC 3339 time", q.until.as_deref()))
            button type="submit" { "Filter" }
            " " a href="/ui/sessions" { "Clear" }
        }
        @if let Some(e) = error { p.error { (e) } }
        table.sessions {
            thead { tr {
                th { "Session" } th { "Identity" } th { "Connection" } th { "From" }
                th { "Opened" } th { "State" } th { "Statements" }
            } }
            tbody {
                @if rows.is_empty() {
                    tr.empty { td colspan="7" { "No recorded session matches." } }
                }
                @for r in rows { (row(r)) }
            }
        }
    };
    layout("Recorded sessions", Some(s), body)
}

fn field(name: &str, label: &str, hint: &str, value: Option<&str>) -> Markup {
    html! {
        label {
            (label) " "
            input type="text" name=(name) placeholder=(hint) value=(value.unwrap_or_default());
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn row(r: &Value) -> Markup {
    let id = text(&r["id"]);
    let who = r["identity"]["name"]
        .as_str()
        .or(r["identity"]["subject"].as_str())
        .unwrap_or("?");
    let counts = match (
        r["statements_allowed"].as_u64(),
        r["statements_denied"].as_u64(),
    ) {
        (Some(a), Some(d)) => format!("{a} allowed, {d} denied"),
        _ => String::new(),
    };
    html! {
        tr data-session-id=(id) {
            td { a href={ "/ui/sessions/" (segment(id)) } { code { (id) } } }
            td { (who) @if let Some(sub) = r["identity"]["subject"].as_str() {
                @if sub != who { " " small { "(" (sub) ")" } }
            } }
            td { (text(&r["connection"])) @if let Some(p) = r["profile"].as_str() { " (" (p) ")" } }
            td { (text(&r["client_addr"])) }
            td { (text(&r["opened_at"])) }
            td { span class={ "status " (text(&r["state"])) } { (text(&r["state"])) }
                @if let Some(end) = r["end"].as_str() { " " small { (end) } } }
            td { (counts) }
        }
    }
}

/// One session: who, where, and its timeline.
pub(crate) fn session(s: &Session, summary: &Value, t: &Timeline) -> Markup {
    let state = text(&summary["state"]);
    let body = html! {
        p { a href="/ui/sessions" { "← Recorded sessions" } }
        h1 data-session-id=(t.session_id) {
            "Session " code { (t.session_id) } " "
            span class={ "status " (state) } { (state) }
        }
        (facts(t))
        @if t.entries.iter().any(|e| matches!(e.what, What::Terminal { .. })) {
            p { a.cast href={ "/ui/sessions/" (segment(&t.session_id)) "/cast" } {
                "Download the terminal recording (asciicast v2, for asciinema play)"
            } }
        }
        h2 { "Timeline" }
        // Played back by app.js: entries appear at their offsets, at the
        // chosen speed. Without script the whole timeline simply shows.
        div.player #player hidden {
            button #play type="button" { "Play" }
            button #pause type="button" disabled { "Pause" }
            button #restart type="button" { "Restart" }
            label { "Speed " select #speed {
                option value="1" { "1×" } option value="4" selected { "4×" }
                option value="16" { "16×" } option value="64" { "64×" }
            } }
            label { input #skip-idle type="checkbox" checked; " skip idle gaps" }
            span.clock #clock { "+0.000s" }
        }
        ol.timeline #timeline {
            @for e in &t.entries { (entry(t, e)) }
        }
        @if t.closed.is_none() {
            p.notice {
                "The record holds no close for this session: it is still open, \
                 or the gateway stopped before it could record the close."
            }
        }
    };
    layout(&format!("Session {}", t.session_id), Some(s), body)
}

fn facts(t: &Timeline) -> Markup {
    html! {
        dl.facts {
            dt { "Identity" }
            dd { @match &t.identity {
                Some(w) => { b { (w.name) } " · " code { (w.subject) } " · " (w.kind) " · " (w.issuer) },
                None => "unknown",
            } }
            dt { "Grant" } dd { code { (or_q(&t.grant_id)) } }
            dt { "Connection" }
            dd { (or_q(&t.connection)) @if let Some(p) = &t.profile { " (" (p) ")" } }
            @if let Some(a) = &t.client_addr { dt { "Client" } dd { (a) } }
            dt { "Started" } dd { (or_q(&t.started_at)) }
            @if let Some(c) = &t.closed {
                dt { "Closed" }
                dd {
                    (replay::stamp(c.offset_ms)) " (" (c.end.as_deref().unwrap_or("?")) ")"
                    @if let (Some(a), Some(d)) = (c.statements_allowed, c.statements_denied) {
                        ": " (a) " allowed, " (d) " denied"
                    }
                }
            }
        }
    }
}

fn or_q(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

fn entry(t: &Timeline, e: &Entry) -> Markup {
    let kind = match &e.what {
        What::Opened => "opened",
        What::Held { .. } => "held",
        What::Decided(_) => "decided",
        What::Request(r) => match r.decision.as_str() {
            "allow" => "request allow",
            "deny" => "request deny",
            _ => "request",
        },
        What::Rejected { .. } => "rejected",
        What::Terminal { .. } => "terminal",
        What::Closed => "closed",
    };
    html! {
        li class={ "entry " (kind) } data-offset-ms=(e.offset_ms) {
            span.offset { (replay::stamp(e.offset_ms)) }
            div.what { @match &e.what {
                What::Opened => {
                    "session opened on " (or_q(&t.connection))
                    @if let Some(p) = &t.profile { " (" (p) ")" }
                    @if let Some(a) = &t.client_addr { " from " (a) }
                },
                What::Held { approval_id, rule } => {
                    "held for approval "
                    a href={ "/ui/approvals/" (segment(approval_id)) } { code { (approval_id) } }
                    @if let Some(r) = rule { " by " (r) }
                },
                What::Decided(d) => (replay::decided(d)),
                What::Request(r) => (request(r)),
                What::Rejected { reason } => { "login rejected: " (reason) },
                // What the terminal showed, as text: escapes removed, and
                // escaped again by maud (it is whatever the host printed).
                What::Terminal { text } => {
                    pre.terminal { (replay::terminal_lines(text).join("\n")) }
                },
                What::Closed => {
                    @let c = t.closed.clone().unwrap_or_default();
                    "session closed (" (c.end.as_deref().unwrap_or("?")) ")"
                },
            } }
        }
    }
}

fn request(r: &Request) -> Markup {
    html! {
        p.head {
            "[" (r.seq) "] "
            span class={ "verdict " (r.decision) } { (replay::verdict(&r.decision)) }
        }
        @if r.statements.is_empty() {
            p { "(" (r.protocol.as_deref().unwrap_or("request")) ")" }
        }
        @for st in &r.statements { pre.statement { code { (st.text) } } }
        @if let Some(why) = replay::why(r) { p.why { (why) } }
        @if let Some(a) = &r.approval { p.approval { (replay::approval(a)) } }
        @if !r.outcomes.is_empty() || !r.results.is_empty() {
            ol.outcomes {
                @for o in &r.outcomes {
                    li {
                        span.offset { (replay::stamp(o.offset_ms)) }
                        " → "
                        @if r.outcomes.len() > 1 { "#" (o.index + 1) " " }
                        (replay::outcome(o))
                        @for res in r.results.iter().filter(|x| x.index == o.index) { (results(res)) }
                    }
                }
                @for res in replay::unpaired(r) {
                    li {
                        span.offset { (replay::stamp(res.offset_ms)) }
                        " rows of statement #" (res.index + 1)
                        (results(res))
                    }
                }
            }
        }
    }
}

/// Recorded rows as the client received them (masked); SQL NULL is shown
/// as a marked `NULL`, so it is not mistaken for an empty string.
fn results(r: &Results) -> Markup {
    let n = r.rows.len();
    let plural = if n == 1 { "" } else { "s" };
    html! {
        table.results {
            thead { tr { @for c in &r.columns { th { (c) } } } }
            tbody {
                @for row in &r.rows {
                    tr { @for v in row { @match v {
                        Some(v) => td { (v) },
                        None => td.null { "NULL" },
                    } } }
                }
            }
        }
        p.rows {
            @if r.truncated { "(first " (n) " row" (plural) " recorded)" }
            @else { "(" (n) " row" (plural) ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn result_values_and_column_names_are_escaped() {
        let m = results(&Results {
            offset_ms: 0,
            index: 0,
            columns: vec!["<th>".into()],
            rows: vec![vec![Some("<img src=x>".into())], vec![None]],
            truncated: true,
        })
        .into_string();
        assert!(!m.contains("<img") && !m.contains("<th><th>"), "{m}");
        assert!(m.contains("&lt;img src=x&gt;") && m.contains("&lt;th&gt;"));
        assert!(m.contains("(first 2 rows recorded)"));
    }

    #[test]
    fn list_rows_link_ids_as_one_path_segment() {
        let m = row(&json!({"id": "s_1/../x?y", "state": "open"})).into_string();
        assert!(m.contains("href=\"/ui/sessions/s_1%2F..%2Fx%3Fy\""), "{m}");
    }
}
