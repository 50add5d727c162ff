//! A gateway with the approvers' web page for one test: the playground's
//! dev issuer served by the gateway itself (sign-in page, code flow), a
//! SQLite store in a temp dir, the API and `/ui` over real HTTP.
#![allow(dead_code)] // each suite uses its own subset

pub mod cdp;

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_api::{AppState, Shared};
use sluice_core::config::Config;
use sluice_identity::dev::DevIssuer;
use sluice_store::Store;
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "sluice-ui";

pub struct UiGateway {
    pub state: Shared,
    pub issuer: DevIssuer,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Does not follow redirects: each step of the sign-in is checked.
    pub http: reqwest::Client,
    dir: tempfile::TempDir,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for UiGateway {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn config_text(api: &str, extra: &str) -> String {
    format!(
        r#"
[server]
api_listen = "{api}"
sweep_interval = "200ms"
pending_grant_timeout = "10m"

[[issuers]]
name = "dev"
issuer = "http://{api}/dev-issuer"
audiences = ["sluice-dev"]

[[connections]]
name = "orders"
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "orders"
user = "sluice"
tls = "disable"

[[rules]]
name = "orders-write"
groups = ["writers"]
connection = "orders"
profile = "write"
max_ttl = "5m"
approval = "grant"

[approvals]
approver_groups = ["dba"]
{extra}
"#
    )
}

/// The playground's UI section: loopback, cookie not Secure.
pub const DEV_UI: &str =
    "[ui]\nissuer = \"dev\"\nclient_id = \"sluice-ui\"\ncookie_secure = false\n";

impl UiGateway {
    pub async fn start() -> UiGateway {
        Self::start_with(DEV_UI).await
    }

    /// Starts with `extra` appended to the configuration (e.g. a `[ui]`).
    pub async fn start_with(extra: &str) -> UiGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = listener.local_addr().expect("addr").to_string();
        let url = format!("http://{api}");
        let config = Arc::new(
            Config::parse(&config_text(&api, extra), "ui-test.toml").expect("valid config"),
        );
        let issuer = DevIssuer::new(&format!("{url}/dev-issuer"), "sluice-dev");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&format!("sqlite:{}", dir.path().join("s.db").display()))
            .await
            .expect("open the store");
        let audit = sluice_audit::AuditLog::start(store.clone());
        let verifier = sluice_identity::Verifier::new(config.issuers.clone()).expect("verifier");
        let state: Shared =
            Arc::new(AppState::new(config, verifier, store, audit).with_dev_issuer(issuer.clone()));
        let sweeper = tokio::spawn(sluice_control::sweeper::run(
            state.clone(),
            tokio::sync::watch::channel(false).1,
        ));
        let app = sluice_api::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        UiGateway {
            state,
            issuer,
            url,
            http,
            dir,
            tasks: vec![sweeper, server],
        }
    }

    /// A second gateway on the same store and configuration (its own
    /// listener and audit writer), as a fleet member behind one address.
    pub async fn second(&self) -> UiGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let store = self.state.store.clone();
        let config = self.state.config.clone();
        let audit = sluice_audit::AuditLog::start(store.clone());
        let verifier = sluice_identity::Verifier::new(config.issuers.clone()).expect("verifier");
        let state: Shared = Arc::new(AppState::new(config, verifier, store, audit));
        let app = sluice_api::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        UiGateway {
            state,
            issuer: self.issuer.clone(),
            url,
            http: self.http.clone(),
            dir: tempfile::tempdir().expect("temp dir"),
            tasks: vec![server],
        }
    }

    /// An API token of `sub` in `groups`.
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        self.issuer
            .mint(sub, None, &groups, Duration::from_secs(600))
    }

    /// A grant request of `sub` (in `writers`) that waits for approval;
    /// returns (grant id, approval id).
    pub async fn pending_grant(
        &self,
        sub: &str,
        groups: &[&str],
        reason: &str,
    ) -> (String, String) {
        self.pending_grant_for(sub, groups, reason, None).await
    }

    /// [`Self::pending_grant`] asking for a life of `ttl`.
    pub async fn pending_grant_for(
        &self,
        sub: &str,
        groups: &[&str],
        reason: &str,
        ttl: Option<&str>,
    ) -> (String, String) {
        let mut body = json!({"connection": "orders", "reason": reason});
        if let Some(t) = ttl {
            body["ttl"] = t.into();
        }
        let resp = self
            .http
            .post(format!("{}/v1/grants", self.url))
            .bearer_auth(self.token(sub, groups))
            .json(&body)
            .send()
            .await
            .expect("POST /v1/grants");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let grant: Value = resp.json().await.unwrap();
        assert_eq!(grant["status"], "pending");
        let gid = grant["id"].as_str().unwrap().to_string();
        let approvals = self
            .state
            .store
            .approvals(Some(sluice_core::approval::ApprovalStatus::Pending), 100)
            .await
            .unwrap();
        let a = approvals
            .iter()
            .find(|a| a.grant_id == gid)
            .expect("its approval");
        (gid, a.id.clone())
    }

    /// A held statement on `grant_id`'s grant, as the Postgres listener opens it.
    pub async fn held_statement(&self, grant_id: &str, statement: &str) -> String {
        let grant = self.state.store.grant(grant_id).await.unwrap().unwrap();
        let a = sluice_control::approvals::open_for_statement(
            &self.state,
            sluice_control::approvals::StatementRequest {
                grant,
                session_id: "s_test".into(),
                statement: statement.into(),
                parameters: Some(vec![Some("<img src=x onerror=alert(2)>".into()), None]),
                analysis: json!({"class": "write", "tables": ["public.<b>orders</b>"], "reasons": ["writes rows"]}),
                fingerprint: "fp-0123".into(),
                rule: "writes-need-approval".into(),
            },
        )
        .await
        .expect("open a statement approval");
        a.id
    }

    /// Records a finished session under `grant_id` in the audit chain, as
    /// the Postgres listener would: opened, a read whose result rows are
    /// recorded (masked, with a NULL), a denied statement, a statement held
    /// for approval and approved, closed. `text` is the read's statement
    /// and `value` one of its result values (tests make them hostile).
    pub async fn record_session(&self, grant_id: &str, session: &str, text: &str, value: &str) {
        self.record_session_paced(grant_id, session, text, value, Duration::ZERO)
            .await
    }

    /// [`Self::record_session`] with `gap` between its events, so a
    /// playback has time to show them one by one.
    pub async fn record_session_paced(
        &self,
        grant_id: &str,
        session: &str,
        text: &str,
        value: &str,
        gap: Duration,
    ) {
        use sluice_core::audit::{AuditEvent, EventKind};
        let ev = |kind, detail| {
            AuditEvent::new(kind)
                .grant(grant_id)
                .connection("orders")
                .session(session)
                .detail(detail)
        };
        let held = format!("a_held_{session}");
        let events = vec![
            ev(
                EventKind::SessionOpened,
                json!({"client_addr": "127.0.0.1:40000", "profile": "write"}),
            ),
            ev(
                EventKind::StatementAllowed,
                json!({"seq": 1, "protocol": "simple", "decision": "allow", "rule": "profile:write",
                       "reason": "read is allowed",
                       "statements": [{"text": text, "classes": ["read"], "tables": ["customers"]}]}),
            ),
            ev(
                EventKind::StatementResults,
                json!({"seq": 1, "index": 0, "columns": ["id", "<b>email</b>"],
                       "rows": [["1", value], ["2", null], ["3", "c***@example.com"]], "truncated": true}),
            ),
            ev(
                EventKind::StatementCompleted,
                json!({"seq": 1, "index": 0, "outcome": "ok", "command": "SELECT", "rows": 5,
                       "duration_ms": 0.8, "error": null}),
            ),
            ev(
                EventKind::StatementDenied,
                json!({"seq": 2, "protocol": "simple", "decision": "deny", "rule": "no-ddl",
                       "reason": "DROP TABLE is ddl",
                       "statements": [{"text": "DROP TABLE orders", "classes": ["ddl"]}]}),
            ),
            ev(
                EventKind::ApprovalRequested,
                json!({"approval_id": held, "kind": "statement", "rule": "writes-need-approval"}),
            ),
            ev(
                EventKind::ApprovalApproved,
                json!({"approval_id": held, "kind": "statement", "by": "Dana Admin",
                       "reason": "checked", "scope": "once"}),
            ),
            ev(
                EventKind::StatementAllowed,
                json!({"seq": 3, "protocol": "simple", "decision": "approve",
                       "rule": "writes-need-approval", "reason": "writes need a dba",
                       "approval": {"id": held, "by": "Dana Admin", "outcome": "approved"},
                       "statements": [{"text": "UPDATE orders SET status = 'x'", "classes": ["write"]}]}),
            ),
            ev(
                EventKind::StatementCompleted,
                json!({"seq": 3, "index": 0, "outcome": "error", "command": null, "rows": null,
                       "duration_ms": 0.3,
                       "error": {"sqlstate": "23514", "message": "violates check constraint"}}),
            ),
            ev(
                EventKind::SessionClosed,
                json!({"duration_ms": 42, "statements_allowed": 2, "statements_denied": 1,
                       "outcomes_lost": 0, "end": "client"}),
            ),
        ];
        for e in events {
            self.state.audit.append(e).await.expect("record an event");
            tokio::time::sleep(gap).await;
        }
    }

    /// Signs in through the dev issuer's page as `sub` in `groups`.
    pub async fn sign_in(&self, sub: &str, groups: &str) -> Browser {
        // 1. The page sends us to the IdP with PKCE, state and nonce.
        let resp = self
            .http
            .get(format!("{}/ui/login?next=/ui", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let login_cookie = cookie_pair(&resp, "sluice-login");
        let to = location(&resp);
        let authorize = url::Url::parse(&to).unwrap();
        assert_eq!(authorize.path(), "/dev-issuer/authorize");
        let q: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(get("client_id").as_deref(), Some(CLIENT_ID));
        assert!(get("state").is_some() && get("nonce").is_some());
        // 2. The issuer's sign-in page.
        let page = self.http.get(&to).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        // 3. Submitting it sends us back with a code.
        let mut form = q.clone();
        form.push(("sub".into(), sub.into()));
        form.push(("groups".into(), groups.into()));
        let resp = self
            .http
            .post(format!("{}/dev-issuer/authorize", self.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let callback = location(&resp);
        // 4. The callback opens the session.
        let resp = self
            .http
            .get(absolute(&self.url, &callback))
            .header("cookie", &login_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        assert_eq!(location(&resp), "/ui");
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let session = set_cookies
            .iter()
            .find(|c| c.contains("sluice-session=") && !c.contains("Max-Age=0"))
            .expect("a session cookie")
            .clone();
        let cookie = session.split(';').next().unwrap().to_string();
        let mut b = Browser {
            url: self.url.clone(),
            http: self.http.clone(),
            cookie,
            set_cookie: session,
            csrf: String::new(),
        };
        let (status, page) = b.get("/ui").await;
        if status == StatusCode::OK || status == StatusCode::FORBIDDEN {
            b.csrf = csrf_of(&page);
        }
        b
    }
}

/// A signed-in client: the session cookie and the page's CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub url: String,
    pub http: reqwest::Client,
    /// `name=value`.
    pub cookie: String,
    /// The whole `Set-Cookie` value, flags included.
    pub set_cookie: String,
    pub csrf: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    /// A form POST from our own page (right Origin) with `fields`.
    pub async fn post(
        &self,
        path: &str,
        origin: Option<&str>,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.url))
            .header("cookie", &self.cookie)
            .form(fields);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }

    /// Votes `decision` on `id` as the page's form does.
    pub async fn vote(&self, id: &str, decision: &str, reason: &str) -> reqwest::Response {
        let csrf = self.csrf.clone();
        let url = self.url.clone();
        self.post(
            &format!("/ui/approvals/{id}"),
            Some(&url),
            &[("csrf", &csrf), ("decision", decision), ("reason", reason)],
        )
        .await
    }
}

pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

fn absolute(base: &str, to: &str) -> String {
    if to.starts_with("http") {
        to.to_string()
    } else {
        format!("{base}{to}")
    }
}

/// `name=value` of the Set-Cookie whose name ends with `suffix`.
pub fn cookie_pair(resp: &reqwest::Response, suffix: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.split('=').next().is_some_and(|n| n.ends_with(suffix)))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {suffix} cookie"))
}
