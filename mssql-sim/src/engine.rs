//! The in-memory storage engine: catalog, tables, transactions and the transaction log.

pub(crate) mod catalog;
pub(crate) mod locks;
pub(crate) mod log;
pub(crate) mod table;
pub(crate) mod txn;
