//! The crate's error type.

use crate::{Position, TableId};

/// A boxed error from an implementation (a driver, a client library, the file system).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a pipeline, with what a user needs to act on it.
///
/// Implementations in other crates wrap their own errors as the `source` of the variant for
/// their role, so the chain (`std::error::Error::source`) leads to the root cause and
/// `downcast_ref` recovers the implementation's typed error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A change source failed to read or acknowledge.
    #[error("change source {name} failed{}: {}", at(position), chain(source.as_ref()))]
    Source {
        /// Which source.
        name: String,
        /// The position it was at, when known.
        position: Option<Position>,
        /// The cause.
        source: BoxError,
    },
    /// A sink failed to write or make events durable.
    #[error("sink {name} failed{}: {}", at(position), chain(source.as_ref()))]
    Sink {
        /// Which sink.
        name: String,
        /// The first position that is not durable, when known.
        position: Option<Position>,
        /// The cause.
        source: BoxError,
    },
    /// An event could not be encoded.
    #[error("cannot encode {table}{}: {reason}", column.as_ref().map(|c| format!(" column {c:?}")).unwrap_or_default())]
    Encode {
        /// The table of the event.
        table: TableId,
        /// The column at fault, when one is.
        column: Option<String>,
        /// What is wrong (encoding values has no library error behind it to keep).
        reason: String,
    },
    /// Bytes could not be decoded into an event.
    #[error("cannot decode record{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    Decode {
        /// Where in the record (a JSON path such as `payload.after.price`), empty if nowhere.
        path: String,
        /// What is wrong.
        reason: String,
        /// The error behind it (a JSON parser's, say), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An offset store failed to load or save a checkpoint.
    #[error("offset store {store} failed: {}", chain(source.as_ref()))]
    OffsetStore {
        /// Which store (a path or URL).
        store: String,
        /// The cause.
        source: BoxError,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: String,
        /// Why it is rejected.
        reason: String,
        /// The error behind it (a parser's, say), when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The pipeline's own machinery failed (a task panicked or was cancelled).
    #[error("pipeline failed: {reason}")]
    Pipeline {
        /// What happened.
        reason: String,
    },
}

/// The text of `error` and of its causes, `: `-separated, skipping a cause whose text the
/// message already holds: a message shown to a user carries its root cause (issue 12), and
/// [`std::error::Error::source`] still leads to each typed cause.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

fn at(position: &Option<Position>) -> String {
    position
        .as_ref()
        .map(|p| format!(" at {p}"))
        .unwrap_or_default()
}

impl Error {
    /// A [`Error::Config`] for `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// The same error with `cause` as its [`source`](std::error::Error::source), for the
    /// variants that describe a fault in their own words ([`Error::Decode`],
    /// [`Error::Config`]): the reason says what is wrong in the pipeline's
    /// terms, the source keeps the library's own error, typed, for `downcast_ref`. Other
    /// variants carry their source already and are returned unchanged.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let parse = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
    /// let error = cdc_core::Error::decode("", "not JSON").caused_by(parse);
    /// assert_eq!(error.to_string(), "cannot decode record: not JSON");
    /// assert!(error.source().and_then(|s| s.downcast_ref::<serde_json::Error>()).is_some());
    /// ```
    pub fn caused_by(mut self, cause: impl Into<BoxError>) -> Self {
        match &mut self {
            Error::Decode { source, .. } | Error::Config { source, .. } => {
                *source = Some(cause.into())
            }
            _ => {}
        }
        self
    }

    /// Whether this error, or any error in its source chain, is an offset store's
    /// [`Fenced`](crate::offset::Fenced): another instance writes the same checkpoint.
    pub fn is_fenced(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = current {
            if error.is::<crate::offset::Fenced>() {
                return true;
            }
            current = error.source();
        }
        false
    }

    /// A [`Error::Decode`] at `path`.
    pub fn decode(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Decode {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_events;
    use crate::{DebeziumJson, EventCodec};
    use std::error::Error as _;

    #[test]
    fn a_record_that_is_not_json_is_a_decode_error_whose_source_is_the_parsers_error() -> Result<()>
    {
        let codec = DebeziumJson::with_schema();
        let mut record = codec.encode(&sample_events("s", 1)[0])?;
        record.value = Some(b"{".to_vec());
        let Err(error) = codec.decode(&record) else {
            return Err(Error::decode("", "garbage decoded"));
        };
        assert_eq!(error.to_string(), "cannot decode record: not JSON");
        let parser = error
            .source()
            .and_then(|s| s.downcast_ref::<serde_json::Error>());
        assert!(parser.is_some_and(serde_json::Error::is_eof), "{error:?}");
        Ok(())
    }
}
