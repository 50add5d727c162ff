//! `sluice config check --probe`: log in to a connection's backend with
//! each credential Sluice holds for it, as a session would, and say what
//! worked. Nothing is run but the login and a version query.

use std::path::Path;

use sluice_core::Profile;
use sluice_core::config::ConnectionConfig;

use crate::backend::{self, Target};

/// For each credential of `conn` (the primary, and the read credential if
/// any): its user and either the server's version or why the login failed.
pub async fn probe(conn: &ConnectionConfig) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    let mut profiles = vec![Profile::Write];
    if conn.read_credential.is_some() {
        profiles.push(Profile::Read);
    }
    for profile in profiles {
        let target = match Target::resolve(conn, profile) {
            Ok(t) => t,
            Err(e) => {
                out.push((format!("{profile} credential"), Err(e.to_string())));
                continue;
            }
        };
        let user = target.user.clone();
        let result = match backend::connect(&target, profile).await {
            Ok(b) => {
                let version = b
                    .parameters
                    .get("server_version")
                    .unwrap_or("unknown version")
                    .to_string();
                b.close().await;
                Ok(format!("logged in; PostgreSQL {version}"))
            }
            Err(e) => Err(e.to_string()),
        };
        out.push((user, result));
    }
    out
}

/// Whether a certificate chain and key (PEM) load and belong together.
pub fn check_tls_pair(cert: &Path, key: &Path) -> Result<(), String> {
    sluice_tls::acceptor(cert, key).map(|_| ()).map_err(|e| {
        let e = e.to_string();
        if e.contains("KeyMismatch") {
            format!(
                "the key does not match the certificate ({} and {})",
                cert.display(),
                key.display()
            )
        } else {
            e
        }
    })
}
