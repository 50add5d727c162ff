//! Logging in through Sluice: grant SCRAM, refusals, TLS on both sides,
//! the token fallback, and grants ending under live sessions.

mod common;

use std::time::Duration as StdDuration;

use chrono::Duration;
use common::*;
use sluice_core::audit::EventKind;
use sluice_core::{GrantStatus, Profile};

#[tokio::test(flavor = "multi_thread")]
async fn psql_logs_in_with_a_grant_and_the_backend_sees_the_grant_id() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Write);
    let out = h.psql(
        &h.url(&g),
        &[
            "-c",
            "SELECT current_setting('application_name'), current_user",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&g.id),
        "application_name carries the grant: {text}"
    );
    assert!(text.ends_with("|postgres"));
    let opened = h.audit.of_kind(EventKind::SessionOpened);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].grant_id.as_deref(), Some(g.id.as_str()));
    // Nothing secret in any event.
    let all = h.audit.all_json();
    assert!(!all.contains(&g.secret) && !all.contains(h.pg.password()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_28p01_and_opens_no_backend_connection() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Read);
    let bad = TestGrant {
        id: g.id.clone(),
        secret: "sls_wrong".into(),
    };
    let err = tokio_postgres::connect(&h.tp_config(&bad), tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&err), "28P01");
    assert_eq!(h.backend_sessions(&g.id), 0);
    // Unknown grant ids fail the same way.
    let ghost = TestGrant {
        id: sluice_core::grant::new_grant_id(),
        secret: "sls_x".into(),
    };
    let err = tokio_postgres::connect(&h.tp_config(&ghost), tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&err), "28P01");
    let rejected = h.audit.of_kind(EventKind::SessionRejected);
    assert_eq!(rejected.len(), 2);
    assert!(!h.audit.all_json().contains("sls_wrong"));
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_pending_revoked_and_other_connection_grants_are_refused() {
    let h = Harness::start(Options::default()).await;
    let cases = [
        (
            h.grant_for(
                CONN,
                Profile::Read,
                GrantStatus::Active,
                Duration::seconds(-5),
            ),
            "expired",
        ),
        (
            h.grant_for(
                CONN,
                Profile::Read,
                GrantStatus::Pending,
                Duration::minutes(5),
            ),
            "pending",
        ),
        (
            h.grant_for(
                CONN,
                Profile::Read,
                GrantStatus::Revoked,
                Duration::minutes(5),
            ),
            "revoked",
        ),
        (
            h.grant_for(
                "other",
                Profile::Read,
                GrantStatus::Active,
                Duration::minutes(5),
            ),
            "not for connection",
        ),
    ];
    for (g, words) in &cases {
        let err = tokio_postgres::connect(&h.tp_config(g), tokio_postgres::NoTls)
            .await
            .err()
            .expect("refused");
        assert_eq!(sqlstate(&err), "28000", "{words}");
        let db = err.as_db_error().unwrap();
        assert!(db.message().contains(words), "{}", db.message());
        assert_eq!(h.backend_sessions(&g.id), 0);
    }
    assert_eq!(
        h.audit.of_kind(EventKind::SessionRejected).len(),
        cases.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_expiry_and_revocation_close_live_sessions() {
    let h = Harness::start(Options::default()).await;
    let short = h.grant_for(
        CONN,
        Profile::Read,
        GrantStatus::Active,
        Duration::seconds(2),
    );
    let client = h.connect(&short).await;
    client.simple_query("SELECT 1").await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        client.is_closed() || err.to_string().contains("expired"),
        "{err}"
    );

    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    client.simple_query("SELECT 1").await.unwrap();
    let sleeper = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    h.control.revoke(&g.id);
    let result = tokio::time::timeout(StdDuration::from_secs(5), sleeper)
        .await
        .expect("revocation ends the session at once")
        .unwrap();
    let err = result.unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("revoked") || text.contains("57P01") || err.is_closed(),
        "{text}"
    );
    // The backend session is gone too.
    for _ in 0..50 {
        if h.backend_sessions(&g.id) == 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(h.backend_sessions(&g.id), 0);
    let closed = h.audit.wait_for(EventKind::SessionClosed, 2).await;
    assert_eq!(closed.len(), 2);
    // The record says how each ended (issue 13: a revoke read "ended").
    let ends: Vec<&str> = closed
        .iter()
        .filter_map(|e| e.detail["end"].as_str())
        .collect();
    assert!(
        ends.contains(&"expired") && ends.contains(&"revoked"),
        "{ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_to_the_client_and_verify_full_to_the_backend() {
    let h = Harness::start(Options {
        backend_tls: true,
        listener_tls: true,
        ..Default::default()
    })
    .await;
    let g = h.grant(Profile::Read);
    let url = h.url(&g).replace("sslmode=disable", "sslmode=require");
    // Agents may not read pg_stat_ssl (it shows other sessions); the
    // superuser checks the backend session while it is open.
    let client = h.connect(&g).await;
    client.simple_query("SELECT 1").await.unwrap();
    let ssl = h.backend(&format!(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name LIKE '%{}%'",
        g.id
    ));
    assert_eq!(ssl, "t", "the backend session is encrypted");
    drop(client);
    let conninfo = h.psql(&url, &["-c", "\\conninfo"], None);
    assert!(
        stdout(&conninfo).contains("SSL connection"),
        "{}",
        stdout(&conninfo)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_fallback_needs_tls() {
    let h = Harness::start(Options {
        listener_tls: true,
        ..Default::default()
    })
    .await;
    let token = "eyJhbGciOiJSUzI1NiJ9.test-token.sig";
    let id = sluice_core::grant::new_grant_id();
    h.control.accept_token(
        token,
        make_grant(
            &id,
            "unused",
            CONN,
            Profile::Read,
            GrantStatus::Active,
            Duration::minutes(5),
        ),
    );
    let plain = format!(
        "postgresql://agent:{token}@127.0.0.1:{}/{CONN}?sslmode=disable",
        h.addr.port()
    );
    let out = h.psql(&plain, &["-c", "SELECT 1"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("over TLS"), "{}", stderr(&out));
    let tls = plain.replace("sslmode=disable", "sslmode=require");
    let out = h.psql(&tls, &["-c", "SELECT 1"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = tls.replace(token, "not-a-token");
    let out = h.psql(&bad, &["-c", "SELECT 1"], None);
    assert!(
        stderr(&out).contains("token is not valid"),
        "{}",
        stderr(&out)
    );
    assert!(!h.audit.all_json().contains(token));
}

/// Issue 13: an operator ends one live session from the web page's live
/// view. The session is listed while open, its running statement is
/// cancelled, the client is told who ended it, the close records
/// `terminated`, and the grant stays usable.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_ends_one_live_session_and_the_grant_stays() {
    let h = Harness::start(Options::default()).await;
    let g = h.grant(Profile::Read);
    let client = h.connect(&g).await;
    client.simple_query("SELECT 1").await.unwrap();
    let listed = h.live.list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].grant_id, g.id);
    assert_eq!(listed[0].protocol, "postgres");
    let live_gauge = || {
        h.metrics
            .render()
            .lines()
            .find(|l| l.starts_with("sluice_sessions_live{"))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    assert_eq!(live_gauge().as_deref(), Some("1"));

    let sleeper = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(h.live.end(&listed[0].id, "Dana Admin"));
    let err = tokio::time::timeout(StdDuration::from_secs(5), sleeper)
        .await
        .expect("the session ends at once")
        .unwrap()
        .unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("ended by Dana Admin") || err.is_closed(),
        "{text}"
    );
    let closed = h.audit.wait_for(EventKind::SessionClosed, 1).await;
    assert_eq!(closed[0].detail["end"], "terminated");
    for _ in 0..50 {
        if h.backend_sessions(&g.id) == 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(h.backend_sessions(&g.id), 0, "its statement was cancelled");
    assert!(h.live.list().is_empty());
    assert_eq!(live_gauge().as_deref(), Some("0"));
    // The grant itself is untouched: a new session opens.
    let again = h.connect(&g).await;
    again.simple_query("SELECT 1").await.unwrap();
}
