//! UPDATE: in place, or as a delete plus insert when it changes the primary key (logged
//! as SQL Server's deferred update so CDC sees the same operations), with write-conflict checks.

use sqlparser::ast::{AssignmentTarget, TableWithJoins, UpdateTableFromKind};

use super::{computed_not_writable, unique_violation};
use crate::engine::catalog::TableRef;
use crate::engine::catalog::key;
use crate::engine::txn::Change;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::session::Undo;
use crate::value::{SqlType, Value, coerce};

impl Exec<'_> {
    /// The insert half of a single-row primary-key move, logged right after its delete: at
    /// the delete's `__$seqval`, with the next `__$command_id` (ground truth C3).
    pub(super) fn log_key_move_insert(
        &mut self,
        db: &str,
        object_id: i32,
        columns: Vec<String>,
        after: Vec<Value>,
    ) {
        let Some(t) = self.sess.txn.as_mut() else {
            return;
        };
        let Some((lsn, command_id)) = t.changes.last().map(|d| (d.lsn, d.command_id + 1)) else {
            return;
        };
        // The statement after this one gets a command id of its own.
        t.command_id = t.command_id.max(command_id);
        t.changes.push(Change {
            db: db.to_string(),
            object_id,
            op: 2,
            lsn,
            command_id,
            columns,
            before: None,
            after: Some(after),
        });
    }

    pub(crate) fn update(&mut self, u: sqlparser::ast::Update) -> SqlResult<()> {
        if !u.table.joins.is_empty() {
            return Err(SqlError::unsupported(
                "UPDATE with JOIN before SET (use FROM)",
            ));
        }
        if u.output.is_some() || u.returning.is_some() {
            return Err(SqlError::unsupported("UPDATE ... OUTPUT"));
        }
        let from: Vec<TableWithJoins> = match &u.from {
            Some(UpdateTableFromKind::AfterSet(v)) | Some(UpdateTableFromKind::BeforeSet(v)) => {
                v.clone()
            }
            None => vec![],
        };
        let (r, eval_cols, rows) = self.dml_rows(&u.table.relation, &from, u.selection.as_ref())?;
        let (cols, pk, object_id, tracked, unique_cols) = {
            let t = self.table(&r)?;
            let db = self.eng.db(&r.db)?;
            let unique_cols: Vec<usize> = t
                .indexes
                .iter()
                .filter(|ix| ix.unique)
                .flat_map(|ix| ix.columns.iter().copied())
                .collect();
            (
                crate::sql::rel::table_cols(t, &t.name),
                t.pk.clone(),
                t.object_id,
                self.cdc.tracks(&db.name, t.object_id),
                unique_cols,
            )
        };
        // SQL Server runs an UPDATE of several rows that changes a uniquely indexed column as
        // a "deferred" (split) update: each such row is logged as a delete and an insert at
        // one __$seqval, every delete before every insert in command order (ground truth C4).
        // A single row's update stays 3/4 (not recorded; unverified).
        let several_rows = rows.len() > 1;
        let mut deferred = Vec::new();
        let mut targets = Vec::new();
        for a in &u.assignments {
            let n = match &a.target {
                AssignmentTarget::ColumnName(n) => {
                    name_parts(n).last().cloned().unwrap_or_default()
                }
                AssignmentTarget::Tuple(_) => {
                    return Err(SqlError::unsupported("tuple assignment"));
                }
            };
            let idx = self
                .table(&r)?
                .column_index(&n)
                .ok_or_else(|| SqlError::invalid_column(&n))?;
            if self.table(&r)?.columns[idx].computed.is_some() {
                return Err(computed_not_writable(&n));
            }
            if self.table(&r)?.columns[idx].identity.is_some() {
                return Err(SqlError::new(
                    8102,
                    format!("Cannot update identity column '{n}'."),
                ));
            }
            // The type the value is written as: a sql_variant column keeps it as the base
            // type, a character column gets a date/time value's default text for it (as
            // INSERT does: insert::written_value).
            let written = self.written_type(&a.value, &eval_cols);
            let col_ty = self.table(&r)?.columns[idx].ty;
            targets.push((idx, &a.value, written, col_ty));
        }
        let mut n = 0u64;
        let mut pk_changes = Vec::new();
        for (idx, eval_row) in rows {
            let old = match self.table(&r)?.versions.get(idx) {
                Some(v) => v.values.clone(),
                None => continue,
            };
            let mut new = old.clone();
            for (c, e, written, col_ty) in &targets {
                let v = self.eval(e, &eval_cols, &eval_row, None)?;
                new[*c] =
                    super::insert::written_value(v, *written, Some(*col_ty)).map_err(|e| {
                        SqlError {
                            aborts_batch: false,
                            ..e
                        }
                    })?;
            }
            // Computed columns follow the new values (coerced first, as they will be stored).
            {
                let t = self.table(&r)?;
                for (c, ..) in &targets {
                    if let Some(col) = t.columns.get(*c) {
                        new[*c] = coerce(std::mem::replace(&mut new[*c], Value::Null), &col.ty)
                            .map_err(|e| SqlError {
                                aborts_batch: false,
                                ..e
                            })?;
                    }
                }
            }
            self.fill_computed(&r, &mut new)?;
            self.check_lob_repl_size(&r, &new)?;
            self.delete_version(&r, idx)?;
            // re-insert the new version through the normal checks
            let col_names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
            let key_changed = pk.iter().any(|&p| old[p].key() != new[p].key());
            let mut explicit = vec![true; new.len()];
            {
                let t = self.table(&r)?;
                for (i, c) in t.columns.iter().enumerate() {
                    if c.identity.is_some() || matches!(c.ty, SqlType::RowVersion) {
                        explicit[i] = false;
                    }
                }
            }
            let fixed_identity: Vec<(usize, Value)> = {
                let t = self.table(&r)?;
                t.columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.identity.is_some())
                    .map(|(i, _)| (i, old[i].clone()))
                    .collect()
            };
            self.insert_plain(&r, new.clone(), &explicit, &fixed_identity)?;
            if tracked {
                let after = self.latest_values(&r)?;
                let unique_changed = unique_cols.iter().any(|&c| old[c].key() != after[c].key());
                if key_changed {
                    pk_changes.push((old, after));
                } else if several_rows && unique_changed {
                    deferred.push((old, after));
                } else {
                    self.log_change(&r.db, object_id, 3, col_names, Some(old), Some(after))?;
                }
            } else {
                self.log_write(&r.db)?;
            }
            n += 1;
        }
        // Key-changing updates are logged as delete + insert, as SQL Server's CDC shows them
        // (ground truth C1). A single row's move shares its __$seqval between the two, the
        // insert taking the next __$command_id (C3; that the delete has the lower one follows
        // from C4: ordering by command id puts every delete before its insert); a move of
        // several rows gives every delete and insert its own seqval (C3's bulk move).
        let col_names: Vec<String> = cols.iter().map(|c| c.name.clone()).collect();
        let single_move = pk_changes.len() == 1;
        for (old, _) in &pk_changes {
            self.log_change(
                &r.db,
                object_id,
                1,
                col_names.clone(),
                Some(old.clone()),
                None,
            )?;
        }
        for (_, new) in pk_changes {
            if single_move {
                self.log_key_move_insert(&r.db, object_id, col_names.clone(), new);
            } else {
                self.log_change(&r.db, object_id, 2, col_names.clone(), None, Some(new))?;
            }
        }
        if !deferred.is_empty() {
            self.log_deferred_update(&r.db, object_id, col_names, deferred)?;
        }
        self.sess.rowcount = n;
        self.done(Some(n));
        Ok(())
    }

    /// Logs a deferred update's rows (ground truth C4): per row a delete (op 1) of the old
    /// image and an insert (op 2) of the new one sharing a log record (`__$seqval`), the
    /// deletes at the statement's `__$command_id` and the inserts at the next one.
    pub(super) fn log_deferred_update(
        &mut self,
        db: &str,
        object_id: i32,
        columns: Vec<String>,
        rows: Vec<(Vec<Value>, Vec<Value>)>,
    ) -> SqlResult<()> {
        let d = self.eng.db_mut(db)?;
        let lsns: Vec<_> = rows.iter().map(|_| d.log.next()).collect();
        let Some(t) = self.sess.txn.as_mut() else {
            return Ok(());
        };
        let command_id = t.command_id;
        if let (Some(first), Some(last)) = (lsns.first(), lsns.last()) {
            t.begin_lsn.entry(db.to_string()).or_insert(*first);
            t.last_lsn.insert(db.to_string(), *last);
        }
        for ((old, new), lsn) in rows.into_iter().zip(lsns) {
            for (op, command_id, before, after) in [
                (1, command_id, Some(old), None),
                (2, command_id + 1, None, Some(new)),
            ] {
                t.changes.push(Change {
                    db: db.to_string(),
                    object_id,
                    op,
                    lsn,
                    command_id,
                    columns: columns.clone(),
                    before,
                    after,
                });
            }
        }
        // The statement after this one gets a command id of its own.
        t.command_id = t.command_id.max(command_id + 1);
        Ok(())
    }

    pub(crate) fn latest_values(&self, r: &TableRef) -> SqlResult<Vec<Value>> {
        let t = self.table(r)?;
        Ok(t.versions
            .last()
            .map(|v| v.values.clone())
            .unwrap_or_default())
    }

    /// Inserts a new version for an UPDATE (no CDC logging: the caller logs 3/4).
    pub(crate) fn insert_plain(
        &mut self,
        r: &TableRef,
        values: Vec<Value>,
        explicit: &[bool],
        identity: &[(usize, Value)],
    ) -> SqlResult<()> {
        let own = self.xid();
        let k = key(&r.schema, &r.name);
        self.eng.rowversion += 1;
        let rv = self.eng.rowversion;
        let db = self
            .eng
            .dbs
            .get_mut(&r.db)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let dbname = db.name.clone();
        let t = db
            .tables
            .get_mut(&k)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let mut vals = Vec::with_capacity(values.len());
        for (i, (c, v)) in t.columns.iter().zip(values).enumerate() {
            let v = if let Some((_, idv)) = identity.iter().find(|(j, _)| *j == i) {
                idv.clone()
            } else if matches!(c.ty, SqlType::RowVersion) {
                Value::Bytes(rv.to_be_bytes().to_vec())
            } else {
                let _ = explicit;
                coerce(v, &c.ty).map_err(|e| SqlError {
                    aborts_batch: false,
                    ..e
                })?
            };
            if v.is_null() && !c.nullable {
                return Err(SqlError::new(515, format!(
                    "Cannot insert the value NULL into column '{}', table '{}.{}.{}'; column does not allow nulls. UPDATE fails.",
                    c.name, dbname, t.schema, t.name
                )).state(2).statement_only());
            }
            vals.push(v);
        }
        if let Some(pk) = t.pk_key(&vals)
            && t.key_taken(&self.eng.txns, &pk, own)
        {
            let keyv: Vec<String> = t.pk.iter().map(|&i| vals[i].to_string()).collect();
            return Err(SqlError::new(2627, format!(
                    "Violation of PRIMARY KEY constraint '{}'. Cannot insert duplicate key in object '{}.{}'. The duplicate key value is ({}).",
                    t.pk_name.clone().unwrap_or_default(), t.schema, t.name, keyv.join(", ")
                )).class(14).statement_only());
        }
        if let Some((ix, shown)) = t.unique_clash(&self.eng.txns, &vals, own) {
            return Err(unique_violation(ix, &t.schema, &t.name, &shown));
        }
        let idx = t.versions.len();
        t.push(vals, own);
        self.sess.undo.push(Undo::Inserted {
            db: r.db.clone(),
            table: k,
            idx,
        });
        Ok(())
    }
}
