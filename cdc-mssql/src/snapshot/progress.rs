//! How far a snapshot has come: rows read and estimated per table, shared between the
//! snapshot and whoever reports it.

use crate::catalog;
use crate::connection::Connection;
use crate::{Error, query};
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

    pub(super) fn update(&self, database: &str, progress: TableProgress) {
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
    pub(super) fn set_rows_done(&self, database: &str, table: &str, rows_done: u64, done: bool) {
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

    /// Counts `rows` more read of `table` (an incremental or blocking snapshot's chunk), and
    /// whether the table is finished; `estimate` (re)starts the table's count at 0 with it.
    pub(crate) fn add_rows(
        &self,
        database: &str,
        table: &str,
        rows: u64,
        estimate: Option<u64>,
        done: bool,
    ) {
        let mut tables = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = tables
            .iter_mut()
            .find(|(d, p)| d == database && p.table == table);
        let progress = match slot {
            Some((_, progress)) => progress,
            None => {
                tables.push((
                    database.to_string(),
                    TableProgress {
                        table: table.to_string(),
                        rows_done: 0,
                        rows_estimated: 0,
                        done: false,
                    },
                ));
                match tables.last_mut() {
                    Some((_, progress)) => progress,
                    None => return,
                }
            }
        };
        if let Some(estimate) = estimate {
            progress.rows_done = 0;
            progress.rows_estimated = estimate;
        }
        progress.rows_done += rows;
        progress.done = done;
    }

    /// Sets every table of `database` back to no row read.
    pub(super) fn start_over(&self, database: &str) {
        let mut tables = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, progress) in tables.iter_mut().filter(|(d, _)| d == database) {
            progress.rows_done = 0;
            progress.done = false;
        }
    }
}

pub(crate) async fn estimate_rows(conn: &mut Connection, table: &str) -> Result<u64, Error> {
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
