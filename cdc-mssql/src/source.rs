//! The change source: snapshots, then streams, every configured database.

use crate::connection::Connection;
use crate::incremental::{Incremental, SnapshotSignals};
use crate::snapshot::{Snapshot, SnapshotProgress, is_snapshot_position};
use crate::stream::{Item, StreamReader};
use crate::{Error, MssqlConfig, NewTableSnapshot, RetentionPolicy, SnapshotMode, catalog};
use async_trait::async_trait;
use cdc_core::{ChangeSource, Checkpoint, LsnPosition, Position, SourceBatch};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Reads SQL Server change data capture: the [`ChangeSource`] of this crate.
///
/// ```no_run
/// use cdc_core::{FileOffsetStore, Pipeline, PipelineConfig};
/// use cdc_core::testing::MemorySink;
/// use cdc_mssql::{MssqlConfig, MssqlSource};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = MssqlConfig::from_ado_string("Server=tcp:db,1433;Database=shop;User Id=cdc;Password=...")?
///     .topic_prefix("erp")
///     .build()?;
/// let source = MssqlSource::new(config);
/// let pipeline = Pipeline::new(PipelineConfig::new("shop"), source, MemorySink::new(), FileOffsetStore::new("offsets.json"))?;
/// pipeline.run(tokio_util::sync::CancellationToken::new()).await?;
/// # Ok(()) }
/// ```
pub struct MssqlSource {
    config: Arc<MssqlConfig>,
    databases: Vec<Database>,
    next: usize,
    progress: SnapshotProgress,
    last_heartbeat: Instant,
    ended: bool,
    /// Incremental snapshots requested through [`MssqlSource::signals`].
    incremental: Incremental,
}

enum Phase {
    Idle,
    Snapshot(Box<Snapshot>),
    Streaming(Box<StreamReader>),
    /// `initial_only`: the snapshot is done and nothing follows.
    Done,
}

struct Database {
    name: String,
    phase: Phase,
    pending: VecDeque<Item>,
    /// Set when `pending` holds a whole window: the position after it.
    window_end: Option<LsnPosition>,
}

impl std::fmt::Debug for MssqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MssqlSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MssqlSource {
    /// A source for `config`; nothing connects until [`start`](ChangeSource::start).
    pub fn new(config: MssqlConfig) -> Self {
        let databases = config
            .databases
            .iter()
            .map(|name| Database {
                name: name.clone(),
                phase: Phase::Idle,
                pending: VecDeque::new(),
                window_end: None,
            })
            .collect();
        let progress = SnapshotProgress::default();
        let mut incremental = Incremental::new(&config.databases, config.topic_prefix());
        incremental.share_progress(progress.clone());
        Self {
            incremental,
            config: Arc::new(config),
            databases,
            next: 0,
            progress,
            last_heartbeat: Instant::now(),
            ended: false,
        }
    }

    /// The handle that sends Debezium's snapshot signals (`execute-snapshot`,
    /// `stop-snapshot`, `pause-snapshot`, `resume-snapshot`) to this source while it runs:
    /// an incremental snapshot reads the tables in primary-key chunks while streaming goes
    /// on, without writing to the database (see [`SnapshotSignals`]).
    pub fn signals(&self) -> SnapshotSignals {
        self.incremental.signals()
    }

    /// Rows per incremental snapshot chunk (Debezium's `incremental.snapshot.chunk.size`;
    /// default 1024). A source holds at most one chunk per database.
    pub fn incremental_chunk_size(mut self, rows: u32) -> Self {
        self.incremental.set_chunk_size(rows);
        self
    }

    /// Reads Debezium signals from a signal table as its inserts stream by (Debezium's
    /// `signal.data.collection`, `schema.table` or `database.schema.table`; columns `id`,
    /// `type`, `data`). The table must be captured (CDC-enabled and included); the reader
    /// only reads it — it never writes watermarks into it, as Debezium does. A bad name fails
    /// here with [`Error::Config`] naming `signal_data_collection`.
    pub fn signal_data_collection(mut self, collection: &str) -> Result<Self, Error> {
        self.incremental
            .set_signal_table(collection)
            .map_err(|e| Error::config("signal_data_collection", e.to_string()))?;
        Ok(self)
    }

    /// The tables (`database.schema.table`) an incremental snapshot still has to read, the one
    /// being read first, each with whether its snapshot is paused; empty when none runs.
    /// Signals sent but not yet applied (they are at the next step) are not counted.
    pub fn incremental_snapshot_pending(&self) -> Vec<(String, bool)> {
        self.incremental.pending()
    }

    /// Progress of the snapshot (rows done and estimated per table), readable while it runs.
    pub fn snapshot_progress(&self) -> SnapshotProgress {
        self.progress.clone()
    }

    fn connection(&self, database: &str) -> Connection {
        Connection::new(Arc::clone(&self.config), database.to_string())
    }

    async fn start_database(
        &mut self,
        index: usize,
        stored: Option<LsnPosition>,
    ) -> Result<(), Error> {
        let name = self.databases[index].name.clone();
        let mut conn = self.connection(&name);
        if !catalog::cdc_enabled(&mut conn).await? {
            return Err(Error::CdcNotEnabled { database: name });
        }
        let catalog = catalog::load(&mut conn, &self.config).await?;
        if catalog.tables.is_empty() {
            return Err(Error::NoTables {
                database: name,
                hint: Some("enable a table with: EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'<table>', @role_name = NULL;".into()),
            });
        }
        // An interrupted snapshot continues from its cursor, whatever the mode.
        if let Some(interrupted) = stored.as_ref().filter(|p| is_snapshot_position(p)) {
            let progress = self.progress.clone();
            let snapshot =
                Snapshot::begin(&self.config, conn, &catalog, progress, Some(interrupted)).await?;
            self.databases[index].phase = Phase::Snapshot(Box::new(snapshot));
            return Ok(());
        }
        let snapshot = match self.config.snapshot_mode {
            SnapshotMode::Always => true,
            SnapshotMode::Initial | SnapshotMode::InitialOnly | SnapshotMode::WhenNeeded => {
                stored.is_none()
            }
            SnapshotMode::NoData => false,
        };
        let phase = if snapshot {
            Phase::Snapshot(Box::new(
                Snapshot::begin(&self.config, conn, &catalog, self.progress.clone(), None).await?,
            ))
        } else {
            let (position, resumed) = match stored {
                Some(p) => (p, true),
                None => {
                    let mut reader = StreamReader::open(
                        Arc::clone(&self.config),
                        conn,
                        LsnPosition::end_of(name.as_str(), cdc_core::Lsn::ZERO),
                        false,
                        Some(catalog),
                    )
                    .await?;
                    let max = if self.config.stream_from_earliest {
                        None
                    } else {
                        reader.max_lsn().await?
                    };
                    if max.is_none() && !self.config.stream_from_earliest {
                        tracing::warn!(database = %name, "the capture job has not processed anything yet (is SQL Server Agent running?); streaming from the beginning of the change tables");
                    }
                    reader.advance(LsnPosition::end_of(
                        name.as_str(),
                        max.unwrap_or(cdc_core::Lsn::ZERO),
                    ));
                    self.databases[index].phase = Phase::Streaming(Box::new(reader));
                    return Ok(());
                }
            };
            Phase::Streaming(Box::new(
                StreamReader::open(
                    Arc::clone(&self.config),
                    conn,
                    position,
                    resumed,
                    Some(catalog),
                )
                .await?,
            ))
        };
        self.databases[index].phase = phase;
        Ok(())
    }

    /// One step for one database: a batch if it has something to say.
    async fn step(&mut self, index: usize) -> Result<Option<SourceBatch>, Error> {
        let max_events = self.config.max_batch_events;
        let db = &mut self.databases[index];
        if !db.pending.is_empty() || db.window_end.is_some() {
            return Ok(Some(drain(db, max_events)));
        }
        match &mut db.phase {
            Phase::Idle | Phase::Done => Ok(None),
            Phase::Snapshot(snapshot) => match snapshot.next_chunk().await? {
                Some(events) => Ok(Some(SourceBatch::of(events))),
                None => {
                    let handoff = snapshot.handoff;
                    let Phase::Snapshot(snapshot) = std::mem::replace(&mut db.phase, Phase::Idle)
                    else {
                        return Ok(None);
                    };
                    let end = LsnPosition::end_of(db.name.as_str(), handoff);
                    if self.config.snapshot_mode == SnapshotMode::InitialOnly {
                        db.phase = Phase::Done;
                    } else {
                        // The hand-off is a real position: retention is checked for it from
                        // the first poll on, and change rows at or before it are skipped.
                        let mut reader = StreamReader::open(
                            Arc::clone(&self.config),
                            snapshot.into_connection(),
                            end.clone(),
                            true,
                            None,
                        )
                        .await?;
                        reader.await_capture_past(handoff);
                        db.phase = Phase::Streaming(Box::new(reader));
                    }
                    Ok(Some(SourceBatch {
                        heartbeat: Some(Position::SqlServer(end)),
                        ..SourceBatch::default()
                    }))
                }
            },
            Phase::Streaming(reader) => {
                let added = reader.take_new_tables();
                if !added.is_empty() {
                    match self.config.new_table_snapshot {
                        NewTableSnapshot::Incremental => {
                            self.incremental.snapshot_new_tables(index, added, false)
                        }
                        NewTableSnapshot::Blocking => {
                            self.incremental.snapshot_new_tables(index, added, true)
                        }
                        NewTableSnapshot::None => {}
                    }
                }
                // An incremental snapshot's next chunk is read between polls.
                self.incremental.prepare(index, &self.config).await?;
                // A blocking snapshot reads instead of polling, once the streamed transactions
                // are complete (its rows go after the last one).
                if reader.position.is_end_of_transaction()
                    && let Some(items) = self
                        .incremental
                        .blocking_step(index, &reader.position, &self.config)
                        .await?
                {
                    if items.is_empty() {
                        return Ok(None);
                    }
                    db.pending = items;
                    return Ok(Some(drain(db, max_events)));
                }
                match reader.poll(max_events).await {
                    Ok(Some(mut window)) => {
                        self.incremental
                            .on_window(index, &mut window.items, &mut window.end);
                        db.pending = window.items;
                        db.window_end = window.end;
                        Ok(Some(drain(db, max_events)))
                    }
                    Ok(None) => Ok(None),
                    Err(Error::LsnNotAvailable { .. })
                        if reader.retention_policy() == RetentionPolicy::Resnapshot =>
                    {
                        tracing::warn!(database = %db.name, "position fell out of retention; taking a new snapshot");
                        let name = db.name.clone();
                        db.phase = Phase::Idle;
                        self.start_database_fresh(index, &name).await?;
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn start_database_fresh(&mut self, index: usize, name: &str) -> Result<(), Error> {
        let mut conn = self.connection(name);
        let catalog = catalog::load(&mut conn, &self.config).await?;
        let snapshot =
            Snapshot::begin(&self.config, conn, &catalog, self.progress.clone(), None).await?;
        self.databases[index].phase = Phase::Snapshot(Box::new(snapshot));
        Ok(())
    }

    /// On a quiet log, reports the position every `heartbeat_interval`, so checkpoints keep
    /// their time current. It never moves the position: only a window actually read moves
    /// it (its end may be a `tran_id = 0x00` progress mark of the capture job), because
    /// `sys.fn_cdc_get_max_lsn()` read after a poll can lie past a transaction that poll did
    /// not see.
    async fn heartbeat(&mut self) -> Result<Option<SourceBatch>, Error> {
        let Some(interval) = self.config.heartbeat_interval else {
            return Ok(None);
        };
        if self.last_heartbeat.elapsed() < interval {
            return Ok(None);
        }
        self.last_heartbeat = Instant::now();
        for (index, db) in self.databases.iter().enumerate() {
            // While a blocking snapshot runs, its rows are past the reader's position.
            if let Phase::Streaming(reader) = &db.phase
                && !self.incremental.blocking(index)
                && reader.position.is_end_of_transaction()
                && reader.position.commit_lsn != cdc_core::Lsn::ZERO
            {
                return Ok(Some(SourceBatch {
                    heartbeat: Some(Position::SqlServer(reader.position.clone())),
                    ..SourceBatch::default()
                }));
            }
        }
        Ok(None)
    }
}

/// Hands out up to `max_events` pending items; a schema change starts a batch of its own.
fn drain(db: &mut Database, max_events: usize) -> SourceBatch {
    let mut batch = SourceBatch::default();
    while let Some(item) = db.pending.front() {
        match item {
            Item::SchemaChange(_) if !batch.events.is_empty() => break,
            _ if batch.events.len() >= max_events => break,
            _ => {}
        }
        match db.pending.pop_front() {
            Some(Item::SchemaChange(change)) => batch.schema_changes.push(change),
            Some(Item::Event(event)) => batch.events.push(event),
            None => break,
        }
    }
    let last = batch.events.last().map(|e| e.position().clone());
    let reader = match &mut db.phase {
        Phase::Streaming(reader) => Some(reader),
        _ => None,
    };
    match db.window_end.take() {
        Some(end) if db.pending.is_empty() => {
            if let Some(reader) = reader {
                reader.advance(end.clone());
            }
            batch.heartbeat = Some(Position::SqlServer(end));
        }
        end => {
            db.window_end = end;
            if let (Some(Position::SqlServer(p)), Some(reader)) = (last, reader) {
                reader.advance(p);
            }
        }
    }
    batch
}

impl MssqlSource {
    /// Starts every database from its lane of `checkpoint`.
    async fn start_all(&mut self, checkpoint: Option<&Checkpoint>) -> Result<(), Error> {
        for index in 0..self.databases.len() {
            let partition =
                cdc_core::SourcePartition::sql_server(self.databases[index].name.as_str());
            let stored = match checkpoint.and_then(|c| c.get(&partition)) {
                Some(Position::SqlServer(p)) => Some(p.clone()),
                Some(other) => {
                    return Err(Error::config(
                        "checkpoint",
                        format!(
                            "source partition {partition} holds a non-SQL Server position {other}"
                        ),
                    ));
                }
                None => None,
            };
            let stored = self.incremental.restore(index, stored)?;
            self.start_database(index, stored).await?;
        }
        Ok(())
    }

    /// The next batch of the databases in turn, a heartbeat, or an empty batch after the poll
    /// interval; `None` once every database is done (initial-only snapshots).
    async fn next_batch_of_any_database(&mut self) -> Result<Option<SourceBatch>, Error> {
        if self.ended {
            return Ok(None);
        }
        for _ in 0..self.databases.len() {
            let index = self.next;
            self.next = (self.next + 1) % self.databases.len().max(1);
            if let Some(batch) = self.step(index).await? {
                return Ok(Some(batch));
            }
        }
        if self
            .databases
            .iter()
            .all(|d| matches!(d.phase, Phase::Done))
        {
            self.ended = true;
            return Ok(None);
        }
        if let Some(batch) = self.heartbeat().await? {
            return Ok(Some(batch));
        }
        tokio::time::sleep(self.config.poll_interval).await;
        Ok(Some(SourceBatch::default()))
    }
}

#[async_trait]
impl ChangeSource for MssqlSource {
    fn name(&self) -> &str {
        self.config.topic_prefix()
    }

    async fn start(&mut self, checkpoint: Option<&Checkpoint>) -> cdc_core::Result<()> {
        let started = self.start_all(checkpoint).await;
        started.map_err(|e| e.into_source_error(self.config.topic_prefix()))
    }

    async fn next_batch(&mut self) -> cdc_core::Result<Option<SourceBatch>> {
        let batch = self.next_batch_of_any_database().await;
        batch.map_err(|e| e.into_source_error(self.config.topic_prefix()))
    }

    async fn ack(&mut self, _position: &Position) -> cdc_core::Result<()> {
        // Change tables keep their rows until the cleanup job's retention passes, whatever the
        // reader acknowledges; the checkpoint in the offset store is what resumes.
        Ok(())
    }

    async fn close(&mut self) -> cdc_core::Result<()> {
        for db in &mut self.databases {
            match std::mem::replace(&mut db.phase, Phase::Idle) {
                Phase::Streaming(mut reader) => reader.conn.close().await,
                Phase::Snapshot(snapshot) => snapshot.into_connection().close().await,
                Phase::Idle | Phase::Done => {}
            }
        }
        self.incremental.close().await;
        Ok(())
    }
}
