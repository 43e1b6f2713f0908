//! The lock manager: which transaction holds which lock, who waits for whom, and the
//! deadlock monitor's choice of a victim.
//!
//! Row versions stay the source of truth for row changes: a version created or deleted by an
//! open transaction is that transaction's exclusive (X) row lock, as SQL Server's writers hold
//! X key locks to their transaction's end. What versions cannot show lives here:
//! - table locks (`WITH (TABLOCK, HOLDLOCK)` S, `WITH (TABLOCKX)` X);
//! - the shared row locks REPEATABLE READ and SERIALIZABLE keep on the rows they read, held as
//!   "every version below index n" per table (a read without a seek reads the whole table; a
//!   version index never changes while any transaction is open, and an update makes a new
//!   version, so rows inserted after the read are not covered: inserts do not wait);
//! - SERIALIZABLE's key-range locks, modelled per table: a read locks the whole table's
//!   range (coarser than SQL Server's seeks, exact for scans), which blocks inserts.
//!
//! A session that must wait registers itself in `waiting`; whoever ends a transaction that
//! someone waits for wakes the waiters (the server's lock epoch), who then run their statement
//! again.

use std::collections::{HashMap, HashSet};

use crate::engine::txn::Xid;

/// A table as locks name it: (`database_id`, `object_id`).
pub(crate) type TableId = (i32, i32);

/// A table lock a transaction holds until it ends: taken by `WITH (TABLOCK, HOLDLOCK)`,
/// `WITH (TABLOCKX)` and the like, shown in `sys.dm_tran_locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableLock {
    /// Order of acquisition (a savepoint rollback releases the locks taken after it).
    pub(crate) seq: u64,
    pub(crate) xid: Xid,
    pub(crate) spid: u16,
    pub(crate) database_id: i32,
    pub(crate) object_id: i32,
    pub(crate) exclusive: bool,
}

/// A session waiting for a lock another transaction holds.
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    /// The waiting session's transaction, an autocommit statement's own too: a statement keeps
    /// what it wrote while it waits (undone when the wait ends, then run again from its
    /// start), so it can be in a wait cycle. 0 only where nothing can be held.
    pub(crate) xid: Xid,
    /// The transaction holding the lock.
    pub(crate) blocker: Xid,
    pub(crate) table: TableId,
    /// `sys.dm_tran_locks.resource_type`: `OBJECT` for table locks, `KEY` for row locks.
    pub(crate) resource_type: &'static str,
    /// `sys.dm_tran_locks.request_mode` of the request that waits.
    pub(crate) mode: &'static str,
    /// `SET DEADLOCK_PRIORITY` of the waiting session (-10 to 10, NORMAL = 0).
    pub(crate) priority: i32,
    /// How much the waiter's transaction would have to undo (rows it changed).
    pub(crate) cost: usize,
}

/// Every lock of every open transaction.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    next_seq: u64,
    /// Table locks of open transactions.
    pub(crate) tables: Vec<TableLock>,
    /// REPEATABLE READ / SERIALIZABLE shared row locks: versions below this index.
    rows: HashMap<(Xid, TableId), usize>,
    /// SERIALIZABLE key-range locks (the whole table).
    ranges: HashSet<(Xid, TableId)>,
    /// The session of each open transaction.
    owners: HashMap<Xid, u16>,
    /// Waiting requests by session id.
    pub(crate) waiting: HashMap<u16, Waiter>,
    /// Transactions the deadlock monitor chose while they waited; they are rolled back with
    /// error 1205 when they wake.
    victims: HashSet<Xid>,
}

impl Locks {
    /// Records the session a new transaction belongs to.
    pub(crate) fn own(&mut self, xid: Xid, spid: u16) {
        self.owners.insert(xid, spid);
    }

    /// The session of an open transaction.
    pub(crate) fn spid_of(&self, xid: Xid) -> Option<u16> {
        self.owners.get(&xid).copied()
    }

    /// Drops every lock of an ended transaction. True when a session waits for it (it must
    /// then be woken).
    pub(crate) fn release(&mut self, xid: Xid) -> bool {
        self.owners.remove(&xid);
        self.victims.remove(&xid);
        self.tables.retain(|l| l.xid != xid);
        self.rows.retain(|(x, _), _| *x != xid);
        self.ranges.retain(|(x, _)| *x != xid);
        self.waiting.values().any(|w| w.blocker == xid)
    }

    /// The sequence number the next lock gets (a savepoint remembers it).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Releases the table locks `xid` took at or after sequence number `seq`.
    pub(crate) fn release_tables_from(&mut self, xid: Xid, seq: u64) -> bool {
        let before = self.tables.len();
        self.tables.retain(|l| l.xid != xid || l.seq < seq);
        before != self.tables.len() && self.waiting.values().any(|w| w.blocker == xid)
    }

    /// Records a table lock (once per transaction, table and mode).
    pub(crate) fn add_table(&mut self, xid: Xid, spid: u16, table: TableId, exclusive: bool) {
        let held = self.tables.iter().any(|l| {
            l.xid == xid && (l.database_id, l.object_id) == table && l.exclusive == exclusive
        });
        if !held {
            self.tables.push(TableLock {
                seq: self.next_seq,
                xid,
                spid,
                database_id: table.0,
                object_id: table.1,
                exclusive,
            });
            self.next_seq += 1;
        }
    }

    /// Shared row locks on every version of `table` below index `below`.
    pub(crate) fn lock_rows(&mut self, xid: Xid, table: TableId, below: usize) {
        let n = self.rows.entry((xid, table)).or_default();
        *n = (*n).max(below);
    }

    /// A key-range lock over the whole table.
    pub(crate) fn lock_range(&mut self, xid: Xid, table: TableId) {
        self.ranges.insert((xid, table));
    }

    /// Another transaction's table lock that a request by `xid` must wait for: a shared
    /// request (S, IS) conflicts with X; an exclusive or intent-exclusive one (X, IX) with any.
    pub(crate) fn table_conflict(&self, xid: Xid, table: TableId, exclusive: bool) -> Option<Xid> {
        self.tables
            .iter()
            .find(|l| {
                l.xid != xid && (l.database_id, l.object_id) == table && (exclusive || l.exclusive)
            })
            .map(|l| l.xid)
    }

    /// Another transaction's shared lock on version `idx` of `table`.
    pub(crate) fn row_conflict(&self, xid: Xid, table: TableId, idx: usize) -> Option<Xid> {
        self.rows
            .iter()
            .find(|((x, t), below)| *x != xid && *t == table && idx < **below)
            .map(|((x, _), _)| *x)
    }

    /// Another transaction's key-range lock on `table` (blocks inserts).
    pub(crate) fn range_conflict(&self, xid: Xid, table: TableId) -> Option<Xid> {
        self.ranges
            .iter()
            .find(|(x, t)| *x != xid && *t == table)
            .map(|(x, _)| *x)
    }

    /// Another transaction's row or range lock anywhere in `table` (what a table X lock
    /// waits for besides table locks).
    pub(crate) fn any_row_lock(&self, xid: Xid, table: TableId) -> Option<Xid> {
        self.rows
            .keys()
            .find(|(x, t)| *x != xid && *t == table)
            .map(|(x, _)| *x)
            .or_else(|| self.range_conflict(xid, table))
    }

    /// The sessions in a wait cycle that a request of session `spid` (transaction `own`)
    /// waiting for `blocker` would close, with their wait records; `None` without a cycle.
    pub(crate) fn cycle(&self, spid: u16, own: Xid, blocker: Xid) -> Option<Vec<(u16, Waiter)>> {
        if own == 0 {
            return None;
        }
        let mut path = Vec::new();
        let mut at = blocker;
        // Each session waits for at most one transaction, so the walk is a chain.
        for _ in 0..=self.waiting.len() {
            if at == own {
                return Some(path);
            }
            let s = self.spid_of(at)?;
            if s == spid {
                return None;
            }
            let w = self.waiting.get(&s)?;
            path.push((s, w.clone()));
            at = w.blocker;
        }
        None
    }

    /// Marks a waiting transaction as the deadlock victim.
    pub(crate) fn choose_victim(&mut self, xid: Xid) {
        self.victims.insert(xid);
    }

    /// Whether `xid` was chosen as a deadlock victim (and forgets it).
    pub(crate) fn take_victim(&mut self, xid: Xid) -> bool {
        self.victims.remove(&xid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_table_locks_are_compatible_and_exclusive_ones_are_not() {
        let mut l = Locks::default();
        l.add_table(1, 51, (5, 7), false);
        assert_eq!(l.table_conflict(2, (5, 7), false), None);
        assert_eq!(l.table_conflict(2, (5, 7), true), Some(1));
        assert_eq!(
            l.table_conflict(1, (5, 7), true),
            None,
            "own locks never block"
        );
        l.add_table(3, 52, (5, 8), true);
        assert_eq!(l.table_conflict(2, (5, 8), false), Some(3));
    }

    #[test]
    fn row_locks_cover_versions_read_and_not_later_ones() {
        let mut l = Locks::default();
        l.lock_rows(1, (5, 7), 10);
        assert_eq!(l.row_conflict(2, (5, 7), 9), Some(1));
        assert_eq!(l.row_conflict(2, (5, 7), 10), None);
        assert!(!l.release(1));
        assert_eq!(l.row_conflict(2, (5, 7), 9), None);
    }

    #[test]
    fn a_wait_for_a_waiter_of_ours_is_a_cycle() {
        let mut l = Locks::default();
        l.own(1, 51);
        l.own(2, 52);
        let w = Waiter {
            xid: 2,
            blocker: 1,
            table: (5, 7),
            resource_type: "KEY",
            mode: "X",
            priority: 0,
            cost: 1,
        };
        l.waiting.insert(52, w);
        let c = l
            .cycle(51, 1, 2)
            .map(|c| c.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        assert_eq!(c, Some(vec![52]));
        assert!(
            l.cycle(51, 1, 3).is_none(),
            "a transaction nobody owns ends the chain"
        );
    }
}
