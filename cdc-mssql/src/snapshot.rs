//! Consistent snapshots: every included table read in one transaction, with the LSN where
//! streaming takes over read inside that transaction.

use crate::catalog::{self, Catalog};
use crate::connection::{self, Connection};
use crate::types::{into_value, param, quote};
use crate::{Error, MssqlConfig, SnapshotIsolation, query};
use cdc_core::{
    ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SnapshotCursor, SnapshotMarker, SourceInfo,
    TableSchema, Value,
};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::sync::{Arc, Mutex, PoisonError};

/// How far the snapshot of one table has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProgress {
    /// `schema.table`.
    pub table: String,
    /// Rows read so far.
    pub rows_done: u64,
    /// Rows the table held when the snapshot began, from `sys.partitions` (an estimate).
    pub rows_estimated: u64,
    /// Whether the table is finished.
    pub done: bool,
}

/// Shared view of a running snapshot's progress, per database.
#[derive(Debug, Clone, Default)]
pub struct SnapshotProgress {
    inner: Arc<Mutex<Vec<(String, TableProgress)>>>,
}

impl SnapshotProgress {
    /// `(database, progress)` of every table snapshotted or being snapshotted.
    pub fn tables(&self) -> Vec<(String, TableProgress)> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, database: &str, progress: TableProgress) {
        let mut tables = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match tables
            .iter_mut()
            .find(|(d, p)| d == database && p.table == progress.table)
        {
            Some(slot) => slot.1 = progress,
            None => tables.push((database.to_string(), progress)),
        }
    }

    /// Sets how far a table has come, keeping its estimate.
    fn set_rows_done(&self, database: &str, table: &str, rows_done: u64, done: bool) {
        let mut tables = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match tables
            .iter_mut()
            .find(|(d, p)| d == database && p.table == table)
        {
            Some((_, progress)) => {
                progress.rows_done = rows_done;
                progress.done = done;
            }
            None => tables.push((
                database.to_string(),
                TableProgress {
                    table: table.to_string(),
                    rows_done,
                    rows_estimated: 0,
                    done,
                },
            )),
        }
    }

    /// Sets every table of `database` back to no row read.
    fn start_over(&self, database: &str) {
        let mut tables = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, progress) in tables.iter_mut().filter(|(d, _)| d == database) {
            progress.rows_done = 0;
            progress.done = false;
        }
    }
}

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
    fn chunk_keys(&self, index: usize, table: &TableSchema) -> Vec<String> {
        if self.chunked.get(index) == Some(&true) {
            table.primary_key.iter().map(|k| quote(k)).collect()
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

/// Opens the snapshot transaction on `conn` and returns the hand-off LSN (`handoff`, or else
/// the log position of the read point) with its commit time, retrying the whole opening on a
/// new connection after a transient failure (a statement retried alone would run outside
/// the transaction), with the connection's reconnect schedule ([`connection::retry_schedule`]).
async fn open_transaction_retrying(
    conn: &mut Connection,
    tables: &[Arc<TableSchema>],
    handoff: Option<Lsn>,
) -> Result<(Lsn, Option<DateTime<Utc>>), Error> {
    let mut waits = connection::retry_schedule(conn.config(), conn.config().max_retries);
    loop {
        let opened = async {
            let read_point = open_transaction(conn, tables).await?;
            let handoff = handoff.unwrap_or(read_point);
            Ok::<_, Error>((handoff, commit_time_at(conn, handoff).await?))
        };
        let e = match opened.await {
            Ok(opened) => return Ok(opened),
            Err(e) => e,
        };
        let Some(wait) = waits.next().filter(|_| e.is_transient()) else {
            return Err(e);
        };
        tracing::warn!(database = %conn.database(), error = %e, ?wait, "opening the snapshot transaction failed; retrying");
        conn.reset();
        tokio::time::sleep(wait).await;
    }
}

/// Opens the snapshot transaction and finds the log position of its read point: the LSN at
/// which streaming takes over. Every transaction that committed at or before it is in what
/// the snapshot reads; every later one is not.
///
/// `sys.fn_cdc_get_max_lsn()` cannot give that position: it is how far the asynchronous
/// capture job got, and rows committed before the snapshot but captured after it would
/// arrive twice. The log position comes from the transaction itself (the way Materialize's
/// SQL Server source does it): `SAVE TRANSACTION` writes a log record, and
/// `sys.dm_tran_database_transactions.database_transaction_most_recent_savepoint_lsn` of the
/// current transaction is its LSN (numeric form; needs VIEW SERVER STATE, or VIEW DATABASE
/// STATE on Azure SQL). Under `SNAPSHOT` isolation the read point is fixed by the first read
/// (a row of `cdc.change_tables`); a second connection holds shared table locks on the
/// captured tables while the read point and the savepoint are taken, so no write to them
/// commits in between, then lets go. Under `REPEATABLE READ` the snapshot transaction's own
/// locks, held to its end, do that.
pub(crate) async fn open_transaction(
    conn: &mut Connection,
    tables: &[Arc<TableSchema>],
) -> Result<Lsn, Error> {
    let isolation = effective_isolation(conn).await?;
    let locks: String = tables
        .iter()
        .map(|t| {
            format!(
                " SELECT TOP (0) * FROM {}.{} WITH (TABLOCK, HOLDLOCK);",
                quote(&t.id.schema),
                quote(&t.id.table)
            )
        })
        .collect();
    let mut fence = None;
    let mut begin = match isolation {
        SnapshotIsolation::Snapshot => {
            let mut fencing = conn.sibling();
            let sql = format!(
                "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION;{locks}"
            );
            fencing
                .run_once("lock tables for the snapshot's read point", move |c| {
                    let sql = sql.clone();
                    async move { query::execute(c, &sql).await }.boxed()
                })
                .await?;
            fence = Some(fencing);
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; \
             SELECT TOP 1 object_id FROM cdc.change_tables;"
                .to_string()
        }
        // Shared locks on every captured table, taken before the read point and held to
        // the end of the snapshot: no table changes between its hand-off and its last row
        // (writers wait), as with Debezium's locking modes.
        SnapshotIsolation::RepeatableRead => {
            format!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN TRANSACTION;{locks}")
        }
        SnapshotIsolation::ReadCommitted => {
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION;".to_string()
        }
    };
    begin.push_str(" SAVE TRANSACTION cdc_rs_snapshot;");
    let opened = async {
        conn.run_once("begin snapshot", move |c| {
            let begin = begin.clone();
            async move { query::execute(c, &begin).await }.boxed()
        })
        .await?;
        conn.run_once("snapshot read point", |c| {
            query::batch_rows(c, query::SAVEPOINT_LSN).boxed()
        })
        .await
    }
    .await;
    if let Some(mut fence) = fence {
        // Rolling back releases the locks; a failure only means the connection is gone,
        // which releases them too.
        let _ = fence
            .run_once("release the snapshot's table locks", |c| {
                query::execute(c, "ROLLBACK TRANSACTION").boxed()
            })
            .await;
        fence.close().await;
    }
    let rows = opened?;
    let numeric = rows
        .first()
        .and_then(|r| r.try_get::<tiberius::numeric::Numeric, _>(0).ok().flatten())
        .ok_or_else(|| {
            Error::protocol(
                "sys.dm_tran_database_transactions",
                "no savepoint LSN for the snapshot transaction",
            )
        })?;
    lsn_from_numeric(numeric).ok_or_else(|| {
        Error::protocol(
            "sys.dm_tran_database_transactions",
            format!("{numeric} is not a numeric LSN"),
        )
    })
}

/// `sys.databases.snapshot_isolation_state` of the current database: 0 OFF, 1 ON, 2 in
/// transition to OFF, 3 in transition to ON (only 1 lets a SNAPSHOT transaction read).
const SNAPSHOT_ISOLATION_STATE: &str =
    "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()";

/// The isolation the snapshot uses in the connection's database: the configured one, or
/// else SNAPSHOT where the database allows it and REPEATABLE READ where it does not.
async fn effective_isolation(conn: &mut Connection) -> Result<SnapshotIsolation, Error> {
    let configured = conn.config().snapshot_isolation;
    if let Some(isolation) = configured
        && isolation != SnapshotIsolation::Snapshot
    {
        // Locking modes work on every database: nothing to look up.
        return Ok(isolation);
    }
    let rows = conn
        .run("sys.databases", |c| {
            query::batch_rows(c, SNAPSHOT_ISOLATION_STATE).boxed()
        })
        .await?;
    let state = rows
        .first()
        .map(|r| catalog::int(r, 0))
        .transpose()
        .map_err(|e| Error::protocol("sys.databases.snapshot_isolation_state", e.to_string()))?
        .ok_or_else(|| {
            Error::protocol(
                "sys.databases",
                format!("no row for database {:?}", conn.database()),
            )
        })?;
    let state = u8::try_from(state).map_err(|_| {
        Error::protocol(
            "sys.databases.snapshot_isolation_state",
            format!("{state} is not a state"),
        )
    })?;
    choose_isolation(configured, state, conn.database())
}

/// The choice [`effective_isolation`] makes, given the database's `snapshot_isolation_state`.
fn choose_isolation(
    configured: Option<SnapshotIsolation>,
    state: u8,
    database: &str,
) -> Result<SnapshotIsolation, Error> {
    let allowed = state == 1;
    match configured {
        Some(SnapshotIsolation::Snapshot) if !allowed => Err(Error::SnapshotIsolationNotAllowed {
            database: database.to_string(),
            state,
            statement: format!(
                "ALTER DATABASE {} SET ALLOW_SNAPSHOT_ISOLATION ON;",
                quote(database)
            ),
        }),
        Some(isolation) => Ok(isolation),
        None if allowed => Ok(SnapshotIsolation::Snapshot),
        None => Ok(SnapshotIsolation::RepeatableRead),
    }
}

/// An LSN from its numeric(25,0) form (VLF × 10^15 + block × 10^5 + slot), as the
/// `sys.dm_tran_*` views show it; Microsoft's `fn_convertnumericlsntobinary` template takes
/// it apart the same way.
fn lsn_from_numeric(n: tiberius::numeric::Numeric) -> Option<Lsn> {
    if n.scale() != 0 || n.value() < 0 {
        return None;
    }
    let v = n.value();
    let vlf = u32::try_from(v / 1_000_000_000_000_000).ok()?;
    let block = u32::try_from((v / 100_000) % 10_000_000_000).ok()?;
    let slot = u16::try_from(v % 100_000).ok()?;
    let mut bytes = [0u8; 10];
    bytes[..4].copy_from_slice(&vlf.to_be_bytes());
    bytes[4..8].copy_from_slice(&block.to_be_bytes());
    bytes[8..].copy_from_slice(&slot.to_be_bytes());
    Lsn::from_bytes(&bytes)
}

/// The commit time of the last transaction at or before `lsn` (`None` on a log with none):
/// snapshot rows carry it rather than the clock, so a snapshot re-read after a crash lands in
/// the same time partitions with the same bytes.
async fn commit_time_at(conn: &mut Connection, lsn: Lsn) -> Result<Option<DateTime<Utc>>, Error> {
    let at = lsn.to_bytes().to_vec();
    let rows = conn
        .run_once("cdc.lsn_time_mapping", move |c| {
            let at = at.clone();
            async move { query::rows(c, query::TIME_AT, &[&at]).await }.boxed()
        })
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(0).ok().flatten())
        .map(|t| t.and_utc()))
}

async fn estimate_rows(conn: &mut Connection, table: &str) -> Result<u64, Error> {
    let table = table.to_string();
    let rows = conn
        .run("sys.partitions", move |c| {
            let table = table.clone();
            async move {
                query::rows(c, "SELECT SUM(rows) FROM sys.partitions WHERE object_id = OBJECT_ID(@P1) AND index_id IN (0, 1)", &[&table]).await
            }
            .boxed()
        })
        .await?;
    let count = rows
        .first()
        .map(|r| catalog::int(r, 0))
        .transpose()
        .map_err(|e| Error::protocol("sys.partitions", e.to_string()))?;
    Ok(count.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// Positional parameters a statement owns, bound as `@P1`, `@P2`, … in order.
pub(crate) type Params = Vec<Box<dyn tiberius::ToSql + Send + Sync>>;

/// The keyset read of a table's next rows, for the initial snapshot and the incremental
/// snapshot's chunks alike: `SELECT TOP (rows) <select_list> FROM <table> WHERE (<filter>) AND
/// (<keys> > <after>) ORDER BY <keys>`, each condition only where given. `keys` are the
/// quoted key columns in key order; without keys the whole table is read in one unordered
/// query (`rows` and `after` do not apply).
pub(crate) fn keyset_select(
    table: &TableSchema,
    select_list: &str,
    keys: &[String],
    rows: u32,
    filter: Option<&str>,
    after: Option<&[Value]>,
) -> Result<(String, Params), Error> {
    let mut params = Params::new();
    let mut conditions = Vec::new();
    if let Some(filter) = filter {
        conditions.push(format!("({filter})"));
    }
    if let Some(last) = after
        && !keys.is_empty()
    {
        conditions.push(format!("({})", after_key(keys, last, &mut params)?));
    }
    let top = if keys.is_empty() {
        String::new()
    } else {
        format!(" TOP {rows}")
    };
    let mut sql = format!(
        "SELECT{top} {select_list} FROM {}.{}",
        quote(&table.id.schema),
        quote(&table.id.table)
    );
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    if !keys.is_empty() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&keys.join(", "));
    }
    Ok((sql, params))
}

/// Runs `sql` with the parameters it owns exactly once: for statements of the connection's
/// open transaction (see [`Connection::run_once`]).
pub(crate) async fn rows_once(
    conn: &mut Connection,
    what: &str,
    sql: String,
    params: Params,
) -> Result<Vec<tiberius::Row>, Error> {
    let params = Arc::new(params);
    conn.run_once(what, move |c| {
        let (sql, params) = (sql.clone(), Arc::clone(&params));
        async move {
            let refs: Vec<&dyn tiberius::ToSql> = params
                .iter()
                .map(|p| p.as_ref() as &dyn tiberius::ToSql)
                .collect();
            query::rows(c, &sql, &refs).await
        }
        .boxed()
    })
    .await
}

/// One row of `table` as its select list reads it, the cells moved out of the driver's row.
pub(crate) fn table_row(table: &TableSchema, row: tiberius::Row) -> Result<Vec<Value>, Error> {
    let mut cells = row.into_iter();
    table
        .columns
        .iter()
        .map(|column| {
            let data = cells.next().ok_or_else(|| {
                Error::protocol(
                    table.id.to_string(),
                    format!("no value for column {}", column.name),
                )
            })?;
            into_value(data, &column.data_type).map_err(|reason| Error::Value {
                table: table.id.to_string(),
                column: column.name.clone(),
                reason,
            })
        })
        .collect()
}

/// `(k1, k2, …) > (v1, v2, …)` spelled out — `k1 > v1 OR (k1 = v1 AND k2 > v2) …` — with the
/// values bound as the next positional parameters.
fn after_key(keys: &[String], last: &[Value], params: &mut Params) -> Result<String, Error> {
    let mut alternatives = Vec::new();
    for i in 0..keys.len() {
        let mut terms = Vec::new();
        for (j, key) in keys.iter().enumerate().take(i + 1) {
            let value = last
                .get(j)
                .ok_or_else(|| Error::protocol("snapshot cursor", "key too short"))?;
            params.push(param(value).ok_or_else(|| {
                Error::protocol("snapshot cursor", format!("cannot bind {value:?}"))
            })?);
            let op = if j == i { ">" } else { "=" };
            terms.push(format!("{key} {op} @P{}", params.len()));
        }
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    Ok(alternatives.join(" OR "))
}

/// Whether a stored position is an unfinished snapshot's.
pub(crate) fn is_snapshot_position(position: &LsnPosition) -> bool {
    position.snapshot.is_some() && !position.is_end_of_transaction()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_select_reads_the_rows_after_the_last_key_that_match_the_filter_in_key_order()
    -> Result<(), Box<dyn std::error::Error>> {
        use cdc_core::{Column, DataType, TableId};
        let column = |name: &str| Column::new(name, DataType::Int, false);
        let table = TableSchema::new(
            TableId::new("shop", "dbo", "order lines"),
            vec![column("order"), column("line"), column("qty")],
            vec!["order".into(), "line".into()],
        )?;
        let keys = ["[order]".to_string(), "[line]".to_string()];
        let (sql, params) = keyset_select(
            &table,
            "[order], [line], [qty]",
            &keys,
            100,
            Some("qty > 1"),
            Some(&[Value::I32(7), Value::I32(3)]),
        )?;
        assert_eq!(
            sql,
            "SELECT TOP 100 [order], [line], [qty] FROM [dbo].[order lines] \
             WHERE (qty > 1) AND (([order] > @P1) OR ([order] = @P2 AND [line] > @P3)) \
             ORDER BY [order], [line]"
        );
        assert_eq!(params.len(), 3);
        let (sql, params) = keyset_select(&table, "[qty]", &[], 100, None, Some(&[Value::I32(7)]))?;
        assert_eq!(
            sql, "SELECT [qty] FROM [dbo].[order lines]",
            "no key: one unordered query"
        );
        assert!(params.is_empty());
        Ok(())
    }

    #[test]
    fn unset_isolation_is_snapshot_where_the_database_allows_it_else_repeatable_read() {
        assert_eq!(
            choose_isolation(None, 1, "shop").ok(),
            Some(SnapshotIsolation::Snapshot)
        );
        for state in [0, 2, 3] {
            assert_eq!(
                choose_isolation(None, state, "shop").ok(),
                Some(SnapshotIsolation::RepeatableRead)
            );
        }
    }

    #[test]
    fn configured_snapshot_on_a_database_without_it_is_a_typed_error_with_the_alter_database_statement()
     {
        match choose_isolation(Some(SnapshotIsolation::Snapshot), 0, "sh]op") {
            Err(Error::SnapshotIsolationNotAllowed {
                database,
                state,
                statement,
            }) => {
                assert_eq!(database, "sh]op");
                assert_eq!(state, 0);
                assert_eq!(
                    statement,
                    "ALTER DATABASE [sh]]op] SET ALLOW_SNAPSHOT_ISOLATION ON;"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            choose_isolation(Some(SnapshotIsolation::ReadCommitted), 0, "shop").ok(),
            Some(SnapshotIsolation::ReadCommitted)
        );
    }
}
