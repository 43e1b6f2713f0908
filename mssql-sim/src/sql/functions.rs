//! Built-in functions: aggregates, string/date/system functions, and the static result
//! types the SELECT list reports for them.

use chrono::Utc;
use sqlparser::ast::{BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments};

use crate::error::{SqlError, SqlResult};
use crate::sql::eval::arith;
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::query::has_aggregate;
use crate::sql::rel::RelCol;
use crate::value::{Len, SqlType, Value, compare};

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
        if distinct {
            let mut seen = std::collections::HashSet::new();
            vals.retain(|v| seen.insert(v.key()));
        }
        match name {
            "count" | "count_big" => Ok(Value::Int(vals.len() as i64)),
            "min" | "max" => {
                let mut best: Option<Value> = None;
                for v in vals {
                    best = Some(match best {
                        None => v,
                        Some(b) => {
                            let o = compare(&v, &b)?;
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
        if name.starts_with("fn_cdc_") || name == "fn_cdc_is_bit_set" {
            let a = self.args(f, cols, row, group)?;
            return self.cdc_scalar(&name, a);
        }
        let _ = schema;
        let a = self.args(f, cols, row, group)?;
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

    /// DATEPART(part, date): an int. `tzoffset`/`tz` is the offset in minutes (0 for types
    /// without one); the usual parts by their names and abbreviations.
    pub(crate) fn datepart(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        use chrono::{Datelike, Timelike};
        let args = Self::arg_exprs(f);
        if args.len() != 2 {
            return Err(SqlError::new(
                174,
                "The datepart function requires 2 argument(s).",
            ));
        }
        let part = match &args[0] {
            Expr::Identifier(i) => i.value.to_lowercase(),
            _ => {
                return Err(SqlError::new(
                    1023,
                    "Invalid parameter 1 specified for datepart.",
                ));
            }
        };
        let v = self.eval(&args[1], cols, row, group)?;
        let (dt, offset_minutes) = match v {
            Value::Null => return Ok(Value::Null),
            Value::DateTime(d) => (d, 0),
            Value::Date(d) => (d.and_time(chrono::NaiveTime::MIN), 0),
            Value::Time(t) => (chrono::NaiveDate::MIN.and_time(t), 0),
            Value::DateTimeOffset(d) => (d.naive_local(), d.offset().local_minus_utc() / 60),
            Value::Str(s) => match crate::value::parse_datetime(&s) {
                Some(d) => (d, 0),
                None => {
                    return Err(SqlError::new(
                        241,
                        "Conversion failed when converting date and/or time from character string.",
                    ));
                }
            },
            // SQL Server's text names the argument's type (error catalogue 8116).
            other => {
                return Err(SqlError::new(
                    8116,
                    format!(
                        "Argument data type {} is invalid for argument 2 of datepart function.",
                        other.natural_type().name()
                    ),
                ));
            }
        };
        let n = match part.as_str() {
            "tzoffset" | "tz" => offset_minutes as i64,
            "year" | "yy" | "yyyy" => dt.year() as i64,
            "quarter" | "qq" | "q" => (dt.month0() / 3 + 1) as i64,
            "month" | "mm" | "m" => dt.month() as i64,
            "dayofyear" | "dy" | "y" => dt.ordinal() as i64,
            "day" | "dd" | "d" => dt.day() as i64,
            // With SQL Server's default DATEFIRST 7 (Sunday is day 1).
            "weekday" | "dw" => dt.weekday().num_days_from_sunday() as i64 + 1,
            "hour" | "hh" => dt.hour() as i64,
            "minute" | "mi" | "n" => dt.minute() as i64,
            "second" | "ss" | "s" => dt.second() as i64,
            "millisecond" | "ms" => (dt.nanosecond() / 1_000_000) as i64,
            "microsecond" | "mcs" => (dt.nanosecond() / 1_000) as i64,
            "nanosecond" | "ns" => dt.nanosecond() as i64,
            other => {
                return Err(SqlError::new(
                    155,
                    format!("'{other}' is not a recognized datepart option."),
                ));
            }
        };
        Ok(Value::Int(n))
    }

    /// DATEADD(part, n, date) and DATEDIFF(part, start, end).
    pub(crate) fn date_function(
        &mut self,
        name: &str,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        let args = Self::arg_exprs(f);
        if args.len() != 3 {
            return Err(SqlError::new(
                174,
                format!("The {name} function requires 3 argument(s)."),
            ));
        }
        let part = match &args[0] {
            Expr::Identifier(i) => i.value.to_lowercase(),
            _ => {
                return Err(SqlError::new(
                    1023,
                    format!("Invalid parameter 1 specified for {name}."),
                ));
            }
        };
        let a = self.eval(&args[1], cols, row, group)?;
        let b = self.eval(&args[2], cols, row, group)?;
        if a.is_null() || b.is_null() {
            return Ok(Value::Null);
        }
        let unit_ns: Option<i64> = match part.as_str() {
            "day" | "dd" | "d" | "dayofyear" | "dy" | "y" => Some(86_400_000_000_000),
            "week" | "wk" | "ww" => Some(7 * 86_400_000_000_000),
            "hour" | "hh" => Some(3_600_000_000_000),
            "minute" | "mi" | "n" => Some(60_000_000_000),
            "second" | "ss" | "s" => Some(1_000_000_000),
            "millisecond" | "ms" => Some(1_000_000),
            "microsecond" | "mcs" => Some(1_000),
            "nanosecond" | "ns" => Some(1),
            _ => None,
        };
        let months: Option<i64> = match part.as_str() {
            "year" | "yy" | "yyyy" => Some(12),
            "quarter" | "qq" | "q" => Some(3),
            "month" | "mm" | "m" => Some(1),
            _ => None,
        };
        let bad_part =
            || SqlError::new(155, format!("'{part}' is not a recognized {name} option."));
        if name == "dateadd" {
            let n = a.as_i64()?.unwrap_or(0);
            let base = crate::value::as_datetime(&b)
                .ok_or_else(|| SqlError::conversion("DATEADD needs a date/time value"))?;
            let moved = match (unit_ns, months) {
                (Some(u), _) => {
                    base.checked_add_signed(chrono::Duration::nanoseconds(n.saturating_mul(u)))
                }
                (None, Some(m)) => {
                    let total = n.saturating_mul(m);
                    if total >= 0 {
                        base.checked_add_months(chrono::Months::new(total as u32))
                    } else {
                        base.checked_sub_months(chrono::Months::new(total.unsigned_abs() as u32))
                    }
                }
                _ => return Err(bad_part()),
            }
            .ok_or_else(|| {
                SqlError::new(
                    517,
                    "Adding a value to a 'datetime' column caused an overflow.",
                )
            })?;
            return Ok(match b {
                Value::Date(_) => Value::Date(moved.date()),
                Value::DateTimeOffset(d) => {
                    Value::DateTimeOffset(moved.and_utc().with_timezone(d.offset()))
                }
                _ => Value::DateTime(moved),
            });
        }
        let x = crate::value::as_datetime(&a)
            .ok_or_else(|| SqlError::conversion("DATEDIFF needs date/time values"))?;
        let y = crate::value::as_datetime(&b)
            .ok_or_else(|| SqlError::conversion("DATEDIFF needs date/time values"))?;
        use chrono::{Datelike, Timelike};
        let diff = match (unit_ns, months) {
            // DATEDIFF counts unit boundaries crossed, so both ends are truncated first.
            (Some(u), _) => {
                let ns = |d: chrono::NaiveDateTime| -> i128 {
                    let days = d.date().num_days_from_ce() as i128;
                    days * 86_400_000_000_000
                        + d.time().num_seconds_from_midnight() as i128 * 1_000_000_000
                        + d.time().nanosecond() as i128
                };
                let u = u as i128;
                (ns(y).div_euclid(u) - ns(x).div_euclid(u)) as i64
            }
            (None, Some(m)) => {
                let idx = |d: chrono::NaiveDateTime| (d.year() as i64 * 12 + d.month0() as i64) / m;
                idx(y) - idx(x)
            }
            _ => return Err(bad_part()),
        };
        Ok(Value::Int(diff))
    }

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

/// TODATETIMEOFFSET(expression, offset): the same local date and time at the given offset
/// (minutes as an int, or `[+|-]hh:mm`); offsets beyond ±14:00 fail with 9812.
fn to_datetimeoffset(v: Value, offset: Value) -> SqlResult<Value> {
    let minutes = match offset {
        Value::Null => return Ok(Value::Null),
        Value::Int(n) => n,
        Value::Str(s) => {
            let t = s.trim();
            let (sign, rest) = match t.strip_prefix('-') {
                Some(r) => (-1, r),
                None => (1, t.strip_prefix('+').unwrap_or(t)),
            };
            let mut it = rest.split(':');
            let h = it.next().and_then(|x| x.parse::<i64>().ok());
            let m = it.next().and_then(|x| x.parse::<i64>().ok());
            match (h, m) {
                (Some(h), Some(m)) => sign * (h * 60 + m),
                _ => {
                    return Err(SqlError::new(
                        9812,
                        "The timezone provided to builtin function todatetimeoffset is invalid.",
                    ));
                }
            }
        }
        other => {
            return Err(SqlError::new(
                8116,
                format!(
                    "Argument data type {} is invalid for argument 2 of todatetimeoffset function.",
                    other.natural_type().name()
                ),
            ));
        }
    };
    let naive = match v {
        Value::Null => return Ok(Value::Null),
        Value::DateTime(d) => d,
        Value::Date(d) => d.and_time(chrono::NaiveTime::MIN),
        Value::DateTimeOffset(d) => d.naive_local(),
        Value::Str(s) => crate::value::parse_datetime(&s).ok_or_else(|| {
            SqlError::new(
                241,
                "Conversion failed when converting date and/or time from character string.",
            )
        })?,
        other => {
            return Err(SqlError::new(
                8116,
                format!(
                    "Argument data type {} is invalid for argument 1 of todatetimeoffset function.",
                    other.natural_type().name()
                ),
            ));
        }
    };
    let tz = (minutes.abs() <= 14 * 60)
        .then(|| chrono::FixedOffset::east_opt((minutes * 60) as i32))
        .flatten()
        .ok_or_else(|| {
            SqlError::new(
                9812,
                "The timezone provided to builtin function todatetimeoffset is invalid.",
            )
        })?;
    use chrono::TimeZone;
    match tz.from_local_datetime(&naive).single() {
        Some(d) => Ok(Value::DateTimeOffset(d)),
        None => Err(SqlError::new(
            9812,
            "The timezone provided to builtin function todatetimeoffset is invalid.",
        )),
    }
}
