//! Column values and rows.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// An exact decimal number: `unscaled × 10^-scale`.
///
/// An `i128` holds every `decimal(38, s)` value SQL Server can store, so nothing goes through a
/// float or a 28-digit decimal type on the way.
///
/// ```
/// use cdc_core::Decimal;
/// let d: Decimal = "-12.3400".parse().unwrap();
/// assert_eq!((d.unscaled, d.scale), (-123400, 4));
/// assert_eq!(d.to_string(), "-12.3400");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Decimal {
    /// The digits without the decimal point.
    pub unscaled: i128,
    /// How many of those digits are after the decimal point.
    pub scale: u8,
}

impl Decimal {
    /// A decimal from its unscaled digits and scale.
    pub const fn new(unscaled: i128, scale: u8) -> Self {
        Self { unscaled, scale }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        let sign = if self.unscaled < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

/// The text was not a decimal number that fits in 38 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal number: {0:?}")]
pub struct ParseDecimalError(String);

impl FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseDecimalError(s.to_string());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let scale = u8::try_from(frac.len()).map_err(|_| err())?;
        let digits = format!("{int}{frac}");
        let magnitude: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| err())?
        };
        Ok(Decimal::new(
            if negative { -magnitude } else { magnitude },
            scale,
        ))
    }
}

/// One column value.
///
/// Each variant corresponds to one or more [`DataType`](crate::DataType)s: strings of every
/// flavour (`char`, `nvarchar(max)`, `xml`, …) are [`Value::String`]; binary types, `rowversion`
/// and the opaque types are [`Value::Bytes`]; `money` is a [`Value::Decimal`] with scale 4.
/// Temporal values keep SQL Server's full range (years 1 to 9999) and 100 ns resolution.
///
/// Equality is exact, and for `datetimeoffset` it also requires the same offset: chrono alone
/// would call `10:00+02:00` and `08:00Z` equal, which would hide a lost offset.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "v")]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// `bit`.
    Bool(bool),
    /// `tinyint`.
    U8(u8),
    /// `smallint`.
    I16(i16),
    /// `int`.
    I32(i32),
    /// `bigint`.
    I64(i64),
    /// `real`.
    F32(f32),
    /// `float`.
    F64(f64),
    /// `decimal`, `numeric`, `money`, `smallmoney`.
    Decimal(Decimal),
    /// Character types and `xml`.
    String(String),
    /// Binary types, `rowversion` and opaque types.
    Bytes(Vec<u8>),
    /// `date`.
    Date(NaiveDate),
    /// `time(p)`.
    Time(NaiveTime),
    /// `datetime`, `smalldatetime`, `datetime2(p)`: no time zone.
    DateTime(NaiveDateTime),
    /// `datetimeoffset(p)`: the instant together with the offset it was written with.
    DateTimeOffset(DateTime<FixedOffset>),
    /// `uniqueidentifier`.
    Uuid(Uuid),
    /// A value the source did not get although it exists: an unchanged large-object column
    /// (`varchar(max)`, `nvarchar(max)`, `varbinary(max)`, `text`, `ntext`, `image`, `xml`)
    /// in an update's before image, which SQL Server's change table holds as NULL. It is not
    /// SQL `NULL`: the column was not set to NULL. The Debezium codec writes it as Debezium's
    /// `unavailable.value.placeholder` (default `__debezium_unavailable_value`; a binary
    /// column gets the placeholder's UTF-8 bytes) and reads that placeholder back as this.
    Unavailable,
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a == b,
            (F64(a), F64(b)) => a == b,
            (Decimal(a), Decimal(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Time(a), Time(b)) => a == b,
            (DateTime(a), DateTime(b)) => a == b,
            (DateTimeOffset(a), DateTimeOffset(b)) => a == b && a.offset() == b.offset(),
            (Uuid(a), Uuid(b)) => a == b,
            (Unavailable, Unavailable) => true,
            _ => false,
        }
    }
}

impl Value {
    /// Whether this is SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A rough count of the bytes this value occupies, used for batch and buffer accounting.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::Null | Value::Unavailable => 1,
            Value::Bool(_) | Value::U8(_) => 1,
            Value::I16(_) => 2,
            Value::I32(_) | Value::F32(_) | Value::Date(_) => 4,
            Value::I64(_) | Value::F64(_) | Value::Time(_) => 8,
            Value::DateTime(_) => 12,
            Value::DateTimeOffset(_) => 14,
            Value::Decimal(_) | Value::Uuid(_) => 16,
            Value::String(s) => s.len(),
            Value::Bytes(b) => b.len(),
        }
    }
}

/// The values of one row, aligned with the columns of its [`TableSchema`](crate::TableSchema).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// A row from its values.
    pub fn new(values: Vec<Value>) -> Self {
        Row(values)
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The value in column `index`, if the row has that many columns.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.0.get(index)
    }

    /// A rough count of the bytes the row occupies.
    pub fn approx_size(&self) -> usize {
        self.0.iter().map(Value::approx_size).sum()
    }
}

impl From<Vec<Value>> for Row {
    fn from(values: Vec<Value>) -> Self {
        Row(values)
    }
}
