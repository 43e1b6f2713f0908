//! Column values ⇄ JSON, in the representation Debezium's Connect schemas prescribe.

use super::debezium_schema::Logical;
use super::handling::Handling;
use crate::{DataType, Decimal, Error, Result, Value};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, Timelike};
use serde_json::{Number, Value as Json};
use std::fmt::Write as _;
use std::io::Write as _;
use uuid::Uuid;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Appends `value`, declared as `data_type` and written as `logical`, to `out`. The error is
/// a reason; the caller names the column.
pub(super) fn put(
    out: &mut Vec<u8>,
    value: &Value,
    data_type: &DataType,
    logical: Logical,
    handling: &Handling,
) -> Result<(), String> {
    let mismatch = || format!("value {value:?} does not fit type {data_type}");
    let json = match (logical, value) {
        (_, Value::Null) => Json::Null,
        (Logical::Bool, Value::Bool(b)) => Json::Bool(*b),
        (Logical::Int16, Value::U8(v)) => Json::from(*v),
        (Logical::Int16, Value::I16(v)) => Json::from(*v),
        (Logical::Int32, Value::I32(v)) => Json::from(*v),
        (Logical::Int64, Value::I64(v)) => Json::from(*v),
        (Logical::Float32, Value::F32(v)) => float(f64::from(*v), v.to_string()),
        (Logical::Float64, Value::F64(v)) => float(*v, v.to_string()),
        (
            Logical::Decimal { .. } | Logical::DecimalDouble | Logical::DecimalString,
            Value::Decimal(d),
        ) => {
            let scale = data_type
                .decimal_precision_scale()
                .map_or(d.scale, |(_, s)| s);
            if d.scale != scale {
                return Err(format!(
                    "decimal {d} has scale {}, the column {scale}",
                    d.scale
                ));
            }
            match logical {
                // The nearest double: Rust's parse rounds correctly, as Java's
                // BigDecimal.doubleValue does.
                Logical::DecimalDouble => d
                    .to_string()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Json::Number)
                    .ok_or_else(mismatch)?,
                Logical::DecimalString => Json::String(d.to_string()),
                _ => Json::String(BASE64.encode(twos_complement(d.unscaled))),
            }
        }
        (Logical::String, Value::String(s)) => Json::String(s.clone()),
        (
            Logical::Bytes | Logical::Base64Text | Logical::Base64UrlText | Logical::HexText,
            Value::Bytes(b),
        ) => Json::String(binary_text(logical, b)),
        // An unchanged large-object value: Debezium's placeholder, as text or as its bytes.
        (Logical::String, Value::Unavailable) => Json::String(handling.placeholder.to_string()),
        (
            Logical::Bytes | Logical::Base64Text | Logical::Base64UrlText | Logical::HexText,
            Value::Unavailable,
        ) => Json::String(binary_text(logical, handling.placeholder.as_bytes())),
        (_, Value::Unavailable) => {
            return Err(format!(
                "an unavailable value in a {data_type} column; only character and binary \
                 (large-object) columns can be unavailable"
            ));
        }
        (Logical::Date | Logical::ConnectDate, Value::Date(d)) => {
            Json::from((*d - epoch()).num_days())
        }
        (Logical::TimeMillis | Logical::ConnectTime, Value::Time(t)) => {
            Json::from(time_nanos(t) / 1_000_000)
        }
        (Logical::TimeMicros, Value::Time(t)) => Json::from(time_nanos(t) / 1_000),
        (Logical::TimeNanos, Value::Time(t)) => Json::from(time_nanos(t)),
        (Logical::TimestampMillis | Logical::ConnectTimestamp, Value::DateTime(dt)) => {
            Json::from(dt.and_utc().timestamp_millis())
        }
        (Logical::TimestampMicros, Value::DateTime(dt)) => {
            Json::from(dt.and_utc().timestamp_micros())
        }
        (Logical::TimestampNanos, Value::DateTime(dt)) => {
            let utc = dt.and_utc();
            let nanos = i128::from(utc.timestamp()) * 1_000_000_000
                + i128::from(utc.timestamp_subsec_nanos());
            match i64::try_from(nanos) {
                Ok(n) => Json::from(n),
                // Beyond int64 (before 1677 or after 2262): the exact integer, which a
                // `serde_json::Value` cannot hold, so it is written as text.
                Err(_) => {
                    let _ = write!(out, "{nanos}");
                    return Ok(());
                }
            }
        }
        (Logical::Zoned { .. }, Value::DateTimeOffset(dt)) => Json::String(zoned_text(dt)),
        (Logical::Uuid, Value::Uuid(u)) => {
            Json::String(u.hyphenated().to_string().to_ascii_uppercase())
        }
        _ => return Err(mismatch()),
    };
    let _ = serde_json::to_writer(&mut *out, &json);
    Ok(())
}

/// Bytes as the text `logical` prescribes.
pub(super) fn binary_text(logical: Logical, bytes: &[u8]) -> String {
    match logical {
        Logical::Base64UrlText => URL_SAFE.encode(bytes),
        Logical::HexText => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut text = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                text.push(char::from(DIGITS[usize::from(b >> 4)]));
                text.push(char::from(DIGITS[usize::from(b & 0x0f)]));
            }
            text
        }
        _ => BASE64.encode(bytes),
    }
}

/// Hex text as bytes: pairs of hex digits and nothing else (`u8::from_str_radix` would also
/// take a sign, reading `+b` as 0x0b).
fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16);
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| match pair {
            [high, low] => u8::try_from(digit(*high)? << 4 | digit(*low)?).ok(),
            _ => None,
        })
        .collect()
}

/// Whether `json` for a column written as `logical` needs its exact text to decode: a
/// nanosecond timestamp beyond int64, which `serde_json` parses into a lossy float.
pub(super) fn needs_exact_text(json: &Json, logical: Logical) -> bool {
    logical == Logical::TimestampNanos && json.is_number() && json.as_i64().is_none()
}

/// A nanosecond timestamp from its exact JSON text.
pub(super) fn nanos_timestamp(text: &str) -> Option<Value> {
    let nanos: i128 = text.trim().parse().ok()?;
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let frac = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    Some(Value::DateTime(
        DateTime::from_timestamp(secs, frac)?.naive_utc(),
    ))
}

/// `d` at `scale`: exact, or, when `round` is set, rounded half away from zero.
fn rescale(d: Decimal, scale: u8, round: bool) -> Option<Decimal> {
    use std::cmp::Ordering;
    match d.scale.cmp(&scale) {
        Ordering::Equal => Some(d),
        Ordering::Less => {
            let factor = 10i128.checked_pow(u32::from(scale - d.scale))?;
            Some(Decimal::new(d.unscaled.checked_mul(factor)?, scale))
        }
        Ordering::Greater => {
            let factor = 10i128.checked_pow(u32::from(d.scale - scale))?;
            let (quotient, remainder) = (d.unscaled / factor, d.unscaled % factor);
            if remainder == 0 {
                return Some(Decimal::new(quotient, scale));
            }
            if !round {
                return None;
            }
            let away = remainder.unsigned_abs() * 2 >= factor.unsigned_abs();
            let adjusted = if away {
                quotient + d.unscaled.signum()
            } else {
                quotient
            };
            Some(Decimal::new(adjusted, scale))
        }
    }
}

/// Writes floats in their shortest form (`0.1`, not `0.10000000149011612` for an `f32`).
fn float(wide: f64, shortest: String) -> Json {
    shortest
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .or_else(|| Number::from_f64(wide))
        .map_or(Json::Null, Json::Number)
}

/// Debezium's `ZonedTimestamp` text: Java's ISO-8601 offset date-time, whose fraction has
/// as many digits as it needs (none for whole seconds, `.45` for 450 ms: trailing zeros
/// dropped, whatever the column's precision) and whose zero offset is `Z`
/// (`DateTimeFormatter.ISO_OFFSET_DATE_TIME`, seen from Debezium 3.6.1 on a
/// `datetimeoffset(3)` column).
pub(super) fn zoned_text(dt: &DateTime<FixedOffset>) -> String {
    let mut text = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = dt.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    let offset = dt.offset().local_minus_utc();
    if offset == 0 {
        text.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        let _ = write!(text, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60);
        if !abs.is_multiple_of(60) {
            let _ = write!(text, ":{:02}", abs % 60);
        }
    }
    text
}

fn time_nanos(t: &NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000_000 + i64::from(t.nanosecond())
}

/// Big-endian two's complement in the fewest bytes, as Kafka Connect's Decimal is written.
fn twos_complement(n: i128) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

fn from_twos_complement(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    Some(i128::from_be_bytes(wide))
}

/// Decodes `json` as a value of `data_type` written as `logical`; `path` names the place for
/// errors and is called only for one (every value of every record comes here). Text equal to
/// the placeholder (or, in a binary column, bytes equal to its bytes) decodes as
/// [`Value::Unavailable`].
pub(super) fn decode(
    json: &Json,
    data_type: &DataType,
    logical: Logical,
    handling: &Handling,
    path: impl Fn() -> String,
) -> Result<Value> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let bad = |what: &str| {
        Error::decode(
            path(),
            format!("expected {what} for {data_type}, found {json}"),
        )
    };
    let int = || json.as_i64().ok_or_else(|| bad("an integer"));
    let text = || json.as_str().ok_or_else(|| bad("a string"));
    let base64 = || BASE64.decode(text()?).map_err(|_| bad("base64"));
    let column_scale = data_type.decimal_precision_scale().map(|(_, s)| s);
    let binary = |bytes: Vec<u8>| {
        if bytes == handling.placeholder.as_bytes() {
            Value::Unavailable
        } else {
            Value::Bytes(bytes)
        }
    };
    Ok(match logical {
        Logical::Bool => Value::Bool(json.as_bool().ok_or_else(|| bad("a boolean"))?),
        Logical::Int16 if *data_type == DataType::TinyInt => {
            Value::U8(u8::try_from(int()?).map_err(|_| bad("0..=255"))?)
        }
        Logical::Int16 => Value::I16(i16::try_from(int()?).map_err(|_| bad("an int16"))?),
        Logical::Int32 => Value::I32(i32::try_from(int()?).map_err(|_| bad("an int32"))?),
        Logical::Int64 => Value::I64(int()?),
        // An f64 parsed from the shortest text of an f32 rounds back to that exact f32.
        Logical::Float32 => Value::F32(json.as_f64().ok_or_else(|| bad("a number"))? as f32),
        Logical::Float64 => Value::F64(json.as_f64().ok_or_else(|| bad("a number"))?),
        Logical::Decimal { scale } => {
            let unscaled = from_twos_complement(&base64()?).ok_or_else(|| bad("decimal bytes"))?;
            Value::Decimal(Decimal::new(unscaled, scale))
        }
        Logical::DecimalDouble => {
            let double = json.as_f64().ok_or_else(|| bad("a number"))?;
            // The shortest text of the double, at the column's scale: what was written when
            // the decimal had at most 15 significant digits; the mode loses the rest.
            let d: Decimal = double
                .to_string()
                .parse()
                .map_err(|_| bad("a finite number"))?;
            Value::Decimal(
                rescale(d, column_scale.unwrap_or(d.scale), true)
                    .ok_or_else(|| bad("a number within the column's precision"))?,
            )
        }
        Logical::DecimalString => {
            let d: Decimal = text()?.parse().map_err(|_| bad("decimal text"))?;
            Value::Decimal(
                rescale(d, column_scale.unwrap_or(d.scale), false)
                    .ok_or_else(|| bad("decimal text at the column's scale"))?,
            )
        }
        Logical::String => {
            let s = text()?;
            if s == &*handling.placeholder {
                Value::Unavailable
            } else {
                Value::String(s.to_string())
            }
        }
        Logical::Bytes | Logical::Base64Text => binary(base64()?),
        Logical::Base64UrlText => binary(
            URL_SAFE
                .decode(text()?)
                .map_err(|_| bad("URL-safe base64"))?,
        ),
        Logical::HexText => binary(from_hex(text()?).ok_or_else(|| bad("hex digits"))?),
        Logical::Date | Logical::ConnectDate => {
            let days = int()?;
            Value::Date(
                epoch()
                    .checked_add_signed(chrono::Duration::days(days))
                    .ok_or_else(|| bad("a date"))?,
            )
        }
        Logical::TimeMillis | Logical::ConnectTime => {
            Value::Time(time_of(int()?.checked_mul(1_000_000), &bad)?)
        }
        Logical::TimeMicros => Value::Time(time_of(int()?.checked_mul(1_000), &bad)?),
        Logical::TimeNanos => Value::Time(time_of(Some(int()?), &bad)?),
        Logical::TimestampMillis | Logical::ConnectTimestamp => Value::DateTime(
            DateTime::from_timestamp_millis(int()?)
                .ok_or_else(|| bad("a timestamp"))?
                .naive_utc(),
        ),
        Logical::TimestampMicros => Value::DateTime(
            DateTime::from_timestamp_micros(int()?)
                .ok_or_else(|| bad("a timestamp"))?
                .naive_utc(),
        ),
        Logical::TimestampNanos => {
            Value::DateTime(DateTime::from_timestamp_nanos(int()?).naive_utc())
        }
        Logical::Zoned { .. } => Value::DateTimeOffset(
            DateTime::parse_from_rfc3339(text()?).map_err(|_| bad("an ISO-8601 timestamp"))?,
        ),
        Logical::Uuid => Value::Uuid(Uuid::parse_str(text()?).map_err(|_| bad("a UUID"))?),
    })
}

fn time_of(nanos: Option<i64>, bad: &dyn Fn(&str) -> Error) -> Result<NaiveTime> {
    let nanos = nanos
        .filter(|n| (0..NANOS_PER_DAY).contains(n))
        .ok_or_else(|| bad("a time of day"))?;
    let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| bad("a time of day"))?;
    let frac = u32::try_from(nanos % 1_000_000_000).map_err(|_| bad("a time of day"))?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac).ok_or_else(|| bad("a time of day"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_with_anything_but_hex_digits_is_a_decode_error() {
        let column = DataType::VarBinary { length: Some(3) };
        let hex = |text: &str| {
            decode(
                &Json::from(text),
                &column,
                Logical::HexText,
                &Handling::default(),
                || "payload.after.b".into(),
            )
        };
        assert_eq!(
            hex("fbff00").ok(),
            Some(Value::Bytes(vec![0xfb, 0xff, 0x00]))
        );
        // `u8::from_str_radix` takes a leading `+`: "+b" must not be read as 0x0b.
        for bad in ["+bff00", "fb+f00", "fbff0", "fbffzz", " fbff0"] {
            let Err(error) = hex(bad) else {
                panic!("{bad:?} decoded as binary");
            };
            assert!(error.to_string().contains("hex digits"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        assert_eq!(twos_complement(0), vec![0]);
        assert_eq!(twos_complement(127), vec![0x7f]);
        assert_eq!(twos_complement(128), vec![0x00, 0x80]);
        assert_eq!(twos_complement(-1), vec![0xff]);
        assert_eq!(twos_complement(-129), vec![0xff, 0x7f]);
        for n in [
            0,
            1,
            -1,
            255,
            -256,
            i128::MAX,
            i128::MIN,
            10i128.pow(38) - 1,
        ] {
            assert_eq!(from_twos_complement(&twos_complement(n)), Some(n));
        }
    }
}
