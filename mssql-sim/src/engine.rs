//! The in-memory storage engine: catalog, tables and transactions.

pub(crate) mod catalog;
pub(crate) mod table;
pub(crate) mod txn;
