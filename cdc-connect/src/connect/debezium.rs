//! Debezium's SQL Server source connector properties → the `[source.mssql]` section and what
//! they say about the Kafka side.

use super::props::{Props, json_converter, list, regex_to_wildcard};
use super::{ConnectorConfig, Warning};
use crate::config::ConfigError;
use crate::config::{self, MssqlSection, Secret};
use std::collections::BTreeMap;

/// Debezium's `message.key.columns` (`<table regex>:<col>,<col>;…`) with each table part
/// translated to the reader's wildcards, as the include lists are.
fn message_key_columns(p: &mut Props<'_>, value: &str) -> Result<String, ConfigError> {
    let mut entries = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((table, columns)) = entry.split_once(':') else {
            return Err(p.refuse(
                "message.key.columns",
                format!("{entry:?} has no ':' between the table and its key columns"),
            ));
        };
        let table = regex_to_wildcard(table.trim()).ok_or_else(|| {
            p.refuse(
                "message.key.columns",
                format!(
                    "the regular expression {table:?} has no wildcard equivalent: \
                     list names, with `.*` for any text"
                ),
            )
        })?;
        entries.push(format!("{table}:{}", columns.trim()));
    }
    Ok(entries.join(";"))
}

const DEBEZIUM_KNOWN: &[&str] = &[
    "connector.class",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.names",
    "database.dbname",
    "topic.prefix",
    "database.server.name",
    "table.include.list",
    "table.whitelist",
    "table.exclude.list",
    "table.blacklist",
    "column.exclude.list",
    "column.blacklist",
    "snapshot.mode",
    "snapshot.isolation.mode",
    "snapshot.fetch.size",
    "max.iteration.transactions",
    "heartbeat.interval.ms",
    "poll.interval.ms",
    "max.batch.size",
    "database.encrypt",
    "database.trustServerCertificate",
    "database.applicationIntent",
    "time.precision.mode",
    "decimal.handling.mode",
    "binary.handling.mode",
    "unavailable.value.placeholder",
    "message.key.columns",
    "tombstones.on.delete",
    "key.converter",
    "value.converter",
    "key.converter.schemas.enable",
    "value.converter.schemas.enable",
    "tasks.max",
    "include.schema.changes",
    "provide.transaction.metadata",
    "transforms",
    "topic.creation.default.partitions",
    "topic.creation.default.replication.factor",
    "topic.creation.default.cleanup.policy",
    "incremental.snapshot.chunk.size",
    "signal.enabled.channels",
    "signal.data.collection",
    "signal.kafka.topic",
    "signal.kafka.bootstrap.servers",
    "signal.kafka.groupId",
    "signal.kafka.poll.timeout.ms",
    "signal.poll.interval.ms",
];

/// Debezium's signal channels (`signal.enabled.channels`, default `source`): the signal table
/// (`signal.data.collection`) and the Kafka signal topic (`signal.kafka.*`, its consumer's
/// `signal.consumer.*`). Other channels (`jmx`, `file`, custom ones) are reported: signals
/// reach this service by `POST /signals` instead.
fn translate_signals(p: &mut Props<'_>, m: &mut MssqlSection) -> Result<(), ConfigError> {
    let channels = p
        .take("signal.enabled.channels")
        .map(|v| list(&v))
        .unwrap_or_else(|| vec!["source".to_string()]);
    for channel in &channels {
        if !matches!(channel.as_str(), "source" | "kafka") {
            p.warn(
                "signal.enabled.channels",
                &format!(
                    "the {channel:?} channel does not exist here: send signals with POST /signals, \
                     the Kafka signal topic or the signal table"
                ),
            );
        }
    }
    let source = channels.iter().any(|c| c == "source");
    let kafka = channels.iter().any(|c| c == "kafka");
    match p.take("signal.data.collection") {
        Some(v) if source => m.signal_data_collection = Some(v.trim().to_string()),
        Some(_) => p.warn(
            "signal.data.collection",
            "ignored: signal.enabled.channels does not list source",
        ),
        None => {}
    }
    m.incremental_chunk_size = p.parse("incremental.snapshot.chunk.size")?;
    p.ignore(
        "signal.poll.interval.ms",
        "signals are taken at the source's next step; no interval to set",
    );
    p.ignore(
        "signal.kafka.poll.timeout.ms",
        "the signal consumer waits for messages without a poll timeout",
    );
    if !kafka {
        for key in [
            "signal.kafka.topic",
            "signal.kafka.bootstrap.servers",
            "signal.kafka.groupId",
        ] {
            p.ignore(key, "ignored: signal.enabled.channels does not list kafka");
        }
        p.ignore_prefix(
            "signal.consumer.",
            "ignored: signal.enabled.channels does not list kafka",
        );
        return Ok(());
    }
    // Debezium's default topic is `<topic.prefix>-signal`; its brokers are required.
    m.signal_kafka_topic = Some(
        p.take("signal.kafka.topic")
            .unwrap_or_else(|| format!("{}-signal", m.topic_prefix)),
    );
    m.signal_kafka_brokers = Some(p.take("signal.kafka.bootstrap.servers").ok_or_else(|| {
        p.refuse(
            "signal.kafka.bootstrap.servers",
            "missing: the kafka signal channel needs it (as Debezium does)",
        )
    })?);
    m.signal_kafka_group_id = p.take("signal.kafka.groupId");
    let consumer: Vec<String> = p
        .left
        .keys()
        .filter(|k| k.starts_with("signal.consumer."))
        .cloned()
        .collect();
    for key in consumer {
        if let Some(value) = p.take(&key) {
            let property = key.trim_start_matches("signal.consumer.").to_string();
            m.signal_kafka_properties.insert(property, value);
        }
    }
    Ok(())
}

pub(super) fn translate_debezium(
    c: &ConnectorConfig,
    warnings: &mut Vec<Warning>,
) -> Result<(MssqlSection, DebeziumKafka), ConfigError> {
    let mut p = Props {
        connector: &c.name,
        left: c.properties.clone(),
        warnings,
    };
    p.take("connector.class");
    let mut m = MssqlSection {
        host: p.take("database.hostname"),
        port: p.parse("database.port")?,
        user: p.take("database.user"),
        password: p.take("database.password").map(Secret::new),
        databases: p
            .take_any(&["database.names", "database.dbname"])
            .map(|v| list(&v))
            .unwrap_or_default(),
        topic_prefix: p
            .take_any(&["topic.prefix", "database.server.name"])
            .ok_or_else(|| p.refuse("topic.prefix", "missing: it names every topic"))?,
        ..MssqlSection::default()
    };
    for (keys, target) in [
        (
            &["table.include.list", "table.whitelist"][..],
            &mut m.include_tables,
        ),
        (
            &["table.exclude.list", "table.blacklist"][..],
            &mut m.exclude_tables,
        ),
        (
            &["column.exclude.list", "column.blacklist"][..],
            &mut m.exclude_columns,
        ),
    ] {
        if let Some(v) = p.take_any(keys) {
            for pattern in list(&v) {
                let wildcard = regex_to_wildcard(&pattern).ok_or_else(|| {
                    p.refuse(
                        keys[0],
                        format!(
                            "the regular expression {pattern:?} has no wildcard equivalent: \
                             list names, with `.*` for any text"
                        ),
                    )
                })?;
                target.push(wildcard);
            }
        }
    }
    if let Some(v) = p.take("snapshot.mode") {
        use config::SnapshotMode as M;
        m.snapshot_mode = Some(match v.as_str() {
            "initial" => M::Initial,
            "initial_only" => M::InitialOnly,
            "no_data" => M::NoData,
            "schema_only" => {
                p.warn(
                    "snapshot.mode",
                    "schema_only is Debezium's old name of no_data",
                );
                M::NoData
            }
            "when_needed" => M::WhenNeeded,
            "always" => M::Always,
            other => {
                return Err(p.refuse(
                    "snapshot.mode",
                    format!("{other:?} is not supported (initial, initial_only, no_data, when_needed, always are)"),
                ));
            }
        });
    }
    if let Some(v) = p.take("snapshot.isolation.mode") {
        use config::SnapshotIsolation as I;
        m.snapshot_isolation = Some(match v.as_str() {
            "snapshot" => I::Snapshot,
            "repeatable_read" => I::RepeatableRead,
            "read_committed" => I::ReadCommitted,
            other => {
                return Err(p.refuse(
                    "snapshot.isolation.mode",
                    format!(
                        "{other:?} is not supported (snapshot, repeatable_read, read_committed are)"
                    ),
                ));
            }
        });
    }
    m.snapshot_chunk_size = p.parse("snapshot.fetch.size")?;
    translate_signals(&mut p, &mut m)?;
    match p.parse::<u32>("max.iteration.transactions")? {
        Some(0) => p.warn(
            "max.iteration.transactions",
            "0 (unbounded) would let a lagging reader hold any number of transactions; the default bound (500) is kept",
        ),
        other => m.max_iteration_transactions = other,
    }
    m.heartbeat_interval_ms = p.parse("heartbeat.interval.ms")?;
    if m.heartbeat_interval_ms.is_some_and(|ms| ms > 0) {
        // Debezium also writes a message to __debezium-heartbeat.<topic.prefix> each interval;
        // only the checkpoint's refresh carries over.
        p.warn(
            "heartbeat.interval.ms",
            "positions are checkpointed on this interval on a quiet database, but no messages are written to __debezium-heartbeat.<topic.prefix>",
        );
    }
    m.poll_interval_ms = p.parse("poll.interval.ms")?;
    m.max_batch_events = p.parse("max.batch.size")?;
    if let Some(encrypt) = p.parse::<bool>("database.encrypt")? {
        m.encryption = Some(if encrypt {
            config::Encryption::Required
        } else {
            config::Encryption::LoginOnly
        });
    }
    m.trust_server_certificate = p.parse("database.trustServerCertificate")?;
    if let Some(v) = p.take("database.applicationIntent") {
        m.read_only_intent = Some(v.eq_ignore_ascii_case("readonly"));
    }
    // Debezium's value handling modes, under their own names; a value Debezium does not know
    // is refused naming the property and listing the values it takes.
    fn mode<T: std::str::FromStr<Err = cdc_core::codec::ParseModeError>>(
        p: &mut Props<'_>,
        key: &str,
    ) -> Result<Option<T>, ConfigError> {
        match p.take(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e: cdc_core::codec::ParseModeError| p.refuse(key, e.to_string())),
        }
    }
    let time_precision_mode = mode(&mut p, "time.precision.mode")?;
    let decimal_handling_mode = mode(&mut p, "decimal.handling.mode")?;
    let binary_handling_mode = mode(&mut p, "binary.handling.mode")?;
    let unavailable_value_placeholder = p.take("unavailable.value.placeholder");
    if let Some(v) = p.take("message.key.columns")
        && !v.trim().is_empty()
    {
        m.message_key_columns = Some(message_key_columns(&mut p, &v)?);
    }
    if let Some(v) = p.take("provide.transaction.metadata")
        && v == "true"
    {
        return Err(p.refuse(
            "provide.transaction.metadata",
            "transaction metadata topics are not produced",
        ));
    }
    if let Some(v) = p.take("transforms")
        && !v.trim().is_empty()
    {
        return Err(p.refuse(
            "transforms",
            "single message transforms do not run here; for flat rows in S3 use the \
                 flattened layout of [sink.s3] instead of ExtractNewRecordState",
        ));
    }
    let tombstones = p.parse::<bool>("tombstones.on.delete")?;
    let key_schemas = json_converter(&mut p, "key")?;
    let value_schemas = json_converter(&mut p, "value")?;
    if key_schemas.is_some() && value_schemas.is_some() && key_schemas != value_schemas {
        return Err(p.refuse(
            "key.converter.schemas.enable",
            "keys and values must both embed schemas or both not",
        ));
    }
    let partitions = p.parse::<i32>("topic.creation.default.partitions")?;
    let replication = p.parse::<i32>("topic.creation.default.replication.factor")?;
    let cleanup = p.take("topic.creation.default.cleanup.policy");
    let create_topics = partitions.map(|partitions| config::CreateTopics {
        partitions,
        replication_factor: replication.unwrap_or(1),
        compacted: cleanup.as_deref().map(|c| c.contains("compact")),
        config: BTreeMap::new(),
    });
    let brokers = p.take("schema.history.internal.kafka.bootstrap.servers");
    p.ignore("tasks.max", "one task reads every table of the connector");
    p.ignore(
        "include.schema.changes",
        "no schema-change topic: schema changes travel inside the events",
    );
    // The schema history clients' security says how the cluster is reached; nothing of it is
    // translated, so say where the Kafka connections' security comes from instead of letting
    // "no schema history topic is needed" read as if it did not matter (a newcomer's MSK IAM
    // settings vanished and the producer connected without security).
    let secured = p.left.iter().any(|(k, v)| {
        (k.starts_with("schema.history.internal.") || k.starts_with("producer.override."))
            && k.ends_with("security.protocol")
            && !v.eq_ignore_ascii_case("PLAINTEXT")
    });
    if secured {
        p.warn(
            "security.protocol",
            "the cluster is secured, but connector properties do not carry the Kafka connections' \
             security: set [sink.kafka.security] (MSK's SASL/SCRAM or TLS; AWS_MSK_IAM has no \
             librdkafka support), else they connect in plaintext",
        );
    }
    p.ignore_prefix(
        "schema.history.internal",
        "no schema history topic is needed: schemas come from the capture instances",
    );
    p.ignore_prefix("database.history", "no schema history topic is needed");
    p.ignore_prefix(
        "errors.",
        "failures stop the pipeline with a typed error; nothing is skipped",
    );
    p.ignore_prefix(
        "producer.override.",
        "not translated: set producer settings in [sink.kafka.properties] (print-config, then edit)",
    );
    p.finish(DEBEZIUM_KNOWN)?;
    Ok((
        m,
        DebeziumKafka {
            brokers,
            tombstones,
            schemas: value_schemas.or(key_schemas),
            create_topics,
            time_precision_mode,
            decimal_handling_mode,
            binary_handling_mode,
            unavailable_value_placeholder,
        },
    ))
}

/// What the Debezium configuration says about the Kafka side.
#[derive(Debug, Default)]
pub(super) struct DebeziumKafka {
    pub(super) brokers: Option<String>,
    pub(super) tombstones: Option<bool>,
    pub(super) schemas: Option<bool>,
    pub(super) create_topics: Option<config::CreateTopics>,
    pub(super) time_precision_mode: Option<cdc_core::codec::TimePrecisionMode>,
    pub(super) decimal_handling_mode: Option<cdc_core::codec::DecimalHandlingMode>,
    pub(super) binary_handling_mode: Option<cdc_core::codec::BinaryHandlingMode>,
    pub(super) unavailable_value_placeholder: Option<String>,
}
