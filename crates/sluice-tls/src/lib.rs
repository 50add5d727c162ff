//! TLS on both sides of every protocol adapter: the listener's
//! certificate for clients, and the backend connector per the connection's
//! `tls` mode. rustls with the `ring` provider; one [`Stream`] type so the
//! rest of an adapter does not care.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sluice_core::config::TlsMode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TLS setting that cannot be used (a file that does not read, a host
/// name that is no server name).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TlsConfigError(pub String);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor for clients that send SSLRequest, from PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsConfigError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| TlsConfigError(format!("{what}: {e}"));
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(&format!("read {}", cert.display()), &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&format!("parse {}", cert.display()), &e))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(&format!("read key {}", key.display()), &e))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The connector for a backend, or `None` for `tls = "disable"`.
pub fn connector(
    mode: TlsMode,
    ca_file: Option<&Path>,
) -> Result<Option<tokio_rustls::TlsConnector>, TlsConfigError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| TlsConfigError(format!("{what}: {e}"));
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocol versions", &e))?;
    let config = match mode {
        TlsMode::Disable => return Ok(None),
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
        TlsMode::VerifyFull => {
            let mut roots = rustls::RootCertStore::empty();
            match ca_file {
                Some(path) => {
                    for cert in CertificateDer::pem_file_iter(path)
                        .map_err(|e| bad(&format!("read {}", path.display()), &e))?
                    {
                        let cert =
                            cert.map_err(|e| bad(&format!("parse {}", path.display()), &e))?;
                        roots
                            .add(cert)
                            .map_err(|e| bad(&format!("CA in {}", path.display()), &e))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// The name to verify the backend's certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    ServerName::try_from(host.to_string())
        .map_err(|_| TlsConfigError(format!("{host:?} is not a valid TLS server name")))
}

/// The SHA-256 of the first certificate in `cert` (PEM), in hex: what a
/// grant names so its holder can pin the listener it connects to.
pub fn fingerprint_of(cert: &Path) -> Result<String, TlsConfigError> {
    let first = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsConfigError(format!("read {}: {e}", cert.display())))?
        .next()
        .ok_or_else(|| TlsConfigError(format!("{} holds no certificate", cert.display())))?
        .map_err(|e| TlsConfigError(format!("parse {}: {e}", cert.display())))?;
    Ok(fingerprint(&first))
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(cert.as_ref()))
}

/// A connector that accepts exactly one certificate: the one whose
/// SHA-256 is `pin` (hex), whatever its name or issuer. For the agent's
/// relays to a gateway whose grant named its listener's certificate, as
/// an SSH grant names the host key.
pub fn pinned_connector(pin: &str) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(Arc::new(pinned_config(pin)))
}

/// The client configuration behind [`pinned_connector`], for libraries
/// that take one (tokio-postgres).
pub fn pinned_config(pin: &str) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            pin: pin.to_ascii_lowercase(),
            checks: NoVerification(provider()),
        }))
        .with_no_client_auth()
}

/// Exactly the pinned certificate; signatures checked as usual.
#[derive(Debug)]
struct Pinned {
    pin: String,
    checks: NoVerification,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if fingerprint(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the gateway's certificate is not the one its grant names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.checks.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.checks.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.checks.supported_verify_schemes()
    }
}

/// `tls = "require"`: encrypt, but accept any certificate (libpq's
/// `sslmode=require`). Signatures are still checked so the handshake is sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TCP connection, possibly wrapped in TLS (as server to a client, or as
/// client to a backend).
pub enum Stream {
    Plain(TcpStream),
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Server($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            Stream::Client($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Server(s) => s.is_write_vectored(),
            Stream::Client(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener with a fresh self-signed certificate; its PEM file.
    async fn listener(
        dir: &Path,
    ) -> (
        tokio::net::TcpListener,
        tokio_rustls::TlsAcceptor,
        std::path::PathBuf,
    ) {
        let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&cert, pair.cert.pem()).unwrap();
        std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
        let acceptor = acceptor(&cert, &key).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        (tcp, acceptor, cert)
    }

    #[tokio::test]
    async fn a_pinned_connector_takes_exactly_the_pinned_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (tcp, acceptor, cert) = listener(dir.path()).await;
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = tcp.accept().await {
                let _ = acceptor.accept(s).await;
            }
        });
        let pin = fingerprint_of(&cert).unwrap();
        assert_eq!(pin.len(), 64);
        let connect = |pin: String| async move {
            let s = TcpStream::connect(addr).await.unwrap();
            pinned_connector(&pin)
                .connect(server_name("127.0.0.1").unwrap(), s)
                .await
        };
        assert!(connect(pin.clone()).await.is_ok());
        assert!(
            connect(pin.to_uppercase()).await.is_ok(),
            "hex in either case"
        );
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (_, _, other_cert) = listener(&other).await;
        let err = connect(fingerprint_of(&other_cert).unwrap())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not the one its grant names"),
            "{err}"
        );
    }
}
