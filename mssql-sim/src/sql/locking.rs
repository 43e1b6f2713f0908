//! Lock waits, as SQL Server's statements wait: a statement that needs a lock another open
//! transaction holds registers a wait (engine/locks.rs) and stops, keeping what it changed so
//! far (the locks it took: an autocommit statement's too, so it can be in a deadlock), and
//! the connection waits, with the engine unlocked (as for `WAITFOR DELAY`), until a lock is
//! released; then the statement's changes are undone and it runs again from its start (the
//! rows it held were nobody else's meanwhile, so the outcome is that of going on). An
//! UPDATE/DELETE scan changes the rows before the first row another transaction holds, then
//! waits there. The wait ends otherwise (the statement's changes undone) with
//! - error 1222 when `SET LOCK_TIMEOUT` expires (the statement fails, the transaction stays
//!   open and the batch goes on, as SQL Server's lock time-out does);
//! - error 1205 for the deadlock monitor's victim, whose transaction is rolled back. The
//!   victim of a wait cycle is the transaction with the lowest `DEADLOCK_PRIORITY`, among
//!   equals the one that changed the fewest rows (cheapest to roll back, as SQL Server
//!   chooses), among equals the session whose request closed the cycle;
//! - the client's attention (cancel), which ends the statement and leaves the transaction
//!   open.
//!
//! Which reads take which locks (SQL Server's locking read committed; "Transaction locking
//! and row versioning guide"): SNAPSHOT readers and NOLOCK / READ UNCOMMITTED ones take none
//! and wait for nobody; nor do READ COMMITTED readers in a database with
//! `READ_COMMITTED_SNAPSHOT ON` (they read the last committed version). Otherwise (SQL
//! Server's default for a new database) READ COMMITTED readers wait for table X locks
//! (`TABLOCKX`) and for rows other open transactions changed. REPEATABLE READ and
//! SERIALIZABLE readers wait for the same and keep shared locks on what they read until their
//! transaction ends; SERIALIZABLE's range locks also keep inserts out. A READ COMMITTED
//! SELECT whose WHERE pins every primary-key column to a constant or variable is a seek and
//! waits only for that row; any other read is modelled as a scan of the whole table (so
//! REPEATABLE READ and SERIALIZABLE lock every row of it, and a seek by another index or a
//! key range waits where SQL Server, seeking, might not). Writers wait for table locks, for those row and range locks
//! and for rows other open transactions changed.
//!
//! Statements run in-process by [`crate::Simulator::run_script`] cannot wait (the script runs
//! synchronously, possibly on the thread that serves the lock's holder): where they would
//! wait they fail at once with 1222, as under `SET LOCK_TIMEOUT 0`.
//!
//! - this file: which statement waits for what, the wait's registration and its ends.
//! - `seek`: whether a search is a primary-key seek or a scan.
//! - `dmv`: `sys.dm_tran_locks` and `sys.dm_exec_requests`.

mod dmv;
mod seek;

use sqlparser::ast::Expr;

use crate::engine::catalog::TableRef;
use crate::engine::locks::{TableId, Waiter};
use crate::engine::txn::{Isolation, TxStatus, Xid};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::out::{Env, Out};

/// The error number of the internal signal "this statement waits for a lock"; it never
/// reaches a client.
pub(crate) const LOCK_WAIT: i32 = -1222;

/// Error 1222, class 16: the statement waited longer than `SET LOCK_TIMEOUT` allows. It ends
/// the statement only (SQL Server's SET LOCK_TIMEOUT page: the transaction is not rolled
/// back). State 51: what public transcripts show for an UPDATE waiting on another session's
/// row lock under `SET LOCK_TIMEOUT` ("Msg 1222, Level 16, State 51 … The statement has been
/// terminated."); other waits show other states (56 for an ALTER TABLE, 37 for a detach),
/// which the simulator does not tell apart.
pub(crate) fn lock_timeout_error() -> SqlError {
    SqlError::new(1222, "Lock request time out period exceeded.")
        .state(51)
        .statement_only()
}

/// Error 1205, class 13: chosen as the deadlock victim (sys.messages text, `%d` the
/// victim's session id, `%.*ls` the resource kind).
pub(crate) fn deadlock_error(spid: u16) -> SqlError {
    SqlError::new(
        1205,
        format!(
            "Transaction (Process ID {spid}) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction."
        ),
    )
    .state(51)
    .class(13)
}

/// The locks a read of a base table takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadLocks {
    /// None, waiting for nobody, reading versions (SNAPSHOT).
    Nothing,
    /// None, waiting for nobody, reading other open transactions' changes too (`NOLOCK`,
    /// READ UNCOMMITTED: dirty reads).
    Uncommitted,
    /// READ COMMITTED: without READ_COMMITTED_SNAPSHOT, waits for table X locks and for
    /// rows other open transactions changed; with it, reads the last committed version and
    /// waits for nobody.
    Committed,
    /// `WITH (READCOMMITTEDLOCK)`: READ COMMITTED's locking even under READ_COMMITTED_SNAPSHOT.
    CommittedLocking,
    /// Waits for changed rows too; keeps shared locks on the rows read.
    Repeatable,
    /// As `Repeatable`, plus a key-range lock over the table.
    Serializable,
}

impl Exec<'_> {
    /// The (`database_id`, `object_id`) of a table.
    fn table_id(&self, r: &TableRef) -> SqlResult<TableId> {
        Ok((self.eng.db(&r.db)?.id, self.table(r)?.object_id))
    }

    /// The locks a read with these table hints takes under the session's isolation level.
    pub(crate) fn read_locks(&self, hints: &[Expr]) -> ReadLocks {
        let named = |want: &str| {
            hints
                .iter()
                .any(|h| matches!(h, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(want)))
        };
        if named("NOLOCK") || named("READUNCOMMITTED") {
            return ReadLocks::Uncommitted;
        }
        if named("HOLDLOCK") || named("SERIALIZABLE") {
            return ReadLocks::Serializable;
        }
        if named("REPEATABLEREAD") {
            return ReadLocks::Repeatable;
        }
        if named("READCOMMITTEDLOCK") {
            return ReadLocks::CommittedLocking;
        }
        match self.sess.isolation {
            Isolation::ReadUncommitted => ReadLocks::Uncommitted,
            Isolation::Snapshot => ReadLocks::Nothing,
            Isolation::ReadCommitted => ReadLocks::Committed,
            Isolation::RepeatableRead => ReadLocks::Repeatable,
            Isolation::Serializable => ReadLocks::Serializable,
        }
    }

    /// Waits for what a read of table `r` must wait for, then takes the locks it keeps.
    pub(crate) fn lock_read(&mut self, r: &TableRef, how: ReadLocks) -> SqlResult<()> {
        let versioned = how == ReadLocks::Committed && self.eng.db(&r.db)?.read_committed_snapshot;
        if matches!(how, ReadLocks::Nothing | ReadLocks::Uncommitted) || versioned {
            return Ok(());
        }
        let own = self.xid();
        let id = self.table_id(r)?;
        if let Some(b) = self.eng.locks.table_conflict(own, id, false) {
            return Err(self.wait_for(b, id, "OBJECT", "IS"));
        }
        let writer = match self.seek.as_ref().filter(|s| {
            s.table
                == (
                    r.db.clone(),
                    crate::engine::catalog::key(&r.schema, &r.name),
                )
        }) {
            // A READ COMMITTED seek on the primary key waits only for the rows it reads
            // (REPEATABLE READ and SERIALIZABLE are modelled as scans: their locks cover the
            // table).
            Some(seek) if matches!(how, ReadLocks::Committed | ReadLocks::CommittedLocking) => {
                let tt = &self.eng.txns;
                let t = self.table(r)?;
                seek.keys.iter().find_map(|k| key_writer(tt, t, k, own))
            }
            _ => self.row_writer(r, own)?,
        };
        if let Some(b) = writer {
            return Err(self.wait_for(b, id, "KEY", "S"));
        }
        if own != 0 {
            let below = self.table(r)?.versions.len();
            self.eng.locks.lock_rows(own, id, below);
            if how == ReadLocks::Serializable {
                self.eng.locks.lock_range(own, id);
            }
        }
        Ok(())
    }

    /// `WITH (TABLOCK)` (S) or `WITH (TABLOCKX)` (X) on table `r`: waits for conflicting
    /// locks, then records the lock when it is `held` to the transaction's end.
    pub(crate) fn lock_table(
        &mut self,
        r: &TableRef,
        exclusive: bool,
        held: bool,
    ) -> SqlResult<()> {
        let own = self.xid();
        let id = self.table_id(r)?;
        let mode = if exclusive { "X" } else { "S" };
        if let Some(b) = self.eng.locks.table_conflict(own, id, exclusive) {
            return Err(self.wait_for(b, id, "OBJECT", mode));
        }
        // Others' changed rows are X key locks under IX table locks: S and X wait for them.
        if let Some(b) = self.row_writer(r, own)? {
            return Err(self.wait_for(b, id, "OBJECT", mode));
        }
        if exclusive && let Some(b) = self.eng.locks.any_row_lock(own, id) {
            return Err(self.wait_for(b, id, "OBJECT", mode));
        }
        if held && own != 0 {
            let spid = self.sess.spid;
            self.eng.locks.add_table(own, spid, id, exclusive);
        }
        Ok(())
    }

    /// Waits for what an INSERT into `r` must wait for: others' table locks and key-range
    /// locks (the intent-exclusive lock and the insert's range check).
    pub(crate) fn lock_insert(&mut self, r: &TableRef) -> SqlResult<()> {
        let own = self.xid();
        let id = self.table_id(r)?;
        if let Some(b) = self.eng.locks.table_conflict(own, id, true) {
            return Err(self.wait_for(b, id, "OBJECT", "IX"));
        }
        if let Some(b) = self.eng.locks.range_conflict(own, id) {
            return Err(self.wait_for(b, id, "KEY", "RangeI-N"));
        }
        Ok(())
    }

    /// Waits for what an UPDATE or DELETE of version `idx` of `r` must wait for: others'
    /// table locks, shared row locks on it, and another open transaction's change of it.
    pub(crate) fn lock_row_write(&mut self, r: &TableRef, idx: usize) -> SqlResult<()> {
        let own = self.xid();
        let id = self.table_id(r)?;
        if let Some(b) = self.eng.locks.table_conflict(own, id, true) {
            return Err(self.wait_for(b, id, "OBJECT", "IX"));
        }
        if let Some(b) = self.eng.locks.row_conflict(own, id, idx) {
            return Err(self.wait_for(b, id, "KEY", "X"));
        }
        let changed_by = {
            let tt = &self.eng.txns;
            self.table(r)?
                .versions
                .get(idx)
                .and_then(|v| open_other(tt, own, v.xmax))
        };
        if let Some(b) = changed_by {
            return Err(self.wait_for(b, id, "KEY", "X"));
        }
        Ok(())
    }

    /// Waits for what the search of an UPDATE or DELETE of `r` (WHERE `selection`) must wait
    /// for: others' table locks that exclude its IX, and the X locks of the rows it meets.
    /// SQL Server's search takes a U lock on every row it reads, so a seek (`selection` pins
    /// every primary-key column) meets only the sought key's rows, and waits before it
    /// changes anything; a scan meets every row in storage order — another open
    /// transaction's uncommitted insert, update or delete included, whether it matches or
    /// not — changing the rows before the first such row and then waiting there
    /// ([`Exec::scan_stop`], [`Exec::end_write_scan`]), its changes so far held. SNAPSHOT
    /// transactions read versions and wait only for the rows they change
    /// ([`Exec::lock_row_write`]).
    pub(crate) fn lock_write_search(
        &mut self,
        r: &TableRef,
        selection: Option<&Expr>,
    ) -> SqlResult<()> {
        self.scan_stop = None;
        if self.sess.isolation == Isolation::Snapshot {
            return Ok(());
        }
        let own = self.xid();
        let id = self.table_id(r)?;
        if let Some(b) = self.eng.locks.table_conflict(own, id, true) {
            return Err(self.wait_for(b, id, "OBJECT", "IX"));
        }
        match self.key_seek(r, selection) {
            Some(seek) => {
                let tt = &self.eng.txns;
                let t = self.table(r)?;
                if let Some(b) = seek.keys.iter().find_map(|k| key_writer(tt, t, k, own)) {
                    return Err(self.wait_for(b, id, "KEY", "U"));
                }
            }
            None => self.scan_stop = self.first_held_row(r, own)?.map(|(i, b)| (i, b, id)),
        }
        Ok(())
    }

    /// The end of an UPDATE or DELETE that returned `r`: when its scan stopped at a row
    /// another transaction holds, it now waits for that row (what it wrote to `out` after
    /// `out_mark` is taken back; what it changed is held while it waits).
    pub(crate) fn end_write_scan(&mut self, r: SqlResult<()>, out_mark: usize) -> SqlResult<()> {
        let stop = self.scan_stop.take();
        r?;
        match stop {
            Some((_, blocker, id)) => {
                self.out.truncate(out_mark);
                Err(self.wait_for(blocker, id, "KEY", "U"))
            }
            None => Ok(()),
        }
    }

    /// Another open transaction that created or deleted a version of `r` (its X row lock).
    fn row_writer(&self, r: &TableRef, own: Xid) -> SqlResult<Option<Xid>> {
        Ok(self.first_held_row(r, own)?.map(|(_, b)| b))
    }

    /// The first version of `r` in storage order that another open transaction created or
    /// deleted (its X row lock), and that transaction.
    fn first_held_row(&self, r: &TableRef, own: Xid) -> SqlResult<Option<(usize, Xid)>> {
        let tt = &self.eng.txns;
        Ok(self
            .table(r)?
            .versions
            .iter()
            .enumerate()
            .find_map(|(i, v)| {
                open_other(tt, own, v.xmin)
                    .or_else(|| open_other(tt, own, v.xmax))
                    .map(|b| (i, b))
            }))
    }

    /// The statement must wait for transaction `blocker`: detects a wait cycle (and picks
    /// its victim), registers the wait, and returns the error that stops the statement —
    /// the internal [`LOCK_WAIT`] signal, or 1222 / 1205 when it cannot or must not wait.
    pub(crate) fn wait_for(
        &mut self,
        blocker: Xid,
        table: TableId,
        resource_type: &'static str,
        mode: &'static str,
    ) -> SqlError {
        let spid = self.sess.spid;
        // A statement of a client's request keeps what it changed while it waits (see
        // `Session::suspended`), an autocommit one too: its transaction can be in a cycle.
        let own = match self.sess.txn.as_ref() {
            Some(t) if t.explicit || self.pausable => t.xid,
            _ => 0,
        };
        let cost = self.rows_changed(own);
        let priority = self.sess.deadlock_priority;
        if let Some(cycle) = self.eng.locks.cycle(spid, own, blocker) {
            let mut victim = (priority, cost, None);
            for (_, w) in &cycle {
                if (w.priority, w.cost) < (victim.0, victim.1) {
                    victim = (w.priority, w.cost, Some(w.xid));
                }
            }
            match victim.2 {
                None => {
                    self.deadlocked = true;
                    return deadlock_error(spid);
                }
                Some(x) => {
                    // The victim waits; waking it makes it roll back and let us through.
                    self.eng.locks.choose_victim(x);
                    self.ctl.locks_released();
                }
            }
        }
        if !self.pausable || self.sess.lock_timeout_ms == 0 {
            return lock_timeout_error();
        }
        self.eng.locks.waiting.insert(
            spid,
            Waiter {
                xid: own,
                blocker,
                table,
                resource_type,
                mode,
                priority,
                cost,
            },
        );
        self.lock_wait = Some(self.ctl.lock_epoch());
        Self::lock_wait_signal()
    }

    /// The internal error that stops a statement which waits for a lock ([`LOCK_WAIT`]).
    pub(crate) fn lock_wait_signal() -> SqlError {
        SqlError::new(LOCK_WAIT, "waiting for a lock")
    }

    /// How many row versions transaction `xid` created or deleted (what its rollback undoes;
    /// 0 for none). Counted only when a session is about to wait.
    fn rows_changed(&self, xid: Xid) -> usize {
        if xid == 0 {
            return 0;
        }
        self.eng
            .dbs
            .values()
            .flat_map(|d| d.tables.values())
            .flat_map(|t| t.versions.iter())
            .filter(|v| v.xmin == xid || v.xmax == xid)
            .count()
    }

    /// Whether the session's transaction was chosen as a deadlock victim while it waited;
    /// if so it is rolled back and the batch gets error 1205.
    pub(crate) fn rolled_back_as_victim(&mut self) -> bool {
        let Some(xid) = self.sess.txn.as_ref().map(|t| t.xid) else {
            return false;
        };
        if !self.eng.locks.take_victim(xid) {
            return false;
        }
        self.deadlock_rollback();
        self.fail(deadlock_error(self.sess.spid));
        true
    }

    /// Undoes the changes of the statement that waited (kept while it waited, see
    /// `Session::suspended`) and ends its autocommit transaction; the rows it held are free.
    pub(crate) fn undo_suspended(&mut self) {
        let Some(s) = self.sess.suspended.take() else {
            return;
        };
        self.undo_statement(s.mark);
        if s.auto && self.sess.txn.as_ref().is_some_and(|t| !t.explicit) {
            self.abort_internal();
        } else {
            self.ctl.locks_released();
        }
    }

    /// Rolls back the deadlock victim's transaction, telling the client.
    pub(crate) fn deadlock_rollback(&mut self) {
        self.deadlocked = false;
        // The whole transaction goes, the waiting statement's changes with it.
        self.sess.suspended = None;
        self.eng.locks.waiting.remove(&self.sess.spid);
        self.sess.lock_wait_since = None;
        if let Some(t) = self.sess.txn.as_ref() {
            let d = t.descriptor;
            let explicit = t.explicit;
            self.abort_internal();
            if explicit {
                self.out.push(Out::Env(Env::Rollback(d)));
            }
        }
    }

    /// The statement at the front of `segs` waited longer than `SET LOCK_TIMEOUT`: it fails
    /// with 1222 and the batch goes on.
    pub(crate) fn lock_timed_out(
        &mut self,
        segs: &mut std::collections::VecDeque<crate::sql::parse::Segment>,
    ) {
        self.eng.locks.waiting.remove(&self.sess.spid);
        self.sess.lock_wait_since = None;
        if self.rolled_back_as_victim() {
            segs.clear();
            return;
        }
        self.undo_suspended();
        segs.pop_front();
        self.fail(lock_timeout_error());
    }

    /// The client cancelled (attention) while a statement waited: the batch ends there, the
    /// transaction stays open (unless the deadlock monitor chose it meanwhile: then it is
    /// rolled back with 1205).
    pub(crate) fn lock_wait_cancelled(
        &mut self,
        segs: &mut std::collections::VecDeque<crate::sql::parse::Segment>,
    ) {
        self.eng.locks.waiting.remove(&self.sess.spid);
        self.sess.lock_wait_since = None;
        segs.clear();
        // Chosen as a deadlock victim meanwhile: rolled back now, not at its next request,
        // so the session that waits for it goes on.
        if !self.rolled_back_as_victim() {
            self.undo_suspended();
        }
    }

    /// Ends the session's transaction's locks (commit or rollback), waking whoever waits.
    pub(crate) fn release_locks(&mut self, xid: Xid) {
        if self.eng.locks.release(xid) {
            self.ctl.locks_released();
        }
    }
}

/// Another open transaction that inserted or deleted a row with primary key `key` in `t`: an
/// insert of that key waits to learn whether it commits.
pub(crate) fn key_writer(
    tt: &crate::engine::txn::TxnTable,
    t: &crate::engine::table::Table,
    key: &str,
    own: Xid,
) -> Option<Xid> {
    t.key_versions(key)
        .find_map(|v| open_other(tt, own, v.xmin).or_else(|| open_other(tt, own, v.xmax)))
}

impl Exec<'_> {}

/// `x` if it is another transaction that is still open.
fn open_other(tt: &crate::engine::txn::TxnTable, own: Xid, x: Xid) -> Option<Xid> {
    (x != 0 && x != own && tt.status(x) == TxStatus::Active).then_some(x)
}
