//! The sink passes cdc-core's sink conformance suite as an exactly-once sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_trait::async_trait;
use cdc_core::testing::{SinkHarness, sink_conformance};
use cdc_core::{Position, Result};
use object_store::ObjectStore;
use s3_sink::{Format, Layout, NdjsonCompression, S3Sink};
use std::sync::Arc;

struct Harness {
    store: Arc<dyn ObjectStore>,
    format: Format,
}

#[async_trait]
impl SinkHarness for Harness {
    type Sink = S3Sink;

    async fn new_sink(&mut self) -> Result<S3Sink> {
        S3Sink::builder()
            .store(Arc::clone(&self.store), "conformance")
            .format(self.format.clone())
            .build()
            .map_err(|e| cdc_core::Error::config("sink", e.to_string()))
    }

    async fn stored_positions(&mut self) -> Result<Vec<Position>> {
        Ok(support::stored_positions(&self.store).await)
    }

    async fn stored_values(&mut self, column: &str) -> Result<Vec<(Position, String)>> {
        Ok(support::stored_values(&self.store, column).await)
    }

    fn exactly_once(&self) -> bool {
        true
    }

    fn drops_revoked_work(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn conforms_exactly_once_with_parquet_in_memory() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    sink_conformance(&mut Harness {
        store,
        format: Format::parquet(),
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn conforms_exactly_once_with_parquet_envelope_on_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let format = Format::parquet().with_layout(Layout::Debezium);
    sink_conformance(&mut Harness { store, format })
        .await
        .unwrap();
}

#[tokio::test]
async fn conforms_exactly_once_with_ndjson_layouts() {
    let with_schema = Format::Ndjson(s3_sink::NdjsonOptions {
        layout: Layout::Debezium,
        debezium_schemas: true,
        ..Default::default()
    });
    for format in [
        Format::ndjson(),
        Format::ndjson().with_layout(Layout::Debezium),
        with_schema,
    ] {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        sink_conformance(&mut Harness { store, format })
            .await
            .unwrap();
    }
    // Compressed files are recovered too (positions read after decompression).
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let mut harness = Harness {
        store,
        format: Format::ndjson_compressed(NdjsonCompression::Zstd),
    };
    let mut sink = harness.new_sink().await.unwrap();
    let events = cdc_core::testing::sample_events("z", 20);
    cdc_core::Sink::write(&mut sink, &events).await.unwrap();
    cdc_core::Sink::flush(&mut sink).await.unwrap();
    let mut again = harness.new_sink().await.unwrap();
    let mut reported = cdc_core::Sink::write(&mut again, &events[5..])
        .await
        .unwrap();
    reported.extend(cdc_core::Sink::flush(&mut again).await.unwrap());
    assert_eq!(reported, vec![events[19].position().clone()]);
    assert_eq!(again.stats().events_skipped, 15);
    assert_eq!(again.stats().files_written, 0);
}

#[tokio::test]
async fn recovers_from_parquet_footers_larger_than_the_tail_read() {
    // One row group per event makes a footer far larger than the 64 KiB tail the sink reads
    // first, so recovery takes the second, exact ranged read.
    let options = s3_sink::ParquetOptions {
        row_group_bytes: 1,
        batch_rows: 1,
        ..Default::default()
    };
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let mut harness = Harness {
        store: Arc::clone(&store),
        format: Format::Parquet(options),
    };
    let events = cdc_core::testing::sample_events("footer", 400);
    let mut sink = harness.new_sink().await.unwrap();
    cdc_core::Sink::write(&mut sink, &events).await.unwrap();
    cdc_core::Sink::flush(&mut sink).await.unwrap();
    let (_, bytes) = support::objects(&store, None).await.remove(0);
    let footer = u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap());
    assert!(footer > 64 * 1024, "footer of {footer} bytes");
    let mut again = harness.new_sink().await.unwrap();
    cdc_core::Sink::write(&mut again, &events[100..])
        .await
        .unwrap();
    cdc_core::Sink::flush(&mut again).await.unwrap();
    assert_eq!(again.stats().events_skipped, 300);
    assert_eq!(harness.stored_positions().await.unwrap().len(), 400);
}

/// The S3 harness reads an added column back from every format the sink writes (Parquet
/// flattened and Debezium envelope, NDJSON flat, envelope and with-schema, gzip and zstd):
/// once for each event written with the column, and nothing from the files written before
/// it existed. So the suite's schema-change check sees what a sink stored, and fails a sink
/// that keeps writing the old schema.
#[tokio::test]
async fn stored_values_reads_an_added_column_in_every_format_and_none_from_older_files() {
    let with_schema = Format::Ndjson(s3_sink::NdjsonOptions {
        layout: Layout::Debezium,
        debezium_schemas: true,
        ..Default::default()
    });
    let formats = [
        Format::parquet(),
        Format::parquet().with_layout(Layout::Debezium),
        Format::ndjson(),
        Format::ndjson().with_layout(Layout::Debezium),
        with_schema,
        Format::ndjson_compressed(NdjsonCompression::Gzip),
        Format::ndjson_compressed(NdjsonCompression::Zstd).with_layout(Layout::Debezium),
    ];
    let events = cdc_core::testing::sample_events("evolve", 14);
    let old = Arc::clone(&events[0].table);
    let mut columns = old.columns.clone();
    columns.push(cdc_core::Column::new(
        "note",
        cdc_core::DataType::NVarChar { length: None },
        true,
    ));
    let new = Arc::new(
        cdc_core::TableSchema::with_version(
            old.id.clone(),
            columns,
            old.primary_key.clone(),
            old.version + 1,
        )
        .unwrap(),
    );
    // Events 8..=14 hold a create, updates and deletes (7 and 14), so both images are read.
    let evolved: Vec<cdc_core::ChangeEvent> = events[7..]
        .iter()
        .cloned()
        .map(|mut e| {
            e.table = Arc::clone(&new);
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                row.0.push(cdc_core::Value::String("added".into()));
            }
            e
        })
        .collect();
    for format in formats {
        let name = format!("{format:?}");
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let mut harness = Harness { store, format };
        let mut sink = harness.new_sink().await.unwrap();
        cdc_core::Sink::write(&mut sink, &events[..7])
            .await
            .unwrap();
        cdc_core::Sink::flush(&mut sink).await.unwrap();
        assert_eq!(
            harness.stored_values("note").await.unwrap(),
            vec![],
            "{name}: files written before the column existed"
        );
        let change = cdc_core::SchemaChange {
            table: Arc::clone(&new),
            position: evolved[0].position().clone(),
        };
        cdc_core::Sink::schema_changed(&mut sink, &change)
            .await
            .unwrap();
        cdc_core::Sink::write(&mut sink, &evolved).await.unwrap();
        cdc_core::Sink::flush(&mut sink).await.unwrap();
        let mut values = harness.stored_values("note").await.unwrap();
        values.sort_by_key(|(p, _)| format!("{p}"));
        let mut expected: Vec<(Position, String)> = evolved
            .iter()
            .map(|e| (e.position().clone(), "added".to_string()))
            .collect();
        expected.sort_by_key(|(p, _)| format!("{p}"));
        assert_eq!(values, expected, "{name}");
    }
}
