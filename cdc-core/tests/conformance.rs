//! Every in-crate implementation runs the conformance suite of its role.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use cdc_core::testing::{
    MemoryLog, MemorySink, MemorySource, SinkHarness, SourceHarness, codec_conformance,
    every_type_events, offset_store_conformance, sample_events, sink_conformance,
    source_conformance,
};
use cdc_core::{
    DebeziumJson, FileOffsetStore, MemoryOffsetStore, ObjectOffsetStore, Position, Result,
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
