//! One window of committed transactions: its bounds read from `cdc.lsn_time_mapping`, a
//! page of each capture instance's change rows at a time, merged across capture instances
//! into commit order as events, transaction markers and schema changes.

use super::row::change_row;
use super::{CONNECTOR, Item, Lane, StreamReader, WindowCursor};
use crate::{Error, query};
use cdc_core::{
    ChangeEvent, Lsn, LsnPosition, Op, Position, Row, SchemaChange, SnapshotMarker, SourceInfo,
    TableSchema, TransactionInfo,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::{FutureExt, TryStreamExt};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

impl StreamReader {
    /// Reads the next window's bounds from `cdc.lsn_time_mapping`; `false` when there is none.
    pub(super) async fn open_window(&mut self) -> Result<bool, Error> {
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
        let Some(to) = to else {
            self.capture_health.idle(&mut self.conn).await;
            return Ok(false);
        };
        self.capture_health.moved();
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
    pub(super) async fn fetch_page(&mut self, lane: &mut Lane) -> Result<(), Error> {
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
    pub(super) async fn next_items(
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
    pub(super) fn schema_change(
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
}
