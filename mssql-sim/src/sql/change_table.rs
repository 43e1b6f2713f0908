//! The change-table fast path: paging `cdc.<capture_instance>_CT` and `cdc.lsn_time_mapping` in
//! stored order, as a CDC reader does page after page, without filtering and sorting the whole
//! table each time (SQL Server seeks their clustered indexes; a scan of every row per page made
//! the simulator slow down as a long run's tables grew).

use sqlparser::ast::{Expr, GroupByExpr, Select, SelectItem, TableFactor, TopQuantity};

use crate::error::SqlResult;
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::query::has_aggregate;
use crate::sql::rel::{Rel, table_cols};
use crate::value::Value;

/// The order change-table rows are stored in (capture appends them in commit order, then by
/// statement and sequence value) and the order a CDC reader pages them in.
const CHANGE_TABLE_ORDER: [&str; 4] =
    ["__$start_lsn", "__$command_id", "__$seqval", "__$operation"];

/// The order `cdc.lsn_time_mapping` rows are stored in: capture appends them in commit order.
const MAPPING_ORDER: [&str; 1] = ["start_lsn"];

/// The storage order of a CDC system table paged by LSN (its first column): change tables and
/// `cdc.lsn_time_mapping`.
fn storage_order(schema: &str, name: &str) -> Option<&'static [&'static str]> {
    if !schema.eq_ignore_ascii_case("cdc") {
        return None;
    }
    let name = name.to_lowercase();
    if name.ends_with("_ct") {
        Some(&CHANGE_TABLE_ORDER)
    } else if name == "lsn_time_mapping" {
        Some(&MAPPING_ORDER)
    } else {
        None
    }
}

impl Exec<'_> {
    /// Fast path for paging a change table: `SELECT TOP n ... FROM cdc.<ci>_CT WHERE
    /// __$start_lsn >= @a ... ORDER BY __$start_lsn[, __$command_id, __$seqval,
    /// __$operation]`, or `cdc.lsn_time_mapping` by `start_lsn`, ascending from a lower bound
    /// or descending from an upper one. Rows are already stored in that order, so the scan
    /// starts at the bound (binary search) and stops after n matches instead of filtering and
    /// sorting the whole table for every page. Returns the candidate rows; the normal
    /// pipeline then projects them.
    pub(crate) fn change_table_page(
        &mut self,
        s: &Select,
        order: &[(Expr, bool)],
    ) -> SqlResult<Option<Rel>> {
        let (Some(top), [twj]) = (&s.top, s.from.as_slice()) else {
            return Ok(None);
        };
        if !twj.joins.is_empty()
            || s.having.is_some()
            || s.distinct.is_some()
            || top.percent
            || top.with_ties
        {
            return Ok(None);
        }
        if !matches!(&s.group_by, GroupByExpr::Expressions(v, _) if v.is_empty())
            || s.projection.iter().any(|p| matches!(p, SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } if has_aggregate(e)))
        {
            return Ok(None);
        }
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = &twj.relation
        else {
            return Ok(None);
        };
        let parts = name_parts(name);
        let Ok(r) = self.resolve(&parts) else {
            return Ok(None);
        };
        let Some(stored) = storage_order(&r.schema, &r.name) else {
            return Ok(None);
        };
        let follows = |asc: bool| {
            !order.is_empty()
                && order.len() <= stored.len()
                && order.iter().zip(stored).all(|((e, a), want)| {
                    *a == asc
                        && matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(want))
                })
        };
        let ascending = if follows(true) {
            true
        } else if follows(false) {
            false
        } else {
            return Ok(None);
        };
        let lsn_column = stored[0];
        let limit = match &top.quantity {
            Some(TopQuantity::Constant(n)) => *n as usize,
            Some(TopQuantity::Expr(e)) => {
                self.eval_const(e)?.as_i64()?.unwrap_or(0).max(0) as usize
            }
            None => return Ok(None),
        };
        let bound = match &s.selection {
            Some(w) => self.lsn_bound(w, lsn_column, ascending),
            None => None,
        };
        let view = self.view();
        let (cols, start, end) = {
            let Ok(t) = self.table(&r) else {
                return Ok(None);
            };
            if !t.system {
                return Ok(None);
            }
            let cols = table_cols(
                t,
                alias
                    .as_ref()
                    .map(|a| a.name.value.as_str())
                    .unwrap_or(&t.name),
            );
            // Ascending: from the first row at or past the lower bound; descending: back from
            // the last row at or before the upper bound. The WHERE clause still decides.
            let split = |b: &[u8]| {
                t.versions.partition_point(|v| match v.values.first() {
                    Some(Value::Bytes(s)) if ascending => s.as_slice() < b,
                    Some(Value::Bytes(s)) => s.as_slice() <= b,
                    _ => true,
                })
            };
            match (&bound, ascending) {
                (Some(b), true) => (cols, split(b), t.versions.len()),
                (None, true) => (cols, 0, t.versions.len()),
                (Some(b), false) => (cols, 0, split(b)),
                (None, false) => (cols, 0, t.versions.len()),
            }
        };
        let mut rows = Vec::new();
        let (mut next, mut back) = (start, end);
        while rows.len() < limit && next < back {
            // Visible rows are copied out a chunk at a time (evaluating the WHERE clause
            // needs the engine mutably), so the table is looked up once per chunk, not per row.
            let step = (limit - rows.len()).clamp(64, 4096);
            let range = if ascending {
                next..back.min(next + step)
            } else {
                back.saturating_sub(step).max(next)..back
            };
            let candidates: Vec<Vec<Value>> = {
                let t = self.table(&r)?;
                let chunk = t.versions.get(range.clone()).unwrap_or_default().iter();
                let chunk: Box<dyn Iterator<Item = _>> = if ascending {
                    Box::new(chunk)
                } else {
                    Box::new(chunk.rev())
                };
                chunk
                    .filter(|v| view.visible(&self.eng.txns, v.xmin, v.xmax))
                    .map(|v| v.values.clone())
                    .collect()
            };
            if ascending {
                next = range.end;
            } else {
                back = range.start;
            }
            for row in candidates {
                if rows.len() >= limit {
                    break;
                }
                let keep = match &s.selection {
                    None => true,
                    Some(e) => self.eval(e, &cols, &row, None)?.as_bool() == Some(true),
                };
                if keep {
                    rows.push(row);
                }
            }
        }
        Ok(Some(Rel { cols, rows }))
    }

    /// A bound on the LSN column `column` implied by a WHERE clause, if one can be read off
    /// it: the lowest value it allows (`lower`) or the highest.
    fn lsn_bound(&mut self, e: &Expr, column: &str, lower: bool) -> Option<Vec<u8>> {
        use sqlparser::ast::BinaryOperator as B;
        let is_col =
            |e: &Expr| matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(column));
        let bytes = |v: Value| match v {
            Value::Bytes(b) => Some(b),
            _ => None,
        };
        match e {
            Expr::Nested(inner) => self.lsn_bound(inner, column, lower),
            Expr::BinaryOp {
                left,
                op: B::And,
                right,
            } => match (
                self.lsn_bound(left, column, lower),
                self.lsn_bound(right, column, lower),
            ) {
                // Both must hold: the tighter bound.
                (Some(a), Some(b)) => Some(if lower { a.max(b) } else { a.min(b) }),
                (a, b) => a.or(b),
            },
            Expr::BinaryOp {
                left,
                op: B::Or,
                right,
            } => {
                let a = self.lsn_bound(left, column, lower)?;
                let b = self.lsn_bound(right, column, lower)?;
                Some(if lower { a.min(b) } else { a.max(b) })
            }
            Expr::BinaryOp { left, op, right } if is_col(left) => match (op, lower) {
                (B::Gt | B::GtEq | B::Eq, true) | (B::Lt | B::LtEq | B::Eq, false) => {
                    bytes(self.eval_const(right).ok()?)
                }
                _ => None,
            },
            Expr::Between {
                expr,
                negated: false,
                low,
                high,
            } if is_col(expr) => bytes(self.eval_const(if lower { low } else { high }).ok()?),
            _ => None,
        }
    }
}
