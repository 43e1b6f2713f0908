//! Writers for the server's token stream (MS-TDS 2.2.7).

use crate::error::SqlError;
use crate::tds::types::{COLLATION, put_type_info, put_value};
use crate::value::{Collation, SqlType, Value};

/// DONE status bits.
pub(crate) mod done {
    pub(crate) const FINAL: u16 = 0x00;
    pub(crate) const MORE: u16 = 0x01;
    pub(crate) const ERROR: u16 = 0x02;
    pub(crate) const COUNT: u16 = 0x10;
    pub(crate) const ATTN: u16 = 0x20;
}

/// DONE-family token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DoneKind {
    Done = 0xFD,
    Proc = 0xFE,
    InProc = 0xFF,
}

/// A result column as it is described in COLMETADATA.
#[derive(Debug, Clone)]
pub(crate) struct ColumnMeta {
    pub(crate) name: String,
    pub(crate) ty: SqlType,
    pub(crate) nullable: bool,
    /// A text column's own collation (sent in its TYPE_INFO); `None`: the default.
    pub(crate) collation: Option<Collation>,
}

fn b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn us_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(65535).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// Writes a token with a u16 length prefix computed after the body is written.
fn with_len(out: &mut Vec<u8>, token: u8, body: impl FnOnce(&mut Vec<u8>)) {
    out.push(token);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    body(out);
    let len = (out.len() - at - 2) as u16;
    out[at..at + 2].copy_from_slice(&len.to_le_bytes());
}

/// LOGINACK: TDS 7.4, "Microsoft SQL Server" 16.0.1000.
pub(crate) fn login_ack(out: &mut Vec<u8>) {
    with_len(out, 0xAD, |o| {
        o.push(1); // SQL_TSQL
        o.extend_from_slice(&0x7400_0004u32.to_be_bytes());
        b_varchar(o, "Microsoft SQL Server");
        o.extend_from_slice(&[16, 0, 0x03, 0xE8]);
    });
}

/// ENVCHANGE with two B_VARCHAR values (database, language, packet size).
pub(crate) fn env_string(out: &mut Vec<u8>, ty: u8, new: &str, old: &str) {
    with_len(out, 0xE3, |o| {
        o.push(ty);
        b_varchar(o, new);
        b_varchar(o, old);
    });
}

/// ENVCHANGE 7: the session collation.
pub(crate) fn env_collation(out: &mut Vec<u8>) {
    with_len(out, 0xE3, |o| {
        o.push(7);
        o.push(5);
        o.extend_from_slice(&COLLATION);
        o.push(0);
    });
}

/// ENVCHANGE 8/9/10: begin, commit, rollback transaction.
pub(crate) fn env_transaction(out: &mut Vec<u8>, ty: u8, descriptor: u64) {
    with_len(out, 0xE3, |o| {
        o.push(ty);
        if ty == 8 {
            o.push(8);
            o.extend_from_slice(&descriptor.to_le_bytes());
            o.push(0);
        } else {
            o.push(0);
            o.push(8);
            o.extend_from_slice(&descriptor.to_le_bytes());
        }
    });
}

fn message(
    out: &mut Vec<u8>,
    token: u8,
    number: i32,
    state: u8,
    class: u8,
    text: &str,
    proc_name: &str,
) {
    with_len(out, token, |o| {
        o.extend_from_slice(&number.to_le_bytes());
        o.push(state);
        o.push(class);
        us_varchar(o, text);
        b_varchar(o, "mssql-sim");
        b_varchar(o, proc_name);
        o.extend_from_slice(&1i32.to_le_bytes());
    });
}

/// ERROR token.
pub(crate) fn error(out: &mut Vec<u8>, e: &SqlError) {
    message(out, 0xAA, e.number, e.state, e.class, &e.message, "");
}

/// INFO token (e.g. 5701 "Changed database context").
pub(crate) fn info(out: &mut Vec<u8>, number: i32, text: &str) {
    message(out, 0xAB, number, 1, 0, text, "");
}

/// DONE, DONEPROC or DONEINPROC.
pub(crate) fn done(out: &mut Vec<u8>, kind: DoneKind, status: u16, rows: u64) {
    out.push(kind as u8);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&0xC1u16.to_le_bytes()); // current command: SELECT, as servers report
    out.extend_from_slice(&rows.to_le_bytes());
}

/// RETURNSTATUS of a procedure call.
pub(crate) fn return_status(out: &mut Vec<u8>, status: i32) {
    out.push(0x79);
    out.extend_from_slice(&status.to_le_bytes());
}

/// RETURNVALUE of an `int` OUTPUT parameter (MS-TDS 2.2.7.18): ordinal, name, status 0x01
/// (output parameter), user type 0, flags nullable, TYPE_INFO INTN(4), the value.
pub(crate) fn return_int(out: &mut Vec<u8>, ordinal: u16, name: &str, value: i32) {
    out.push(0xAC);
    out.extend_from_slice(&ordinal.to_le_bytes());
    b_varchar(out, name);
    out.push(0x01);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0x0001u16.to_le_bytes());
    out.extend_from_slice(&[0x26, 4, 4]);
    out.extend_from_slice(&value.to_le_bytes());
}

/// COLMETADATA describing a result set.
pub(crate) fn col_metadata(out: &mut Vec<u8>, cols: &[ColumnMeta]) {
    out.push(0x81);
    out.extend_from_slice(&(cols.len() as u16).to_le_bytes());
    for c in cols {
        let user_type: u32 = if matches!(c.ty, SqlType::RowVersion) {
            80
        } else {
            0
        };
        out.extend_from_slice(&user_type.to_le_bytes());
        let flags: u16 = if c.nullable { 0x0001 } else { 0 } | 0x0008;
        out.extend_from_slice(&flags.to_le_bytes());
        put_type_info(out, &c.ty, &c.collation.unwrap_or_default().tds_bytes());
        if matches!(c.ty, SqlType::Text | SqlType::NText | SqlType::Image) {
            out.push(1);
            us_varchar(out, "t");
        }
        b_varchar(out, &c.name);
    }
}

/// ROW with every column value.
pub(crate) fn row(
    out: &mut Vec<u8>,
    cols: &[ColumnMeta],
    values: &[Value],
) -> Result<(), SqlError> {
    out.push(0xD1);
    for (c, v) in cols.iter().zip(values) {
        put_value(out, &c.ty, v)?;
    }
    Ok(())
}

/// NBCROW: a null bitmap, then only the non-null values (SQL Server uses it for sparse rows).
pub(crate) fn nbc_row(
    out: &mut Vec<u8>,
    cols: &[ColumnMeta],
    values: &[Value],
) -> Result<(), SqlError> {
    out.push(0xD2);
    let start = out.len();
    out.resize(start + cols.len().div_ceil(8), 0);
    for (i, (c, v)) in cols.iter().zip(values).enumerate() {
        if v.is_null() {
            out[start + i / 8] |= 1 << (i % 8);
        } else {
            put_value(out, &c.ty, v)?;
        }
    }
    Ok(())
}

/// Whether a row is better sent as NBCROW (as SQL Server does when many values are NULL).
pub(crate) fn prefer_nbc(values: &[Value]) -> bool {
    values.iter().filter(|v| v.is_null()).count() * 2 > values.len()
}
