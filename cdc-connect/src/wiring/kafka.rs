//! The Kafka pieces: a section's client settings → kafka-io's `KafkaConfig`, the Kafka sink's
//! Debezium codec, and the Kafka signal channel of a SQL Server source.

use crate::config::{self, ConfigError, KafkaClient, PipelineFile};
use crate::signals::{DEFAULT_SIGNAL_GROUP_ID, KafkaSignalChannel};
use cdc_core::DebeziumJson;
use kafka_io::{KafkaConfig, SaslMechanism, Security, Tls};

/// kafka-io's client configuration; `field` names the section in errors.
pub fn kafka_config(client: KafkaClient<'_>, field: &str) -> Result<KafkaConfig, ConfigError> {
    let mut kafka = KafkaConfig::new(client.brokers);
    if let Some(s) = client.security {
        let tls = Tls {
            ca_file: s.ca_file.clone(),
            certificate_file: s.certificate_file.clone(),
            key_file: s.key_file.clone(),
            key_password: s
                .key_password
                .as_ref()
                .map(|p| kafka_io::Secret::new(p.expose())),
        };
        let security = match s.protocol {
            config::KafkaProtocol::Plaintext => Security::Plaintext,
            config::KafkaProtocol::Ssl => Security::Ssl(tls),
            config::KafkaProtocol::SaslSsl => Security::SaslSsl {
                mechanism: match s.mechanism {
                    Some(config::Mechanism::ScramSha256) => SaslMechanism::ScramSha256,
                    Some(config::Mechanism::Plain) => SaslMechanism::Plain,
                    Some(config::Mechanism::ScramSha512) | None => SaslMechanism::ScramSha512,
                },
                username: s.username.clone().ok_or_else(|| {
                    ConfigError::field(
                        format!("{field}.security.username"),
                        "missing: sasl_ssl needs a username",
                    )
                })?,
                password: kafka_io::Secret::new(
                    s.password
                        .as_ref()
                        .ok_or_else(|| {
                            ConfigError::field(
                                format!("{field}.security.password"),
                                "missing: sasl_ssl needs a password",
                            )
                        })?
                        .expose(),
                ),
                tls,
            },
        };
        kafka = kafka.security(security);
    }
    for (key, value) in client.properties {
        kafka = kafka.set(key, value);
    }
    kafka
        .validate()
        .map_err(|e| ConfigError::field(field, e.to_string()))?;
    Ok(kafka)
}

/// The Kafka sink's codec: `schemas` and Debezium's value handling modes from `[sink.kafka]`.
pub fn kafka_sink_codec(section: &config::KafkaSinkSection) -> DebeziumJson {
    debezium_json(
        section.schemas.unwrap_or(true),
        section.time_precision_mode,
        section.decimal_handling_mode,
        section.binary_handling_mode,
        section.unavailable_value_placeholder.as_deref(),
    )
}

/// A Debezium JSON codec with Debezium's value handling modes (unset: Debezium's defaults),
/// for the Kafka sink and the S3 sink's NDJSON lines alike.
pub(super) fn debezium_json(
    schemas: bool,
    time: Option<cdc_core::codec::TimePrecisionMode>,
    decimal: Option<cdc_core::codec::DecimalHandlingMode>,
    binary: Option<cdc_core::codec::BinaryHandlingMode>,
    placeholder: Option<&str>,
) -> DebeziumJson {
    let mut b = DebeziumJson::builder().schemas(schemas);
    if let Some(mode) = time {
        b = b.time_precision_mode(mode);
    }
    if let Some(mode) = decimal {
        b = b.decimal_handling_mode(mode);
    }
    if let Some(mode) = binary {
        b = b.binary_handling_mode(mode);
    }
    if let Some(placeholder) = placeholder {
        b = b.unavailable_value_placeholder(placeholder.to_string());
    }
    b.build()
}

/// Debezium's Kafka signal channel from `[source.mssql] signal_kafka_*`: its own brokers and
/// properties, else `[sink.kafka]`'s brokers and security with the signal properties.
pub(super) fn kafka_signal_channel(
    file: &PipelineFile,
    m: &config::MssqlSection,
    topic_prefix: &str,
) -> Result<Option<KafkaSignalChannel>, ConfigError> {
    let Some(topic) = &m.signal_kafka_topic else {
        return Ok(None);
    };
    let field = "source.mssql.signal_kafka_brokers";
    let client = match (&m.signal_kafka_brokers, &file.sink.kafka) {
        (Some(brokers), _) => KafkaClient {
            brokers,
            security: None,
            properties: &m.signal_kafka_properties,
        },
        (None, Some(sink)) => KafkaClient {
            brokers: &sink.brokers,
            security: sink.security.as_ref(),
            properties: &m.signal_kafka_properties,
        },
        (None, None) => {
            return Err(ConfigError::field(
                field,
                "missing: the signal topic needs brokers when the sink is not [sink.kafka]",
            ));
        }
    };
    let kafka = kafka_config(client, "source.mssql.signal_kafka_properties")?;
    let group = m
        .signal_kafka_group_id
        .as_deref()
        .unwrap_or(DEFAULT_SIGNAL_GROUP_ID);
    KafkaSignalChannel::new(&kafka, topic, group, topic_prefix)
        .map(Some)
        .map_err(|e| ConfigError::field("source.mssql.signal_kafka_topic", e))
}
