//! T-SQL: parsing with sqlparser's MsSqlDialect and execution on the in-memory engine.

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
