//! RFC 5424 syslog over TCP (octet-counting framing, RFC 6587 §3.4.1) or
//! UDP (one datagram per event, RFC 5426). One message per event:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [sluice@32473 seq="…" kind="…" hash="…" v="1"] BOM{event JSON}
//! ```
//!
//! MSGID is the event kind; severity is warning (4) for `*.denied` and
//! `*.rejected`, notice (5) for `audit.truncated`, informational (6)
//! otherwise. 32473 is the documentation enterprise number (RFC 5612).
//! Over UDP a message longer than `max_message_bytes` is cut (at a character
//! boundary) and marked `truncated="1"`; over TCP messages are whole.

use sluice_core::config::audit::{SinkConfig, SyslogProtocol};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use super::config_error;
use crate::chain::SCHEMA_VERSION;
use crate::error::ExportError;
use crate::export::ExportEvent;

/// The SD-ID of Sluice's structured data element.
pub const SD_ID: &str = "sluice@32473";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const BOM: &str = "\u{feff}";

pub struct SyslogSink {
    protocol: SyslogProtocol,
    address: String,
    facility: u8,
    app_name: String,
    hostname: String,
    max_udp: usize,
    tcp: Option<TcpStream>,
    udp: Option<UdpSocket>,
}

impl SyslogSink {
    pub(super) fn from_config(c: &SinkConfig) -> Result<SyslogSink, ExportError> {
        let address = c
            .address
            .clone()
            .ok_or_else(|| config_error(c, "a syslog sink needs address"))?;
        Ok(SyslogSink {
            protocol: c.protocol(),
            address,
            facility: c.facility().code(),
            app_name: c.app_name().to_string(),
            hostname: c.hostname.clone().unwrap_or_else(local_hostname),
            max_udp: c.max_message_bytes(),
            tcp: None,
            udp: None,
        })
    }

    pub async fn deliver(&mut self, events: &[ExportEvent]) -> Result<(), ExportError> {
        let fail =
            |what: &str, e: std::io::Error| ExportError::Delivery(format!("syslog {what}: {e}"));
        let header = Header {
            facility: self.facility,
            hostname: &self.hostname,
            app_name: &self.app_name,
            procid: std::process::id(),
        };
        match self.protocol {
            SyslogProtocol::Tcp => {
                // One write per batch, framed so the collector can split it.
                let mut buf = Vec::new();
                for e in events {
                    let msg = format_rfc5424(&header, e, None);
                    buf.extend_from_slice(format!("{} ", msg.len()).as_bytes());
                    buf.extend_from_slice(&msg);
                }
                let stream = match self.tcp.as_mut() {
                    Some(s) => s,
                    None => {
                        let s = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            TcpStream::connect(&self.address),
                        )
                        .await
                        .map_err(|_| timed_out("connect"))?
                        .map_err(|e| fail("connect", e))?;
                        self.tcp.insert(s)
                    }
                };
                let written = tokio::time::timeout(WRITE_TIMEOUT, async {
                    stream.write_all(&buf).await?;
                    stream.flush().await
                })
                .await;
                match written {
                    Ok(Ok(())) => Ok(()),
                    // A broken connection is dropped and reopened on retry.
                    Ok(Err(e)) => {
                        self.tcp = None;
                        Err(fail("write", e))
                    }
                    Err(_) => {
                        self.tcp = None;
                        Err(timed_out("write"))
                    }
                }
            }
            SyslogProtocol::Udp => {
                let socket = match self.udp.as_mut() {
                    Some(s) => s,
                    None => {
                        let s = UdpSocket::bind(if self.address.starts_with('[') {
                            "[::]:0"
                        } else {
                            "0.0.0.0:0"
                        })
                        .await
                        .map_err(|e| fail("socket", e))?;
                        s.connect(&self.address)
                            .await
                            .map_err(|e| fail("connect", e))?;
                        self.udp.insert(s)
                    }
                };
                let mut sent = Ok(());
                for e in events {
                    let msg = format_rfc5424(&header, e, Some(self.max_udp));
                    if let Err(err) = socket.send(&msg).await {
                        sent = Err(fail("send", err));
                        break;
                    }
                }
                if sent.is_err() {
                    self.udp = None;
                }
                sent
            }
        }
    }
}

fn timed_out(what: &str) -> ExportError {
    ExportError::Delivery(format!("syslog {what} timed out"))
}

/// The fixed parts of every message's header.
pub struct Header<'a> {
    pub facility: u8,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: u32,
}

/// One RFC 5424 message; with `max`, cut to at most `max` bytes.
pub fn format_rfc5424(h: &Header<'_>, e: &ExportEvent, max: Option<usize>) -> Vec<u8> {
    let pri = h.facility as u32 * 8 + severity(&e.kind) as u32;
    let ts = chrono::DateTime::from_timestamp_millis(e.ts_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let msgid: String = e
        .kind
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let head = |truncated: bool| {
        format!(
            "<{pri}>1 {ts} {} {} {} {} [{SD_ID} seq=\"{}\" kind=\"{}\" hash=\"{}\" v=\"{SCHEMA_VERSION}\"{}] {BOM}",
            h.hostname,
            h.app_name,
            h.procid,
            if msgid.is_empty() { "-" } else { &msgid },
            e.seq,
            sd_escape(&e.kind),
            sd_escape(&e.hash),
            if truncated { " truncated=\"1\"" } else { "" },
        )
    };
    let body = e.line();
    let whole = head(false);
    match max {
        Some(max) if whole.len() + body.len() > max => {
            let head = head(true);
            let mut cut = max.saturating_sub(head.len()).min(body.len());
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            [head.as_bytes(), &body.as_bytes()[..cut]].concat()
        }
        _ => [whole.as_bytes(), body.as_bytes()].concat(),
    }
}

fn severity(kind: &str) -> u8 {
    if kind.ends_with(".denied") || kind.ends_with(".rejected") {
        4
    } else if kind == crate::retention::TRUNCATED_KIND {
        5
    } else {
        6
    }
}

/// PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]`.
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn local_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        "-".into()
    } else {
        name.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_udp_message_is_cut_at_a_character_and_marked() {
        let body = serde_json::json!({ "seq": 3, "detail": { "sql": "é".repeat(2000) } });
        let e = ExportEvent::from_row(&sluice_store::AuditRow {
            seq: 3,
            ts: 1_700_000_000_123,
            kind: "statement.denied".into(),
            grant_id: None,
            session_id: None,
            body: body.to_string(),
            prev_hash: "cd".repeat(32),
            hash: "ab".repeat(32),
        })
        .unwrap();
        let h = Header {
            facility: 4,
            hostname: "gw",
            app_name: "sluice",
            procid: 1,
        };
        let whole = format_rfc5424(&h, &e, None);
        assert!(whole.starts_with(b"<36>1 2023-11-14T22:13:20.123Z gw sluice 1 statement.denied "));
        let cut = format_rfc5424(&h, &e, Some(1000));
        assert!(cut.len() <= 1000 && cut.len() > 990);
        let text = std::str::from_utf8(&cut).expect("cut at a character boundary");
        assert!(text.contains(" truncated=\"1\"]"));
    }
}
