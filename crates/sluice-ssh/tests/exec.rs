//! `ssh HOST COMMAND` through Sluice with unchanged OpenSSH on both sides:
//! allowed lines run on the host in the pinned shell, denied ones never
//! reach it, every decision and outcome is recorded.

mod common;

use std::sync::Arc;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_allowed_command_runs_on_the_host_with_its_output_and_status() {
    let gw = Gateway::start("").await;
    std::fs::write(gw.host_file("notes.txt"), "hello from the host\n").unwrap();
    let g = gw.grant(Profile::Read);
    let home = gw.sshd.home();
    let line = format!("cd {} && cat notes.txt | grep hello", home.display());
    let out = gw.ssh(&g, &[&line]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from the host\n");

    let out = gw.ssh(&g, &["ls /nonexistent-dir"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the host's exit status passes through"
    );

    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 2).await;
    assert_eq!(allowed[0].detail["statements"][0]["text"], line);
    assert_eq!(allowed[0].detail["protocol"], "ssh");
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 2).await;
    assert_eq!(done[0].detail["outcome"], "ok");
    assert_eq!(done[1].detail["error"]["sqlstate"], "exit 2");
    let opened = gw.audit.wait_for(EventKind::SessionOpened, 1).await;
    assert_eq!(opened[0].detail["protocol"], "ssh");
    assert!(
        !gw.audit.all_json().contains(&g.secret),
        "no secret in the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_denied_command_never_reaches_the_host() {
    let gw = Gateway::start("").await;
    let victim = gw.host_file("keep.txt");
    std::fs::write(&victim, "precious").unwrap();
    let g = gw.grant(Profile::Read);
    for line in [
        format!("rm {}", victim.display()),
        format!("ls; rm {}", victim.display()),
        format!("echo $(rm {})", victim.display()),
        format!("cat {0} > {0}", victim.display()),
        "bash -c 'rm -rf ~'".to_string(),
        "$X".to_string(),
    ] {
        let out = gw.ssh(&g, &[&line]);
        assert_eq!(out.status.code(), Some(126), "{line}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("sluice: statement denied"),
            "{line}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "precious",
            "{line}"
        );
    }
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 6).await;
    assert_eq!(denied.len(), 6);
    assert!(gw.audit.of_kind(EventKind::StatementCompleted).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guardrails_judge_commands_by_name() {
    let gw = Gateway::start(
        r#"
[[connections.guardrails]]
name = "no-restarts"
action = "deny"
commands = ["systemctl restart *", "sudo *"]
message = "restarts go through the change process"
"#,
    )
    .await;
    let g = gw.grant(Profile::Admin);
    let out = gw.ssh(&g, &["sudo systemctl restart nginx"]);
    assert_eq!(out.status.code(), Some(126));
    assert!(stderr(&out).contains("no-restarts"), "{}", stderr(&out));
    let out = gw.ssh(&g, &["echo fine"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_need_a_live_grant_and_its_secret() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let out = gw.ssh_as(&g.id, "sls_wrong", &["true"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let out = gw.ssh_as("g_aaaaaaaaaaaaaaaaaaaaaaaaaa", &g.secret, &["true"]);
    assert_eq!(out.status.code(), Some(255));
    gw.control.revoke(&g.id);
    let out = gw.ssh(&g, &["true"]);
    assert_eq!(
        out.status.code(),
        Some(255),
        "a revoked grant logs in no more"
    );
    let rejected = gw.audit.wait_for(EventKind::SessionRejected, 3).await;
    assert!(rejected.len() >= 3, "{rejected:?}");
    assert!(!gw.audit.all_json().contains(&g.secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_with_another_key_is_refused_before_any_credential() {
    let sshd = tokio::task::spawn_blocking(sluice_testkit::sshd::Sshd::start)
        .await
        .unwrap()
        .unwrap();
    let other = tokio::task::spawn_blocking(sluice_testkit::sshd::Sshd::start)
        .await
        .unwrap()
        .unwrap();
    let wrong = other.host_key();
    let gw = Gateway::on(sshd, move |_| wrong.clone(), "").await;
    let g = gw.grant(Profile::Read);
    let out = gw.ssh(&g, &["echo hi"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    let rejected = gw.audit.wait_for(EventKind::SessionRejected, 1).await;
    let cause = rejected[0].detail["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("host key"), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarding_and_environment_are_refused_and_recorded() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    let out = gw.ssh(
        &g,
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:9",
            "echo hi",
        ],
    );
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let out = gw.ssh(&g, &["-o", "SendEnv=LANG", "echo hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 2).await;
    let rules: Vec<&str> = denied
        .iter()
        .filter_map(|e| e.detail["rule"].as_str())
        .collect();
    assert!(rules.contains(&"default:forwarding"), "{rules:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_the_grant_ends_the_session_and_its_command() {
    let gw = Arc::new(Gateway::start("").await);
    let g = Arc::new(gw.grant(Profile::Write));
    let marker = gw.host_file("still-ran");
    let line = format!("sleep 3 && touch {}", marker.display());
    let (gw2, g2) = (gw.clone(), g.clone());
    let started = std::time::Instant::now();
    let running = std::thread::spawn(move || gw2.ssh(&g2, &[&line]));
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    gw.control.revoke(&g.id);
    let out = tokio::task::spawn_blocking(move || running.join().unwrap())
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(2900),
        "ended at once"
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    assert!(!marker.exists(), "the command was stopped with the session");
    let closed = gw.audit.wait_for(EventKind::SessionClosed, 1).await;
    assert_eq!(closed[0].detail["end"], "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_ends_a_live_ssh_session() {
    let gw = Arc::new(Gateway::start("").await);
    let g = Arc::new(gw.grant(Profile::Read));
    let (gw2, g2) = (gw.clone(), g.clone());
    let running = std::thread::spawn(move || gw2.ssh(&g2, &["sleep 20"]));
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = gw.live.list();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].protocol, "ssh");
    assert!(gw.live.end(&listed[0].id, "Dana Admin"));
    let out = tokio::task::spawn_blocking(move || running.join().unwrap())
        .await
        .unwrap();
    assert!(
        stderr(&out).contains("ended by Dana Admin"),
        "{}",
        stderr(&out)
    );
    let closed = gw.audit.wait_for(EventKind::SessionClosed, 1).await;
    assert_eq!(closed[0].detail["end"], "terminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sluices_own_bookkeeping_never_reaches_the_client() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    for args in [
        vec!["echo out; echo err >&2"],
        vec!["-tt", "echo out; echo err >&2"],
    ] {
        let out = gw.ssh(&g, &args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("out") && all.contains("err"),
            "{args:?}: {all}"
        );
        assert!(!all.contains("sluice-pgid"), "{args:?}: {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn command_output_goes_through_the_value_detectors() {
    let gw = Gateway::start("\n[connections.masking]\nexempt_groups = [\"dba\"]\n").await;
    std::fs::write(
        gw.host_file("customers.csv"),
        "id,card,email\n1,4111 1111 1111 1111,ada@example.com\n",
    )
    .unwrap();
    let g = gw.grant(Profile::Read);
    let file = gw.host_file("customers.csv");
    // Printed in pieces: the card number is split across writes.
    let line = format!(
        "printf '4111 1111 '; sleep 0.01; printf '1111 1111\\n'; cat {}",
        file.display()
    );
    let out = gw.ssh(&g, &[&line]);
    let shown = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!shown.contains("4111 1111 1111 1111"), "{shown}");
    assert!(!shown.contains("ada@example.com"), "{shown}");
    assert!(shown.contains("1111"), "the last digits stay: {shown}");
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 1).await;
    assert!(done[0].detail["masked"].is_object(), "{:?}", done[0].detail);
    assert!(!gw.audit.all_json().contains("4111 1111 1111 1111"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_with_a_registered_key_logs_in_with_that_key_only() {
    let gw = Gateway::start("").await;
    let keygen = |name: &str| {
        let path = gw.dir.path().join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        path
    };
    let (mine, other) = (keygen("agent_key"), keygen("other_key"));
    let public = std::fs::read_to_string(mine.with_extension("pub")).unwrap();
    let secret = sluice_core::secret::new_secret();
    let id = sluice_core::grant::new_grant_id();
    let mut grant = make_grant(
        &id,
        &secret,
        CONN,
        Profile::Read,
        sluice_core::GrantStatus::Active,
        chrono::Duration::minutes(5),
    );
    grant.ssh_key = Some(sluice_core::grant::ssh_public_key(&public).unwrap());
    gw.control.insert(grant);
    let with_keys = |keys: &[&std::path::Path]| {
        let mut ssh = std::process::Command::new("ssh");
        ssh.args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]);
        for key in keys {
            ssh.arg("-i").arg(key);
        }
        ssh.args(["-p", &gw.addr.port().to_string()])
            .arg(format!("{id}@127.0.0.1"))
            .arg("echo by-key")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = with_keys(&[&mine]);
    assert_eq!(stdout(&out), "by-key\n", "{}", stderr(&out));
    let out = with_keys(&[&other]);
    assert!(!out.status.success(), "another key is refused");

    // A client offers every key it holds: the wrong ones are turned away
    // quietly and the right one still gets in.
    let out = with_keys(&[&other, &other, &other, &mine]);
    assert_eq!(stdout(&out), "by-key\n", "{}", stderr(&out));
    assert!(
        gw.audit.of_kind(EventKind::SessionRejected).is_empty(),
        "a wrong key offered is not a failed login: {}",
        gw.audit.all_json()
    );
}
