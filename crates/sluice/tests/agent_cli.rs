//! The agent's side of the CLI against a real gateway: discovery
//! (`connections list`, `grant list`) and `sluice exec`, which runs an
//! unchanged `psql` through a fresh grant and revokes it afterwards.

mod common;

use common::{AGENT, Options, Serve, text};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_runs_psql_through_a_grant_and_revokes_it() {
    let serve = Serve::start(Options::default()).await;
    let token = serve.token(AGENT).await;
    let t = Some(token.as_str());

    let list: Value =
        serde_json::from_str(&serve.ok(t, &["connections", "list", "--json"])).unwrap();
    assert_eq!(list[0]["name"], "shop", "{list}");
    assert_eq!(list[0]["kind"], "postgres");
    assert_eq!(list[0]["profile"], "write");

    // psql, unchanged, gets its whole connection from the environment.
    let out = serve.sluice(
        t,
        &[
            "exec",
            "shop",
            "--",
            "psql",
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT 40 + 2",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "42");
    let grants: Value = serde_json::from_str(&serve.ok(t, &["grant", "list", "--json"])).unwrap();
    assert_eq!(
        grants[0]["status"], "revoked",
        "revoked once the command exited: {grants}"
    );
    assert_eq!(grants[0]["reason"], "sluice exec");

    // The command's failure is exec's exit status; --keep keeps the grant.
    let out = serve.sluice(
        t,
        &[
            "exec",
            "shop",
            "--keep",
            "--",
            "psql",
            "-X",
            "-c",
            "SELECT * FROM no_such_table",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no_such_table"),
        "{}",
        text(&out.stderr)
    );
    let grants: Value = serde_json::from_str(&serve.ok(t, &["grant", "list", "--json"])).unwrap();
    assert_eq!(grants[0]["status"], "active", "{grants}");
    // The secret went to the child's environment only, never to output.
    let secret_free = |o: &std::process::Output| {
        !text(&o.stdout).contains("sls_") && !text(&o.stderr).contains("sls_")
    };
    assert!(secret_free(&out));

    // A connection this identity may not use: said clearly, nothing run.
    let out = serve.sluice(t, &["exec", "nope", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("connections list"),
        "{}",
        text(&out.stderr)
    );
}
