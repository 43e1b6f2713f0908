//! Values: one cell of a row, its text form, decimal arithmetic helpers and comparison
//! after SQL Server's implicit conversion.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

use crate::error::{SqlError, SqlResult};
use crate::value::collation::{self, Collation};
use crate::value::hierarchyid;
use crate::value::spatial;
use crate::value::text::parse_datetime;
use crate::value::types::{Len, SqlType, variant_family};

/// A single value. `Null` is typeless; the column or expression type says what it is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub(crate) enum Value {
    /// SQL NULL
    Null,
    /// bit
    Bit(bool),
    /// Any integer type.
    Int(i64),
    /// decimal/numeric: unscaled value and scale.
    Decimal(i128, u8),
    /// money/smallmoney in ten-thousandths.
    Money(i64),
    /// real/float
    Float(f64),
    /// Any character type (and xml).
    Str(String),
    /// Any binary type (and rowversion).
    Bytes(Vec<u8>),
    /// date
    Date(NaiveDate),
    /// time
    Time(NaiveTime),
    /// datetime, smalldatetime, datetime2
    DateTime(NaiveDateTime),
    /// datetimeoffset
    DateTimeOffset(DateTime<FixedOffset>),
    /// uniqueidentifier
    Guid(Uuid),
    /// hierarchyid: its stored bytes (always valid: every way in goes through
    /// [`hierarchyid::parse`] or [`hierarchyid::decode`]).
    HierarchyId(Vec<u8>),
    /// sql_variant: the value (never NULL, never a variant) and its base type.
    Variant(Box<Value>, SqlType),
    /// geometry/geography: the kind and the stored serialization (always valid).
    Spatial(spatial::Kind, Vec<u8>),
}

impl Value {
    /// Whether this is NULL.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The type a literal or computed value has when no column type is known.
    pub(crate) fn natural_type(&self) -> SqlType {
        match self {
            Value::Null => SqlType::Int,
            Value::Bit(_) => SqlType::Bit,
            Value::Int(i) if i32::try_from(*i).is_ok() => SqlType::Int,
            Value::Int(_) => SqlType::BigInt,
            Value::Decimal(v, s) => {
                let digits = v.unsigned_abs().to_string().len() as u8;
                SqlType::Decimal(digits.max(*s + 1).clamp(1, 38), *s)
            }
            Value::Money(_) => SqlType::Money,
            Value::Float(_) => SqlType::Float,
            Value::Str(s) => {
                let n = s.encode_utf16().count();
                if n > 4000 {
                    SqlType::NVarChar(Len::Max)
                } else {
                    SqlType::NVarChar(Len::N(n.max(1) as u16))
                }
            }
            Value::Bytes(b) => {
                if b.len() > 8000 {
                    SqlType::VarBinary(Len::Max)
                } else {
                    SqlType::VarBinary(Len::N(b.len().max(1) as u16))
                }
            }
            Value::Date(_) => SqlType::Date,
            Value::Time(_) => SqlType::Time(7),
            Value::DateTime(_) => SqlType::DateTime2(7),
            Value::DateTimeOffset(_) => SqlType::DateTimeOffset(7),
            Value::Guid(_) => SqlType::UniqueIdentifier,
            Value::HierarchyId(_) => SqlType::HierarchyId,
            Value::Variant(..) => SqlType::Variant,
            Value::Spatial(spatial::Kind::Geometry, _) => SqlType::Geometry,
            Value::Spatial(spatial::Kind::Geography, _) => SqlType::Geography,
        }
    }

    /// Truthiness for bit-valued expressions (`NULL` is unknown → `None`).
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Bit(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => Some(true),
        }
    }

    /// An integer view of the value, if it has one.
    pub(crate) fn as_i64(&self) -> SqlResult<Option<i64>> {
        Ok(match self {
            Value::Null => None,
            Value::Bit(b) => Some(*b as i64),
            Value::Int(i) => Some(*i),
            Value::Decimal(v, s) => {
                Some(i64::try_from(*v / 10i128.pow(*s as u32)).map_err(|_| {
                    SqlError::new(
                        8115,
                        "Arithmetic overflow error converting expression to data type bigint.",
                    )
                })?)
            }
            Value::Money(m) => Some(*m / 10_000),
            Value::Float(f) => Some(*f as i64),
            Value::Variant(v, _) => return v.as_i64(),
            Value::Str(s) => Some(s.trim().parse::<i64>().map_err(|_| {
                SqlError::conversion(format!(
                    "Conversion failed when converting the varchar value '{s}' to data type int."
                ))
            })?),
            other => {
                return Err(SqlError::conversion(format!(
                    "Operand type clash: {} is incompatible with int",
                    other.natural_type().name()
                )));
            }
        })
    }

    /// A float view of numeric values.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bit(b) => Some(*b as i64 as f64),
            Value::Int(i) => Some(*i as f64),
            Value::Decimal(v, s) => Some(*v as f64 / 10f64.powi(*s as i32)),
            Value::Money(m) => Some(*m as f64 / 10_000.0),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            Value::Variant(v, _) => v.as_f64(),
            _ => None,
        }
    }

    /// Decimal view: (unscaled, scale).
    pub(crate) fn as_decimal(&self) -> Option<(i128, u8)> {
        match self {
            Value::Bit(b) => Some((*b as i128, 0)),
            Value::Int(i) => Some((*i as i128, 0)),
            Value::Decimal(v, s) => Some((*v, *s)),
            Value::Money(m) => Some((*m as i128, 4)),
            Value::Str(s) => parse_decimal(s.trim()),
            Value::Variant(v, _) => v.as_decimal(),
            _ => None,
        }
    }

    /// A display string like SQL Server's `CONVERT(nvarchar, x)`.
    pub(crate) fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bit(b) => (*b as u8).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Decimal(v, s) => format_decimal(*v, *s),
            Value::Money(m) => format_decimal(*m as i128, 4),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Bytes(b) => {
                let mut s = String::from("0x");
                for x in b {
                    s.push_str(&format!("{x:02X}"));
                }
                s
            }
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
            Value::DateTime(d) => d.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
            Value::DateTimeOffset(d) => d.format("%Y-%m-%d %H:%M:%S%.f %:z").to_string(),
            Value::Guid(g) => g.to_string().to_uppercase(),
            // CONVERT(nvarchar, h) is h.ToString().
            Value::HierarchyId(b) => hierarchyid::to_text(b).unwrap_or_default(),
            Value::Variant(v, _) => return v.to_text(),
            // CONVERT(nvarchar, g) is g.ToString(), the WKT.
            Value::Spatial(kind, b) => spatial::from_native(*kind, b)
                .map(|(_, s)| spatial::to_wkt(&s))
                .unwrap_or_default(),
        })
    }

    /// A hashable key for primary-key indexes and grouping: equal values give equal keys
    /// (strings as a Unicode comparison under the default collation compares them; see
    /// [`Value::key_in`] for a column's own collation).
    pub(crate) fn key(&self) -> String {
        self.key_in(&TextCmp::default())
    }

    /// [`Value::key`] with strings compared as `cmp` says (a column's collation and whether
    /// it is Unicode): `key_in(a) == key_in(b)` exactly when [`compare_in`] says equal.
    pub(crate) fn key_in(&self, cmp: &TextCmp) -> String {
        match self {
            Value::Null => "\u{0}N".to_string(),
            Value::Str(s) => format!("s{}", cmp.collation.key(s, cmp.unicode)),
            Value::Int(i) => format!("n{i}"),
            Value::Bit(b) => format!("n{}", *b as u8),
            Value::Decimal(v, s) => {
                let (v, s) = normalize_decimal(*v, *s);
                if s == 0 {
                    format!("n{v}")
                } else {
                    format!("d{v}e{s}")
                }
            }
            Value::Money(m) => {
                let (v, s) = normalize_decimal(*m as i128, 4);
                if s == 0 {
                    format!("n{v}")
                } else {
                    format!("d{v}e{s}")
                }
            }
            Value::Float(f) => format!("f{f}"),
            other => format!("x{}", other.to_text().unwrap_or_default()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_text() {
            Some(s) => f.write_str(&s),
            None => f.write_str("NULL"),
        }
    }
}

fn normalize_decimal(mut v: i128, mut s: u8) -> (i128, u8) {
    while s > 0 && v % 10 == 0 {
        v /= 10;
        s -= 1;
    }
    (v, s)
}

/// Formats an unscaled decimal.
pub(crate) fn format_decimal(v: i128, scale: u8) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{}{}.{}", if neg { "-" } else { "" }, int, frac)
}

/// Parses `-123.45` into (unscaled, scale).
pub(crate) fn parse_decimal(s: &str) -> Option<(i128, u8)> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) || frac.len() > 38 {
        return None;
    }
    let joined = format!("{int}{frac}");
    let v: i128 = if joined.is_empty() {
        0
    } else {
        joined.parse().ok()?
    };
    Some((if neg { -v } else { v }, frac.len() as u8))
}

/// Rescales an unscaled decimal, rounding half away from zero when reducing scale.
pub(crate) fn rescale(v: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        v.checked_mul(10i128.checked_pow((to - from) as u32)?)
    } else {
        let div = 10i128.checked_pow((from - to) as u32)?;
        let q = v / div;
        let r = v % div;
        Some(if r.abs() * 2 >= div {
            q + v.signum()
        } else {
            q
        })
    }
}

/// How a comparison orders text: the collation it resolves to and whether it is Unicode
/// (either operand nchar/nvarchar/ntext after data type precedence). The default is a
/// Unicode comparison under the database default collation (`SQL_Latin1_General_CP1_CI_AS`),
/// what a value without a known column or declared type gets (`Value::Str` is nvarchar by
/// [`Value::natural_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextCmp {
    pub(crate) collation: Collation,
    pub(crate) unicode: bool,
}

impl Default for TextCmp {
    fn default() -> Self {
        TextCmp {
            collation: collation::DEFAULT,
            unicode: true,
        }
    }
}

/// Compares two non-null values the way SQL Server would after implicit conversion, text as
/// a Unicode comparison under the default collation ([`compare_in`] for another).
pub(crate) fn compare(a: &Value, b: &Value) -> SqlResult<Ordering> {
    compare_in(a, b, &TextCmp::default())
}

/// [`compare`] with text ordered as `cmp` says.
pub(crate) fn compare_in(a: &Value, b: &Value, cmp: &TextCmp) -> SqlResult<Ordering> {
    use Value::*;
    // Two sql_variants of different base type families order by family; otherwise a
    // sql_variant compares by its value.
    if let (Variant(_, x), Variant(_, y)) = (a, b) {
        let (fx, fy) = (variant_family(x), variant_family(y));
        if fx != fy {
            return Ok(fx.cmp(&fy));
        }
    }
    if let Variant(x, _) = a {
        return compare_in(x, b, cmp);
    }
    if let Variant(y, _) = b {
        return compare_in(a, y, cmp);
    }
    Ok(match (a, b) {
        (Str(x), Str(y)) => cmp.collation.compare(x, y, cmp.unicode),
        (Float(_), _) | (_, Float(_)) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            match (x, y) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                _ => return Err(clash(a, b)),
            }
        }
        (Int(x), Int(y)) => x.cmp(y),
        (Bit(x), Bit(y)) => x.cmp(y),
        (Bytes(x), Bytes(y)) => x.cmp(y),
        // hierarchyid compares by its bytes, which is depth-first order; a string beside it
        // is parsed (implicit conversion), failing as Parse does.
        (HierarchyId(x), HierarchyId(y)) => x.cmp(y),
        (HierarchyId(x), Str(y)) => x.cmp(&hierarchyid::parse(y)?),
        (Str(x), HierarchyId(y)) => hierarchyid::parse(x)?.cmp(y),
        // varbinary converts to hierarchyid implicitly (Microsoft's Parse page assigns
        // `SET @h = 0x5ADE`; user-defined types have the highest precedence), validated.
        (HierarchyId(x), Bytes(y)) => {
            hierarchyid::decode(y)?;
            x.cmp(y)
        }
        (Bytes(x), HierarchyId(y)) => {
            hierarchyid::decode(x)?;
            x.cmp(y)
        }
        (Guid(x), Guid(y)) => guid_order(x).cmp(&guid_order(y)),
        (Guid(x), Str(y)) | (Str(y), Guid(x)) => {
            let y = Uuid::parse_str(y.trim()).map_err(|_| {
                SqlError::new(8169, "Conversion failed when converting from a character string to uniqueidentifier.")
            })?;
            let o = guid_order(x).cmp(&guid_order(&y));
            if matches!(a, Guid(_)) { o } else { o.reverse() }
        }
        (Date(_) | DateTime(_) | DateTimeOffset(_) | Time(_), _)
        | (_, Date(_) | DateTime(_) | DateTimeOffset(_) | Time(_)) => {
            let x = as_datetime(a).ok_or_else(|| clash(a, b))?;
            let y = as_datetime(b).ok_or_else(|| clash(a, b))?;
            x.cmp(&y)
        }
        _ => match (a.as_decimal(), b.as_decimal()) {
            (Some((x, xs)), Some((y, ys))) => {
                let s = xs.max(ys);
                let x = rescale(x, xs, s).ok_or_else(|| clash(a, b))?;
                let y = rescale(y, ys, s).ok_or_else(|| clash(a, b))?;
                x.cmp(&y)
            }
            _ => return Err(clash(a, b)),
        },
    })
}

fn clash(a: &Value, b: &Value) -> SqlError {
    SqlError::new(
        206,
        format!(
            "Operand type clash: {} is incompatible with {}",
            a.natural_type().name(),
            b.natural_type().name()
        ),
    )
}

/// SQL Server orders uniqueidentifiers by byte groups starting from the last six bytes.
fn guid_order(g: &Uuid) -> [u8; 16] {
    let b = g.as_bytes();
    [
        b[10], b[11], b[12], b[13], b[14], b[15], b[8], b[9], b[6], b[7], b[4], b[5], b[0], b[1],
        b[2], b[3],
    ]
}

/// A datetime view used for comparisons across date/time types (offsets compare in UTC).
pub(crate) fn as_datetime(v: &Value) -> Option<NaiveDateTime> {
    match v {
        Value::Date(d) => d.and_hms_opt(0, 0, 0),
        Value::DateTime(d) => Some(*d),
        Value::DateTimeOffset(d) => Some(d.naive_utc()),
        Value::Time(t) => NaiveDate::from_ymd_opt(1900, 1, 1).map(|d| d.and_time(*t)),
        Value::Str(s) => parse_datetime(s.trim()),
        _ => None,
    }
}
