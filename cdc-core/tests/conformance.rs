//! Every in-crate implementation runs the conformance suite of its role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use cdc_core::testing::{
    MemoryLog, MemorySink, MemorySource, SinkHarness, SourceHarness, codec_conformance,
    every_type_events, offset_store_conformance, sample_events, sink_conformance,
    source_conformance,
};
use cdc_core::{
    ChangeEvent, DebeziumJson, FileOffsetStore, MemoryOffsetStore, ObjectOffsetStore, Position,
    Result, Sink, TableSchema, Value,
};
use std::sync::Arc;

#[tokio::test]
async fn memory_offset_store_conforms() {
    offset_store_conformance(&MemoryOffsetStore::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn file_offset_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    offset_store_conformance(&FileOffsetStore::new(dir.path().join("offsets.json")))
        .await
        .unwrap();
}

#[tokio::test]
async fn object_offset_store_conforms_on_memory_and_local_stores() {
    let memory = Arc::new(object_store::memory::InMemory::new());
    offset_store_conformance(&ObjectOffsetStore::new(memory, "pipelines/a/offsets"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    offset_store_conformance(&ObjectOffsetStore::new(local, "offsets"))
        .await
        .unwrap();
}

#[test]
fn debezium_json_with_schema_conforms_losslessly() {
    codec_conformance(&DebeziumJson::with_schema(), true).unwrap();
}

#[test]
fn debezium_json_schemaless_conforms_losslessly_with_registered_tables() {
    let codec = DebeziumJson::builder()
        .lossless(true)
        .table(every_type_events()[0].table.clone())
        .table(sample_events("x", 1)[0].table.clone())
        .build();
    codec_conformance(&codec, true).unwrap();
}

struct MemorySinkHarness {
    sink: MemorySink,
}

#[async_trait]
impl SinkHarness for MemorySinkHarness {
    type Sink = MemorySink;

    async fn new_sink(&mut self) -> Result<MemorySink> {
        Ok(self.sink.handle())
    }

    async fn stored_positions(&mut self) -> Result<Vec<Position>> {
        Ok(self
            .sink
            .durable_events()
            .iter()
            .map(|e| e.position().clone())
            .collect())
    }

    /// The durable events' values by the column's index in each event's own table schema
    /// (events of an older schema have no such column).
    async fn stored_values(&mut self, column: &str) -> Result<Vec<(Position, String)>> {
        Ok(self
            .sink
            .durable_events()
            .iter()
            .filter_map(|e| {
                let index = e.table.column_index(column)?;
                let row = e.after.as_ref().or(e.before.as_ref())?;
                let text = match row.get(index)? {
                    Value::Null => return None,
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                Some((e.position().clone(), text))
            })
            .collect())
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn memory_sink_conforms() {
    sink_conformance(&mut MemorySinkHarness {
        sink: MemorySink::new(),
    })
    .await
    .unwrap();
}

/// A faulty sink for the suite's own check: it keeps writing every table with the first
/// schema it saw (extra values cut off, the schema change ignored), as a sink that never
/// rebuilds its writers would.
struct DropsNewColumns {
    inner: MemorySink,
    first: Vec<Arc<TableSchema>>,
}

#[async_trait]
impl Sink for DropsNewColumns {
    fn name(&self) -> &str {
        "drops-new-columns"
    }

    async fn write(&mut self, events: &[ChangeEvent]) -> Result<Vec<Position>> {
        let mut old = Vec::with_capacity(events.len());
        for event in events {
            let mut event = event.clone();
            let first = match self.first.iter().find(|t| t.id == event.table.id) {
                Some(first) => Arc::clone(first),
                None => {
                    self.first.push(Arc::clone(&event.table));
                    Arc::clone(&event.table)
                }
            };
            for row in [&mut event.before, &mut event.after].into_iter().flatten() {
                row.0.truncate(first.columns.len());
            }
            event.table = first;
            old.push(event);
        }
        self.inner.write(&old).await
    }

    async fn flush(&mut self) -> Result<Vec<Position>> {
        self.inner.flush().await
    }
}

struct DropsNewColumnsHarness(MemorySinkHarness);

#[async_trait]
impl SinkHarness for DropsNewColumnsHarness {
    type Sink = DropsNewColumns;

    async fn new_sink(&mut self) -> Result<DropsNewColumns> {
        Ok(DropsNewColumns {
            inner: self.0.new_sink().await?,
            first: Vec::new(),
        })
    }

    async fn stored_positions(&mut self) -> Result<Vec<Position>> {
        self.0.stored_positions().await
    }

    async fn stored_values(&mut self, column: &str) -> Result<Vec<(Position, String)>> {
        self.0.stored_values(column).await
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

/// The suite's schema-change check is not vacuous: a sink that stores the events after a
/// schema change without the added column (but flushes and reports them) fails it.
#[tokio::test]
#[should_panic(expected = "is stored without its new column note")]
async fn sink_conformance_fails_a_sink_that_drops_a_schema_changes_new_column() {
    let _ = sink_conformance(&mut DropsNewColumnsHarness(MemorySinkHarness {
        sink: MemorySink::new(),
    }))
    .await;
}

struct MemorySourceHarness {
    log: MemoryLog,
    produced: usize,
}

#[async_trait]
impl SourceHarness for MemorySourceHarness {
    type Source = MemorySource;

    async fn produce(&mut self, n: usize) -> Result<()> {
        let all = sample_events("conformance", self.produced + n);
        self.log.append(all[self.produced..].to_vec());
        self.produced += n;
        Ok(())
    }

    async fn new_source(&mut self) -> Result<MemorySource> {
        Ok(MemorySource::over("memory", self.log.clone()).batch_size(4))
    }
}

#[tokio::test]
async fn memory_source_conforms() {
    source_conformance(&mut MemorySourceHarness {
        log: MemoryLog::new(),
        produced: 0,
    })
    .await
    .unwrap();
}
