//! Helpers shared by the integration suites: serving the dev issuer on an
//! ephemeral port, and building forged tokens.
#![allow(dead_code)] // each suite uses its own subset

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sluice_identity::dev::DevIssuer;
use std::time::{SystemTime, UNIX_EPOCH};

/// A dev issuer served over real HTTP at `http://127.0.0.1:PORT/dev-issuer`.
pub struct DevServer {
    pub issuer: DevIssuer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DevServer {
    pub async fn start(path: &str, audience: &str) -> DevServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let issuer = DevIssuer::new(&format!("http://127.0.0.1:{port}{path}"), audience);
        let app = axum::Router::new().nest(path, issuer.router());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve the dev issuer");
        });
        DevServer {
            issuer,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving; afterwards the port refuses connections.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

pub fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A compact JWS from the given parts; the signature is taken as is.
pub fn forge(header: &Value, payload: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64json(header), b64json(payload))
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).expect("JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON")
}

pub fn header_of(token: &str) -> Value {
    part(token, 0)
}

pub fn payload_of(token: &str) -> Value {
    part(token, 1)
}

pub fn signature_of(token: &str) -> &str {
    token.rsplit('.').next().expect("signature part")
}

/// An issuer whose discovery document and JWKS are whatever the test says,
/// served at `http://127.0.0.1:PORT`. For key types and hostile documents
/// that neither the dev issuer nor the real provider produce.
pub struct StaticIssuer {
    pub url: String,
    pub discovery: std::sync::Arc<std::sync::Mutex<Value>>,
    pub jwks: std::sync::Arc<std::sync::Mutex<Value>>,
}

impl StaticIssuer {
    pub async fn start(jwks: Value) -> StaticIssuer {
        use axum::routing::get;
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let discovery = Arc::new(Mutex::new(
            serde_json::json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}),
        ));
        let jwks = Arc::new(Mutex::new(jwks));
        let (d, j) = (discovery.clone(), jwks.clone());
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let v = d.lock().expect("lock").clone();
                    async move { axum::Json(v) }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let v = j.lock().expect("lock").clone();
                    async move { axum::Json(v) }
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StaticIssuer {
            url,
            discovery,
            jwks,
        }
    }
}
