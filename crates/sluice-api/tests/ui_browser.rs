//! A real browser (headless Debian `chromium`, driven over the DevTools
//! protocol): an approver signs in through the dev issuer's sign-in page,
//! sees a new pending approval appear without reloading, approves it, and
//! then reads a recorded session's timeline.
//! With SLUICE_UI_SCREENSHOTS=DIR it leaves PNGs of each step there.

mod ui_support;

use sluice_core::approval::ApprovalStatus;
use ui_support::cdp::Chrome;
use ui_support::*;

async fn shot(chrome: &mut Chrome, name: &str) {
    if let Ok(dir) = std::env::var("SLUICE_UI_SCREENSHOTS") {
        chrome
            .screenshot(&std::path::Path::new(&dir).join(format!("{name}.png")))
            .await;
    }
}

#[tokio::test]
async fn an_approver_signs_in_sees_a_request_arrive_and_approves_it() {
    let gw = UiGateway::start().await;
    let mut chrome = Chrome::launch().await;

    // Signed out: /ui leads to the dev issuer's sign-in page.
    chrome.goto(&format!("{}/ui", gw.url)).await;
    chrome
        .wait_for(
            "location.pathname === '/dev-issuer/authorize' && !!document.getElementById('sign-in')",
            15,
        )
        .await;
    shot(&mut chrome, "1-sign-in").await;
    assert_eq!(
        chrome.eval("document.getElementById('sub').value").await,
        "dba-1"
    );
    assert_eq!(
        chrome.eval("document.getElementById('groups').value").await,
        "dba"
    );
    chrome
        .eval("document.getElementById('name').value = 'Dana Admin'")
        .await;
    chrome
        .eval("document.getElementById('sign-in').click()")
        .await;

    // Back on the list, signed in, and the live stream connected.
    chrome
        .wait_for(
            "location.pathname === '/ui' && !!document.getElementById('pending')",
            15,
        )
        .await;
    chrome
        .wait_for("document.getElementById('live').textContent === 'live'", 15)
        .await;
    assert!(
        chrome
            .eval("document.body.innerText")
            .await
            .as_str()
            .unwrap()
            .contains("Dana Admin")
    );
    assert_eq!(
        chrome.eval("document.cookie").await,
        "",
        "the session cookie is HttpOnly: scripts cannot read it"
    );
    chrome.eval("window.stillTheSamePage = true").await;

    // A writer asks for a grant; the row appears without a reload.
    let (gid, aid) = gw
        .pending_grant("writer-1", &["writers"], "fix order <42>")
        .await;
    chrome
        .wait_for(
            &format!("!!document.querySelector('tr[data-id=\"{aid}\"]') && window.stillTheSamePage === true"),
            15,
        )
        .await;
    shot(&mut chrome, "2-list").await;
    let row = chrome
        .eval(&format!(
            "document.querySelector('tr[data-id=\"{aid}\"]').innerText"
        ))
        .await;
    assert!(row.as_str().unwrap().contains("fix order <42>"), "{row}");

    // Open it, approve it.
    chrome
        .eval(&format!(
            "document.querySelector('tr[data-id=\"{aid}\"] a').click()"
        ))
        .await;
    chrome
        .wait_for("!!document.getElementById('approve')", 15)
        .await;
    shot(&mut chrome, "3-detail").await;
    chrome
        .eval("document.getElementById('reason').value = 'checked with the on-call'; document.getElementById('approve').click()")
        .await;
    chrome
        .wait_for(
            "document.body.innerText.includes('Your approval was recorded')",
            15,
        )
        .await;
    shot(&mut chrome, "4-approved").await;
    let a = gw.state.store.approval(&aid).await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.decided_by.as_deref(), Some("Dana Admin"));
    let grant = gw.state.store.grant(&gid).await.unwrap().unwrap();
    assert_eq!(grant.status.as_str(), "active");

    // The writer's recorded session, from the approvals page's nav.
    gw.record_session(
        &gid,
        "s_browser",
        "SELECT '<script>window.pwned = 1</script>' AS x, email FROM customers",
        "<img src=x onerror=\"window.pwned = 2\">",
    )
    .await;
    chrome
        .eval("document.querySelector('header nav a[href=\"/ui/sessions\"]').click()")
        .await;
    chrome
        .wait_for(
            "!!document.querySelector('tr[data-session-id=\"s_browser\"] a')",
            15,
        )
        .await;
    chrome
        .eval("document.querySelector('tr[data-session-id=\"s_browser\"] a').click()")
        .await;
    chrome
        .wait_for("!!document.querySelector('table.results')", 15)
        .await;
    shot(&mut chrome, "5-session").await;
    let text = chrome.eval("document.body.innerText").await;
    let text = text.as_str().unwrap();
    for want in [
        "SELECT '<script>window.pwned = 1</script>' AS x",
        "<img src=x onerror=\"window.pwned = 2\">",
        "c***@example.com",
        "(first 3 rows recorded)",
        "approval a_held_s_browser approved by Dana Admin",
    ] {
        assert!(text.contains(want), "{want:?} missing: {text}");
    }
    assert_eq!(
        chrome.eval("typeof window.pwned").await,
        "undefined",
        "recorded text is shown, never run"
    );
    assert_eq!(
        chrome
            .eval("document.querySelectorAll('table.results img, main script').length")
            .await,
        0
    );
}
