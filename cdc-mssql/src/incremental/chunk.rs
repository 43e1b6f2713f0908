//! Reading one chunk of a table, consistent as of a known log position.

use crate::connection::Connection;
use crate::types::{param, quote, to_value};
use crate::{Error, query};
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
    /// Rows after this primary key (`None`: from the first).
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
    let (sql, params) = statement(&request)?;
    let table = Arc::clone(request.table);
    let watermark = crate::snapshot::open_transaction(conn, std::slice::from_ref(&table)).await?;
    let params = Arc::new(params);
    let rows = conn
        .run_once("incremental snapshot chunk", move |c| {
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
    conn.run_once("end the chunk's transaction", |c| {
        query::execute(c, "COMMIT TRANSACTION").boxed()
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
        rows: out,
    })
}

type Params = Vec<Box<dyn tiberius::ToSql + Send + Sync>>;

/// `SELECT TOP (n) … FROM t WHERE (filter) AND (key > last) ORDER BY key`.
fn statement(request: &Request<'_>) -> Result<(String, Params), Error> {
    let table = request.table;
    let keys: Vec<String> = table.primary_key.iter().map(|k| quote(k)).collect();
    let mut params: Params = Vec::new();
    let mut conditions = Vec::new();
    if let Some(filter) = request.filter {
        conditions.push(format!("({filter})"));
    }
    if let Some(last) = request.after {
        // (k1, k2, …) > (v1, v2, …), spelled out: k1 > v1 OR (k1 = v1 AND k2 > v2) …
        let mut alternatives = Vec::new();
        for i in 0..keys.len() {
            let mut terms = Vec::new();
            for (j, key) in keys.iter().enumerate().take(i + 1) {
                let value = last.get(j).ok_or_else(|| {
                    Error::protocol("incremental snapshot cursor", "key too short")
                })?;
                params.push(param(value).ok_or_else(|| {
                    Error::protocol(
                        "incremental snapshot cursor",
                        format!("cannot bind {value:?}"),
                    )
                })?);
                let op = if j == i { ">" } else { "=" };
                terms.push(format!("{key} {op} @P{}", params.len()));
            }
            alternatives.push(format!("({})", terms.join(" AND ")));
        }
        conditions.push(format!("({})", alternatives.join(" OR ")));
    }
    let mut sql = format!(
        "SELECT TOP {} {} FROM {}.{}",
        request.rows,
        request.select_list,
        quote(&table.id.schema),
        quote(&table.id.table)
    );
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    Ok((sql, params))
}
