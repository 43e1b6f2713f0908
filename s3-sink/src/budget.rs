//! One memory budget across every open file.

/// Bytes held by open files, against a limit. When the total exceeds the limit the sink
/// closes the largest open file first (it frees the most for one upload) until it fits.
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    limit: usize,
    used: usize,
    peak: usize,
}

impl MemoryBudget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            peak: 0,
        }
    }

    /// Replaces one file's share, `old` bytes, by `new` bytes.
    pub(crate) fn update(&mut self, old: usize, new: usize) {
        self.used = self.used.saturating_sub(old).saturating_add(new);
        self.peak = self.peak.max(self.used);
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.used > self.limit
    }

    pub(crate) fn used(&self) -> usize {
        self.used
    }

    pub(crate) fn peak(&self) -> usize {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_use_and_peak() {
        let mut b = MemoryBudget::new(100);
        b.update(0, 60);
        b.update(0, 50);
        assert!(b.exceeded());
        b.update(60, 0);
        assert!(!b.exceeded());
        assert_eq!((b.used(), b.peak()), (50, 110));
    }
}
