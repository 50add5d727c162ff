//! The `mariadb` client, unchanged, through a grant: login, reads,
//! writes, denials in MySQL's own form, and the record of each.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mariadb_client_reads_through_a_grant() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "SELECT id, name FROM customers ORDER BY id");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\tAda\n2\tGrace\n");
    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 1).await;
    assert!(
        allowed.iter().any(|e| e
            .detail
            .to_string()
            .contains("SELECT id, name FROM customers")),
        "{}",
        gw.audit.all_json()
    );
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 1).await;
    assert!(
        done.iter().any(|e| e.detail["rows"] == 2),
        "{}",
        gw.audit.all_json()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_grant_cannot_write_and_the_session_stays_usable() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "DELETE FROM orders; SELECT count(*) FROM orders");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("1142") && err.contains("42000"), "{err}");
    assert_eq!(gw.direct("SELECT count(*) FROM orders").trim(), "2");
    // --force goes on after an error: the same session still serves.
    let out = gw.mariadb_script(
        &g,
        "DELETE FROM orders;\nSELECT count(*) FROM orders;\n",
        &["--force"],
    );
    assert_eq!(
        stdout(&out),
        "2\n",
        "{}\n{}",
        stderr(&out),
        gw.audit.all_json()
    );
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 1).await;
    assert!(!denied.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_grant_writes() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    let out = gw.mariadb(&g, "UPDATE orders SET total = 99 WHERE id = 1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        gw.direct("SELECT total FROM orders WHERE id = 1").trim(),
        "99"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_need_a_live_grant_and_its_secret() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let wrong = TestGrant {
        id: g.id.clone(),
        secret: "not-the-secret".into(),
    };
    let out = gw.mariadb(&wrong, "SELECT 1");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("1045"), "{}", stderr(&out));
    gw.control.revoke(&g.id);
    let out = gw.mariadb(&g, "SELECT 1");
    assert!(!out.status.success());
    let rejected = gw.audit.wait_for(EventKind::SessionRejected, 2).await;
    assert!(rejected.len() >= 2);
    assert!(!gw.audit.all_json().contains(&g.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_password_plugins_prove_the_secret() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let native = ["--default-auth=mysql_native_password"];
    let sha2 = ["--default-auth=caching_sha2_password"];
    for plugin in [&native, &sha2] {
        let out = gw.mariadb_args(&g, &[plugin[0], "-e", "SELECT count(*) FROM orders"]);
        assert_eq!(stdout(&out), "2\n", "{plugin:?}: {}", stderr(&out));
        let wrong = TestGrant {
            id: g.id.clone(),
            secret: "sls_not_the_secret".into(),
        };
        let out = gw.mariadb_args(&wrong, &[plugin[0], "-e", "SELECT 1"]);
        assert!(
            stderr(&out).contains("1045"),
            "{plugin:?}: {}",
            stderr(&out)
        );
    }
    // A grant without the native verifier (issued before it was kept):
    // the native answer fails, caching_sha2_password still works.
    let old = gw.grant_with(Profile::Read, |g| g.native_verifier.clear());
    let out = gw.mariadb_args(&old, &[native[0], "-e", "SELECT 1"]);
    assert!(stderr(&out).contains("1045"), "{}", stderr(&out));
    let out = gw.mariadb_args(&old, &[sha2[0], "-e", "SELECT 1"]);
    assert_eq!(stdout(&out), "1\n", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_clients_log_in_with_the_secret_in_the_clear_inside_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
    let top = format!(
        "[mysql]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nrequire_tls = true\n",
        cert.display(),
        key.display()
    );
    let gw = Gateway::start_with(&top, "").await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb_args(&g, &["--ssl", "-e", "SELECT count(*) FROM orders"]);
    assert_eq!(stdout(&out), "2\n", "{}", stderr(&out));
    // Without TLS: refused, saying why.
    let out = gw.mariadb(&g, "SELECT 1");
    assert!(stderr(&out).contains("requires TLS"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_a_password_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
    let top = format!(
        "[mysql]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let gw = Gateway::start_with(&top, "").await;
    // A token is long: a JWT of a kilobyte.
    let token = format!("eyJ{}", "a".repeat(1000));
    let grant = make_grant(
        &sluice_core::grant::new_grant_id(),
        "unused",
        CONN,
        Profile::Read,
        sluice_core::GrantStatus::Active,
        chrono::Duration::minutes(5),
    );
    gw.control.accept_token(&token, grant);
    let as_token = TestGrant {
        id: CONN.into(),
        secret: token,
    };
    let out = gw.mariadb_args(&as_token, &["--ssl", "-e", "SELECT count(*) FROM orders"]);
    assert_eq!(stdout(&out), "2\n", "{}", stderr(&out));
    let out = gw.mariadb(&as_token, "SELECT 1");
    assert!(stderr(&out).contains("over TLS only"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_profiles_statement_time_limit_is_set_and_kept() {
    let gw =
        Gateway::start("\n[connections.limits]\nstatement_timeout = { read = \"7s\" }\n").await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "SELECT @@max_statement_time");
    assert_eq!(stdout(&out), "7.000000\n", "{}", stderr(&out));
    let out = gw.mariadb(&g, "SET SESSION max_statement_time = 0");
    assert!(stderr(&out).contains("1142"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backend_is_reached_over_verified_tls_when_asked() {
    let ca = server().ca_file();
    let gw = Gateway::start_backend_tls(
        &format!("tls = \"verify-full\"\nca_file = \"{}\"", ca.display()),
        "",
    )
    .await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "SELECT count(*) FROM orders");
    assert_eq!(stdout(&out), "2\n", "{}", stderr(&out));
    let r = gw.pymysql(&g, &["SELECT variable_value <> '' FROM information_schema.SESSION_STATUS WHERE variable_name = 'Ssl_cipher'"]);
    assert_eq!(
        r[0]["rows"],
        serde_json::json!([[1]]),
        "the backend session is encrypted: {r:?}"
    );
    // A certificate that does not verify: the backend is unavailable, and
    // nothing is sent to it in the clear.
    let other = tempfile::tempdir().unwrap();
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(other.path().join("ca.pem"), pair.cert.pem()).unwrap();
    let gw = Gateway::start_backend_tls(
        &format!(
            "tls = \"verify-full\"\nca_file = \"{}\"",
            other.path().join("ca.pem").display()
        ),
        "",
    )
    .await;
    let g = gw.grant(Profile::Read);
    let out = gw.mariadb(&g, "SELECT 1");
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
}
