//! Counts of masked values per rule and detector, for audit: counts only,
//! never values.

use std::sync::Arc;

/// How many values were masked, by reason. Made by
/// [`Masker::new_stats`](crate::Masker::new_stats); cheap to bump (an index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskStats {
    labels: Arc<[String]>,
    counts: Vec<u64>,
}

impl MaskStats {
    pub(crate) fn new(labels: Arc<[String]>) -> Self {
        let counts = vec![0; labels.len()];
        Self { labels, counts }
    }

    pub(crate) fn bump(&mut self, reason: usize) {
        if let Some(c) = self.counts.get_mut(reason) {
            *c += 1;
        }
    }

    /// Total masked values (a value with two findings counts twice).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Non-zero counts with their labels: `detector:card`,
    /// `column:public.customers.ssn`, `name:*_token`, `binding`, `unresolved`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.labels
            .iter()
            .zip(&self.counts)
            .filter(|(_, c)| **c > 0)
            .map(|(l, c)| (l.as_str(), *c))
    }

    /// Adds another result's counts (from the same masker) to these.
    pub fn merge(&mut self, other: &MaskStats) {
        for (label, count) in other.iter() {
            if let Some(i) = self.labels.iter().position(|l| l == label) {
                self.counts[i] += count;
            }
        }
    }

    /// Resets every count to zero.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}
