//! Incremental snapshots: a table read in primary-key chunks while streaming goes on, with
//! DBLog's de-duplication and watermarks taken from the database's own log instead of rows
//! written into a signal table. Nothing here writes to the source database.
//!
//! Each chunk is read in a short transaction whose read point has a known log position `W`
//! (the exact snapshot hand-off technique: `SAVE TRANSACTION`, then the savepoint's LSN from
//! `sys.dm_tran_database_transactions`, with the table held still by shared locks while the
//! read point is taken): the chunk is the table's state as of `W`. The chunk is held while
//! streaming continues; a streamed change of one of its keys committed after `W` supersedes
//! that key's row (it is dropped from the chunk), and once streaming has handed out every
//! transaction up to a window end `E ≥ W`, the remaining rows go out at `E`, before anything
//! committed after `E`. A consumer that applies events in order therefore never sees a chunk
//! row after a newer change of its key.
//!
//! Progress (tables left, the last key read, the chunk's watermark, paused) travels in the
//! position of every event handed out while a snapshot runs ([`SnapshotCursor`] tagged
//! `incremental`), so the checkpoint holds it and a restart continues after the last durable
//! row.
//!
//! This module holds [`Incremental`]'s state per database and its life (restore, prepare the
//! next chunk, retries, close); the rest by job:
//! - `chunk`: reading one chunk in a short transaction at a known log position;
//! - `window`: the DBLog merge of a held chunk into each streamed window;
//! - `signals`: Debezium's signals, their names and data shape;
//! - `control`: applying signals (and newly captured tables) to the running snapshots;
//! - `blocking`: blocking snapshots, which pause streaming.

mod blocking;
mod chunk;
mod control;
mod signals;
mod window;
pub use signals::{
    AdditionalCondition, ExecuteSnapshot, Signal, SignalError, SnapshotSignals, SnapshotType,
    StopSnapshot,
};

use crate::catalog;
use crate::connection::{self, Connection};
use crate::snapshot::{self, SnapshotProgress};
use crate::{Error, MssqlConfig};
use cdc_core::{Lsn, LsnPosition, SnapshotCursor, TableSchema, Value};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Rows per chunk unless set: Debezium's `incremental.snapshot.chunk.size` default.
pub(crate) const DEFAULT_CHUNK_SIZE: u32 = 1024;

/// One table still to snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    /// `schema.table`.
    table: String,
    /// Debezium's additional condition for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
}

/// The part of a running incremental snapshot that the checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// Tables left; the first is being read.
    tables: VecDeque<Pending>,
    /// Primary key of the last row of the first table already handed out (`None`: from
    /// its first row).
    #[serde(default)]
    last_key: Option<Vec<Value>>,
    /// Read point of the last chunk handed out.
    #[serde(default)]
    watermark: Option<Lsn>,
    /// `pause-snapshot` is in force.
    #[serde(default)]
    paused: bool,
    /// A blocking snapshot: streaming waits while the tables are read (`blocking.rs`).
    #[serde(default, skip_serializing_if = "is_false")]
    blocking: bool,
    /// Rows a blocking snapshot handed out so far: its last row's
    /// [`SnapshotCursor::blocking_row`].
    #[serde(default, skip_serializing_if = "is_zero")]
    rows: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The cursor's `key` for an incremental snapshot: `{"incremental": <progress>}` (a blocking
/// snapshot's key is a JSON array, or empty).
#[derive(Serialize, Deserialize)]
struct Tagged {
    incremental: Progress,
}

/// A chunk read and not yet handed out.
struct Held {
    table: Arc<TableSchema>,
    /// The chunk's read point.
    watermark: Lsn,
    read_time: Option<DateTime<Utc>>,
    /// Rows in key order; `None` once a newer change of its key superseded it.
    rows: Vec<Option<Vec<Value>>>,
    /// Row index by key (JSON of the key values).
    keys: HashMap<String, usize>,
    /// Key of the chunk's last row read: where the next chunk starts.
    last_key: Option<Vec<Value>>,
    /// The table has no rows after this chunk.
    finished: bool,
}

/// A table as the chunk query needs it.
struct TableInfo {
    schema: Arc<TableSchema>,
    select_list: String,
    /// Whether the event key identifies rows (chunks and de-duplication go by it).
    key_identifies_rows: bool,
}

#[derive(Default)]
struct DatabaseState {
    progress: Option<Progress>,
    held: Option<Held>,
    tables: HashMap<String, TableInfo>,
    /// After transient chunk-read failures in a row: the rest of the reconnect schedule
    /// ([`connection::retry_schedule`]) and when the chunk may be read again (streaming goes
    /// on meanwhile).
    retry: Option<(backon::ExponentialBackoff, tokio::time::Instant)>,
}

impl DatabaseState {
    /// Adds `tables` to the running snapshot (or starts one). One snapshot runs per database:
    /// a blocking request turns a running incremental one blocking, tables and all (its held
    /// chunk is dropped: the blocking read takes its rows again from the last one handed out).
    fn queue(&mut self, tables: impl IntoIterator<Item = Pending>, blocking: bool) {
        let progress = self.progress.get_or_insert_with(Progress::default);
        if blocking && !progress.blocking {
            progress.blocking = true;
            self.held = None;
        }
        progress.tables.extend(tables);
    }

    /// Whether a chunk may be read at `now`: not before the wait after a failed read ran out.
    fn chunk_due(&self, now: tokio::time::Instant) -> bool {
        self.retry.as_ref().is_none_or(|(_, at)| now >= *at)
    }

    /// Takes a failed chunk read: a transient failure is retried once the schedule's next
    /// wait has passed, at a later step; a statement the server refused (a signal's filter
    /// naming a column the table lacks, a table dropped since the signal: SQL Server's user
    /// errors, severity 16 or less) drops that table from the snapshot with an error in the
    /// log, and streaming goes on — a signal accepted with 202 must not stop the pipeline;
    /// any other lasting failure, or one past `max_retries` failures in a row, is returned.
    fn chunk_failed(
        &mut self,
        error: Error,
        config: &MssqlConfig,
        now: tokio::time::Instant,
    ) -> Result<(), Error> {
        if !error.is_transient() {
            if refused_statement(&error)
                && let Some(progress) = self.progress.as_mut()
                && let Some(table) = progress.tables.pop_front()
            {
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                tracing::error!(table = %table.table, filter = ?table.filter, error = %error, cause = ?cause, "the snapshot's chunk query was refused; the table is dropped from the snapshot (fix the signal and send it again)");
                progress.last_key = None;
                self.held = None;
                self.retry = None;
                return Ok(());
            }
            return Err(error);
        }
        let (waits, at) = self
            .retry
            .get_or_insert_with(|| (connection::retry_schedule(config, config.max_retries), now));
        let Some(wait) = waits.next() else {
            return Err(error);
        };
        *at = now + wait;
        tracing::warn!(error = %error, ?wait, "reading an incremental snapshot chunk failed; retrying after the wait, at a later step");
        Ok(())
    }
}

/// Whether SQL Server refused the statement itself (a user error: severity 16 or less, not one
/// of the transient numbers), as opposed to the connection or the server failing.
fn refused_statement(error: &Error) -> bool {
    matches!(error, Error::Server { source, .. }
        if matches!(&**source, tiberius::error::Error::Server(token) if token.class() <= 16))
}

/// Incremental snapshots of every database of a source.
pub(crate) struct Incremental {
    signals: SnapshotSignals,
    chunk_size: u32,
    /// The source's logical name (Debezium's `topic.prefix`).
    server: Arc<str>,
    /// Debezium's `signal.data.collection`: `(database, schema.table)`.
    signal_table: Option<(Option<String>, String)>,
    names: Vec<Arc<str>>,
    states: Vec<DatabaseState>,
    conns: Vec<Option<Connection>>,
    /// Rows read per table, shared with the initial snapshot's (the `cdc_snapshot_rows_*`
    /// metrics and progress bars read it).
    progress: SnapshotProgress,
}

impl Incremental {
    pub(crate) fn new(databases: &[String], server: &str) -> Self {
        Self {
            signals: SnapshotSignals::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            server: Arc::from(server),
            signal_table: None,
            names: databases.iter().map(|d| Arc::from(d.as_str())).collect(),
            states: databases.iter().map(|_| DatabaseState::default()).collect(),
            conns: databases.iter().map(|_| None).collect(),
            progress: SnapshotProgress::default(),
        }
    }

    /// Counts chunk rows into `progress`, the source's snapshot progress.
    pub(crate) fn share_progress(&mut self, progress: SnapshotProgress) {
        self.progress = progress;
    }

    pub(crate) fn signals(&self) -> SnapshotSignals {
        self.signals.clone()
    }

    pub(crate) fn set_chunk_size(&mut self, rows: u32) {
        self.chunk_size = rows.max(1);
    }

    /// Reads signals from inserts into `collection` (`schema.table` or
    /// `database.schema.table`) as they stream by.
    pub(crate) fn set_signal_table(&mut self, collection: &str) -> Result<(), SignalError> {
        let parts: Vec<&str> = collection.split('.').collect();
        self.signal_table = Some(match parts.as_slice() {
            [schema, table] => (None, format!("{schema}.{table}")),
            [db, schema, table] => (Some(db.to_string()), format!("{schema}.{table}")),
            _ => {
                return Err(SignalError::Data {
                    signal: "signal.data.collection".into(),
                    reason: format!("{collection:?} is not schema.table or database.schema.table"),
                });
            }
        });
        Ok(())
    }

    /// Takes a running incremental snapshot's progress out of a stored position: the rest is
    /// an ordinary streaming position.
    pub(crate) fn restore(
        &mut self,
        index: usize,
        stored: Option<LsnPosition>,
    ) -> Result<Option<LsnPosition>, Error> {
        let Some(mut position) = stored else {
            return Ok(None);
        };
        let Some(cursor) = position.snapshot.as_ref() else {
            return Ok(Some(position));
        };
        if !cursor.key.starts_with("{\"incremental\"") {
            return Ok(Some(position));
        }
        let tagged: Tagged = serde_json::from_str(&cursor.key)
            .map_err(|e| Error::protocol("incremental snapshot cursor", e.to_string()))?;
        tracing::info!(database = %position.database, tables = tagged.incremental.tables.len(), "continuing an incremental snapshot after its last durable row");
        if let Some(state) = self.states.get_mut(index) {
            state.progress = Some(tagged.incremental);
        }
        position.snapshot = None;
        Ok(Some(position))
    }

    /// Applies queued signals, then, for database `index`, reads the next chunk if a
    /// snapshot runs, is not paused and no chunk is held.
    pub(crate) async fn prepare(
        &mut self,
        index: usize,
        config: &Arc<MssqlConfig>,
    ) -> Result<(), Error> {
        for signal in self.signals.take() {
            self.apply(signal);
        }
        let Some(state) = self.states.get_mut(index) else {
            return Ok(());
        };
        if !state.chunk_due(tokio::time::Instant::now()) {
            return Ok(());
        }
        let Some(progress) = state.progress.as_mut() else {
            return Ok(());
        };
        if progress.paused || progress.blocking || state.held.is_some() {
            return Ok(());
        }
        let database = self.names[index].to_string();
        let conn = self.conns[index]
            .get_or_insert_with(|| Connection::new(Arc::clone(config), database.clone()));
        if !front_table(state, conn, config, &database).await? {
            return Ok(());
        }
        let Some(progress) = state.progress.as_mut() else {
            return Ok(());
        };
        let (Some(pending), Some(info)) = (
            progress.tables.front(),
            progress
                .tables
                .front()
                .and_then(|p| state.tables.get(&p.table.to_lowercase())),
        ) else {
            return Ok(());
        };
        let request = chunk::Request {
            table: &info.schema,
            select_list: &info.select_list,
            filter: pending.filter.as_deref(),
            after: progress.last_key.as_deref(),
            rows: self.chunk_size,
        };
        match chunk::read(conn, request).await {
            Ok(read) => {
                state.retry = None;
                let table = Arc::clone(&info.schema);
                let mut keys = HashMap::with_capacity(read.rows.len());
                let mut last_key = progress.last_key.clone();
                for (i, row) in read.rows.iter().enumerate() {
                    let key = key_of(&table, row);
                    keys.insert(key_text(&key), i);
                    last_key = Some(key);
                }
                tracing::debug!(database = %database, table = %pending.table, rows = read.rows.len(), watermark = %read.watermark, "incremental snapshot chunk read");
                let finished = read.rows.len() < self.chunk_size as usize;
                let first = progress.last_key.is_none();
                let name = pending.table.clone();
                count_chunk(
                    &self.progress,
                    conn,
                    &database,
                    &name,
                    read.rows.len(),
                    first,
                    finished,
                )
                .await;
                state.held = Some(Held {
                    finished,
                    table,
                    watermark: read.watermark,
                    read_time: read.read_time,
                    rows: read.rows.into_iter().map(Some).collect(),
                    keys,
                    last_key,
                });
                Ok(())
            }
            Err(e) => {
                // A failed read's connection (and its transaction) is never reused.
                conn.reset();
                state.chunk_failed(e, config, tokio::time::Instant::now())
            }
        }
    }

    /// `database.schema.table` of every table an incremental snapshot still has to read (the
    /// one being read first), and whether that database's snapshot is paused.
    pub(crate) fn pending(&self) -> Vec<(String, bool)> {
        self.names
            .iter()
            .zip(&self.states)
            .filter_map(|(name, state)| state.progress.as_ref().map(|p| (name, p)))
            .flat_map(|(name, progress)| {
                progress
                    .tables
                    .iter()
                    .map(move |t| (format!("{name}.{}", t.table), progress.paused))
            })
            .collect()
    }

    pub(crate) async fn close(&mut self) {
        for conn in self.conns.iter_mut().flatten() {
            conn.close().await;
        }
    }
}

/// Drops tables a snapshot cannot read (not captured or not included, or without a key that
/// identifies rows) off the front of database `database`'s running snapshot, reading the
/// catalog when it does not know the front table yet; `false` once no table is left (the
/// snapshot is over and `state.progress` is cleared).
async fn front_table(
    state: &mut DatabaseState,
    conn: &mut Connection,
    config: &Arc<MssqlConfig>,
    database: &str,
) -> Result<bool, Error> {
    loop {
        let Some(progress) = state.progress.as_ref() else {
            return Ok(false);
        };
        let Some(pending) = progress.tables.front().cloned() else {
            let kind = if progress.blocking {
                "blocking"
            } else {
                "incremental"
            };
            tracing::info!(database = %database, "{kind} snapshot finished");
            state.progress = None;
            return Ok(false);
        };
        if !state.tables.contains_key(&pending.table.to_lowercase()) {
            let catalog = catalog::load(conn, config).await?;
            for instance in catalog.tables.iter().filter_map(|i| i.last()) {
                let id = &instance.table.id;
                state.tables.insert(
                    format!("{}.{}", id.schema, id.table).to_lowercase(),
                    TableInfo {
                        schema: Arc::clone(&instance.table),
                        select_list: instance.select_list.trim_start_matches(", ").to_string(),
                        key_identifies_rows: instance.key_identifies_rows,
                    },
                );
            }
        }
        match state.tables.get(&pending.table.to_lowercase()) {
            Some(info) if info.key_identifies_rows && !info.schema.primary_key.is_empty() => {
                return Ok(true);
            }
            Some(_) => {
                tracing::warn!(database = %database, table = %pending.table, "skipping a table without a key that identifies rows (primary key, or a capture-instance index of NOT NULL columns) in the snapshot")
            }
            None => {
                tracing::warn!(database = %database, table = %pending.table, "skipping a table that is not captured (or not included) in the snapshot")
            }
        }
        if let Some(progress) = state.progress.as_mut() {
            progress.tables.pop_front();
            progress.last_key = None;
        }
    }
}
/// Counts a chunk's `rows` of `table` into `progress` (incremental and blocking snapshots
/// alike); a table's `first` chunk starts its count over with the `sys.partitions` estimate
/// (0 if that read fails: the count stays right, only the total is unknown).
async fn count_chunk(
    progress: &SnapshotProgress,
    conn: &mut Connection,
    database: &str,
    table: &str,
    rows: usize,
    first: bool,
    done: bool,
) {
    let estimate = if first {
        Some(snapshot::estimate_rows(conn, table).await.unwrap_or(0))
    } else {
        None
    };
    let rows = u64::try_from(rows).unwrap_or(u64::MAX);
    progress.add_rows(database, table, rows, estimate, done);
}

fn key_of(table: &TableSchema, values: &[Value]) -> Vec<Value> {
    table
        .key_indices()
        .iter()
        .filter_map(|&i| values.get(i).cloned())
        .collect()
}

fn key_text(key: &[Value]) -> String {
    serde_json::to_string(key).unwrap_or_default()
}

fn cursor_of(progress: &Progress) -> SnapshotCursor {
    SnapshotCursor {
        table: progress
            .tables
            .front()
            .map(|p| p.table.clone())
            .unwrap_or_default(),
        key: serde_json::to_string(&Tagged {
            incremental: progress.clone(),
        })
        .unwrap_or_default(),
        blocking_row: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn transient() -> Error {
        Error::Connect {
            address: "db:1433".into(),
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        }
    }

    #[test]
    fn a_transiently_failed_chunk_is_read_again_after_the_reconnect_schedules_waits_then_the_failure_is_returned()
    -> Result<(), Error> {
        let mut config = MssqlConfig::builder()
            .host("db")
            .user("cdc")
            .database("shop")
            .max_retries(3)
            .build()?;
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(150);
        let mut state = DatabaseState::default();
        let t0 = tokio::time::Instant::now();
        assert!(state.chunk_due(t0));
        let mut now = t0;
        for wait in [100, 150, 150] {
            assert!(state.chunk_failed(transient(), &config, now).is_ok());
            let wait = Duration::from_millis(wait);
            assert!(!state.chunk_due(now + wait - Duration::from_millis(1)));
            assert!(state.chunk_due(now + wait));
            now += wait;
        }
        assert!(
            matches!(
                state.chunk_failed(transient(), &config, now),
                Err(Error::Connect { .. })
            ),
            "the fourth failure in a row is past max_retries"
        );
        // A read that succeeds starts the schedule over (prepare clears `retry`).
        state.retry = None;
        assert!(state.chunk_due(now));
        assert!(state.chunk_failed(transient(), &config, now).is_ok());
        assert!(state.chunk_due(now + Duration::from_millis(100)));
        Ok(())
    }

    #[test]
    fn a_lasting_chunk_failure_is_returned_at_once() -> Result<(), Error> {
        let config = MssqlConfig::builder()
            .host("db")
            .user("cdc")
            .database("shop")
            .build()?;
        let mut state = DatabaseState::default();
        let lasting = Error::protocol("dbo.items", "bad row");
        assert!(
            state
                .chunk_failed(lasting, &config, tokio::time::Instant::now())
                .is_err()
        );
        assert!(state.retry.is_none());
        Ok(())
    }
}
