//! System procedures the simulator implements: the CDC procedures and `sim.*` fault control.

use sqlparser::ast::Expr;

use crate::cdc::capture::{self, EnableTable};
use crate::cdc::job;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::out::{Out, ResultSet};
use crate::tds::tokens::ColumnMeta;
use crate::value::{Len, SqlType, Value};

/// Procedure arguments, by name (lower-case, without `@`) or position.
pub(crate) struct Args {
    named: Vec<(String, Value)>,
    positional: Vec<Value>,
}

impl Args {
    /// The argument named `name` (else the one at `pos`); an explicit NULL is `None`.
    pub(crate) fn get(&self, name: &str, pos: usize) -> Option<Value> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| self.positional.get(pos).cloned())
            .filter(|v| !v.is_null())
    }

    /// [`Args::get`] as text.
    pub(crate) fn text(&self, name: &str, pos: usize) -> Option<String> {
        self.get(name, pos).and_then(|v| v.to_text())
    }

    /// Whether the argument was passed at all (an explicit NULL counts).
    pub(crate) fn given(&self, name: &str, pos: usize) -> bool {
        self.named.iter().any(|(n, _)| n == name) || self.positional.len() > pos
    }
}

/// Error 201: `proc_name` was called without its parameter `@param`.
pub(crate) fn missing(proc_name: &str, param: &str) -> SqlError {
    SqlError::missing_parameter(proc_name, param)
}

impl Exec<'_> {
    /// Runs `EXEC name args`.
    pub(crate) fn exec_proc(
        &mut self,
        name: &[String],
        args: Vec<(Option<String>, Expr)>,
    ) -> SqlResult<()> {
        let mut a = Args {
            named: Vec::new(),
            positional: Vec::new(),
        };
        for (n, e) in &args {
            let v = self.eval_const(e)?;
            match n {
                Some(n) => a.named.push((n.trim_start_matches('@').to_lowercase(), v)),
                None => a.positional.push(v),
            }
        }
        let full = name.join(".").to_lowercase();
        let short = name.last().map(|s| s.to_lowercase()).unwrap_or_default();
        let db = self.sess.db.clone();
        match (short.as_str(), full.starts_with("sim.")) {
            ("fault", true) => return self.fault_proc(&a),
            ("sp_executesql", _) => {
                // EXEC sp_executesql N'stmt', N'@a int, ...', @a = 1, ...: the named
                // arguments become the statement's parameters.
                let stmt = a.text("stmt", 0).ok_or_else(|| missing(&short, "stmt"))?;
                for (name, v) in &a.named {
                    if name != "stmt" && name != "params" {
                        let ty = v.natural_type();
                        self.sess.vars.insert(format!("@{name}"), (ty, v.clone()));
                    }
                }
                let segs = crate::sql::parse::parse_batch(&stmt)?;
                for seg in segs {
                    self.run_nested(seg)?;
                }
                return Ok(());
            }
            ("sp_cdc_enable_db", _) => capture::enable_db(self.eng, self.cdc, &db)?,
            ("sp_cdc_disable_db", _) => capture::disable_db(self.eng, self.cdc, &db)?,
            ("sp_cdc_enable_table", _) => {
                let p = EnableTable {
                    schema: a
                        .text("source_schema", 0)
                        .ok_or_else(|| missing(&short, "source_schema"))?,
                    name: a
                        .text("source_name", 1)
                        .ok_or_else(|| missing(&short, "source_name"))?,
                    role: a.text("role_name", 2),
                    capture_instance: a.text("capture_instance", 3),
                    net_changes: a.get("supports_net_changes", 4).and_then(|v| v.as_bool()),
                    index_name: a.text("index_name", 5),
                    columns: a.text("captured_column_list", 6).map(|l| {
                        l.split(',')
                            .map(|c| {
                                c.trim()
                                    .trim_matches(|ch| ch == '[' || ch == ']')
                                    .to_string()
                            })
                            .filter(|c| !c.is_empty())
                            .collect()
                    }),
                };
                if a.named.iter().all(|(n, _)| n != "role_name") && a.positional.len() < 3 {
                    return Err(missing(&short, "role_name"));
                }
                capture::enable_table(self.eng, self.cdc, &db, p)?;
            }
            ("sp_cdc_disable_table", _) => {
                let schema = a
                    .text("source_schema", 0)
                    .ok_or_else(|| missing(&short, "source_schema"))?;
                let name = a
                    .text("source_name", 1)
                    .ok_or_else(|| missing(&short, "source_name"))?;
                let ci = a
                    .text("capture_instance", 2)
                    .ok_or_else(|| missing(&short, "capture_instance"))?;
                capture::disable_table(self.eng, self.cdc, &db, &schema, &name, &ci)?;
            }
            ("sp_configure", _) => {
                // Only 'max text repl size' changes anything here (the LOB size limit of
                // writes to CDC-tracked tables, error 7139); other options are accepted.
                let name = a.text("configname", 0).unwrap_or_default();
                let is_repl = name.to_lowercase().starts_with("max text repl size");
                match a.get("configvalue", 1) {
                    Some(v) if is_repl => {
                        let v = v.as_i64()?.unwrap_or(65536);
                        if !(-1..=i64::from(i32::MAX)).contains(&v) {
                            return Err(SqlError::new(
                                15129,
                                format!(
                                    "'{v}' is not a valid value for configuration option 'max text repl size (B)'."
                                ),
                            ));
                        }
                        let old = self
                            .eng
                            .max_text_repl_size_pending
                            .unwrap_or(self.eng.max_text_repl_size);
                        self.eng.max_text_repl_size_pending = Some(v);
                        self.out.push(Out::Info(
                            15457,
                            format!("Configuration option 'max text repl size (B)' changed from {old} to {v}. Run the RECONFIGURE statement to install."),
                        ));
                    }
                    Some(_) => {}
                    None if is_repl => {
                        let cfg = self
                            .eng
                            .max_text_repl_size_pending
                            .unwrap_or(self.eng.max_text_repl_size);
                        let col = |n: &str, ty: SqlType| ColumnMeta {
                            name: n.to_string(),
                            ty,
                            nullable: true,
                            collation: None,
                        };
                        let rs = ResultSet {
                            cols: vec![
                                col("name", SqlType::NVarChar(Len::N(35))),
                                col("minimum", SqlType::Int),
                                col("maximum", SqlType::Int),
                                col("config_value", SqlType::Int),
                                col("run_value", SqlType::Int),
                            ],
                            rows: vec![vec![
                                Value::Str("max text repl size (B)".into()),
                                Value::Int(-1),
                                Value::Int(i64::from(i32::MAX)),
                                Value::Int(cfg),
                                Value::Int(self.eng.max_text_repl_size),
                            ]],
                        };
                        self.out.push(Out::Rows(rs));
                        self.done(Some(1));
                        return Ok(());
                    }
                    None => {}
                }
            }
            ("sp_rename", _) => {
                let old = a
                    .text("objname", 0)
                    .ok_or_else(|| missing(&short, "objname"))?;
                let new = a
                    .text("newname", 1)
                    .ok_or_else(|| missing(&short, "newname"))?;
                if a.text("objtype", 2)
                    .is_some_and(|t| !t.eq_ignore_ascii_case("object"))
                {
                    return Err(SqlError::unsupported("sp_rename of columns and indexes"));
                }
                self.rename_table(&old, &new)?;
                // SQL Server's caution, sent as an informational message.
                self.out.push(Out::Info(
                    15477,
                    "Caution: Changing any part of an object name could break scripts and stored procedures.".into(),
                ));
            }
            ("sp_cdc_scan", _) => {
                job::scan_or_fail(self.eng, self.cdc)?;
            }
            ("sp_cdc_start_job", _) => self.ctl.set_capture_running(true),
            ("sp_cdc_stop_job", _) => self.ctl.set_capture_running(false),
            ("sp_cdc_cleanup_change_table", _) => {
                let ci = a
                    .text("capture_instance", 0)
                    .ok_or_else(|| missing(&short, "capture_instance"))?;
                let lwm = match a.get("low_water_mark", 1) {
                    Some(Value::Bytes(b)) => {
                        Some(crate::engine::log::lsn_from_binary(&b).ok_or_else(|| {
                            SqlError::conversion("@low_water_mark must be binary(10)")
                        })?)
                    }
                    _ => None,
                };
                capture::cleanup(self.eng, self.cdc, &db, &ci, lwm)?;
            }
            ("sp_cdc_help_change_data_capture", _) => {
                let rs = self.help_cdc(a.text("source_schema", 0), a.text("source_name", 1))?;
                let n = rs.rows.len() as u64;
                self.out.push(Out::Rows(rs));
                self.done(Some(n));
                return Ok(());
            }
            // ODBC catalog procedures (sp_tables, sp_columns_100, sp_pkeys): sql/catalog_procs.rs
            (other, _) if self.catalog_proc(other, &a)? => {
                return Ok(());
            }
            _ => {
                return Err(SqlError::new(
                    2812,
                    format!("Could not find stored procedure '{}'.", name.join(".")),
                )
                .state(62));
            }
        }
        self.done(None);
        Ok(())
    }

    fn help_cdc(&mut self, schema: Option<String>, name: Option<String>) -> SqlResult<ResultSet> {
        let d = self.eng.db(&self.sess.db)?;
        let cdc = self.cdc.db(&d.name).ok_or_else(|| {
            SqlError::new(
                22901,
                format!(
                    "The database '{}' is not enabled for Change Data Capture.",
                    d.name
                ),
            )
        })?;
        let sysname = SqlType::NVarChar(Len::N(128));
        let cols: Vec<ColumnMeta> = [
            ("source_schema", sysname),
            ("source_table", sysname),
            ("capture_instance", sysname),
            ("object_id", SqlType::Int),
            ("source_object_id", SqlType::Int),
            ("start_lsn", SqlType::Binary(10)),
            ("end_lsn", SqlType::Binary(10)),
            ("supports_net_changes", SqlType::Bit),
            ("has_drop_pending", SqlType::Bit),
            ("role_name", sysname),
            ("index_name", sysname),
            ("filegroup_name", sysname),
            ("create_date", SqlType::DateTime),
            ("index_column_list", SqlType::NVarChar(Len::Max)),
            ("captured_column_list", SqlType::NVarChar(Len::Max)),
        ]
        .iter()
        .map(|(n, t)| ColumnMeta {
            name: n.to_string(),
            ty: *t,
            nullable: true,
            collation: None,
        })
        .collect();
        let mut rows = Vec::new();
        for i in &cdc.instances {
            let Some(t) = d.table_by_id(i.source_object_id) else {
                continue;
            };
            if schema
                .as_ref()
                .is_some_and(|s| !s.eq_ignore_ascii_case(&t.schema))
                || name
                    .as_ref()
                    .is_some_and(|n| !n.eq_ignore_ascii_case(&t.name))
            {
                continue;
            }
            let ct = d.table("cdc", "change_tables");
            let (net, role, created) = ct
                .and_then(|ct| {
                    ct.versions
                        .iter()
                        .find(|v| v.values.first() == Some(&Value::Int(i.ct_object_id as i64)))
                })
                .map(|v| {
                    (
                        v.values[6].clone(),
                        v.values[8].clone(),
                        v.values[11].clone(),
                    )
                })
                .unwrap_or((Value::Null, Value::Null, Value::Null));
            let pk: Vec<String> =
                t.pk.iter()
                    .map(|&k| format!("[{}]", t.columns[k].name))
                    .collect();
            let capcols: Vec<String> = i.columns.iter().map(|c| format!("[{c}]")).collect();
            rows.push(vec![
                Value::Str(t.schema.clone()),
                Value::Str(t.name.clone()),
                Value::Str(i.name.clone()),
                Value::Int(i.ct_object_id as i64),
                Value::Int(i.source_object_id as i64),
                Value::Bytes(i.min_lsn.to_bytes().to_vec()),
                Value::Null,
                net,
                Value::Null,
                role,
                t.pk_name.clone().map(Value::Str).unwrap_or(Value::Null),
                Value::Null,
                created,
                if pk.is_empty() {
                    Value::Null
                } else {
                    Value::Str(pk.join(", "))
                },
                Value::Str(capcols.join(", ")),
            ]);
        }
        Ok(ResultSet { cols, rows })
    }

    /// `EXEC sim.fault @action = '...', ...` — the T-SQL face of [`crate::Faults`].
    fn fault_proc(&mut self, a: &Args) -> SqlResult<()> {
        let action = a.text("action", 0).unwrap_or_default().to_lowercase();
        let n = |name: &str, pos: usize| -> SqlResult<i64> {
            a.get(name, pos)
                .map(|v| v.as_i64())
                .transpose()
                .map(|o| o.flatten().unwrap_or(0))
        };
        match action.as_str() {
            "close_after_rows" => self
                .ctl
                .faults()
                .close_after_rows(n("rows", 1)?.max(0) as u64),
            "delay" => self
                .ctl
                .faults()
                .delay_responses(std::time::Duration::from_millis(n("ms", 1)?.max(0) as u64)),
            "fail_next" => {
                let number = n("error", 1)? as i32;
                let pattern = a.text("match", 2).unwrap_or_default();
                self.ctl.faults().fail_next(&pattern, number);
            }
            "refuse_logins" => self.ctl.faults().refuse_logins(n("on", 1)? != 0),
            "restart" => self.ctl.faults().restart(),
            "stop_capture" => self.ctl.set_capture_running(false),
            "start_capture" => self.ctl.set_capture_running(true),
            "clear" => self.ctl.faults().clear(),
            other => {
                return Err(SqlError::new(
                    50000,
                    format!(
                        "sim.fault: unknown @action '{other}'; use close_after_rows, delay, fail_next, refuse_logins, restart, stop_capture, start_capture or clear."
                    ),
                ));
            }
        }
        self.done(None);
        Ok(())
    }
}

impl Exec<'_> {
    /// `sp_rename 'schema.table', 'new_name'`: the table keeps its object id, so its capture
    /// instances keep capturing under their old names (ground truth C13). Error 15248 when
    /// the object does not exist, 15335 when the new name is taken, as SQL Server.
    fn rename_table(&mut self, old: &str, new: &str) -> SqlResult<()> {
        let parts: Vec<String> = old
            .split('.')
            .map(|p| p.trim_matches(|c| c == '[' || c == ']').to_string())
            .collect();
        let r = self.resolve(&parts)?;
        let new = new.trim_matches(|c| c == '[' || c == ']').to_string();
        let d = self.eng.db_mut(&r.db)?;
        let from = crate::engine::catalog::key(&r.schema, &r.name);
        let to = crate::engine::catalog::key(&r.schema, &new);
        if !d.tables.contains_key(&from) {
            return Err(SqlError::new(
                15248,
                "Either the parameter @objname is ambiguous or the claimed @objtype ((null)) is wrong.",
            )
            .class(11));
        }
        if d.tables.contains_key(&to) {
            return Err(SqlError::new(
                15335,
                format!("Error: The new name '{new}' is already in use as a OBJECT name and would cause a duplicate that is not permitted."),
            )
            .class(11));
        }
        if let Some(mut t) = d.tables.remove(&from) {
            t.name = new;
            d.tables.insert(to, t);
        }
        Ok(())
    }
}
