//! A whole gateway for one test: a real OIDC provider, a SQLite store in a
//! temp dir, the API served over real HTTP on an ephemeral port, and the
//! sweeper running. Everything is dropped with the `Gateway`.
#![allow(dead_code)] // each suite uses its own subset

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use sluice_api::{AppState, Shared};
use sluice_core::config::Config;
use sluice_store::{AuditRow, Store};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use tokio::task::JoinHandle;

/// In `analytics-agents`: eligible for `playground` (read, max 15m).
pub const AGENT: &str = "agent-1";
/// Another member of `analytics-agents`, a different identity.
pub const OTHER_AGENT: &str = "agent-2";
/// In `sec-admins` (an admin group) and nothing else.
pub const ADMIN: &str = "admin-1";
/// In `writers`: eligible for `orders`, whose grants need approval.
pub const WRITER: &str = "writer-1";
/// In `marketing`: eligible for nothing.
pub const OUTSIDER: &str = "outsider";
/// In `analytics-agents`, with tokens that live one second.
pub const SHORT_LIVED: &str = "short-lived";

/// Approvers (group `dba`).
pub const DBA1: &str = "dba-1";
pub const DBA2: &str = "dba-2";
/// In `writers` and `dba`: may approve others' requests, never its own.
pub const DBA_WRITER: &str = "dba-writer";
/// The largest request body the test gateways accept.
pub const MAX_BODY: usize = 4096;

/// Every client the provider knows, with the groups put in its tokens.
fn clients() -> Vec<OidcClient> {
    vec![
        OidcClient::new(AGENT, &["analytics-agents"]).ttl(3600),
        OidcClient::new(OTHER_AGENT, &["analytics-agents"]),
        OidcClient::new(ADMIN, &["sec-admins"]),
        OidcClient::new(WRITER, &["writers"]),
        OidcClient::new(OUTSIDER, &["marketing"]),
        OidcClient::new(SHORT_LIVED, &["analytics-agents"]).ttl(1),
        OidcClient::new(DBA1, &["dba"]),
        OidcClient::new(DBA2, &["dba"]),
        OidcClient::new(DBA_WRITER, &["dba", "writers"]),
    ]
}

/// The gateway's configuration, trusting `idp` only.
fn config_text(idp: &OidcProvider) -> String {
    format!(
        r#"
[server]
sweep_interval = "200ms"
pending_grant_timeout = "1s"
admin_groups = ["sec-admins"]
max_body_bytes = {MAX_BODY}

[[issuers]]
name = "test-idp"
issuer = "{issuer}"
audiences = ["{audience}"]
leeway = "0s"

[[connections]]
name = "playground"
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "playground"
user = "sluice"
tls = "disable"

[[connections]]
name = "orders"
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "orders"
user = "sluice"
tls = "disable"

[[connections]]
name = "warehouse"
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "warehouse"
user = "sluice"
tls = "disable"

[[rules]]
name = "analytics-read"
groups = ["analytics-agents"]
connection = "playground"
profile = "read"
max_ttl = "15m"

[[rules]]
name = "orders-write"
groups = ["writers"]
connection = "orders"
profile = "write"
max_ttl = "5m"
approval = "grant"

[[rules]]
name = "warehouse-dba"
groups = ["dba"]
connection = "warehouse"
profile = "admin"
max_ttl = "1h"

[approvals]
approver_groups = ["dba"]
"#,
        issuer = idp.issuer(),
        audience = idp.audience(),
    )
}

pub struct Gateway {
    pub idp: OidcProvider,
    pub state: Shared,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub http: reqwest::Client,
    dir: tempfile::TempDir,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Starts the provider, opens the store, serves the API and runs the sweeper.
    pub async fn start() -> Gateway {
        Self::start_with(|c| c).await
    }

    /// Starts with the test configuration rewritten by `edit`.
    pub async fn start_with(edit: impl Fn(String) -> String) -> Gateway {
        let idp = OidcProvider::start(OidcOptions {
            clients: clients(),
            ..OidcOptions::default()
        })
        .await
        .expect("start the test OIDC provider");
        let config =
            Arc::new(Config::parse(&edit(config_text(&idp)), "test.toml").expect("valid config"));
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
            .await
            .expect("open the store");
        let audit = sluice_audit::AuditLog::start(store.clone());
        let verifier = sluice_identity::Verifier::new(config.issuers.clone()).expect("verifier");
        let state: Shared = Arc::new(AppState::new(config, verifier, store, audit));
        let sweeper = tokio::spawn(sluice_control::sweeper::run(
            state.clone(),
            tokio::sync::watch::channel(false).1,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let app = sluice_api::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve the API");
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Gateway {
            idp,
            state,
            url,
            http,
            dir,
            tasks: vec![sweeper, server],
        }
    }

    /// A fresh access token of `client` for the gateway's audience.
    pub async fn token(&self, client: &str) -> String {
        self.token_for(client, self.idp.audience()).await
    }

    /// A token of `client` minted for another resource (its `aud`).
    pub async fn token_for(&self, client: &str, resource: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), resource)
            .await
            .expect("client credentials token")
    }

    /// A request to `path` (e.g. "/v1/grants") bearing `token`.
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    /// `POST /v1/grants` with `body` as JSON.
    pub async fn ask(&self, token: &str, body: Value) -> Response {
        self.request(Method::POST, "/v1/grants", token)
            .json(&body)
            .send()
            .await
            .expect("POST /v1/grants")
    }

    /// Asks for a grant that must be created; returns its JSON.
    pub async fn grant(&self, token: &str, body: Value) -> Value {
        let (status, json) = parts(self.ask(token, body).await).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// `GET /v1/grants/{id}`: status and body.
    pub async fn show(&self, token: &str, id: &str) -> (StatusCode, Value) {
        let resp = self
            .request(Method::GET, &format!("/v1/grants/{id}"), token)
            .send()
            .await
            .expect("GET /v1/grants/{id}");
        parts(resp).await
    }

    /// `DELETE /v1/grants/{id}`: status and body.
    pub async fn revoke(&self, token: &str, id: &str) -> (StatusCode, Value) {
        let resp = self
            .request(Method::DELETE, &format!("/v1/grants/{id}"), token)
            .send()
            .await
            .expect("DELETE /v1/grants/{id}");
        parts(resp).await
    }

    /// `GET path` without credentials.
    pub async fn get_plain(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
    }

    /// The SQLite file and its WAL/shared-memory companions, concatenated.
    pub fn store_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).expect("read the store dir") {
            let path = entry.expect("dir entry").path();
            all.extend(std::fs::read(&path).expect("read a store file"));
        }
        all
    }

    /// A direct connection to the store's SQLite file, to inspect it.
    pub async fn db(&self) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}", self.dir.path().join("s.db").display());
        sqlx::SqlitePool::connect(&url)
            .await
            .expect("open the SQLite file")
    }

    /// Rows in the grants table.
    pub async fn grant_count(&self) -> i64 {
        let db = self.db().await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grants")
            .fetch_one(&db)
            .await
            .expect("count grants");
        db.close().await;
        n
    }

    /// Every audit row, in order.
    pub async fn audit_rows(&self) -> Vec<AuditRow> {
        self.state
            .store
            .audit_after(0, 100_000)
            .await
            .expect("read the audit log")
    }

    /// Audit event bodies (parsed) of `kind`, e.g. "grant.expired".
    pub async fn audit_events(&self, kind: &str) -> Vec<Value> {
        self.audit_rows()
            .await
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| serde_json::from_str(&r.body).expect("audit body is JSON"))
            .collect()
    }

    /// The audit chain verifies from its first event to its last.
    pub async fn assert_audit_chain_verifies(&self) {
        let report = sluice_audit::verify(&self.state.store)
            .await
            .expect("read the audit log")
            .expect("the audit chain verifies");
        assert!(report.events > 0, "the audit log is empty");
    }

    /// `/healthz` answers: the server is still serving.
    pub async fn assert_serving(&self) {
        let resp = self.get_plain("/healthz").await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub async fn parts(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("response body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts an API error: `status` and a JSON body `{error: code, message}`
/// whose message is not empty.
pub fn assert_error(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error without a message: {body}");
}

/// Seconds between two RFC 3339 times in a grant.
pub fn secs_between(from: &Value, to: &Value) -> i64 {
    let parse = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("an RFC 3339 time"))
            .expect("an RFC 3339 time")
    };
    (parse(to) - parse(from)).num_seconds()
}

/// Waits up to `limit` for `check` to hold, polling every 100 ms.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
