//! `sluice config check` beyond the file's own consistency (issue 13): the
//! files it names, the variables it needs, rules that can never apply, and
//! with `--probe` each issuer and each backend login, against a real
//! PostgreSQL and a real OpenID provider. `sluice serve` refuses what check
//! calls an error, and a password variable that is not set.

use std::path::Path;
use std::process::{Command, Output};

use sluice_testkit::oidc::{OidcOptions, OidcProvider};
use sluice_testkit::pg::{PgServer, SUPERUSER};
use sluice_testkit::ports::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
const UNSET: &str = "SLUICE_TEST_NEVER_SET_PASSWORD";

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg(file)
        .env_remove(UNSET)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn line_of(file: &Path, needle: &str) -> String {
    let body = std::fs::read_to_string(file).unwrap();
    let n = body.lines().position(|l| l.contains(needle)).unwrap() + 1;
    format!("{}:{n}:", file.display())
}

/// A certificate and the key of another one.
fn mismatched_pair(dir: &Path) {
    let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("listener.crt"), a.cert.pem()).unwrap();
    std::fs::write(dir.join("listener.key"), b.key_pair.serialize_pem()).unwrap();
}

#[test]
fn check_reads_what_the_file_names_and_says_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    mismatched_pair(dir.path());
    std::fs::write(dir.path().join("not-a-key.pem"), "hello").unwrap();
    let file = dir.path().join("sluice.toml");
    // Relative paths are read from the file's directory, so check them
    // from somewhere else.
    std::fs::write(
        &file,
        format!(
            r#"
[postgres]
tls_cert = "listener.crt"
tls_key = "listener.key"

[audit.checkpoints]
signing_key_file = "not-a-key.pem"

[[connections]]
name = "orders"
kind = "postgres"
host = "127.0.0.1"
database = "orders"
user = "sluice"
password_file = "secrets/orders.pw"
tls = "disable"

[[connections.guardrails]]
name = "admins-only"
classes = ["ddl"]
action = "deny"
profiles = ["admin"]

[[connections]]
name = "billing"
kind = "postgres"
host = "127.0.0.1"
database = "billing"
user = "sluice"
password_env = "{UNSET}"
tls = "disable"

[[rules]]
name = "r"
groups = ["g"]
connection = "orders"
profile = "read"
max_ttl = "10m"
"#
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&file)
        .current_dir("/")
        .env_remove(UNSET)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let secrets = dir.path().join("secrets/orders.pw");
    for (needle, words) in [
        ("tls_cert", "key does not match".to_string()),
        ("signing_key_file", "not-a-key.pem".to_string()),
        (
            "password_file",
            format!("cannot read {}", secrets.display()),
        ),
    ] {
        let at = line_of(&file, needle);
        assert!(
            err.lines()
                .any(|l| l.starts_with(&at) && l.contains(&words)),
            "{at} {words:?} missing:\n{err}"
        );
    }
    for warning in [
        format!("environment variable {UNSET} is not set"),
        "no [[rules]] grants connection \"billing\"".to_string(),
        "guardrail \"admins-only\" applies only to profiles no rule grants".to_string(),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning:") && l.contains(&warning)),
            "{warning:?} missing:\n{err}"
        );
    }
    assert!(err.contains("3 problem(s) found"), "{err}");
}

#[test]
fn serve_refuses_a_password_variable_that_is_not_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[server]
api_listen = "127.0.0.1:{api}"
data_dir = "data"

[postgres]
listen = "127.0.0.1:{pg}"

[[connections]]
name = "billing"
kind = "postgres"
host = "127.0.0.1"
database = "billing"
user = "sluice"
password_env = "{UNSET}"
tls = "disable"

[[rules]]
name = "r"
groups = ["g"]
connection = "billing"
profile = "read"
max_ttl = "10m"
"#,
            api = free_port(),
            pg = free_port()
        ),
    )
    .unwrap();
    // `check` only warns: the variable may be set where the gateway runs.
    let out = run(&["config", "check"], &file);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning:"),
        "{}",
        text(&out.stderr)
    );
    // `serve` is where it runs: it stops before listening.
    let out = run(&["serve", "--config"], &file);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("environment variable {UNSET} is not set")),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was started");
}

#[tokio::test]
async fn probe_says_what_worked_for_each_issuer_and_backend() {
    let pg = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let idp = OidcProvider::start(OidcOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.pw"), pg.password()).unwrap();
    std::fs::write(dir.path().join("bad.pw"), "not-the-password").unwrap();
    let file = dir.path().join("sluice.toml");
    let dead = free_port();
    std::fs::write(
        &file,
        format!(
            r#"
[[issuers]]
name = "corp"
issuer = "{issuer}"
audiences = ["{aud}"]

[[issuers]]
name = "gone"
issuer = "http://127.0.0.1:{dead}"
audiences = ["x"]

[[connections]]
name = "good"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "postgres"
user = "{SUPERUSER}"
password_file = "good.pw"
tls = "disable"

[[connections]]
name = "wrong"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "postgres"
user = "{SUPERUSER}"
password_file = "bad.pw"
tls = "disable"

[[rules]]
name = "r"
groups = ["g"]
connection = "good"
profile = "read"
max_ttl = "10m"

[[rules]]
name = "w"
groups = ["g"]
connection = "wrong"
profile = "read"
max_ttl = "10m"
"#,
            issuer = idp.issuer(),
            aud = idp.audience(),
            port = pg.port(),
        ),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["config", "check", "--probe"])
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "one probe failed: {stdout}");
    let has = |prefix: &str, words: &str| {
        stdout
            .lines()
            .any(|l| l.starts_with(prefix) && l.contains(words))
    };
    assert!(has("ok    issuer \"corp\"", "signing key"), "{stdout}");
    assert!(has("FAIL  issuer \"gone\"", "127.0.0.1"), "{stdout}");
    assert!(
        has("ok    connection \"good\"", "logged in; PostgreSQL"),
        "{stdout}"
    );
    assert!(has("FAIL  connection \"wrong\"", "password"), "{stdout}");
    assert!(
        !stdout.contains(pg.password()) && !stdout.contains("not-the-password"),
        "no credential is printed: {stdout}"
    );
}
