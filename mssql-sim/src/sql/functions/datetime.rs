//! The date and time functions: `DATEPART`/`DATENAME` and `DATEADD`/`DATEDIFF` (with
//! their datepart names and overflow errors as SQL Server reports them), `TODATETIMEOFFSET`;
//! and `CONCAT`, whose implicit conversion of a date/time argument takes the argument's
//! declared type.

use sqlparser::ast::Expr;

use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::rel::RelCol;
use crate::value::Value;

impl Exec<'_> {
    /// DATEPART(part, date): an int. `tzoffset`/`tz` is the offset in minutes (0 for types
    /// without one); the usual parts by their names and abbreviations.
    pub(crate) fn datepart(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        use chrono::{Datelike, Timelike};
        let args = Self::arg_exprs(f);
        if args.len() != 2 {
            return Err(SqlError::new(
                174,
                "The datepart function requires 2 argument(s).",
            ));
        }
        let part = match &args[0] {
            Expr::Identifier(i) => i.value.to_lowercase(),
            _ => {
                return Err(SqlError::new(
                    1023,
                    "Invalid parameter 1 specified for datepart.",
                ));
            }
        };
        let v = self.eval(&args[1], cols, row, group)?;
        let (dt, offset_minutes) = match v {
            Value::Null => return Ok(Value::Null),
            Value::DateTime(d) => (d, 0),
            Value::Date(d) => (d.and_time(chrono::NaiveTime::MIN), 0),
            Value::Time(t) => (chrono::NaiveDate::MIN.and_time(t), 0),
            Value::DateTimeOffset(d) => (d.naive_local(), d.offset().local_minus_utc() / 60),
            Value::Str(s) => match crate::value::parse_datetime(&s) {
                Some(d) => (d, 0),
                None => {
                    return Err(SqlError::new(
                        241,
                        "Conversion failed when converting date and/or time from character string.",
                    ));
                }
            },
            // SQL Server's text names the argument's type (error catalogue 8116).
            other => {
                return Err(SqlError::new(
                    8116,
                    format!(
                        "Argument data type {} is invalid for argument 2 of datepart function.",
                        other.natural_type().name()
                    ),
                ));
            }
        };
        let n = match part.as_str() {
            "tzoffset" | "tz" => offset_minutes as i64,
            "year" | "yy" | "yyyy" => dt.year() as i64,
            "quarter" | "qq" | "q" => (dt.month0() / 3 + 1) as i64,
            "month" | "mm" | "m" => dt.month() as i64,
            "dayofyear" | "dy" | "y" => dt.ordinal() as i64,
            "day" | "dd" | "d" => dt.day() as i64,
            // With SQL Server's default DATEFIRST 7 (Sunday is day 1).
            "weekday" | "dw" => dt.weekday().num_days_from_sunday() as i64 + 1,
            "hour" | "hh" => dt.hour() as i64,
            "minute" | "mi" | "n" => dt.minute() as i64,
            "second" | "ss" | "s" => dt.second() as i64,
            "millisecond" | "ms" => (dt.nanosecond() / 1_000_000) as i64,
            "microsecond" | "mcs" => (dt.nanosecond() / 1_000) as i64,
            "nanosecond" | "ns" => dt.nanosecond() as i64,
            other => {
                return Err(SqlError::new(
                    155,
                    format!("'{other}' is not a recognized datepart option."),
                ));
            }
        };
        Ok(Value::Int(n))
    }

    /// CONCAT(a, b, …): each argument converted to text — a date/time one as its type's
    /// default text (`datetime` in style 0: value::styles), NULL as the empty string — and
    /// joined (Microsoft, "CONCAT": "implicitly converts all arguments to string types").
    pub(crate) fn concat(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        let mut out = String::new();
        for e in Self::arg_exprs(f) {
            let v = self.eval(&e, cols, row, group)?;
            let text = match self.static_type(&e, cols) {
                Some((source, _)) => crate::value::styles::default_text(&v, &source),
                None => None,
            };
            if let Some(t) = text.or_else(|| v.to_text()) {
                out.push_str(&t);
            }
        }
        Ok(Value::Str(out))
    }

    /// DATEADD(part, n, date) and DATEDIFF(part, start, end).
    pub(crate) fn date_function(
        &mut self,
        name: &str,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        let args = Self::arg_exprs(f);
        if args.len() != 3 {
            return Err(SqlError::new(
                174,
                format!("The {name} function requires 3 argument(s)."),
            ));
        }
        let part = match &args[0] {
            Expr::Identifier(i) => i.value.to_lowercase(),
            _ => {
                return Err(SqlError::new(
                    1023,
                    format!("Invalid parameter 1 specified for {name}."),
                ));
            }
        };
        let a = self.eval(&args[1], cols, row, group)?;
        let b = self.eval(&args[2], cols, row, group)?;
        if a.is_null() || b.is_null() {
            return Ok(Value::Null);
        }
        let unit_ns: Option<i64> = match part.as_str() {
            "day" | "dd" | "d" | "dayofyear" | "dy" | "y" => Some(86_400_000_000_000),
            "week" | "wk" | "ww" => Some(7 * 86_400_000_000_000),
            "hour" | "hh" => Some(3_600_000_000_000),
            "minute" | "mi" | "n" => Some(60_000_000_000),
            "second" | "ss" | "s" => Some(1_000_000_000),
            "millisecond" | "ms" => Some(1_000_000),
            "microsecond" | "mcs" => Some(1_000),
            "nanosecond" | "ns" => Some(1),
            _ => None,
        };
        let months: Option<i64> = match part.as_str() {
            "year" | "yy" | "yyyy" => Some(12),
            "quarter" | "qq" | "q" => Some(3),
            "month" | "mm" | "m" => Some(1),
            _ => None,
        };
        let bad_part =
            || SqlError::new(155, format!("'{part}' is not a recognized {name} option."));
        if name == "dateadd" {
            let n = a.as_i64()?.unwrap_or(0);
            let base = crate::value::as_datetime(&b)
                .ok_or_else(|| SqlError::conversion("DATEADD needs a date/time value"))?;
            let moved = match (unit_ns, months) {
                (Some(u), _) => {
                    base.checked_add_signed(chrono::Duration::nanoseconds(n.saturating_mul(u)))
                }
                (None, Some(m)) => {
                    let total = n.saturating_mul(m);
                    if total >= 0 {
                        base.checked_add_months(chrono::Months::new(total as u32))
                    } else {
                        base.checked_sub_months(chrono::Months::new(total.unsigned_abs() as u32))
                    }
                }
                _ => return Err(bad_part()),
            }
            .ok_or_else(|| {
                SqlError::new(
                    517,
                    "Adding a value to a 'datetime' column caused an overflow.",
                )
            })?;
            return Ok(match b {
                Value::Date(_) => Value::Date(moved.date()),
                Value::DateTimeOffset(d) => {
                    Value::DateTimeOffset(moved.and_utc().with_timezone(d.offset()))
                }
                _ => Value::DateTime(moved),
            });
        }
        let x = crate::value::as_datetime(&a)
            .ok_or_else(|| SqlError::conversion("DATEDIFF needs date/time values"))?;
        let y = crate::value::as_datetime(&b)
            .ok_or_else(|| SqlError::conversion("DATEDIFF needs date/time values"))?;
        use chrono::{Datelike, Timelike};
        let diff = match (unit_ns, months) {
            // DATEDIFF counts unit boundaries crossed, so both ends are truncated first.
            (Some(u), _) => {
                let ns = |d: chrono::NaiveDateTime| -> i128 {
                    let days = d.date().num_days_from_ce() as i128;
                    days * 86_400_000_000_000
                        + d.time().num_seconds_from_midnight() as i128 * 1_000_000_000
                        + d.time().nanosecond() as i128
                };
                let u = u as i128;
                (ns(y).div_euclid(u) - ns(x).div_euclid(u)) as i64
            }
            (None, Some(m)) => {
                let idx = |d: chrono::NaiveDateTime| (d.year() as i64 * 12 + d.month0() as i64) / m;
                idx(y) - idx(x)
            }
            _ => return Err(bad_part()),
        };
        Ok(Value::Int(diff))
    }
}

/// TODATETIMEOFFSET(expression, offset): the same local date and time at the given offset
/// (minutes as an int, or `[+|-]hh:mm`); offsets beyond ±14:00 fail with 9812.
pub(super) fn to_datetimeoffset(v: Value, offset: Value) -> SqlResult<Value> {
    let minutes = match offset {
        Value::Null => return Ok(Value::Null),
        Value::Int(n) => n,
        Value::Str(s) => {
            let t = s.trim();
            let (sign, rest) = match t.strip_prefix('-') {
                Some(r) => (-1, r),
                None => (1, t.strip_prefix('+').unwrap_or(t)),
            };
            let mut it = rest.split(':');
            let h = it.next().and_then(|x| x.parse::<i64>().ok());
            let m = it.next().and_then(|x| x.parse::<i64>().ok());
            match (h, m) {
                (Some(h), Some(m)) => sign * (h * 60 + m),
                _ => {
                    return Err(SqlError::new(
                        9812,
                        "The timezone provided to builtin function todatetimeoffset is invalid.",
                    ));
                }
            }
        }
        other => {
            return Err(SqlError::new(
                8116,
                format!(
                    "Argument data type {} is invalid for argument 2 of todatetimeoffset function.",
                    other.natural_type().name()
                ),
            ));
        }
    };
    let naive = match v {
        Value::Null => return Ok(Value::Null),
        Value::DateTime(d) => d,
        Value::Date(d) => d.and_time(chrono::NaiveTime::MIN),
        Value::DateTimeOffset(d) => d.naive_local(),
        Value::Str(s) => crate::value::parse_datetime(&s).ok_or_else(|| {
            SqlError::new(
                241,
                "Conversion failed when converting date and/or time from character string.",
            )
        })?,
        other => {
            return Err(SqlError::new(
                8116,
                format!(
                    "Argument data type {} is invalid for argument 1 of todatetimeoffset function.",
                    other.natural_type().name()
                ),
            ));
        }
    };
    let tz = (minutes.abs() <= 14 * 60)
        .then(|| chrono::FixedOffset::east_opt((minutes * 60) as i32))
        .flatten()
        .ok_or_else(|| {
            SqlError::new(
                9812,
                "The timezone provided to builtin function todatetimeoffset is invalid.",
            )
        })?;
    use chrono::TimeZone;
    match tz.from_local_datetime(&naive).single() {
        Some(d) => Ok(Value::DateTimeOffset(d)),
        None => Err(SqlError::new(
            9812,
            "The timezone provided to builtin function todatetimeoffset is invalid.",
        )),
    }
}
