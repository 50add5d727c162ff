//! A raw PostgreSQL frontend for tests that need messages a driver will
//! not send (pipelined batches, odd names, a socket left mid-statement):
//! SCRAM login, one message at a time, simple queries.

use std::net::SocketAddr;
use std::time::Duration as StdDuration;

/// A logged-in raw socket (SCRAM-SHA-256, as Sluice and the test backends
/// both ask for), positioned after the first ReadyForQuery.
pub async fn raw_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
    database: &str,
) -> tokio::net::TcpStream {
    raw_startup(addr, &[("user", user), ("database", database)], password).await
}

/// [`raw_login`] with any startup parameters.
pub async fn raw_startup(
    addr: SocketAddr,
    params: &[(&str, &str)],
    password: &str,
) -> tokio::net::TcpStream {
    raw_greeting(addr, params, password).await.stream
}

/// A logged-in raw socket and what the startup told the client.
pub struct Greeting {
    pub stream: tokio::net::TcpStream,
    /// ParameterStatus messages, in order.
    pub parameters: Vec<(String, String)>,
    /// BackendKeyData: the client's cancel key.
    pub key: (i32, i32),
}

impl Greeting {
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// [`raw_startup`], keeping the parameters and cancel key it was sent.
pub async fn raw_greeting(addr: SocketAddr, params: &[(&str, &str)], password: &str) -> Greeting {
    match try_raw_greeting(addr, params, password).await {
        Ok(g) => g,
        Err(e) => panic!("login failed: {e}"),
    }
}

/// [`raw_greeting`], or the ErrorResponse (its SQLSTATE) that ended the
/// login after authentication.
pub async fn try_raw_greeting(
    addr: SocketAddr,
    params: &[(&str, &str)],
    password: &str,
) -> Result<Greeting, String> {
    use bytes::BytesMut;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
    use postgres_protocol::message::frontend;
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = BytesMut::new();
    frontend::startup_message(params.iter().copied(), &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let (tag, body) = read_message(&mut s).await;
    assert_eq!((tag, &body[..4]), (b'R', &10i32.to_be_bytes()[..]));
    buf.clear();
    frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let (_, body) = read_message(&mut s).await;
    scram.update(&body[4..]).unwrap();
    buf.clear();
    frontend::sasl_response(scram.message(), &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut parameters = Vec::new();
    let mut key = (0, 0);
    loop {
        let (tag, body) = read_message(&mut s).await;
        match tag {
            b'S' => {
                let mut parts = body
                    .split(|b| *b == 0)
                    .map(|p| String::from_utf8_lossy(p).to_string());
                let name = parts.next().unwrap();
                parameters.push((name, parts.next().unwrap()));
            }
            b'K' => {
                key = (
                    i32::from_be_bytes(body[..4].try_into().unwrap()),
                    i32::from_be_bytes(body[4..8].try_into().unwrap()),
                )
            }
            b'Z' => break,
            b'E' => {
                let text = String::from_utf8_lossy(&body).to_string();
                let code = text.split('\0').find_map(|f| f.strip_prefix('C'));
                return Err(code.unwrap_or("?").to_string());
            }
            _ => {}
        }
    }
    Ok(Greeting {
        stream: s,
        parameters,
        key,
    })
}

/// One backend message, or `None` when the connection closed (5 s at most).
pub async fn try_read_message(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let tag = s.read_u8().await.ok()?;
        let len = s.read_i32().await.ok()?;
        let mut body = vec![0u8; len as usize - 4];
        s.read_exact(&mut body).await.ok()?;
        Some((tag, body))
    };
    tokio::time::timeout(StdDuration::from_secs(5), read)
        .await
        .expect("a message within 5 s")
}

/// One backend message: its tag and body (5 s at most).
pub async fn read_message(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let read = async {
        let tag = s.read_u8().await.unwrap();
        let len = s.read_i32().await.unwrap();
        let mut body = vec![0u8; len as usize - 4];
        s.read_exact(&mut body).await.unwrap();
        (tag, body)
    };
    tokio::time::timeout(StdDuration::from_secs(5), read)
        .await
        .expect("a message within 5 s")
}

/// Runs `sql` as a simple Query; the DataRow texts, or the SQLSTATE.
pub async fn simple(s: &mut tokio::net::TcpStream, sql: &str) -> Result<Vec<String>, String> {
    use postgres_protocol::message::frontend;
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    frontend::query(sql, &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        // A session Sluice ends says why (a FATAL) and closes.
        let Some((tag, body)) = try_read_message(s).await else {
            return Err(error.unwrap_or_else(|| "closed".to_string()));
        };
        match tag {
            b'D' => {
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                rows.push(String::from_utf8_lossy(&body[6..6 + len as usize]).to_string());
            }
            b'E' => {
                let text = String::from_utf8_lossy(&body).to_string();
                let code = text.split('\0').find_map(|f| f.strip_prefix('C'));
                error = Some(code.unwrap_or("?").to_string());
            }
            b'Z' => return error.map_or(Ok(rows), Err),
            _ => {}
        }
    }
}
