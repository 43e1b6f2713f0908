//! Log sequence numbers: `binary(10)` values made of VLF sequence, block and slot, and the
//! per-database log that hands them out in increasing order.

/// cdc-core's LSN: one type for the crate family (ordering, bytes, text, increment).
pub(crate) use cdc_core::Lsn;

/// Reads a `binary(10)` value as an LSN; a shorter value is right-aligned like a number, a
/// longer one is none.
pub(crate) fn lsn_from_binary(b: &[u8]) -> Option<Lsn> {
    if b.len() > 10 {
        return None;
    }
    let mut out = [0u8; 10];
    out[10 - b.len()..].copy_from_slice(b);
    Some(Lsn::new(out))
}

/// An LSN as the simulator's messages show it: `00000027:0000075A:0005`, upper-case hex.
pub(crate) fn shown(lsn: Lsn) -> String {
    lsn.to_string().to_ascii_uppercase()
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
        let l = Lsn::from_parts(self.vlf, self.block, self.slot);
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
    fn text_form_order_and_binary_reading() {
        let a = Lsn::from_parts(0x27, 0x75A, 5);
        assert_eq!(shown(a), "00000027:0000075A:0005");
        assert!(Lsn::from_parts(0x27, 0x75B, 1) > a);
        assert!(Lsn::from_parts(0x28, 0, 0) > Lsn::from_parts(0x27, 0xFFFF_FFFF, 0xFFFF));
        assert_eq!(a.increment(), Lsn::from_parts(0x27, 0x75A, 6));
        assert_eq!(lsn_from_binary(&a.to_bytes()), Some(a));
        assert_eq!(lsn_from_binary(&[1]), Some(Lsn::from_parts(0, 0, 1)));
        assert_eq!(lsn_from_binary(&[0; 11]), None);
    }

    #[test]
    fn log_grows_and_commits_end_blocks() {
        let mut log = Log::default();
        let a = log.next();
        let b = log.next();
        let c = log.commit();
        let d = log.next();
        assert!(a < b && b < c && c < d);
        assert_eq!(&d.to_bytes()[..4], &c.to_bytes()[..4]);
        assert_ne!(
            &d.to_bytes()[4..8],
            &c.to_bytes()[4..8],
            "a commit closes the block"
        );
    }
}
