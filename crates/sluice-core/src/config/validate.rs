//! Checks that a parsed configuration makes sense as a whole. Returns every
//! problem, each with the path of the key at fault.

use super::locate::Seg::{self, Index, Key};
use super::{ALLOWED_ALGORITHMS, ApprovalMode, Config, ConnectionConfig, IssuerConfig};
use std::collections::HashSet;
use std::time::Duration;

type Problems = Vec<(Vec<Seg>, String)>;

/// The longest grant any rule may give.
pub const MAX_GRANT_TTL: Duration = Duration::from_secs(24 * 3600);

pub fn validate(c: &Config) -> Problems {
    let mut p = Problems::new();
    server(c, &mut p);
    let mut names = HashSet::new();
    for (i, iss) in c.issuers.iter().enumerate() {
        issuer(i, iss, &mut names, &mut p);
    }
    let mut names = HashSet::new();
    for (i, conn) in c.connections.iter().enumerate() {
        connection(i, conn, &mut names, &mut p);
    }
    rules(c, &mut p);
    approvals(c, &mut p);
    p.extend(super::webhook::problems(c));
    p.extend(super::ui::problems(c));
    p.extend(super::pool::problems(c));
    p.extend(super::limits::problems(c));
    audit(c, &mut p);
    p
}

fn at(path: &[Seg], msg: impl Into<String>, p: &mut Problems) {
    p.push((path.to_vec(), msg.into()));
}

fn server(c: &Config, p: &mut Problems) {
    let s = &c.server;
    for (section, key, addr) in [
        ("server", "api_listen", &s.api_listen),
        ("postgres", "listen", &c.postgres.listen),
    ] {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            at(
                &[Key(section), Key(key)],
                format!("{addr:?} is not an address like \"127.0.0.1:8420\""),
                p,
            );
        }
    }
    if let Some(store) = &s.store {
        let ok = store.starts_with("sqlite:")
            || store.starts_with("postgres://")
            || store.starts_with("postgresql://");
        if !ok {
            at(
                &[Key("server"), Key("store")],
                "use \"sqlite:PATH\" or \"postgres://user@host/db\"",
                p,
            );
        }
    }
    if s.max_body_bytes < 1024 || s.max_body_bytes > 16 * 1024 * 1024 {
        at(
            &[Key("server"), Key("max_body_bytes")],
            "must be between 1024 and 16777216",
            p,
        );
    }
    if s.default_grant_ttl.0.is_zero() || s.default_grant_ttl.0 > MAX_GRANT_TTL {
        at(
            &[Key("server"), Key("default_grant_ttl")],
            "must be more than 0 and at most 24h",
            p,
        );
    }
    mysql_listener(&c.mysql, p);
    let pg = &c.postgres;
    if pg.tls_cert.is_some() != pg.tls_key.is_some() {
        at(
            &[Key("postgres"), Key("tls_cert")],
            "set both tls_cert and tls_key",
            p,
        );
    }
    if pg.require_tls && pg.tls_cert.is_none() {
        at(
            &[Key("postgres"), Key("require_tls")],
            "needs tls_cert and tls_key",
            p,
        );
    }
    if pg.max_message_bytes < 1024 * 1024 {
        at(
            &[Key("postgres"), Key("max_message_bytes")],
            "must be at least 1048576",
            p,
        );
    }
    if s.sweep_interval.0.is_zero() {
        at(
            &[Key("server"), Key("sweep_interval")],
            "must be more than 0",
            p,
        );
    }
}

fn issuer(i: usize, iss: &IssuerConfig, names: &mut HashSet<String>, p: &mut Problems) {
    let path = |k| vec![Key("issuers"), Index(i), Key(k)];
    if iss.name.trim().is_empty() {
        at(&path("name"), "must not be empty", p);
    } else if !names.insert(iss.name.clone()) {
        at(
            &path("name"),
            format!("issuer name {:?} is used twice", iss.name),
            p,
        );
    }
    match url_scheme(&iss.issuer) {
        Some("https") => {}
        Some("http") if is_loopback_url(&iss.issuer) => {}
        Some("http") => at(
            &path("issuer"),
            "must use https (plain http is accepted only for 127.0.0.1/localhost)",
            p,
        ),
        _ => at(&path("issuer"), "must be an https URL", p),
    }
    if iss.audiences.is_empty() || iss.audiences.iter().any(|a| a.trim().is_empty()) {
        at(
            &path("audiences"),
            "list at least one audience: without it, tokens minted for any application would be accepted",
            p,
        );
    }
    if iss.algorithms.is_empty() {
        at(&path("algorithms"), "list at least one algorithm", p);
    }
    for alg in &iss.algorithms {
        if !ALLOWED_ALGORITHMS.contains(&alg.as_str()) {
            at(
                &path("algorithms"),
                format!(
                    "{alg:?} is not allowed: use {}",
                    ALLOWED_ALGORITHMS.join(", ")
                ),
                p,
            );
        }
    }
    if iss.groups_claim.trim().is_empty() {
        at(&path("groups_claim"), "must not be empty", p);
    }
}

fn connection(i: usize, c: &ConnectionConfig, names: &mut HashSet<String>, p: &mut Problems) {
    let path = |k| vec![Key("connections"), Index(i), Key(k)];
    if !is_name(&c.name) {
        at(
            &path("name"),
            "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter",
            p,
        );
    } else if !names.insert(c.name.clone()) {
        at(
            &path("name"),
            format!("connection {:?} is defined twice", c.name),
            p,
        );
    }
    if c.host.trim().is_empty() {
        at(&path("host"), "must not be empty", p);
    }
    if c.port() == 0 {
        at(&path("port"), "must not be 0", p);
    }
    match c.kind {
        super::ConnectionKind::Postgres | super::ConnectionKind::Mysql => {
            if c.database.trim().is_empty() {
                at(&path("database"), "must not be empty", p);
            }
            if c.ssh.is_some() {
                at(&path("ssh"), "only for kind = \"ssh\"", p);
            }
        }
        super::ConnectionKind::Ssh => ssh(i, c, p),
    }
    if c.user.trim().is_empty() {
        at(&path("user"), "must not be empty", p);
    }
    if c.password_env.is_some() && c.password_file.is_some() {
        at(
            &path("password_file"),
            "set password_env or password_file, not both",
            p,
        );
    }
    if let Some(r) = &c.read_credential {
        if r.user.trim().is_empty() {
            at(&path("read_credential"), "user must not be empty", p);
        }
        if r.password_env.is_some() && r.password_file.is_some() {
            at(
                &path("read_credential"),
                "set password_env or password_file, not both",
                p,
            );
        }
    }
    if c.ca_file.is_some() && c.tls != super::TlsMode::VerifyFull {
        at(&path("ca_file"), "only used with tls = \"verify-full\"", p);
    }
    if let Some(m) = &c.masking {
        masking(i, m, p);
    }
    if let super::connection::RecordResults::Rows(n) = c.record_results
        && !(1..=super::connection::MAX_RECORDED_ROWS).contains(&n)
    {
        at(
            &path("record_results"),
            format!(
                "rows:N needs N between 1 and {} (use \"summary\" to keep no rows)",
                super::connection::MAX_RECORDED_ROWS
            ),
            p,
        );
    }
}

/// The `[mysql]` listener: TLS settings that go together, sane limits.
fn mysql_listener(m: &super::MysqlListenerConfig, p: &mut Problems) {
    let key = |k| vec![Key("mysql"), Key(k)];
    if m.tls_cert.is_some() != m.tls_key.is_some() {
        at(&key("tls_cert"), "set both tls_cert and tls_key", p);
    }
    if m.require_tls && m.tls_cert.is_none() {
        at(&key("require_tls"), "needs tls_cert and tls_key", p);
    }
    if m.max_packet_bytes < 1024 * 1024 || m.max_packet_bytes > 1024 * 1024 * 1024 {
        at(
            &key("max_packet_bytes"),
            "must be between 1048576 and 1073741824",
            p,
        );
    }
    if m.max_statement_bytes < 1024 || m.max_statement_bytes > m.max_packet_bytes {
        at(
            &key("max_statement_bytes"),
            "must be at least 1024 and at most max_packet_bytes",
            p,
        );
    }
    if m.server_version.is_empty()
        || m.server_version.len() > 60
        || !m.server_version.bytes().all(|b| b.is_ascii_graphic())
    {
        at(
            &key("server_version"),
            "must be 1 to 60 printable characters without spaces",
            p,
        );
    }
}

/// An SSH connection: its host key pinned, one credential, no database.
fn ssh(i: usize, c: &ConnectionConfig, p: &mut Problems) {
    let path = |k| vec![Key("connections"), Index(i), Key(k)];
    if !c.database.is_empty() {
        at(&path("database"), "an ssh connection has no database", p);
    }
    if let Some(m) = &c.masking
        && (!m.columns.is_empty() || !m.names.is_empty())
    {
        at(
            &path("masking"),
            "an ssh connection's masking has no columns: its command output goes through the value detectors only (leave columns and names out)",
            p,
        );
    }
    let Some(s) = &c.ssh else {
        at(
            &path("kind"),
            "an ssh connection needs [connections.ssh] with the host's key (host_key)",
            p,
        );
        return;
    };
    let sp = |k| vec![Key("connections"), Index(i), Key("ssh"), Key(k)];
    let key = s.host_key.trim();
    let looks_pinned = key.starts_with("SHA256:")
        || key.starts_with("ssh-")
        || key.starts_with("ecdsa-")
        || key.starts_with("sk-");
    if !looks_pinned {
        at(
            &sp("host_key"),
            "give the host's public key (\"ssh-ed25519 AAAA…\") or its fingerprint (\"SHA256:…\"), as `ssh-keyscan` or `ssh-keygen -lf` print them",
            p,
        );
    }
    let passwords = c.password_env.is_some() || c.password_file.is_some();
    match (&s.private_key_file, passwords) {
        (Some(_), true) => at(
            &sp("private_key_file"),
            "set private_key_file or a password, not both",
            p,
        ),
        (None, false) => at(
            &path("user"),
            "an ssh connection needs a credential: [connections.ssh] private_key_file, or password_env/password_file",
            p,
        ),
        _ => {}
    }
    if c.read_credential.is_some() {
        at(
            &path("read_credential"),
            "not used by ssh connections (a read grant runs commands as the same user, judged as read)",
            p,
        );
    }
    if !s.shell.starts_with('/') {
        at(&sp("shell"), "an absolute path, such as /bin/bash", p);
    }
    if !s.forwarding_profiles.is_empty() && s.forward_to.is_empty() {
        at(
            &sp("forward_to"),
            "forwarding_profiles needs forward_to: the host:port globs a forward may reach (\"127.0.0.1:5432\"; \"*\" for anywhere the host can reach)",
            p,
        );
    }
    for (j, f) in s.forward_to.iter().enumerate() {
        if f.trim() != "*" && !f.contains(':') {
            at(
                &[
                    Key("connections"),
                    Index(i),
                    Key("ssh"),
                    Key("forward_to"),
                    Index(j),
                ],
                "a host:port glob, such as \"db.internal:5432\" or \"10.0.0.*:*\"",
                p,
            );
        }
    }
}

fn approvals(c: &Config, p: &mut Problems) {
    let a = &c.approvals;
    if a.min_approvals == 0 || a.min_approvals > 10 {
        at(
            &[Key("approvals"), Key("min_approvals")],
            "must be between 1 and 10",
            p,
        );
    }
    if a.statement_timeout.0.is_zero() || a.statement_timeout.0 > MAX_GRANT_TTL {
        at(
            &[Key("approvals"), Key("statement_timeout")],
            "must be more than 0 and at most 24h",
            p,
        );
    }
    // Rules asking for grant approval are reported at the rule (see rules()).
    for (i, conn) in c.connections.iter().enumerate() {
        for (j, g) in conn.guardrails.iter().enumerate() {
            if g.action == crate::guardrail::Action::Approve && a.approver_groups.is_empty() {
                at(
                    &[
                        Key("connections"),
                        Index(i),
                        Key("guardrails"),
                        Index(j),
                        Key("action"),
                    ],
                    "needs approvers: set [approvals] approver_groups",
                    p,
                );
            }
        }
    }
}

fn rules(c: &Config, p: &mut Problems) {
    let mut names = HashSet::new();
    for (i, r) in c.rules.iter().enumerate() {
        let path = |k| vec![Key("rules"), Index(i), Key(k)];
        if r.name.trim().is_empty() {
            at(&path("name"), "must not be empty", p);
        } else if !names.insert(r.name.clone()) {
            at(
                &path("name"),
                format!("rule {:?} is defined twice", r.name),
                p,
            );
        }
        if r.groups.is_empty() || r.groups.iter().any(|g| g.trim().is_empty()) {
            at(&path("groups"), "list at least one group", p);
        }
        if c.connection(&r.connection).is_none() {
            let known: Vec<&str> = c.connections.iter().map(|c| c.name.as_str()).collect();
            at(
                &path("connection"),
                format!(
                    "no connection named {:?} (defined: {})",
                    r.connection,
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
                p,
            );
        }
        if r.max_ttl.0.is_zero() || r.max_ttl.0 > MAX_GRANT_TTL {
            at(&path("max_ttl"), "must be more than 0 and at most 24h", p);
        }
        if r.approval == ApprovalMode::Grant && c.approvals.approver_groups.is_empty() {
            at(
                &path("approval"),
                "needs approvers: set [approvals] approver_groups",
                p,
            );
        }
    }
}

/// The `[connections.masking]` section: patterns parse, hash has a key.
fn masking(i: usize, m: &super::MaskingConfig, p: &mut Problems) {
    let path = |k| vec![Key("connections"), Index(i), Key("masking"), Key(k)];
    for (j, r) in m.columns.iter().enumerate() {
        if let Err(e) = super::ColumnPattern::parse(&r.column) {
            let mut at_rule = path("columns");
            at_rule.extend([Index(j), Key("column")]);
            at(&at_rule, e, p);
        }
    }
    for (j, r) in m.names.iter().enumerate() {
        if r.name.trim().is_empty() {
            let mut at_rule = path("names");
            at_rule.extend([Index(j), Key("name")]);
            at(&at_rule, "must not be empty", p);
        }
    }
    if m.exempt_groups.iter().any(|g| g.trim().is_empty()) {
        at(&path("exempt_groups"), "group names must not be empty", p);
    }
    match (&m.hash_key_env, &m.hash_key_file) {
        (Some(_), Some(_)) => at(
            &path("hash_key_file"),
            "set hash_key_env or hash_key_file, not both",
            p,
        ),
        (None, None) if m.uses_hash() => at(
            &path("hash_key_env"),
            "the hash style needs a key: set hash_key_env or hash_key_file",
            p,
        ),
        _ => {}
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn url_scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "127.0.0.1" || host == "localhost" || rest.starts_with("[::1]")
}

fn audit(c: &Config, p: &mut Problems) {
    use super::audit::{SinkKind, SyslogProtocol};
    let a = &c.audit;
    let mut names = HashSet::new();
    for (i, s) in a.sinks.iter().enumerate() {
        let path = |k| vec![Key("audit"), Key("sinks"), Index(i), Key(k)];
        if !is_name(&s.name) {
            at(
                &path("name"),
                "use 1-63 lowercase letters, digits, '-' or '_', starting with a letter",
                p,
            );
        } else if !names.insert(s.name.clone()) {
            at(
                &path("name"),
                format!("sink {:?} is defined twice", s.name),
                p,
            );
        }
        for (key, kind) in s.keys_set() {
            if kind != s.kind {
                at(
                    &path(key),
                    format!("only used with kind = \"{}\"", kind.as_str()),
                    p,
                );
            }
        }
        if s.batch_size == 0 || s.batch_size > 10_000 {
            at(&path("batch_size"), "must be between 1 and 10000", p);
        }
        if s.retry_initial.0.is_zero() || s.retry_initial > s.retry_max {
            at(
                &path("retry_initial"),
                "must be more than 0 and at most retry_max",
                p,
            );
        }
        if s.retry_max.0 > Duration::from_secs(3600) {
            at(&path("retry_max"), "must be at most 1h", p);
        }
        if s.poll_interval.0.is_zero() || s.poll_interval.0 > Duration::from_secs(3600) {
            at(
                &path("poll_interval"),
                "must be more than 0 and at most 1h",
                p,
            );
        }
        match s.kind {
            SinkKind::File => {
                if s.path.is_none() {
                    at(&path("kind"), "a file sink needs path", p);
                }
                if s.max_bytes() < 4096 {
                    at(&path("max_bytes"), "must be at least 4096", p);
                }
                if s.keep() > 1000 {
                    at(&path("keep"), "must be at most 1000", p);
                }
            }
            SinkKind::Http => {
                match s.url.as_deref() {
                    None => at(&path("kind"), "an http sink needs url", p),
                    Some(u) => match url_scheme(u) {
                        Some("https") => {}
                        Some("http") if is_loopback_url(u) || s.allow_plain_http == Some(true) => {}
                        Some("http") => at(
                            &path("url"),
                            "must use https (plain http only for 127.0.0.1/localhost, or with allow_plain_http = true)",
                            p,
                        ),
                        _ => at(&path("url"), "must be an https URL", p),
                    },
                }
                if s.token_env.is_some() && s.token_file.is_some() {
                    at(
                        &path("token_file"),
                        "set token_env or token_file, not both",
                        p,
                    );
                }
                if s.format() == super::audit::HttpFormat::SplunkHec
                    && s.token_env.is_none()
                    && s.token_file.is_none()
                {
                    at(
                        &path("format"),
                        "splunk-hec needs the HEC token: set token_env or token_file",
                        p,
                    );
                }
                let t = s.timeout().0;
                if t.is_zero() || t > Duration::from_secs(300) {
                    at(&path("timeout"), "must be more than 0 and at most 5m", p);
                }
            }
            SinkKind::Syslog => {
                match s.address.as_deref() {
                    None => at(&path("kind"), "a syslog sink needs address", p),
                    Some(addr) => {
                        let ok = addr.rsplit_once(':').is_some_and(|(h, port)| {
                            !h.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
                        });
                        if !ok {
                            at(
                                &path("address"),
                                format!("{addr:?} is not \"host:port\""),
                                p,
                            );
                        }
                    }
                }
                let app = s.app_name();
                if app.is_empty() || app.len() > 48 || !app.bytes().all(|b| (33..=126).contains(&b))
                {
                    at(
                        &path("app_name"),
                        "use 1-48 printable ASCII characters, no spaces",
                        p,
                    );
                }
                if let Some(h) = &s.hostname
                    && (h.is_empty()
                        || h.len() > 255
                        || !h.bytes().all(|b| (33..=126).contains(&b)))
                {
                    at(
                        &path("hostname"),
                        "use 1-255 printable ASCII characters, no spaces",
                        p,
                    );
                }
                let m = s.max_message_bytes();
                if !(480..=65_000).contains(&m) {
                    at(
                        &path("max_message_bytes"),
                        "must be between 480 and 65000",
                        p,
                    );
                }
                if s.max_message_bytes.is_some() && s.protocol() == SyslogProtocol::Tcp {
                    at(
                        &path("max_message_bytes"),
                        "only used with protocol = \"udp\"",
                        p,
                    );
                }
            }
        }
    }
    if let Some(cp) = &a.checkpoints {
        let path = |k| vec![Key("audit"), Key("checkpoints"), Key(k)];
        if cp.signing_key_file.as_os_str().is_empty() {
            at(&path("signing_key_file"), "must not be empty", p);
        }
        if cp.every_events == 0 || cp.every_events > 1_000_000 {
            at(&path("every_events"), "must be between 1 and 1000000", p);
        }
        if cp.interval.0 < Duration::from_secs(1) || cp.interval.0 > Duration::from_secs(24 * 3600)
        {
            at(&path("interval"), "must be between 1s and 24h", p);
        }
    }
    if let Some(r) = &a.retention {
        let path = |k| vec![Key("audit"), Key("retention"), Key(k)];
        if a.checkpoints.is_none() {
            at(
                &path("max_age"),
                "needs [audit.checkpoints]: deletions are signed and stop at a signed checkpoint",
                p,
            );
        }
        if r.max_age.0 < Duration::from_secs(3600) {
            at(&path("max_age"), "must be at least 1h", p);
        }
        if r.interval.0 < Duration::from_secs(1) || r.interval.0 > Duration::from_secs(24 * 3600) {
            at(&path("interval"), "must be between 1s and 24h", p);
        }
    }
}
