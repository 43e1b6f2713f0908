//! `sql_variant` values as bytes that keep their base type.
//!
//! Kafka Connect has no type whose schema changes per row, and Debezium's SQL Server
//! connector has no `sql_variant` mapping, so a `sql_variant` column is an opaque bytes
//! column (cdc-core's `DataType::Opaque { type_name: "sql_variant" }`). Reading it as
//! `CAST(col AS varbinary(max))` would keep the value's bytes but lose its type (an `int` 5
//! and a `binary(4)` 0x00000005 would be the same), so the reader selects the column as it
//! is — the server sends it with its base type ([MS-TDS] 2.2.5.5.3, SSVARIANT) and tiberius
//! decodes the base value — and the event carries that value re-encoded in the SSVARIANT
//! layout without the leading LONGLEN:
//!
//! ```text
//! baseType (1 byte, the TDS type: INT4 0x38, NVARCHAR 0xE7, DECIMALN 0x6A, ...)
//! propBytes (1 byte) | properties (propBytes bytes) | the value's bytes
//! ```
//!
//! so any TDS decoder reads it back. What tiberius does not surface is not invented:
//! `char`/`varchar`/`nchar`/`nvarchar` bases all become `nvarchar` (0xE7, UTF-16LE, collation
//! bytes zero, maximum length = the value's length); `money`/`smallmoney` arrive as `float`
//! (0x3E); a decimal's precision is tiberius's (the digits needed), its scale the server's.
//! A NULL `sql_variant` is NULL.

use tiberius::ColumnData;

fn time_len(scale: u8) -> usize {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

fn put_time(out: &mut Vec<u8>, t: tiberius::time::Time) {
    out.extend_from_slice(&t.increments().to_le_bytes()[..time_len(t.scale())]);
}

fn put_date(out: &mut Vec<u8>, d: tiberius::time::Date) {
    out.extend_from_slice(&d.days().to_le_bytes()[..3]);
}

/// The SSVARIANT bytes (without LONGLEN) of a base value tiberius decoded from a
/// `sql_variant`; `None` for NULL; an error names a value tiberius cannot have given.
pub(crate) fn encode(data: &ColumnData<'_>) -> Result<Option<Vec<u8>>, String> {
    use ColumnData as C;
    let mut out = Vec::new();
    let mut head = |ty: u8, props: &[u8]| {
        out.push(ty);
        out.push(props.len() as u8);
        out.extend_from_slice(props);
    };
    match data {
        C::U8(Some(v)) => {
            head(0x30, &[]);
            out.push(*v);
        }
        C::I16(Some(v)) => {
            head(0x34, &[]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        C::I32(Some(v)) => {
            head(0x38, &[]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        C::I64(Some(v)) => {
            head(0x7F, &[]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        C::Bit(Some(v)) => {
            head(0x32, &[]);
            out.push(u8::from(*v));
        }
        C::F32(Some(v)) => {
            head(0x3B, &[]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        C::F64(Some(v)) => {
            head(0x3E, &[]);
            out.extend_from_slice(&v.to_le_bytes());
        }
        C::Guid(Some(u)) => {
            head(0x24, &[]);
            out.extend_from_slice(&u.to_bytes_le());
        }
        C::Numeric(Some(n)) => {
            // DECIMALN: precision and scale, then the sign byte (1 = positive) and the
            // magnitude in the width the precision needs.
            let width = match n.precision() {
                0..=9 => 4,
                10..=19 => 8,
                20..=28 => 12,
                _ => 16,
            };
            head(0x6A, &[n.precision(), n.scale()]);
            out.push(u8::from(n.value() >= 0));
            out.extend_from_slice(&n.value().unsigned_abs().to_le_bytes()[..width]);
        }
        C::String(Some(s)) => {
            let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let max =
                u16::try_from(units.len()).map_err(|_| "sql_variant string over 8000 bytes")?;
            let mut props = [0u8; 7];
            props[5..].copy_from_slice(&max.to_le_bytes());
            head(0xE7, &props);
            out.extend_from_slice(&units);
        }
        C::Binary(Some(b)) => {
            let max = u16::try_from(b.len()).map_err(|_| "sql_variant binary over 8000 bytes")?;
            head(0xA5, &max.to_le_bytes());
            out.extend_from_slice(b);
        }
        C::DateTime(Some(dt)) => {
            head(0x3D, &[]);
            out.extend_from_slice(&dt.days().to_le_bytes());
            out.extend_from_slice(&dt.seconds_fragments().to_le_bytes());
        }
        C::SmallDateTime(Some(dt)) => {
            head(0x3A, &[]);
            out.extend_from_slice(&dt.days().to_le_bytes());
            out.extend_from_slice(&dt.seconds_fragments().to_le_bytes());
        }
        C::Date(Some(d)) => {
            head(0x28, &[]);
            put_date(&mut out, *d);
        }
        C::Time(Some(t)) => {
            head(0x29, &[t.scale()]);
            put_time(&mut out, *t);
        }
        C::DateTime2(Some(dt)) => {
            head(0x2A, &[dt.time().scale()]);
            put_time(&mut out, dt.time());
            put_date(&mut out, dt.date());
        }
        C::DateTimeOffset(Some(dto)) => {
            let dt = dto.datetime2();
            head(0x2B, &[dt.time().scale()]);
            put_time(&mut out, dt.time());
            put_date(&mut out, dt.date());
            out.extend_from_slice(&dto.offset().to_le_bytes());
        }
        C::U8(None)
        | C::I16(None)
        | C::I32(None)
        | C::I64(None)
        | C::F32(None)
        | C::F64(None)
        | C::Bit(None)
        | C::String(None)
        | C::Guid(None)
        | C::Binary(None)
        | C::Numeric(None)
        | C::DateTime(None)
        | C::SmallDateTime(None)
        | C::Time(None)
        | C::Date(None)
        | C::DateTime2(None)
        | C::DateTimeOffset(None) => return Ok(None),
        C::Xml(_) => return Err("a sql_variant cannot hold xml".into()),
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base_values_keep_their_tds_type() {
        assert_eq!(
            encode(&ColumnData::I32(Some(5))).unwrap(),
            Some(vec![0x38, 0, 5, 0, 0, 0])
        );
        assert_eq!(
            encode(&ColumnData::String(Some("ab".into()))).unwrap(),
            Some(vec![0xE7, 7, 0, 0, 0, 0, 0, 4, 0, b'a', 0, b'b', 0])
        );
        let n = tiberius::numeric::Numeric::new_with_scale(-150, 2);
        assert_eq!(
            encode(&ColumnData::Numeric(Some(n))).unwrap(),
            Some(vec![0x6A, 2, 3, 2, 0, 150, 0, 0, 0])
        );
        assert_eq!(encode(&ColumnData::String(None)).unwrap(), None);
    }
}
