//! Blocking snapshots: Debezium's `execute-snapshot` with `"type": "blocking"`. Streaming
//! waits while the tables are read in key-ordered chunks; then it resumes where it waited.
//!
//! The rows go out after everything streamed so far: a blocking snapshot starts only when the
//! reader's position is the end of a transaction `C`, and row `n` (from 1) sits at
//! `(C, after every event of C, n)` — [`SnapshotCursor::blocking_row`] orders it after the
//! end of `C` and before the next transaction. Each row's cursor holds the snapshot's
//! progress after that row (tables left, last key, rows so far), so a restart continues with
//! the next row and the next number. The changes committed while the rows were read follow
//! them once streaming resumes: a consumer applying events in order may see an older change
//! of a key after that key's row, and ends with the table's state, as with Debezium's
//! blocking snapshots. Nothing here writes to the source database.

use super::{Incremental, chunk, count_chunk, cursor_of, front_table, key_of};
use crate::connection::Connection;
use crate::stream::Item;
use crate::{Error, MssqlConfig};
use cdc_core::{ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SnapshotMarker, SourceInfo};
use std::collections::VecDeque;
use std::sync::Arc;

impl Incremental {
    /// Whether a blocking snapshot runs for database `index` (streaming waits for it).
    pub(crate) fn blocking(&self, index: usize) -> bool {
        self.states
            .get(index)
            .and_then(|s| s.progress.as_ref())
            .is_some_and(|p| p.blocking)
    }

    /// For database `index`, if a blocking snapshot runs: its next rows, placed after
    /// `after` (the end of the last transaction streamed) — empty when the snapshot just
    /// ended without a row or a failed chunk read waits for its retry. `None`: no blocking
    /// snapshot runs, streaming goes on. A `pause-snapshot` does not hold a blocking snapshot
    /// (streaming would wait for nothing).
    pub(crate) async fn blocking_step(
        &mut self,
        index: usize,
        after: &LsnPosition,
        config: &Arc<MssqlConfig>,
    ) -> Result<Option<VecDeque<Item>>, Error> {
        if !self.blocking(index) {
            return Ok(None);
        }
        let database = Arc::clone(&self.names[index]);
        let server = Arc::clone(&self.server);
        let chunk_size = self.chunk_size;
        let state = &mut self.states[index];
        if !state.chunk_due(tokio::time::Instant::now()) {
            return Ok(Some(VecDeque::new()));
        }
        let conn = self.conns[index]
            .get_or_insert_with(|| Connection::new(Arc::clone(config), database.to_string()));
        let mut items = VecDeque::new();
        while items.is_empty() {
            if !front_table(state, conn, config, &database).await? {
                break;
            }
            let (Some(progress), Some(info)) = (
                state.progress.as_ref(),
                state.progress.as_ref().and_then(|p| {
                    p.tables
                        .front()
                        .and_then(|t| state.tables.get(&t.table.to_lowercase()))
                }),
            ) else {
                break;
            };
            let table = Arc::clone(&info.schema);
            let filter = progress.tables.front().and_then(|t| t.filter.clone());
            let after_key = progress.last_key.clone();
            // One row more than the chunk: whether the table goes on decides the last row's
            // marker, without an empty read at the table's end.
            let request = chunk::Request {
                table: &table,
                select_list: &info.select_list,
                filter: filter.as_deref(),
                after: after_key.as_deref(),
                rows: chunk_size.saturating_add(1),
            };
            let read = match chunk::read(conn, request).await {
                Ok(read) => read,
                Err(e) => {
                    // A failed read's connection (and its transaction) is never reused.
                    conn.reset();
                    state.chunk_failed(e, config, tokio::time::Instant::now())?;
                    if state.retry.is_some() {
                        // A transient failure: read again after the wait, at a later step.
                        return Ok(Some(items));
                    }
                    // The table was dropped from the snapshot: on with the next one.
                    continue;
                }
            };
            state.retry = None;
            let Some(progress) = state.progress.as_mut() else {
                break;
            };
            let mut rows = read.rows;
            let table_goes_on = rows.len() > chunk_size as usize;
            rows.truncate(chunk_size as usize);
            let count = rows.len();
            let first_of_table = after_key.is_none();
            if let Some(name) = progress.tables.front().map(|t| t.table.clone()) {
                let done = !table_goes_on;
                count_chunk(
                    &self.progress,
                    conn,
                    &database,
                    &name,
                    count,
                    first_of_table,
                    done,
                )
                .await;
            }
            for (i, values) in rows.into_iter().enumerate() {
                progress.rows += 1;
                progress.last_key = Some(key_of(&table, &values));
                let last_of_table = !table_goes_on && i + 1 == count;
                if last_of_table {
                    progress.tables.pop_front();
                    progress.last_key = None;
                }
                // Debezium's initial-snapshot markers, which its blocking snapshots carry.
                let marker = if last_of_table && progress.tables.is_empty() {
                    SnapshotMarker::Last
                } else if last_of_table {
                    SnapshotMarker::LastInDataCollection
                } else if progress.rows == 1 {
                    SnapshotMarker::First
                } else if first_of_table && i == 0 {
                    SnapshotMarker::FirstInDataCollection
                } else {
                    SnapshotMarker::True
                };
                let mut cursor = cursor_of(progress);
                cursor.blocking_row = progress.rows;
                let position = LsnPosition {
                    database: Arc::clone(&database),
                    commit_lsn: after.commit_lsn,
                    // After every event of the transaction at `commit_lsn`, as its end is.
                    change_lsn: Lsn::MAX,
                    event_serial_no: u64::MAX,
                    total_order: u64::MAX,
                    snapshot: Some(Box::new(cursor)),
                };
                let mut source = SourceInfo::new(
                    crate::stream::CONNECTOR,
                    Arc::clone(&server),
                    Position::SqlServer(position),
                );
                source.commit_time = read.read_time;
                source.snapshot = marker;
                items.push_back(Item::Event(ChangeEvent::new(
                    Arc::clone(&table),
                    Op::Read,
                    None,
                    Some(Row::new(values)),
                    source,
                )));
            }
            if count == 0 {
                // The table (or what its condition selects) had nothing after the last key.
                progress.tables.pop_front();
                progress.last_key = None;
            }
            if progress.tables.is_empty() {
                tracing::info!(database = %database, rows = progress.rows, "blocking snapshot finished; streaming resumes");
                state.progress = None;
            }
        }
        Ok(Some(items))
    }
}
