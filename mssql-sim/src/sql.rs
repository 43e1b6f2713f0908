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

pub(crate) mod catalog_procs;
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
