//! `sftp` and `scp` (which speaks SFTP) through Sluice: each file
//! operation is judged on the path the host resolves, reads and writes by
//! profile and by `paths` guardrails.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_grant_downloads_but_cannot_upload_or_remove() {
    let gw = Gateway::start("").await;
    std::fs::write(gw.host_file("report.csv"), "a,b\n1,2\n").unwrap();
    let local = gw.dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("upload.txt"), "new").unwrap();
    let g = gw.grant(Profile::Read);

    let out = gw.sftp(&g, &format!("get report.csv {}\n", local.display()));
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        gw.audit.all_json()
    );
    assert_eq!(
        std::fs::read_to_string(local.join("report.csv")).unwrap(),
        "a,b\n1,2\n"
    );

    let out = gw.sftp(&g, &format!("put {}/upload.txt\n", local.display()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("denied"),
        "{}",
        stderr(&out)
    );
    assert!(!exists(&gw.host_file("upload.txt")));

    let out = gw.sftp(&g, "rm report.csv\n");
    assert!(!out.status.success());
    assert!(exists(&gw.host_file("report.csv")));

    let allowed = gw.audit.of_kind(EventKind::StatementAllowed);
    let home = gw.sshd.home();
    let read = format!("{}/report.csv", home.display());
    assert!(
        allowed
            .iter()
            .any(|e| e.detail["statements"][0]["tables"][0] == read.as_str()),
        "the canonical path is recorded: {allowed:?}"
    );
    assert!(gw.audit.of_kind(EventKind::StatementDenied).len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn path_guardrails_see_through_relative_paths() {
    let gw = Gateway::start(
        r#"
[[connections.guardrails]]
name = "no-secrets"
action = "deny"
paths = ["*/secrets/*"]
"#,
    )
    .await;
    let secrets = gw.host_file("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("key.pem"), "PRIVATE").unwrap();
    std::fs::create_dir(gw.host_file("app")).unwrap();
    let local = gw.dir.path().join("got");
    let g = gw.grant(Profile::Write);
    for path in ["secrets/key.pem", "app/../secrets/key.pem"] {
        let out = gw.sftp(&g, &format!("get {path} {}\n", local.display()));
        assert!(!out.status.success(), "{path}: {}", gw.audit.all_json());
        assert!(!local.exists(), "{path} was read");
    }
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 2).await;
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(
        denied.iter().all(|e| e.detail["rule"] == "no-secrets"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scp_copies_both_ways_under_a_write_grant() {
    let gw = Gateway::start("").await;
    std::fs::write(gw.host_file("down.txt"), "down").unwrap();
    let up = gw.dir.path().join("up.txt");
    std::fs::write(&up, "up").unwrap();
    let g = gw.grant(Profile::Write);
    let home = gw.sshd.home();
    let out = gw.scp(
        &g,
        &format!("REMOTE:{}/down.txt", home.display()),
        gw.dir.path().join("got.txt").to_str().unwrap(),
    );
    assert!(
        out.status.success(),
        "{} {:?} {}",
        stderr(&out),
        out.status,
        gw.audit.all_json()
    );
    assert_eq!(
        std::fs::read_to_string(gw.dir.path().join("got.txt")).unwrap(),
        "down"
    );
    let out = gw.scp(
        &g,
        up.to_str().unwrap(),
        &format!("REMOTE:{}/up.txt", home.display()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(gw.host_file("up.txt")).unwrap(),
        "up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_read_by_sftp_and_scp_go_through_the_value_detectors() {
    let gw = Gateway::start("\n[connections.masking]\nexempt_groups = [\"dba\"]\n").await;
    // Longer than one SFTP read, with the card number across the cut
    // between two of the client's reads (32 KiB each).
    let mut text = "x".repeat(32 * 1024 - 8);
    text.push_str("\n1,4111 1111 1111 1111,ada@example.com\nlast line\n");
    std::fs::write(gw.host_file("customers.csv"), &text).unwrap();
    let g = gw.grant(Profile::Write);
    let local = gw.dir.path().join("local");
    std::fs::create_dir(&local).unwrap();

    let out = gw.sftp(&g, &format!("get customers.csv {}\n", local.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    let got = std::fs::read_to_string(local.join("customers.csv")).unwrap();
    assert!(!got.contains("4111 1111 1111 1111"), "{}", &got[32000..]);
    assert!(!got.contains("ada@example.com"), "{}", &got[32000..]);
    assert!(got.ends_with("last line\n"), "the rest of the file arrives");

    let home = gw.sshd.home();
    let copy = gw.dir.path().join("copy.csv");
    let out = gw.scp(
        &g,
        &format!("REMOTE:{}/customers.csv", home.display()),
        copy.to_str().unwrap(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = std::fs::read_to_string(&copy).unwrap();
    assert!(!got.contains("4111 1111 1111 1111"));
    assert!(got.ends_with("last line\n"));

    // What was masked is recorded against the open, never the value.
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 2).await;
    assert!(
        done.iter().all(|e| e.detail["masked"].is_object()),
        "{done:?}"
    );
    assert!(!gw.audit.all_json().contains("4111 1111 1111 1111"));
    // Writes are not touched: the host's file is as it was.
    assert_eq!(
        std::fs::read_to_string(gw.host_file("customers.csv")).unwrap(),
        text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_too_large_to_mask_whole_is_refused_with_the_reason() {
    let gw = Gateway::start("\n[connections.masking]\n").await;
    let big = vec![b'a'; 17 * 1024 * 1024];
    std::fs::write(gw.host_file("big.bin"), &big).unwrap();
    let g = gw.grant(Profile::Read);
    let local = gw.dir.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let out = gw.sftp(&g, &format!("get big.bin {}\n", local.display()));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("masked"), "{}", stderr(&out));
}
