//! Transaction ids, commit order and row-version visibility (multi-version concurrency, so
//! SNAPSHOT readers keep one consistent view while writers commit).

use std::collections::HashMap;

/// A transaction id. Id 0 marks rows written by the system, committed before anything else.
pub(crate) type Xid = u64;

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

/// A table lock a transaction holds until it ends: taken by `WITH (TABLOCK, HOLDLOCK)`,
/// `WITH (TABLOCKX)` and the like, shown in `sys.dm_tran_locks`. The simulator has no lock
/// waits, so a lock only shows; it blocks nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableLock {
    pub(crate) xid: Xid,
    pub(crate) spid: u16,
    pub(crate) database_id: i32,
    pub(crate) object_id: i32,
    pub(crate) exclusive: bool,
}

/// What one statement may see: its own transaction's writes plus committed ones, either
/// the latest (READ COMMITTED) or as of a commit sequence number (SNAPSHOT).
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub(crate) own: Xid,
    pub(crate) as_of: Option<u64>,
}

impl View {
    pub(crate) fn sees(&self, tt: &TxnTable, xid: Xid) -> bool {
        if xid == self.own {
            return true;
        }
        match tt.status(xid) {
            TxStatus::Committed(seq) => self.as_of.is_none_or(|a| seq <= a),
            _ => false,
        }
    }

    /// Whether a row version (created by `xmin`, deleted by `xmax`, 0 = not deleted) is visible.
    pub(crate) fn visible(&self, tt: &TxnTable, xmin: Xid, xmax: Xid) -> bool {
        self.sees(tt, xmin) && !(xmax != 0 && self.sees(tt, xmax))
    }
}
