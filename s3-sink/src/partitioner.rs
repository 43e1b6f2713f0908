//! Partitioners: which directory under the topic an event's file goes to.

use cdc_core::{BoxError, ChangeEvent, Value};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDateTime, Timelike, Utc};
use std::fmt;

/// What a partitioner knows about an event besides the event itself.
#[derive(Debug, Clone, Copy)]
pub struct PartitionContext<'a> {
    /// The topic the file belongs to (the Kafka topic, or `<server>.<db>.<schema>.<table>`).
    pub topic: &'a str,
    /// The Kafka partition the event was read from, when it came through Kafka.
    pub kafka_partition: Option<i32>,
}

/// Chooses the encoded partition of an event: one or more `/`-separated path segments such as
/// `partition=3`, `region=emea` or `year=2026/month=01/day=05/hour=13`.
///
/// The result must depend only on the event (not on the clock), so that a replay puts every
/// event back in the same file.
///
/// ```
/// use s3_sink::{PartitionContext, Partitioner};
/// use cdc_core::{BoxError, ChangeEvent};
/// #[derive(Debug)]
/// struct ByOperation;
/// impl Partitioner for ByOperation {
///     fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
///         Ok(format!("op={}", event.op.code()))
///     }
/// }
/// let events = cdc_core::testing::sample_events("s", 1);
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// assert_eq!(ByOperation.partition(&events[0], &ctx).unwrap(), "op=c");
/// ```
pub trait Partitioner: Send + Sync + fmt::Debug {
    /// The encoded partition for `event`.
    fn partition(
        &self,
        event: &ChangeEvent,
        ctx: &PartitionContext<'_>,
    ) -> Result<String, BoxError>;

    /// Appends the encoded partition to `out`. The sink calls this once per event with a
    /// reused buffer; override it to avoid allocating.
    fn partition_into(
        &self,
        event: &ChangeEvent,
        ctx: &PartitionContext<'_>,
        out: &mut String,
    ) -> Result<(), BoxError> {
        out.push_str(&self.partition(event, ctx)?);
        Ok(())
    }
}

/// Kafka Connect's default: `partition=<kafka partition>`, `partition=0` without Kafka.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _: &ChangeEvent, ctx: &PartitionContext<'_>) -> Result<String, BoxError> {
        Ok(format!("partition={}", ctx.kafka_partition.unwrap_or(0)))
    }

    fn partition_into(
        &self,
        _: &ChangeEvent,
        ctx: &PartitionContext<'_>,
        out: &mut String,
    ) -> Result<(), BoxError> {
        out.push_str("partition=");
        out.push_str(itoa::Buffer::new().format(ctx.kafka_partition.unwrap_or(0)));
        Ok(())
    }
}

/// `name=value` for one or more columns, like Kafka Connect's `FieldPartitioner`. Deletes use
/// the before image; NULL (or a missing row) is `__HIVE_DEFAULT_PARTITION__`. Values are
/// escaped Hive style (`%2F` for `/`), so any value is a single path segment.
///
/// ```
/// use s3_sink::{FieldPartitioner, PartitionContext, Partitioner};
/// let events = cdc_core::testing::sample_events("s", 1);
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// let by_id = FieldPartitioner::new(["id"]);
/// assert_eq!(by_id.partition(&events[0], &ctx).unwrap(), "id=1");
/// ```
#[derive(Debug, Clone)]
pub struct FieldPartitioner {
    fields: Vec<String>,
}

impl FieldPartitioner {
    /// Partitions by these columns, in this order.
    pub fn new<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }
}

/// Hive's name for a NULL partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

impl Partitioner for FieldPartitioner {
    fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
        let mut segments = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let index = event
                .table
                .column_index(field)
                .ok_or_else(|| format!("table {} has no column {field:?}", event.table.id))?;
            let value = event
                .row()
                .and_then(|r| r.get(index))
                .unwrap_or(&Value::Null);
            segments.push(format!("{}={}", escape(field), escape(&value_text(value))));
        }
        Ok(segments.join("/"))
    }
}

/// Where [`TimePartitioner`] takes the time from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeSource {
    /// The commit time of the change (`SourceInfo::commit_time`).
    CommitTime,
    /// A `date`, `datetime*` or `datetimeoffset` column; the commit time when the row has no
    /// value. Naive (`datetime2`) values are taken as already being in the partitioner's zone.
    Column(String),
}

/// The zone [`TimePartitioner`] renders hours in.
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
/// use s3_sink::{PartitionContext, Partitioner, TimePartitioner};
/// let events = cdc_core::testing::sample_events("s", 1); // committed 2026-01-01T00:00:00.010Z
/// let ctx = PartitionContext { topic: "t", kafka_partition: None };
/// let utc = TimePartitioner::commit_time();
/// assert_eq!(utc.partition(&events[0], &ctx).unwrap(), "year=2026/month=01/day=01/hour=00");
/// let minus_five = TimePartitioner::commit_time().with_offset_hours(-5).unwrap();
/// assert_eq!(minus_five.partition(&events[0], &ctx).unwrap(), "year=2025/month=12/day=31/hour=19");
/// let zurich = TimePartitioner::commit_time().with_zone("Europe/Zurich").unwrap();
/// assert_eq!(zurich.partition(&events[0], &ctx).unwrap(), "year=2026/month=01/day=01/hour=01");
/// assert!(TimePartitioner::commit_time().with_zone("Mars/Olympus").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct TimePartitioner {
    source: TimeSource,
    zone: Zone,
}

impl TimePartitioner {
    /// Hours of the commit time, in UTC.
    pub fn commit_time() -> Self {
        Self {
            source: TimeSource::CommitTime,
            zone: Zone::Fixed(utc_offset()),
        }
    }

    /// Hours of a column's value, in UTC.
    pub fn column(name: impl Into<String>) -> Self {
        Self {
            source: TimeSource::Column(name.into()),
            zone: Zone::Fixed(utc_offset()),
        }
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

impl Partitioner for TimePartitioner {
    fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
        let t = self.local_time(event)?;
        Ok(format!(
            "year={:04}/month={:02}/day={:02}/hour={:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour()
        ))
    }
}

/// A value as text for a partition directory.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => NULL_PARTITION.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::U8(n) => n.to_string(),
        Value::I16(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::F32(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        Value::DateTime(t) => t.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
        Value::DateTimeOffset(t) => t.to_rfc3339(),
        Value::Uuid(u) => u.to_string(),
        other => format!("{other:?}"),
    }
}

/// Hive-style escaping: everything but ASCII letters, digits and `-_.` becomes `%XX`, so a
/// value is always exactly one path segment and safe in any object store.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out = out.replace('.', "%2E");
        if out.is_empty() {
            out.push_str("%00");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use cdc_core::testing::{every_type_events, sample_events};
    use chrono::TimeZone;

    fn ctx() -> PartitionContext<'static> {
        PartitionContext {
            topic: "t",
            kafka_partition: Some(4),
        }
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let mut event = sample_events("s", 1).remove(0);
        event.source.commit_time = Some(Utc.with_ymd_and_hms(2026, 7, 1, 0, 30, 0).unwrap());
        let zurich = TimePartitioner::commit_time()
            .with_zone("Europe/Zurich")
            .unwrap();
        assert_eq!(
            zurich.partition(&event, &ctx()).unwrap(),
            "year=2026/month=07/day=01/hour=02"
        );
        let fixed = TimePartitioner::commit_time().with_offset_hours(1).unwrap();
        assert_eq!(
            fixed.partition(&event, &ctx()).unwrap(),
            "year=2026/month=07/day=01/hour=01"
        );
    }

    #[test]
    fn time_columns_and_fields_partition_events() {
        let events = every_type_events();
        let table = &events[0].table;
        let offset_column = &table
            .columns
            .iter()
            .find(|c| {
                matches!(
                    c.data_type,
                    cdc_core::DataType::DateTimeOffset { precision: 7 }
                )
            })
            .unwrap()
            .name;
        // Typical datetimeoffset: 2024-05-17 06:30 UTC.
        let by_column = TimePartitioner::column(offset_column.clone());
        assert_eq!(
            by_column.partition(&events[0], &ctx()).unwrap(),
            "year=2024/month=05/day=17/hour=06"
        );
        // A NULL value falls back to the commit time.
        assert!(
            by_column
                .partition(&events[3], &ctx())
                .unwrap()
                .starts_with("year=2026/")
        );
        assert_eq!(
            DefaultPartitioner.partition(&events[0], &ctx()).unwrap(),
            "partition=4"
        );
        let text = &table
            .columns
            .iter()
            .find(|c| c.name.contains("nvarchar_100"))
            .unwrap()
            .name;
        let by_field = FieldPartitioner::new([text.clone()]);
        assert_eq!(
            by_field.partition(&events[0], &ctx()).unwrap(),
            format!(
                "{}=Gr%C3%BC%C3%9Fe%2C%20%E4%B8%96%E7%95%8C%20%F0%9F%9A%80",
                escape(text)
            )
        );
        assert_eq!(
            by_field.partition(&events[3], &ctx()).unwrap(),
            format!("{}={NULL_PARTITION}", escape(text))
        );
        assert!(
            FieldPartitioner::new(["nope"])
                .partition(&events[0], &ctx())
                .is_err()
        );
    }
}
