use super::*;

fn classes(line: &str) -> Vec<(String, C)> {
    analyze(line)
        .into_iter()
        .map(|f| (f.functions.first().cloned().unwrap_or_default(), f.class))
        .collect()
}

fn worst(line: &str) -> C {
    analyze(line)
        .iter()
        .map(|f| f.class)
        .max()
        .unwrap_or(C::Read)
}

#[test]
fn every_simple_command_is_found() {
    let found = classes("ls -la | grep x && (cat a; echo $(id -u)) || { df; }");
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["ls", "grep", "cat", "id", "echo", "df"]);
    assert!(found.iter().all(|(_, c)| *c == C::Read), "{found:?}");
}

#[test]
fn reads_writes_and_admin_acts_are_told_apart() {
    assert_eq!(worst("cat /etc/hostname"), C::Read);
    assert_eq!(worst("rm -rf /tmp/x"), C::Write);
    assert_eq!(worst("ls > listing.txt"), C::Write);
    assert_eq!(worst("ls > /dev/null 2>&1"), C::Read);
    assert_eq!(worst("systemctl status nginx"), C::Read);
    assert_eq!(worst("systemctl restart nginx"), C::Admin);
    assert_eq!(worst("sudo ls"), C::Admin);
    assert_eq!(worst("git status"), C::Read);
    assert_eq!(worst("git push"), C::Write);
    assert_eq!(worst("sort -o out in"), C::Write);
    assert_eq!(worst("sort -uo out in"), C::Write);
    assert_eq!(worst("uniq a b"), C::Write);
    assert_eq!(worst("hostname evil"), C::Admin);
    assert_eq!(worst("/usr/bin/ls"), C::Read);
}

#[test]
fn what_cannot_be_known_before_it_runs_is_unknown() {
    for line in [
        "$CMD -rf /",
        "\"$(echo rm)\" -rf /",
        "./rm -rf /",
        "python3 -c 'import os'",
        "sh -c 'rm -rf /'",
        "find . -exec rm {} \\;",
        "find . $X",
        "PATH=/tmp ls",
        "LD_PRELOAD=/tmp/x.so ls",
        "ls() { rm -rf /; }; ls",
        "env PATH=/tmp ls",
        "sudo -s",
        "echo $(( $(id -u) + 1 ))",
        "echo ${x:-$(rm -rf ~)}",
        "awk 'BEGIN{system(\"rm x\")}'",
        "xargs find",
        "cat <<EOF\n$(rm -rf ~)\nEOF",
        "if (",
        "find . -ex?c rm {} +",
        "find . -exe{c,} rm",
        "l{s,} -la",
        "l? -la",
    ] {
        assert_eq!(worst(line), C::Unknown, "{line}");
    }
}

#[test]
fn commands_inside_substitutions_are_judged_themselves() {
    assert_eq!(worst("echo $(rm -rf /tmp/x)"), C::Write);
    assert_eq!(worst("cat <(sudo cat /etc/shadow)"), C::Admin);
    assert_eq!(worst("echo `touch x`"), C::Write);
    assert_eq!(worst("ls \"$(ls)\""), C::Read);
}

#[test]
fn wrappers_are_judged_with_what_they_run() {
    assert_eq!(worst("nice -n 5 ls"), C::Read);
    assert_eq!(worst("timeout 5 rm x"), C::Write);
    assert_eq!(worst("env FOO=1 ls"), C::Read);
    assert_eq!(worst("sudo -u www-data systemctl restart nginx"), C::Admin);
    assert_eq!(worst("xargs rm"), C::Write);
    assert_eq!(worst("nohup $CMD"), C::Unknown);
}

#[test]
fn redirect_targets_are_the_paths_written_and_read() {
    let f = analyze("sort < in.txt > out.txt");
    assert_eq!(f[0].tables_read, ["in.txt"]);
    assert_eq!(f[0].tables_written, ["out.txt"]);
    assert_eq!(f[0].class, C::Write);
}

#[test]
fn deep_nesting_and_many_commands_fail_closed() {
    let mut line = "ls".to_string();
    for _ in 0..(MAX_DEPTH + 2) {
        line = format!("echo $({line})");
    }
    assert_eq!(worst(&line), C::Unknown);
    let many = vec!["ls"; MAX_COMMANDS + 10].join(";");
    let found = analyze(&many);
    assert_eq!(found.len(), MAX_COMMANDS + 1);
    assert_eq!(found.last().unwrap().class, C::Unknown);
}

#[test]
fn the_pinned_line_is_one_quoted_word_for_any_shell() {
    let p = pinned("/bin/bash", "echo 'it''s' \"$HOME\"");
    assert_eq!(
        p,
        r#"exec '/bin/bash' --noprofile --norc -c 'echo '\''it'\'''\''s'\'' "$HOME"'"#
    );
}

/// Found by fuzzing (`fuzz/seeds/shell_analyse/nested-*`): the parser's
/// time grows exponentially with open brackets; past MAX_BRACKETS the
/// line is refused before it is parsed. Brackets in single quotes do not
/// count, and everyday lines are unaffected.
#[test]
fn many_open_brackets_are_refused_before_parsing() {
    let deep = "(".repeat(40);
    assert_eq!(worst(&deep), C::Unknown);
    let found = "((((((((((((((((((\0\0\0\0\0\0\0\0\0((((((((((";
    assert_eq!(worst(found), C::Unknown);
    assert!(analyze(&deep)[0].reasons.join(" ").contains("brackets"));
    let braces = format!("{}echo{}", "{ ".repeat(20), "; }".repeat(20));
    assert_eq!(worst(&braces), C::Unknown);
    // Quoted brackets are data.
    let quoted = format!("echo '{}'", "(".repeat(40));
    assert_eq!(worst(&quoted), C::Read);
    assert_eq!(
        worst("psql -c \"SELECT count(*) FROM (SELECT (1 + 2) * (3)) s\""),
        worst("psql -c \"SELECT 1\"")
    );
}

/// Found by fuzzing (`fuzz/seeds/shell_analyse/fd-overflow`,
/// `tilde-overflow`): the parser panics on a redirection fd past u32 and
/// on `~N` past its integer; those are lines it cannot read.
#[test]
fn a_parser_panic_is_unknown() {
    assert_eq!(worst("8000000000000000>out"), C::Unknown);
    assert_eq!(worst("ls ~188888888888888888888888888888"), C::Unknown);
    assert_eq!(worst("echo hi 2>err"), C::Write);
}

/// Found by fuzzing (`fuzz/seeds/shell_analyse/empty-here-doc`): the
/// parser allocates without end on a here-document whose delimiter is
/// empty; such lines are refused before parsing. Ordinary here-documents,
/// here-strings and shifts are unaffected.
#[test]
fn an_empty_here_doc_delimiter_is_refused_before_parsing() {
    for line in [
        "x<<\"\" ",
        "x<<'' ",
        "x<<-\"\" ",
        "cat <<$'' ",
        "cat << \"\"\"\" ",
        // Other whitespace the parser splits on (fuzzing, release campaign).
        "8(3<<\r ",
        "x<<\x0c\x0c<&$(",
        "#>|<<\x0c\x0c<#",
        "y<<\x0b",
    ] {
        assert_eq!(worst(line), C::Unknown, "{line:?}");
    }
    assert_eq!(worst("cat <<EOF\nhi\nEOF"), C::Read);
    assert_eq!(worst("grep x <<< \"$v\""), C::Read);
    assert_eq!(worst("echo $((1 << 2))"), C::Read);
}
