//! MySQL packets on a stream: a 3-byte length, a sequence number, the
//! payload. A payload of 2^24-1 bytes continues in the next packet; Sluice
//! joins them into one, up to a cap checked before anything is allocated,
//! and reads each with a deadline. Sequence numbers restart at each command;
//! each side's are tracked apart, since Sluice answers some commands itself.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest payload one packet carries; a longer one continues.
const MAX_CHUNK: usize = 0xff_ffff;

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("no packet within {0:?}")]
    Timeout(Duration),
    #[error("a packet of more than {cap} bytes (max_packet_bytes)")]
    TooLarge { cap: usize },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One packet's payload (joined when it continued) and the sequence number
/// of its last piece.
#[derive(Debug, Clone)]
pub struct Packet {
    pub seq: u8,
    pub payload: Vec<u8>,
}

impl Packet {
    /// The first byte (a command, or an OK/ERR/EOF marker), if any.
    pub fn first(&self) -> Option<u8> {
        self.payload.first().copied()
    }
}

/// Reads one packet of at most `cap` bytes, waiting at most `timeout` for
/// each piece (`None`: as long as it takes, for a client between commands).
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    cap: usize,
    timeout: Option<Duration>,
) -> Result<Packet, ReadError> {
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; 4];
        match timeout {
            Some(t) => tokio::time::timeout(t, r.read_exact(&mut header))
                .await
                .map_err(|_| ReadError::Timeout(t))?,
            None => r.read_exact(&mut header).await,
        }
        .map_err(closed)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let seq = header[3];
        if payload.len() + len > cap {
            return Err(ReadError::TooLarge { cap });
        }
        let start = payload.len();
        payload.resize(start + len, 0);
        let body = r.read_exact(&mut payload[start..]);
        match timeout {
            Some(t) => tokio::time::timeout(t, body)
                .await
                .map_err(|_| ReadError::Timeout(t))?,
            None => body.await,
        }
        .map_err(closed)?;
        if len < MAX_CHUNK {
            return Ok(Packet { seq, payload });
        }
    }
}

fn closed(e: std::io::Error) -> ReadError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ReadError::Closed
    } else {
        ReadError::Io(e)
    }
}

/// Appends `payload` as packets numbered from `seq` to `out`; the number
/// after the last one.
pub fn frame(out: &mut Vec<u8>, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        out.push(seq);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_CHUNK {
            return seq;
        }
    }
}

/// Writes `payload` as packets numbered from `seq`; the number after.
pub async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    let next = frame(&mut out, seq, payload);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_payload_is_split_and_joined() {
        let payload = vec![7u8; MAX_CHUNK + 10];
        let mut wire = Vec::new();
        let next = frame(&mut wire, 3, &payload);
        assert_eq!(next, 5);
        let p = read(&mut &wire[..], MAX_CHUNK * 2, None).await.unwrap();
        assert_eq!(p.payload, payload);
        assert_eq!(p.seq, 4);
    }

    #[tokio::test]
    async fn the_cap_is_checked_before_reading_the_body() {
        let mut wire = Vec::new();
        frame(&mut wire, 0, &[1u8; 100]);
        let e = read(&mut &wire[..4], 50, None).await.unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { cap: 50 }), "{e}");
    }

    #[tokio::test]
    async fn an_exact_chunk_needs_its_empty_follower() {
        let payload = vec![1u8; MAX_CHUNK];
        let mut wire = Vec::new();
        assert_eq!(frame(&mut wire, 0, &payload), 2, "an empty packet ends it");
        assert_eq!(wire.len(), MAX_CHUNK + 8);
    }
}
