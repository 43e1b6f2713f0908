//! Consistent snapshots: every included table read in one transaction, with the LSN where
//! streaming takes over read inside that transaction.

use crate::catalog::{self, Catalog};
use crate::connection::Connection;
use crate::types::{param, quote, to_value};
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
}

/// A snapshot in progress on its own connection, read in keyset chunks by primary key.
pub(crate) struct Snapshot {
    conn: Connection,
    tables: Vec<Arc<TableSchema>>,
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
    server_name: Arc<str>,
    database: Arc<str>,
    progress: SnapshotProgress,
    /// A row read ahead, so the last event can be marked `last`.
    held: Option<ChangeEvent>,
}

impl Snapshot {
    /// Opens the snapshot transaction and reads the hand-off LSN inside it; or, given the
    /// position of a snapshot that was interrupted, continues that snapshot after its cursor
    /// with the same hand-off LSN (streaming from it reconciles what changed meanwhile).
    pub(crate) async fn begin(
        config: &MssqlConfig,
        mut conn: Connection,
        catalog: &Catalog,
        progress: SnapshotProgress,
        resume: Option<&LsnPosition>,
    ) -> Result<Self, Error> {
        let isolation = match config.snapshot_isolation {
            SnapshotIsolation::Snapshot => "SNAPSHOT",
            SnapshotIsolation::RepeatableRead => "REPEATABLE READ",
            SnapshotIsolation::ReadCommitted => "READ COMMITTED",
        };
        let mut begin = format!("SET TRANSACTION ISOLATION LEVEL {isolation}; BEGIN TRANSACTION;");
        if config.snapshot_isolation == SnapshotIsolation::RepeatableRead {
            // Shared locks on every captured table, taken before the hand-off LSN is read and
            // held to the end of the snapshot: no table changes between its hand-off and its
            // last row (writers wait), as with Debezium's locking modes.
            for table in catalog.tables.iter().filter_map(|i| i.last()) {
                let id = &table.table.id;
                begin.push_str(&format!(
                    " SELECT TOP (0) * FROM {}.{} WITH (TABLOCK, HOLDLOCK);",
                    crate::types::quote(&id.schema),
                    crate::types::quote(&id.table)
                ));
            }
        }
        conn.run("begin snapshot", move |c| {
            let begin = begin.clone();
            async move { query::execute(c, &begin).await }.boxed()
        })
        .await?;
        // Read inside the transaction: under SNAPSHOT isolation this fixes the version every
        // table read sees, and the LSN after which streaming must pick up.
        let rows = conn
            .run("sys.fn_cdc_get_max_lsn", |c| {
                query::batch_rows(c, query::MAX_LSN).boxed()
            })
            .await?;
        let current_max = rows
            .first()
            .and_then(|r| r.try_get::<&[u8], _>(0).ok().flatten())
            .and_then(Lsn::from_bytes)
            .unwrap_or(Lsn::ZERO);
        // A continued snapshot keeps its hand-off: streaming from there brings every change
        // made since, to rows read before the interruption and after it alike.
        let handoff = resume.map_or(current_max, |p| p.commit_lsn);
        // Snapshot rows carry the hand-off's commit time rather than the clock, so a snapshot
        // re-read after a crash lands in the same time partitions with the same bytes.
        let at = handoff.to_bytes().to_vec();
        let rows = conn
            .run("cdc.lsn_time_mapping", move |c| {
                let at = at.clone();
                async move { query::rows(c, query::TIME_AT, &[&at]).await }.boxed()
            })
            .await?;
        let read_time = rows
            .first()
            .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(0).ok().flatten())
            .map(|t| t.and_utc());
        let current: Vec<_> = catalog
            .tables
            .iter()
            .filter_map(|instances| instances.last())
            .cloned()
            .collect();
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
        let tables: Vec<Arc<TableSchema>> = current.iter().map(|i| Arc::clone(&i.table)).collect();
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
                tracing::info!(table = %cursor.table, serial = position.event_serial_no, "continuing an interrupted snapshot");
                (index, key, position.event_serial_no)
            }
            None => (0, None, 0),
        };
        Ok(Self {
            select_lists: current
                .iter()
                .map(|i| i.select_list.trim_start_matches(", ").to_string())
                .collect(),
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
            server_name: config.logical_name().into(),
            progress,
            held: None,
        })
    }

    /// The next chunk of snapshot events; `None` once every table was read (the transaction
    /// is then committed).
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<ChangeEvent>>, Error> {
        let mut out = Vec::new();
        while out.is_empty() {
            let Some(table) = self.tables.get(self.table_index).cloned() else {
                if let Some(mut last) = self.held.take() {
                    last.source.snapshot = SnapshotMarker::Last;
                    return Ok(Some(vec![last]));
                }
                self.conn
                    .run("commit snapshot", |c| {
                        query::execute(c, "COMMIT TRANSACTION").boxed()
                    })
                    .await?;
                return Ok(None);
            };
            let name = format!("{}.{}", table.id.schema, table.id.table);
            let rows = self.read_chunk(&table).await?;
            let fetched = rows.len() as u64;
            for values in rows {
                self.serial += 1;
                let key: Vec<Value> = table
                    .key_indices()
                    .iter()
                    .filter_map(|&i| values.get(i).cloned())
                    .collect();
                let cursor = SnapshotCursor {
                    table: name.clone(),
                    key: if key.is_empty() {
                        String::new()
                    } else {
                        serde_json::to_string(&key).unwrap_or_default()
                    },
                };
                self.last_key = (!key.is_empty()).then_some(key);
                let position = LsnPosition {
                    database: Arc::clone(&self.database),
                    commit_lsn: self.handoff,
                    change_lsn: Lsn::ZERO,
                    event_serial_no: self.serial,
                    snapshot: Some(Box::new(cursor)),
                };
                let mut source = SourceInfo::new(
                    crate::stream::CONNECTOR,
                    Arc::clone(&self.server_name),
                    Position::SqlServer(position),
                );
                source.commit_time = self.read_time;
                source.snapshot = if self.serial == 1 {
                    SnapshotMarker::First
                } else {
                    SnapshotMarker::True
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
            // A keyless table is read in one query; a keyed one until a short chunk.
            let done = table.primary_key.is_empty() || fetched < u64::from(self.chunk);
            let database = self.conn.database().to_string();
            let estimate = self
                .progress
                .tables()
                .iter()
                .find(|(d, p)| *d == database && p.table == name)
                .map_or(0, |(_, p)| p.rows_estimated);
            self.progress.update(
                &database,
                TableProgress {
                    table: name,
                    rows_done: self.rows_done,
                    rows_estimated: estimate,
                    done,
                },
            );
            if done {
                self.table_index += 1;
                self.last_key = None;
                self.rows_done = 0;
            }
        }
        Ok(Some(out))
    }

    /// The next rows of `table` after the last key read, in key order.
    async fn read_chunk(&mut self, table: &TableSchema) -> Result<Vec<Vec<Value>>, Error> {
        let keys: Vec<String> = table.primary_key.iter().map(|k| quote(k)).collect();
        let mut params: Vec<Box<dyn tiberius::ToSql + Send + Sync>> = Vec::new();
        let mut sql = format!(
            "SELECT{} {} FROM {}.{}",
            if keys.is_empty() {
                String::new()
            } else {
                format!(" TOP {}", self.chunk)
            },
            self.select_lists[self.table_index],
            quote(&table.id.schema),
            quote(&table.id.table)
        );
        if let Some(last) = &self.last_key {
            // (k1, k2, …) > (v1, v2, …), spelled out: k1 > v1 OR (k1 = v1 AND k2 > v2) …
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
            sql.push_str(&format!(" WHERE {}", alternatives.join(" OR ")));
        }
        if !keys.is_empty() {
            sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
        }
        let params = Arc::new(params);
        let rows = self
            .conn
            .run("snapshot read", move |c| {
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
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, column) in table.columns.iter().enumerate() {
                let data = row
                    .get_column_data(i)
                    .map_err(|e| Error::protocol(table.id.to_string(), e.to_string()))?;
                values.push(
                    to_value(data, &column.data_type).map_err(|reason| Error::Value {
                        table: table.id.to_string(),
                        column: column.name.clone(),
                        reason,
                    })?,
                );
            }
            out.push(values);
        }
        Ok(out)
    }

    /// Gives the connection back once the snapshot is over.
    pub(crate) fn into_connection(self) -> Connection {
        self.conn
    }
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

/// Whether a stored position is an unfinished snapshot's.
pub(crate) fn is_snapshot_position(position: &LsnPosition) -> bool {
    position.snapshot.is_some() && !position.is_end_of_transaction()
}
