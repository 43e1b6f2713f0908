//! Consistent snapshots: every included table read in one transaction, with the LSN where
//! streaming takes over read inside that transaction.
//!
//! This module holds the running [`Snapshot`] (table after table, chunk after chunk, restarts
//! after a broken connection); the pieces it uses live by job:
//! - `transaction`: opening the snapshot's transaction at one point in time (the isolation
//!   chosen per database, the LSN and commit time where streaming takes over);
//! - `keyset`: reading a table in keyset chunks by its key (also the incremental snapshot's
//!   chunks);
//! - `progress`: how far each table has come, shared with the caller.

mod keyset;
mod progress;
mod transaction;

pub(crate) use keyset::{KeyColumn, keyset_select, rows_once, table_row};
pub use progress::{SnapshotProgress, TableProgress};
pub(crate) use transaction::open_transaction;

use crate::catalog::{self, Catalog};
use crate::connection::{self, Connection};
use crate::types::quote;
use crate::{Error, MssqlConfig, query};
use cdc_core::{
    ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SnapshotCursor, SnapshotMarker, SourceInfo,
    TableSchema, Value,
};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use keyset::{Params, after_key};
pub(crate) use progress::estimate_rows;
use std::sync::Arc;
use transaction::open_transaction_retrying;

/// A snapshot in progress on its own connection, read in keyset chunks by each table's event
/// key where that key identifies rows (a primary key, or the capture instance's unique index
/// of `NOT NULL` columns), else in one query.
pub(crate) struct Snapshot {
    conn: Connection,
    tables: Vec<Arc<TableSchema>>,
    /// Per table: whether it is read in keyset chunks of its event key.
    chunked: Vec<bool>,
    select_lists: Vec<String>,
    table_index: usize,
    /// Key of the last row read in the current table (`None`: start of the table).
    last_key: Option<Vec<Value>>,
    /// Rows read in the current table (for progress).
    rows_done: u64,
    /// Where streaming takes over.
    pub(crate) handoff: Lsn,
    /// The commit time of the hand-off LSN (`None` on a log with no transaction yet).
    read_time: Option<DateTime<Utc>>,
    serial: u64,
    chunk: u32,
    topic_prefix: Arc<str>,
    database: Arc<str>,
    progress: SnapshotProgress,
    /// A row read ahead, so a table's last event can be marked `last_in_data_collection`
    /// and the snapshot's last `last`.
    held: Option<ChangeEvent>,
    /// Whether the next row read is its table's first (`first` in the first table,
    /// `first_in_data_collection` in the others).
    first_in_table: bool,
    /// The waits before the restarts still allowed after a broken connection (the
    /// connection's reconnect schedule, [`connection::retry_schedule`]).
    restart_waits: backon::ExponentialBackoff,
    /// Whether the snapshot transaction was ended (every row read).
    committed: bool,
}

impl Snapshot {
    /// Opens the snapshot transaction and takes the hand-off LSN inside it (see
    /// [`open_transaction`]); or, given the position of a snapshot that was interrupted by a
    /// restart of the process, continues that snapshot after its cursor with the same hand-off
    /// LSN (streaming from it reconciles what changed meanwhile).
    pub(crate) async fn begin(
        config: &MssqlConfig,
        mut conn: Connection,
        catalog: &Catalog,
        progress: SnapshotProgress,
        resume: Option<&LsnPosition>,
    ) -> Result<Self, Error> {
        let current: Vec<_> = catalog
            .tables
            .iter()
            .filter_map(|instances| instances.last())
            .cloned()
            .collect();
        let tables: Vec<Arc<TableSchema>> = current.iter().map(|i| Arc::clone(&i.table)).collect();
        let database = conn.database().to_string();
        for instance in &current {
            let name = format!("{}.{}", instance.table.id.schema, instance.table.id.table);
            // The estimate is for progress reports only: a failure to read it is not fatal.
            let estimate = estimate_rows(&mut conn, &name).await.unwrap_or_else(|e| {
                tracing::warn!(table = %name, error = %e, "cannot estimate the row count");
                0
            });
            progress.update(
                &database,
                TableProgress {
                    table: name,
                    rows_done: 0,
                    rows_estimated: estimate,
                    done: false,
                },
            );
        }
        // Estimates first: nothing may reconnect once the snapshot transaction is open.
        // A continued snapshot keeps its hand-off: streaming from there brings every change
        // made since, to rows read before the interruption and after it alike.
        let (handoff, read_time) =
            open_transaction_retrying(&mut conn, &tables, resume.map(|p| p.commit_lsn)).await?;
        let (table_index, last_key, serial) = match resume
            .and_then(|p| p.snapshot.as_ref().map(|c| (p, c)))
        {
            Some((position, cursor)) => {
                let index = tables
                    .iter()
                    .position(|t| format!("{}.{}", t.id.schema, t.id.table) == cursor.table)
                    .unwrap_or(0);
                let key: Option<Vec<Value>> = if cursor.key.is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_str(&cursor.key)
                            .map_err(|e| Error::protocol("snapshot cursor", e.to_string()))?,
                    )
                };
                tracing::info!(table = %cursor.table, rows = position.total_order, "continuing an interrupted snapshot");
                (index, key, position.total_order)
            }
            None => (0, None, 0),
        };
        let first_in_table = last_key.is_none();
        let mut snapshot = Self {
            select_lists: current
                .iter()
                .map(|i| i.select_list.trim_start_matches(", ").to_string())
                .collect(),
            chunked: current.iter().map(|i| i.key_identifies_rows).collect(),
            tables,
            database: conn.database().into(),
            conn,
            table_index,
            last_key,
            rows_done: 0,
            handoff,
            read_time,
            serial,
            chunk: config.snapshot_chunk_size,
            topic_prefix: config.topic_prefix().into(),
            progress,
            held: None,
            first_in_table,
            restart_waits: connection::retry_schedule(config, config.max_retries),
            committed: false,
        };
        if resume.is_some_and(|p| p.snapshot.is_some()) {
            // For progress reports only: a failure to count is not fatal (a broken connection
            // shows at the next read, which takes the snapshot again).
            if let Err(e) = snapshot.count_rows_done_before().await {
                tracing::warn!(database = %snapshot.database, error = %e, "cannot count the rows read before the interruption");
            }
        }
        Ok(snapshot)
    }

    /// A continued snapshot's progress counts the rows read before the interruption: every
    /// row of the tables already finished and the current table's rows up to the cursor,
    /// counted in the snapshot transaction (so at the new read point: rows changed since the
    /// interruption move the count by as many, which streaming from the hand-off reconciles).
    async fn count_rows_done_before(&mut self) -> Result<(), Error> {
        let last = self.table_index.min(self.tables.len().saturating_sub(1));
        for index in 0..=last {
            let Some(table) = self.tables.get(index).cloned() else {
                break;
            };
            let current = index == self.table_index;
            let keys = self.chunk_keys(index, &table);
            let mut params = Params::new();
            let mut sql = format!(
                "SELECT COUNT_BIG(*) FROM {}.{}",
                quote(&table.id.schema),
                quote(&table.id.table)
            );
            if current {
                match &self.last_key {
                    Some(last) if !keys.is_empty() => sql.push_str(&format!(
                        " WHERE NOT ({})",
                        after_key(&keys, last, &mut params)?
                    )),
                    // At the start of the table: nothing of it was read yet.
                    _ => continue,
                }
            }
            // Once: after a reconnect the count would run outside the snapshot transaction.
            let rows = rows_once(&mut self.conn, "snapshot progress", sql, params).await?;
            let count = rows
                .first()
                .map(|r| catalog::int(r, 0))
                .transpose()
                .map_err(|e| Error::protocol("snapshot progress", e.to_string()))?
                .map_or(0, |n| u64::try_from(n).unwrap_or(0));
            let name = format!("{}.{}", table.id.schema, table.id.table);
            if current {
                self.rows_done = count;
            }
            self.progress
                .set_rows_done(&self.database, &name, count, !current);
        }
        Ok(())
    }

    /// Starts the snapshot over in a new transaction after its connection broke: the rows
    /// still to come must not be read at another point in time than those already handed
    /// out, and the old transaction is gone with the connection. Every table is read again
    /// from its first row at the new read point, which becomes the hand-off; serial numbers
    /// keep counting, so no position repeats.
    async fn restart(&mut self, cause: Error) -> Result<(), Error> {
        let Some(wait) = self.restart_waits.next() else {
            return Err(cause);
        };
        tracing::warn!(database = %self.database, error = %cause, ?wait, "the snapshot's connection broke; taking the snapshot again in a new transaction");
        self.conn.reset();
        tokio::time::sleep(wait).await;
        let (handoff, read_time) =
            open_transaction_retrying(&mut self.conn, &self.tables, None).await?;
        self.handoff = handoff;
        self.read_time = read_time;
        self.table_index = 0;
        self.last_key = None;
        self.rows_done = 0;
        self.progress.start_over(&self.database);
        // The row read ahead belongs to the abandoned read; it is read again.
        self.held = None;
        self.first_in_table = true;
        Ok(())
    }

    /// The next chunk of snapshot events; `None` once every table was read (the transaction
    /// is then committed).
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<ChangeEvent>>, Error> {
        let mut out = Vec::new();
        while out.is_empty() {
            let Some(table) = self.tables.get(self.table_index).cloned() else {
                // Every row was read in the transaction: end it before the last row is handed
                // out, so its locks (REPEATABLE READ's shared table locks, which make every
                // writer of the captured tables wait) do not last while the consumer holds
                // that row. If the connection broke just now the transaction is gone with it
                // and there is nothing to commit.
                if !self.committed {
                    if let Err(e) = self
                        .conn
                        .run_once("commit snapshot", |c| {
                            query::execute(c, "COMMIT TRANSACTION").boxed()
                        })
                        .await
                    {
                        if !e.is_transient() {
                            return Err(e);
                        }
                        tracing::warn!(database = %self.database, error = %e, "the snapshot's connection broke after its last row; nothing to commit");
                    }
                    self.committed = true;
                }
                if let Some(mut last) = self.held.take() {
                    last.source.snapshot = SnapshotMarker::Last;
                    return Ok(Some(vec![last]));
                }
                return Ok(None);
            };
            let name = format!("{}.{}", table.id.schema, table.id.table);
            let rows = match self.read_chunk(&table).await {
                Ok(rows) => rows,
                Err(e) if e.is_transient() => {
                    self.restart(e).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let fetched = rows.len() as u64;
            for values in rows {
                self.serial += 1;
                let key: Vec<Value> = if self.chunked.get(self.table_index) == Some(&true) {
                    table
                        .key_indices()
                        .iter()
                        .filter_map(|&i| values.get(i).cloned())
                        .collect()
                } else {
                    Vec::new()
                };
                let cursor = SnapshotCursor {
                    table: name.clone(),
                    key: if key.is_empty() {
                        String::new()
                    } else {
                        serde_json::to_string(&key).unwrap_or_default()
                    },
                    blocking_row: 0,
                };
                self.last_key = (!key.is_empty()).then_some(key);
                let position = LsnPosition {
                    database: Arc::clone(&self.database),
                    commit_lsn: self.handoff,
                    change_lsn: Lsn::ZERO,
                    event_serial_no: self.serial,
                    total_order: self.serial,
                    snapshot: Some(Box::new(cursor)),
                };
                let mut source = SourceInfo::new(
                    crate::stream::CONNECTOR,
                    Arc::clone(&self.topic_prefix),
                    Position::SqlServer(position),
                );
                source.commit_time = self.read_time;
                // Debezium's markers (RelationalSnapshotChangeEventSource): `first` for the
                // first table's first row, `first_in_data_collection` for another table's;
                // a table's last row is marked once the table is done, the snapshot's last
                // once every table is.
                source.snapshot = match (std::mem::take(&mut self.first_in_table), self.table_index)
                {
                    (true, 0) => SnapshotMarker::First,
                    (true, _) => SnapshotMarker::FirstInDataCollection,
                    (false, _) => SnapshotMarker::True,
                };
                let event = ChangeEvent::new(
                    Arc::clone(&table),
                    Op::Read,
                    None,
                    Some(Row::new(values)),
                    source,
                );
                out.extend(self.held.replace(event));
            }
            self.rows_done += fetched;
            // A table without a row-identifying key is read in one query; a keyed one until
            // a short chunk.
            let done = self.chunk_keys(self.table_index, &table).is_empty()
                || fetched < u64::from(self.chunk);
            self.progress
                .set_rows_done(&self.database, &name, self.rows_done, done);
            if done {
                if let Some(last) = self.held.as_mut()
                    && last.table.id == table.id
                    && last.source.snapshot != SnapshotMarker::First
                {
                    last.source.snapshot = SnapshotMarker::LastInDataCollection;
                }
                self.first_in_table = true;
                self.table_index += 1;
                self.last_key = None;
                self.rows_done = 0;
            }
        }
        Ok(Some(out))
    }

    /// The quoted key columns the table at `index` is chunked by; empty when its event key
    /// does not identify rows (see `CaptureInstance::key_identifies_rows`).
    fn chunk_keys(&self, index: usize, table: &TableSchema) -> Vec<KeyColumn> {
        if self.chunked.get(index) == Some(&true) {
            KeyColumn::of(table)
        } else {
            Vec::new()
        }
    }

    /// The next rows of `table` after the last key read, in key order.
    async fn read_chunk(&mut self, table: &TableSchema) -> Result<Vec<Vec<Value>>, Error> {
        let keys = self.chunk_keys(self.table_index, table);
        let (sql, params) = keyset_select(
            table,
            &self.select_lists[self.table_index],
            &keys,
            self.chunk,
            None,
            self.last_key.as_deref(),
        )?;
        // Once: after a reconnect the read would run outside the snapshot transaction.
        let rows = rows_once(&mut self.conn, "snapshot read", sql, params).await?;
        rows.into_iter().map(|row| table_row(table, row)).collect()
    }

    /// Gives the connection back once the snapshot is over.
    pub(crate) fn into_connection(self) -> Connection {
        self.conn
    }
}

/// Whether a stored position is an unfinished snapshot's.
pub(crate) fn is_snapshot_position(position: &LsnPosition) -> bool {
    position.snapshot.is_some() && !position.is_end_of_transaction()
}
