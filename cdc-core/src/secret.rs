//! [`Secret`]: a password, key or token that never shows in logs, `Debug` output or
//! serialised configuration, and is wiped from memory when dropped.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroize;

/// A secret string (password, key passphrase, token). `Debug` prints `Secret(***)`, `Display`
/// prints `***`, serialising writes [`Secret::REDACTED`] (a printed configuration never carries the
/// secret); deserialising reads the plain string and refuses that placeholder. The bytes are
/// overwritten with zeros when the value is dropped. The one way to the secret is
/// [`Secret::expose`], for the call that hands it to a client library.
///
/// Every crate of the family uses this type (`kafka_io::Secret`, `cdc_mssql::Secret` and
/// `cdc_connect`'s are re-exports of it).
///
/// ```
/// use cdc_core::Secret;
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password:?}"), "Secret(***)");
/// assert_eq!(password.to_string(), "***");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// What a secret serialises as.
    pub const REDACTED: &'static str = "<redacted>";

    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that hands it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::REDACTED)
    }
}

/// Deserialising refuses [`Secret::REDACTED`]: a configuration printed with its secrets
/// redacted and read back must fail naming the field, not send the placeholder to a server
/// as the password.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == Self::REDACTED {
            return Err(serde::de::Error::custom(
                "the placeholder `<redacted>` stands where the secret was printed; give the secret",
            ));
        }
        Ok(Secret(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_display_or_serialised_form() -> serde_json::Result<()> {
        let secret = Secret::new("hunter2");
        let shown = format!("{secret:?} {secret} {}", serde_json::to_string(&secret)?);
        assert_eq!(shown, "Secret(***) *** \"<redacted>\"");
        let read: Secret = serde_json::from_str("\"hunter2\"")?;
        assert_eq!(read.expose(), "hunter2");
        Ok(())
    }

    #[test]
    fn the_redacted_placeholder_is_refused_where_a_secret_is_read() {
        let read = serde_json::from_str::<Secret>("\"<redacted>\"");
        let error = read.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("placeholder `<redacted>`"), "{error}");
    }
}
