//! Hand-offs and file boundaries (issue 11, faults 5 and 6): the pipeline's commit schedule
//! does not close files, positions become durable as files close by rotation, a revoked
//! source partition's open files are dropped, and a re-read never appends an event twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::{MemorySource, sample_events};
use cdc_core::{MemoryOffsetStore, Pipeline, PipelineConfig, Position, Sink};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Rotation, S3Sink};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn ndjson_sink(store: &Arc<dyn ObjectStore>, records: u64) -> S3Sink {
    S3Sink::builder()
        .store(Arc::clone(store), "lake")
        .format(Format::ndjson())
        .rotation(Rotation {
            max_records: Some(records),
            ..Rotation::default()
        })
        .build()
        .unwrap()
}

/// Lines per stored object, in key order.
async fn lines_per_file(store: &Arc<dyn ObjectStore>) -> Vec<usize> {
    support::objects(store, None)
        .await
        .iter()
        .map(|(_, bytes)| {
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .collect()
}

/// Each position's number of copies in the store, for `expected`.
async fn copies(store: &Arc<dyn ObjectStore>, expected: &[Position]) -> Vec<usize> {
    let stored = support::stored_positions(store).await;
    expected
        .iter()
        .map(|p| stored.iter().filter(|s| *s == p).count())
        .collect()
}

/// A pipeline committing every 10 events into a sink rotating every 100 records: the files
/// hold 100, 100 and (closed at shutdown) 50 records, as the rotation rule says; before,
/// every commit closed all open files, so there were 25 files of 10.
#[tokio::test]
async fn file_boundaries_follow_the_rotation_rule_not_the_commit_schedule() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let events = sample_events("rule", 250);
    let source = MemorySource::new("m", events.clone())
        .batch_size(7)
        .ending_when_drained();
    let config = PipelineConfig::new("rule").flush_max_events(10);
    let offsets = MemoryOffsetStore::new();
    let report = Pipeline::new(config, source, ndjson_sink(&store, 100), offsets)
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(lines_per_file(&store).await, vec![100, 100, 50]);
    assert_eq!(
        report.checkpoint.get_for(events[0].position()),
        Some(events[249].position())
    );
}

/// `pre_commit` reports what closed files hold and closes nothing: after 150 events with
/// rotation at 100, event 100 is durable (its file was uploaded) and event 150 is not.
#[tokio::test]
async fn positions_become_durable_when_their_files_close() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = ndjson_sink(&store, 100);
    let events = sample_events("close", 150);
    let mut reported = sink.write(&events).await.unwrap();
    reported.extend(sink.pre_commit().await.unwrap());
    assert_eq!(reported, vec![events[99].position().clone()]);
    assert_eq!(
        (sink.stats().files_written, sink.stats().open_files),
        (1, 1)
    );
    assert!(sink.pre_commit().await.unwrap().is_empty());
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[149].position().clone()]
    );
    assert_eq!(lines_per_file(&store).await, vec![100, 50]);
}

/// A source partition revoked with an open file: the file is dropped, not uploaded, nothing
/// past the last closed file is reported, and the source partition's re-read from that point
/// (the partition given back) is stored exactly once.
#[tokio::test]
async fn a_revoked_source_partition_drops_its_open_files_and_its_reread_is_stored_once() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = ndjson_sink(&store, 100);
    let events = sample_events("revoke", 200);
    let partition = events[0].position().source_partition();
    let mut reported = sink.write(&events[..150]).await.unwrap();
    sink.partitions_revoked(std::slice::from_ref(&partition))
        .await
        .unwrap();
    let stats = sink.stats();
    assert_eq!(
        (stats.files_dropped, stats.events_dropped, stats.open_files),
        (1, 50, 0)
    );
    reported.extend(sink.flush().await.unwrap());
    assert_eq!(reported, vec![events[99].position().clone()]);
    assert_eq!(lines_per_file(&store).await, vec![100]);

    // Given back: re-read from the committed position, after event 100.
    let mut reported = sink.write(&events[100..]).await.unwrap();
    reported.extend(sink.flush().await.unwrap());
    assert_eq!(reported, vec![events[199].position().clone()]);
    let expected: Vec<Position> = events.iter().map(|e| e.position().clone()).collect();
    assert_eq!(copies(&store, &expected).await, vec![1; 200]);
}

/// Two owners of one source partition in turn (a rebalance): the first is revoked with an open
/// file, the second re-reads from the committed position and writes past it. When the first
/// stops, it must not upload its old open file under the name the second one used (before: a
/// `Conflict` at stop, or a duplicate).
#[tokio::test]
async fn a_revoked_owner_does_not_upload_under_the_next_owners_name_at_stop() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let events = sample_events("owners", 260);
    let partition = events[0].position().source_partition();
    let mut first = ndjson_sink(&store, 100);
    first.write(&events[..150]).await.unwrap();
    first
        .partitions_revoked(std::slice::from_ref(&partition))
        .await
        .unwrap();

    let mut second = ndjson_sink(&store, 100);
    second.write(&events[100..]).await.unwrap();
    second.flush().await.unwrap();

    first.flush().await.unwrap();
    assert_eq!(lines_per_file(&store).await, vec![100, 100, 60]);
    let expected: Vec<Position> = events.iter().map(|e| e.position().clone()).collect();
    assert_eq!(copies(&store, &expected).await, vec![1; 260]);
}

/// A re-read without a revocation (a consumer set back to its committed offset) of events
/// already in an open file: they are skipped, not appended again.
#[tokio::test]
async fn a_reread_never_appends_an_event_already_in_an_open_file() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = ndjson_sink(&store, 100);
    let events = sample_events("reread", 60);
    sink.write(&events[..50]).await.unwrap();
    sink.write(&events[30..]).await.unwrap();
    assert_eq!(sink.stats().events_skipped, 20);
    sink.flush().await.unwrap();
    assert_eq!(lines_per_file(&store).await, vec![60]);
    let expected: Vec<Position> = events.iter().map(|e| e.position().clone()).collect();
    assert_eq!(copies(&store, &expected).await, vec![1; 60]);
}

/// A source partition given back after another owner wrote files for it: the sink reads the
/// store again instead of trusting what it knew before the revocation, so events the other
/// owner already stored are skipped.
#[tokio::test]
async fn a_source_partition_given_back_reads_the_store_again() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let events = sample_events("back", 300);
    let partition = events[0].position().source_partition();
    let mut first = ndjson_sink(&store, 100);
    first.write(&events[..120]).await.unwrap();
    first
        .partitions_revoked(std::slice::from_ref(&partition))
        .await
        .unwrap();

    let mut second = ndjson_sink(&store, 100);
    second.write(&events[100..]).await.unwrap();
    second.flush().await.unwrap();

    // Given back, re-read from an older committed position (an acknowledgement of the other
    // owner was not committed yet).
    first.write(&events[100..]).await.unwrap();
    first.flush().await.unwrap();
    assert_eq!(first.stats().events_skipped, 200);
    let expected: Vec<Position> = events.iter().map(|e| e.position().clone()).collect();
    assert_eq!(copies(&store, &expected).await, vec![1; 300]);
}
