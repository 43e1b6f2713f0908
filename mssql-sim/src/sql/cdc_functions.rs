//! `sys.fn_cdc_*` scalar functions and `cdc.fn_cdc_get_all_changes_<capture_instance>`.

use crate::engine::log::Lsn;
use crate::error::{SqlError, SqlResult};
use crate::sql::exec::Exec;
use crate::sql::rel::{Rel, RelCol};
use crate::value::{SqlType, Value, as_datetime};

fn lsn_arg(v: &Value) -> SqlResult<Option<Lsn>> {
    match v {
        Value::Null => Ok(None),
        Value::Bytes(b) => crate::engine::log::lsn_from_binary(b)
            .map(Some)
            .ok_or_else(|| SqlError::conversion("An LSN must be binary(10).")),
        other => Err(SqlError::conversion(format!(
            "Operand type clash: {} is incompatible with binary(10)",
            other.natural_type().name()
        ))),
    }
}

fn lsn_val(l: Lsn) -> Value {
    Value::Bytes(l.to_bytes().to_vec())
}

/// Per key while net changes are folded: first operation, last start LSN, last operation,
/// last values, and the OR of update masks.
type NetState = (i64, Value, i64, Vec<Value>, Vec<u8>);

fn err_313(ci: &str) -> SqlError {
    SqlError::new(313, format!("An insufficient number of arguments were supplied for the procedure or function cdc.fn_cdc_get_all_changes_{ci}.")).state(3)
}

impl Exec<'_> {
    fn cdc_db(&self) -> SqlResult<&crate::cdc::state::CdcDb> {
        let db = self.eng.db(&self.sess.db)?;
        self.cdc.db(&db.name).ok_or_else(|| {
            SqlError::new(
                22901,
                format!(
                    "The database '{}' is not enabled for Change Data Capture.",
                    db.name
                ),
            )
        })
    }

    /// Scalar CDC functions.
    pub(crate) fn cdc_scalar(&mut self, name: &str, a: Vec<Value>) -> SqlResult<Value> {
        let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
        match name {
            "fn_cdc_get_min_lsn" => {
                let ci = arg(0).to_text().unwrap_or_default();
                let db = self.eng.db(&self.sess.db)?;
                Ok(lsn_val(
                    self.cdc
                        .db(&db.name)
                        .and_then(|c| c.instance(&ci))
                        .map(|i| i.min_lsn)
                        .unwrap_or(Lsn::ZERO),
                ))
            }
            "fn_cdc_get_max_lsn" => {
                let db = self.eng.db(&self.sess.db)?;
                Ok(lsn_val(
                    self.cdc
                        .db(&db.name)
                        .map(|c| c.max_lsn())
                        .unwrap_or(Lsn::ZERO),
                ))
            }
            "fn_cdc_increment_lsn" => Ok(match lsn_arg(&arg(0))? {
                Some(l) => lsn_val(l.increment()),
                None => Value::Null,
            }),
            "fn_cdc_decrement_lsn" => Ok(match lsn_arg(&arg(0))? {
                Some(l) => lsn_val(l.decrement()),
                None => Value::Null,
            }),
            "fn_cdc_map_lsn_to_time" => {
                let Some(l) = lsn_arg(&arg(0))? else {
                    return Ok(Value::Null);
                };
                let cdc = self.cdc_db()?;
                Ok(cdc
                    .mapping
                    .iter()
                    .find(|m| m.0 == l)
                    .map(|m| Value::DateTime(m.1))
                    .unwrap_or(Value::Null))
            }
            "fn_cdc_map_time_to_lsn" => {
                let op = arg(0).to_text().unwrap_or_default().to_lowercase();
                let t = as_datetime(&arg(1)).ok_or_else(|| {
                    SqlError::conversion("fn_cdc_map_time_to_lsn needs a datetime")
                })?;
                let cdc = self.cdc_db()?;
                // Only transactions with changes; not the capture job's tran_id = 0x00 rows.
                let m: Vec<_> = cdc.mapping.iter().filter(|m| m.2).collect();
                let hit = match op.as_str() {
                    "largest less than" => m.iter().rev().find(|x| x.1 < t),
                    "largest less than or equal" => m.iter().rev().find(|x| x.1 <= t),
                    "smallest greater than" => m.iter().find(|x| x.1 > t),
                    "smallest greater than or equal" => m.iter().find(|x| x.1 >= t),
                    _ => {
                        return Err(SqlError::new(
                            22987,
                            format!(
                                "The relational operator '{op}' is not valid. Valid operators are 'largest less than', 'largest less than or equal', 'smallest greater than', and 'smallest greater than or equal'."
                            ),
                        ));
                    }
                };
                Ok(hit.map(|x| lsn_val(x.0)).unwrap_or(Value::Null))
            }
            "fn_cdc_is_bit_set" => {
                let pos = arg(0).as_i64()?.unwrap_or(0);
                match arg(1) {
                    Value::Bytes(m) if pos >= 1 => {
                        let k = (pos - 1) as usize;
                        let byte = m
                            .len()
                            .checked_sub(1 + k / 8)
                            .and_then(|i| m.get(i))
                            .copied()
                            .unwrap_or(0);
                        Ok(Value::Bit(byte & (1 << (k % 8)) != 0))
                    }
                    _ => Ok(Value::Null),
                }
            }
            "fn_cdc_get_column_ordinal" => {
                let ci = arg(0).to_text().unwrap_or_default();
                let col = arg(1).to_text().unwrap_or_default();
                let cdc = self.cdc_db()?;
                Ok(cdc
                    .instance(&ci)
                    .and_then(|i| i.columns.iter().position(|c| c.eq_ignore_ascii_case(&col)))
                    .map(|p| Value::Int(p as i64 + 1))
                    .unwrap_or(Value::Int(-1)))
            }
            other => Err(SqlError::new(
                195,
                format!("'{other}' is not a recognized built-in function name."),
            )),
        }
    }

    /// Table-valued functions in FROM.
    pub(crate) fn table_function(&mut self, parts: &[String], args: Vec<Value>) -> SqlResult<Rel> {
        let name = parts.last().cloned().unwrap_or_default();
        let lower = name.to_lowercase();
        if let Some(ci) = lower.strip_prefix("fn_cdc_get_all_changes_") {
            let ci = name[name.len() - ci.len()..].to_string();
            return self.all_changes(&ci, args);
        }
        if let Some(ci) = lower.strip_prefix("fn_cdc_get_net_changes_") {
            let ci = name[name.len() - ci.len()..].to_string();
            return self.net_changes(&ci, args);
        }
        Err(SqlError::invalid_object(&parts.join(".")))
    }

    /// `cdc.fn_cdc_get_net_changes_<ci>(from, to, N'all' | N'all with mask' | N'all with merge')`:
    /// one row per key with its final state over the range.
    fn net_changes(&mut self, ci: &str, args: Vec<Value>) -> SqlResult<Rel> {
        let fname = format!("cdc.fn_cdc_get_net_changes_{ci}");
        let err = || {
            SqlError::new(313, format!("An insufficient number of arguments were supplied for the procedure or function {fname}.")).state(3)
        };
        if args.len() != 3 {
            return Err(err());
        }
        let filter = args[2].to_text().unwrap_or_default().to_lowercase();
        let (mask, merge) = match filter.trim() {
            "all" => (false, false),
            "all with mask" => (true, false),
            "all with merge" => (false, true),
            _ => return Err(err()),
        };
        let db = self.eng.db(&self.sess.db)?;
        let missing = || SqlError::invalid_object(&fname);
        let cdc = self.cdc.db(&db.name).ok_or_else(missing)?;
        let inst = cdc
            .instance(ci)
            .filter(|i| i.net_changes)
            .ok_or_else(missing)?;
        let (Some(from), Some(to)) = (lsn_arg(&args[0])?, lsn_arg(&args[1])?) else {
            return Err(err());
        };
        if from < inst.min_lsn || to > cdc.max_lsn() || from > to {
            return Err(err());
        }
        let t = db
            .table("cdc", &format!("{}_CT", inst.name))
            .ok_or_else(missing)?;
        let ncap = inst.columns.len();
        // key -> (first operation, last start_lsn, last operation, last values, mask of changes)
        let mut order: Vec<String> = Vec::new();
        let mut state: std::collections::HashMap<String, NetState> =
            std::collections::HashMap::new();
        for v in &t.versions {
            let Some(Value::Bytes(start)) = v.values.first() else {
                continue;
            };
            if start.as_slice() < from.to_bytes().as_slice()
                || start.as_slice() > to.to_bytes().as_slice()
            {
                continue;
            }
            let op = match v.values.get(3) {
                Some(Value::Int(op)) => *op,
                _ => continue,
            };
            if op == 3 {
                continue;
            }
            let vals: Vec<Value> = v.values[5..5 + ncap].to_vec();
            let key: String = inst
                .key_positions
                .iter()
                .map(|&k| vals[k].key() + "\u{1}")
                .collect();
            let m = match v.values.get(4) {
                Some(Value::Bytes(b)) => b.clone(),
                _ => vec![],
            };
            match state.get_mut(&key) {
                Some(e) => {
                    e.1 = v.values[0].clone();
                    e.2 = op;
                    e.3 = vals;
                    if e.4.len() == m.len() {
                        for (a, b) in e.4.iter_mut().zip(&m) {
                            *a |= b;
                        }
                    }
                }
                None => {
                    order.push(key.clone());
                    state.insert(key, (op, v.values[0].clone(), op, vals, m));
                }
            }
        }
        let cols = change_columns(false, &t.columns[5..5 + ncap]);
        let mut rows = Vec::new();
        for k in order {
            let Some((first, lsn, last, vals, m)) = state.remove(&k) else {
                continue;
            };
            let op = match (first, last) {
                (2, 1) => continue, // inserted and deleted inside the range
                (2, _) => 2,
                (_, 1) => 1,
                (_, 2) => 4, // deleted then inserted again: an update overall
                _ => 4,
            };
            let op = if merge && op != 1 { 5 } else { op };
            let mut r = vec![
                lsn,
                Value::Int(op),
                if mask && op == 4 {
                    Value::Bytes(m)
                } else {
                    Value::Null
                },
            ];
            r.extend(vals);
            rows.push(r);
        }
        Ok(Rel { cols, rows })
    }

    fn all_changes(&mut self, ci: &str, args: Vec<Value>) -> SqlResult<Rel> {
        if args.len() != 3 {
            return Err(err_313(ci));
        }
        let from = lsn_arg(&args[0])?;
        let to = lsn_arg(&args[1])?;
        let filter = args[2].to_text().unwrap_or_default().to_lowercase();
        let db = self.eng.db(&self.sess.db)?;
        let cdc = self
            .cdc
            .db(&db.name)
            .ok_or_else(|| SqlError::invalid_object(&format!("cdc.fn_cdc_get_all_changes_{ci}")))?;
        let inst = cdc
            .instance(ci)
            .ok_or_else(|| SqlError::invalid_object(&format!("cdc.fn_cdc_get_all_changes_{ci}")))?;
        let max = cdc.max_lsn();
        let (Some(from), Some(to)) = (from, to) else {
            return Err(err_313(ci));
        };
        let old = match filter.trim() {
            "all" => false,
            "all update old" => true,
            _ => return Err(err_313(ci)),
        };
        if from < inst.min_lsn || to > max || from > to {
            return Err(err_313(ci));
        }
        let t = db
            .table("cdc", &format!("{}_CT", inst.name))
            .ok_or_else(|| SqlError::invalid_object(ci))?;
        let ncap = inst.columns.len();
        let cols = change_columns(true, &t.columns[5..5 + ncap]);
        let (lo, hi) = (from.to_bytes(), to.to_bytes());
        let mut rows = Vec::new();
        for v in &t.versions {
            let Some(Value::Bytes(start)) = v.values.first() else {
                continue;
            };
            if start.as_slice() < lo.as_slice() || start.as_slice() > hi.as_slice() {
                continue;
            }
            if !old && v.values.get(3) == Some(&Value::Int(3)) {
                continue;
            }
            let mut r = Vec::with_capacity(4 + ncap);
            r.push(v.values[0].clone());
            r.extend(v.values.iter().skip(2).take(3 + ncap).cloned());
            rows.push(r);
        }
        Ok(Rel { cols, rows })
    }
}

/// The columns of a change function's result: `__$start_lsn`, `__$seqval` (all changes
/// only), `__$operation`, `__$update_mask`, then the captured columns (nullable: a delete's
/// net change has no values).
fn change_columns(with_seqval: bool, captured: &[crate::engine::table::Column]) -> Vec<RelCol> {
    let col = |name: &str, ty: SqlType, nullable: bool| RelCol {
        qual: String::new(),
        name: name.into(),
        ty,
        nullable,
        collation: None,
    };
    let mut cols = vec![col("__$start_lsn", SqlType::Binary(10), false)];
    if with_seqval {
        cols.push(col("__$seqval", SqlType::Binary(10), false));
    }
    cols.push(col("__$operation", SqlType::Int, false));
    cols.push(col(
        "__$update_mask",
        SqlType::VarBinary(crate::value::Len::N(128)),
        true,
    ));
    cols.extend(captured.iter().map(|c| col(&c.name, c.ty, true)));
    cols
}
