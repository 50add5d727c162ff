//! The MCP endpoint with the official MCP TypeScript SDK client
//! (`tests/fixtures/mcp`), against a real gateway and the real OpenID
//! provider: the tools are listed, a grant is asked for, an allowed query
//! returns masked values, a denied one comes back as a result naming the
//! rule, a held one names its approval, which the test approves through the
//! API, and the same statement then passes.

mod common;

use common::{AGENT, Options, Serve};
use serde_json::{Value, json};
use sluice_testkit::oidc::OidcClient;

const DBA: &str = "dba-1";
const CARD: &str = "4111-1111-1111-1111";

async fn gateway() -> Serve {
    Serve::start(Options {
        setup: format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name text, card_number text); \
             INSERT INTO customers VALUES (1, 'Ada', '{CARD}'); \
             CREATE TABLE payouts (id int PRIMARY KEY, status text); \
             INSERT INTO payouts VALUES (1, 'new'); \
             CREATE TABLE numbers AS SELECT generate_series(1, 5000) AS n;"
        ),
        connection: r#"
[[connections.guardrails]]
name = "no-ddl"
action = "deny"
classes = ["ddl"]

[[connections.guardrails]]
name = "payout-changes-need-approval"
action = "approve"
hold = "fail"
tables = ["payouts"]
classes = ["write"]

[connections.masking]
columns = [{ column = "public.customers.card_number", style = "partial" }]
"#
        .into(),
        extra: "[approvals]\napprover_groups = [\"dba\"]\n".into(),
        clients: vec![OidcClient::new(DBA, &["dba"]).ttl(3600)],
        // MCP's query reaches the listener by TLS, pinned to its own
        // certificate, so a listener that refuses the clear serves it.
        listener_tls: true,
        require_tls: true,
        ..Options::default()
    })
    .await
}

/// Runs `steps` through the SDK client; one JSON value per step.
fn mcp(serve: &Serve, token: &str, steps: &Value) -> Vec<Value> {
    sluice_testkit::mcp::run_steps(&serve.api, token, steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mcp_client_queries_through_the_gate() {
    let serve = gateway().await;
    let token = serve.token(AGENT).await;
    let steps = json!([
        {"list": true},
        {"tool": "list_connections"},
        {"tool": "request_grant", "args": {"connection": "shop", "reason": "mcp test"}, "save": {"grant": "id"}},
        {"tool": "query", "args": {"grant_id": "${grant}", "sql": "SELECT name, card_number FROM customers"}},
        {"tool": "query", "args": {"grant_id": "${grant}", "sql": "DROP TABLE customers"}},
        {"tool": "query", "args": {"grant_id": "${grant}", "sql": "UPDATE payouts SET status = 'paid' WHERE id = 1"}, "hold": true},
        {"tool": "grant_status", "args": {"grant_id": "${grant}"}},
        {"tool": "query", "args": {"grant_id": "${grant}", "sql": "SELECT n FROM numbers ORDER BY n", "max_rows": 10}},
        {"tool": "exec", "args": {"grant_id": "${grant}", "command": "id"}},
    ]);
    let out = mcp(&serve, &token, &steps);

    let tools: Vec<&str> = out[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "list_connections",
        "request_grant",
        "grant_status",
        "query",
        "exec",
        "wait_for_approval",
        "revoke_grant",
    ] {
        assert!(tools.contains(&t), "{t} in {tools:?}");
    }
    assert_eq!(
        out[1]["value"]["connections"][0]["name"], "shop",
        "{}",
        out[1]
    );

    let grant = &out[2]["value"];
    assert_eq!(grant["status"], "active", "{grant}");
    assert!(
        grant.get("credentials").is_none(),
        "the secret never reaches the model"
    );
    assert!(!out[2].to_string().contains("sls_"));
    let id = grant["id"].as_str().unwrap().to_string();

    // Allowed, masked.
    let rows = &out[3]["value"];
    assert_eq!(out[3]["isError"], false, "{}", out[3]);
    assert_eq!(rows["columns"], json!(["name", "card_number"]));
    assert_eq!(rows["rows"][0][0], "Ada");
    let card = rows["rows"][0][1].as_str().unwrap();
    assert_ne!(card, CARD, "masked");
    assert!(card.ends_with("1111"), "{card}");

    // Denied, naming the rule; nothing changed.
    assert_eq!(out[4]["isError"], true);
    assert_eq!(out[4]["value"]["error"], "denied", "{}", out[4]);
    assert!(
        out[4]["value"]["message"]
            .as_str()
            .unwrap()
            .contains("no-ddl")
    );
    assert_eq!(
        serve
            .pg
            .psql("postgres", "SELECT count(*) FROM customers")
            .unwrap(),
        "1"
    );

    // Held: the result names the approval.
    assert_eq!(out[5]["isError"], true);
    let held = out[5]["value"].to_string();
    let approval = held
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with("a_"))
        .unwrap_or_else(|| panic!("an approval id in {held}"))
        .to_string();
    assert_eq!(
        serve
            .pg
            .psql("postgres", "SELECT status FROM payouts")
            .unwrap(),
        "new"
    );
    assert_eq!(out[6]["value"]["status"], "active");
    // A large result is cut, saying so.
    assert_eq!(out[7]["isError"], false, "{}", out[7]);
    assert_eq!(out[7]["value"]["rows"].as_array().unwrap().len(), 10);
    assert!(
        out[7]["value"]["note"]
            .as_str()
            .unwrap()
            .contains("cut at 10 rows")
    );
    // A database grant is not a host: exec says which tool fits.
    assert_eq!(out[8]["isError"], true);
    assert_eq!(out[8]["value"]["error"], "wrong_tool", "{}", out[8]);

    // Another identity (an admin, even) cannot use this grant through MCP.
    let other = mcp(
        &serve,
        &serve.token(common::AUDITOR).await,
        &json!([{"tool": "query", "args": {"grant_id": id, "sql": "SELECT 1"}}]),
    );
    assert_eq!(other[0]["isError"], true);
    assert_eq!(other[0]["value"]["error"], "no_grant_here", "{}", other[0]);

    // A human approves through the API; the agent waits, then retries.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/approvals/{approval}/approve", serve.api))
        .bearer_auth(serve.token(DBA).await)
        .json(&json!({"reason": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let steps = json!([
        {"tool": "wait_for_approval", "args": {"approval_id": approval, "timeout_secs": 10}},
        {"tool": "query", "args": {"grant_id": id, "sql": "UPDATE payouts SET status = 'paid' WHERE id = 1"}},
        {"tool": "revoke_grant", "args": {"grant_id": id}},
        {"tool": "query", "args": {"grant_id": id, "sql": "SELECT 1"}},
    ]);
    let out = mcp(&serve, &token, &steps);
    assert_eq!(out[0]["value"]["status"], "approved", "{}", out[0]);
    assert_eq!(out[1]["isError"], false, "{}", out[1]);
    assert_eq!(out[1]["value"]["rows_affected"], 1);
    assert_eq!(
        serve
            .pg
            .psql("postgres", "SELECT status FROM payouts")
            .unwrap(),
        "paid"
    );
    assert_eq!(out[2]["value"]["status"], "revoked");
    assert_eq!(
        out[3]["isError"], true,
        "a revoked grant runs nothing: {}",
        out[3]
    );

    // Every statement is in the audit chain, as on the wire.
    let events = serve.audit_events();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"statement.denied") && kinds.contains(&"statement.allowed"));
}

/// Without a token, /mcp answers 401 naming the protected-resource
/// metadata, which names the issuer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_clients_can_discover_the_issuer() {
    let serve = gateway().await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/mcp", serve.api))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource"),
        "{challenge}"
    );
    let meta: Value = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            serve.api
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["authorization_servers"][0],
        serve.idp.issuer(),
        "{meta}"
    );
    // A token that does not verify is refused the same way.
    let resp = http
        .post(format!("{}/mcp", serve.api))
        .bearer_auth("not-a-token")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.text().await.unwrap().contains("invalid_token"));
}
