//! Which rows a search meets: a WHERE that pins every primary-key column to a constant or
//! variable is a seek of that key (and waits only for its rows); anything else is read as a
//! scan of the whole table.

use sqlparser::ast::Expr;

use crate::engine::catalog::TableRef;
use crate::sql::exec::{Exec, Seek};
use crate::value::Value;

impl Exec<'_> {
    /// The seek a SELECT makes: its FROM is one table with a primary key, and its WHERE is
    /// a conjunction holding `column = constant-or-variable` for every key column. `None`
    /// for anything else (read as a scan).
    pub(crate) fn primary_key_seek(&mut self, s: &sqlparser::ast::Select) -> Option<Seek> {
        use sqlparser::ast::TableFactor;
        let [from] = s.from.as_slice() else {
            return None;
        };
        if !from.joins.is_empty() {
            return None;
        }
        let TableFactor::Table {
            name, args: None, ..
        } = &from.relation
        else {
            return None;
        };
        let r = self.resolve(&crate::sql::parse::name_parts(name)).ok()?;
        self.key_seek(&r, s.selection.as_ref())
    }

    /// The seek a search of table `r` with WHERE `selection` makes: `selection` is a
    /// conjunction holding `column = constant-or-variable` for every primary-key column.
    /// `None` for anything else (a scan).
    pub(super) fn key_seek(&mut self, r: &TableRef, selection: Option<&Expr>) -> Option<Seek> {
        use sqlparser::ast::BinaryOperator;
        let mut conjuncts = vec![selection?];
        let mut pinned: Vec<(String, &Expr)> = Vec::new();
        while let Some(e) = conjuncts.pop() {
            match e {
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::And,
                    right,
                } => {
                    conjuncts.push(left);
                    conjuncts.push(right);
                }
                Expr::Nested(inner) => conjuncts.push(inner),
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq,
                    right,
                } => {
                    let column = |e: &Expr| match e {
                        Expr::Identifier(i) if !i.value.starts_with('@') => Some(i.value.clone()),
                        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
                        _ => None,
                    };
                    let value = |e: &Expr| {
                        matches!(e, Expr::Value(_))
                            || matches!(e, Expr::Identifier(i) if i.value.starts_with('@'))
                    };
                    if let (Some(c), true) = (column(left), value(right)) {
                        pinned.push((c, right));
                    } else if let (Some(c), true) = (column(right), value(left)) {
                        pinned.push((c, left));
                    }
                }
                _ => {}
            }
        }
        let (pk, columns) = {
            let t = self.table(r).ok()?;
            (
                t.pk.clone(),
                t.columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty))
                    .collect::<Vec<_>>(),
            )
        };
        if pk.is_empty() {
            return None;
        }
        let mut values = vec![Value::Null; columns.len()];
        for &p in &pk {
            let (name, ty) = columns.get(p)?;
            let (_, e) = pinned.iter().find(|(c, _)| c.eq_ignore_ascii_case(name))?;
            let v = self.eval_const(e).ok()?;
            values[p] = crate::value::coerce(v, ty).ok()?;
        }
        let key = self.table(r).ok()?.pk_key(&values)?;
        Some(Seek {
            table: (
                r.db.clone(),
                crate::engine::catalog::key(&r.schema, &r.name),
            ),
            keys: vec![key],
        })
    }
}
