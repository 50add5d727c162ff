//! The Model Context Protocol at `/mcp` (streamable HTTP, rmcp), for agents
//! that speak MCP instead of running a client. Authenticated with the same
//! OIDC bearer tokens as the API; `/.well-known/oauth-protected-resource`
//! names the issuers so MCP clients can find where to get one.
//!
//! Every tool is a thin client of what already exists, so nothing here can
//! decide differently from the rest of the gateway: grant tools call this
//! gateway's own API over loopback with the caller's token (its checks,
//! audit events and errors), `query` runs the statement through this
//! gateway's own Postgres listener with the grant, and `exec` the command
//! through its own SSH listener (host key checked), so guardrails,
//! approvals, masking, recording and audit are the wire path's.
//!
//! rmcp serves the newest protocol statelessly (a handler per request), so
//! grant secrets obtained by `request_grant` live in a process-wide map,
//! usable only by the grant's owner and forgotten at its expiry. They are
//! never returned to the client. See `docs/agents.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerInfo};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_control::Shared;
use sluice_core::config::ConnectionKind;

/// Rows a query returns by default, and at most.
const ROWS: usize = 100;
const MAX_ROWS: usize = 1000;
/// Bytes of row data a query returns at most.
const MAX_BYTES: usize = 64 * 1024;
/// Longest a query may take to answer (a held statement waits within it).
const QUERY_TIME: Duration = Duration::from_secs(60);
/// Longest wait one `wait_for_approval` call makes.
const MAX_WAIT: u64 = 55;

/// Grant secrets `request_grant` obtained: grant id → owner, secret, end.
#[derive(Default)]
pub struct Secrets(Mutex<HashMap<String, Held>>);

struct Held {
    owner: (String, String),
    secret: String,
    until: DateTime<Utc>,
}

impl Secrets {
    fn keep(&self, id: &str, owner: (String, String), secret: &str, until: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = sluice_core::clock::now();
        map.retain(|_, h| h.until > now);
        map.insert(
            id.to_string(),
            Held {
                owner,
                secret: secret.to_string(),
                until,
            },
        );
    }

    fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    fn take(&self, id: &str, owner: &(String, String)) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id)
            .filter(|h| &h.owner == owner && h.until > sluice_core::clock::now())
            .map(|h| h.secret.clone())
    }
}

/// The `/mcp` service.
pub fn service(state: Shared) -> StreamableHttpService<SluiceMcp, LocalSessionManager> {
    // One per process: a reload builds a new router, and grants asked for
    // before it must still be usable.
    static SECRETS: std::sync::LazyLock<Arc<Secrets>> = std::sync::LazyLock::new(Arc::default);
    let secrets = SECRETS.clone();
    let max_body = state.config.server.max_body_bytes;
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    hosts.push(state.config.server.api_listen.clone());
    if let Ok(u) = url::Url::parse(&state.config.server.public_url())
        && let Some(h) = u.host_str()
    {
        hosts.push(h.to_string());
        if let Some(p) = u.port() {
            hosts.push(format!("{h}:{p}"));
        }
    }
    StreamableHttpService::new(
        move || Ok(SluiceMcp::new(state.clone(), secrets.clone())),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_max_request_body_bytes(max_body),
    )
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728).
pub async fn protected_resource(
    axum::extract::State(state): axum::extract::State<Shared>,
) -> axum::Json<Value> {
    let issuers: Vec<&str> = state
        .config
        .issuers
        .iter()
        .map(|i| i.issuer.as_str())
        .collect();
    axum::Json(json!({
        "resource": format!("{}/mcp", state.config.server.public_url()),
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "Sluice",
    }))
}

/// `/mcp` without a bearer token that verifies: 401 naming the metadata
/// document (RFC 9728), so an MCP client can find where to get one.
pub async fn require_bearer(
    axum::extract::State(state): axum::extract::State<Shared>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_of)
        .map(str::to_string);
    let (refusal, error) = match token {
        Some(t) => match sluice_control::auth::authenticate(&state, &t).await {
            Ok(who) => {
                // Verified once here; the tools read it from the request.
                req.extensions_mut().insert(who);
                return next.run(req).await;
            }
            Err(e) => (
                format!("invalid_token: {}", e.message),
                ", error=\"invalid_token\"",
            ),
        },
        None => (
            "a bearer token from a trusted issuer is required".to_string(),
            "",
        ),
    };
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource",
        state.config.server.public_url()
    );
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            format!("Bearer resource_metadata=\"{metadata}\"{error}"),
        )],
        refusal,
    )
        .into_response()
}

#[derive(Clone)]
pub struct SluiceMcp {
    state: Shared,
    secrets: Arc<Secrets>,
    http: reqwest::Client,
    tool_router: ToolRouter<SluiceMcp>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct RequestGrant {
    /// The connection's name, from list_connections.
    pub connection: String,
    /// Why you need it: recorded, and shown to an approver.
    pub reason: String,
    /// How long, e.g. "10m" (capped by the access rule).
    pub ttl: Option<String>,
    /// read, write or admin, when several rules apply.
    pub profile: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct GrantId {
    /// The grant's id (g_…).
    pub grant_id: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct WaitFor {
    /// A pending grant's id (g_…), or
    pub grant_id: Option<String>,
    /// a held statement's approval id (a_…).
    pub approval_id: Option<String>,
    /// Seconds to wait, at most 55 (default 30).
    pub timeout_secs: Option<u64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Exec {
    /// An active grant from request_grant on an SSH connection.
    pub grant_id: String,
    /// One command line, as `ssh host 'COMMAND'` would run it.
    pub command: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Query {
    /// An active grant from request_grant on a Postgres connection.
    pub grant_id: String,
    /// One SQL statement.
    pub sql: String,
    /// Rows to return, at most 1000 (default 100).
    pub max_rows: Option<usize>,
}

fn text(v: Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(v.to_string())])
}

fn refused(v: Value) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(v.to_string())])
}

#[tool_router]
impl SluiceMcp {
    fn new(state: Shared, secrets: Arc<Secrets>) -> Self {
        SluiceMcp {
            state,
            secrets,
            // Loopback only: never through a proxy, never redirected.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap_or_default(),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "List the connections (databases, hosts) you may ask for a grant to: name, kind, the profile you would get (read/write/admin), the longest grant, and whether a human must approve the grant first. Start here."
    )]
    async fn list_connections(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        Ok(self
            .api(&ctx, reqwest::Method::GET, "/v1/connections", None)
            .await)
    }

    #[tool(
        description = "Ask for a short-lived grant to one connection. Active at once when the rule allows it: then call query (databases) or exec (SSH hosts) with its grant_id. When a human must approve it first, the answer is pending with the approval's id and URL: call wait_for_approval with the grant_id. May be refused when no rule lets you use the connection (do not retry; ask a human for access)."
    )]
    async fn request_grant(
        &self,
        Parameters(p): Parameters<RequestGrant>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let mut body = json!({ "connection": p.connection, "reason": p.reason });
        if let Some(t) = p.ttl {
            body["ttl"] = t.into();
        }
        if let Some(pr) = p.profile {
            body["profile"] = pr.into();
        }
        Ok(self
            .api(&ctx, reqwest::Method::POST, "/v1/grants", Some(body))
            .await)
    }

    #[tool(
        description = "Show one of your grants: status (active, pending, denied, expired, revoked), expiry, and for a pending one its approval."
    )]
    async fn grant_status(
        &self,
        Parameters(p): Parameters<GrantId>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let path = format!("/v1/grants/{}", segment(&p.grant_id));
        Ok(self.api(&ctx, reqwest::Method::GET, &path, None).await)
    }

    #[tool(
        description = "Wait (up to 55 s per call) for a human to decide a pending grant (grant_id) or a statement held for approval (approval_id). Call again while it says pending. Once a grant is active, call query (databases) or exec (SSH hosts); once a held statement or command is approved, run it again unchanged and it passes."
    )]
    async fn wait_for_approval(
        &self,
        Parameters(p): Parameters<WaitFor>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let secs = p.timeout_secs.unwrap_or(30).min(MAX_WAIT);
        if let Some(g) = p.grant_id {
            let path = format!("/v1/grants/{}?wait={secs}s", segment(&g));
            return Ok(self.api(&ctx, reqwest::Method::GET, &path, None).await);
        }
        let Some(a) = p.approval_id else {
            return Ok(refused(json!({"error": "give grant_id or approval_id"})));
        };
        let path = format!("/v1/approvals/{}", segment(&a));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let r = self.api(&ctx, reqwest::Method::GET, &path, None).await;
            let pending = first_json(&r).is_some_and(|v| v["status"] == "pending");
            if !pending || tokio::time::Instant::now() >= deadline {
                return Ok(r);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    #[tool(description = "Revoke one of your grants now; its sessions end at once.")]
    async fn revoke_grant(
        &self,
        Parameters(p): Parameters<GrantId>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let path = format!("/v1/grants/{}", segment(&p.grant_id));
        let result = self.api(&ctx, reqwest::Method::DELETE, &path, None).await;
        if result.is_error != Some(true) {
            self.secrets.forget(&p.grant_id);
        }
        Ok(result)
    }

    #[tool(
        description = "Run one SQL statement on a Postgres connection through an active grant from request_grant. Results come back as column names and rows (values as text), at most max_rows rows and 64 KiB, with a note when cut; sensitive values may come back masked. The statement is checked first and may be refused (the error names the rule and why: do not retry it unchanged) or held for a human's approval (the error names the approval id: call wait_for_approval, then run the same statement again)."
    )]
    async fn query(
        &self,
        Parameters(p): Parameters<Query>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let (grant, secret) = match self
            .held_grant(&ctx, &p.grant_id, ConnectionKind::Postgres)
            .await
        {
            Ok(held) => held,
            Err(refusal) => return Ok(refusal),
        };
        Ok(self.run_sql(&grant, &secret, &p.sql, p.max_rows).await)
    }

    #[tool(
        description = "Run one command line on an SSH connection through an active grant from request_grant, as `ssh host 'COMMAND'` would. Returns exit_status, stdout and stderr (text, at most 64 KiB each, with a note when cut; sensitive values may come back masked). The command is checked first: refused (exit_status 126, stderr names the rule and why: do not retry it unchanged) or held for a human's approval (stderr names the approval id: call wait_for_approval, then run the same command again). No terminal and no input: interactive programs will not work."
    )]
    async fn exec(
        &self,
        Parameters(p): Parameters<Exec>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let (grant, secret) = match self
            .held_grant(&ctx, &p.grant_id, ConnectionKind::Ssh)
            .await
        {
            Ok(held) => held,
            Err(refusal) => return Ok(refusal),
        };
        Ok(self.run_command(&grant, &secret, &p.command).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SluiceMcp {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("sluice", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Sluice gives you short-lived, audited access to databases and hosts. list_connections, then request_grant, then query (SQL) or exec (a command on an SSH host). Some grants and statements wait for a human: wait_for_approval. Everything you do is recorded.".to_string(),
            )
    }
}

impl SluiceMcp {
    /// The bearer token of the HTTP request behind this call.
    fn token(ctx: &RequestContext<RoleServer>) -> Option<String> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.headers.get(header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_of)
            .map(str::to_string)
    }

    /// The identity `require_bearer` verified for this request.
    fn caller(ctx: &RequestContext<RoleServer>) -> Result<sluice_core::Identity, CallToolResult> {
        ctx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<sluice_core::Identity>())
            .cloned()
            .ok_or_else(|| refused(json!({"error": "unauthorized"})))
    }

    /// This gateway's API, called as the caller; grant secrets in answers
    /// are kept here and left out of what the model sees.
    async fn api(
        &self,
        ctx: &RequestContext<RoleServer>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> CallToolResult {
        let Some(token) = Self::token(ctx) else {
            return refused(json!({"error": "unauthorized"}));
        };
        let base = loopback(&self.state.config.server.api_listen);
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return refused(json!({"error": "unavailable", "message": e.to_string()})),
        };
        let ok = resp.status().is_success();
        let mut v: Value = resp.json().await.unwrap_or(Value::Null);
        if ok {
            self.keep_secret(ctx, &mut v);
            text(v)
        } else {
            refused(v)
        }
    }

    /// A grant answer with credentials: the secret kept for `query`, the
    /// credentials replaced by what to do next.
    fn keep_secret(&self, ctx: &RequestContext<RoleServer>, v: &mut Value) {
        let Some(secret) = v["credentials"]["password"].as_str().map(str::to_string) else {
            return;
        };
        if let Ok(who) = Self::caller(ctx) {
            let until = v["expires_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(sluice_core::clock::now);
            let id = v["id"].as_str().unwrap_or_default();
            self.secrets
                .keep(id, (who.subject, who.issuer), &secret, until);
        }
        v.as_object_mut().map(|o| o.remove("credentials"));
        v["next"] = "call query (databases) or exec (SSH hosts) with this grant_id".into();
    }

    /// The caller's grant `id` and the secret this gateway keeps for it,
    /// when its connection is of `kind`; else the refusal to return.
    async fn held_grant(
        &self,
        ctx: &RequestContext<RoleServer>,
        id: &str,
        kind: ConnectionKind,
    ) -> Result<(sluice_core::Grant, String), CallToolResult> {
        let who = Self::caller(ctx)?;
        let Some(secret) = self.secrets.take(id, &(who.subject, who.issuer)) else {
            return Err(refused(json!({
                "error": "no_grant_here",
                "message": "this gateway holds no active grant with that id for you: call request_grant (and, when pending, wait_for_approval) first",
            })));
        };
        let grant = match self.state.store.grant(id).await {
            Ok(Some(g)) => g,
            _ => return Err(refused(json!({"error": "not_found"}))),
        };
        match self.other_kind(&grant, kind) {
            Some(wrong) => Err(wrong),
            None => Ok((grant, secret)),
        }
    }

    /// A refusal when `grant`'s connection is not of `kind`, naming the
    /// tool that fits.
    fn other_kind(
        &self,
        grant: &sluice_core::Grant,
        kind: ConnectionKind,
    ) -> Option<CallToolResult> {
        let actual = self
            .state
            .config
            .connection(&grant.connection)
            .map(|c| c.kind)?;
        (actual != kind).then(|| {
            refused(json!({
                "error": "wrong_tool",
                "message": match actual {
                    ConnectionKind::Ssh => "this grant is for an SSH connection: use exec",
                    ConnectionKind::Postgres => "this grant is for a Postgres connection: use query",
                    _ => "this kind of connection is not offered over MCP yet: use the sluice CLI (`sluice exec`)",
                },
            }))
        })
    }

    /// The command through this gateway's SSH listener, its host key
    /// checked as an agent pinning it would.
    async fn run_command(
        &self,
        grant: &sluice_core::Grant,
        secret: &str,
        command: &str,
    ) -> CallToolResult {
        let Some(expected) = self.state.ssh_fingerprint.as_deref() else {
            return refused(
                json!({"error": "unavailable", "message": "this gateway runs no SSH listener"}),
            );
        };
        let listen = &self.state.config.ssh.listen;
        let (host, port) = match listen.rsplit_once(':') {
            Some((h, p)) => (loopback_host(h), p.parse::<u16>().unwrap_or(0)),
            None => return refused(json!({"error": "unavailable"})),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ran = sluice_ssh::oneshot::run(
            (host, port),
            expected,
            &grant.id,
            secret,
            command,
            MAX_BYTES,
            QUERY_TIME,
        )
        .await;
        let ran = match ran {
            Ok(r) => r,
            Err(e) => return refused(json!({"error": "unavailable", "message": e})),
        };
        let stderr = String::from_utf8_lossy(&ran.stderr).into_owned();
        let mut out = json!({
            "exit_status": ran.status,
            "stdout": String::from_utf8_lossy(&ran.stdout),
            "stderr": stderr,
        });
        if ran.status == Some(sluice_ssh::REFUSED) && stderr.starts_with("sluice:") {
            out["refused_by_gateway"] = true.into();
            if let Some(id) = stderr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|w| w.starts_with("a_"))
            {
                out["approval_id"] = id.into();
                out["next"] = "call wait_for_approval with this approval_id, then run the same command again with exec".into();
            }
        }
        if ran.cut {
            out["note"] =
                format!("output cut at {MAX_BYTES} bytes; the command was left running no longer")
                    .into();
        }
        text(out)
    }

    /// The statement through this gateway's Postgres listener.
    async fn run_sql(
        &self,
        grant: &sluice_core::Grant,
        secret: &str,
        sql: &str,
        max_rows: Option<usize>,
    ) -> CallToolResult {
        let listen = &self.state.config.postgres.listen;
        let (host, port) = match listen.rsplit_once(':') {
            Some((h, p)) => (loopback_host(h), p.parse::<u16>().unwrap_or(0)),
            None => return refused(json!({"error": "unavailable"})),
        };
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&host)
            .port(port)
            .user(&grant.id)
            .password(secret)
            .dbname(&grant.connection)
            .application_name("sluice-mcp")
            .connect_timeout(Duration::from_secs(10));
        // TLS with exactly the listener's own certificate when it has one
        // (so `require_tls` listeners serve MCP too), else the clear.
        let pin = self
            .state
            .config
            .postgres
            .tls_cert
            .as_deref()
            .map(sluice_tls::fingerprint_of);
        let client = match pin {
            Some(Ok(pin)) => {
                cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls =
                    tokio_postgres_rustls::MakeRustlsConnect::new(sluice_tls::pinned_config(&pin));
                cfg.connect(tls).await.map(|(c, conn)| {
                    tokio::spawn(conn);
                    c
                })
            }
            Some(Err(e)) => return refused(json!({"error": "unavailable", "message": e.0})),
            None => cfg.connect(tokio_postgres::NoTls).await.map(|(c, conn)| {
                tokio::spawn(conn);
                c
            }),
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => return refused(pg_error(&e)),
        };
        // Streamed, so the caps bound memory: reading stops at the first
        // one reached (and the session with it), and at QUERY_TIME.
        let limit = max_rows.unwrap_or(ROWS).min(MAX_ROWS);
        let mut columns: Vec<String> = Vec::new();
        let mut rows: Vec<Value> = Vec::new();
        let (mut bytes, mut cut, mut affected) = (0usize, false, None);
        let read = async {
            let stream = client.simple_query_raw(sql).await?;
            futures::pin_mut!(stream);
            while let Some(m) = stream.next().await {
                match m? {
                    tokio_postgres::SimpleQueryMessage::RowDescription(d) => {
                        columns = d.iter().map(|c| c.name().to_string()).collect();
                    }
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        if columns.is_empty() {
                            columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                        }
                        let values: Vec<Value> = (0..r.len())
                            .map(|i| r.get(i).map_or(Value::Null, Value::from))
                            .collect();
                        bytes += values.iter().map(|v| v.to_string().len()).sum::<usize>();
                        if rows.len() >= limit || bytes > MAX_BYTES {
                            cut = true;
                            break;
                        }
                        rows.push(Value::Array(values));
                    }
                    tokio_postgres::SimpleQueryMessage::CommandComplete(n) => affected = Some(n),
                    _ => {}
                }
            }
            Ok::<(), tokio_postgres::Error>(())
        };
        match tokio::time::timeout(QUERY_TIME, read).await {
            Err(_) => {
                return refused(json!({
                    "error": "timeout",
                    "message": format!(
                        "no answer within {}s: the statement ran too long, or waited for a human's approval (rules with hold = \"fail\" answer at once with the approval id); narrow it, or try again later",
                        QUERY_TIME.as_secs()
                    ),
                }));
            }
            Ok(Err(e)) => return refused(pg_error(&e)),
            Ok(Ok(())) => {}
        }
        drop(client);
        let mut out = json!({ "columns": columns, "rows": rows });
        if let Some(n) = affected {
            out["rows_affected"] = n.into();
        }
        if cut {
            out["note"] = format!(
                "cut at {} rows (max_rows {limit}, at most {MAX_BYTES} bytes); more followed: narrow the query or page it",
                rows.len()
            )
            .into();
        }
        text(out)
    }
}

/// The token of an `Authorization: Bearer` value (the scheme is
/// case-insensitive, as on the API).
fn bearer_of(v: &str) -> Option<&str> {
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A database error as a tool result a model can act on.
fn pg_error(e: &tokio_postgres::Error) -> Value {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let kind = match code {
                "42501" => "denied",
                "28000" | "28P01" => "unauthorized",
                _ => "database_error",
            };
            json!({
                "error": kind,
                "sqlstate": code,
                "message": db.message(),
                "detail": db.detail(),
                "hint": db.hint(),
            })
        }
        None => json!({"error": "unavailable", "message": e.to_string()}),
    }
}

fn first_json(r: &CallToolResult) -> Option<Value> {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .and_then(|t| serde_json::from_str(&t.text).ok())
}

/// A path segment: ids are ASCII letters, digits and `_`; anything else is
/// dropped so a tool argument cannot change the path.
fn segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

fn loopback(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some((h, p)) => format!("http://{}:{p}", loopback_host(h)),
        None => format!("http://{listen}"),
    }
}

fn loopback_host(h: &str) -> String {
    match h {
        "0.0.0.0" | "" => "127.0.0.1".into(),
        "[::]" | "[::1]" => "::1".into(),
        other => other.to_string(),
    }
}
