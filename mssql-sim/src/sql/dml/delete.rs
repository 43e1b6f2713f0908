//! DELETE: removing the matched row versions with their undo and CDC records.

use sqlparser::ast::{FromTable, TableFactor, TableWithJoins};

use crate::engine::catalog::TableRef;
use crate::engine::catalog::key;
use crate::engine::txn::TxStatus;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::session::Undo;

impl Exec<'_> {
    /// Marks a version deleted by the current transaction, checking for write conflicts.
    pub(crate) fn delete_version(&mut self, r: &TableRef, idx: usize) -> SqlResult<()> {
        self.lock_row_write(r, idx)?;
        let own = self.xid();
        let snapshot = self.sess.txn.as_ref().and_then(|t| t.snapshot);
        let tt = &self.eng.txns;
        let db = self
            .eng
            .dbs
            .get_mut(&r.db)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let dbname = db.name.clone();
        let t = db
            .table_mut(&r.schema, &r.name)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let v = t
            .versions
            .get_mut(idx)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        if v.xmax != 0 && v.xmax != own {
            match tt.status(v.xmax) {
                // lock_row_write waited for it: only the session's own transaction is open.
                TxStatus::Active => {}
                TxStatus::Committed(seq) if snapshot.is_some_and(|s| seq > s) => {
                    return Err(SqlError::new(3960, format!("Snapshot isolation transaction aborted due to update conflict. You cannot use snapshot isolation to access table '{}.{}' directly or indirectly in database '{}' to update, delete, or insert the row that has been modified or deleted by another transaction. Retry the transaction or change the isolation level for the update/delete statement.", t.schema, t.name, dbname)).state(2));
                }
                _ => {}
            }
        }
        v.xmax = own;
        self.sess.undo.push(Undo::Deleted {
            db: r.db.clone(),
            table: key(&r.schema, &r.name),
            idx,
        });
        Ok(())
    }

    pub(crate) fn delete(&mut self, d: sqlparser::ast::Delete) -> SqlResult<()> {
        if d.output.is_some() || d.returning.is_some() {
            return Err(SqlError::unsupported("DELETE ... OUTPUT"));
        }
        let from = match &d.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        let (target, from_list): (TableFactor, Vec<TableWithJoins>) =
            match (d.tables.as_slice(), from.as_slice()) {
                ([], [t]) if t.joins.is_empty() => (t.relation.clone(), vec![]),
                // DELETE t FROM dbo.t t JOIN dbo.s s ON ...
                ([name], list) => (
                    TableFactor::Table {
                        name: name.clone(),
                        alias: None,
                        args: None,
                        with_hints: vec![],
                        version: None,
                        with_ordinality: false,
                        partitions: vec![],
                        json_path: None,
                        sample: None,
                        index_directives: vec![],
                        inheritance: None,
                    },
                    list.to_vec(),
                ),
                _ => return Err(SqlError::unsupported("DELETE from several tables")),
            };
        let (r, _, rows) = self.dml_rows(&target, &from_list, d.selection.as_ref())?;
        let (col_names, object_id, tracked) = {
            let t = self.table(&r)?;
            let db = self.eng.db(&r.db)?;
            (
                t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                t.object_id,
                self.cdc.tracks(&db.name, t.object_id),
            )
        };
        let n = rows.len() as u64;
        for (idx, _) in rows {
            let old = match self.table(&r)?.versions.get(idx) {
                Some(v) => v.values.clone(),
                None => continue,
            };
            self.delete_version(&r, idx)?;
            if tracked {
                self.log_change(&r.db, object_id, 1, col_names.clone(), Some(old), None)?;
            } else {
                self.log_write(&r.db)?;
            }
        }
        self.sess.rowcount = n;
        self.done(Some(n));
        Ok(())
    }
}
