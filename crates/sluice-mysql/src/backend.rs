//! The backend connection: Sluice logs in to the MySQL or MariaDB server
//! with the credential it holds (`mysql_native_password` or
//! `caching_sha2_password`, switched as the server asks; full
//! authentication over TLS or the server's RSA key), with the
//! capabilities the client negotiated, then pins the session: `sql_mode`
//! without the modes that change how text is lexed or parsed, and a
//! read-only session for `read` grants.

use std::time::Duration;

use mysql_common::constants::CapabilityFlags as F;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse, SslRequest};
use mysql_common::proto::MySerialize;
use sluice_core::Profile;
use sluice_core::config::{ConnectionConfig, TlsMode};
use sluice_tls::Stream;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use crate::packet::{self, Packet};
use crate::wire;

/// How long connecting and logging in to the backend may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest packet read while logging in.
const LOGIN_MAX: usize = 1024 * 1024;

/// Why the backend could not be used. Never holds the credential.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connect to {0}: {1}")]
    Connect(String, String),
    #[error("the backend's TLS: {0}")]
    Tls(String),
    #[error("the backend refused the login: {0}")]
    Refused(String),
    #[error("the backend does not support {0}")]
    Unsupported(&'static str),
    #[error("the backend sent something unexpected: {0}")]
    Protocol(String),
    #[error("the connection's credential: {0}")]
    Credential(String),
    #[error("the backend timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A logged-in backend connection.
pub struct Backend {
    pub io: BufStream<Stream>,
    /// The backend's server version, for the record.
    pub version: String,
    /// The session speaks CLIENT_DEPRECATE_EOF.
    deprecate_eof: bool,
    /// The profile's statement time limit, set at session start.
    timeout: Option<Duration>,
}

/// Connects to `conn` and logs in for `profile` with the client's
/// capabilities `caps`.
pub async fn connect(
    conn: &ConnectionConfig,
    profile: Profile,
    caps: F,
) -> Result<Backend, BackendError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(conn, profile, caps))
        .await
        .map_err(|_| BackendError::Timeout)?
}

async fn connect_inner(
    conn: &ConnectionConfig,
    profile: Profile,
    caps: F,
) -> Result<Backend, BackendError> {
    let (user, password) = credential(conn, profile)?;
    let addr = format!("{}:{}", conn.host, conn.port());
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|e| BackendError::Connect(addr.clone(), e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let mut io = Stream::Plain(tcp);
    let greeting = Greeting::read(&mut io).await?;
    let tls = match conn.tls {
        TlsMode::Disable => None,
        _ => Some(Tls::for_backend(conn)?),
    };
    let (io, ours) = log_in(io, &greeting, (&user, &password), &conn.database, caps, tls).await?;
    let mut b = Backend {
        io: BufStream::new(io),
        version: greeting.version,
        deprecate_eof: ours.contains(F::CLIENT_DEPRECATE_EOF),
        timeout: conn.limits.statement_timeout.of(profile),
    };
    b.pin(profile).await?;
    Ok(b)
}

/// A server's greeting, read and parsed.
pub struct Greeting {
    /// The server's version string.
    pub version: String,
    /// The capabilities it offers.
    pub caps: F,
    nonce: Vec<u8>,
    plugin: AuthPlugin<'static>,
    server_version: (u16, u16, u16),
    seq: u8,
}

impl Greeting {
    /// The first packet of a connection: the greeting, or the server's
    /// refusal.
    pub async fn read(io: &mut Stream) -> Result<Greeting, BackendError> {
        let hello = packet::read(io, LOGIN_MAX, Some(CONNECT_TIMEOUT))
            .await
            .map_err(|e| BackendError::Protocol(e.to_string()))?;
        if hello.first() == Some(0xff) {
            return Err(BackendError::Refused(error_text(&hello.payload)));
        }
        let greeting = ParseBuf(&hello.payload)
            .parse::<HandshakePacket>(())
            .map_err(|e| BackendError::Protocol(format!("greeting: {e}")))?;
        Ok(Greeting {
            version: greeting.server_version_str().into_owned(),
            caps: greeting.capabilities(),
            nonce: greeting.nonce(),
            plugin: greeting
                .auth_plugin()
                .map(|p| p.into_owned())
                .unwrap_or(AuthPlugin::MysqlNativePassword),
            server_version: greeting
                .maria_db_server_version_parsed()
                .or_else(|| greeting.server_version_parsed())
                .unwrap_or((8, 0, 0)),
            seq: hello.seq,
        })
    }
}

/// How to start TLS with a server: the connector, and the name it checks.
pub struct Tls {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
}

impl Tls {
    /// Per the connection's `tls` mode and CA file.
    fn for_backend(conn: &ConnectionConfig) -> Result<Tls, BackendError> {
        let connector = sluice_tls::connector(conn.tls, conn.ca_file.as_deref())
            .map_err(|e| BackendError::Tls(e.0))?
            .ok_or_else(|| BackendError::Tls("no connector".into()))?;
        let name = sluice_tls::server_name(&conn.host).map_err(|e| BackendError::Tls(e.0))?;
        Ok(Tls { connector, name })
    }
}

/// Logs in as `user` with `password` after `greeting`, with the client's
/// capabilities `caps` (as far as the server offers them), over TLS when
/// `tls` says how; the stream and the capabilities in force.
pub async fn log_in(
    mut io: Stream,
    greeting: &Greeting,
    (user, password): (&str, &str),
    database: &str,
    caps: F,
    tls: Option<Tls>,
) -> Result<(Stream, F), BackendError> {
    let use_tls = tls.is_some();
    let server_caps = greeting.caps;
    let needed = caps & !F::CLIENT_SSL;
    if !server_caps.contains(needed & (F::CLIENT_DEPRECATE_EOF | F::CLIENT_PROTOCOL_41)) {
        return Err(BackendError::Unsupported(
            "the client's protocol (4.1 with CLIENT_DEPRECATE_EOF)",
        ));
    }
    // The same flags in the SSLRequest and the response that follows it
    // (the server checks): no connect attributes are sent.
    let mut ours = ((needed & server_caps) | F::CLIENT_CONNECT_WITH_DB) & !F::CLIENT_CONNECT_ATTRS;
    let mut seq = greeting.seq.wrapping_add(1);
    if let Some(tls) = tls {
        if !server_caps.contains(F::CLIENT_SSL) {
            return Err(BackendError::Tls("the server does not offer TLS".into()));
        }
        ours |= F::CLIENT_SSL;
        let mut req = Vec::new();
        SslRequest::new(ours, 16 * 1024 * 1024, 45).serialize(&mut req);
        seq = packet::write(&mut io, seq, &req).await?;
        io = start_tls(io, tls).await?;
    }
    let plugin = greeting.plugin.clone();
    let response_data = scramble(&plugin, &greeting.nonce, password.as_bytes());
    let response = HandshakeResponse::new(
        Some(response_data),
        greeting.server_version,
        Some(user.as_bytes()),
        Some(database.as_bytes()),
        Some(plugin.clone()),
        ours,
        None,
        16 * 1024 * 1024,
    );
    let mut out = Vec::new();
    response.serialize(&mut out);
    seq = packet::write(&mut io, seq, &out).await?;
    authenticate(
        &mut io,
        seq,
        plugin,
        greeting.nonce.clone(),
        password.as_bytes(),
        use_tls,
    )
    .await?;
    Ok((io, ours))
}

/// The user and password for `profile`: the read credential for `read`
/// grants when the connection has one.
fn credential(conn: &ConnectionConfig, profile: Profile) -> Result<(String, String), BackendError> {
    let (user, password) = match (&conn.read_credential, profile) {
        (Some(r), Profile::Read) => (r.user.clone(), r.password()),
        _ => (conn.user.clone(), conn.password()),
    };
    let password = password
        .map_err(BackendError::Credential)?
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    Ok((user, password))
}

async fn start_tls(io: Stream, tls: Tls) -> Result<Stream, BackendError> {
    let Stream::Plain(tcp) = io else {
        return Err(BackendError::Tls("TLS started twice".into()));
    };
    let stream = tls
        .connector
        .connect(tls.name, tcp)
        .await
        .map_err(|e| BackendError::Tls(e.to_string()))?;
    Ok(Stream::Client(Box::new(stream)))
}

/// A plugin's first answer to `nonce`.
fn scramble(plugin: &AuthPlugin<'_>, nonce: &[u8], password: &[u8]) -> Vec<u8> {
    use mysql_common::auth::plugins::caching_sha2_password::scramble_sha256;
    use mysql_common::auth::plugins::mysql_native_password::scramble_native;
    if password.is_empty() {
        return Vec::new();
    }
    match plugin {
        AuthPlugin::CachingSha2Password => {
            let mut n = [0u8; 20];
            let len = nonce.len().min(20);
            n[..len].copy_from_slice(&nonce[..len]);
            scramble_sha256(&n, password)
                .map(|s| s.to_vec())
                .unwrap_or_default()
        }
        _ => scramble_native(nonce, password)
            .map(|s| s.to_vec())
            .unwrap_or_default(),
    }
}

/// Follows the server's answers to the login until OK or ERR.
async fn authenticate(
    io: &mut Stream,
    mut seq: u8,
    mut plugin: AuthPlugin<'static>,
    mut nonce: Vec<u8>,
    password: &[u8],
    tls: bool,
) -> Result<(), BackendError> {
    for _ in 0..6 {
        let p = read(io).await?;
        seq = p.seq.wrapping_add(1);
        match p.first() {
            Some(0x00) => return Ok(()),
            Some(0xff) => return Err(BackendError::Refused(error_text(&p.payload))),
            Some(0xfe) => {
                // AuthSwitchRequest: the plugin's name, then its data.
                let rest = &p.payload[1..];
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                plugin = AuthPlugin::from_bytes(&rest[..end]).into_owned();
                let data = rest.get(end + 1..).unwrap_or(&[]);
                nonce = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                if !matches!(
                    plugin,
                    AuthPlugin::MysqlNativePassword | AuthPlugin::CachingSha2Password
                ) {
                    return Err(BackendError::Unsupported(
                        "the login plugin the server asked for",
                    ));
                }
                seq = packet::write(io, seq, &scramble(&plugin, &nonce, password)).await?;
            }
            Some(0x01) if plugin == AuthPlugin::CachingSha2Password => {
                match p.payload.get(1) {
                    // Fast authentication succeeded; OK follows.
                    Some(0x03) => continue,
                    Some(0x04) if tls => {
                        let mut clear = password.to_vec();
                        clear.push(0);
                        seq = packet::write(io, seq, &clear).await?;
                    }
                    Some(0x04) => {
                        packet::write(io, seq, &[0x02]).await?;
                        let key = read(io).await?;
                        seq = key.seq.wrapping_add(1);
                        let pem = key.payload.get(1..).unwrap_or(&[]);
                        let mut clear = password.to_vec();
                        clear.push(0);
                        for (i, b) in clear.iter_mut().enumerate() {
                            *b ^= nonce[i % nonce.len().max(1)];
                        }
                        let sealed = mysql_common::crypto::encrypt(&clear, pem)
                            .map_err(|e| BackendError::Protocol(format!("RSA key: {e}")))?;
                        seq = packet::write(io, seq, &sealed).await?;
                    }
                    _ => return Err(BackendError::Protocol("an unknown auth step".into())),
                }
            }
            _ => return Err(BackendError::Protocol("an unexpected login packet".into())),
        }
    }
    let _ = seq;
    Err(BackendError::Protocol("the login did not end".into()))
}

async fn read<R: tokio::io::AsyncRead + Unpin>(io: &mut R) -> Result<Packet, BackendError> {
    packet::read(io, LOGIN_MAX, Some(CONNECT_TIMEOUT))
        .await
        .map_err(|e| BackendError::Protocol(e.to_string()))
}

/// An ERR packet's message, for the operator's record.
pub fn error_text(payload: &[u8]) -> String {
    let code = payload
        .get(1..3)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let msg = if payload.get(3) == Some(&b'#') {
        payload.get(9..).unwrap_or(&[])
    } else {
        payload.get(3..).unwrap_or(&[])
    };
    format!("{code}: {}", String::from_utf8_lossy(msg))
}

/// sql_mode flags that change how the server lexes or parses text.
const LEXING_MODES: &[&str] = &[
    "ANSI_QUOTES",
    "NO_BACKSLASH_ESCAPES",
    "IGNORE_SPACE",
    "ANSI",
    "ORACLE",
    "MSSQL",
    "DB2",
    "POSTGRESQL",
    "MAXDB",
    "MYSQL323",
    "MYSQL40",
    "EMPTY_STRING_IS_NULL",
];

impl Backend {
    /// Pins what the analysis assumes: the server's own `sql_mode` without
    /// the lexing modes, a read-only session for `read` grants, and the
    /// profile's statement time limit (MariaDB's `max_statement_time`;
    /// MySQL's `max_execution_time`, which bounds `SELECT` only). Clients
    /// cannot change these (`SET` of each is refused or admin).
    pub async fn pin(&mut self, profile: Profile) -> Result<(), BackendError> {
        let mode = self.query_one("SELECT @@SESSION.sql_mode").await?;
        let kept: Vec<&str> = mode
            .split(',')
            .filter(|m| !m.is_empty() && !LEXING_MODES.contains(&m.trim()))
            .collect();
        self.exec(&format!("SET SESSION sql_mode = '{}'", kept.join(",")))
            .await?;
        if profile == Profile::Read {
            self.exec("SET SESSION TRANSACTION READ ONLY").await?;
        }
        if let Some(t) = self.timeout {
            let set = if self.version.contains("MariaDB") {
                format!("SET SESSION max_statement_time = {:.3}", t.as_secs_f64())
            } else {
                format!("SET SESSION max_execution_time = {}", t.as_millis())
            };
            self.exec(&set).await?;
        }
        Ok(())
    }

    /// After a statement that set `sql_mode`: the modes that change lexing
    /// it turned on, which are turned off again at once (the other modes
    /// it set are kept). Empty when there were none.
    pub async fn repin_sql_mode(&mut self) -> Result<Vec<String>, BackendError> {
        let mode = self.query_one("SELECT @@SESSION.sql_mode").await?;
        let (bad, kept): (Vec<&str>, Vec<&str>) = mode
            .split(',')
            .filter(|m| !m.is_empty())
            .partition(|m| LEXING_MODES.contains(&m.trim()));
        if !bad.is_empty() {
            self.exec(&format!("SET SESSION sql_mode = '{}'", kept.join(",")))
                .await?;
        }
        Ok(bad.into_iter().map(str::to_string).collect())
    }

    /// Runs a statement whose answer is OK.
    async fn exec(&mut self, sql: &str) -> Result<(), BackendError> {
        let mut q = vec![wire::com::QUERY];
        q.extend_from_slice(sql.as_bytes());
        packet::write(&mut self.io, 0, &q).await?;
        let p = read(&mut self.io).await?;
        match p.first() {
            Some(0x00) => Ok(()),
            Some(0xff) => Err(BackendError::Refused(error_text(&p.payload))),
            _ => Err(BackendError::Protocol(format!("{sql}: not an OK"))),
        }
    }

    /// The single text value a one-row, one-column query returns.
    async fn query_one(&mut self, sql: &str) -> Result<String, BackendError> {
        self.query_rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next().flatten())
            .ok_or_else(|| BackendError::Protocol(format!("{sql}: no value")))
    }

    /// The rows of a small query Sluice runs itself, as text.
    pub async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, BackendError> {
        let mut q = vec![wire::com::QUERY];
        q.extend_from_slice(sql.as_bytes());
        packet::write(&mut self.io, 0, &q).await?;
        let head = read(&mut self.io).await?;
        if head.first() == Some(0xff) {
            return Err(BackendError::Refused(error_text(&head.payload)));
        }
        let mut at = 0;
        let n = wire::lenenc_int(&head.payload, &mut at).unwrap_or(0) as usize;
        for _ in 0..n {
            read(&mut self.io).await?;
        }
        let mut rows = Vec::new();
        let mut skipped_eof = self.deprecate_eof;
        loop {
            let p = read(&mut self.io).await?;
            match p.first() {
                Some(0xfe) if p.payload.len() < 0xff_ffff => {
                    if skipped_eof {
                        return Ok(rows);
                    }
                    // The EOF after the columns (without DEPRECATE_EOF).
                    skipped_eof = true;
                }
                Some(0xff) => return Err(BackendError::Refused(error_text(&p.payload))),
                _ => {
                    let mut at = 0;
                    let mut row = Vec::with_capacity(n);
                    for _ in 0..n {
                        if p.payload.get(at) == Some(&0xfb) {
                            at += 1;
                            row.push(None);
                        } else {
                            let v = wire::lenenc_bytes(&p.payload, &mut at)
                                .ok_or_else(|| BackendError::Protocol("a malformed row".into()))?;
                            row.push(Some(String::from_utf8_lossy(v).into_owned()));
                        }
                    }
                    rows.push(row);
                }
            }
        }
    }
}
