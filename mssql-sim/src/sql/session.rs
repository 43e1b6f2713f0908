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
    /// The lock sequence number when it was set (table locks from it on are released by a
    /// rollback to it).
    pub(crate) locks: u64,
    /// The transaction's last log record per database right after it was set.
    pub(crate) last_lsn: HashMap<String, Lsn>,
    /// How many catalog changes the transaction had made when it was set.
    pub(crate) ddl: usize,
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
    /// `SET LOCK_TIMEOUT`: milliseconds a statement waits for a lock; -1 (the default) waits
    /// for ever, 0 does not wait.
    pub(crate) lock_timeout_ms: i64,
    /// `SET DEADLOCK_PRIORITY`: LOW = -5, NORMAL = 0 (the default), HIGH = 5, or -10..10.
    pub(crate) deadlock_priority: i32,
    /// When the current statement began waiting for a lock (its timeout counts from there,
    /// across the times it is woken and has to wait again).
    pub(crate) lock_wait_since: Option<std::time::Instant>,
    /// The statement that waits for a lock keeps what it changed (and so its locks) until
    /// the wait ends, as SQL Server's waiting statements hold the locks they took:
    /// undone before it runs again, or when it times out or is cancelled.
    pub(crate) suspended: Option<Suspended>,
}

/// A statement waiting for a lock with its changes kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suspended {
    /// Where the statement's change records begin in its transaction.
    pub(crate) mark: usize,
    /// The statement runs in its own autocommit transaction, ended with its undo.
    pub(crate) auto: bool,
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
            lock_timeout_ms: -1,
            deadlock_priority: 0,
            lock_wait_since: None,
            suspended: None,
        }
    }
}
