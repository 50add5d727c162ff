//! The credential Sluice holds, as the backend sees it: the read
//! credential for `read` grants, md5 and trust authentication, and no
//! cleartext password without verified TLS.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sluice_core::Profile;
use sluice_testkit::pg::PgServer;

/// `current_user` and the read-only setting of a session through Sluice.
fn whoami(h: &Harness, g: &TestGrant) -> String {
    let out = h.psql(
        &h.url(g),
        &[
            "-c",
            "SELECT current_user, current_setting('default_transaction_read_only')",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Puts `line` first in the backend's pg_hba.conf and reloads it; returns
/// once `user` (with `password`, if any) can log in directly.
fn hba_first(pg: &PgServer, line: &str, user: &str, password: Option<&str>) {
    let hba = pg.root().join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("{line}\n{rules}")).unwrap();
    pg.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut cmd = Command::new(sluice_testkit::pg::bin("psql").unwrap());
        cmd.args([
            "-X",
            "-w",
            "-h",
            "127.0.0.1",
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ])
        .args(["-p", &pg.port().to_string(), "-U", user])
        .env_remove("PGPASSWORD");
        if let Some(p) = password {
            cmd.env("PGPASSWORD", p);
        }
        if cmd.output().unwrap().status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_grants_use_the_read_credential_and_write_grants_the_primary_user() {
    let pg = start_pg(&Options::default()).await;
    let read_password = "reader-pw-7f3a9c";
    pg.psql(
        "postgres",
        &format!(
            "CREATE ROLE reader LOGIN PASSWORD '{read_password}'; \
             CREATE TABLE items(id int); CREATE TABLE payroll(id int); \
             GRANT SELECT ON items TO reader"
        ),
    )
    .unwrap();
    let pw = secret_file(read_password);
    let h = Harness::on(pg, Options::default(), |c| {
        c.read_credential = Some(credential("reader", pw.path()));
    })
    .await;
    let read = h.grant(Profile::Read);
    let write = h.grant(Profile::Write);
    assert_eq!(whoami(&h, &read), "reader|on");
    assert_eq!(whoami(&h, &write), "postgres|off");
    // The read user has its own, smaller privileges: `items` yes, `payroll`
    // (never granted to it) no, where the primary user reads both.
    let out = h.psql(&h.url(&read), &["-c", "SELECT count(*) FROM items"], None);
    assert_eq!(stdout(&out), "0", "{}", stderr(&out));
    let payroll = "SELECT count(*) FROM payroll";
    let out = h.psql(&h.url(&read), &["-c", payroll], None);
    assert!(
        stderr(&out).contains("permission denied for table payroll"),
        "{}",
        stderr(&out)
    );
    let out = h.psql(&h.url(&write), &["-c", payroll], None);
    assert_eq!(stdout(&out), "0", "{}", stderr(&out));
    assert!(!h.audit.all_json().contains(read_password));
}

#[tokio::test(flavor = "multi_thread")]
async fn md5_authentication_to_the_backend() {
    let opts = Options {
        pg_settings: vec![("password_encryption".into(), "md5".into())],
        ..Default::default()
    };
    let pg = start_pg(&opts).await;
    let password = "md5-pw-41c2e8";
    pg.psql(
        "postgres",
        &format!("CREATE ROLE md5user LOGIN PASSWORD '{password}'"),
    )
    .unwrap();
    // Stored as md5, so an `md5` hba line really asks for md5 (PostgreSQL
    // would use SCRAM for a SCRAM verifier).
    let stored = pg
        .psql(
            "postgres",
            "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5user'",
        )
        .unwrap();
    assert_eq!(stored, "md5");
    hba_first(
        &pg,
        "host all md5user 127.0.0.1/32 md5",
        "md5user",
        Some(password),
    );
    let pw = secret_file(password);
    let wrong = secret_file("not-the-password");
    let h = Harness::on(pg, opts, |c| {
        c.user = "md5user".into();
        c.password_file = Some(pw.path().into());
        c.read_credential = Some(credential("md5user", wrong.path()));
    })
    .await;
    let g = h.grant(Profile::Write);
    assert_eq!(whoami(&h, &g), "md5user|off");
    // A wrong md5 password fails the backend login, and says nothing of it.
    let bad = h.grant(Profile::Read);
    let out = h.psql(&h.url(&bad), &["-c", "SELECT 1"], None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("database behind this connection is unavailable"),
        "{err}"
    );
    assert!(
        !err.contains("md5user") && !err.contains("not-the-password"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_authentication_to_the_backend() {
    let pg = start_pg(&Options::default()).await;
    pg.psql("postgres", "CREATE ROLE trusted LOGIN").unwrap();
    hba_first(&pg, "host all trusted 127.0.0.1/32 trust", "trusted", None);
    let h = Harness::on(pg, Options::default(), |c| {
        c.user = "trusted".into();
        c.password_file = None;
    })
    .await;
    let g = h.grant(Profile::Read);
    assert_eq!(whoami(&h, &g), "trusted|on");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cleartext_password_request_without_verified_tls_is_refused() {
    let pg = start_pg(&Options::default()).await;
    let password = "plain-pw-9d1e0b";
    pg.psql(
        "postgres",
        &format!("CREATE ROLE plainuser LOGIN PASSWORD '{password}'"),
    )
    .unwrap();
    // `password` makes the server ask for the password itself; the same
    // login works directly, so only Sluice's refusal can fail it below.
    hba_first(
        &pg,
        "host all plainuser 127.0.0.1/32 password",
        "plainuser",
        Some(password),
    );
    let pw = secret_file(password);
    let h = Harness::on(pg, Options::default(), |c| {
        c.user = "plainuser".into();
        c.password_file = Some(pw.path().into());
    })
    .await;
    let g = h.grant(Profile::Write);
    let out = h.psql(&h.url(&g), &["-c", "SELECT 1"], None);
    assert!(!out.status.success(), "the password went out in cleartext");
    let err = stderr(&out);
    assert!(
        err.contains("database behind this connection is unavailable"),
        "{err}"
    );
    assert!(!err.contains(password), "{err}");
}
