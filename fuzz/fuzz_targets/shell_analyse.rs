//! The SSH command-line analyser (bash syntax) on arbitrary text.
//! Oracles: no panic of ours (the parser's own are caught and make the
//! line unknown); deterministic; pinning a line keeps
//! it one single-quoted word whatever it holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts on any panic; panics inside the bash
/// parser are caught by `analyze` (the line is `unknown`), so only those
/// pass. A panic in our own code still aborts, as a finding.
fn tolerate_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().contains("brush-parser"))
            {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_parser_panics();
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let a = sluice_shell::analyze(line);
    assert_eq!(a, sluice_shell::analyze(line));
    let quoted = sluice_shell::quote(line);
    assert!(
        quoted.starts_with('\'') && quoted.ends_with('\''),
        "{quoted}"
    );
    // Inside, every quote is closed and reopened: '\''.
    let inner = &quoted[1..quoted.len() - 1];
    assert_eq!(inner.replace("'\\''", "").contains('\''), false, "{quoted}");
});
