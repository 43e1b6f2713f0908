//! Ranking window functions in a select list: `ROW_NUMBER()`, `RANK()` and `DENSE_RANK()`
//! `OVER ([PARTITION BY ...] ORDER BY ...)`, as Debezium's capture-instance discovery uses
//! (`ROW_NUMBER() OVER (PARTITION BY ct.source_object_id, ct.start_lsn ORDER BY ct.create_date
//! DESC)`).
//!
//! They are computed after WHERE over the filtered rows (as SQL Server computes them), appended
//! to each row as hidden columns, and the select items that were window calls read those
//! columns. A window call nested inside a larger expression is not taken apart (the function
//! evaluator then refuses it as unsupported).

use std::cmp::Ordering;

use sqlparser::ast::{Expr, Ident, OrderBySort, SelectItem, WindowType};

use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::rel::RelCol;
use crate::value::{SqlType, TextCmp, Value, compare_in};

/// Hidden column names: `__sim_window_<n>`.
const HIDDEN: &str = "__sim_window_";

/// Whether a relation column is a window result added here (left out of `SELECT *`).
pub(crate) fn is_hidden(name: &str) -> bool {
    name.starts_with(HIDDEN)
}

/// NULLs first ascending, as SQL Server sorts; text as `cmp` says (the expression's
/// collation).
fn order(a: &Value, b: &Value, cmp: &TextCmp) -> SqlResult<Ordering> {
    Ok(match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => compare_in(a, b, cmp)?,
    })
}

fn window_call(e: &Expr) -> Option<&sqlparser::ast::Function> {
    match e {
        Expr::Function(f) if f.over.is_some() => Some(f),
        _ => None,
    }
}

impl Exec<'_> {
    /// Computes the window calls of `projection` over `rows` (filtered, not yet projected),
    /// appending one column per call; returns the projection rewritten to read them, or `None`
    /// when it has no window call.
    pub(crate) fn window_columns(
        &mut self,
        projection: &[SelectItem],
        cols: &mut Vec<RelCol>,
        rows: &mut [Vec<Value>],
    ) -> SqlResult<Option<Vec<SelectItem>>> {
        let has = projection.iter().any(|p| match p {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                window_call(e).is_some()
            }
            _ => false,
        });
        if !has {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(projection.len());
        for p in projection {
            let (expr, alias) = match p {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
                other => {
                    out.push(other.clone());
                    continue;
                }
            };
            let Some(f) = window_call(expr) else {
                out.push(p.clone());
                continue;
            };
            let values = self.rank(f, cols, rows)?;
            let hidden = format!("{HIDDEN}{}", cols.len());
            cols.push(RelCol {
                qual: String::new(),
                name: hidden.clone(),
                ty: SqlType::BigInt,
                nullable: false,
                collation: None,
            });
            for (row, v) in rows.iter_mut().zip(values) {
                row.push(Value::Int(v));
            }
            let read = Expr::Identifier(Ident::new(hidden));
            // An unnamed window column has no name in the result, as in SQL Server.
            out.push(match alias {
                Some(alias) => SelectItem::ExprWithAlias { expr: read, alias },
                None => SelectItem::ExprWithAlias {
                    expr: read,
                    alias: Ident::new(""),
                },
            });
        }
        Ok(Some(out))
    }

    /// The value of one ranking call for each row, in row order.
    fn rank(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        rows: &[Vec<Value>],
    ) -> SqlResult<Vec<i64>> {
        let name = f.name.to_string().to_lowercase();
        if !matches!(name.as_str(), "row_number" | "rank" | "dense_rank") {
            return Err(SqlError::unsupported(format!("window function {name}")));
        }
        let spec = match &f.over {
            Some(WindowType::WindowSpec(s)) => s,
            _ => return Err(SqlError::unsupported("named windows")),
        };
        if spec.order_by.is_empty() {
            // SQL Server: "The function 'ROW_NUMBER' must have an OVER clause with ORDER BY."
            return Err(SqlError::new(
                4112,
                format!(
                    "The function '{}' must have an OVER clause with ORDER BY.",
                    name.to_uppercase()
                ),
            ));
        }
        let asc: Vec<bool> = spec
            .order_by
            .iter()
            .map(|o| !matches!(o.options.sort, Some(OrderBySort::Desc)))
            .collect();
        // PARTITION BY and ORDER BY compare text by their expressions' collations.
        let mut part_cmps = Vec::with_capacity(spec.partition_by.len());
        for e in &spec.partition_by {
            part_cmps.push(self.text_side(e, cols)?.cmp());
        }
        let mut ord_cmps = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            ord_cmps.push(self.text_side(&o.expr, cols)?.cmp());
        }
        // (partition key, order key, row index)
        let mut keyed = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let mut part = Vec::with_capacity(spec.partition_by.len());
            for e in &spec.partition_by {
                part.push(self.eval(e, cols, row, None)?);
            }
            let mut ord = Vec::with_capacity(spec.order_by.len());
            for o in &spec.order_by {
                ord.push(self.eval(&o.expr, cols, row, None)?);
            }
            keyed.push((part, ord, i));
        }
        let mut err = None;
        let cmp_keys =
            |a: &[Value], b: &[Value], asc: Option<&[bool]>, err: &mut Option<SqlError>| {
                let cmps = if asc.is_some() { &ord_cmps } else { &part_cmps };
                for (k, (x, y)) in a.iter().zip(b).enumerate() {
                    let cmp = cmps.get(k).copied().unwrap_or_default();
                    let o = match order(x, y, &cmp) {
                        Ok(o) => o,
                        Err(e) => {
                            err.get_or_insert(e);
                            Ordering::Equal
                        }
                    };
                    let o = match asc {
                        Some(asc) if !asc.get(k).copied().unwrap_or(true) => o.reverse(),
                        _ => o,
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            };
        keyed.sort_by(|a, b| {
            cmp_keys(&a.0, &b.0, None, &mut err)
                .then_with(|| cmp_keys(&a.1, &b.1, Some(&asc), &mut err))
        });
        if let Some(e) = err {
            return Err(e);
        }
        let mut values = vec![0i64; rows.len()];
        let mut n = 0i64;
        let mut rank = 0i64;
        let mut dense = 0i64;
        let mut err = None;
        for k in 0..keyed.len() {
            let same_partition =
                k > 0 && cmp_keys(&keyed[k - 1].0, &keyed[k].0, None, &mut err) == Ordering::Equal;
            if same_partition {
                n += 1;
                let tie =
                    cmp_keys(&keyed[k - 1].1, &keyed[k].1, Some(&asc), &mut err) == Ordering::Equal;
                if !tie {
                    rank = n;
                    dense += 1;
                }
            } else {
                n = 1;
                rank = 1;
                dense = 1;
            }
            values[keyed[k].2] = match name.as_str() {
                "row_number" => n,
                "rank" => rank,
                _ => dense,
            };
        }
        match err {
            Some(e) => Err(e),
            None => Ok(values),
        }
    }
}
