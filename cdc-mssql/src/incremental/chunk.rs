//! Reading one chunk of a table, consistent as of a known log position.

use crate::connection::Connection;
use crate::{Error, query, snapshot};
use cdc_core::{Lsn, TableSchema, Value};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::sync::Arc;

/// What to read.
pub(super) struct Request<'a> {
    pub(super) table: &'a Arc<TableSchema>,
    /// The columns, as the initial snapshot selects them (`[a], [b], …`).
    pub(super) select_list: &'a str,
    /// Debezium's additional condition, checked to be one predicate when it was signalled.
    pub(super) filter: Option<&'a str>,
    /// Rows after this primary key (`None`: from the first); the table has one (the caller
    /// skips tables without a key that identifies rows).
    pub(super) after: Option<&'a [Value]>,
    pub(super) rows: u32,
}

/// A chunk: the table's rows as of `watermark`.
pub(super) struct Chunk {
    pub(super) watermark: Lsn,
    /// Commit time of the last transaction at or before the watermark.
    pub(super) read_time: Option<DateTime<Utc>>,
    pub(super) rows: Vec<Vec<Value>>,
}

/// Reads the next chunk in its own transaction: opened as the initial snapshot opens its
/// own (the table held still by shared locks while the read point and its savepoint LSN are
/// taken), read, and committed — the transaction only read, `COMMIT` writes nothing to the
/// database. A failure leaves no transaction behind (the connection is dropped).
pub(super) async fn read(conn: &mut Connection, request: Request<'_>) -> Result<Chunk, Error> {
    let table = Arc::clone(request.table);
    let keys = snapshot::KeyColumn::of(&table);
    let (sql, params) = snapshot::keyset_select(
        &table,
        request.select_list,
        &keys,
        request.rows,
        request.filter,
        request.after,
    )?;
    let watermark = snapshot::open_transaction(conn, std::slice::from_ref(&table)).await?;
    let rows = snapshot::rows_once(conn, "incremental snapshot chunk", sql, params).await?;
    conn.run_once("end the chunk's transaction", |c| {
        query::execute(c, "COMMIT TRANSACTION").boxed()
    })
    .await?;
    let rows = rows
        .into_iter()
        .map(|row| snapshot::table_row(&table, row))
        .collect::<Result<_, _>>()?;
    let at = watermark.to_bytes().to_vec();
    let times = conn
        .run("cdc.lsn_time_mapping", move |c| {
            let at = at.clone();
            async move { query::rows(c, query::TIME_AT, &[&at]).await }.boxed()
        })
        .await?;
    let read_time = times
        .first()
        .and_then(|r| r.try_get::<chrono::NaiveDateTime, _>(0).ok().flatten())
        .map(|t| t.and_utc());
    Ok(Chunk {
        watermark,
        read_time,
        rows,
    })
}
