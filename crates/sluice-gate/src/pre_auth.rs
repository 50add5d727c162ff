//! Connections not yet logged in, per listener. Each may take until the
//! listener's auth timeout, so a flood of connections, or a slowloris
//! (connections opened and left silent, or fed a byte at a time), would
//! otherwise hold sockets, buffers and file descriptors the logged-in
//! sessions share the process with. At most [`MAX_PRE_AUTH`] are served at
//! once; one over is told so at once and closed, and a session that has
//! logged in no longer counts.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections logging in at once, per listener. A login takes
/// milliseconds, so this admits thousands of logins a second.
pub const MAX_PRE_AUTH: usize = 256;

/// One listener's places for connections logging in.
#[derive(Clone)]
pub struct PreAuth(Arc<Semaphore>);

/// A connection's place while it logs in; given back when dropped.
pub type Pending = OwnedSemaphorePermit;

impl Default for PreAuth {
    fn default() -> Self {
        PreAuth(Arc::new(Semaphore::new(MAX_PRE_AUTH)))
    }
}

impl PreAuth {
    /// A place for `tcp`, or `None` after telling the client, without
    /// waiting, that too many are logging in (`refusal` is the protocol's
    /// own error; a client that is not reading loses it) and closing.
    pub fn enter(&self, tcp: TcpStream, refusal: &[u8]) -> Option<(TcpStream, Pending)> {
        match self.0.clone().try_acquire_owned() {
            Ok(pending) => Some((tcp, pending)),
            Err(_) => {
                if !refusal.is_empty() {
                    let _ = tcp.try_write(refusal);
                }
                tracing::debug!("refused a connection: too many logging in at once");
                None
            }
        }
    }
}
