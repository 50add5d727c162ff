//! Approval notifications (`[[approvals.webhooks]]`): a generic signed JSON
//! webhook, or a Slack incoming webhook.

use super::Config;
use super::duration::Dur;
use super::locate::Seg::{self, Index, Key};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Which body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    /// `{"event": "approval.opened", "approval": {…}}`, signed with HMAC-SHA256.
    #[default]
    Generic,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

/// One receiver of "an approval waits" messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST. https, or http for 127.0.0.1/localhost. A Slack
    /// incoming-webhook URL is itself a secret: only its host is logged.
    pub url: String,
    /// "generic" (default) or "slack".
    #[serde(default)]
    pub kind: WebhookKind,
    /// Environment variable holding the HMAC key (generic only). With a
    /// key, each delivery carries `X-Sluice-Timestamp` and
    /// `X-Sluice-Signature: sha256=<hex of HMAC-SHA256(key, "{timestamp}.{body}")>`.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the HMAC key (generic only).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Each attempt, connect to last byte. Default "10s"; at most 1m.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_timeout() -> Dur {
    Dur::secs(10)
}

impl WebhookConfig {
    /// A generic webhook to `url` with every default.
    pub fn new(url: &str) -> Self {
        WebhookConfig {
            url: url.into(),
            kind: WebhookKind::Generic,
            secret_env: None,
            secret_file: None,
            timeout: default_timeout(),
        }
    }

    /// The signing key, if one is configured.
    pub fn secret(&self) -> Result<Option<super::Password>, String> {
        super::resolve_password(self.secret_env.as_deref(), self.secret_file.as_deref())
            .map_err(|e| e.replace("password", "webhook secret"))
    }
}

/// Every problem of `[[approvals.webhooks]]`, with its key path.
pub(super) fn problems(c: &Config) -> Vec<(Vec<Seg>, String)> {
    let mut p = Vec::new();
    for (i, w) in c.approvals.webhooks.iter().enumerate() {
        let mut at = |k: &'static str, m: &str| {
            p.push((
                vec![Key("approvals"), Key("webhooks"), Index(i), Key(k)],
                m.to_string(),
            ))
        };
        match w.url.split_once("://").map(|(s, _)| s) {
            Some("https") => {}
            Some("http") if super::ui::is_loopback(&w.url) => {}
            _ => at(
                "url",
                "must be an https URL (plain http only for 127.0.0.1/localhost)",
            ),
        }
        if w.secret_env.is_some() && w.secret_file.is_some() {
            at("secret_file", "set secret_env or secret_file, not both");
        }
        if w.kind == WebhookKind::Slack && (w.secret_env.is_some() || w.secret_file.is_some()) {
            at(
                "kind",
                "slack webhooks are not signed: secret_env/secret_file are only used with kind = \"generic\"",
            );
        }
        let t = w.timeout.0;
        if t.is_zero() || t > Duration::from_secs(60) {
            at("timeout", "must be more than 0 and at most 1m");
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn webhooks_parse_and_validate() {
        let ok = Config::parse(
            "[approvals]\napprover_groups = [\"dba\"]\n\
             [[approvals.webhooks]]\nurl = \"https://hooks.example/x\"\nsecret_env = \"HOOK_KEY\"\n\
             [[approvals.webhooks]]\nurl = \"https://hooks.slack.com/services/T/B/X\"\nkind = \"slack\"\n",
            "s.toml",
        )
        .unwrap();
        let hooks = &ok.approvals.webhooks;
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].kind, super::WebhookKind::Generic);
        assert_eq!(hooks[0].timeout.0.as_secs(), 10);
        assert_eq!(hooks[1].kind, super::WebhookKind::Slack);

        let e = Config::parse(
            "[approvals]\napprover_groups = [\"dba\"]\n\
             [[approvals.webhooks]]\nurl = \"http://hooks.example/x\"\nsecret_env = \"A\"\nsecret_file = \"/b\"\ntimeout = \"5m\"\n\
             [[approvals.webhooks]]\nurl = \"https://hooks.slack.com/x\"\nkind = \"slack\"\nsecret_env = \"A\"\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "s.toml:4: approvals.webhooks[0].url: must be an https URL",
            "approvals.webhooks[0].secret_file: set secret_env or secret_file, not both",
            "approvals.webhooks[0].timeout: must be more than 0 and at most 1m",
            "approvals.webhooks[1].kind: slack webhooks are not signed",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        let e = Config::parse(
            "[[approvals.webhooks]]\nurl = \"https://x\"\nsigning = 1\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `signing`"), "{e}");
    }
}
