//! Building a sink: destination, format, partitioning, rotation, memory, retries.

use crate::error::{Result, S3SinkError};
use crate::format::meta::DEFAULT_PREFIX;
use crate::format::{Encoders, Format, Layout};
use crate::partitioner::{DefaultPartitioner, Partitioner};
use crate::retry::RetryPolicy;
use crate::rotation::Rotation;
use crate::settings::Settings;
use crate::sink::S3Sink;
use cdc_core::EventCodec;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// S3's smallest part size for every part but the last.
pub const MIN_S3_PART_SIZE: usize = 5 * 1024 * 1024;

enum Target {
    Url(String),
    Store(Arc<dyn ObjectStore>, String),
}

/// Everything a sink needs, checked by [`build`](S3SinkBuilder::build).
///
/// ```
/// use s3_sink::{Format, Rotation, S3Sink};
/// let sink = S3Sink::builder()
///     .url("memory:///lake")
///     .format(Format::parquet())
///     .rotation(Rotation { max_records: Some(10_000), ..Rotation::default() })
///     .memory_budget(64 * 1024 * 1024)
///     .build()
///     .unwrap();
/// assert_eq!(cdc_core::Sink::name(&sink), "s3");
///
/// let bad = S3Sink::builder().url("s3://bucket/x").option("aws_nonsense", "1").build();
/// assert!(bad.unwrap_err().to_string().contains("option aws_nonsense"));
/// ```
pub struct S3SinkBuilder {
    name: String,
    target: Option<Target>,
    options: Vec<(String, String)>,
    format: Format,
    partitioner: Arc<dyn Partitioner>,
    rotation: Rotation,
    memory_budget: usize,
    part_size: usize,
    retry: RetryPolicy,
    upload_concurrency: usize,
    metadata_prefix: String,
    codec: Option<Arc<dyn EventCodec>>,
}

impl Default for S3SinkBuilder {
    fn default() -> Self {
        Self {
            name: "s3".into(),
            target: None,
            options: Vec::new(),
            format: Format::default(),
            partitioner: Arc::new(DefaultPartitioner),
            rotation: Rotation::default(),
            memory_budget: 256 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            retry: RetryPolicy::default(),
            upload_concurrency: 8,
            metadata_prefix: DEFAULT_PREFIX.to_string(),
            codec: None,
        }
    }
}

impl fmt::Debug for S3SinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Option values can be credentials: only their keys are shown.
        let keys: Vec<&str> = self.options.iter().map(|(k, _)| k.as_str()).collect();
        let target = match &self.target {
            Some(Target::Url(url)) => url.clone(),
            Some(Target::Store(store, prefix)) => format!("{store}/{prefix}"),
            None => "<none>".into(),
        };
        f.debug_struct("S3SinkBuilder")
            .field("name", &self.name)
            .field("target", &target)
            .field("option_keys", &keys)
            .field("format", &self.format)
            .field("partitioner", &self.partitioner)
            .field("rotation", &self.rotation)
            .field("memory_budget", &self.memory_budget)
            .field("part_size", &self.part_size)
            .field("retry", &self.retry)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("metadata_prefix", &self.metadata_prefix)
            .field("codec", &self.codec.as_ref().map(|c| c.name().to_string()))
            .finish()
    }
}

impl S3Sink {
    /// A builder; see [`S3SinkBuilder`].
    pub fn builder() -> S3SinkBuilder {
        S3SinkBuilder::default()
    }
}

impl S3SinkBuilder {
    /// Writes to a URL: `s3://bucket/prefix` (credentials, region and endpoint from the
    /// `AWS_*` environment, then from [`option`](Self::option)s), `file:///path/prefix` or
    /// `memory:///prefix`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.target = Some(Target::Url(url.into()));
        self
    }

    /// Writes to an existing store, under `prefix` (may be empty).
    pub fn store(mut self, store: Arc<dyn ObjectStore>, prefix: impl Into<String>) -> Self {
        self.target = Some(Target::Store(store, prefix.into()));
        self
    }

    /// An object_store S3 option (`aws_region`, `aws_endpoint`, `aws_allow_http`,
    /// `aws_access_key_id`, …), applied over the environment. Only for `s3://` URLs.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// The sink's name in logs and errors (default `s3`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Output format (default Parquet, flattened, zstd).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Partitioner (default `partition=<kafka partition>`).
    pub fn partitioner(mut self, partitioner: impl Partitioner + 'static) -> Self {
        self.partitioner = Arc::new(partitioner);
        self
    }

    /// Rotation rules.
    pub fn rotation(mut self, rotation: Rotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// Bytes all open files may hold together (default 256 MiB).
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Files larger than this go up as multipart uploads in parts of this size (default
    /// 8 MiB; S3 needs at least 5 MiB).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes;
        self
    }

    /// Retry policy for throttling, server errors and timeouts.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How many files a flush, tick or schema change uploads at once (default 8).
    pub fn upload_concurrency(mut self, uploads: usize) -> Self {
        self.upload_concurrency = uploads;
        self
    }

    /// The prefix of the metadata column names (default `__`: `__op`, `__deleted`,
    /// `__commit_time`, `__commit_lsn`, `__change_lsn`, `__event_serial_no`, `__position`,
    /// `__kafka_topic`, `__kafka_partition`, `__kafka_offset`; Debezium's
    /// `add.fields.prefix`). Set another when a table has a column of one of these names:
    /// such a table is refused with [`S3SinkError::ColumnCollision`] at its first event.
    /// Files carry the prefix, and a restarted sink finds where NDJSON files end by it, so
    /// keep it for the life of a destination.
    pub fn metadata_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.metadata_prefix = prefix.into();
        self
    }

    /// The codec of NDJSON lines in the Debezium layout (default: `cdc_core::DebeziumJson`,
    /// with the Connect schema when [`NdjsonOptions::debezium_schemas`] is set), e.g. a
    /// `DebeziumJson` with other handling modes. It must encode each event as one JSON
    /// object; the sink adds `__position` (and `__kafka_*`) to it. Only for that format and
    /// layout, and not together with `debezium_schemas` (the codec decides).
    ///
    /// [`NdjsonOptions::debezium_schemas`]: crate::NdjsonOptions::debezium_schemas
    pub fn codec(mut self, codec: impl EventCodec + 'static) -> Self {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// Checks every setting, connects the store, and returns the sink.
    pub fn build(self) -> Result<S3Sink> {
        self.format.validate()?;
        self.rotation.validate()?;
        if self.name.is_empty() {
            return Err(S3SinkError::config("name", "must not be empty"));
        }
        if self.upload_concurrency == 0 {
            return Err(S3SinkError::config(
                "upload_concurrency",
                "must be at least 1",
            ));
        }
        if self.part_size == 0 {
            return Err(S3SinkError::config("part_size", "must be at least 1 byte"));
        }
        if self.memory_budget < self.part_size {
            return Err(S3SinkError::config(
                "memory_budget",
                format!(
                    "{} bytes is less than one part ({} bytes)",
                    self.memory_budget, self.part_size
                ),
            ));
        }
        if self.retry.multiplier < 1.0 || !self.retry.multiplier.is_finite() {
            return Err(S3SinkError::config(
                "retry.multiplier",
                "must be a finite number ≥ 1",
            ));
        }
        if self.metadata_prefix.chars().any(char::is_control) {
            return Err(S3SinkError::config(
                "metadata_prefix",
                "must not contain control characters",
            ));
        }
        if self.codec.is_some() {
            match &self.format {
                Format::Ndjson(o) if o.layout == Layout::Debezium && o.debezium_schemas => {
                    return Err(S3SinkError::config(
                        "format.debezium_schemas",
                        "applies to the default codec only; with codec(), the codec decides",
                    ));
                }
                Format::Ndjson(o) if o.layout == Layout::Debezium => {}
                _ => {
                    return Err(S3SinkError::config(
                        "codec",
                        "only NDJSON files in the Debezium layout use a codec",
                    ));
                }
            }
        }
        let (store, prefix) = match self.target {
            None => return Err(S3SinkError::config("url", "set a URL or a store")),
            Some(Target::Store(store, prefix)) => (store, prefix),
            Some(Target::Url(url)) => open_url(&url, &self.options, &self.retry, self.part_size)?,
        };
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|e| S3SinkError::config("prefix", e.to_string()))?;
        let settings = Settings {
            name: self.name,
            prefix,
            partitioner: self.partitioner,
            rotation: self.rotation,
            memory_budget: self.memory_budget,
            part_size: self.part_size,
            retry: self.retry,
            upload_concurrency: self.upload_concurrency,
        };
        let encoders = Encoders::new(self.format, self.codec, &self.metadata_prefix);
        Ok(S3Sink::from_settings(store, settings, encoders))
    }
}

/// Opens the store a URL names and returns it with the key prefix.
fn open_url(
    url: &str,
    options: &[(String, String)],
    retry: &RetryPolicy,
    part_size: usize,
) -> Result<(Arc<dyn ObjectStore>, String)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(S3SinkError::config(
            "url",
            format!("{url:?} has no scheme (s3://, file://, memory://)"),
        ));
    };
    let no_options = || match options.first() {
        Some((key, _)) => Err(S3SinkError::config(
            format!("option {key}"),
            format!("options apply to s3:// URLs only, not {scheme}://"),
        )),
        None => Ok(()),
    };
    match scheme {
        "s3" | "s3a" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(S3SinkError::config("url", "s3:// URL without a bucket"));
            }
            if part_size < MIN_S3_PART_SIZE {
                return Err(S3SinkError::config(
                    "part_size",
                    "S3 needs parts of at least 5 MiB",
                ));
            }
            let mut builder = AmazonS3Builder::from_env().with_url(format!("s3://{bucket}"));
            for (key, value) in options {
                let parsed = AmazonS3ConfigKey::from_str(key)
                    .map_err(|e| S3SinkError::config(format!("option {key}"), e.to_string()))?;
                builder = builder.with_config(parsed, value);
            }
            let store = builder
                .with_retry(retry.to_object_store())
                .build()
                .map_err(|e| {
                    S3SinkError::config(
                        "s3 options (URL, AWS_* environment, option())",
                        e.to_string(),
                    )
                })?;
            Ok((Arc::new(store), prefix.to_string()))
        }
        "file" => {
            no_options()?;
            if !rest.starts_with('/') {
                return Err(S3SinkError::config(
                    "url",
                    "file:// URLs need an absolute path (file:///data/lake)",
                ));
            }
            std::fs::create_dir_all(rest)
                .map_err(|e| S3SinkError::config("url", format!("cannot create {rest}: {e}")))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(rest)
                .map_err(|e| S3SinkError::config("url", e.to_string()))?;
            Ok((Arc::new(store), String::new()))
        }
        "memory" => {
            no_options()?;
            Ok((
                Arc::new(object_store::memory::InMemory::new()),
                rest.to_string(),
            ))
        }
        other => Err(S3SinkError::config(
            "url",
            format!("unsupported scheme {other}://"),
        )),
    }
}
