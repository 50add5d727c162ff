//! Cancel keys. Each client session gets its own random key; a CancelRequest
//! carrying it is mapped to the backend session's key and sent on a fresh
//! backend connection. A client's raw key is never forwarded, and the
//! backend's key is never shown to the client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use subtle::ConstantTimeEq;

use crate::backend::{self, Target};

struct Entry {
    secret: i32,
    target: Arc<Target>,
    backend_key: (i32, i32),
}

/// Live sessions' cancel keys, by the client-facing process id.
#[derive(Default)]
pub struct CancelRegistry {
    entries: Mutex<HashMap<i32, Entry>>,
}

/// A registered key; dropping it unregisters the session.
pub struct CancelKey {
    registry: Arc<CancelRegistry>,
    pub pid: i32,
    pub secret: i32,
}

impl Drop for CancelKey {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.pid);
    }
}

impl CancelRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Entry>> {
        // A poisoned map is still a valid map: entries are inserted whole.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives a session a fresh random key that maps to `backend_key`.
    pub fn register(self: &Arc<Self>, target: Arc<Target>, backend_key: (i32, i32)) -> CancelKey {
        let mut rng = rand::rngs::OsRng;
        let secret: i32 = rng.r#gen();
        let mut entries = self.lock();
        let pid = loop {
            let pid = rng.gen_range(1..i32::MAX);
            if !entries.contains_key(&pid) {
                break pid;
            }
        };
        entries.insert(
            pid,
            Entry {
                secret,
                target,
                backend_key,
            },
        );
        CancelKey {
            registry: self.clone(),
            pid,
            secret,
        }
    }

    /// Cancels the session with this client key, if any. Unknown keys are
    /// ignored silently, as PostgreSQL does.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let found = {
            let entries = self.lock();
            entries.get(&pid).and_then(|e| {
                let ok: bool = e.secret.to_be_bytes().ct_eq(&secret.to_be_bytes()).into();
                ok.then(|| (e.target.clone(), e.backend_key))
            })
        };
        let Some((target, key)) = found else {
            tracing::debug!(pid, "cancel request with an unknown key");
            return;
        };
        if let Err(e) = backend::cancel(&target, key).await {
            tracing::warn!(error = %e, "forwarding a cancel request failed");
        }
    }
}
