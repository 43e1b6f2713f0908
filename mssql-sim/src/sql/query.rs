//! SELECT: FROM with joins, WHERE, GROUP BY with aggregates, projection, DISTINCT,
//! ORDER BY, TOP and OFFSET/FETCH, CTEs and UNION ALL.
//!
//! - this file: a query's pipeline — set operations, WHERE, grouping, projection, ordering
//!   and paging — and the static types of its columns.
//! - `from`: the FROM clause — the relations read (tables with their locks, views, CTEs,
//!   table variables, functions) and their joins.

mod from;

use std::cmp::Ordering;
use std::collections::HashMap;

use sqlparser::ast::{
    Expr, GroupByExpr, LimitClause, OrderByKind, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, TopQuantity,
};

use crate::error::{SqlError, SqlResult};
use crate::sql::eval::TextSide;
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::{Rel, RelCol};
use crate::value::{SqlType, TextCmp, Value, compare_in};

/// Infers a column type from computed values.
pub(crate) fn infer_type(values: impl Iterator<Item = Value>) -> SqlType {
    let mut ty: Option<SqlType> = None;
    for v in values {
        if v.is_null() {
            continue;
        }
        let t = v.natural_type();
        ty = Some(match (ty, t) {
            (None, t) => t,
            (Some(SqlType::Int), SqlType::BigInt) => SqlType::BigInt,
            (Some(SqlType::NVarChar(a)), SqlType::NVarChar(b)) => SqlType::NVarChar(match (a, b) {
                (crate::value::Len::N(x), crate::value::Len::N(y)) => {
                    crate::value::Len::N(x.max(y))
                }
                _ => crate::value::Len::Max,
            }),
            (Some(SqlType::VarBinary(a)), SqlType::VarBinary(b)) => {
                SqlType::VarBinary(match (a, b) {
                    (crate::value::Len::N(x), crate::value::Len::N(y)) => {
                        crate::value::Len::N(x.max(y))
                    }
                    _ => crate::value::Len::Max,
                })
            }
            (Some(SqlType::Decimal(p1, s1)), SqlType::Decimal(p2, s2)) => {
                let s = s1.max(s2);
                let ip = (p1 - s1).max(p2 - s2);
                SqlType::Decimal((ip + s).min(38), s)
            }
            (Some(t0), _) => t0,
        });
    }
    ty.unwrap_or(SqlType::Int)
}

fn is_aggregate(name: &str) -> bool {
    matches!(name, "count" | "min" | "max" | "sum" | "avg" | "count_big")
}

/// Whether an expression contains an aggregate call.
pub(crate) fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let n = name_parts(&f.name)
                .last()
                .map(|s| s.to_lowercase())
                .unwrap_or_default();
            is_aggregate(&n)
        }
        Expr::BinaryOp { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => {
            has_aggregate(expr)
        }
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            conditions
                .iter()
                .any(|c| has_aggregate(&c.condition) || has_aggregate(&c.result))
                || else_result.as_deref().is_some_and(has_aggregate)
        }
        _ => false,
    }
}

impl Exec<'_> {
    /// Runs a query.
    pub(crate) fn query(&mut self, q: &Query) -> SqlResult<Rel> {
        let mut scope = HashMap::new();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.push(scope.clone());
                let r = self.query(&cte.query);
                self.ctes.pop();
                let mut rel = r?;
                let alias = cte.alias.name.value.to_lowercase();
                for (c, a) in rel.cols.iter_mut().zip(&cte.alias.columns) {
                    c.name = a.name.value.clone();
                }
                for c in &mut rel.cols {
                    c.qual = alias.clone();
                }
                scope.insert(alias, rel);
            }
        }
        self.ctes.push(scope);
        let r = self.query_inner(q);
        self.ctes.pop();
        r
    }

    fn query_inner(&mut self, q: &Query) -> SqlResult<Rel> {
        if q.for_clause.is_some() {
            return Err(SqlError::unsupported("FOR XML / FOR JSON / FOR BROWSE"));
        }
        if q.fetch.as_ref().is_some_and(|f| f.percent || f.with_ties) {
            return Err(SqlError::unsupported("FETCH ... PERCENT / WITH TIES"));
        }
        let order: Vec<(Expr, bool)> = match &q.order_by {
            Some(ob) => match &ob.kind {
                OrderByKind::Expressions(v) => v
                    .iter()
                    .map(|o| {
                        (
                            o.expr.clone(),
                            !matches!(o.options.sort, Some(sqlparser::ast::OrderBySort::Desc)),
                        )
                    })
                    .collect(),
                OrderByKind::All(_) => return Err(SqlError::unsupported("ORDER BY ALL")),
            },
            None => vec![],
        };
        let mut rel = self.set_expr(&q.body, &order)?;
        // OFFSET / FETCH
        let mut offset = 0usize;
        if let Some(lc) = &q.limit_clause {
            match lc {
                LimitClause::LimitOffset {
                    limit, offset: off, ..
                } => {
                    if let Some(o) = off {
                        offset = self.eval_const(&o.value)?.as_i64()?.unwrap_or(0).max(0) as usize;
                    }
                    if let Some(l) = limit {
                        let n = self.eval_const(l)?.as_i64()?.unwrap_or(0).max(0) as usize;
                        rel.rows = rel.rows.into_iter().skip(offset).take(n).collect();
                        offset = usize::MAX;
                    }
                }
                LimitClause::OffsetCommaLimit { .. } => return Err(SqlError::unsupported("LIMIT")),
            }
        }
        if offset != usize::MAX && offset > 0 {
            rel.rows = rel.rows.into_iter().skip(offset).collect();
        }
        if let Some(f) = &q.fetch
            && let Some(qty) = &f.quantity
        {
            let n = self.eval_const(qty)?.as_i64()?.unwrap_or(0).max(0) as usize;
            rel.rows.truncate(n);
        }
        Ok(rel)
    }

    fn set_expr(&mut self, body: &SetExpr, order: &[(Expr, bool)]) -> SqlResult<Rel> {
        match body {
            SetExpr::Select(s) => self.select(s, order),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation {
                left,
                op: SetOperator::Union,
                set_quantifier,
                right,
            } => {
                let mut l = self.set_expr(left, &[])?;
                let r = self.set_expr(right, &[])?;
                if l.cols.len() != r.cols.len() {
                    return Err(SqlError::new(
                        205,
                        "All queries combined using a UNION, INTERSECT or EXCEPT operator must have an equal number of expressions in their target lists.",
                    ));
                }
                l.rows.extend(r.rows);
                if !matches!(set_quantifier, SetQuantifier::All) {
                    let cmps: Vec<TextCmp> = l.cols.iter().map(RelCol::text_cmp).collect();
                    let mut seen = std::collections::HashSet::new();
                    l.rows.retain(|row| {
                        seen.insert(
                            row.iter()
                                .zip(&cmps)
                                .map(|(v, c)| v.key_in(c))
                                .collect::<Vec<_>>(),
                        )
                    });
                }
                if !order.is_empty() {
                    self.sort_by_output(&mut l, order)?;
                }
                Ok(l)
            }
            SetExpr::Values(v) => {
                let mut rows = Vec::new();
                for r in &v.rows {
                    let mut out = Vec::new();
                    for e in r.iter() {
                        out.push(self.eval_const(e)?);
                    }
                    rows.push(out);
                }
                let n = rows.first().map(|r| r.len()).unwrap_or(0);
                let cols = (0..n)
                    .map(|i| RelCol {
                        qual: String::new(),
                        name: format!("column{}", i + 1),
                        ty: infer_type(rows.iter().map(|r| r[i].clone())),
                        nullable: true,
                        collation: None,
                    })
                    .collect();
                Ok(Rel { cols, rows })
            }
            other => Err(SqlError::unsupported(format!("query form {other}"))),
        }
    }

    fn sort_by_output(&mut self, rel: &mut Rel, order: &[(Expr, bool)]) -> SqlResult<()> {
        let mut cmps = Vec::with_capacity(order.len());
        for (e, _) in order {
            cmps.push(self.text_side(e, &rel.cols)?.cmp());
        }
        let mut keyed = Vec::with_capacity(rel.rows.len());
        for row in std::mem::take(&mut rel.rows) {
            let mut k = Vec::new();
            for (e, _) in order {
                k.push(self.eval(e, &rel.cols, &row, None)?);
            }
            keyed.push((k, row));
        }
        sort_keyed(&mut keyed, order, &cmps)?;
        rel.rows = keyed.into_iter().map(|(_, r)| r).collect();
        Ok(())
    }

    fn select(&mut self, s: &Select, order: &[(Expr, bool)]) -> SqlResult<Rel> {
        if s.into.is_some() {
            return Err(SqlError::unsupported("SELECT INTO"));
        }
        let (src, prefiltered) = match self.change_table_page(s, order)? {
            Some(rel) => (rel, true),
            None => {
                let seek = self.primary_key_seek(s);
                let outer = std::mem::replace(&mut self.seek, seek);
                let rel = self.build_from(&s.from);
                self.seek = outer;
                (rel?, false)
            }
        };
        // Fast path for `SELECT * FROM x` (how change rows are usually read): no copies.
        let plain = s.selection.is_none()
            && s.having.is_none()
            && s.top.is_none()
            && s.distinct.is_none()
            && order.is_empty()
            && matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty())
            && matches!(s.projection.as_slice(), [SelectItem::Wildcard(_)]);
        if plain {
            let mut rel = src;
            for c in &mut rel.cols {
                c.qual.clear();
            }
            return Ok(rel);
        }
        // WHERE
        let mut rows = Vec::with_capacity(src.rows.len());
        for row in src.rows {
            let keep = match &s.selection {
                None => true,
                Some(_) if prefiltered => true,
                Some(e) => self.eval(e, &src.cols, &row, None)?.as_bool() == Some(true),
            };
            if keep {
                rows.push(row);
            }
        }
        let mut cols = src.cols;
        // Window calls (ROW_NUMBER() OVER ...) become hidden columns first: sql/window.rs.
        let windowed = self.window_columns(&s.projection, &mut cols, &mut rows)?;
        let projection = windowed.as_deref().unwrap_or(&s.projection);
        let group_exprs: Vec<Expr> = match &s.group_by {
            GroupByExpr::Expressions(v, _) => v.clone(),
            GroupByExpr::All(_) => return Err(SqlError::unsupported("GROUP BY ALL")),
        };
        let aggregate = !group_exprs.is_empty()
            || s.projection.iter().any(|p| match p {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    has_aggregate(e)
                }
                _ => false,
            })
            || s.having.is_some();

        // Output expressions
        let mut items: Vec<(String, Option<Expr>, Option<usize>)> = Vec::new(); // (name, expr, direct column)
        for p in projection {
            match p {
                SelectItem::Wildcard(_) => {
                    // Window results (sql/window.rs) are hidden columns, not the source's.
                    for (i, c) in cols.iter().enumerate() {
                        if !crate::sql::window::is_hidden(&c.name) {
                            items.push((c.name.clone(), None, Some(i)));
                        }
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(n) => name_parts(n)
                            .last()
                            .cloned()
                            .unwrap_or_default()
                            .to_lowercase(),
                        SelectItemQualifiedWildcardKind::Expr(e) => e.to_string().to_lowercase(),
                    };
                    let before = items.len();
                    for (i, c) in cols.iter().enumerate() {
                        if c.qual == q {
                            items.push((c.name.clone(), None, Some(i)));
                        }
                    }
                    if items.len() == before {
                        return Err(SqlError::new(
                            4104,
                            format!("The multi-part identifier \"{q}\" could not be bound."),
                        ));
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let name = match e {
                        Expr::Identifier(i) => i.value.clone(),
                        Expr::CompoundIdentifier(ids) => {
                            ids.last().map(|i| i.value.clone()).unwrap_or_default()
                        }
                        _ => String::new(),
                    };
                    // A plain column that names exactly one source column is read by index,
                    // not looked up by name row after row.
                    let direct = match e {
                        Expr::Identifier(i) if !i.value.starts_with('@') && !aggregate => {
                            let mut hits = cols
                                .iter()
                                .enumerate()
                                .filter(|(_, c)| c.name.eq_ignore_ascii_case(&i.value));
                            match (hits.next(), hits.next()) {
                                (Some((index, _)), None) => Some(index),
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    items.push((name, Some(e.clone()), direct));
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    items.push((alias.value.clone(), Some(expr.clone()), None))
                }
                SelectItem::ExprWithAliases { .. } => {
                    return Err(SqlError::unsupported("multiple aliases"));
                }
            }
        }

        // How each output item and ORDER BY key compares as text (its collation, Unicode or
        // not): DISTINCT, ORDER BY and the output columns' collations use them.
        let mut item_sides: Vec<TextSide> = Vec::with_capacity(items.len());
        for (_, e, direct) in &items {
            item_sides.push(match (e, direct) {
                (_, Some(i)) => TextSide::of_column(&cols[*i]),
                (Some(e), None) => self.text_side(e, &cols)?,
                (None, None) => TextSide::of_column(&RelCol {
                    qual: String::new(),
                    name: String::new(),
                    ty: SqlType::Int,
                    nullable: true,
                    collation: None,
                }),
            });
        }
        let order_by_alias = |e: &Expr| -> Option<usize> {
            match e {
                Expr::Identifier(i) => items
                    .iter()
                    .position(|(n, _, _)| n.eq_ignore_ascii_case(&i.value))
                    .filter(|_| !cols.iter().any(|c| c.name.eq_ignore_ascii_case(&i.value))),
                Expr::Value(v) => match &v.value {
                    sqlparser::ast::Value::Number(n, _) => {
                        n.parse::<usize>().ok().and_then(|n| n.checked_sub(1))
                    }
                    _ => None,
                },
                _ => None,
            }
        };
        let mut order_cmps: Vec<TextCmp> = Vec::with_capacity(order.len());
        for (e, _) in order {
            order_cmps.push(match order_by_alias(e).and_then(|i| item_sides.get(i)) {
                Some(side) => side.cmp(),
                None => self.text_side(e, &cols)?.cmp(),
            });
        }
        let mut group_cmps: Vec<TextCmp> = Vec::with_capacity(group_exprs.len());
        for g in &group_exprs {
            group_cmps.push(self.text_side(g, &cols)?.cmp());
        }

        // Groups: each output row comes with the source row (and group) it was computed from.
        let groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = if aggregate {
            let mut order_keys: Vec<String> = Vec::new();
            let mut map: HashMap<String, Vec<Vec<Value>>> = HashMap::new();
            for row in rows {
                let mut k = String::new();
                for (g, cmp) in group_exprs.iter().zip(&group_cmps) {
                    k.push_str(&self.eval(g, &cols, &row, None)?.key_in(cmp));
                    k.push('\u{1}');
                }
                if !map.contains_key(&k) {
                    order_keys.push(k.clone());
                }
                map.entry(k).or_default().push(row);
            }
            if order_keys.is_empty() && group_exprs.is_empty() {
                vec![(vec![Value::Null; cols.len()], vec![])]
            } else {
                order_keys
                    .into_iter()
                    .filter_map(|k| map.remove(&k))
                    .map(|g| (g.first().cloned().unwrap_or_default(), g))
                    .collect()
            }
        } else {
            rows.into_iter().map(|r| (r, vec![])).collect()
        };

        let mut out_rows: Vec<(Vec<Value>, Vec<Value>)> = Vec::with_capacity(groups.len()); // (output, sort key)
        // A pre-sorted change-table page uses each source row once and needs no sort keys, so
        // its plain columns move into the output instead of being copied (when no column is
        // selected twice).
        let move_cells = prefiltered && !aggregate && s.having.is_none() && {
            let mut seen = std::collections::HashSet::new();
            items
                .iter()
                .filter_map(|(_, _, d)| *d)
                .all(|i| seen.insert(i))
        };
        for (mut row, group) in groups {
            let row = &mut row;
            let g = if aggregate {
                Some(group.as_slice())
            } else {
                None
            };
            if let Some(h) = &s.having
                && self.eval(h, &cols, row, g)?.as_bool() != Some(true)
            {
                continue;
            }
            let mut out = Vec::with_capacity(items.len());
            // Computed items first: they may read columns that are moved below.
            for (_, e, direct) in &items {
                out.push(match (e, direct) {
                    (_, Some(_)) => Value::Null,
                    (Some(e), None) => self.eval(e, &cols, row, g)?,
                    (None, None) => Value::Null,
                });
            }
            for (slot, (_, _, direct)) in out.iter_mut().zip(&items) {
                if let Some(i) = direct {
                    *slot = match row.get_mut(*i) {
                        Some(v) if move_cells => std::mem::replace(v, Value::Null),
                        Some(v) => v.clone(),
                        None => Value::Null,
                    };
                }
            }
            let mut key = Vec::with_capacity(order.len());
            // The change-table page is already in ORDER BY order: no keys, no sort.
            let order: &[(Expr, bool)] = if prefiltered { &[] } else { order };
            for (e, _) in order {
                // ORDER BY may name an output alias or a source column.
                let by_alias = match e {
                    Expr::Identifier(i) => items
                        .iter()
                        .position(|(n, _, _)| n.eq_ignore_ascii_case(&i.value)),
                    Expr::Value(v) => match &v.value {
                        sqlparser::ast::Value::Number(n, _) => {
                            n.parse::<usize>().ok().and_then(|n| n.checked_sub(1))
                        }
                        _ => None,
                    },
                    _ => None,
                };
                key.push(match by_alias {
                    Some(i) if matches!(e, Expr::Value(_)) || !cols.iter().any(|c| matches!(e, Expr::Identifier(id) if c.name.eq_ignore_ascii_case(&id.value))) => out.get(i).cloned().unwrap_or(Value::Null),
                    _ => self.eval(e, &cols, row, g)?,
                });
            }
            out_rows.push((out, key));
        }

        // DISTINCT
        if matches!(s.distinct, Some(sqlparser::ast::Distinct::Distinct)) {
            let cmps: Vec<TextCmp> = item_sides.iter().map(TextSide::cmp).collect();
            let mut seen = std::collections::HashSet::new();
            out_rows.retain(|(r, _)| {
                seen.insert(
                    r.iter()
                        .zip(&cmps)
                        .map(|(v, c)| v.key_in(c))
                        .collect::<Vec<_>>(),
                )
            });
        }
        if !order.is_empty() && !prefiltered {
            let mut keyed: Vec<(Vec<Value>, Vec<Value>)> =
                out_rows.into_iter().map(|(r, k)| (k, r)).collect();
            sort_keyed(&mut keyed, order, &order_cmps)?;
            out_rows = keyed.into_iter().map(|(k, r)| (r, k)).collect();
        }
        if let Some(top) = &s.top {
            if top.percent || top.with_ties {
                return Err(SqlError::unsupported("TOP ... PERCENT / WITH TIES"));
            }
            let n = match &top.quantity {
                Some(TopQuantity::Constant(n)) => *n as usize,
                Some(TopQuantity::Expr(e)) => {
                    self.eval_const(e)?.as_i64()?.unwrap_or(0).max(0) as usize
                }
                None => usize::MAX,
            };
            out_rows.truncate(n);
        }
        let rows: Vec<Vec<Value>> = out_rows.into_iter().map(|(r, _)| r).collect();
        let mut out_cols = Vec::with_capacity(items.len());
        for (i, (name, e, direct)) in items.iter().enumerate() {
            let collation = match direct {
                Some(c) => cols[*c].collation,
                None => item_sides.get(i).and_then(TextSide::column_collation),
            };
            let (ty, nullable) = match (e, direct) {
                (_, Some(c)) => (cols[*c].ty, cols[*c].nullable),
                (Some(e), None) => match self.static_type(e, &cols) {
                    Some((t, n)) => (t, n),
                    None => (infer_type(rows.iter().map(|r| r[i].clone())), true),
                },
                (None, None) => (SqlType::Int, true),
            };
            out_cols.push(RelCol {
                qual: String::new(),
                name: name.clone(),
                ty,
                nullable,
                collation,
            });
        }
        Ok(Rel {
            cols: out_cols,
            rows,
        })
    }
}

/// Stable sort by evaluated keys, text as `cmps` says (one per key); NULLs sort first
/// ascending, as in SQL Server.
fn sort_keyed(
    rows: &mut [(Vec<Value>, Vec<Value>)],
    order: &[(Expr, bool)],
    cmps: &[TextCmp],
) -> SqlResult<()> {
    // geometry and geography have no order: SQL Server refuses to sort by them (249).
    if let Some(v) = rows
        .iter()
        .flat_map(|(keys, _)| keys.iter())
        .find(|v| matches!(v, Value::Spatial(..)))
    {
        return Err(SqlError::new(
            249,
            format!(
                "The type \"{}\" is not comparable. It cannot be used in the ORDER BY clause.",
                v.natural_type().name()
            ),
        ));
    }
    let mut err = None;
    rows.sort_by(|(a, _), (b, _)| {
        for (i, (_, asc)) in order.iter().enumerate() {
            let (x, y) = (&a[i], &b[i]);
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => match compare_in(x, y, cmps.get(i).unwrap_or(&TextCmp::default())) {
                    Ok(o) => o,
                    Err(e) => {
                        err.get_or_insert(e);
                        Ordering::Equal
                    }
                },
            };
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
