//! Expression evaluation with T-SQL's three-valued logic and the built-in functions the
//! simulator knows.
//!
//! - this file: [`Exec::eval`], an expression against a row, its columns and the session's
//!   variables.
//! - `ops`: literals, `LIKE`, comparison and arithmetic on values.
//!
//! Text comparisons follow the operands' collation and Unicode-ness ([`Exec::text_cmp`]):
//! a column brings its collation (implicit), `COLLATE` overrides (explicit), literals,
//! variables and parameters take the database default (coercible); the comparison is
//! Unicode when either side is nchar/nvarchar/ntext, an `N''` literal or an nvarchar
//! variable or parameter.

mod ops;

use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value as AstValue};

use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::ident_text;
use crate::sql::rel::RelCol;
use crate::value::collation::{self, unicode_text};
use crate::value::{Collation, SqlType, TextCmp, Value, coerce, compare_in};
pub(crate) use ops::{arith, like, like_in, literal};
use ops::{bool_val, compare_op};

/// Collation precedence (Microsoft, "Collation precedence"): how an operand's collation was
/// obtained, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Derivation {
    /// Literals, variables, parameters, CAST: the database default.
    Coercible,
    /// A column's collation.
    Implicit,
    /// `expr COLLATE name`.
    Explicit,
}

/// What a text operand brings to a comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextSide {
    /// Whether the operand is Unicode text; `None` when its type is unknown or not text.
    unicode: Option<bool>,
    collation: Collation,
    derivation: Derivation,
}

impl TextSide {
    /// How the operand's values compare with each other (ORDER BY, GROUP BY, MIN/MAX).
    pub(crate) fn cmp(&self) -> TextCmp {
        TextCmp {
            collation: self.collation,
            unicode: self.unicode.unwrap_or(true),
        }
    }

    /// A relation column as an operand (implicit when it has a collation of its own).
    pub(crate) fn of_column(c: &RelCol) -> TextSide {
        TextSide {
            unicode: unicode_text(&c.ty),
            collation: c.collation.unwrap_or_default(),
            derivation: if c.collation.is_some() {
                Derivation::Implicit
            } else {
                Derivation::Coercible
            },
        }
    }

    /// The collation a relation column computed from this operand carries.
    pub(crate) fn column_collation(&self) -> Option<Collation> {
        (self.derivation != Derivation::Coercible).then_some(self.collation)
    }
}

/// SQL Server's name of a comparison operation in error 468.
fn operation_name(op: &BinaryOperator) -> &'static str {
    match op {
        BinaryOperator::NotEq => "not equal to",
        BinaryOperator::Lt => "less than",
        BinaryOperator::LtEq => "less than or equal to",
        BinaryOperator::Gt => "greater than",
        BinaryOperator::GtEq => "greater than or equal to",
        _ => "equal to",
    }
}

/// Resolves the collation of a comparison of two operands by collation precedence, and
/// whether it is Unicode (either side Unicode: the other is converted by data type
/// precedence). Two different implicit or explicit collations: error 468.
pub(crate) fn resolve_text(l: &TextSide, r: &TextSide, operation: &str) -> SqlResult<TextCmp> {
    let collation = match l.derivation.cmp(&r.derivation) {
        std::cmp::Ordering::Greater => l.collation,
        std::cmp::Ordering::Less => r.collation,
        std::cmp::Ordering::Equal => {
            if l.collation != r.collation && l.derivation != Derivation::Coercible {
                return Err(SqlError::new(
                    468,
                    format!(
                        "Cannot resolve the collation conflict between \"{}\" and \"{}\" in the {operation} operation.",
                        l.collation, r.collation
                    ),
                ));
            }
            l.collation
        }
    };
    let unicode = match (l.unicode, r.unicode) {
        (Some(a), Some(b)) => a || b,
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => true,
    };
    Ok(TextCmp { collation, unicode })
}

impl Exec<'_> {
    /// The relation column a plain column reference names, if exactly found.
    fn rel_col<'c>(&self, e: &Expr, cols: &'c [RelCol]) -> Option<&'c RelCol> {
        match e {
            Expr::Identifier(i) => cols.iter().find(|c| c.name.eq_ignore_ascii_case(&i.value)),
            Expr::CompoundIdentifier(ids) => {
                let n = &ids.last()?.value;
                let q = (ids.len() > 1).then(|| ids[ids.len() - 2].value.to_lowercase());
                cols.iter().find(|c| {
                    c.name.eq_ignore_ascii_case(n) && q.as_ref().is_none_or(|q| *q == c.qual)
                })
            }
            _ => None,
        }
    }

    /// The collation, its derivation and the Unicode-ness an expression brings to a text
    /// comparison. Errors: 448 for an unknown collation name in `COLLATE`.
    pub(crate) fn text_side(&self, e: &Expr, cols: &[RelCol]) -> SqlResult<TextSide> {
        let coercible = |unicode| TextSide {
            unicode,
            collation: collation::DEFAULT,
            derivation: Derivation::Coercible,
        };
        Ok(match e {
            Expr::Nested(x) => return self.text_side(x, cols),
            Expr::Collate { expr, collation } => TextSide {
                unicode: self.text_side(expr, cols)?.unicode,
                collation: Collation::parse(&collation.to_string())?,
                derivation: Derivation::Explicit,
            },
            Expr::Value(v) => match &v.value {
                AstValue::NationalStringLiteral(_) => coercible(Some(true)),
                AstValue::SingleQuotedString(_) => coercible(Some(false)),
                _ => coercible(None),
            },
            Expr::Identifier(i) if i.value.starts_with('@') => coercible(
                self.sess
                    .vars
                    .get(&i.value.to_lowercase())
                    .and_then(|(t, _)| unicode_text(t)),
            ),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => match self.rel_col(e, cols) {
                Some(c) => TextSide {
                    unicode: unicode_text(&c.ty),
                    collation: c.collation.unwrap_or_default(),
                    derivation: Derivation::Implicit,
                },
                None => coercible(None),
            },
            _ => coercible(
                self.static_type(e, cols)
                    .and_then(|(t, _)| unicode_text(&t)),
            ),
        })
    }

    /// The text comparison for two values of operands `le` and `re`: resolved from the
    /// expressions when both values are text (a sql_variant's text included), the default
    /// otherwise (no collation applies).
    fn cmp_if_text(
        &self,
        a: &Value,
        b: &Value,
        le: &Expr,
        re: &Expr,
        cols: &[RelCol],
        operation: &str,
    ) -> SqlResult<TextCmp> {
        let text = |v: &Value| match v {
            Value::Str(_) => true,
            Value::Variant(x, _) => matches!(**x, Value::Str(_)),
            _ => false,
        };
        if text(a) && text(b) {
            self.text_cmp(le, re, cols, operation)
        } else {
            Ok(TextCmp::default())
        }
    }

    /// How `l` and `r` compare as text in `operation` (see [`resolve_text`]).
    pub(crate) fn text_cmp(
        &self,
        l: &Expr,
        r: &Expr,
        cols: &[RelCol],
        operation: &str,
    ) -> SqlResult<TextCmp> {
        resolve_text(
            &self.text_side(l, cols)?,
            &self.text_side(r, cols)?,
            operation,
        )
    }

    fn lookup(&self, cols: &[RelCol], row: &[Value], parts: &[String]) -> SqlResult<Value> {
        let (qual, name) = match parts {
            [n] => (None, n.as_str()),
            [.., q, n] => (Some(q.to_lowercase()), n.as_str()),
            [] => return Err(SqlError::invalid_column("")),
        };
        let mut found = None;
        for (i, c) in cols.iter().enumerate() {
            if c.name.eq_ignore_ascii_case(name) && qual.as_ref().is_none_or(|q| *q == c.qual) {
                if found.is_some() && qual.is_none() {
                    return Err(SqlError::new(
                        209,
                        format!("Ambiguous column name '{name}'."),
                    ));
                }
                found.get_or_insert(i);
            }
        }
        match found {
            Some(i) => Ok(row.get(i).cloned().unwrap_or(Value::Null)),
            None if qual.is_some() => Err(SqlError::new(
                4104,
                format!(
                    "The multi-part identifier \"{}\" could not be bound.",
                    parts.join(".")
                ),
            )),
            None => Err(SqlError::invalid_column(name)),
        }
    }

    /// A variable's value by reference, without allocating: variables are stored under
    /// lower-case names and looked up case-insensitively.
    fn variable_ref(&self, name: &str) -> Option<&Value> {
        if name.starts_with("@@") {
            return None;
        }
        let key_matches = |k: &String| k.eq_ignore_ascii_case(name);
        match self.sess.vars.get(name) {
            Some((_, v)) => Some(v),
            None => self
                .sess
                .vars
                .iter()
                .find(|(k, _)| key_matches(k))
                .map(|(_, (_, v))| v),
        }
    }

    /// A plain column or variable operand by reference, so that comparisons in WHERE
    /// clauses do not clone binary and string values row after row.
    fn operand_ref<'a>(&'a self, e: &Expr, cols: &[RelCol], row: &'a [Value]) -> Option<&'a Value> {
        let Expr::Identifier(i) = e else { return None };
        if i.value.starts_with('@') && i.quote_style.is_none() {
            return self.variable_ref(&i.value);
        }
        let mut found = None;
        for (index, c) in cols.iter().enumerate() {
            if c.name.eq_ignore_ascii_case(&i.value) {
                if found.is_some() {
                    // Ambiguous: let the general path report it.
                    return None;
                }
                found = Some(index);
            }
        }
        row.get(found?)
    }

    fn variable(&self, name: &str) -> SqlResult<Value> {
        if let Some(v) = self.variable_ref(name) {
            return Ok(v.clone());
        }
        let upper = name.to_uppercase();
        match upper.as_str() {
            "@@VERSION" => {
                return Ok(Value::Str(
                    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) mssql-sim".into(),
                ));
            }
            "@@SPID" => return Ok(Value::Int(self.sess.spid as i64)),
            "@@TRANCOUNT" => {
                return Ok(Value::Int(
                    self.sess.txn.as_ref().is_some_and(|t| t.explicit) as i64,
                ));
            }
            "@@ROWCOUNT" => return Ok(Value::Int(self.sess.rowcount as i64)),
            "@@LOCK_TIMEOUT" => return Ok(Value::Int(self.sess.lock_timeout_ms)),
            "@@SERVERNAME" => return Ok(Value::Str("mssql-sim".into())),
            "@@ERROR" => return Ok(Value::Int(0)),
            _ => {}
        }
        self.sess
            .vars
            .get(&name.to_lowercase())
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                SqlError::new(137, format!("Must declare the scalar variable \"{name}\"."))
            })
    }

    /// Evaluates `e` against a row of a relation; `group` holds the rows of the current
    /// group when aggregates are allowed.
    pub(crate) fn eval(
        &mut self,
        e: &Expr,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Value> {
        match e {
            Expr::Identifier(i) => {
                if i.value.starts_with('@') && i.quote_style.is_none() {
                    return self.variable(&i.value);
                }
                match self.lookup(cols, row, std::slice::from_ref(&i.value)) {
                    Ok(v) => Ok(v),
                    Err(err) => {
                        // niladic functions written without parentheses
                        match i.value.to_uppercase().as_str() {
                            "CURRENT_TIMESTAMP" => {
                                Ok(Value::DateTime(crate::engine::catalog::now()))
                            }
                            "CURRENT_USER" | "SYSTEM_USER" | "SESSION_USER" => {
                                Ok(Value::Str(self.sess.user.clone()))
                            }
                            _ => Err(err),
                        }
                    }
                }
            }
            Expr::CompoundIdentifier(ids) => {
                let parts: Vec<String> = ids.iter().map(|i| i.value.clone()).collect();
                let found = self.lookup(cols, row, &parts);
                // Not a column: perhaps a CLR property (`geo.STSrid`).
                if found.is_err()
                    && let Some(v) = self.clr_property(ids, cols, row, group)?
                {
                    return Ok(v);
                }
                found.map_err(|e| {
                    if e.number == 207 && parts.len() > 1 {
                        SqlError::new(
                            4104,
                            format!(
                                "The multi-part identifier \"{}\" could not be bound.",
                                ident_text(ids)
                            ),
                        )
                    } else {
                        e
                    }
                })
            }
            Expr::Value(v) => literal(&v.value),
            Expr::Nested(e) => self.eval(e, cols, row, group),
            // The collation matters where the value is compared (text_side); here it is
            // only checked (448).
            Expr::Collate { expr, collation } => {
                Collation::parse(&collation.to_string())?;
                self.eval(expr, cols, row, group)
            }
            Expr::IsNull(e) => Ok(Value::Bit(self.eval(e, cols, row, group)?.is_null())),
            Expr::IsNotNull(e) => Ok(Value::Bit(!self.eval(e, cols, row, group)?.is_null())),
            Expr::UnaryOp { op, expr } => {
                let v = self.eval(expr, cols, row, group)?;
                match op {
                    UnaryOperator::Not => Ok(bool_val(v.as_bool().map(|b| !b))),
                    UnaryOperator::Minus => match v {
                        Value::Null => Ok(Value::Null),
                        Value::Int(i) => Ok(Value::Int(-i)),
                        Value::Decimal(d, s) => Ok(Value::Decimal(-d, s)),
                        Value::Money(m) => Ok(Value::Money(-m)),
                        Value::Float(f) => Ok(Value::Float(-f)),
                        other => Err(SqlError::new(
                            8117,
                            format!(
                                "Operand data type {} is invalid for minus operator.",
                                other.natural_type().name()
                            ),
                        )),
                    },
                    UnaryOperator::Plus => Ok(v),
                    other => Err(SqlError::unsupported(format!("operator {other}"))),
                }
            }
            Expr::BinaryOp { left, op, right } => {
                match op {
                    BinaryOperator::And => {
                        let l = self.eval(left, cols, row, group)?.as_bool();
                        if l == Some(false) {
                            return Ok(Value::Bit(false));
                        }
                        let r = self.eval(right, cols, row, group)?.as_bool();
                        return Ok(bool_val(match (l, r) {
                            (_, Some(false)) => Some(false),
                            (Some(true), Some(true)) => Some(true),
                            _ => None,
                        }));
                    }
                    BinaryOperator::Or => {
                        let l = self.eval(left, cols, row, group)?.as_bool();
                        if l == Some(true) {
                            return Ok(Value::Bit(true));
                        }
                        let r = self.eval(right, cols, row, group)?.as_bool();
                        return Ok(bool_val(match (l, r) {
                            (_, Some(true)) => Some(true),
                            (Some(false), Some(false)) => Some(false),
                            _ => None,
                        }));
                    }
                    _ => {}
                }
                let comparison = matches!(
                    op,
                    BinaryOperator::Eq
                        | BinaryOperator::NotEq
                        | BinaryOperator::Lt
                        | BinaryOperator::LtEq
                        | BinaryOperator::Gt
                        | BinaryOperator::GtEq
                );
                if comparison
                    && let (Some(l), Some(r)) = (
                        self.operand_ref(left, cols, row),
                        self.operand_ref(right, cols, row),
                    )
                {
                    let cmp = self.cmp_if_text(l, r, left, right, cols, operation_name(op))?;
                    return compare_op(op, l, r, &cmp);
                }
                let l = self.eval(left, cols, row, group)?;
                let r = self.eval(right, cols, row, group)?;
                match op {
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq => {
                        let cmp =
                            self.cmp_if_text(&l, &r, left, right, cols, operation_name(op))?;
                        compare_op(op, &l, &r, &cmp)
                    }
                    BinaryOperator::Plus
                    | BinaryOperator::Minus
                    | BinaryOperator::Multiply
                    | BinaryOperator::Divide
                    | BinaryOperator::Modulo => arith(op, l, r),
                    BinaryOperator::StringConcat => Ok(match (l.to_text(), r.to_text()) {
                        (Some(a), Some(b)) => Value::Str(a + &b),
                        _ => Value::Null,
                    }),
                    BinaryOperator::BitwiseAnd | BinaryOperator::BitwiseOr => {
                        let (a, b) = (l.as_i64()?, r.as_i64()?);
                        Ok(match (a, b) {
                            (Some(a), Some(b)) => {
                                Value::Int(if matches!(op, BinaryOperator::BitwiseAnd) {
                                    a & b
                                } else {
                                    a | b
                                })
                            }
                            _ => Value::Null,
                        })
                    }
                    other => Err(SqlError::unsupported(format!("operator {other}"))),
                }
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let v = self.eval(expr, cols, row, group)?;
                let lo = self.eval(low, cols, row, group)?;
                let hi = self.eval(high, cols, row, group)?;
                if v.is_null() || lo.is_null() || hi.is_null() {
                    return Ok(Value::Null);
                }
                let lo_cmp =
                    self.cmp_if_text(&v, &lo, expr, low, cols, "greater than or equal to")?;
                let hi_cmp =
                    self.cmp_if_text(&v, &hi, expr, high, cols, "less than or equal to")?;
                let inside = compare_in(&v, &lo, &lo_cmp)? != std::cmp::Ordering::Less
                    && compare_in(&v, &hi, &hi_cmp)? != std::cmp::Ordering::Greater;
                Ok(Value::Bit(inside != *negated))
            }
            Expr::In {
                expr,
                target,
                negated,
                ..
            } => {
                let v = self.eval(expr, cols, row, group)?;
                let candidates: Vec<(Value, TextCmp)> = match target {
                    InTarget::List(list) => {
                        let mut out = Vec::new();
                        for x in list {
                            let c = self.eval(x, cols, row, group)?;
                            let cmp = self.cmp_if_text(&v, &c, expr, x, cols, "equal to")?;
                            out.push((c, cmp));
                        }
                        out
                    }
                    InTarget::Subquery(q) => {
                        let rel = self.query(q)?;
                        let cmp = match (v.is_null(), rel.cols.first()) {
                            (false, Some(c)) => {
                                let theirs = TextSide::of_column(c);
                                resolve_text(&self.text_side(expr, cols)?, &theirs, "equal to")?
                            }
                            _ => TextCmp::default(),
                        };
                        rel.rows
                            .into_iter()
                            .filter_map(|r| r.into_iter().next())
                            .map(|c| (c, cmp))
                            .collect()
                    }
                    _ => return Err(SqlError::unsupported("this IN form")),
                };
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                for (c, cmp) in &candidates {
                    if c.is_null() {
                        unknown = true;
                    } else if compare_in(&v, c, cmp)? == std::cmp::Ordering::Equal {
                        return Ok(Value::Bit(!negated));
                    }
                }
                Ok(if unknown {
                    Value::Null
                } else {
                    Value::Bit(*negated)
                })
            }
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            } => {
                if escape_char.is_some() || *any {
                    return Err(SqlError::unsupported("LIKE ... ESCAPE"));
                }
                let v = self.eval(expr, cols, row, group)?;
                let p = self.eval(pattern, cols, row, group)?;
                let cmp = self.text_cmp(expr, pattern, cols, "like")?;
                // like() knows character sets, but tests/sql.rs holds `[...]` in a query as
                // an unsupported feature; lifting this is that test's owner's call.
                if p.to_text().is_some_and(|p| p.contains('[')) {
                    return Err(SqlError::unsupported("LIKE character classes ([...])"));
                }
                Ok(match (v.to_text(), p.to_text()) {
                    (Some(s), Some(p)) => Value::Bit(like_in(&s, &p, &cmp) != *negated),
                    _ => Value::Null,
                })
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let base = match operand {
                    Some(o) => Some(self.eval(o, cols, row, group)?),
                    None => None,
                };
                for c in conditions {
                    let hit = match &base {
                        Some(b) => {
                            let w = self.eval(&c.condition, cols, row, group)?;
                            let cmp = match operand {
                                Some(o) => {
                                    self.cmp_if_text(b, &w, o, &c.condition, cols, "equal to")?
                                }
                                None => TextCmp::default(),
                            };
                            !b.is_null()
                                && !w.is_null()
                                && compare_in(b, &w, &cmp)? == std::cmp::Ordering::Equal
                        }
                        None => self.eval(&c.condition, cols, row, group)?.as_bool() == Some(true),
                    };
                    if hit {
                        return self.eval(&c.result, cols, row, group);
                    }
                }
                match else_result {
                    Some(e) => self.eval(e, cols, row, group),
                    None => Ok(Value::Null),
                }
            }
            Expr::Cast {
                expr,
                data_type,
                kind,
                ..
            } => {
                let v = self.eval(expr, cols, row, group)?;
                let ty = self.cast_type(&data_type.to_string())?;
                // To sql_variant, a value keeps the type the expression declares
                // (CAST(CAST(1.5 AS decimal(5,2)) AS sql_variant) has precision 5).
                let converted = if ty == SqlType::Variant {
                    let base = self.static_type(expr, cols).map(|(t, _)| t);
                    crate::value::variant::wrap(v, base)
                } else {
                    // A date/time value's text depends on its declared type (style 0 for
                    // datetime): value::styles::default_text.
                    let source = self.static_type(expr, cols).map(|(t, _)| t);
                    crate::value::styles::coerce_from(v, source, &ty)
                };
                match converted {
                    Ok(v) => Ok(v),
                    Err(_) if matches!(kind, sqlparser::ast::CastKind::TryCast) => Ok(Value::Null),
                    Err(e) => Err(e),
                }
            }
            Expr::Convert {
                expr,
                data_type: Some(dt),
                is_try,
                styles,
                ..
            } => {
                let v = self.eval(expr, cols, row, group)?;
                let ty = self.cast_type(&dt.to_string())?;
                // A date/time value to text in a style (CONVERT(varchar, @d, 121)).
                if ty.is_string()
                    && let Some(style) = styles.first()
                    && let Some((at, digits, name)) =
                        styled_temporal(&v, self.static_type(expr, cols).map(|(t, _)| t))
                {
                    let style = self.eval(style, cols, row, group)?.as_i64()?.unwrap_or(0);
                    let text = crate::value::styles::format_value(&v, at, digits, style, name)?;
                    return coerce(Value::Str(text), &ty);
                }
                // CONVERT(binary(10), '0x...', 1) style: hex text to bytes
                let v = match (&ty, &v) {
                    (SqlType::Binary(_) | SqlType::VarBinary(_), Value::Str(s))
                        if s.starts_with("0x") || s.starts_with("0X") =>
                    {
                        literal(&AstValue::HexStringLiteral(s[2..].to_string()))?
                    }
                    _ => v,
                };
                let v = match (&ty, v) {
                    (t, Value::Bytes(b)) if t.is_string() => Value::Str(format!(
                        "0x{}",
                        b.iter().map(|x| format!("{x:02X}")).collect::<String>()
                    )),
                    (_, v) => v,
                };
                let source = self.static_type(expr, cols).map(|(t, _)| t);
                match crate::value::styles::coerce_from(v, source, &ty) {
                    Ok(v) => Ok(v),
                    Err(_) if *is_try => Ok(Value::Null),
                    Err(e) => Err(e),
                }
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let s = self.eval(expr, cols, row, group)?;
                let from = match substring_from {
                    Some(f) => self.eval(f, cols, row, group)?.as_i64()?.unwrap_or(1),
                    None => 1,
                };
                let len = match substring_for {
                    Some(f) => self.eval(f, cols, row, group)?.as_i64()?.unwrap_or(0),
                    None => i64::MAX / 2,
                };
                Ok(match s.to_text() {
                    None => Value::Null,
                    Some(t) => {
                        let start = (from - 1).max(0) as usize;
                        let end = (from - 1 + len).max(0) as usize;
                        Value::Str(
                            t.chars()
                                .skip(start)
                                .take(end.saturating_sub(start))
                                .collect(),
                        )
                    }
                })
            }
            Expr::Trim { expr, .. } => Ok(match self.eval(expr, cols, row, group)?.to_text() {
                Some(s) => Value::Str(s.trim().to_string()),
                None => Value::Null,
            }),
            Expr::Subquery(q) => {
                let rel = self.query(q)?;
                if rel.rows.len() > 1 {
                    return Err(SqlError::new(
                        512,
                        "Subquery returned more than 1 value. This is not permitted when the subquery follows =, !=, <, <= , >, >= or when the subquery is used as an expression.",
                    ));
                }
                Ok(rel
                    .rows
                    .into_iter()
                    .next()
                    .and_then(|r| r.into_iter().next())
                    .unwrap_or(Value::Null))
            }
            Expr::Exists { subquery, negated } => {
                let rel = self.query(subquery)?;
                Ok(Value::Bit(rel.rows.is_empty() == *negated))
            }
            Expr::Function(f) => self.function(f, cols, row, group),
            // `expr.Method()` / `expr.Property` on a CLR value.
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut v = self.eval(root, cols, row, group)?;
                for access in access_chain {
                    v = self.clr_member(v, access)?;
                }
                Ok(v)
            }
            other => Err(SqlError::unsupported(format!("the expression `{other}`"))),
        }
    }
}

/// A date/time value as the instant its style text shows, its count of fractional-second
/// digits and its type's name: from the expression's static type where known (`datetime`
/// has 3 digits), else from the value (which does not tell datetime from datetime2).
fn styled_temporal(
    v: &Value,
    ty: Option<SqlType>,
) -> Option<(chrono::NaiveDateTime, u32, &'static str)> {
    let midnight = chrono::NaiveTime::MIN;
    let (at, fallback) = match v {
        Value::DateTime(d) => (*d, (7, "datetime2")),
        Value::Date(d) => (d.and_time(midnight), (0, "date")),
        Value::Time(t) => (
            chrono::NaiveDate::from_ymd_opt(1900, 1, 1)?.and_time(*t),
            (7, "time"),
        ),
        Value::DateTimeOffset(d) => (d.naive_local(), (7, "datetimeoffset")),
        _ => return None,
    };
    let (digits, name) = match ty {
        Some(SqlType::DateTime) => (3, "datetime"),
        Some(SqlType::SmallDateTime) => (3, "smalldatetime"),
        Some(SqlType::DateTime2(n)) => (u32::from(n), "datetime2"),
        Some(SqlType::Time(n)) => (u32::from(n), "time"),
        Some(SqlType::DateTimeOffset(n)) => (u32::from(n), "datetimeoffset"),
        Some(SqlType::Date) => (0, "date"),
        _ => fallback,
    };
    Some((at, digits, name))
}
