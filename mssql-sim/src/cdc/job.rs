//! The capture job: committed transactions handed to each database's log, the scan that
//! fills change tables and `cdc.lsn_time_mapping`, and `cdc.ddl_history`.

use crate::cdc::capture::lsn_val;
use crate::cdc::state::{Cdc, CdcDb, Lob, LoggedTxn, SCAN_ERROR_SESSIONS, ScanError, ScanSession};
use crate::engine::catalog::{Database, Engine, TableRef, key, now};
use crate::engine::log::{Lsn, shown};
use crate::engine::txn::{Change, Txn};
use crate::error::{SqlError, SqlResult};
use crate::value::{SqlType, Value};

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

/// Whether an update changed a column's stored value. Text compares by its characters, not
/// by the collation: 'abc' → 'ABC' is a change the log records although a CI collation
/// calls the two equal.
fn changed(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Str(a), Value::Str(b)) => a != b,
        _ => before.key() != after.key(),
    }
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

/// One capture-job scan over every CDC-enabled database. Returns the transactions processed;
/// a database whose scan fails keeps its log for the next run, its errors in
/// `sys.dm_cdc_errors` (the capture job goes on with the other databases).
pub(crate) fn scan(eng: &mut Engine, cdcs: &mut Cdc) -> usize {
    scan_reporting(eng, cdcs).0
}

/// What `sys.sp_cdc_scan` runs: one scan, failing with the first failed database's error
/// (22859, which the procedure raises where the capture job's scan fails; the session's
/// other errors are in `sys.dm_cdc_errors`) after every database was scanned.
pub(crate) fn scan_or_fail(eng: &mut Engine, cdcs: &mut Cdc) -> SqlResult<usize> {
    match scan_reporting(eng, cdcs) {
        (_, Some(e)) => Err(e),
        (n, None) => Ok(n),
    }
}

fn scan_reporting(eng: &mut Engine, cdcs: &mut Cdc) -> (usize, Option<SqlError>) {
    let mut n = 0;
    let mut failed = None;
    for (name, cdc) in cdcs.iter_mut() {
        if let Some(d) = eng.dbs.get_mut(name) {
            match scan_db(d, cdc) {
                Ok(k) => n += k,
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
    }
    (n, failed)
}

fn scan_db(d: &mut Database, cdc: &mut CdcDb) -> SqlResult<usize> {
    if cdc.pending.is_empty() {
        return Ok(0);
    }
    cdc.scan_sessions += 1;
    let start_time = now();
    let (first, last) = match (cdc.pending.first(), cdc.pending.last()) {
        (Some(f), Some(l)) => (f.commit_lsn, l.commit_lsn),
        _ => (Lsn::ZERO, Lsn::ZERO),
    };
    let mut session = ScanSession {
        session_id: cdc.scan_sessions,
        start_time,
        end_time: start_time,
        error_count: 0,
        tran_count: 0,
        start_lsn: first,
        end_lsn: last,
    };
    if let Some(failure) = clr_change_before_ddl(d, cdc) {
        let error = fail_scan(d, cdc, failure);
        let id = session.session_id;
        session.error_count = cdc
            .scan_errors
            .iter()
            .filter(|e| e.session_id == id)
            .count() as i32;
        log_session(cdc, session);
        return Err(error);
    }
    session.tran_count = cdc.pending.len() as i64;
    log_session(cdc, session);
    cdc.ddl_pending.clear();
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
                                && changed(
                                    &pick(c, &c.before, &inst.columns[k]),
                                    &pick(c, &c.after, &inst.columns[k]),
                                )
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
                                && !changed(&pick(c, &c.before, col), &pick(c, &c.after, col)));
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
    Ok(count)
}

fn log_session(cdc: &mut CdcDb, session: ScanSession) {
    let id = session.session_id;
    cdc.scan_log
        .retain(|s| s.session_id > id - SCAN_ERROR_SESSIONS);
    cdc.scan_log.push(session);
}

/// Where a scan cannot go on: the change row of a table with a system CLR type column
/// (hierarchyid, geometry, geography) that DDL on the same table follows in the part of the
/// log the scan reads. Microsoft's KB 4538384 ("CDC capture job fails when processing
/// changes for a table with system CLR datatype"): DML on such a table, then DDL on it
/// (e.g. a column added) before the capture job reached the DML, and the capture job fails
/// on it — at every run, so capture stops for the whole database — until the DML and the
/// DDL are read by different runs or CDC is disabled (and re-enabled) on the table.
struct ScanFailure {
    commit_lsn: Lsn,
    begin_lsn: Lsn,
    change_lsn: Lsn,
}

fn clr_change_before_ddl(d: &Database, cdc: &CdcDb) -> Option<ScanFailure> {
    let has_clr_column = |object_id: i32| {
        d.table_by_id(object_id).is_some_and(|t| {
            t.columns.iter().any(|c| {
                matches!(
                    c.ty,
                    SqlType::HierarchyId | SqlType::Geometry | SqlType::Geography
                )
            })
        })
    };
    cdc.pending.iter().find_map(|txn| {
        txn.changes.iter().find_map(|c| {
            let captured = cdc
                .instances
                .iter()
                .any(|i| i.source_object_id == c.object_id && txn.commit_lsn > i.start_lsn);
            let ddl_after = cdc
                .ddl_pending
                .iter()
                .any(|&(lsn, id)| id == c.object_id && lsn > txn.commit_lsn);
            (captured && ddl_after && has_clr_column(c.object_id)).then_some(ScanFailure {
                commit_lsn: txn.commit_lsn,
                begin_lsn: txn.begin_lsn,
                change_lsn: c.lsn,
            })
        })
    })
}

/// A failed log scan: nothing is captured (the pending log stays for the next run) and
/// `sys.dm_cdc_errors` gets the session's errors, in the order KB 4538384 shows them —
/// 18805, 22859 (state 2), 3621 (state 6), all severity 16. The KB's fourth message, 22864
/// from sp_MScdc_capture_job, is the job's own failure, outside the log scan session. The
/// phase (3, second scan, where commands are built) is a model choice: unverified.
fn fail_scan(d: &Database, cdc: &mut CdcDb, at: ScanFailure) -> SqlError {
    let session_id = cdc.scan_sessions;
    let entry_time = now();
    let lsn = shown(at.change_lsn);
    let row = |number, state, message: String| ScanError {
        session_id,
        phase_number: 3,
        entry_time,
        number,
        severity: 16,
        state,
        message,
        start_lsn: at.commit_lsn,
        begin_lsn: at.begin_lsn,
        sequence_value: at.change_lsn,
    };
    let errors = [
        row(
            18805,
            1,
            format!(
                "The Log-Scan Process failed to construct a replicated command from log sequence number (LSN) {{{lsn}}}. Back up the publication database and contact Customer Support Services."
            ),
        ),
        row(
            22859,
            2,
            "Log Scan process failed in processing log records. Refer to previous errors in the current session to identify the cause and correct any associated problems.".to_string(),
        ),
        row(3621, 6, "The statement has been terminated.".to_string()),
    ];
    tracing::warn!(database = %d.name, lsn = %lsn, "capture job: log scan failed (KB 4538384: change of a table with a CLR type column followed by DDL on it)");
    let summary = SqlError {
        state: 2,
        ..SqlError::new(errors[1].number, errors[1].message.clone())
    };
    cdc.scan_errors
        .retain(|e| e.session_id > session_id - SCAN_ERROR_SESSIONS);
    cdc.scan_errors.extend(errors);
    summary
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
    let Some(cdc) = cdcs.db_mut(&r.db) else {
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
    cdc.ddl_pending.push((lsn, src));
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
