//! The CLR types' methods as T-SQL calls them: static methods written `type::Method(...)`
//! (turned into one function name, `hierarchyid::parse`, by the parser's token rewrite) and
//! instance methods written `column.Method()`, which sqlparser reads as a function whose
//! name ends in the method. Also `SQL_VARIANT_PROPERTY`, the one function of `sql_variant`.

use sqlparser::ast::{Expr, ObjectNamePart};

use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::rel::RelCol;
use crate::value::{SqlType, Value, coerce, hierarchyid, variant};

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
        if target.is_empty() || !HIERARCHYID_METHODS.contains(&method.as_str()) {
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
            Value::HierarchyId(b) => b,
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
