//! TLS modes: `require` to the backend (encrypt, no verification),
//! `verify-full` refusing a backend its CA does not vouch for, and the
//! listener's `require_tls`.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;
use sluice_core::config::TlsMode;

// Reads the server's session statistics: an admin statement (see docs/security.md).
const SSL_IN_USE: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test(flavor = "multi_thread")]
async fn require_encrypts_to_a_backend_with_an_unverifiable_certificate() {
    let opts = Options {
        backend_tls: true,
        ..Default::default()
    };
    let pg = start_pg(&opts).await;
    // No CA at all: the self-signed certificate could not be verified.
    let h = Harness::on(pg, opts, |c| {
        c.tls = TlsMode::Require;
        c.ca_file = None;
    })
    .await;
    let g = h.grant(Profile::Admin);
    let out = h.psql(&h.url(&g), &["-c", SSL_IN_USE], None);
    assert_eq!(stdout(&out), "t", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_refuses_a_backend_signed_by_another_ca() {
    let opts = Options {
        backend_tls: true,
        ..Default::default()
    };
    let pg = start_pg(&opts).await;
    let port = pg.port().to_string();
    let other_ca = self_signed_pair();
    let ca_path = other_ca.path().join("cert.pem");
    let h = Harness::on(pg, opts, |c| c.ca_file = Some(ca_path.clone())).await;
    let g = h.grant(Profile::Read);

    let err = tokio_postgres::connect(&h.tp_config(&g), tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&err), "08006");
    let db = err.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "sluice: the database behind this connection is unavailable"
    );
    assert!(db.detail().is_none() && db.hint().is_none());
    // psql says the same, and nothing about the backend.
    let out = h.psql(&h.url(&g), &["-c", "SELECT 1"], None);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("FATAL:  sluice: the database behind this connection is unavailable"),
        "{text}"
    );
    for leak in [
        port.as_str(),
        "certificate",
        "UnknownIssuer",
        ca_path.to_str().unwrap(),
        h.pg.password(),
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
    // The operator learns the cause from the audit record; never a secret.
    assert!(
        !h.audit.all_json().contains(h.pg.password()),
        "password audited"
    );
    assert_eq!(h.backend_sessions(&g.id), 0);
    let rejected = h.audit.of_kind(EventKind::SessionRejected);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].detail["reason"], "backend unavailable");
    let cause = rejected[0].detail["cause"].as_str().unwrap();
    assert!(
        cause.contains("certificate") || cause.contains("UnknownIssuer"),
        "{cause}"
    );
    assert!(h.audit.of_kind(EventKind::SessionOpened).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn require_tls_refuses_a_plain_client_and_accepts_tls() {
    let h = Harness::start(Options {
        listener_tls: true,
        require_tls: true,
        ..Default::default()
    })
    .await;
    let g = h.grant(Profile::Admin);
    let plain = h.url(&g);
    assert!(plain.ends_with("sslmode=disable"));
    let out = h.psql(&plain, &["-c", "SELECT 1"], None);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("FATAL:  sluice: this listener requires TLS (sslmode=require)"),
        "{text}"
    );
    assert_eq!(h.backend_sessions(&g.id), 0);
    let rejected = h.audit.of_kind(EventKind::SessionRejected);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].detail["reason"], "TLS required");
    assert_eq!(rejected[0].detail["sqlstate"], "28000");

    let tls = plain.replace("sslmode=disable", "sslmode=require");
    let out = h.psql(&tls, &["-c", SSL_IN_USE], None);
    assert!(out.status.success(), "{}", stderr(&out));
    // The client's TLS ends at Sluice; this backend session is plain.
    assert_eq!(stdout(&out), "f");
}
