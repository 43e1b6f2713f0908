//! Kafka Connect connector configurations → a [`PipelineFile`].
//!
//! Accepts Debezium's SQL Server source (`io.debezium.connector.sqlserver.SqlServerConnector`)
//! and Confluent's S3 sink (`io.confluent.connect.s3.S3SinkConnector`), each in the REST form
//! (`{"name": …, "config": {…}}`) or flat (`{"connector.class": …, …}`), as users have them.
//!
//! - source alone → SQL Server → Kafka (checkpoints in the `cdc-offsets` topic);
//! - sink alone → Kafka → S3, consumer group `connect-<name>` as Kafka Connect names it, so
//!   the committed offsets carry over;
//! - both → SQL Server → S3 directly, the topics the sink reads becoming the tables read,
//!   checkpoints beside the data (`<topics.dir>/_cdc/<name>.offsets.json`).
//!
//! A property with no meaning here (`tasks.max`, schema history, …) is reported once as a
//! [`Warning`]; a property or value this service cannot honour (a `message.key.columns` table
//! regex with no wildcard form, Avro, `Wallclock` timestamps, …) or does not know is an error
//! naming it.
//!
//! Here: the connector configurations and [`translate`], which puts the pipeline together.
//! `debezium`: the source's properties; `s3`: the sink's; `props`: taking each property once
//! and the value forms both share.

mod debezium;
mod props;
mod s3;

use crate::config::{
    self, ConfigError, KafkaOffsets, KafkaSinkSection, KafkaSourceSection, ObjectOffsets,
    OffsetsSection, PipelineFile, PipelineSection, SinkSection, SourceSection,
};
use debezium::translate_debezium;
use s3::translate_s3;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::Path;

/// Debezium's SQL Server connector class.
pub const DEBEZIUM_SQLSERVER: &str = "io.debezium.connector.sqlserver.SqlServerConnector";
/// Confluent's S3 sink connector class.
pub const CONFLUENT_S3: &str = "io.confluent.connect.s3.S3SinkConnector";

/// A property that has no meaning here, reported once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The connector's name.
    pub connector: String,
    /// The property.
    pub property: String,
    /// Why it is ignored or what it became.
    pub note: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.connector, self.property, self.note)
    }
}

/// A connector configuration: its name and flat properties.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// `name`.
    pub name: String,
    /// The properties, every value as text.
    pub properties: BTreeMap<String, String>,
}

impl ConnectorConfig {
    /// Parses the REST form or the flat form; `origin` names the file in errors. Kafka
    /// Connect config-provider references are resolved as [`ConnectorConfig::parse_with_env`]
    /// says, from the process environment.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, origin, |name| std::env::var(name).ok())
    }

    /// As [`ConnectorConfig::parse`], with `env` looking up environment variables. A value
    /// holding a Kafka Connect config-provider reference `${provider:[path:]key}` (KIP-297):
    /// `${env:NAME}` (Kafka's `EnvVarConfigProvider`) becomes the variable's value; a variable
    /// that is not set, or any other provider (`file`, `directory`, AWS Secrets Manager, …:
    /// they need the JVM's provider classes), is an error naming the property — passing the
    /// reference through would send it to SQL Server as the password. Never logs a value.
    pub fn parse_with_env(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let json: Json = serde_json::from_str(text).map_err(|e| ConfigError::Invalid {
            origin: origin.into(),
            line: e.line(),
            table: String::new(),
            message: format!("not a connector configuration: {e}"),
        })?;
        let Json::Object(mut top) = json else {
            return Err(ConfigError::field(origin, "expected a JSON object"));
        };
        let (name, config) = match top.remove("config") {
            Some(Json::Object(config)) => {
                let name = top.get("name").and_then(Json::as_str).map(str::to_string);
                (name, config)
            }
            Some(_) => {
                return Err(ConfigError::field(
                    format!("{origin}: config"),
                    "expected an object",
                ));
            }
            None => (None, top),
        };
        let mut properties = BTreeMap::new();
        for (key, value) in config {
            let text = match value {
                Json::String(s) => s,
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                Json::Null => continue,
                other => {
                    return Err(ConfigError::field(
                        format!("{origin}: {key}"),
                        format!("expected a string, number or boolean, got {other}"),
                    ));
                }
            };
            let text = resolve_providers(&text, &env)
                .map_err(|reason| ConfigError::field(format!("{origin}: {key}"), reason))?;
            properties.insert(key, text);
        }
        let name = name
            .or_else(|| properties.get("name").cloned())
            .ok_or_else(|| ConfigError::field(format!("{origin}: name"), "missing"))?;
        properties.remove("name");
        Ok(Self { name, properties })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    fn class(&self) -> &str {
        self.properties
            .get("connector.class")
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// `value` with each `${provider:[path:]key}` reference resolved (see
/// [`ConnectorConfig::parse_with_env`]); the reason, without the value, when one cannot be.
fn resolve_providers(value: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let reference = &rest[start + 2..start + len];
        // `${NAME}` or `${not a name:…}` is no provider reference; Kafka Connect leaves it.
        let provider_ref = reference.split_once(':').filter(|(provider, _)| {
            !provider.is_empty()
                && provider
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        let Some((provider, spec)) = provider_ref else {
            out.push_str(&rest[..start + len + 1]);
            rest = &rest[start + len + 1..];
            continue;
        };
        let resolved = match provider {
            "env" => {
                // `${env:NAME}` or `${env:<path>:NAME}`: the key is what follows the last ':'.
                let name = spec.rsplit(':').next().unwrap_or(spec);
                env(name).ok_or_else(|| {
                    format!("refers to ${{env:{name}}}, and environment variable {name} is not set")
                })?
            }
            other => {
                return Err(format!(
                    "holds a Kafka Connect config-provider reference (${{{other}:…}}); only \
                     ${{env:NAME}} is resolved here: put the secret in an environment variable"
                ));
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&resolved);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Settings Kafka Connect keeps in the worker configuration rather than the connector's.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    /// The worker's `bootstrap.servers`.
    pub brokers: Option<String>,
}

/// The translation: the pipeline and the warnings, each property reported once.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The pipeline.
    pub file: PipelineFile,
    /// Properties ignored or approximated.
    pub warnings: Vec<Warning>,
}

/// Translates connector configurations (at most one source and one sink) into a pipeline.
pub fn translate(
    connectors: &[ConnectorConfig],
    worker: &WorkerSettings,
) -> Result<Translation, ConfigError> {
    let mut warnings = Vec::new();
    let mut source = None;
    let mut sink = None;
    for c in connectors {
        match c.class() {
            DEBEZIUM_SQLSERVER if source.is_none() => source = Some(c),
            CONFLUENT_S3 if sink.is_none() => sink = Some(c),
            DEBEZIUM_SQLSERVER | CONFLUENT_S3 => {
                return Err(ConfigError::field(
                    format!("{}: connector.class", c.name),
                    "give at most one source and one sink connector per pipeline",
                ));
            }
            other => {
                return Err(ConfigError::field(
                    format!("{}: connector.class", c.name),
                    format!(
                        "{other:?} is not supported ({DEBEZIUM_SQLSERVER} and {CONFLUENT_S3} are)"
                    ),
                ));
            }
        }
    }
    let brokers = |hint: Option<String>, connector: &str| {
        worker.brokers.clone().or(hint).ok_or_else(|| {
            ConfigError::field(
                format!("{connector}: bootstrap.servers"),
                "missing: it lives in the Kafka Connect worker configuration; pass --kafka-brokers",
            )
        })
    };
    let file = match (source, sink) {
        (Some(src), None) => {
            let (mssql, kafka) = translate_debezium(src, &mut warnings)?;
            let brokers = brokers(kafka.brokers, &src.name)?;
            PipelineFile {
                pipeline: PipelineSection {
                    name: src.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: Some(mssql),
                    kafka: None,
                },
                sink: SinkSection {
                    kafka: Some(KafkaSinkSection {
                        brokers: brokers.clone(),
                        schemas: kafka.schemas,
                        tombstones: kafka.tombstones,
                        create_topics: kafka.create_topics,
                        time_precision_mode: kafka.time_precision_mode,
                        decimal_handling_mode: kafka.decimal_handling_mode,
                        binary_handling_mode: kafka.binary_handling_mode,
                        unavailable_value_placeholder: kafka.unavailable_value_placeholder,
                        ..KafkaSinkSection::default()
                    }),
                    s3: None,
                },
                offsets: Some(OffsetsSection {
                    kafka: Some(KafkaOffsets {
                        brokers,
                        topic: "cdc-offsets".into(),
                        key: Some(src.name.clone()),
                        ..KafkaOffsets::default()
                    }),
                    ..OffsetsSection::default()
                }),
                ..PipelineFile::default()
            }
        }
        (None, Some(snk)) => {
            let s3 = translate_s3(snk, &mut warnings)?;
            if s3.schemaless_values {
                return Err(ConfigError::field(
                    format!("{}: value.converter.schemas.enable", snk.name),
                    s3::SCHEMALESS_REFUSED,
                ));
            }
            let brokers = brokers(None, &snk.name)?;
            let mut topics = s3.topics;
            topics.extend(s3.topics_regex.map(|r| {
                if r.starts_with('^') {
                    r
                } else {
                    format!("^{r}")
                }
            }));
            PipelineFile {
                pipeline: PipelineSection {
                    name: snk.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: None,
                    kafka: Some(KafkaSourceSection {
                        brokers,
                        // Kafka Connect's group for a sink connector, so offsets carry over.
                        group_id: format!("connect-{}", snk.name),
                        topics,
                        on_decode_failure: match (&s3.dead_letter, s3.skip_errors) {
                            (Some(_), _) => Some(config::DecodeFailure::DeadLetter),
                            (None, true) => Some(config::DecodeFailure::Skip),
                            (None, false) => None,
                        },
                        dead_letter_topic: s3.dead_letter,
                        ..KafkaSourceSection::default()
                    }),
                },
                sink: SinkSection {
                    kafka: None,
                    s3: Some(s3.sink),
                },
                offsets: None,
                ..PipelineFile::default()
            }
        }
        (Some(src), Some(snk)) => {
            let (mut mssql, kafka) = translate_debezium(src, &mut warnings)?;
            let mut s3 = translate_s3(snk, &mut warnings)?;
            if s3.schemaless_values {
                warnings.push(Warning {
                    connector: snk.name.clone(),
                    property: "value.converter.schemas.enable".into(),
                    note: "no meaning here: changes go from SQL Server straight to S3".into(),
                });
            }
            let handling = kafka.time_precision_mode.is_some()
                || kafka.decimal_handling_mode.is_some()
                || kafka.binary_handling_mode.is_some()
                || kafka.unavailable_value_placeholder.is_some();
            // The source's value handling decided what Confluent's sink wrote in JSON files;
            // the S3 sink writes those lines itself now, so the modes go to it. Parquet
            // columns keep SQL Server's types whatever the modes (Confluent's Parquet from
            // such topics held strings or doubles): said, not applied.
            let json_lines = s3.sink.format == Some(config::FileFormat::Ndjson)
                && s3.sink.layout == Some(config::RowLayout::Debezium);
            if handling && json_lines {
                s3.sink.time_precision_mode = kafka.time_precision_mode;
                s3.sink.decimal_handling_mode = kafka.decimal_handling_mode;
                s3.sink.binary_handling_mode = kafka.binary_handling_mode;
                s3.sink.unavailable_value_placeholder = kafka.unavailable_value_placeholder.clone();
            } else if handling {
                warnings.push(Warning {
                    connector: src.name.clone(),
                    property:
                        "time.precision.mode / decimal.handling.mode / binary.handling.mode / \
                               unavailable.value.placeholder"
                            .into(),
                    note: "not applied: Parquet columns keep SQL Server's types".into(),
                });
            }
            for (what, set) in [
                ("tombstones.on.delete", kafka.tombstones.is_some()),
                ("key.converter / value.converter", kafka.schemas.is_some()),
                ("topic.creation.*", kafka.create_topics.is_some()),
                (
                    "schema.history.internal.kafka.bootstrap.servers",
                    kafka.brokers.is_some(),
                ),
            ] {
                if set {
                    warnings.push(Warning {
                        connector: src.name.clone(),
                        property: what.into(),
                        note: "no meaning here: changes go from SQL Server straight to S3".into(),
                    });
                }
            }
            if s3.topics_regex.is_some() {
                return Err(ConfigError::field(
                    format!("{}: topics.regex", snk.name),
                    "with both connectors the sink's topics must be listed by name (topics)",
                ));
            }
            if s3.dead_letter.is_some() {
                return Err(ConfigError::field(
                    format!("{}: errors.deadletterqueue.topic.name", snk.name),
                    "with both connectors changes go from SQL Server straight to S3: there is no \
                     Kafka record to dead-letter",
                ));
            }
            // The sink's topics are `<topic.prefix>.<database>.<schema>.<table>`: those
            // tables are what the pipeline reads.
            let prefix = format!("{}.", mssql.topic_prefix);
            let mut tables = Vec::new();
            for topic in &s3.topics {
                let rest = topic.strip_prefix(&prefix).ok_or_else(|| {
                    ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!("topic {topic:?} is not one the source writes (it must start with {prefix:?})"),
                    )
                })?;
                let parts: Vec<&str> = rest.splitn(3, '.').collect();
                let [database, schema, table] = parts[..] else {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!("topic {topic:?} is not <prefix>.<database>.<schema>.<table>"),
                    ));
                };
                if !mssql.databases.is_empty() && !mssql.databases.iter().any(|d| d == database) {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!(
                            "topic {topic:?} names database {database:?}, which database.names does not list"
                        ),
                    ));
                }
                tables.push(format!("{schema}.{table}"));
            }
            // What lands in S3 is what the sink reads: a table the source captured only for
            // Kafka is not captured here (in Kafka Connect it never reached S3 either), and a
            // table the source did not capture is refused.
            if !mssql.include_tables.is_empty() {
                // Matched as the reader matches them: case-insensitive, with wildcards (the
                // translated form of Debezium's regular expressions).
                let captures = |pattern: &String, table: &String| {
                    cdc_mssql::table_pattern_matches(pattern, table)
                };
                if let Some(missing) = tables
                    .iter()
                    .find(|t| !mssql.include_tables.iter().any(|p| captures(p, t)))
                {
                    return Err(ConfigError::field(
                        format!("{}: topics", snk.name),
                        format!(
                            "the sink reads {missing}, which the source's table.include.list {:?} \
                             does not capture",
                            mssql.include_tables
                        ),
                    ));
                }
                let not_in_s3: Vec<&String> = mssql
                    .include_tables
                    .iter()
                    .filter(|p| !tables.iter().any(|t| captures(p, t)))
                    .collect();
                if !not_in_s3.is_empty() {
                    warnings.push(Warning {
                        connector: src.name.clone(),
                        property: "table.include.list".into(),
                        note: format!(
                            "{not_in_s3:?} are not captured: the sink does not read their topics, \
                             and with both connectors changes go straight to S3"
                        ),
                    });
                }
            }
            mssql.include_tables = tables;
            let url = s3.sink.url.clone();
            let offsets_url = format!("{url}/_cdc/{}.offsets.json", src.name);
            let options = s3.sink.options.clone();
            PipelineFile {
                pipeline: PipelineSection {
                    name: src.name.clone(),
                    ..PipelineSection::default()
                },
                source: SourceSection {
                    mssql: Some(mssql),
                    kafka: None,
                },
                sink: SinkSection {
                    kafka: None,
                    s3: Some(s3.sink),
                },
                offsets: Some(OffsetsSection {
                    object: Some(ObjectOffsets {
                        url: offsets_url,
                        options,
                    }),
                    ..OffsetsSection::default()
                }),
                ..PipelineFile::default()
            }
        }
        (None, None) => {
            return Err(ConfigError::field(
                "--connect-config",
                "give at least one connector configuration",
            ));
        }
    };
    file.validate()?;
    Ok(Translation { file, warnings })
}
