//! What `sluice config check` verifies beyond the file's own consistency
//! (which `Config::parse` checks): the files it names exist and read (TLS
//! pairs match, keys parse), it has something to serve, password variables
//! are set, and its rules can apply. `--probe` goes on to the network: each
//! issuer's discovery document and keys, each backend login.
//!
//! `sluice serve` runs the same checks and refuses to start on an error; a
//! password variable that is not set is a warning for `check` (it may be
//! set where the gateway runs) and an error for `serve`.

use std::path::Path;

use sluice_core::Profile;
use sluice_core::config::locate::{Seg, Seg::Index, Seg::Key, line_of_path};
use sluice_core::config::{Config, Problem};

/// What the checks found.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// Where a finding points: `file:line` of `path` when it is found.
struct At<'a> {
    text: &'a str,
    file: &'a str,
}

impl At<'_> {
    fn problem(&self, path: &[Seg], message: String) -> Problem {
        Problem {
            location: match line_of_path(self.text, path) {
                Some(l) => format!("{}:{l}", self.file),
                None => self.file.to_string(),
            },
            message,
        }
    }
}

/// Checks what can be checked without the network. `serving`: a password
/// variable that is not set is an error, not a warning.
pub fn environment(c: &Config, text: &str, file: &str, serving: bool) -> Findings {
    let at = At { text, file };
    let mut f = Findings::default();
    if c.connections.is_empty() {
        f.errors
            .push(at.problem(&[], "no [[connections]]: there is nothing to grant".into()));
    }
    if c.rules.is_empty() {
        f.errors
            .push(at.problem(&[], "no [[rules]]: nobody is eligible for any grant".into()));
    }
    files(c, &at, &mut f);
    passwords(c, &at, &mut f, serving);
    rules(c, &at, &mut f);
    f
}

/// Every file the configuration names must exist and read; TLS pairs must
/// match and signing keys parse.
fn files(c: &Config, at: &At<'_>, f: &mut Findings) {
    let mut need = |path: Vec<Seg>, file: Option<&Path>| {
        if let Some(file) = file
            && let Err(e) = std::fs::read(file)
        {
            f.errors
                .push(at.problem(&path, format!("cannot read {}: {e}", file.display())));
        }
    };
    for (i, conn) in c.connections.iter().enumerate() {
        let p = |k| vec![Key("connections"), Index(i), Key(k)];
        need(p("password_file"), conn.password_file.as_deref());
        need(p("ca_file"), conn.ca_file.as_deref());
        if let Some(r) = &conn.read_credential {
            need(p("read_credential"), r.password_file.as_deref());
        }
        if let Some(m) = &conn.masking {
            need(p("masking"), m.hash_key_file.as_deref());
        }
        if let Some(s) = &conn.ssh {
            need(p("ssh"), s.private_key_file.as_deref());
        }
    }
    for (i, s) in c.audit.sinks.iter().enumerate() {
        let p = |k| vec![Key("audit"), Key("sinks"), Index(i), Key(k)];
        need(p("token_file"), s.token_file.as_deref());
    }
    for (i, w) in c.approvals.webhooks.iter().enumerate() {
        need(
            vec![
                Key("approvals"),
                Key("webhooks"),
                Index(i),
                Key("secret_file"),
            ],
            w.secret_file.as_deref(),
        );
    }
    if let Some(ui) = &c.ui {
        need(
            vec![Key("ui"), Key("client_secret_file")],
            ui.client_secret_file.as_deref(),
        );
    }
    if let (Some(cert), Some(key)) = (&c.postgres.tls_cert, &c.postgres.tls_key)
        && let Err(e) = sluice_pg::check_tls_pair(cert, key)
    {
        f.errors
            .push(at.problem(&[Key("postgres"), Key("tls_cert")], e));
    }
    if let Some(cp) = &c.audit.checkpoints
        && let Err(e) = sluice_audit::load_signing_key(&cp.signing_key_file)
    {
        f.errors.push(at.problem(
            &[Key("audit"), Key("checkpoints"), Key("signing_key_file")],
            e.to_string(),
        ));
    }
}

/// Passwords given by environment variable must be set where the gateway
/// runs.
fn passwords(c: &Config, at: &At<'_>, f: &mut Findings, serving: bool) {
    for (i, conn) in c.connections.iter().enumerate() {
        let mut envs = vec![("password_env", conn.password_env.as_deref())];
        if let Some(r) = &conn.read_credential {
            envs.push(("read_credential", r.password_env.as_deref()));
        }
        for (key, var) in envs {
            let Some(var) = var else { continue };
            if std::env::var_os(var).is_none() {
                let p = at.problem(
                    &[Key("connections"), Index(i), Key(key)],
                    format!(
                        "connection {:?}: environment variable {var} is not set",
                        conn.name
                    ),
                );
                if serving {
                    f.errors.push(p);
                } else {
                    f.warnings.push(p);
                }
            }
        }
    }
}

/// Rules that can never apply, or can never be satisfied.
fn rules(c: &Config, at: &At<'_>, f: &mut Findings) {
    for (i, conn) in c.connections.iter().enumerate() {
        let granted: Vec<Profile> = c
            .rules
            .iter()
            .filter(|r| r.connection == conn.name)
            .map(|r| r.profile)
            .collect();
        if granted.is_empty() && !c.rules.is_empty() {
            f.warnings.push(at.problem(
                &[Key("connections"), Index(i), Key("name")],
                format!(
                    "no [[rules]] grants connection {:?}: nobody can use it",
                    conn.name
                ),
            ));
        }
        for (j, g) in conn.guardrails.iter().enumerate() {
            let path = [Key("connections"), Index(i), Key("guardrails"), Index(j)];
            let never: Vec<&Profile> = g.profiles.iter().filter(|p| !granted.contains(p)).collect();
            if !g.profiles.is_empty() && never.len() == g.profiles.len() {
                f.warnings.push(at.problem(
                    &path,
                    format!(
                        "guardrail {:?} applies only to profiles no rule grants on {:?}: it never applies",
                        g.name, conn.name
                    ),
                ));
            }
            if g.action == sluice_core::guardrail::Action::Approve
                && c.approvals.approver_groups.is_empty()
            {
                f.warnings.push(at.problem(
                    &path,
                    format!(
                        "guardrail {:?} holds statements for approval, but [approvals] approver_groups \
                         is empty: they are refused",
                        g.name
                    ),
                ));
            }
        }
    }
}

/// `--probe`: each issuer's discovery document and keys, each backend
/// login with each credential. One line per check, and whether all passed.
pub async fn probe(c: &Config) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut ok = true;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    for iss in &c.issuers {
        let discovery = iss.discovery_url();
        let result = async {
            let doc: serde_json::Value = http
                .get(&discovery)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let jwks_uri = doc["jwks_uri"].as_str().unwrap_or_default().to_string();
            let keys: serde_json::Value = http
                .get(&jwks_uri)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            Ok::<_, reqwest::Error>((
                doc["issuer"].as_str().map(str::to_string),
                keys["keys"].as_array().map_or(0, Vec::len),
            ))
        }
        .await;
        match result {
            Ok((issuer, n)) if issuer.as_deref() == Some(iss.issuer.as_str()) && n > 0 => {
                lines.push(format!(
                    "ok    issuer {:?}: discovery and {n} signing key(s)",
                    iss.name
                ));
            }
            Ok((issuer, n)) => {
                ok = false;
                lines.push(format!(
                    "FAIL  issuer {:?}: discovery names issuer {:?} (configured {:?}), {n} key(s)",
                    iss.name, issuer, iss.issuer
                ));
            }
            Err(e) => {
                ok = false;
                lines.push(format!("FAIL  issuer {:?}: {discovery}: {e}", iss.name));
            }
        }
    }
    for conn in &c.connections {
        let probed = match conn.kind {
            sluice_core::config::ConnectionKind::Ssh => Some(sluice_ssh::probe(conn).await),
            sluice_core::config::ConnectionKind::Mysql => Some(sluice_mysql::probe(conn).await),
            sluice_core::config::ConnectionKind::Postgres => None,
        };
        if let Some(probed) = probed {
            match probed {
                Ok(what) => lines.push(format!("ok    connection {:?}: {what}", conn.name)),
                Err(e) => {
                    ok = false;
                    lines.push(format!("FAIL  connection {:?}: {e}", conn.name));
                }
            }
            continue;
        }
        for (user, result) in sluice_pg::probe(conn).await {
            match result {
                Ok(what) => lines.push(format!(
                    "ok    connection {:?} as {user}: {what}",
                    conn.name
                )),
                Err(e) => {
                    ok = false;
                    lines.push(format!("FAIL  connection {:?} as {user}: {e}", conn.name));
                }
            }
        }
    }
    (lines, ok)
}
