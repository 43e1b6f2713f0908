//! The capture job's health as the server reports it: the errors of its latest log scan
//! session, when that session failed.
//!
//! SQL Server's capture job (SQL Server Agent's `cdc.<db>_capture`) reads the log into the
//! change tables. When its log scan fails it fails at every run — Microsoft's KB 4538384:
//! a change to a table with a `hierarchyid`, `geometry` or `geography` column, then DDL on
//! that table before the job read the change, gives 18805, 22859 ("Log Scan process failed
//! in processing log records…") and 3621 at every run until CDC is disabled and re-enabled
//! on the table — and nothing more of the database is captured. `fn_cdc_get_max_lsn()` then
//! stands still, so an LSN lag of zero looks healthy; these errors are the signal.

use tiberius::Row;

/// The errors of the latest log scan session (`sys.dm_cdc_log_scan_sessions`: "the last row
/// returned represents the current session"), from `sys.dm_cdc_errors` — none when that
/// session met no error. Both views need VIEW DATABASE STATE.
pub(crate) const LATEST_SESSION_ERRORS: &str = "SELECT e.error_number, e.error_message \
     FROM sys.dm_cdc_errors AS e \
     WHERE e.session_id = (SELECT MAX(session_id) FROM sys.dm_cdc_log_scan_sessions WHERE session_id > 0) \
     ORDER BY e.entry_time";

/// An error of the capture job's latest log scan session (a row of `sys.dm_cdc_errors`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureJobError {
    /// SQL Server's error number (e.g. 22859).
    pub number: i32,
    /// The error's text.
    pub message: String,
}

impl std::fmt::Display for CaptureJobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.number, self.message)
    }
}

/// The errors in `rows` of [`LATEST_SESSION_ERRORS`].
pub(crate) fn from_rows(rows: &[Row]) -> Vec<CaptureJobError> {
    rows.iter()
        .filter_map(|r| {
            let number = r.try_get::<i32, _>(0).ok().flatten()?;
            let message = r.try_get::<&str, _>(1).ok().flatten()?;
            Some(CaptureJobError {
                number,
                message: message.to_string(),
            })
        })
        .collect()
}
