//! The Kafka client settings the Kafka source, sink and offset store share: brokers,
//! `security.protocol`, SASL and TLS.

use super::{KafkaOffsets, KafkaSinkSection, KafkaSourceSection, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Kafka client settings shared by the Kafka source, sink and offset store (each section
/// holds `brokers`, `security` and `properties` itself).
#[derive(Debug, Clone, Copy)]
pub struct KafkaClient<'a> {
    /// `bootstrap.servers`.
    pub brokers: &'a str,
    /// Security settings; plaintext when absent.
    pub security: Option<&'a KafkaSecurity>,
    /// Further librdkafka properties.
    pub properties: &'a BTreeMap<String, String>,
}

macro_rules! kafka_client {
    ($($section:ty),*) => {$(
        impl $section {
            /// The Kafka client settings of this section.
            pub fn client(&self) -> KafkaClient<'_> {
                KafkaClient {
                    brokers: &self.brokers,
                    security: self.security.as_ref(),
                    properties: &self.properties,
                }
            }
        }
    )*};
}
kafka_client!(KafkaSourceSection, KafkaSinkSection, KafkaOffsets);

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, optionally mutual.
    Ssl,
    /// SASL over TLS.
    SaslSsl,
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum Mechanism {
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `PLAIN`.
    Plain,
}

/// `[….security]` of a Kafka client.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecurity {
    /// The protocol.
    pub protocol: KafkaProtocol,
    /// SASL mechanism (with `sasl_ssl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<Mechanism>,
    /// SASL user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SASL password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// CA file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// Client key (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Client key password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_password: Option<Secret>,
}
