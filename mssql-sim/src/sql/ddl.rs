//! DDL: CREATE/ALTER/DROP TABLE column definitions and layout changes (types: sql/types.rs).

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, BinaryOperator, ColumnOption, Expr, TableConstraint,
    Value as AstValue,
};

use crate::cdc::job;
use crate::engine::catalog::TableRef;
use crate::engine::catalog::{key, now};
use crate::engine::table::{Column, Index, Table};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::indexes::{index_column_names, positions, system_constraint_name};
use crate::sql::parse::{COMPUTED_TYPE, name_parts};
use crate::sql::types::TypeUse;
use crate::value::{Collation, Len, SqlType, Value, coerce};

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
                // Validated here (448 for an unknown name); recorded by `declared_collation`.
                ColumnOption::Collation(name) => {
                    Collation::parse(&name.to_string())?;
                }
                ColumnOption::Unique(_) | ColumnOption::Check(_) => {}
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
        for c in &ct.columns {
            if let Some(coll) = declared_collation(c)? {
                t.collations.insert(c.name.value.to_lowercase(), coll);
            }
        }
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
                    if let Some(coll) = declared_collation(&column_def)? {
                        t.collations.insert(col.name.to_lowercase(), coll);
                    }
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
/// A column definition's `COLLATE` (error 448 for an unknown name); `None` when it has none
/// (the column takes the database default). A `_UTF8` collation on a char/varchar/text
/// column is refused as unsupported: its values would have to be stored and sent as UTF-8,
/// which the simulator does not do (it stores code page 1252 text).
fn declared_collation(c: &sqlparser::ast::ColumnDef) -> SqlResult<Option<Collation>> {
    for o in &c.options {
        if let ColumnOption::Collation(name) = &o.option {
            let coll = Collation::parse(&name.to_string())?;
            let narrow = matches!(
                c.data_type
                    .to_string()
                    .to_ascii_lowercase()
                    .split('(')
                    .next(),
                Some("char" | "varchar" | "text" | "character" | "character varying")
            );
            if coll.is_utf8() && narrow {
                return Err(SqlError::unsupported(
                    "UTF-8 collations on char/varchar/text columns",
                ));
            }
            return Ok(Some(coll));
        }
    }
    Ok(None)
}

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
