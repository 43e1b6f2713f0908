//! Confluent's S3 sink connector properties → the `[sink.s3]` section, the topics it reads
//! and its error handling.

use super::props::{Props, json_converter, list};
use super::{ConnectorConfig, Warning};
use crate::config::ConfigError;
use crate::config::{self, PartitionerKind, PartitionerSection, RotationSection, S3SinkSection};

const S3_KNOWN: &[&str] = &[
    "connector.class",
    "topics",
    "topics.regex",
    "topics.dir",
    "s3.bucket.name",
    "s3.region",
    "store.url",
    "flush.size",
    "rotate.interval.ms",
    "rotate.schedule.interval.ms",
    "format.class",
    "parquet.codec",
    "s3.compression.type",
    "partitioner.class",
    "partition.field.name",
    "path.format",
    "partition.duration.ms",
    "locale",
    "timezone",
    "timestamp.extractor",
    "timestamp.field",
    "s3.part.size",
    "storage.class",
    "aws.access.key.id",
    "aws.secret.access.key",
    "key.converter",
    "value.converter",
    "tasks.max",
    "schema.compatibility",
    "errors.tolerance",
    "errors.deadletterqueue.topic.name",
    "behavior.on.null.values",
];

pub(super) struct S3Translation {
    pub(super) sink: S3SinkSection,
    pub(super) topics: Vec<String>,
    pub(super) topics_regex: Option<String>,
    pub(super) dead_letter: Option<String>,
    pub(super) skip_errors: bool,
    /// `value.converter.schemas.enable=false`: records without their Connect schema, which
    /// the Kafka source cannot type (refused when the sink reads Kafka; meaningless when both
    /// connectors run, with no records in between).
    pub(super) schemaless_values: bool,
}

/// Why schemaless records are refused when the sink reads them from Kafka.
pub(super) const SCHEMALESS_REFUSED: &str = "false is not supported: records must embed their Connect schema \
     (value.converter.schemas.enable=true in the Debezium source and in this sink); without it a \
     record's values cannot be typed (decimals, timestamps and binaries are bare numbers and \
     strings)";

pub(super) fn translate_s3(
    c: &ConnectorConfig,
    warnings: &mut Vec<Warning>,
) -> Result<S3Translation, ConfigError> {
    let mut p = Props {
        connector: &c.name,
        left: c.properties.clone(),
        warnings,
    };
    p.take("connector.class");
    let topics = p.take("topics").map(|v| list(&v)).unwrap_or_default();
    let topics_regex = p.take("topics.regex");
    if topics.is_empty() && topics_regex.is_none() {
        return Err(p.refuse("topics", "missing: give topics or topics.regex"));
    }
    let bucket = p
        .take("s3.bucket.name")
        .ok_or_else(|| p.refuse("s3.bucket.name", "missing"))?;
    let dir = p.take("topics.dir").unwrap_or_else(|| "topics".to_string());
    let mut sink = S3SinkSection {
        url: format!("s3://{bucket}/{}", dir.trim_matches('/')),
        ..S3SinkSection::default()
    };
    if let Some(region) = p.take("s3.region") {
        sink.options.insert("region".into(), region);
    }
    if let Some(endpoint) = p.take("store.url") {
        if endpoint.starts_with("http://") {
            sink.options.insert("allow_http".into(), "true".into());
        }
        sink.options.insert("endpoint".into(), endpoint);
    }
    if let Some(v) = p.take("aws.access.key.id") {
        sink.options.insert("access_key_id".into(), v);
    }
    if let Some(v) = p.take("aws.secret.access.key") {
        sink.options.insert("secret_access_key".into(), v);
    }
    let rotation = RotationSection {
        max_records: p.parse("flush.size")?,
        max_bytes: None,
        max_record_interval_ms: p
            .parse::<i64>("rotate.interval.ms")?
            .filter(|v| *v > 0)
            .map(|v| v as u64),
        schedule_interval_ms: p
            .parse::<i64>("rotate.schedule.interval.ms")?
            .filter(|v| *v > 0)
            .map(|v| v as u64),
    };
    sink.rotation = Some(rotation);
    match p.take("format.class").as_deref() {
        None => return Err(p.refuse("format.class", "missing")),
        Some("io.confluent.connect.s3.format.parquet.ParquetFormat") => {
            sink.format = Some(config::FileFormat::Parquet);
            // Confluent's ParquetFormat writes each record's value, the Debezium envelope
            // (before, after, source, op, ts_ms), as nested columns; so does this layout.
            sink.layout = Some(config::RowLayout::Debezium);
            // Confluent's Parquet default codec is snappy.
            sink.compression = Some(match p.take("parquet.codec").as_deref() {
                None | Some("snappy") => config::Compression::Snappy,
                Some("gzip") => config::Compression::Gzip,
                Some("zstd") => config::Compression::Zstd,
                Some("none" | "uncompressed") => config::Compression::None,
                Some(other) => {
                    return Err(p.refuse(
                        "parquet.codec",
                        format!("{other:?} is not supported (snappy, gzip, zstd, none are)"),
                    ));
                }
            });
        }
        Some("io.confluent.connect.s3.format.json.JsonFormat") => {
            sink.format = Some(config::FileFormat::Ndjson);
            sink.layout = Some(config::RowLayout::Debezium);
            sink.compression = Some(match p.take("s3.compression.type").as_deref() {
                None | Some("none") => config::Compression::None,
                Some("gzip") => config::Compression::Gzip,
                Some(other) => {
                    return Err(p.refuse(
                        "s3.compression.type",
                        format!("{other:?} is not supported (gzip, none are)"),
                    ));
                }
            });
        }
        Some(other) => {
            return Err(p.refuse(
                "format.class",
                format!("{other} is not supported: ParquetFormat and JsonFormat are"),
            ));
        }
    }
    sink.partitioner = partitioner(&mut p)?;
    sink.part_size = p.parse("s3.part.size")?;
    if let Some(class) = p.take("storage.class")
        && class != "io.confluent.connect.s3.storage.S3Storage"
    {
        return Err(p.refuse("storage.class", format!("{class} is not supported")));
    }
    // Confluent's sink writes record values only (keys with store.kafka.keys=true, which is
    // not supported here): the key converter changes no file.
    if p.take("key.converter").is_some() {
        p.warn(
            "key.converter",
            "the files hold record values only, as Confluent's sink writes them; keys are not decoded",
        );
    }
    p.take("key.converter.schemas.enable");
    let schemaless_values = json_converter(&mut p, "value")? == Some(false);
    let skip_errors = match p.take("errors.tolerance").as_deref() {
        None | Some("none") => false,
        Some("all") => true,
        Some(other) => {
            return Err(p.refuse("errors.tolerance", format!("{other:?} is not none or all")));
        }
    };
    let dead_letter = p.take("errors.deadletterqueue.topic.name");
    p.ignore(
        "tasks.max",
        "one consumer reads every partition assigned to this process",
    );
    p.ignore(
        "schema.compatibility",
        "a schema change rotates the file; nothing is projected",
    );
    p.ignore("behavior.on.null.values", "tombstones are skipped");
    p.ignore_prefix("errors.", "logging of failures follows [log]");
    p.ignore_prefix(
        "consumer.override.",
        "consumer settings go to [source.kafka.properties]",
    );
    p.finish(S3_KNOWN)?;
    Ok(S3Translation {
        sink,
        topics,
        topics_regex,
        dead_letter,
        skip_errors,
        schemaless_values,
    })
}

fn partitioner(p: &mut Props<'_>) -> Result<Option<PartitionerSection>, ConfigError> {
    const BASE: &str = "io.confluent.connect.storage.partitioner.";
    let class = p.take("partitioner.class");
    let short = class.as_deref().map(|c| c.strip_prefix(BASE).unwrap_or(c));
    let mut section = PartitionerSection {
        kind: PartitionerKind::Time,
        fields: Vec::new(),
        path_format: None,
        partition_duration_ms: None,
        timezone: None,
        time_column: None,
    };
    if matches!(
        short,
        None | Some("DefaultPartitioner" | "FieldPartitioner")
    ) {
        for key in [
            "path.format",
            "partition.duration.ms",
            "locale",
            "timezone",
            "timestamp.extractor",
            "timestamp.field",
        ] {
            p.ignore(key, "no meaning without a time-based partitioner");
        }
    }
    match short {
        None | Some("DefaultPartitioner") => return Ok(None),
        Some("FieldPartitioner") => {
            section.kind = PartitionerKind::Field;
            section.fields = p
                .take("partition.field.name")
                .map(|v| list(&v))
                .unwrap_or_default()
                .into_iter()
                // Debezium envelopes hold the row under `after`.
                .map(|f| f.strip_prefix("after.").map(str::to_string).unwrap_or(f))
                .collect();
            if section.fields.is_empty() {
                return Err(p.refuse("partition.field.name", "missing: FieldPartitioner needs it"));
            }
            return Ok(Some(section));
        }
        Some("HourlyPartitioner") => {
            section.path_format = Some(s3_sink::HOURLY_PATH_FORMAT.into());
            section.partition_duration_ms = Some(3_600_000);
        }
        Some("DailyPartitioner") => {
            section.path_format = Some(s3_sink::DAILY_PATH_FORMAT.into());
            section.partition_duration_ms = Some(86_400_000);
        }
        Some("TimeBasedPartitioner") => {
            section.path_format = Some(p.take("path.format").ok_or_else(|| {
                p.refuse("path.format", "missing: TimeBasedPartitioner needs it")
            })?);
            section.partition_duration_ms =
                Some(p.parse("partition.duration.ms")?.ok_or_else(|| {
                    p.refuse(
                        "partition.duration.ms",
                        "missing: TimeBasedPartitioner needs it",
                    )
                })?);
        }
        Some(other) => {
            return Err(p.refuse(
                "partitioner.class",
                format!("{other} is not supported (Default, Field, Hourly, Daily and TimeBased partitioners are)"),
            ));
        }
    }
    // Hourly and Daily read path.format and partition.duration.ms too in Kafka Connect only
    // if TimeBased; for them these are fixed.
    p.ignore("path.format", "fixed by the Hourly/Daily partitioner class");
    p.ignore(
        "partition.duration.ms",
        "fixed by the Hourly/Daily partitioner class",
    );
    // Only numeric pattern fields are supported, so the locale never changes a path.
    p.take("locale");
    match p.take("timezone") {
        Some(zone) => section.timezone = Some(zone),
        None => {
            return Err(p.refuse(
                "timezone",
                "missing: time-based partitioners need it (Kafka Connect refuses to start without it)",
            ));
        }
    }
    match p.take("timestamp.extractor").as_deref() {
        None | Some("Wallclock") => {
            return Err(p.refuse(
                "timestamp.extractor",
                "Wallclock is not supported: a replay after a crash must put every event in \
                 the same file; use Record (the commit time) or RecordField",
            ));
        }
        Some("Record") => p.warn(
            "timestamp.extractor",
            "Record: the commit time of the change in SQL Server partitions the files",
        ),
        Some("RecordField") => {
            let field = p
                .take("timestamp.field")
                .ok_or_else(|| p.refuse("timestamp.field", "missing: RecordField needs it"))?;
            match field.as_str() {
                "source.ts_ms" | "ts_ms" => {}
                f => section.time_column = Some(f.strip_prefix("after.").unwrap_or(f).to_string()),
            }
        }
        Some(other) => {
            return Err(p.refuse(
                "timestamp.extractor",
                format!("{other} is not supported (Record and RecordField are)"),
            ));
        }
    }
    Ok(Some(section))
}
