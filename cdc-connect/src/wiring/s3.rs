//! `[sink.s3]` → s3-sink's `S3Sink` (format, partitioner, rotation, retries), and the object
//! store for a URL with the `AWS_*` environment.

use super::{field_error, ms};
use crate::config::{self, ConfigError};
use s3_sink::{
    FieldPartitioner, Format, Layout, NdjsonCompression, NdjsonOptions, ParquetCompression,
    ParquetOptions, RetryPolicy, Rotation, S3Sink, TimeBasedPartitioner, TimeSource,
};

/// The S3 sink from `[sink.s3]`.
pub fn s3_sink(section: &config::S3SinkSection, name: &str) -> Result<S3Sink, ConfigError> {
    let err = field_error("sink.s3");
    let mut b = S3Sink::builder().name(name).url(section.url.clone());
    for (k, v) in &section.options {
        b = b.option(k, v);
    }
    let layout = match section.layout {
        Some(config::RowLayout::Debezium) => Layout::Debezium,
        _ => Layout::Flattened,
    };
    let format = match section.format.unwrap_or(config::FileFormat::Parquet) {
        config::FileFormat::Parquet => {
            let mut options = ParquetOptions {
                layout,
                ..ParquetOptions::default()
            };
            if let Some(c) = section.compression {
                options.compression = match c {
                    config::Compression::Zstd => ParquetCompression::Zstd(3),
                    config::Compression::Snappy => ParquetCompression::Snappy,
                    config::Compression::Gzip => ParquetCompression::Gzip(6),
                    config::Compression::None => ParquetCompression::None,
                };
            }
            if let Some(v) = section.row_group_bytes {
                options.row_group_bytes = v;
            }
            if section.ndjson_schemas.is_some() {
                return Err(ConfigError::field(
                    "sink.s3.ndjson_schemas",
                    "only applies to format = \"ndjson\"",
                ));
            }
            Format::Parquet(options)
        }
        config::FileFormat::Ndjson => Format::Ndjson(NdjsonOptions {
            layout,
            compression: match section.compression {
                None | Some(config::Compression::None) => NdjsonCompression::None,
                Some(config::Compression::Gzip) => NdjsonCompression::Gzip,
                Some(config::Compression::Zstd) => NdjsonCompression::Zstd,
                Some(config::Compression::Snappy) => {
                    return Err(ConfigError::field(
                        "sink.s3.compression",
                        "snappy is for Parquet only; NDJSON takes gzip, zstd or none",
                    ));
                }
            },
            debezium_schemas: section.ndjson_schemas.unwrap_or(false),
        }),
    };
    let handling = [
        ("time_precision_mode", section.time_precision_mode.is_some()),
        (
            "decimal_handling_mode",
            section.decimal_handling_mode.is_some(),
        ),
        (
            "binary_handling_mode",
            section.binary_handling_mode.is_some(),
        ),
        (
            "unavailable_value_placeholder",
            section.unavailable_value_placeholder.is_some(),
        ),
    ];
    if let Some((name, _)) = handling.iter().find(|(_, set)| *set) {
        if !matches!(
            &format,
            Format::Ndjson(NdjsonOptions {
                layout: Layout::Debezium,
                ..
            })
        ) {
            return Err(ConfigError::field(
                format!("sink.s3.{name}"),
                "only applies to format = \"ndjson\" with layout = \"debezium\" (Parquet columns keep SQL Server's types)",
            ));
        }
        b = b.codec(super::kafka::debezium_json(
            section.ndjson_schemas.unwrap_or(false),
            section.time_precision_mode,
            section.decimal_handling_mode,
            section.binary_handling_mode,
            section.unavailable_value_placeholder.as_deref(),
        ));
    }
    let format = match format {
        // The codec decides the embedded schema when handling modes are set.
        Format::Ndjson(options) if handling.iter().any(|(_, set)| *set) => {
            Format::Ndjson(NdjsonOptions {
                debezium_schemas: false,
                ..options
            })
        }
        other => other,
    };
    b = b.format(format);
    if let Some(p) = &section.partitioner {
        b = match p.kind {
            config::PartitionerKind::Default => b,
            config::PartitionerKind::Field => {
                if p.fields.is_empty() {
                    return Err(ConfigError::field(
                        "sink.s3.partitioner.fields",
                        "missing: the field partitioner needs at least one column",
                    ));
                }
                b.partitioner(FieldPartitioner::new(p.fields.clone()))
            }
            config::PartitionerKind::Time => b.partitioner(time_partitioner(p)?),
        };
    }
    if let Some(r) = &section.rotation {
        let mut rotation = Rotation::default();
        if let Some(v) = r.max_records {
            rotation.max_records = Some(v);
        }
        if let Some(v) = r.max_bytes {
            rotation.max_bytes = Some(v);
        }
        rotation.max_record_interval = r.max_record_interval_ms.map(ms);
        rotation.schedule_interval = r.schedule_interval_ms.map(ms);
        b = b.rotation(rotation);
    }
    if let Some(v) = section.memory_budget {
        b = b.memory_budget(v);
    }
    if let Some(v) = section.part_size {
        b = b.part_size(v);
    }
    if let Some(v) = section.upload_concurrency {
        b = b.upload_concurrency(v);
    }
    if let Some(r) = &section.retry {
        let mut retry = RetryPolicy::default();
        if let Some(v) = r.max_retries {
            retry.max_retries = v;
        }
        if let Some(v) = r.initial_backoff_ms {
            retry.initial_backoff = ms(v);
        }
        if let Some(v) = r.max_backoff_ms {
            retry.max_backoff = ms(v);
        }
        b = b.retry(retry);
    }
    b.build().map_err(|e| err(e.to_string()))
}

/// The time partitioner from `[sink.s3.partitioner]` with `kind = "time"`.
pub fn time_partitioner(
    p: &config::PartitionerSection,
) -> Result<TimeBasedPartitioner, ConfigError> {
    let source = match &p.time_column {
        Some(column) => TimeSource::Column(column.clone()),
        None => TimeSource::CommitTime,
    };
    let mut t = TimeBasedPartitioner::from_source(source);
    if let Some(format) = &p.path_format {
        t = t
            .with_path_format(format)
            .map_err(|e| ConfigError::field("sink.s3.partitioner.path_format", e.to_string()))?;
    }
    if let Some(zone) = &p.timezone {
        t = if zone.eq_ignore_ascii_case("utc") {
            t.with_offset_hours(0).ok_or_else(|| {
                ConfigError::field("sink.s3.partitioner.timezone", "UTC is always valid")
            })?
        } else {
            t.with_zone(zone)
                .map_err(|e| ConfigError::field("sink.s3.partitioner.timezone", e.to_string()))?
        };
    }
    if let Some(d) = p.partition_duration_ms {
        t = t.with_partition_duration(ms(d)).map_err(|e| {
            ConfigError::field("sink.s3.partitioner.partition_duration_ms", e.to_string())
        })?;
    }
    Ok(t)
}

/// The object store for `url` with object_store `options`. `s3://` URLs also read the `AWS_*`
/// environment (credentials, region, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, web identity and
/// container credentials), as the S3 sink does; object_store's `parse_url_opts` alone ignores
/// it and falls back to the EC2 instance metadata service, which fails everywhere else.
///
/// # Errors
/// An unknown option key, or what object_store's builders refuse.
pub fn object_store_for(
    url: &url::Url,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<(Box<dyn object_store::ObjectStore>, object_store::path::Path), object_store::Error> {
    if !matches!(url.scheme(), "s3" | "s3a") {
        return object_store::parse_url_opts(url, options.iter());
    }
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
    for (key, value) in options {
        let key: object_store::aws::AmazonS3ConfigKey = key.parse()?;
        builder = builder.with_config(key, value);
    }
    let path = object_store::path::Path::from_url_path(url.path())?;
    Ok((Box::new(builder.build()?), path))
}
