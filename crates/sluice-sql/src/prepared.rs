//! Prepared statements: `EXECUTE name` does whatever `PREPARE name AS …` said.
//!
//! `analyze` alone cannot know what an `EXECUTE` runs, so it calls it
//! `unknown`. A session keeps a [`PreparedTracker`]: [`PreparedTracker::resolve`]
//! rewrites the `EXECUTE`s of an analysis into the facts of the statements
//! they run (including `PREPARE`s earlier in the same string), and
//! [`PreparedTracker::observe`] records the `PREPARE`s, `DEALLOCATE`s and
//! `DISCARD ALL`s of a string once it has been sent. Statements prepared
//! through the extended protocol's `Parse` message are recorded with
//! [`PreparedTracker::record`].

use std::collections::HashMap;

use sluice_core::guardrail::{StatementClass, StatementFacts};

use crate::{Analysis, Detail};

/// One session's prepared statements, by name.
#[derive(Debug, Clone, Default)]
pub struct PreparedTracker {
    prepared: HashMap<String, StatementFacts>,
}

impl PreparedTracker {
    /// A session with nothing prepared.
    pub fn new() -> Self {
        Self::default()
    }

    /// The facts recorded for a name.
    pub fn get(&self, name: &str) -> Option<&StatementFacts> {
        self.prepared.get(name)
    }

    /// How many statements are prepared.
    pub fn len(&self) -> usize {
        self.prepared.len()
    }

    /// Whether nothing is prepared.
    pub fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// Records a statement prepared some other way (a protocol-level `Parse`).
    pub fn record(&mut self, name: &str, facts: StatementFacts) {
        self.prepared.insert(name.to_string(), facts);
    }

    /// Forgets one name (protocol-level `Close`).
    pub fn forget(&mut self, name: &str) {
        self.prepared.remove(name);
    }

    /// Replaces each `EXECUTE` in the analysis by what it runs: its class is
    /// the most severe of the prepared statements it executes and of its own
    /// arguments. A name prepared neither before nor earlier in the same
    /// string stays `unknown`.
    pub fn resolve(&self, mut analysis: Analysis) -> Analysis {
        let mut local = self.clone();
        for (facts, detail) in analysis.statements.iter_mut().zip(&analysis.details) {
            if let Some(base) = &detail.without_execute {
                let runs: Option<Vec<(&String, &StatementFacts)>> = detail
                    .effects
                    .executes
                    .iter()
                    .map(|name| local.prepared.get(name).map(|p| (name, p)))
                    .collect();
                if let Some(runs) = runs {
                    *facts = combine(base, &runs);
                }
            }
            local.apply(facts, detail);
        }
        analysis
    }

    /// Records what a string that was sent prepared or deallocated.
    pub fn observe(&mut self, analysis: &Analysis) {
        for (facts, detail) in analysis.statements.iter().zip(&analysis.details) {
            self.apply(facts, detail);
        }
    }

    fn apply(&mut self, facts: &StatementFacts, detail: &Detail) {
        let effects = &detail.effects;
        if effects.discards_all {
            self.prepared.clear();
        }
        match &effects.deallocates {
            Some(Some(name)) => {
                self.prepared.remove(name);
            }
            Some(None) => self.prepared.clear(),
            None => {}
        }
        if let Some(name) = &effects.prepares {
            self.prepared.insert(name.clone(), facts.clone());
        }
    }
}

/// The facts of a statement whose `EXECUTE`s run the given prepared statements.
fn combine(base: &StatementFacts, runs: &[(&String, &StatementFacts)]) -> StatementFacts {
    let mut out = base.clone();
    let mut plain = effective_base(base);
    let mut run_reasons = Vec::with_capacity(runs.len());
    for (name, p) in runs {
        out.class = out.class.max(p.class);
        plain = match (plain, effective_base(p)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        out.disables_read_only |= p.disables_read_only;
        for t in &p.tables_read {
            push_unique(&mut out.tables_read, t);
        }
        for t in &p.tables_written {
            push_unique(&mut out.tables_written, t);
        }
        for f in &p.functions {
            push_unique(&mut out.functions, f);
        }
        let mut reason = format!("executes prepared statement {name}");
        if p.class > StatementClass::Read {
            reason.push_str(&format!(" ({})", p.class));
        }
        if let Some(first) = p.reasons.first() {
            reason.push_str(&format!(": {first}"));
        }
        run_reasons.push((p.class, reason));
    }
    // The reason behind the final class first, as the walker orders them.
    run_reasons.sort_by_key(|(class, _)| std::cmp::Reverse(*class));
    let (before, after): (Vec<_>, Vec<_>) = run_reasons
        .into_iter()
        .partition(|(class, _)| *class > base.class);
    let own = std::mem::take(&mut out.reasons);
    out.reasons = before
        .into_iter()
        .map(|(_, r)| r)
        .chain(own)
        .chain(after.into_iter().map(|(_, r)| r))
        .collect();
    out.base_class = if out.disables_read_only {
        plain.filter(|c| *c < StatementClass::Admin)
    } else {
        None
    };
    out
}

/// The class a statement would have without its read-only toggle, if it has one.
fn effective_base(f: &StatementFacts) -> Option<StatementClass> {
    if f.disables_read_only {
        f.base_class
    } else {
        Some(f.class)
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_string());
    }
}
