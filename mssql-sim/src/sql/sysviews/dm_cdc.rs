//! The change data capture DMVs: `sys.dm_cdc_errors`, the errors the capture job's log scan
//! met, and `sys.dm_cdc_log_scan_sessions`, its sessions (columns and types from Microsoft's
//! pages of the two views; of the sessions view, the columns the simulator can fill).

use super::{i, rel, s};
use crate::engine::log::shown;
use crate::sql::exec::Exec;
use crate::sql::rel::Rel;
use crate::value::{Len, SqlType, Value};

const LSN_TEXT: SqlType = SqlType::NVarChar(Len::N(23));

impl Exec<'_> {
    /// `sys.dm_cdc_errors` or `sys.dm_cdc_log_scan_sessions` of database `db_name` (no rows
    /// where CDC is not enabled), or `None` for another view.
    pub(super) fn dm_cdc_view(&self, db_name: &str, view: &str) -> Option<Rel> {
        match view {
            "dm_cdc_errors" => Some(self.dm_cdc_errors(db_name)),
            "dm_cdc_log_scan_sessions" => Some(self.dm_cdc_log_scan_sessions(db_name)),
            _ => None,
        }
    }

    /// One row per session, oldest first, then — as on SQL Server, where session 0 is "an
    /// aggregate of all sessions since the instance … was last started" — session 0 with
    /// `scan_phase` 'Aggregate', the summed counts and the last session's times and LSNs.
    /// A session's `scan_phase` is 'Done' (the simulator's scans run to their end or fail).
    fn dm_cdc_log_scan_sessions(&self, db_name: &str) -> Rel {
        let sessions = self
            .cdc
            .db(db_name)
            .map(|cdc| cdc.scan_log.clone())
            .unwrap_or_default();
        let row = |id: i32, phase: &str, x: &crate::cdc::state::ScanSession, errors, trans| {
            vec![
                i(id.into()),
                Value::DateTime(x.start_time),
                Value::DateTime(x.end_time),
                s(phase),
                i(errors),
                s(&shown(x.start_lsn)),
                s(&shown(x.end_lsn)),
                i(trans),
            ]
        };
        let mut rows: Vec<Vec<Value>> = sessions
            .iter()
            .map(|x| row(x.session_id, "Done", x, x.error_count.into(), x.tran_count))
            .collect();
        if let Some(last) = sessions.last() {
            let errors: i64 = sessions.iter().map(|x| i64::from(x.error_count)).sum();
            let trans: i64 = sessions.iter().map(|x| x.tran_count).sum();
            rows.push(row(0, "Aggregate", last, errors, trans));
        }
        rel(
            &[
                ("session_id", SqlType::Int),
                ("start_time", SqlType::DateTime),
                ("end_time", SqlType::DateTime),
                ("scan_phase", SqlType::NVarChar(Len::N(200))),
                ("error_count", SqlType::Int),
                ("start_lsn", LSN_TEXT),
                ("end_lsn", LSN_TEXT),
                ("tran_count", SqlType::BigInt),
            ],
            rows,
        )
    }

    fn dm_cdc_errors(&self, db_name: &str) -> Rel {
        let rows = self
            .cdc
            .db(db_name)
            .map(|cdc| {
                cdc.scan_errors
                    .iter()
                    .map(|e| {
                        vec![
                            i(e.session_id.into()),
                            i(e.phase_number.into()),
                            Value::DateTime(e.entry_time),
                            i(e.number.into()),
                            i(e.severity.into()),
                            i(e.state.into()),
                            s(&e.message),
                            s(&shown(e.start_lsn)),
                            s(&shown(e.begin_lsn)),
                            s(&shown(e.sequence_value)),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        rel(
            &[
                ("session_id", SqlType::Int),
                ("phase_number", SqlType::Int),
                ("entry_time", SqlType::DateTime),
                ("error_number", SqlType::Int),
                ("error_severity", SqlType::Int),
                ("error_state", SqlType::Int),
                ("error_message", SqlType::NVarChar(Len::N(1024))),
                ("start_lsn", LSN_TEXT),
                ("begin_lsn", LSN_TEXT),
                ("sequence_value", LSN_TEXT),
            ],
            rows,
        )
    }
}
