//! A real browser (headless Debian `chromium`, driven over the DevTools
//! protocol): an approver signs in through the dev issuer's sign-in page,
//! sees a new pending approval appear without reloading, approves it, and
//! then reads a recorded session's timeline.
//! With SLUICE_UI_SCREENSHOTS=DIR it leaves PNGs of each step there.

mod ui_support;

use sluice_core::approval::ApprovalStatus;
use std::time::Duration;
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

/// Signs in through the dev issuer's page as Dana Admin (a dba) and waits
/// for the approvals page.
async fn sign_in(chrome: &mut Chrome, gw: &UiGateway) {
    chrome.goto(&format!("{}/ui", gw.url)).await;
    chrome
        .wait_for("!!document.getElementById('sign-in')", 15)
        .await;
    chrome
        .eval("document.getElementById('name').value = 'Dana Admin'; document.getElementById('sign-in').click()")
        .await;
    chrome
        .wait_for(
            "location.pathname === '/ui' && !!document.getElementById('pending')",
            15,
        )
        .await;
}

/// `document.body.innerText`.
async fn page_text(chrome: &mut Chrome) -> String {
    chrome
        .eval("document.body.innerText")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

async fn open(chrome: &mut Chrome, gw: &UiGateway, path: &str, ready: &str) {
    chrome.goto(&format!("{}{path}", gw.url)).await;
    chrome.wait_for(ready, 15).await;
}

/// Issue 13: what an operator needs beside the pending list: what a grant
/// approval asks for (profile, life asked, the rule's cap), the history of
/// decided approvals (filterable), the UI's own page for unknown paths, a
/// session played back over time, the open sessions with a button to end
/// one (audited), and an overview with charts.
#[tokio::test]
async fn an_operator_decides_reviews_history_plays_back_and_ends_a_session() {
    let gw = UiGateway::start().await;
    let mut chrome = Chrome::launch().await;
    sign_in(&mut chrome, &gw).await;

    // A grant asked for 2h under a rule capped at 5m.
    let (gid, aid) = gw
        .pending_grant_for("writer-1", &["writers"], "hotfix", Some("2h"))
        .await;
    open(
        &mut chrome,
        &gw,
        &format!("/ui/approvals/{aid}"),
        "!!document.getElementById('deny')",
    )
    .await;
    shot(&mut chrome, "6-grant-approval").await;
    let text_of = |id: &str| format!("document.getElementById('{id}').innerText");
    assert_eq!(chrome.eval(&text_of("grant-profile")).await, "write");
    assert_eq!(chrome.eval(&text_of("grant-ttl-asked")).await, "2h");
    assert_eq!(
        chrome.eval(&text_of("grant-ttl")).await,
        "5m (cut to the rule's cap of 5m)"
    );
    assert_eq!(chrome.eval(&text_of("grant-ttl-cap")).await, "5m");
    chrome
        .eval("document.getElementById('reason').value = 'not during the freeze'; document.getElementById('deny').click()")
        .await;
    chrome
        .wait_for("document.body.innerText.includes('denied')", 15)
        .await;
    let grant = gw.state.store.grant(&gid).await.unwrap().unwrap();
    assert_eq!(grant.status.as_str(), "denied");

    // History: the denial is there, and filters narrow it.
    chrome
        .eval("document.querySelector('header nav a[href=\"/ui/history\"]').click()")
        .await;
    let row = format!("!!document.querySelector('#history tr[data-id=\"{aid}\"]')");
    chrome.wait_for(&row, 15).await;
    shot(&mut chrome, "7-history").await;
    assert!(
        page_text(&mut chrome)
            .await
            .contains("not during the freeze")
    );
    chrome
        .eval("document.querySelector('select[name=status]').value = 'approved'; document.querySelector('form.filters').submit()")
        .await;
    chrome
        .wait_for(
            "location.search.includes('status=approved') && document.readyState === 'complete' \
             && !!document.getElementById('history')",
            15,
        )
        .await;
    assert_eq!(
        chrome.eval(&row.replace("!!", "!")).await,
        true,
        "filtered out"
    );
    open(
        &mut chrome,
        &gw,
        "/ui/history?status=denied&requester=writer-1",
        &row,
    )
    .await;

    // Unknown pages, and /ui/, answer with the UI's own page.
    for path in ["/ui/", "/ui/no-such-page"] {
        chrome.goto(&format!("{}{path}", gw.url)).await;
        chrome
            .wait_for("document.readyState === 'complete'", 15)
            .await;
        assert_eq!(
            chrome
                .eval("!!document.querySelector('link[href=\"/ui/app.css\"]') && !!document.querySelector('header a.brand')")
                .await,
            true,
            "{path} is not the UI's own page: {}",
            page_text(&mut chrome).await
        );
    }

    // A session played back over time.
    gw.record_session_paced(
        &gid,
        "s_played",
        "SELECT email FROM customers",
        "a***@example.com",
        Duration::from_millis(250),
    )
    .await;
    open(
        &mut chrome,
        &gw,
        "/ui/sessions/s_played",
        "!!document.getElementById('play') && !document.getElementById('player').hidden",
    )
    .await;
    chrome
        .eval(
            "document.getElementById('speed').value = '1'; document.getElementById('play').click()",
        )
        .await;
    let shown = "document.querySelectorAll('#timeline > li:not(.unplayed)').length";
    let all = "document.querySelectorAll('#timeline > li').length";
    let first = chrome.eval(shown).await.as_i64().unwrap();
    let total = chrome.eval(all).await.as_i64().unwrap();
    assert!(
        first >= 1 && first < total,
        "{first} of {total} shown at the start"
    );
    chrome
        .wait_for(&format!("{shown} > {first} && {shown} < {all}"), 15)
        .await;
    shot(&mut chrome, "8-playback").await;
    chrome
        .wait_for(
            &format!("document.getElementById('player').getAttribute('data-state') === 'done' && {shown} === {all}"),
            15,
        )
        .await;

    // The open sessions, and ending one.
    let live = gw.state.live.open(sluice_core::live::LiveSession {
        id: "s_live_1".into(),
        grant_id: gid.clone(),
        connection: "orders".into(),
        profile: sluice_core::Profile::Write,
        identity: "writer-1".into(),
        client_addr: "127.0.0.1:5555".into(),
        protocol: "postgres",
        opened_at: sluice_core::clock::now(),
    });
    let ended = live.ended();
    chrome
        .eval("document.querySelector('header nav a[href=\"/ui/live\"]').click()")
        .await;
    chrome
        .wait_for(
            "!!document.querySelector('tr[data-session-id=\"s_live_1\"] form.end')",
            15,
        )
        .await;
    shot(&mut chrome, "9-live").await;
    chrome
        .eval("const f = document.querySelector('tr[data-session-id=\"s_live_1\"] form.end'); f.querySelector('input[name=reason]').value = 'runaway query'; f.querySelector('button').click()")
        .await;
    chrome
        .wait_for("!!document.getElementById('ended')", 15)
        .await;
    let by = tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .expect("the session was asked to end");
    assert_eq!(by, "Dana Admin");
    let events = gw.state.store.session_events("s_live_1").await.unwrap();
    let terminated = events
        .iter()
        .find(|e| e.kind == "session.terminated")
        .expect("ending a session is recorded");
    assert!(
        terminated.body.contains("runaway query"),
        "{}",
        terminated.body
    );
    assert!(terminated.body.contains("dba-1"), "{}", terminated.body);
    drop(live);

    // The overview: charts of the day and the rules that denied.
    chrome
        .eval("document.querySelector('header nav a[href=\"/ui/overview\"]').click()")
        .await;
    chrome
        .wait_for("!!document.getElementById('chart-decisions')", 15)
        .await;
    shot(&mut chrome, "10-overview").await;
    assert!(
        chrome
            .eval("document.querySelectorAll('#chart-sessions rect.sessions').length")
            .await
            .as_i64()
            .unwrap()
            >= 1
    );
    assert!(
        chrome
            .eval("document.querySelectorAll('#chart-decisions rect.denied').length")
            .await
            .as_i64()
            .unwrap()
            >= 1
    );
    assert_eq!(chrome.eval(&text_of("total-sessions")).await, "1");
    assert_eq!(chrome.eval(&text_of("total-denied")).await, "1");
    let top = page_text(&mut chrome).await;
    assert!(top.contains("no-ddl"), "{top}");
}
