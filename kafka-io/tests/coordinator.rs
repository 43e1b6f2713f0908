//! The group coordinator moves while a pipeline consumes (issue 13, item 5: every recoverable
//! consumer condition — rebalances, coordinator moves, a slow sink — recovers with
//! at-least-once delivery).
//!
//! A single real broker is always its own coordinator, so this runs on librdkafka's mock
//! cluster of three brokers, which can move a group's coordinator
//! (`rd_kafka_mock_coordinator_set`) and answer commits and heartbeats with
//! `NOT_COORDINATOR` as a broker that just lost the coordinator role does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cdc_core::testing::{MemorySink, sample_events};
use cdc_core::{DebeziumJson, MemoryOffsetStore, Pipeline, PipelineConfig, Position};
use common::*;
use kafka_io::rdkafka::mocking::MockCoordinator;
use kafka_io::rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_io::{KafkaSink, KafkaSource};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "coordinator-moves";
const PARTITIONS: i32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinator_moving_mid_stream_loses_nothing_and_commits_to_the_end() {
    let mock = mock(3, &[(SAMPLE_TOPIC, PARTITIONS)]);
    let config = kafka_for_groups(&mock);
    mock.coordinator(MockCoordinator::Group(GROUP.into()), 1)
        .unwrap();

    let sink = MemorySink::new();
    let stop = CancellationToken::new();
    let source = KafkaSource::builder(config.clone(), Arc::new(DebeziumJson::with_schema()), GROUP)
        .topic(SAMPLE_TOPIC)
        .commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let pipeline = Pipeline::new(
        PipelineConfig::new("coordinator")
            .flush_interval(Some(Duration::from_millis(100)))
            .tick_interval(Duration::from_millis(50)),
        source,
        sink.handle(),
        MemoryOffsetStore::new(),
    )
    .unwrap();
    let running = tokio::spawn(pipeline.run(stop.clone()));

    let events = sample_events("demo", 900);
    let mut producer = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    let durable_count = |sink: &MemorySink| {
        sink.durable_events()
            .iter()
            .map(|e| e.source.position.clone())
            .collect::<HashSet<Position>>()
            .len()
    };
    for (i, chunk) in events.chunks(100).enumerate() {
        cdc_core::Sink::write(&mut producer, chunk).await.unwrap();
        cdc_core::Sink::flush(&mut producer).await.unwrap();
        // Wait until the pipeline made this chunk durable, so each move happens mid-stream
        // with commits in flight.
        let started = Instant::now();
        while durable_count(&sink) < (i + 1) * 100 {
            assert!(
                !running.is_finished(),
                "the pipeline stopped while the coordinator moved"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "chunk {i} never became durable ({} of {})",
                durable_count(&sink),
                (i + 1) * 100
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match i {
            2 => mock
                .coordinator(MockCoordinator::Group(GROUP.into()), 2)
                .unwrap(),
            5 => {
                mock.coordinator(MockCoordinator::Group(GROUP.into()), 3)
                    .unwrap();
                // The old coordinator's answers while clients still talk to it.
                mock.request_errors(
                    RDKafkaApiKey::OffsetCommit,
                    &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR; 3],
                );
                mock.request_errors(
                    RDKafkaApiKey::Heartbeat,
                    &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR; 2],
                );
            }
            _ => {}
        }
    }

    // Every record's committed offset reaches the end of its partition (tombstones included),
    // which needs commits to the new coordinator.
    let ends: BTreeMap<i32, i64> =
        read_topic(&config, SAMPLE_TOPIC, true)
            .iter()
            .fold(BTreeMap::new(), |mut ends, r| {
                let end = ends.entry(r.partition).or_insert(0);
                *end = (*end).max(r.offset + 1);
                ends
            });
    let started = Instant::now();
    loop {
        let now = tokio::task::spawn_blocking({
            let config = config.clone();
            move || {
                try_committed(&config, GROUP, SAMPLE_TOPIC, PARTITIONS)
                    .unwrap()
                    .into_iter()
                    .collect::<BTreeMap<i32, i64>>()
            }
        })
        .await
        .unwrap();
        if now == ends {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "committed {now:?}, partitions end at {ends:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    running.await.unwrap().unwrap();

    let expected: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    let delivered: HashSet<Position> = sink
        .durable_events()
        .iter()
        .map(|e| e.source.position.clone())
        .collect();
    assert_eq!(delivered, expected, "every record delivered and durable");
}
