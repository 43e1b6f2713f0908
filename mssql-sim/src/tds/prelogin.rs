//! PRELOGIN: the first exchange, where client and server agree on encryption.

use crate::error::SimError;

/// What the client asked for in its PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientPrelogin {
    /// ENCRYPT_OFF 0, ENCRYPT_ON 1, ENCRYPT_NOT_SUP 2, ENCRYPT_REQ 3.
    pub(crate) encryption: u8,
}

pub(crate) const ENCRYPT_OFF: u8 = 0;
pub(crate) const ENCRYPT_ON: u8 = 1;
pub(crate) const ENCRYPT_NOT_SUP: u8 = 2;
pub(crate) const ENCRYPT_REQ: u8 = 3;

/// Parses the option table of a client PRELOGIN.
pub(crate) fn parse(payload: &[u8]) -> Result<ClientPrelogin, SimError> {
    let mut pos = 0;
    let mut encryption = ENCRYPT_NOT_SUP;
    loop {
        let token = *payload
            .get(pos)
            .ok_or_else(|| SimError::Protocol("prelogin: missing terminator".into()))?;
        if token == 0xff {
            break;
        }
        let entry = payload
            .get(pos + 1..pos + 5)
            .ok_or_else(|| SimError::Protocol("prelogin: truncated option".into()))?;
        let offset = u16::from_be_bytes([entry[0], entry[1]]) as usize;
        let len = u16::from_be_bytes([entry[2], entry[3]]) as usize;
        if token == 1 && len >= 1 {
            encryption = *payload
                .get(offset)
                .ok_or_else(|| SimError::Protocol("prelogin: bad encryption offset".into()))?;
        }
        pos += 5;
    }
    Ok(ClientPrelogin { encryption })
}

/// Builds the server's PRELOGIN answer with the chosen encryption byte.
pub(crate) fn response(encryption: u8) -> Vec<u8> {
    // VERSION (6 bytes), ENCRYPTION (1), INSTOPT (1: valid), THREADID (0), MARS (1)
    let options: [(u8, Vec<u8>); 5] = [
        (0, vec![16, 0, 0x03, 0xE8, 0, 0]), // 16.0.1000 (SQL Server 2022)
        (1, vec![encryption]),
        (2, vec![0]),
        (3, vec![]),
        (4, vec![0]),
    ];
    let mut header = Vec::new();
    let mut data = Vec::new();
    let mut offset = options.len() * 5 + 1;
    for (tok, d) in &options {
        header.push(*tok);
        header.extend_from_slice(&(offset as u16).to_be_bytes());
        header.extend_from_slice(&(d.len() as u16).to_be_bytes());
        offset += d.len();
        data.extend_from_slice(d);
    }
    header.push(0xff);
    header.extend_from_slice(&data);
    header
}
