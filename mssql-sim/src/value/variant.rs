//! `sql_variant`: a value that keeps the type it was assigned with (its base type), and
//! `SQL_VARIANT_PROPERTY`.
//!
//! A value assigned to a `sql_variant` column or variable keeps its own type: `5` is an
//! `int`, `N'abc'` an `nvarchar(3)`, `1.50` a `numeric(3,2)` (Microsoft, "sql_variant
//! (Transact-SQL)"). Types a `sql_variant` cannot hold — the `(max)` types, `text`, `ntext`,
//! `image`, `xml`, `rowversion`, the CLR types and `sql_variant` itself as a base — are
//! refused with error 206 (operand type clash), as SQL Server does.
//!
//! The type a value is written as is its base type: `INSERT … VALUES` and `UPDATE … SET`
//! into a `sql_variant` column (sql/dml) and `CAST(expr AS sql_variant)` keep the declared
//! type of the expression — a character literal `'abc'` is `varchar(3)`, `N'abc'`
//! `nvarchar(3)`, `CAST(1.5 AS decimal(5,2))` precision 5 — and `INSERT … SELECT` the
//! selected column's type. Converted back, a value converts as its base type does (a
//! `datetime` base to text is style 0, a `varchar` base to binary its code-page bytes, a
//! `decimal` base to binary its precision, scale, sign and magnitude: value::convert).
//!
//! Known gap: `decimal` and `numeric` are one type here, so a base SQL Server reports as
//! `numeric` (a literal such as `1.5`, which SQL Server types `numeric(2,1)`, or a
//! `numeric(p,s)` column) reports `decimal` and goes on the wire as DECIMALN (0x6A), not
//! NUMERICN (0x6C).

use crate::error::{SqlError, SqlResult};
use crate::value::types::{Len, SqlType};
use crate::value::values::Value;

/// Whether a `sql_variant` may hold a value of type `ty`.
fn allowed_base(ty: &SqlType) -> bool {
    !matches!(
        ty,
        SqlType::VarChar(Len::Max)
            | SqlType::NVarChar(Len::Max)
            | SqlType::VarBinary(Len::Max)
            | SqlType::Text
            | SqlType::NText
            | SqlType::Image
            | SqlType::Xml
            | SqlType::RowVersion
            | SqlType::HierarchyId
            | SqlType::Geometry
            | SqlType::Geography
            | SqlType::Variant
    )
}

/// Error 206 for a value of type `ty` put into a `sql_variant`.
fn clash(ty: &SqlType) -> SqlError {
    let name = match ty {
        SqlType::VarChar(Len::Max) | SqlType::NVarChar(Len::Max) | SqlType::VarBinary(Len::Max) => {
            format!("{}(max)", ty.name())
        }
        other => other.name().to_string(),
    };
    SqlError::new(
        206,
        format!("Operand type clash: {name} is incompatible with sql_variant"),
    )
}

/// `v` as a `sql_variant` whose base type is `base` (the value's static type where the
/// caller knows it, else its natural type).
pub(crate) fn wrap(v: Value, base: Option<SqlType>) -> SqlResult<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Variant(..) => Ok(v),
        v => {
            let base = base.unwrap_or_else(|| v.natural_type());
            if !allowed_base(&base) {
                return Err(clash(&base));
            }
            Ok(Value::Variant(Box::new(v), base))
        }
    }
}

/// `SQL_VARIANT_PROPERTY(v, property)`: `BaseType` (sysname), `Precision`, `Scale`,
/// `MaxLength` (int), `TotalBytes` (int: the value's bytes plus its base type's metadata;
/// computed from [MS-TDS]'s layout, unverified against a server) and
/// `Collation` (sysname, string bases only); NULL for a NULL value or an unknown property
/// name. The result is itself a `sql_variant`, as SQL Server returns it.
pub(crate) fn property(v: &Value, property: &str) -> Value {
    let Value::Variant(inner, base) = v else {
        return Value::Null;
    };
    let int = |i: i64| Value::Variant(Box::new(Value::Int(i)), SqlType::Int);
    let sysname = |s: &str| {
        Value::Variant(
            Box::new(Value::Str(s.to_string())),
            SqlType::NVarChar(Len::N(128)),
        )
    };
    match property.trim().to_lowercase().as_str() {
        "basetype" => sysname(base.name()),
        "precision" => int(i64::from(precision(base))),
        "scale" => int(i64::from(base.scale())),
        // A decimal's storage bytes, sign byte included (5 for precision 1-9).
        "maxlength" => int(match base {
            SqlType::Decimal(p, _) => i64::from(crate::value::types::decimal_len(*p)),
            other => i64::from(other.max_length()),
        }),
        "totalbytes" => int(total_bytes(inner, base) as i64),
        "collation" if base.is_string() => sysname("SQL_Latin1_General_CP1_CI_AS"),
        _ => Value::Null,
    }
}

/// The precision `SQL_VARIANT_PROPERTY` reports: numeric types their digits, the temporal
/// types their character counts, strings and binaries 0.
fn precision(base: &SqlType) -> u8 {
    base.precision()
}

/// `TotalBytes`: the stored value plus the two header bytes and its type's properties
/// (Microsoft, "SQL_VARIANT_PROPERTY": "the number of bytes required to hold both the metadata
/// and data of the value").
fn total_bytes(inner: &Value, base: &SqlType) -> usize {
    let data = match (inner, base) {
        (Value::Str(s), SqlType::NChar(_) | SqlType::NVarChar(_)) => s.encode_utf16().count() * 2,
        (Value::Str(s), _) => s.chars().count(),
        (Value::Bytes(b), _) => b.len(),
        (_, SqlType::Decimal(p, _)) => usize::from(crate::value::types::decimal_len(*p)),
        (_, other) => usize::try_from(other.max_length()).unwrap_or(0),
    };
    data + 2 + props_len(base)
}

/// Bytes of type properties a `sql_variant` stores beside the value ([MS-TDS] 2.2.5.5.3).
pub(crate) fn props_len(base: &SqlType) -> usize {
    match base {
        SqlType::Decimal(..) | SqlType::Binary(_) | SqlType::VarBinary(_) => 2,
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_) => 7,
        SqlType::Time(_) | SqlType::DateTime2(_) | SqlType::DateTimeOffset(_) => 1,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_the_base_type_and_refuses_max_types_with_206() {
        let v = wrap(Value::Int(5), None).unwrap();
        assert_eq!(v, Value::Variant(Box::new(Value::Int(5)), SqlType::Int));
        let e = wrap(Value::Str("x".repeat(5000)), None).unwrap_err();
        assert_eq!(e.number, 206);
        assert_eq!(
            e.message,
            "Operand type clash: nvarchar(max) is incompatible with sql_variant"
        );
        assert_eq!(
            wrap(Value::HierarchyId(vec![0x58]), None)
                .unwrap_err()
                .number,
            206
        );
    }

    #[test]
    fn property_reports_base_type_precision_scale_and_max_length() {
        let dec = wrap(Value::Decimal(150, 2), Some(SqlType::Decimal(5, 2))).unwrap();
        let text = |v: Value| v.to_text().unwrap();
        assert_eq!(text(property(&dec, "BaseType")), "decimal");
        assert_eq!(text(property(&dec, "Precision")), "5");
        assert_eq!(text(property(&dec, "Scale")), "2");
        assert_eq!(text(property(&dec, "MaxLength")), "5");
        let s = wrap(
            Value::Str("abc".into()),
            Some(SqlType::NVarChar(Len::N(10))),
        )
        .unwrap();
        assert_eq!(text(property(&s, "MaxLength")), "20");
        assert_eq!(text(property(&s, "TotalBytes")), "15");
        assert_eq!(property(&s, "nonsense"), Value::Null);
        assert_eq!(property(&Value::Null, "BaseType"), Value::Null);
    }
}
