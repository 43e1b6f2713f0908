//! DDL: CREATE/ALTER/DROP TABLE column definitions and layout changes.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, BinaryOperator, ColumnOption, Expr, TableConstraint,
    Value as AstValue,
};

use crate::cdc::job;
use crate::engine::catalog::TableRef;
use crate::engine::catalog::{AliasType, SYSNAME_USER_TYPE_ID, key, now};
use crate::engine::table::{Column, Index, Table};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::{COMPUTED_TYPE, name_parts};
use crate::value::{Len, SqlType, Value, coerce, parse_type};

impl Exec<'_> {
    // ---- DDL ---------------------------------------------------------------------------

    /// A column definition of a table in database `db`; `id` is its `column_id`, and the
    /// names of PRIMARY KEY columns are added to `pk`.
    pub(crate) fn column_def(
        &mut self,
        db: &str,
        c: &sqlparser::ast::ColumnDef,
        id: i32,
        pk: &mut Vec<String>,
    ) -> SqlResult<Column> {
        let type_name = c.data_type.to_string();
        let computed = type_name.eq_ignore_ascii_case(COMPUTED_TYPE);
        // A computed column's type follows from its expression, once all columns are known
        // (see `computed_types`).
        let used = if computed {
            TypeUse::system(SqlType::Int)
        } else {
            self.resolve_type(db, &type_name, usize::try_from(id).unwrap_or(1))?
        };
        let ty = used.ty;
        let mut col = Column {
            name: c.name.value.clone(),
            ty,
            // An alias type's (and sysname's) own nullability is the column's default.
            nullable: used.nullable.unwrap_or(!matches!(ty, SqlType::RowVersion)),
            column_id: id,
            identity: None,
            default: None,
            computed: None,
            user_type_id: used.user_type_id,
        };
        for o in &c.options {
            match &o.option {
                ColumnOption::Generated {
                    generation_expr: Some(e),
                    ..
                } if computed => col.computed = Some(e.clone()),
                ColumnOption::NotNull => col.nullable = false,
                ColumnOption::Null => col.nullable = true,
                ColumnOption::PrimaryKey(_) => {
                    col.nullable = false;
                    pk.push(col.name.clone());
                }
                ColumnOption::Default(e) => col.default = Some(e.clone()),
                ColumnOption::Identity(kind) => {
                    let text = kind.to_string();
                    let nums: Vec<i64> = text
                        .split(|ch: char| !(ch.is_ascii_digit() || ch == '-'))
                        .filter_map(|s| s.parse().ok())
                        .collect();
                    col.identity = Some((*nums.first().unwrap_or(&1), *nums.get(1).unwrap_or(&1)));
                    col.nullable = false;
                }
                ColumnOption::Unique(_) | ColumnOption::Check(_) | ColumnOption::Collation(_) => {}
                other => return Err(SqlError::unsupported(format!("column option {other}"))),
            }
        }
        Ok(col)
    }

    pub(crate) fn create_table(&mut self, ct: sqlparser::ast::CreateTable) -> SqlResult<()> {
        let r = self.resolve(&name_parts(&ct.name))?;
        if r.name.starts_with('#') {
            return Err(SqlError::unsupported("temporary tables"));
        }
        {
            let db = self.eng.db(&r.db)?;
            if db.schema_id(&r.schema).is_none() {
                return Err(SqlError::new(
                    2760,
                    format!(
                        "The specified schema name \"{}\" either does not exist or you do not have permission to use it.",
                        r.schema
                    ),
                ));
            }
            if db.table(&r.schema, &r.name).is_some() {
                if ct.if_not_exists {
                    self.done(None);
                    return Ok(());
                }
                return Err(SqlError::new(
                    2714,
                    format!(
                        "There is already an object named '{}' in the database.",
                        r.name
                    ),
                ));
            }
        }
        let mut pk_names = Vec::new();
        let mut pk_name = None;
        let mut cols = Vec::new();
        // A table variable (kept as a tempdb table, see table_vars.rs) takes its alias types
        // from the current database, as on SQL Server (a published reproduction; Microsoft's
        // docs do not say).
        let type_db =
            if r.db.eq_ignore_ascii_case("tempdb") && r.name.starts_with("table_variable_") {
                self.sess.db.clone()
            } else {
                r.db.clone()
            };
        // UNIQUE constraints: (name if given, column names).
        let mut uniques: Vec<(Option<String>, Vec<String>)> = Vec::new();
        for (i, c) in ct.columns.iter().enumerate() {
            cols.push(self.column_def(&type_db, c, i as i32 + 1, &mut pk_names)?);
            for o in &c.options {
                if let ColumnOption::Unique(u) = &o.option {
                    let name = o.name.as_ref().or(u.name.as_ref()).map(|n| n.value.clone());
                    uniques.push((name, vec![c.name.value.clone()]));
                }
            }
        }
        for con in &ct.constraints {
            match con {
                TableConstraint::PrimaryKey(p) => {
                    pk_name = p.name.as_ref().map(|n| n.value.clone());
                    for ic in &p.columns {
                        pk_names.push(
                            ic.column
                                .expr
                                .to_string()
                                .trim_matches(|c| c == '[' || c == ']')
                                .to_string(),
                        );
                    }
                }
                TableConstraint::Unique(u) => {
                    uniques.push((
                        u.name.as_ref().map(|n| n.value.clone()),
                        index_column_names(&u.columns),
                    ));
                }
                TableConstraint::Check(_)
                | TableConstraint::Index(_)
                | TableConstraint::ForeignKey(_) => {}
                #[allow(unreachable_patterns)]
                other => return Err(SqlError::unsupported(format!("constraint {other}"))),
            }
        }
        computed_types(&mut cols, &|t| self.resolve_cast_type(&type_db, t))?;
        let mut pk = Vec::new();
        for n in &pk_names {
            let idx = cols
                .iter()
                .position(|c: &Column| c.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    SqlError::new(
                        1911,
                        format!("Column name '{n}' does not exist in the target table or view."),
                    )
                })?;
            cols[idx].nullable = false;
            pk.push(idx);
        }
        let id = self.eng.alloc_object_id();
        let mut indexes = Vec::new();
        for (n, (name, columns)) in uniques.into_iter().enumerate() {
            indexes.push(Index {
                name: name
                    .unwrap_or_else(|| system_constraint_name("UQ", &r.name, id as u64 + n as u64)),
                columns: positions(&cols, &columns)?,
                unique: true,
                constraint: true,
            });
        }
        let mut t = Table::new(id, &r.schema, &r.name, cols, pk, now());
        t.indexes = indexes;
        if !t.pk.is_empty() {
            t.pk_name =
                Some(pk_name.unwrap_or_else(|| system_constraint_name("PK", &r.name, id as u64)));
        }
        self.eng
            .db_mut(&r.db)?
            .tables
            .insert(key(&r.schema, &r.name), t);
        self.done(None);
        Ok(())
    }

    pub(crate) fn alter_table(&mut self, at: sqlparser::ast::AlterTable) -> SqlResult<()> {
        let r = self.resolve(&name_parts(&at.name))?;
        let text = format!("{at}");
        for op in at.operations {
            match op {
                AlterTableOperation::AddColumn { column_def, .. } => {
                    let id = self.table(&r)?.next_column_id;
                    let mut col = self.column_def(&r.db, &column_def, id, &mut Vec::new())?;
                    if col.computed.is_some() {
                        let mut all = self.table(&r)?.columns.clone();
                        all.push(col);
                        computed_types(&mut all, &|t| self.resolve_cast_type(&r.db, t))?;
                        col = all.pop().ok_or_else(|| SqlError::unsupported("ADD"))?;
                    }
                    let fill = match &col.default {
                        Some(e) => coerce(self.eval_const(e)?, &col.ty)?,
                        None => Value::Null,
                    };
                    let t = self.table_mut(&r)?;
                    if t.column_index(&col.name).is_some() {
                        return Err(SqlError::new(
                            2705,
                            format!(
                                "Column names in each table must be unique. Column name '{}' in table '{}' is specified more than once.",
                                col.name, t.name
                            ),
                        ));
                    }
                    if fill.is_null() && !col.nullable && !t.versions.is_empty() {
                        return Err(SqlError::new(
                            4901,
                            "ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT definition specified.",
                        ));
                    }
                    t.next_column_id += 1;
                    t.columns.push(col);
                    for v in &mut t.versions {
                        v.values.push(fill.clone());
                    }
                    self.refresh_computed(&r)?;
                }
                AlterTableOperation::DropColumn { column_names, .. } => {
                    for n in column_names {
                        let t = self.table_mut(&r)?;
                        let idx = t.column_index(&n.value).ok_or_else(|| {
                            SqlError::new(4924, format!("ALTER TABLE DROP COLUMN failed because column '{}' does not exist in table '{}'.", n.value, t.name))
                        })?;
                        if t.pk.contains(&idx) {
                            return Err(SqlError::new(
                                5074,
                                format!(
                                    "The object '{}' is dependent on column '{}'.",
                                    t.pk_name.clone().unwrap_or_default(),
                                    n.value
                                ),
                            ));
                        }
                        if let Some(ix) = t.indexes.iter().find(|ix| ix.columns.contains(&idx)) {
                            return Err(SqlError::new(
                                5074,
                                format!(
                                    "The {} '{}' is dependent on column '{}'.",
                                    if ix.constraint { "object" } else { "index" },
                                    ix.name,
                                    n.value
                                ),
                            ));
                        }
                        if let Some(c) = t.columns.iter().find(|c| {
                            c.computed.as_ref().is_some_and(|e| {
                                e.to_string()
                                    .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                                    .any(|w| w.eq_ignore_ascii_case(&n.value))
                            })
                        }) {
                            return Err(SqlError::new(
                                5074,
                                format!(
                                    "The column '{}' is dependent on column '{}'.",
                                    c.name, n.value
                                ),
                            ));
                        }
                        t.columns.remove(idx);
                        for v in &mut t.versions {
                            if idx < v.values.len() {
                                v.values.remove(idx);
                            }
                        }
                        t.pk =
                            t.pk.iter()
                                .map(|&p| if p > idx { p - 1 } else { p })
                                .collect();
                        for ix in &mut t.indexes {
                            for p in &mut ix.columns {
                                if *p > idx {
                                    *p -= 1;
                                }
                            }
                        }
                        t.reindex();
                    }
                }
                AlterTableOperation::AlterColumn { column_name, op } => {
                    // The new type, resolved before the table is borrowed (alias types are
                    // looked up in the table's database).
                    let new_type = match &op {
                        AlterColumnOperation::SetDataType { data_type, .. } => {
                            let text = data_type.to_string();
                            let upper = text.to_uppercase();
                            let explicit = if upper.ends_with("NOT NULL") {
                                Some(false)
                            } else if upper.ends_with("NULL") {
                                Some(true)
                            } else {
                                None
                            };
                            let kept = upper
                                .trim_end_matches("NOT NULL")
                                .trim_end_matches("NULL")
                                .trim_end()
                                .len();
                            let spelled = text.get(..kept).unwrap_or(&text).to_string();
                            let id = self
                                .table(&r)?
                                .column_index(&column_name.value)
                                .map_or(1, |i| i + 1);
                            Some((self.resolve_type(&r.db, &spelled, id)?, explicit))
                        }
                        _ => None,
                    };
                    let t = self.table_mut(&r)?;
                    let idx = t
                        .column_index(&column_name.value)
                        .ok_or_else(|| SqlError::invalid_column(&column_name.value))?;
                    match op {
                        AlterColumnOperation::SetDataType { .. } => {
                            let Some((used, explicit)) = new_type else {
                                return Err(SqlError::unsupported("ALTER COLUMN"));
                            };
                            let ty = used.ty;
                            let nullable = explicit.or(used.nullable).unwrap_or(true);
                            let mut converted = Vec::with_capacity(t.versions.len());
                            for v in &t.versions {
                                converted.push(coerce(
                                    v.values.get(idx).cloned().unwrap_or(Value::Null),
                                    &ty,
                                )?);
                            }
                            for (v, c) in t.versions.iter_mut().zip(converted) {
                                if let Some(slot) = v.values.get_mut(idx) {
                                    *slot = c;
                                }
                            }
                            t.columns[idx].ty = ty;
                            t.columns[idx].nullable = nullable;
                            t.columns[idx].user_type_id = used.user_type_id;
                        }
                        AlterColumnOperation::SetNotNull => t.columns[idx].nullable = false,
                        AlterColumnOperation::DropNotNull => t.columns[idx].nullable = true,
                        other => {
                            return Err(SqlError::unsupported(format!("ALTER COLUMN {other}")));
                        }
                    }
                }
                other => return Err(SqlError::unsupported(format!("ALTER TABLE {other}"))),
            }
        }
        job::record_ddl(self.eng, self.cdc, &r, &text)?;
        self.done(None);
        Ok(())
    }
}

impl Exec<'_> {
    /// Fills the computed columns of `values` (a row of table `r`, in column order) from the
    /// row's other columns.
    pub(crate) fn fill_computed(&mut self, r: &TableRef, values: &mut [Value]) -> SqlResult<()> {
        let (cols, computed) = {
            let t = self.table(r)?;
            let computed: Vec<(usize, Expr, SqlType)> = t
                .columns
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.computed.clone().map(|e| (i, e, c.ty)))
                .collect();
            (crate::sql::rel::table_cols(t, &t.name), computed)
        };
        for (i, e, ty) in computed {
            let v = self.eval(&e, &cols, values, None)?;
            if let Some(slot) = values.get_mut(i) {
                *slot = coerce(v, &ty)?;
            }
        }
        Ok(())
    }

    /// Recomputes the computed columns of every stored version (after ALTER TABLE ADD).
    fn refresh_computed(&mut self, r: &TableRef) -> SqlResult<()> {
        if self.table(r)?.columns.iter().all(|c| c.computed.is_none()) {
            return Ok(());
        }
        let rows: Vec<Vec<Value>> = self
            .table(r)?
            .versions
            .iter()
            .map(|v| v.values.clone())
            .collect();
        let mut filled = Vec::with_capacity(rows.len());
        for mut row in rows {
            self.fill_computed(r, &mut row)?;
            filled.push(row);
        }
        let t = self.table_mut(r)?;
        for (v, row) in t.versions.iter_mut().zip(filled) {
            v.values = row;
        }
        Ok(())
    }
}

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
    fn system(ty: SqlType) -> Self {
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
    fn resolve_cast_type(&self, db: &str, text: &str) -> SqlResult<SqlType> {
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
        d.alias_types.retain(|a| a.user_type_id != id);
        Ok(())
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

/// Gives each computed column the type SQL Server derives from its expression (data type
/// precedence, and the precision and scale rules of "Precision, scale, and length
/// (Transact-SQL)"); computed columns are nullable.
/// `cast_type` resolves the type a CAST in the expression names (alias types included).
fn computed_types(
    cols: &mut [Column],
    cast_type: &dyn Fn(&str) -> SqlResult<SqlType>,
) -> SqlResult<()> {
    for i in 0..cols.len() {
        let Some(e) = cols[i].computed.clone() else {
            continue;
        };
        let ty = expr_type(&e, cols, cast_type)?;
        cols[i].ty = ty;
        cols[i].nullable = true;
    }
    Ok(())
}

/// The type of a computed column's expression over `cols`.
fn expr_type(
    e: &Expr,
    cols: &[Column],
    cast_type: &dyn Fn(&str) -> SqlResult<SqlType>,
) -> SqlResult<SqlType> {
    let unsupported = || SqlError::unsupported(format!("the computed column expression `{e}`"));
    match e {
        Expr::Nested(inner) => expr_type(inner, cols, cast_type),
        Expr::UnaryOp { expr, .. } => expr_type(expr, cols, cast_type),
        Expr::Identifier(i) => cols
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&i.value) && c.computed.is_none())
            .map(|c| c.ty)
            .ok_or_else(|| SqlError::invalid_column(&i.value)),
        Expr::Cast { data_type, .. } => cast_type(&data_type.to_string()),
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => Ok(number_type(n)),
            AstValue::SingleQuotedString(s) => Ok(SqlType::VarChar(Len::N(s.len().max(1) as u16))),
            AstValue::NationalStringLiteral(s) => {
                Ok(SqlType::NVarChar(Len::N(s.chars().count().max(1) as u16)))
            }
            _ => Err(unsupported()),
        },
        Expr::BinaryOp { left, op, right } => {
            let (a, b) = (
                expr_type(left, cols, cast_type)?,
                expr_type(right, cols, cast_type)?,
            );
            arith_type(op, a, b).ok_or_else(unsupported)
        }
        _ => Err(unsupported()),
    }
}

/// The type of a numeric literal: int when it fits, else decimal with its digits.
fn number_type(n: &str) -> SqlType {
    if !n.contains(['.', 'e', 'E']) && n.parse::<i32>().is_ok() {
        return SqlType::Int;
    }
    if n.contains(['e', 'E']) {
        return SqlType::Float;
    }
    let digits = n.chars().filter(char::is_ascii_digit).count().clamp(1, 38) as u8;
    let scale = n.split('.').nth(1).map_or(0, |f| f.len().min(38)) as u8;
    SqlType::Decimal(digits.max(scale).max(1), scale)
}

/// Precision and scale of an exact numeric type, for decimal arithmetic.
fn exact(t: SqlType) -> Option<(i32, i32)> {
    Some(match t {
        SqlType::Bit => (1, 0),
        SqlType::TinyInt => (3, 0),
        SqlType::SmallInt => (5, 0),
        SqlType::Int => (10, 0),
        SqlType::BigInt => (19, 0),
        SqlType::SmallMoney => (10, 4),
        SqlType::Money => (19, 4),
        SqlType::Decimal(p, s) => (i32::from(p), i32::from(s)),
        _ => return None,
    })
}

/// The result type of `a op b` by SQL Server's data type precedence and decimal rules.
fn arith_type(op: &BinaryOperator, a: SqlType, b: SqlType) -> Option<SqlType> {
    use SqlType as T;
    let is_text = |t: T| matches!(t, T::Char(_) | T::VarChar(_) | T::NChar(_) | T::NVarChar(_));
    if is_text(a) && is_text(b) && matches!(op, BinaryOperator::Plus) {
        let len = |t: T| match t {
            T::Char(n) | T::NChar(n) => Some(u32::from(n)),
            T::VarChar(Len::N(n)) | T::NVarChar(Len::N(n)) => Some(u32::from(n)),
            _ => None,
        };
        let unicode =
            matches!(a, T::NChar(_) | T::NVarChar(_)) || matches!(b, T::NChar(_) | T::NVarChar(_));
        let limit = if unicode { 4000 } else { 8000 };
        let n = match (len(a), len(b)) {
            (Some(x), Some(y)) if x + y <= limit => Len::N((x + y) as u16),
            _ => Len::Max,
        };
        return Some(if unicode {
            T::NVarChar(n)
        } else {
            T::VarChar(n)
        });
    }
    if !matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    ) {
        return None;
    }
    let numeric = |t: T| matches!(t, T::Float | T::Real) || exact(t).is_some();
    if !(numeric(a) && numeric(b)) {
        return None;
    }
    if matches!(a, T::Float) || matches!(b, T::Float) {
        return Some(T::Float);
    }
    if matches!(a, T::Real) || matches!(b, T::Real) {
        return Some(T::Real);
    }
    let ((p1, s1), (p2, s2)) = (exact(a)?, exact(b)?);
    let decimal = matches!(a, T::Decimal(..)) || matches!(b, T::Decimal(..));
    if !decimal {
        // Integers and money: the type of higher precedence.
        let rank = |t: T| match t {
            T::Money => 6,
            T::SmallMoney => 5,
            T::BigInt => 4,
            T::Int => 3,
            T::SmallInt => 2,
            T::TinyInt => 1,
            _ => 0,
        };
        return Some(if rank(a) >= rank(b) { a } else { b });
    }
    let (p, s) = match op {
        BinaryOperator::Plus | BinaryOperator::Minus => {
            let s = s1.max(s2);
            ((p1 - s1).max(p2 - s2) + s + 1, s)
        }
        BinaryOperator::Multiply => (p1 + p2 + 1, s1 + s2),
        BinaryOperator::Divide => {
            let s = 6.max(s1 + p2 + 1);
            (p1 - s1 + s2 + s, s)
        }
        _ => {
            let s = s1.max(s2);
            ((p1 - s1).min(p2 - s2) + s, s)
        }
    };
    // Past 38 digits the scale gives way, keeping at least 6 (SQL Server 2016 and later).
    let (p, s) = if p > 38 {
        (38, s.min((38 - (p - s)).max(6.min(s))))
    } else {
        (p, s)
    };
    Some(T::Decimal(p.clamp(1, 38) as u8, s.clamp(0, 38) as u8))
}

/// The column names of an index or constraint column list.
fn index_column_names(cols: &[sqlparser::ast::IndexColumn]) -> Vec<String> {
    cols.iter()
        .map(|ic| {
            ic.column
                .expr
                .to_string()
                .trim_matches(|c| c == '[' || c == ']')
                .to_string()
        })
        .collect()
}

/// Positions of named columns (error 1911 for a name the table lacks).
fn positions(cols: &[Column], names: &[String]) -> SqlResult<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            cols.iter()
                .position(|c| c.name.eq_ignore_ascii_case(n))
                .ok_or_else(|| {
                    SqlError::new(
                        1911,
                        format!("Column name '{n}' does not exist in the target table or view."),
                    )
                })
        })
        .collect()
}

impl Exec<'_> {
    /// `CREATE [UNIQUE] [CLUSTERED | NONCLUSTERED] INDEX name ON table (columns)`: recorded so
    /// that a unique index enforces its key (2601) and can identify rows for change data
    /// capture (`sys.sp_cdc_enable_table @index_name`). Error 1913 when the table already has
    /// an index or constraint of that name.
    pub(crate) fn create_index(&mut self, ci: sqlparser::ast::CreateIndex) -> SqlResult<()> {
        let r = self.resolve(&name_parts(&ci.table_name))?;
        let name = ci
            .name
            .as_ref()
            .map(|n| name_parts(n).last().cloned().unwrap_or_default())
            .ok_or_else(|| SqlError::syntax("ON"))?;
        let columns = index_column_names(&ci.columns);
        let own = self.xid();
        self.eng.db(&r.db)?;
        let eng = &mut *self.eng;
        let tt = &eng.txns;
        let t = eng
            .dbs
            .get_mut(&r.db)
            .and_then(|d| d.table_mut(&r.schema, &r.name))
            .ok_or_else(|| SqlError::invalid_object(&r.written))?;
        if t.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&name))
            || t.pk_name
                .as_ref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&name))
        {
            return Err(SqlError::new(
                1913,
                format!(
                    "The operation failed because an index or statistics with name '{name}' already exists on table '{}.{}'.",
                    t.schema, t.name
                ),
            ));
        }
        let ix = Index {
            name,
            columns: positions(&t.columns, &columns)?,
            unique: ci.unique,
            constraint: false,
        };
        if ix.unique {
            // Existing duplicates stop the index (1505).
            let live: Vec<Vec<Value>> = t
                .versions
                .iter()
                .filter(|v| {
                    !matches!(tt.status(v.xmin), crate::engine::txn::TxStatus::Aborted)
                        && !(v.xmax != 0
                            && (v.xmax == own
                                || matches!(
                                    tt.status(v.xmax),
                                    crate::engine::txn::TxStatus::Committed(_)
                                )))
                })
                .map(|v| v.values.clone())
                .collect();
            let mut seen = std::collections::HashSet::new();
            for v in &live {
                let k: Vec<String> = ix.columns.iter().map(|&c| v[c].key()).collect();
                if !seen.insert(k) {
                    let shown: Vec<String> = ix.columns.iter().map(|&c| v[c].to_string()).collect();
                    return Err(SqlError::new(
                        1505,
                        format!(
                            "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the object name '{}.{}' and the index name '{}'. The duplicate key value is ({}).",
                            t.schema,
                            t.name,
                            ix.name,
                            shown.join(", ")
                        ),
                    ));
                }
            }
        }
        t.indexes.push(ix);
        self.done(None);
        Ok(())
    }
}

/// The name SQL Server gives an unnamed PRIMARY KEY or UNIQUE constraint: the prefix (`PK`,
/// `UQ`), `__`, the first 8 characters of the table's name, `__` and 16 hex digits
/// (`PK__Employee__3214EC07A1F5D50E` for a table `Employees`). The digits are the server's
/// own; here they come from `seed`, so they are stable per object.
fn system_constraint_name(prefix: &str, table: &str, seed: u64) -> String {
    let short: String = table.chars().take(8).collect();
    format!("{prefix}__{short}__{:016X}", seed.wrapping_mul(2654435761))
}

#[cfg(test)]
mod tests {
    use super::system_constraint_name;

    #[test]
    fn unnamed_constraint_names_keep_the_first_8_characters_of_the_table_name() {
        let long = system_constraint_name("PK", "Employees", 7);
        assert!(long.starts_with("PK__Employee__"), "{long}");
        assert_eq!(long.len(), "PK__Employee__".len() + 16);
        let short = system_constraint_name("UQ", "t", 7);
        assert!(short.starts_with("UQ__t__"), "{short}");
        assert_eq!(short.len(), "UQ__t__".len() + 16);
    }
}
