//! The sessions open on this gateway now, for the web page's live view,
//! and the handle an operator ends one with.
//!
//! A listener registers each session when it opens ([`LiveSessions::open`])
//! and holds the returned [`Open`] for the session's life; dropping it
//! takes the session off the list. [`LiveSessions::end`] asks a session to
//! end: the session watches [`Open::ended`] beside its grant's end and
//! closes the client with an administrator-shutdown error.
//!
//! The list is this process's own. Gateways sharing a store each hold
//! their own sessions; ending one served by another gateway is not done
//! here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use crate::Profile;

/// What the live view shows of an open session.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSession {
    pub id: String,
    pub grant_id: String,
    pub connection: String,
    pub profile: Profile,
    /// The grant holder's name.
    pub identity: String,
    pub client_addr: String,
    /// `postgres`, later `ssh`, `mysql`.
    pub protocol: &'static str,
    pub opened_at: DateTime<Utc>,
}

struct Entry {
    info: LiveSession,
    /// Who asked the session to end, once someone did.
    end: watch::Sender<Option<String>>,
}

/// This gateway's open sessions.
#[derive(Default)]
pub struct LiveSessions {
    open: Mutex<HashMap<String, Entry>>,
}

impl LiveSessions {
    /// Registers a session for as long as the returned handle lives.
    pub fn open(self: &Arc<Self>, info: LiveSession) -> Open {
        let (end, watched) = watch::channel(None);
        let id = info.id.clone();
        self.lock().insert(id.clone(), Entry { info, end });
        Open {
            list: self.clone(),
            id,
            ended: watched,
        }
    }

    /// The open sessions, oldest first.
    pub fn list(&self) -> Vec<LiveSession> {
        let mut all: Vec<LiveSession> = self.lock().values().map(|e| e.info.clone()).collect();
        all.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.id.cmp(&b.id)));
        all
    }

    /// The open session `id`, if it is open here.
    pub fn get(&self, id: &str) -> Option<LiveSession> {
        self.lock().get(id).map(|e| e.info.clone())
    }

    /// Asks session `id` to end, on behalf of `by`. False when it is not
    /// open here (ended meanwhile, or served by another gateway).
    pub fn end(&self, id: &str, by: &str) -> bool {
        match self.lock().get(id) {
            Some(e) => {
                e.end.send_replace(Some(by.to_string()));
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session's place on the list.
pub struct Open {
    list: Arc<LiveSessions>,
    id: String,
    ended: watch::Receiver<Option<String>>,
}

impl Open {
    /// Resolves with who asked, once someone asks this session to end.
    pub fn ended(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.ended.clone();
        async move {
            let by = match rx.wait_for(Option::is_some).await {
                Ok(by) => Some(by.clone().unwrap_or_default()),
                Err(_) => None,
            };
            match by {
                Some(by) => by,
                // The list dropped the entry: the session is closing anyway.
                None => std::future::pending().await,
            }
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.list.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> LiveSession {
        LiveSession {
            id: id.into(),
            grant_id: "g".into(),
            connection: "c".into(),
            profile: Profile::Read,
            identity: "agent".into(),
            client_addr: "127.0.0.1:1".into(),
            protocol: "postgres",
            opened_at: crate::clock::now(),
        }
    }

    #[tokio::test]
    async fn a_session_is_listed_while_open_and_hears_its_end() {
        let list = Arc::new(LiveSessions::default());
        let open = list.open(info("s1"));
        assert_eq!(list.list().len(), 1);
        let ended = open.ended();
        assert!(list.end("s1", "alice"));
        assert_eq!(ended.await, "alice");
        assert!(!list.end("s2", "alice"), "not open here");
        drop(open);
        assert!(list.list().is_empty());
        assert!(!list.end("s1", "alice"));
    }
}
