//! FROM: the relations a query reads — tables (with their lock and row-version view),
//! views, CTEs, table variables, derived tables, table-valued functions — and the joins
//! between them.

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, JoinConstraint, JoinOperator, TableFactor,
};

use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::{ROWID, Rel, RelCol, table_cols};
use crate::value::{SqlType, Value};

impl Exec<'_> {
    /// Builds the FROM relation.
    pub(crate) fn build_from(&mut self, from: &[sqlparser::ast::TableWithJoins]) -> SqlResult<Rel> {
        if from.is_empty() {
            return Ok(Rel {
                cols: vec![],
                rows: vec![vec![]],
            });
        }
        let mut acc: Option<Rel> = None;
        for twj in from {
            let mut rel = self.table_factor(&twj.relation)?;
            for j in &twj.joins {
                let right = self.table_factor(&j.relation)?;
                rel = self.join(rel, right, &j.join_operator)?;
            }
            acc = Some(match acc {
                None => rel,
                Some(a) => cross(a, rel),
            });
        }
        Ok(acc.unwrap_or_default())
    }

    pub(super) fn join(&mut self, left: Rel, right: Rel, op: &JoinOperator) -> SqlResult<Rel> {
        let (cond, outer) = match op {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (c, false),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (c, true),
            JoinOperator::CrossJoin(_) => return Ok(cross(left, right)),
            other => {
                return Err(SqlError::unsupported(
                    format!("join {other:?}")
                        .chars()
                        .take(80)
                        .collect::<String>(),
                ));
            }
        };
        let on = match cond {
            JoinConstraint::On(e) => e,
            JoinConstraint::None => return Ok(cross(left, right)),
            _ => return Err(SqlError::unsupported("JOIN USING/NATURAL")),
        };
        let mut cols = left.cols.clone();
        cols.extend(right.cols.iter().cloned().map(|mut c| {
            if outer {
                c.nullable = true;
            }
            c
        }));
        let mut rows = Vec::new();
        let nright = right.cols.len();
        for l in &left.rows {
            let mut matched = false;
            for r in &right.rows {
                let mut row = l.clone();
                row.extend(r.iter().cloned());
                if self.eval(on, &cols, &row, None)?.as_bool() == Some(true) {
                    matched = true;
                    rows.push(row);
                }
            }
            if outer && !matched {
                let mut row = l.clone();
                row.extend(std::iter::repeat_n(Value::Null, nright));
                rows.push(row);
            }
        }
        Ok(Rel { cols, rows })
    }

    pub(super) fn table_factor(&mut self, tf: &TableFactor) -> SqlResult<Rel> {
        match tf {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                ..
            } => {
                let parts = name_parts(name);
                self.take_table_lock(&parts, with_hints)?;
                let locks = self.read_locks(with_hints);
                let alias_name = alias.as_ref().map(|a| a.name.value.to_lowercase());
                let mut rel = if let Some(a) = args {
                    let mut vals = Vec::new();
                    for arg in &a.args {
                        match arg {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                                vals.push(self.eval_const(e)?)
                            }
                            _ => {
                                return Err(SqlError::unsupported(
                                    "named table-function arguments",
                                ));
                            }
                        }
                    }
                    self.table_function(&parts, vals)?
                } else {
                    self.named_relation(&parts, locks)?
                };
                let qual = alias_name
                    .unwrap_or_else(|| parts.last().cloned().unwrap_or_default().to_lowercase());
                for c in &mut rel.cols {
                    c.qual = qual.clone();
                }
                Ok(rel)
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let mut rel = self.query(subquery)?;
                if let Some(a) = alias {
                    for (c, n) in rel.cols.iter_mut().zip(&a.columns) {
                        c.name = n.name.value.clone();
                    }
                    for c in &mut rel.cols {
                        c.qual = a.name.value.to_lowercase();
                    }
                }
                Ok(rel)
            }
            other => Err(SqlError::unsupported(format!("FROM {other}"))),
        }
    }

    /// Takes the table lock that hints like `TABLOCK, HOLDLOCK` or `TABLOCKX` ask for, waiting
    /// for conflicting locks (sql/locking.rs). `TABLOCKX` and a `TABLOCK` with `HOLDLOCK` (or
    /// `SERIALIZABLE`) hold it to the end of the session's transaction; a plain `TABLOCK`
    /// read only waits for it.
    pub(super) fn take_table_lock(&mut self, parts: &[String], hints: &[Expr]) -> SqlResult<()> {
        let named = |want: &str| {
            hints
                .iter()
                .any(|h| matches!(h, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(want)))
        };
        let exclusive = named("TABLOCKX") || (named("TABLOCK") && named("XLOCK"));
        if !exclusive && !named("TABLOCK") {
            return Ok(());
        }
        let held = exclusive || named("HOLDLOCK") || named("SERIALIZABLE");
        if self.sess.txn.is_none() {
            return Ok(());
        }
        let r = self.resolve(parts)?;
        self.lock_table(&r, exclusive, held)
    }

    /// A table, view, system view or CTE by name.
    pub(super) fn named_relation(
        &mut self,
        parts: &[String],
        locks: crate::sql::locking::ReadLocks,
    ) -> SqlResult<Rel> {
        if parts.len() == 1 {
            let k = parts[0].to_lowercase();
            for scope in self.ctes.iter().rev() {
                if let Some(r) = scope.get(&k) {
                    return Ok(r.clone());
                }
            }
        }
        if let Some(rel) = self.system_view(parts)? {
            return Ok(rel);
        }
        let r = self.resolve(parts)?;
        self.lock_read(&r, locks)?;
        let mut view = self.view();
        if locks == crate::sql::locking::ReadLocks::Uncommitted {
            view.dirty = true;
            view.as_of = None;
        }
        let t = self.table(&r)?;
        if self.dml_target.as_ref()
            == Some(&(
                r.db.clone(),
                crate::engine::catalog::key(&r.schema, &r.name),
            ))
        {
            let mut cols = table_cols(t, &t.name);
            cols.push(RelCol {
                qual: t.name.to_lowercase(),
                name: ROWID.into(),
                ty: SqlType::BigInt,
                nullable: false,
                collation: None,
            });
            let rows = t
                .visible(&self.eng.txns, &view)
                .into_iter()
                .map(|i| {
                    let mut v = t.versions[i].values.clone();
                    v.push(Value::Int(i as i64));
                    v
                })
                .collect();
            return Ok(Rel { cols, rows });
        }
        let rows = t
            .visible(&self.eng.txns, &view)
            .into_iter()
            .map(|i| t.versions[i].values.clone())
            .collect();
        Ok(Rel {
            cols: table_cols(t, &t.name),
            rows,
        })
    }
}

pub(super) fn cross(a: Rel, b: Rel) -> Rel {
    let mut cols = a.cols;
    cols.extend(b.cols);
    let mut rows = Vec::with_capacity(a.rows.len() * b.rows.len());
    for l in &a.rows {
        for r in &b.rows {
            let mut row = l.clone();
            row.extend(r.iter().cloned());
            rows.push(row);
        }
    }
    Rel { cols, rows }
}
