//! Per-connection state: current database, isolation level, open transaction, variables.

use std::collections::HashMap;

use crate::engine::log::Lsn;
use crate::engine::txn::{Isolation, Txn, Xid};
use crate::value::{SqlType, Value};

/// A savepoint of the session's open transaction.
#[derive(Debug, Clone)]
pub(crate) struct Savepoint {
    /// The name as written (compared case-insensitively, as with the default collation).
    pub(crate) name: String,
    /// The transaction it belongs to.
    pub(crate) xid: Xid,
    /// How many table locks existed when it was set.
    pub(crate) locks: usize,
    /// The transaction's last log record per database right after it was set.
    pub(crate) last_lsn: HashMap<String, Lsn>,
}

/// Undo record for statement-level rollback inside a transaction.
#[derive(Debug, Clone)]
pub(crate) enum Undo {
    Inserted {
        db: String,
        table: String,
        idx: usize,
    },
    Deleted {
        db: String,
        table: String,
        idx: usize,
    },
}

/// Session state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) db: String,
    pub(crate) user: String,
    pub(crate) spid: u16,
    pub(crate) isolation: Isolation,
    pub(crate) txn: Option<Txn>,
    pub(crate) vars: HashMap<String, (SqlType, Value)>,
    pub(crate) nocount: bool,
    pub(crate) rowcount: u64,
    pub(crate) undo: Vec<Undo>,
    /// Savepoints of the open transaction (`SAVE TRANSACTION`), oldest first.
    pub(crate) savepoints: Vec<Savepoint>,
    /// Prepared statements of the connection (`sp_prepexec` / `sp_execute` / `sp_unprepare`).
    pub(crate) prepared: crate::tds::prepared::Handles,
}

impl Session {
    pub(crate) fn new(db: &str, user: &str, spid: u16) -> Self {
        Session {
            db: db.to_string(),
            user: user.to_string(),
            spid,
            isolation: Isolation::ReadCommitted,
            txn: None,
            vars: HashMap::new(),
            nocount: false,
            rowcount: 0,
            undo: Vec::new(),
            savepoints: Vec::new(),
            prepared: Default::default(),
        }
    }
}
