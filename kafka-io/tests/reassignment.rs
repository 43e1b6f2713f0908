//! A partition revoked and assigned again while the source waits for records (issue 11: the
//! loss in the Kafka → S3 leg under random crashes, and issue 13's gap after an exceeded
//! poll interval).
//!
//! librdkafka runs the rebalance callbacks inside the `recv` that waits for the next record
//! (rust-rdkafka's `poll_queue` handles the rebalance event and keeps polling), so one
//! `recv` can see the revocation, the new assignment and then return the first record the
//! new assignment fetched from the committed offset. That record belongs to the new
//! assignment and must be delivered; dropping it with the revoked partition's old records
//! loses it for good, because the next acknowledgement commits past it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeSource, DebeziumJson, Position};
use common::*;
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "reassignment";

fn source(config: &KafkaConfig, name: &str, poll_timeout: Duration) -> KafkaSource {
    KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), GROUP)
        .topic(SAMPLE_TOPIC)
        .name(name)
        .poll_timeout(poll_timeout)
        .build()
        .unwrap()
}

fn offset_of(position: &Position) -> (i32, i64) {
    match position {
        Position::Kafka(k) => (k.partition, k.offset),
        other => panic!("not a Kafka position: {other}"),
    }
}

/// The first record a partition's new assignment fetches comes out of the same `recv` as the
/// revocation: it is delivered, so every record is read by one of the two members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_record_of_a_partition_assigned_again_is_delivered() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 2)]);
    let config = kafka_for_groups(&mock);
    let events = sample_events("demo", 40);
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    cdc_core::Sink::write(&mut sink, &events).await.unwrap();
    cdc_core::Sink::flush(&mut sink).await.unwrap();
    let records: BTreeSet<(i32, i64)> = read_topic(&config, SAMPLE_TOPIC, true)
        .into_iter()
        .filter(|r| !r.is_tombstone())
        .map(|r| (r.partition, r.offset))
        .collect();
    let partitions: BTreeSet<i32> = records.iter().map(|(p, _)| *p).collect();
    assert_eq!(partitions.len(), 2, "the records span both partitions");

    // A reads everything and acknowledges nothing: the group's offsets stay at the start.
    // Its poll timeout is long, so the rebalance below happens inside one `recv`.
    let mut a = source(&config, "a", Duration::from_secs(30));
    a.start(None).await.unwrap();
    let mut first_read = BTreeSet::new();
    let started = Instant::now();
    while first_read.len() < records.len() {
        assert!(started.elapsed() < Duration::from_secs(30), "a read all");
        let batch = a.next_batch().await.unwrap().unwrap();
        first_read.extend(batch.events.iter().map(|e| offset_of(e.position())));
    }

    // B joins: the eager rebalance revokes both partitions from A and gives one back.
    let read_by_b = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = CancellationToken::new();
    let b = {
        let (config, read_by_b, stop) = (config.clone(), Arc::clone(&read_by_b), stop.clone());
        tokio::spawn(async move {
            let mut b = source(&config, "b", Duration::from_millis(100));
            b.start(None).await.unwrap();
            while !stop.is_cancelled() {
                let batch = b.next_batch().await.unwrap().unwrap();
                let mut read = read_by_b.lock().unwrap();
                read.extend(batch.events.iter().map(|e| offset_of(e.position())));
            }
            b.close().await.unwrap();
        })
    };

    // A's next batches: first the revocation, then what its new assignment re-reads from the
    // committed offset (nothing committed: the partition's first record).
    let mut revoked = false;
    let mut read_by_a = BTreeSet::new();
    let started = Instant::now();
    let covered = |read: &BTreeSet<(i32, i64)>| {
        let partitions: BTreeSet<i32> = read.iter().map(|(p, _)| *p).collect();
        !partitions.is_empty()
            && records
                .iter()
                .filter(|(p, _)| partitions.contains(p))
                .all(|r| read.contains(r))
    };
    while !(revoked && covered(&read_by_a)) {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "timed out: revoked {revoked}, a read {read_by_a:?} after it"
        );
        let batch = a.next_batch().await.unwrap().unwrap();
        revoked |= !batch.revoked_partitions.is_empty();
        if revoked {
            read_by_a.extend(batch.events.iter().map(|e| offset_of(e.position())));
        }
    }
    // B reads its partition from the start too (under load a later rebalance may give it
    // A's as well: then it reads that one from the committed offset, also the start).
    let all_read = || {
        let b = read_by_b.lock().unwrap();
        records
            .iter()
            .all(|r| read_by_a.contains(r) || b.contains(r))
    };
    while !all_read() {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "timed out: b read {:?}",
            read_by_b.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    b.await.unwrap();
    let read_by_b = read_by_b.lock().unwrap().clone();
    assert_eq!(
        read_by_a
            .union(&read_by_b)
            .copied()
            .collect::<BTreeSet<_>>(),
        records,
        "every record is read again by the member that owns its partition now"
    );

    // Each partition A read after the revocation, it read whole, from the first record.
    let a_partitions: BTreeSet<i32> = read_by_a.iter().map(|(p, _)| *p).collect();
    let expected: BTreeSet<(i32, i64)> = records
        .iter()
        .filter(|(p, _)| a_partitions.contains(p))
        .copied()
        .collect();
    assert_eq!(
        read_by_a, expected,
        "A re-reads its partitions from the first record, none left out"
    );
    a.close().await.unwrap();
}
