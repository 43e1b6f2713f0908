//! The DBLog merge of a chunk into the stream: every position a poll hands out carries the
//! snapshot's progress, held rows a later change supersedes are dropped, and the chunk's
//! remaining rows go out once a window ends at or past the chunk's read point.

use super::{Incremental, cursor_of, key_of, key_text};
use crate::stream::Item;
use cdc_core::{
    ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SnapshotMarker, SourceInfo, Value,
};
use std::collections::VecDeque;
use std::sync::Arc;

impl Incremental {
    /// Runs over what one poll of database `index` returned: stamps the snapshot's progress on
    /// every position, drops held rows that a change committed after the chunk's read point
    /// supersedes, and, once the window ends at or past that read point, appends the chunk's
    /// remaining rows before the window's end.
    pub(crate) fn on_window(
        &mut self,
        index: usize,
        items: &mut VecDeque<Item>,
        end: &mut Option<LsnPosition>,
    ) {
        if index >= self.states.len() {
            return;
        }
        let mut cursor = self.states[index].progress.as_ref().map(cursor_of);
        for item in items.iter_mut() {
            let Item::Event(event) = item else { continue };
            // A signal row is applied where it stands in the stream: the events after it
            // (and its own position) already carry the snapshot it started.
            if let Some(signal) = self.signal_in(event) {
                self.apply(signal);
                cursor = self.states[index].progress.as_ref().map(cursor_of);
            }
            let state = &mut self.states[index];
            let Position::SqlServer(position) = &mut event.source.position else {
                continue;
            };
            if let Some(cursor) = &cursor
                && position.snapshot.is_none()
            {
                position.snapshot = Some(Box::new(cursor.clone()));
            }
            let commit = position.commit_lsn;
            if let Some(held) = state.held.as_mut()
                && event.table.id == held.table.id
                && commit > held.watermark
            {
                for row in [event.before.as_ref(), event.after.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    let key = key_of(&event.table, &row.0);
                    if let Some(&i) = held.keys.get(&key_text(&key)) {
                        held.rows[i] = None;
                    }
                }
            }
        }
        let state = &mut self.states[index];
        if state.progress.is_none() {
            return;
        }
        let Some(window_end) = end.as_mut() else {
            return;
        };
        let due = state
            .held
            .as_ref()
            .is_some_and(|h| window_end.commit_lsn >= h.watermark);
        if due && let Some(held) = state.held.take() {
            let database = Arc::clone(&self.names[index]);
            let mut progress = state.progress.clone().unwrap_or_default();
            let survivors: Vec<Vec<Value>> = held.rows.into_iter().flatten().collect();
            let n = survivors.len() as u64;
            for (i, values) in survivors.into_iter().enumerate() {
                progress.last_key = Some(key_of(&held.table, &values));
                progress.watermark = Some(held.watermark);
                let position = LsnPosition {
                    database: Arc::clone(&database),
                    commit_lsn: window_end.commit_lsn,
                    change_lsn: Lsn::ZERO,
                    // After every event of the window's last transaction, before its end.
                    event_serial_no: u64::MAX - n + i as u64,
                    total_order: u64::MAX - n + i as u64,
                    snapshot: Some(Box::new(cursor_of(&progress))),
                };
                let mut source = SourceInfo::new(
                    crate::stream::CONNECTOR,
                    Arc::clone(&self.server),
                    Position::SqlServer(position),
                );
                source.commit_time = held.read_time;
                source.snapshot = SnapshotMarker::Incremental;
                items.push_back(Item::Event(ChangeEvent::new(
                    Arc::clone(&held.table),
                    Op::Read,
                    None,
                    Some(Row::new(values)),
                    source,
                )));
            }
            progress.last_key = held.last_key;
            progress.watermark = Some(held.watermark);
            if held.finished {
                progress.tables.pop_front();
                progress.last_key = None;
            }
            state.progress = (!progress.tables.is_empty()).then_some(progress);
        }
        window_end.snapshot = state
            .progress
            .as_ref()
            .map(|progress| Box::new(cursor_of(progress)));
    }
}
