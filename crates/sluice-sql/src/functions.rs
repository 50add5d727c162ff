//! Which functions do what: the built-in catalog and configured extras.
//!
//! A function call is as strong as the function. The catalog below names the
//! built-ins that act on the server, other sessions, files, sequences, locks
//! or other databases (`admin` or `write`), the few that run SQL handed to
//! them as text (`unknown`: their effect cannot be seen from the call), and a
//! large allow-list of pure built-ins (`read`). Everything else is unknown
//! until configured with a [`FunctionPolicy`]: a user function can do
//! anything, so it fails closed.
//!
//! Names are compared as PostgreSQL folds them (lowercase unless quoted);
//! `pg_catalog.f` is the same as `f`, and a name qualified by any other schema
//! is a user function.

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
    /// [`crate::names::qualified`]): declared, else built-in, else unknown.
    pub fn class_of(&self, name: &str) -> StatementClass {
        self.declared
            .get(name)
            .copied()
            .or_else(|| builtin(name))
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

/// The class of a built-in function, or `None` when it is not a built-in
/// (including any name qualified by a schema other than `pg_catalog`).
pub(crate) fn builtin(name: &str) -> Option<StatementClass> {
    use StatementClass::{Admin, Read, Unknown, Write};
    if name.contains('.') {
        return None;
    }
    let class = match name {
        // --- admin: other sessions, server configuration and files, WAL,
        // replication, backups, other databases.
        "pg_terminate_backend"
        | "pg_cancel_backend"
        | "pg_reload_conf"
        | "pg_rotate_logfile"
        | "pg_rotate_logfile_old"
        | "pg_log_backend_memory_contexts"
        | "pg_switch_wal"
        | "pg_switch_xlog"
        | "pg_create_restore_point"
        | "pg_promote"
        | "pg_wal_replay_pause"
        | "pg_wal_replay_resume"
        | "pg_xlog_replay_pause"
        | "pg_xlog_replay_resume"
        | "pg_backup_start"
        | "pg_backup_stop"
        | "pg_start_backup"
        | "pg_stop_backup"
        | "pg_read_file"
        | "pg_read_binary_file"
        | "pg_read_file_old"
        | "pg_stat_file"
        | "pg_file_write"
        | "pg_file_rename"
        | "pg_file_unlink"
        | "pg_file_sync"
        | "pg_file_length"
        | "pg_logdir_ls"
        | "pg_import_system_collations"
        | "pg_nextoid"
        | "pg_drop_replication_slot"
        | "pg_replication_slot_advance"
        | "pg_sync_replication_slots"
        | "pg_logical_slot_get_changes"
        | "pg_logical_slot_get_binary_changes"
        | "pg_logical_slot_peek_changes"
        | "pg_logical_slot_peek_binary_changes"
        | "pg_create_physical_replication_slot"
        | "pg_create_logical_replication_slot"
        | "pg_copy_physical_replication_slot"
        | "pg_copy_logical_replication_slot"
        | "brin_summarize_new_values"
        | "brin_summarize_range"
        | "brin_desummarize_range"
        | "gin_clean_pending_list"
        | "pg_prewarm"
        | "lo_import"
        | "lo_export"
        | "pg_clear_attribute_stats"
        | "pg_restore_attribute_stats"
        | "pg_clear_relation_stats"
        | "pg_restore_relation_stats"
        | "pg_wal_summary_contents"
        | "pg_get_wal_summarizer_state"
        | "pg_stat_statements_reset" => Admin,
        n if n.starts_with("dblink")
            || n.starts_with("pg_ls_")
            || n.starts_with("pg_stat_reset")
            || n.starts_with("pg_replication_origin_")
            || n.starts_with("pg_create_")
            || n.starts_with("pg_drop_") =>
        {
            Admin
        }

        // --- write: sequences, large objects, advisory locks, notifications,
        // WAL messages, transaction ids.
        "nextval"
        | "setval"
        | "lo_create"
        | "lo_creat"
        | "lo_unlink"
        | "lo_put"
        | "lo_from_bytea"
        | "lo_truncate"
        | "lo_truncate64"
        | "lowrite"
        | "lo_open"
        | "lo_close"
        | "lo_lseek"
        | "lo_lseek64"
        | "lo_tell"
        | "lo_tell64"
        | "loread"
        | "pg_notify"
        | "pg_logical_emit_message"
        | "txid_current"
        | "pg_current_xact_id" => Write,
        n if n.starts_with("pg_advisory_") || n.starts_with("pg_try_advisory_") => Write,

        // --- unknown: run SQL passed as text, or read relations named by a
        // string, so neither the statement nor the tables can be seen.
        "query_to_xml"
        | "query_to_xmlschema"
        | "query_to_xml_and_xmlschema"
        | "table_to_xml"
        | "table_to_xmlschema"
        | "table_to_xml_and_xmlschema"
        | "schema_to_xml"
        | "schema_to_xmlschema"
        | "schema_to_xml_and_xmlschema"
        | "database_to_xml"
        | "database_to_xmlschema"
        | "database_to_xml_and_xmlschema"
        | "ts_stat" => Unknown,

        n if is_pure(n) => Read,
        _ => return None,
    };
    Some(class)
}

/// Pure built-ins: read data, compute values, change nothing others can see.
/// `pg_sleep` is here: it holds a backend but changes nothing, and the
/// statement timeout bounds it; deny it with a rule where that matters.
fn is_pure(name: &str) -> bool {
    PURE.binary_search(&name).is_ok() || PURE_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Families of pure built-ins sharing a prefix.
const PURE_PREFIXES: &[&str] = &[
    "array_",
    "bit_",
    "bool_",
    "covar_",
    "crc32",
    "current_",
    "date_",
    "enum_",
    "generate_",
    "get_",
    "has_",
    "inet_",
    "int4multirange",
    "int8multirange",
    "json_",
    "jsonb_",
    "justify_",
    "make_",
    "percentile_",
    "pg_available_",
    "pg_blocking_",
    "pg_char_",
    "pg_collation_",
    "pg_column_",
    "pg_control_",
    "pg_current_wal_",
    "pg_database_",
    "pg_describe_",
    "pg_encoding_",
    "pg_event_trigger_",
    "pg_get_",
    "pg_has_",
    "pg_identify_",
    "pg_index_",
    "pg_indexes_",
    "pg_input_",
    "pg_is_",
    "pg_last_",
    "pg_mcv_",
    "pg_opclass_",
    "pg_opfamily_",
    "pg_options_",
    "pg_partition_",
    "pg_relation_",
    "pg_safe_",
    "pg_sequence_",
    "pg_show_",
    "pg_size_",
    "pg_sleep",
    "pg_snapshot_",
    "pg_stat_get_",
    "pg_statistics_",
    "pg_table_",
    "pg_tablespace_",
    "pg_timezone_",
    "pg_total_",
    "pg_ts_",
    "pg_type_",
    "pg_visible_",
    "pg_wal_lsn_",
    "pg_walfile_",
    "pg_xact_",
    "quote_",
    "range_",
    "regexp_",
    "regr_",
    "row_",
    "sha",
    "similar_",
    "stddev",
    "string_",
    "to_",
    "ts_",
    "txid_snapshot_",
    "txid_visible_",
    "uuid",
    "var_",
    "xml_",
    "xpath",
];

/// Single pure built-ins. Kept sorted: lookups binary-search it.
const PURE: &[&str] = &[
    "abbrev",
    "abs",
    "acos",
    "acosd",
    "acosh",
    "age",
    "any_value",
    "area",
    "ascii",
    "asin",
    "asind",
    "asinh",
    "atan",
    "atan2",
    "atan2d",
    "atand",
    "atanh",
    "avg",
    "bit",
    "bool",
    "bound_box",
    "box",
    "bpchar",
    "broadcast",
    "btrim",
    "bytea",
    "cardinality",
    "casefold",
    "cbrt",
    "ceil",
    "ceiling",
    "center",
    "char",
    "char_length",
    "character_length",
    "chr",
    "cidr",
    "circle",
    "clock_timestamp",
    "coalesce",
    "col_description",
    "concat",
    "concat_ws",
    "convert",
    "convert_from",
    "convert_to",
    "corr",
    "cos",
    "cosd",
    "cosh",
    "cot",
    "cotd",
    "count",
    "cume_dist",
    "currval",
    "date",
    "datemultirange",
    "daterange",
    "decode",
    "degrees",
    "dense_rank",
    "diameter",
    "div",
    "encode",
    "erf",
    "erfc",
    "every",
    "exp",
    "extract",
    "factorial",
    "family",
    "first_value",
    "float4",
    "float8",
    "floor",
    "format",
    "format_type",
    "gamma",
    "gcd",
    "gen_random_uuid",
    "greatest",
    "grouping",
    "height",
    "host",
    "hostmask",
    "inet",
    "initcap",
    "int2",
    "int4",
    "int4range",
    "int8",
    "int8range",
    "interval",
    "is_normalized",
    "isclosed",
    "isempty",
    "isfinite",
    "ishorizontal",
    "isopen",
    "isparallel",
    "isperpendicular",
    "isvertical",
    "json",
    "jsonb",
    "jsonpath",
    "lag",
    "last_value",
    "lastval",
    "lcm",
    "lead",
    "least",
    "left",
    "length",
    "lgamma",
    "like_escape",
    "line",
    "ln",
    "lo_get",
    "log",
    "log10",
    "lower",
    "lpad",
    "lseg",
    "ltrim",
    "macaddr",
    "macaddr8",
    "masklen",
    "max",
    "md5",
    "min",
    "min_scale",
    "mod",
    "mode",
    "money",
    "multirange",
    "name",
    "netmask",
    "network",
    "normalize",
    "now",
    "npoints",
    "nth_value",
    "ntile",
    "nullif",
    "num_nonnulls",
    "num_nulls",
    "numeric",
    "nummultirange",
    "numnode",
    "numrange",
    "obj_description",
    "octet_length",
    "oid",
    "overlaps",
    "overlay",
    "parse_ident",
    "path",
    "pclose",
    "percent_rank",
    "pg_backend_pid",
    "pg_client_encoding",
    "pg_conf_load_time",
    "pg_current_logfile",
    "pg_current_snapshot",
    "pg_cursor",
    "pg_export_snapshot",
    "pg_filenode_relation",
    "pg_jit_available",
    "pg_listening_channels",
    "pg_lock_status",
    "pg_my_temp_schema",
    "pg_notification_queue_usage",
    "pg_numa_available",
    "pg_postmaster_start_time",
    "pg_prepared_statement",
    "pg_settings_get_flags",
    "pg_trigger_depth",
    "pg_typeof",
    "phraseto_tsquery",
    "pi",
    "plainto_tsquery",
    "point",
    "polygon",
    "popen",
    "position",
    "pow",
    "power",
    "querytree",
    "radians",
    "radius",
    "random",
    "random_normal",
    "rank",
    "regclass",
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
    "regrole",
    "regtype",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "rpad",
    "rtrim",
    "scale",
    "session_user",
    "set_bit",
    "set_byte",
    "set_masklen",
    "setseed",
    "setweight",
    "sign",
    "sin",
    "sind",
    "sinh",
    "slope",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "strip",
    "strpos",
    "substr",
    "substring",
    "sum",
    "tan",
    "tand",
    "tanh",
    "text",
    "time",
    "timeofday",
    "timestamp",
    "timestamptz",
    "timezone",
    "transaction_timestamp",
    "translate",
    "trim",
    "trim_scale",
    "trunc",
    "tsmultirange",
    "tsquery",
    "tsrange",
    "tstzmultirange",
    "tstzrange",
    "tsvector",
    "txid_current_if_assigned",
    "txid_current_snapshot",
    "txid_status",
    "unistr",
    "unnest",
    "upper",
    "user",
    "varbit",
    "varchar",
    "variance",
    "version",
    "websearch_to_tsquery",
    "width",
    "width_bucket",
    "xmlagg",
];

/// Operators of core PostgreSQL (and of common pure extensions such as
/// pg_trgm, hstore and pgvector). An operator is a function call in
/// disguise: an unfamiliar symbol may be a user function with side effects.
pub(crate) fn is_known_operator(op: &str) -> bool {
    const OPS: &[&str] = &[
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "|/",
        "||/",
        "!",
        "!!",
        "@",
        "&",
        "|",
        "#",
        "~",
        "<<",
        ">>",
        "=",
        "<>",
        "!=",
        "<",
        ">",
        "<=",
        ">=",
        "||",
        "~~",
        "~~*",
        "!~~",
        "!~~*",
        "~*",
        "!~",
        "!~*",
        "@>",
        "<@",
        "&&",
        "?",
        "?|",
        "?&",
        "->",
        "->>",
        "#>",
        "#>>",
        "#-",
        "@?",
        "@@",
        "@@@",
        "<->",
        "<<|",
        "|>>",
        "&<",
        "&>",
        "<<=",
        ">>=",
        "-|-",
        "##",
        "?#",
        "?-",
        "?|",
        "?-|",
        "?||",
        "<^",
        ">^",
        "~=",
        "&<|",
        "|&>",
        "@-@",
        "<#>",
        "<=>",
        "<+>",
        "<~>",
        "<%>",
        "%",
        "<%",
        "%>",
        "<<%",
        "%>>",
        "<<->",
        "<->>",
        "<<<->",
        "<->>>",
        "^@",
        "&/",
        "BETWEEN",
        "NOT BETWEEN",
        "BETWEEN SYMMETRIC",
        "NOT BETWEEN SYMMETRIC",
    ];
    OPS.contains(&op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatementClass as C;

    #[test]
    fn catalog_samples() {
        let table = [
            ("pg_terminate_backend", Some(C::Admin)),
            ("pg_cancel_backend", Some(C::Admin)),
            ("pg_reload_conf", Some(C::Admin)),
            ("pg_read_file", Some(C::Admin)),
            ("pg_ls_dir", Some(C::Admin)),
            ("pg_ls_waldir", Some(C::Admin)),
            ("pg_stat_file", Some(C::Admin)),
            ("pg_stat_reset_shared", Some(C::Admin)),
            ("dblink", Some(C::Admin)),
            ("dblink_exec", Some(C::Admin)),
            ("dblink_connect_u", Some(C::Admin)),
            ("lo_import", Some(C::Admin)),
            ("lo_export", Some(C::Admin)),
            ("lo_unlink", Some(C::Write)),
            ("lo_create", Some(C::Write)),
            ("nextval", Some(C::Write)),
            ("setval", Some(C::Write)),
            ("pg_advisory_lock", Some(C::Write)),
            ("pg_advisory_xact_lock_shared", Some(C::Write)),
            ("pg_try_advisory_lock", Some(C::Write)),
            ("pg_notify", Some(C::Write)),
            ("pg_switch_wal", Some(C::Admin)),
            ("pg_create_restore_point", Some(C::Admin)),
            ("pg_create_logical_replication_slot", Some(C::Admin)),
            ("pg_logical_emit_message", Some(C::Write)),
            ("pg_promote", Some(C::Admin)),
            ("txid_current", Some(C::Write)),
            ("txid_current_snapshot", Some(C::Read)),
            ("query_to_xml", Some(C::Unknown)),
            ("table_to_xml", Some(C::Unknown)),
            ("ts_stat", Some(C::Unknown)),
            ("pg_sleep", Some(C::Read)),
            ("pg_sleep_for", Some(C::Read)),
            ("count", Some(C::Read)),
            ("now", Some(C::Read)),
            ("date_trunc", Some(C::Read)),
            ("jsonb_build_object", Some(C::Read)),
            ("array_agg", Some(C::Read)),
            ("string_agg", Some(C::Read)),
            ("stddev_pop", Some(C::Read)),
            ("currval", Some(C::Read)),
            ("sha256", Some(C::Read)),
            ("uuidv7", Some(C::Read)),
            ("pg_get_viewdef", Some(C::Read)),
            ("has_table_privilege", Some(C::Read)),
            ("current_setting", Some(C::Read)),
            ("binary_upgrade_set_next_heap_pg_class_oid", None),
            ("my_function", None),
            ("public.lower", None),
            ("LOWER", None),
        ];
        for (name, want) in table {
            assert_eq!(builtin(name), want, "{name}");
        }
    }

    #[test]
    fn policy_overrides_and_qualification() {
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
        assert_eq!(policy.class_of("count"), C::Read);
        assert_eq!(FunctionPolicy::new().class_of("my_fn"), C::Unknown);
    }

    #[test]
    fn pure_list_is_sorted_for_binary_search() {
        assert!(
            PURE.windows(2).all(|w| w[0] < w[1]),
            "PURE must be sorted and unique"
        );
    }

    #[test]
    fn operators() {
        for op in ["=", "||", "->>", "@>", "~~*", "<->", "BETWEEN"] {
            assert!(is_known_operator(op), "{op}");
        }
        for op in ["+++", "===", "@!@"] {
            assert!(!is_known_operator(op), "{op}");
        }
    }
}
