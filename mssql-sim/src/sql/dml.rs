//! DML: INSERT, UPDATE (including primary-key updates), DELETE, with write-conflict checks,
//! statement-level undo records and the change records CDC captures.
//!
//! - this file: what the statements share — the rows a WHERE matches, the log and CDC
//!   records of a write, constraint and LOB-size errors.
//! - `insert`, `update`, `delete`: one statement each.

mod delete;
mod insert;
mod update;

use sqlparser::ast::{Expr, TableFactor, TableWithJoins};

use crate::engine::catalog::TableRef;
use crate::engine::catalog::key;
use crate::engine::txn::Change;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::{ROWID, RelCol};
use crate::value::{Len, SqlType, Value};

/// Target table, columns of the rows to evaluate on, and (version index, row) pairs.
pub(crate) type DmlRows = (TableRef, Vec<RelCol>, Vec<(usize, Vec<Value>)>);

impl Exec<'_> {
    // ---- DML ---------------------------------------------------------------------------

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
            self.lock_write_search(&r, selection)?;
            let mut rows = self.matching(&r, alias, selection)?;
            self.before_scan_stop(&mut rows);
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
        // A join is read as a scan of the target.
        self.lock_write_search(&r, None)?;
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
        self.before_scan_stop(&mut rows);
        Ok((r, rel.cols, rows))
    }

    /// Keeps the rows a scan reaches before the row where it has to wait ([`Exec::scan_stop`]).
    fn before_scan_stop(&self, rows: &mut Vec<(usize, Vec<Value>)>) {
        if let Some((stop, _, _)) = self.scan_stop {
            rows.retain(|(i, _)| *i < stop);
        }
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
