//! The agent's side of the CLI against a real gateway: discovery
//! (`connections list`, `grant list`) and `sluice exec`, which runs an
//! unchanged `psql` through a fresh grant and revokes it afterwards.

mod common;

use common::{AGENT, Options, Serve, text};
use serde_json::Value;
use sluice_testkit::oidc::OidcClient;

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
    assert_eq!(out.status.code(), Some(5), "not_found");
    assert!(
        text(&out.stderr).contains("connections list"),
        "{}",
        text(&out.stderr)
    );
}

/// Every failure has a machine code and its own exit status; `--json`
/// prints errors as JSON; the environment is in `--help`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_have_codes_exit_statuses_and_json() {
    let serve = Serve::start(Options::default()).await;
    let token = serve.token(AGENT).await;
    let t = Some(token.as_str());
    let json_error = |o: &std::process::Output| -> Value {
        serde_json::from_str(text(&o.stdout).trim()).expect("a JSON error on stdout")
    };

    let out = serve.sluice(
        t,
        &["grant", "show", "g_aaaaaaaaaaaaaaaaaaaaaaaaaa", "--json"],
    );
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(json_error(&out)["error"], "not_found");

    let out = serve.sluice(None, &["grant", "list", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json_error(&out)["error"], "unauthorized");

    let out = serve.sluice(Some("not-a-token"), &["connections", "list"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("sluice: "));

    let mut closed = std::process::Command::new(common::BIN);
    closed
        .args(["grant", "list", "--json"])
        .env("SLUICE_URL", "http://127.0.0.1:1")
        .env("SLUICE_TOKEN", &token);
    let out = closed.output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(json_error(&out)["error"], "unavailable");

    // Revoke and verify have JSON forms.
    let g = serve.grant(AGENT).await;
    let id = g["id"].as_str().unwrap();
    let revoked: Value =
        serde_json::from_str(&serve.ok(t, &["grant", "revoke", id, "--json"])).unwrap();
    assert_eq!(revoked["status"], "revoked");
    let config = serve.config.to_str().unwrap();
    let report: Value =
        serde_json::from_str(&serve.ok(None, &["audit", "verify", "--config", config, "--json"]))
            .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["events"].as_u64().unwrap() > 0);

    let help = serve.ok(None, &["--help"]);
    assert!(
        help.contains("SLUICE_URL") && help.contains("SLUICE_TOKEN"),
        "{help}"
    );
    assert!(help.contains("7 denied"), "{help}");
    let bash = serve.ok(None, &["completions", "bash"]);
    assert!(bash.contains("_sluice"), "a bash completion function");
}

/// `sluice login` by client credentials (both ways of sending the secret)
/// keeps the token for the gateway, private; other commands then need no
/// SLUICE_TOKEN; `whoami` says who the gateway takes it for; `logout`
/// forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_keeps_a_token_for_the_gateway() {
    let poster = "agent-post";
    let serve = Serve::start(Options {
        clients: vec![OidcClient::new(poster, &["agents"]).auth_method("client_secret_post")],
        ..Options::default()
    })
    .await;
    let config_home = serve.dir.path().join("config");
    let login = |client: &str, auth: &str| {
        std::process::Command::new(common::BIN)
            .args([
                "login",
                "--issuer",
                serve.idp.issuer(),
                "--client-id",
                client,
            ])
            .args(["--resource", serve.idp.audience(), "--client-auth", auth])
            .env("SLUICE_URL", &serve.api)
            .env("XDG_CONFIG_HOME", &config_home)
            .env("SLUICE_CLIENT_SECRET", OidcClient::secret_for(client))
            .env_remove("SLUICE_TOKEN")
            .output()
            .unwrap()
    };
    let out = login(AGENT, "client-secret-basic");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("logged in"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("eyJ"),
        "the token is never printed"
    );
    use std::os::unix::fs::PermissionsExt;
    let file = config_home.join("sluice").join("tokens.json");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);

    let me: Value = serde_json::from_str(&serve.ok(None, &["whoami", "--json"])).unwrap();
    assert_eq!(me["subject"], AGENT, "{me}");
    assert_eq!(me["groups"][0], "agents");
    assert!(me["token_expires_at"].as_i64().is_some());
    let list = serve.ok(None, &["connections", "list"]);
    assert!(list.contains("shop"), "{list}");

    // The secret in the form instead (client_secret_post).
    let out = login(poster, "client-secret-post");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let me: Value = serde_json::from_str(&serve.ok(None, &["whoami", "--json"])).unwrap();
    assert_eq!(me["subject"], poster);

    let status: Value = serde_json::from_str(&serve.ok(None, &["status", "--json"])).unwrap();
    assert_eq!(status["ready"], true, "{status}");
    assert_eq!(status["identity"]["subject"], poster);
    serve.ok(None, &["logout"]);
    let out = serve.sluice(None, &["whoami"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

/// `sluice connect`: unchanged psql and pgbench through a local port, with
/// no secret in their connection string; Ctrl-C revokes the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connect_carries_unchanged_psql_and_pgbench() {
    use tokio::io::AsyncBufReadExt;
    let serve = Serve::start(Options {
        setup: "CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2), (3);".into(),
        // The grant names the listener's certificate: the hop to the
        // gateway is TLS with exactly it.
        listener_tls: true,
        ..Options::default()
    })
    .await;
    let token = serve.token(AGENT).await;
    let mut child = tokio::process::Command::new(common::BIN)
        .args(["connect", "shop"])
        .env("SLUICE_URL", &serve.api)
        .env("SLUICE_TOKEN", &token)
        .env("XDG_CONFIG_HOME", serve.dir.path().join("config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("connect says where it listens")
        .unwrap()
        .unwrap();
    let port = first.rsplit(':').next().unwrap().to_string();
    let conninfo = format!("host=127.0.0.1 port={port} dbname=shop user=agent sslmode=disable");
    let psql = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            &conninfo,
            "-c",
            "SELECT count(*) FROM items",
        ])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(psql.status.success(), "{}", text(&psql.stderr));
    assert_eq!(text(&psql.stdout).trim(), "3");

    let script = serve.dir.path().join("bench.sql");
    std::fs::write(&script, "SELECT count(*) FROM items;\n").unwrap();
    let bench = std::process::Command::new("pgbench")
        .args(["-n", "-c", "2", "-t", "25", "-f"])
        .arg(&script)
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "agent", "shop"])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(
        bench.status.success(),
        "{}{}",
        text(&bench.stdout),
        text(&bench.stderr)
    );
    assert!(text(&bench.stdout).contains("number of transactions actually processed: 50/50"));

    // Ctrl-C: the grant is revoked.
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let grants: Value =
        serde_json::from_str(&serve.ok(Some(&token), &["grant", "list", "--json"])).unwrap();
    assert_eq!(grants[0]["status"], "revoked", "{grants}");
    assert_eq!(grants[0]["reason"], "sluice connect");
}

/// A `sluice exec` stopped by a signal passes it to its command and still
/// revokes the grant before it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_passes_signals_on_and_still_revokes() {
    let serve = Serve::start(Options::default()).await;
    let token = serve.token(AGENT).await;
    let child = tokio::process::Command::new(common::BIN)
        .args(["exec", "shop", "--", "sleep", "30"])
        .env("SLUICE_URL", &serve.api)
        .env("SLUICE_TOKEN", &token)
        .env("XDG_CONFIG_HOME", serve.dir.path().join("config"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Once the grant is active, the command runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let grants: Value =
            serde_json::from_str(&serve.ok(Some(&token), &["grant", "list", "--json"])).unwrap();
        if grants[0]["status"] == "active" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no grant: {grants}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exec ended with its command")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGTERM),
        "the command's end"
    );
    let grants: Value =
        serde_json::from_str(&serve.ok(Some(&token), &["grant", "list", "--json"])).unwrap();
    assert_eq!(grants[0]["status"], "revoked", "{grants}");
}

/// `sluice login` by `private_key_jwt` (the client signs an assertion with
/// its own key; no shared secret), as Okta recommends for service apps.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_by_private_key_jwt() {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let point = key.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "agent-key-1", "use": "sig", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    }]});
    let client = "agent-jwt";
    let serve = Serve::start(Options {
        clients: vec![OidcClient::new(client, &["agents"]).private_key_jwt(jwks)],
        ..Options::default()
    })
    .await;
    let pem = serve.dir.path().join("agent.key");
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    let login = |key_file: &std::path::Path| {
        std::process::Command::new(common::BIN)
            .args([
                "login",
                "--issuer",
                serve.idp.issuer(),
                "--client-id",
                client,
            ])
            .args(["--resource", serve.idp.audience()])
            .args([
                "--client-auth",
                "private-key-jwt",
                "--key-id",
                "agent-key-1",
            ])
            .arg("--private-key")
            .arg(key_file)
            .env("SLUICE_URL", &serve.api)
            .env("XDG_CONFIG_HOME", serve.dir.path().join("config"))
            .env_remove("SLUICE_TOKEN")
            .env_remove("SLUICE_CLIENT_SECRET")
            .output()
            .unwrap()
    };
    let out = login(&pem);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let me: Value = serde_json::from_str(&serve.ok(None, &["whoami", "--json"])).unwrap();
    assert_eq!(me["subject"], client, "{me}");
    // Another key is refused by the issuer.
    let other = serve.dir.path().join("other.key");
    std::fs::write(&other, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let out = login(&other);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
}

/// `sluice login --device`: a person signs in through the provider's own
/// pages (the test plays them) while the CLI waits; the token is kept
/// with its refresh token and refreshed before it expires; a person who
/// refuses at the issuer leaves nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_by_device_flow_and_refresh() {
    use tokio::io::AsyncBufReadExt;
    let cli = "sluice-cli";
    let serve = Serve::start(Options {
        // 20 s tokens: inside the minute before expiry, so the next
        // command refreshes.
        clients: vec![OidcClient::device(cli).ttl(20)],
        users: vec![("alice".into(), vec!["agents".into()])],
        ..Options::default()
    })
    .await;
    let config_home = serve.dir.path().join("config");
    let login = |as_whom: Option<&'static str>| {
        let mut cmd = tokio::process::Command::new(common::BIN);
        cmd.args([
            "login",
            "--device",
            "--json",
            "--issuer",
            serve.idp.issuer(),
        ])
        .args(["--client-id", cli, "--resource", serve.idp.audience()])
        .env("SLUICE_URL", &serve.api)
        .env("XDG_CONFIG_HOME", &config_home)
        .env_remove("SLUICE_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let idp = &serve.idp;
        async move {
            let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
            let said: Value = loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("sign-in instructions");
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    break v;
                }
            };
            assert!(said["user_code"].as_str().is_some(), "{said}");
            let uri = said["verification_uri_complete"].as_str().unwrap();
            idp.sign_in_on_device(uri, as_whom).await.unwrap();
            let out =
                tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
                    .await
                    .expect("login finishes after the sign-in")
                    .unwrap();
            let mut rest = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                rest.push_str(&l);
            }
            (out, rest)
        }
    };
    let (out, stderr) = login(Some("alice")).await;
    assert!(out.status.success(), "{stderr}");
    let said: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(said["identity"]["subject"], "alice", "{said}");
    assert_eq!(said["identity"]["kind"], "human");
    assert_eq!(said["refreshable"], true);
    assert!(!text(&out.stdout).contains("eyJ") && !stderr.contains("eyJ"));

    let file = config_home.join("sluice").join("tokens.json");
    let cached = || -> Value { serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap() };
    let before = cached()[&serve.api].clone();
    assert!(before["refresh"]["token"].as_str().is_some(), "{before}");
    // The next command refreshes the token (it expires within a minute).
    let me: Value = serde_json::from_str(&serve.ok(None, &["whoami", "--json"])).unwrap();
    assert_eq!(me["subject"], "alice");
    let after = cached()[&serve.api].clone();
    assert_ne!(after["token"], before["token"], "refreshed");
    assert_ne!(
        after["refresh"]["token"], before["refresh"]["token"],
        "the issuer rotated the refresh token"
    );
    // A refused refresh: said, forgotten, and the token in hand still used
    // until it expires.
    let mut broken = cached();
    broken[&serve.api]["refresh"]["token"] = "not-a-refresh-token".into();
    std::fs::write(&file, broken.to_string()).unwrap();
    let out = serve.sluice(None, &["whoami", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("run `sluice login` again"),
        "{}",
        text(&out.stderr)
    );
    assert!(cached()[&serve.api]["refresh"].is_null());

    // The person refuses at the issuer: denied, nothing kept.
    serve.ok(None, &["logout"]);
    let (out, stderr) = login(None).await;
    assert_eq!(out.status.code(), Some(7), "denied: {stderr}");
    let said: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(said["error"], "denied", "{said}");
    let out = serve.sluice(None, &["whoami"]);
    assert_eq!(out.status.code(), Some(3));
}
