//! Tells approvers that something waits for them: each
//! `[[approvals.webhooks]]` entry gets a message when an approval opens.
//!
//! - generic: `{"event": "approval.opened", "approval": {…}}` (the API's
//!   approval JSON), signed when a secret is configured:
//!   `X-Sluice-Timestamp: <unix seconds>` and
//!   `X-Sluice-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`;
//! - slack: an incoming-webhook message linking to the approval page.
//!
//! Deliveries never block the caller: each runs in its own task, at most
//! `MAX_SENDING` at once and `MAX_QUEUED` waiting (beyond that a delivery is
//! dropped and audited as such). Failures are retried with exponential
//! backoff (`MAX_ATTEMPTS`, delays capped at `MAX_DELAY`); the final result
//! of each delivery is audited as `approval.notified` with the receiver's
//! host, HTTP status and attempts — never its URL path or the secret.

mod slack;

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_core::approval::Approval;
use sluice_core::audit::{Actor, AuditEvent, EventKind};
use sluice_core::config::{WebhookConfig, WebhookKind};
use tokio::sync::Semaphore;

use crate::Shared;

/// Attempts per delivery, the first included.
const MAX_ATTEMPTS: u32 = 5;
/// The delay before the second attempt; doubled each time after.
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Deliveries sending at once.
const MAX_SENDING: usize = 8;
/// Deliveries accepted but not finished.
const MAX_QUEUED: usize = 256;

/// The deliveries' shared HTTP client and limits (one per gateway).
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    sending: Arc<Semaphore>,
    queued: Arc<Semaphore>,
}

impl Notifier {
    pub fn new() -> Self {
        Notifier {
            http: reqwest::Client::builder()
                // A receiver has no business redirecting a signed POST.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            sending: Arc::new(Semaphore::new(MAX_SENDING)),
            queued: Arc::new(Semaphore::new(MAX_QUEUED)),
        }
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Called once when an approval opens; never blocks the caller.
pub fn approval_opened(state: &Shared, approval: &Approval) {
    let hooks = &state.config.approvals.webhooks;
    if hooks.is_empty() {
        return;
    }
    let view = crate::approvals::approval_json(state, approval, &[]);
    for (index, hook) in hooks.iter().enumerate() {
        let Ok(queued) = state.notifier.queued.clone().try_acquire_owned() else {
            tracing::warn!(approval.id = %approval.id, webhook = %host_of(&hook.url), "notification queue full; delivery dropped");
            let state = state.clone();
            let (a, hook) = (approval.clone(), hook.clone());
            tokio::spawn(async move {
                let result = Delivery::failed(0, "dropped: too many deliveries in flight");
                audit(&state, &a, &hook, &result).await;
            });
            continue;
        };
        let body = match hook.kind {
            WebhookKind::Generic => json!({ "event": "approval.opened", "approval": view }),
            WebhookKind::Slack => slack::message(approval, &view),
        };
        let state = state.clone();
        let approval = approval.clone();
        tokio::spawn(async move {
            let _queued = queued;
            let Some(hook) = state.config.approvals.webhooks.get(index) else {
                return;
            };
            let result = deliver(&state, hook, &body, &approval.id).await;
            audit(&state, &approval, hook, &result).await;
        });
    }
}

/// How one delivery ended.
#[derive(Debug)]
struct Delivery {
    delivered: bool,
    attempts: u32,
    status: Option<u16>,
    error: Option<String>,
}

impl Delivery {
    fn failed(attempts: u32, error: &str) -> Self {
        Delivery {
            delivered: false,
            attempts,
            status: None,
            error: Some(error.into()),
        }
    }
}

async fn deliver(
    state: &Shared,
    hook: &WebhookConfig,
    body: &Value,
    approval_id: &str,
) -> Delivery {
    let secret = match hook.kind {
        WebhookKind::Generic => match hook.secret() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(webhook = %host_of(&hook.url), error = %e, "webhook secret unavailable; not sending unsigned");
                return Delivery::failed(0, "secret unavailable");
            }
        },
        WebhookKind::Slack => None,
    };
    let body = body.to_string();
    let delivery_id = format!("{approval_id}.{}", hook_tag(&hook.url));
    let mut last = Delivery::failed(0, "not attempted");
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        let _sending = state.notifier.sending.acquire().await;
        let mut req = state
            .notifier
            .http
            .post(&hook.url)
            .timeout(hook.timeout.0)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if hook.kind == WebhookKind::Generic {
            req = req
                .header("X-Sluice-Event", "approval.opened")
                .header("X-Sluice-Delivery", &delivery_id);
            if let Some(secret) = &secret {
                let ts = sluice_core::clock::now().timestamp().to_string();
                req = req.header("X-Sluice-Timestamp", &ts).header(
                    "X-Sluice-Signature",
                    sign(secret.expose().as_bytes(), &ts, body.as_bytes()),
                );
            }
        }
        match req.body(body.clone()).send().await {
            Ok(resp) => {
                let status = resp.status();
                last = Delivery {
                    delivered: status.is_success(),
                    attempts: attempt,
                    status: Some(status.as_u16()),
                    error: None,
                };
                let retry = status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                if status.is_success() || !retry {
                    return last;
                }
            }
            Err(e) => {
                // Classified, never displayed: reqwest's text names the URL,
                // and a Slack webhook URL is a secret.
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                last = Delivery::failed(attempt, kind);
            }
        }
        tracing::info!(approval.id = %approval_id, webhook = %host_of(&hook.url), attempt, status = ?last.status, error = ?last.error, "webhook delivery failed; will retry");
    }
    last
}

/// The delay before retry number `n` (1-based): 1 s, 2 s, 4 s, … at most 30 s.
fn backoff(n: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << (n - 1).min(16))
        .min(MAX_DELAY)
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "{timestamp}.{body}").
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The host (and port) of a webhook URL: all of it that may be recorded.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| "invalid-url".into())
}

/// A short, stable, non-reversible tag of the URL for delivery ids.
fn hook_tag(url: &str) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(url.as_bytes())[..4])
}

async fn audit(state: &Shared, a: &Approval, hook: &WebhookConfig, d: &Delivery) {
    let event = AuditEvent::new(EventKind::ApprovalNotified)
        .actor(Actor::system("notify"))
        .grant(&a.grant_id)
        .connection(&a.connection)
        .detail(json!({
            "approval_id": a.id,
            "webhook": host_of(&hook.url),
            "kind": match hook.kind { WebhookKind::Generic => "generic", WebhookKind::Slack => "slack" },
            "delivered": d.delivered,
            "status": d.status,
            "attempts": d.attempts,
            "error": d.error,
        }));
    if let Err(e) = state.audit.append(event).await {
        tracing::error!(error = %e, "auditing a webhook delivery");
    }
    if d.delivered {
        tracing::info!(approval.id = %a.id, webhook = %host_of(&hook.url), attempts = d.attempts, "approval notification delivered");
    } else {
        tracing::warn!(approval.id = %a.id, webhook = %host_of(&hook.url), attempts = d.attempts, status = ?d.status, error = ?d.error, "approval notification not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let d: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30]);
    }

    #[test]
    fn signatures_and_hosts() {
        // Computed independently (Python's hmac module).
        assert_eq!(
            sign(b"Jefe", "1700000000", br#"{"a":1}"#),
            "sha256=fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
        assert_eq!(
            host_of("https://hooks.slack.com/services/T/B/SECRET"),
            "hooks.slack.com"
        );
        assert_eq!(host_of("http://127.0.0.1:9000/x"), "127.0.0.1:9000");
    }
}
