//! RPC requests (MS-TDS 2.2.6.6): `sp_executesql` as tiberius sends it, and procedure
//! calls by name.

use crate::error::SimError;
use crate::tds::types::{Reader, read_typed_value};
use crate::value::{SqlType, Value};

/// A decoded RPC parameter.
#[derive(Debug, Clone)]
pub(crate) struct RpcParam {
    /// Name including `@`, or empty for positional parameters.
    pub(crate) name: String,
    pub(crate) ty: Option<SqlType>,
    pub(crate) value: Value,
}

/// A decoded RPC request.
#[derive(Debug)]
pub(crate) struct RpcRequest {
    /// Procedure name (well-known ids are mapped to their names, e.g. 10 → sp_executesql).
    pub(crate) proc_name: String,
    pub(crate) params: Vec<RpcParam>,
}

/// Skips ALL_HEADERS, which starts the payload of SQL_BATCH and RPC messages.
pub(crate) fn skip_all_headers(r: &mut Reader<'_>) -> Result<(), SimError> {
    let total = r.u32()? as usize;
    if total < 4 {
        return Err(SimError::Protocol("ALL_HEADERS length too small".into()));
    }
    r.take(total - 4)?;
    Ok(())
}

/// Name of a procedure invoked by id (MS-TDS 2.2.6.6 ProcID).
fn proc_by_id(id: u16) -> String {
    match id {
        1 => "sp_cursor",
        10 => "sp_executesql",
        11 => "sp_prepare",
        12 => "sp_execute",
        13 => "sp_prepexec",
        15 => "sp_unprepare",
        _ => "sp_unknown",
    }
    .to_string()
}

/// Parses an RPC payload (only the first request of a batch is used).
pub(crate) fn parse(payload: &[u8]) -> Result<RpcRequest, SimError> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let name_len = r.u16()?;
    let proc_name = if name_len == 0xffff {
        proc_by_id(r.u16()?)
    } else {
        r.utf16(name_len as usize)?
    };
    let _flags = r.u16()?;
    let mut params = Vec::new();
    while r.remaining() > 0 {
        let peek = r.u8()?;
        if peek == 0x80 || peek == 0xFF || peek == 0xFE {
            break; // batch separator: further RPCs are not supported
        }
        let name = r.utf16(peek as usize)?;
        let _status = r.u8()?;
        let (ty, value) = read_typed_value(&mut r)?;
        params.push(RpcParam { name, ty, value });
    }
    Ok(RpcRequest { proc_name, params })
}

/// Parses a SQL_BATCH payload into its text.
pub(crate) fn parse_batch(payload: &[u8]) -> Result<String, SimError> {
    let mut r = Reader::new(payload);
    // ALL_HEADERS is mandatory since TDS 7.2; tolerate its absence as old clients do.
    if payload.len() >= 4 {
        let total = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        if total >= 4 && total <= payload.len() && total < 1024 {
            skip_all_headers(&mut r)?;
        }
    }
    let n = r.remaining() / 2;
    r.utf16(n)
}
