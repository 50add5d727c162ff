//! One-off queries on a side session: a fresh backend session opened with
//! the client session's own credential and profile, used to read the
//! catalog. The client's own session is busy with its traffic, and its
//! protocol state is the client's.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::Profile;
use tokio::io::AsyncWriteExt;

use crate::backend::{self, Target};
use crate::errors::PgError;
use crate::messages;

/// Longest a side query may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer message accepted.
const ANSWER_CAP: usize = 1 << 20;

/// How to open the side session: the session's own backend and grant.
#[derive(Clone)]
pub struct Opener {
    pub target: Arc<Target>,
    pub grant_id: String,
    pub profile: Profile,
}

/// A text row of a catalog answer.
pub type Row = Vec<Option<String>>;

pub fn text(r: &Row, i: usize) -> Option<String> {
    r.get(i).cloned().flatten()
}

pub fn num<T: std::str::FromStr>(r: &Row, i: usize) -> Option<T> {
    r.get(i)?.as_deref()?.parse().ok()
}

/// One simple query on a fresh backend session, text rows.
pub async fn query(opener: &Opener, sql: &str) -> Result<Vec<Row>, PgError> {
    let mut all = queries(opener, sql).await?;
    Ok(all.drain(..).flatten().collect())
}

/// A simple query of several statements on a fresh backend session: the
/// text rows of each statement, in order.
pub async fn queries(opener: &Opener, sql: &str) -> Result<Vec<Vec<Row>>, PgError> {
    tokio::time::timeout(LOOKUP_TIMEOUT, queries_inner(opener, sql))
        .await
        .map_err(|_| PgError::Backend("catalog lookup timed out".into()))?
}

async fn queries_inner(opener: &Opener, sql: &str) -> Result<Vec<Vec<Row>>, PgError> {
    let mut be =
        backend::open(opener.target.clone(), &[], &opener.grant_id, opener.profile).await?;
    be.reader.set_cap(ANSWER_CAP);
    be.reader.get_mut().write_all(&messages::query(sql)).await?;
    be.reader.get_mut().flush().await?;
    let mut results = Vec::new();
    let mut rows = Vec::new();
    let mut failed = None;
    loop {
        let frame = be
            .reader
            .next()
            .await
            .map_err(|e| PgError::Backend(format!("catalog lookup: {e}")))?
            .ok_or_else(|| PgError::Backend("catalog lookup: backend closed".into()))?;
        match frame.tag {
            b'D' => rows.push(
                data_row(frame.body())
                    .ok_or_else(|| PgError::Backend("catalog lookup: malformed DataRow".into()))?,
            ),
            b'C' => results.push(std::mem::take(&mut rows)),
            b'E' => failed = Some(frame),
            b'Z' => break,
            _ => {}
        }
    }
    let _ = be.reader.get_mut().write_all(&[b'X', 0, 0, 0, 4]).await;
    if let Some(e) = failed {
        let fields = messages::error_fields(e.body());
        let msg = fields.iter().find(|(c, _)| *c == b'M').map(|(_, m)| *m);
        return Err(PgError::Backend(format!(
            "catalog lookup: {}",
            msg.unwrap_or("error")
        )));
    }
    Ok(results)
}

fn data_row(mut body: &[u8]) -> Option<Row> {
    let b = &mut body;
    let n = crate::codec::take_i16(b)?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = crate::codec::take_i32(b)?;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if b.len() < len {
            return None;
        }
        let (v, rest) = b.split_at(len);
        out.push(Some(String::from_utf8_lossy(v).into_owned()));
        *b = rest;
    }
    Some(out)
}
