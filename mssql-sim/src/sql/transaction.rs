//! Transaction control: BEGIN/SAVE/COMMIT/ROLLBACK, Transaction Manager requests, the
//! autocommit transaction of a statement, statement-level undo, and the read view and
//! SNAPSHOT checks a transaction's statements use.

use std::collections::HashMap;

use crate::cdc::job;
use crate::engine::catalog::now;
use crate::engine::txn::{Isolation, Txn, View};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::out::{Env, Out};
use crate::sql::session::Undo;

static NEXT_DESCRIPTOR: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1000);

impl Exec<'_> {
    pub(crate) fn begin_internal(&mut self, explicit: bool) {
        let xid = self.eng.txns.begin();
        self.eng.locks.own(xid, self.sess.spid);
        let descriptor = NEXT_DESCRIPTOR.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sess.txn = Some(Txn {
            xid,
            explicit,
            snapshot: None,
            started_as: self.sess.isolation,
            descriptor,
            begin_time: now(),
            changes: Vec::new(),
            command_id: 0,
            begin_lsn: HashMap::new(),
            savepoint_lsn: HashMap::new(),
            last_lsn: HashMap::new(),
            ddl_undo: Vec::new(),
        });
    }

    pub(crate) fn begin_tran(&mut self) -> SqlResult<()> {
        match self.sess.txn.as_mut() {
            Some(t) => {
                // nested BEGIN TRAN only bumps @@TRANCOUNT in SQL Server; modelled as one level
                t.explicit = true;
            }
            None => {
                self.begin_internal(true);
                let d = self.sess.txn.as_ref().map(|t| t.descriptor).unwrap_or(0);
                self.out.push(Out::Env(Env::Begin(d)));
            }
        }
        self.done(None);
        Ok(())
    }

    /// `SAVE TRANSACTION name`: writes a savepoint record to the current database's log (and
    /// the transaction's begin record first if it has none there yet), as SQL Server does;
    /// outside a transaction it is error 628.
    pub(crate) fn save_tran(&mut self, _name: &str) -> SqlResult<()> {
        if !self.sess.txn.as_ref().is_some_and(|t| t.explicit) {
            return Err(SqlError::new(
                628,
                "Cannot issue SAVE TRANSACTION when there is no active transaction.",
            ));
        }
        let db = self.sess.db.clone();
        let d = self.eng.db_mut(&db)?;
        let begun = self
            .sess
            .txn
            .as_ref()
            .is_some_and(|t| t.begin_lsn.contains_key(&db));
        let begin = (!begun).then(|| d.log.next());
        let lsn = d.log.next();
        if let Some(t) = self.sess.txn.as_mut() {
            if let Some(begin) = begin {
                t.begin_lsn.insert(db.clone(), begin);
            }
            t.savepoint_lsn.insert(db.clone(), lsn);
            t.last_lsn.insert(db, lsn);
        }
        self.remember_savepoint(_name);
        Ok(())
    }

    pub(crate) fn commit_tran(&mut self) -> SqlResult<()> {
        match &self.sess.txn {
            Some(t) if t.explicit => {
                let d = t.descriptor;
                self.commit_internal();
                self.out.push(Out::Env(Env::Commit(d)));
                self.done(None);
                Ok(())
            }
            _ => Err(SqlError::new(
                3902,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
        }
    }

    pub(crate) fn rollback_tran(&mut self) -> SqlResult<()> {
        match &self.sess.txn {
            Some(t) if t.explicit => {
                let d = t.descriptor;
                self.abort_internal();
                self.out.push(Out::Env(Env::Rollback(d)));
                self.done(None);
                Ok(())
            }
            _ => Err(SqlError::new(
                3903,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )),
        }
    }

    pub(crate) fn commit_internal(&mut self) {
        let Some(txn) = self.sess.txn.take() else {
            return;
        };
        let seq = self.eng.txns.commit(txn.xid);
        self.release_locks(txn.xid);
        job::log_commit(self.eng, self.cdc, txn);
        // Now and then, when no open transaction can need old row versions, drop them.
        if seq.is_multiple_of(512) && !self.eng.txns.any_active() {
            let tt = &self.eng.txns;
            for db in self.eng.dbs.values_mut() {
                for t in db.tables.values_mut() {
                    t.vacuum(tt);
                }
            }
        }
    }

    pub(crate) fn abort_internal(&mut self) {
        if let Some(txn) = self.sess.txn.take() {
            self.eng.txns.abort(txn.xid);
            self.undo_ddl(txn.ddl_undo);
            self.release_locks(txn.xid);
        }
    }

    /// A Transaction Manager request (MS-TDS 2.2.6.9): begin (with an isolation level),
    /// commit or roll back, as tiberius's `begin_transaction` & co. send them.
    pub(crate) fn run_tm(&mut self, payload: &[u8]) {
        let r = (|| -> SqlResult<()> {
            let mut rd = crate::tds::types::Reader::new(payload);
            // Not SQL Server's: a server answers a malformed TDS packet with a protocol
            // error and drops the connection; number and text here are the simulator's own.
            let bad = |_| SqlError::new(102, "Malformed transaction manager request.");
            crate::tds::rpc::skip_all_headers(&mut rd).map_err(bad)?;
            match rd.u16().map_err(bad)? {
                5 => {
                    match rd.u8().map_err(bad)? {
                        // MS-TDS 2.2.6.9 TM_BEGIN_XACT isolation levels.
                        0 => {}
                        1 => self.sess.isolation = Isolation::ReadUncommitted,
                        2 => self.sess.isolation = Isolation::ReadCommitted,
                        3 => self.sess.isolation = Isolation::RepeatableRead,
                        4 => self.sess.isolation = Isolation::Serializable,
                        _ => self.sess.isolation = Isolation::Snapshot,
                    }
                    self.begin_tran()
                }
                t @ (7 | 8) => {
                    let _name = rd.b_varchar().map_err(bad)?;
                    let begin_again = rd.u8().unwrap_or(0) & 1 == 1;
                    if t == 7 {
                        self.commit_tran()?
                    } else {
                        self.rollback_tran()?
                    }
                    if begin_again {
                        self.begin_tran()?;
                    }
                    Ok(())
                }
                other => Err(SqlError::unsupported(format!(
                    "transaction manager request type {other}"
                ))),
            }
        })();
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Ends the session's transaction when the connection goes away.
    pub(crate) fn abort_open(&mut self) {
        self.eng.locks.waiting.remove(&self.sess.spid);
        self.sess.lock_wait_since = None;
        // A waiting statement's changes go with its transaction.
        self.sess.suspended = None;
        self.abort_internal();
    }

    pub(crate) fn undo_statement(&mut self, mark: usize) {
        let undo = std::mem::take(&mut self.sess.undo);
        for u in undo.into_iter().rev() {
            match u {
                Undo::Inserted { db, table, idx } => {
                    if let Some(v) = self
                        .eng
                        .dbs
                        .get_mut(&db)
                        .and_then(|d| d.tables.get_mut(&table))
                        .and_then(|t| t.versions.get_mut(idx))
                    {
                        v.xmin = u64::MAX; // an id that is never committed
                    }
                }
                Undo::Deleted { db, table, idx } => {
                    if let Some(v) = self
                        .eng
                        .dbs
                        .get_mut(&db)
                        .and_then(|d| d.tables.get_mut(&table))
                        .and_then(|t| t.versions.get_mut(idx))
                    {
                        v.xmax = 0;
                    }
                }
            }
        }
        if let Some(t) = self.sess.txn.as_mut() {
            t.changes.truncate(mark);
        }
    }

    /// The view a read in the current statement uses.
    pub(crate) fn view(&mut self) -> View {
        let latest = self.eng.txns.latest();
        // Only SNAPSHOT reads one version of the database as of its first read; REPEATABLE
        // READ and SERIALIZABLE read the latest committed rows and keep them with locks
        // (sql/locking.rs), so rows others insert meanwhile appear (phantoms) under the first.
        let snapshot = self.sess.isolation == Isolation::Snapshot;
        match self.sess.txn.as_mut() {
            Some(t) => {
                let as_of = if snapshot && t.explicit {
                    Some(*t.snapshot.get_or_insert(latest))
                } else {
                    None
                };
                View {
                    own: t.xid,
                    as_of,
                    dirty: false,
                }
            }
            None => View {
                own: 0,
                as_of: None,
                dirty: false,
            },
        }
    }

    pub(crate) fn xid(&self) -> u64 {
        self.sess.txn.as_ref().map(|t| t.xid).unwrap_or(0)
    }

    /// Whether a statement of the session may touch database `db`'s tables under the session's
    /// isolation level. Under SNAPSHOT: error 3951 when the transaction began under another
    /// level, 3952 when the database does not allow snapshot isolation. Texts: SQL Server's
    /// sys.messages (language 1033) for 3951 and 3952, `%.*ls` = the database name.
    pub(crate) fn snapshot_access(&self, db: &str) -> SqlResult<()> {
        if self.sess.isolation != Isolation::Snapshot {
            return Ok(());
        }
        let d = self.eng.db(db)?;
        if self
            .sess
            .txn
            .as_ref()
            .is_some_and(|t| t.started_as != Isolation::Snapshot)
        {
            return Err(SqlError::new(
                3951,
                format!(
                    "Transaction failed in database '{}' because the statement was run under snapshot isolation but the transaction did not start in snapshot isolation. You cannot change the isolation level of the transaction to snapshot after the transaction has started unless the transaction was originally started under snapshot isolation level.",
                    d.name
                ),
            ));
        }
        if !d.allow_snapshot_isolation {
            return Err(SqlError::new(
                3952,
                format!(
                    "Snapshot isolation transaction failed accessing database '{}' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.",
                    d.name
                ),
            ));
        }
        Ok(())
    }
}
