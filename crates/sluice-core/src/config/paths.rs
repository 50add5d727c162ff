//! Relative paths in a configuration file are read from the file's own
//! directory, as most servers do: `sluice audit verify --config
//! /etc/sluice/sluice.toml` run from anywhere finds the same store as the
//! gateway, instead of a new empty one beside the caller.

use std::path::{Path, PathBuf};

use super::Config;

impl Config {
    /// Makes every relative path absolute against `base` (the directory
    /// of the file the configuration was read from).
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let fix_opt = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                fix(p);
            }
        };
        fix(&mut self.server.data_dir);
        if let Some(store) = &mut self.server.store {
            *store = resolve_sqlite(store, base);
        }
        fix_opt(&mut self.postgres.tls_cert);
        fix_opt(&mut self.postgres.tls_key);
        fix_opt(&mut self.ssh.host_key_file);
        fix_opt(&mut self.mysql.tls_cert);
        fix_opt(&mut self.mysql.tls_key);
        fix_opt(&mut self.mysql.rsa_key_file);
        for c in &mut self.connections {
            fix_opt(&mut c.password_file);
            fix_opt(&mut c.ca_file);
            if let Some(s) = &mut c.ssh {
                fix_opt(&mut s.private_key_file);
            }
            if let Some(r) = &mut c.read_credential {
                fix_opt(&mut r.password_file);
            }
            if let Some(m) = &mut c.masking {
                fix_opt(&mut m.hash_key_file);
            }
        }
        for w in &mut self.approvals.webhooks {
            fix_opt(&mut w.secret_file);
        }
        for s in &mut self.audit.sinks {
            fix_opt(&mut s.path);
            fix_opt(&mut s.token_file);
        }
        if let Some(c) = &mut self.audit.checkpoints {
            fix(&mut c.signing_key_file);
        }
        if let Some(ui) = &mut self.ui {
            fix_opt(&mut ui.client_secret_file);
        }
    }
}

/// `sqlite:PATH` with a relative PATH, made absolute; other stores as given.
fn resolve_sqlite(store: &str, base: &Path) -> String {
    let path = store
        .strip_prefix("sqlite://")
        .or_else(|| store.strip_prefix("sqlite:"));
    match path {
        Some(p) if Path::new(p).is_relative() && !p.is_empty() => {
            format!("sqlite:{}", base.join(p).display())
        }
        _ => store.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file() {
        let text = r#"
[server]
data_dir = "data"
store = "sqlite:state/sluice.db"

[postgres]
tls_cert = "/etc/tls/cert.pem"
tls_key = "tls/key.pem"

[[connections]]
name = "orders"
kind = "postgres"
host = "db"
database = "orders"
user = "sluice"
password_file = "secrets/orders.pw"
"#;
        let mut c = Config::parse(text, "s.toml").unwrap();
        c.resolve_paths(Path::new("/etc/sluice"));
        assert_eq!(c.server.data_dir, Path::new("/etc/sluice/data"));
        assert_eq!(
            c.server.store.as_deref(),
            Some("sqlite:/etc/sluice/state/sluice.db")
        );
        assert_eq!(
            c.postgres.tls_cert.as_deref(),
            Some(Path::new("/etc/tls/cert.pem"))
        );
        assert_eq!(
            c.postgres.tls_key.as_deref(),
            Some(Path::new("/etc/sluice/tls/key.pem"))
        );
        assert_eq!(
            c.connections[0].password_file.as_deref(),
            Some(Path::new("/etc/sluice/secrets/orders.pw"))
        );
        assert_eq!(
            resolve_sqlite("postgres://u@h/db", Path::new("/x")),
            "postgres://u@h/db"
        );
    }
}
