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
    #[error("change source {name} failed{}", at(position))]
    Source {
        /// Which source.
        name: String,
        /// The position it was at, when known.
        position: Option<Position>,
        /// The cause.
        source: BoxError,
    },
    /// A sink failed to write or make events durable.
    #[error("sink {name} failed{}", at(position))]
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
        /// What is wrong.
        reason: String,
    },
    /// Bytes could not be decoded into an event.
    #[error("cannot decode record{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    Decode {
        /// Where in the record (a JSON path such as `payload.after.price`), empty if nowhere.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An offset store failed to load or save a checkpoint.
    #[error("offset store {store} failed")]
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
    },
    /// The pipeline's own machinery failed (a task panicked or was cancelled).
    #[error("pipeline failed: {reason}")]
    Pipeline {
        /// What happened.
        reason: String,
    },
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
        }
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
        }
    }
}
