//! Shell command lines as Sluice judges them: the line is parsed with a
//! bash parser (`brush-parser`), every simple command in it is found —
//! in pipelines, lists, subshells, groups, loops, conditionals, command
//! and process substitutions — and each is classified ([`programs`]) into
//! the same facts the gate judges SQL statements by: a class, the command
//! as written (guardrails match it with `commands` globs), the program
//! (as a function name), and the files its redirections read and write.
//!
//! What cannot be known before the line runs fails closed: a program whose
//! name is computed (`$CMD`, `"$(echo rm)"`), a function definition, an
//! assignment to a variable that changes what runs (`PATH=…`, `LD_PRELOAD`),
//! a text that does not parse, a nesting deeper than [`MAX_DEPTH`] or
//! more brackets open at once than [`MAX_BRACKETS`], are `unknown`.
//!
//! The parser is bash's grammar; the backend's shell might be another.
//! The SSH adapter therefore runs every command line through the shell
//! this analysis assumes ([`pinned`]), so the server reads the line as it
//! was judged.

mod programs;
mod words;

use brush_parser::ast;
use brush_parser::{Parser, ParserOptions};
use sluice_core::guardrail::{StatementClass as C, StatementFacts};

pub use programs::{PROGRAMS, Program, find as program};

/// Nested substitutions deeper than this are not analysed: `unknown`.
pub const MAX_DEPTH: usize = 8;
/// Brackets (`(`, `{`, `[`) open at once beyond this are not parsed at
/// all: `unknown`. The parser backtracks on `(` (a subshell, or `((`
/// arithmetic?), so its time grows about threefold per two more: 22 open
/// took 5 s, 28 minutes (found by fuzzing, `fuzz/seeds/shell_analyse/
/// nested-*`). 12 parse in well under a millisecond.
pub const MAX_BRACKETS: usize = 12;
/// Simple commands in one line beyond this are not analysed: `unknown`.
pub const MAX_COMMANDS: usize = 256;
/// The longest command text kept in a fact (the record keeps the line).
const MAX_COMMAND_TEXT: usize = 512;

/// Every simple command of `line`, each with its facts, in order. A line
/// with no command at all (blank, comments) gives none.
pub fn analyze(line: &str) -> Vec<StatementFacts> {
    // The parser is a dependency, called for the line and for words within
    // it: any panic in it (fuzzing found two: a redirection fd and a `~N`
    // past their integer types) is a line it cannot read.
    let walked = std::panic::catch_unwind(|| {
        let mut w = Walker {
            options: ParserOptions::default(),
            out: Vec::new(),
        };
        w.line(line, 0);
        w
    });
    let Ok(mut w) = walked else {
        return vec![StatementFacts::unknown(
            one_line(line),
            "the command line could not be parsed (the parser failed)",
        )];
    };
    if w.out.len() > MAX_COMMANDS {
        w.out.truncate(MAX_COMMANDS);
        w.out.push(StatementFacts::unknown(
            "…",
            format!("more than {MAX_COMMANDS} commands in one line"),
        ));
    }
    w.out
}

/// `line` as the command the backend's login shell is given, so that the
/// shell that runs it is `shell` (bash, as the analysis assumes) with no
/// startup files (whose aliases and functions could change what a name
/// runs), whatever the account's login shell is. Every POSIX shell reads a
/// single-quoted word the same way.
pub fn pinned(shell: &str, line: &str) -> String {
    format!(
        "exec {} --noprofile --norc -c {}",
        quote(shell),
        quote(line)
    )
}

/// The most brackets (`(`, `{`, `[`) open at once in `text`, outside
/// single quotes and backslash escapes. Everything else counts, double
/// quotes and comments included (they may hold `$(`): an overestimate only
/// refuses more.
fn open_brackets(text: &str) -> usize {
    let (mut depth, mut most) = (0usize, 0usize);
    let mut chars = text.chars();
    let mut single = false;
    while let Some(c) = chars.next() {
        match (single, c) {
            (true, '\'') => single = false,
            (true, _) => {}
            (false, '\'') => single = true,
            (false, '\\') => {
                chars.next();
            }
            (false, '(' | '{' | '[') => {
                depth += 1;
                most = most.max(depth);
            }
            (false, ')' | '}' | ']') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    most
}

/// Whether a here-document operator (`<<`, `<<-`; not `<<<`) anywhere in
/// `text` has a delimiter that is empty after quote removal (`<<""`,
/// `<<''`, or nothing but whitespace before the line's end). The parser loops, allocating without end, on one at the end
/// of a line (found by fuzzing: `fuzz/seeds/shell_analyse/empty-here-doc`).
/// Quoting context is ignored: an overestimate only refuses more.
fn empty_here_doc_delimiter(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = b[i..].windows(2).position(|w| w == b"<<") {
        let mut j = i + at + 2;
        i = j;
        if b.get(j) == Some(&b'<') {
            i = j + 1;
            continue;
        }
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        while b.get(j).is_some_and(|c| blank(*c)) {
            j += 1;
        }
        // The delimiter word: up to a blank or an operator character.
        let (mut content, mut quote) = (0usize, None::<u8>);
        while let Some(&c) = b.get(j) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => content += 1,
                (None, b'\'' | b'"') => quote = Some(c),
                (None, b'$') if matches!(b.get(j + 1), Some(b'\'' | b'"')) => {}
                (None, b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>') => break,
                (None, c) if blank(c) => break,
                (None, _) => content += 1,
            }
            j += 1;
        }
        if content == 0 {
            return true;
        }
    }
    false
}

/// A byte that may end a word for the parser: bash's blanks and newline,
/// and the other ASCII whitespace (form feed, carriage return, vertical
/// tab), which brush-parser also splits on (fuzzing found `x<<\x0c` at a
/// line's end allocating without end, as `x<<""` does).
fn blank(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

/// `s` as one single-quoted shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

struct Walker {
    options: ParserOptions,
    out: Vec<StatementFacts>,
}

impl Walker {
    fn full(&self) -> bool {
        self.out.len() > MAX_COMMANDS
    }

    /// A whole command line (or a substitution's text).
    fn line(&mut self, text: &str, depth: usize) {
        if depth > MAX_DEPTH {
            self.out.push(StatementFacts::unknown(
                one_line(text),
                format!("command substitutions nested deeper than {MAX_DEPTH}"),
            ));
            return;
        }
        if open_brackets(text) > MAX_BRACKETS {
            self.out.push(StatementFacts::unknown(
                one_line(text),
                format!(
                    "more than {MAX_BRACKETS} brackets open at once: too deep to judge in bounded time"
                ),
            ));
            return;
        }
        if empty_here_doc_delimiter(text) {
            self.out.push(StatementFacts::unknown(
                one_line(text),
                "a here-document with an empty delimiter",
            ));
            return;
        }
        let mut parser = Parser::new(text.as_bytes(), &self.options);
        match parser.parse_program() {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.list(list, depth);
                }
            }
            Err(e) => self.out.push(StatementFacts::unknown(
                one_line(text),
                format!("the command line could not be parsed: {e}"),
            )),
        }
    }

    fn list(&mut self, list: &ast::CompoundList, depth: usize) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first, depth);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p, depth),
                }
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline, depth: usize) {
        for c in &p.seq {
            if self.full() {
                return;
            }
            self.command(c, depth);
        }
    }

    fn command(&mut self, c: &ast::Command, depth: usize) {
        match c {
            ast::Command::Simple(s) => self.simple(s, depth),
            ast::Command::Compound(cc, redirects) => {
                self.compound(cc, depth);
                if let Some(r) = redirects {
                    let mut f = StatementFacts::new(C::Read, one_line(&cc.to_string()));
                    for io in &r.0 {
                        self.redirect(io, &mut f, depth);
                    }
                    if f.class != C::Read || !f.tables_written.is_empty() {
                        self.out.push(f);
                    }
                }
            }
            ast::Command::Function(f) => self.out.push(StatementFacts::unknown(
                one_line(&f.to_string()),
                "defines a shell function, which can stand in for any program",
            )),
            ast::Command::ExtendedTest(t, _) => {
                let text = t.to_string();
                let mut f = StatementFacts::new(C::Read, one_line(&text));
                if text.contains("$(") || text.contains('`') {
                    f = StatementFacts::unknown(one_line(&text), "a test that runs a command");
                }
                self.out.push(f);
            }
        }
    }

    fn compound(&mut self, cc: &ast::CompoundCommand, depth: usize) {
        use ast::CompoundCommand as K;
        match cc {
            K::BraceGroup(g) => self.list(&g.list, depth),
            K::Subshell(s) => self.list(&s.list, depth),
            K::IfClause(i) => {
                self.list(&i.condition, depth);
                self.list(&i.then, depth);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c, depth);
                    }
                    self.list(&e.body, depth);
                }
            }
            K::WhileClause(w) | K::UntilClause(w) => {
                self.list(&w.0, depth);
                self.list(&w.1.list, depth);
            }
            K::ForClause(f) => {
                for v in f.values.iter().flatten() {
                    let word = words::analyse(&v.value, &self.options);
                    self.word_effects(&word, depth);
                }
                self.list(&f.body.list, depth);
            }
            K::CaseClause(c) => {
                let word = words::analyse(&c.value.value, &self.options);
                self.word_effects(&word, depth);
                for item in &c.cases {
                    if let Some(l) = &item.cmd {
                        self.list(l, depth);
                    }
                }
            }
            K::Arithmetic(a) => {
                let text = a.to_string();
                self.out.push(if text.contains("$(") || text.contains('`') {
                    StatementFacts::unknown(
                        one_line(&text),
                        "an arithmetic expression that runs a command",
                    )
                } else {
                    StatementFacts::new(C::Session, one_line(&text))
                });
            }
            K::ArithmeticForClause(f) => {
                let text = format!("{:?}{:?}{:?}", f.initializer, f.condition, f.updater);
                if text.contains("$(") || text.contains('`') {
                    self.out.push(StatementFacts::unknown(
                        "for ((…))",
                        "an arithmetic expression that runs a command",
                    ));
                }
                self.list(&f.body.list, depth);
            }
            K::Coprocess(_) => self.out.push(StatementFacts::unknown(
                "coproc",
                "runs a command in the background, out of the line's order",
            )),
        }
    }

    /// The commands a word runs to be computed, and why it cannot be
    /// judged, if so.
    fn word_effects(&mut self, w: &words::Word, depth: usize) {
        for s in &w.substitutions {
            self.line(s, depth + 1);
        }
        if let Some(why) = &w.opaque {
            self.out
                .push(StatementFacts::unknown(one_line(&w.source), why.clone()));
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, depth: usize) {
        let mut facts = StatementFacts::new(C::Read, one_line(&s.to_string()));
        let mut argv: Vec<words::Word> = Vec::new();
        for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
            self.item(item, &mut facts, &mut argv, depth, true);
        }
        // Words before the name are not arguments: only assignments and
        // redirections come first.
        argv.clear();
        if let Some(name) = &s.word_or_name {
            argv.push(words::analyse(&name.value, &self.options));
        }
        for item in s.suffix.iter().flat_map(|x| x.0.iter()) {
            self.item(item, &mut facts, &mut argv, depth, false);
        }
        for w in &argv {
            self.word_effects(w, depth);
        }
        classify(&argv, &mut facts);
        self.out.push(facts);
    }

    fn item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        facts: &mut StatementFacts,
        argv: &mut Vec<words::Word>,
        depth: usize,
        prefix: bool,
    ) {
        use ast::CommandPrefixOrSuffixItem as I;
        match item {
            I::Word(w) => argv.push(words::analyse(&w.value, &self.options)),
            I::IoRedirect(io) => self.redirect(io, facts, depth),
            I::AssignmentWord(a, w) => {
                let name = match &a.name {
                    ast::AssignmentName::VariableName(n) => n.clone(),
                    ast::AssignmentName::ArrayElementName(n, _) => n.clone(),
                };
                let value = words::analyse(&w.value, &self.options);
                self.word_effects(&value, depth);
                if programs::RISKY_VARIABLES.contains(&name.as_str()) {
                    facts.class = C::Unknown;
                    facts
                        .reasons
                        .push(format!("sets {name}, which changes what the command runs"));
                } else if prefix {
                    facts.class = facts.class.max(C::Session);
                }
            }
            I::ProcessSubstitution(_, sub) => self.list(&sub.list, depth + 1),
        }
    }

    fn redirect(&mut self, io: &ast::IoRedirect, facts: &mut StatementFacts, depth: usize) {
        use ast::{IoFileRedirectKind as K, IoFileRedirectTarget as T, IoRedirect as R};
        let (writes, target) = match io {
            R::File(_, kind, target) => {
                let writes = match kind {
                    K::Read => false,
                    K::Write | K::Append | K::Clobber | K::ReadAndWrite => true,
                    K::DuplicateInput | K::DuplicateOutput => {
                        if let T::Duplicate(w) | T::Filename(w) = target {
                            let word = words::analyse(&w.value, &self.options);
                            self.word_effects(&word, depth);
                            // `>&file` writes a file; `>&2`, `>&-` do not.
                            let dup = word
                                .literal
                                .as_deref()
                                .is_some_and(|l| l == "-" || l.parse::<u32>().is_ok());
                            if !dup {
                                written(facts, word.literal.as_deref(), &w.value);
                            }
                        }
                        return;
                    }
                };
                (writes, target)
            }
            R::OutputAndError(w, _) => {
                let word = words::analyse(&w.value, &self.options);
                self.word_effects(&word, depth);
                written(facts, word.literal.as_deref(), &w.value);
                return;
            }
            R::HereString(_, w) => {
                let word = words::analyse(&w.value, &self.options);
                self.word_effects(&word, depth);
                return;
            }
            R::HereDocument(_, doc) => {
                if doc.requires_expansion {
                    let body = &doc.doc.value;
                    if body.contains("$(") || body.contains('`') {
                        facts.class = C::Unknown;
                        facts
                            .reasons
                            .push("a here-document that runs a command".into());
                    }
                }
                return;
            }
        };
        match target {
            T::Filename(w) => {
                let word = words::analyse(&w.value, &self.options);
                self.word_effects(&word, depth);
                if writes {
                    written(facts, word.literal.as_deref(), &w.value);
                } else {
                    facts
                        .tables_read
                        .push(word.literal.unwrap_or_else(|| w.value.clone()));
                }
            }
            T::Fd(_) => {}
            T::Duplicate(_) => {}
            T::ProcessSubstitution(_, sub) => self.list(&sub.list, depth + 1),
        }
    }
}

/// A redirection that writes `path` (`/dev/null` and the standard streams
/// write nothing that stays).
fn written(facts: &mut StatementFacts, literal: Option<&str>, source: &str) {
    const HARMLESS: [&str; 3] = ["/dev/null", "/dev/stdout", "/dev/stderr"];
    if literal.is_some_and(|l| HARMLESS.contains(&l)) {
        return;
    }
    facts.class = facts.class.max(C::Write);
    facts
        .tables_written
        .push(literal.map_or_else(|| source.to_string(), str::to_string));
    facts
        .reasons
        .push(format!("writes {}", literal.unwrap_or(source)));
}

/// The class of the simple command `argv` (its program, its arguments),
/// raised into `facts` (which its redirections and assignments set first).
fn classify(argv: &[words::Word], facts: &mut StatementFacts) {
    let Some(first) = argv.first() else {
        // Only assignments or redirections.
        return;
    };
    for w in argv {
        if let Some(why) = &w.opaque {
            facts.class = C::Unknown;
            facts.reasons.push(why.clone());
        }
    }
    let Some(name) = first.literal.as_deref() else {
        facts.class = C::Unknown;
        facts.reasons.push(format!(
            "the program {:?} is computed when the line runs",
            first.source
        ));
        return;
    };
    let (class, why) = judge(name, &argv[1..], 0, &mut facts.functions);
    facts.class = facts.class.max(class);
    facts.reasons.push(why);
}

/// The program a name runs: its own name for a system path, the name
/// itself otherwise (a relative or other path is not a known program).
fn program_name(name: &str) -> &str {
    for dir in programs::SYSTEM_DIRS {
        if let Some(rest) = name.strip_prefix(dir)
            && !rest.contains('/')
        {
            return rest;
        }
    }
    name
}

/// The class of running `name` with `args`, and why; `nested` counts
/// wrappers (`sudo nice env …`). Every program the command runs (the
/// wrapper, then what it wraps) is added to `runs`.
fn judge(name: &str, args: &[words::Word], nested: usize, runs: &mut Vec<String>) -> (C, String) {
    let program = program_name(name);
    runs.push(program.to_string());
    if program.contains('/') {
        return (
            C::Unknown,
            format!("{name} is not a program Sluice knows (a path outside the system's)"),
        );
    }
    if programs::SESSION_BUILTINS.contains(&program) {
        return (C::Session, format!("{program} changes only this shell"));
    }
    let Some(p) = programs::find(program) else {
        return (
            C::Unknown,
            format!("{program} is not a program Sluice knows"),
        );
    };
    if p.runs == programs::Runs::Wrapped {
        return wrapped(p, args, nested, runs);
    }
    let mut class = p.class;
    let mut why = format!("{program} is {}", p.class);
    let dynamic = args.iter().any(|a| a.literal.is_none());
    let args_matter = !p.subcommands.is_empty() || !p.raising.is_empty() || special(program);
    if dynamic && args_matter {
        return (
            C::Unknown,
            format!(
                "{program} is given an argument computed when the line runs, which could change what it does"
            ),
        );
    }
    let literal: Vec<&str> = args.iter().filter_map(|a| a.literal.as_deref()).collect();
    if let Some(sub) = literal.iter().find(|a| !a.starts_with('-')) {
        for (names, c) in p.subcommands {
            if names.contains(sub) {
                class = *c;
                why = format!("{program} {sub} is {c}");
            }
        }
    }
    for arg in &literal {
        for (pattern, c) in p.raising {
            if raises(arg, pattern) && *c > class {
                class = *c;
                why = format!("{program} {arg} is {c}");
            }
        }
    }
    let operands = literal.iter().filter(|a| !a.starts_with('-')).count();
    match program {
        "uniq" if operands >= 2 => (C::Write, "uniq IN OUT writes OUT".into()),
        "hostname" if operands >= 1 => (C::Admin, "hostname NAME sets the host name".into()),
        _ => (class, why),
    }
}

/// Programs whose operands change what they do (handled in [`judge`]).
fn special(program: &str) -> bool {
    matches!(program, "uniq" | "hostname")
}

/// Whether `arg` is the raising argument `pattern`: the same word, the
/// option with a value attached (`--output=x`, `-ofile`), or a short
/// option in a cluster (`-uo`).
fn raises(arg: &str, pattern: &str) -> bool {
    if arg == pattern {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix('=') {
        return arg.starts_with(pattern) || arg == prefix;
    }
    if arg.starts_with(&format!("{pattern}=")) {
        return true;
    }
    let short = pattern.len() == 2 && pattern.starts_with('-') && !pattern.starts_with("--");
    short && arg.starts_with('-') && !arg.starts_with("--") && arg[1..].contains(&pattern[1..])
}

/// A wrapper (`sudo`, `env`, `timeout`…) and the command it runs: the
/// more severe of the wrapper's class and the command's.
fn wrapped(
    p: &programs::Program,
    args: &[words::Word],
    nested: usize,
    runs: &mut Vec<String>,
) -> (C, String) {
    if nested > 4 {
        return (C::Unknown, "wrappers nested too deep".into());
    }
    let Some(at) = wrapped_start(p.name, args) else {
        return (
            C::Unknown,
            format!("{} is given options Sluice cannot follow", p.name),
        );
    };
    let Some(inner) = args.get(at) else {
        // `env` alone prints, `sudo -l` lists; `sudo -s` without a command
        // is a shell, refused by wrapped_start.
        return (p.class, format!("{} alone is {}", p.name, p.class));
    };
    let Some(name) = inner.literal.as_deref() else {
        return (
            C::Unknown,
            format!("{} runs a program computed when the line runs", p.name),
        );
    };
    let (class, why) = judge(name, &args[at + 1..], nested + 1, runs);
    if p.name == "xargs" && class < C::Unknown {
        // The arguments come from input: whatever raises this program's
        // class might be among them.
        let args_matter = programs::find(program_name(name))
            .is_some_and(|q| !q.subcommands.is_empty() || !q.raising.is_empty());
        if args_matter {
            return (
                C::Unknown,
                format!("xargs gives {name} arguments from its input"),
            );
        }
    }
    (class.max(p.class), format!("{} runs {why}", p.name))
}

/// Where the wrapped command starts in a wrapper's arguments, or `None`
/// when the wrapper is given an option that changes what runs (a shell,
/// an argument Sluice cannot read).
fn wrapped_start(wrapper: &str, args: &[words::Word]) -> Option<usize> {
    // Options that take a value, per wrapper.
    let with_value: &[&str] = match wrapper {
        "sudo" => &[
            "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group",
        ],
        "doas" => &["-u", "-C"],
        "nice" => &["-n", "--adjustment"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "env" => &["-u", "--unset", "-C", "--chdir"],
        "xargs" => &[
            "-n",
            "-L",
            "-s",
            "-P",
            "-d",
            "-E",
            "-a",
            "-I",
            "--max-args",
            "--max-procs",
        ],
        "stdbuf" => &["-i", "-o", "-e"],
        _ => &[],
    };
    let shells: &[&str] = match wrapper {
        "sudo" => &["-s", "-i", "--shell", "--login", "-e", "--edit"],
        "doas" => &["-s"],
        "env" => &["-S", "--split-string"],
        _ => &[],
    };
    let mut i = 0;
    let mut needs_operand = wrapper == "timeout";
    while let Some(w) = args.get(i) {
        let a = w.literal.as_deref()?;
        if a == "--" {
            return Some(i + 1);
        }
        if shells.contains(&a) {
            return None;
        }
        if wrapper == "env" && a.contains('=') && !a.starts_with('-') {
            let name = a.split('=').next().unwrap_or_default();
            if programs::RISKY_VARIABLES.contains(&name) {
                return None;
            }
            i += 1;
            continue;
        }
        if a.starts_with('-') && a.len() > 1 {
            i += if with_value.contains(&a) { 2 } else { 1 };
            continue;
        }
        if needs_operand {
            // timeout's DURATION.
            needs_operand = false;
            i += 1;
            continue;
        }
        return Some(i);
    }
    Some(i)
}

/// `text` on one line, cut to [`MAX_COMMAND_TEXT`] bytes.
fn one_line(text: &str) -> String {
    let mut s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > MAX_COMMAND_TEXT {
        let mut end = MAX_COMMAND_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests;
