//! Column types and values of the in-memory engine, with SQL Server's conversion rules
//! reduced to what the simulator needs.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use uuid::Uuid;

use crate::error::{SqlError, SqlResult};

/// Declared length of a variable-length column: a number of characters/bytes or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    /// `(n)`
    N(u16),
    /// `(max)`, sent as a PLP stream.
    Max,
}

/// A SQL Server column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlType {
    /// `tinyint`
    TinyInt,
    /// `smallint`
    SmallInt,
    /// `int`
    Int,
    /// `bigint`
    BigInt,
    /// `bit`
    Bit,
    /// `decimal(p, s)` / `numeric(p, s)`
    Decimal(u8, u8),
    /// `money`
    Money,
    /// `smallmoney`
    SmallMoney,
    /// `real`
    Real,
    /// `float`
    Float,
    /// `char(n)`
    Char(u16),
    /// `varchar(n|max)`
    VarChar(Len),
    /// `nchar(n)`
    NChar(u16),
    /// `nvarchar(n|max)`
    NVarChar(Len),
    /// `text`
    Text,
    /// `ntext`
    NText,
    /// `binary(n)`
    Binary(u16),
    /// `varbinary(n|max)`
    VarBinary(Len),
    /// `date`
    Date,
    /// `time(p)`
    Time(u8),
    /// `datetime`
    DateTime,
    /// `smalldatetime`
    SmallDateTime,
    /// `datetime2(p)`
    DateTime2(u8),
    /// `datetimeoffset(p)`
    DateTimeOffset(u8),
    /// `uniqueidentifier`
    UniqueIdentifier,
    /// `xml`
    Xml,
    /// `rowversion` / `timestamp`
    RowVersion,
    /// `image` (deprecated large binary, sent as IMAGE on the wire)
    Image,
}

impl SqlType {
    /// The type's name as `sys.types` and `INFORMATION_SCHEMA` show it.
    pub fn name(&self) -> &'static str {
        match self {
            SqlType::TinyInt => "tinyint",
            SqlType::SmallInt => "smallint",
            SqlType::Int => "int",
            SqlType::BigInt => "bigint",
            SqlType::Bit => "bit",
            SqlType::Decimal(..) => "decimal",
            SqlType::Money => "money",
            SqlType::SmallMoney => "smallmoney",
            SqlType::Real => "real",
            SqlType::Float => "float",
            SqlType::Char(_) => "char",
            SqlType::VarChar(_) => "varchar",
            SqlType::NChar(_) => "nchar",
            SqlType::NVarChar(_) => "nvarchar",
            SqlType::Text => "text",
            SqlType::NText => "ntext",
            SqlType::Binary(_) => "binary",
            SqlType::VarBinary(_) => "varbinary",
            SqlType::Date => "date",
            SqlType::Time(_) => "time",
            SqlType::DateTime => "datetime",
            SqlType::SmallDateTime => "smalldatetime",
            SqlType::DateTime2(_) => "datetime2",
            SqlType::DateTimeOffset(_) => "datetimeoffset",
            SqlType::UniqueIdentifier => "uniqueidentifier",
            SqlType::Xml => "xml",
            SqlType::RowVersion => "timestamp",
            SqlType::Image => "image",
        }
    }

    /// `system_type_id` in `sys.types`.
    pub fn type_id(&self) -> u8 {
        match self {
            SqlType::TinyInt => 48,
            SqlType::SmallInt => 52,
            SqlType::Int => 56,
            SqlType::BigInt => 127,
            SqlType::Bit => 104,
            SqlType::Decimal(..) => 106,
            SqlType::Money => 60,
            SqlType::SmallMoney => 122,
            SqlType::Real => 59,
            SqlType::Float => 62,
            SqlType::Char(_) => 175,
            SqlType::VarChar(_) => 167,
            SqlType::NChar(_) => 239,
            SqlType::NVarChar(_) => 231,
            SqlType::Text => 35,
            SqlType::NText => 99,
            SqlType::Binary(_) => 173,
            SqlType::VarBinary(_) => 165,
            SqlType::Date => 40,
            SqlType::Time(_) => 41,
            SqlType::DateTime => 61,
            SqlType::SmallDateTime => 58,
            SqlType::DateTime2(_) => 42,
            SqlType::DateTimeOffset(_) => 43,
            SqlType::UniqueIdentifier => 36,
            SqlType::Xml => 241,
            SqlType::RowVersion => 189,
            SqlType::Image => 34,
        }
    }

    /// `max_length` as `sys.columns` reports it (-1 for max types).
    pub fn max_length(&self) -> i16 {
        match self {
            SqlType::TinyInt | SqlType::Bit => 1,
            SqlType::SmallInt => 2,
            SqlType::Int | SqlType::SmallMoney | SqlType::Real | SqlType::SmallDateTime => 4,
            SqlType::BigInt | SqlType::Money | SqlType::Float | SqlType::DateTime => 8,
            SqlType::RowVersion => 8,
            SqlType::Decimal(p, _) => decimal_len(*p) as i16 - 1,
            SqlType::Char(n) | SqlType::Binary(n) => *n as i16,
            SqlType::NChar(n) => (*n as i16).saturating_mul(2),
            SqlType::VarChar(Len::N(n)) | SqlType::VarBinary(Len::N(n)) => *n as i16,
            SqlType::NVarChar(Len::N(n)) => (*n as i16).saturating_mul(2),
            SqlType::VarChar(Len::Max) | SqlType::NVarChar(Len::Max) => -1,
            SqlType::VarBinary(Len::Max) | SqlType::Xml => -1,
            SqlType::Text | SqlType::NText | SqlType::Image => 16,
            SqlType::Date => 3,
            SqlType::Time(p) => 3 + time_extra(*p) as i16,
            SqlType::DateTime2(p) => 6 + time_extra(*p) as i16,
            SqlType::DateTimeOffset(p) => 8 + time_extra(*p) as i16,
            SqlType::UniqueIdentifier => 16,
        }
    }

    /// Numeric precision as `sys.columns` reports it.
    pub fn precision(&self) -> u8 {
        match self {
            SqlType::TinyInt => 3,
            SqlType::SmallInt => 5,
            SqlType::Int => 10,
            SqlType::BigInt => 19,
            SqlType::Bit => 1,
            SqlType::Decimal(p, _) => *p,
            SqlType::Money => 19,
            SqlType::SmallMoney => 10,
            SqlType::Real => 24,
            SqlType::Float => 53,
            SqlType::Time(p) => 9 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTime2(p) => 20 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTimeOffset(p) => 27 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTime => 23,
            SqlType::SmallDateTime => 16,
            SqlType::Date => 10,
            _ => 0,
        }
    }

    /// Numeric scale as `sys.columns` reports it.
    pub fn scale(&self) -> u8 {
        match self {
            SqlType::Decimal(_, s) => *s,
            SqlType::Money | SqlType::SmallMoney => 4,
            SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => *p,
            SqlType::DateTime => 3,
            _ => 0,
        }
    }

    /// Whether values compare as text.
    pub(crate) fn is_string(&self) -> bool {
        matches!(
            self,
            SqlType::Char(_)
                | SqlType::VarChar(_)
                | SqlType::NChar(_)
                | SqlType::NVarChar(_)
                | SqlType::Text
                | SqlType::NText
                | SqlType::Xml
        )
    }

    /// The T-SQL spelling, e.g. `nvarchar(max)` or `decimal(18,2)`.
    pub fn sql(&self) -> String {
        let len = |l: &Len| match l {
            Len::N(n) => n.to_string(),
            Len::Max => "max".to_string(),
        };
        match self {
            SqlType::Decimal(p, s) => format!("decimal({p},{s})"),
            SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => {
                format!("{}({n})", self.name())
            }
            SqlType::VarChar(l) | SqlType::NVarChar(l) | SqlType::VarBinary(l) => {
                format!("{}({})", self.name(), len(l))
            }
            SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => {
                format!("{}({p})", self.name())
            }
            _ => self.name().to_string(),
        }
    }
}

/// Bytes of the fractional-seconds part of time/datetime2/datetimeoffset for a scale.
pub(crate) fn time_extra(scale: u8) -> u8 {
    match scale {
        0..=2 => 0,
        3..=4 => 1,
        _ => 2,
    }
}

/// Wire length of a decimal with the given precision, including the sign byte.
pub(crate) fn decimal_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

/// A single value. `Null` is typeless; the column or expression type says what it is.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
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
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
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
            Value::Decimal(v, s) => Some(
                i64::try_from(*v / 10i128.pow(*s as u32))
                    .map_err(|_| SqlError::new(8115, "Arithmetic overflow error."))?,
            ),
            Value::Money(m) => Some(*m / 10_000),
            Value::Float(f) => Some(*f as i64),
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
        })
    }

    /// A hashable key for primary-key indexes and grouping: equal values give equal keys
    /// (strings compare case-insensitively as under the default CI collation).
    pub(crate) fn key(&self) -> String {
        match self {
            Value::Null => "\u{0}N".to_string(),
            Value::Str(s) => format!("s{}", s.trim_end().to_lowercase()),
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

/// Compares two non-null values the way SQL Server would after implicit conversion.
pub(crate) fn compare(a: &Value, b: &Value) -> SqlResult<Ordering> {
    use Value::*;
    Ok(match (a, b) {
        (Str(x), Str(y)) => {
            let (x, y) = (x.trim_end().to_lowercase(), y.trim_end().to_lowercase());
            x.cmp(&y)
        }
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

/// Parses the literal forms T-SQL scripts commonly use.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y%m%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ];
    for f in FORMATS {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

fn parse_offset(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = zulu(s);
    let s = s.as_ref();
    for f in [
        "%Y-%m-%d %H:%M:%S%.f %:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    None
}

/// Rounds fractional seconds to `scale` digits, half up, as SQL Server stores `time(p)`,
/// `datetime2(p)` and `datetimeoffset(p)` (time(2) keeps '10:23:45.678' as .68: ground truth
/// row 44); past the last second of the day a `time` wraps to midnight.
fn round_time(t: NaiveTime, scale: u8) -> NaiveTime {
    round_datetime(NaiveDate::MIN.and_time(t), scale).time()
}

/// [`round_time`] for a date and time: the carry moves the date too.
fn round_datetime(d: NaiveDateTime, scale: u8) -> NaiveDateTime {
    let unit = 10i64.pow(9 - u32::from(scale.min(7)));
    let ns = i64::from(d.nanosecond() % 1_000_000_000);
    let rounded = (ns + unit / 2) / unit * unit;
    d.with_nanosecond(0)
        .and_then(|base| base.checked_add_signed(chrono::Duration::nanoseconds(rounded)))
        .unwrap_or(d)
}

/// Accepts `Z` for +00:00 (ISO 8601), as SQL Server does in datetimeoffset literals.
fn zulu(s: &str) -> std::borrow::Cow<'_, str> {
    match s.strip_suffix(['Z', 'z']) {
        Some(rest) => std::borrow::Cow::Owned(format!("{rest}+00:00")),
        None => std::borrow::Cow::Borrowed(s),
    }
}

/// Windows code page 1252 (the code page of SQL_Latin1_General_CP1_CI_AS and
/// Latin1_General_*): bytes 0x80-0x9F, `None` where 1252 has no character; the other bytes
/// are Latin-1.
#[rustfmt::skip]
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'), None, Some('‚'), Some('ƒ'), Some('„'), Some('…'), Some('†'), Some('‡'),
    Some('ˆ'), Some('‰'), Some('Š'), Some('‹'), Some('Œ'), None, Some('Ž'), None,
    None, Some('‘'), Some('’'), Some('“'), Some('”'), Some('•'), Some('–'), Some('—'),
    Some('˜'), Some('™'), Some('š'), Some('›'), Some('œ'), None, Some('ž'), Some('Ÿ'),
];

/// The code page 1252 byte of `c`, if 1252 has it.
pub(crate) fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..0x100).contains(&u) {
        return u8::try_from(u).ok();
    }
    CP1252_HIGH
        .iter()
        .position(|x| *x == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// The character of a code page 1252 byte (undefined bytes map to the C1 control of the same
/// number, as Windows' MultiByteToWideChar does).
pub(crate) fn cp1252_char(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)].unwrap_or(char::from(b)),
        _ => char::from(b),
    }
}

/// Base letters of Latin Extended-A (U+0100-U+017F), `?` where Windows' best-fit table for
/// 1252 has no letter (ĳ, ĸ, ŉ, ŋ, ſ ...). Characters of the block that 1252 has (Œ œ Š š Ÿ
/// Ž ž) never get here.
const LATIN_EXT_A_BEST_FIT: &str = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKk?LlLlLlLlLlNnNnNn???OoOoOo??RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZz?";

/// Text as a non-Unicode column of the default collation (code page 1252) stores it: every
/// character 1252 has is kept, Latin letters with marks it lacks become their base letter
/// (best fit: 'č' → 'c', ground truth row 60), anything else becomes '?'.
pub(crate) fn to_code_page_1252(s: &str) -> String {
    s.chars()
        .map(|c| {
            if cp1252_byte(c).is_some() {
                return c;
            }
            let u = c as u32;
            if (0x100..0x180).contains(&u) {
                return LATIN_EXT_A_BEST_FIT
                    .chars()
                    .nth((u - 0x100) as usize)
                    .unwrap_or('?');
            }
            '?'
        })
        .collect()
}

/// XML as SQL Server stores it and returns it: the XML declaration (`<?xml ...?>`) is not
/// kept, whitespace-only text between tags is insignificant and dropped (the default
/// parsing of a string converted to xml), and an element with no content is written
/// self-closing (`<a></a>` → `<a/>`). Other text, attributes and comments stay as written.
pub(crate) fn normalize_xml(s: &str) -> String {
    let mut rest = s.trim_start();
    if rest.starts_with("<?xml")
        && let Some(end) = rest.find("?>")
    {
        rest = &rest[end + 2..];
    }
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    let b = rest.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let Some(close) = rest[i..].find('>').map(|e| i + e) else {
                out.push_str(&rest[i..]);
                break;
            };
            let tag = &rest[i..=close];
            out.push_str(tag);
            i = close + 1;
            // A start tag immediately followed by its end tag becomes self-closing.
            let is_start = !tag.starts_with("</")
                && !tag.starts_with("<?")
                && !tag.starts_with("<!")
                && !tag.ends_with("/>");
            if is_start {
                let name: String = tag[1..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                    .collect();
                let end_tag = format!("</{name}>");
                if rest[i..].starts_with(&end_tag) {
                    out.pop();
                    out.push_str("/>");
                    i += end_tag.len();
                }
            }
        } else {
            let next = rest[i..].find('<').map_or(b.len(), |e| i + e);
            let text = &rest[i..next];
            if !text.trim().is_empty() {
                out.push_str(text);
            }
            i = next;
        }
    }
    out
}

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
                Value::Bytes(b) => b,
                Value::Int(i) => i.to_be_bytes().to_vec(),
                Value::Str(ref s) => s.as_bytes().to_vec(),
                Value::Guid(g) => g.to_bytes_le().to_vec(),
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
    })
}

/// Parses a T-SQL type spelling such as `nvarchar(max)`, `DECIMAL(18, 2)` or `datetime2(3)`.
pub(crate) fn parse_type(text: &str) -> SqlResult<SqlType> {
    let t = text.trim().to_lowercase().replace(' ', "");
    let (name, args) = match t.split_once('(') {
        Some((n, rest)) => (n.to_string(), rest.trim_end_matches(')').to_string()),
        None => (t.clone(), String::new()),
    };
    let name = name
        .trim_matches(|c| c == '[' || c == ']')
        .trim_start_matches("sys.")
        .to_string();
    let nums: Vec<&str> = if args.is_empty() {
        vec![]
    } else {
        args.split(',').collect()
    };
    let num = |i: usize, d: u32| -> SqlResult<u32> {
        match nums.get(i) {
            None => Ok(d),
            Some(s) => s.parse().map_err(|_| SqlError::syntax(s)),
        }
    };
    let len = |d: u16, max_n: u32| -> SqlResult<Len> {
        match nums.first() {
            None => Ok(Len::N(d)),
            Some(&"max") => Ok(Len::Max),
            Some(s) => {
                let n: u32 = s.parse().map_err(|_| SqlError::syntax(s))?;
                if n == 0 || n > max_n {
                    return Err(SqlError::new(
                        131,
                        format!(
                            "The size ({n}) given to the type '{name}' exceeds the maximum allowed for any data type ({max_n})."
                        ),
                    ));
                }
                Ok(Len::N(n as u16))
            }
        }
    };
    let fixed = |d: u16, max_n: u32| -> SqlResult<u16> {
        match len(d, max_n)? {
            Len::N(n) => Ok(n),
            Len::Max => Err(SqlError::syntax("max")),
        }
    };
    let scale7 = |i| -> SqlResult<u8> { Ok(num(i, 7)?.min(7) as u8) };
    Ok(match name.as_str() {
        "tinyint" => SqlType::TinyInt,
        "smallint" => SqlType::SmallInt,
        "int" | "integer" => SqlType::Int,
        "bigint" => SqlType::BigInt,
        "bit" => SqlType::Bit,
        "decimal" | "numeric" | "dec" => {
            let p = num(0, 18)?;
            let s = num(1, 0)?;
            if !(1..=38).contains(&p) || s > p {
                return Err(SqlError::new(
                    2750,
                    format!("Column or parameter has an invalid precision/scale ({p},{s})."),
                ));
            }
            SqlType::Decimal(p as u8, s as u8)
        }
        "money" => SqlType::Money,
        "smallmoney" => SqlType::SmallMoney,
        "real" => SqlType::Real,
        "float" | "double" | "doubleprecision" => {
            if num(0, 53)? <= 24 {
                SqlType::Real
            } else {
                SqlType::Float
            }
        }
        "char" | "character" => SqlType::Char(fixed(1, 8000)?),
        "varchar" | "charactervarying" => SqlType::VarChar(len(1, 8000)?),
        "nchar" => SqlType::NChar(fixed(1, 4000)?),
        "nvarchar" | "sysname" => {
            if name == "sysname" {
                SqlType::NVarChar(Len::N(128))
            } else {
                SqlType::NVarChar(len(1, 4000)?)
            }
        }
        "text" => SqlType::Text,
        "ntext" => SqlType::NText,
        "binary" => SqlType::Binary(fixed(1, 8000)?),
        "varbinary" => SqlType::VarBinary(len(1, 8000)?),
        "image" => SqlType::Image,
        "date" => SqlType::Date,
        "time" => SqlType::Time(scale7(0)?),
        "datetime" => SqlType::DateTime,
        "smalldatetime" => SqlType::SmallDateTime,
        "datetime2" => SqlType::DateTime2(scale7(0)?),
        "datetimeoffset" => SqlType::DateTimeOffset(scale7(0)?),
        "uniqueidentifier" => SqlType::UniqueIdentifier,
        "xml" => SqlType::Xml,
        "rowversion" | "timestamp" => SqlType::RowVersion,
        other => {
            return Err(SqlError::new(
                2715,
                format!("Column, parameter, or variable #1: Cannot find data type {other}."),
            ));
        }
    })
}
