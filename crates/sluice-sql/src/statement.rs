//! What a statement is by itself: its command name and intrinsic class.
//!
//! This looks only at the statement node's own fields. What is nested inside
//! (data-modifying CTEs, function calls, row locks, `INTO`) is found by the
//! walker in `walk.rs`, which raises the class further.
//!
//! Decisions worth knowing:
//! - `TRUNCATE` is `ddl`: it empties a table at once, outside MVCC and
//!   without row triggers, a bigger act than DML; allow it with a rule.
//! - `LISTEN`/`UNLISTEN` are `session`; `NOTIFY` is `write` (others see it,
//!   and PostgreSQL refuses it in read-only transactions).
//! - `VACUUM`, `ANALYZE`, `CLUSTER`, `REINDEX`, `CHECKPOINT`, `ALTER SYSTEM`,
//!   `LOAD`, extensions, languages, servers, tablespaces, databases,
//!   publications, subscriptions, event triggers and `SECURITY LABEL` are
//!   `admin`: they act on the server rather than on one schema.
//! - `DO` is `admin`: arbitrary procedural code that cannot be looked into.
//!   `CALL` is `unknown` unless the procedure is declared in the
//!   [`FunctionPolicy`](crate::FunctionPolicy).
//! - `SET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ROLE` are `admin`: they
//!   change whom the session acts as.
//! - Policies, ownership changes, user mappings and row-level-security
//!   switches are `dcl`, with `GRANT`/`REVOKE` and roles.
//! - `REFRESH MATERIALIZED VIEW` and `LOCK` are `write`.
//! - `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED` are `admin`:
//!   a prepared transaction outlives the session and holds its locks.
//! - `EXECUTE` is `unknown` until a [`PreparedTracker`](crate::PreparedTracker)
//!   resolves it.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;
use sluice_core::guardrail::StatementClass;

use crate::names;
use crate::session;

/// A statement's command and intrinsic class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kind {
    pub command: String,
    pub class: StatementClass,
    pub reason: Option<String>,
    /// Turns read-only off.
    pub toggles: bool,
    /// Refused whatever the profile and rules say, and why.
    pub refused: Option<String>,
}

impl Kind {
    fn new(command: impl Into<String>, class: StatementClass) -> Self {
        Self {
            command: command.into(),
            class,
            reason: None,
            toggles: false,
            refused: None,
        }
    }

    fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn from_effect(command: String, effect: session::Effect) -> Self {
        Self {
            command,
            class: effect.class,
            reason: effect.reason,
            toggles: effect.toggles,
            refused: effect.refused,
        }
    }
}

/// The kind of a statement node; `None` for nodes that are not statements
/// (expressions, clauses, names).
pub(crate) fn kind(node: &N) -> Option<Kind> {
    use StatementClass::*;
    let k = |command: &str, class| Some(Kind::new(command, class));
    match node {
        // --- read
        N::SelectStmt(s) if s.into_clause.is_some() => k("SELECT INTO", Ddl),
        N::SelectStmt(s) if !s.values_lists.is_empty() => k("VALUES", Read),
        N::SelectStmt(_) => k("SELECT", Read),
        N::ExplainStmt(e) if explain_analyze(e) => k("EXPLAIN ANALYZE", Read),
        N::ExplainStmt(_) => k("EXPLAIN", Read),
        N::DeclareCursorStmt(_) => k("DECLARE CURSOR", Read),
        N::FetchStmt(f) => k(if f.ismove { "MOVE" } else { "FETCH" }, Read),
        N::PrepareStmt(_) => k("PREPARE", Read),
        N::CopyStmt(c) => Some(copy(c)),

        // --- transaction control
        N::TransactionStmt(t) => Some(transaction(t)),
        N::ConstraintsSetStmt(_) => k("SET CONSTRAINTS", Tcl),

        // --- session
        N::VariableSetStmt(v) => {
            let (command, effect) = session::variable_set(v);
            Some(Kind::from_effect(command, effect))
        }
        N::DiscardStmt(d) => {
            let (command, effect) = session::discard(d.target);
            Some(Kind::from_effect(command, effect))
        }
        N::VariableShowStmt(_) => k("SHOW", Session),
        N::ListenStmt(_) => k("LISTEN", Session),
        N::UnlistenStmt(_) => k("UNLISTEN", Session),
        N::ClosePortalStmt(_) => k("CLOSE", Session),
        N::DeallocateStmt(_) => k("DEALLOCATE", Session),

        // --- write
        N::InsertStmt(_) => k("INSERT", Write),
        N::UpdateStmt(_) => k("UPDATE", Write),
        N::DeleteStmt(_) => k("DELETE", Write),
        N::MergeStmt(_) => k("MERGE", Write),
        N::LockStmt(_) => k("LOCK", Write),
        N::NotifyStmt(_) => k("NOTIFY", Write),
        N::RefreshMatViewStmt(_) => k("REFRESH MATERIALIZED VIEW", Write),

        // --- ddl
        N::TruncateStmt(_) => k("TRUNCATE", Ddl),
        N::CreateStmt(_) => k("CREATE TABLE", Ddl),
        N::CreateTableAsStmt(c) => match pb::ObjectType::try_from(c.objtype) {
            Ok(pb::ObjectType::ObjectMatview) => k("CREATE MATERIALIZED VIEW", Ddl),
            _ if c.is_select_into => k("SELECT INTO", Ddl),
            _ => k("CREATE TABLE AS", Ddl),
        },
        N::ViewStmt(_) => k("CREATE VIEW", Ddl),
        N::IndexStmt(_) => k("CREATE INDEX", Ddl),
        N::AlterTableStmt(a) => k(&format!("ALTER {}", names::object_type(a.objtype)), Ddl),
        N::DropStmt(d) => Some(drop(d)),
        N::RenameStmt(r) => k(
            &format!("ALTER {} RENAME", names::object_type(r.rename_type)),
            Ddl,
        ),
        N::AlterObjectSchemaStmt(a) => k(
            &format!("ALTER {} SET SCHEMA", names::object_type(a.object_type)),
            Ddl,
        ),
        N::AlterObjectDependsStmt(_) => k("ALTER DEPENDS ON EXTENSION", Ddl),
        N::CommentStmt(_) => k("COMMENT", Ddl),
        N::CreateSchemaStmt(_) => k("CREATE SCHEMA", Ddl),
        N::CreateSeqStmt(_) => k("CREATE SEQUENCE", Ddl),
        N::AlterSeqStmt(_) => k("ALTER SEQUENCE", Ddl),
        N::CreateFunctionStmt(f) => k(
            if f.is_procedure {
                "CREATE PROCEDURE"
            } else {
                "CREATE FUNCTION"
            },
            Ddl,
        ),
        N::AlterFunctionStmt(_) => k("ALTER FUNCTION", Ddl),
        N::CreateTrigStmt(_) => k("CREATE TRIGGER", Ddl),
        N::RuleStmt(_) => k("CREATE RULE", Ddl),
        N::DefineStmt(d) => k(&format!("CREATE {}", names::object_type(d.kind)), Ddl),
        N::CreateDomainStmt(_) => k("CREATE DOMAIN", Ddl),
        N::AlterDomainStmt(_) => k("ALTER DOMAIN", Ddl),
        N::CompositeTypeStmt(_) => k("CREATE TYPE", Ddl),
        N::CreateEnumStmt(_) => k("CREATE TYPE", Ddl),
        N::CreateRangeStmt(_) => k("CREATE TYPE", Ddl),
        N::AlterEnumStmt(_) => k("ALTER TYPE", Ddl),
        N::AlterTypeStmt(_) => k("ALTER TYPE", Ddl),
        N::AlterOperatorStmt(_) => k("ALTER OPERATOR", Ddl),
        N::CreateOpClassStmt(_) => k("CREATE OPERATOR CLASS", Ddl),
        N::CreateOpFamilyStmt(_) => k("CREATE OPERATOR FAMILY", Ddl),
        N::AlterOpFamilyStmt(_) => k("ALTER OPERATOR FAMILY", Ddl),
        N::AlterCollationStmt(_) => k("ALTER COLLATION", Ddl),
        N::CreateStatsStmt(_) => k("CREATE STATISTICS", Ddl),
        N::AlterStatsStmt(_) => k("ALTER STATISTICS", Ddl),
        N::CreateCastStmt(_) => k("CREATE CAST", Ddl),
        N::CreateTransformStmt(_) => k("CREATE TRANSFORM", Ddl),
        N::CreateConversionStmt(_) => k("CREATE CONVERSION", Ddl),
        N::AlterTsdictionaryStmt(_) => k("ALTER TEXT SEARCH DICTIONARY", Ddl),
        N::AlterTsconfigurationStmt(_) => k("ALTER TEXT SEARCH CONFIGURATION", Ddl),
        N::CreateForeignTableStmt(_) => k("CREATE FOREIGN TABLE", Ddl),
        N::ImportForeignSchemaStmt(_) => k("IMPORT FOREIGN SCHEMA", Ddl),

        // --- dcl
        N::GrantStmt(g) => k(if g.is_grant { "GRANT" } else { "REVOKE" }, Dcl),
        N::GrantRoleStmt(g) => k(
            if g.is_grant {
                "GRANT ROLE"
            } else {
                "REVOKE ROLE"
            },
            Dcl,
        ),
        N::AlterDefaultPrivilegesStmt(_) => k("ALTER DEFAULT PRIVILEGES", Dcl),
        N::CreateRoleStmt(r) => k(
            match pb::RoleStmtType::try_from(r.stmt_type) {
                Ok(pb::RoleStmtType::RolestmtUser) => "CREATE USER",
                Ok(pb::RoleStmtType::RolestmtGroup) => "CREATE GROUP",
                _ => "CREATE ROLE",
            },
            Dcl,
        ),
        N::AlterRoleStmt(_) => k("ALTER ROLE", Dcl),
        N::AlterRoleSetStmt(_) => k("ALTER ROLE SET", Dcl),
        N::DropRoleStmt(_) => k("DROP ROLE", Dcl),
        N::ReassignOwnedStmt(_) => k("REASSIGN OWNED", Dcl),
        N::DropOwnedStmt(_) => k("DROP OWNED", Dcl),
        N::AlterOwnerStmt(a) => k(
            &format!("ALTER {} OWNER", names::object_type(a.object_type)),
            Dcl,
        ),
        N::CreatePolicyStmt(_) => k("CREATE POLICY", Dcl),
        N::AlterPolicyStmt(_) => k("ALTER POLICY", Dcl),
        N::CreateUserMappingStmt(_) => k("CREATE USER MAPPING", Dcl),
        N::AlterUserMappingStmt(_) => k("ALTER USER MAPPING", Dcl),
        N::DropUserMappingStmt(_) => k("DROP USER MAPPING", Dcl),

        // --- admin
        N::DoStmt(_) => Some(Kind::new("DO", Admin).because("DO runs arbitrary procedural code")),
        N::VacuumStmt(v) => k(if v.is_vacuumcmd { "VACUUM" } else { "ANALYZE" }, Admin),
        N::ClusterStmt(_) => k("CLUSTER", Admin),
        N::ReindexStmt(_) => k("REINDEX", Admin),
        N::CheckPointStmt(_) => k("CHECKPOINT", Admin),
        N::AlterSystemStmt(_) => k("ALTER SYSTEM", Admin),
        N::LoadStmt(_) => {
            Some(Kind::new("LOAD", Admin).because("LOAD loads a shared library into the server"))
        }
        N::CreateExtensionStmt(_) => k("CREATE EXTENSION", Admin),
        N::AlterExtensionStmt(_) => k("ALTER EXTENSION", Admin),
        N::AlterExtensionContentsStmt(_) => k("ALTER EXTENSION", Admin),
        N::CreatePlangStmt(_) => k("CREATE LANGUAGE", Admin),
        N::CreateFdwStmt(_) => k("CREATE FOREIGN DATA WRAPPER", Admin),
        N::AlterFdwStmt(_) => k("ALTER FOREIGN DATA WRAPPER", Admin),
        N::CreateForeignServerStmt(_) => k("CREATE SERVER", Admin),
        N::AlterForeignServerStmt(_) => k("ALTER SERVER", Admin),
        N::CreateAmStmt(_) => k("CREATE ACCESS METHOD", Admin),
        N::CreateEventTrigStmt(_) => k("CREATE EVENT TRIGGER", Admin),
        N::AlterEventTrigStmt(_) => k("ALTER EVENT TRIGGER", Admin),
        N::CreatedbStmt(_) => k("CREATE DATABASE", Admin),
        N::AlterDatabaseStmt(_) => k("ALTER DATABASE", Admin),
        N::AlterDatabaseSetStmt(_) => k("ALTER DATABASE SET", Admin),
        N::AlterDatabaseRefreshCollStmt(_) => k("ALTER DATABASE REFRESH COLLATION VERSION", Admin),
        N::DropdbStmt(_) => k("DROP DATABASE", Admin),
        N::CreateTableSpaceStmt(_) => k("CREATE TABLESPACE", Admin),
        N::DropTableSpaceStmt(_) => k("DROP TABLESPACE", Admin),
        N::AlterTableSpaceOptionsStmt(_) => k("ALTER TABLESPACE", Admin),
        N::AlterTableMoveAllStmt(_) => k("ALTER TABLE ALL IN TABLESPACE", Admin),
        N::CreatePublicationStmt(_) => k("CREATE PUBLICATION", Admin),
        N::AlterPublicationStmt(_) => k("ALTER PUBLICATION", Admin),
        N::CreateSubscriptionStmt(_) => k("CREATE SUBSCRIPTION", Admin),
        N::AlterSubscriptionStmt(_) => k("ALTER SUBSCRIPTION", Admin),
        N::DropSubscriptionStmt(_) => k("DROP SUBSCRIPTION", Admin),
        N::SecLabelStmt(_) => k("SECURITY LABEL", Admin),

        // --- unknown until resolved or configured
        N::ExecuteStmt(e) => Some(
            Kind::new("EXECUTE", Unknown)
                .because(format!("EXECUTE {}: prepared statement not known", e.name)),
        ),
        N::CallStmt(_) => k("CALL", Read), // the procedure's class is added by the walker
        N::ReturnStmt(_) | N::PlassignStmt(_) => {
            Some(Kind::new("PL/pgSQL", Unknown).because("PL/pgSQL statement outside a function"))
        }
        _ => None,
    }
}

/// Whether `EXPLAIN` runs its statement: an `analyze` option that is not
/// explicitly false.
pub(crate) fn explain_analyze(e: &pb::ExplainStmt) -> bool {
    e.options.iter().any(|o| match &o.node {
        Some(N::DefElem(d)) if d.defname == "analyze" => {
            match d.arg.as_deref().and_then(names::const_setting) {
                Some(v) => !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "false" | "off" | "0" | "no" | "f" | "n"
                ),
                None => true,
            }
        }
        _ => false,
    })
}

fn copy(c: &pb::CopyStmt) -> Kind {
    let dir = if c.is_from { "FROM" } else { "TO" };
    if c.is_program {
        return Kind::new(format!("COPY {dir} PROGRAM"), StatementClass::Admin)
            .because("COPY runs a program on the database server");
    }
    if !c.filename.is_empty() {
        let verb = if c.is_from { "reads" } else { "writes" };
        return Kind::new(format!("COPY {dir} FILE"), StatementClass::Admin)
            .because(format!("COPY {verb} a file on the database server"));
    }
    if c.is_from {
        Kind::new("COPY FROM STDIN", StatementClass::Write)
    } else {
        Kind::new("COPY TO STDOUT", StatementClass::Read)
    }
}

fn transaction(t: &pb::TransactionStmt) -> Kind {
    use StatementClass::{Admin, Tcl};
    use pb::TransactionStmtKind as T;
    let (command, class) = match T::try_from(t.kind) {
        Ok(T::TransStmtBegin) => ("BEGIN", Tcl),
        Ok(T::TransStmtStart) => ("START TRANSACTION", Tcl),
        Ok(T::TransStmtCommit) => ("COMMIT", Tcl),
        Ok(T::TransStmtRollback) => ("ROLLBACK", Tcl),
        Ok(T::TransStmtSavepoint) => ("SAVEPOINT", Tcl),
        Ok(T::TransStmtRelease) => ("RELEASE", Tcl),
        Ok(T::TransStmtRollbackTo) => ("ROLLBACK TO SAVEPOINT", Tcl),
        Ok(T::TransStmtPrepare) => ("PREPARE TRANSACTION", Admin),
        Ok(T::TransStmtCommitPrepared) => ("COMMIT PREPARED", Admin),
        Ok(T::TransStmtRollbackPrepared) => ("ROLLBACK PREPARED", Admin),
        _ => {
            return Kind::new("TRANSACTION", StatementClass::Unknown)
                .because("unrecognized transaction statement");
        }
    };
    match session::transaction_options(&t.options) {
        Some(effect) => Kind::from_effect(command.to_string(), effect),
        None => Kind::new(command, class),
    }
}

fn drop(d: &pb::DropStmt) -> Kind {
    use StatementClass::{Admin, Dcl, Ddl};
    use pb::ObjectType as O;
    let class = match O::try_from(d.remove_type) {
        Ok(O::ObjectPolicy) => Dcl,
        Ok(
            O::ObjectExtension
            | O::ObjectEventTrigger
            | O::ObjectForeignServer
            | O::ObjectFdw
            | O::ObjectLanguage
            | O::ObjectAccessMethod
            | O::ObjectPublication
            | O::ObjectSubscription,
        ) => Admin,
        _ => Ddl,
    };
    Kind::new(format!("DROP {}", names::object_type(d.remove_type)), class)
}
