//! What programs do: the class of each program Sluice knows, and the
//! arguments and subcommands that change it. A program not listed is
//! `unknown` and fails closed unless a rule allows it by name.
//!
//! The list is deliberately short and conservative: a program is `read`
//! only when nothing it can be told to do writes, executes other programs
//! or acts on the system; flags that change that (`find -exec`,
//! `sort -o`, `git push`) raise the class. Interpreters and programs that
//! run other programs (`sh`, `python`, `awk`, `xargs` without a known
//! program) are `unknown`: what they run is not on the command line.

use sluice_core::guardrail::StatementClass as C;

/// How a program is judged.
pub struct Program {
    pub name: &'static str,
    /// With arguments that raise nothing.
    pub class: C,
    /// The first non-option argument decides (`git status`,
    /// `systemctl restart`); others keep `class`.
    pub subcommands: &'static [(&'static [&'static str], C)],
    /// Arguments that raise the class when present (an exact word, or a
    /// prefix ending in `=` or a short-option letter group `-x`).
    pub raising: &'static [(&'static str, C)],
    /// Whether arguments matter at all: a program with subcommands or
    /// raising arguments given an argument known only at run time is
    /// `unknown` (it might be `-exec`).
    pub runs: Runs,
}

/// Whether the program runs another program given in its arguments.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    No,
    /// `sudo`, `nice`, `nohup`, `timeout`, `env`, `xargs`, `exec`,
    /// `command`: the rest of the line (after the wrapper's own options)
    /// is a command of its own, judged as such; the wrapper's class is the
    /// least the whole gets.
    Wrapped,
}

const fn p(name: &'static str, class: C) -> Program {
    Program {
        name,
        class,
        subcommands: &[],
        raising: &[],
        runs: Runs::No,
    }
}

const fn wrapper(name: &'static str, class: C) -> Program {
    Program {
        name,
        class,
        subcommands: &[],
        raising: &[],
        runs: Runs::Wrapped,
    }
}

/// Every program Sluice knows.
pub static PROGRAMS: &[Program] = &[
    // Reading files and the system.
    p("ls", C::Read),
    p("cat", C::Read),
    p("head", C::Read),
    p("tail", C::Read),
    p("grep", C::Read),
    p("egrep", C::Read),
    p("fgrep", C::Read),
    p("zgrep", C::Read),
    p("wc", C::Read),
    p("cut", C::Read),
    p("tr", C::Read),
    p("nl", C::Read),
    p("od", C::Read),
    p("hexdump", C::Read),
    p("stat", C::Read),
    p("file", C::Read),
    p("du", C::Read),
    p("df", C::Read),
    p("ps", C::Read),
    p("free", C::Read),
    p("uptime", C::Read),
    p("uname", C::Read),
    p("whoami", C::Read),
    p("id", C::Read),
    p("groups", C::Read),
    p("pwd", C::Read),
    p("echo", C::Read),
    p("printf", C::Read),
    p("true", C::Read),
    p("false", C::Read),
    p("test", C::Read),
    p("[", C::Read),
    p("which", C::Read),
    p("basename", C::Read),
    p("dirname", C::Read),
    p("realpath", C::Read),
    p("readlink", C::Read),
    p("md5sum", C::Read),
    p("sha1sum", C::Read),
    p("sha256sum", C::Read),
    p("cmp", C::Read),
    p("diff", C::Read),
    p("comm", C::Read),
    p("printenv", C::Read),
    p("lsblk", C::Read),
    p("lscpu", C::Read),
    p("findmnt", C::Read),
    p("journalctl", C::Read),
    p("ss", C::Read),
    p("seq", C::Read),
    p("sleep", C::Read),
    p("zcat", C::Read),
    p("base64", C::Read),
    p("jq", C::Read),
    Program {
        name: "sort",
        class: C::Read,
        subcommands: &[],
        raising: &[("-o", C::Write), ("--output=", C::Write)],
        runs: Runs::No,
    },
    Program {
        name: "uniq",
        class: C::Read,
        subcommands: &[],
        // `uniq IN OUT` writes OUT: two operands raise it.
        raising: &[],
        runs: Runs::No,
    },
    Program {
        name: "find",
        class: C::Read,
        subcommands: &[],
        raising: &[
            ("-exec", C::Unknown),
            ("-execdir", C::Unknown),
            ("-ok", C::Unknown),
            ("-okdir", C::Unknown),
            ("-delete", C::Write),
            ("-fprint", C::Write),
            ("-fprint0", C::Write),
            ("-fprintf", C::Write),
            ("-fls", C::Write),
        ],
        runs: Runs::No,
    },
    Program {
        name: "date",
        class: C::Read,
        subcommands: &[],
        raising: &[("-s", C::Admin), ("--set=", C::Admin), ("--set", C::Admin)],
        runs: Runs::No,
    },
    Program {
        name: "hostname",
        class: C::Read,
        // Any operand sets the host name.
        subcommands: &[],
        raising: &[],
        runs: Runs::No,
    },
    Program {
        name: "git",
        class: C::Write,
        subcommands: &[(
            &[
                "status",
                "log",
                "diff",
                "show",
                "branch",
                "rev-parse",
                "ls-files",
                "blame",
                "describe",
                "grep",
                "shortlog",
                "ls-tree",
                "cat-file",
            ],
            C::Read,
        )],
        raising: &[("-c", C::Unknown), ("--exec-path", C::Unknown)],
        runs: Runs::No,
    },
    Program {
        name: "systemctl",
        class: C::Admin,
        subcommands: &[(
            &[
                "status",
                "show",
                "list-units",
                "list-unit-files",
                "is-active",
                "is-enabled",
                "is-failed",
                "cat",
            ],
            C::Read,
        )],
        raising: &[],
        runs: Runs::No,
    },
    Program {
        name: "ip",
        class: C::Admin,
        subcommands: &[(
            &["addr", "a", "route", "r", "link", "l", "neigh", "n"],
            C::Read,
        )],
        // `ip link set`, `ip addr add`…: an action word raises it.
        raising: &[
            ("add", C::Admin),
            ("del", C::Admin),
            ("delete", C::Admin),
            ("set", C::Admin),
            ("change", C::Admin),
            ("replace", C::Admin),
            ("flush", C::Admin),
            ("-batch", C::Unknown),
        ],
        runs: Runs::No,
    },
    Program {
        name: "tar",
        class: C::Write,
        subcommands: &[(
            &[
                "t", "tf", "tvf", "tzf", "tvzf", "-t", "-tf", "-tvf", "-tzf", "--list",
            ],
            C::Read,
        )],
        raising: &[
            ("--to-command", C::Unknown),
            ("--use-compress-program", C::Unknown),
            ("-I", C::Unknown),
            ("--checkpoint-action", C::Unknown),
            ("--info-script", C::Unknown),
            ("--new-volume-script", C::Unknown),
            ("-F", C::Unknown),
        ],
        runs: Runs::No,
    },
    // Changing files.
    p("cp", C::Write),
    p("mv", C::Write),
    p("rm", C::Write),
    p("mkdir", C::Write),
    p("rmdir", C::Write),
    p("touch", C::Write),
    p("chmod", C::Write),
    p("ln", C::Write),
    p("tee", C::Write),
    p("truncate", C::Write),
    p("dd", C::Write),
    p("install", C::Write),
    p("gzip", C::Write),
    p("gunzip", C::Write),
    p("unzip", C::Write),
    p("zip", C::Write),
    p("patch", C::Write),
    p("sed", C::Write),
    p("curl", C::Write),
    p("wget", C::Write),
    // Acting on the system, other users or other processes.
    p("kill", C::Admin),
    p("pkill", C::Admin),
    p("killall", C::Admin),
    p("reboot", C::Admin),
    p("shutdown", C::Admin),
    p("halt", C::Admin),
    p("poweroff", C::Admin),
    p("mount", C::Admin),
    p("umount", C::Admin),
    p("iptables", C::Admin),
    p("nft", C::Admin),
    p("useradd", C::Admin),
    p("userdel", C::Admin),
    p("usermod", C::Admin),
    p("passwd", C::Admin),
    p("chown", C::Admin),
    p("chgrp", C::Admin),
    p("crontab", C::Admin),
    p("docker", C::Admin),
    p("kubectl", C::Admin),
    p("apt", C::Admin),
    p("apt-get", C::Admin),
    p("dpkg", C::Admin),
    p("service", C::Admin),
    p("sysctl", C::Admin),
    p("modprobe", C::Admin),
    // Wrappers: the command they run is judged too.
    wrapper("sudo", C::Admin),
    wrapper("doas", C::Admin),
    wrapper("nice", C::Read),
    wrapper("nohup", C::Read),
    wrapper("timeout", C::Read),
    wrapper("env", C::Read),
    wrapper("xargs", C::Read),
    wrapper("exec", C::Read),
    wrapper("command", C::Read),
    wrapper("time", C::Read),
    wrapper("stdbuf", C::Read),
];

/// Shell builtins that only change this shell's own state.
pub static SESSION_BUILTINS: &[&str] = &[
    "cd", "export", "unset", "set", "shopt", "umask", "ulimit", "exit", "return", "local",
    "declare", "typeset", "readonly", "wait", "shift", ":",
];

/// Variables that change which programs run, how words split, or what
/// runs behind the scenes: assigning them makes a command `unknown`.
pub static RISKY_VARIABLES: &[&str] = &[
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "IFS",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    "BASH_XTRACEFD",
    "HOME",
    "CDPATH",
    "PYTHONPATH",
    "PERL5LIB",
    "PERL5OPT",
    "NODE_OPTIONS",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "PAGER",
    "EDITOR",
    "VISUAL",
];

/// Where a program named by absolute path is the system's own.
pub static SYSTEM_DIRS: &[&str] = &[
    "/bin/",
    "/usr/bin/",
    "/usr/local/bin/",
    "/sbin/",
    "/usr/sbin/",
];

/// The program called `name`, if Sluice knows it.
pub fn find(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}
