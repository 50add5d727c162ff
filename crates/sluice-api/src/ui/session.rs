//! Sign-in state of the web page, kept in the store: sessions (a random id
//! in an `HttpOnly` cookie, mapped to the verified identity and a CSRF
//! token) and sign-ins in flight (PKCE verifier, `state`, `nonce`).
//!
//! In the store so that several gateways behind one address serve any
//! approver without sticky sessions, and a restart signs nobody out. Ids
//! are stored as SHA-256 hashes, so the table never holds a usable cookie
//! value; a sign-in is taken once (a delete that returns it), so two
//! gateways cannot both finish it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::Identity;
use sluice_store::Store;
use subtle::ConstantTimeEq;

/// Signed-in approvers kept at once; the ones closest to expiry make room.
const MAX_SESSIONS: i64 = 10_000;
/// Sign-ins in flight at once.
const MAX_LOGINS: i64 = 10_000;
/// Inserts between two trims of the table.
const TRIM_EVERY: u64 = 64;
/// Time an approver has at the IdP before the sign-in is forgotten.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);

const SESSION: &str = "session";
const LOGIN: &str = "login";

/// One signed-in approver.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    pub identity: Identity,
    /// The synchronizer token every form posts back.
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

/// A sign-in between the redirect to the IdP and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Login {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after signing in (a checked `/ui…` path).
    pub next: String,
    pub expires: DateTime<Utc>,
}

/// Sessions and sign-ins, in the store.
pub(crate) struct Sessions {
    store: Store,
    inserts: AtomicU64,
}

impl Sessions {
    pub fn new(store: Store) -> Self {
        Sessions {
            store,
            inserts: AtomicU64::new(0),
        }
    }

    /// Opens a session for a verified identity; returns the cookie value.
    pub async fn open(&self, identity: Identity, lifetime: Duration) -> Option<String> {
        let s = Session {
            identity,
            csrf: random_id(),
            expires: sluice_core::clock::now() + chrono::Duration::from_std(lifetime).ok()?,
        };
        self.insert(SESSION, &s, s.expires, MAX_SESSIONS).await
    }

    /// The live session of cookie value `id`.
    pub async fn get(&self, id: &str) -> Option<Session> {
        let body = self
            .store
            .get_ui(&key(id), SESSION, sluice_core::clock::now())
            .await;
        let body = body
            .inspect_err(|e| tracing::error!(error = %e, "reading a web session"))
            .ok()??;
        serde_json::from_str(&body).ok()
    }

    pub async fn close(&self, id: &str) {
        if let Err(e) = self.store.delete_ui(&key(id)).await {
            tracing::error!(error = %e, "closing a web session");
        }
    }

    /// Remembers a sign-in in flight; returns the login cookie value.
    pub async fn begin(&self, login: Login) -> Option<String> {
        self.insert(LOGIN, &login, login.expires, MAX_LOGINS).await
    }

    /// The sign-in of this login cookie, once.
    pub async fn finish(&self, id: &str) -> Option<Login> {
        let body = self
            .store
            .take_ui(&key(id), LOGIN, sluice_core::clock::now())
            .await;
        let body = body
            .inspect_err(|e| tracing::error!(error = %e, "finishing a sign-in"))
            .ok()??;
        serde_json::from_str(&body).ok()
    }

    /// Stores `row` under a fresh id; `None` when the store failed.
    async fn insert<T: Serialize>(
        &self,
        kind: &str,
        row: &T,
        expires: DateTime<Utc>,
        max: i64,
    ) -> Option<String> {
        if self
            .inserts
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(TRIM_EVERY)
        {
            let _ = self
                .store
                .trim_ui(kind, max, sluice_core::clock::now())
                .await;
        }
        let id = random_id();
        let body = serde_json::to_string(row).ok()?;
        match self.store.put_ui(&key(&id), kind, &body, expires).await {
            Ok(()) => Some(id),
            Err(e) => {
                tracing::error!(error = %e, "storing a web session");
                None
            }
        }
    }
}

/// 256 random bits, base64url.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The stored key of cookie value `id`.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Constant-time comparison of two secrets.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The cookie names and flags of one gateway.
#[derive(Debug, Clone)]
pub(crate) struct Cookies {
    pub secure: bool,
    pub session: &'static str,
    pub login: &'static str,
}

impl Cookies {
    pub fn new(secure: bool) -> Self {
        // `__Host-`: the browser accepts it only with Secure, Path=/ and no
        // Domain, so no sibling subdomain can plant or shadow it.
        if secure {
            Cookies {
                secure,
                session: "__Host-sluice-session",
                login: "__Host-sluice-login",
            }
        } else {
            Cookies {
                secure,
                session: "sluice-session",
                login: "sluice-login",
            }
        }
    }

    /// A `Set-Cookie` value. `Lax`: the IdP's redirect back and links from
    /// chat messages are top-level GETs from another site, and must carry
    /// the cookie; every POST is guarded by a CSRF token and `Origin`.
    pub fn set(&self, name: &str, value: &str, max_age: Duration) -> String {
        format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            max_age.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    pub fn clear(&self, name: &str) -> String {
        self.set(name, "", Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::IdentityKind;

    fn who() -> Identity {
        Identity {
            subject: "dba-1".into(),
            issuer: "i".into(),
            name: "dba-1".into(),
            groups: vec!["dba".into()],
            kind: IdentityKind::Human,
        }
    }

    async fn sessions() -> (Sessions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        (Sessions::new(Store::open(&url).await.unwrap()), dir)
    }

    #[tokio::test]
    async fn sessions_expire_and_close() {
        let (s, _dir) = sessions().await;
        let id = s.open(who(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get(&id).await.unwrap().identity.subject, "dba-1");
        assert!(s.get("not-a-session").await.is_none());
        s.close(&id).await;
        assert!(s.get(&id).await.is_none());
        let gone = s.open(who(), Duration::ZERO).await.unwrap();
        assert!(
            s.get(&gone).await.is_none(),
            "expired sessions are not found"
        );
    }

    #[tokio::test]
    async fn logins_are_single_use_and_kinds_do_not_mix() {
        let (s, _dir) = sessions().await;
        let id = s
            .begin(Login {
                state: "st".into(),
                nonce: "n".into(),
                verifier: "v".into(),
                next: "/ui".into(),
                expires: sluice_core::clock::now() + chrono::Duration::minutes(10),
            })
            .await
            .unwrap();
        assert!(s.get(&id).await.is_none(), "a login cookie is no session");
        assert_eq!(s.finish(&id).await.unwrap().state, "st");
        assert!(s.finish(&id).await.is_none());
    }

    #[tokio::test]
    async fn the_table_is_bounded() {
        let (s, _dir) = sessions().await;
        let mut ids = vec![];
        for i in 0..5 {
            ids.push(s.open(who(), Duration::from_secs(100 + i)).await.unwrap());
        }
        s.store
            .trim_ui(SESSION, 3, sluice_core::clock::now())
            .await
            .unwrap();
        assert!(
            s.get(&ids[0]).await.is_none(),
            "the closest to expiry made room"
        );
        assert!(s.get(&ids[1]).await.is_none());
        assert!(s.get(&ids[4]).await.is_some());
        assert!(s.get(&ids[2]).await.is_some());
    }

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; sluice-session=abc ; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "sluice-session"), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let c = Cookies::new(true);
        assert_eq!(
            c.set(c.session, "x", Duration::from_secs(5)),
            "__Host-sluice-session=x; Path=/; HttpOnly; SameSite=Lax; Max-Age=5; Secure"
        );
        assert!(
            !Cookies::new(false)
                .set("n", "v", Duration::ZERO)
                .contains("Secure")
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""));
    }
}
