//! A timeline as text: what `sluice sessions replay` paces and prints, one
//! line at a time with the offset it happened at.

use super::{Approval, Decided, Outcome, Request, Results, Timeline, What};

/// One printed line, to be shown `offset_ms` after the session's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub offset_ms: i64,
    pub text: String,
}

/// The timeline as text, line by line with the offset each line happened
/// at, in time order: what `sluice sessions replay` paces and prints.
pub fn render(t: &Timeline) -> Vec<Line> {
    let mut out = vec![Line {
        offset_ms: 0,
        text: header(t),
    }];
    for e in &t.entries {
        match &e.what {
            What::Opened => {
                let mut s = format!("session opened on {}", or_q(&t.connection));
                if let Some(p) = &t.profile {
                    s.push_str(&format!(" ({p})"));
                }
                if let Some(a) = &t.client_addr {
                    s.push_str(&format!(" from {a}"));
                }
                push(&mut out, e.offset_ms, s);
            }
            What::Held { approval_id, rule } => {
                let rule = rule
                    .as_deref()
                    .map(|r| format!(" by {r}"))
                    .unwrap_or_default();
                push(
                    &mut out,
                    e.offset_ms,
                    format!("held for approval {approval_id}{rule}"),
                );
            }
            What::Decided(d) => push(&mut out, e.offset_ms, decided(d)),
            What::Request(r) => request_lines(&mut out, e.offset_ms, r),
            What::Rejected { reason } => {
                push(&mut out, e.offset_ms, format!("login rejected: {reason}"))
            }
            What::Terminal { text } => {
                for line in terminal_lines(text) {
                    push(&mut out, e.offset_ms, format!("│ {line}"));
                }
            }
            What::Closed => {
                let c = t.closed.clone().unwrap_or_default();
                let mut s = format!("session closed ({})", or_q(&c.end));
                if let (Some(a), Some(d)) = (c.statements_allowed, c.statements_denied) {
                    s.push_str(&format!(": {a} allowed, {d} denied"));
                }
                push(&mut out, e.offset_ms, s);
            }
        }
    }
    if t.closed.is_none() {
        let last = out.last().map(|l| l.offset_ms).unwrap_or(0);
        push(&mut out, last, "(session not closed in the record)".into());
    }
    // Outcomes come after their request; keep each line's place stable.
    out.sort_by_key(|l| l.offset_ms);
    out
}

/// What a terminal showed, as plain lines: escape sequences (colours,
/// cursor moves) and other control characters removed, carriage returns
/// read as line ends, blank lines dropped.
pub fn terminal_lines(text: &str) -> Vec<String> {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI (`ESC [ … final`), OSC (`ESC ] … BEL`), or one char.
                match chars.peek() {
                    Some('[') => {
                        chars.next();
                        for n in chars.by_ref() {
                            if ('@'..='~').contains(&n) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        for n in chars.by_ref() {
                            if n == '\u{7}' {
                                break;
                            }
                        }
                    }
                    _ => {
                        chars.next();
                    }
                }
            }
            '\r' | '\n' => plain.push('\n'),
            c if c.is_control() && c != '\t' => {}
            c => plain.push(c),
        }
    }
    plain
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// An approval's end: `approval a_… approved by dba-1: checked`.
pub fn decided(d: &Decided) -> String {
    let mut s = format!("approval {} {}", d.approval_id, d.outcome);
    if let Some(by) = d.by.as_deref().filter(|b| !b.is_empty()) {
        s.push_str(&format!(" by {by}"));
    }
    if let Some(r) = d.reason.as_deref().filter(|r| !r.is_empty()) {
        s.push_str(&format!(": {}", one_line(r)));
    }
    s
}

fn header(t: &Timeline) -> String {
    let who = t
        .identity
        .as_ref()
        .map(|w| format!("{} ({}, {})", w.name, w.subject, w.kind))
        .unwrap_or_else(|| "?".into());
    format!(
        "session {} · {} · grant {} · started {}",
        t.session_id,
        who,
        or_q(&t.grant_id),
        or_q(&t.started_at)
    )
}

fn or_q(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

fn push(out: &mut Vec<Line>, offset_ms: i64, body: String) {
    out.push(Line {
        offset_ms,
        text: format!("{:>10}  {body}", stamp(offset_ms)),
    });
}

/// An offset as the timeline shows it: `+12.345s`.
pub fn stamp(ms: i64) -> String {
    format!("+{}.{:03}s", ms / 1000, ms % 1000)
}

fn request_lines(out: &mut Vec<Line>, at: i64, r: &Request) {
    let texts: Vec<&str> = r.statements.iter().map(|s| s.text.as_str()).collect();
    let text = if texts.is_empty() {
        format!("({})", r.protocol.as_deref().unwrap_or("request"))
    } else {
        one_line(&texts.join("; "))
    };
    let verdict = verdict(&r.decision);
    push(out, at, format!("[{}] {verdict:<7} {text}", r.seq));
    let pad = " ".repeat(12);
    if let Some(why) = why(r) {
        out.push(Line {
            offset_ms: at,
            text: format!("{pad}    {why}"),
        });
    }
    if let Some(a) = &r.approval {
        out.push(Line {
            offset_ms: at,
            text: format!("{pad}    {}", approval(a)),
        });
    }
    for o in &r.outcomes {
        let label = if r.outcomes.len() > 1 {
            format!("#{} ", o.index + 1)
        } else {
            String::new()
        };
        push(out, o.offset_ms, format!("    → {label}{}", outcome(o)));
        for res in r.results.iter().filter(|x| x.index == o.index) {
            for line in table(res) {
                out.push(Line {
                    offset_ms: o.offset_ms,
                    text: format!("{pad}      {line}"),
                });
            }
        }
    }
    for res in unpaired(r) {
        for line in table(res) {
            out.push(Line {
                offset_ms: res.offset_ms,
                text: format!("{pad}      {line}"),
            });
        }
    }
}

/// `ALLOWED`, `DENIED`, or the recorded word as it is.
pub fn verdict(decision: &str) -> &str {
    match decision {
        "allow" => "ALLOWED",
        "deny" => "DENIED",
        other => other,
    }
}

/// Why a request was decided as it was: its classes, the rule and the
/// rule's reason (`class ddl · rule profile:read · DROP TABLE is ddl`).
pub fn why(r: &Request) -> Option<String> {
    let mut why = Vec::new();
    let classes: Vec<&str> = r
        .statements
        .iter()
        .flat_map(|s| s.classes.iter().map(String::as_str))
        .collect();
    if !classes.is_empty() {
        why.push(format!("class {}", classes.join(",")));
    }
    if let Some(rule) = &r.rule {
        why.push(format!("rule {rule}"));
    }
    if let Some(reason) = r.reason.as_deref().filter(|s| !s.is_empty()) {
        why.push(reason.to_string());
    }
    (!why.is_empty()).then(|| why.join(" · "))
}

/// What an approval did for a request and how long it held it.
pub fn approval(a: &Approval) -> String {
    let mut s = match (&a.shape, &a.id) {
        (Some(shape), _) => format!("approved earlier for this shape ({shape})"),
        (None, id) => format!(
            "approval {}: {}",
            or_q(id),
            a.outcome.as_deref().unwrap_or("?")
        ),
    };
    if let Some(by) = &a.by {
        s.push_str(&format!(" by {by}"));
    }
    if let Some(w) = a.wait_ms {
        s.push_str(&format!(" after waiting {}", seconds(w)));
    }
    s
}

/// What became of a statement: `ok SELECT 3, 3 rows in 1.2 ms`, or its error.
pub fn outcome(o: &Outcome) -> String {
    let mut s = match (&o.error, o.outcome.as_str()) {
        (Some(f), _) => format!("error {}: {}", f.sqlstate, f.message),
        (None, "ok") => format!("ok {}", o.command.as_deref().unwrap_or("")),
        (None, other) => other.to_string(),
    };
    if let Some(n) = o.rows {
        s.push_str(&format!(", {n} row{}", if n == 1 { "" } else { "s" }));
    }
    if let Some(d) = o.duration_ms {
        s.push_str(&format!(" in {d:.1} ms"));
    }
    s
}

/// Recorded results whose statement has no recorded outcome.
pub fn unpaired(r: &Request) -> impl Iterator<Item = &Results> {
    r.results
        .iter()
        .filter(|res| !r.outcomes.iter().any(|o| o.index == res.index))
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Newlines and runs of spaces folded, so a statement is one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Recorded rows as psql's aligned format shows them.
pub fn table(r: &Results) -> Vec<String> {
    let cell = |v: &Option<String>| v.clone().unwrap_or_default().replace('\n', "\\n");
    let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
    for row in &r.rows {
        for (i, v) in row.iter().enumerate() {
            let w = cell(v).chars().count();
            match widths.get_mut(i) {
                Some(x) => *x = (*x).max(w),
                None => widths.push(w),
            }
        }
    }
    let fmt_row = |cells: Vec<String>| {
        let parts: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = cells.get(i).cloned().unwrap_or_default();
                format!(" {c}{} ", " ".repeat(w - c.chars().count()))
            })
            .collect();
        parts.join("|").trim_end().to_string()
    };
    let mut out = vec![fmt_row(r.columns.clone())];
    out.push(
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+"),
    );
    for row in &r.rows {
        out.push(fmt_row(row.iter().map(cell).collect()));
    }
    let n = r.rows.len();
    out.push(if r.truncated {
        format!("(first {n} row{} recorded)", if n == 1 { "" } else { "s" })
    } else {
        format!("({n} row{})", if n == 1 { "" } else { "s" })
    });
    out
}
