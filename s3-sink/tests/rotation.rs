//! Rotation: the wall-clock schedule flushes idle partitions, schema changes start new files,
//! record counts and record time close files deterministically.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, Column, DataType, SchemaChange, Sink, TableSchema, Value};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Rotation, S3Sink};
use std::sync::Arc;
use std::time::Duration;

fn new_sink(store: &Arc<dyn ObjectStore>, rotation: Rotation) -> S3Sink {
    S3Sink::builder()
        .store(Arc::clone(store), "rot")
        .rotation(rotation)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_schedule_flushes_an_idle_partition_on_tick() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let rotation = Rotation {
        schedule_interval: Some(Duration::from_secs(60)),
        ..Rotation::default()
    };
    let mut sink = new_sink(&store, rotation);
    let events = sample_events("idle", 3);
    assert!(sink.write(&events).await.unwrap().is_empty());
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(sink.tick().await.unwrap().is_empty(), "not due yet");
    assert!(support::objects(&store, None).await.is_empty());
    tokio::time::advance(Duration::from_secs(31)).await;
    let durable = sink.tick().await.unwrap();
    assert_eq!(
        durable,
        vec![events[2].position().clone()],
        "the idle file was closed by the schedule"
    );
    assert_eq!(sink.stats().closed_by_schedule, 1);
    assert_eq!(support::objects(&store, None).await.len(), 1);
    assert!(
        sink.tick().await.unwrap().is_empty(),
        "nothing new to report"
    );
}

/// The sample table with one more column, at version 2.
fn evolved(events: &[ChangeEvent]) -> Vec<ChangeEvent> {
    let old = &events[0].table;
    let mut columns = old.columns.clone();
    columns.push(Column::new(
        "note",
        DataType::NVarChar { length: None },
        true,
    ));
    let new = Arc::new(
        TableSchema::with_version(old.id.clone(), columns, old.primary_key.clone(), 2).unwrap(),
    );
    events
        .iter()
        .cloned()
        .map(|mut e| {
            e.table = Arc::clone(&new);
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                row.0.push(Value::String("added".into()));
            }
            e
        })
        .collect()
}

#[tokio::test]
async fn a_schema_change_starts_a_new_file() {
    for announce in [true, false] {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut sink = new_sink(&store, Rotation::default());
        let events = sample_events("schema", 10);
        sink.write(&events[..5]).await.unwrap();
        let later = evolved(&events[5..]);
        if announce {
            sink.schema_changed(&SchemaChange {
                table: Arc::clone(&later[0].table),
                position: later[0].position().clone(),
            })
            .await
            .unwrap();
        }
        sink.write(&later).await.unwrap();
        sink.flush().await.unwrap();
        assert_eq!(sink.stats().closed_by_schema, 1, "announced: {announce}");
        let objects = support::objects(&store, None).await;
        assert_eq!(objects.len(), 2, "one file per schema version");
        assert!(
            objects[0].0.ends_with("+00000000000000000001.parquet"),
            "{}",
            objects[0].0
        );
        assert!(
            objects[1].0.ends_with("+00000000000000000006.parquet"),
            "{}",
            objects[1].0
        );
        let reader =
            parquet::file::reader::SerializedFileReader::new(objects[1].1.clone()).unwrap();
        let schema = parquet::file::reader::FileReader::metadata(&reader)
            .file_metadata()
            .schema_descr_ptr();
        assert!(
            schema.columns().iter().any(|c| c.name() == "note"),
            "the new file has the new column"
        );
    }
}

#[tokio::test]
async fn record_count_and_record_time_rotate_deterministically() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = new_sink(
        &store,
        Rotation {
            max_records: Some(4),
            ..Rotation::default()
        },
    );
    let events = sample_events("count", 10);
    let durable = sink.write(&events).await.unwrap();
    assert_eq!(
        durable,
        vec![events[7].position().clone()],
        "two full files are durable"
    );
    sink.flush().await.unwrap();
    assert_eq!(sink.stats().closed_by_records, 2);
    assert_eq!(support::objects(&store, None).await.len(), 3);

    // Sample events are committed 10 ms apart: a 45 ms interval makes files of 5 events.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let rotation = Rotation {
        max_record_interval: Some(Duration::from_millis(45)),
        ..Rotation::default()
    };
    let mut sink = new_sink(&store, rotation);
    sink.write(&sample_events("time", 12)).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(sink.stats().closed_by_record_time, 2);
    let keys: Vec<String> = support::objects(&store, None)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        keys[1].ends_with("+00000000000000000006.parquet"),
        "{keys:?}"
    );
    assert!(
        keys[2].ends_with("+00000000000000000011.parquet"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn positions_wait_for_the_oldest_open_file_of_the_source_partition() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .partitioner(s3_sink::FieldPartitioner::new(["id"]))
        .rotation(Rotation {
            max_records: Some(1),
            ..Rotation::default()
        })
        .build()
        .unwrap();
    // Every event is its own partition and file: each closes at once, so each is durable.
    let events = sample_events("s", 3);
    assert_eq!(
        sink.write(&events).await.unwrap(),
        vec![events[2].position().clone()]
    );

    let mut sink = S3Sink::builder()
        .store(Arc::new(InMemory::new()), "lake")
        .partitioner(s3_sink::FieldPartitioner::new(["id"]))
        .rotation(Rotation {
            max_records: Some(2),
            ..Rotation::default()
        })
        .build()
        .unwrap();
    // ids 1 and 2 open two files; nothing is durable until the oldest closes.
    assert!(sink.write(&events[..2]).await.unwrap().is_empty());
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[1].position().clone()]
    );
}
