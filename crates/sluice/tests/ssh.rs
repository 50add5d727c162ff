//! SSH through `sluice serve` with every real part: the OIDC provider,
//! the control plane and its store, OpenSSH's sshd as the host and the
//! OpenSSH client as the agent. A grant for an SSH connection carries the
//! `ssh` command and the gateway's host key fingerprint; a command held
//! for approval fails at once naming it and runs when retried after an
//! approver said yes; an OIDC token is a password too.

use serde_json::{Value, json};
use sluice_testkit::oidc::{OidcClient, OidcOptions, OidcProvider};
use sluice_testkit::ports::free_port;
use sluice_testkit::sshd::Sshd;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const WRITER: &str = "writer-1";
const DBA: &str = "dba-1";

struct Gateway {
    sshd: Sshd,
    idp: OidcProvider,
    child: std::process::Child,
    api: String,
    ssh_port: u16,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    async fn start() -> Gateway {
        let sshd = tokio::task::spawn_blocking(Sshd::start)
            .await
            .unwrap()
            .unwrap();
        let idp = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::new(WRITER, &["writers"]),
                OidcClient::new(DBA, &["dba"]),
            ],
            ..OidcOptions::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (api_port, ssh_port) = (free_port(), free_port());
        let config = format!(
            r#"
[server]
api_listen = "127.0.0.1:{api_port}"
data_dir = "data"

[postgres]
listen = "127.0.0.1:{pg}"

[ssh]
listen = "127.0.0.1:{ssh_port}"

[[issuers]]
name = "idp"
issuer = "{issuer}"
audiences = ["{audience}"]

[[connections]]
name = "web"
kind = "ssh"
host = "127.0.0.1"
port = {host_port}
user = "{user}"

[[connections.guardrails]]
name = "changes-need-approval"
action = "approve"
hold = "fail"
classes = ["write"]

[connections.ssh]
host_key = "{host_key}"
private_key_file = "{key}"

[[rules]]
name = "writers"
groups = ["writers"]
connection = "web"
profile = "write"
max_ttl = "15m"

[approvals]
approver_groups = ["dba"]
"#,
            pg = free_port(),
            issuer = idp.issuer(),
            audience = idp.audience(),
            host_port = sshd.port(),
            user = sshd.user(),
            host_key = sshd.host_key(),
            key = sshd.client_key().display(),
        );
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("sluice.log")).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let gw = Gateway {
            sshd,
            idp,
            child,
            api: format!("http://127.0.0.1:{api_port}"),
            ssh_port,
            http: reqwest::Client::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while gw
            .http
            .get(format!("{}/readyz", gw.api))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "sluice serve did not start: {}",
                gw.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        gw
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.log")).unwrap_or_default()
    }

    async fn token(&self, client: &str) -> String {
        self.idp
            .client_credentials_token(client, &OidcClient::secret_for(client), self.idp.audience())
            .await
            .unwrap()
    }

    async fn call(&self, method: reqwest::Method, path: &str, who: &str, body: Value) -> Value {
        self.http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(self.token(who).await)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// OpenSSH's client running `command`, the password given by askpass.
    fn ssh(&self, user: &str, password: &str, command: &str) -> Output {
        self.ssh_with(user, password, &[command], "")
    }

    /// OpenSSH's client with `args` after the destination, fed `input`.
    fn ssh_with(&self, user: &str, password: &str, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let askpass = self.dir.path().join(format!("askpass-{}", password.len()));
        std::fs::write(
            &askpass,
            format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
        let known = self.dir.path().join("known_hosts");
        let mut child = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "PubkeyAuthentication=no",
            ])
            .args(["-o", "StrictHostKeyChecking=accept-new", "-o"])
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .args(["-p", &self.ssh_port.to_string()])
            .arg(format!("{user}@127.0.0.1"))
            .args(args)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// The `sluice` CLI against this gateway, as `who`.
    async fn cli(&self, who: &str, args: &[&str]) -> Output {
        let token = self.token(who).await;
        let (api, args) = (self.api.clone(), args.iter().map(|a| a.to_string()));
        let args: Vec<String> = args.collect();
        tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(&args)
                .env("SLUICE_URL", api)
                .env("SLUICE_TOKEN", token)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_runs_commands_over_ssh_and_a_change_waits_for_approval() {
    let gw = Gateway::start().await;
    let grant = gw
        .call(
            reqwest::Method::POST,
            "/v1/grants",
            WRITER,
            json!({"connection": "web", "reason": "deploy"}),
        )
        .await;
    let c = &grant["credentials"];
    let (user, password) = (c["user"].as_str().unwrap(), c["password"].as_str().unwrap());
    assert_eq!(
        c["ssh"],
        format!("ssh -p {} {user}@127.0.0.1", gw.ssh_port),
        "{grant}"
    );

    let home = gw.sshd.home();
    let out = gw.ssh(user, password, &format!("ls {}", home.display()));
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), gw.log());

    // The gateway's host key, as the agent saw it, is the one in the grant.
    let keygen = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(gw.dir.path().join("known_hosts"))
        .output()
        .unwrap();
    let fingerprint = c["host_key_fingerprint"].as_str().unwrap();
    assert!(
        text(&keygen.stdout).contains(fingerprint),
        "{}",
        text(&keygen.stdout)
    );

    // A change is held: it fails at once, naming the approval.
    let marker = home.join("deployed");
    let change = format!("touch {}", marker.display());
    let out = gw.ssh(user, password, &change);
    assert_eq!(out.status.code(), Some(126));
    let said = text(&out.stderr);
    assert!(said.contains("held for approval a_"), "{said}");
    assert!(!marker.exists());
    let id = said
        .split_whitespace()
        .find(|w| w.starts_with("a_"))
        .unwrap()
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    let decided = gw
        .call(
            reqwest::Method::POST,
            &format!("/v1/approvals/{id}/approve"),
            DBA,
            json!({"reason": "ok to deploy"}),
        )
        .await;
    assert_eq!(decided["status"], "approved", "{decided}");
    let out = gw.ssh(user, password, &change);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(marker.exists(), "the approved change ran");

    // Its recording, as any session's.
    let sessions = gw
        .call(
            reqwest::Method::GET,
            "/v1/sessions?connection=web",
            DBA,
            Value::Null,
        )
        .await;
    assert!(
        sessions["sessions"]
            .as_array()
            .is_some_and(|s| s.len() >= 3),
        "{sessions}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oidc_token_is_a_password_for_the_connection() {
    let gw = Gateway::start().await;
    let token = gw.token(WRITER).await;
    let out = gw.ssh("web", &token, "echo via-token");
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), gw.log());
    assert_eq!(text(&out.stdout), "via-token\n");
    let out = gw.ssh("web", "not-a-token", "echo no");
    assert!(!out.status.success());
    assert!(!gw.log().contains(&token), "no token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shell_is_recorded_and_exported_as_an_asciicast() {
    let gw = Gateway::start().await;
    let grant = gw
        .call(
            reqwest::Method::POST,
            "/v1/grants",
            WRITER,
            json!({"connection": "web", "reason": "look around"}),
        )
        .await;
    let c = &grant["credentials"];
    let (user, password) = (c["user"].as_str().unwrap(), c["password"].as_str().unwrap());
    let out = gw.ssh_with(user, password, &["-tt"], "echo CAST-$((6*7))\nexit\n");
    assert!(
        text(&out.stdout).contains("CAST-42"),
        "{}\n{}",
        text(&out.stderr),
        gw.log()
    );

    let sessions = gw
        .call(
            reqwest::Method::GET,
            "/v1/sessions?connection=web",
            DBA,
            Value::Null,
        )
        .await;
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_string();
    // The terminal's stretches are written behind the session's end: wait
    // for them to land.
    let deadline = Instant::now() + Duration::from_secs(15);
    let out = loop {
        let out = gw.cli(DBA, &["sessions", "cast", &id]).await;
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["version"], 2, "{:?}", lines[0]);
    let shown = |code: &str| -> String {
        lines[1..]
            .iter()
            .filter(|e| e[1] == code)
            .filter_map(|e| e[2].as_str())
            .collect()
    };
    assert!(shown("o").contains("CAST-42"), "{lines:?}");
    assert!(shown("i").contains("echo CAST-$((6*7))"), "{lines:?}");
    let times: Vec<f64> = lines[1..].iter().filter_map(|e| e[0].as_f64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");

    // The same recording replays in the terminal.
    let out = gw
        .cli(DBA, &["sessions", "replay", &id, "--speed", "max"])
        .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CAST-42"),
        "{}",
        text(&out.stdout)
    );

    // The agent may read its own sessions but not an exec without a shell.
    let out = gw
        .cli(WRITER, &["sessions", "cast", &id, "--shell", "99"])
        .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no interactive terminal"),
        "{}",
        text(&out.stderr)
    );
}

/// `sluice exec` for an SSH connection: unchanged `ssh` and `scp` reach it
/// by its name through a fresh grant, with the gateway's host key pinned
/// (another key is refused, not learned); the secret is in no variable
/// and the grant is revoked when the command ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_gives_ssh_and_scp_the_grant() {
    let gw = Gateway::start().await;
    let home = gw.sshd.home();
    std::fs::write(home.join("hello.txt"), "hi from the host\n").unwrap();
    let remote = home.join("hello.txt").display().to_string();

    let out = gw
        .cli(WRITER, &["exec", "web", "--", "ssh", "web", "cat", &remote])
        .await;
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), gw.log());
    assert_eq!(text(&out.stdout), "hi from the host\n");

    let copy = gw.dir.path().join("copy.txt");
    let out = gw
        .cli(
            WRITER,
            &[
                "exec",
                "web",
                "--",
                "scp",
                &format!("web:{remote}"),
                copy.to_str().unwrap(),
            ],
        )
        .await;
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), gw.log());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "hi from the host\n"
    );

    // Nothing secret in the command's environment.
    let out = gw.cli(WRITER, &["exec", "web", "--", "env"]).await;
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("sls_"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("SLUICE_SSH_HOST=web"));

    // The pinned key is the only one accepted: replaced, ssh refuses.
    let swap = format!(
        "k=$(dirname \"$SLUICE_SSH_CONFIG\"); ssh-keygen -q -t ed25519 -N '' -f \"$k/other\" && \
         echo \"[127.0.0.1]:{} $(cut -d' ' -f1,2 \"$k/other.pub\")\" > \"$k/known_hosts\" && ssh web true",
        gw.ssh_port
    );
    let out = gw
        .cli(WRITER, &["exec", "web", "--", "sh", "-c", &swap])
        .await;
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Host key verification failed"),
        "{}",
        text(&out.stderr)
    );

    let grants = gw
        .call(reqwest::Method::GET, "/v1/grants", WRITER, Value::Null)
        .await;
    let grants = grants["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 4, "{grants:?}");
    assert!(
        grants.iter().all(|g| g["status"] == "revoked"),
        "{grants:?}"
    );
}

/// MCP's `exec`: a command on an SSH connection through the gateway's own
/// SSH listener, with the same gate: allowed output comes back, a change
/// is held naming its approval and runs when sent again after approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mcp_client_runs_commands_over_ssh() {
    let gw = Gateway::start().await;
    let home = gw.sshd.home();
    std::fs::write(home.join("hello.txt"), "hi from the host\n").unwrap();
    let marker = home.join("mcp-deployed");
    let touch = format!("touch {}", marker.display());
    let token = gw.token(WRITER).await;
    let out = sluice_testkit::mcp::run_steps(
        &gw.api,
        &token,
        &json!([
            {"tool": "request_grant", "args": {"connection": "web", "reason": "mcp ssh"}, "save": {"grant": "id"}},
            {"tool": "exec", "args": {"grant_id": "${grant}", "command": format!("cat {}", home.join("hello.txt").display())}},
            {"tool": "exec", "args": {"grant_id": "${grant}", "command": touch}},
            {"tool": "query", "args": {"grant_id": "${grant}", "sql": "SELECT 1"}},
        ]),
    );
    assert_eq!(out[0]["value"]["status"], "active", "{}", out[0]);
    assert!(
        !out[0].to_string().contains("sls_"),
        "no secret to the model"
    );
    let grant = out[0]["value"]["id"].as_str().unwrap().to_string();
    assert_eq!(out[1]["isError"], false, "{}\n{}", out[1], gw.log());
    assert_eq!(out[1]["value"]["stdout"], "hi from the host\n");
    assert_eq!(out[1]["value"]["exit_status"], 0);

    let held = &out[2]["value"];
    assert_eq!(held["exit_status"], 126, "{held}");
    assert_eq!(held["refused_by_gateway"], true);
    let approval = held["approval_id"]
        .as_str()
        .expect("the approval id")
        .to_string();
    assert!(!marker.exists());
    assert_eq!(out[3]["value"]["error"], "wrong_tool", "{}", out[3]);

    let decided = gw
        .call(
            reqwest::Method::POST,
            &format!("/v1/approvals/{approval}/approve"),
            DBA,
            json!({"reason": "ok"}),
        )
        .await;
    assert_eq!(decided["status"], "approved", "{decided}");
    let out = sluice_testkit::mcp::run_steps(
        &gw.api,
        &token,
        &json!([{"tool": "exec", "args": {"grant_id": grant, "command": touch}}]),
    );
    assert_eq!(out[0]["value"]["exit_status"], 0, "{}", out[0]);
    assert!(marker.exists(), "the approved command ran");
}

/// A command line the bash parser backtracks on for seconds (found by
/// fuzzing, `fuzz/seeds/shell_analyse/`) is refused once the out-of-process
/// analyser's deadline passes; the gateway and the next command are
/// unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_line_the_parser_runs_away_on_is_refused_not_waited_for() {
    let gw = Gateway::start().await;
    let grant = gw
        .call(
            reqwest::Method::POST,
            "/v1/grants",
            WRITER,
            json!({"connection": "web", "reason": "fuzz finding"}),
        )
        .await;
    let c = &grant["credentials"];
    let (user, password) = (c["user"].as_str().unwrap(), c["password"].as_str().unwrap());
    // Ten brackets (under the parser guard's limit); minutes in process.
    let slow = r#"!(${x[t ${x[t ${x[t ${x[t 1- & ~- ""=~&-"/  t ${<x1-~   n) r}g"#;
    let out = gw.ssh(user, password, slow);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("could not be analysed within"),
        "{}",
        text(&out.stderr)
    );
    let out = gw.ssh(user, password, &format!("ls {}", gw.sshd.home().display()));
    assert!(out.status.success(), "{}", text(&out.stderr));
}
