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
//! baseType (1 byte, the TDS type: INT4 0x38, BIGVARCHR 0xA7, NVARCHAR 0xE7, DECIMALN 0x6A, ...)
//! propBytes (1 byte) | properties (propBytes bytes) | the value's bytes
//! ```
//!
//! so any TDS decoder reads it back. tiberius's decoding alone loses part of the base type
//! (every character base becomes a string, money a float, a decimal's precision the digits
//! it needs), so [`select_expression`] selects, right after the value, five cells that say
//! what it was: `SQL_VARIANT_PROPERTY(col, 'BaseType')`, `'Precision'`, `'MaxLength'` and
//! `'Collation'` (Microsoft, "SQL_VARIANT_PROPERTY"), and the value's own bytes where the
//! decoded value does not give them exactly — a `char`/`varchar` base's code-page bytes
//! (`CAST(col AS varbinary(8000))`) and a `money`/`smallmoney` base's count of
//! ten-thousandths (as a big-endian `bigint`). With them:
//!
//! - `char`/`varchar`/`nchar`/`nvarchar` keep their type byte (0xAF/0xA7/0xEF/0xE7), their
//!   declared maximum length in bytes and their bytes as stored (code page for the
//!   non-Unicode ones, UTF-16LE otherwise); the five collation bytes are [MS-TDS]'s
//!   (LCID, flags, version, sort id) for `SQL_Latin1_General_CP1_CI_AS` and
//!   `Latin1_General_CI_AS`, zero for other collations (SQL Server offers no query for a
//!   collation's sort id);
//! - `money` is MONEY (0x3C, its 8 bytes high half first), `smallmoney` SMALLMONEY (0x7A);
//! - `decimal`/`numeric` are DECIMALN/NUMERICN (0x6A/0x6C) with the declared precision;
//! - `binary`/`varbinary` are BIGBINARY/BIGVARBIN (0xAD/0xA5) with the declared maximum
//!   length.
//!
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

/// The select-list cells of a `sql_variant` column (`quoted` its bracketed name): the value,
/// then the five cells [`Base::read`] takes (see the module documentation).
pub(crate) fn select_expression(quoted: &str) -> String {
    let base = format!("CAST(SQL_VARIANT_PROPERTY({quoted}, 'BaseType') AS nvarchar(128))");
    let int = |property: &str| format!("CAST(SQL_VARIANT_PROPERTY({quoted}, '{property}') AS int)");
    format!(
        "{quoted}, {base}, {}, {}, CAST(SQL_VARIANT_PROPERTY({quoted}, 'Collation') AS nvarchar(128)), \
         CASE WHEN {base} IN (N'char', N'varchar') THEN CAST({quoted} AS varbinary(8000)) \
         WHEN {base} IN (N'money', N'smallmoney') \
         THEN CAST(CAST(CAST({quoted} AS decimal(19,4)) * 10000 AS bigint) AS varbinary(8)) END",
        int("Precision"),
        int("MaxLength"),
    )
}

/// What the server says about a `sql_variant` value's base type, from the cells that follow
/// the value ([`select_expression`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Base {
    /// `BaseType`: `int`, `varchar`, `money`, …
    name: String,
    /// `Precision`: a decimal's declared precision.
    precision: Option<u8>,
    /// `MaxLength`: a string's or binary's declared maximum length in bytes.
    max_length: Option<u16>,
    /// `Collation`: a string base's collation name.
    collation: Option<String>,
    /// A char/varchar base's code-page bytes, a money base's ten-thousandths (big-endian).
    raw: Option<Vec<u8>>,
}

impl Base {
    /// Takes the five cells after a `sql_variant` value; an error names what is missing.
    pub(crate) fn read(
        cells: &mut dyn Iterator<Item = ColumnData<'static>>,
    ) -> Result<Self, String> {
        let mut next = |what: &str| {
            cells
                .next()
                .ok_or_else(|| format!("no sql_variant {what} cell after the value"))
        };
        let text = |c: ColumnData<'static>| match c {
            ColumnData::String(s) => s.map(|s| s.into_owned()),
            _ => None,
        };
        let int = |c: ColumnData<'static>| match c {
            ColumnData::I32(v) => v,
            _ => None,
        };
        let name = text(next("BaseType")?).unwrap_or_default();
        let precision = int(next("Precision")?).and_then(|p| u8::try_from(p).ok());
        let max_length = int(next("MaxLength")?).and_then(|p| u16::try_from(p).ok());
        let collation = text(next("Collation")?);
        let raw = match next("bytes")? {
            ColumnData::Binary(b) => b.map(|b| b.into_owned()),
            _ => None,
        };
        Ok(Self {
            name: name.to_lowercase(),
            precision,
            max_length,
            collation,
            raw,
        })
    }
}

/// [MS-TDS] 2.2.5.1.2 collation bytes (LCID, flags, version, sort id) of the collations
/// whose bytes are known; zero for the others. `SQL_Latin1_General_CP1_CI_AS` is LCID 0x0409,
/// case-, kana- and width-insensitive, sort id 52; `Latin1_General_CI_AS` the same without a
/// sort id.
fn collation_bytes(name: Option<&str>) -> [u8; 5] {
    match name.map(str::to_ascii_lowercase).as_deref() {
        Some("sql_latin1_general_cp1_ci_as") => [0x09, 0x04, 0xD0, 0x00, 0x34],
        Some("latin1_general_ci_as") => [0x09, 0x04, 0xD0, 0x00, 0x00],
        _ => [0; 5],
    }
}

/// The SSVARIANT bytes (without LONGLEN) of a base value tiberius decoded from a
/// `sql_variant`, with what the server said about its base type; `None` for NULL; an error
/// names a value tiberius cannot have given.
pub(crate) fn encode(data: &ColumnData<'_>, base: &Base) -> Result<Option<Vec<u8>>, String> {
    use ColumnData as C;
    if let Some(bytes) = encode_by_base(data, base)? {
        return Ok(Some(bytes));
    }
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

/// The bases tiberius's decoding does not tell apart (see the module documentation);
/// `None` for every other base.
fn encode_by_base(data: &ColumnData<'_>, base: &Base) -> Result<Option<Vec<u8>>, String> {
    use ColumnData as C;
    let max_length = |len: usize| -> Result<[u8; 2], String> {
        let n = match base.max_length {
            Some(n) => n,
            None => u16::try_from(len).map_err(|_| "sql_variant value over 8000 bytes")?,
        };
        Ok(n.to_le_bytes())
    };
    let string_head = |ty: u8, len: usize| -> Result<Vec<u8>, String> {
        let mut out = vec![ty, 7];
        out.extend_from_slice(&collation_bytes(base.collation.as_deref()));
        out.extend_from_slice(&max_length(len)?);
        Ok(out)
    };
    let raw = || {
        base.raw
            .clone()
            .ok_or_else(|| format!("no bytes for a sql_variant {} value", base.name))
    };
    Ok(Some(match (base.name.as_str(), data) {
        ("char" | "varchar", C::String(Some(_))) => {
            let bytes = raw()?;
            let ty = if base.name == "char" { 0xAF } else { 0xA7 };
            let mut out = string_head(ty, bytes.len())?;
            out.extend_from_slice(&bytes);
            out
        }
        ("nchar" | "nvarchar", C::String(Some(s))) => {
            let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let ty = if base.name == "nchar" { 0xEF } else { 0xE7 };
            let mut out = string_head(ty, units.len())?;
            out.extend_from_slice(&units);
            out
        }
        ("money" | "smallmoney", C::F64(Some(_)) | C::F32(Some(_))) => {
            let bytes: [u8; 8] = raw()?
                .try_into()
                .map_err(|_| "a sql_variant money value is not 8 bytes")?;
            let count = i64::from_be_bytes(bytes);
            if base.name == "smallmoney" {
                let small = i32::try_from(count).map_err(|_| "smallmoney out of range")?;
                let mut out = vec![0x7A, 0];
                out.extend_from_slice(&small.to_le_bytes());
                out
            } else {
                // MONEY: the high 32 bits, then the low 32 bits, each little-endian.
                let mut out = vec![0x3C, 0];
                out.extend_from_slice(&((count >> 32) as i32).to_le_bytes());
                out.extend_from_slice(&(count as u32).to_le_bytes());
                out
            }
        }
        ("decimal" | "numeric", C::Numeric(Some(n))) => {
            let precision = base.precision.unwrap_or(n.precision());
            let width = match precision {
                0..=9 => 4,
                10..=19 => 8,
                20..=28 => 12,
                _ => 16,
            };
            let ty = if base.name == "numeric" { 0x6C } else { 0x6A };
            let mut out = vec![ty, 2, precision, n.scale(), u8::from(n.value() >= 0)];
            out.extend_from_slice(&n.value().unsigned_abs().to_le_bytes()[..width]);
            out
        }
        ("binary" | "varbinary", C::Binary(Some(b))) => {
            let ty = if base.name == "binary" { 0xAD } else { 0xA5 };
            let mut out = vec![ty, 2];
            out.extend_from_slice(&max_length(b.len())?);
            out.extend_from_slice(b);
            out
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base_values_keep_their_tds_type() {
        assert_eq!(
            encode(&ColumnData::I32(Some(5)), &Base::default()).unwrap(),
            Some(vec![0x38, 0, 5, 0, 0, 0])
        );
        assert_eq!(
            encode(&ColumnData::String(Some("ab".into())), &Base::default()).unwrap(),
            Some(vec![0xE7, 7, 0, 0, 0, 0, 0, 4, 0, b'a', 0, b'b', 0])
        );
        let n = tiberius::numeric::Numeric::new_with_scale(-150, 2);
        assert_eq!(
            encode(&ColumnData::Numeric(Some(n)), &Base::default()).unwrap(),
            Some(vec![0x6A, 2, 3, 2, 0, 150, 0, 0, 0])
        );
        assert_eq!(
            encode(&ColumnData::String(None), &Base::default()).unwrap(),
            None
        );
    }
}
