//! The small pieces of the MySQL protocol Sluice writes or reads itself:
//! OK and ERR packets, length-encoded integers and strings, the error
//! codes it answers with, and the capabilities it negotiates.

use mysql_common::constants::CapabilityFlags as F;

/// Commands (the first byte of a client packet after login).
pub mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0c;
    pub const PING: u8 = 0x0e;
    pub const CHANGE_USER: u8 = 0x11;
    pub const BINLOG_DUMP: u8 = 0x12;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1a;
    pub const SET_OPTION: u8 = 0x1b;
    pub const STMT_FETCH: u8 = 0x1c;
    pub const RESET_CONNECTION: u8 = 0x1f;
}

/// Error codes Sluice answers with, and their SQLSTATEs.
pub mod er {
    /// ER_ACCESS_DENIED_ERROR: a login refused.
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    /// ER_TABLEACCESS_DENIED_ERROR: a statement refused.
    pub const DENIED: (u16, &str) = (1142, "42000");
    /// ER_DBACCESS_DENIED_ERROR: another database.
    pub const DB_DENIED: (u16, &str) = (1044, "42000");
    /// ER_NOT_SUPPORTED_YET.
    pub const NOT_SUPPORTED: (u16, &str) = (1235, "42000");
    /// ER_UNKNOWN_COM_ERROR.
    pub const UNKNOWN_COMMAND: (u16, &str) = (1047, "08S01");
    /// ER_NET_PACKET_TOO_LARGE.
    pub const TOO_LARGE: (u16, &str) = (1153, "08S01");
    /// ER_CON_COUNT_ERROR: too many connections.
    pub const TOO_MANY: (u16, &str) = (1040, "08004");
    /// ER_CONNECTION_KILLED: the session ended.
    pub const KILLED: (u16, &str) = (1927, "70100");
    /// ER_UNKNOWN_ERROR: the gateway could not do it.
    pub const UNAVAILABLE: (u16, &str) = (1105, "HY000");
    /// ER_HANDSHAKE_ERROR.
    pub const HANDSHAKE: (u16, &str) = (1043, "08S01");
    /// ER_WRONG_VALUE_FOR_VAR.
    pub const WRONG_VALUE: (u16, &str) = (1231, "42000");
    /// ER_UNKNOWN_STMT_HANDLER.
    pub const UNKNOWN_STATEMENT: (u16, &str) = (1243, "HY000");
}

/// An ERR packet's payload.
pub fn err(code: (u16, &str), message: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(9 + message.len());
    p.push(0xff);
    p.extend_from_slice(&code.0.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(code.1.as_bytes());
    p.extend_from_slice(message.as_bytes());
    p
}

/// An OK packet's payload with no rows affected.
pub fn ok(status: u16) -> Vec<u8> {
    let mut p = vec![0x00, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

/// SERVER_STATUS_AUTOCOMMIT.
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// SERVER_MORE_RESULTS_EXISTS.
pub const STATUS_MORE_RESULTS: u16 = 0x0008;

/// Reads a length-encoded integer at `*at`, moving past it.
pub fn lenenc_int(buf: &[u8], at: &mut usize) -> Option<u64> {
    let first = *buf.get(*at)?;
    let (len, value) = match first {
        0..=0xfa => (1, first as u64),
        0xfc => (
            3,
            u16::from_le_bytes(buf.get(*at + 1..*at + 3)?.try_into().ok()?) as u64,
        ),
        0xfd => {
            let b = buf.get(*at + 1..*at + 4)?;
            (4, u32::from_le_bytes([b[0], b[1], b[2], 0]) as u64)
        }
        0xfe => (
            9,
            u64::from_le_bytes(buf.get(*at + 1..*at + 9)?.try_into().ok()?),
        ),
        _ => return None,
    };
    *at += len;
    Some(value)
}

/// Reads a length-encoded string at `*at`, moving past it.
pub fn lenenc_bytes<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(lenenc_int(buf, at)?).ok()?;
    let end = at.checked_add(len)?;
    let s = buf.get(*at..end)?;
    *at = end;
    Some(s)
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xfa => out.push(v as u8),
        0xfb..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_lenenc_int(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// What the gateway offers clients. Left out on purpose: LOCAL_FILES
/// (`LOAD DATA LOCAL` would read the agent's files), MULTI_STATEMENTS
/// (one statement per query, judged whole), COMPRESS, SESSION_TRACK,
/// QUERY_ATTRIBUTES and OPTIONAL_RESULTSET_METADATA (formats Sluice does
/// not read), IGNORE_SPACE (changes how names before `(` parse).
pub fn offered(tls: bool) -> F {
    let mut f = F::CLIENT_LONG_PASSWORD
        | F::CLIENT_FOUND_ROWS
        | F::CLIENT_LONG_FLAG
        | F::CLIENT_CONNECT_WITH_DB
        | F::CLIENT_PROTOCOL_41
        | F::CLIENT_INTERACTIVE
        | F::CLIENT_TRANSACTIONS
        | F::CLIENT_SECURE_CONNECTION
        | F::CLIENT_MULTI_RESULTS
        | F::CLIENT_PS_MULTI_RESULTS
        | F::CLIENT_PLUGIN_AUTH
        | F::CLIENT_CONNECT_ATTRS
        | F::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        | F::CLIENT_DEPRECATE_EOF;
    if tls {
        f |= F::CLIENT_SSL;
    }
    f
}

/// What must hold of a client's capabilities for Sluice to speak to it.
pub fn required() -> F {
    F::CLIENT_PROTOCOL_41 | F::CLIENT_SECURE_CONNECTION | F::CLIENT_PLUGIN_AUTH
}

/// A server greeting (protocol 10): `version`, `connection_id`, a 20-byte
/// `nonce`, the capabilities `caps`, utf8mb4, autocommit, and `plugin`.
pub(crate) fn greeting(
    version: &[u8],
    connection_id: u32,
    nonce: &[u8; 20],
    caps: F,
    plugin: &[u8],
) -> Vec<u8> {
    use mysql_common::proto::MySerialize;
    let mut first = [0u8; 8];
    first.copy_from_slice(&nonce[..8]);
    let mut second = nonce[8..].to_vec();
    second.push(0);
    let hello = mysql_common::packets::HandshakePacket::new(
        10,
        version,
        connection_id,
        first,
        Some(second),
        caps,
        45, // utf8mb4_general_ci
        mysql_common::constants::StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        Some(plugin),
    );
    let mut out = Vec::new();
    hello.serialize(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips() {
        for v in [
            0u64,
            250,
            251,
            65535,
            65536,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_lenenc_int(&mut b, v);
            let mut at = 0;
            assert_eq!(lenenc_int(&b, &mut at), Some(v));
            assert_eq!(at, b.len());
        }
        let mut at = 0;
        assert_eq!(lenenc_int(&[0xfc, 1], &mut at), None, "truncated");
        assert_eq!(lenenc_int(&[0xff], &mut at), None, "an ERR marker");
    }

    #[test]
    fn errors_carry_code_and_sqlstate() {
        let p = err(er::DENIED, "no");
        assert_eq!(&p[..9], b"\xff\x76\x04#42000");
    }
}
