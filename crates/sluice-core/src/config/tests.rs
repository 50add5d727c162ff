use super::*;
use crate::Profile;

const GOOD: &str = r#"
[server]
api_listen = "127.0.0.1:8420"

[[issuers]]
name = "okta"
issuer = "https://example.okta.com/oauth2/default"
audiences = ["api://sluice"]

[[connections]]
name = "orders"
kind = "postgres"
host = "db.internal"
database = "orders"
user = "sluice"
password_env = "ORDERS_PASSWORD"

[[rules]]
name = "analysts"
groups = ["analytics-agents"]
connection = "orders"
profile = "read"
max_ttl = "15m"
"#;

#[test]
fn a_good_file_parses_with_defaults() {
    let c = Config::parse(GOOD, "sluice.toml").unwrap();
    assert_eq!(c.connections[0].port(), 5432);
    assert_eq!(c.connections[0].tls, TlsMode::VerifyFull);
    assert_eq!(c.issuers[0].groups_claim, "groups");
    assert_eq!(c.rules[0].approval, ApprovalMode::None);
    assert_eq!(c.server.default_grant_ttl.0.as_secs(), 600);
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let text = GOOD.replace(
        "profile = \"read\"",
        "profile = \"read\"\nprofle = \"write\"",
    );
    let err = Config::parse(&text, "sluice.toml").unwrap_err();
    assert_eq!(err.0.len(), 1);
    let p = &err.0[0];
    let line = text.lines().position(|l| l.starts_with("profle")).unwrap() + 1;
    assert_eq!(p.location, format!("sluice.toml:{line}"));
    assert!(p.message.contains("profle"), "{}", p.message);
}

#[test]
fn every_problem_is_reported_at_once_with_lines() {
    let text = r#"
[[issuers]]
name = "idp"
issuer = "http://idp.example.com"
audiences = []
algorithms = ["HS256"]

[[connections]]
name = "Bad Name"
kind = "postgres"
host = "h"
database = "d"
user = "u"
password_env = "A"
password_file = "/x"

[[rules]]
name = "r"
groups = ["g"]
connection = "missing"
profile = "write"
max_ttl = "48h"
approval = "grant"
"#;
    let err = Config::parse(text, "s.toml").unwrap_err();
    let lines: Vec<String> = err.0.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str, line: usize| {
        lines
            .iter()
            .any(|l| l.contains(needle) && l.starts_with(&format!("s.toml:{line}:")))
    };
    assert!(has("must use https", 4), "{lines:#?}");
    assert!(has("audience", 5), "{lines:#?}");
    assert!(has("\"HS256\" is not allowed", 6), "{lines:#?}");
    assert!(has("lowercase letters", 9), "{lines:#?}");
    assert!(has("not both", 15), "{lines:#?}");
    assert!(has("no connection named \"missing\"", 20), "{lines:#?}");
    assert!(has("at most 24h", 22), "{lines:#?}");
    assert!(has("approver_groups", 23), "{lines:#?}");
    assert_eq!(lines.len(), 8, "{lines:#?}");
}

#[test]
fn a_type_error_does_not_hide_the_problems_after_it() {
    // A bad value with a default (the port) is reported, and what read
    // around it is still validated: the rule's unknown connection and its
    // too-long TTL are reported in the same run.
    let text = GOOD
        .replace("user = \"sluice\"", "user = \"sluice\"\nport = \"five\"")
        .replace("connection = \"orders\"", "connection = \"nowhere\"")
        .replace("max_ttl = \"15m\"", "max_ttl = \"48h\"");
    let err = Config::parse(&text, "f").unwrap_err();
    let all = err.to_string();
    assert!(all.contains("\"five\""), "{all}");
    assert!(all.contains("no connection named \"nowhere\""), "{all}");
    assert!(all.contains("at most 24h"), "{all}");
    assert_eq!(err.0.len(), 3, "{all}");
}

#[test]
fn bad_durations_and_profiles_name_the_line() {
    let text = GOOD.replace("max_ttl = \"15m\"", "max_ttl = \"15\"");
    let err = Config::parse(&text, "f").unwrap_err();
    let line = text.lines().position(|l| l.starts_with("max_ttl")).unwrap() + 1;
    assert_eq!(err.0[0].location, format!("f:{line}"));
    assert!(err.0[0].message.contains("unit"), "{}", err.0[0].message);

    let text = GOOD.replace("profile = \"read\"", "profile = \"root\"");
    let err = Config::parse(&text, "f").unwrap_err();
    assert!(err.0[0].message.contains("root"), "{}", err.0[0].message);
}

#[test]
fn plain_http_issuers_only_on_loopback() {
    let text = GOOD.replace(
        "https://example.okta.com/oauth2/default",
        "http://127.0.0.1:9000/dev-issuer",
    );
    assert!(Config::parse(&text, "f").is_ok());
}

const SSH: &str = r#"
[[issuers]]
name = "okta"
issuer = "https://example.okta.com/oauth2/default"
audiences = ["api://sluice"]

[[connections]]
name = "web"
kind = "ssh"
host = "web.internal"
user = "deploy"

[connections.ssh]
host_key = "SHA256:abc"
private_key_file = "/etc/sluice/web_key"
"#;

#[test]
fn an_ssh_connection_parses_with_its_defaults() {
    let c = Config::parse(SSH, "sluice.toml").unwrap();
    let conn = &c.connections[0];
    assert_eq!(conn.port(), 22);
    let s = conn.ssh.as_ref().unwrap();
    assert_eq!(s.shell, "/bin/bash");
    assert_eq!(s.shell_profiles, [Profile::Write, Profile::Admin]);
    assert!(s.forwarding_profiles.is_empty() && s.forward_to.is_empty());
    assert!(s.sftp);
}

#[test]
fn ssh_connection_mistakes_are_named() {
    let cases = [
        (
            "host_key = \"SHA256:abc\"",
            "host_key = \"abc\"",
            "host_key",
        ),
        (
            "private_key_file = \"/etc/sluice/web_key\"",
            "",
            "needs a credential",
        ),
        (
            "private_key_file",
            "forwarding_profiles = [\"admin\"]\nprivate_key_file",
            "needs forward_to",
        ),
        (
            "private_key_file",
            "forwarding_profiles = [\"admin\"]\nforward_to = [\"db.internal\"]\nprivate_key_file",
            "host:port glob",
        ),
        (
            "private_key_file",
            "shell = \"bash\"\nprivate_key_file",
            "absolute path",
        ),
    ];
    for (from, to, said) in cases {
        let text = SSH.replace(from, to);
        let err = Config::parse(&text, "sluice.toml").unwrap_err();
        assert!(
            err.0.iter().any(|p| p.message.contains(said)),
            "{to}: {:?}",
            err.0
        );
    }
    let fine = SSH.replace(
        "private_key_file",
        "forwarding_profiles = [\"admin\"]\nforward_to = [\"127.0.0.1:5432\", \"*\"]\nprivate_key_file",
    );
    Config::parse(&fine, "sluice.toml").unwrap();
}
