//! The value-level pieces of evaluation: literals, `LIKE` patterns, comparison and
//! arithmetic with T-SQL's NULL rules. Pure functions of their operands; no session state.

use sqlparser::ast::{BinaryOperator, Value as AstValue};

use crate::error::{SqlError, SqlResult};
use crate::value::{TextCmp, Value, compare_in, parse_decimal, rescale};

pub(super) fn bool_val(b: Option<bool>) -> Value {
    match b {
        Some(b) => Value::Bit(b),
        None => Value::Null,
    }
}

/// Converts a literal.
pub(crate) fn literal(v: &AstValue) -> SqlResult<Value> {
    Ok(match v {
        AstValue::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
            } else if let Some((d, s)) = parse_decimal(n) {
                Value::Decimal(d, s)
            } else {
                Value::Float(n.parse().map_err(|_| SqlError::syntax(n))?)
            }
        }
        AstValue::SingleQuotedString(s)
        | AstValue::NationalStringLiteral(s)
        | AstValue::DoubleQuotedString(s) => Value::Str(s.clone()),
        AstValue::HexStringLiteral(h) => {
            let h = if h.len() % 2 == 1 {
                format!("0{h}")
            } else {
                h.clone()
            };
            let mut out = Vec::with_capacity(h.len() / 2);
            for i in (0..h.len()).step_by(2) {
                out.push(u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| SqlError::syntax(&h))?);
            }
            Value::Bytes(out)
        }
        AstValue::Boolean(b) => Value::Bit(*b),
        AstValue::Null => Value::Null,
        AstValue::Placeholder(p) => {
            return Err(SqlError::new(
                137,
                format!("Must declare the scalar variable \"{p}\"."),
            ));
        }
        other => return Err(SqlError::unsupported(format!("the literal {other}"))),
    })
}

/// SQL Server's LIKE (without ESCAPE): `%` any run of characters, `_` one character,
/// `[abc]` / `[a-f]` one character of a set or range, `[^...]` one character outside it (so
/// `[_]` is a literal underscore); a `[` with no closing `]` matches itself. Characters match
/// as the default collation compares them (case-insensitive); [`like_in`] for another.
pub(crate) fn like(s: &str, pat: &str) -> bool {
    like_in(s, pat, &TextCmp::default())
}

/// [`like`] under a collation: characters are equal when the collation's case and accent
/// sensitivity say so ([`crate::value::Collation::fold_char`]); ranges compare the folded
/// characters by code point (a model: SQL Server orders a range by the collation).
pub(crate) fn like_in(s: &str, pat: &str, cmp: &TextCmp) -> bool {
    let fold = |c: char| cmp.collation.fold_char(c);
    fn in_set(x: char, set: &[char], fold: &dyn Fn(char) -> char) -> bool {
        let (negated, set) = match set.split_first() {
            Some(('^', rest)) if !rest.is_empty() => (true, rest),
            _ => (false, set),
        };
        let x = fold(x);
        let mut hit = false;
        let mut i = 0;
        while i < set.len() {
            if i + 2 < set.len() && set[i + 1] == '-' {
                hit |= (fold(set[i])..=fold(set[i + 2])).contains(&x);
                i += 3;
            } else {
                hit |= fold(set[i]) == x;
                i += 1;
            }
        }
        hit != negated
    }
    fn rec(s: &[char], p: &[char], fold: &dyn Fn(char) -> char) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| rec(&s[i..], &p[1..], fold)),
            Some('_') => !s.is_empty() && rec(&s[1..], &p[1..], fold),
            Some('[') => match p.iter().position(|&c| c == ']') {
                Some(end) if end > 1 => {
                    s.first().is_some_and(|&x| in_set(x, &p[1..end], fold))
                        && rec(&s[1..], &p[end + 1..], fold)
                }
                _ => s.first() == Some(&'[') && rec(&s[1..], &p[1..], fold),
            },
            Some(&c) => {
                s.first().is_some_and(|&x| fold(x) == fold(c)) && rec(&s[1..], &p[1..], fold)
            }
        }
    }
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    rec(&s, &p, &fold)
}

/// `l op r` for the six comparison operators, NULL if either side is NULL; text compares as
/// `cmp` says.
pub(super) fn compare_op(
    op: &BinaryOperator,
    l: &Value,
    r: &Value,
    cmp: &TextCmp,
) -> SqlResult<Value> {
    // geometry and geography have no comparison operators (403, "Invalid operator for data
    // type. Operator equals equal to, type equals geometry.", as SQL Server reports it in
    // public bug reports; STEquals() is theirs, not modelled). A NULL is untyped here, so only
    // a value shows it.
    if let Some(v) = [l, r].into_iter().find(|v| matches!(v, Value::Spatial(..))) {
        let operator = match op {
            BinaryOperator::Eq => "equal to",
            BinaryOperator::NotEq => "not equal to",
            BinaryOperator::Lt => "less than",
            BinaryOperator::LtEq => "less than or equal to",
            BinaryOperator::Gt => "greater than",
            _ => "greater than or equal to",
        };
        return Err(SqlError::new(
            403,
            format!(
                "Invalid operator for data type. Operator equals {operator}, type equals {}.",
                v.natural_type().name()
            ),
        ));
    }
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    let o = compare_in(l, r, cmp)?;
    use std::cmp::Ordering::*;
    Ok(Value::Bit(match op {
        BinaryOperator::Eq => o == Equal,
        BinaryOperator::NotEq => o != Equal,
        BinaryOperator::Lt => o == Less,
        BinaryOperator::LtEq => o != Greater,
        BinaryOperator::Gt => o == Greater,
        _ => o != Less,
    }))
}

pub(crate) fn arith(op: &BinaryOperator, a: Value, b: Value) -> SqlResult<Value> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    if matches!(op, BinaryOperator::Plus) {
        if let (Value::Str(x), Value::Str(y)) = (&a, &b) {
            return Ok(Value::Str(format!("{x}{y}")));
        }
        if let (Value::Bytes(x), Value::Bytes(y)) = (&a, &b) {
            let mut v = x.clone();
            v.extend_from_slice(y);
            return Ok(Value::Bytes(v));
        }
    }
    let overflow = || {
        SqlError::new(
            8115,
            "Arithmetic overflow error converting expression to data type int.",
        )
    };
    let zero = || SqlError::new(8134, "Divide by zero error encountered.");
    match (&a, &b) {
        (Value::Float(_), _) | (_, Value::Float(_)) => {
            let (x, y) = (
                a.as_f64().ok_or_else(overflow)?,
                b.as_f64().ok_or_else(overflow)?,
            );
            Ok(Value::Float(match op {
                BinaryOperator::Plus => x + y,
                BinaryOperator::Minus => x - y,
                BinaryOperator::Multiply => x * y,
                BinaryOperator::Divide => {
                    if y == 0.0 {
                        return Err(zero());
                    }
                    x / y
                }
                BinaryOperator::Modulo => x % y,
                _ => return Err(SqlError::unsupported(format!("operator {op}"))),
            }))
        }
        (Value::Int(_), Value::Int(_)) => {
            let (x, y) = (a.as_i64()?.unwrap_or(0), b.as_i64()?.unwrap_or(0));
            Ok(Value::Int(match op {
                BinaryOperator::Plus => x.checked_add(y).ok_or_else(overflow)?,
                BinaryOperator::Minus => x.checked_sub(y).ok_or_else(overflow)?,
                BinaryOperator::Multiply => x.checked_mul(y).ok_or_else(overflow)?,
                BinaryOperator::Divide => x.checked_div(y).ok_or_else(zero)?,
                BinaryOperator::Modulo => x.checked_rem(y).ok_or_else(zero)?,
                _ => return Err(SqlError::unsupported(format!("operator {op}"))),
            }))
        }
        _ => {
            let money = matches!(a, Value::Money(_)) || matches!(b, Value::Money(_));
            let ((x, xs), (y, ys)) = (
                a.as_decimal().ok_or_else(|| {
                    SqlError::conversion(format!(
                        "Operand type clash: {} and {}",
                        a.natural_type().name(),
                        b.natural_type().name()
                    ))
                })?,
                b.as_decimal().ok_or_else(|| {
                    SqlError::conversion(format!(
                        "Operand type clash: {} and {}",
                        a.natural_type().name(),
                        b.natural_type().name()
                    ))
                })?,
            );
            let s = xs.max(ys);
            let (x, y) = (
                rescale(x, xs, s).ok_or_else(overflow)?,
                rescale(y, ys, s).ok_or_else(overflow)?,
            );
            let (v, sc) = match op {
                BinaryOperator::Plus => (x.checked_add(y).ok_or_else(overflow)?, s),
                BinaryOperator::Minus => (x.checked_sub(y).ok_or_else(overflow)?, s),
                BinaryOperator::Multiply => (x.checked_mul(y).ok_or_else(overflow)?, s * 2),
                BinaryOperator::Divide => {
                    if y == 0 {
                        return Err(zero());
                    }
                    let extra = 6u8;
                    (
                        rescale(x, 0, extra)
                            .ok_or_else(overflow)?
                            .checked_div(y)
                            .ok_or_else(zero)?,
                        extra,
                    )
                }
                BinaryOperator::Modulo => (x.checked_rem(y).ok_or_else(zero)?, s),
                _ => return Err(SqlError::unsupported(format!("operator {op}"))),
            };
            if money {
                return Ok(Value::Money(
                    i64::try_from(rescale(v, sc.min(38), 4).ok_or_else(overflow)?)
                        .map_err(|_| overflow())?,
                ));
            }
            Ok(Value::Decimal(v, sc.min(38)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn like_treats_bracketed_wildcards_as_literals_and_matches_sets_ranges_and_negations() {
        assert!(like("my_table", "my[_]table"));
        assert!(!like("myxtable", "my[_]table"));
        assert!(like("Items", "%"));
        assert!(like("items", "IT_MS"));
        assert!(like("b7", "[a-c][0-9]"));
        assert!(!like("d7", "[a-c][0-9]"));
        assert!(like("x", "[^a-c]"));
        assert!(!like("B", "[^a-c]"));
        assert!(like("[x", "[x"));
    }
}
