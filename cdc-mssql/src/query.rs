//! The reader's queries, and small helpers to run them and read their rows.

use crate::connection::SqlClient;
use tiberius::{Row, ToSql};

/// Runs `sql` with positional parameters (`@P1`, …) and returns the first result's rows.
pub(crate) async fn rows(
    client: &mut SqlClient,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Vec<Row>, tiberius::error::Error> {
    client.query(sql, params).await?.into_first_result().await
}

/// Runs a batch without parameters and returns its first result's rows.
pub(crate) async fn batch_rows(
    client: &mut SqlClient,
    sql: &str,
) -> Result<Vec<Row>, tiberius::error::Error> {
    client.simple_query(sql).await?.into_first_result().await
}

/// Runs a batch whose results, if any, are not needed.
pub(crate) async fn execute(
    client: &mut SqlClient,
    sql: &str,
) -> Result<(), tiberius::error::Error> {
    client
        .simple_query(sql)
        .await?
        .into_results()
        .await
        .map(|_| ())
}

/// Capture instances with their low-water marks (cleanup raises `start_lsn`).
pub(crate) const CHANGE_TABLES: &str = "SELECT capture_instance, object_id, source_object_id, start_lsn, create_date FROM cdc.change_tables";
/// Source tables, to name the capture instances' tables.
pub(crate) const TABLES: &str = "SELECT t.object_id, s.name AS schema_name, t.name AS table_name FROM sys.tables t INNER JOIN sys.schemas s ON s.schema_id = t.schema_id";
/// Captured columns of every instance.
pub(crate) const CAPTURED_COLUMNS: &str =
    "SELECT object_id, column_name, column_ordinal FROM cdc.captured_columns";
/// Column types, of source and change tables alike. An alias type's column
/// (`CREATE TYPE dbo.Phone FROM nvarchar(20)`) is joined to its alias by `user_type_id`, so
/// its base type's name is read from the row whose `user_type_id` is the column's
/// `system_type_id` (for system types the two ids are equal; Microsoft, "sys.types").
/// CLR types (`is_assembly_type`: geography, geometry, hierarchyid) keep their own names,
/// and `sysname` (a system type, `is_user_defined` 0) keeps its name, which maps to
/// `nvarchar(128)`. `max_length`, `precision` and `scale` in `sys.columns` are the base
/// type's as declared; `collation_name` tells a UTF-8 `varchar` (SQL Server 2019+ `_UTF8`
/// collations) apart.
pub(crate) const COLUMNS: &str = "SELECT c.object_id, c.name, COALESCE(bt.name, t.name) AS type_name, c.max_length, c.precision, c.scale, c.is_nullable, c.collation_name \
     FROM sys.columns c INNER JOIN sys.types t ON t.user_type_id = c.user_type_id \
     LEFT JOIN sys.types bt ON bt.user_type_id = c.system_type_id AND t.is_user_defined = 1 AND t.is_assembly_type = 0";
/// Primary keys.
pub(crate) const KEY_CONSTRAINTS: &str = "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS WHERE CONSTRAINT_TYPE = 'PRIMARY KEY'";
/// Primary-key columns.
pub(crate) const KEY_COLUMNS: &str = "SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, ORDINAL_POSITION FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE";
/// The columns of each capture instance's row identity (`cdc.index_columns`: the primary key,
/// or the unique index named by `sys.sp_cdc_enable_table @index_name`), by change-table
/// object id, in key order.
pub(crate) const INDEX_COLUMNS: &str =
    "SELECT object_id, column_name, index_ordinal FROM cdc.index_columns";
/// Whether CDC is on for the current database.
pub(crate) const CDC_ENABLED: &str =
    "SELECT is_cdc_enabled FROM sys.databases WHERE name = DB_NAME()";
/// The highest LSN the capture job has processed.
pub(crate) const MAX_LSN: &str = "SELECT sys.fn_cdc_get_max_lsn()";

/// The LSN of the current transaction's latest savepoint in the current database, numeric(25,0).
pub(crate) const SAVEPOINT_LSN: &str = "SELECT dt.database_transaction_most_recent_savepoint_lsn \
     FROM sys.dm_tran_database_transactions dt \
     JOIN sys.dm_tran_current_transaction ct ON ct.transaction_id = dt.transaction_id \
     WHERE dt.database_id = DB_ID()";

/// Up to `limit` rows of `cdc.lsn_time_mapping` at or after `@P1`, with their commit times:
/// committed transactions, and the capture job's `tran_id = 0x00` progress marks (no change
/// rows) so that a window on a quiet database still ends where capture really got to.
/// `sys.fn_cdc_get_max_lsn()` read separately would not do: a transaction captured between
/// that read and this query would be skipped.
pub(crate) fn window(limit: u32) -> String {
    format!(
        "SELECT TOP {limit} start_lsn, tran_end_time FROM cdc.lsn_time_mapping \
         WHERE start_lsn >= @P1 ORDER BY start_lsn"
    )
}

/// The commit time of the last transaction at or before `@P1`.
/// Whether an LSN is a transaction's start_lsn in `cdc.lsn_time_mapping` (a cleanup's low water
/// mark always is: SQL Server refuses any other with error 22964).
pub(crate) const MAPPED_LSN: &str =
    "SELECT COUNT(*) FROM cdc.lsn_time_mapping WHERE start_lsn = @P1";
pub(crate) const TIME_AT: &str = "SELECT TOP 1 tran_end_time FROM cdc.lsn_time_mapping WHERE start_lsn <= @P1 ORDER BY start_lsn DESC";

/// A page of change rows of one capture instance between `@P1` and `@P2` (inclusive), with
/// `__$update_mask` after the four ordering columns; with
/// `after_key`, only rows after the keyset `(@P3 start_lsn, @P4 command_id, @P5 seqval,
/// @P6 operation)`.
pub(crate) fn changes(
    capture_instance: &str,
    select_list: &str,
    page: u32,
    after_key: bool,
) -> String {
    let table = crate::types::quote(&format!("{capture_instance}_CT"));
    let keyset = if after_key {
        " AND ([__$start_lsn] > @P3 OR ([__$start_lsn] = @P3 AND ([__$command_id] > @P4 OR \
         ([__$command_id] = @P4 AND ([__$seqval] > @P5 OR ([__$seqval] = @P5 AND [__$operation] > @P6))))))"
    } else {
        ""
    };
    format!(
        "SELECT TOP {page} [__$start_lsn], [__$seqval], [__$operation], [__$command_id], [__$update_mask]{select_list} \
         FROM [cdc].{table} WHERE [__$start_lsn] >= @P1 AND [__$start_lsn] <= @P2{keyset} \
         ORDER BY [__$start_lsn], [__$command_id], [__$seqval], [__$operation]"
    )
}
