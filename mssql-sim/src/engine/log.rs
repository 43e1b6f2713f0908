//! Log sequence numbers: `binary(10)` values made of VLF sequence, block and slot, and the
//! per-database log that hands them out in increasing order.

use std::fmt;

/// A log sequence number, compared as unsigned big-endian bytes like SQL Server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Lsn(pub [u8; 10]);

impl Lsn {
    /// The all-zero LSN (what `sys.fn_cdc_get_min_lsn` returns for an unknown instance).
    pub(crate) const ZERO: Lsn = Lsn([0; 10]);

    /// Builds an LSN from its three parts.
    pub(crate) fn new(vlf: u32, block: u32, slot: u16) -> Lsn {
        let mut b = [0u8; 10];
        b[..4].copy_from_slice(&vlf.to_be_bytes());
        b[4..8].copy_from_slice(&block.to_be_bytes());
        b[8..].copy_from_slice(&slot.to_be_bytes());
        Lsn(b)
    }

    /// The LSN as an 80-bit integer.
    pub(crate) fn to_u128(self) -> u128 {
        let mut a = [0u8; 16];
        a[6..].copy_from_slice(&self.0);
        u128::from_be_bytes(a)
    }

    /// Inverse of [`Lsn::to_u128`], saturating at the 80-bit maximum.
    pub(crate) fn from_u128(v: u128) -> Lsn {
        let v = v.min((1u128 << 80) - 1);
        let b = v.to_be_bytes();
        let mut out = [0u8; 10];
        out.copy_from_slice(&b[6..]);
        Lsn(out)
    }

    /// Reads a `binary(10)` value (shorter input is right-aligned like a number).
    pub(crate) fn from_slice(b: &[u8]) -> Option<Lsn> {
        if b.len() > 10 {
            return None;
        }
        let mut out = [0u8; 10];
        out[10 - b.len()..].copy_from_slice(b);
        Some(Lsn(out))
    }
}

impl fmt::Display for Lsn {
    /// The 8:8:4 hex text form, e.g. `00000027:00000758:0005`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08X}:{:08X}:{:04X}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            u16::from_be_bytes([b[8], b[9]])
        )
    }
}

/// A database's transaction log position generator.
#[derive(Debug, Clone)]
pub(crate) struct Log {
    vlf: u32,
    block: u32,
    slot: u16,
}

impl Default for Log {
    fn default() -> Self {
        // Real databases start well past zero; these match the look of a fresh database.
        Log {
            vlf: 0x27,
            block: 0x750,
            slot: 1,
        }
    }
}

impl Log {
    /// The next record's LSN.
    pub(crate) fn next(&mut self) -> Lsn {
        let l = Lsn::new(self.vlf, self.block, self.slot);
        if self.slot >= 0xFFF0 {
            self.new_block();
        } else {
            self.slot += 1;
        }
        l
    }

    /// A commit record ends a log block, so the next transaction starts on a new one.
    pub(crate) fn commit(&mut self) -> Lsn {
        let l = self.next();
        self.new_block();
        l
    }

    fn new_block(&mut self) {
        self.slot = 1;
        self.block += 8;
        if self.block >= 0x0010_0000 {
            self.vlf += 1;
            self.block = 0x10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_and_order() {
        let a = Lsn::new(0x27, 0x758, 5);
        assert_eq!(a.to_string(), "00000027:00000758:0005");
        assert!(Lsn::new(0x27, 0x759, 1) > a);
        assert!(Lsn::new(0x28, 0, 0) > Lsn::new(0x27, 0xFFFF_FFFF, 0xFFFF));
        assert_eq!(Lsn::from_u128(a.to_u128() + 1), Lsn::new(0x27, 0x758, 6));
        assert_eq!(Lsn::from_slice(&a.0), Some(a));
        assert_eq!(Lsn::from_slice(&[0; 11]), None);
    }

    #[test]
    fn log_grows_and_commits_end_blocks() {
        let mut log = Log::default();
        let a = log.next();
        let b = log.next();
        let c = log.commit();
        let d = log.next();
        assert!(a < b && b < c && c < d);
        assert_eq!(&d.0[..4], &c.0[..4]);
        assert_ne!(&d.0[4..8], &c.0[4..8], "a commit closes the block");
    }
}
