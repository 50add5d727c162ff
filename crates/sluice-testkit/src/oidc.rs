//! A real OpenID provider (npm `oidc-provider`, pinned in
//! `tests/fixtures/oidc`) for tests, one per test on an ephemeral port.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
//! let idp = OidcProvider::start(OidcOptions {
//!     clients: vec![OidcClient::new("agent-1", &["db-readers"])],
//!     ..OidcOptions::default()
//! })
//! .await?;
//! let token = idp.client_credentials_token("agent-1", &OidcClient::secret_for("agent-1"), idp.audience()).await?;
//! # Ok(()) }
//! ```
//!
//! The provider signs RS256 JWT access tokens with `sub` = `client_id` = the
//! client, `groups` from the client, and `aud` = the requested resource.

use anyhow::{Context, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a provider may take to answer its discovery document.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Each start picks a new port when the chosen one was taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// A client registered with the provider (client credentials grant).
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// Copied into every token's `groups` claim.
    pub groups: Vec<String>,
    /// Access token lifetime in seconds.
    pub token_ttl: u64,
    /// How it authenticates at the token endpoint (`client_secret_basic`
    /// unless set).
    pub auth_method: String,
    /// For `private_key_jwt`: the client's public keys (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// A public client of the device authorization grant (with refresh
    /// tokens) instead of a client credentials one.
    pub device: bool,
}

impl OidcClient {
    /// A client with the secret [`OidcClient::secret_for`] and a 600 s token lifetime.
    pub fn new(client_id: &str, groups: &[&str]) -> Self {
        OidcClient {
            client_id: client_id.to_owned(),
            client_secret: Self::secret_for(client_id),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            token_ttl: 600,
            auth_method: "client_secret_basic".into(),
            jwks: None,
            device: false,
        }
    }

    /// A public client for people signing in by the device flow; its
    /// tokens carry the user's groups ([`OidcOptions::users`]).
    pub fn device(client_id: &str) -> Self {
        OidcClient {
            device: true,
            auth_method: "none".into(),
            ..Self::new(client_id, &[])
        }
    }

    /// The same client authenticating with `private_key_jwt`, by the keys
    /// of `jwks` (a JWK Set of public keys).
    pub fn private_key_jwt(mut self, jwks: serde_json::Value) -> Self {
        self.auth_method = "private_key_jwt".into();
        self.jwks = Some(jwks);
        self
    }

    /// The same client authenticating with `method` (`client_secret_post`).
    pub fn auth_method(mut self, method: &str) -> Self {
        self.auth_method = method.into();
        self
    }

    /// The same client with another token lifetime.
    pub fn ttl(mut self, secs: u64) -> Self {
        self.token_ttl = secs;
        self
    }

    /// The deterministic test secret of `client_id`.
    pub fn secret_for(client_id: &str) -> String {
        format!("{client_id}-secret-0123456789abcdef0123456789abcdef")
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    pub clients: Vec<OidcClient>,
    /// The default resource, and so the `aud` of tokens that ask for none.
    pub audience: String,
    /// People who may sign in by the device flow: login and groups.
    pub users: Vec<(String, Vec<String>)>,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            clients: vec![],
            audience: "https://sluice.test".into(),
            users: vec![],
        }
    }
}

/// A running provider. Killed on drop.
pub struct OidcProvider {
    opts: OidcOptions,
    port: u16,
    issuer: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Writes the clients file, starts `node server.mjs` on a free port and
    /// waits until the discovery document answers. Fails (never skips) when
    /// node or the fixture's node_modules are missing.
    pub async fn start(opts: OidcOptions) -> anyhow::Result<Self> {
        let fixture = fixture_dir()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("build an HTTP client")?;
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = crate::ports::free_port();
            let mut p = OidcProvider {
                opts: opts.clone(),
                port,
                issuer: format!("http://127.0.0.1:{port}"),
                dir: tempfile::tempdir().context("create a temp dir for the OIDC provider")?,
                child: None,
                http: http.clone(),
            };
            match p.spawn(&fixture).await {
                Ok(()) => return Ok(p),
                // Most likely another test took the port meanwhile.
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("the OIDC provider did not start")))
    }

    /// The issuer URL (`iss` of every token), `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The default audience (`aud` when a token asks for no other resource).
    pub fn audience(&self) -> &str {
        &self.opts.audience
    }

    /// The `kid` of the current signing key, read from the provider's key file.
    pub fn kid(&self) -> anyhow::Result<String> {
        let jwks: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.jwks_file()).context("read the provider's JWKS file")?,
        )?;
        jwks["keys"][0]["kid"]
            .as_str()
            .map(str::to_owned)
            .context("the provider's JWKS file has no kid")
    }

    /// An access token by the client credentials grant, for `resource` (its `aud`).
    pub async fn client_credentials_token(
        &self,
        client_id: &str,
        client_secret: &str,
        resource: &str,
    ) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials"), ("resource", resource)])
            .send()
            .await
            .context("POST /token to the OIDC provider")?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.context("token response is not JSON")?;
        if !status.is_success() {
            bail!("the OIDC provider refused the token request ({status}): {body}");
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("token response without access_token")
    }

    /// Plays the person of a device flow: opens `verification_uri_complete`
    /// in a fresh browser (a cookie jar), confirms the code, signs in as
    /// `login` and consents, through the provider's own pages and forms.
    /// With `login` None the person refuses (the confirmation page's abort).
    pub async fn sign_in_on_device(
        &self,
        verification_uri_complete: &str,
        login: Option<&str>,
    ) -> anyhow::Result<()> {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(10))
            .build()?;
        // The code page, its confirmation, the sign-in form, the consent form.
        let mut page = browser
            .get(verification_uri_complete)
            .send()
            .await?
            .text()
            .await?;
        for step in ["code", "confirm", "login", "consent"] {
            let (action, mut fields) =
                html_form(&page).with_context(|| format!("no form on the {step} page: {page}"))?;
            match step {
                "code" if !fields.iter().any(|(k, _)| k == "user_code") => {
                    let code = verification_uri_complete
                        .split("user_code=")
                        .nth(1)
                        .context("the URI has no user_code")?;
                    fields.push(("user_code".into(), code.into()));
                }
                "confirm" if login.is_none() => {
                    fields.retain(|(k, _)| k != "confirm");
                    fields.push(("abort".into(), "yes".into()));
                }
                "login" => {
                    fields.push(("login".into(), login.unwrap_or_default().into()));
                    fields.push(("password".into(), "any".into()));
                }
                _ => {}
            }
            let url = reqwest::Url::parse(verification_uri_complete)?.join(&action)?;
            page = browser.post(url).form(&fields).send().await?.text().await?;
            if step == "confirm" && login.is_none() {
                return Ok(());
            }
        }
        if !page.contains("Sign-in Success") {
            bail!("the device sign-in did not succeed: {page}");
        }
        Ok(())
    }

    /// How many discovery and JWKS requests the provider served since it
    /// last (re)started, not counting the harness's readiness probes:
    /// `(discovery, jwks)`.
    pub async fn fetch_counts(&self) -> anyhow::Result<(u64, u64)> {
        let stats: serde_json::Value = self
            .http
            .get(format!("{}/__sluice/stats", self.issuer))
            .send()
            .await?
            .json()
            .await?;
        Ok((
            stats["discovery"].as_u64().context("stats.discovery")?,
            stats["jwks"].as_u64().context("stats.jwks")?,
        ))
    }

    /// Stops the provider and starts it again on the same port with a fresh
    /// signing key (and so a new `kid`).
    pub async fn restart_with_new_key(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        match std::fs::remove_file(self.jwks_file()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("remove the provider's JWKS file"),
        }
        let fixture = fixture_dir()?;
        // The port may linger briefly after the old process exits.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn(&fixture).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("oidc-provider restart failed, retrying: {e:#}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Stops the provider (the port then refuses connections). Idempotent.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    fn jwks_file(&self) -> PathBuf {
        self.dir.path().join("jwks.json")
    }

    async fn spawn(&mut self, fixture: &Path) -> anyhow::Result<()> {
        let clients: Vec<serde_json::Value> = self
            .opts
            .clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "groups": c.groups,
                    "token_ttl": c.token_ttl,
                    "auth_method": c.auth_method,
                    "jwks": c.jwks,
                    "device": c.device,
                })
            })
            .collect();
        let users: serde_json::Map<String, serde_json::Value> = self
            .opts
            .users
            .iter()
            .map(|(login, groups)| (login.clone(), json!(groups)))
            .collect();
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(fixture)
            .env("PORT", self.port.to_string())
            .env("ISSUER", &self.issuer)
            .env("JWKS_FILE", self.jwks_file())
            .env("CLIENTS", serde_json::to_string(&clients)?)
            .env("AUDIENCE", &self.opts.audience)
            .env("USERS", serde_json::to_string(&users)?)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context(
                "run `node` for the test OIDC provider (is Node.js installed? run scripts/deps.sh)",
            )?;
        forward_output(&mut child, self.port);
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Ready when the discovery document names our issuer.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("the OIDC provider exited early ({status}); see its output above");
            }
            // Marked as a probe so the provider leaves it out of fetch_counts.
            if let Ok(resp) = self
                .http
                .get(&url)
                .header("x-sluice-probe", "1")
                .send()
                .await
                && resp.status().is_success()
                && let Ok(doc) = resp.json::<serde_json::Value>().await
                && doc["issuer"] == self.issuer.as_str()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop().await;
                bail!("the OIDC provider did not answer {url} within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
        }
    }
}

/// Copies the provider's output into the test's (captured) output.
fn forward_output(child: &mut Child, port: u16) {
    if let Some(out) = child.stdout.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[oidc-provider :{port}] {line}");
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[oidc-provider :{port}] {line}");
            }
        });
    }
}

/// `tests/fixtures/oidc`, checked to have its node_modules installed.
fn fixture_dir() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/oidc");
    if !dir.join("server.mjs").is_file() {
        bail!("the OIDC provider fixture is missing at {}", dir.display());
    }
    if !dir.join("node_modules/oidc-provider").is_dir() {
        bail!(
            "the test OIDC provider's npm packages are not installed in {}: run `make test` or `scripts/deps.sh` (it runs `npm ci` there)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The first form of an HTML page: its action and hidden fields (the
/// provider's pages are plain, generated HTML).
fn html_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &page[page.find("<form")?..];
    let action = attr(&form[..form.find('>')?], "action")?;
    let body = &form[..form.find("</form>")?];
    let fields = body
        .split("<input")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            (attr(tag, "type")? == "hidden")
                .then(|| Some((attr(tag, "name")?, attr(tag, "value")?)))?
        })
        .collect();
    Some((action, fields))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_string())
}
