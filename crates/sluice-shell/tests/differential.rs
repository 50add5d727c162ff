//! Sluice's reading of a command line against bash's own: each line runs in
//! a real bash (as the SSH adapter pins it: `--noprofile --norc -c`) whose
//! PATH holds only stub programs that note their name, in a directory with
//! hostile file names (`-exec`, `ls`). Every program bash ran must be one
//! the analysis found, unless the analysis calls the line `unknown` (then
//! the gateway refuses it anyway). Generated lines mix the constructs
//! where parsers disagree: quoting, escapes, line continuations, comments,
//! here-documents, substitutions, groups, wrappers, globs and braces.
//!
//! `SLUICE_PROPTEST_CASES` sets the number of generated lines (the suite
//! runs a few hundred; `make fuzz` runs more).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use sluice_core::guardrail::StatementClass;

/// Programs stubbed in PATH (some are bash builtins too: bash runs its
/// builtin, which the trace does not show, and that is fine).
const STUBS: &[&str] = &[
    "ls",
    "cat",
    "rm",
    "find",
    "git",
    "sort",
    "grep",
    "sudo",
    "env",
    "xargs",
    "nice",
    "timeout",
    "sh",
    "python3",
    "touch",
    "cp",
    "id",
    "df",
    "head",
    "systemctl",
    "curl",
    "awk",
    "sed",
];

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for name in STUBS {
            let p = bin.join(name);
            std::fs::write(
                &p,
                "#!/bin/sh\nprintf '%s\\n' \"${0##*/}\" >> \"$SLUICE_TRACE\"\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Hostile names for globs to find.
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        for f in ["-exec", "ls", "rm", "a.log", "-delete"] {
            std::fs::write(work.join(f), "").unwrap();
        }
        Sandbox { dir }
    }

    /// The stub programs bash ran for `line`.
    fn ran(&self, line: &str) -> BTreeSet<String> {
        let trace = self.dir.path().join("trace");
        let _ = std::fs::remove_file(&trace);
        let _ = Command::new("/bin/bash")
            .args(["--noprofile", "--norc", "-c", line])
            .current_dir(self.dir.path().join("work"))
            .env_clear()
            .env("PATH", self.dir.path().join("bin"))
            .env("HOME", self.dir.path())
            .env("SLUICE_TRACE", &trace)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        read_trace(&trace)
    }
}

fn read_trace(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether the analysis accounts for everything bash ran.
fn check(sandbox: &Sandbox, line: &str) -> Result<(), String> {
    let facts = sluice_shell::analyze(line);
    if facts.iter().any(|f| f.class == StatementClass::Unknown) {
        return Ok(());
    }
    let found: BTreeSet<String> = facts.iter().flat_map(|f| f.functions.clone()).collect();
    let ran = sandbox.ran(line);
    let unseen: Vec<&String> = ran.difference(&found).collect();
    if unseen.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bash ran {unseen:?} in {line:?}; the analysis found {found:?}"
        ))
    }
}

#[test]
fn tricky_lines_are_read_as_bash_reads_them() {
    let sandbox = Sandbox::new();
    for line in [
        "ls; rm x",
        "ls\nrm x",
        "ls \\\nrm",
        "echo 'a;rm x'",
        "echo \"$(rm x)\"",
        "echo `rm x`",
        "echo $'\\x3brm x'",
        "cat <<EOF\n$(rm x)\nEOF",
        "cat <<'EOF'\n$(rm x)\nEOF",
        "ls # ; rm x",
        "ls #\nrm x",
        "{ ls; rm x; }",
        "(ls) && (rm x)",
        "for f in a b; do rm $f; done",
        "case x in x) rm y;; esac",
        "if true; then rm x; fi",
        "while false; do rm x; done",
        "cat <(rm x)",
        "ls > >(rm x)",
        "x=$(rm y) ls",
        "command rm x",
        "exec rm x",
        "sudo rm x",
        "env A=1 rm x",
        "nice -n 1 rm x",
        "timeout 1 rm x",
        "xargs rm < /dev/null",
        "ls *",
        "l? -la",
        "{rm,x}",
        "\\rm x",
        "r\\m x",
        "'r'm x",
        "\"rm\" x",
        "echo ${x:-$(rm y)}",
        "echo $((1+$(rm y)))",
        "time rm x",
        "! rm x",
        "ls | rm x",
        "ls |& rm x",
        "coproc rm x",
        "f() { rm x; }; f",
        "alias ls=rm; ls x",
        "ls;;rm x",
        "ls & rm x",
    ] {
        if let Err(e) = check(&sandbox, line) {
            panic!("{e}");
        }
    }
}

/// One piece of a generated line.
fn piece() -> impl Strategy<Value = String> {
    let program = prop::sample::select(vec![
        "ls",
        "cat",
        "rm",
        "find",
        "git",
        "sort",
        "grep",
        "sudo",
        "env",
        "xargs",
        "id",
        "df",
        "head",
        "touch",
        "cp",
        "command",
        "exec",
        "nice",
        "timeout 1",
    ]);
    let arg = prop::sample::select(vec![
        "x",
        "-la",
        "'a b'",
        "\"q\"",
        "$HOME",
        "*",
        "-ex?c",
        "{a,b}",
        "\\;",
        "$(id)",
        "`df`",
        "<(ls)",
        "> out",
        "2>&1",
        "< /dev/null",
        "-exec",
        "-o o",
        "status",
        "push",
        "--",
        "'",
        "\\\n",
        "#",
        "$'\\n'",
        "${x:-y}",
    ]);
    (program, prop::collection::vec(arg, 0..4)).prop_map(|(p, args)| {
        let mut s = p.to_string();
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    })
}

fn line() -> impl Strategy<Value = String> {
    let sep = prop::sample::select(vec![
        "; ", " && ", " || ", " | ", "\n", " & ", " ;; ", ")", "(", "{ ", "; }",
    ]);
    (piece(), prop::collection::vec((sep, piece()), 0..4)).prop_map(|(first, rest)| {
        let mut s = first;
        for (sep, p) in rest {
            s.push_str(sep);
            s.push_str(&p);
        }
        s
    })
}

fn cases() -> u32 {
    std::env::var("SLUICE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn generated_lines_hide_no_program_from_the_analysis(l in line()) {
        let sandbox = Sandbox::new();
        if let Err(e) = check(&sandbox, &l) {
            prop_assert!(false, "{}", e);
        }
    }
}
