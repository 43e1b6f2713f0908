//! Fault injection: what tests switch on to see how a client copes with a misbehaving server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::SqlError;

#[derive(Debug, Default)]
struct FaultState {
    close_after_rows: Option<u64>,
    delay: Option<Duration>,
    fail_next: Option<(String, i32)>,
    scan_after_next: Option<String>,
    refuse_logins: bool,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<FaultState>,
    capture_running: AtomicBool,
    restart_gen: AtomicU64,
    restart: Notify,
    /// Requests' texts, while [`Faults::record_statements`] is on.
    statements: Mutex<Option<Vec<String>>>,
    /// Bumped (under the engine lock) whenever a lock someone waits for is released or a
    /// waiter is chosen as a deadlock victim: waiting sessions watch it.
    lock_epoch: tokio::sync::watch::Sender<u64>,
}

/// Handle for injecting faults into a running simulator. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Faults {
    fn state(&self) -> MutexGuard<'_, FaultState> {
        // A poisoned lock only means a panic elsewhere; the fault flags are still usable.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next result set sent on any connection is cut off after `rows` rows and the
    /// connection is closed.
    pub fn close_after_rows(&self, rows: u64) {
        self.state().close_after_rows = Some(rows);
    }

    /// Every response is delayed by `d` (zero turns it off).
    pub fn delay_responses(&self, d: Duration) {
        self.state().delay = if d.is_zero() { None } else { Some(d) };
    }

    /// The next statement whose text contains `pattern` (case-insensitive; empty matches
    /// anything) fails with SQL Server error `number` (1205 deadlock victim, 4060 cannot
    /// open database, or any other number).
    pub fn fail_next(&self, pattern: &str, number: i32) {
        self.state().fail_next = Some((pattern.to_lowercase(), number));
    }

    /// The capture job runs one scan right after the next statement whose text contains
    /// `pattern` (case-insensitive) has executed, before that statement's reply is sent: a
    /// deterministic way to let capture happen between a client's query and its next one.
    pub fn scan_after_next(&self, pattern: &str) {
        self.state().scan_after_next = Some(pattern.to_lowercase());
    }

    /// While on, logins fail with error 18456.
    pub fn refuse_logins(&self, on: bool) {
        self.state().refuse_logins = on;
    }

    /// Drops every open connection; data survives (like a service restart with the
    /// database files intact).
    pub fn restart(&self) {
        self.inner.restart_gen.fetch_add(1, Ordering::SeqCst);
        self.inner.restart.notify_waiters();
    }

    /// Stops the capture job (change rows stop appearing until it starts again).
    pub fn stop_capture(&self) {
        self.inner.capture_running.store(false, Ordering::SeqCst);
    }

    /// Starts the capture job again.
    pub fn start_capture(&self) {
        self.inner.capture_running.store(true, Ordering::SeqCst);
    }

    /// Starts recording what clients send: the text of every SQL batch, and every RPC call as
    /// `EXEC <procedure> <its text parameters>` (for `sp_executesql`, the statement first).
    /// Tests use it to see every statement a client sent, e.g. that a reader never writes.
    pub fn record_statements(&self) {
        *self
            .inner
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    }

    /// What was recorded since [`Faults::record_statements`], oldest first (recording goes on).
    pub fn recorded_statements(&self) -> Vec<String> {
        self.inner
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Turns off every pending fault.
    pub fn clear(&self) {
        *self.state() = FaultState::default();
    }
}

/// Server-internal view of the fault switches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Control {
    faults: Faults,
}

impl Control {
    pub(crate) fn new() -> Self {
        let c = Control::default();
        c.set_capture_running(true);
        c
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    pub(crate) fn set_capture_running(&self, on: bool) {
        self.faults
            .inner
            .capture_running
            .store(on, Ordering::SeqCst);
    }

    pub(crate) fn capture_running(&self) -> bool {
        self.faults.inner.capture_running.load(Ordering::SeqCst)
    }

    pub(crate) fn take_close_after_rows(&self) -> Option<u64> {
        self.faults.state().close_after_rows.take()
    }

    pub(crate) fn delay(&self) -> Option<Duration> {
        self.faults.state().delay
    }

    pub(crate) fn logins_refused(&self) -> bool {
        self.faults.state().refuse_logins
    }

    pub(crate) fn restart_gen(&self) -> u64 {
        self.faults.inner.restart_gen.load(Ordering::SeqCst)
    }

    /// The current lock epoch (read under the engine lock by a session about to wait).
    pub(crate) fn lock_epoch(&self) -> u64 {
        *self.faults.inner.lock_epoch.borrow()
    }

    /// Wakes every session waiting for a lock (they run their statement again).
    pub(crate) fn locks_released(&self) {
        self.faults.inner.lock_epoch.send_modify(|e| *e += 1);
    }

    /// A receiver of lock epochs, to wait until it moves past the one a waiter saw.
    pub(crate) fn lock_epochs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.faults.inner.lock_epoch.subscribe()
    }

    pub(crate) async fn restarted(&self) {
        self.faults.inner.restart.notified().await
    }

    /// Records a request's text while recording is on (`text` is only built then).
    pub(crate) fn record(&self, text: impl FnOnce() -> String) {
        let mut statements = self
            .faults
            .inner
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(statements) = statements.as_mut() {
            statements.push(text());
        }
    }

    /// If a scan-after-next fault matches this statement, consumes it and says so.
    pub(crate) fn take_scan_after(&self, stmt: &str) -> bool {
        let mut st = self.faults.state();
        match &st.scan_after_next {
            Some(p) if stmt.to_lowercase().contains(p.as_str()) => {
                st.scan_after_next = None;
                self.capture_running()
            }
            _ => false,
        }
    }

    /// If a fail-next fault matches this statement, consumes it and returns its error.
    pub(crate) fn take_failure(&self, stmt: &str) -> Option<SqlError> {
        let mut st = self.faults.state();
        let (pattern, number) = st.fail_next.as_ref()?;
        if !stmt.to_lowercase().contains(pattern.as_str()) {
            return None;
        }
        let number = *number;
        st.fail_next = None;
        Some(match number {
            1205 => SqlError::new(1205, "Transaction (Process ID 51) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.").state(51).class(13),
            4060 => SqlError::new(4060, "Cannot open database requested by the login. The login failed.").state(1).class(11),
            n => SqlError::new(n, format!("mssql-sim injected error {n}.")),
        })
    }
}
