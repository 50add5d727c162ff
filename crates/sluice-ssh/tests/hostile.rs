//! Hostile clients and broken hosts: a client that never logs in, one
//! that sends garbage, an oversized command line, many channels at once,
//! and a host that goes away mid-command. Each costs the gateway one
//! connection at most, and the record says what happened.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_logs_in_is_cut_off_and_garbage_is_refused() {
    let gw = Gateway::start("").await;
    let addr = gw.addr;
    let started = Instant::now();
    let silent = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        // The banner, then silence from us until the gateway hangs up.
        let _ = s.read_to_end(&mut buf);
        buf
    });
    let garbage = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let _ = s.write_all(&[0xff; 64 * 1024]);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    });
    let banner = silent.await.unwrap();
    assert!(banner.starts_with(b"SSH-2.0-"), "{banner:?}");
    // auth_timeout is 10 s by default.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    garbage.await.unwrap();
    // The gateway still serves others.
    let g = gw.grant(Profile::Read);
    let out = gw.ssh(&g, &["echo still-here"]);
    assert_eq!(stdout(&out), "still-here\n", "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_command_line_is_refused_unjudged() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let long = format!("echo {}", "a".repeat(70 * 1024));
    let out = gw.ssh(&g, &[&long]);
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than this gateway judges"),
        "{}",
        stderr(&out)
    );
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 1).await;
    assert_eq!(denied[0].detail["rule"], "default:command-size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_channels_on_one_connection_each_judged() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    // OpenSSH multiplexes sessions over one connection with a control
    // master; run twenty commands through one.
    let control = gw.dir.path().join("mux");
    let master = format!("ControlPath={}", control.display());
    // The master stays in the background (ControlPersist): its output is
    // not waited for.
    let askpass = gw.dir.path().join("askpass-mux");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\nprintf '%s\\n' '{}'\n", g.secret),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let status = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .args([
            "-o",
            "ControlMaster=auto",
            "-o",
            &master,
            "-o",
            "ControlPersist=30",
        ])
        .args(["-p", &gw.addr.port().to_string()])
        .arg(format!("{}@127.0.0.1", g.id))
        .arg("true")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut handles = Vec::new();
    for i in 0..20 {
        let path = control.clone();
        let port = gw.addr.port();
        let user = g.id.clone();
        handles.push(std::thread::spawn(move || {
            std::process::Command::new("ssh")
                .args(["-F", "/dev/null", "-o"])
                .arg(format!("ControlPath={}", path.display()))
                .args(["-o", "ControlMaster=no", "-p", &port.to_string()])
                .arg(format!("{user}@127.0.0.1"))
                .arg(format!("echo channel-{i}"))
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("channel-{i}\n"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 21).await;
    assert_eq!(allowed.len(), 21);
    let opened = gw.audit.of_kind(EventKind::SessionOpened);
    assert_eq!(opened.len(), 1, "one session, many channels");
    // Stop the master.
    let _ = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", &master, "-O", "exit"])
        .arg(format!("{}@127.0.0.1", g.id))
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_goes_away_mid_command_ends_the_command_not_the_gateway() {
    let mut gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let port = gw.addr.port();
    let (id, secret) = (g.id.clone(), g.secret.clone());
    let askpass = gw.dir.path().join("askpass-mid");
    std::fs::write(&askpass, format!("#!/bin/sh\nprintf '%s\\n' '{secret}'\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let running = std::thread::spawn(move || {
        std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-p", &port.to_string()])
            .arg(format!("{id}@127.0.0.1"))
            .arg("sleep 20")
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    });
    gw.audit.wait_for(EventKind::StatementAllowed, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    gw.sshd.stop();
    let out = tokio::task::spawn_blocking(move || running.join().unwrap())
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    let done = gw.audit.wait_for(EventKind::StatementCompleted, 1).await;
    assert_eq!(done[0].detail["outcome"], "error");
}

/// A flood of silent connections: past the 256 logging in at once, each
/// is closed at once without a banner; when the flood goes, logins work.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_silent_connections_is_capped_before_login() {
    use tokio::io::AsyncReadExt;
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let mut held = Vec::new();
    for _ in 0..sluice_gate::MAX_PRE_AUTH {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let mut b = [0u8; 64];
        let n = s.read(&mut b).await.unwrap();
        assert!(b[..n].starts_with(b"SSH-2.0-"), "a banner");
        held.push(s);
    }
    for _ in 0..20 {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "closed at once");
        assert!(got.is_empty(), "no banner: {got:?}");
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = gw.ssh(&g, &["echo after-the-flood"]);
        if stdout(&out) == "after-the-flood\n" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
