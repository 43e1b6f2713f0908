//! Running a request's statements to their end: `WAITFOR DELAY` and lock waits pause them
//! with the engine unlocked; a wait ends when a lock is released, `SET LOCK_TIMEOUT`
//! expires (1222), the client sends ATTENTION, or the connection or server goes away.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::server::shared::Shared;
use crate::sql::exec::{Exec, Pause};
use crate::sql::out::Out;
use crate::sql::parse::Segment;
use crate::sql::session::Session;
use crate::sql::table_vars::{TableVarBatch, TableVarStep};

/// What the request loop and a waiting statement listen to besides the engine.
#[derive(Clone)]
pub(super) struct Signals {
    /// The client sent ATTENTION (cancel).
    pub(super) attention: Arc<AtomicBool>,
    /// The client's side of the connection is gone.
    pub(super) closed: Arc<AtomicBool>,
    /// Notified when either of the above is set.
    pub(super) wake: Arc<Notify>,
}

/// How a lock wait ended.
pub(super) enum WaitEnd {
    /// A lock was released (or a victim chosen): run the statement again.
    Woken,
    /// `SET LOCK_TIMEOUT` expired.
    TimedOut,
    /// The client cancelled.
    Cancelled,
    /// The connection closed or the server restarted.
    Gone,
}

/// Runs a request's statements to their end: `WAITFOR DELAY` and lock waits pause them with
/// the engine unlocked, so other sessions (the lock's holder among them) and the capture job
/// go on. `None` when the connection must end (closed by the client, server restarted).
pub(super) async fn drive(
    shared: &Arc<Shared>,
    sess: &mut Session,
    segs: &mut std::collections::VecDeque<crate::sql::parse::Segment>,
    signals: &Signals,
    generation: u64,
) -> Option<Vec<Out>> {
    let mut outs = Vec::new();
    loop {
        let mut pause = None;
        outs.extend(run(shared, sess, |ex| {
            ex.pausable = true;
            pause = ex.run_segments(segs)
        }));
        match pause {
            None => return Some(outs),
            Some(Pause::Delay(d)) => tokio::time::sleep(d).await,
            Some(Pause::Lock { seen, deadline }) => {
                match wait_for_lock(shared, signals, seen, deadline, generation).await {
                    WaitEnd::Woken => {}
                    WaitEnd::TimedOut => {
                        outs.extend(run(shared, sess, |ex| ex.lock_timed_out(segs)));
                    }
                    WaitEnd::Cancelled => {
                        outs.extend(run(shared, sess, |ex| ex.lock_wait_cancelled(segs)));
                        return Some(outs);
                    }
                    WaitEnd::Gone => return None,
                }
            }
        }
    }
}

/// What a request runs: its statements, or a batch that uses table variables.
pub(super) enum Work {
    Statements(VecDeque<Segment>),
    TableVars(TableVarBatch),
}

/// Runs a request's work to its end as [`drive`] does; a table-variable batch step by step,
/// its statements driven (so they wait for locks like any others) and its tables dropped at
/// the end. `None` when the connection must end.
pub(super) async fn drive_work(
    shared: &Arc<Shared>,
    sess: &mut Session,
    work: Work,
    signals: &Signals,
    generation: u64,
) -> Option<Vec<Out>> {
    let mut batch = match work {
        Work::Statements(mut segs) => {
            return drive(shared, sess, &mut segs, signals, generation).await;
        }
        Work::TableVars(batch) => batch,
    };
    let mut outs = Vec::new();
    let mut gone = false;
    loop {
        let mut step = TableVarStep::End;
        outs.extend(run(shared, sess, |ex| step = ex.table_var_step(&mut batch)));
        match step {
            TableVarStep::End | TableVarStep::Ran { failed: true } => break,
            TableVarStep::Ran { failed: false } => {}
            TableVarStep::Statements(mut segs) => {
                match drive(shared, sess, &mut segs, signals, generation).await {
                    Some(more) => {
                        let failed = more.iter().any(|o| matches!(o, Out::Error(_)));
                        outs.extend(more);
                        if failed {
                            break;
                        }
                    }
                    None => {
                        gone = true;
                        break;
                    }
                }
            }
        }
    }
    outs.extend(run(shared, sess, |ex| ex.table_var_end(batch)));
    (!gone).then_some(outs)
}

/// Waits until the lock epoch moves past `seen`, the deadline passes, the client cancels or
/// goes away, or the server restarts.
pub(super) async fn wait_for_lock(
    shared: &Shared,
    signals: &Signals,
    seen: u64,
    deadline: Option<std::time::Instant>,
    generation: u64,
) -> WaitEnd {
    let mut epochs = shared.ctl.lock_epochs();
    loop {
        if signals.closed.load(Ordering::SeqCst) || shared.ctl.restart_gen() != generation {
            return WaitEnd::Gone;
        }
        if signals.attention.load(Ordering::SeqCst) {
            return WaitEnd::Cancelled;
        }
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            moved = epochs.wait_for(|e| *e != seen) => {
                return if moved.is_ok() { WaitEnd::Woken } else { WaitEnd::Gone };
            }
            _ = expiry => return WaitEnd::TimedOut,
            _ = signals.wake.notified() => {}
            _ = shared.ctl.restarted() => return WaitEnd::Gone,
        }
    }
}

pub(in crate::server) fn run(
    shared: &Shared,
    sess: &mut Session,
    f: impl FnOnce(&mut Exec<'_>),
) -> Vec<Out> {
    let mut eng = shared.engine();
    let mut ex = eng.exec(sess, &shared.ctl);
    f(&mut ex);
    std::mem::take(&mut ex.out)
}
