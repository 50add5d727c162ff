//! The backend SSH connection: Sluice logs in with the credential it holds
//! (a private key or a password), after checking the host's key against
//! the pinned one. A host presenting another key is refused before any
//! credential is sent.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use sluice_core::config::ConnectionConfig;

use crate::keys::{Pin, fingerprint};
use crate::session::Session;

/// How long the backend has to answer a connect and a login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the backend could not be reached, in words for the operator (never
/// a credential).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the backend's host key {presented} is not the pinned {pinned}")]
    HostKey { presented: String, pinned: String },
    #[error("cannot reach {0}")]
    Connect(String),
    #[error("the backend refused Sluice's credential for user {0:?}")]
    Refused(String),
    #[error("the connection's credential is unusable: {0}")]
    Credential(String),
}

/// Checks the host key; remembers what was presented, for the error; and
/// passes connections on the session's remote forwards back to it.
pub struct Verifier {
    pin: Pin,
    presented: Arc<Mutex<Option<String>>>,
    relay: Option<Weak<Session>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is not a pinned key: refused.
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = presented else {
            return Ok(false);
        };
        *self.presented.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint(key));
        Ok(self.pin.matches(key))
    }

    /// A connection the host accepted on a remote forward. Only forwards
    /// this session asked for (and was allowed) are passed on; the
    /// listener check is in `forward::accepted`.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: client::ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let Some(session) = self.relay.as_ref().and_then(Weak::upgrade) else {
            return Ok(()); // dropping the reply refuses the channel
        };
        tokio::spawn(crate::forward::accepted(
            session,
            channel,
            reply,
            (connected_address.to_string(), connected_port),
            (originator_address.to_string(), originator_port),
        ));
        Ok(())
    }
}

/// A logged-in backend connection.
pub struct Backend {
    pub handle: Handle<Verifier>,
}

/// Connects to `conn` and logs in with its held credential; `relay` is the
/// session remote forwards' connections go back to.
pub async fn connect(
    conn: &ConnectionConfig,
    relay: Option<Weak<Session>>,
) -> Result<Backend, BackendError> {
    let ssh = conn
        .ssh
        .as_ref()
        .ok_or_else(|| BackendError::Credential("no [connections.ssh] section".into()))?;
    let pin = Pin::parse(&ssh.host_key).map_err(BackendError::Credential)?;
    let presented = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        pin: pin.clone(),
        presented: presented.clone(),
        relay,
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        ..client::Config::default()
    });
    let addr = (conn.host.as_str(), conn.port());
    let connected = tokio::time::timeout(CONNECT_TIMEOUT, client::connect(config, addr, verifier))
        .await
        .map_err(|_| BackendError::Connect(format!("{}:{} (timed out)", conn.host, conn.port())))?;
    let mut handle = match connected {
        Ok(h) => h,
        Err(e) => {
            let seen = presented.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(seen) = seen.filter(|s| s != pin.fingerprint()) {
                return Err(BackendError::HostKey {
                    presented: seen,
                    pinned: pin.fingerprint().to_string(),
                });
            }
            return Err(BackendError::Connect(format!(
                "{}:{}: {e}",
                conn.host,
                conn.port()
            )));
        }
    };
    let ok = tokio::time::timeout(CONNECT_TIMEOUT, login(&mut handle, conn))
        .await
        .map_err(|_| BackendError::Connect("the backend's login timed out".into()))??;
    if !ok {
        return Err(BackendError::Refused(conn.user.clone()));
    }
    Ok(Backend { handle })
}

async fn login(
    handle: &mut Handle<Verifier>,
    conn: &ConnectionConfig,
) -> Result<bool, BackendError> {
    let ssh = conn.ssh.as_ref().expect("checked by connect");
    let result = match &ssh.private_key_file {
        Some(path) => {
            let key = load_key(path)?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| BackendError::Connect(e.to_string()))?
                .flatten();
            handle
                .authenticate_publickey(
                    conn.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
        }
        None => {
            let password = conn
                .password()
                .map_err(BackendError::Credential)?
                .ok_or_else(|| {
                    BackendError::Credential("no password or key is configured".into())
                })?;
            handle
                .authenticate_password(conn.user.clone(), password.expose())
                .await
        }
    };
    result
        .map(|r| r.success())
        .map_err(|e| BackendError::Connect(e.to_string()))
}

fn load_key(path: &std::path::Path) -> Result<PrivateKey, BackendError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BackendError::Credential(format!("{}: {e}", path.display())))?;
    PrivateKey::from_openssh(&text)
        .map_err(|e| BackendError::Credential(format!("{}: {e}", path.display())))
}
