//! The CLR types' methods as T-SQL calls them: static methods written `type::Method(...)`
//! (turned into one function name, `hierarchyid::parse`, by the parser's token rewrite) and
//! instance methods written `column.Method()`, which sqlparser reads as a function whose
//! name ends in the method. Also `SQL_VARIANT_PROPERTY`, the one function of `sql_variant`.

use sqlparser::ast::{AccessExpr, Expr, ObjectNamePart};

use super::spatial;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::rel::RelCol;
use crate::value::spatial::Kind;
use crate::value::{SqlType, Value, coerce, hierarchyid, variant};

fn unknown_method(ty: &str, method: &str) -> SqlError {
    SqlError::new(
        6506,
        format!(
            "Could not find method '{method}' for type '{ty}' in assembly 'Microsoft.SqlServer.Types'"
        ),
    )
}

/// Instance methods of `hierarchyid` the simulator implements (lower case).
const HIERARCHYID_METHODS: &[&str] = &["tostring", "getlevel"];

impl Exec<'_> {
    /// A static CLR method (`hierarchyid::Parse('/1/')`, `hierarchyid::GetRoot()`), if
    /// `name` (lower case) is one.
    pub(crate) fn clr_static(&mut self, name: &str, args: &[Value]) -> SqlResult<Option<Value>> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
        Ok(Some(match name {
            // Parse takes a string; anything else converts to nvarchar first.
            "hierarchyid::parse" => match arg(0) {
                Value::Null => Value::Null,
                v => coerce(
                    Value::Str(v.to_text().unwrap_or_default()),
                    &SqlType::HierarchyId,
                )?,
            },
            "hierarchyid::getroot" => Value::HierarchyId(Vec::new()),
            "sql_variant_property" => {
                let name = arg(1).to_text().unwrap_or_default();
                variant::property(&arg(0), &name)
            }
            other if other.starts_with("geometry::") || other.starts_with("geography::") => {
                let (ty, method) = other.split_once("::").unwrap_or((other, ""));
                let kind = if ty == "geometry" {
                    Kind::Geometry
                } else {
                    Kind::Geography
                };
                match spatial::static_method(kind, method, args)? {
                    Some(v) => v,
                    None => return Err(unknown_method(ty, method)),
                }
            }
            other if other.contains("::") => {
                // SQL Server's text for an unknown static method of a CLR type.
                let (ty, method) = other.split_once("::").unwrap_or((other, ""));
                return Err(SqlError::new(
                    6506,
                    format!(
                        "Could not find method '{method}' for type '{ty}' in assembly 'Microsoft.SqlServer.Types'"
                    ),
                ));
            }
            _ => return Ok(None),
        }))
    }

    /// An instance method call `target.Method()` on a CLR-typed value, if `f` is one: the
    /// name's leading parts must evaluate (as a column or variable) to a CLR value.
    pub(crate) fn clr_instance(
        &mut self,
        f: &sqlparser::ast::Function,
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Option<Value>> {
        let parts = &f.name.0;
        let Some((ObjectNamePart::Identifier(method), target)) = parts.split_last() else {
            return Ok(None);
        };
        let method = method.value.to_lowercase();
        if target.is_empty()
            || !(HIERARCHYID_METHODS.contains(&method.as_str())
                || spatial::METHODS.contains(&method.as_str()))
        {
            return Ok(None);
        }
        let mut idents = Vec::new();
        for p in target {
            match p {
                ObjectNamePart::Identifier(i) => idents.push(i.clone()),
                ObjectNamePart::Function(_) => return Ok(None),
            }
        }
        let expr = match idents.as_slice() {
            [one] => Expr::Identifier(one.clone()),
            _ => Expr::CompoundIdentifier(idents),
        };
        // A name that is no column (dbo.ToString() as a user function) is not a method call.
        let Ok(value) = self.eval(&expr, cols, row, group) else {
            return Ok(None);
        };
        let bytes = match value {
            Value::Null => return Ok(Some(Value::Null)),
            Value::Spatial(kind, b) => return spatial::instance(kind, &b, &method).map(Some),
            Value::HierarchyId(b) if HIERARCHYID_METHODS.contains(&method.as_str()) => b,
            other => {
                return Err(SqlError::new(
                    258,
                    format!("Cannot call methods on {}.", other.natural_type().name()),
                ));
            }
        };
        Ok(Some(match method.as_str() {
            "tostring" => Value::Str(hierarchyid::to_text(&bytes)?),
            _ => Value::Int(hierarchyid::level(&bytes)?),
        }))
    }
}

impl Exec<'_> {
    /// `value.Member` where `value` is already evaluated (a method chained on an expression,
    /// `geometry::Point(1, 2, 0).STAsText()`): a method without arguments or a property.
    pub(crate) fn clr_member(&mut self, value: Value, access: &AccessExpr) -> SqlResult<Value> {
        let member = match access {
            AccessExpr::Dot(Expr::Function(f)) => name_parts(&f.name).join("."),
            AccessExpr::Dot(Expr::Identifier(i)) => i.value.clone(),
            other => {
                return Err(SqlError::unsupported(format!(
                    "the member access `{other}`"
                )));
            }
        }
        .to_lowercase();
        match value {
            Value::Null => Ok(Value::Null),
            Value::Spatial(kind, b) => spatial::instance(kind, &b, &member),
            Value::HierarchyId(b) => match member.as_str() {
                "tostring" => Ok(Value::Str(hierarchyid::to_text(&b)?)),
                "getlevel" => Ok(Value::Int(hierarchyid::level(&b)?)),
                other => Err(unknown_method("hierarchyid", other)),
            },
            other => Err(SqlError::new(
                258,
                format!("Cannot call methods on {}.", other.natural_type().name()),
            )),
        }
    }

    /// A CLR property written without parentheses (`geo.STSrid`, `pt.Lat`), if `ids` ends in
    /// one and the parts before it evaluate to a spatial value; `None` otherwise.
    pub(crate) fn clr_property(
        &mut self,
        ids: &[sqlparser::ast::Ident],
        cols: &[RelCol],
        row: &[Value],
        group: Option<&[Vec<Value>]>,
    ) -> SqlResult<Option<Value>> {
        let Some((last, target)) = ids.split_last() else {
            return Ok(None);
        };
        let member = last.value.to_lowercase();
        if target.is_empty() || !spatial::PROPERTIES.contains(&member.as_str()) {
            return Ok(None);
        }
        let expr = match target {
            [one] => Expr::Identifier(one.clone()),
            _ => Expr::CompoundIdentifier(target.to_vec()),
        };
        match self.eval(&expr, cols, row, group) {
            Ok(Value::Null) => Ok(Some(Value::Null)),
            Ok(Value::Spatial(kind, b)) => spatial::instance(kind, &b, &member).map(Some),
            _ => Ok(None),
        }
    }
}
