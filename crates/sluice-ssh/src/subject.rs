//! What SSH requests do, as the gate judges and records them: a command
//! line (its simple commands, from `sluice-shell`), a file operation over
//! SFTP, an interactive shell, or a request Sluice does not pass (port
//! forwarding, agent forwarding, X11, environment variables).

use sluice_core::audit::detail::StatementRecord;
use sluice_core::guardrail::{StatementClass, StatementFacts};
use sluice_gate::Subject;

/// A request: its text and what it does.
pub struct Request {
    pub text: String,
    pub facts: Vec<StatementFacts>,
}

impl Request {
    /// A command line run with `exec` (`ssh host COMMAND`), analysed in
    /// process.
    #[cfg(test)]
    pub fn command(line: &str) -> Request {
        let facts = match scp(line) {
            Some(f) => vec![f],
            None => sluice_shell::analyze(line),
        };
        Self::command_with(line, facts)
    }

    /// The same, analysed by the out-of-process analyser with a deadline
    /// (`crate::analyser`): what the listener uses.
    pub async fn command_bounded(line: &str) -> Request {
        let facts = match scp(line) {
            Some(f) => vec![f],
            None => crate::analyser::analyse(line).await,
        };
        Self::command_with(line, facts)
    }

    fn command_with(line: &str, mut facts: Vec<StatementFacts>) -> Request {
        if facts.is_empty() {
            // Nothing but blanks and comments: the shell runs nothing.
            facts.push(StatementFacts::new(StatementClass::Read, "(empty)"));
        }
        Request {
            text: line.to_string(),
            facts,
        }
    }

    /// A file operation: `what` (`open for reading`, `remove`…), the
    /// paths it reads and writes.
    pub fn file(what: &str, class: StatementClass, read: &[&str], written: &[&str]) -> Request {
        let path = read.iter().chain(written).next().copied().unwrap_or("");
        let text = format!("sftp {what} {path}");
        let mut f = StatementFacts::new(class, text.clone());
        f.tables_read = read.iter().map(|s| s.to_string()).collect();
        f.tables_written = written.iter().map(|s| s.to_string()).collect();
        f.functions = vec![format!(
            "sftp-{}",
            what.split_whitespace().next().unwrap_or(what)
        )];
        f.reasons.push(format!("{what} is {class}"));
        Request {
            text,
            facts: vec![f],
        }
    }

    /// A port forward: a connection to `target` (`host:port`) made from
    /// the host (local and dynamic forwarding), or a listener on the host
    /// whose connections come back to the client (remote forwarding).
    /// Its command is `forward HOST:PORT` or `listen ADDRESS:PORT`, for
    /// guardrails' `commands` globs.
    pub fn forward(verb: &str, target: &str) -> Request {
        let command = format!("{verb} {target}");
        let text = match verb {
            "listen" => format!("remote forwarding: the host listens on {target}"),
            _ => format!("forwarding to {target}"),
        };
        let mut f = StatementFacts::new(StatementClass::Admin, command);
        f.reasons
            .push("a forward opens a network path through the host".into());
        Request {
            text,
            facts: vec![f],
        }
    }

    /// Something the session asks for besides commands and files.
    pub fn other(text: &str, class: StatementClass, reason: &str) -> Request {
        let mut f = StatementFacts::new(class, text);
        f.reasons.push(reason.to_string());
        Request {
            text: text.to_string(),
            facts: vec![f],
        }
    }
}

impl Subject for Request {
    fn describe(&self) -> Vec<StatementRecord> {
        vec![sluice_gate::record_of(&self.text, &self.facts, "")]
    }

    fn text(&self) -> String {
        self.text.clone()
    }

    /// A command's shape is itself: approving the shape approves this
    /// exact line for the rest of the grant.
    fn shape(&self, _parameters: Option<&[Option<String>]>) -> (String, serde_json::Value) {
        use sha2::Digest;
        let key = hex::encode(sha2::Sha256::digest(self.text.as_bytes()));
        (
            format!("ssh:{key}"),
            serde_json::json!({
                "normalized": self.text,
                "admits": "approving the shape lets this grant run exactly this again, without asking",
            }),
        )
    }
}

/// The legacy scp protocol's server side (`scp -t`, `scp -f`): a copy to
/// or from the named paths, judged as a write or a read of them. Anything
/// else after `scp` is not the protocol's: `None`, and the line is
/// analysed as a command (where `scp` is not a known program).
fn scp(line: &str) -> Option<StatementFacts> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first() != Some(&"scp") {
        return None;
    }
    let mut to = None;
    let mut paths = Vec::new();
    for w in &words[1..] {
        match *w {
            "-t" => to = Some(true),
            "-f" => to = Some(false),
            "-r" | "-d" | "-p" | "-v" | "-q" | "--" => {}
            other if other.starts_with('-') => return None,
            other => paths.push(other.to_string()),
        }
    }
    // Only plain paths: no quoting, expansion or other words the shell
    // would read differently.
    let plain = |p: &String| {
        p.chars()
            .all(|c| c.is_alphanumeric() || "/._-~".contains(c))
    };
    if paths.is_empty() || !paths.iter().all(plain) {
        return None;
    }
    let to = to?;
    let mut f = StatementFacts::new(
        if to {
            StatementClass::Write
        } else {
            StatementClass::Read
        },
        line,
    );
    f.functions = vec!["scp".into()];
    if to {
        f.tables_written = paths;
        f.reasons.push("scp copies files to the host".into());
    } else {
        f.tables_read = paths;
        f.reasons.push("scp copies files from the host".into());
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_is_a_copy_of_named_paths() {
        let up = Request::command("scp -t /tmp/in");
        assert_eq!(up.facts[0].class, StatementClass::Write);
        assert_eq!(up.facts[0].tables_written, ["/tmp/in"]);
        let down = Request::command("scp -f notes.txt");
        assert_eq!(down.facts[0].class, StatementClass::Read);
        let odd = Request::command("scp -t '/tmp/$(id)'");
        assert_eq!(odd.facts[0].class, StatementClass::Unknown);
    }

    #[test]
    fn the_record_shows_every_command_of_a_line() {
        let r = Request::command("ls -la | grep x");
        let d = r.describe();
        assert_eq!(d[0].commands, ["ls -la", "grep x"]);
        assert_eq!(d[0].classes, ["read", "read"]);
    }
}
