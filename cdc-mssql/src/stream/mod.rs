//! Streaming one database's change tables: windows of committed transactions, merged across
//! capture instances into commit order.
//!
//! This module holds the [`StreamReader`] of one database (its position, capture instances,
//! retention checks and the hand-off from a snapshot); the rest by job:
//! - `window`: one window of committed transactions — its bounds from
//!   `cdc.lsn_time_mapping`, one page of each capture instance's changes, merged into commit
//!   order as events and schema changes;
//! - `row`: one change-table row read into values (`__$update_mask`, unavailable values);
//! - `capture_health`: the capture job's errors (`sys.dm_cdc_errors`) logged while nothing
//!   new arrives.

mod capture_health;
mod row;
mod window;

use crate::catalog::{self, CaptureInstance, Catalog, InstanceMarks};
use crate::connection::Connection;
use crate::{Error, MssqlConfig, NewTableSnapshot, RetentionPolicy, query};
use cdc_core::{ChangeEvent, Lsn, LsnPosition, SchemaChange, TableId, TableSchema, Value};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One row of a change table.
#[derive(Debug)]
struct ChangeRow {
    start_lsn: Lsn,
    seqval: Lsn,
    operation: u8,
    command_id: i32,
    values: Vec<Value>,
}

/// How long the capture job may stand still, while the reader waits for it, before a warning.
const CAPTURE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// The connector kind in every event's source information.
pub(crate) const CONNECTOR: &str = "sqlserver";

/// What the reader hands out, in order. Events dominate; boxing them would cost an
/// allocation per event to save space on the rare schema change.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    Event(ChangeEvent),
    SchemaChange(SchemaChange),
}

/// Where the reader is and what it still has to hand out for one database.
pub(crate) struct StreamReader {
    config: Arc<MssqlConfig>,
    pub(crate) conn: Connection,
    catalog: Catalog,
    marks: InstanceMarks,
    /// The last position handed out, or resumed from.
    pub(crate) position: LsnPosition,
    /// The schema last emitted per table, to emit schema changes only when columns differ.
    emitted: HashMap<TableId, Arc<TableSchema>>,
    /// Whether `position` came from a checkpoint, a snapshot's hand-off or data read
    /// (retention is checked for it), rather than from a fresh start on an empty log.
    resumed: bool,
    /// The window being read, page by page.
    window: Option<WindowCursor>,
    /// A snapshot's hand-off the capture job has not yet passed, and since when the reader
    /// waits for it (for the progress line).
    awaiting: Option<(Lsn, Option<Lsn>, std::time::Instant)>,
    /// Tables (`schema.table`) that became captured since the reader opened, not yet taken by
    /// [`StreamReader::take_new_tables`].
    new_tables: Vec<String>,
    /// The capture instances whose tables were handed to [`StreamReader::take_new_tables`]
    /// once already (a table is snapshotted once per instance).
    snapshotted_instances: std::collections::HashSet<String>,
    /// Reports a failing capture job while nothing new arrives.
    capture_health: capture_health::CaptureHealth,
}

/// What one poll found: the next items of the current window.
pub(crate) struct Window {
    pub(crate) items: VecDeque<Item>,
    /// The position after the window's last transaction, once the window is read to its end.
    pub(crate) end: Option<LsnPosition>,
}

/// One capture instance's rows in a window, read a page at a time.
struct Lane {
    instance: Arc<CaptureInstance>,
    lower: Lsn,
    upper: Lsn,
    rows: VecDeque<ChangeRow>,
    /// Keyset of the last row fetched: `(start_lsn, command_id, seqval, operation)`.
    last_key: Option<(Lsn, i32, Lsn, u8)>,
    /// No more pages.
    exhausted: bool,
}

/// A window of committed transactions `[from, to]` being merged into commit order. Only a
/// page per capture instance is held at a time, so a transaction of millions of rows streams
/// through in bounded memory.
struct WindowCursor {
    lanes: Vec<Lane>,
    commit_times: HashMap<Lsn, DateTime<Utc>>,
    end: LsnPosition,
    /// What the position said was already handed out when the window began.
    skip: (Lsn, u64),
    /// The current event's place in its transaction (`total_order`).
    order: u64,
    /// Debezium's `event_serial_no` of the last event and the `(commit_lsn, change_lsn)` it
    /// counts rows at.
    serial: (Option<(Lsn, Lsn)>, u64),
    /// Events per (transaction, lane), for `data_collection_order`.
    per_lane: Vec<u64>,
    current_tx: Option<(Lsn, Arc<str>, Option<DateTime<Utc>>)>,
    /// The table each lane's events carry, once looked up; forgotten whenever a schema change
    /// moves it.
    tables: Vec<Option<Arc<TableSchema>>>,
}

impl StreamReader {
    /// A reader at `position`; `catalog` is reused when the caller just loaded it.
    pub(crate) async fn open(
        config: Arc<MssqlConfig>,
        mut conn: Connection,
        position: LsnPosition,
        resumed: bool,
        catalog: Option<Catalog>,
    ) -> Result<Self, Error> {
        let catalog = match catalog {
            Some(catalog) => catalog,
            None => catalog::load(&mut conn, &config).await?,
        };
        let marks = catalog::marks(&mut conn).await?;
        let mut emitted = HashMap::new();
        for instances in &catalog.tables {
            if let Some(first) = instances.first() {
                emitted.insert(first.table.id.clone(), Arc::clone(&first.table));
            }
        }
        Ok(Self {
            config,
            conn,
            catalog,
            marks,
            position,
            emitted,
            resumed,
            window: None,
            awaiting: None,
            new_tables: Vec::new(),
            snapshotted_instances: std::collections::HashSet::new(),
            capture_health: capture_health::CaptureHealth::new(),
        })
    }

    /// Streaming takes over from a snapshot whose hand-off is `handoff`: the reader waits for
    /// the capture job to pass it before the first window (change rows at or before it are
    /// skipped; they are in the snapshot).
    pub(crate) fn await_capture_past(&mut self, handoff: Lsn) {
        self.awaiting = Some((handoff, None, std::time::Instant::now()));
    }

    /// Whether the capture job has passed the awaited hand-off; logs progress meanwhile.
    async fn capture_passed_handoff(&mut self) -> Result<bool, Error> {
        let Some((handoff, seen, since)) = self.awaiting else {
            return Ok(true);
        };
        let max = self.max_lsn().await?;
        if max.is_some_and(|m| m >= handoff) {
            tracing::info!(database = %self.database(), handoff = %handoff, "the capture job passed the snapshot's hand-off; streaming");
            self.awaiting = None;
            return Ok(true);
        }
        let waited = since.elapsed();
        let at = max.map_or_else(|| "nothing yet".to_string(), |m| m.to_string());
        if seen != max {
            tracing::info!(database = %self.database(), handoff = %handoff, capture_at = %at, "waiting for the capture job to pass the snapshot's hand-off LSN");
            self.awaiting = Some((handoff, max, std::time::Instant::now()));
        } else if waited >= CAPTURE_STALL {
            tracing::warn!(database = %self.database(), handoff = %handoff, capture_at = %at, waited_s = waited.as_secs(), "the capture job has not moved; is SQL Server Agent running and the CDC capture job started (EXEC sys.sp_cdc_help_jobs)? Streaming starts once it passes the hand-off");
            self.awaiting = Some((handoff, max, std::time::Instant::now()));
        }
        Ok(false)
    }

    pub(crate) fn database(&self) -> &str {
        self.conn.database()
    }

    /// The first LSN the next window must include.
    fn next_lsn(&self) -> Lsn {
        if self.position.is_end_of_transaction() {
            self.position.commit_lsn.increment()
        } else {
            self.position.commit_lsn
        }
    }

    /// The highest LSN the capture job has processed, if it has processed anything.
    pub(crate) async fn max_lsn(&mut self) -> Result<Option<Lsn>, Error> {
        let rows = self
            .conn
            .run("sys.fn_cdc_get_max_lsn", |c| {
                query::batch_rows(c, query::MAX_LSN).boxed()
            })
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<&[u8], _>(0).ok().flatten())
            .and_then(Lsn::from_bytes)
            .filter(|l| *l != Lsn::ZERO))
    }

    /// Refreshes the instance set (cheap), reloading the catalog when it changed, and checks
    /// that nothing the reader still needs was cleaned up.
    async fn refresh(&mut self) -> Result<(), Error> {
        let marks = catalog::marks(&mut self.conn).await?;
        // An instance is its name and its change table: disabled and re-enabled under the same
        // name, it is a new instance (another start, changes in between only in the old one).
        let identities = |m: &InstanceMarks| {
            m.iter()
                .map(|(n, object_id, _)| (n.clone(), *object_id))
                .collect::<Vec<_>>()
        };
        if identities(&marks) != identities(&self.marks) {
            tracing::info!(database = %self.database(), "capture instances changed; reloading the catalog");
            let catalog = catalog::load(&mut self.conn, &self.config).await?;
            let mut gaps = Vec::new();
            let known = |id: &TableId| {
                self.catalog
                    .tables
                    .iter()
                    .flatten()
                    .any(|i| i.table.id == *id)
            };
            for instance in catalog
                .tables
                .iter()
                .filter_map(|instances| instances.first())
            {
                let id = &instance.table.id;
                if !known(id) {
                    tracing::info!(database = %self.database(), table = %format!("{}.{}", id.schema, id.table), capture_instance = %instance.name, "a table became captured");
                    self.snapshotted_instances.insert(instance.name.clone());
                    self.new_tables.push(format!("{}.{}", id.schema, id.table));
                } else if let Some(gap) = self.replaced_too_early(instance, &catalog) {
                    gaps.push(gap);
                }
            }
            for gap in gaps {
                self.on_replaced_too_early(gap)?;
            }
            self.catalog = catalog;
        } else {
            for instance in self.catalog.tables.iter_mut().flatten() {
                if let Some((_, _, min)) = marks.iter().find(|(n, _, _)| *n == instance.name) {
                    instance.min_lsn = *min;
                }
            }
        }
        self.marks = marks;
        self.check_retention().await
    }

    /// The capture instance this reader was reading `instance`'s table from, when it is gone
    /// from `catalog` and `instance` (the table's instance now) starts after the next LSN the
    /// reader needs: the changes in between were only in the dropped instance's change table.
    /// Microsoft's procedure for a schema change creates the new instance and disables the
    /// old one; disabled before the reader reached the new one's start, the old one's last
    /// changes are gone (Debezium loses them without a word).
    fn replaced_too_early(
        &self,
        instance: &CaptureInstance,
        catalog: &Catalog,
    ) -> Option<ReplacedTooEarly> {
        let needed = self.next_lsn();
        if instance.min_lsn <= needed {
            return None;
        }
        let read = self
            .catalog
            .tables
            .iter()
            .filter_map(|instances| instances.first())
            .find(|old| old.table.id == instance.table.id)?;
        let still_there = catalog
            .tables
            .iter()
            .flatten()
            .any(|i| i.name == read.name && i.object_id == read.object_id);
        (!still_there).then(|| ReplacedTooEarly {
            table: format!("{}.{}", instance.table.id.schema, instance.table.id.table),
            dropped: read.name.clone(),
            replacement: instance.name.clone(),
            needed,
            start: instance.min_lsn,
        })
    }

    /// Takes the table a new snapshot (as the configured [`NewTableSnapshot`] would a newly
    /// captured one), so that its rows reach the stream as they are now; with
    /// [`NewTableSnapshot::None`] the reader stops with [`Error::CaptureInstanceDropped`].
    fn on_replaced_too_early(&mut self, gap: ReplacedTooEarly) -> Result<(), Error> {
        if self.config.new_table_snapshot == NewTableSnapshot::None {
            return Err(Error::CaptureInstanceDropped {
                database: self.database().to_string(),
                table: gap.table,
                capture_instance: gap.dropped,
                replacement: gap.replacement,
                requested: gap.needed,
                start: gap.start,
            });
        }
        tracing::warn!(
            database = %self.database(),
            table = %gap.table,
            capture_instance = %gap.dropped,
            replacement = %gap.replacement,
            needed = %gap.needed,
            replacement_start = %gap.start,
            "the capture instance being read was disabled before the reader reached its replacement's start LSN; its changes in between are gone, so the table is snapshotted again"
        );
        self.snapshotted_instances.insert(gap.replacement);
        self.new_tables.push(gap.table);
        Ok(())
    }

    /// The tables (`schema.table`) that became captured since the last call: their rows from
    /// before capture began are in no change table.
    pub(crate) fn take_new_tables(&mut self) -> Vec<String> {
        std::mem::take(&mut self.new_tables)
    }

    /// Compares the position with every capture instance's minimum LSN. An instance created
    /// after the position's transaction is new, not cleaned: its minimum is its start.
    async fn check_retention(&mut self) -> Result<(), Error> {
        if !self.resumed {
            return Ok(());
        }
        let needed = self.next_lsn();
        let suspicious: Vec<(String, Lsn, Option<NaiveDateTime>, String)> = self
            .catalog
            .tables
            .iter()
            .filter_map(|instances| instances.first())
            .filter(|i| i.min_lsn > needed)
            .map(|i| {
                let id = &i.table.id;
                let table = format!("{}.{}", id.schema, id.table);
                (i.name.clone(), i.min_lsn, i.created, table)
            })
            .collect();
        if suspicious.is_empty() {
            return Ok(());
        }
        let at = self.position.commit_lsn.to_bytes().to_vec();
        let rows = self
            .conn
            .run("cdc.lsn_time_mapping", move |c| {
                let at = at.clone();
                async move { query::rows(c, query::TIME_AT, &[&at]).await }.boxed()
            })
            .await?;
        let position_time = rows
            .first()
            .and_then(|r| r.try_get::<NaiveDateTime, _>(0).ok().flatten());
        for (name, minimum, created, table) in suspicious {
            let is_new = match (position_time, created) {
                // Created after the position's commit: new, its minimum is its start.
                (Some(p), Some(c)) if c > p => true,
                // The same `datetime` tick (3.33 ms): an instance enabled right after the
                // commit, or one created just before it and cleaned since. A cleanup's low
                // water mark is always a start_lsn of cdc.lsn_time_mapping (22964 otherwise),
                // so a minimum that is none is a creation point.
                (Some(p), Some(c)) if c == p => !self.is_mapped_lsn(minimum).await?,
                _ => false,
            };
            if !is_new {
                return Err(Error::LsnNotAvailable {
                    database: self.database().to_string(),
                    capture_instance: name,
                    requested: needed,
                    minimum,
                });
            }
            // Created after the position: the table's rows and changes from before it are in
            // no change table the reader can still read — a table captured while the reader
            // was stopped, or one whose previous instance was disabled before the reader got
            // to this one (the server has forgotten which). Snapshotted as the running reader
            // snapshots a table that becomes captured, once per instance.
            if self.snapshotted_instances.insert(name.clone()) {
                tracing::info!(database = %self.database(), %table, capture_instance = %name, "a capture instance created after the position; its table is snapshotted as a newly captured one");
                self.new_tables.push(table);
            }
        }
        Ok(())
    }

    /// Whether `lsn` is a transaction's start_lsn in `cdc.lsn_time_mapping`.
    async fn is_mapped_lsn(&mut self, lsn: Lsn) -> Result<bool, Error> {
        let at = lsn.to_bytes().to_vec();
        let rows = self
            .conn
            .run("cdc.lsn_time_mapping", move |c| {
                let at = at.clone();
                async move { query::rows(c, query::MAPPED_LSN, &[&at]).await }.boxed()
            })
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<i32, _>(0).ok().flatten())
            .is_some_and(|n| n > 0))
    }

    /// The next items (at most `max` events, and any schema change among them) of the current
    /// window, opening a new window when none is open. `None` when there is nothing new.
    pub(crate) async fn poll(&mut self, max: usize) -> Result<Option<Window>, Error> {
        let continuing = self.window.is_some();
        if !continuing && !self.open_window().await? {
            return Ok(None);
        }
        let Some(mut cursor) = self.window.take() else {
            return Ok(None);
        };
        // On an error the window is dropped: the next poll reads it again from its start and
        // the position skips what already went out.
        let items = self.next_items(&mut cursor, max).await?;
        // A window can span many polls: had cleanup removed rows the pages just read should
        // have held, the minimum LSNs now say so. Checked after the read, against the
        // position of the last event handed out from this window.
        if continuing {
            self.refresh().await?;
        }
        let finished = cursor
            .lanes
            .iter()
            .all(|l| l.exhausted && l.rows.is_empty());
        let end = if finished {
            Some(cursor.end.clone())
        } else {
            self.window = Some(cursor);
            None
        };
        Ok(Some(Window { items, end }))
    }

    /// Moves the position, once the items before it were handed out.
    pub(crate) fn advance(&mut self, position: LsnPosition) {
        self.position = position;
    }

    /// The retention policy in force.
    pub(crate) fn retention_policy(&self) -> RetentionPolicy {
        self.config.retention_policy
    }
}

/// A capture instance disabled before the reader reached its replacement's start LSN.
struct ReplacedTooEarly {
    table: String,
    dropped: String,
    replacement: String,
    needed: Lsn,
    start: Lsn,
}
