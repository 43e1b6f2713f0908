//! T-SQL: parsing with sqlparser's MsSqlDialect and execution on the in-memory engine.
//!
//! Every executing module adds methods to [`exec::Exec`], the executor of one batch on one
//! session; the modules, by job:
//!
//! - Reading a batch: `parse` (batch into statements, the T-SQL forms sqlparser lacks).
//! - Running it: `exec` (the executor, batch control flow, statement dispatch), `out` (what a
//!   batch produces), `session` (per-connection state), `options` (`SET` and
//!   `ALTER DATABASE ... SET`).
//! - Transactions and locks: `transaction` (BEGIN/COMMIT/ROLLBACK, autocommit, undo, read
//!   views), `savepoints`, `locking` (lock waits, their timeouts and deadlock victims).
//! - Queries: `query` (SELECT and its FROM clause), `rel` (relations), `eval` (expressions),
//!   `functions` (built-in functions), `window` (ranking window functions).
//! - Writes: `dml` (INSERT, UPDATE, DELETE), `table_vars` (table variables).
//! - Schema: `ddl` (tables and columns), `indexes` (indexes and constraints), `types` (type
//!   names and alias types).
//! - Metadata and procedures: `sysviews` (catalog views), `catalog_procs` (the ODBC catalog
//!   procedures), `procs` (CDC and `sim.*` system procedures).
//! - CDC's SQL face: `cdc_functions` (`sys.fn_cdc_*` and the `cdc.fn_cdc_get_*_changes_*`
//!   table functions), `change_table` (paging a change table by LSN without a scan); they read
//!   the state of [`crate::cdc`], which never calls back into `sql`.

pub(crate) mod catalog_procs;
pub(crate) mod cdc_functions;
pub(crate) mod change_table;
pub(crate) mod ddl;
pub(crate) mod dml;
pub(crate) mod eval;
pub(crate) mod exec;
pub(crate) mod functions;
pub(crate) mod indexes;
pub(crate) mod locking;
pub(crate) mod options;
pub(crate) mod out;
pub(crate) mod parse;
pub(crate) mod procs;
pub(crate) mod query;
pub(crate) mod rel;
pub(crate) mod savepoints;
pub(crate) mod session;
pub(crate) mod sysviews;
pub(crate) mod table_vars;
pub(crate) mod transaction;
pub(crate) mod types;
pub(crate) mod window;
