//! Streaming one database's change tables: windows of committed transactions, merged across
//! capture instances into commit order.

use crate::catalog::{self, CaptureInstance, Catalog, InstanceMarks};
use crate::connection::Connection;
use crate::types::into_value;
use crate::{Error, MssqlConfig, RetentionPolicy, query};
use cdc_core::{
    ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SchemaChange, SnapshotMarker, SourceInfo,
    TableId, TableSchema, TransactionInfo, Value,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::{FutureExt, TryStreamExt};
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
        let names = |m: &InstanceMarks| m.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&marks) != names(&self.marks) {
            tracing::info!(database = %self.database(), "capture instances changed; reloading the catalog");
            let catalog = catalog::load(&mut self.conn, &self.config).await?;
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
                    self.new_tables.push(format!("{}.{}", id.schema, id.table));
                }
            }
            self.catalog = catalog;
        } else {
            for instance in self.catalog.tables.iter_mut().flatten() {
                if let Some((_, min)) = marks.iter().find(|(n, _)| *n == instance.name) {
                    instance.min_lsn = *min;
                }
            }
        }
        self.marks = marks;
        self.check_retention().await
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
        let suspicious: Vec<(String, Lsn, Option<NaiveDateTime>)> = self
            .catalog
            .tables
            .iter()
            .filter_map(|instances| instances.first())
            .filter(|i| i.min_lsn > needed)
            .map(|i| (i.name.clone(), i.min_lsn, i.created))
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
        for (name, minimum, created) in suspicious {
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

    /// Reads the next window's bounds from `cdc.lsn_time_mapping`; `false` when there is none.
    async fn open_window(&mut self) -> Result<bool, Error> {
        if !self.capture_passed_handoff().await? {
            return Ok(false);
        }
        self.refresh().await?;
        let from = self.next_lsn();
        let sql = query::window(self.config.max_iteration_transactions);
        let from_bytes = from.to_bytes().to_vec();
        let rows = self
            .conn
            .run("cdc.lsn_time_mapping", move |c| {
                let (sql, from) = (sql.clone(), from_bytes.clone());
                async move { query::rows(c, &sql, &[&from]).await }.boxed()
            })
            .await?;
        let mut commit_times: HashMap<Lsn, DateTime<Utc>> = HashMap::new();
        let mut to = None;
        for row in &rows {
            let lsn = row
                .try_get::<&[u8], _>(0)
                .ok()
                .flatten()
                .and_then(Lsn::from_bytes)
                .ok_or_else(|| {
                    Error::protocol("cdc.lsn_time_mapping.start_lsn", "not a binary(10) LSN")
                })?;
            // tran_end_time is server local time without a zone; it is taken as UTC.
            if let Some(t) = row.try_get::<NaiveDateTime, _>(1).ok().flatten() {
                commit_times.insert(lsn, t.and_utc());
            }
            // A tran_id = 0x00 row is the capture job's progress mark: no change rows, but
            // everything up to it was captured, so the window may end there.
            to = Some(lsn);
        }
        let Some(to) = to else { return Ok(false) };
        // Each table reads its older instance up to the newer one's start LSN, then the newer.
        let mut lanes = Vec::new();
        for instances in &self.catalog.tables {
            for (i, instance) in instances.iter().enumerate() {
                let lower = if i == 0 {
                    from
                } else {
                    from.max(instance.min_lsn)
                };
                let upper = match instances.get(i + 1) {
                    Some(next) => to.min(next.min_lsn.decrement()),
                    None => to,
                };
                if lower > upper {
                    continue;
                }
                lanes.push(Lane {
                    instance: Arc::new(instance.clone()),
                    lower,
                    upper,
                    rows: VecDeque::new(),
                    last_key: None,
                    exhausted: false,
                });
            }
        }
        // From now on the position points at data the reader has seen: retention applies.
        self.resumed = true;
        let n = lanes.len();
        self.window = Some(WindowCursor {
            lanes,
            commit_times,
            end: LsnPosition::end_of(self.database(), to),
            skip: (self.position.commit_lsn, self.position.total_order),
            order: 0,
            serial: (None, 0),
            per_lane: vec![0; n],
            current_tx: None,
            tables: vec![None; n],
        });
        Ok(true)
    }

    /// Fetches the next page of `lane`'s rows; a page is re-read from its keyset after a
    /// reconnect, so a broken connection loses and repeats nothing.
    async fn fetch_page(&mut self, lane: &mut Lane) -> Result<(), Error> {
        let page = self.config.page_size;
        let instance = Arc::clone(&lane.instance);
        let key = lane.last_key;
        let sql = query::changes(&instance.name, &instance.select_list, page, key.is_some());
        let (lo, hi) = (
            lane.lower.to_bytes().to_vec(),
            lane.upper.to_bytes().to_vec(),
        );
        let (rows, bad) = self
            .conn
            .run("change table", |c| {
                let (sql, lo, hi) = (sql.clone(), lo.clone(), hi.clone());
                let instance = Arc::clone(&instance);
                async move {
                    let stream = match key {
                        None => c.query(&sql, &[&lo, &hi]).await?,
                        Some((start, command, seq, op)) => {
                            let (start, seq) = (start.to_bytes().to_vec(), seq.to_bytes().to_vec());
                            let op = i32::from(op);
                            c.query(&sql, &[&lo, &hi, &start, &command, &seq, &op])
                                .await?
                        }
                    };
                    // Rows are converted as they arrive, while the server still sends.
                    // A row that does not convert is reported once the result is read
                    // to its end, so the connection stays usable.
                    let mut rows = stream.into_row_stream();
                    let mut out = Vec::new();
                    let mut bad = None;
                    while let Some(row) = rows.try_next().await? {
                        if bad.is_none() {
                            match change_row(&instance, row) {
                                Ok(row) => out.push(row),
                                Err(e) => bad = Some(e),
                            }
                        }
                    }
                    Ok((out, bad))
                }
                .boxed()
            })
            .await?;
        if let Some(e) = bad {
            return Err(e);
        }
        if rows.len() < page as usize {
            lane.exhausted = true;
        }
        if let Some(r) = rows.last() {
            lane.last_key = Some((r.start_lsn, r.command_id, r.seqval, r.operation));
        }
        lane.rows.extend(rows);
        Ok(())
    }

    /// Merges the lanes' rows into commit order, pairs update images, numbers events inside
    /// their transaction (and counts Debezium's serial per change position), and skips what
    /// the position says was already handed out; stops after `max` events or at the end of
    /// the window.
    async fn next_items(
        &mut self,
        cursor: &mut WindowCursor,
        max: usize,
    ) -> Result<VecDeque<Item>, Error> {
        let mut items = VecDeque::new();
        let mut events = 0usize;
        // Shared by every event of the window: an event allocates none of its strings.
        let database: Arc<str> = self.database().into();
        let connector: Arc<str> = CONNECTOR.into();
        let server: Arc<str> = self.config.topic_prefix().into();
        let (skip_lsn, skip_order) = cursor.skip;
        while events < max {
            // Two rows ahead per lane, so an update-before image finds its after image.
            for lane in &mut cursor.lanes {
                while lane.rows.len() < 2 && !lane.exhausted {
                    self.fetch_page(lane).await?;
                }
            }
            // The next row in (commit LSN, seqval, operation) order; ties keep instance order.
            let next = cursor
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| {
                    lane.rows
                        .front()
                        .map(|r| ((r.start_lsn, r.seqval, r.operation), i))
                })
                .min();
            let Some((_, index)) = next else { break };
            let lane = &mut cursor.lanes[index];
            let Some(row) = lane.rows.pop_front() else {
                break;
            };
            let instance = Arc::clone(&lane.instance);
            let rows_read = if row.operation == 3 { 2 } else { 1 };
            let (op, before, after) = match row.operation {
                1 => (Op::Delete, Some(Row::new(row.values)), None),
                2 => (Op::Create, None, Some(Row::new(row.values))),
                3 => match lane.rows.front() {
                    Some(r)
                        if r.operation == 4
                            && r.start_lsn == row.start_lsn
                            && r.seqval == row.seqval =>
                    {
                        let after = lane.rows.pop_front().map(|r| Row::new(r.values));
                        (Op::Update, Some(Row::new(row.values)), after)
                    }
                    _ => {
                        return Err(Error::protocol(
                            format!("cdc.{}_CT", instance.name),
                            format!(
                                "update-before image at {} has no update-after image",
                                row.seqval
                            ),
                        ));
                    }
                },
                4 => {
                    return Err(Error::protocol(
                        format!("cdc.{}_CT", instance.name),
                        format!(
                            "update-after image at {} without its before image",
                            row.seqval
                        ),
                    ));
                }
                other => {
                    return Err(Error::protocol(
                        format!("cdc.{}_CT", instance.name),
                        format!("unknown __$operation {other}"),
                    ));
                }
            };
            let (tx_id, commit_time) = match &cursor.current_tx {
                Some((lsn, id, time)) if *lsn == row.start_lsn => (id.clone(), *time),
                _ => {
                    let id: Arc<str> = row.start_lsn.text().as_str().into();
                    let time = cursor.commit_times.get(&row.start_lsn).copied();
                    cursor.current_tx = Some((row.start_lsn, id.clone(), time));
                    cursor.order = 0;
                    cursor.per_lane.iter_mut().for_each(|n| *n = 0);
                    (id, time)
                }
            };
            cursor.order += 1;
            cursor.per_lane[index] += 1;
            let order = cursor.order;
            // Debezium's serial: rows so far at this (commit, change) position, restarting
            // whenever the position differs from the last event's.
            let at = Some((row.start_lsn, row.seqval));
            cursor.serial = match cursor.serial {
                (last, n) if last == at => (at, n + rows_read),
                _ => (at, rows_read),
            };
            // Already handed out before the stored position (same database lane).
            if (row.start_lsn, order) <= (skip_lsn, skip_order) {
                continue;
            }
            let position = LsnPosition {
                database: database.clone(),
                commit_lsn: row.start_lsn,
                change_lsn: row.seqval,
                event_serial_no: cursor.serial.1,
                total_order: order,
                snapshot: None,
            };
            let table = match &cursor.tables[index] {
                Some(table) => Arc::clone(table),
                None => {
                    let table = Arc::clone(&instance.table);
                    if let Some(change) = self.schema_change(&table, &position) {
                        items.push_back(Item::SchemaChange(change));
                        cursor.tables.iter_mut().for_each(|t| *t = None);
                    }
                    let table = match self.emitted.get(&table.id) {
                        Some(emitted)
                            if Arc::ptr_eq(emitted, &table) || emitted.same_shape(&table) =>
                        {
                            Arc::clone(emitted)
                        }
                        _ => table,
                    };
                    cursor.tables[index] = Some(Arc::clone(&table));
                    table
                }
            };
            let mut source = SourceInfo::new(
                Arc::clone(&connector),
                Arc::clone(&server),
                Position::SqlServer(position),
            );
            source.commit_time = commit_time;
            source.snapshot = SnapshotMarker::False;
            source.transaction = Some(TransactionInfo {
                id: tx_id,
                total_order: order,
                data_collection_order: cursor.per_lane[index],
            });
            items.push_back(Item::Event(ChangeEvent::new(
                table, op, before, after, source,
            )));
            events += 1;
        }
        Ok(items)
    }

    /// A schema change when an instance with different columns takes over a table; the same
    /// columns under a new instance keep the schema already emitted.
    fn schema_change(
        &mut self,
        table: &Arc<TableSchema>,
        position: &LsnPosition,
    ) -> Option<SchemaChange> {
        match self.emitted.get(&table.id) {
            Some(known) if known.same_shape(table) || known.version >= table.version => None,
            _ => {
                self.emitted.insert(table.id.clone(), Arc::clone(table));
                Some(SchemaChange {
                    table: Arc::clone(table),
                    position: Position::SqlServer(position.clone()),
                })
            }
        }
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

/// Whether `__$update_mask` has the bit of the column at `ordinal` (1-based, as
/// `sys.fn_cdc_is_bit_set`): the mask's last byte holds columns 1-8, lowest bit first.
fn mask_has(mask: &[u8], ordinal: usize) -> bool {
    let Some(bit) = ordinal.checked_sub(1) else {
        return false;
    };
    mask.len()
        .checked_sub(1 + bit / 8)
        .and_then(|i| mask.get(i))
        .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
}

/// Marks the large-object values a change row does not carry as [`Value::Unavailable`]: a
/// NULL the change table holds because it did not capture the value, not because the column
/// is NULL. `text`/`ntext`/`image` in delete (1) and update-before (3) rows; a `(max)`
/// column in an update-before row whose bit in `__$update_mask` is not set (the update did
/// not change it). A changed `(max)` column's NULL is the value it had, and stays NULL.
fn mark_unavailable(instance: &CaptureInstance, operation: i64, mask: &[u8], values: &mut [Value]) {
    if operation != 1 && operation != 3 {
        return;
    }
    for lob in &instance.lobs {
        let not_captured = if lob.legacy {
            true
        } else {
            operation == 3 && !mask_has(mask, lob.ordinal)
        };
        if let Some(v) = values.get_mut(lob.value)
            && not_captured
            && *v == Value::Null
        {
            *v = Value::Unavailable;
        }
    }
}

/// One change-table row: the four CDC columns and `__$update_mask`, then the captured
/// columns' values.
fn change_row(instance: &CaptureInstance, row: tiberius::Row) -> Result<ChangeRow, Error> {
    let what = || format!("cdc.{}_CT", instance.name);
    let lsn_at = |i: usize| {
        row.try_get::<&[u8], _>(i)
            .ok()
            .flatten()
            .and_then(Lsn::from_bytes)
            .ok_or_else(|| Error::protocol(what(), format!("column {i} is not a binary(10) LSN")))
    };
    let int_at = |i: usize| -> Result<i64, Error> {
        match row
            .get_column_data(i)
            .map_err(|e| Error::protocol(what(), e.to_string()))?
        {
            tiberius::ColumnData::I32(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::I16(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::U8(Some(v)) => Ok(i64::from(*v)),
            tiberius::ColumnData::I64(Some(v)) => Ok(*v),
            other => Err(Error::protocol(
                what(),
                format!("column {i}: expected an integer, got {other:?}"),
            )),
        }
    };
    let (start_lsn, seqval) = (lsn_at(0)?, lsn_at(1)?);
    let (operation, command_id) = (int_at(2)?, int_at(3)?);
    let mask = row
        .try_get::<&[u8], _>(4)
        .map_err(|e| Error::protocol(what(), format!("__$update_mask: {e}")))?
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let table = &instance.table;
    let mut values = Vec::with_capacity(table.columns.len());
    let mut cells = row.into_iter().skip(5);
    for column in &table.columns {
        let data = cells.next().ok_or_else(|| {
            Error::protocol(what(), format!("no value for column {}", column.name))
        })?;
        values.push(
            into_value(data, &column.data_type).map_err(|reason| Error::Value {
                table: table.id.to_string(),
                column: column.name.clone(),
                reason,
            })?,
        );
    }
    mark_unavailable(instance, operation, &mask, &mut values);
    Ok(ChangeRow {
        start_lsn,
        seqval,
        operation: u8::try_from(operation)
            .map_err(|_| Error::protocol(what(), "bad __$operation"))?,
        command_id: i32::try_from(command_id)
            .map_err(|_| Error::protocol(what(), "bad __$command_id"))?,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::mask_has;

    #[test]
    fn update_mask_bits_count_from_the_last_byte() {
        // Ten columns: two bytes, columns 9-10 in the first, 1-8 in the last.
        let mask = [0b0000_0010, 0b1000_0001];
        assert!(mask_has(&mask, 1));
        assert!(!mask_has(&mask, 2));
        assert!(mask_has(&mask, 8));
        assert!(!mask_has(&mask, 9));
        assert!(mask_has(&mask, 10));
        assert!(!mask_has(&mask, 11));
        assert!(!mask_has(&mask, 0));
        assert!(!mask_has(&[], 1));
    }
}
