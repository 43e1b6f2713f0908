//! `ROLLBACK TRANSACTION savepoint_name`: back to a savepoint set with `SAVE TRANSACTION`, the
//! transaction staying open (mssql-jdbc's `Connection.rollback(Savepoint)`; Debezium uses it to
//! release the table locks of its schema snapshot).
//!
//! Table locks taken after the savepoint are released, as SQL Server releases them. Undoing row
//! changes made after a savepoint is not modelled: when the transaction wrote to any database's
//! log after the savepoint, the rollback is refused as unsupported rather than done partly.

use std::collections::HashMap;

use crate::engine::log::Lsn;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::session::Savepoint;

impl Exec<'_> {
    /// Records a savepoint just written by `SAVE TRANSACTION name`.
    pub(crate) fn remember_savepoint(&mut self, name: &str) {
        let Some(t) = self.sess.txn.as_ref() else {
            return;
        };
        let sp = Savepoint {
            name: name.to_string(),
            xid: t.xid,
            locks: self.eng.locks.next_seq(),
            last_lsn: t.last_lsn.clone(),
            ddl: t.ddl_undo.len(),
        };
        let xid = t.xid;
        self.sess.savepoints.retain(|s| s.xid == xid);
        self.sess.savepoints.push(sp);
    }

    /// `ROLLBACK TRANSACTION name`: 3903 outside a transaction, 6401 for an unknown name.
    pub(crate) fn rollback_to_savepoint(&mut self, name: &str) -> SqlResult<()> {
        let Some(t) = self.sess.txn.as_ref().filter(|t| t.explicit) else {
            return Err(SqlError::new(
                3903,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            ));
        };
        let xid = t.xid;
        let Some(at) = self
            .sess
            .savepoints
            .iter()
            .rposition(|s| s.xid == xid && s.name.eq_ignore_ascii_case(name))
        else {
            return Err(SqlError::new(
                6401,
                format!(
                    "Cannot roll back {name}. No transaction or savepoint of that name was found."
                ),
            ));
        };
        let sp = self.sess.savepoints[at].clone();
        // tempdb is left out: table variables live there, and SQL Server does not roll them back.
        let user_dbs = |m: &HashMap<String, Lsn>| {
            let mut v: Vec<(String, Lsn)> = m
                .iter()
                .filter(|(db, _)| !db.eq_ignore_ascii_case("tempdb"))
                .map(|(db, l)| (db.clone(), *l))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        if user_dbs(&t.last_lsn) != user_dbs(&sp.last_lsn) {
            return Err(SqlError::unsupported(
                "ROLLBACK TRANSACTION to a savepoint after which the transaction wrote",
            ));
        }
        // Locks taken after the savepoint go; the savepoint itself stays usable.
        // Catalog changes made after the savepoint (CREATE/DROP TYPE) are taken back.
        let later = self
            .sess
            .txn
            .as_mut()
            .map(|t| t.ddl_undo.split_off(sp.ddl.min(t.ddl_undo.len())))
            .unwrap_or_default();
        self.undo_ddl(later);
        if self.eng.locks.release_tables_from(xid, sp.locks) {
            self.ctl.locks_released();
        }
        self.sess.savepoints.truncate(at + 1);
        self.done(None);
        Ok(())
    }
}
