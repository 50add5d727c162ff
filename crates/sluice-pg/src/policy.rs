//! The decision for one request: analysis (`sluice-sql`, the real parser)
//! and the connection's guardrails under the grant's profile. A request is
//! forwarded only with a [`Permit`], which exists only once its audit record
//! is durable.

use std::sync::Arc;

use sluice_core::Profile;
use sluice_core::audit::detail::StatementRecord;
use sluice_core::guardrail::{Action, GuardrailRule, StatementFacts, Verdict, evaluate_all};
use sluice_gate::{Decision as GateDecision, Denial, DenialKind, Gate, Refusal, Subject};
pub use sluice_gate::{Permit, Run};

use sluice_sql::cache::ShapeCache;
use sluice_sql::shape::shape_key;

use crate::errors::ClientError;
use crate::mask::{ConnMasking, Opener, StatementMask, copy_table};

/// Statement text kept in an audit event, after comments are removed and
/// long literals elided; what is still longer is cut (a 100 MB literal
/// does not belong in the log) and the event carries the full text's hash.
const MAX_AUDITED_TEXT: usize = 8 * 1024;

/// One analysed SQL string (a simple Query, or a Parse).
#[derive(Debug)]
pub struct Checked {
    pub sql: String,
    pub statements: Vec<StatementFacts>,
    pub fingerprint: String,
    /// The whole analysis of a simple Query, for its PREPARE/DEALLOCATE effects.
    analysis: Option<sluice_sql::Analysis>,
    /// The masking analysis, in a masked session.
    pub mask: Option<Arc<StatementMask>>,
}

impl Checked {
    /// The whole analysis of a simple Query.
    pub fn analysis(&self) -> Option<&sluice_sql::Analysis> {
        self.analysis.as_ref()
    }

    /// A checked statement for tests: analysed, unmasked.
    #[cfg(test)]
    pub fn for_test(sql: &str) -> Arc<Checked> {
        let analysis = sluice_sql::analyze(sql);
        Arc::new(Checked {
            sql: sql.to_string(),
            statements: analysis.statements.clone(),
            fingerprint: analysis.fingerprint.clone(),
            analysis: Some(analysis),
            mask: None,
        })
    }

    /// Whether the analysis found no statement at all (blanks, comments and
    /// semicolons only): the backend is then sent an empty string instead.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// A use of a masked column that masking cannot protect.
    fn mask_violation(&self) -> Option<&sluice_sql::MaskViolation> {
        self.mask.as_ref()?.violation.as_ref()
    }
}

/// The grant's profile and the connection's rules.
pub struct Policy {
    profile: Profile,
    rules: Arc<[GuardrailRule]>,
    /// The connection's masking and the session's catalog opener, when
    /// this session is masked.
    masking: Option<(Arc<ConnMasking>, Opener)>,
    /// Analyses shared by shape across the gateway's sessions.
    shapes: Arc<Shapes>,
    /// The profile's statement timeout: a client may lower it, not raise it.
    timeout_cap: Option<std::time::Duration>,
    /// The backend's catalog names are resolved against; none: every
    /// statement is refused.
    catalog: Option<crate::backend_catalog::Current>,
}

/// Statement analyses by shape key (`sluice_sql::shape`): a statement that
/// differs from one analysed before only in literal values skips the
/// parser, when that analysis read no literal.
pub type Shapes = ShapeCache<sluice_sql::Analysis>;

/// A statement's analysis and, in a masked session, its masking analysis.
pub type Analysed = (sluice_sql::Analysis, Option<Arc<StatementMask>>);

/// Analyses SQL strings for one session: against the backend's catalog,
/// through the shape caches.
#[derive(Clone)]
pub struct Analyser {
    catalog: Option<crate::backend_catalog::Current>,
    shapes: Arc<Shapes>,
    masking: Option<Arc<ConnMasking>>,
}

impl Analyser {
    /// The analysis of `sql` and, in a masked session, its masking
    /// analysis: from the shape cache when a string of the same shape was
    /// analysed before (against the same catalog) and may be shared, else
    /// from the parser.
    pub fn run(&self, sql: &str) -> Analysed {
        let Some(current) = &self.catalog else {
            let reason = "the database's catalog could not be read, so names cannot be resolved; \
                          nothing was run (try again shortly)";
            return (sluice_sql::Analysis::refused(reason), None);
        };
        let catalog = &current.catalog;
        // An analysis holds for one catalog: its generation is in the key.
        let key = shape_key(sql).map(|k| format!("{k}\0{}", current.generation));
        let cached = key.as_deref().and_then(|k| self.shapes.get(k));
        let analysis = match &cached {
            Some(hit) => sluice_sql::Analysis::clone(hit),
            None => sluice_sql::analyze_in(sql, catalog, &sluice_sql::FunctionPolicy::default()),
        };
        let shareable = key.filter(|_| analysis.cacheable);
        if cached.is_none()
            && let Some(k) = &shareable
        {
            self.shapes.insert(k.clone(), Arc::new(analysis.clone()));
        }
        let mask = self
            .masking
            .as_ref()
            .map(|m| m.check(sql, shareable.as_deref(), catalog));
        (analysis, mask)
    }

    /// A statement refused before analysis, with the reason.
    pub fn refused(reason: String) -> Analysed {
        (sluice_sql::Analysis::refused(reason), None)
    }
}

/// A request's fate, with the client's error when it is refused.
pub enum Decision {
    Forward(Permit),
    Deny(ClientError),
}

/// The client's words for a gate's denial.
pub fn client_error(d: Denial) -> ClientError {
    match d.kind {
        DenialKind::Refused => ClientError::permission_denied(d.message),
        DenialKind::AuditUnavailable => ClientError::audit_unavailable(),
    }
}

/// One request's statements as the gate sees them.
struct Items<'a>(&'a [Arc<Checked>]);

impl Subject for Items<'_> {
    fn describe(&self) -> Vec<StatementRecord> {
        self.0.iter().map(|c| describe(c)).collect()
    }

    fn text(&self) -> String {
        self.0
            .iter()
            .map(|c| c.sql.as_str())
            .collect::<Vec<_>>()
            .join(";\n")
    }

    fn shape(&self, parameters: Option<&[Option<String>]>) -> (String, serde_json::Value) {
        (shape_key_of(self.0, parameters), shape_note(self.0))
    }
}

/// The request's shape, as a shape approval admits it: each statement's
/// fingerprint and the kinds of its constants (list and array lengths,
/// NULLs), and the kinds of its bound parameters.
fn shape_key_of(items: &[Arc<Checked>], parameters: Option<&[Option<String>]>) -> String {
    let mut parts: Vec<String> = items
        .iter()
        .map(|c| match sluice_sql::approval::shape(&c.sql) {
            Some(s) => s.key,
            None => c.fingerprint.clone(),
        })
        .collect();
    if let Some(params) = parameters {
        let kinds: Vec<String> = params
            .iter()
            .map(|p| sluice_sql::approval::parameter_kind(p.as_deref()))
            .collect();
        parts.push(format!("params:{}", kinds.join(",")));
    }
    parts.join(";")
}

/// What approving the shape would admit, in words for the approver.
fn shape_note(items: &[Arc<Checked>]) -> serde_json::Value {
    let shapes: Vec<_> = items
        .iter()
        .filter_map(|c| sluice_sql::approval::shape(&c.sql))
        .collect();
    let normalized: Vec<&str> = shapes.iter().map(|s| s.normalized.as_str()).collect();
    serde_json::json!({
        "normalized": normalized.join(";\n"),
        "admits": "approving the shape lets this grant run this statement again, without \
                   asking, with other values in the $n places: of the same kinds, with lists \
                   and arrays of the same lengths and NULLs in the same places",
    })
}

impl Policy {
    pub fn new(
        profile: Profile,
        rules: Arc<[GuardrailRule]>,
        masking: Option<(Arc<ConnMasking>, Opener)>,
        shapes: Arc<Shapes>,
        timeout_cap: Option<std::time::Duration>,
    ) -> Self {
        Policy {
            profile,
            rules,
            masking,
            shapes,
            timeout_cap,
            catalog: None,
        }
    }

    /// The catalog to judge the next statements with (`None` when it could
    /// not be read: they are refused).
    pub fn use_catalog(&mut self, catalog: Option<crate::backend_catalog::Current>) {
        self.catalog = catalog;
    }

    /// The analysis of `sql` and, in a masked session, its masking
    /// analysis: from the shape cache when a string of the same shape was
    /// analysed before and may be shared, else from the parser.
    /// What analyses this session's statements, as a value that can move
    /// to another thread (large statements are analysed off the async
    /// workers).
    pub fn analyser(&self) -> Analyser {
        Analyser {
            catalog: self.catalog.clone(),
            shapes: self.shapes.clone(),
            masking: self.masking.as_ref().map(|(m, _)| m.clone()),
        }
    }

    /// A `COPY name TO STDOUT` whose unqualified name several schemas hold,
    /// some with masked columns: which table the backend copies depends on
    /// the client's `search_path`, so its masks cannot be planned (see
    /// [`copy_table`]).
    async fn copy_ambiguity(&self, items: &[Arc<Checked>]) -> Option<sluice_sql::MaskViolation> {
        let (conn, opener) = self.masking.as_ref()?;
        for mask in items.iter().filter_map(|c| c.mask.as_ref()) {
            if let Some(v) = copy_table::ambiguity(opener, &conn.masker, mask).await {
                return Some(v);
            }
        }
        None
    }

    /// A simple-protocol Query's analysis, with `EXECUTE` of a prepared
    /// statement judged by what it runs, as the backend confirmed it.
    pub fn check_query(
        &self,
        sql: &str,
        analysed: Analysed,
        names: &crate::names::Names,
    ) -> Arc<Checked> {
        let (analysis, mask) = analysed;
        let analysis = names.resolve(analysis);
        Arc::new(Checked {
            sql: sql.to_string(),
            fingerprint: analysis.fingerprint.clone(),
            statements: analysis.statements.clone(),
            analysis: Some(analysis),
            mask,
        })
    }

    /// An extended-protocol Parse's analysis.
    pub fn check_parse(&self, sql: &str, analysed: Analysed) -> Arc<Checked> {
        let (analysis, mask) = analysed;
        Arc::new(Checked {
            sql: sql.to_string(),
            fingerprint: analysis.fingerprint,
            statements: analysis.statements,
            analysis: None,
            mask,
        })
    }

    /// A statement prepared with SQL `PREPARE`, for a protocol-level Bind.
    pub fn sql_prepared(name: &str, facts: StatementFacts) -> Arc<Checked> {
        Arc::new(Checked {
            sql: format!("EXECUTE {name}"),
            fingerprint: facts.fingerprint.clone(),
            statements: vec![facts],
            analysis: None,
            mask: None,
        })
    }

    /// An Execute of a portal Sluice does not know (never bound through
    /// this session, or gone): unknown.
    pub fn unknown_portal(name: &str) -> Arc<Checked> {
        Arc::new(Checked {
            sql: format!("-- portal {name:?}"),
            statements: vec![StatementFacts::unknown(
                "EXECUTE",
                "the portal was not bound through this session",
            )],
            fingerprint: String::new(),
            analysis: None,
            mask: None,
        })
    }

    /// A Bind of a statement this session never parsed: unknown.
    pub fn unknown_statement(name: &str) -> Arc<Checked> {
        Arc::new(Checked {
            sql: format!("-- prepared statement {name:?}"),
            statements: vec![StatementFacts::unknown(
                "EXECUTE",
                "the prepared statement was not parsed through this session",
            )],
            fingerprint: String::new(),
            analysis: None,
            mask: None,
        })
    }

    /// The verdict over every statement of a request, judged as a whole.
    /// A statement timeout raised above the profile's cap (or turned off)
    /// is denied whatever the rules say.
    pub fn verdict(&self, items: &[Arc<Checked>]) -> Verdict {
        let facts: Vec<StatementFacts> = items
            .iter()
            .flat_map(|c| c.statements.iter().cloned())
            .collect();
        if let Some(v) = self.timeout_violation(&facts) {
            return v;
        }
        evaluate_all(self.profile, &self.rules, &facts)
    }

    fn timeout_violation(&self, facts: &[StatementFacts]) -> Option<Verdict> {
        let (stmt, why) = facts.iter().find_map(|f| {
            f.settings.iter().find_map(|(name, value)| {
                let value = value.as_deref()?;
                crate::settings::timeout_within(name, value, self.timeout_cap)
                    .err()
                    .map(|why| (f, why))
            })
        })?;
        Some(Verdict {
            action: Action::Deny,
            rule: "default:statement-timeout".to_string(),
            reason: format!("{} is refused: {why}", stmt.command),
            by: sluice_core::guardrail::DecidedBy::Profile(self.profile),
            hold: Default::default(),
        })
    }
}

impl Policy {
    /// Decides a request: the masking checks this session needs, then the
    /// gate with `verdict` (from [`Policy::verdict`]).
    pub async fn decide(
        &self,
        gate: &mut Gate,
        items: &[Arc<Checked>],
        verdict: &Verdict,
        protocol: &str,
        run: Run,
    ) -> Decision {
        if let Some(v) = items.iter().find_map(|c| c.mask_violation()) {
            return Decision::Deny(deny_masked(gate, items, v, protocol).await);
        }
        if let Some(v) = self.copy_ambiguity(items).await {
            return Decision::Deny(deny_masked(gate, items, &v, protocol).await);
        }
        match gate.decide(&Items(items), verdict, protocol, run).await {
            GateDecision::Forward(permit) => Decision::Forward(permit),
            GateDecision::Deny(d) => Decision::Deny(client_error(d)),
        }
    }
}

/// A request that uses a masked column where masking cannot protect it:
/// refused (42501 naming the column) and recorded as denied.
async fn deny_masked(
    gate: &mut Gate,
    items: &[Arc<Checked>],
    v: &sluice_sql::MaskViolation,
    protocol: &str,
) -> ClientError {
    let refusal = Refusal {
        protocol: protocol.to_string(),
        statements: Items(items).describe(),
        rule: "masking".into(),
        reason: v.message(),
        masked_column: Some(v.column.clone()),
    };
    let d = gate.refuse(refusal, v.message()).await;
    client_error(d)
}

/// One analysed SQL string as audit detail: no parameter values (the
/// extended protocol's values travel in Bind, which is never recorded).
pub(crate) fn describe(c: &Checked) -> StatementRecord {
    // Comments out, long literals elided, and a hash of the full text
    // whenever the recorded text is not it (see sluice_sql::record).
    let (text, changed) = sluice_sql::record::audit_text(&c.sql, MAX_AUDITED_TEXT);
    let mut tables: Vec<String> = c
        .statements
        .iter()
        .flat_map(|s| s.tables())
        .map(str::to_string)
        .collect();
    tables.sort();
    tables.dedup();
    StatementRecord {
        text,
        truncated: changed,
        sha256: changed.then(|| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(c.sql.as_bytes()))
        }),
        fingerprint: c.fingerprint.clone(),
        classes: c
            .statements
            .iter()
            .map(|s| s.class.as_str().to_string())
            .collect(),
        commands: c.statements.iter().map(|s| s.command.clone()).collect(),
        tables,
    }
}
