//! Connection settings shared by every client of this crate.

use crate::{KafkaIoError, Security};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::fmt;

/// Where the brokers are, how to reach them, and any other librdkafka property.
///
/// Properties set with [`set`](Self::set) pass through to librdkafka unchanged; they are
/// applied last, so they override what this crate sets (except the safety settings each
/// role insists on, which the role documents). Values of properties whose name suggests a
/// secret (`password`, `secret`, `key`, `token`) are hidden from `Debug`.
///
/// ```
/// use kafka_io::KafkaConfig;
/// let config = KafkaConfig::new("broker-1:9092,broker-2:9092")
///     .set("compression.type", "zstd")
///     .set("sasl.password", "not-shown");
/// assert!(config.validate().is_ok());
/// assert!(!format!("{config:?}").contains("not-shown"));
/// assert!(KafkaConfig::new(" ").validate().is_err());
/// ```
#[derive(Clone, Default)]
pub struct KafkaConfig {
    bootstrap_servers: String,
    security: Security,
    properties: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Brokers to bootstrap from, comma-separated `host:port`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// How to authenticate and encrypt.
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Any librdkafka property, passed through.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// A pass-through property, if set.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), KafkaIoError> {
        let servers: Vec<&str> = self.bootstrap_servers.split(',').map(str::trim).collect();
        if servers.iter().any(|s| s.is_empty()) {
            return Err(KafkaIoError::config(
                "bootstrap_servers",
                "must list host:port pairs",
            ));
        }
        self.security.validate()?;
        for key in self.properties.keys() {
            if key.trim().is_empty() {
                return Err(KafkaIoError::config(
                    "properties",
                    "a property name is empty",
                ));
            }
        }
        Ok(())
    }

    /// The client context carrying the OAUTHBEARER token provider, if any.
    pub(crate) fn auth_context(&self) -> crate::auth::AuthContext {
        crate::auth::AuthContext {
            tokens: self.security.tokens(),
        }
    }

    /// The librdkafka configuration: bootstrap, security, then the pass-through properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        self.security.apply(&mut config);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

fn is_secret(key: &str) -> bool {
    ["password", "secret", "key", "token", "jaas"]
        .iter()
        .any(|word| key.contains(word))
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security", &self.security)
            .field("properties", &properties)
            .finish()
    }
}
