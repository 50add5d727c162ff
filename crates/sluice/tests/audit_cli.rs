//! `sluice audit keygen` and `verify --public-key` through the binary, and
//! a gateway whose `[audit]` section exports to a file and signs its chain.

use sluice_audit::{AuditLog, CheckpointPolicy, Checkpointer, chain_hash, load_signing_key};
use sluice_core::audit::{AuditEvent, EventKind};
use sluice_store::Store;
use sluice_testkit::ports::free_port;
use sqlx::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn sluice(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SLUICE_STORE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `keygen --out FILE`: the private key (0600) and FILE.pub; the public
/// key in base64 on stdout.
fn keygen(path: &Path) -> String {
    let out = sluice(&["audit", "keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    text(&out.stdout).trim().to_string()
}

/// A store with `n` events and a checkpoint signed by the key at `key`.
async fn signed_store(dir: &Path, key: &Path, n: usize) -> String {
    let url = format!("sqlite:{}", dir.join("sluice.db").display());
    let store = Store::open(&url).await.unwrap();
    let log = AuditLog::start(store.clone());
    for i in 0..n {
        log.append(AuditEvent::new(EventKind::GrantRequested).detail(serde_json::json!({"i": i})))
            .await
            .unwrap();
    }
    let key = Arc::new(load_signing_key(key).unwrap());
    let policy = CheckpointPolicy {
        every_events: 1000,
        interval: Duration::from_secs(3600),
    };
    Checkpointer::new(store.clone(), key, policy)
        .round(true)
        .await
        .unwrap();
    store.close().await;
    url
}

#[tokio::test]
async fn keygen_then_verify_with_the_public_key_and_a_rewrite_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    let public_b64 = keygen(&key);
    let public_file = dir.path().join("audit.key.pub");
    assert!(
        std::fs::read_to_string(&public_file)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    // Refuses to overwrite a key.
    let again = sluice(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success());

    let url = signed_store(dir.path(), &key, 12).await;
    for k in [public_file.to_str().unwrap(), public_b64.as_str()] {
        let out = sluice(&["audit", "verify", "--store", &url, "--public-key", k]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("audit chain ok: 12 events"), "{stdout}");
        assert!(stdout.contains("signatures verified"), "{stdout}");
    }

    // Another key: the checkpoint's signature does not verify.
    let other = keygen(&dir.path().join("other.key"));
    let out = sluice(&["audit", "verify", "--store", &url, "--public-key", &other]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("sequence 12"),
        "{}",
        text(&out.stderr)
    );

    // Rewrite event 5 and recompute every hash after it.
    let path = dir.path().join("sluice.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let store = Store::open(&url).await.unwrap();
    let rows = store.audit_after(4, 100).await.unwrap();
    let mut prev = rows[0].prev_hash.clone();
    for (i, r) in rows.iter().enumerate() {
        let body = if i == 0 {
            r.body.replace("\"i\":4", "\"i\":40")
        } else {
            r.body.clone()
        };
        let hash = chain_hash(&prev, &body);
        sqlx::query("UPDATE audit_events SET body = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&body)
            .bind(&prev)
            .bind(&hash)
            .bind(r.seq)
            .execute(&mut c)
            .await
            .unwrap();
        prev = hash;
    }
    let out = sluice(&[
        "audit",
        "verify",
        "--store",
        &url,
        "--public-key",
        &public_b64,
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("sequence 12") && stderr.contains("signed checkpoint"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_gateway_exports_its_events_and_signs_its_chain_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    let public_b64 = keygen(&key);
    let export = dir.path().join("export/audit.jsonl");
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\napi_listen = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n\n\
             [postgres]\nlisten = \"127.0.0.1:{}\"\n\n\
             [audit.checkpoints]\nsigning_key_file = \"{}\"\nevery_events = 100\n\n\
             [[audit.sinks]]\nname = \"local\"\nkind = \"file\"\npath = \"{}\"\n\n\
             [[connections]]\nname = \"db\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n\
             database = \"db\"\nuser = \"sluice\"\ntls = \"disable\"\n\n\
             [[rules]]\nname = \"r\"\ngroups = [\"g\"]\nconnection = \"db\"\nprofile = \"read\"\n\
             max_ttl = \"10m\"\n",
            free_port(),
            dir.path().join("data").display(),
            free_port(),
            key.display(),
            export.display()
        ),
    )
    .unwrap();
    let check = sluice(&["config", "check", config.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));

    let mut child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The gateway records config.loaded at start; the file sink gets it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&export).is_ok_and(|t| t.contains("config.loaded")) {
        assert!(Instant::now() < deadline, "nothing exported");
        assert!(child.try_wait().unwrap().is_none(), "sluice serve exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");

    let line = std::fs::read_to_string(&export).unwrap();
    let event: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(
        (event["v"].as_i64(), event["seq"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(event["hash"].is_string() && event["prev_hash"].is_string());

    // Everything was signed by the final checkpoint at shutdown.
    let out = sluice(&[
        "audit",
        "verify",
        "--config",
        config.to_str().unwrap(),
        "--public-key",
        &public_b64,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("signatures verified"), "{stdout}");
    assert!(
        !stdout.contains("covered by the hash chain only"),
        "{stdout}"
    );
}

/// Issue 13: `audit verify --config X` run from another directory read a
/// relative `data_dir` against the working directory, created an empty
/// store there and said "audit chain ok: 0 events". Relative paths are read
/// from the file's directory, and a verifier never creates a store.
#[tokio::test]
async fn verify_reads_the_store_the_config_names_wherever_it_is_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("etc");
    std::fs::create_dir_all(conf_dir.join("data")).unwrap();
    let key = dir.path().join("audit.key");
    keygen(&key);
    signed_store(&conf_dir.join("data"), &key, 5).await;
    let config = conf_dir.join("sluice.toml");
    std::fs::write(&config, "[server]\ndata_dir = \"data\"\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |config: &Path| {
        Command::new(BIN)
            .args(["audit", "verify", "--config", config.to_str().unwrap()])
            .current_dir(elsewhere.path())
            .env_remove("SLUICE_STORE")
            .output()
            .unwrap()
    };
    let out = run(&config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit chain ok: 5 events"),
        "{}",
        text(&out.stdout)
    );
    // A config whose store does not exist is an error, and nothing is made.
    let empty = conf_dir.join("empty.toml");
    std::fs::write(&empty, "[server]\ndata_dir = \"nowhere\"\n").unwrap();
    let out = run(&empty);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no store at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!conf_dir.join("nowhere").exists());
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing created here"
    );
}
