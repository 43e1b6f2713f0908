//! The capture job: committed transactions handed to each database's log, the scan that
//! fills change tables and `cdc.lsn_time_mapping`, and `cdc.ddl_history`.

use crate::cdc::capture::lsn_val;
use crate::cdc::state::{Cdc, CdcDb, Lob, LoggedTxn};
use crate::engine::catalog::{Database, Engine, TableRef, key, now};
use crate::engine::txn::{Change, Txn};
use crate::error::SqlResult;
use crate::value::Value;

/// Hands a committed transaction's changes to each database's log.
///
/// Every database the transaction wrote a log record in (changes, untracked writes,
/// savepoints) gets a commit record: the log moves at once, whether or not the capture job
/// ever reads it. Only CDC-enabled databases keep the transaction for the capture job.
pub(crate) fn log_commit(eng: &mut Engine, cdcs: &mut Cdc, mut txn: Txn) {
    let mut dbs: Vec<String> = txn.changes.iter().map(|c| c.db.clone()).collect();
    dbs.extend(txn.begin_lsn.keys().cloned());
    dbs.sort();
    dbs.dedup();
    if dbs.is_empty() {
        return;
    }
    let end = now();
    for name in dbs {
        let Some(db) = eng.dbs.get_mut(&name) else {
            continue;
        };
        let commit_lsn = db.log.commit();
        let begin_lsn = txn.begin_lsn.get(&name).copied().unwrap_or(commit_lsn);
        // Moved, not copied: a transaction of millions of rows is held once.
        let (changes, rest): (Vec<Change>, Vec<Change>) = std::mem::take(&mut txn.changes)
            .into_iter()
            .partition(|c| c.db == name);
        txn.changes = rest;
        let mut tran_id = vec![0u8; 4];
        tran_id.extend_from_slice(&(txn.xid as u32).to_be_bytes());
        tran_id.extend_from_slice(&[0, 0]);
        if let Some(cdc) = cdcs.db_mut(&name) {
            cdc.pending.push(LoggedTxn {
                commit_lsn,
                begin_lsn,
                begin_time: txn.begin_time,
                end_time: end,
                tran_id,
                changes,
            });
        }
    }
}

fn update_mask(n: usize, changed: impl Fn(usize) -> bool) -> Vec<u8> {
    let bytes = n.div_ceil(8).max(1);
    let mut m = vec![0u8; bytes];
    for k in 0..n {
        if changed(k) {
            m[bytes - 1 - k / 8] |= 1 << (k % 8);
        }
    }
    m
}

fn pick(change: &Change, values: &Option<Vec<Value>>, col: &str) -> Value {
    let Some(vals) = values else {
        return Value::Null;
    };
    change
        .columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(col))
        .and_then(|i| vals.get(i).cloned())
        .unwrap_or(Value::Null)
}

/// One capture-job scan over every CDC-enabled database. Returns the transactions processed.
pub(crate) fn scan(eng: &mut Engine, cdcs: &mut Cdc) -> usize {
    let mut n = 0;
    for (name, cdc) in cdcs.iter_mut() {
        if let Some(d) = eng.dbs.get_mut(name) {
            n += scan_db(d, cdc);
        }
    }
    n
}

fn scan_db(d: &mut Database, cdc: &mut CdcDb) -> usize {
    let pending = std::mem::take(&mut cdc.pending);
    let instances = cdc.instances.clone();
    let count = pending.len();
    let mut mapping_rows = Vec::new();
    // The last committed transaction the scan read that had nothing to capture, if no
    // captured one followed it.
    let mut uncaptured = None;
    for txn in pending {
        let mut captured_any = false;
        for inst in &instances {
            if txn.commit_lsn <= inst.start_lsn {
                continue;
            }
            let rows: Vec<Vec<Value>> = txn
                .changes
                .iter()
                .filter(|c| c.object_id == inst.source_object_id)
                .map(|c| {
                    let src = if c.op == 1 || c.op == 3 {
                        &c.before
                    } else {
                        &c.after
                    };
                    let computed = |k: usize| inst.computed.get(k).copied().unwrap_or(false);
                    let mask = match c.op {
                        3 | 4 => update_mask(inst.columns.len(), |k| {
                            !computed(k)
                                && pick(c, &c.before, &inst.columns[k]).key()
                                    != pick(c, &c.after, &inst.columns[k]).key()
                        }),
                        _ => update_mask(inst.columns.len(), |_| true),
                    };
                    let mut row = vec![
                        lsn_val(txn.commit_lsn),
                        Value::Null,
                        lsn_val(c.lsn),
                        Value::Int(c.op as i64),
                        Value::Bytes(mask),
                    ];
                    for (k, col) in inst.columns.iter().enumerate() {
                        let lob = inst.lob.get(k).copied().unwrap_or(Lob::No);
                        let hidden = computed(k)
                            || (lob == Lob::Legacy && matches!(c.op, 1 | 3))
                            || (lob == Lob::Max
                                && c.op == 3
                                && pick(c, &c.before, col).key() == pick(c, &c.after, col).key());
                        row.push(if hidden {
                            Value::Null
                        } else {
                            pick(c, src, col)
                        });
                    }
                    row.push(Value::Int(c.command_id as i64));
                    row
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            captured_any = true;
            if let Some(t) = d.tables.get_mut(&key("cdc", &format!("{}_CT", inst.name))) {
                for r in rows {
                    t.push(r, 0);
                }
            }
        }
        uncaptured = (!captured_any).then_some(txn.commit_lsn);
        if captured_any {
            mapping_rows.push(vec![
                lsn_val(txn.commit_lsn),
                Value::DateTime(txn.begin_time),
                Value::DateTime(txn.end_time),
                Value::Bytes(txn.tran_id.clone()),
                lsn_val(txn.begin_lsn),
            ]);
            cdc.mapping.push((txn.commit_lsn, txn.end_time, true));
        }
    }
    // If the scan read committed transactions past the last mapped one that had nothing to
    // capture (writes to untracked tables, transactions whose only log record is a
    // savepoint), the capture job records its progress the way SQL Server's does
    // (sys.sp_ins_dummy_lsn_time_mapping_with_replnoop): a no-op log record and a
    // `tran_id = 0x00` row at its LSN, with no change rows. This moves fn_cdc_get_max_lsn()
    // but not the highest transaction with changes. Rolled-back work commits nothing and
    // leaves no row.
    let max = cdc.max_lsn();
    if uncaptured.is_some_and(|l| l > max) {
        let lsn = d.log.commit();
        let t = now();
        mapping_rows.push(vec![
            lsn_val(lsn),
            Value::DateTime(t),
            Value::DateTime(t),
            Value::Bytes(vec![0]),
            lsn_val(lsn),
        ]);
        cdc.mapping.push((lsn, t, false));
    }
    if let Some(t) = d.table_mut("cdc", "lsn_time_mapping") {
        for r in mapping_rows {
            t.push(r, 0);
        }
    }
    count
}

/// Records an ALTER TABLE on a tracked table in `cdc.ddl_history`; capture instances keep
/// their columns, as in SQL Server.
pub(crate) fn record_ddl(
    eng: &mut Engine,
    cdcs: &mut Cdc,
    r: &TableRef,
    text: &str,
) -> SqlResult<()> {
    let d = eng.db_mut(&r.db)?;
    let Some(src) = d.table(&r.schema, &r.name).map(|t| t.object_id) else {
        return Ok(());
    };
    let Some(cdc) = cdcs.db(&r.db) else {
        return Ok(());
    };
    let cts: Vec<i32> = cdc
        .instances
        .iter()
        .filter(|i| i.source_object_id == src)
        .map(|i| i.ct_object_id)
        .collect();
    if cts.is_empty() {
        return Ok(());
    }
    let lsn = d.log.commit();
    let t = now();
    if let Some(h) = d.table_mut("cdc", "ddl_history") {
        for ct in cts {
            h.push(
                vec![
                    Value::Int(src as i64),
                    Value::Int(ct as i64),
                    Value::Bit(false),
                    Value::Str(text.to_string()),
                    lsn_val(lsn),
                    Value::DateTime(t),
                ],
                0,
            );
        }
    }
    Ok(())
}
