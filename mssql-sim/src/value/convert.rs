//! Converting a value to a column's type, as INSERT/UPDATE and CAST do.

use chrono::{Datelike, NaiveTime, Timelike};
use uuid::Uuid;

use crate::error::{SqlError, SqlResult};
use crate::value::hierarchyid;
use crate::value::spatial::{self, Kind};
use crate::value::text::{
    normalize_xml, parse_offset, round_datetime, round_time, to_code_page_1252,
};
use crate::value::types::{Len, SqlType};
use crate::value::values::{Value, as_datetime, parse_decimal, rescale};
use crate::value::{cp1252_byte, styles, variant};

/// Converts a value to a column's type, as INSERT/UPDATE and CAST do.
pub(crate) fn coerce(v: Value, ty: &SqlType) -> SqlResult<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let fail = |v: &Value| {
        SqlError::conversion(format!(
            "Conversion failed when converting the {} value '{}' to data type {}.",
            v.natural_type().name(),
            v,
            ty.name()
        ))
    };
    let overflow = || {
        SqlError::new(
            8115,
            format!(
                "Arithmetic overflow error converting expression to data type {}.",
                ty.name()
            ),
        )
    };
    // A sql_variant converts by its value as its base type does (a datetime base to text is
    // style 0, a decimal base to binary carries the base's precision); to sql_variant, a
    // value keeps its type.
    let binary = matches!(ty, SqlType::Binary(_) | SqlType::VarBinary(_));
    let v = match (v, ty) {
        (v, SqlType::Variant) => return variant::wrap(v, None),
        // A character base converts to binary as its bytes: code page 1252 (the default
        // collation's) for char/varchar, UTF-16LE for nchar/nvarchar.
        (Value::Variant(inner, base), _) if binary && base.is_string() => match *inner {
            Value::Str(text) => Value::Bytes(match base {
                SqlType::NChar(_) | SqlType::NVarChar(_) => {
                    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
                }
                _ => text
                    .chars()
                    .map(|c| cp1252_byte(c).unwrap_or(b'?'))
                    .collect(),
            }),
            other => other,
        },
        (Value::Variant(inner, base), t) if t.is_string() => {
            match styles::default_text(&inner, &base) {
                Some(text) => Value::Str(text),
                None => *inner,
            }
        }
        (Value::Variant(inner, SqlType::Decimal(p, s)), _) if binary => match *inner {
            Value::Decimal(x, xs) => {
                Value::Bytes(decimal_bytes(rescale(x, xs, s).ok_or_else(overflow)?, p, s))
            }
            other => other,
        },
        (Value::Variant(inner, _), _) => *inner,
        (v, _) => v,
    };
    Ok(match ty {
        SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            let i = match &v {
                Value::Str(s) => s.trim().parse::<i64>().map_err(|_| fail(&v))?,
                Value::Float(f) => {
                    if !f.is_finite() || f.abs() > 9.2e18 {
                        return Err(overflow());
                    }
                    *f as i64
                }
                other => other.as_i64().map_err(|_| fail(&v))?.ok_or_else(|| fail(&v))?,
            };
            let ok = match ty {
                SqlType::TinyInt => (0..=255).contains(&i),
                SqlType::SmallInt => i16::try_from(i).is_ok(),
                SqlType::Int => i32::try_from(i).is_ok(),
                _ => true,
            };
            if !ok {
                return Err(overflow());
            }
            Value::Int(i)
        }
        SqlType::Bit => match &v {
            Value::Str(s) => match s.trim().to_lowercase().as_str() {
                "true" | "1" => Value::Bit(true),
                "false" | "0" => Value::Bit(false),
                _ => return Err(fail(&v)),
            },
            other => Value::Bit(other.as_f64().ok_or_else(|| fail(&v))? != 0.0),
        },
        SqlType::Decimal(p, s) => {
            let (x, xs) = match &v {
                Value::Float(f) => parse_decimal(&format!("{:.*}", *s as usize, f)).ok_or_else(|| fail(&v))?,
                other => other.as_decimal().ok_or_else(|| fail(&v))?,
            };
            let r = rescale(x, xs, *s).ok_or_else(overflow)?;
            if r.unsigned_abs() >= 10u128.pow(*p as u32) {
                return Err(overflow());
            }
            Value::Decimal(r, *s)
        }
        SqlType::Money | SqlType::SmallMoney => {
            let (x, xs) = match &v {
                Value::Float(f) => parse_decimal(&format!("{f:.4}")).ok_or_else(|| fail(&v))?,
                other => other.as_decimal().ok_or_else(|| fail(&v))?,
            };
            let r = rescale(x, xs, 4).ok_or_else(overflow)?;
            let m = i64::try_from(r).map_err(|_| overflow())?;
            if matches!(ty, SqlType::SmallMoney) && i32::try_from(m).is_err() {
                return Err(overflow());
            }
            Value::Money(m)
        }
        SqlType::Real => Value::Float(v.as_f64().ok_or_else(|| fail(&v))? as f32 as f64),
        SqlType::Float => Value::Float(v.as_f64().ok_or_else(|| fail(&v))?),
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_)
        | SqlType::Text | SqlType::NText | SqlType::Xml => {
            let s = v.to_text().ok_or_else(|| fail(&v))?;
            let s = match ty {
                SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text => to_code_page_1252(&s),
                _ => s,
            };
            // Lengths count bytes of the code page for char/varchar (one per character of
            // 1252) and UTF-16 code units for nchar/nvarchar: a character outside the Basic
            // Multilingual Plane takes two.
            let unicode = matches!(ty, SqlType::NChar(_) | SqlType::NVarChar(_));
            let units = |s: &str| {
                if unicode {
                    s.encode_utf16().count()
                } else {
                    s.chars().count()
                }
            };
            let limit = match ty {
                SqlType::Char(n) | SqlType::NChar(n) => Some(*n as usize),
                SqlType::VarChar(Len::N(n)) | SqlType::NVarChar(Len::N(n)) => Some(*n as usize),
                _ => None,
            };
            let mut s = s;
            if let Some(n) = limit
                && units(&s) > n
            {
                // Trailing blanks past the length are dropped without an error (ANSI_PADDING
                // ON, SQL Server's default); anything else is truncation, error 2628.
                let trimmed = s.trim_end_matches(' ');
                if units(trimmed) > n {
                    return Err(SqlError::new(
                        2628,
                        "String or binary data would be truncated.".to_string(),
                    )
                    .statement_only());
                }
                let keep = trimmed.len() + (n - units(trimmed));
                s.truncate(keep);
            }
            match ty {
                SqlType::Char(n) | SqlType::NChar(n) => {
                    let pad = (*n as usize).saturating_sub(units(&s));
                    Value::Str(format!("{s}{}", " ".repeat(pad)))
                }
                SqlType::Xml => Value::Str(normalize_xml(&s)),
                _ => Value::Str(s),
            }
        }
        SqlType::Binary(_) | SqlType::VarBinary(_) | SqlType::RowVersion | SqlType::Image => {
            let b = match v {
                Value::Bytes(b) | Value::HierarchyId(b) | Value::Spatial(_, b) => b,
                // A number converted to a shorter binary keeps its low-order bytes
                // (CAST(1 AS binary(2)) is 0x0001; Microsoft, "binary and varbinary").
                Value::Int(i) => match ty {
                    SqlType::Binary(n) | SqlType::VarBinary(Len::N(n)) if *n < 8 => {
                        i.to_be_bytes()[8 - usize::from(*n)..].to_vec()
                    }
                    _ => i.to_be_bytes().to_vec(),
                },
                Value::Str(ref s) => s.as_bytes().to_vec(),
                Value::Guid(g) => g.to_bytes_le().to_vec(),
                // The precision its digits need: a literal's own type (1.5 is numeric(2,1)).
                Value::Decimal(x, s) => match v.natural_type() {
                    SqlType::Decimal(p, _) => decimal_bytes(x, p, s),
                    _ => return Err(fail(&v)),
                },
                ref other => return Err(fail(other)),
            };
            let limit = match ty {
                SqlType::Binary(n) | SqlType::VarBinary(Len::N(n)) => Some(*n as usize),
                _ => None,
            };
            if let Some(n) = limit
                && b.len() > n {
                    return Err(SqlError::new(2628, "String or binary data would be truncated.")
                        .statement_only());
                }
            match ty {
                SqlType::Binary(n) => {
                    let mut b = b;
                    b.resize(*n as usize, 0);
                    Value::Bytes(b)
                }
                _ => Value::Bytes(b),
            }
        }
        SqlType::Date => Value::Date(as_datetime(&v).ok_or_else(|| fail(&v))?.date()),
        SqlType::Time(p) => {
            let t = match &v {
                Value::Time(t) => *t,
                Value::Str(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f")
                    .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M"))
                    .map_err(|_| fail(&v))?,
                other => as_datetime(other).ok_or_else(|| fail(&v))?.time(),
            };
            Value::Time(round_time(t, *p))
        }
        SqlType::DateTime | SqlType::SmallDateTime | SqlType::DateTime2(_) => {
            let d = as_datetime(&v).ok_or_else(|| fail(&v))?;
            let d = match ty {
                SqlType::DateTime2(p) => round_datetime(d, *p),
                SqlType::SmallDateTime => {
                    let secs = d.time().num_seconds_from_midnight();
                    let mins = (secs + 30) / 60;
                    d.date()
                        .and_hms_opt(0, 0, 0)
                        .and_then(|x| x.checked_add_signed(chrono::Duration::minutes(mins as i64)))
                        .ok_or_else(|| fail(&v))?
                }
                _ => {
                    // datetime keeps 1/300 s ticks
                    let ns = d.time().nanosecond() as u64;
                    let ticks = (ns * 300 + 500_000_000) / 1_000_000_000;
                    let base = d.date().and_hms_opt(d.hour(), d.minute(), d.second()).ok_or_else(|| fail(&v))?;
                    base.checked_add_signed(chrono::Duration::nanoseconds(
                        (ticks * 1_000_000_000 / 300) as i64,
                    ))
                    .ok_or_else(|| fail(&v))?
                }
            };
            if d.year() < 1753 && matches!(ty, SqlType::DateTime) {
                return Err(SqlError::new(242, "The conversion of a varchar data type to a datetime data type resulted in an out-of-range value."));
            }
            Value::DateTime(d)
        }
        SqlType::DateTimeOffset(p) => {
            let d = match &v {
                Value::DateTimeOffset(d) => *d,
                Value::Str(s) => match parse_offset(s.trim()) {
                    Some(d) => d,
                    None => {
                        let n = as_datetime(&v).ok_or_else(|| fail(&v))?;
                        n.and_utc().fixed_offset()
                    }
                },
                other => as_datetime(other).ok_or_else(|| fail(&v))?.and_utc().fixed_offset(),
            };
            let local = round_datetime(d.naive_local(), *p);
            Value::DateTimeOffset(
                local
                    .and_local_timezone(*d.offset())
                    .single()
                    .unwrap_or(d),
            )
        }
        SqlType::UniqueIdentifier => match &v {
            Value::Guid(g) => Value::Guid(*g),
            Value::Str(s) => Value::Guid(Uuid::parse_str(s.trim()).map_err(|_| {
                SqlError::new(8169, "Conversion failed when converting from a character string to uniqueidentifier.")
            })?),
            Value::Bytes(b) if b.len() == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Value::Guid(Uuid::from_bytes_le(a))
            }
            other => return Err(fail(other)),
        },
        SqlType::Variant => variant::wrap(v, None)?,
        SqlType::Geometry | SqlType::Geography => {
            let kind = if matches!(ty, SqlType::Geometry) {
                Kind::Geometry
            } else {
                Kind::Geography
            };
            match v {
                Value::Spatial(k, b) if k == kind => Value::Spatial(k, b),
                // Parse: WKT with the type's default SRID.
                Value::Str(s) => {
                    let shape = spatial::parse_wkt(kind, &s)?;
                    Value::Spatial(kind, spatial::to_native(kind, kind.default_srid(), &shape))
                }
                Value::Bytes(b) => {
                    spatial::from_native(kind, &b)?;
                    Value::Spatial(kind, b)
                }
                other => {
                    return Err(SqlError::new(
                        529,
                        format!(
                            "Explicit conversion from data type {} to {} is not allowed.",
                            other.natural_type().name(),
                            ty.name()
                        ),
                    ));
                }
            }
        }
        SqlType::HierarchyId => match v {
            Value::HierarchyId(b) => Value::HierarchyId(b),
            Value::Str(s) => Value::HierarchyId(hierarchyid::parse(&s)?),
            Value::Bytes(b) => {
                hierarchyid::decode(&b)?;
                Value::HierarchyId(b)
            }
            other => {
                return Err(SqlError::new(
                    529,
                    format!(
                        "Explicit conversion from data type {} to hierarchyid is not allowed.",
                        other.natural_type().name()
                    ),
                ));
            }
        },
    })
}

/// A decimal/numeric converted to binary, as SQL Server gives it: the precision, the scale,
/// a zero byte, the sign (1 positive, 0 negative), then the magnitude little-endian in as many
/// 4-byte words as it needs (at least one). Recorded against servers:
/// `CAST(CAST(126 AS numeric(10,4)) AS varbinary(10))` is 0x0A040001E0391300
/// (sqlservercentral.com, "The Binary Cast"); decimal(19,6) 1 is 0x1306000140420F00, -1
/// 0x1306000040420F00, 0 0x1306000100000000 (stackoverflow.com/questions/14812528). That the
/// magnitude keeps only its significant words is inferred from these (decimal(10,4) and
/// decimal(19,6) store 8 bytes but show 4).
pub(crate) fn decimal_bytes(unscaled: i128, precision: u8, scale: u8) -> Vec<u8> {
    let magnitude = unscaled.unsigned_abs().to_le_bytes();
    let words = magnitude
        .chunks(4)
        .rposition(|w| w.iter().any(|b| *b != 0))
        .map_or(1, |i| i + 1);
    let mut out = vec![precision, scale, 0, u8::from(unscaled >= 0)];
    out.extend_from_slice(&magnitude[..words * 4]);
    out
}
