//! DDL: CREATE/ALTER/DROP TABLE column definitions and layout changes.

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, ColumnOption, TableConstraint};

use crate::cdc::capture;
use crate::engine::catalog::{key, now};
use crate::engine::table::{Column, Table};
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::value::{SqlType, Value, coerce, parse_type};

impl Exec<'_> {
    // ---- DDL ---------------------------------------------------------------------------

    pub(crate) fn column_def(
        &mut self,
        c: &sqlparser::ast::ColumnDef,
        id: i32,
        pk: &mut Vec<String>,
    ) -> SqlResult<Column> {
        let ty = parse_type(&c.data_type.to_string())?;
        let mut col = Column {
            name: c.name.value.clone(),
            ty,
            nullable: !matches!(ty, SqlType::RowVersion),
            column_id: id,
            identity: None,
            default: None,
        };
        for o in &c.options {
            match &o.option {
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
        for (i, c) in ct.columns.iter().enumerate() {
            cols.push(self.column_def(c, i as i32 + 1, &mut pk_names)?);
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
                TableConstraint::Unique(_)
                | TableConstraint::Check(_)
                | TableConstraint::Index(_)
                | TableConstraint::ForeignKey(_) => {}
                #[allow(unreachable_patterns)]
                other => return Err(SqlError::unsupported(format!("constraint {other}"))),
            }
        }
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
        let mut t = Table::new(id, &r.schema, &r.name, cols, pk, now());
        if !t.pk.is_empty() {
            t.pk_name = Some(
                pk_name
                    .unwrap_or_else(|| format!("PK__{}__{:016X}", r.name, id as u64 * 2654435761)),
            );
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
                    let col = self.column_def(&column_def, id, &mut Vec::new())?;
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
                        t.reindex();
                    }
                }
                AlterTableOperation::AlterColumn { column_name, op } => {
                    let t = self.table_mut(&r)?;
                    let idx = t
                        .column_index(&column_name.value)
                        .ok_or_else(|| SqlError::invalid_column(&column_name.value))?;
                    match op {
                        AlterColumnOperation::SetDataType { data_type, .. } => {
                            let text = data_type.to_string();
                            let upper = text.to_uppercase();
                            let nullable = !upper.ends_with("NOT NULL");
                            let ty = parse_type(
                                upper
                                    .trim_end_matches("NOT NULL")
                                    .trim_end_matches("NULL")
                                    .trim(),
                            )?;
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
        capture::record_ddl(self.eng, &r, &text)?;
        self.done(None);
        Ok(())
    }
}
