//! Built-in functions: aggregates, string/date/system functions, and the static result
//! types the SELECT list reports for them.
//!
//! - this file: argument evaluation, aggregates and the scalar-function dispatch (string,
//!   NULL-handling, metadata and system functions inline).
//! - `datetime`: `DATEPART`/`DATEADD`/`DATEDIFF` and `TODATETIMEOFFSET`.
//! - `result_type`: the static type the SELECT list reports for an expression.
//! - `clr`: the CLR types' static (`hierarchyid::Parse`) and instance (`h.ToString()`)
//!   methods.
//! - `spatial`: `geometry`/`geography` constructors, methods and properties.

mod clr;
mod datetime;
mod result_type;
mod spatial;

use chrono::Utc;
use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};

use crate::error::{SqlError, SqlResult};
use crate::sql::eval::arith;
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::RelCol;
use crate::value::{Value, compare};
use datetime::to_datetimeoffset;

impl Exec<'_> {
    pub(crate) fn args(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Vec<Value>> {
        let mut out = Vec::new();
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                        out.push(self.eval(e, cols, row, group)?)
                    }
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => out.push(Value::Int(1)),
                    _ => return Err(SqlError::unsupported("named function arguments")),
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn arg_exprs(f: &sqlparser::ast::Function) -> Vec<Expr> {
        match &f.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    }

    pub(crate) fn aggregate(
        &mut self,
        name: &str,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        group: &[Vec<Value>],
    ) -> SqlResult<Value> {
        let star = matches!(&f.args, FunctionArguments::List(l) if l.args.iter().any(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Wildcard))));
        let distinct = matches!(&f.args, FunctionArguments::List(l) if matches!(l.duplicate_treatment, Some(sqlparser::ast::DuplicateTreatment::Distinct)));
        if (name == "count" || name == "count_big") && star {
            return Ok(Value::Int(group.len() as i64));
        }
        let arg = Self::arg_exprs(f).into_iter().next().ok_or_else(|| {
            SqlError::new(174, format!("The {name} function requires 1 argument(s)."))
        })?;
        let mut vals = Vec::new();
        for r in group {
            let v = self.eval(&arg, cols, r, None)?;
            if !v.is_null() {
                vals.push(v);
            }
        }
        // COUNT(DISTINCT x), MIN and MAX compare text by the argument's collation.
        let cmp = self.text_side(&arg, cols)?.cmp();
        if distinct {
            let mut seen = std::collections::HashSet::new();
            vals.retain(|v| seen.insert(v.key_in(&cmp)));
        }
        match name {
            "count" | "count_big" => Ok(Value::Int(vals.len() as i64)),
            "min" | "max" => {
                let mut best: Option<Value> = None;
                for v in vals {
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let o = crate::value::compare_in(&v, &b, &cmp)?;
                            let better = if name == "min" {
                                o == std::cmp::Ordering::Less
                            } else {
                                o == std::cmp::Ordering::Greater
                            };
                            if better { v } else { b }
                        }
                    });
                }
                Ok(best.unwrap_or(Value::Null))
            }
            "sum" | "avg" => {
                if vals.is_empty() {
                    return Ok(Value::Null);
                }
                let n = vals.len() as i64;
                let mut acc = Value::Int(0);
                for v in vals {
                    acc = arith(&BinaryOperator::Plus, acc, v)?;
                }
                if name == "avg" {
                    return match acc {
                        Value::Int(i) => Ok(Value::Int(i / n)),
                        other => arith(&BinaryOperator::Divide, other, Value::Int(n)),
                    };
                }
                Ok(acc)
            }
            _ => Err(SqlError::unsupported(format!("aggregate {name}"))),
        }
    }

    pub(crate) fn function(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        if f.over.is_some() {
            return Err(SqlError::unsupported("window functions (OVER)"));
        }
        if let Some(v) = self.clr_instance(f, cols, row, group)? {
            return Ok(v);
        }
        let parts = name_parts(&f.name);
        let name = parts.last().map(|s| s.to_lowercase()).unwrap_or_default();
        let schema = if parts.len() > 1 {
            parts[parts.len() - 2].to_lowercase()
        } else {
            String::new()
        };
        if matches!(
            name.as_str(),
            "count" | "min" | "max" | "sum" | "avg" | "count_big"
        ) {
            let g = group.ok_or_else(|| SqlError::new(147, "An aggregate may not appear in the WHERE clause unless it is in a subquery contained in a HAVING clause or a select list, and the column being aggregated is an outer reference."))?;
            return self.aggregate(&name, f, cols, g);
        }
        if name == "dateadd" || name == "datediff" {
            return self.date_function(&name, f, cols, row, group);
        }
        if name == "datepart" {
            return self.datepart(f, cols, row, group);
        }
        if name == "concat" {
            return self.concat(f, cols, row, group);
        }
        if name.starts_with("fn_cdc_") || name == "fn_cdc_is_bit_set" {
            let a = self.args(f, cols, row, group)?;
            return self.cdc_scalar(&name, a);
        }
        let _ = schema;
        let a = self.args(f, cols, row, group)?;
        if let Some(v) = self.clr_static(&name, &a)? {
            return Ok(v);
        }
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        let text = |i: usize| a.get(i).and_then(|v| v.to_text());
        Ok(match name.as_str() {
            "isnull" => {
                if arg(0).is_null() {
                    arg(1)
                } else {
                    arg(0)
                }
            }
            "coalesce" => a
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null),
            "nullif" => {
                let (x, y) = (arg(0), arg(1));
                if !x.is_null() && !y.is_null() && compare(&x, &y)? == std::cmp::Ordering::Equal {
                    Value::Null
                } else {
                    x
                }
            }
            "len" => text(0)
                .map(|s| Value::Int(s.trim_end().chars().count() as i64))
                .unwrap_or(Value::Null),
            "datalength" => match arg(0) {
                Value::Null => Value::Null,
                Value::Bytes(b) => Value::Int(b.len() as i64),
                Value::Str(s) => Value::Int(s.encode_utf16().count() as i64 * 2),
                other => Value::Int(other.natural_type().max_length() as i64),
            },
            "upper" => text(0)
                .map(|s| Value::Str(s.to_uppercase()))
                .unwrap_or(Value::Null),
            "lower" => text(0)
                .map(|s| Value::Str(s.to_lowercase()))
                .unwrap_or(Value::Null),
            "ltrim" => text(0)
                .map(|s| Value::Str(s.trim_start().to_string()))
                .unwrap_or(Value::Null),
            "rtrim" => text(0)
                .map(|s| Value::Str(s.trim_end().to_string()))
                .unwrap_or(Value::Null),
            "concat" => Value::Str(a.iter().filter_map(|v| v.to_text()).collect()),
            "replace" => match (text(0), text(1), text(2)) {
                (Some(s), Some(f), Some(t)) => Value::Str(s.replace(&f, &t)),
                _ => Value::Null,
            },
            "left" | "right" => match (text(0), arg(1).as_i64()?) {
                (Some(s), Some(n)) => {
                    let n = n.max(0) as usize;
                    let chars: Vec<char> = s.chars().collect();
                    let take = n.min(chars.len());
                    Value::Str(if name == "left" {
                        chars[..take].iter().collect()
                    } else {
                        chars[chars.len() - take..].iter().collect()
                    })
                }
                _ => Value::Null,
            },
            "abs" => match arg(0) {
                Value::Int(i) => Value::Int(i.abs()),
                Value::Decimal(d, s) => Value::Decimal(d.abs(), s),
                Value::Float(x) => Value::Float(x.abs()),
                Value::Money(m) => Value::Money(m.abs()),
                other => other,
            },
            "getdate" | "sysdatetime" | "current_timestamp" => {
                Value::DateTime(crate::engine::catalog::now())
            }
            "getutcdate" | "sysutcdatetime" => Value::DateTime(Utc::now().naive_utc()),
            "sysdatetimeoffset" => Value::DateTimeOffset(Utc::now().fixed_offset()),
            "todatetimeoffset" => to_datetimeoffset(arg(0), arg(1))?,
            "newid" => Value::Guid(uuid::Uuid::new_v4()),
            "db_name" => match arg(0) {
                Value::Null if a.is_empty() => Value::Str(self.eng.db(&self.sess.db)?.name.clone()),
                v => {
                    let id = v.as_i64()?.unwrap_or(0);
                    self.eng
                        .dbs
                        .values()
                        .find(|d| d.id as i64 == id)
                        .map(|d| Value::Str(d.name.clone()))
                        .unwrap_or(Value::Null)
                }
            },
            "db_id" => match text(0) {
                None => Value::Int(self.eng.db(&self.sess.db)?.id as i64),
                Some(n) => self
                    .eng
                    .db(&n)
                    .map(|d| Value::Int(d.id as i64))
                    .unwrap_or(Value::Null),
            },
            "object_id" => {
                let Some(n) = text(0) else {
                    return Ok(Value::Null);
                };
                let parts: Vec<String> = n
                    .split('.')
                    .map(|p| p.trim_matches(|c| c == '[' || c == ']').to_string())
                    .collect();
                match self
                    .resolve(&parts)
                    .and_then(|r| self.table(&r).map(|t| t.object_id))
                {
                    Ok(id) => Value::Int(id as i64),
                    Err(_) => Value::Null,
                }
            }
            "object_name" => {
                let id = arg(0).as_i64()?.unwrap_or(0) as i32;
                self.eng
                    .db(&self.sess.db)?
                    .table_by_id(id)
                    .map(|t| Value::Str(t.name.clone()))
                    .unwrap_or(Value::Null)
            }
            "object_schema_name" => {
                let id = arg(0).as_i64()?.unwrap_or(0) as i32;
                self.eng
                    .db(&self.sess.db)?
                    .table_by_id(id)
                    .map(|t| Value::Str(t.schema.clone()))
                    .unwrap_or(Value::Null)
            }
            "schema_name" => {
                let db = self.eng.db(&self.sess.db)?;
                match arg(0).as_i64()? {
                    None => Value::Str("dbo".into()),
                    Some(id) => db
                        .schema_name(id as i32)
                        .map(|s| Value::Str(s.to_string()))
                        .unwrap_or(Value::Null),
                }
            }
            "schema_id" => {
                let db = self.eng.db(&self.sess.db)?;
                match text(0) {
                    None => Value::Int(1),
                    Some(n) => db
                        .schema_id(&n)
                        .map(|i| Value::Int(i as i64))
                        .unwrap_or(Value::Null),
                }
            }
            "user_name" | "suser_name" | "suser_sname" => Value::Str(self.sess.user.clone()),
            "serverproperty" => match text(0).unwrap_or_default().to_lowercase().as_str() {
                "productversion" => Value::Str("16.0.1000.6".into()),
                "edition" => Value::Str("Developer Edition (64-bit)".into()),
                "engineedition" => Value::Int(3),
                _ => Value::Null,
            },
            other => {
                return Err(SqlError::new(
                    195,
                    format!("'{other}' is not a recognized built-in function name."),
                ));
            }
        })
    }
}
