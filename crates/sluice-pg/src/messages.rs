//! Typed views over frontend messages, and the few backend messages Sluice
//! writes itself.
//!
//! A view borrows what the proxy must look at (SQL text, statement and portal
//! names) and the frame keeps the original bytes, so a message that passes
//! is forwarded exactly as the client sent it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Frame, take_cstr, take_i16};

/// A frontend message after authentication, as the proxy needs to see it.
#[derive(Debug, PartialEq, Eq)]
pub enum Frontend<'a> {
    Query {
        sql: &'a str,
    },
    Parse {
        name: &'a str,
        sql: &'a str,
    },
    Bind {
        portal: &'a str,
        statement: &'a str,
    },
    Execute {
        portal: &'a str,
    },
    Describe,
    /// Close of a statement (`portal: false`) or a portal, by name.
    Close {
        portal: bool,
        name: &'a str,
    },
    Sync,
    Flush,
    CopyData,
    CopyDone,
    CopyFail,
    FunctionCall,
    Terminate,
}

/// A frontend message that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} message")]
pub struct Malformed {
    pub what: &'static str,
}

fn bad(what: &'static str) -> Malformed {
    Malformed { what }
}

impl<'a> Frontend<'a> {
    /// Reads the parts of `frame` the proxy needs; unknown tags are malformed.
    pub fn parse(frame: &'a Frame) -> Result<Self, Malformed> {
        let mut body = frame.body();
        let b = &mut body;
        Ok(match frame.tag {
            b'Q' => Frontend::Query {
                sql: take_cstr(b).ok_or(bad("Query"))?,
            },
            b'P' => Frontend::Parse {
                name: take_cstr(b).ok_or(bad("Parse"))?,
                sql: take_cstr(b).ok_or(bad("Parse"))?,
            },
            b'B' => Frontend::Bind {
                portal: take_cstr(b).ok_or(bad("Bind"))?,
                statement: take_cstr(b).ok_or(bad("Bind"))?,
            },
            b'E' => Frontend::Execute {
                portal: take_cstr(b).ok_or(bad("Execute"))?,
            },
            b'D' => Frontend::Describe,
            b'C' => {
                let kind = b.first().copied().ok_or(bad("Close"))?;
                *b = &b[1..];
                let name = take_cstr(b).ok_or(bad("Close"))?;
                match kind {
                    b'S' => Frontend::Close {
                        portal: false,
                        name,
                    },
                    b'P' => Frontend::Close { portal: true, name },
                    _ => return Err(bad("Close")),
                }
            }
            b'S' => Frontend::Sync,
            b'H' => Frontend::Flush,
            b'd' => Frontend::CopyData,
            b'c' => Frontend::CopyDone,
            b'f' => Frontend::CopyFail,
            b'F' => Frontend::FunctionCall,
            b'X' => Frontend::Terminate,
            _ => return Err(bad("unknown")),
        })
    }
}

/// The startup packets a client may open with.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel {
        pid: i32,
        secret: i32,
    },
    Startup {
        minor: u16,
        params: Vec<(String, String)>,
    },
}

/// Request codes of the untagged startup packets.
const SSL_REQUEST: i32 = 80877103;
const GSSENC_REQUEST: i32 = 80877104;
const CANCEL_REQUEST: i32 = 80877102;

impl StartupPacket {
    pub fn parse(frame: &Frame) -> Result<Self, Malformed> {
        let mut body = frame.body();
        let b = &mut body;
        let code = crate::codec::take_i32(b).ok_or(bad("startup"))?;
        Ok(match code {
            SSL_REQUEST => StartupPacket::Ssl,
            GSSENC_REQUEST => StartupPacket::GssEnc,
            CANCEL_REQUEST => {
                let pid = crate::codec::take_i32(b).ok_or(bad("CancelRequest"))?;
                let secret = crate::codec::take_i32(b).ok_or(bad("CancelRequest"))?;
                StartupPacket::Cancel { pid, secret }
            }
            v if v >> 16 == 3 => StartupPacket::Startup {
                minor: (v & 0xffff) as u16,
                params: startup_params(b)?,
            },
            _ => return Err(bad("startup")),
        })
    }
}

fn startup_params(b: &mut &[u8]) -> Result<Vec<(String, String)>, Malformed> {
    let mut params = Vec::new();
    loop {
        let key = take_cstr(b).ok_or(bad("StartupMessage"))?;
        if key.is_empty() {
            return Ok(params);
        }
        let value = take_cstr(b).ok_or(bad("StartupMessage"))?;
        params.push((key.to_string(), value.to_string()));
    }
}

/// Builds a backend message: tag, length, body.
fn message(tag: u8, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_u8(tag);
    buf.put_i32(0);
    body(&mut buf);
    let len = (buf.len() - 1) as i32;
    buf[1..5].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

fn put_cstr(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}

/// AuthenticationOk, or any other `R` with a 4-byte code and payload.
pub fn authentication(code: i32, payload: &[u8]) -> Bytes {
    message(b'R', |b| {
        b.put_i32(code);
        b.put_slice(payload);
    })
}

pub const AUTH_OK: i32 = 0;
pub const AUTH_CLEARTEXT: i32 = 3;
pub const AUTH_SASL: i32 = 10;
pub const AUTH_SASL_CONTINUE: i32 = 11;
pub const AUTH_SASL_FINAL: i32 = 12;

/// BackendKeyData with the key Sluice gave this client.
pub fn backend_key_data(pid: i32, secret: i32) -> Bytes {
    message(b'K', |b| {
        b.put_i32(pid);
        b.put_i32(secret);
    })
}

/// ReadyForQuery with a transaction status (`I`, `T` or `E`).
pub fn ready_for_query(status: u8) -> Bytes {
    message(b'Z', |b| b.put_u8(status))
}

/// NegotiateProtocolVersion: Sluice speaks 3.0 and no `_pq_` options.
pub fn negotiate_protocol(unsupported: &[&str]) -> Bytes {
    message(b'v', |b| {
        b.put_i32(0);
        b.put_i32(unsupported.len() as i32);
        for opt in unsupported {
            put_cstr(b, opt);
        }
    })
}

/// A simple Query message (for Sluice's own statements to the backend).
pub fn query(sql: &str) -> Bytes {
    message(b'Q', |b| put_cstr(b, sql))
}

/// A Parse frame with its SQL replaced by the empty string, name and
/// parameter types kept: what Sluice sends for a statement its analysis
/// found empty, so nothing can run if the server's lexer disagreed.
pub fn parse_emptied(frame: &Frame) -> Option<Frame> {
    let mut body = frame.body();
    let b = &mut body;
    let name = take_cstr(b)?;
    take_cstr(b)?;
    let rest = *b;
    let bytes = message(b'P', |out| {
        put_cstr(out, name);
        put_cstr(out, "");
        out.put_slice(rest);
    });
    Some(Frame { tag: b'P', bytes })
}

/// A Flush: the backend sends what it has queued (no answer of its own).
pub fn flush() -> Bytes {
    message(b'H', |_| {})
}

/// A Parse of the unnamed statement.
pub fn parse_unnamed(sql: &str) -> Bytes {
    message(b'P', |b| {
        put_cstr(b, "");
        put_cstr(b, sql);
        b.put_i16(0);
    })
}

/// A Describe of a portal (Sluice's own, before a masked Execute: its
/// RowDescription carries the result's actual format codes).
pub fn describe_portal(portal: &str) -> Bytes {
    message(b'D', |b| {
        b.put_u8(b'P');
        put_cstr(b, portal);
    })
}

/// An ErrorResponse (or NoticeResponse with tag `N`) with severity, SQLSTATE
/// and message.
pub fn error_response(severity: &str, code: &str, text: &str) -> Bytes {
    message(b'E', |b| {
        b.put_u8(b'S');
        put_cstr(b, severity);
        b.put_u8(b'V');
        put_cstr(b, severity);
        b.put_u8(b'C');
        put_cstr(b, code);
        b.put_u8(b'M');
        put_cstr(b, text);
        b.put_u8(0);
    })
}

/// A NoticeResponse the client may receive at any time (a held statement's
/// approval id and where to approve it).
pub fn notice_response(text: &str) -> Bytes {
    message(b'N', |b| {
        b.put_u8(b'S');
        put_cstr(b, "NOTICE");
        b.put_u8(b'V');
        put_cstr(b, "NOTICE");
        b.put_u8(b'C');
        put_cstr(b, "00000");
        b.put_u8(b'M');
        put_cstr(b, text);
        b.put_u8(0);
    })
}

/// Longest parameter value shown to an approver; longer values are cut.
const MAX_SHOWN_PARAMETER: usize = 1024;

/// The parameter values of a Bind, as text for an approver: text-format
/// values as they are, binary ones as `\x…` hex. `None` when malformed.
pub fn bind_parameters(frame: &Frame) -> Option<Vec<Option<String>>> {
    let mut b = frame.body();
    let body = &mut b;
    take_cstr(body)?;
    take_cstr(body)?;
    let nformats = take_i16(body)?.max(0) as usize;
    let mut formats = Vec::with_capacity(nformats.min(1024));
    for _ in 0..nformats {
        formats.push(take_i16(body)?);
    }
    let nparams = take_i16(body)?.max(0) as usize;
    let mut out = Vec::with_capacity(nparams.min(1024));
    for i in 0..nparams {
        let len = crate::codec::take_i32(body)?;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if body.len() < len {
            return None;
        }
        let (value, rest) = body.split_at(len);
        *body = rest;
        let binary = match formats.len() {
            0 => false,
            1 => formats[0] == 1,
            _ => formats.get(i).copied() == Some(1),
        };
        out.push(Some(show_parameter(value, binary)));
    }
    Some(out)
}

fn show_parameter(value: &[u8], binary: bool) -> String {
    let cut = &value[..value.len().min(MAX_SHOWN_PARAMETER)];
    // Binary text types (text, varchar) are their UTF-8 bytes: show them as
    // text when they read as such; anything else as hex.
    let readable = std::str::from_utf8(cut)
        .ok()
        .filter(|t| !t.is_empty() && !t.chars().any(char::is_control));
    let mut s = match (binary, readable) {
        (true, None) => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("\\x{hex}")
        }
        (true, Some(t)) => t.to_string(),
        (false, _) => String::from_utf8_lossy(cut).into_owned(),
    };
    if value.len() > cut.len() {
        s.push('…');
    }
    s
}

/// The fields of an ErrorResponse/NoticeResponse body, by field code.
pub fn error_fields(body: &[u8]) -> Vec<(u8, &str)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        rest = tail;
        match take_cstr(&mut rest) {
            Some(v) => out.push((code, v)),
            None => break,
        }
    }
    out
}

/// Reads `Parse`'s parameter-type count, so a truncated message is caught.
pub fn parse_param_count(frame: &Frame) -> Option<i16> {
    let mut body = frame.body();
    take_cstr(&mut body)?;
    take_cstr(&mut body)?;
    take_i16(&mut body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_tagged;

    fn frame(bytes: Bytes) -> Frame {
        let mut buf = BytesMut::from(&bytes[..]);
        decode_tagged(&mut buf, 1 << 20).unwrap().unwrap()
    }

    #[test]
    fn views_read_names_and_sql() {
        let f = frame(parse_unnamed("select 1"));
        assert_eq!(
            Frontend::parse(&f).unwrap(),
            Frontend::Parse {
                name: "",
                sql: "select 1"
            }
        );
        assert_eq!(parse_param_count(&f), Some(0));
        let f = frame(query("select 2"));
        assert_eq!(
            Frontend::parse(&f).unwrap(),
            Frontend::Query { sql: "select 2" }
        );
    }

    #[test]
    fn truncated_and_unknown_messages_are_malformed() {
        let f = frame(message(b'Q', |b| b.put_slice(b"no terminator")));
        assert!(Frontend::parse(&f).is_err());
        let f = frame(message(b'?', |_| {}));
        assert!(Frontend::parse(&f).is_err());
        let f = frame(message(b'C', |b| b.put_slice(b"Xname\0")));
        assert!(Frontend::parse(&f).is_err());
    }

    #[test]
    fn error_response_round_trips() {
        let f = frame(error_response("ERROR", "42501", "sluice: no"));
        let fields = error_fields(f.body());
        assert!(fields.contains(&(b'C', "42501")));
        assert!(fields.contains(&(b'M', "sluice: no")));
    }
}
