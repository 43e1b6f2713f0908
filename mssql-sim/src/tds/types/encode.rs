//! Value encoding for ROW tokens and output parameters: each SQL type's bytes on the wire
//! (fixed, length-prefixed or PLP), after the value is coerced to the column's type.

use chrono::{NaiveDate, NaiveTime, Timelike};

use super::wire::{COLLATION, PLP_NULL, epoch_0001, epoch_1900, is_plp};
use crate::error::SqlError;
use crate::value::{Len, SqlType, Value, coerce, decimal_len, time_extra, variant};

fn put_date3(out: &mut Vec<u8>, d: NaiveDate) {
    let days = (d - epoch_0001()).num_days() as u32;
    out.extend_from_slice(&days.to_le_bytes()[..3]);
}

fn put_time(out: &mut Vec<u8>, t: NaiveTime, scale: u8) {
    let ns = t.num_seconds_from_midnight() as u64 * 1_000_000_000
        + (t.nanosecond() % 1_000_000_000) as u64;
    let units = ns / 10u64.pow(9 - scale.min(7) as u32);
    let n = 3 + time_extra(scale) as usize;
    out.extend_from_slice(&units.to_le_bytes()[..n]);
}

fn utf16(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() * 2);
    for u in s.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// The single-byte code page of the default collation (1252; others become '?').
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| crate::value::cp1252_byte(c).unwrap_or(b'?'))
        .collect()
}

fn put_plp(out: &mut Vec<u8>, data: Option<&[u8]>) {
    match data {
        None => out.extend_from_slice(&PLP_NULL.to_le_bytes()),
        Some(d) => {
            out.extend_from_slice(&(d.len() as u64).to_le_bytes());
            for chunk in d.chunks(0x7fff_0000) {
                out.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
                out.extend_from_slice(chunk);
            }
            out.extend_from_slice(&0u32.to_le_bytes());
        }
    }
}

/// Appends one value in ROW-token layout for a column of type `ty`.
pub(crate) fn put_value(out: &mut Vec<u8>, ty: &SqlType, v: &Value) -> Result<(), SqlError> {
    let owned;
    let v = if v.is_null() || value_matches(ty, v) {
        v
    } else {
        owned = coerce(v.clone(), ty)?;
        &owned
    };
    if v.is_null() {
        put_null(out, ty);
        return Ok(());
    }
    match (ty, v) {
        (SqlType::TinyInt, Value::Int(i)) => out.extend_from_slice(&[1, *i as u8]),
        (SqlType::SmallInt, Value::Int(i)) => {
            out.push(2);
            out.extend_from_slice(&(*i as i16).to_le_bytes());
        }
        (SqlType::Int, Value::Int(i)) => {
            out.push(4);
            out.extend_from_slice(&(*i as i32).to_le_bytes());
        }
        (SqlType::BigInt, Value::Int(i)) => {
            out.push(8);
            out.extend_from_slice(&i.to_le_bytes());
        }
        (SqlType::Bit, Value::Bit(b)) => out.extend_from_slice(&[1, *b as u8]),
        (SqlType::Decimal(p, _), Value::Decimal(x, _)) => {
            let len = decimal_len(*p);
            out.push(len);
            out.push(if *x < 0 { 0 } else { 1 });
            out.extend_from_slice(&x.unsigned_abs().to_le_bytes()[..(len - 1) as usize]);
        }
        (SqlType::Money, Value::Money(m)) => {
            out.push(8);
            out.extend_from_slice(&((*m >> 32) as i32).to_le_bytes());
            out.extend_from_slice(&(*m as u32).to_le_bytes());
        }
        (SqlType::SmallMoney, Value::Money(m)) => {
            out.push(4);
            out.extend_from_slice(&(*m as i32).to_le_bytes());
        }
        (SqlType::Real, Value::Float(f)) => {
            out.push(4);
            out.extend_from_slice(&(*f as f32).to_le_bytes());
        }
        (SqlType::Float, Value::Float(f)) => {
            out.push(8);
            out.extend_from_slice(&f.to_le_bytes());
        }
        (SqlType::Char(_) | SqlType::VarChar(Len::N(_)), Value::Str(s)) => {
            let b = latin1(s);
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (SqlType::NChar(_) | SqlType::NVarChar(Len::N(_)), Value::Str(s)) => {
            let b = utf16(s);
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (SqlType::VarChar(Len::Max), Value::Str(s)) => put_plp(out, Some(&latin1(s))),
        (SqlType::NVarChar(Len::Max) | SqlType::Xml, Value::Str(s)) => {
            put_plp(out, Some(&utf16(s)))
        }
        (SqlType::Text | SqlType::NText, Value::Str(s)) => {
            out.push(16);
            out.extend_from_slice(&[0xAB; 16]); // text pointer: opaque to clients
            out.extend_from_slice(&[0; 8]); // timestamp
            let b = if matches!(ty, SqlType::Text) {
                latin1(s)
            } else {
                utf16(s)
            };
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (
            SqlType::Binary(_) | SqlType::VarBinary(Len::N(_)) | SqlType::RowVersion,
            Value::Bytes(b),
        ) => {
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
        (SqlType::VarBinary(Len::Max), Value::Bytes(b)) => put_plp(out, Some(b)),
        (SqlType::Image, Value::Bytes(b)) => {
            out.push(16);
            out.extend_from_slice(&[0xAB; 16]); // text pointer: opaque to clients
            out.extend_from_slice(&[0; 8]); // timestamp
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        (SqlType::Date, Value::Date(d)) => {
            out.push(3);
            put_date3(out, *d);
        }
        (SqlType::Time(p), Value::Time(t)) => {
            out.push(3 + time_extra(*p));
            put_time(out, *t, *p);
        }
        (SqlType::DateTime2(p), Value::DateTime(d)) => {
            out.push(6 + time_extra(*p));
            put_time(out, d.time(), *p);
            put_date3(out, d.date());
        }
        (SqlType::DateTimeOffset(p), Value::DateTimeOffset(d)) => {
            out.push(8 + time_extra(*p));
            let utc = d.naive_utc();
            put_time(out, utc.time(), *p);
            put_date3(out, utc.date());
            let mins = (d.offset().local_minus_utc() / 60) as i16;
            out.extend_from_slice(&mins.to_le_bytes());
        }
        (SqlType::DateTime, Value::DateTime(d)) => {
            out.push(8);
            let days = (d.date() - epoch_1900()).num_days() as i32;
            let t = d.time();
            let ns = t.num_seconds_from_midnight() as u64 * 1_000_000_000 + t.nanosecond() as u64;
            let ticks = (ns * 3 + 5_000_000) / 10_000_000;
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&(ticks as u32).to_le_bytes());
        }
        (SqlType::SmallDateTime, Value::DateTime(d)) => {
            out.push(4);
            let days = (d.date() - epoch_1900()).num_days() as u16;
            let mins = (d.time().num_seconds_from_midnight() / 60) as u16;
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&mins.to_le_bytes());
        }
        (SqlType::UniqueIdentifier, Value::Guid(g)) => {
            out.push(16);
            out.extend_from_slice(&g.to_bytes_le());
        }
        (SqlType::HierarchyId, Value::HierarchyId(b)) => put_plp(out, Some(b)),
        (SqlType::Geometry | SqlType::Geography, Value::Spatial(_, b)) => put_plp(out, Some(b)),
        (SqlType::Variant, Value::Variant(inner, base)) => put_variant(out, inner, base)?,
        (ty, v) => {
            return Err(SqlError::conversion(format!(
                "cannot send a {} value as {}",
                v.natural_type().name(),
                ty.name()
            )));
        }
    }
    Ok(())
}

/// Whether `v` already has the representation `put_value` expects for `ty`.
fn value_matches(ty: &SqlType, v: &Value) -> bool {
    match (ty, v) {
        (SqlType::TinyInt, Value::Int(i)) => (0..=255).contains(i),
        (SqlType::SmallInt, Value::Int(i)) => i16::try_from(*i).is_ok(),
        (SqlType::Int, Value::Int(i)) => i32::try_from(*i).is_ok(),
        (SqlType::BigInt, Value::Int(_)) => true,
        (SqlType::Bit, Value::Bit(_)) => true,
        (SqlType::Decimal(p, s), Value::Decimal(x, xs)) => {
            xs == s && x.unsigned_abs() < 10u128.pow(*p as u32)
        }
        (SqlType::Money, Value::Money(_)) => true,
        (SqlType::SmallMoney, Value::Money(m)) => i32::try_from(*m).is_ok(),
        (SqlType::Real | SqlType::Float, Value::Float(_)) => true,
        (
            SqlType::VarChar(_)
            | SqlType::NVarChar(_)
            | SqlType::Text
            | SqlType::NText
            | SqlType::Xml
            | SqlType::Char(_)
            | SqlType::NChar(_),
            Value::Str(_),
        ) => true,
        (
            SqlType::VarBinary(_) | SqlType::Binary(_) | SqlType::RowVersion | SqlType::Image,
            Value::Bytes(_),
        ) => true,
        (SqlType::Date, Value::Date(_)) => true,
        (SqlType::Time(_), Value::Time(_)) => true,
        (
            SqlType::DateTime2(_) | SqlType::DateTime | SqlType::SmallDateTime,
            Value::DateTime(_),
        ) => true,
        (SqlType::DateTimeOffset(_), Value::DateTimeOffset(_)) => true,
        (SqlType::UniqueIdentifier, Value::Guid(_)) => true,
        (SqlType::HierarchyId, Value::HierarchyId(_)) => true,
        (SqlType::Variant, Value::Variant(..)) => true,
        (SqlType::Geometry, Value::Spatial(crate::value::spatial::Kind::Geometry, _)) => true,
        (SqlType::Geography, Value::Spatial(crate::value::spatial::Kind::Geography, _)) => true,
        _ => false,
    }
}

fn put_null(out: &mut Vec<u8>, ty: &SqlType) {
    match ty {
        t if is_plp(t) => put_plp(out, None),
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_) => {
            out.extend_from_slice(&0xffffu16.to_le_bytes())
        }
        SqlType::Binary(_) | SqlType::VarBinary(_) | SqlType::RowVersion => {
            out.extend_from_slice(&0xffffu16.to_le_bytes())
        }
        // sql_variant: a zero LONGLEN.
        SqlType::Variant => out.extend_from_slice(&0u32.to_le_bytes()),
        // text/ntext: a zero-length text pointer; everything else: a zero length byte.
        _ => out.push(0),
    }
}

// A `sql_variant` value in a ROW token ([MS-TDS] 2.2.5.5.3, SSVARIANT): LONGLEN total length,
// the base type's TDS type byte, the number of property bytes, the properties (precision and
// scale; scale; collation and maximum length; maximum length) and the value without its own
// length prefix. Integer, float, money and datetime bases use the fixed-length type bytes
// (INT4 0x38, not INTN).
/// The TDS type byte of a base type inside a sql_variant.
fn base_type_byte(base: &SqlType) -> Option<u8> {
    Some(match base {
        SqlType::TinyInt => 0x30,
        SqlType::SmallInt => 0x34,
        SqlType::Int => 0x38,
        SqlType::BigInt => 0x7F,
        SqlType::Bit => 0x32,
        SqlType::Real => 0x3B,
        SqlType::Float => 0x3E,
        SqlType::Money => 0x3C,
        SqlType::SmallMoney => 0x7A,
        SqlType::DateTime => 0x3D,
        SqlType::SmallDateTime => 0x3A,
        SqlType::Decimal(..) => 0x6A,
        SqlType::Char(_) => 0xAF,
        SqlType::VarChar(_) => 0xA7,
        SqlType::NChar(_) => 0xEF,
        SqlType::NVarChar(_) => 0xE7,
        SqlType::Binary(_) => 0xAD,
        SqlType::VarBinary(_) => 0xA5,
        SqlType::Date => 0x28,
        SqlType::Time(_) => 0x29,
        SqlType::DateTime2(_) => 0x2A,
        SqlType::DateTimeOffset(_) => 0x2B,
        SqlType::UniqueIdentifier => 0x24,
        _ => return None,
    })
}

/// Appends a non-NULL sql_variant holding `inner` of type `base`.
pub(super) fn put_variant(
    out: &mut Vec<u8>,
    inner: &Value,
    base: &SqlType,
) -> Result<(), SqlError> {
    let type_byte = base_type_byte(base).ok_or_else(|| {
        SqlError::new(
            206,
            format!(
                "Operand type clash: {} is incompatible with sql_variant",
                base.name()
            ),
        )
    })?;
    let mut props = Vec::with_capacity(variant::props_len(base));
    let declared = |n: &u16, per: u16| n.saturating_mul(per).to_le_bytes();
    match base {
        SqlType::Decimal(p, s) => props.extend_from_slice(&[*p, *s]),
        SqlType::Char(n) | SqlType::Binary(n) => props.extend_from_slice(&declared(n, 1)),
        SqlType::VarChar(Len::N(n)) | SqlType::VarBinary(Len::N(n)) => {
            props.extend_from_slice(&declared(n, 1))
        }
        SqlType::NChar(n) | SqlType::NVarChar(Len::N(n)) => {
            props.extend_from_slice(&declared(n, 2))
        }
        SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => props.push(*p),
        _ => {}
    }
    if matches!(
        base,
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_)
    ) {
        let len = std::mem::take(&mut props);
        props.extend_from_slice(&COLLATION);
        props.extend_from_slice(&len);
    }
    // The base type's own ROW encoding, without its length prefix (two bytes for the
    // USHORTLEN string and binary types, one for the rest).
    let mut value = Vec::new();
    put_value(&mut value, base, inner)?;
    let prefix = match base {
        SqlType::Char(_)
        | SqlType::VarChar(_)
        | SqlType::NChar(_)
        | SqlType::NVarChar(_)
        | SqlType::Binary(_)
        | SqlType::VarBinary(_) => 2,
        _ => 1,
    };
    let value = value.get(prefix..).unwrap_or_default();
    let total = 2 + props.len() + value.len();
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.push(type_byte);
    out.push(props.len() as u8);
    out.extend_from_slice(&props);
    out.extend_from_slice(value);
    Ok(())
}
