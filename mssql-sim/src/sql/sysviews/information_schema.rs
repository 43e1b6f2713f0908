//! The `INFORMATION_SCHEMA.*` views: TABLES, COLUMNS, TABLE_CONSTRAINTS and
//! KEY_COLUMN_USAGE, as SQL Server 2022 shapes them.

use super::{NAME, i, rel, s};
use crate::engine::catalog::Database;
use crate::error::SqlResult;
use crate::sql::exec::Exec;
use crate::sql::rel::Rel;
use crate::value::{Len, SqlType, Value};

impl Exec<'_> {
    /// The `INFORMATION_SCHEMA.<view>` of database `db_name` (`view` lower case); None for a
    /// view the simulator does not have.
    pub(super) fn information_schema_view(
        &mut self,
        db_name: &str,
        view: &str,
    ) -> SqlResult<Option<Rel>> {
        let db = self.eng.db(db_name)?;
        let r = match view {
            "tables" => rel(
                &[
                    ("TABLE_CATALOG", NAME),
                    ("TABLE_SCHEMA", NAME),
                    ("TABLE_NAME", NAME),
                    ("TABLE_TYPE", SqlType::VarChar(Len::N(10))),
                ],
                db.tables
                    .values()
                    .map(|t| vec![s(&db.name), s(&t.schema), s(&t.name), s("BASE TABLE")])
                    .collect(),
            ),
            "columns" => info_columns(db),
            "table_constraints" => rel(
                &[
                    ("CONSTRAINT_CATALOG", NAME),
                    ("CONSTRAINT_SCHEMA", NAME),
                    ("CONSTRAINT_NAME", NAME),
                    ("TABLE_CATALOG", NAME),
                    ("TABLE_SCHEMA", NAME),
                    ("TABLE_NAME", NAME),
                    ("CONSTRAINT_TYPE", SqlType::VarChar(Len::N(11))),
                ],
                db.tables
                    .values()
                    .filter_map(|t| {
                        t.pk_name.as_ref().map(|n| {
                            vec![
                                s(&db.name),
                                s(&t.schema),
                                s(n),
                                s(&db.name),
                                s(&t.schema),
                                s(&t.name),
                                s("PRIMARY KEY"),
                            ]
                        })
                    })
                    .collect(),
            ),
            "key_column_usage" => {
                let mut rows = Vec::new();
                for t in db.tables.values() {
                    if let Some(n) = &t.pk_name {
                        for (k, &c) in t.pk.iter().enumerate() {
                            rows.push(vec![
                                s(&db.name),
                                s(&t.schema),
                                s(n),
                                s(&db.name),
                                s(&t.schema),
                                s(&t.name),
                                s(&t.columns[c].name),
                                i(k as i64 + 1),
                            ]);
                        }
                    }
                }
                rel(
                    &[
                        ("CONSTRAINT_CATALOG", NAME),
                        ("CONSTRAINT_SCHEMA", NAME),
                        ("CONSTRAINT_NAME", NAME),
                        ("TABLE_CATALOG", NAME),
                        ("TABLE_SCHEMA", NAME),
                        ("TABLE_NAME", NAME),
                        ("COLUMN_NAME", NAME),
                        ("ORDINAL_POSITION", SqlType::Int),
                    ],
                    rows,
                )
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }
}

fn info_columns(db: &Database) -> Rel {
    let mut rows = Vec::new();
    for t in db.tables.values() {
        for (k, c) in t.columns.iter().enumerate() {
            let char_len = match c.ty {
                SqlType::Char(n) | SqlType::NChar(n) | SqlType::Binary(n) => i(n as i64),
                SqlType::VarChar(Len::N(n))
                | SqlType::NVarChar(Len::N(n))
                | SqlType::VarBinary(Len::N(n)) => i(n as i64),
                SqlType::VarChar(Len::Max)
                | SqlType::NVarChar(Len::Max)
                | SqlType::VarBinary(Len::Max)
                | SqlType::Xml => i(-1),
                _ => Value::Null,
            };
            let numeric = matches!(
                c.ty,
                SqlType::TinyInt
                    | SqlType::SmallInt
                    | SqlType::Int
                    | SqlType::BigInt
                    | SqlType::Decimal(..)
                    | SqlType::Money
                    | SqlType::SmallMoney
                    | SqlType::Real
                    | SqlType::Float
            );
            // An alias-typed column: DATA_TYPE is the base type, DOMAIN_SCHEMA/DOMAIN_NAME
            // name the alias (NULL for system types, sysname included; the latter is
            // unverified).
            let domain = c
                .user_type_id
                .and_then(|id| db.alias_type_by_id(id))
                .map(|a| {
                    (
                        db.schema_name(a.schema_id).unwrap_or("dbo"),
                        a.name.as_str(),
                    )
                });
            let dt_prec = match c.ty {
                SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => {
                    i(p as i64)
                }
                SqlType::DateTime => i(3),
                SqlType::Date | SqlType::SmallDateTime => i(0),
                _ => Value::Null,
            };
            rows.push(vec![
                s(&db.name),
                s(&t.schema),
                s(&t.name),
                s(&c.name),
                i(k as i64 + 1),
                c.default
                    .as_ref()
                    .map(|d| Value::Str(format!("(({d}))")))
                    .unwrap_or(Value::Null),
                s(if c.nullable { "YES" } else { "NO" }),
                s(c.ty.name()),
                char_len,
                if numeric {
                    i(c.ty.precision() as i64)
                } else {
                    Value::Null
                },
                if numeric {
                    i(c.ty.scale() as i64)
                } else {
                    Value::Null
                },
                dt_prec,
                domain.map_or(Value::Null, |(sch, _)| s(sch)),
                domain.map_or(Value::Null, |(_, n)| s(n)),
            ]);
        }
    }
    rel(
        &[
            ("TABLE_CATALOG", NAME),
            ("TABLE_SCHEMA", NAME),
            ("TABLE_NAME", NAME),
            ("COLUMN_NAME", NAME),
            ("ORDINAL_POSITION", SqlType::Int),
            ("COLUMN_DEFAULT", SqlType::NVarChar(Len::N(4000))),
            ("IS_NULLABLE", SqlType::VarChar(Len::N(3))),
            ("DATA_TYPE", NAME),
            ("CHARACTER_MAXIMUM_LENGTH", SqlType::Int),
            ("NUMERIC_PRECISION", SqlType::TinyInt),
            ("NUMERIC_SCALE", SqlType::Int),
            ("DATETIME_PRECISION", SqlType::SmallInt),
            ("DOMAIN_SCHEMA", NAME),
            ("DOMAIN_NAME", NAME),
        ],
        rows,
    )
}
