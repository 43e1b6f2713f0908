//! `CONVERT(<character type>, <date/time value>, style)`: the text forms of SQL Server's date
//! and time styles (Microsoft, "CAST and CONVERT (Transact-SQL)", Date and time styles).
//!
//! Styles 1–7 and 10–12 write a two-digit year (`1` is `mm/dd/yy`), that number plus 100 the
//! century too (`101` is `mm/dd/yyyy`); 0/100, 9/109, 13/113, 20/120, 21/121 and the ISO
//! styles always write it. Fractional seconds show as many digits as
//! the source type has: 3 for `datetime`, the scale for `datetime2`, `time` and
//! `datetimeoffset`. Styles 126 and 127 leave out a fraction that is zero; 127 ends in `Z`.
//! A style SQL Server does not have for date and time values is error 281.
//!
//! Without a style (`CAST`, `CONVERT` without its third argument, and the implicit conversion
//! of an assignment) each type has its default ([`default_text`]): style 0 for `datetime`
//! and `smalldatetime` ("Default for datetime and smalldatetime"), and for `date`, `time`,
//! `datetime2` and `datetimeoffset` the ODBC canonical form ("21 or 25 or 121 … default for
//! time, date, datetime2, and datetimeoffset"), which the types' own pages spell out as
//! their character forms: `YYYY-MM-DD`, `hh:mm:ss[.nnnnnnn]`, `YYYY-MM-DD hh:mm:ss[.nnnnnnn]`
//! and `YYYY-MM-DD hh:mm:ss[.nnnnnnn] [{+|-}hh:mm]`, the fraction as many digits as the
//! type's scale (datetimeoffset: "26 … to 34 characters").

use chrono::{Datelike, NaiveDateTime, Timelike};

use crate::error::{SqlError, SqlResult};
use crate::value::{SqlType, Value, coerce};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The text of `at` in `style`; `digits` is the source type's count of fractional-second
/// digits (3 for `datetime`), `type_name` names it in error 281.
pub(crate) fn format(
    at: NaiveDateTime,
    digits: u32,
    style: i64,
    type_name: &str,
) -> SqlResult<String> {
    let (y4, m, d) = (at.year(), at.month(), at.day());
    // Styles 0, 9, 13, 20, 21 and the ISO ones always write the century.
    let y = if matches!(style, 1..=7 | 10..=12 | 22) {
        format!("{:02}", y4.rem_euclid(100))
    } else {
        format!("{y4:04}")
    };
    let mon = MONTHS[usize::try_from(m.saturating_sub(1)).unwrap_or(0).min(11)];
    let (h, mi, s) = (at.hour(), at.minute(), at.second());
    let h12 = match h % 12 {
        0 => 12,
        h => h,
    };
    let am = if h < 12 { "AM" } else { "PM" };
    let fraction = |n: u32| -> String {
        if n == 0 {
            return String::new();
        }
        let nanos = at.nanosecond().min(999_999_999);
        let scaled = nanos / 10u32.pow(9 - n.min(9));
        format!("{scaled:0width$}", width = n as usize)
    };
    let full = fraction(digits);
    let dot_full = if digits == 0 {
        String::new()
    } else {
        format!(".{full}")
    };
    Ok(match style {
        0 | 100 => format!("{mon} {d:>2} {y} {h12:>2}:{mi:02}{am}"),
        1 | 101 => format!("{m:02}/{d:02}/{y}"),
        2 | 102 => format!("{y}.{m:02}.{d:02}"),
        3 | 103 => format!("{d:02}/{m:02}/{y}"),
        4 | 104 => format!("{d:02}.{m:02}.{y}"),
        5 | 105 => format!("{d:02}-{m:02}-{y}"),
        6 | 106 => format!("{d:02} {mon} {y}"),
        7 | 107 => format!("{mon} {d:02}, {y}"),
        8 | 108 | 24 => format!("{h:02}:{mi:02}:{s:02}"),
        9 | 109 => {
            format!(
                "{mon} {d:>2} {y} {h12:>2}:{mi:02}:{s:02}:{}{am}",
                fraction(digits.max(3))
            )
        }
        10 | 110 => format!("{m:02}-{d:02}-{y}"),
        11 | 111 => format!("{y}/{m:02}/{d:02}"),
        12 | 112 => format!("{y}{m:02}{d:02}"),
        13 | 113 => format!(
            "{d:02} {mon} {y4:04} {h:02}:{mi:02}:{s:02}:{}",
            fraction(digits.max(3))
        ),
        14 | 114 => format!("{h:02}:{mi:02}:{s:02}:{}", fraction(digits.max(3))),
        20 | 120 => format!("{y4:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        21 | 121 | 25 => format!("{y4:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}{dot_full}"),
        22 => format!("{m:02}/{d:02}/{y} {h12:>2}:{mi:02}:{s:02} {am}"),
        23 => format!("{y4:04}-{m:02}-{d:02}"),
        126 | 127 => {
            let frac = if at.nanosecond() == 0 || full.is_empty() {
                String::new()
            } else {
                format!(".{full}")
            };
            let zulu = if style == 127 { "Z" } else { "" };
            format!("{y4:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zulu}")
        }
        _ => {
            return Err(SqlError::new(
                281,
                format!(
                    "{style} is not a valid style number when converting from {type_name} to a character string."
                ),
            ));
        }
    })
}

/// The text of a date/time value `v` in `style`, [`format`] of `at` (its local date and
/// time) except that a `datetimeoffset` keeps its offset where SQL Server was recorded
/// writing it: after a blank in 21/25/121 (`1997-12-31 14:53:00.123 +04:30`), directly after
/// the time in 126 (`1997-12-31T14:53:00.123+04:30`), and 127 is the UTC time with `Z`
/// (`1997-12-31T10:23:00.123Z`; recorded for datetimeoffset(3) '1997-12-31 14:53:00.123
/// +04:30', blog-en-with-hugo.netlify.app "How to Cast a datetimeoffset to String in SQL
/// Server"). Its other styles are written without the offset (unverified).
pub(crate) fn format_value(
    v: &Value,
    at: NaiveDateTime,
    digits: u32,
    style: i64,
    type_name: &str,
) -> SqlResult<String> {
    let Value::DateTimeOffset(d) = v else {
        return format(at, digits, style, type_name);
    };
    Ok(match style {
        127 => format(d.naive_utc(), digits, style, type_name)?,
        126 => format!("{}{}", format(at, digits, style, type_name)?, d.offset()),
        21 | 25 | 121 => format!("{} {}", format(at, digits, style, type_name)?, d.offset()),
        _ => format(at, digits, style, type_name)?,
    })
}

/// The text SQL Server gives a date/time value of type `source` converted to a character
/// type without a style (see the module's documentation); `None` when `source` is no
/// date/time type or `v` no value of it.
pub(crate) fn default_text(v: &Value, source: &SqlType) -> Option<String> {
    let ymd = |at: &NaiveDateTime| format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day());
    let hms = |at: &NaiveDateTime, digits: u8| {
        let whole = format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second());
        if digits == 0 {
            return whole;
        }
        let n = u32::from(digits.min(7));
        let scaled = at.nanosecond().min(999_999_999) / 10u32.pow(9 - n);
        format!("{whole}.{scaled:0width$}", width = n as usize)
    };
    Some(match (source, v) {
        (SqlType::DateTime, Value::DateTime(at)) => format(*at, 3, 0, "datetime").ok()?,
        (SqlType::SmallDateTime, Value::DateTime(at)) => format(*at, 0, 0, "smalldatetime").ok()?,
        (SqlType::DateTime2(p), Value::DateTime(at)) => format!("{} {}", ymd(at), hms(at, *p)),
        (SqlType::Date, Value::Date(d)) => ymd(&d.and_time(chrono::NaiveTime::MIN)),
        (SqlType::Time(p), Value::Time(t)) => hms(&chrono::NaiveDate::MIN.and_time(*t), *p),
        (SqlType::DateTimeOffset(p), Value::DateTimeOffset(d)) => {
            let at = d.naive_local();
            format!("{} {} {}", ymd(&at), hms(&at, *p), d.offset())
        }
        _ => return None,
    })
}

/// `v` converted to `ty` as SQL Server converts a value whose type is `source` (the
/// expression's declared type, where known): a date/time value to a character type takes
/// its type's default text ([`default_text`]), a decimal to a binary type keeps its
/// declared precision and scale (a `sql_variant` does both by its base type, in [`coerce`]).
/// Everything else is [`coerce`].
pub(crate) fn coerce_from(v: Value, source: Option<SqlType>, ty: &SqlType) -> SqlResult<Value> {
    match (&v, source) {
        (Value::Variant(..), _) | (_, None) => {}
        (v, Some(source)) if ty.is_string() => {
            if let Some(text) = default_text(v, &source) {
                return coerce(Value::Str(text), ty);
            }
        }
        // A decimal to binary carries its declared precision and scale.
        (Value::Decimal(x, xs), Some(SqlType::Decimal(p, s)))
            if matches!(ty, SqlType::Binary(_) | SqlType::VarBinary(_)) =>
        {
            if let Some(x) = crate::value::rescale(*x, *xs, s) {
                let bytes = super::convert::decimal_bytes(x, p, s);
                return coerce(Value::Bytes(bytes), ty);
            }
        }
        _ => {}
    }
    coerce(v, ty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(h: u32, mi: u32, s: u32, nanos: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 1, 5)
            .and_then(|d| d.and_hms_nano_opt(h, mi, s, nanos))
            .unwrap_or_default()
    }

    /// The examples of Microsoft's style table, for a datetime (3 digits) and a datetime2(7).
    #[test]
    fn styles_give_sql_servers_text_forms() {
        let t = at(14, 3, 7, 123_000_000);
        let f = |style| format(t, 3, style, "datetime").unwrap_or_default();
        assert_eq!(f(0), "Jan  5 2024  2:03PM");
        assert_eq!(f(100), "Jan  5 2024  2:03PM");
        assert_eq!(f(1), "01/05/24");
        assert_eq!(f(101), "01/05/2024");
        assert_eq!(f(102), "2024.01.05");
        assert_eq!(f(103), "05/01/2024");
        assert_eq!(f(104), "05.01.2024");
        assert_eq!(f(105), "05-01-2024");
        assert_eq!(f(106), "05 Jan 2024");
        assert_eq!(f(107), "Jan 05, 2024");
        assert_eq!(f(108), "14:03:07");
        assert_eq!(f(109), "Jan  5 2024  2:03:07:123PM");
        assert_eq!(f(110), "01-05-2024");
        assert_eq!(f(111), "2024/01/05");
        assert_eq!(f(112), "20240105");
        assert_eq!(f(113), "05 Jan 2024 14:03:07:123");
        assert_eq!(f(114), "14:03:07:123");
        assert_eq!(f(120), "2024-01-05 14:03:07");
        assert_eq!(f(121), "2024-01-05 14:03:07.123");
        assert_eq!(f(23), "2024-01-05");
        assert_eq!(f(126), "2024-01-05T14:03:07.123");
        assert_eq!(f(127), "2024-01-05T14:03:07.123Z");
        let seven = |style| format(t, 7, style, "datetime2").unwrap_or_default();
        assert_eq!(seven(121), "2024-01-05 14:03:07.1230000");
        let whole = at(0, 0, 0, 0);
        assert_eq!(
            format(whole, 3, 126, "datetime").unwrap_or_default(),
            "2024-01-05T00:00:00",
            "126 leaves out a zero fraction"
        );
        assert_eq!(
            format(whole, 3, 100, "datetime").unwrap_or_default(),
            "Jan  5 2024 12:00AM"
        );
    }

    #[test]
    fn a_style_sql_server_lacks_is_error_281() {
        let e = format(at(0, 0, 0, 0), 3, 99, "datetime").err();
        assert_eq!(e.as_ref().map(|e| e.number), Some(281));
        assert_eq!(
            e.map(|e| e.message).unwrap_or_default(),
            "99 is not a valid style number when converting from datetime to a character string."
        );
    }
}
