//! Types by name: resolving a type spelling (system types, `sysname`, alias types) for
//! columns, variables and CAST, and `CREATE TYPE` / `DROP TYPE`, which a transaction's
//! rollback undoes (SQL Server's DDL is transactional).

use crate::engine::catalog::{AliasType, SYSNAME_USER_TYPE_ID};
use crate::engine::txn::DdlUndo;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::value::{Len, SqlType, parse_type};

/// A type as a column, variable or CAST names it, resolved: the type values take, and for
/// `sysname` or an alias type its `user_type_id` and its own nullability.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeUse {
    pub(crate) ty: SqlType,
    pub(crate) user_type_id: Option<i32>,
    /// The nullability a column gets when its definition does not say (None: the server's
    /// default, nullable).
    pub(crate) nullable: Option<bool>,
}

impl TypeUse {
    pub(crate) fn system(ty: SqlType) -> Self {
        TypeUse {
            ty,
            user_type_id: None,
            nullable: None,
        }
    }
}

/// A type spelling split into its name parts (brackets and quotes removed) and whether it
/// carries `(length | precision, scale)` arguments.
fn type_name_parts(text: &str) -> (Vec<String>, bool) {
    let (name, args) = match text.split_once('(') {
        Some((n, _)) => (n, true),
        None => (text, false),
    };
    let parts = name
        .split('.')
        .map(|p| {
            p.trim()
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string()
        })
        .collect();
    (parts, args)
}

/// Error 2715 for a type name that names no type, as SQL Server words it ("Column,
/// parameter, or variable #%d: Cannot find data type %.*ls.", Microsoft's Database Engine
/// errors list).
fn no_such_type(ordinal: usize, written: &str) -> SqlError {
    SqlError::new(
        2715,
        format!("Column, parameter, or variable #{ordinal}: Cannot find data type {written}."),
    )
}

impl Exec<'_> {
    /// Resolves a type spelling in database `db`: a system type (`nvarchar(20)`,
    /// `sys.int`), `sysname`, or an alias type (`dbo.Phone`, or `Phone` in `dbo`). An alias
    /// takes no arguments (2716). `ordinal` numbers the column or variable in error 2715.
    pub(crate) fn resolve_type(&self, db: &str, text: &str, ordinal: usize) -> SqlResult<TypeUse> {
        let (parts, args) = type_name_parts(text);
        let written = parts.join(".");
        let (schema, name) = match parts.as_slice() {
            [name] => (None, name.as_str()),
            [schema, name] if schema.eq_ignore_ascii_case("sys") => (None, name.as_str()),
            [schema, name] => (Some(schema.as_str()), name.as_str()),
            _ => return Err(no_such_type(ordinal, &written)),
        };
        if schema.is_none() {
            if name.eq_ignore_ascii_case("sysname") {
                if args {
                    return Err(width_on_alias(ordinal, "sysname"));
                }
                return Ok(TypeUse {
                    ty: SqlType::NVarChar(Len::N(128)),
                    user_type_id: Some(SYSNAME_USER_TYPE_ID),
                    nullable: Some(false),
                });
            }
            match parse_type(text) {
                Ok(ty) => return Ok(TypeUse::system(ty)),
                Err(e) if e.number != 2715 => return Err(e),
                Err(_) => {}
            }
        }
        let d = self.eng.db(db)?;
        let Some(a) = d.alias_type(schema.unwrap_or("dbo"), name) else {
            return Err(no_such_type(ordinal, &written));
        };
        if args {
            let full = format!("{}.{}", d.schema_name(a.schema_id).unwrap_or("dbo"), a.name);
            return Err(width_on_alias(ordinal, &full));
        }
        Ok(TypeUse {
            ty: a.base,
            user_type_id: Some(a.user_type_id),
            nullable: Some(a.nullable),
        })
    }

    /// The type a CAST or CONVERT names, in the current database. A name that is no type is
    /// error 243 there ("Type %.*ls is not a defined system type."), not 2715.
    pub(crate) fn cast_type(&self, text: &str) -> SqlResult<SqlType> {
        cast_error(
            self.resolve_type(&self.sess.db, text, 1).map(|t| t.ty),
            text,
        )
    }

    /// The type a CAST in a computed column of a table in `db` names (243 for no type).
    pub(crate) fn resolve_cast_type(&self, db: &str, text: &str) -> SqlResult<SqlType> {
        cast_error(self.resolve_type(db, text, 1).map(|t| t.ty), text)
    }

    /// `CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL]` in the current database.
    /// Without NULL or NOT NULL the type is nullable. Errors: 219 when the schema already has
    /// a type of that name, 222 when the base is not a system type, 2760 for an unknown
    /// schema (texts from Microsoft's Database Engine errors list).
    pub(crate) fn create_type(
        &mut self,
        name: &[String],
        base: &str,
        nullable: Option<bool>,
    ) -> SqlResult<()> {
        let (schema, type_name) = match name {
            [n] => ("dbo", n.as_str()),
            [s, n] => (s.as_str(), n.as_str()),
            _ => return Err(SqlError::syntax(".")),
        };
        let written = name.join(".");
        let invalid_base = || {
            SqlError::new(
                222,
                format!(
                    "The base type \"{base}\" is not a valid base type for the alias data type."
                ),
            )
        };
        let (base_parts, _) = type_name_parts(base);
        let system_base = base_parts.len() == 1
            || (base_parts.len() == 2 && base_parts[0].eq_ignore_ascii_case("sys"));
        if !system_base {
            return Err(invalid_base());
        }
        let base_ty = match parse_type(base) {
            Ok(t) => t,
            Err(e) if e.number == 2715 => return Err(invalid_base()),
            Err(e) => return Err(e),
        };
        // timestamp is not among the base types sp_addtype and SSMS offer (Microsoft,
        // "sp_addtype", "Create a User-Defined Data Type Alias"); that CREATE TYPE refuses
        // it with 222 is unverified.
        if matches!(base_ty, SqlType::RowVersion) {
            return Err(invalid_base());
        }
        let db_name = self.sess.db.clone();
        let d = self.eng.db_mut(&db_name)?;
        let Some(schema_id) = d.schema_id(schema) else {
            return Err(SqlError::new(
                2760,
                format!(
                    "The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."
                ),
            ));
        };
        if d.alias_type(schema, type_name).is_some() {
            // The text names the type as the statement wrote it ('dbo.Phone'); for an
            // unqualified name that is unverified.
            return Err(SqlError::new(
                219,
                format!(
                    "The type '{written}' already exists, or you do not have permission to create it."
                ),
            ));
        }
        let user_type_id = d.next_user_type_id;
        d.next_user_type_id += 1;
        d.alias_types.push(AliasType {
            user_type_id,
            schema_id,
            name: type_name.to_string(),
            base: base_ty,
            nullable: nullable.unwrap_or(true),
        });
        if let Some(t) = self.sess.txn.as_mut() {
            t.ddl_undo.push(DdlUndo::TypeCreated {
                db: db_name,
                user_type_id,
            });
        }
        self.done(None);
        Ok(())
    }

    /// `DROP TYPE [IF EXISTS] [schema.]name` in the current database. Errors: 218 for a type
    /// that does not exist (unless IF EXISTS), 3732 while a table column uses it (naming the
    /// first such table). Texts from Microsoft's Database Engine errors list; which object
    /// SQL Server names when several use the type is unverified.
    pub(crate) fn drop_type(&mut self, name: &[String], if_exists: bool) -> SqlResult<()> {
        let written = name.join(".");
        let (schema, type_name) = match name {
            [n] => ("dbo", n.as_str()),
            [s, n] => (s.as_str(), n.as_str()),
            _ => return Err(SqlError::syntax(".")),
        };
        let db_name = self.sess.db.clone();
        let d = self.eng.db_mut(&db_name)?;
        let Some(id) = d.alias_type(schema, type_name).map(|a| a.user_type_id) else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new(
                218,
                format!(
                    "Could not find the type '{written}'. Either it does not exist or you do not have the necessary permission."
                ),
            ));
        };
        if let Some(t) = d
            .tables
            .values()
            .find(|t| t.columns.iter().any(|c| c.user_type_id == Some(id)))
        {
            return Err(SqlError::new(
                3732,
                format!(
                    "Cannot drop type '{written}' because it is being referenced by object '{}'. There may be other objects that reference this type.",
                    t.name
                ),
            ));
        }
        if let Some(at) = d.alias_types.iter().position(|a| a.user_type_id == id) {
            let alias = d.alias_types.remove(at);
            if let Some(t) = self.sess.txn.as_mut() {
                t.ddl_undo.push(DdlUndo::TypeDropped { db: db_name, alias });
            }
        }
        Ok(())
    }

    /// Takes back a rolled-back transaction's catalog changes (`undo`, oldest first), newest
    /// first.
    pub(crate) fn undo_ddl(&mut self, undo: Vec<DdlUndo>) {
        for u in undo.into_iter().rev() {
            match u {
                DdlUndo::TypeCreated { db, user_type_id } => {
                    if let Ok(d) = self.eng.db_mut(&db) {
                        d.alias_types.retain(|a| a.user_type_id != user_type_id);
                    }
                }
                DdlUndo::TypeDropped { db, alias } => {
                    if let Ok(d) = self.eng.db_mut(&db) {
                        // Back in creation (user_type_id) order, as sys.types lists them.
                        let at = d
                            .alias_types
                            .iter()
                            .position(|a| a.user_type_id > alias.user_type_id)
                            .unwrap_or(d.alias_types.len());
                        d.alias_types.insert(at, alias);
                    }
                }
            }
        }
    }
}

/// A type lookup for CAST/CONVERT: a name that is no type is error 243 there ("Type %.*ls
/// is not a defined system type."), not 2715.
fn cast_error(r: SqlResult<SqlType>, text: &str) -> SqlResult<SqlType> {
    match r {
        Err(e) if e.number == 2715 => {
            let (parts, _) = type_name_parts(text);
            Err(SqlError::new(
                243,
                format!("Type {} is not a defined system type.", parts.join(".")),
            ))
        }
        other => other,
    }
}

/// Error 2716 for an alias type written with a length ("Column, parameter, or variable #%d:
/// Cannot specify a column width on data type %.*ls.", Microsoft's Database Engine errors
/// list); state 3 for alias types is unverified.
fn width_on_alias(ordinal: usize, name: &str) -> SqlError {
    SqlError::new(
        2716,
        format!(
            "Column, parameter, or variable #{ordinal}: Cannot specify a column width on data type {name}."
        ),
    )
    .state(3)
}
