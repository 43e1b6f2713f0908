//! Kafka Connect's `TimeBasedPartitioner`: one directory per time window of the commit time
//! or a column, laid out by a Joda-Time `path.format`.

use super::{PartitionContext, Partitioner};
use cdc_core::{BoxError, ChangeEvent, Value};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike, Utc};

/// Where [`TimeBasedPartitioner`] takes the time from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// The commit time of the change (`SourceInfo::commit_time`).
    CommitTime,
    /// A `date`, `datetime*` or `datetimeoffset` column; the commit time when the row has no
    /// value. Naive (`datetime2`) values are taken as already being in the partitioner's zone.
    Column(String),
}

/// The zone [`TimeBasedPartitioner`] renders hours in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
    /// An IANA zone such as `Europe/Zurich`, daylight saving time included.
    Named(chrono_tz::Tz),
}

impl Zone {
    fn local(&self, at: &DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Fixed(offset) => at.with_timezone(offset).naive_local(),
            Zone::Named(tz) => at.with_timezone(tz).naive_local(),
        }
    }
}

/// Hive-style hourly partitions, `year=YYYY/month=MM/day=dd/hour=HH`, in UTC, a fixed offset
/// or an IANA zone.
///
/// ```
/// use s3_sink::{PartitionContext, Partitioner, TimeBasedPartitioner};
/// let events = cdc_core::testing::sample_events("s", 1); // committed 2026-01-01T00:00:00.010Z
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// let utc = TimeBasedPartitioner::commit_time();
/// assert_eq!(utc.partition(&events[0], &ctx).unwrap(), "year=2026/month=01/day=01/hour=00");
/// let minus_five = TimeBasedPartitioner::commit_time().with_offset_hours(-5).unwrap();
/// assert_eq!(minus_five.partition(&events[0], &ctx).unwrap(), "year=2025/month=12/day=31/hour=19");
/// let zurich = TimeBasedPartitioner::commit_time().with_zone("Europe/Zurich").unwrap();
/// assert_eq!(zurich.partition(&events[0], &ctx).unwrap(), "year=2026/month=01/day=01/hour=01");
/// assert!(TimeBasedPartitioner::commit_time().with_zone("Mars/Olympus").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TimeBasedPartitioner {
    source: TimeSource,
    zone: Zone,
    /// The pattern's literal text; [`FormatToken::Literal`] ranges index into it.
    literals: String,
    format: Vec<FormatToken>,
    duration: Option<chrono::Duration>,
}

/// Kafka Connect's `HourlyPartitioner` layout, as a `path.format` pattern.
pub const HOURLY_PATH_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH";
/// Kafka Connect's `DailyPartitioner` layout, as a `path.format` pattern.
pub const DAILY_PATH_FORMAT: &str = "'year'=YYYY/'month'=MM/'day'=dd";

/// One piece of a parsed `path.format` pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormatToken {
    /// Text copied as is (a quoted literal or punctuation such as `/` and `=`).
    Literal(usize, usize),
    /// A numeric field, zero-padded to `width` digits.
    Field(TimeField, usize),
}

/// The numeric fields a `path.format` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    Year,
    /// `yy`: the year modulo 100, as Joda-Time prints it.
    YearOfCentury,
    Month,
    Day,
    DayOfYear,
    Hour,
    Minute,
    Second,
}

/// Parses a Joda-Time pattern (the syntax of Kafka Connect's `path.format`) into tokens over
/// `pattern`; literal ranges index into the unquoted copy returned beside them.
fn parse_path_format(pattern: &str) -> Result<(String, Vec<FormatToken>), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut text = String::new();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut literal_start = 0;
    let flush = |text: &String, start: &mut usize, tokens: &mut Vec<FormatToken>| {
        if text.len() > *start {
            tokens.push(FormatToken::Literal(*start, text.len()));
        }
        *start = text.len();
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A quoted literal; '' inside or alone is one quote.
            i += 1;
            if chars.get(i) == Some(&'\'') {
                text.push('\'');
                i += 1;
                continue;
            }
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated quote in {pattern:?}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        text.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() {
            let mut width = 1;
            while chars.get(i + width) == Some(&c) {
                width += 1;
            }
            let field = match (c, width) {
                ('y' | 'Y' | 'u', 2) => TimeField::YearOfCentury,
                ('y' | 'Y' | 'u', _) => TimeField::Year,
                ('M', 1..=2) => TimeField::Month,
                ('d', _) => TimeField::Day,
                ('D', _) => TimeField::DayOfYear,
                ('H', _) => TimeField::Hour,
                ('m', _) => TimeField::Minute,
                ('s', _) => TimeField::Second,
                _ => {
                    return Err(format!(
                        "pattern letter {:?} in {pattern:?} is not supported: only numeric \
                         fields (y, Y, M, MM, d, D, H, m, s) and quoted literals are",
                        c.to_string().repeat(width)
                    ));
                }
            };
            flush(&text, &mut literal_start, &mut tokens);
            tokens.push(FormatToken::Field(field, width));
            i += width;
        } else {
            text.push(c);
            i += 1;
        }
    }
    flush(&text, &mut literal_start, &mut tokens);
    if tokens.is_empty() {
        return Err("the pattern is empty".into());
    }
    Ok((text, tokens))
}

impl TimeBasedPartitioner {
    /// Hours of the commit time, in UTC.
    pub fn commit_time() -> Self {
        Self::from_source(TimeSource::CommitTime)
    }

    /// Hours of a column's value, in UTC.
    pub fn column(name: impl Into<String>) -> Self {
        Self::from_source(TimeSource::Column(name.into()))
    }

    /// Hours of `source`, in UTC.
    pub fn from_source(source: TimeSource) -> Self {
        let (literals, format) = match parse_path_format(HOURLY_PATH_FORMAT) {
            Ok(parsed) => parsed,
            Err(e) => unreachable!("the hourly pattern is valid: {e}"),
        };
        Self {
            source,
            zone: Zone::Fixed(utc_offset()),
            format,
            literals,
            duration: None,
        }
    }

    /// Lays directories out by a Joda-Time pattern, Kafka Connect's `path.format`:
    /// quoted literals and the numeric fields `y`/`Y` (year; `yy` two digits), `M`/`MM`
    /// (month), `d` (day of month), `D` (day of year), `H` (hour 0–23), `m`, `s`, each
    /// zero-padded to the number of letters. Text fields (`MMM`, `EEE`) are refused, so
    /// `locale` never changes a path. A
    /// [`S3SinkError::Config`](crate::S3SinkError::Config) naming `path.format` if the
    /// pattern is not one of these.
    ///
    /// ```
    /// use s3_sink::{PartitionContext, Partitioner, TimeBasedPartitioner, DAILY_PATH_FORMAT};
    /// let events = cdc_core::testing::sample_events("s", 1); // committed 2026-01-01T00:00:00.010Z
    /// let ctx = PartitionContext { topic: "t", kafka_partition: None };
    /// let daily = TimeBasedPartitioner::commit_time().with_path_format(DAILY_PATH_FORMAT).unwrap();
    /// assert_eq!(daily.partition(&events[0], &ctx).unwrap(), "year=2026/month=01/day=01");
    /// let custom = TimeBasedPartitioner::commit_time().with_path_format("'dt'=YYYY-MM-dd").unwrap();
    /// assert_eq!(custom.partition(&events[0], &ctx).unwrap(), "dt=2026-01-01");
    /// assert!(TimeBasedPartitioner::commit_time().with_path_format("MMMM").is_err());
    /// ```
    pub fn with_path_format(mut self, pattern: &str) -> crate::Result<Self> {
        let (literals, format) = parse_path_format(pattern)
            .map_err(|reason| crate::S3SinkError::config("path.format", reason))?;
        self.literals = literals;
        self.format = format;
        Ok(self)
    }

    /// Puts every event of one `duration`-long window (in the partitioner's zone, counted
    /// from midnight 1970-01-01 local time, as Kafka Connect's `partition.duration.ms`) in
    /// the directory of the window's start. A
    /// [`S3SinkError::Config`](crate::S3SinkError::Config) naming `partition.duration.ms`
    /// unless it is between 1 ms and 366 days.
    ///
    /// ```
    /// use s3_sink::{PartitionContext, Partitioner, TimeBasedPartitioner};
    /// use std::time::Duration;
    /// let events = cdc_core::testing::sample_events("s", 1); // committed 2026-01-01T00:00:00.010Z
    /// let ctx = PartitionContext { topic: "t", kafka_partition: None };
    /// let six_hourly = TimeBasedPartitioner::commit_time()
    ///     .with_path_format("'dt'=YYYYMMdd'T'HHmm").unwrap()
    ///     .with_offset_hours(-5).unwrap()
    ///     .with_partition_duration(Duration::from_secs(6 * 3600)).unwrap();
    /// assert_eq!(six_hourly.partition(&events[0], &ctx).unwrap(), "dt=20251231T1800");
    /// ```
    pub fn with_partition_duration(mut self, duration: std::time::Duration) -> crate::Result<Self> {
        let bad = || {
            crate::S3SinkError::config(
                "partition.duration.ms",
                format!("{duration:?} is not between 1 ms and 366 days"),
            )
        };
        if duration < std::time::Duration::from_millis(1)
            || duration > std::time::Duration::from_secs(366 * 86_400)
        {
            return Err(bad());
        }
        self.duration = Some(chrono::Duration::from_std(duration).map_err(|_| bad())?);
        Ok(self)
    }

    /// Renders hours in a zone `hours` east of UTC; `None` beyond ±14 h.
    pub fn with_offset_hours(self, hours: i32) -> Option<Self> {
        Some(self.with_offset(FixedOffset::east_opt(hours.checked_mul(3600)?)?))
    }

    /// Renders hours in `offset`.
    pub fn with_offset(mut self, offset: FixedOffset) -> Self {
        self.zone = Zone::Fixed(offset);
        self
    }

    /// Renders hours in the IANA zone `name` (`America/New_York`); a
    /// [`S3SinkError::Config`](crate::S3SinkError::Config) naming `partitioner.zone` if unknown.
    pub fn with_zone(mut self, name: &str) -> crate::Result<Self> {
        let tz: chrono_tz::Tz = name.parse().map_err(|_| {
            crate::S3SinkError::config("partitioner.zone", format!("unknown time zone {name:?}"))
        })?;
        self.zone = Zone::Named(tz);
        Ok(self)
    }

    fn local_time(&self, event: &ChangeEvent) -> Result<NaiveDateTime, BoxError> {
        let from_commit = || {
            event
                .source
                .commit_time
                .map(|t| self.zone.local(&t))
                .ok_or_else(|| BoxError::from("the event has no commit time"))
        };
        let TimeSource::Column(name) = &self.source else {
            return from_commit();
        };
        let index = event
            .table
            .column_index(name)
            .ok_or_else(|| format!("table {} has no column {name:?}", event.table.id))?;
        match event.row().and_then(|r| r.get(index)) {
            Some(Value::DateTime(naive)) => Ok(*naive),
            Some(Value::DateTimeOffset(at)) => Ok(self.zone.local(&at.with_timezone(&Utc))),
            Some(Value::Date(date)) => Ok(date.and_time(chrono::NaiveTime::MIN)),
            None | Some(Value::Null) => from_commit(),
            Some(other) => Err(format!("column {name:?} holds {other:?}, not a time").into()),
        }
    }
}

fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero is a valid offset"))
}

impl TimeBasedPartitioner {
    /// The start of the window holding `t`, when a partition duration is set.
    fn window_start(&self, t: NaiveDateTime) -> Result<NaiveDateTime, BoxError> {
        let Some(duration) = self.duration else {
            return Ok(t);
        };
        let millis = t.and_utc().timestamp_millis();
        let step = duration.num_milliseconds().max(1);
        let start = millis - millis.rem_euclid(step);
        DateTime::<Utc>::from_timestamp_millis(start)
            .map(|d| d.naive_utc())
            .ok_or_else(|| BoxError::from(format!("time {t} is out of range")))
    }
}

impl Partitioner for TimeBasedPartitioner {
    fn partition(
        &self,
        event: &ChangeEvent,
        ctx: &PartitionContext<'_>,
    ) -> Result<String, BoxError> {
        let mut out = String::with_capacity(32);
        self.partition_into(event, ctx, &mut out)?;
        Ok(out)
    }

    fn partition_into(
        &self,
        event: &ChangeEvent,
        _: &PartitionContext<'_>,
        out: &mut String,
    ) -> Result<(), BoxError> {
        use std::fmt::Write;
        let t = self.window_start(self.local_time(event)?)?;
        for token in &self.format {
            match *token {
                FormatToken::Literal(from, to) => {
                    out.push_str(self.literals.get(from..to).unwrap_or_default())
                }
                FormatToken::Field(field, width) => {
                    let value = match field {
                        TimeField::Year => i64::from(t.year()),
                        TimeField::YearOfCentury => i64::from(t.year()).rem_euclid(100),
                        TimeField::Month => i64::from(t.month()),
                        TimeField::Day => i64::from(t.day()),
                        TimeField::DayOfYear => i64::from(t.ordinal()),
                        TimeField::Hour => i64::from(t.hour()),
                        TimeField::Minute => i64::from(t.minute()),
                        TimeField::Second => i64::from(t.second()),
                    };
                    write!(out, "{value:0width$}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::partitioner::tests::ctx;
    use cdc_core::testing::sample_events;
    use chrono::TimeZone;

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let mut event = sample_events("s", 1).remove(0);
        event.source.commit_time = Some(Utc.with_ymd_and_hms(2026, 7, 1, 0, 30, 0).unwrap());
        let zurich = TimeBasedPartitioner::commit_time()
            .with_zone("Europe/Zurich")
            .unwrap();
        assert_eq!(
            zurich.partition(&event, &ctx()).unwrap(),
            "year=2026/month=07/day=01/hour=02"
        );
        let fixed = TimeBasedPartitioner::commit_time()
            .with_offset_hours(1)
            .unwrap();
        assert_eq!(
            fixed.partition(&event, &ctx()).unwrap(),
            "year=2026/month=07/day=01/hour=01"
        );
    }
}
