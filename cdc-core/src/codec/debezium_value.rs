//! Column values ⇄ JSON, in the representation Debezium's Connect schemas prescribe.

use super::debezium_schema::Logical;
use crate::{DataType, Decimal, Error, Result, Value};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Timelike};
use serde_json::{Number, Value as Json};
use uuid::Uuid;

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Encodes `value`, declared as `data_type`. The error is a reason; the caller names the column.
pub(super) fn encode(value: &Value, data_type: &DataType) -> Result<Json, String> {
    let logical = Logical::of(data_type);
    let mismatch = || format!("value {value:?} does not fit type {data_type}");
    Ok(match (logical, value) {
        (_, Value::Null) => Json::Null,
        (Logical::Bool, Value::Bool(b)) => Json::Bool(*b),
        (Logical::Int16, Value::U8(v)) => Json::from(*v),
        (Logical::Int16, Value::I16(v)) => Json::from(*v),
        (Logical::Int32, Value::I32(v)) => Json::from(*v),
        (Logical::Int64, Value::I64(v)) => Json::from(*v),
        (Logical::Float32, Value::F32(v)) => float(f64::from(*v), v.to_string()),
        (Logical::Float64, Value::F64(v)) => float(*v, v.to_string()),
        (Logical::Decimal { scale }, Value::Decimal(d)) => {
            if d.scale != scale {
                return Err(format!(
                    "decimal {d} has scale {}, the column {scale}",
                    d.scale
                ));
            }
            Json::String(BASE64.encode(twos_complement(d.unscaled)))
        }
        (Logical::String, Value::String(s)) => Json::String(s.clone()),
        (Logical::Bytes, Value::Bytes(b)) => Json::String(BASE64.encode(b)),
        (Logical::Date, Value::Date(d)) => Json::from((*d - epoch()).num_days()),
        (Logical::TimeMillis, Value::Time(t)) => Json::from(time_nanos(t) / 1_000_000),
        (Logical::TimeMicros, Value::Time(t)) => Json::from(time_nanos(t) / 1_000),
        (Logical::TimeNanos, Value::Time(t)) => Json::from(time_nanos(t)),
        (Logical::TimestampMillis, Value::DateTime(dt)) => {
            Json::from(dt.and_utc().timestamp_millis())
        }
        (Logical::TimestampMicros, Value::DateTime(dt)) => {
            Json::from(dt.and_utc().timestamp_micros())
        }
        (Logical::TimestampNanos, Value::DateTime(dt)) => {
            Json::from(dt.and_utc().timestamp_nanos_opt().ok_or_else(|| {
                format!("{dt} is outside the range of io.debezium.time.NanoTimestamp (1677-2262)")
            })?)
        }
        (Logical::Zoned { precision }, Value::DateTimeOffset(dt)) => {
            Json::String(dt.to_rfc3339_opts(seconds_format(precision), true))
        }
        (Logical::Uuid, Value::Uuid(u)) => {
            Json::String(u.hyphenated().to_string().to_ascii_uppercase())
        }
        _ => return Err(mismatch()),
    })
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

fn seconds_format(precision: u8) -> SecondsFormat {
    match precision {
        0 => SecondsFormat::Secs,
        1..=3 => SecondsFormat::Millis,
        4..=6 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    }
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

/// Decodes `json` as a value of `data_type`; `path` names the place for errors.
pub(super) fn decode(json: &Json, data_type: &DataType, path: &str) -> Result<Value> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let bad = |what: &str| {
        Error::decode(
            path,
            format!("expected {what} for {data_type}, found {json}"),
        )
    };
    let int = || json.as_i64().ok_or_else(|| bad("an integer"));
    let text = || json.as_str().ok_or_else(|| bad("a string"));
    let base64 = || BASE64.decode(text()?).map_err(|_| bad("base64"));
    let logical = Logical::of(data_type);
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
        Logical::String => Value::String(text()?.to_string()),
        Logical::Bytes => Value::Bytes(base64()?),
        Logical::Date => {
            let days = int()?;
            Value::Date(
                epoch()
                    .checked_add_signed(chrono::Duration::days(days))
                    .ok_or_else(|| bad("a date"))?,
            )
        }
        Logical::TimeMillis => Value::Time(time_of(int()?.checked_mul(1_000_000), &bad)?),
        Logical::TimeMicros => Value::Time(time_of(int()?.checked_mul(1_000), &bad)?),
        Logical::TimeNanos => Value::Time(time_of(Some(int()?), &bad)?),
        Logical::TimestampMillis => Value::DateTime(
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
