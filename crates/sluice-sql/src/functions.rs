//! Functions and procedures declared by configuration.
//!
//! Built-in functions are classed from the backend's catalog and a
//! reviewed table ([`crate::catalog`]); a function of the database's own
//! can do anything, so it is `unknown` unless declared here.
//!
//! Names are compared as PostgreSQL folds them (lowercase unless quoted);
//! `pg_catalog.f` is the same as `f`.

use std::collections::HashMap;

use sluice_core::guardrail::StatementClass;

/// Extra functions and procedures declared by configuration, with the class a
/// call to each has. Declarations win over the built-in catalog.
///
/// A declared name matches calls written the same way: `"app.refresh"`
/// matches `app.refresh(...)`, `"refresh"` matches an unqualified
/// `refresh(...)` (whose schema depends on `search_path`), and neither matches
/// the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionPolicy {
    declared: HashMap<String, StatementClass>,
}

impl FunctionPolicy {
    /// A policy that declares nothing: only the built-in catalog applies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a function's class; a leading `pg_catalog.` is ignored.
    pub fn declare(&mut self, name: &str, class: StatementClass) -> &mut Self {
        self.declared.insert(normalize(name), class);
        self
    }

    /// Builder form of [`FunctionPolicy::declare`].
    pub fn with(mut self, name: &str, class: StatementClass) -> Self {
        self.declare(name, class);
        self
    }

    /// The class of a call to `name` (already normalized as in
    /// [`crate::names::qualified`]): declared, else unknown.
    pub fn class_of(&self, name: &str) -> StatementClass {
        self.declared
            .get(name)
            .copied()
            .unwrap_or(StatementClass::Unknown)
    }

    /// Whether configuration declared this name.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains_key(name)
    }
}

impl<S: AsRef<str>> FromIterator<(S, StatementClass)> for FunctionPolicy {
    fn from_iter<I: IntoIterator<Item = (S, StatementClass)>>(iter: I) -> Self {
        let mut policy = Self::new();
        for (name, class) in iter {
            policy.declare(name.as_ref(), class);
        }
        policy
    }
}

fn normalize(name: &str) -> String {
    let name = name.trim();
    name.strip_prefix("pg_catalog.").unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass as C;

    #[test]
    fn policy_declares_and_qualification_matters() {
        let policy: FunctionPolicy = [
            ("app.refresh", C::Write),
            ("pg_catalog.pg_sleep", C::Admin),
            ("safe", C::Read),
        ]
        .into_iter()
        .collect();
        assert_eq!(policy.class_of("app.refresh"), C::Write);
        assert_eq!(policy.class_of("refresh"), C::Unknown);
        assert_eq!(policy.class_of("pg_sleep"), C::Admin);
        assert_eq!(policy.class_of("safe"), C::Read);
        assert_eq!(policy.class_of("other.safe"), C::Unknown);
        assert!(!policy.is_declared("count"));
    }
}
