//! Interactive shells: refused to profiles without `shell_profiles`,
//! recorded whole (what was shown and typed, timed) for the others.

mod common;

use common::*;
use sluice_core::Profile;
use sluice_core::audit::EventKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_grant_gets_no_shell() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Read);
    let out = gw.ssh_with_input(&g, &["-tt"], "id\nexit\n");
    assert_eq!(out.status.code(), Some(126), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("runs commands only"), "{text}");
    let denied = gw.audit.wait_for(EventKind::StatementDenied, 1).await;
    assert_eq!(denied[0].detail["rule"], "default:shell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_grants_shell_is_recorded_as_it_was_seen() {
    let gw = Gateway::start("").await;
    let g = gw.grant(Profile::Write);
    let out = gw.ssh_with_input(&g, &["-tt"], "echo SHELL-$((40+2))\nexit\n");
    let shown = stdout(&out);
    assert!(shown.contains("SHELL-42"), "{shown}\n{}", stderr(&out));
    let allowed = gw.audit.wait_for(EventKind::StatementAllowed, 1).await;
    assert_eq!(allowed[0].detail["protocol"], "ssh-shell");
    // Written when the shell ends (and each second): wait for them.
    let mut recorded = String::new();
    for _ in 0..50 {
        let parts = gw.audit.of_kind(EventKind::SessionTerminal);
        recorded = parts
            .iter()
            .flat_map(|e| e.detail["events"].as_array().cloned().unwrap_or_default())
            .filter(|ev| ev[1] == "o")
            .filter_map(|ev| ev[2].as_str().map(str::to_string))
            .collect();
        if recorded.contains("SHELL-42") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recorded.contains("SHELL-42"), "{recorded}");
    let typed: String = gw
        .audit
        .of_kind(EventKind::SessionTerminal)
        .iter()
        .flat_map(|e| e.detail["events"].as_array().cloned().unwrap_or_default())
        .filter(|ev| ev[1] == "i")
        .filter_map(|ev| ev[2].as_str().map(str::to_string))
        .collect();
    assert!(typed.contains("echo SHELL-$((40+2))"), "{typed}");
}
