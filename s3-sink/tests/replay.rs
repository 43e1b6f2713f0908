//! A sink dropped mid-file and replayed from the last acknowledged position writes the same
//! objects, byte for byte, as an uninterrupted run, and stores every event once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{BoxError, ChangeEvent, Checkpoint, Sink, Value};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Layout, PartitionContext, Partitioner, Rotation, S3Sink};
use std::collections::HashSet;
use std::sync::Arc;

/// Four uneven partitions, so a source partition has several files open at once and they fill at
/// different rates (the acknowledged position then trails some stored files).
#[derive(Debug)]
struct Buckets;

impl Partitioner for Buckets {
    fn partition(&self, event: &ChangeEvent, _: &PartitionContext<'_>) -> Result<String, BoxError> {
        match event.row().and_then(|r| r.get(0)) {
            Some(Value::I32(id)) => Ok(format!("bucket={}", (id % 7).min(3))),
            other => Err(format!("unexpected id {other:?}").into()),
        }
    }
}

fn sink(store: &Arc<dyn ObjectStore>, format: &Format) -> S3Sink {
    S3Sink::builder()
        .store(Arc::clone(store), "replay")
        .format(format.clone())
        .partitioner(Buckets)
        .rotation(Rotation {
            max_records: Some(23),
            ..Rotation::default()
        })
        .build()
        .unwrap()
}

async fn uninterrupted(events: &[ChangeEvent], format: &Format) -> Arc<dyn ObjectStore> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = sink(&store, format);
    for chunk in events.chunks(37) {
        sink.write(chunk).await.unwrap();
    }
    sink.flush().await.unwrap();
    store
}

async fn crashed_and_replayed(
    events: &[ChangeEvent],
    format: &Format,
    crash_after: usize,
) -> Arc<dyn ObjectStore> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut acked = Checkpoint::default();
    {
        let mut sink = sink(&store, format);
        for chunk in events[..crash_after].chunks(37) {
            for p in sink.write(chunk).await.unwrap() {
                acked.advance(p);
            }
        }
        assert!(
            sink.stats().open_files > 0,
            "the crash must leave files open"
        );
        // Dropped without flush: open files are lost, as in a crash.
    }
    let resume = events
        .iter()
        .take_while(|e| acked.covers(e.position()))
        .count();
    assert!(
        resume > 0 && resume < crash_after,
        "acknowledged {resume} of {crash_after}"
    );
    let mut sink = sink(&store, format);
    for chunk in events[resume..].chunks(41) {
        sink.write(chunk).await.unwrap();
    }
    sink.flush().await.unwrap();
    assert!(
        sink.stats().events_skipped > 0,
        "the replay overlapped stored files"
    );
    store
}

#[tokio::test]
async fn replay_after_a_crash_writes_byte_identical_objects_and_no_duplicates() {
    let events = sample_events("replay", 400);
    // Small batches and row groups too: files of several row groups must also be
    // reproduced byte for byte.
    let small = Format::Parquet(s3_sink::ParquetOptions {
        batch_rows: 3,
        row_group_bytes: 512,
        ..Default::default()
    });
    for format in [
        Format::parquet(),
        small,
        Format::ndjson().with_layout(Layout::Debezium),
    ] {
        let a = uninterrupted(&events, &format).await;
        let b = crashed_and_replayed(&events, &format, 271).await;
        let (a_objects, b_objects) = (
            support::objects(&a, None).await,
            support::objects(&b, None).await,
        );
        assert!(a_objects.len() > 8, "several files per partition");
        let a_keys: Vec<&String> = a_objects.iter().map(|(k, _)| k).collect();
        let b_keys: Vec<&String> = b_objects.iter().map(|(k, _)| k).collect();
        assert_eq!(a_keys, b_keys, "same object names");
        for ((key, x), (_, y)) in a_objects.iter().zip(&b_objects) {
            assert!(x == y, "{key} differs after the replay");
        }
        let positions = support::stored_positions(&b).await;
        let unique: HashSet<String> = positions.iter().map(|p| p.to_string()).collect();
        assert_eq!(positions.len(), events.len(), "no duplicate rows");
        assert_eq!(unique.len(), events.len(), "every event once");
    }
}
