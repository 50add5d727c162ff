//! The command-line analysis, out of process and on a deadline.
//!
//! The bash parser (brush-parser) backtracks: fuzzing found lines of about
//! fifty bytes that take minutes, and one that allocated without end
//! (`docs/reliability.md`). Guards in `sluice-shell` refuse the shapes
//! found so far before parsing, but a parser with exponential corners
//! cannot be trusted to finish. So a serving gateway analyses each line in
//! a child process of its own binary (`sluice __analyse-shell`), which
//! limits its own CPU time and memory, and which is killed when it has not
//! answered within [`DEADLINE`]: the line is then `unknown`, refused like
//! any line Sluice cannot judge, and the gateway is unaffected.
//!
//! Without a helper (this crate's own tests) the analysis runs in process.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use sluice_core::guardrail::StatementFacts;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// How long one line's analysis may take, waiting for a slot included.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Analyses running at once; more wait (within the deadline).
const SLOTS: usize = 8;
/// The largest answer read back.
const MAX_ANSWER: usize = 1 << 20;

static HELPER: OnceLock<PathBuf> = OnceLock::new();
static RUNNING: Semaphore = Semaphore::const_new(SLOTS);

/// Analyse lines with `program __analyse-shell` (the gateway's own binary).
pub fn use_helper(program: PathBuf) {
    let _ = HELPER.set(program);
}

/// The facts of `line`, from the helper within the deadline, or `unknown`.
pub async fn analyse(line: &str) -> Vec<StatementFacts> {
    let Some(program) = HELPER.get() else {
        return sluice_shell::analyze(line);
    };
    match tokio::time::timeout(DEADLINE, ask(program, line)).await {
        Ok(Ok(facts)) => facts,
        Ok(Err(why)) => {
            tracing::warn!(error = %why, "the command-line analyser failed");
            vec![unknown(line, "the command line could not be analysed")]
        }
        Err(_) => vec![unknown(
            line,
            &format!(
                "the command line could not be analysed within {}s",
                DEADLINE.as_secs()
            ),
        )],
    }
}

async fn ask(program: &PathBuf, line: &str) -> Result<Vec<StatementFacts>, String> {
    let _slot = RUNNING.acquire().await.map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(program)
        .arg("__analyse-shell")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .env_clear()
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin
        .write_all(line.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    if !out.status.success() || out.stdout.len() > MAX_ANSWER {
        return Err(format!("the analyser ended with {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn unknown(line: &str, why: &str) -> StatementFacts {
    let mut command: String = line.chars().take(200).collect();
    command = command.replace(['\n', '\r'], " ");
    StatementFacts::unknown(command, why)
}
