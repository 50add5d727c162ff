//! Table OID and column number → `schema.table.column`, per connection.
//!
//! A RowDescription names a result column's source by table OID and
//! attribute number; rules name columns. The cache maps one to the other,
//! filled on a miss by a catalog query on a separate, short-lived backend
//! session opened with the grant's own credential: the client's session is
//! busy with its own traffic and its protocol state is the client's. Entries
//! live [`TTL`], and the whole cache is dropped on a schema-change sign
//! (SQLSTATE 42P01/42703, "cached plan must not change result type", or a
//! completed DDL command). A failed lookup caches nothing: the plan then
//! fails closed (unresolved columns are redacted when column rules exist).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sluice_mask::{ColumnLookup, SourceColumn};

pub use crate::side::Opener;
use crate::side::{num, query, text};

/// How long a table's columns are trusted without a schema-change sign.
pub const TTL: Duration = Duration::from_secs(60);

/// One connection's cache.
#[derive(Default)]
pub struct Catalog {
    tables: Mutex<HashMap<u32, Table>>,
}

struct Table {
    loaded: Instant,
    /// By attribute number.
    columns: HashMap<i16, SourceColumn>,
}

impl Catalog {
    /// Which of `oids` are not cached (or too old).
    pub fn missing(&self, oids: impl Iterator<Item = u32>) -> Vec<u32> {
        let tables = self.lock();
        let mut out: Vec<u32> = oids
            .filter(|o| tables.get(o).is_none_or(|t| t.loaded.elapsed() > TTL))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Runs `f` with a lookup over the cache.
    pub fn with_lookup<T>(&self, f: impl FnOnce(&dyn ColumnLookup) -> T) -> T {
        let tables = self.lock();
        let lookup = |oid: u32, attnum: i16| {
            tables
                .get(&oid)
                .and_then(|t| t.columns.get(&attnum))
                .cloned()
        };
        f(&lookup)
    }

    /// Forgets everything (a schema change was seen).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Loads the columns of `oids`; on failure logs and caches nothing.
    pub async fn load(&self, opener: &Opener, oids: &[u32]) {
        let list: Vec<String> = oids.iter().map(u32::to_string).collect();
        let sql = format!(
            "SELECT a.attrelid::int8, a.attnum, n.nspname, c.relname, a.attname \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.attnum > 0 AND a.attrelid IN ({})",
            list.join(",")
        );
        let rows = match query(opener, &sql).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "masking catalog lookup failed; unresolved columns fail closed");
                return;
            }
        };
        let now = Instant::now();
        let mut tables = self.lock();
        for oid in oids {
            tables.insert(
                *oid,
                Table {
                    loaded: now,
                    columns: HashMap::new(),
                },
            );
        }
        for r in rows {
            let (Some(oid), Some(attnum), Some(schema), Some(table), Some(column)) = (
                num::<u32>(&r, 0),
                num::<i16>(&r, 1),
                text(&r, 2),
                text(&r, 3),
                text(&r, 4),
            ) else {
                continue;
            };
            if let Some(t) = tables.get_mut(&oid) {
                t.columns
                    .insert(attnum, SourceColumn::new(schema, table, column));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Table>> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}
