//! A file read over SFTP through the connection's value detectors.
//!
//! SFTP reads are random access by offset, and masking changes lengths
//! (a value may become shorter, longer or `[withheld by sluice]`), so a
//! masked file's offsets are not the host's. Sluice therefore reads the
//! whole file from the host at the first read of a handle, masks it as
//! command output is masked (line by line, so a value is seen whole
//! wherever the client's reads cut it) and answers every read from the
//! masked copy. The copy is bounded by [`MAX_FILE`]; a larger file is
//! refused with the reason rather than passed unmasked, and one session
//! holds at most [`MAX_OPEN`] copies at a time.

use std::collections::BTreeMap;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as ClientError;
use russh_sftp::protocol::StatusCode;
use sluice_mask::Masker;

use crate::outmask::OutMask;

/// The largest file masked whole.
pub const MAX_FILE: usize = 16 * 1024 * 1024;
/// Masked copies held at once by one sftp session.
pub const MAX_OPEN: usize = 4;
/// Bytes asked of the host per read (OpenSSH's own read size).
const CHUNK: u32 = 32 * 1024;

/// A file's masked contents and what was masked in it.
pub struct MaskedFile {
    pub bytes: Vec<u8>,
    pub masked: BTreeMap<String, u64>,
}

impl MaskedFile {
    /// Up to `len` bytes from `offset`, or `None` at the end of the file.
    pub fn read(&self, offset: u64, len: u32) -> Option<Vec<u8>> {
        let start = usize::try_from(offset).ok()?;
        if start >= self.bytes.len() {
            return None;
        }
        let end = start.saturating_add(len as usize).min(self.bytes.len());
        Some(self.bytes[start..end].to_vec())
    }
}

/// Why a file could not be read masked.
pub enum LoadError {
    /// The host refused a read.
    Host(ClientError),
    /// The file is larger than [`MAX_FILE`].
    TooLarge,
}

impl LoadError {
    /// The refusal's words for the agent.
    pub fn too_large_message() -> String {
        format!(
            "sluice: files are masked whole and this one is over {} MiB; \
             read it with a command (its output is masked as it streams), \
             or ask for a grant exempt from masking",
            MAX_FILE / (1024 * 1024)
        )
    }
}

/// Reads the file behind `handle` from the host and masks it.
pub async fn load(
    raw: &RawSftpSession,
    handle: &str,
    masker: &Masker,
) -> Result<MaskedFile, LoadError> {
    let mut mask = OutMask::new(masker);
    let mut bytes = Vec::new();
    let mut offset = 0u64;
    loop {
        let data = match raw.read(handle, offset, CHUNK).await {
            Ok(d) => d.data,
            Err(ClientError::Status(s)) if s.status_code == StatusCode::Eof => break,
            Err(e) => return Err(LoadError::Host(e)),
        };
        if data.is_empty() {
            break;
        }
        offset += data.len() as u64;
        if offset > MAX_FILE as u64 {
            return Err(LoadError::TooLarge);
        }
        bytes.extend(mask.push(&data));
    }
    bytes.extend(mask.flush());
    let mut masked = BTreeMap::new();
    mask.count_into(&mut masked);
    Ok(MaskedFile { bytes, masked })
}
