//! Statement dispatch: one parsed statement handed to the module that runs it (transactions,
//! DDL, DML, queries, SET options, variables, control-of-flow inside IF blocks).

use sqlparser::ast::{DeclareAssignment, Expr, ObjectType, SetExpr, Statement, Use};

use super::Exec;
use crate::cdc::capture;
use crate::engine::catalog::key;
use crate::error::{SqlError, SqlResult};
use crate::sql::out::{Env, Out};
use crate::sql::parse::name_parts;
use crate::value::Value;

impl Exec<'_> {
    /// Runs one statement of a batch.
    pub(super) fn statement(&mut self, s: Statement) -> SqlResult<()> {
        match s {
            // Inside IF blocks (`IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION`, as cleanup scripts do).
            Statement::StartTransaction { .. } => self.begin_tran(),
            Statement::Commit { .. } => self.commit_tran(),
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => self.rollback_to_savepoint(&name.value),
            Statement::Rollback { .. } => self.rollback_tran(),
            Statement::Query(q) if assigns_variables(&q) => {
                // `SELECT @a = expr, ...`: the last row's values go into the variables.
                let rel = self.query(&q)?;
                let n = rel.rows.len() as u64;
                if let Some(last) = rel.rows.last() {
                    for (c, v) in rel.cols.iter().zip(last) {
                        let key = c.name.to_lowercase();
                        let ty = self.sess.vars.get(&key).map(|(t, _)| *t).ok_or_else(|| {
                            SqlError::new(
                                137,
                                format!("Must declare the scalar variable \"{}\".", c.name),
                            )
                        })?;
                        // A date/time value takes its type's default text (value::styles).
                        let v = crate::value::styles::coerce_from(v.clone(), Some(c.ty), &ty)?;
                        self.sess.vars.insert(key, (ty, v));
                    }
                }
                self.sess.rowcount = n;
                self.done(Some(n));
                Ok(())
            }
            Statement::Query(q) => {
                let rel = self.query(&q)?;
                let rs = rel.into_result();
                let n = rs.rows.len() as u64;
                self.sess.rowcount = n;
                self.out.push(Out::Rows(rs));
                self.done(Some(n));
                Ok(())
            }
            Statement::Print(p) => {
                let msg = self.eval_const(&p.message)?.to_text().unwrap_or_default();
                self.out.push(Out::Info(0, msg));
                Ok(())
            }
            Statement::Throw(t) => {
                let number = match &t.error_number {
                    Some(e) => self.eval_const(e)?.as_i64()?.unwrap_or(50000) as i32,
                    None => {
                        return Err(SqlError::unsupported(
                            "THROW without arguments outside CATCH",
                        ));
                    }
                };
                let message = match &t.message {
                    Some(e) => self.eval_const(e)?.to_text().unwrap_or_default(),
                    None => String::new(),
                };
                let state = match &t.state {
                    Some(e) => self.eval_const(e)?.as_i64()?.unwrap_or(1).clamp(0, 255) as u8,
                    None => 1,
                };
                Err(SqlError::new(number, message).state(state))
            }
            Statement::While(w) => {
                // The engine is held for the whole batch, so a loop that never ends would stop
                // every session: past a million rounds the simulator gives up.
                for _ in 0..1_000_000 {
                    let go = match &w.while_block.condition {
                        Some(c) => self.eval_const(c)?.as_bool() == Some(true),
                        None => false,
                    };
                    if !go {
                        return Ok(());
                    }
                    for st in w.while_block.conditional_statements.statements().clone() {
                        self.statement(st)?;
                    }
                }
                Err(SqlError::unsupported(
                    "WHILE loops of more than 1 000 000 rounds",
                ))
            }
            Statement::Insert(ins) => self.insert(ins),
            Statement::Update(u) => {
                let mark = self.out.len();
                let r = self.update(u);
                self.end_write_scan(r, mark)
            }
            Statement::Delete(d) => {
                let mark = self.out.len();
                let r = self.delete(d);
                self.end_write_scan(r, mark)
            }
            Statement::CreateTable(ct) => self.create_table(ct),
            Statement::CreateIndex(ci) => self.create_index(ci),
            Statement::AlterTable(at) => self.alter_table(at),
            Statement::If(ifs) => {
                let mut blocks = vec![&ifs.if_block];
                blocks.extend(ifs.elseif_blocks.iter());
                for b in blocks {
                    let cond = match &b.condition {
                        Some(c) => self.eval_const(c)?.as_bool() == Some(true),
                        None => true,
                    };
                    if cond {
                        for st in b.conditional_statements.statements().clone() {
                            self.statement(st)?;
                        }
                        return Ok(());
                    }
                }
                if let Some(b) = &ifs.else_block {
                    for st in b.conditional_statements.statements().clone() {
                        self.statement(st)?;
                    }
                }
                Ok(())
            }
            Statement::Drop {
                object_type: ObjectType::Database,
                if_exists,
                names,
                ..
            } => {
                for n in &names {
                    let name = name_parts(n).join(".").to_lowercase();
                    if self.sess.db == name {
                        return Err(SqlError::new(
                            3702,
                            format!(
                                "Cannot drop database \"{name}\" because it is currently in use."
                            ),
                        ));
                    }
                    if matches!(name.as_str(), "master" | "tempdb" | "model" | "msdb") {
                        return Err(SqlError::new(
                            3708,
                            format!(
                                "Cannot drop the database '{name}' because it is a system database."
                            ),
                        ));
                    }
                    self.cdc.forget(&name);
                    if self.eng.dbs.remove(&name).is_none() && !if_exists {
                        return Err(SqlError::new(
                            3701,
                            format!(
                                "Cannot drop the database '{name}', because it does not exist or you do not have permission."
                            ),
                        ));
                    }
                }
                self.done(None);
                Ok(())
            }
            Statement::Drop {
                object_type: ObjectType::Type,
                if_exists,
                names,
                ..
            } => {
                for n in &names {
                    self.drop_type(&name_parts(n), if_exists)?;
                }
                self.done(None);
                Ok(())
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                if object_type != ObjectType::Table {
                    return Err(SqlError::unsupported(format!("DROP {object_type}")));
                }
                for n in &names {
                    let r = self.resolve(&name_parts(n))?;
                    let db = self.eng.db_mut(&r.db)?;
                    let k = key(&r.schema, &r.name);
                    let tracked = self
                        .cdc
                        .db(&db.name)
                        .is_some_and(|c| db.tables.get(&k).is_some_and(|t| c.tracks(t.object_id)));
                    // Dropping a tracked table drops its capture instances with it, change
                    // tables and metadata included (Microsoft's "What is change data capture"
                    // page; ground truth C14).
                    if tracked {
                        capture::disable_table(
                            self.eng, self.cdc, &r.db, &r.schema, &r.name, "all",
                        )?;
                    }
                    let db = self.eng.db_mut(&r.db)?;
                    if db.tables.remove(&k).is_none() && !if_exists {
                        return Err(SqlError::new(
                            3701,
                            format!(
                                "Cannot drop the table '{}', because it does not exist or you do not have permission.",
                                r.name
                            ),
                        ));
                    }
                }
                self.done(None);
                Ok(())
            }
            Statement::CreateDatabase { db_name, .. } => {
                let parts = name_parts(&db_name);
                self.eng
                    .create_db(parts.last().map(String::as_str).unwrap_or_default())?;
                self.done(None);
                Ok(())
            }
            Statement::CreateSchema { schema_name, .. } => {
                let name = schema_name.to_string();
                let db = self.eng.db_mut(&self.sess.db.clone())?;
                let id = db.schemas.iter().map(|s| s.0).max().unwrap_or(4) + 1;
                db.schemas.push((id.max(5), name));
                self.done(None);
                Ok(())
            }
            Statement::Use(u) => {
                let n = match u {
                    Use::Object(n) | Use::Database(n) | Use::Catalog(n) | Use::Schema(n) => n,
                    other => return Err(SqlError::unsupported(format!("{other}"))),
                };
                let name = name_parts(&n).join(".");
                let real = self.eng.db(&name).map_err(|_| {
                    SqlError::new(911, format!("Database '{name}' does not exist. Make sure that the name is entered correctly.")).state(1)
                })?.name.clone();
                let old = std::mem::replace(&mut self.sess.db, real.to_lowercase());
                let old_name = self.eng.db(&old).map(|d| d.name.clone()).unwrap_or(old);
                self.out.push(Out::Env(Env::Database {
                    new: real.clone(),
                    old: old_name,
                }));
                self.out.push(Out::Info(
                    5701,
                    format!("Changed database context to '{real}'."),
                ));
                self.done(None);
                Ok(())
            }
            Statement::Set(set) => self.set(set),
            Statement::Declare { stmts, .. } => {
                for d in stmts {
                    let ty = match &d.data_type {
                        Some(t) => {
                            let db = self.sess.db.clone();
                            self.resolve_type(&db, &t.to_string(), 1)?.ty
                        }
                        None => return Err(SqlError::unsupported("DECLARE without a type")),
                    };
                    let init = match &d.assignment {
                        Some(DeclareAssignment::Expr(e))
                        | Some(DeclareAssignment::Default(e))
                        | Some(DeclareAssignment::MsSqlAssignment(e)) => {
                            let v = self.eval_const(e)?;
                            let source = self.static_type(e, &[]).map(|(t, _)| t);
                            crate::value::styles::coerce_from(v, source, &ty)?
                        }
                        _ => Value::Null,
                    };
                    for n in &d.names {
                        self.sess
                            .vars
                            .insert(n.value.to_lowercase(), (ty, init.clone()));
                    }
                }
                Ok(())
            }
            Statement::Execute {
                name: Some(name),
                parameters,
                ..
            } => {
                let args = parameters
                    .into_iter()
                    .map(|p| match p {
                        Expr::BinaryOp {
                            left,
                            op: sqlparser::ast::BinaryOperator::Eq,
                            right,
                        } => match *left {
                            Expr::Identifier(i) if i.value.starts_with('@') => {
                                (Some(i.value), *right)
                            }
                            l => (
                                None,
                                Expr::BinaryOp {
                                    left: Box::new(l),
                                    op: sqlparser::ast::BinaryOperator::Eq,
                                    right,
                                },
                            ),
                        },
                        e => (None, e),
                    })
                    .collect();
                self.exec_proc(&name_parts(&name), args)
            }
            Statement::Truncate(t) => {
                for tn in &t.table_names {
                    let r = self.resolve(&name_parts(&tn.name))?;
                    // Truncation is not logged row by row, so the capture job could not see
                    // it: SQL Server refuses it on tables with a capture instance (4711).
                    let tracked = {
                        let t = self.table(&r)?;
                        let id = t.object_id;
                        self.eng.db(&r.db)?;
                        self.cdc.tracks(&r.db, id)
                    };
                    if tracked {
                        return Err(SqlError::new(
                            4711,
                            format!(
                                "Cannot truncate table '{}' because it is published for replication or enabled for Change Data Capture.",
                                r.written
                            ),
                        ));
                    }
                    // TRUNCATE takes a schema-modification lock: it waits for every lock.
                    self.lock_table(&r, true, true)?;
                    let view = self.view();
                    let tt = &self.eng.txns;
                    let own = self.xid();
                    let db = self
                        .eng
                        .dbs
                        .get_mut(&r.db)
                        .ok_or_else(|| SqlError::invalid_object(&r.name))?;
                    let t = db
                        .table_mut(&r.schema, &r.name)
                        .ok_or_else(|| SqlError::invalid_object(&r.name))?;
                    for i in t.visible(tt, &view) {
                        t.versions[i].xmax = own;
                    }
                }
                self.done(None);
                Ok(())
            }
            other => Err(SqlError::unsupported(format!(
                "the statement `{}`",
                other.to_string().chars().take(60).collect::<String>()
            ))),
        }
    }
}

/// Whether a query is a variable assignment (`SELECT @a = x, @b = y FROM ...`).
fn assigns_variables(q: &sqlparser::ast::Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            !s.projection.is_empty()
                && s.projection.iter().all(|p| {
                    matches!(p, sqlparser::ast::SelectItem::ExprWithAlias { alias, .. } if alias.value.starts_with('@'))
                })
        }
        _ => false,
    }
}
