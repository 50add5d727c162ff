//! Whether an analysis read the value of a literal.
//!
//! The shape cache ([`crate::shape`]) shares one analysis among statements
//! that differ only in literal values. That is sound only for analyses that
//! never looked at a literal's value: `SET client_encoding = 'LATIN1'`,
//! `set_config('role', …)` and `ORDER BY 2` are judged by their literals.
//! Every read of a constant's value goes through [`mark`] (the helpers in
//! [`crate::names`] and the positional references of the masking
//! analysis), and [`track`] reports whether any happened, so a new rule
//! that reads a literal through those helpers is never cached by mistake.
//!
//! A thread-local flag rather than a parameter threaded through every
//! walker: an analysis runs synchronously on one thread, start to end.

use std::cell::Cell;

thread_local! {
    static READ: Cell<bool> = const { Cell::new(false) };
}

/// Notes that the analysis now running read a literal's value; for
/// analyses outside this crate that read the parse tree's constants too.
pub fn mark() {
    READ.with(|r| r.set(true));
}

/// Runs `f` and says whether it read any literal's value. Nests: an outer
/// `track` also sees the reads of an inner one.
pub fn track<T>(f: impl FnOnce() -> T) -> (T, bool) {
    let outer = READ.with(|r| r.replace(false));
    let out = f();
    let read = READ.with(|r| r.replace(outer || r.get()));
    (out, read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_seen_by_the_tracking_call_and_its_callers() {
        let ((_, inner), outer) = track(|| track(mark));
        assert!(inner && outer);
        let ((), none) = track(|| {});
        assert!(!none);
    }
}
