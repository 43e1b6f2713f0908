//! The pipeline file: one TOML document describing a source, a sink, where checkpoints go and
//! how the service is operated.
//!
//! ```toml
//! [pipeline]
//! name = "erp-to-lake"
//!
//! [source.mssql]
//! connection = "Server=tcp:db.internal,1433;Database=shop;User Id=cdc;Password=${MSSQL_PASSWORD}"
//! topic_prefix = "erp"
//!
//! [sink.s3]
//! url = "s3://lake/raw"
//! format = "parquet"
//!
//! [offsets]
//! file = "/var/lib/cdc/erp.offsets.json"
//! ```
//!
//! Every key is checked: an unknown key is an error naming it, its table and the closest valid
//! key; `${NAME}` anywhere in the text is replaced by the environment variable `NAME` before
//! parsing (an unset variable is an error naming it); secrets never appear in `Debug` output,
//! in errors or in [`PipelineFile::to_toml`].
//!
//! This module holds the file as a whole ([`PipelineFile`]: loading, the checks across
//! tables, printing with secrets redacted) and [`ConfigError`]; the tables live by job:
//! - `source`: `[source.mssql]` and `[source.kafka]`;
//! - `sink`: `[sink.kafka]` and `[sink.s3]` with its partitioner, rotation and retries;
//! - `kafka`: the client settings every Kafka table shares ([`KafkaClient`], security);
//! - `service`: `[pipeline]`, `[offsets]`, `[ops]` and `[log]`;
//! - `text`: `${ENV}` substitution, TOML errors naming key, table and closest valid key,
//!   warnings for old key names.

mod kafka;
mod service;
mod sink;
mod source;
mod text;

pub use kafka::{KafkaClient, KafkaProtocol, KafkaSecurity, Mechanism};
pub use service::{
    KafkaOffsets, LogFormat, LogSection, ObjectOffsets, OffsetsSection, OpsSection, PipelineSection,
};
pub use sink::{
    Compression, CreateTopics, FileFormat, KafkaSinkSection, PartitionerKind, PartitionerSection,
    RetrySection, RotationSection, RowLayout, S3SinkSection, SinkSection,
};
pub use source::{
    DecodeFailure, Encryption, KafkaSourceSection, MssqlSection, NewTableSnapshot, RetentionPolicy,
    SnapshotIsolation, SnapshotMode, SourceSection,
};
pub use text::closest;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use text::{renamed_key_warnings, substitute, toml_error};

/// A password, key or token: cdc-core's, one type for the family (serialised as [`REDACTED`]).
pub use cdc_core::Secret;

/// What a [`Secret`] prints as in a printed configuration.
pub const REDACTED: &str = Secret::REDACTED;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The whole pipeline file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// Pipeline settings (`[pipeline]`).
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// Exactly one source (`[source.mssql]` or `[source.kafka]`).
    pub source: SourceSection,
    /// Exactly one sink (`[sink.kafka]` or `[sink.s3]`).
    pub sink: SinkSection,
    /// Where checkpoints go (`[offsets]`); required unless the Kafka source's consumer group
    /// offsets or the transactional Kafka sink hold them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<OffsetsSection>,
    /// Operations endpoints (`[ops]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub ops: OpsSection,
    /// Logging (`[log]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub log: LogSection,
    /// What [`PipelineFile::parse`] read but warns about: keys under their old names
    /// (`server_name` for `topic_prefix`, …), one sentence each. Not part of the file.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A configuration problem, with where it is and what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `${NAME}` names an unset variable.
    #[error("{origin}:{line}: environment variable {name} is not set (referenced as ${{{name}}})")]
    MissingEnv {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// Variable.
        name: String,
    },
    /// A key no section knows.
    #[error("{origin}:{line}: unknown key `{key}` in [{table}]{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// File name.
        origin: String,
        /// 1-based line.
        line: usize,
        /// The table (`source.mssql`).
        table: String,
        /// The key.
        key: String,
        /// The closest valid key, if one is close.
        suggestion: Option<String>,
    },
    /// Any other parse or type error.
    #[error("{origin}:{line}: {message}{}", if table.is_empty() { String::new() } else { format!(" in [{table}]") })]
    Invalid {
        /// File name.
        origin: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The table.
        table: String,
        /// What is wrong, from the TOML parser, with a suggestion for unknown values.
        message: String,
    },
    /// A value that parses but cannot be used; names the field.
    #[error("{field}: {reason}")]
    Field {
        /// Dotted path of the field (`sink.s3.partitioner.timezone`).
        field: String,
        /// Why.
        reason: String,
    },
}

impl ConfigError {
    /// A [`ConfigError::Field`].
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl PipelineFile {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), |name| {
            std::env::var(name).ok()
        })
    }

    /// Parses `text` (named `origin` in errors), with `${NAME}` looked up through `env`.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let substituted = substitute(text, origin, &env)?;
        // Spans index the substituted text; its lines are the original's (substituted values
        // have their line breaks escaped), and it is never quoted in errors.
        let mut file: PipelineFile =
            toml::from_str(&substituted).map_err(|e| toml_error(&e, &substituted, origin))?;
        file.validate()?;
        file.refuse_redacted_secrets()?;
        file.warnings = renamed_key_warnings(&substituted);
        Ok(file)
    }

    /// The checks serde cannot express: exactly one source, one sink, one offset store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (&self.source.mssql, &self.source.kafka) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::field(
                    "source",
                    "give exactly one of [source.mssql] and [source.kafka], not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::field(
                    "source",
                    "missing: give [source.mssql] or [source.kafka]",
                ));
            }
            _ => {}
        }
        match (&self.sink.kafka, &self.sink.s3) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::field(
                    "sink",
                    "give exactly one of [sink.kafka] and [sink.s3], not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::field(
                    "sink",
                    "missing: give [sink.kafka] or [sink.s3]",
                ));
            }
            _ => {}
        }
        if let Some(offsets) = &self.offsets {
            let count = usize::from(offsets.file.is_some())
                + usize::from(offsets.object.is_some())
                + usize::from(offsets.kafka.is_some());
            if count != 1 {
                return Err(ConfigError::field(
                    "offsets",
                    "give exactly one of file, [offsets.object] and [offsets.kafka]",
                ));
            }
        }
        let transactional = self
            .sink
            .kafka
            .as_ref()
            .is_some_and(|k| k.exactly_once == Some(true));
        if self.source.mssql.is_some() && self.offsets.is_none() && !transactional {
            return Err(ConfigError::field(
                "offsets",
                "missing: a SQL Server source needs [offsets] (file, object or kafka) unless \
                 [sink.kafka] has exactly_once = true, which keeps them in its offsets topic",
            ));
        }
        if transactional && self.offsets.is_some() {
            return Err(ConfigError::field(
                "offsets",
                "with [sink.kafka] exactly_once = true the checkpoint is written inside the \
                 producer's transactions to offsets_topic; remove [offsets]",
            ));
        }
        if let Some(m) = &self.source.mssql {
            m.validate_signals(self.sink.kafka.is_some())?;
        }
        if self.source.kafka.is_some() && self.sink.kafka.is_some() {
            return Err(ConfigError::field(
                "sink.kafka",
                "Kafka to Kafka is not a pipeline this service runs; use [sink.s3]",
            ));
        }
        Ok(())
    }

    /// The file as TOML, secrets redacted (`cdc print-config`): each secret is written as a
    /// reference to an environment variable named after its place —
    /// `password = "${CDC_SOURCE_MSSQL_PASSWORD}"`, `"sasl.password" =
    /// "${CDC_SINK_KAFKA_PROPERTIES_SASL_PASSWORD}"` — so the printed file runs once those
    /// variables are set, and fails naming the missing one otherwise (a literal placeholder
    /// would have been sent to the server as the secret).
    pub fn to_toml(&self) -> String {
        let mut copy = self.clone();
        redact_options(&mut copy);
        let rendered = toml::Value::try_from(&copy).and_then(|mut value| {
            secret_references(&mut value, &mut Vec::new());
            toml::to_string_pretty(&value)
        });
        rendered.unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Refuses a secret that is still the placeholder an older `cdc print-config` wrote.
    fn refuse_redacted_secrets(&self) -> Result<(), ConfigError> {
        // Secrets themselves are refused when deserialised; here the option maps (a copy:
        // the maps are reached through the one list `option_maps` keeps, which lends them
        // mutably for redaction).
        let mut copy = self.clone();
        let found = option_maps(&mut copy).into_iter().find_map(|(field, map)| {
            map.iter()
                .find(|(key, value)| is_secret_key(key) && *value == REDACTED)
                .map(|(key, _)| format!("{field}.{key}"))
        });
        match found {
            Some(field) => Err(ConfigError::field(field, REDACTED_GIVEN)),
            None => Ok(()),
        }
    }
}

/// Why a secret that reads [`REDACTED`] is refused.
const REDACTED_GIVEN: &str = "is the placeholder `cdc print-config` writes in place of a secret, \
     not the secret: give it, e.g. as \"${NAME}\" of an environment variable";

/// Replaces every [`REDACTED`] string of a rendered file with `${CDC_<PATH>}`, the path of
/// its key upper-cased with every character other than a letter or digit as `_`.
fn secret_references(value: &mut toml::Value, path: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if s == REDACTED => {
            let name: String = path
                .join("_")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            *s = format!("${{CDC_{name}}}");
        }
        toml::Value::Table(table) => {
            for (key, value) in table.iter_mut() {
                path.push(key.clone());
                secret_references(value, path);
                path.pop();
            }
        }
        toml::Value::Array(items) => {
            for (i, value) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                secret_references(value, path);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Whether an option key names a secret (object_store's `secret_access_key`,
/// `session_token`, librdkafka's `sasl.password`, …).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "credential", "private"]
        .iter()
        .any(|word| key.contains(word))
}

fn redact_options(file: &mut PipelineFile) {
    for (_, map) in option_maps(file) {
        for (key, value) in map.iter_mut() {
            if is_secret_key(key) {
                *value = REDACTED.to_string();
            }
        }
    }
}

/// Every pass-through option map of `file` (object_store options, librdkafka properties),
/// with the field it is written under: the maps whose secret keys are redacted.
fn option_maps(file: &mut PipelineFile) -> Vec<(&'static str, &mut BTreeMap<String, String>)> {
    let mut maps = Vec::new();
    if let Some(s3) = &mut file.sink.s3 {
        maps.push(("sink.s3.options", &mut s3.options));
    }
    if let Some(k) = &mut file.sink.kafka {
        maps.push(("sink.kafka.properties", &mut k.properties));
    }
    if let Some(k) = &mut file.source.kafka {
        maps.push(("source.kafka.properties", &mut k.properties));
    }
    if let Some(m) = &mut file.source.mssql {
        maps.push((
            "source.mssql.signal_kafka_properties",
            &mut m.signal_kafka_properties,
        ));
    }
    if let Some(o) = &mut file.offsets {
        if let Some(object) = &mut o.object {
            maps.push(("offsets.object.options", &mut object.options));
        }
        if let Some(k) = &mut o.kafka {
            maps.push(("offsets.kafka.properties", &mut k.properties));
        }
    }
    maps
}
