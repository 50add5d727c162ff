//! Sign-in state of the web page, kept in memory: sessions (a random id in
//! an `HttpOnly` cookie, mapped to the verified identity and a CSRF token)
//! and sign-ins in flight (PKCE verifier, `state`, `nonce`).
//!
//! In memory on purpose: a restart signs approvers out, and with several
//! gateways behind one address the load balancer must keep an approver on
//! one instance (or they sign in again). Ids are stored as SHA-256 hashes,
//! so the table never holds a usable cookie value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_core::Identity;
use subtle::ConstantTimeEq;

/// Signed-in approvers kept at once; the ones closest to expiry make room.
const MAX_SESSIONS: usize = 10_000;
/// Sign-ins in flight at once.
const MAX_LOGINS: usize = 10_000;
/// Time an approver has at the IdP before the sign-in is forgotten.
pub(crate) const LOGIN_TTL: Duration = Duration::from_secs(600);

/// One signed-in approver.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub identity: Identity,
    /// The synchronizer token every form posts back.
    pub csrf: String,
    pub expires: Instant,
}

/// A sign-in between the redirect to the IdP and the callback.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after signing in (a checked `/ui…` path).
    pub next: String,
    pub expires: Instant,
}

pub(crate) struct Table<T> {
    rows: Mutex<HashMap<[u8; 32], T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: Mutex::new(HashMap::new()),
        }
    }
}

trait Expiring {
    fn expires(&self) -> Instant;
}
impl Expiring for Session {
    fn expires(&self) -> Instant {
        self.expires
    }
}
impl Expiring for Login {
    fn expires(&self) -> Instant {
        self.expires
    }
}

#[allow(private_bounds)]
impl<T: Expiring + Clone> Table<T> {
    /// Stores `row` under a fresh random id and returns the id.
    fn insert(&self, row: T, max: usize) -> String {
        let id = random_id();
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if rows.len() >= max {
            rows.retain(|_, r| r.expires() > now);
        }
        while rows.len() >= max {
            let Some(k) = rows
                .iter()
                .min_by_key(|(_, r)| r.expires())
                .map(|(k, _)| *k)
            else {
                break;
            };
            rows.remove(&k);
        }
        rows.insert(hash(&id), row);
        id
    }

    fn get(&self, id: &str) -> Option<T> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let key = hash(id);
        match rows.get(&key) {
            Some(r) if r.expires() > Instant::now() => Some(r.clone()),
            Some(_) => {
                rows.remove(&key);
                None
            }
            None => None,
        }
    }

    fn take(&self, id: &str) -> Option<T> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.remove(&hash(id))
            .filter(|r| r.expires() > Instant::now())
    }
}

/// Sessions and sign-ins of one gateway.
#[derive(Default)]
pub(crate) struct Sessions {
    sessions: Table<Session>,
    logins: Table<Login>,
}

impl Sessions {
    /// Opens a session for a verified identity; returns the cookie value.
    pub fn open(&self, identity: Identity, lifetime: Duration) -> String {
        let s = Session {
            identity,
            csrf: random_id(),
            expires: Instant::now() + lifetime,
        };
        self.sessions.insert(s, MAX_SESSIONS)
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        self.sessions.get(id)
    }

    pub fn close(&self, id: &str) {
        self.sessions.take(id);
    }

    /// Remembers a sign-in in flight; returns the login cookie value.
    pub fn begin(&self, login: Login) -> String {
        self.logins.insert(login, MAX_LOGINS)
    }

    /// The sign-in of this login cookie, once.
    pub fn finish(&self, id: &str) -> Option<Login> {
        self.logins.take(id)
    }
}

/// 256 random bits, base64url.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
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

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::default();
        let id = s.open(who(), Duration::from_secs(60));
        assert_eq!(s.get(&id).unwrap().identity.subject, "dba-1");
        assert!(s.get("not-a-session").is_none());
        s.close(&id);
        assert!(s.get(&id).is_none());
        let gone = s.open(who(), Duration::ZERO);
        assert!(s.get(&gone).is_none(), "expired sessions are not found");
    }

    #[test]
    fn logins_are_single_use() {
        let s = Sessions::default();
        let id = s.begin(Login {
            state: "st".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            next: "/ui".into(),
            expires: Instant::now() + LOGIN_TTL,
        });
        assert_eq!(s.finish(&id).unwrap().state, "st");
        assert!(s.finish(&id).is_none());
    }

    #[test]
    fn the_table_is_bounded() {
        let t: Table<Session> = Table::default();
        let mut ids = vec![];
        for i in 0..5 {
            let mut s = Session {
                identity: who(),
                csrf: "c".into(),
                expires: Instant::now() + Duration::from_secs(100 + i),
            };
            s.identity.subject = format!("s{i}");
            ids.push(t.insert(s, 3));
        }
        assert_eq!(t.rows.lock().unwrap().len(), 3);
        assert!(t.get(&ids[0]).is_none(), "the closest to expiry made room");
        assert!(t.get(&ids[4]).is_some());
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
