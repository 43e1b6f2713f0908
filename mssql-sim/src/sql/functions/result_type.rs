//! The static result type (and nullability) the SELECT list reports for an expression
//! before any row is read: columns, variables, literals, casts and built-in functions.

use sqlparser::ast::{BinaryOperator, Expr};

use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::query::has_aggregate;
use crate::sql::rel::RelCol;
use crate::value::{Len, SqlType};

impl Exec<'_> {
    /// The declared type of an expression where it is known without evaluating it.
    pub(crate) fn static_type(&self, e: &Expr, cols: &[RelCol]) -> Option<(SqlType, bool)> {
        match e {
            Expr::Identifier(i) if !i.value.starts_with('@') => cols
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&i.value))
                .map(|c| (c.ty, c.nullable)),
            Expr::Identifier(i) => self
                .sess
                .vars
                .get(&i.value.to_lowercase())
                .map(|(t, _)| (*t, true)),
            Expr::CompoundIdentifier(ids) => {
                let n = ids.last()?.value.clone();
                let q = if ids.len() > 1 {
                    Some(ids[ids.len() - 2].value.to_lowercase())
                } else {
                    None
                };
                cols.iter()
                    .find(|c| {
                        c.name.eq_ignore_ascii_case(&n) && q.as_ref().is_none_or(|q| *q == c.qual)
                    })
                    .map(|c| (c.ty, c.nullable))
            }
            Expr::Nested(e) => self.static_type(e, cols),
            Expr::Value(v) => crate::sql::eval::literal(&v.value)
                .ok()
                .filter(|x| !x.is_null())
                .map(|x| (x.natural_type(), false)),
            Expr::Cast { data_type, .. }
            | Expr::Convert {
                data_type: Some(data_type),
                ..
            } => self
                .cast_type(&data_type.to_string())
                .ok()
                .map(|t| (t, true)),
            Expr::Function(f) => {
                let name = name_parts(&f.name).last()?.to_lowercase();
                match name.as_str() {
                    "fn_cdc_get_min_lsn"
                    | "fn_cdc_get_max_lsn"
                    | "fn_cdc_increment_lsn"
                    | "fn_cdc_decrement_lsn"
                    | "fn_cdc_map_time_to_lsn" => Some((SqlType::Binary(10), true)),
                    "fn_cdc_map_lsn_to_time" => Some((SqlType::DateTime, true)),
                    "count" => Some((SqlType::Int, false)),
                    "count_big" => Some((SqlType::BigInt, false)),
                    "db_name" | "schema_name" | "object_name" => {
                        Some((SqlType::NVarChar(Len::N(128)), true))
                    }
                    "object_id" | "db_id" | "schema_id" => Some((SqlType::Int, true)),
                    "getdate" | "getutcdate" => Some((SqlType::DateTime, false)),
                    "sysdatetime" | "sysutcdatetime" => Some((SqlType::DateTime2(7), false)),
                    "sysdatetimeoffset" => Some((SqlType::DateTimeOffset(7), false)),
                    "datepart" => Some((SqlType::Int, true)),
                    // hierarchyid's methods (Microsoft, "GetLevel", "ToString"): smallint and
                    // nvarchar(4000).
                    "getlevel" if f.name.0.len() > 1 => Some((SqlType::SmallInt, true)),
                    "tostring" if f.name.0.len() > 1 => {
                        Some((SqlType::NVarChar(Len::N(4000)), true))
                    }
                    "sql_variant_property" => Some((SqlType::Variant, true)),
                    // The spatial types' text and WKB are (max) types.
                    "stastext" if f.name.0.len() > 1 => Some((SqlType::NVarChar(Len::Max), true)),
                    "stasbinary" if f.name.0.len() > 1 => {
                        Some((SqlType::VarBinary(Len::Max), true))
                    }
                    n if n.starts_with("geometry::") => Some((SqlType::Geometry, true)),
                    n if n.starts_with("geography::") => Some((SqlType::Geography, true)),
                    "hierarchyid::parse" | "hierarchyid::getroot" => {
                        Some((SqlType::HierarchyId, true))
                    }
                    // The precision of its first argument's type (datetime counts as 3).
                    "todatetimeoffset" => {
                        let first = Self::arg_exprs(f).into_iter().next()?;
                        let p = match self.static_type(&first, cols)?.0 {
                            SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => p,
                            SqlType::Date | SqlType::SmallDateTime => 0,
                            _ => 3,
                        };
                        Some((SqlType::DateTimeOffset(p), true))
                    }
                    "min" | "max" => {
                        let arg = Self::arg_exprs(f).into_iter().next()?;
                        if has_aggregate(&arg) {
                            None
                        } else {
                            self.static_type(&arg, cols).map(|(t, _)| (t, true))
                        }
                    }
                    // SQL Server's SUM/AVG result types: int for the small integers,
                    // bigint for bigint, decimal(38, s) for decimals, else the argument's.
                    "sum" | "avg" => {
                        let arg = Self::arg_exprs(f).into_iter().next()?;
                        let (t, _) = self.static_type(&arg, cols)?;
                        Some((
                            match t {
                                SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
                                SqlType::Decimal(_, s) if name == "sum" => SqlType::Decimal(38, s),
                                SqlType::Decimal(_, s) => SqlType::Decimal(38, s.max(6)),
                                SqlType::Real => SqlType::Float,
                                other => other,
                            },
                            true,
                        ))
                    }
                    _ => None,
                }
            }
            // Arithmetic takes the operand type with the higher precedence.
            Expr::BinaryOp {
                left,
                op:
                    BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Modulo,
                right,
            } => {
                let (l, ln) = self.static_type(left, cols)?;
                let (r, rn) = self.static_type(right, cols)?;
                let rank = |t: &SqlType| match t {
                    SqlType::TinyInt => 1,
                    SqlType::SmallInt => 2,
                    SqlType::Int => 3,
                    SqlType::BigInt => 4,
                    _ => 0,
                };
                match (rank(&l), rank(&r)) {
                    (a, b) if a > 0 && b > 0 => Some((if a >= b { l } else { r }, ln || rn)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}
