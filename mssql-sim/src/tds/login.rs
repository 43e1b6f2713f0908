//! LOGIN7: the client's credentials and session options.

use std::fmt;

use crate::error::SimError;

/// The fields of a LOGIN7 message the simulator uses.
pub(crate) struct Login7 {
    pub(crate) tds_version: u32,
    pub(crate) packet_size: u32,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) app_name: String,
    pub(crate) database: String,
}

impl fmt::Debug for Login7 {
    // The password must never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login7")
            .field("tds_version", &format_args!("{:#x}", self.tds_version))
            .field("packet_size", &self.packet_size)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("app_name", &self.app_name)
            .field("database", &self.database)
            .finish()
    }
}

fn u32_at(p: &[u8], at: usize) -> Result<u32, SimError> {
    p.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| SimError::Protocol("login7: truncated".into()))
}

fn u16_at(p: &[u8], at: usize) -> Result<usize, SimError> {
    p.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
        .ok_or_else(|| SimError::Protocol("login7: truncated".into()))
}

fn utf16_field(p: &[u8], entry: usize, decode: fn(u8) -> u8) -> Result<String, SimError> {
    let off = u16_at(p, entry)?;
    let chars = u16_at(p, entry + 2)?;
    let bytes = p
        .get(off..off + chars * 2)
        .ok_or_else(|| SimError::Protocol("login7: field out of range".into()))?;
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([decode(c[0]), decode(c[1])]))
        .collect();
    String::from_utf16(&units).map_err(|_| SimError::Protocol("login7: invalid UTF-16".into()))
}

/// MS-TDS obfuscates the password: swap nibbles, then XOR 0xA5; this undoes it.
fn unscramble(b: u8) -> u8 {
    let x = b ^ 0xA5;
    x.rotate_left(4)
}

/// Parses a LOGIN7 payload.
pub(crate) fn parse(p: &[u8]) -> Result<Login7, SimError> {
    let ident = |b: u8| b;
    Ok(Login7 {
        tds_version: u32_at(p, 4)?,
        packet_size: u32_at(p, 8)?,
        user: utf16_field(p, 40, ident)?,
        password: utf16_field(p, 44, unscramble)?,
        app_name: utf16_field(p, 48, ident)?,
        database: utf16_field(p, 68, ident)?,
    })
}
