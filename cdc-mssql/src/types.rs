//! Driver values to cdc-core values, losslessly, from tiberius's raw column data.
//!
//! Decimals come from tiberius's `i128` and scale (never through a 28-digit decimal type);
//! `money` is selected as `decimal(19,4)` because tiberius decodes money into an `f64`;
//! `datetimeoffset` is rebuilt from its raw UTC date-time and offset; `datetime2(7)` keeps its
//! 100 ns increments; `datetime` is rounded to milliseconds the way SQL Server shows it.

mod spatial;
mod variant;

use cdc_core::{DataType, Decimal, Value};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use tiberius::ColumnData;

/// The select-list expression for a column, so that the driver hands over exact values.
/// `utf8`: the column has a `_UTF8` collation (SQL Server 2019+), whose `char`/`varchar`/`text`
/// bytes are UTF-8; tiberius 0.13 decodes non-Unicode text by the collation's LCID code page
/// and ignores its UTF-8 flag, so such a column is read converted to `nvarchar(max)` (lossless:
/// UTF-8 and UTF-16 hold the same characters).
pub(crate) fn select_expression(column: &str, data_type: &DataType, utf8: bool) -> String {
    let quoted = quote(column);
    match data_type {
        DataType::Char { .. } | DataType::VarChar { .. } | DataType::Text if utf8 => {
            format!("CAST({quoted} AS nvarchar(max)) AS {quoted}")
        }
        DataType::Money | DataType::SmallMoney => {
            format!("CAST({quoted} AS decimal(19,4)) AS {quoted}")
        }
        // sql_variant as it is, so its base type arrives with it, then what tiberius's
        // decoding loses of that type (see `variant`).
        DataType::Opaque { type_name } if type_name == "sql_variant" => {
            variant::select_expression(&quoted)
        }
        // geometry/geography: EWKB, the WKB with its SRID (see `spatial`).
        DataType::Opaque { type_name } if is_spatial(type_name) => {
            spatial::select_expression(&quoted)
        }
        // hierarchyid: its stored bytes ([MS-SSCLRT]).
        DataType::Opaque { .. } => format!("CAST({quoted} AS varbinary(max)) AS {quoted}"),
        _ => quoted,
    }
}

fn is_spatial(type_name: &str) -> bool {
    type_name == "geometry" || type_name == "geography"
}

/// `[name]` with `]` doubled, as SQL Server quotes identifiers.
pub(crate) fn quote(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

fn day_one() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default()
}

fn day_1900() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default()
}

fn date_from_days(days: u32) -> Option<NaiveDate> {
    day_one().checked_add_signed(TimeDelta::days(i64::from(days)))
}

fn time_from_increments(increments: u64, scale: u8) -> Option<NaiveTime> {
    let nanos = increments.checked_mul(10u64.checked_pow(9u32.checked_sub(u32::from(scale))?)?)?;
    let secs = u32::try_from(nanos / 1_000_000_000).ok()?;
    let frac = u32::try_from(nanos % 1_000_000_000).ok()?;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)
}

fn datetime2(dt: tiberius::time::DateTime2) -> Option<NaiveDateTime> {
    Some(NaiveDateTime::new(
        date_from_days(dt.date().days())?,
        time_from_increments(dt.time().increments(), dt.time().scale())?,
    ))
}

/// A query parameter holding `value`, for keyset predicates over primary keys.
pub(crate) fn param(value: &Value) -> Option<Box<dyn tiberius::ToSql + Send + Sync>> {
    Some(match value {
        Value::Bool(v) => Box::new(*v),
        Value::U8(v) => Box::new(*v),
        Value::I16(v) => Box::new(*v),
        Value::I32(v) => Box::new(*v),
        Value::I64(v) => Box::new(*v),
        Value::F32(v) => Box::new(*v),
        Value::F64(v) => Box::new(*v),
        Value::Decimal(d) => Box::new(tiberius::numeric::Numeric::new_with_scale(
            d.unscaled, d.scale,
        )),
        Value::String(s) => Box::new(s.clone()),
        Value::Bytes(b) => Box::new(b.clone()),
        Value::Date(d) => Box::new(*d),
        Value::Time(t) => Box::new(*t),
        Value::DateTime(dt) => Box::new(*dt),
        Value::DateTimeOffset(dt) => Box::new(*dt),
        Value::Uuid(u) => Box::new(*u),
        _ => return None,
    })
}

/// Converts one column's cells it owns: `data` is its first cell, `rest` the row's following
/// cells, from which a column whose [`select_expression`] selects more than one cell takes
/// the others (a `sql_variant`'s base type). Strings and binaries move out of the driver's
/// row instead of being copied.
pub(crate) fn into_value(
    data: ColumnData<'static>,
    rest: &mut dyn Iterator<Item = ColumnData<'static>>,
    data_type: &DataType,
) -> Result<Value, String> {
    if let DataType::Opaque { type_name } = data_type
        && type_name == "sql_variant"
    {
        let base = variant::Base::read(rest)?;
        return Ok(variant::encode(&data, &base)?.map_or(Value::Null, Value::Bytes));
    }
    if let (DataType::Opaque { type_name }, ColumnData::Binary(Some(b))) = (data_type, &data)
        && is_spatial(type_name)
    {
        return spatial::to_ewkb(b).map(Value::Bytes);
    }
    match data {
        ColumnData::String(Some(s)) if !matches!(data_type, DataType::Xml) => {
            Ok(Value::String(s.into_owned()))
        }
        ColumnData::Binary(Some(b)) => Ok(Value::Bytes(b.into_owned())),
        other => to_value(&other, data_type),
    }
}

/// Converts one cell; the error is a reason, the caller names the column.
pub(crate) fn to_value(data: &ColumnData<'static>, data_type: &DataType) -> Result<Value, String> {
    use ColumnData as C;
    let bad = || format!("cannot read {data:?} as {data_type}");
    Ok(match data {
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
        | C::Xml(None)
        | C::DateTime(None)
        | C::SmallDateTime(None)
        | C::Time(None)
        | C::Date(None)
        | C::DateTime2(None)
        | C::DateTimeOffset(None) => Value::Null,
        C::U8(Some(v)) => match data_type {
            DataType::TinyInt => Value::U8(*v),
            _ => return Err(bad()),
        },
        C::I16(Some(v)) => Value::I16(*v),
        C::I32(Some(v)) => Value::I32(*v),
        C::I64(Some(v)) => Value::I64(*v),
        C::F32(Some(v)) => Value::F32(*v),
        C::F64(Some(v)) => match data_type {
            DataType::Real => Value::F32(*v as f32),
            DataType::Float => Value::F64(*v),
            _ => {
                return Err(format!(
                    "{data_type} arrived as a float; select it as decimal(19,4)"
                ));
            }
        },
        C::Bit(Some(v)) => Value::Bool(*v),
        C::String(Some(s)) => Value::String(s.to_string()),
        C::Guid(Some(u)) => Value::Uuid(*u),
        C::Binary(Some(b)) => Value::Bytes(b.to_vec()),
        C::Xml(Some(x)) => Value::String(x.as_ref().to_string()),
        C::Numeric(Some(n)) => {
            let (_, scale) = data_type
                .decimal_precision_scale()
                .unwrap_or((38, n.scale()));
            let unscaled = rescale(n.value(), n.scale(), scale).ok_or_else(bad)?;
            Value::Decimal(Decimal::new(unscaled, scale))
        }
        C::DateTime(Some(dt)) => {
            let date = day_1900()
                .checked_add_signed(TimeDelta::days(i64::from(dt.days())))
                .ok_or_else(bad)?;
            // 1/300 s ticks, rounded to milliseconds as SQL Server shows them (.000/.003/.007).
            let millis = (u64::from(dt.seconds_fragments()) * 10 + 1) / 3;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(
                u32::try_from(millis / 1000).map_err(|_| bad())?,
                u32::try_from(millis % 1000).map_err(|_| bad())? * 1_000_000,
            )
            .ok_or_else(bad)?;
            Value::DateTime(NaiveDateTime::new(date, time))
        }
        C::SmallDateTime(Some(dt)) => {
            let date = day_1900()
                .checked_add_signed(TimeDelta::days(i64::from(dt.days())))
                .ok_or_else(bad)?;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(
                u32::from(dt.seconds_fragments()) * 60,
                0,
            )
            .ok_or_else(bad)?;
            Value::DateTime(NaiveDateTime::new(date, time))
        }
        C::Date(Some(d)) => Value::Date(date_from_days(d.days()).ok_or_else(bad)?),
        C::Time(Some(t)) => {
            Value::Time(time_from_increments(t.increments(), t.scale()).ok_or_else(bad)?)
        }
        C::DateTime2(Some(dt)) => Value::DateTime(datetime2(*dt).ok_or_else(bad)?),
        C::DateTimeOffset(Some(dto)) => {
            // The wire holds the UTC date-time and the offset in minutes.
            let utc = datetime2(dto.datetime2()).ok_or_else(bad)?;
            let offset = FixedOffset::east_opt(i32::from(dto.offset()) * 60).ok_or_else(bad)?;
            Value::DateTimeOffset(DateTime::from_naive_utc_and_offset(utc, offset))
        }
    })
}

fn rescale(value: i128, from: u8, to: u8) -> Option<i128> {
    match from.cmp(&to) {
        std::cmp::Ordering::Equal => Some(value),
        std::cmp::Ordering::Less => value.checked_mul(10i128.checked_pow(u32::from(to - from))?),
        std::cmp::Ordering::Greater => {
            let factor = 10i128.checked_pow(u32::from(from - to))?;
            (value % factor == 0).then_some(value / factor)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// tiberius 0.13 reads non-Unicode text by the collation's LCID code page and ignores the
    /// UTF-8 flag (found while giving the simulator collations): a `_UTF8` `varchar` is read
    /// as `nvarchar(max)`, other text and other columns as they are.
    #[test]
    fn utf8_collated_text_is_read_as_nvarchar() {
        let varchar = DataType::VarChar { length: Some(20) };
        assert_eq!(
            select_expression("name", &varchar, true),
            "CAST([name] AS nvarchar(max)) AS [name]"
        );
        assert_eq!(select_expression("name", &varchar, false), "[name]");
        assert_eq!(
            select_expression("t", &DataType::Text, true),
            "CAST([t] AS nvarchar(max)) AS [t]"
        );
        let nvarchar = DataType::NVarChar { length: Some(20) };
        assert_eq!(select_expression("n", &nvarchar, true), "[n]");
    }

    #[test]
    fn datetime_ticks_round_like_sql_server() {
        let v = |ticks| {
            to_value(
                &ColumnData::DateTime(Some(tiberius::time::DateTime::new(0, ticks))),
                &DataType::DateTime,
            )
            .unwrap()
        };
        let ms = |m: u32| {
            Value::DateTime(NaiveDateTime::new(
                day_1900(),
                NaiveTime::from_num_seconds_from_midnight_opt(m / 1000, (m % 1000) * 1_000_000)
                    .unwrap(),
            ))
        };
        assert_eq!(v(1), ms(3));
        assert_eq!(v(2), ms(7));
        assert_eq!(v(3), ms(10));
        assert_eq!(v(299), ms(997));
    }

    #[test]
    fn decimals_keep_38_digits() {
        let big = 10i128.pow(38) - 1;
        let n = tiberius::numeric::Numeric::new_with_scale(big, 10);
        assert_eq!(
            to_value(
                &ColumnData::Numeric(Some(n)),
                &DataType::Decimal {
                    precision: 38,
                    scale: 10
                }
            )
            .unwrap(),
            Value::Decimal(Decimal::new(big, 10))
        );
    }

    #[test]
    fn datetimeoffset_keeps_its_offset() {
        use tiberius::time::{Date, DateTime2, DateTimeOffset, Time};
        // 2024-05-17 06:30 UTC written at +02:00.
        let days = (NaiveDate::from_ymd_opt(2024, 5, 17).unwrap() - day_one()).num_days() as u32;
        let raw = DateTimeOffset::new(
            DateTime2::new(
                Date::new(days),
                Time::new(6 * 3600 * 10_000_000 + 30 * 60 * 10_000_000 + 1, 7),
            ),
            120,
        );
        let Value::DateTimeOffset(v) = to_value(
            &ColumnData::DateTimeOffset(Some(raw)),
            &DataType::DateTimeOffset { precision: 7 },
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(v.to_rfc3339(), "2024-05-17T08:30:00.000000100+02:00");
    }
}
