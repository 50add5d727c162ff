//! Session limits: how many client sessions a connection, a grant and an
//! identity hold at once (`[connections.limits]`). A session takes a
//! [`Seat`] before it opens a backend session and gives it back when it
//! ends; a login over a limit is refused (Postgres says SQLSTATE 53300).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_core::Grant;
use sluice_core::config::LimitsConfig;

/// A session over one of the limits, and which.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SessionLimit {
    pub message: String,
}

/// Sessions held, by connection, grant and identity.
#[derive(Default)]
pub struct Seats {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    connections: HashMap<String, usize>,
    grants: HashMap<String, usize>,
    identities: HashMap<String, usize>,
}

/// One session's place; given back when dropped.
pub struct Seat {
    seats: Arc<Seats>,
    keys: Keys,
}

struct Keys {
    connection: String,
    grant: String,
    identity: String,
}

impl Seats {
    /// A seat for a session of `grant`, or why there is none.
    pub fn take(
        self: &Arc<Self>,
        grant: &Grant,
        limits: &LimitsConfig,
    ) -> Result<Seat, SessionLimit> {
        let keys = Keys {
            connection: grant.connection.clone(),
            grant: grant.id.clone(),
            identity: format!("{}\0{}", grant.issuer, grant.subject),
        };
        let mut held = self.lock();
        let count = |map: &HashMap<String, usize>, k: &str| map.get(k).copied().unwrap_or(0);
        let full = if count(&held.grants, &keys.grant) >= limits.max_sessions_per_grant {
            Some(format!(
                "grant {} already holds {} sessions (max_sessions_per_grant)",
                grant.id, limits.max_sessions_per_grant
            ))
        } else if count(&held.identities, &keys.identity) >= limits.max_sessions_per_identity {
            Some(format!(
                "{} already holds {} sessions on connection {:?} (max_sessions_per_identity)",
                grant.subject, limits.max_sessions_per_identity, grant.connection
            ))
        } else if count(&held.connections, &keys.connection) >= limits.max_sessions {
            Some(format!(
                "connection {:?} already serves {} sessions (max_sessions)",
                grant.connection, limits.max_sessions
            ))
        } else {
            None
        };
        if let Some(why) = full {
            return Err(SessionLimit { message: why });
        }
        *held.connections.entry(keys.connection.clone()).or_default() += 1;
        *held.grants.entry(keys.grant.clone()).or_default() += 1;
        *held.identities.entry(keys.identity.clone()).or_default() += 1;
        Ok(Seat {
            seats: self.clone(),
            keys,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // Counts change whole: a poisoned map is intact.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut guard = self.seats.lock();
        let held = &mut *guard;
        give_back(&mut held.connections, &self.keys.connection);
        give_back(&mut held.grants, &self.keys.grant);
        give_back(&mut held.identities, &self.keys.identity);
    }
}

fn give_back(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(id: &str, subject: &str) -> Grant {
        let now = sluice_core::clock::now();
        Grant {
            id: id.into(),
            subject: subject.into(),
            issuer: "https://idp".into(),
            identity_name: subject.into(),
            identity_kind: "agent".into(),
            identity_groups: vec![],
            connection: "app".into(),
            profile: sluice_core::Profile::Read,
            rule: "r".into(),
            status: sluice_core::GrantStatus::Active,
            reason: String::new(),
            ttl_secs: 60,
            created_at: now,
            activated_at: Some(now),
            expires_at: now,
            decided_by: None,
            scram_verifier: String::new(),
            native_verifier: String::new(),
            ssh_key: None,
        }
    }

    #[test]
    fn limits_per_grant_identity_and_connection() {
        let seats = Arc::new(Seats::default());
        let limits = LimitsConfig {
            max_sessions: 5,
            max_sessions_per_grant: 2,
            max_sessions_per_identity: 3,
            ..LimitsConfig::default()
        };
        let a1 = grant("g_a1", "agent-a");
        let a2 = grant("g_a2", "agent-a");
        let b = grant("g_b", "agent-b");
        let s1 = seats.take(&a1, &limits).unwrap();
        let _s2 = seats.take(&a1, &limits).unwrap();
        let e = seats.take(&a1, &limits).err().unwrap();
        assert!(
            e.message.contains("max_sessions_per_grant"),
            "{}",
            e.message
        );
        let _s3 = seats.take(&a2, &limits).unwrap();
        let e = seats.take(&a2, &limits).err().unwrap();
        assert!(
            e.message.contains("max_sessions_per_identity"),
            "{}",
            e.message
        );
        // The rest is kept for others.
        let _b1 = seats.take(&b, &limits).unwrap();
        let _b2 = seats.take(&b, &limits).unwrap();
        let e = seats.take(&grant("g_c", "agent-c"), &limits).err().unwrap();
        assert!(e.message.contains("(max_sessions)"), "{}", e.message);
        drop(s1);
        assert!(
            seats.take(&a1, &limits).is_ok(),
            "a seat given back is free again"
        );
    }
}
