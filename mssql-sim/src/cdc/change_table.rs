//! The change-table fast path: paging `cdc.<capture_instance>_CT` in stored order, as a CDC
//! reader does page after page, without filtering and sorting the whole table each time.

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

impl Exec<'_> {
    /// Fast path for paging a change table: `SELECT TOP n ... FROM cdc.<ci>_CT WHERE
    /// __$start_lsn >= @a ... ORDER BY __$start_lsn[, __$command_id, __$seqval,
    /// __$operation]`. Rows are already stored in that order, so the scan starts at the
    /// lower LSN bound (binary search) and stops after n matches instead of filtering and
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
        let in_storage_order = !order.is_empty()
            && order.len() <= CHANGE_TABLE_ORDER.len()
            && order
                .iter()
                .zip(CHANGE_TABLE_ORDER)
                .all(|((e, asc), want)| {
                    *asc && matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case(want))
                });
        if !in_storage_order {
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
        if !r.schema.eq_ignore_ascii_case("cdc") || !r.name.to_lowercase().ends_with("_ct") {
            return Ok(None);
        }
        let limit = match &top.quantity {
            Some(TopQuantity::Constant(n)) => *n as usize,
            Some(TopQuantity::Expr(e)) => {
                self.eval_const(e)?.as_i64()?.unwrap_or(0).max(0) as usize
            }
            None => return Ok(None),
        };
        let lower = match &s.selection {
            Some(w) => self.lsn_lower_bound(w),
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
            let start = match &lower {
                Some(lb) => t.versions.partition_point(|v| match v.values.first() {
                    Some(Value::Bytes(b)) => b.as_slice() < lb.as_slice(),
                    _ => true,
                }),
                None => 0,
            };
            (cols, start, t.versions.len())
        };
        let mut rows = Vec::new();
        let mut next = start;
        while rows.len() < limit && next < end {
            // Visible rows are copied out a chunk at a time (evaluating the WHERE clause
            // needs the engine mutably), so the table is looked up once per chunk, not per row.
            let chunk_end = end.min(next + (limit - rows.len()).clamp(64, 4096));
            let candidates: Vec<Vec<Value>> = {
                let t = self.table(&r)?;
                t.versions
                    .get(next..chunk_end)
                    .unwrap_or_default()
                    .iter()
                    .filter(|v| view.visible(&self.eng.txns, v.xmin, v.xmax))
                    .map(|v| v.values.clone())
                    .collect()
            };
            next = chunk_end;
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

    /// A lower bound on `__$start_lsn` implied by a WHERE clause, if one can be read off it.
    fn lsn_lower_bound(&mut self, e: &Expr) -> Option<Vec<u8>> {
        use sqlparser::ast::BinaryOperator as B;
        let is_col = |e: &Expr| matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("__$start_lsn"));
        match e {
            Expr::Nested(inner) => self.lsn_lower_bound(inner),
            Expr::BinaryOp {
                left,
                op: B::And,
                right,
            } => match (self.lsn_lower_bound(left), self.lsn_lower_bound(right)) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
            Expr::BinaryOp {
                left,
                op: B::Or,
                right,
            } => {
                let a = self.lsn_lower_bound(left)?;
                let b = self.lsn_lower_bound(right)?;
                Some(a.min(b))
            }
            Expr::BinaryOp {
                left,
                op: B::Gt | B::GtEq | B::Eq,
                right,
            } if is_col(left) => match self.eval_const(right).ok()? {
                Value::Bytes(b) => Some(b),
                _ => None,
            },
            Expr::Between {
                expr,
                negated: false,
                low,
                ..
            } if is_col(expr) => match self.eval_const(low).ok()? {
                Value::Bytes(b) => Some(b),
                _ => None,
            },
            _ => None,
        }
    }
}
