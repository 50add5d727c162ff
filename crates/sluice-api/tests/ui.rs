//! The approvers' web page over real HTTP: sign-in through the dev
//! issuer's code flow, cookie flags and security headers, CSRF and Origin
//! checks, approver rules, escaping of hostile statements, live events.

mod ui_support;

use std::time::Duration;

use reqwest::StatusCode;
use sluice_core::approval::ApprovalStatus;
use sluice_core::audit::EventKind;
use ui_support::*;

#[tokio::test]
async fn sign_in_opens_a_hardened_session() {
    let gw = UiGateway::start().await;
    // Signed out, a page sends the browser to sign in, keeping the target.
    let resp = gw
        .http
        .get(format!("{}/ui/approvals/a_x", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/ui/login?next=%2Fui%2Fapprovals%2Fa_x");

    let b = gw.sign_in("dba-1", "dba").await;
    // Playground flavour: loopback over http, so no Secure (and no __Host-).
    assert!(
        b.set_cookie.starts_with("sluice-session="),
        "{}",
        b.set_cookie
    );
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=28800"] {
        assert!(
            b.set_cookie.contains(flag),
            "{flag} missing: {}",
            b.set_cookie
        );
    }
    assert!(!b.set_cookie.contains("Secure"));
    // 256 random bits, base64url.
    assert_eq!(b.cookie.len(), "sluice-session=".len() + 43);

    let resp = gw
        .http
        .get(format!("{}/ui", gw.url))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Pending approvals"));
    assert!(page.contains("<script src=\"/ui/app.js\" defer>"));
    assert!(!page.contains("<script>"), "no inline script");
    let js = gw
        .http
        .get(format!("{}/ui/app.js", gw.url))
        .send()
        .await
        .unwrap();
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    // Outside the playground: Secure and the __Host- prefix.
    let secure = UiGateway::start_with(&DEV_UI.replace("cookie_secure = false\n", "")).await;
    let b = secure.sign_in("dba-1", "dba").await;
    assert!(
        b.set_cookie.starts_with("__Host-sluice-session="),
        "{}",
        b.set_cookie
    );
    assert!(b.set_cookie.contains("; Secure"));
    assert!(b.set_cookie.contains("HttpOnly") && b.set_cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn forged_or_replayed_callbacks_are_refused() {
    let gw = UiGateway::start().await;
    // No login cookie: this browser never started a sign-in.
    let resp = gw
        .http
        .get(format!("{}/ui/callback?code=x&state=y", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.headers().get_all("set-cookie").iter().all(|c| !c
            .to_str()
            .unwrap()
            .contains("sluice-session=")
            || c.to_str().unwrap().contains("Max-Age=0"))
    );

    // A started sign-in, but the callback's state is someone else's.
    let resp = gw
        .http
        .get(format!("{}/ui/login", gw.url))
        .send()
        .await
        .unwrap();
    let login = cookie_pair(&resp, "sluice-login");
    let resp = gw
        .http
        .get(format!("{}/ui/callback?code=x&state=forged", gw.url))
        .header("cookie", &login)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("state does not match"));
    // The sign-in is used up by the failed attempt.
    let resp = gw
        .http
        .get(format!("{}/ui/callback?code=x&state=forged", gw.url))
        .header("cookie", &login)
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("not started here"));

    // An error from the IdP is shown escaped.
    let resp = gw
        .http
        .get(format!("{}/ui/callback?error=%3Cscript%3Ex", gw.url))
        .send()
        .await
        .unwrap();
    let page = resp.text().await.unwrap();
    assert!(page.contains("&lt;script&gt;x") && !page.contains("<script>x"));
}

#[tokio::test]
async fn posts_need_the_csrf_token_and_our_origin() {
    let gw = UiGateway::start().await;
    let (_, aid) = gw
        .pending_grant("writer-1", &["writers"], "fix order 42")
        .await;
    let b = gw.sign_in("dba-1", "dba").await;
    assert_eq!(b.csrf.len(), 43);
    let path = format!("/ui/approvals/{aid}");
    let url = gw.url.clone();

    let refused = [
        (Some(url.as_str()), vec![("decision", "approve")]),
        (
            Some(url.as_str()),
            vec![("csrf", "wrong"), ("decision", "approve")],
        ),
        (
            Some("https://evil.example"),
            vec![("csrf", b.csrf.as_str()), ("decision", "approve")],
        ),
        (
            Some("null"),
            vec![("csrf", b.csrf.as_str()), ("decision", "approve")],
        ),
        (
            None,
            vec![("csrf", b.csrf.as_str()), ("decision", "approve")],
        ),
    ];
    for (origin, fields) in &refused {
        let resp = b.post(&path, *origin, fields).await;
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{origin:?} {fields:?}"
        );
    }
    // A token from another session is no good either.
    let other = gw.sign_in("dba-2", "dba").await;
    let resp = b
        .post(
            &path,
            Some(&url),
            &[("csrf", &other.csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // No session at all.
    let resp = gw
        .http
        .post(format!("{}{path}", gw.url))
        .header("origin", &gw.url)
        .form(&[("csrf", b.csrf.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let a = gw.state.store.approval(&aid).await.unwrap().unwrap();
    assert_eq!(
        a.status,
        ApprovalStatus::Pending,
        "nothing refused was counted"
    );
    assert!(gw.state.store.votes(&aid).await.unwrap().is_empty());

    // Without Origin, a same-origin Referer will do (older browsers).
    let resp = b
        .http
        .post(format!("{}{path}", gw.url))
        .header("cookie", &b.cookie)
        .header("referer", format!("{}{path}", gw.url))
        .form(&[("csrf", b.csrf.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("{path}?voted=approve"));
    let a = gw.state.store.approval(&aid).await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);

    // Logout is a POST too, with the same checks; afterwards the cookie is dead.
    let resp = b
        .post(
            "/ui/logout",
            Some("https://evil.example"),
            &[("csrf", &b.csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = b.post("/ui/logout", Some(&url), &[("csrf", &b.csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _) = b.get("/ui").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
}

#[tokio::test]
async fn approvers_decide_others_requests_only() {
    let gw = UiGateway::start().await;
    // dba-writer asks for a grant; as a dba it may approve others, never itself.
    let (gid, aid) = gw
        .pending_grant("dba-writer", &["writers", "dba"], "hotfix")
        .await;
    let me = gw.sign_in("dba-writer", "dba writers").await;
    let (status, page) = me.get(&format!("/ui/approvals/{aid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("You made this request"));
    assert!(
        !page.contains("id=\"approve\""),
        "no buttons on one's own request"
    );
    let resp = me.vote(&aid, "approve", "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("nobody approves their own request")
    );

    // A writer is signed in, but is no approver: a clear page, and no vote.
    let writer = gw.sign_in("writer-1", "writers").await;
    let (status, page) = writer.get("/ui").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("You are not an approver"), "{page}");
    assert!(page.contains("dba"));
    let (status, _) = writer.get(&format!("/ui/approvals/{aid}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let resp = writer.vote(&aid, "approve", "").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, _) = writer.get("/ui/pending").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A denial needs a reason; then another dba denies, and it sticks.
    let dba = gw.sign_in("dba-1", "dba").await;
    let resp = dba.vote(&aid, "deny", "  ").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = dba.vote(&aid, "deny", "not during the freeze").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let grant = gw.state.store.grant(&gid).await.unwrap().unwrap();
    assert_eq!(grant.status.as_str(), "denied");
    let (_, page) = dba.get(&format!("/ui/approvals/{aid}?voted=deny")).await;
    assert!(page.contains("Your denial was recorded"));
    assert!(page.contains("not during the freeze"));
    // Voting on a closed approval is a conflict, not a second decision.
    let other = gw.sign_in("dba-2", "dba").await;
    assert_eq!(
        other.vote(&aid, "approve", "").await.status(),
        StatusCode::CONFLICT
    );
    // The vote was audited with the approver's identity.
    let events = gw.state.store.audit_after(0, 1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::ApprovalVoted.as_str()
                && e.body.contains("\"dba-1\"")
                && e.body.contains("not during the freeze"))
    );
}

#[tokio::test]
async fn hostile_statements_are_escaped_everywhere() {
    let gw = UiGateway::start().await;
    let (gid, _) = gw
        .pending_grant("writer-1", &["writers"], "<i>reason</i>")
        .await;
    let hostile = "UPDATE t SET x = '</code></pre><script>alert(1)</script>' -- \"&";
    let aid = gw.held_statement(&gid, hostile).await;
    let b = gw.sign_in("dba-1", "dba").await;

    let (status, page) = b.get(&format!("/ui/approvals/{aid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<img src=x"), "parameters are escaped");
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(
        page.contains("public.&lt;b&gt;orders&lt;/b&gt;"),
        "analysis is escaped"
    );
    assert!(page.contains("&lt;i&gt;reason&lt;/i&gt;"));
    assert!(page.contains("NULL"), "a NULL parameter is shown as such");
    assert!(
        page.contains("id=\"approve-shape\""),
        "statements offer shape approval"
    );

    for path in ["/ui", "/ui/pending"] {
        let (_, page) = b.get(path).await;
        assert!(page.contains(&aid), "{path}");
        assert!(
            !page.contains("<script>alert") && !page.contains("<i>reason"),
            "{path}: {page}"
        );
    }

    // Shape approval through the form.
    let resp = b.vote(&aid, "shape", "same shape is fine").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let a = gw.state.store.approval(&aid).await.unwrap().unwrap();
    assert_eq!(a.status, ApprovalStatus::Approved);
    assert_eq!(a.scope.map(|s| s.as_str()), Some("shape"));
    assert!(
        gw.state
            .store
            .shape_approved(&gid, "fp-0123")
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_event_stream_announces_new_approvals() {
    let gw = UiGateway::start().await;
    let b = gw.sign_in("dba-1", "dba").await;
    // Signed out: no stream.
    let resp = gw
        .http
        .get(format!("{}/ui/events", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let mut resp = gw
        .http
        .get(format!("{}/ui/events", gw.url))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (_, aid) = gw
        .pending_grant("writer-1", &["writers"], "nightly fix")
        .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&aid) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: approval"), "{seen}");
    assert!(
        seen.contains(&format!("\"id\":\"{aid}\"")) && seen.contains("\"status\":\"pending\""),
        "{seen}"
    );
}

#[tokio::test]
async fn without_a_ui_section_the_page_says_so() {
    let gw = UiGateway::start_with("").await;
    let resp = gw.http.get(format!("{}/ui", gw.url)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().contains_key("content-security-policy"));
    assert!(resp.text().await.unwrap().contains("not set up"));
}

#[tokio::test]
async fn recorded_sessions_are_listed_and_replayed_for_approvers_only() {
    let gw = UiGateway::start().await;
    let (mine, _) = gw
        .pending_grant("writer-1", &["writers"], "fix order 42")
        .await;
    let (theirs, _) = gw.pending_grant("writer-2", &["writers"], "report").await;
    let hostile = "SELECT '</code></pre><script>alert(1)</script>', email -- \"&";
    gw.record_session(&mine, "s_one", hostile, "<img src=x onerror=alert(2)>")
        .await;
    gw.record_session(&theirs, "s_two", "SELECT 1", "b***@example.com")
        .await;

    // Signed out: sent to sign in, the target kept; a non-approver: refused.
    for path in ["/ui/sessions", "/ui/sessions/s_one"] {
        let resp = gw
            .http
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&resp).starts_with("/ui/login?next=%2Fui%2Fsessions"));
    }
    let writer = gw.sign_in("writer-1", "writers").await;
    for path in ["/ui/sessions", "/ui/sessions/s_one"] {
        let (status, page) = writer.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.contains("s_one") && !page.contains("alert"), "{page}");
    }

    // The approvals page links to the sessions; the list filters like the CLI.
    let dba = gw.sign_in("dba-1", "dba").await;
    let (_, page) = dba.get("/ui").await;
    assert!(page.contains("href=\"/ui/sessions\""), "{page}");
    let listed = |page: &str| -> Vec<String> {
        page.split("data-session-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let (status, page) = dba.get("/ui/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed(&page), ["s_two", "s_one"]);
    assert!(page.contains("2 allowed, 1 denied"), "{page}");
    let (_, page) = dba.get("/ui/sessions?identity=writer-1&since=1h").await;
    assert_eq!(listed(&page), ["s_one"]);
    assert!(page.contains("value=\"writer-1\""), "the filter is kept");
    let (_, page) = dba.get("/ui/sessions?connection=nope").await;
    assert!(listed(&page).is_empty());
    assert!(page.contains("No recorded session matches"));
    let (status, page) = dba.get("/ui/sessions?since=%3Cb%3Eyesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("since must be an RFC 3339 time"), "{page}");
    assert!(page.contains("value=\"&lt;b&gt;yesterday\""), "{page}");

    // One session: the replay's timeline, everything escaped.
    let resp = dba
        .http
        .get(format!("{}/ui/sessions/s_one", gw.url))
        .header("cookie", &dba.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let page = resp.text().await.unwrap();
    assert!(
        !page.contains("<script>alert") && !page.contains("<img src"),
        "{page}"
    );
    assert!(!page.contains("<b>email"), "column names are escaped");
    assert!(page.contains("&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("&lt;b&gt;email&lt;/b&gt;"));
    let order = [
        "session opened on orders (write) from 127.0.0.1:40000",
        "ALLOWED",
        "class read · rule profile:write · read is allowed",
        "ok SELECT, 5 rows in 0.8 ms",
        "c***@example.com",
        "(first 3 rows recorded)",
        "DENIED",
        "DROP TABLE is ddl",
        "held for approval",
        "approval a_held_s_one approved by Dana Admin: checked",
        "UPDATE orders SET status = 'x'",
        "approval a_held_s_one: approved by Dana Admin after waiting",
        "error 23514: violates check constraint",
        "session closed (client)",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|n| {
            page.find(n)
                .unwrap_or_else(|| panic!("{n:?} missing:\n{page}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order:\n{page}");
    assert!(
        page.contains("<td class=\"null\">NULL</td>"),
        "NULL is marked"
    );
    assert!(page.contains("href=\"/ui/approvals/a_held_s_one\""));
    assert!(page.contains("+0.000s"));
    assert!(!page.contains("b***@example.com"), "only this session");

    let (status, page) = dba.get("/ui/sessions/s_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("No such session"));
    let (status, _) = dba.get(&format!("/ui/sessions/s_{}", "x".repeat(80))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Issue 14: an SSH shell's recording is shown as the terminal showed it,
/// each stretch an entry the player reveals at its time.
#[tokio::test]
async fn a_recorded_terminal_is_shown_as_text_on_the_session_page() {
    use sluice_core::audit::{AuditEvent, EventKind};
    let gw = UiGateway::start().await;
    let (gid, _) = gw.pending_grant("writer-1", &["writers"], "ops").await;
    let ev = |kind, detail| {
        AuditEvent::new(kind)
            .grant(&gid)
            .connection("orders")
            .session("s_shell")
            .detail(detail)
    };
    for e in [
        ev(
            EventKind::SessionOpened,
            serde_json::json!({"seq": 0, "client_addr": "127.0.0.1:2", "profile": "write", "protocol": "ssh"}),
        ),
        ev(
            EventKind::StatementAllowed,
            serde_json::json!({"seq": 1, "protocol": "ssh-shell", "decision": "allow",
            "statements": [{"text": "(interactive shell)", "classes": ["admin"], "commands": [], "tables": []}]}),
        ),
        ev(
            EventKind::SessionTerminal,
            serde_json::json!({"seq": 1, "part": 0, "width": 80, "height": 24,
            "events": [[0.2, "o", "\u{1b}[32m$ \u{1b}[0mls\r\n"], [0.9, "o", "<script>window.x=1</script>\r\n"]]}),
        ),
        ev(
            EventKind::SessionClosed,
            serde_json::json!({"seq": 2, "end": "client closed"}),
        ),
    ] {
        gw.state.audit.append(e).await.unwrap();
    }
    let b = gw.sign_in("dba-1", "dba").await;
    let (status, page) = b.get("/ui/sessions/s_shell").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.matches("class=\"entry terminal\"").count(),
        2,
        "{page}"
    );
    assert!(
        page.contains("<pre class=\"terminal\">$ ls</pre>"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;window.x=1&lt;/script&gt;"),
        "escaped: {page}"
    );
    assert!(!page.contains('\u{1b}'));

    // The raw recording, escapes and all, as an asciicast file.
    assert!(
        page.contains("href=\"/ui/sessions/s_shell/cast\""),
        "{page}"
    );
    let (status, cast) = b.get("/ui/sessions/s_shell/cast").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<serde_json::Value> = cast
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["version"], 2);
    assert_eq!(lines[0]["width"], 80);
    assert_eq!(
        lines[1],
        serde_json::json!([0.2, "o", "\u{1b}[32m$ \u{1b}[0mls\r\n"])
    );
    assert_eq!(lines.len(), 3);
    let (status, _) = b.get("/ui/sessions/s_shell/cast?shell=7").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Fleet mode: sign-ins and CSRF tokens live in the store, so an approver
/// signed in through one gateway is served by another sharing the store
/// (no sticky sessions), and signing out through one ends it everywhere.
#[tokio::test]
async fn a_sign_in_through_one_gateway_serves_on_another() {
    let a = UiGateway::start().await;
    let b = a.second().await;
    let (gid, aid) = a.pending_grant("agent-1", &["writers"], "fleet").await;
    let on_a = a.sign_in("dba-1", "dba").await;
    // The same browser, its requests now landing on B.
    let on_b = Browser {
        url: b.url.clone(),
        ..on_a.clone()
    };
    let (status, page) = on_b.get("/ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&aid), "B lists the approval");
    // The store keys sessions by a hash of the cookie value, never by it.
    let value = on_a.cookie.split_once('=').unwrap().1;
    let now = sluice_core::clock::now();
    assert!(
        b.state
            .store
            .get_ui(value, "session", now)
            .await
            .unwrap()
            .is_none()
    );
    // A's CSRF token is good on B; the origin is the fleet's public one.
    let resp = on_b
        .post(
            &format!("/ui/approvals/{aid}"),
            Some(&a.url),
            &[
                ("csrf", &on_a.csrf),
                ("decision", "approve"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let grant = b.state.store.grant(&gid).await.unwrap().unwrap();
    assert_eq!(grant.status.as_str(), "active");
    // The Fleet page: this gateway's view of the members and leases.
    let (status, page) = on_b.get("/ui/fleet").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("fleet-members") && page.contains("Leases"),
        "{page}"
    );
    // Signing out on B signs out on A too.
    let resp = on_b
        .post("/ui/logout", Some(&a.url), &[("csrf", &on_a.csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, _) = on_a.get("/ui").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out everywhere");
}
