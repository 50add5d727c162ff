//! Sign-in with the organisation's IdP: the OIDC authorization code flow
//! with PKCE (S256), `state` and `nonce`. The ID token is verified by the
//! gateway's own `Verifier` (keys, algorithm allow-list, issuer, times),
//! with the web page's client id as audience and the sign-in's nonce.

use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_core::audit::{AuditEvent, EventKind};

use super::session::{LOGIN_TTL, Login, random_id, same_secret};
use super::{Ui, UiRef, pages, redirect};

/// Token responses larger than this are refused.
const MAX_TOKEN_RESPONSE: usize = 256 * 1024;
/// Discovery is re-read this often.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The IdP endpoints the flow needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Endpoints {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

impl Ui {
    /// The IdP's endpoints from its discovery document (cached).
    async fn endpoints(&self) -> Result<Endpoints, String> {
        let mut cached = self.endpoints.lock().await;
        if let Some((e, at)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(e.clone());
        }
        let url = self.issuer.discovery_url();
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("discovery {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("discovery {url}: HTTP {}", resp.status()));
        }
        let e: Endpoints = resp
            .json()
            .await
            .map_err(|e| format!("discovery {url}: {e}"))?;
        if e.issuer != self.issuer.issuer {
            return Err(format!(
                "discovery {url} names issuer {:?}, configured {:?}",
                e.issuer, self.issuer.issuer
            ));
        }
        for u in [&e.authorization_endpoint, &e.token_endpoint] {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(format!("discovery {url}: endpoint {u:?} is not http(s)"));
            }
        }
        *cached = Some((e.clone(), Instant::now()));
        Ok(e)
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Only paths of this web page may be returned to after signing in.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/ui" || n.starts_with("/ui/"))
                && n.len() <= 200
                && !n.contains("//")
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-.?=&".contains(&b)) =>
        {
            n.to_string()
        }
        _ => "/ui".to_string(),
    }
}

/// `GET /ui/login`: off to the IdP.
pub(crate) async fn login(State(ui): State<UiRef>, Query(q): Query<LoginQuery>) -> Response {
    let endpoints = match ui.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the sign-in issuer's discovery document");
            return pages::message(
                &ui,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "The identity provider could not be reached. Try again shortly.",
            );
        }
    };
    let verifier = random_id();
    let login = Login {
        state: random_id(),
        nonce: random_id(),
        verifier: verifier.clone(),
        next: safe_next(q.next.as_deref()),
        expires: sluice_core::clock::now() + chrono::Duration::seconds(LOGIN_TTL.as_secs() as i64),
    };
    let Ok(mut to) = url::Url::parse(&endpoints.authorization_endpoint) else {
        return pages::message(
            &ui,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in unavailable",
            "The identity provider's authorization endpoint is not a URL.",
        );
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &ui.cfg.client_id)
        .append_pair("redirect_uri", &ui.redirect_url)
        .append_pair("scope", &ui.cfg.scopes.join(" "))
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let Some(id) = ui.sessions.begin(login).await else {
        return store_down(&ui);
    };
    let mut resp = redirect(to.as_str());
    resp.headers_mut().append(
        header::SET_COOKIE,
        ui.cookies
            .set(ui.cookies.login, &id, LOGIN_TTL)
            .parse()
            .expect("cookie header"),
    );
    resp
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /ui/callback`: the IdP sends the browser back with a code.
pub(crate) async fn callback(
    State(ui): State<UiRef>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let login = match super::session::cookie(&headers, ui.cookies.login) {
        Some(id) => ui.sessions.finish(id).await,
        None => None,
    };
    let clear_login = ui.cookies.clear(ui.cookies.login);
    let fail = |status, text: &str| {
        let mut r = pages::message(&ui, status, "Sign-in failed", text);
        r.headers_mut()
            .append(header::SET_COOKIE, clear_login.parse().expect("cookie"));
        r
    };
    if let Some(e) = &q.error {
        let e: String = e.chars().take(100).collect();
        return fail(
            StatusCode::BAD_REQUEST,
            &format!("The identity provider refused the sign-in ({e})."),
        );
    }
    let Some(login) = login else {
        return fail(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, or took too long. Start again.",
        );
    };
    let (Some(code), Some(state)) = (q.code.as_deref(), q.state.as_deref()) else {
        return fail(StatusCode::BAD_REQUEST, "The callback lacks code or state.");
    };
    if !same_secret(state, &login.state) {
        return fail(
            StatusCode::BAD_REQUEST,
            "The sign-in's state does not match. Start again.",
        );
    }
    let id_token = match ui.exchange(code, &login.verifier).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "code exchange failed");
            return fail(
                StatusCode::BAD_GATEWAY,
                "The identity provider did not accept the sign-in code. Start again.",
            );
        }
    };
    let who = match ui
        .app
        .verifier
        .verify_id_token(&id_token, &ui.cfg.issuer, &ui.cfg.client_id, &login.nonce)
        .await
    {
        Ok(who) => who,
        Err(rejection) => {
            let event = AuditEvent::new(EventKind::TokenRejected).detail(json!({
                "reason": rejection.reason(),
                "message": rejection.to_string(),
                "surface": "ui",
            }));
            let _ = ui.app.audit.append(event).await;
            return fail(
                StatusCode::UNAUTHORIZED,
                &format!("The identity token was refused: {rejection}"),
            );
        }
    };
    if who.in_any(&ui.app.config.approvals.approver_groups) {
        tracing::info!(subject = %who.subject, name = %who.name, "approver signed in to the web page");
    } else {
        // Not refused (the page tells them so), but an operator should see
        // who tried: a misconfigured group claim looks just like this.
        tracing::info!(
            subject = %who.subject,
            name = %who.name,
            groups = ?who.groups,
            "signed in to the web page, but not in any approver group: can see nothing to decide"
        );
    }
    let Some(session) = ui.sessions.open(who, ui.cfg.session_lifetime.0).await else {
        return store_down(&ui);
    };
    let mut resp = redirect(&login.next);
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, clear_login.parse().expect("cookie"));
    h.append(
        header::SET_COOKIE,
        ui.cookies
            .set(ui.cookies.session, &session, ui.cfg.session_lifetime.0)
            .parse()
            .expect("cookie"),
    );
    resp
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

impl Ui {
    /// Trades the code (and the PKCE verifier) for tokens; returns the ID token.
    async fn exchange(&self, code: &str, verifier: &str) -> Result<String, String> {
        let endpoints = self.endpoints().await?;
        let mut req = self.http.post(&endpoints.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_url),
            ("client_id", &self.cfg.client_id),
            ("code_verifier", verifier),
        ]);
        match self.cfg.client_secret() {
            Ok(Some(secret)) => {
                // client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1).
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(&self.cfg.client_id), Some(enc(secret.expose())));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("client secret: {e}")),
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                return Err("token response too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(format!(
                "token endpoint answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| format!("token response: {e}"))?;
        t.id_token
            .ok_or_else(|| "token response has no id_token".into())
    }
}

/// `POST /ui/logout` (CSRF-checked by the caller).
pub(crate) async fn logout(ui: &Ui, session_id: &str) -> Response {
    ui.sessions.close(session_id).await;
    let mut resp = redirect("/ui/signed-out");
    resp.headers_mut().append(
        header::SET_COOKIE,
        ui.cookies
            .clear(ui.cookies.session)
            .parse()
            .expect("cookie"),
    );
    resp.into_response()
}

/// The page for a sign-in the store could not record.
fn store_down(ui: &Ui) -> Response {
    pages::message(
        ui,
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "The gateway's store could not be reached. Try again shortly.",
    )
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_our_own_pages_are_returned_to() {
        assert_eq!(safe_next(Some("/ui/approvals/a_1")), "/ui/approvals/a_1");
        assert_eq!(safe_next(Some("/ui")), "/ui");
        for bad in [
            "https://evil.example/ui",
            "//evil.example/ui",
            "/ui//evil",
            "/uix",
            "/v1/grants",
            "/ui/\\evil",
            "/ui/<x>",
        ] {
            assert_eq!(safe_next(Some(bad)), "/ui", "{bad}");
        }
        assert_eq!(safe_next(None), "/ui");
    }
}
