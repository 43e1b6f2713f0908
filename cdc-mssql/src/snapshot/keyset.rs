//! Reading a table in keyset chunks: `SELECT TOP (n) … WHERE key > last ORDER BY key`,
//! rows turned into values in the table's column order.

use crate::connection::Connection;
use crate::types::{into_value, param, quote};
use crate::{Error, query};
use cdc_core::{TableSchema, Value};
use futures::FutureExt;
use std::sync::Arc;

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
pub(super) fn after_key(
    keys: &[String],
    last: &[Value],
    params: &mut Params,
) -> Result<String, Error> {
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
}
