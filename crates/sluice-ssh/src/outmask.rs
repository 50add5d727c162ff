//! A command's output through the connection's value detectors
//! (`[connections.masking]`: cards, e-mails, keys and tokens…), streamed.
//! Output is held to the end of each line, so a value split across two
//! packets is seen whole; a line still open after [`IDLE`] (a prompt, a
//! progress bar) or longer than [`MAX_LINE`] is masked and passed as it
//! stands. This is a safeguard for what commands print, not a wall: a
//! command can print a value in a form no detector knows (encoded, split
//! over lines), which the record of the command shows.

use std::time::Duration;

use sluice_mask::{MaskStats, Masker};

/// How long an unfinished line is held.
pub const IDLE: Duration = Duration::from_millis(250);
/// The longest line held whole.
const MAX_LINE: usize = 64 * 1024;

/// One output stream's held bytes.
pub struct OutMask<'m> {
    masker: &'m Masker,
    held: Vec<u8>,
    pub stats: MaskStats,
}

impl<'m> OutMask<'m> {
    pub fn new(masker: &'m Masker) -> OutMask<'m> {
        OutMask {
            masker,
            held: Vec::new(),
            stats: masker.new_stats(),
        }
    }

    /// What of `data` may pass now: whole lines, masked.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(data);
        let cut = match self.held.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            None if self.held.len() >= MAX_LINE => self.held.len(),
            None => return Vec::new(),
        };
        let ready: Vec<u8> = self.held.drain(..cut).collect();
        self.mask(&ready)
    }

    /// Everything held, masked (an idle line, or the end of the stream).
    pub fn flush(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        self.mask(&held)
    }

    /// Adds what this stream masked, by detector, to `into`.
    pub fn count_into(&self, into: &mut std::collections::BTreeMap<String, u64>) {
        for (label, n) in self.stats.iter() {
            *into.entry(label.to_string()).or_insert(0) += n;
        }
    }

    /// Whether anything is held.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    fn mask(&mut self, text: &[u8]) -> Vec<u8> {
        if text.is_empty() {
            return Vec::new();
        }
        match self.masker.mask_text(text, &mut self.stats) {
            Some(v) => v.into_owned(),
            // The `null` style: the text is withheld.
            None => b"[withheld by sluice]\n".to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker() -> Masker {
        Masker::from_config(&sluice_core::config::MaskingConfig::default()).unwrap()
    }

    #[test]
    fn a_value_split_across_packets_is_caught() {
        let m = masker();
        let mut out = OutMask::new(&m);
        let mut shown = out.push(b"card: 4111 1111 ");
        assert!(shown.is_empty(), "held to the end of the line");
        shown.extend(out.push(b"1111 1111\nnext"));
        let text = String::from_utf8(shown).unwrap();
        assert!(!text.contains("4111 1111 1111 1111"), "{text}");
        assert!(text.ends_with('\n'));
        assert_eq!(out.flush(), b"next");
        assert!(out.stats.total() >= 1);
    }
}
