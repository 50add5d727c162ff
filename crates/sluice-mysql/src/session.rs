//! One MySQL session after login: every command the client sends is
//! judged before any of it reaches the backend. Queries and prepared
//! statements go through the shared gate (guardrails under the grant's
//! profile, approvals, the decision recorded first); commands that would
//! change who the session is or which database it uses, read the binary
//! log, or reach other connections are refused; responses come back
//! through the session's masking. The session ends when its grant does,
//! an operator ends it, or the gateway stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sluice_core::Grant;
use sluice_core::audit::detail::{Completed, Failure, SessionClosed, SessionOpened};
use sluice_core::config::ConnectionConfig;
use sluice_core::config::connection::RecordResults;
use sluice_core::guardrail::{StatementClass as C, StatementFacts, Verdict};
use sluice_gate::{
    Decision, EndSignal, Gate, GateSpec, Holds, Meter, Presence, Refusal, Run, Seat, SessionRecord,
    Subject,
};
use sluice_tls::Stream;
use tokio::io::{AsyncWriteExt, BufStream};

use crate::Shared;
use crate::analyse;
use crate::backend::Backend;
use crate::packet::{self, Packet, ReadError};
use crate::result::{Masking, Outcome, Relay, RelayError, Rows};
use crate::wire::{self, com, er};

/// A statement as the gate sees it: its text and what it does.
struct Stmt {
    text: String,
    facts: Vec<StatementFacts>,
}

impl Subject for Stmt {
    fn describe(&self) -> Vec<sluice_core::audit::detail::StatementRecord> {
        let fp = self
            .facts
            .first()
            .map(|f| f.fingerprint.as_str())
            .unwrap_or("");
        vec![sluice_gate::record_of(&self.text, &self.facts, fp)]
    }

    fn text(&self) -> String {
        self.text.clone()
    }

    fn shape(&self, _parameters: Option<&[Option<String>]>) -> (String, serde_json::Value) {
        let fp = self
            .facts
            .first()
            .map(|f| f.fingerprint.clone())
            .unwrap_or_default();
        (
            format!("mysql:{fp}"),
            serde_json::json!({
                "admits": "approving the shape lets this grant run statements of this shape (any constants) again, without asking",
            }),
        )
    }
}

/// A statement the backend prepared, judged when it was prepared.
struct Prepared {
    stmt: Stmt,
    verdict: Verdict,
    params: u16,
}

/// A logged-in session.
pub struct Session {
    shared: Arc<Shared>,
    grant: Grant,
    conn: ConnectionConfig,
    id: String,
    record: SessionRecord,
    gate: Gate,
    masking: Option<Masking>,
    prepared: HashMap<u32, Prepared>,
    /// Tables and views of the database (lower case, bare and qualified),
    /// as last read.
    catalog: std::collections::HashSet<String>,
    deprecate_eof: bool,
    allowed: u64,
    denied: u64,
    started: Instant,
    /// Given back as the client's connection closes (see `run`).
    seat: Option<Seat>,
    _presence: Presence,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Quit,
}

/// A failure that ends the session.
#[derive(Debug)]
enum Fatal {
    Client(String),
    Backend(String),
}

impl From<RelayError> for Fatal {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Backend(m) => Fatal::Backend(m),
            RelayError::Client(e) => Fatal::Client(e.to_string()),
        }
    }
}

impl Session {
    /// Opens the session's record and its place on the live list.
    pub async fn open(
        shared: Arc<Shared>,
        grant: Grant,
        conn: ConnectionConfig,
        seat: Seat,
        client_addr: String,
        deprecate_eof: bool,
    ) -> (Session, EndSignal) {
        let id = sluice_gate::new_session_id();
        let record = SessionRecord::new(shared.audit.clone(), &grant, &id);
        let tell: sluice_gate::Tell =
            Box::new(|text: String| tracing::info!(notice = %text, "mysql statement held"));
        let gate = Gate::new(GateSpec {
            audit: shared.audit.clone(),
            session_id: id.clone(),
            grant_id: grant.id.clone(),
            connection: grant.connection.clone(),
            profile: grant.profile,
            rules: conn.guardrails.clone().into(),
            meter: Meter::new(&shared.metrics, &grant.connection, grant.profile),
            holds: Some(Holds::new(
                shared.control.clone(),
                grant.clone(),
                tell,
                shared.config.approvals.statement_timeout.0,
            )),
        });
        let presence = Presence::enter(
            &shared.live,
            &shared.metrics,
            &grant,
            &id,
            "mysql",
            client_addr.clone(),
        );
        let end = sluice_gate::end_signal(
            shared.control.clone(),
            &grant,
            shared.stopping.clone(),
            presence.terminated(),
        );
        record
            .opened(&SessionOpened {
                seq: 0,
                client_addr,
                profile: grant.profile.as_str().to_string(),
                protocol: Some("mysql".into()),
            })
            .await;
        shared.metrics.login(&grant.connection, "ok");
        let masking = masking(&conn, &grant);
        tracing::info!(session.id = %id, grant.id = %grant.id, conn.name = %grant.connection, "mysql session opened");
        let session = Session {
            shared,
            grant,
            conn,
            id,
            record,
            gate,
            masking,
            prepared: HashMap::new(),
            catalog: Default::default(),
            deprecate_eof,
            allowed: 0,
            denied: 0,
            started: Instant::now(),
            seat: Some(seat),
            _presence: presence,
        };
        (session, end)
    }

    /// Serves commands until the client quits, the session must end, or
    /// either side fails; then closes the record.
    pub async fn run(mut self, client: Stream, mut backend: Backend, mut end: EndSignal) {
        let mut client = BufStream::new(client);
        let max = self.shared.config.mysql.max_packet_bytes;
        let why = loop {
            let read = tokio::select! {
                p = packet::read(&mut client, max, None) => p,
                reason = &mut end => {
                    let message = reason.message(&self.grant.id);
                    let _ = send(&mut client, 0, &wire::err(er::KILLED, &message)).await;
                    break reason.as_str().to_string();
                }
            };
            let p = match read {
                Ok(p) => p,
                Err(ReadError::TooLarge { cap }) => {
                    let message = format!(
                        "sluice: a packet over {cap} bytes (max_packet_bytes); the connection is closed"
                    );
                    let _ = send(&mut client, 1, &wire::err(er::TOO_LARGE, &message)).await;
                    break "packet too large".into();
                }
                Err(_) => break "client closed".into(),
            };
            let step = tokio::select! {
                r = self.command(p, &mut client, &mut backend) => r,
                reason = &mut end => {
                    let message = reason.message(&self.grant.id);
                    let _ = send(&mut client, 0, &wire::err(er::KILLED, &message)).await;
                    break reason.as_str().to_string();
                }
            };
            match step {
                Ok(Next::Continue) => {}
                Ok(Next::Quit) => break "client quit".into(),
                Err(Fatal::Client(e)) => {
                    tracing::debug!(error = %e, "mysql client went away");
                    break "client closed".into();
                }
                Err(Fatal::Backend(e)) => {
                    tracing::warn!(session.id = %self.id, error = %e, "mysql backend failed");
                    let message = "sluice: the database connection failed; reconnect";
                    let _ = send(&mut client, 1, &wire::err(er::UNAVAILABLE, message)).await;
                    break "backend failed".into();
                }
            }
        };
        // The place is free before the client sees its connection close,
        // so it can log straight back in; the record of the end follows.
        self.seat.take();
        let _ = client.shutdown().await;
        let _ = backend.io.shutdown().await;
        self.close(&why).await;
    }

    async fn close(&self, why: &str) {
        self.record
            .closed(&SessionClosed {
                seq: self.allowed + self.denied + 1,
                duration_ms: self.started.elapsed().as_millis() as u64,
                statements_allowed: self.allowed,
                statements_denied: self.denied,
                outcomes_lost: 0,
                end: why.to_string(),
            })
            .await;
        tracing::info!(session.id = %self.id, end = why, "mysql session closed");
    }

    /// Judges and serves one command.
    async fn command(
        &mut self,
        p: Packet,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        let reply = p.seq.wrapping_add(1);
        let Some(&cmd) = p.payload.first() else {
            return Ok(Next::Quit);
        };
        let body = &p.payload[1..];
        match cmd {
            com::QUIT => Ok(Next::Quit),
            com::QUERY => self.query(body, reply, client, backend).await,
            com::STMT_PREPARE => self.prepare(body, reply, client, backend).await,
            com::STMT_EXECUTE => self.execute(&p.payload, reply, client, backend).await,
            com::STMT_SEND_LONG_DATA | com::STMT_CLOSE => {
                let id = stmt_id(body);
                if !id.is_some_and(|id| self.prepared.contains_key(&id)) {
                    // No response is expected; an unknown id is dropped.
                    return Ok(Next::Continue);
                }
                if cmd == com::STMT_CLOSE {
                    self.prepared.remove(&id.unwrap_or_default());
                }
                forward_only(backend, &p.payload).await?;
                Ok(Next::Continue)
            }
            com::STMT_RESET => {
                if !stmt_id(body).is_some_and(|id| self.prepared.contains_key(&id)) {
                    return self
                        .error(
                            client,
                            reply,
                            er::UNKNOWN_STATEMENT,
                            "sluice: unknown statement",
                        )
                        .await;
                }
                self.pass(&p.payload, reply, client, backend)
                    .await
                    .map(|_| Next::Continue)
            }
            com::PING => self
                .pass(&p.payload, reply, client, backend)
                .await
                .map(|_| Next::Continue),
            com::INIT_DB => {
                let db = String::from_utf8_lossy(body);
                if db != self.conn.database {
                    let message = format!(
                        "sluice: the grant is for database {:?}; switching to {db:?} is refused",
                        self.conn.database
                    );
                    self.refuse_command(&format!("USE {db}"), &message).await;
                    return self.error(client, reply, er::DB_DENIED, &message).await;
                }
                self.pass(&p.payload, reply, client, backend)
                    .await
                    .map(|_| Next::Continue)
            }
            com::FIELD_LIST => self.field_list(&p.payload, reply, client, backend).await,
            com::SET_OPTION => {
                // 0: multi-statements on, refused; 1: off, as it already is.
                if body.first() == Some(&0) {
                    let message = "sluice: multi-statements stay off: send one statement per query";
                    self.refuse_command("SET OPTION MULTI_STATEMENTS_ON", message)
                        .await;
                    return self.error(client, reply, er::NOT_SUPPORTED, message).await;
                }
                let eof = [0xfe, 0, 0, wire::STATUS_AUTOCOMMIT as u8, 0];
                send(client, reply, &eof).await.map_err(client_err)?;
                Ok(Next::Continue)
            }
            com::RESET_CONNECTION => {
                // The server forgets the session's settings: pin them again
                // before the client may send anything.
                forward_only(backend, &p.payload).await?;
                let answer = packet::read(&mut backend.io, 1024 * 1024, None)
                    .await
                    .map_err(|e| Fatal::Backend(e.to_string()))?;
                backend
                    .pin(self.grant.profile)
                    .await
                    .map_err(|e| Fatal::Backend(e.to_string()))?;
                self.prepared.clear();
                send(client, reply, &answer.payload)
                    .await
                    .map_err(client_err)?;
                Ok(Next::Continue)
            }
            com::STMT_FETCH => {
                let message =
                    "sluice: cursors are not supported through Sluice; fetch without a cursor";
                self.error(client, reply, er::NOT_SUPPORTED, message).await
            }
            com::CHANGE_USER => {
                let message = "sluice: the session's identity cannot change; connect again with another grant";
                self.refuse_command("CHANGE USER", message).await;
                self.error(client, reply, er::ACCESS_DENIED, message).await
            }
            com::PROCESS_KILL => {
                let message = "sluice: ending other connections is refused; use KILL QUERY from an admin grant";
                self.refuse_command("KILL", message).await;
                self.error(client, reply, er::DENIED, message).await
            }
            com::BINLOG_DUMP | 0x13 | 0x14 | 0x15 | 0x1e | 0x1d => {
                let message = "sluice: replication commands are refused";
                self.refuse_command("REPLICATION", message).await;
                self.error(client, reply, er::DENIED, message).await
            }
            com::STATISTICS => self.pass_one(&p.payload, reply, client, backend).await,
            other => {
                let message = format!("sluice: command 0x{other:02x} is not supported");
                self.refuse_command(&format!("COMMAND 0x{other:02x}"), &message)
                    .await;
                self.error(client, reply, er::UNKNOWN_COMMAND, &message)
                    .await
            }
        }
    }

    /// `COM_QUERY`: analysed, judged, forwarded, its response relayed.
    async fn query(
        &mut self,
        body: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        let max = self.shared.config.mysql.max_statement_bytes;
        if body.len() > max {
            let message = format!(
                "sluice: a statement over {max} bytes (max_statement_bytes) is not analysed; send smaller statements"
            );
            self.refuse_command("QUERY (too long)", &message).await;
            return self.error(client, reply, er::DENIED, &message).await;
        }
        let Ok(text) = std::str::from_utf8(body) else {
            let message = "sluice: the statement is not valid UTF-8";
            self.refuse_command("QUERY (not UTF-8)", message).await;
            return self.error(client, reply, er::DENIED, message).await;
        };
        let facts = analyse::analyse(text, &self.conn.database);
        let stmt = Stmt {
            text: text.to_string(),
            facts: vec![facts],
        };
        if let Some(message) = self.masked_violation(&stmt, backend).await? {
            return self.deny_masked(stmt, message, reply, client).await;
        }
        let verdict = self.gate.verdict(&stmt.facts);
        let seq = match self.decide(&stmt, &verdict, Run::Executes(None)).await {
            Ok(seq) => seq,
            Err(message) => return self.error(client, reply, er::DENIED, &message).await,
        };
        let started = Instant::now();
        let mut q = vec![com::QUERY];
        q.extend_from_slice(body);
        forward_only(backend, &q).await?;
        let sets_mode = stmt.facts[0].settings.iter().any(|(k, _)| k == "sql_mode");
        if sets_mode {
            return self
                .set_sql_mode(reply, client, backend, seq, started, &stmt)
                .await;
        }
        let outcome = self.relay(reply, client, backend, Rows::Text).await?;
        self.completed(seq, started, &outcome, &stmt);
        Ok(Next::Continue)
    }

    /// The answer to a `SET` that changed `sql_mode`, held until the
    /// server's resulting mode is checked: a mode that changes how text is
    /// lexed is turned off again before the client can send anything, and
    /// the client told so instead of OK.
    async fn set_sql_mode(
        &mut self,
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
        seq: Option<u64>,
        started: Instant,
        stmt: &Stmt,
    ) -> Result<Next, Fatal> {
        let answer = packet::read(&mut backend.io, 1024 * 1024, None)
            .await
            .map_err(|e| Fatal::Backend(e.to_string()))?;
        let bad = backend
            .repin_sql_mode()
            .await
            .map_err(|e| Fatal::Backend(e.to_string()))?;
        let mut outcome = Outcome::default();
        let payload = if bad.is_empty() {
            if answer.first() == Some(0xff) {
                outcome.error = Some(crate::result::error_parts(&answer.payload));
            }
            answer.payload
        } else {
            let message = format!(
                "sluice: sql_mode {} changes how the server reads statements and was turned off again; the rest of the SET took effect",
                bad.join(",")
            );
            outcome.error = Some(("1231 42000".into(), message.clone()));
            wire::err(er::WRONG_VALUE, &message)
        };
        send(client, reply, &payload).await.map_err(client_err)?;
        self.completed(seq, started, &outcome, stmt);
        Ok(Next::Continue)
    }

    /// `COM_STMT_PREPARE`: judged on its text now (and each execution on
    /// the same verdict); the backend's statement id is then known.
    async fn prepare(
        &mut self,
        body: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        let max = self.shared.config.mysql.max_statement_bytes;
        let text = match std::str::from_utf8(body) {
            Ok(t) if body.len() <= max => t,
            _ => {
                let message = "sluice: the statement is too long or not UTF-8";
                self.refuse_command("PREPARE", message).await;
                return self.error(client, reply, er::DENIED, message).await;
            }
        };
        let facts = analyse::analyse(text, &self.conn.database);
        let stmt = Stmt {
            text: text.to_string(),
            facts: vec![facts],
        };
        if let Some(message) = self.masked_violation(&stmt, backend).await? {
            return self.deny_masked(stmt, message, reply, client).await;
        }
        let verdict = self.gate.verdict(&stmt.facts);
        if let Err(message) = self.decide(&stmt, &verdict, Run::PrepareOnly).await {
            return self.error(client, reply, er::DENIED, &message).await;
        }
        let mut q = vec![com::STMT_PREPARE];
        q.extend_from_slice(body);
        forward_only(backend, &q).await?;
        let max_packet = self.shared.config.mysql.max_packet_bytes;
        let first = packet::read(&mut backend.io, max_packet, None)
            .await
            .map_err(|e| Fatal::Backend(e.to_string()))?;
        let mut out = Vec::new();
        let mut seq = packet::frame(&mut out, reply, &first.payload);
        if first.first() == Some(0x00) && first.payload.len() >= 12 {
            let id = u32::from_le_bytes(first.payload[1..5].try_into().expect("4 bytes"));
            let columns = u16::from_le_bytes([first.payload[5], first.payload[6]]);
            let params = u16::from_le_bytes([first.payload[7], first.payload[8]]);
            for count in [params, columns] {
                if count == 0 {
                    continue;
                }
                let more = count as usize + usize::from(!self.deprecate_eof);
                for _ in 0..more {
                    let p = packet::read(&mut backend.io, max_packet, None)
                        .await
                        .map_err(|e| Fatal::Backend(e.to_string()))?;
                    seq = packet::frame(&mut out, seq, &p.payload);
                }
            }
            self.prepared.insert(
                id,
                Prepared {
                    stmt,
                    verdict,
                    params,
                },
            );
        }
        client.write_all(&out).await.map_err(client_err)?;
        client.flush().await.map_err(client_err)?;
        Ok(Next::Continue)
    }

    /// `COM_STMT_EXECUTE`: the prepared statement's verdict, decided and
    /// recorded again for this execution; binary rows masked.
    async fn execute(
        &mut self,
        payload: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        let Some(id) = stmt_id(&payload[1..]) else {
            return self
                .error(
                    client,
                    reply,
                    er::UNKNOWN_STATEMENT,
                    "sluice: a malformed execute",
                )
                .await;
        };
        let flags = payload.get(5).copied().unwrap_or(0);
        if flags & 0x07 != 0 {
            let message =
                "sluice: cursors are not supported through Sluice; execute without a cursor";
            return self.error(client, reply, er::NOT_SUPPORTED, message).await;
        }
        let Some(prepared) = self.prepared.get(&id) else {
            return self
                .error(
                    client,
                    reply,
                    er::UNKNOWN_STATEMENT,
                    "sluice: unknown prepared statement",
                )
                .await;
        };
        let stmt = Stmt {
            text: prepared.stmt.text.clone(),
            facts: prepared.stmt.facts.clone(),
        };
        let verdict = prepared.verdict.clone();
        let _params = prepared.params;
        let seq = match self.decide(&stmt, &verdict, Run::Executes(None)).await {
            Ok(seq) => seq,
            Err(message) => return self.error(client, reply, er::DENIED, &message).await,
        };
        let started = Instant::now();
        forward_only(backend, payload).await?;
        let outcome = self.relay(reply, client, backend, Rows::Binary).await?;
        self.completed(seq, started, &outcome, &stmt);
        Ok(Next::Continue)
    }

    /// `COM_FIELD_LIST`: a read of the table's columns, judged as such.
    async fn field_list(
        &mut self,
        payload: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        let body = &payload[1..];
        let table_end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
        let table = String::from_utf8_lossy(&body[..table_end]).into_owned();
        let mut facts = StatementFacts::new(C::Read, "FIELD LIST");
        facts.tables_read.push(table.clone());
        let stmt = Stmt {
            text: format!("SHOW COLUMNS FROM `{}`", table.replace('`', "``")),
            facts: vec![facts],
        };
        let verdict = self.gate.verdict(&stmt.facts);
        if let Err(message) = self.decide(&stmt, &verdict, Run::Executes(None)).await {
            return self.error(client, reply, er::DENIED, &message).await;
        }
        forward_only(backend, payload).await?;
        let max_packet = self.shared.config.mysql.max_packet_bytes;
        let mut out = Vec::new();
        let mut seq = reply;
        loop {
            let p = packet::read(&mut backend.io, max_packet, None)
                .await
                .map_err(|e| Fatal::Backend(e.to_string()))?;
            seq = packet::frame(&mut out, seq, &p.payload);
            if matches!(p.first(), Some(0xfe) | Some(0xff)) && p.payload.len() < 0xff_ffff {
                break;
            }
        }
        client.write_all(&out).await.map_err(client_err)?;
        client.flush().await.map_err(client_err)?;
        Ok(Next::Continue)
    }

    /// A command passed as is, its OK/ERR (or result) relayed.
    async fn pass(
        &mut self,
        payload: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Outcome, Fatal> {
        forward_only(backend, payload).await?;
        self.relay(reply, client, backend, Rows::Text).await
    }

    /// A command whose answer is one packet of its own kind.
    async fn pass_one(
        &mut self,
        payload: &[u8],
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
    ) -> Result<Next, Fatal> {
        forward_only(backend, payload).await?;
        let p = packet::read(&mut backend.io, 1024 * 1024, None)
            .await
            .map_err(|e| Fatal::Backend(e.to_string()))?;
        send(client, reply, &p.payload).await.map_err(client_err)?;
        Ok(Next::Continue)
    }

    async fn relay(
        &mut self,
        reply: u8,
        client: &mut BufStream<Stream>,
        backend: &mut Backend,
        rows: Rows,
    ) -> Result<Outcome, Fatal> {
        let mut relay = Relay {
            backend: &mut backend.io,
            client,
            seq: reply,
            deprecate_eof: self.deprecate_eof,
            masking: self.masking.as_ref(),
            max_packet: self.shared.config.mysql.max_packet_bytes,
            keep_rows: match self.conn.record_results {
                RecordResults::Rows(n) => Some(n as usize),
                _ => None,
            },
        };
        Ok(relay.run(rows).await?)
    }

    /// The gate's decision: the request's number when it runs, or the
    /// client's words when it does not.
    async fn decide(
        &mut self,
        stmt: &Stmt,
        verdict: &Verdict,
        run: Run,
    ) -> Result<Option<u64>, String> {
        let prepare_only = matches!(run, Run::PrepareOnly);
        match self.gate.decide(stmt, verdict, "mysql", run).await {
            Decision::Forward(permit) => {
                if !prepare_only {
                    self.allowed += 1;
                }
                Ok(permit.seq())
            }
            Decision::Deny(d) => {
                self.denied += 1;
                Err(d.message)
            }
        }
    }

    /// Records a command Sluice refuses before any verdict.
    async fn refuse_command(&mut self, text: &str, reason: &str) {
        let facts = StatementFacts::unknown(text, reason);
        let refusal = Refusal {
            protocol: "mysql".into(),
            statements: vec![sluice_gate::record_of(text, &[facts], "")],
            rule: "protocol".into(),
            reason: reason.into(),
            masked_column: None,
        };
        self.gate.refuse(refusal, String::new()).await;
        self.denied += 1;
    }

    /// A use of a masked column that result masking cannot protect. The
    /// database's views are read again first when the statement names a
    /// relation the session has not seen (a view made since it began).
    async fn masked_violation(
        &mut self,
        stmt: &Stmt,
        backend: &mut Backend,
    ) -> Result<Option<(String, String)>, Fatal> {
        let Some(m) = &self.masking else {
            return Ok(None);
        };
        if m.rules.patterns.is_empty() {
            return Ok(None);
        }
        let unseen = crate::bypass::relations(&stmt.text)
            .iter()
            .any(|r| !self.catalog.contains(&r.to_ascii_lowercase()));
        if unseen {
            self.learn_catalog(backend).await?;
        }
        let m = self.masking.as_ref().expect("checked above");
        Ok(crate::bypass::violation(&stmt.text, &m.rules))
    }

    /// Reads the database's tables and views, and which views read masked
    /// columns. A view whose definition cannot be read counts as one.
    async fn learn_catalog(&mut self, backend: &mut Backend) -> Result<(), Fatal> {
        let Some(m) = &mut self.masking else {
            return Ok(());
        };
        if m.rules.patterns.is_empty() {
            return Ok(());
        }
        let rows = backend
            .query_rows(
                "SELECT t.TABLE_NAME, t.TABLE_TYPE, v.VIEW_DEFINITION \
                 FROM information_schema.TABLES t LEFT JOIN information_schema.VIEWS v \
                 ON v.TABLE_SCHEMA = t.TABLE_SCHEMA AND v.TABLE_NAME = t.TABLE_NAME \
                 WHERE t.TABLE_SCHEMA = DATABASE()",
            )
            .await
            .map_err(|e| Fatal::Backend(e.to_string()))?;
        self.catalog.clear();
        m.rules.masked_views.clear();
        for row in rows {
            let name = row.first().cloned().flatten().unwrap_or_default();
            let is_view = row.get(1).cloned().flatten().as_deref() == Some("VIEW");
            let definition = row.get(2).cloned().flatten().unwrap_or_default();
            let lower = name.to_ascii_lowercase();
            self.catalog.insert(lower.clone());
            self.catalog
                .insert(format!("{}.{lower}", m.database.to_ascii_lowercase()));
            if !is_view {
                continue;
            }
            let masked = if definition.trim().is_empty() {
                Some("(a view Sluice cannot read)".to_string())
            } else {
                crate::bypass::view_reads_masked(&definition, &m.rules)
            };
            if let Some(col) = masked {
                m.rules.masked_views.insert(lower.clone(), col.clone());
                m.rules
                    .masked_views
                    .insert(format!("{}.{lower}", m.database.to_ascii_lowercase()), col);
            }
        }
        Ok(())
    }

    async fn deny_masked(
        &mut self,
        stmt: Stmt,
        (column, message): (String, String),
        reply: u8,
        client: &mut BufStream<Stream>,
    ) -> Result<Next, Fatal> {
        let refusal = Refusal {
            protocol: "mysql".into(),
            statements: stmt.describe(),
            rule: "masking".into(),
            reason: message.clone(),
            masked_column: Some(column),
        };
        let d = self.gate.refuse(refusal, message).await;
        self.denied += 1;
        self.error(client, reply, er::DENIED, &d.message).await
    }

    async fn error(
        &mut self,
        client: &mut BufStream<Stream>,
        seq: u8,
        code: (u16, &str),
        message: &str,
    ) -> Result<Next, Fatal> {
        send(client, seq, &wire::err(code, message))
            .await
            .map_err(client_err)?;
        Ok(Next::Continue)
    }

    /// Records how a statement ended (joined to its decision by `seq`),
    /// and its first rows when the connection keeps them.
    fn completed(&self, seq: Option<u64>, started: Instant, outcome: &Outcome, stmt: &Stmt) {
        if self.conn.record_results == RecordResults::None {
            return;
        }
        let error = outcome.error.as_ref().map(|(code, message)| Failure {
            sqlstate: Some(code.clone()),
            message: Some(message.clone()),
        });
        let done = Completed {
            seq: seq.unwrap_or(0),
            index: 0,
            protocol: "mysql".into(),
            outcome: if error.is_some() { "error" } else { "ok" }.into(),
            command: stmt.facts.first().map(|f| f.command.clone()),
            rows: Some(outcome.rows.max(outcome.affected.unwrap_or(0))),
            duration_ms: started.elapsed().as_micros() as f64 / 1000.0,
            error,
            masked: outcome.masked.clone(),
            ..Completed::default()
        };
        let event = self
            .record
            .event(sluice_core::audit::EventKind::StatementCompleted)
            .detail(sluice_core::audit::detail::to_value(&done));
        if self.shared.audit.record_later(event).is_err() {
            tracing::warn!(session.id = %self.id, "a statement's outcome could not be recorded");
        }
        if let Some(kept) = &outcome.kept {
            let results = sluice_core::audit::detail::Results {
                seq: seq.unwrap_or(0),
                index: 0,
                columns: kept.columns.clone(),
                rows: kept.rows.clone(),
                truncated: kept.truncated,
                values_cut_at: kept.cut.then_some(sluice_gate::render::MAX_VALUE),
            };
            let event = self
                .record
                .event(sluice_core::audit::EventKind::StatementResults)
                .detail(sluice_core::audit::detail::to_value(&results));
            if self.shared.audit.record_later(event).is_err() {
                tracing::warn!(session.id = %self.id, "a statement's rows could not be recorded");
            }
        }
    }
}

/// The session's masking, unless none is configured or the holder is
/// exempt.
fn masking(conn: &ConnectionConfig, grant: &Grant) -> Option<Masking> {
    let config = conn.masking.as_ref()?;
    let masker = match sluice_mask::Masker::from_config(config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(conn.name = %conn.name, error = %e, "masking does not compile; masking with the defaults");
            sluice_mask::Masker::from_config(&Default::default()).ok()?
        }
    };
    if masker.is_exempt(&grant.identity_groups) {
        return None;
    }
    let patterns = config.column_patterns().unwrap_or_else(|e| {
        tracing::error!(conn.name = %conn.name, error = %e, "masking column rules do not parse");
        Vec::new()
    });
    Some(Masking {
        masker: Arc::new(masker),
        groups: grant.identity_groups.clone(),
        database: conn.database.clone(),
        rules: crate::bypass::Rules::new(patterns, &conn.database),
    })
}

fn stmt_id(body: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(body.get(..4)?.try_into().ok()?))
}

/// Sends a command to the backend, numbered 0 as every command is.
async fn forward_only(backend: &mut Backend, payload: &[u8]) -> Result<(), Fatal> {
    packet::write(&mut backend.io, 0, payload)
        .await
        .map(|_| ())
        .map_err(|e| Fatal::Backend(e.to_string()))
}

async fn send(client: &mut BufStream<Stream>, seq: u8, payload: &[u8]) -> std::io::Result<()> {
    packet::write(client, seq, payload).await.map(|_| ())
}

fn client_err(e: std::io::Error) -> Fatal {
    Fatal::Client(e.to_string())
}
