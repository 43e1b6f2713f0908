//! Per-connection state: current database, isolation level, open transaction, variables.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::cdc::lsn::Lsn;
use crate::engine::txn::Xid;
use crate::value::{SqlType, Value};

/// Transaction isolation levels the engine distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    ReadCommitted,
    /// Served with one consistent view from the first read (the simulator has no lock waits,
    /// so the locks that keep SQL Server's reads repeatable are modelled by the view).
    RepeatableRead,
    /// As `RepeatableRead`.
    Serializable,
    Snapshot,
}

/// A row change made by a transaction in a CDC-enabled database, logged for the capture job.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) db: String,
    pub(crate) object_id: i32,
    /// 1 delete, 2 insert, 3/4 update (before/after)
    pub(crate) op: u8,
    pub(crate) lsn: Lsn,
    pub(crate) command_id: i32,
    pub(crate) columns: Vec<String>,
    pub(crate) before: Option<Vec<Value>>,
    pub(crate) after: Option<Vec<Value>>,
}

/// An open transaction.
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) xid: Xid,
    pub(crate) explicit: bool,
    /// SNAPSHOT: the commit sequence number reads are pinned to (set on first read).
    pub(crate) snapshot: Option<u64>,
    /// The isolation level in force when the transaction began (`BEGIN TRANSACTION`, or the
    /// statement of an autocommit transaction). A statement run under SNAPSHOT in a
    /// transaction that began under another level fails with error 3951, as SQL Server's does
    /// even before the transaction read anything (the 3951 transcript in Kuznetsov's "Don't
    /// swap horses in midstream", sqlblog.com 2010: REPEATABLE READ, BEGIN TRAN, then SNAPSHOT).
    pub(crate) started_as: Isolation,
    pub(crate) descriptor: u64,
    pub(crate) begin_time: NaiveDateTime,
    pub(crate) changes: Vec<Change>,
    pub(crate) command_id: i32,
    /// First LSN used per database (the transaction's begin LSN there).
    pub(crate) begin_lsn: HashMap<String, Lsn>,
    /// LSN of the latest `SAVE TRANSACTION` record per database
    /// (`sys.dm_tran_database_transactions.database_transaction_most_recent_savepoint_lsn`).
    pub(crate) savepoint_lsn: HashMap<String, Lsn>,
    /// LSN of the transaction's last log record per database.
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
    pub(crate) savepoints: Vec<crate::sql::savepoints::Savepoint>,
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
