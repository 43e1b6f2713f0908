//! Transaction ids, commit order and row-version visibility (multi-version concurrency, so
//! SNAPSHOT readers keep one consistent view while writers commit).

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::engine::log::Lsn;
use crate::value::Value;

/// A transaction id. Id 0 marks rows written by the system, committed before anything else.
pub(crate) type Xid = u64;

/// Transaction isolation levels the engine distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Reads without shared locks and without waiting for anyone's (`NOLOCK`).
    ReadUncommitted,
    ReadCommitted,
    /// Reads the latest committed rows and keeps shared locks on them to the end of the
    /// transaction (engine/locks.rs).
    RepeatableRead,
    /// As `RepeatableRead`, plus key-range locks that keep others' inserts out.
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
    /// Catalog changes to take back if the transaction rolls back, oldest first.
    pub(crate) ddl_undo: Vec<DdlUndo>,
}

/// A catalog change a rollback takes back (SQL Server's DDL is transactional).
#[derive(Debug, Clone)]
pub(crate) enum DdlUndo {
    /// `CREATE TYPE` made this alias type in database `db`.
    TypeCreated { db: String, user_type_id: i32 },
    /// `DROP TYPE` removed this alias type from database `db`.
    TypeDropped {
        db: String,
        alias: crate::engine::alias_type::AliasType,
    },
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxStatus {
    Active,
    /// Committed with this commit sequence number.
    Committed(u64),
    Aborted,
}

/// The table of all transactions the engine has seen.
#[derive(Debug, Default)]
pub(crate) struct TxnTable {
    next_xid: Xid,
    commit_seq: u64,
    status: HashMap<Xid, TxStatus>,
    active: usize,
}

impl TxnTable {
    pub(crate) fn begin(&mut self) -> Xid {
        self.next_xid += 1;
        self.status.insert(self.next_xid, TxStatus::Active);
        self.active += 1;
        self.next_xid
    }

    pub(crate) fn commit(&mut self, xid: Xid) -> u64 {
        self.commit_seq += 1;
        self.status
            .insert(xid, TxStatus::Committed(self.commit_seq));
        self.commit_seq
    }

    pub(crate) fn abort(&mut self, xid: Xid) {
        if self.status.insert(xid, TxStatus::Aborted) == Some(TxStatus::Active) {
            self.active -= 1;
        }
    }

    /// Whether any transaction is still open (old row versions may then still be needed).
    pub(crate) fn any_active(&self) -> bool {
        self.active > 0
    }

    /// The latest commit sequence number (a SNAPSHOT transaction reads as of it).
    pub(crate) fn latest(&self) -> u64 {
        self.commit_seq
    }

    pub(crate) fn status(&self, xid: Xid) -> TxStatus {
        if xid == 0 {
            return TxStatus::Committed(0);
        }
        self.status.get(&xid).copied().unwrap_or(TxStatus::Aborted)
    }
}

/// What one statement may see: its own transaction's writes plus committed ones, either
/// the latest (READ COMMITTED) or as of a commit sequence number (SNAPSHOT); a dirty view
/// (`NOLOCK`, READ UNCOMMITTED) also sees other open transactions' writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub(crate) own: Xid,
    pub(crate) as_of: Option<u64>,
    pub(crate) dirty: bool,
}

impl View {
    pub(crate) fn sees(&self, tt: &TxnTable, xid: Xid) -> bool {
        if xid == self.own {
            return true;
        }
        match tt.status(xid) {
            TxStatus::Committed(seq) => self.as_of.is_none_or(|a| seq <= a),
            TxStatus::Active => self.dirty,
            TxStatus::Aborted => false,
        }
    }

    /// Whether a row version (created by `xmin`, deleted by `xmax`, 0 = not deleted) is visible.
    pub(crate) fn visible(&self, tt: &TxnTable, xmin: Xid, xmax: Xid) -> bool {
        self.sees(tt, xmin) && !(xmax != 0 && self.sees(tt, xmax))
    }
}
