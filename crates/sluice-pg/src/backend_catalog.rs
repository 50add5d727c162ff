//! A connection's backend catalog ([`sluice_sql::Catalog`]): the
//! functions, operators, types and columns statements are resolved
//! against, read on a side session ([`crate::side`]).
//!
//! Loaded before a connection's first statement is judged, again when it
//! is [`TTL`] old, and again after a statement that may change names (any
//! DDL, DCL or admin statement Sluice forwards) before the next one is
//! judged. A statement is never judged without a catalog: when none can be
//! read, it is refused. Each load gets a generation number, unique across
//! the gateway, that keys the shape caches: an analysis made against one
//! catalog is never reused against another.
//!
//! What the catalog cannot see: names changed by someone else (a DBA, a
//! migration) since the last load, for up to [`TTL`]; the read-only
//! backend session and the read credential are the wall behind that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_sql::catalog::{Catalog, CatalogRows, Routine};

use crate::errors::PgError;
use crate::side::{Opener, Row, num, queries, text};

/// How long a catalog is trusted without a sign of change.
pub const TTL: Duration = Duration::from_secs(30);

/// The oldest PostgreSQL Sluice analyses statements for: older versions
/// read some texts differently from PostgreSQL 18's parser in ways not
/// handled (numeric literals like `0x1F`), and are out of support.
pub const MIN_MAJOR: u32 = 15;

/// Generation numbers, unique across the gateway.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The catalog queries, one simple Query: version, functions, operators,
/// types that run user code when cast to, and columns named like
/// one-argument functions.
const LOAD: &str = "
SELECT current_setting('server_version_num');
SELECT p.proname, n.nspname, (p.oid < 16384 AND n.nspname = 'pg_catalog')::int,
       p.pronargs, p.pronargdefaults, (p.provariadic <> 0)::int, p.provolatile
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace;
SELECT o.oprname,
       bool_and(o.oid < 16384 OR (l.lanname IN ('c', 'internal') AND p.provolatile <> 'v'))::int
  FROM pg_catalog.pg_operator o
  JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 GROUP BY o.oprname;
WITH RECURSIVE checked(oid) AS (
    SELECT contypid FROM pg_catalog.pg_constraint WHERE contype = 'c' AND contypid <> 0
  UNION
    SELECT t.oid FROM pg_catalog.pg_type t JOIN checked c ON t.typbasetype = c.oid
)
SELECT t.typname FROM pg_catalog.pg_type t JOIN checked USING (oid)
UNION
SELECT t.typname FROM pg_catalog.pg_cast c
  JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
  JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
 WHERE c.castmethod = 'f' AND (l.lanname NOT IN ('c', 'internal') OR p.provolatile = 'v');
SELECT n.nspname, c.relname, a.attname
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
   AND a.attname IN (SELECT proname FROM pg_catalog.pg_proc
                      WHERE pronargs - pronargdefaults <= 1
                        AND (pronargs >= 1 OR provariadic <> 0));
";

/// One connection's catalog.
#[derive(Default)]
pub struct BackendCatalog {
    state: Mutex<State>,
    /// One load at a time; the others wait for its result.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    current: Option<(Arc<Catalog>, u64, Instant)>,
    stale: bool,
}

/// A catalog and its generation.
#[derive(Clone)]
pub struct Current {
    pub catalog: Arc<Catalog>,
    pub generation: u64,
}

impl BackendCatalog {
    /// The catalog to judge the next statement with: the loaded one while
    /// fresh, else a new load.
    pub async fn current(&self, opener: &Opener) -> Result<Current, PgError> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let _one = self.loading.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let catalog = Arc::new(load(opener).await?);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        state.current = Some((catalog.clone(), generation, Instant::now()));
        state.stale = false;
        tracing::debug!(
            generation,
            major = catalog.major(),
            "backend catalog loaded"
        );
        Ok(Current {
            catalog,
            generation,
        })
    }

    /// Names may have changed (a DDL statement was forwarded): the next
    /// statement waits for a new load.
    pub fn mark_stale(&self) {
        self.lock().stale = true;
    }

    fn fresh(&self) -> Option<Current> {
        let state = self.lock();
        match &state.current {
            Some((catalog, generation, at)) if !state.stale && at.elapsed() < TTL => {
                Some(Current {
                    catalog: catalog.clone(),
                    generation: *generation,
                })
            }
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Replaced whole: a poisoned state is intact.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn load(opener: &Opener) -> Result<Catalog, PgError> {
    let results = queries(opener, LOAD).await?;
    let [version, functions, operators, types, columns] = <[Vec<Row>; 5]>::try_from(results)
        .map_err(|_| PgError::Backend("catalog lookup: unexpected answer".into()))?;
    let version_num: u32 = version
        .first()
        .and_then(|r| num(r, 0))
        .ok_or_else(|| PgError::Backend("catalog lookup: no server version".into()))?;
    let major = version_num / 10_000;
    if major < MIN_MAJOR {
        return Err(PgError::Backend(format!(
            "PostgreSQL {major} is older than Sluice supports ({MIN_MAJOR} and later)"
        )));
    }
    let mut rows = CatalogRows {
        major,
        ..CatalogRows::default()
    };
    for r in &functions {
        let (Some(name), Some(schema), Some(builtin), Some(nargs), Some(defaults), Some(variadic)) = (
            text(r, 0),
            text(r, 1),
            num::<u8>(r, 2),
            num::<u16>(r, 3),
            num::<u16>(r, 4),
            num::<u8>(r, 5),
        ) else {
            continue;
        };
        let volatility = text(r, 6).and_then(|v| v.bytes().next()).unwrap_or(b'v');
        rows.functions.push((
            name,
            Routine {
                schema,
                builtin: builtin == 1,
                nargs,
                defaults,
                variadic: variadic == 1,
                volatility,
            },
        ));
    }
    for r in &operators {
        if let (Some(symbol), Some(trusted)) = (text(r, 0), num::<u8>(r, 1)) {
            rows.operators.push((symbol, trusted == 1));
        }
    }
    rows.untrusted_types = types.iter().filter_map(|r| text(r, 0)).collect();
    for r in &columns {
        if let (Some(schema), Some(rel), Some(col)) = (text(r, 0), text(r, 1), text(r, 2)) {
            rows.columns.push((schema, rel, col));
        }
    }
    if rows.functions.is_empty() {
        return Err(PgError::Backend("catalog lookup: no functions".into()));
    }
    Ok(Catalog::from_rows(rows))
}
