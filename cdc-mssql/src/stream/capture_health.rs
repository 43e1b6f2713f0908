//! Whether the capture job is failing: while nothing new arrives, the errors of its latest
//! log scan session are read now and then and logged, so a capture job that fails at every
//! run (see [`crate::CaptureJobError`]) does not look like an idle database.

use crate::capture_job::{self, CaptureJobError};
use crate::connection::Connection;
use crate::query;
use futures::FutureExt;
use std::time::{Duration, Instant};

/// How long nothing new may arrive before the capture job's errors are read, and how often
/// they are read while that lasts.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// Watches one database's capture job.
#[derive(Debug)]
pub(super) struct CaptureHealth {
    /// When the reader last found something new (or started).
    moved_at: Instant,
    /// When the errors were last read.
    checked_at: Option<Instant>,
    /// Set once reading the views failed with a server error (no VIEW DATABASE STATE
    /// permission, which they need): they are not read again.
    unavailable: bool,
}

impl CaptureHealth {
    pub(super) fn new() -> Self {
        CaptureHealth {
            moved_at: Instant::now(),
            checked_at: None,
            unavailable: false,
        }
    }

    /// Whether the errors are to be read at `now`: nothing new for [`CHECK_EVERY`], not read
    /// in the last [`CHECK_EVERY`], and readable.
    fn due_at(&self, now: Instant) -> bool {
        !self.unavailable
            && now.saturating_duration_since(self.moved_at) >= CHECK_EVERY
            && self
                .checked_at
                .is_none_or(|t| now.saturating_duration_since(t) >= CHECK_EVERY)
    }

    /// Something new arrived: the capture job works.
    pub(super) fn moved(&mut self) {
        self.moved_at = Instant::now();
    }

    /// Nothing new arrived: after [`CHECK_EVERY`] of that, and then every [`CHECK_EVERY`],
    /// reads the errors of the capture job's latest session and logs them. A failure to read
    /// them is logged, never returned: this is a diagnosis beside the reader's work.
    pub(super) async fn idle(&mut self, conn: &mut Connection) -> Vec<CaptureJobError> {
        let now = Instant::now();
        if !self.due_at(now) {
            return Vec::new();
        }
        self.checked_at = Some(now);
        let rows = match conn
            .run("sys.dm_cdc_errors", |c| {
                query::batch_rows(c, capture_job::LATEST_SESSION_ERRORS).boxed()
            })
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                if !error.is_transient() {
                    self.unavailable = true;
                    tracing::info!(database = %conn.database(), error = %error, "cannot read sys.dm_cdc_errors (it needs VIEW DATABASE STATE); capture job failures will not be reported");
                }
                return Vec::new();
            }
        };
        let errors = capture_job::from_rows(&rows);
        if !errors.is_empty() {
            let text = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | ");
            let idle_s = self.moved_at.elapsed().as_secs();
            tracing::error!(database = %conn.database(), idle_s, errors = %text, "the CDC capture job is failing, so no changes are captured (sys.dm_cdc_errors); for 22859 after a change to a table with a hierarchyid, geometry or geography column and DDL on it, Microsoft's KB 4538384 says to disable and re-enable CDC on that table");
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_after_a_minute_without_news_then_once_a_minute() {
        let start = Instant::now();
        let mut health = CaptureHealth {
            moved_at: start,
            checked_at: None,
            unavailable: false,
        };
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(!health.due_at(at(59)), "not before a minute without news");
        assert!(health.due_at(at(60)));
        health.checked_at = Some(at(60));
        assert!(!health.due_at(at(119)), "once a minute while it lasts");
        assert!(health.due_at(at(120)));
        health.moved_at = at(120);
        assert!(!health.due_at(at(150)), "news starts the minute over");
        health.unavailable = true;
        assert!(
            !health.due_at(at(500)),
            "never once the views are unreadable"
        );
    }
}
