//! What the listener, every connection and the capture job share: the engine lock (the
//! storage engine and the CDC state beside it) and the server's settings.

use std::sync::atomic::AtomicU16;
use std::sync::{Mutex, MutexGuard};

use crate::cdc::job;
use crate::cdc::state::Cdc;
use crate::engine::catalog::Engine;
use crate::faults::Control;
use crate::sql::exec::Exec;
use crate::sql::session::Session;

/// What the engine lock guards: the storage engine and, beside it, the CDC state.
pub(super) struct State {
    pub(super) engine: Engine,
    pub(super) cdc: Cdc,
}

impl State {
    pub(super) fn exec<'a>(&'a mut self, sess: &'a mut Session, ctl: &'a Control) -> Exec<'a> {
        Exec::new(&mut self.engine, &mut self.cdc, sess, ctl)
    }

    pub(super) fn scan(&mut self) -> usize {
        job::scan(&mut self.engine, &mut self.cdc)
    }
}

/// One per simulator: the engine lock and what connections need to serve a client.
pub(super) struct Shared {
    pub(super) engine: Mutex<State>,
    pub(super) tls: Option<crate::tls::Tls>,
    /// Whether TDS 8.0 strict encryption is accepted (with `tls`).
    pub(super) strict_encryption: bool,
    pub(super) ctl: Control,
    pub(super) password: String,
    pub(super) next_spid: AtomicU16,
}

impl Shared {
    pub(super) fn engine(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the whole server down.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }
}
