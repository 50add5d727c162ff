//! The overview, history and live pages, rendered with `maud` (every
//! `(expr)` escaped). Charts are SVG drawn here: the page's policy allows
//! no inline style or script, and SVG geometry is attributes, not style.

use chrono::{DateTime, TimeZone, Utc};
use maud::{Markup, html};
use sluice_core::approval::Approval;
use sluice_core::live::LiveSession;
use sluice_store::Overview;

use super::operations::HistoryQuery;
use super::pages::{at, layout};
use super::segment;
use super::session::Session;

const HOUR_MS: i64 = 3_600_000;

/// One series of a chart: a CSS class and a count per hour.
struct Series {
    class: &'static str,
    label: &'static str,
    counts: Vec<i64>,
}

fn series(o: &Overview, kind: &str, start: i64, hours: usize) -> Vec<i64> {
    let mut counts = vec![0; hours];
    for h in o.hours.iter().filter(|h| h.kind == kind) {
        let i = (h.hour - start) / HOUR_MS;
        if (0..hours as i64).contains(&i) {
            counts[i as usize] += h.count;
        }
    }
    counts
}

/// The overview: sessions and decisions per hour over the last day, and
/// the rules that denied most.
pub(crate) fn overview(s: &Session, o: &Overview, since: i64, now: i64, live: usize) -> Markup {
    let start = since - since.rem_euclid(HOUR_MS);
    let hours = ((now - start) / HOUR_MS + 1) as usize;
    let sessions = [Series {
        class: "sessions",
        label: "sessions opened",
        counts: series(o, "session.opened", start, hours),
    }];
    let decisions = [
        Series {
            class: "allowed",
            label: "allowed",
            counts: series(o, "statement.allowed", start, hours),
        },
        Series {
            class: "denied",
            label: "denied",
            counts: series(o, "statement.denied", start, hours),
        },
        Series {
            class: "held",
            label: "held for approval",
            counts: series(o, "approval.requested", start, hours),
        },
    ];
    let total = |ss: &[Series]| -> i64 { ss.iter().flat_map(|s| &s.counts).sum() };
    let most = o.top_denied.first().map_or(1, |(_, n)| *n).max(1);
    let body = html! {
        h1 { "Overview" }
        p.totals {
            "Last 24 hours: " b #total-sessions { (total(&sessions)) } " sessions, "
            b #total-allowed { (total(&decisions[..1])) } " statements allowed, "
            b #total-denied { (total(&decisions[1..2])) } " denied, "
            b #total-held { (total(&decisions[2..])) } " held for approval. "
            a href="/ui/live" { b #live-count { (live) } " open now" } "."
        }
        h2 { "Sessions per hour" }
        (chart("chart-sessions", &sessions, start))
        h2 { "Statements per hour" }
        (chart("chart-decisions", &decisions, start))
        h2 { "Rules that denied most" }
        @if o.top_denied.is_empty() {
            p { "Nothing was denied in the last 24 hours." }
        } @else {
            table.top-denied #top-denied {
                thead { tr { th { "Rule" } th { "Denials" } th {} } }
                tbody { @for (rule, n) in &o.top_denied { tr {
                    td { code { (rule) } } td.n { (n) }
                    td { meter min="0" max=(most) value=(n) { (n) } }
                } } }
            }
            @if o.denials_sampled { p.notice { "Counted over the newest denials only." } }
        }
    };
    layout("Overview", Some(s), body)
}

/// A bar chart, one group of bars per hour, series stacked.
fn chart(id: &str, series: &[Series], start: i64) -> Markup {
    let hours = series.first().map_or(0, |s| s.counts.len());
    let stacked: Vec<i64> = (0..hours)
        .map(|i| series.iter().map(|s| s.counts[i]).sum())
        .collect();
    let top = stacked.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, pad) = (24.0_f64, 120.0_f64, 18.0_f64);
    let width = w * hours as f64;
    let label = |i: usize| -> String {
        let t: DateTime<Utc> = Utc
            .timestamp_millis_opt(start + i as i64 * HOUR_MS)
            .single()
            .unwrap_or_default();
        t.format("%H:00").to_string()
    };
    html! {
        figure.chart {
            svg #(id) viewBox={ "0 0 " (width) " " (h + pad) } role="img" preserveAspectRatio="none" {
                @for i in 0..hours {
                    @let x = i as f64 * w;
                    g data-hour=(label(i)) {
                        title { (label(i)) ": " @for s in series { (s.counts[i]) " " (s.label) "; " } }
                        @for (class, y, height) in stack(series, i, top, h - 4.0, h) {
                            rect class=(class) x=(x + 2.0) y=(y) width=(w - 4.0) height=(height) {}
                        }
                        @if i % 3 == 0 { text x=(x + 2.0) y=(h + pad - 4.0) { (label(i)) } }
                    }
                }
            }
            figcaption {
                "Highest hour: " (top) ". "
                @for s in series { span class={ "key " (s.class) } { (s.label) } " " }
            }
        }
    }
}

/// Hour `i`'s bars, bottom up: each series' class, top edge and height,
/// scaled so `top` fills `room` above the baseline `base`.
fn stack(
    series: &[Series],
    i: usize,
    top: i64,
    room: f64,
    base: f64,
) -> Vec<(&'static str, f64, f64)> {
    let mut y = base;
    let mut bars = Vec::new();
    for s in series.iter().filter(|s| s.counts[i] > 0) {
        let height = s.counts[i] as f64 / top as f64 * room;
        y -= height;
        bars.push((s.class, y, height));
    }
    bars
}

/// The decided approvals, newest first, with the filter form.
pub(crate) fn history(s: &Session, q: &HistoryQuery, rows: &[Approval]) -> Markup {
    let option = |name: &str, current: &str| {
        html! { option value=(name) selected[name == current] { (if name.is_empty() { "any" } else { name }) } }
    };
    let body = html! {
        h1 { "Decided approvals" }
        form.filters method="get" action="/ui/history" {
            label { "Status " select name="status" {
                @for st in ["", "approved", "denied", "expired", "withdrawn"] { (option(st, &q.status)) }
            } }
            label { "Kind " select name="kind" {
                @for k in ["", "grant", "statement"] { (option(k, &q.kind)) }
            } }
            label { "Connection " input type="text" name="connection" value=(q.connection); }
            label { "Requester " input type="text" name="requester" value=(q.requester) placeholder="name or subject"; }
            label { "Decided by " input type="text" name="decided_by" value=(q.decided_by); }
            button type="submit" { "Filter" }
            " " a href="/ui/history" { "Clear" }
        }
        table.approvals #history {
            thead { tr {
                th { "Approval" } th { "Kind" } th { "Status" } th { "Connection" }
                th { "Requester" } th { "What" } th { "Decided by" } th { "Reason" } th { "Decided" }
            } }
            tbody {
                @if rows.is_empty() { tr.empty { td colspan="9" { "No decided approval matches." } } }
                @for a in rows { tr data-id=(a.id) {
                    td { a href={ "/ui/approvals/" (segment(&a.id)) } { code { (a.id) } } }
                    td { (a.kind.as_str()) }
                    td { span class={ "status " (a.status.as_str()) } { (a.status.as_str()) } }
                    td { (a.connection) }
                    td { (a.requester_name) }
                    td.what { (super::pages::summary(a)) }
                    td { (a.decided_by.as_deref().unwrap_or("—")) }
                    td { (a.decision_reason.as_deref().unwrap_or("")) }
                    td { (a.decided_at.map(at).unwrap_or_default()) }
                } }
            }
        }
    };
    layout("Decided approvals", Some(s), body)
}

/// The sessions open on this gateway, each with a button to end it.
pub(crate) fn live(s: &Session, open: &[LiveSession], ended: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Open sessions" }
        @if let Some(id) = ended { p.notice #ended { "Session " code { (id) } " was asked to end." } }
        p { "Sessions open on this gateway now. Ending one closes the client's connection and \
             cancels its running statement; its grant stays as it is." }
        table.sessions #live-sessions {
            thead { tr {
                th { "Session" } th { "Identity" } th { "Connection" } th { "Protocol" }
                th { "From" } th { "Opened" } th { "End" }
            } }
            tbody {
                @if open.is_empty() { tr.empty { td colspan="7" { "No session is open." } } }
                @for l in open { tr data-session-id=(l.id) {
                    td { a href={ "/ui/sessions/" (segment(&l.id)) } { code { (l.id) } } }
                    td { (l.identity) }
                    td { (l.connection) " (" (l.profile.as_str()) ")" }
                    td { (l.protocol) }
                    td { (l.client_addr) }
                    td { (at(l.opened_at)) }
                    td { form.inline.end method="post" action={ "/ui/live/" (segment(&l.id)) "/end" } {
                        input type="hidden" name="csrf" value=(s.csrf);
                        input type="text" name="reason" placeholder="why (recorded)" maxlength="1000";
                        button.deny type="submit" { "End session" }
                    } }
                } }
            }
        }
    };
    layout("Open sessions", Some(s), body)
}

/// The gateways sharing the store: state, version, policy (flagged when it
/// differs from the fleet's), last heartbeat; and who holds each lease.
pub(crate) fn fleet(s: &Session, f: &sluice_control::fleet::FleetStatus) -> Markup {
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let body = html! {
        h1 { "Fleet" }
        @if f.consistent {
            p #policy { "Every live gateway runs policy " code { (short(&f.policy_hash)) } "." }
        } @else {
            p.notice #policy { "Not every live gateway runs the fleet's policy "
                code { (short(&f.policy_hash)) } ": the flagged ones run another configuration." }
        }
        table.sessions #fleet-members {
            thead { tr {
                th { "Gateway" } th { "State" } th { "Version" } th { "Policy" }
                th { "Last heartbeat" } th { "API" } th { "Host" }
            } }
            tbody {
                @for m in &f.members { tr data-gateway-id=(m.id) data-policy-matches=(m.policy_matches) {
                    td { code { (m.id) } @if m.id == f.this { " (this one)" } }
                    td { (m.state) }
                    td { (m.version) }
                    td { code { (short(&m.policy_hash)) } @if !m.policy_matches { " ⚠ differs" } }
                    td { (at(m.heartbeat_at)) }
                    td { (m.api) }
                    td { (m.host) }
                } }
            }
        }
        h2 { "Leases" }
        table.sessions #fleet-leases {
            thead { tr { th { "Work" } th { "Held by" } th { "Until" } } }
            tbody {
                @if f.leases.is_empty() { tr.empty { td colspan="3" { "No lease taken yet." } } }
                @for l in &f.leases { tr {
                    td { (l.name) }
                    td { code { (l.holder) } @if !l.held { " (lapsed)" } }
                    td { (at(l.expires_at)) }
                } }
            }
        }
    };
    layout("Fleet", Some(s), body)
}
