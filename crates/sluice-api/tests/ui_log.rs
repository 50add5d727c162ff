//! Issue 13: the web page's sign-in log says who signed in as what.

mod ui_support;

use ui_support::*;

/// What a test's own log subscriber wrote.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Issue 13: someone who signs in without being in an approver group is
/// logged as such (a wrong group claim looks exactly like this), not as an
/// approver.
#[tokio::test]
async fn a_non_approver_sign_in_is_logged_as_such() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // This file's only test: the subscriber can be the process's own, so
    // no other test's callsites decide what it sees.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let gw = UiGateway::start().await;
    let _ = gw.sign_in("writer-1", "writers").await;
    let _ = gw.sign_in("dba-1", "dba").await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str, who: &str| {
        log.lines()
            .any(|l| l.contains(needle) && l.contains(&format!("subject={who}")))
    };
    assert!(line("not in any approver group", "writer-1"), "{log}");
    assert!(!line("approver signed in", "writer-1"), "{log}");
    assert!(line("approver signed in", "dba-1"), "{log}");
}
