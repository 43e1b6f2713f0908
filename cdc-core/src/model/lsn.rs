//! SQL Server's log sequence number: ten bytes ordered as unsigned bytes, written as Debezium
//! writes it (`00000027:00000758:0005`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A SQL Server log sequence number: `binary(10)`, ordered as unsigned bytes.
///
/// Its text form is three hex groups of 8, 8 and 4 digits (virtual log file, block, slot), the
/// form Debezium writes in `commit_lsn` and `change_lsn`.
///
/// ```
/// use cdc_core::Lsn;
/// let lsn: Lsn = "00000027:00000758:0005".parse().unwrap();
/// assert_eq!(lsn.to_string(), "00000027:00000758:0005");
/// assert!(lsn < lsn.increment());
/// assert_eq!(Lsn::from_bytes(&lsn.to_bytes()), Some(lsn));
/// assert_eq!(format!("{lsn:?}"), "Lsn(00000027:00000758:0005)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Lsn([u8; 10]);

/// `Lsn(00000027:000007a8:0005)`: logs and `{:?}` of checkpoints show the form SQL Server
/// tools show, not ten decimal bytes.
impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({self})")
    }
}

impl Lsn {
    /// The lowest LSN, below every real one.
    pub const ZERO: Lsn = Lsn([0; 10]);
    /// The highest LSN.
    pub const MAX: Lsn = Lsn([0xff; 10]);

    /// An LSN from its ten bytes as SQL Server stores them.
    pub const fn new(bytes: [u8; 10]) -> Self {
        Lsn(bytes)
    }

    /// An LSN from a byte slice; `None` unless it is exactly ten bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 10]>::try_from(bytes).ok().map(Lsn)
    }

    /// An LSN from its three parts: virtual log file, block and slot.
    pub fn from_parts(vlf: u32, block: u32, slot: u16) -> Self {
        let mut b = [0u8; 10];
        b[..4].copy_from_slice(&vlf.to_be_bytes());
        b[4..8].copy_from_slice(&block.to_be_bytes());
        b[8..].copy_from_slice(&slot.to_be_bytes());
        Lsn(b)
    }

    /// The ten bytes, as `binary(10)`.
    pub const fn to_bytes(self) -> [u8; 10] {
        self.0
    }

    /// The next LSN in byte order, like `sys.fn_cdc_increment_lsn`; saturates at [`Lsn::MAX`].
    pub fn increment(self) -> Self {
        let n = u128::from_be_bytes(widen(self.0));
        if n >= (1u128 << 80) - 1 {
            return Lsn::MAX;
        }
        narrow(n + 1)
    }

    /// The text form, built on the stack: per-event writers use it where `to_string` would
    /// allocate and go through the formatting machinery.
    ///
    /// ```
    /// use cdc_core::Lsn;
    /// let lsn = Lsn::from_parts(0x27, 0x758, 5);
    /// assert_eq!(lsn.text().as_str(), "00000027:00000758:0005");
    /// ```
    pub fn text(&self) -> LsnText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b':'; 22];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if i == 4 || i == 8 {
                at += 1; // the ':' already there
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        LsnText(out)
    }

    /// The previous LSN, like `sys.fn_cdc_decrement_lsn`; saturates at [`Lsn::ZERO`].
    pub fn decrement(self) -> Self {
        let n = u128::from_be_bytes(widen(self.0));
        narrow(n.saturating_sub(1))
    }
}

/// An LSN's text form on the stack; see [`Lsn::text`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LsnText([u8; 22]);

impl LsnText {
    /// The text, `00000027:00000758:0005`.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and ':' are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for LsnText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

fn widen(b: [u8; 10]) -> [u8; 16] {
    let mut w = [0u8; 16];
    w[6..].copy_from_slice(&b);
    w
}

fn narrow(n: u128) -> Lsn {
    let w = n.to_be_bytes();
    let mut b = [0u8; 10];
    b.copy_from_slice(&w[6..]);
    Lsn(b)
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.text().as_str())
    }
}

/// The text was not an LSN of the form `00000027:00000758:0005`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an LSN (expected 8:8:4 hex digits such as 00000027:00000758:0005): {0:?}")]
pub struct ParseLsnError(String);

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseLsnError(s.to_string());
        let mut parts = s.split(':');
        let (Some(a), Some(b), Some(c), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        let hex = |p: &str, len: usize| {
            if p.len() == len && p.bytes().all(|c| c.is_ascii_hexdigit()) {
                u32::from_str_radix(p, 16).map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let slot = u16::try_from(hex(c, 4)?).map_err(|_| err())?;
        Ok(Lsn::from_parts(hex(a, 8)?, hex(b, 8)?, slot))
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
