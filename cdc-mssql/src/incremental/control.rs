//! Applying signals to the running snapshots: an insert into the signal table read as a
//! signal, `execute-snapshot` / `stop-snapshot` / `pause-snapshot` / `resume-snapshot` applied
//! per database, and tables that become captured while streaming queued for a snapshot.

use super::{Incremental, Pending, Signal, SnapshotType};
use cdc_core::{ChangeEvent, Op, Value};

impl Incremental {
    /// The signal an insert into the configured signal table carries (Debezium's
    /// `signal.data.collection`: columns `id`, `type`, `data`); a bad one is logged and
    /// skipped, as Debezium does.
    pub(super) fn signal_in(&self, event: &ChangeEvent) -> Option<Signal> {
        let (database, table) = self.signal_table.as_ref()?;
        let id = &event.table.id;
        if event.op != Op::Create
            || !format!("{}.{}", id.schema, id.table).eq_ignore_ascii_case(table)
            || database
                .as_ref()
                .is_some_and(|d| !d.eq_ignore_ascii_case(&id.database))
        {
            return None;
        }
        let row = event.after.as_ref()?;
        let column = |name: &str| {
            event
                .table
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .and_then(|i| row.0.get(i))
                .and_then(|v| match v {
                    Value::String(s) => Some(s.to_string()),
                    _ => None,
                })
        };
        let signal_type = column("type").unwrap_or_default();
        let data = column("data").unwrap_or_default();
        match Signal::from_debezium(&signal_type, &data).and_then(|s| s.validate().map(|()| s)) {
            Ok(signal) => {
                tracing::info!(table = %id, signal = %signal_type, "signal read from the signal table");
                Some(signal)
            }
            Err(e) => {
                tracing::warn!(table = %id, error = %e, "ignoring a bad signal row");
                None
            }
        }
    }

    /// Queues a whole snapshot of `tables` (`schema.table`) of database `index`, incremental
    /// or `blocking`: tables that became captured while the source ran, and tables whose
    /// changes for a stretch of the log are gone (a capture instance disabled early). A
    /// table already waiting in the queue, unfiltered and not started, is read whole later
    /// anyway; one being read now, or queued with a signal's filter, is queued again
    /// unfiltered — the rows already read of it, or left out by the filter, may be the ones
    /// whose changes are missing.
    pub(crate) fn snapshot_new_tables(
        &mut self,
        index: usize,
        tables: Vec<String>,
        blocking: bool,
    ) {
        let (Some(state), Some(name)) = (self.states.get_mut(index), self.names.get(index)) else {
            return;
        };
        let running = state.progress.as_ref();
        let queued: Vec<Pending> = tables
            .into_iter()
            .filter(|table| {
                !running.is_some_and(|p| {
                    p.tables
                        .iter()
                        .skip(1)
                        .any(|p| p.table.eq_ignore_ascii_case(table) && p.filter.is_none())
                })
            })
            .map(|table| Pending {
                table,
                filter: None,
            })
            .collect();
        if queued.is_empty() {
            return;
        }
        tracing::info!(database = %name, tables = ?queued.iter().map(|t| &t.table).collect::<Vec<_>>(), blocking, "snapshot of tables that became captured or lost changes");
        state.queue(queued, blocking);
        // The catalog is read again: it knows the new tables only from now on.
        state.tables.clear();
    }

    pub(super) fn apply(&mut self, signal: Signal) {
        match signal {
            Signal::ExecuteSnapshot(request) => {
                for (index, name) in self.names.iter().enumerate() {
                    let tables: Vec<Pending> = request
                        .data_collections
                        .iter()
                        .filter_map(|c| local_name(c, name))
                        .map(|table| Pending {
                            filter: request
                                .additional_conditions
                                .iter()
                                .find(|c| {
                                    local_name(&c.data_collection, name)
                                        .is_some_and(|t| t.eq_ignore_ascii_case(&table))
                                })
                                .map(|c| c.filter.clone()),
                            table,
                        })
                        .collect();
                    if tables.is_empty() {
                        continue;
                    }
                    let blocking = request.snapshot_type == SnapshotType::Blocking;
                    tracing::info!(database = %name, tables = ?tables.iter().map(|t| &t.table).collect::<Vec<_>>(), blocking, "snapshot requested");
                    let state = &mut self.states[index];
                    // The catalog is read again: the table may have been enabled since.
                    state.tables.clear();
                    state.queue(tables, blocking);
                }
            }
            Signal::StopSnapshot(request) => {
                for (index, name) in self.names.iter().enumerate() {
                    let state = &mut self.states[index];
                    let Some(progress) = state.progress.as_mut() else {
                        continue;
                    };
                    if request.data_collections.is_empty() {
                        tracing::info!(database = %name, "incremental snapshot stopped");
                        state.progress = None;
                        state.held = None;
                        continue;
                    }
                    let stop: Vec<String> = request
                        .data_collections
                        .iter()
                        .filter_map(|c| local_name(c, name))
                        .collect();
                    let current = progress.tables.front().map(|p| p.table.clone());
                    progress
                        .tables
                        .retain(|p| !stop.iter().any(|s| s.eq_ignore_ascii_case(&p.table)));
                    if progress.tables.front().map(|p| &p.table) != current.as_ref() {
                        // The table being read was dropped from the snapshot.
                        state.held = None;
                        progress.last_key = None;
                    }
                    if progress.tables.is_empty() {
                        state.progress = None;
                        state.held = None;
                    }
                }
            }
            Signal::PauseSnapshot => {
                for progress in self.states.iter_mut().filter_map(|s| s.progress.as_mut()) {
                    progress.paused = true;
                }
            }
            Signal::ResumeSnapshot => {
                for progress in self.states.iter_mut().filter_map(|s| s.progress.as_mut()) {
                    progress.paused = false;
                }
            }
        }
    }
}

/// `schema.table` of a data collection named `schema.table` or `database.schema.table`, if it
/// is in `database`.
fn local_name(collection: &str, database: &str) -> Option<String> {
    let parts: Vec<&str> = collection.split('.').collect();
    match parts.as_slice() {
        [schema, table] => Some(format!("{schema}.{table}")),
        [db, schema, table] if db.eq_ignore_ascii_case(database) => {
            Some(format!("{schema}.{table}"))
        }
        _ => None,
    }
}
