//! The official MCP TypeScript SDK client (`tests/fixtures/mcp`) driving a
//! gateway's `/mcp`: steps in, one JSON line per step out.

use serde_json::Value;
use std::io::Write;

/// Runs `steps` (see `tests/fixtures/mcp/client.mjs`) against `api`'s
/// `/mcp` with `token`; one value per step. Panics when the client fails.
pub fn run_steps(api: &str, token: &str, steps: &Value) -> Vec<Value> {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/mcp");
    let mut child = std::process::Command::new("node")
        .arg("client.mjs")
        .current_dir(fixture)
        .env("URL", format!("{api}/mcp"))
        .env("TOKEN", token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node (make test installs the MCP SDK fixture)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per step"))
        .collect()
}
