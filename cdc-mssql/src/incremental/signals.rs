//! Signals that start, stop, pause and resume incremental snapshots, in Debezium's names and
//! data shape (`execute-snapshot`, `stop-snapshot`, `pause-snapshot`, `resume-snapshot`).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Debezium's snapshot `type` in a signal's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotType {
    /// Chunks read while streaming goes on (Debezium's default for signals).
    #[default]
    #[serde(alias = "INCREMENTAL", alias = "Incremental")]
    Incremental,
    /// Streaming pauses while the tables are read, then resumes where it paused (Debezium's
    /// blocking snapshot): the rows go out as `r` events after everything streamed so far,
    /// and the changes committed while they were read follow them (a consumer applying
    /// events in order ends with the table's state; it may see an older change of a key after
    /// that key's snapshot row, as with Debezium).
    #[serde(alias = "BLOCKING", alias = "Blocking")]
    Blocking,
}

/// Debezium's `additional-conditions` entry: only rows of `data_collection` matching `filter`
/// (a SQL Server predicate, as in a `WHERE` clause) are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AdditionalCondition {
    /// The table: `schema.table`, or `database.schema.table` as Debezium's SQL Server
    /// connector names data collections.
    pub data_collection: String,
    /// The predicate, e.g. `color = 'blue'`. One expression: `;` and comments are refused.
    pub filter: String,
}

/// The data of Debezium's `execute-snapshot` signal.
///
/// ```
/// use cdc_mssql::ExecuteSnapshot;
/// let request: ExecuteSnapshot = serde_json::from_str(
///     r#"{"data-collections": ["shop.dbo.orders"], "type": "incremental",
///         "additional-conditions": [{"data-collection": "shop.dbo.orders", "filter": "id > 10"}]}"#,
/// ).unwrap();
/// assert_eq!(request.data_collections, ["shop.dbo.orders"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecuteSnapshot {
    /// Tables to snapshot, in order: `schema.table` or `database.schema.table`.
    pub data_collections: Vec<String>,
    /// Incremental (the default) or blocking.
    #[serde(rename = "type", default)]
    pub snapshot_type: SnapshotType,
    /// Per-table row filters.
    #[serde(default)]
    pub additional_conditions: Vec<AdditionalCondition>,
}

impl ExecuteSnapshot {
    /// An incremental snapshot of `tables`, with no condition.
    pub fn incremental<S: Into<String>>(tables: impl IntoIterator<Item = S>) -> Self {
        Self {
            data_collections: tables.into_iter().map(Into::into).collect(),
            snapshot_type: SnapshotType::Incremental,
            additional_conditions: Vec::new(),
        }
    }

    /// A blocking snapshot of `tables`, with no condition: streaming pauses while they are
    /// read (see [`SnapshotType::Blocking`]).
    pub fn blocking<S: Into<String>>(tables: impl IntoIterator<Item = S>) -> Self {
        Self {
            snapshot_type: SnapshotType::Blocking,
            ..Self::incremental(tables)
        }
    }

    /// Adds a row filter for `table` (Debezium's `additional-conditions`).
    pub fn with_condition(mut self, table: impl Into<String>, filter: impl Into<String>) -> Self {
        self.additional_conditions.push(AdditionalCondition {
            data_collection: table.into(),
            filter: filter.into(),
        });
        self
    }
}

/// The data of Debezium's `stop-snapshot` signal: no tables means every table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StopSnapshot {
    /// Tables to drop from the running snapshot; empty: stop it altogether.
    #[serde(default)]
    pub data_collections: Vec<String>,
    /// Incremental (the default) or blocking.
    #[serde(rename = "type", default)]
    pub snapshot_type: SnapshotType,
}

/// One signal, as Debezium names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `execute-snapshot`.
    ExecuteSnapshot(ExecuteSnapshot),
    /// `stop-snapshot`.
    StopSnapshot(StopSnapshot),
    /// `pause-snapshot`: no new chunk of an incremental snapshot is read until
    /// `resume-snapshot` (a blocking snapshot goes on: streaming waits for it).
    PauseSnapshot,
    /// `resume-snapshot`.
    ResumeSnapshot,
}

impl Signal {
    /// A signal from Debezium's signal row or Kafka signal message: its `type`
    /// (`execute-snapshot`, …) and its `data` (JSON text; may be empty for pause and resume).
    pub fn from_debezium(signal_type: &str, data: &str) -> Result<Self, SignalError> {
        let data = if data.trim().is_empty() { "{}" } else { data };
        let bad = |e: serde_json::Error| SignalError::Data {
            signal: signal_type.to_string(),
            reason: e.to_string(),
        };
        Ok(match signal_type {
            "execute-snapshot" => Signal::ExecuteSnapshot(serde_json::from_str(data).map_err(bad)?),
            "stop-snapshot" => Signal::StopSnapshot(serde_json::from_str(data).map_err(bad)?),
            "pause-snapshot" => Signal::PauseSnapshot,
            "resume-snapshot" => Signal::ResumeSnapshot,
            other => return Err(SignalError::UnknownType(other.to_string())),
        })
    }

    /// A signal from a Kafka signal topic message's value, `{"type": ..., "data": {...}}`, or a
    /// signal-table row as JSON, `{"id": ..., "type": ..., "data": "<JSON text>"}`: `data` is a
    /// JSON object or a string holding one (absent or null for `pause-snapshot` and
    /// `resume-snapshot`); `id` is ignored (Debezium uses it only in logs).
    ///
    /// # Errors
    /// [`SignalError::Data`] when the text is not a JSON object with a string `type`, or when
    /// `data` is neither an object, a string nor null; whatever [`Signal::from_debezium`]
    /// refuses.
    pub fn from_debezium_message(value: &str) -> Result<Self, SignalError> {
        let bad = |reason: String| SignalError::Data {
            signal: "message".into(),
            reason,
        };
        let json: serde_json::Value =
            serde_json::from_str(value).map_err(|e| bad(e.to_string()))?;
        let serde_json::Value::Object(object) = json else {
            return Err(bad(
                "expected a JSON object {\"type\": ..., \"data\": ...}".into()
            ));
        };
        let signal_type = match object.get("type") {
            Some(serde_json::Value::String(t)) => t.as_str(),
            Some(_) => return Err(bad("`type` is not a string".into())),
            None => return Err(bad("missing `type`".into())),
        };
        let data = match object.get("data") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(object @ serde_json::Value::Object(_)) => object.to_string(),
            Some(_) => {
                return Err(bad(
                    "`data` is neither a JSON object nor a string holding one".into(),
                ));
            }
        };
        Self::from_debezium(signal_type, &data)
    }

    /// What the reader can check without the database: the snapshot type, a table list,
    /// filters that are one expression.
    pub(crate) fn validate(&self) -> Result<(), SignalError> {
        match self {
            Signal::ExecuteSnapshot(request) => {
                if request.data_collections.is_empty() {
                    return Err(SignalError::Data {
                        signal: "execute-snapshot".into(),
                        reason: "data-collections is empty".into(),
                    });
                }
                for condition in &request.additional_conditions {
                    check_filter(&condition.filter)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A filter is put inside `WHERE (...) AND ...` of the chunk query: it must be one predicate,
/// so a second statement (which could write) or a comment hiding the rest of the query is
/// refused. Quoted strings and identifiers are skipped.
fn check_filter(filter: &str) -> Result<(), SignalError> {
    let bad = |reason: &str| SignalError::Filter {
        filter: filter.to_string(),
        reason: reason.to_string(),
    };
    if filter.trim().is_empty() {
        return Err(bad("empty"));
    }
    let mut depth = 0i32;
    let mut chars = filter.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == close {
                        // A doubled quote is an escaped one.
                        if chars.peek() == Some(&close) {
                            chars.next();
                        } else {
                            closed = true;
                            break;
                        }
                    }
                }
                if !closed {
                    return Err(bad("unterminated quote"));
                }
            }
            ';' => return Err(bad("';' would end the statement")),
            '-' if chars.peek() == Some(&'-') => return Err(bad("comments are not allowed")),
            '/' if chars.peek() == Some(&'*') => return Err(bad("comments are not allowed")),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad("unbalanced parentheses"));
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses"));
    }
    Ok(())
}

/// A signal was refused before it reached the reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// Not one of Debezium's snapshot signals.
    #[error(
        "unknown signal type {0:?} (expected execute-snapshot, stop-snapshot, pause-snapshot or resume-snapshot)"
    )]
    UnknownType(String),
    /// The signal's data does not have Debezium's shape.
    #[error("bad data for signal {signal}: {reason}")]
    Data {
        /// The signal type.
        signal: String,
        /// What is wrong.
        reason: String,
    },
    /// An `additional-conditions` filter is not one predicate.
    #[error("additional condition {filter:?} refused: {reason}")]
    Filter {
        /// The filter.
        filter: String,
        /// Why.
        reason: String,
    },
}

/// The handle that sends snapshot signals to a running [`MssqlSource`](crate::MssqlSource):
/// cheap to clone, usable from any task. Signals take effect at the source's next step.
#[derive(Debug, Clone, Default)]
pub struct SnapshotSignals {
    queue: Arc<Mutex<VecDeque<Signal>>>,
}

impl SnapshotSignals {
    /// Queues `signal` after checking what can be checked without the database.
    pub fn send(&self, signal: Signal) -> Result<(), SignalError> {
        signal.validate()?;
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(signal);
        Ok(())
    }

    /// `execute-snapshot`: an incremental snapshot of `request.data_collections`.
    pub fn execute_snapshot(&self, request: ExecuteSnapshot) -> Result<(), SignalError> {
        self.send(Signal::ExecuteSnapshot(request))
    }

    /// `stop-snapshot` for `tables` (none: the whole snapshot).
    pub fn stop_snapshot<S: Into<String>>(
        &self,
        tables: impl IntoIterator<Item = S>,
    ) -> Result<(), SignalError> {
        self.send(Signal::StopSnapshot(StopSnapshot {
            data_collections: tables.into_iter().map(Into::into).collect(),
            snapshot_type: SnapshotType::Incremental,
        }))
    }

    /// `pause-snapshot`: the chunk already read is still delivered, no new one is read.
    pub fn pause_snapshot(&self) -> Result<(), SignalError> {
        self.send(Signal::PauseSnapshot)
    }

    /// `resume-snapshot`.
    pub fn resume_snapshot(&self) -> Result<(), SignalError> {
        self.send(Signal::ResumeSnapshot)
    }

    /// A signal in Debezium's form (`type` and JSON `data`), e.g. a signal table row's.
    pub fn send_debezium(&self, signal_type: &str, data: &str) -> Result<(), SignalError> {
        self.send(Signal::from_debezium(signal_type, data)?)
    }

    /// Everything queued so far, oldest first.
    pub(crate) fn take(&self) -> Vec<Signal> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debezium_signal_data_parses_into_the_same_request() {
        let signal = Signal::from_debezium(
            "execute-snapshot",
            r#"{"data-collections": ["shop.dbo.orders", "dbo.customers"], "type": "INCREMENTAL",
                "additional-conditions": [{"data-collection": "dbo.customers", "filter": "name = 'a;b'"}]}"#,
        );
        assert_eq!(
            signal,
            Ok(Signal::ExecuteSnapshot(
                ExecuteSnapshot::incremental(["shop.dbo.orders", "dbo.customers"])
                    .with_condition("dbo.customers", "name = 'a;b'")
            ))
        );
        assert_eq!(
            Signal::from_debezium_message(r#"{"type": "pause-snapshot", "data": {}}"#),
            Ok(Signal::PauseSnapshot)
        );
        // `data` as the signal table holds it: a string of JSON.
        assert_eq!(
            Signal::from_debezium_message(
                r#"{"type": "execute-snapshot", "data": "{\"data-collections\": [\"dbo.customers\"]}"}"#
            ),
            Ok(Signal::ExecuteSnapshot(ExecuteSnapshot::incremental([
                "dbo.customers"
            ])))
        );
        assert_eq!(
            Signal::from_debezium("stop-snapshot", ""),
            Ok(Signal::StopSnapshot(StopSnapshot::default()))
        );
        assert!(matches!(
            Signal::from_debezium("log", "{}"),
            Err(SignalError::UnknownType(_))
        ));
    }

    #[test]
    fn a_filter_that_is_not_one_predicate_is_refused_before_it_reaches_the_database() {
        let signals = SnapshotSignals::default();
        for filter in [
            "1 = 1; DELETE FROM dbo.orders",
            "id > 1 --",
            "id > 1 /* x */",
            "(id > 1",
            "id > 1)",
            "name = 'x",
            "",
        ] {
            assert!(
                matches!(
                    signals.execute_snapshot(
                        ExecuteSnapshot::incremental(["dbo.orders"])
                            .with_condition("dbo.orders", filter)
                    ),
                    Err(SignalError::Filter { .. })
                ),
                "{filter:?}"
            );
        }
        assert!(
            signals
                .execute_snapshot(
                    ExecuteSnapshot::incremental(["dbo.orders"])
                        .with_condition("dbo.orders", "name = 'it''s; -- fine' AND [we;ird] > 0")
                )
                .is_ok()
        );
        assert!(
            signals
                .execute_snapshot(ExecuteSnapshot::blocking(["dbo.orders"]))
                .is_ok()
        );
        assert_eq!(
            signals.take().len(),
            2,
            "only the valid requests were queued"
        );
    }
}
