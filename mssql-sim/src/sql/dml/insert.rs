//! INSERT: VALUES and INSERT ... SELECT into a table, with identity, defaults, computed
//! columns, constraint checks (2627/2601/515) and the undo and CDC records of each row.

use sqlparser::ast::{Expr, SetExpr, TableObject};

use super::{computed_not_writable, unique_violation};
use crate::engine::catalog::TableRef;
use crate::engine::catalog::key;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::parse::name_parts;
use crate::sql::session::Undo;
use crate::value::{Len, SqlType, Value, coerce};

impl Exec<'_> {
    /// Inserts one row (values aligned with the table's columns, not yet coerced).
    pub(crate) fn insert_row(
        &mut self,
        r: &TableRef,
        mut values: Vec<Value>,
        explicit: &[bool],
    ) -> SqlResult<()> {
        let own = self.xid();
        let k = key(&r.schema, &r.name);
        let defaults: Vec<(usize, Expr)> = self
            .table(r)?
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !explicit.get(*i).copied().unwrap_or(false))
            .filter_map(|(i, c)| c.default.clone().map(|e| (i, e)))
            .collect();
        for (i, e) in defaults {
            if let Some(slot) = values.get_mut(i) {
                *slot = self.eval_const(&e)?;
            }
        }
        if let Some(c) = self
            .table(r)?
            .columns
            .iter()
            .enumerate()
            .find(|(i, c)| c.computed.is_some() && explicit.get(*i).copied().unwrap_or(false))
            .map(|(_, c)| c.name.clone())
        {
            return Err(computed_not_writable(&c));
        }
        let types: Vec<Option<SqlType>> = self
            .table(r)?
            .columns
            .iter()
            .map(|c| {
                (c.computed.is_none() && c.identity.is_none() && c.ty != SqlType::RowVersion)
                    .then_some(c.ty)
            })
            .collect();
        if self.table(r)?.columns.iter().any(|c| c.computed.is_some()) {
            // Computed columns see the row's values as they will be stored.
            for (v, ty) in values.iter_mut().zip(&types) {
                if let Some(ty) = ty {
                    *v = coerce(std::mem::replace(v, Value::Null), ty).map_err(|e| SqlError {
                        aborts_batch: false,
                        ..e
                    })?;
                }
            }
            self.fill_computed(r, &mut values)?;
        }
        self.check_lob_repl_size(r, &values)?;
        self.lock_insert(r)?;
        let rv = {
            self.eng.rowversion += 1;
            self.eng.rowversion
        };
        let db = self
            .eng
            .dbs
            .get_mut(&r.db)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        let tracked = self
            .cdc
            .db(&db.name)
            .is_some_and(|c| db.tables.get(&k).is_some_and(|t| c.tracks(t.object_id)));
        let t = db
            .tables
            .get_mut(&k)
            .ok_or_else(|| SqlError::invalid_object(&r.name))?;
        for (i, c) in t.columns.iter().enumerate() {
            let v = std::mem::replace(&mut values[i], Value::Null);
            let v = if let Some((_, inc)) = c.identity {
                if explicit.get(i).copied().unwrap_or(false) {
                    return Err(SqlError::new(
                        544,
                        format!(
                            "Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.",
                            t.name
                        ),
                    ));
                }
                let n = t.next_identity;
                t.next_identity += inc;
                Value::Int(n)
            } else if matches!(c.ty, SqlType::RowVersion) {
                Value::Bytes(rv.to_be_bytes().to_vec())
            } else {
                v
            };
            let v = coerce(v, &c.ty).map_err(|e| SqlError {
                aborts_batch: false,
                ..e
            })?;
            if v.is_null() && !c.nullable {
                return Err(SqlError::new(515, format!(
                    "Cannot insert the value NULL into column '{}', table '{}.{}.{}'; column does not allow nulls. INSERT fails.",
                    c.name, db.name, t.schema, t.name
                )).state(2).statement_only());
            }
            values[i] = v;
        }
        // A key another open transaction inserted or deleted: wait to learn whether it commits.
        if let Some(pk) = t.pk_key(&values)
            && let Some(b) = crate::sql::locking::key_writer(&self.eng.txns, t, &pk, own)
        {
            let id = (db.id, t.object_id);
            return Err(self.wait_for(b, id, "KEY", "X"));
        }
        if let Some(pk) = t.pk_key(&values)
            && t.key_taken(&self.eng.txns, &pk, own)
        {
            let keyv: Vec<String> = t.pk.iter().map(|&i| values[i].to_string()).collect();
            return Err(SqlError::new(2627, format!(
                    "Violation of PRIMARY KEY constraint '{}'. Cannot insert duplicate key in object '{}.{}'. The duplicate key value is ({}).",
                    t.pk_name.clone().unwrap_or_default(), t.schema, t.name, keyv.join(", ")
                )).state(1).class(14).statement_only());
        }
        if let Some((ix, shown)) = t.unique_clash(&self.eng.txns, &values, own) {
            return Err(unique_violation(ix, &t.schema, &t.name, &shown));
        }
        let idx = t.versions.len();
        let object_id = t.object_id;
        let columns: Vec<String> = if tracked {
            t.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            vec![]
        };
        let after = if tracked { Some(values.clone()) } else { None };
        t.push(values, own);
        self.sess.undo.push(Undo::Inserted {
            db: r.db.clone(),
            table: k,
            idx,
        });
        if tracked {
            self.log_change(&r.db, object_id, 2, columns, None, after)?;
        } else {
            self.log_write(&r.db)?;
        }
        Ok(())
    }

    pub(crate) fn insert(&mut self, ins: sqlparser::ast::Insert) -> SqlResult<()> {
        if ins.output.is_some() || ins.returning.is_some() {
            return Err(SqlError::unsupported("INSERT ... OUTPUT"));
        }
        let name = match &ins.table {
            TableObject::TableName(n) => n.clone(),
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let r = self.resolve(&name_parts(&name))?;
        let (ncols, positions) = {
            let t = self.table(&r)?;
            let positions: Vec<usize> = if ins.columns.is_empty() {
                (0..t.columns.len())
                    .filter(|&i| {
                        t.columns[i].identity.is_none()
                            && t.columns[i].computed.is_none()
                            && !matches!(t.columns[i].ty, SqlType::RowVersion)
                    })
                    .collect()
            } else {
                ins.columns
                    .iter()
                    .map(|c| {
                        let n = name_parts(c).last().cloned().unwrap_or_default();
                        t.column_index(&n)
                            .ok_or_else(|| SqlError::invalid_column(&n))
                    })
                    .collect::<SqlResult<_>>()?
            };
            (t.columns.len(), positions)
        };
        // sql_variant columns keep the type each value is written as, and a date/time value
        // put in a character column takes its type's default text (below).
        let targets: Vec<Option<SqlType>> = {
            let t = self.table(&r)?;
            positions
                .iter()
                .map(|&p| t.columns.get(p).map(|c| c.ty))
                .collect()
        };
        let source = ins
            .source
            .ok_or_else(|| SqlError::unsupported("INSERT without VALUES or SELECT"))?;
        let rows: Vec<Vec<Value>> = match source.body.as_ref() {
            SetExpr::Values(v) => {
                let mut rows = Vec::with_capacity(v.rows.len());
                for row in &v.rows {
                    let mut out = Vec::with_capacity(row.len());
                    for (i, e) in row.iter().enumerate() {
                        let v = self.eval_const(e)?;
                        let written = self.written_type(e, &[]);
                        out.push(written_value(
                            v,
                            written,
                            targets.get(i).copied().flatten(),
                        )?);
                    }
                    rows.push(out);
                }
                rows
            }
            _ => {
                let rel = self.query(&source)?;
                let types: Vec<SqlType> = rel.cols.iter().map(|c| c.ty).collect();
                let mut rows = Vec::with_capacity(rel.rows.len());
                for row in rel.rows {
                    let mut out = Vec::with_capacity(row.len());
                    for (i, v) in row.into_iter().enumerate() {
                        let written = types.get(i).copied();
                        out.push(written_value(
                            v,
                            written,
                            targets.get(i).copied().flatten(),
                        )?);
                    }
                    rows.push(out);
                }
                rows
            }
        };
        let mut n = 0u64;
        for row in rows {
            if row.len() != positions.len() {
                return Err(SqlError::new(
                    110,
                    "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
                ));
            }
            let mut values = vec![Value::Null; ncols];
            let mut explicit = vec![false; ncols];
            for (p, v) in positions.iter().zip(row) {
                values[*p] = v;
                explicit[*p] = true;
            }
            self.insert_row(&r, values, &explicit)?;
            n += 1;
        }
        self.sess.rowcount = n;
        self.done(Some(n));
        Ok(())
    }
}

impl Exec<'_> {
    /// The type a VALUES expression is written as, which a sql_variant column keeps as its
    /// base type: a character literal is varchar(n), an N'' literal nvarchar(n) (SQL Server's
    /// literal types; the simulator's text values do not tell them apart), otherwise the
    /// expression's static type (a CAST's target, a column's or variable's type, `cols` the
    /// columns it can name).
    pub(super) fn written_type(
        &self,
        e: &Expr,
        cols: &[crate::sql::rel::RelCol],
    ) -> Option<SqlType> {
        use sqlparser::ast::Value as AstValue;
        let chars = |s: &str| Len::N(u16::try_from(s.chars().count().max(1)).unwrap_or(8000));
        match e {
            Expr::Value(v) => match &v.value {
                AstValue::SingleQuotedString(s) => Some(SqlType::VarChar(chars(s))),
                AstValue::NationalStringLiteral(s) => Some(SqlType::NVarChar(chars(s))),
                _ => self.static_type(e, cols).map(|(t, _)| t),
            },
            _ => self.static_type(e, cols).map(|(t, _)| t),
        }
    }
}

/// A value written as type `written` on its way into a column of type `target`: a
/// sql_variant column keeps `written` as the base type; a character column gets a date/time
/// value's default text for `written` (`datetime` is style 0: value::styles); any other
/// column takes the value as it is (the row's coercion follows).
pub(super) fn written_value(
    v: Value,
    written: Option<SqlType>,
    target: Option<SqlType>,
) -> SqlResult<Value> {
    match target {
        Some(SqlType::Variant) => crate::value::variant::wrap(v, written),
        Some(t) if t.is_string() => crate::value::styles::coerce_from(v, written, &t),
        _ => Ok(v),
    }
}
