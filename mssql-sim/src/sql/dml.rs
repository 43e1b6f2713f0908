//! DML: INSERT, UPDATE (including primary-key updates), DELETE, with write-conflict checks,
//! statement-level undo records and the change records CDC captures.

use sqlparser::ast::{
    AssignmentTarget, Expr, FromTable, SetExpr, TableFactor, TableObject, TableWithJoins,
    UpdateTableFromKind,
};

use crate::engine::catalog::TableRef;
use crate::engine::catalog::key;
use crate::engine::txn::Change;
use crate::engine::txn::TxStatus;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::{ROWID, RelCol};
use crate::sql::session::Undo;
use crate::value::{Len, SqlType, Value, coerce};

/// Target table, columns of the rows to evaluate on, and (version index, row) pairs.
pub(crate) type DmlRows = (TableRef, Vec<RelCol>, Vec<(usize, Vec<Value>)>);

impl Exec<'_> {
    // ---- DML ---------------------------------------------------------------------------

    /// Inserts one row (values aligned with the table's columns, not yet coerced).
    pub(crate) fn insert_row(
        &mut self,
        r: &TableRef,
        mut values: Vec<Value>,
        explicit: &[bool],
    ) -> SqlResult<()> {
        let own = self.xid();
        let k = key(&r.schema, &r.name);
        let defaults: Vec<(usize, Expr)> = self
            .table(r)?
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !explicit.get(*i).copied().unwrap_or(false))
            .filter_map(|(i, c)| c.default.clone().map(|e| (i, e)))
            .collect();
        for (i, e) in defaults {
            if let Some(slot) = values.get_mut(i) {
                *slot = self.eval_const(&e)?;
            }
        }
        if let Some(c) = self
            .table(r)?
            .columns
            .iter()
            .enumerate()
            .find(|(i, c)| c.computed.is_some() && explicit.get(*i).copied().unwrap_or(false))
            .map(|(_, c)| c.name.clone())
        {
            return Err(computed_not_writable(&c));
        }
        let types: Vec<Option<SqlType>> = self
            .table(r)?
            .columns
            .iter()
            .map(|c| {
                (c.computed.is_none() && c.identity.is_none() && c.ty != SqlType::RowVersion)
                    .then_some(c.ty)
            })
            .collect();
        if self.table(r)?.columns.iter().any(|c| c.computed.is_some()) {
            // Computed columns see the row's values as they will be stored.
            for (v, ty) in values.iter_mut().zip(&types) {
                if let Some(ty) = ty {
                    *v = coerce(std::mem::replace(v, Value::Null), ty).map_err(|e| SqlError {
                        aborts_batch: false,
                        ..e
                    })?;
                }
            }
            self.fill_computed(r, &mut values)?;
        }
        self.check_lob_repl_size(r, &values)?;
        self.lock_insert(r)?;
        let rv = {
            self.eng.rowversion += 1;
            self.eng.rowversion
        };
        let db = self
            .eng
            .dbs
            .get_mut(&r.db)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let tracked = self
            .cdc
            .db(&db.name)
            .is_some_and(|c| db.tables.get(&k).is_some_and(|t| c.tracks(t.object_id)));
        let t = db
            .tables
            .get_mut(&k)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        for (i, c) in t.columns.iter().enumerate() {
            let v = std::mem::replace(&mut values[i], Value::Null);
            let v = if let Some((_, inc)) = c.identity {
                if explicit.get(i).copied().unwrap_or(false) {
                    return Err(SqlError::new(
                        544,
                        format!(
                            "Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.",
                            t.name
                        ),
                    ));
                }
                let n = t.next_identity;
                t.next_identity += inc;
                Value::Int(n)
            } else if matches!(c.ty, SqlType::RowVersion) {
                Value::Bytes(rv.to_be_bytes().to_vec())
            } else {
                v
            };
            let v = coerce(v, &c.ty).map_err(|e| SqlError {
                aborts_batch: false,
                ..e
            })?;
            if v.is_null() && !c.nullable {
                return Err(SqlError::new(515, format!(
                    "Cannot insert the value NULL into column '{}', table '{}.{}.{}'; column does not allow nulls. INSERT fails.",
                    c.name, db.name, t.schema, t.name
                )).state(2).statement_only());
            }
            values[i] = v;
        }
        // A key another open transaction inserted or deleted: wait to learn whether it commits.
        if let Some(pk) = t.pk_key(&values)
            && let Some(b) = crate::sql::locking::key_writer(&self.eng.txns, t, &pk, own)
        {
            let id = (db.id, t.object_id);
            return Err(self.wait_for(b, id, "KEY", "X"));
        }
        if let Some(pk) = t.pk_key(&values)
            && t.key_taken(&self.eng.txns, &pk, own)
        {
            let keyv: Vec<String> = t.pk.iter().map(|&i| values[i].to_string()).collect();
            return Err(SqlError::new(2627, format!(
                    "Violation of PRIMARY KEY constraint '{}'. Cannot insert duplicate key in object '{}.{}'. The duplicate key value is ({}).",
                    t.pk_name.clone().unwrap_or_default(), t.schema, t.name, keyv.join(", ")
                )).state(1).class(14).statement_only());
        }
        if let Some((ix, shown)) = t.unique_clash(&self.eng.txns, &values, own) {
            return Err(unique_violation(ix, &t.schema, &t.name, &shown));
        }
        let idx = t.versions.len();
        let object_id = t.object_id;
        let columns: Vec<String> = if tracked {
            t.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            vec![]
        };
        let after = if tracked { Some(values.clone()) } else { None };
        t.push(values, own);
        self.sess.undo.push(Undo::Inserted {
            db: r.db.clone(),
            table: k,
            idx,
        });
        if tracked {
            self.log_change(&r.db, object_id, 2, columns, None, after)?;
        } else {
            self.log_write(&r.db)?;
        }
        Ok(())
    }

    /// A write the capture job has no interest in (a table without a capture instance):
    /// it still takes a log record, and its transaction a commit record.
    pub(crate) fn log_write(&mut self, db: &str) -> SqlResult<()> {
        let d = self.eng.db_mut(db)?;
        let lsn = d.log.next();
        if let Some(t) = self.sess.txn.as_mut() {
            t.begin_lsn.entry(db.to_string()).or_insert(lsn);
            t.last_lsn.insert(db.to_string(), lsn);
        }
        Ok(())
    }

    pub(crate) fn log_change(
        &mut self,
        db: &str,
        object_id: i32,
        op: u8,
        columns: Vec<String>,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> SqlResult<()> {
        let d = self.eng.db_mut(db)?;
        let lsn = d.log.next();
        if let Some(t) = self.sess.txn.as_mut() {
            t.begin_lsn.entry(db.to_string()).or_insert(lsn);
            t.last_lsn.insert(db.to_string(), lsn);
            let command_id = t.command_id;
            if op == 3 {
                t.changes.push(Change {
                    db: db.to_string(),
                    object_id,
                    op: 3,
                    lsn,
                    command_id,
                    columns: columns.clone(),
                    before: before.clone(),
                    // both images: the update mask of the 3 row names the changed columns,
                    // as the 4 row's does
                    after: after.clone(),
                });
                t.changes.push(Change {
                    db: db.to_string(),
                    object_id,
                    op: 4,
                    lsn,
                    command_id,
                    columns,
                    before,
                    after,
                });
            } else {
                t.changes.push(Change {
                    db: db.to_string(),
                    object_id,
                    op,
                    lsn,
                    command_id,
                    columns,
                    before,
                    after,
                });
            }
        }
        Ok(())
    }

    /// The insert half of a single-row primary-key move, logged right after its delete: at
    /// the delete's `__$seqval`, with the next `__$command_id` (ground truth C3).
    fn log_key_move_insert(
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

    pub(crate) fn insert(&mut self, ins: sqlparser::ast::Insert) -> SqlResult<()> {
        if ins.output.is_some() || ins.returning.is_some() {
            return Err(SqlError::unsupported("INSERT ... OUTPUT"));
        }
        let name = match &ins.table {
            TableObject::TableName(n) => n.clone(),
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let r = self.resolve(&name_parts(&name))?;
        let (ncols, positions) = {
            let t = self.table(&r)?;
            let positions: Vec<usize> = if ins.columns.is_empty() {
                (0..t.columns.len())
                    .filter(|&i| {
                        t.columns[i].identity.is_none()
                            && t.columns[i].computed.is_none()
                            && !matches!(t.columns[i].ty, SqlType::RowVersion)
                    })
                    .collect()
            } else {
                ins.columns
                    .iter()
                    .map(|c| {
                        let n = name_parts(c).last().cloned().unwrap_or_default();
                        t.column_index(&n)
                            .ok_or_else(|| SqlError::invalid_column(&n))
                    })
                    .collect::<SqlResult<_>>()?
            };
            (t.columns.len(), positions)
        };
        let source = ins
            .source
            .ok_or_else(|| SqlError::unsupported("INSERT without VALUES or SELECT"))?;
        let rows: Vec<Vec<Value>> = match source.body.as_ref() {
            SetExpr::Values(v) => {
                let mut rows = Vec::with_capacity(v.rows.len());
                for row in &v.rows {
                    let mut out = Vec::with_capacity(row.len());
                    for e in row.iter() {
                        out.push(self.eval_const(e)?);
                    }
                    rows.push(out);
                }
                rows
            }
            _ => self.query(&source)?.rows,
        };
        let mut n = 0u64;
        for row in rows {
            if row.len() != positions.len() {
                return Err(SqlError::new(
                    110,
                    "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
                ));
            }
            let mut values = vec![Value::Null; ncols];
            let mut explicit = vec![false; ncols];
            for (p, v) in positions.iter().zip(row) {
                values[*p] = v;
                explicit[*p] = true;
            }
            self.insert_row(&r, values, &explicit)?;
            n += 1;
        }
        self.sess.rowcount = n;
        self.done(Some(n));
        Ok(())
    }

    /// Finds visible rows of a single table matching `selection`.
    pub(crate) fn matching(
        &mut self,
        r: &TableRef,
        alias: Option<String>,
        selection: Option<&Expr>,
    ) -> SqlResult<Vec<(usize, Vec<Value>)>> {
        let view = self.view();
        let (idxs, rel_cols, rows) = {
            let t = self.table(r)?;
            let idxs = t.visible(&self.eng.txns, &view);
            let cols = crate::sql::rel::table_cols(t, alias.as_deref().unwrap_or(&t.name));
            let rows: Vec<Vec<Value>> =
                idxs.iter().map(|&i| t.versions[i].values.clone()).collect();
            (idxs, cols, rows)
        };
        let mut out = Vec::new();
        for (i, row) in idxs.into_iter().zip(rows) {
            let keep = match selection {
                None => true,
                Some(e) => self.eval(e, &rel_cols, &row, None)?.as_bool() == Some(true),
            };
            if keep {
                out.push((i, row));
            }
        }
        Ok(out)
    }

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

    /// The rows an UPDATE/DELETE acts on: (version index, row to evaluate SET/WHERE on) plus
    /// the columns of that row. With a FROM list the target is joined with the other tables
    /// (T-SQL's `UPDATE t SET ... FROM t JOIN s ON ...`); each target row is taken once.
    pub(crate) fn dml_rows(
        &mut self,
        target: &TableFactor,
        from: &[TableWithJoins],
        selection: Option<&Expr>,
    ) -> SqlResult<DmlRows> {
        let (r, alias) = self.single_table(target)?;
        if from.is_empty() {
            let cols = {
                let t = self.table(&r)?;
                crate::sql::rel::table_cols(t, alias.as_deref().unwrap_or(&t.name))
            };
            let rows = self.matching(&r, alias, selection)?;
            return Ok((r, cols, rows));
        }
        // The target may be named by an alias defined in FROM.
        let target_parts = match target {
            TableFactor::Table { name, .. } => name_parts(name),
            _ => vec![],
        };
        let mut real = None;
        for twj in from {
            for tf in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
                if let TableFactor::Table {
                    name,
                    alias: a,
                    args: None,
                    ..
                } = tf
                {
                    let by_alias = target_parts.len() == 1
                        && a.as_ref()
                            .is_some_and(|a| a.name.value.eq_ignore_ascii_case(&target_parts[0]));
                    let rr = self.resolve(&name_parts(name))?;
                    let same = rr.db == r.db
                        && rr.schema.eq_ignore_ascii_case(&r.schema)
                        && rr.name.eq_ignore_ascii_case(&r.name);
                    if real.is_none() && (by_alias || same) {
                        real = Some(rr);
                    }
                }
            }
        }
        let mut list = from.to_vec();
        let r = match real {
            Some(rr) => rr,
            None => {
                list.insert(
                    0,
                    TableWithJoins {
                        relation: target.clone(),
                        joins: vec![],
                    },
                );
                r
            }
        };
        self.table(&r)?;
        self.dml_target = Some((r.db.clone(), key(&r.schema, &r.name)));
        let rel = self.build_from(&list);
        self.dml_target = None;
        let rel = rel?;
        let rowid = rel
            .cols
            .iter()
            .position(|c| c.name == ROWID)
            .ok_or_else(|| SqlError::unsupported("this UPDATE/DELETE ... FROM form"))?;
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for row in rel.rows {
            let keep = match selection {
                None => true,
                Some(e) => self.eval(e, &rel.cols, &row, None)?.as_bool() == Some(true),
            };
            if let (true, Some(Value::Int(i))) = (keep, row.get(rowid)) {
                let i = *i as usize;
                if seen.insert(i) {
                    rows.push((i, row));
                }
            }
        }
        Ok((r, rel.cols, rows))
    }

    pub(crate) fn single_table(&self, tf: &TableFactor) -> SqlResult<(TableRef, Option<String>)> {
        match tf {
            TableFactor::Table { name, alias, .. } => Ok((
                self.resolve(&name_parts(name))?,
                alias.as_ref().map(|a| a.name.value.clone()),
            )),
            other => Err(SqlError::unsupported(format!("DML on {other}"))),
        }
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
            targets.push((idx, &a.value));
        }
        let mut n = 0u64;
        let mut pk_changes = Vec::new();
        for (idx, eval_row) in rows {
            let old = match self.table(&r)?.versions.get(idx) {
                Some(v) => v.values.clone(),
                None => continue,
            };
            let mut new = old.clone();
            for (c, e) in &targets {
                new[*c] = self.eval(e, &eval_cols, &eval_row, None)?;
            }
            // Computed columns follow the new values (coerced first, as they will be stored).
            {
                let t = self.table(&r)?;
                for (c, _) in &targets {
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
    fn log_deferred_update(
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

    /// Evaluates an expression that needs no row (VALUES items, variables, procedure args).
    pub(crate) fn eval_const(&mut self, e: &Expr) -> SqlResult<Value> {
        self.eval(e, &[], &[], None)
    }
}

/// Error 271: a computed column cannot be written (INSERT column list, UPDATE SET).
fn computed_not_writable(column: &str) -> SqlError {
    SqlError::new(
        271,
        format!(
            "The column \"{column}\" cannot be modified because it is either a computed column or is the result of a UNION operator."
        ),
    )
}

/// A duplicate key in a UNIQUE constraint (2627) or a unique index (2601), with SQL Server's
/// texts (sys.messages 2627 and 2601).
fn unique_violation(
    ix: &crate::engine::table::Index,
    schema: &str,
    table: &str,
    key: &str,
) -> SqlError {
    let e = if ix.constraint {
        SqlError::new(
            2627,
            format!(
                "Violation of UNIQUE KEY constraint '{}'. Cannot insert duplicate key in object '{schema}.{table}'. The duplicate key value is ({key}).",
                ix.name
            ),
        )
    } else {
        SqlError::new(
            2601,
            format!(
                "Cannot insert duplicate key row in object '{schema}.{table}' with unique index '{}'. The duplicate key value is ({key}).",
                ix.name
            ),
        )
    };
    e.class(14).statement_only()
}

impl Exec<'_> {
    /// Writes to a CDC-tracked table may carry large-object values of at most
    /// `max text repl size` bytes (sp_configure; 65536 by default, -1 = no limit), else error
    /// 7139 (text: SQL Server's sys.messages).
    pub(crate) fn check_lob_repl_size(&self, r: &TableRef, values: &[Value]) -> SqlResult<()> {
        let limit = self.eng.max_text_repl_size;
        if limit < 0 {
            return Ok(());
        }
        let t = self.table(r)?;
        self.eng.db(&r.db)?;
        let tracked = self.cdc.tracks(&r.db, t.object_id);
        if !tracked {
            return Ok(());
        }
        for (c, v) in t.columns.iter().zip(values) {
            let bytes = match (c.ty, v) {
                (SqlType::Text | SqlType::VarChar(Len::Max), Value::Str(s)) => s.chars().count(),
                (SqlType::NText | SqlType::NVarChar(Len::Max) | SqlType::Xml, Value::Str(s)) => {
                    s.encode_utf16().count() * 2
                }
                (SqlType::Image | SqlType::VarBinary(Len::Max), Value::Bytes(b)) => b.len(),
                _ => continue,
            };
            if bytes as i64 > limit {
                return Err(SqlError::new(
                    7139,
                    format!(
                        "Length of LOB data ({bytes}) to be replicated exceeds configured maximum {limit}. Use the stored procedure sp_configure to increase the configured maximum value for max text repl size option, which defaults to 65536. A configured value of -1 indicates no limit, other that the limit imposed by the data type."
                    ),
                ));
            }
        }
        Ok(())
    }
}
