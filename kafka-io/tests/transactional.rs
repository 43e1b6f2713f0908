#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Exactly-once: the transactional sink, the Kafka offset store, fencing.
//!
//! librdkafka's mock cluster runs transactions but does not hide aborted records from
//! `read_committed` consumers, so the mock tests check what it can show (resume point,
//! commits, fencing); `real_broker_aborted_transactions_are_invisible_and_producers_are_fenced`
//! checks the read_committed view and fencing on a real broker.

mod common;

use cdc_core::testing::{
    MemorySource, SinkHarness, offset_store_conformance, sample_events, sink_conformance,
};
use cdc_core::{DebeziumJson, OffsetStore, Pipeline, PipelineConfig, Position, Sink};
use common::*;
use kafka_io::{KafkaConfig, KafkaIoError, KafkaOffsetStore, TransactionalSink};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const OFFSETS: &str = "cdc.offsets";

async fn transactional(config: &KafkaConfig, id: &str) -> TransactionalSink {
    TransactionalSink::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        id,
        OFFSETS,
    )
    .timeout(Duration::from_secs(20))
    .build()
    .await
    .unwrap()
}

fn store(config: &KafkaConfig, id: &str) -> KafkaOffsetStore {
    KafkaOffsetStore::written_by_transactions(config.clone(), OFFSETS, id).unwrap()
}

struct Harness {
    config: KafkaConfig,
}

#[async_trait::async_trait]
impl SinkHarness for Harness {
    type Sink = TransactionalSink;

    async fn new_sink(&mut self) -> cdc_core::Result<TransactionalSink> {
        Ok(transactional(&self.config, "conformance").await)
    }

    async fn stored_positions(&mut self) -> cdc_core::Result<Vec<Position>> {
        let config = self.config.clone();
        let records = tokio::task::spawn_blocking(move || read_topic(&config, SAMPLE_TOPIC, true))
            .await
            .unwrap();
        Ok(records
            .iter()
            .filter(|r| !r.is_tombstone())
            .map(Read::position)
            .collect())
    }

    async fn stored_values(&mut self, column: &str) -> cdc_core::Result<Vec<(Position, String)>> {
        let config = self.config.clone();
        let records = tokio::task::spawn_blocking(move || read_topic(&config, SAMPLE_TOPIC, true))
            .await
            .unwrap();
        Ok(records
            .iter()
            .filter_map(|r| Some((r.position(), r.column_text(column)?)))
            .collect())
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

/// The transactional sink passes cdc-core's sink conformance suite as an exactly-once sink:
/// a replay after a restart is recognised from the committed checkpoint and not written
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_sink_conformance_on_mock() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 2), (OFFSETS, 1)]);
    let mut harness = Harness {
        config: kafka(&mock),
    };
    sink_conformance(&mut harness).await.unwrap();
}

/// The Kafka offset store (producing mode) passes cdc-core's offset store conformance suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_offset_store_conformance_on_mock() {
    let mock = mock(1, &[(OFFSETS, 3)]);
    let store = KafkaOffsetStore::new(kafka(&mock), OFFSETS, "pipeline-a").unwrap();
    offset_store_conformance(&store).await.unwrap();
    let other = KafkaOffsetStore::new(kafka(&mock), OFFSETS, "pipeline-b").unwrap();
    assert_eq!(
        other.load().await.unwrap(),
        None,
        "keys keep pipelines apart"
    );
}

/// Kill the producer mid-transaction, restart: the new instance fences the old one (its open
/// transaction is aborted), the pipeline resumes from the checkpoint committed in the offsets
/// topic, and every event is committed exactly once. On the mock the aborted records stay
/// visible, so the check counts records after the aborted block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_kill_mid_transaction_and_resume_on_mock() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1), (OFFSETS, 1)]);
    let config = kafka(&mock);
    let events = sample_events("eos", 100);

    // First run: 40 events committed, then 20 written in a transaction that never commits.
    let mut first = transactional(&config, "eos").await;
    first.write(&events[..40]).await.unwrap();
    assert_eq!(
        first.flush().await.unwrap(),
        vec![events[39].position().clone()]
    );
    first.write(&events[40..60]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await; // let the open transaction reach the broker
    drop(first); // killed mid-transaction

    // Restart: build the sink first (it fences the old instance), then load the checkpoint.
    let sink = transactional(&config, "eos").await;
    let offsets = store(&config, "eos");
    let loaded = offsets.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.get_for(events[0].position()),
        Some(events[39].position()),
        "resume from the committed checkpoint"
    );
    let source = MemorySource::new("eos", events.clone()).ending_when_drained();
    let log = source.log();
    let pipeline = Pipeline::new(
        PipelineConfig::new("eos").flush_max_events(25),
        source,
        sink,
        offsets,
    )
    .unwrap();
    let report = pipeline.run(CancellationToken::new()).await.unwrap();
    assert_eq!(
        report.events_written, 60,
        "the second run wrote only events 41..=100"
    );
    assert_eq!(log.acks().last(), Some(events[99].position()));

    let records: Vec<u64> = read_topic(&config, SAMPLE_TOPIC, true)
        .iter()
        .filter(|r| !r.is_tombstone())
        .map(|r| seq(&r.position()))
        .collect();
    // committed 1..=40, aborted 41..=60 (visible on the mock only), committed 41..=100.
    assert_eq!(records.len(), 40 + 20 + 60);
    assert_eq!(records[..40], (1..=40).collect::<Vec<_>>()[..]);
    assert_eq!(
        records[60..],
        (41..=100).collect::<Vec<_>>()[..],
        "after the aborted block, each event once"
    );
    let after_restart = transactional(&config, "eos").await;
    assert_eq!(
        after_restart.committed().get_for(events[0].position()),
        Some(events[99].position())
    );
}

fn assert_fenced(error: &cdc_core::Error) {
    let cdc_core::Error::Sink { source, .. } = error else {
        panic!("unexpected {error:?}")
    };
    assert!(
        matches!(
            source.downcast_ref::<KafkaIoError>(),
            Some(KafkaIoError::Fenced { .. })
        ),
        "expected Fenced, got {source:?}"
    );
}

/// A fenced producer stops with the typed `KafkaIoError::Fenced` and stays stopped.
///
/// The mock gives a second instance with the same transactional.id a new producer id
/// instead of bumping the epoch, so it never fences the first; the test injects the
/// broker's answer to a fenced producer (`PRODUCER_FENCED`) instead. The real-broker test
/// fences with a second instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_producer_stops_with_typed_error() {
    use kafka_io::rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let mock = mock(1, &[(SAMPLE_TOPIC, 1), (OFFSETS, 1)]);
    let config = kafka(&mock);
    let events = sample_events("fence", 10);
    let mut old = transactional(&config, "fence").await;
    old.write(&events[..5]).await.unwrap();
    old.flush().await.unwrap();
    mock.request_errors(
        RDKafkaApiKey::AddPartitionsToTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 5],
    );
    mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 5],
    );
    let error = match old.write(&events[5..]).await {
        Err(e) => e,
        Ok(_) => old
            .flush()
            .await
            .expect_err("a fenced producer cannot commit"),
    };
    assert_fenced(&error);
    assert!(old.flush().await.is_err(), "a fenced sink stays failed");
}

/// On a real broker (`KAFKA_BROKERS`, or one this process starts through scripts/kafka.sh):
/// a producer dies mid-transaction after its records reached the broker; a read_uncommitted
/// consumer sees them, a read_committed consumer does not, and after the restart every event
/// is there exactly once — what the mock cannot show. Then a second instance with the same
/// transactional.id fences the first, which stops with `KafkaIoError::Fenced`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_broker_aborted_transactions_are_invisible_and_producers_are_fenced() {
    let brokers = common::broker::shared();
    let run = std::process::id();
    let config = KafkaConfig::new(brokers);
    let topic_prefix = format!("eos{run}");
    let offsets = format!("cdc.offsets.{run}");
    let creator = kafka_io::TopicCreator::new(&config, kafka_io::TopicSpec::new(1, 1)).unwrap();
    let events: Vec<_> = sample_events("real", 50)
        .into_iter()
        .map(|mut e| {
            e.source.name = topic_prefix.as_str().into();
            e
        })
        .collect();
    let topic = format!("{topic_prefix}.demo.dbo.items");
    creator.ensure(&topic).await.unwrap();
    creator.ensure(&offsets).await.unwrap();
    let builder = || {
        TransactionalSink::builder(
            config.clone(),
            Arc::new(DebeziumJson::with_schema()),
            "real-eos",
            offsets.clone(),
        )
    };
    let mut first = builder().build().await.unwrap();
    first.write(&events[..20]).await.unwrap();
    first.flush().await.unwrap();
    first.write(&events[20..30]).await.unwrap();
    // Wait until the open transaction's records are in the log, then kill the producer.
    let uncommitted_seqs = |config: KafkaConfig, topic: String| {
        tokio::task::spawn_blocking(move || {
            read_topic(&config, &topic, false)
                .iter()
                .filter(|r| !r.is_tombstone())
                .map(|r| seq(&r.position()))
                .collect::<Vec<u64>>()
        })
    };
    let started = std::time::Instant::now();
    while uncommitted_seqs(config.clone(), topic.clone())
        .await
        .unwrap()
        .len()
        < 30
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the open transaction's records never reached the broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
    // The restarted instance: its sink and the store that reads its checkpoints, as a pair.
    let (sink, store) = builder().build_with_offset_store().await.unwrap();
    assert_eq!(
        store.load().await.unwrap().as_ref(),
        Some(sink.committed()),
        "the pair's store reads what the sink's last transaction committed"
    );
    let source = MemorySource::new("real", events.clone()).ending_when_drained();
    Pipeline::new(PipelineConfig::new("real"), source, sink, store)
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let seqs: Vec<u64> = read_topic(&config, &topic, true)
        .iter()
        .filter(|r| !r.is_tombstone())
        .map(|r| seq(&r.position()))
        .collect();
    let uncommitted = uncommitted_seqs(config.clone(), topic.clone())
        .await
        .unwrap();
    assert_eq!(
        uncommitted.len(),
        seqs.len() + 10,
        "read_uncommitted also sees the 10 aborted records, read_committed does not"
    );
    // A second instance with the same transactional.id fences the first.
    let mut zombie = builder().build().await.unwrap();
    let _newer = builder().build().await.unwrap();
    let mut extra = sample_events("real", 51).pop().unwrap(); // not covered by the checkpoint
    extra.source.name = topic_prefix.as_str().into();
    let error = match zombie.write(&[extra]).await {
        Err(e) => e,
        Ok(_) => zombie
            .flush()
            .await
            .expect_err("a fenced producer cannot commit"),
    };
    assert_fenced(&error);
    let mut counts: HashMap<u64, usize> = HashMap::new();
    seqs.iter()
        .for_each(|s| *counts.entry(*s).or_default() += 1);
    assert_eq!(counts.len(), 50, "every event");
    assert!(counts.values().all(|&c| c == 1), "exactly once: {seqs:?}");
}
