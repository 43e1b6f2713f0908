//! CDC state per database: capture instances, committed transactions waiting for the
//! capture job, and the LSN-to-time mapping. It lives beside the engine, not in its
//! databases, so the storage engine knows nothing of CDC.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::engine::log::Lsn;
use crate::engine::txn::Change;
use crate::value::{Len, SqlType};

/// The CDC state of every CDC-enabled database.
#[derive(Debug, Default)]
pub(crate) struct Cdc {
    /// Keyed by lower-case database name, as the engine's databases are.
    dbs: BTreeMap<String, CdcDb>,
}

impl Cdc {
    /// The CDC state of a database; `None` until `sys.sp_cdc_enable_db` ran there.
    pub(crate) fn db(&self, db: &str) -> Option<&CdcDb> {
        self.dbs.get(&db.to_lowercase())
    }

    pub(crate) fn db_mut(&mut self, db: &str) -> Option<&mut CdcDb> {
        self.dbs.get_mut(&db.to_lowercase())
    }

    /// Whether a table of a database has a capture instance.
    pub(crate) fn tracks(&self, db: &str, object_id: i32) -> bool {
        self.db(db).is_some_and(|c| c.tracks(object_id))
    }

    /// Starts empty CDC state for a database (`sys.sp_cdc_enable_db`).
    pub(crate) fn enable(&mut self, db: &str) {
        self.dbs.insert(db.to_lowercase(), CdcDb::default());
    }

    /// Forgets a database's CDC state (`sys.sp_cdc_disable_db`, `DROP DATABASE`).
    pub(crate) fn forget(&mut self, db: &str) {
        self.dbs.remove(&db.to_lowercase());
    }

    /// Every CDC-enabled database by its lower-case name, in name order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut CdcDb)> {
        self.dbs.iter_mut()
    }
}

/// A capture instance of a source table.
#[derive(Debug, Clone)]
pub(crate) struct CaptureInstance {
    pub(crate) name: String,
    pub(crate) source_object_id: i32,
    pub(crate) ct_object_id: i32,
    pub(crate) start_lsn: Lsn,
    /// Raised by cleanup; `sys.fn_cdc_get_min_lsn` returns it.
    pub(crate) min_lsn: Lsn,
    /// Captured column names, in column-ordinal order.
    pub(crate) columns: Vec<String>,
    /// `@supports_net_changes`: whether `cdc.fn_cdc_get_net_changes_<ci>` exists.
    pub(crate) net_changes: bool,
    /// Positions (within `columns`) of the source table's primary-key columns.
    pub(crate) key_positions: Vec<usize>,
    /// Per captured column: whether it is a computed column. The change table holds NULL
    /// for those, while they keep their bit in `__$update_mask` (set on insert and delete,
    /// as every bit is; never on update, their NULL never changes).
    pub(crate) computed: Vec<bool>,
    /// Per captured column: how a large-object column shows in delete and update-before
    /// rows (Microsoft's cdc.<capture_instance>_CT page, "Large object data types").
    pub(crate) lob: Vec<Lob>,
}

/// Large-object kinds that change tables treat apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lob {
    /// Not a large object.
    No,
    /// `text`, `ntext`, `image`: NULL in delete (1) and update-before (3) rows.
    Legacy,
    /// `varchar(max)`, `nvarchar(max)`, `varbinary(max)`: NULL in update-before rows unless
    /// the update changed the column; their value in delete rows.
    Max,
}

impl Lob {
    pub(crate) fn of(ty: SqlType) -> Lob {
        match ty {
            SqlType::Text | SqlType::NText | SqlType::Image => Lob::Legacy,
            SqlType::VarChar(Len::Max)
            | SqlType::NVarChar(Len::Max)
            | SqlType::VarBinary(Len::Max) => Lob::Max,
            _ => Lob::No,
        }
    }
}

/// A committed transaction waiting for the capture job.
#[derive(Debug)]
pub(crate) struct LoggedTxn {
    pub(crate) commit_lsn: Lsn,
    pub(crate) begin_lsn: Lsn,
    pub(crate) begin_time: NaiveDateTime,
    pub(crate) end_time: NaiveDateTime,
    pub(crate) tran_id: Vec<u8>,
    pub(crate) changes: Vec<Change>,
}

/// CDC state of a database.
#[derive(Debug, Default)]
pub(crate) struct CdcDb {
    pub(crate) instances: Vec<CaptureInstance>,
    pub(crate) pending: Vec<LoggedTxn>,
    /// (start_lsn, tran_end_time, whether it is a transaction with changes) of every
    /// `cdc.lsn_time_mapping` row, in LSN order: `false` marks the `tran_id = 0x00` rows the
    /// capture job writes to show progress over log records that hold no captured change.
    pub(crate) mapping: Vec<(Lsn, NaiveDateTime, bool)>,
    /// DDL on captured tables the capture job has not scanned yet: (LSN of the DDL's log
    /// record, source table's object id).
    pub(crate) ddl_pending: Vec<(Lsn, i32)>,
    /// The capture job's log scan sessions so far (the last `session_id`).
    pub(crate) scan_sessions: i32,
    /// `sys.dm_cdc_log_scan_sessions`: the last [`SCAN_ERROR_SESSIONS`] sessions.
    pub(crate) scan_log: Vec<ScanSession>,
    /// `sys.dm_cdc_errors`: the errors of the last [`SCAN_ERROR_SESSIONS`] failed sessions.
    pub(crate) scan_errors: Vec<ScanError>,
}

/// How many sessions' errors `sys.dm_cdc_errors` keeps ("contains error information for the
/// previous 32 sessions", Microsoft's sys.dm_cdc_errors page).
pub(crate) const SCAN_ERROR_SESSIONS: i32 = 32;

/// One row of `sys.dm_cdc_log_scan_sessions`: a run of the capture job's log scan that had
/// log to read (runs that found nothing new are not sessions here).
#[derive(Debug, Clone)]
pub(crate) struct ScanSession {
    pub(crate) session_id: i32,
    pub(crate) start_time: NaiveDateTime,
    pub(crate) end_time: NaiveDateTime,
    /// Errors the session met (0 for a session that read its log).
    pub(crate) error_count: i32,
    /// Committed transactions the session read (0 for a failed one).
    pub(crate) tran_count: i64,
    /// The first and last commit LSN it read.
    pub(crate) start_lsn: Lsn,
    pub(crate) end_lsn: Lsn,
}

/// One row of `sys.dm_cdc_errors`: an error the capture job's log scan met.
#[derive(Debug, Clone)]
pub(crate) struct ScanError {
    pub(crate) session_id: i32,
    /// The scan phase (`sys.dm_cdc_log_scan_sessions.scan_phase`: 1 reading configuration,
    /// 2 first scan, 3–5 second scan, 6 schema versioning, 7 last scan, 8 done).
    pub(crate) phase_number: i32,
    pub(crate) entry_time: NaiveDateTime,
    pub(crate) number: i32,
    pub(crate) severity: i32,
    pub(crate) state: i32,
    pub(crate) message: String,
    /// The LSNs of the rows, the transaction and the row being processed.
    pub(crate) start_lsn: Lsn,
    pub(crate) begin_lsn: Lsn,
    pub(crate) sequence_value: Lsn,
}

impl CdcDb {
    pub(crate) fn tracks(&self, object_id: i32) -> bool {
        self.instances
            .iter()
            .any(|i| i.source_object_id == object_id)
    }

    pub(crate) fn instance(&self, name: &str) -> Option<&CaptureInstance> {
        self.instances
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn max_lsn(&self) -> Lsn {
        self.mapping.last().map(|m| m.0).unwrap_or(Lsn::ZERO)
    }
}
