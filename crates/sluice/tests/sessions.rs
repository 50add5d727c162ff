//! A real psql session through `sluice dev`, listed and replayed with the
//! CLI; another identity cannot see it. And a session through `sluice
//! serve` whose connection records result rows under masking, replayed with
//! its rows exactly as psql received them.

mod common;

use serde_json::Value;
use sluice_testkit::ports::free_port;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

struct Dev {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Dev {
    fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        // The database runs as the unprivileged postgres user when we are root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let api = format!("127.0.0.1:{}", free_port());
        let child = Command::new(BIN)
            .args(["dev", "--data-dir"])
            .arg(&data)
            .args(["--api-listen", &api])
            .args(["--postgres-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--ssh-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--mysql-listen", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !data.join("playground.env").exists() {
            assert!(Instant::now() < deadline, "sluice dev did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Dev {
            child,
            url: format!("http://{api}"),
            _dir: dir,
        }
    }

    fn sluice(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("SLUICE_URL", &self.url)
            .env_remove("SLUICE_TOKEN");
        if let Some(t) = token {
            cmd.env("SLUICE_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    fn token(&self, sub: &str, groups: &str) -> String {
        let out = self.sluice(None, &["token", "--dev", "--sub", sub, "--groups", groups]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.sluice(Some(token), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_psql_session_is_listed_and_replayed_in_order_and_private() {
    let dev = Dev::start();
    let agent = dev.token("agent-1", "analytics-agents");
    let grant: Value = serde_json::from_str(&dev.ok(
        &agent,
        &[
            "grant",
            "request",
            "playground",
            "--reason",
            "replay",
            "--json",
        ],
    ))
    .unwrap();
    let dsn = grant["credentials"]["dsn"].as_str().unwrap();

    // One psql connection, three statements; the DROP is refused.
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-d", dsn])
        .args(["-c", "SELECT count(*) FROM orders"])
        .args(["-c", "DROP TABLE orders"])
        .args(["-c", "SELECT id FROM customers ORDER BY id LIMIT 3"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("1200"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("DROP TABLE is ddl"),
        "{}",
        stderr(&out)
    );

    // It is listed (once closed) with its counts.
    let deadline = Instant::now() + Duration::from_secs(20);
    let session = loop {
        let list: Value =
            serde_json::from_str(&dev.ok(&agent, &["sessions", "list", "--json"])).unwrap();
        let items = list.as_array().unwrap();
        if let Some(s) = items.iter().find(|s| s["state"] == "closed") {
            break s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no closed session listed: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(session["grant_id"], grant["id"]);
    assert_eq!(session["connection"], "playground");
    assert_eq!(session["statements_allowed"], 2);
    assert_eq!(session["statements_denied"], 1);
    let text = dev.ok(
        &agent,
        &[
            "sessions",
            "list",
            "--identity",
            "agent-1",
            "--since",
            "10m",
        ],
    );
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("2 allowed, 1 denied"), "{text}");
    let text = dev.ok(&agent, &["sessions", "list", "--connection", "nope"]);
    assert!(text.contains("no recorded sessions match"), "{text}");

    // The replay: statements in order, with decisions, rules and rows.
    let started = Instant::now();
    let replay = dev.ok(&agent, &["sessions", "replay", &id, "--speed", "max"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    let find = |needle: &str| {
        replay
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from the replay:\n{replay}"))
    };
    let order = [
        find("session opened on playground (read)"),
        find("ALLOWED SELECT count(*) FROM orders"),
        find("ok SELECT, 1 row"),
        find("DENIED  DROP TABLE orders"),
        find("DROP TABLE is ddl"),
        find("ALLOWED SELECT id FROM customers ORDER BY id LIMIT 3"),
        find("ok SELECT, 3 rows"),
        find("session closed"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{replay}"
    );
    assert!(replay.starts_with(&format!("session {id}")), "{replay}");
    // show prints the same timeline; --json carries it structured.
    let shown = dev.ok(&agent, &["sessions", "show", &id]);
    assert_eq!(shown, replay);
    let json: Value =
        serde_json::from_str(&dev.ok(&agent, &["sessions", "show", &id, "--json"])).unwrap();
    assert_eq!(json["timeline"]["session_id"], id.as_str());

    // Someone else sees nothing of it; an admin sees it.
    let other = dev.token("agent-2", "analytics-agents");
    let text = dev.ok(&other, &["sessions", "list"]);
    assert!(!text.contains(&id), "{text}");
    let out = dev.sluice(Some(&other), &["sessions", "replay", &id, "--speed", "max"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        format!("sluice: no session {id} that you may see")
    );
    let admin = dev.token("root-1", "sluice-admins");
    let text = dev.ok(&admin, &["sessions", "list", "--identity", "agent-1"]);
    assert!(text.contains(&id), "{text}");
    let out = dev.sluice(
        Some(&agent),
        &["sessions", "replay", &id, "--speed", "fast"],
    );
    assert!(!out.status.success());
}

/// Customers whose values masking must never let through, and where.
const CUSTOMERS: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, notes text);
INSERT INTO customers VALUES
  (1, 'Ada', 'ada.lovelace@example.com', '123-45-6789', 'pays by card 4111 1111 1111 1111'),
  (2, 'Alan', 'alan.turing@example.org', '234-56-7890', 'card 5555 5555 5555 4444 on file'),
  (3, 'Grace', 'grace.hopper@example.net', '345-67-8901', NULL),
  (4, 'Edsger', 'edsger.dijkstra@example.com', '456-78-9012', 'no card'),
  (5, 'Barbara', 'barbara.liskov@example.com', '567-89-0123', 'none');
";

const CLEAR: &[&str] = &[
    "ada.lovelace",
    "alan.turing",
    "grace.hopper",
    "edsger.dijkstra",
    "barbara.liskov",
    "123-45-6789",
    "234-56-7890",
    "345-67-8901",
    "456-78-9012",
    "567-89-0123",
    "4111 1111 1111 1111",
    "5555 5555 5555 4444",
];

/// The cells of a psql `-A -F '|'` line, or of a replay table line.
fn cells(line: &str) -> Vec<String> {
    line.split('|').map(|c| c.trim().to_string()).collect()
}

#[tokio::test]
async fn recorded_rows_replay_masked_exactly_as_psql_received_them() {
    use common::{AGENT, Options, Serve};
    let serve = Serve::start(Options {
        setup: CUSTOMERS.into(),
        connection: r#"
record_results = "rows:3"

[[connections.guardrails]]
name = "no-ddl"
action = "deny"
classes = ["ddl"]

[connections.masking]
columns = [
  { column = "public.customers.email", style = "partial" },
  { column = "public.customers.ssn", style = "redact" },
]
"#
        .into(),
        ..Options::default()
    })
    .await;
    let grant = serve.grant(AGENT).await;
    let token = serve.token(AGENT).await;

    // One psql session: five rows (three recorded), a refused DROP, one
    // row, and a NULL.
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-F", "|", "-d", &Serve::dsn(&grant)])
        .args([
            "-c",
            "SELECT id, name, email, ssn, notes FROM customers ORDER BY id",
        ])
        .args(["-c", "DROP TABLE customers"])
        .args(["-c", "SELECT email, notes FROM customers WHERE id = 2"])
        .args(["-c", "SELECT 'plain' AS word, NULL::text AS nothing"])
        .output()
        .unwrap();
    let seen: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(seen.len(), 7, "{seen:?} {}", stderr(&out));
    assert!(stderr(&out).contains("no-ddl"), "{}", stderr(&out));
    let psql_saw = seen.join("\n");
    for clear in CLEAR {
        assert!(
            !psql_saw.contains(clear),
            "psql saw {clear:?} in clear: {psql_saw}"
        );
    }
    assert!(psql_saw.contains("[REDACTED]") && psql_saw.contains("@example.org"));

    // Once the session's close is recorded, replay it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let list: Value =
            serde_json::from_str(&serve.ok(Some(&token), &["sessions", "list", "--json"])).unwrap();
        if let Some(s) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["state"] == "closed")
        {
            break s["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no closed session: {list}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let replay = serve.ok(Some(&token), &["sessions", "replay", &id, "--speed", "max"]);
    let find = |needle: &str| {
        replay
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from the replay:\n{replay}"))
    };
    let order = [
        find("session opened on shop (write)"),
        find("[1] ALLOWED SELECT id, name, email, ssn, notes FROM customers ORDER BY id"),
        find("ok SELECT, 5 rows"),
        find("(first 3 rows recorded)"),
        find("[2] DENIED  DROP TABLE customers"),
        find("rule no-ddl"),
        find("[3] ALLOWED SELECT email, notes FROM customers WHERE id = 2"),
        find("[4] ALLOWED SELECT 'plain' AS word, NULL::text AS nothing"),
        find("session closed (client closed): 3 allowed, 1 denied"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "out of order:\n{replay}"
    );

    // The recorded rows are the rows psql printed, cell for cell: the
    // first three of the five, then the one, then the NULL as psql shows it.
    let table: Vec<Vec<String>> = replay
        .lines()
        .filter(|l| l.contains('|'))
        .map(cells)
        .collect();
    let row_at = |want: &str| table.iter().position(|r| *r == cells(want));
    let mut last = 0;
    for (i, line) in seen.iter().enumerate() {
        let at = row_at(line);
        if (3..5).contains(&i) {
            assert!(
                at.is_none(),
                "row {i} was recorded past rows:3: {line}\n{replay}"
            );
            continue;
        }
        let at = at.unwrap_or_else(|| panic!("psql's {line:?} is not in the replay:\n{replay}"));
        assert!(at >= last, "{line:?} out of order");
        last = at;
    }
    assert!(
        row_at("id | name | email | ssn | notes").is_some(),
        "{replay}"
    );
    assert_eq!(replay.matches("(1 row)").count(), 2, "{replay}");

    // No clear value anywhere: not in the replay, the API's JSON, or the chain.
    let json = serve.ok(Some(&token), &["sessions", "show", &id, "--json"]);
    let config = serve.config.to_str().unwrap();
    let chain = serve.ok(None, &["audit", "export", "--config", config]);
    for (what, text) in [
        ("replay", &replay),
        ("show --json", &json),
        ("audit export", &chain),
    ] {
        for clear in CLEAR {
            assert!(!text.contains(clear), "{clear:?} in clear in the {what}");
        }
    }
    assert!(chain.contains("statement.results"));
}
