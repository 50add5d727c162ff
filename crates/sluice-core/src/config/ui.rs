//! The approvers' web page (`[ui]`): sign-in with the organisation's IdP
//! (OIDC authorization code flow with PKCE) and the session it opens.

use super::Config;
use super::duration::Dur;
use super::locate::Seg::{self, Key};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[ui]`: without this section `/ui` answers that the page is not set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// The `[[issuers]]` name approvers sign in with; its discovery
    /// document names the authorization and token endpoints, and the ID
    /// token is verified with its keys.
    pub issuer: String,
    /// The OIDC client registered for the web page. ID tokens must carry it
    /// as their audience.
    pub client_id: String,
    /// Environment variable holding the client secret (confidential
    /// clients). Leave both secret keys unset for a public client: PKCE
    /// protects the code exchange either way.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (trailing newline ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Where the IdP sends approvers back. Default
    /// `{server.public_url}/ui/callback`; register it with the IdP.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Scopes asked for. Default ["openid", "profile", "email"]; add the
    /// one your IdP needs to put groups in ID tokens (often "groups").
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Mark the session cookie `Secure` (and name it `__Host-…`). Default
    /// true; false is accepted only when `server.public_url` is loopback
    /// (the local playground over plain http).
    #[serde(default = "yes")]
    pub cookie_secure: bool,
    /// How long a sign-in lasts. Default "8h"; between 5m and 24h.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime: Dur,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn yes() -> bool {
    true
}
fn default_session_lifetime() -> Dur {
    Dur::secs(8 * 3600)
}

impl UiConfig {
    /// A config for `client_id` at `issuer` with every default.
    pub fn new(issuer: &str, client_id: &str) -> Self {
        UiConfig {
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret_env: None,
            client_secret_file: None,
            redirect_url: None,
            scopes: default_scopes(),
            cookie_secure: true,
            session_lifetime: default_session_lifetime(),
        }
    }

    /// The redirect URL registered with the IdP.
    pub fn redirect_url(&self, config: &Config) -> String {
        match &self.redirect_url {
            Some(u) => u.clone(),
            None => format!("{}/ui/callback", config.server.public_url()),
        }
    }

    /// The client secret, if the client is confidential.
    pub fn client_secret(&self) -> Result<Option<super::Password>, String> {
        super::resolve_password(
            self.client_secret_env.as_deref(),
            self.client_secret_file.as_deref(),
        )
        .map_err(|e| e.replace("password", "client secret"))
    }
}

/// Every problem of the `[ui]` section, with its key path.
pub(super) fn problems(c: &Config) -> Vec<(Vec<Seg>, String)> {
    let mut p = Vec::new();
    let Some(ui) = &c.ui else { return p };
    let mut at = |k: &'static str, m: &str| p.push((vec![Key("ui"), Key(k)], m.to_string()));
    if !c.issuers.iter().any(|i| i.name == ui.issuer) {
        let known: Vec<&str> = c.issuers.iter().map(|i| i.name.as_str()).collect();
        at(
            "issuer",
            &format!(
                "no [[issuers]] entry named {:?} (defined: {})",
                ui.issuer,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ),
        );
    }
    if ui.client_id.trim().is_empty() {
        at("client_id", "must not be empty");
    }
    if ui.client_secret_env.is_some() && ui.client_secret_file.is_some() {
        at(
            "client_secret_file",
            "set client_secret_env or client_secret_file, not both",
        );
    }
    if !ui.scopes.iter().any(|s| s == "openid") {
        at("scopes", "must include \"openid\"");
    }
    let public = c.server.public_url();
    let redirect = ui.redirect_url(c);
    match scheme(&redirect) {
        Some("https") => {}
        Some("http") if is_loopback(&redirect) => {}
        _ => at(
            if ui.redirect_url.is_some() {
                "redirect_url"
            } else {
                "issuer"
            },
            &format!(
                "the sign-in redirect {redirect:?} must be an https URL (plain http only for \
                 127.0.0.1/localhost): set server.public_url or ui.redirect_url"
            ),
        ),
    }
    if !ui.cookie_secure && !is_loopback(&public) {
        at(
            "cookie_secure",
            "false is allowed only when server.public_url is a loopback address (the playground)",
        );
    }
    if ui.cookie_secure && scheme(&public) == Some("http") && !is_loopback(&public) {
        at(
            "cookie_secure",
            "a Secure cookie needs an https server.public_url",
        );
    }
    let life = ui.session_lifetime.0;
    if life < Duration::from_secs(300) || life > Duration::from_secs(24 * 3600) {
        at("session_lifetime", "must be between 5m and 24h");
    }
    p
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

/// True for URLs whose host is 127.0.0.1, localhost or [::1].
pub(super) fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    if rest.starts_with("[::1]") {
        return true;
    }
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
    host == "127.0.0.1" || host == "localhost"
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = r#"
[[issuers]]
name = "okta"
issuer = "https://example.okta.com"
audiences = ["api://sluice"]
"#;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{BASE}{extra}"), "s.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_redirect() {
        let c = parse("[server]\npublic_url = \"https://sluice.example\"\n[ui]\nissuer = \"okta\"\nclient_id = \"sluice-ui\"\n").unwrap();
        let ui = c.ui.as_ref().unwrap();
        assert!(ui.cookie_secure);
        assert_eq!(ui.session_lifetime.0.as_secs(), 8 * 3600);
        assert_eq!(ui.redirect_url(&c), "https://sluice.example/ui/callback");
        assert_eq!(ui.client_secret().unwrap(), None);
    }

    #[test]
    fn problems_point_at_their_keys() {
        let e = parse(
            "[server]\npublic_url = \"https://sluice.example\"\n[ui]\nissuer = \"entra\"\nclient_id = \"\"\n\
             client_secret_env = \"A\"\nclient_secret_file = \"/x\"\ncookie_secure = false\n\
             session_lifetime = \"1m\"\nscopes = [\"profile\"]\n",
        )
        .unwrap_err();
        for needle in [
            "ui.issuer: no [[issuers]] entry named \"entra\" (defined: okta)",
            "ui.client_id: must not be empty",
            "ui.client_secret_file: set client_secret_env or client_secret_file, not both",
            "ui.cookie_secure: false is allowed only when",
            "ui.session_lifetime: must be between 5m and 24h",
            "ui.scopes: must include \"openid\"",
        ] {
            assert!(e.contains(needle), "{needle} missing from:\n{e}");
        }
        // Plain http outside loopback cannot carry a session.
        let e = parse("[server]\npublic_url = \"http://sluice.example\"\n[ui]\nissuer = \"okta\"\nclient_id = \"c\"\n")
            .unwrap_err();
        assert!(e.contains("must be an https URL"), "{e}");
        // The playground: loopback over http, cookie not Secure.
        parse("[ui]\nissuer = \"okta\"\nclient_id = \"c\"\ncookie_secure = false\n").unwrap();
    }

    #[test]
    fn unknown_ui_keys_are_refused() {
        let e = parse("[ui]\nissuer = \"okta\"\nclient_id = \"c\"\nclient_secret = \"inline\"\n")
            .unwrap_err();
        assert!(e.contains("unknown field `client_secret`"), "{e}");
    }
}
