//! The in-memory storage engine: catalog, tables, transactions and the transaction log.
//!
//! - `catalog`: the engine, its databases and their tables by name (the root of the state).
//! - `table`: a table's definition and its row versions.
//! - `txn`: transactions, their status and the read views over row versions.
//! - `locks`: the lock manager (table, row and range locks, waits, deadlock victims).
//! - `log`: the transaction log and its LSNs.
//! - `alias_type`: alias data types (`CREATE TYPE ... FROM`).

pub(crate) mod alias_type;
pub(crate) mod catalog;
pub(crate) mod locks;
pub(crate) mod log;
pub(crate) mod table;
pub(crate) mod txn;
