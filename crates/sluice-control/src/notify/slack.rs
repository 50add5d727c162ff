//! A Slack incoming-webhook message for an opened approval: who asks, for
//! what, on which connection, and a button to the approval page.

use serde_json::{Value, json};
use sluice_core::approval::{Approval, ApprovalKind};

/// Statements are cut to this many characters in the message.
const MAX_STATEMENT: usize = 500;

/// `{"text": …, "blocks": […]}`; `view` is the approval's API JSON.
pub(super) fn message(a: &Approval, view: &Value) -> Value {
    let url = view["url"].as_str().unwrap_or_default();
    let kind = match a.kind {
        ApprovalKind::Grant => "grant",
        ApprovalKind::Statement => "statement",
    };
    let text = format!(
        "Approval needed: {} asks for a {kind} on {} ({url})",
        esc(&a.requester_name),
        esc(&a.connection),
    );
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("Approval needed: {kind} on {}", cut(&a.connection, 100))}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Requester*\n{}", esc(&cut(&a.requester_name, 200)))},
            {"type": "mrkdwn", "text": format!("*Connection*\n{}", esc(&a.connection))},
            {"type": "mrkdwn", "text": format!("*Kind*\n{kind}")},
            {"type": "mrkdwn", "text": format!("*Reason*\n{}", esc(&cut(&a.reason, 500)))},
        ]}),
    ];
    if let Some(stmt) = &a.statement {
        // A fenced block cannot be closed early by the statement itself.
        let body = esc(&cut(stmt, MAX_STATEMENT)).replace("```", "`\u{200b}``");
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{body}```")}}),
        );
    }
    blocks.push(json!({"type": "actions", "elements": [
        {"type": "button", "style": "primary", "text": {"type": "plain_text", "text": "Review"}, "url": url}
    ]}));
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("{} · expires {}", a.id, a.expires_at.format("%H:%M UTC"))}
    ]}));
    json!({ "text": text, "blocks": blocks })
}

/// Slack's own escaping: `&`, `<`, `>` (which also defuses `<!channel>`).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_mentions_and_fences() {
        assert_eq!(
            esc("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        assert_eq!(cut("abcdef", 3), "abc…");
    }
}
