//! How clients authenticate and encrypt: plaintext, TLS, SASL over TLS.

use crate::{KafkaIoError, TokenProvider};
use rdkafka::ClientConfig;
use std::path::PathBuf;
use std::sync::Arc;

/// A secret string (password, key passphrase): cdc-core's, one type for the whole family.
pub use cdc_core::Secret;

/// TLS settings: the CA that signs the brokers' certificates and, for mutual TLS, the
/// client's certificate and key (PEM files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificate(s) to trust (`ssl.ca.location`); the system store when `None`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (`ssl.certificate.location`).
    pub certificate_file: Option<PathBuf>,
    /// Client private key for mutual TLS (`ssl.key.location`).
    pub key_file: Option<PathBuf>,
    /// Passphrase of the private key (`ssl.key.password`).
    pub key_password: Option<Secret>,
}

impl Tls {
    /// TLS trusting the CA in `ca_file`.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(ca_file.into()),
            ..Self::default()
        }
    }
}

/// A SASL mechanism over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `SCRAM-SHA-512` (MSK's SASL/SCRAM).
    ScramSha512,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `PLAIN` (only ever over TLS).
    Plain,
}

impl SaslMechanism {
    /// librdkafka's name for it (`sasl.mechanisms`).
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// How clients connect to the brokers.
///
/// ```
/// use kafka_io::{SaslMechanism, Secret, Security, Tls};
/// let security = Security::SaslSsl {
///     mechanism: SaslMechanism::ScramSha512,
///     username: "cdc".into(),
///     password: Secret::new("s3cret"),
///     tls: Tls::default(),
/// };
/// assert!(!format!("{security:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Security {
    /// No encryption, no authentication (`PLAINTEXT`): local brokers and tests.
    #[default]
    Plaintext,
    /// TLS (`SSL`), optionally mutual.
    Ssl(Tls),
    /// SASL authentication over TLS (`SASL_SSL`).
    SaslSsl {
        /// The mechanism.
        mechanism: SaslMechanism,
        /// User name.
        username: String,
        /// Password, never logged.
        password: Secret,
        /// TLS settings.
        tls: Tls,
    },
    /// SASL/OAUTHBEARER over TLS, with tokens from `tokens` (refreshed by librdkafka before
    /// they expire). With the `msk-iam` feature, `Security::msk_iam` builds the Amazon MSK
    /// IAM variant.
    OAuthBearer {
        /// Where tokens come from.
        tokens: Arc<dyn TokenProvider>,
        /// TLS settings.
        tls: Tls,
    },
}

impl Security {
    /// Amazon MSK IAM authentication for a cluster in `region`: SASL/OAUTHBEARER over TLS
    /// with SigV4-signed tokens from the default AWS credentials chain.
    #[cfg(feature = "msk-iam")]
    pub fn msk_iam(region: impl Into<String>) -> Self {
        Security::OAuthBearer {
            tokens: Arc::new(crate::MskIamTokens::new(region)),
            tls: Tls::default(),
        }
    }

    /// The token provider, for OAUTHBEARER.
    pub(crate) fn tokens(&self) -> Option<Arc<dyn TokenProvider>> {
        match self {
            Security::OAuthBearer { tokens, .. } => Some(Arc::clone(tokens)),
            _ => None,
        }
    }

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), KafkaIoError> {
        match self {
            Security::Plaintext => Ok(()),
            Security::Ssl(tls) => validate_tls(tls),
            Security::SaslSsl {
                username,
                password,
                tls,
                ..
            } => {
                if username.trim().is_empty() {
                    return Err(KafkaIoError::config(
                        "security.username",
                        "must not be empty",
                    ));
                }
                if password.expose().is_empty() {
                    return Err(KafkaIoError::config(
                        "security.password",
                        "must not be empty",
                    ));
                }
                validate_tls(tls)
            }
            Security::OAuthBearer { tls, .. } => validate_tls(tls),
        }
    }

    /// Writes the librdkafka properties.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        match self {
            Security::Plaintext => {
                config.set("security.protocol", "PLAINTEXT");
            }
            Security::Ssl(tls) => {
                config.set("security.protocol", "SSL");
                apply_tls(tls, config);
            }
            Security::SaslSsl {
                mechanism,
                username,
                password,
                tls,
            } => {
                config
                    .set("security.protocol", "SASL_SSL")
                    .set("sasl.mechanisms", mechanism.as_str())
                    .set("sasl.username", username)
                    .set("sasl.password", password.expose());
                apply_tls(tls, config);
            }
            Security::OAuthBearer { tls, .. } => {
                config
                    .set("security.protocol", "SASL_SSL")
                    .set("sasl.mechanisms", "OAUTHBEARER");
                apply_tls(tls, config);
            }
        }
    }
}

fn validate_tls(tls: &Tls) -> Result<(), KafkaIoError> {
    let files = [
        ("security.tls.ca_file", &tls.ca_file),
        ("security.tls.certificate_file", &tls.certificate_file),
        ("security.tls.key_file", &tls.key_file),
    ];
    for (field, path) in files {
        if let Some(path) = path
            && !path.is_file()
        {
            return Err(KafkaIoError::config(
                field,
                format!("{} is not a readable file", path.display()),
            ));
        }
    }
    if tls.certificate_file.is_some() != tls.key_file.is_some() {
        return Err(KafkaIoError::config(
            "security.tls.key_file",
            "mutual TLS needs both certificate_file and key_file",
        ));
    }
    Ok(())
}

fn apply_tls(tls: &Tls, config: &mut ClientConfig) {
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    if let Some(ca) = &tls.ca_file {
        config.set("ssl.ca.location", path(ca));
    }
    if let Some(cert) = &tls.certificate_file {
        config.set("ssl.certificate.location", path(cert));
    }
    if let Some(key) = &tls.key_file {
        config.set("ssl.key.location", path(key));
    }
    if let Some(password) = &tls.key_password {
        config.set("ssl.key.password", password.expose());
    }
}
