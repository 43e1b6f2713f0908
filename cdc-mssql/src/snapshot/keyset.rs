//! Reading a table in keyset chunks: `SELECT TOP (n) … WHERE key > last ORDER BY key`,
//! rows turned into values in the table's column order.

use crate::connection::Connection;
use crate::types::{into_value, param, quote};
use crate::{Error, query};
use cdc_core::{DataType, TableSchema, Value};
use futures::FutureExt;
use std::sync::Arc;

/// Positional parameters a statement owns, bound as `@P1`, `@P2`, … in order.
pub(crate) type Params = Vec<Box<dyn tiberius::ToSql + Send + Sync>>;

/// One column of the key a table is read in order of: its quoted name, and the declared type
/// a bound key value is cast back to before it is compared with the column.
///
/// The cast keeps the comparison in the column's own type, so `key > @P` agrees with
/// `ORDER BY key`. tiberius binds text as `nvarchar` and timestamps as `datetime2`; compared
/// with a `char`/`varchar` column under a SQL_ collation, an `nvarchar` value makes SQL
/// Server compare by the Unicode rules while `ORDER BY` follows the SQL sort order, and
/// keyset paging skips rows (36 of the 575 ids of Debezium's DBZ-7359 test; ground truth C27
/// says 574, the file's line count without its last line ending); a `datetime` column
/// compared with a `datetime2` value is converted exactly (1/300 s) and is never equal to the
/// value it was read as, so a chunk boundary inside equal first-column
/// values re-reads or skips rows. A value read from the column converts back to its type
/// without loss. `varchar` values convert through the database's default code page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyColumn {
    /// The bracket-quoted column name.
    quoted: String,
    /// The type written in `CAST(@Pn AS …)`; `None` binds the value as it is (CLR types and
    /// `rowversion`, whose bytes compare as the column does).
    cast: Option<String>,
}

impl KeyColumn {
    /// The key columns of `table` (its event key), in key order. A key column the schema
    /// does not list is compared as bound.
    pub(crate) fn of(table: &TableSchema) -> Vec<KeyColumn> {
        table
            .primary_key
            .iter()
            .map(|name| KeyColumn {
                quoted: quote(name),
                cast: table
                    .columns
                    .iter()
                    .find(|c| &c.name == name)
                    .and_then(|c| match c.data_type {
                        DataType::Opaque { .. } | DataType::RowVersion => None,
                        ref t => Some(t.to_string()),
                    }),
            })
            .collect()
    }

    /// `@Pn` as compared with this column.
    fn param(&self, n: usize) -> String {
        match &self.cast {
            Some(t) => format!("CAST(@P{n} AS {t})"),
            None => format!("@P{n}"),
        }
    }
}

/// The keyset read of a table's next rows, for the initial snapshot and the incremental
/// snapshot's chunks alike: `SELECT TOP (rows) <select_list> FROM <table> WHERE (<filter>) AND
/// (<keys> > <after>) ORDER BY <keys>`, each condition only where given. `keys` are the
/// quoted key columns in key order; without keys the whole table is read in one unordered
/// query (`rows` and `after` do not apply).
pub(crate) fn keyset_select(
    table: &TableSchema,
    select_list: &str,
    keys: &[KeyColumn],
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
        let names: Vec<&str> = keys.iter().map(|k| k.quoted.as_str()).collect();
        sql.push_str(&names.join(", "));
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
            into_value(data, &mut cells, &column.data_type).map_err(|reason| Error::Value {
                table: table.id.to_string(),
                column: column.name.clone(),
                reason,
            })
        })
        .collect()
}

/// `(k1, k2, …) > (v1, v2, …)` spelled out — `k1 > v1 OR (k1 = v1 AND k2 > v2) …` — with the
/// values bound as the next positional parameters, each cast to its column's type.
pub(super) fn after_key(
    keys: &[KeyColumn],
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
            terms.push(format!("{} {op} {}", key.quoted, key.param(params.len())));
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
        let keys = KeyColumn::of(&table);
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
             WHERE (qty > 1) AND (([order] > CAST(@P1 AS int)) OR ([order] = CAST(@P2 AS int) AND [line] > CAST(@P3 AS int))) \
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

    /// Ground truth C27 (Debezium DBZ-7359): keyset paging over a `varchar` key under a SQL_
    /// collation skips rows when the last key is bound as `nvarchar`; a `datetime` key bound
    /// as `datetime2` is never equal to itself. Each bound key value is cast back to its
    /// column's declared type; CLR types and `rowversion` compare as bound.
    #[test]
    fn keyset_reads_compare_each_bound_key_value_in_its_columns_declared_type()
    -> Result<(), Box<dyn std::error::Error>> {
        use cdc_core::{Column, TableId};
        let table = TableSchema::new(
            TableId::new("shop", "dbo", "ids"),
            vec![
                Column::new("code", DataType::VarChar { length: Some(20) }, false),
                Column::new("at", DataType::DateTime, false),
                Column::new("name", DataType::NChar { length: 4 }, false),
                Column::new(
                    "node",
                    DataType::Opaque {
                        type_name: "hierarchyid".into(),
                    },
                    false,
                ),
            ],
            vec!["code".into(), "at".into(), "name".into(), "node".into()],
        )?;
        let after = [
            Value::String("Y-11-3-4".into()),
            Value::DateTime(chrono::NaiveDateTime::default()),
            Value::String("ab".into()),
            Value::Bytes(vec![0x58]),
        ];
        let mut params = Params::new();
        let sql = after_key(&KeyColumn::of(&table), &after, &mut params)?;
        assert_eq!(
            sql,
            "([code] > CAST(@P1 AS varchar(20))) \
             OR ([code] = CAST(@P2 AS varchar(20)) AND [at] > CAST(@P3 AS datetime)) \
             OR ([code] = CAST(@P4 AS varchar(20)) AND [at] = CAST(@P5 AS datetime) AND [name] > CAST(@P6 AS nchar(4))) \
             OR ([code] = CAST(@P7 AS varchar(20)) AND [at] = CAST(@P8 AS datetime) AND [name] = CAST(@P9 AS nchar(4)) AND [node] > @P10)"
        );
        assert_eq!(params.len(), 10);
        Ok(())
    }
}
