#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Broker outages the clients cannot prevent (MSK restarts brokers for patching): a static
//! consumer-group member whose session expired during the outage, a duplicate
//! `group.instance.id`, a transaction commit that times out while the broker is down.
//!
//! Every test that stops a broker runs on a [`PrivateBroker`] of its own (as in
//! `real_broker.rs`), so no other test sees the outage.

mod common;

use cdc_core::{ChangeEvent, ChangeSource, DebeziumJson, Position, Sink, SourcePartition};
use common::broker::{PrivateBroker, blocking};
use common::*;
use kafka_io::{KafkaConfig, KafkaIoError, KafkaSink, KafkaSource, TopicCreator, TopicSpec};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn produce(config: &KafkaConfig, events: &[ChangeEvent]) {
    let mut sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    sink.write(events).await.unwrap();
    sink.flush().await.unwrap();
}

/// A static member (`group.instance.id`) with a session of `session_ms`.
fn static_member(
    config: &KafkaConfig,
    group: &str,
    instance: &str,
    topic: &str,
    session_ms: u32,
) -> KafkaSource {
    KafkaSource::builder(
        config
            .clone()
            .set("group.instance.id", instance)
            .set("session.timeout.ms", session_ms.to_string())
            .set("heartbeat.interval.ms", "500")
            // Back within the session of the member the restarted broker loaded.
            .set("reconnect.backoff.max.ms", "1000"),
        Arc::new(DebeziumJson::with_schema()),
        group,
    )
    .topic(topic)
    .build()
    .unwrap()
}

/// One poll of `source` as a pipeline does it: every event's origin position is counted in
/// `seen`, and the last event of each partition is acknowledged (as a sink would after making
/// the batch durable).
async fn poll_once(
    source: &mut KafkaSource,
    seen: &mut HashMap<Position, usize>,
) -> cdc_core::Result<()> {
    let batch = source.next_batch().await?.unwrap();
    let mut last: HashMap<SourcePartition, Position> = HashMap::new();
    for event in batch.events {
        let at = event.transport.clone().unwrap();
        last.insert(at.source_partition(), at);
        *seen.entry(event.source.position).or_default() += 1;
    }
    for at in last.values() {
        source.ack(at).await?;
    }
    Ok(())
}

/// Polls until every one of `expected` arrived; panics with the source's error if it stops,
/// or after `timeout`.
async fn consume_until(
    source: &mut KafkaSource,
    expected: &HashSet<Position>,
    seen: &mut HashMap<Position, usize>,
    timeout: Duration,
) {
    let started = Instant::now();
    while !expected.iter().all(|p| seen.contains_key(p)) {
        assert!(
            started.elapsed() < timeout,
            "{} of {} events after {timeout:?}",
            expected.iter().filter(|p| seen.contains_key(p)).count(),
            expected.len(),
        );
        if let Err(error) = poll_once(source, seen).await {
            panic!("the source stopped: {error} ({error:?})");
        }
    }
}

/// Polls (acknowledging) until the group's committed offsets of `topic` reach `ends`.
async fn poll_until_committed(
    source: &mut KafkaSource,
    seen: &mut HashMap<Position, usize>,
    config: &KafkaConfig,
    group: &str,
    topic: &str,
    ends: &HashMap<i32, i64>,
) {
    let started = Instant::now();
    loop {
        let committed = {
            let (config, group, topic) = (config.clone(), group.to_string(), topic.to_string());
            let partitions = ends.len() as i32;
            blocking(move || try_committed(&config, &group, &topic, partitions).ok()).await
        };
        if committed.as_ref() == Some(ends) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "committed {committed:?}, want {ends:?}"
        );
        poll_once(source, seen).await.unwrap();
    }
}

/// The end offset of each partition of `topic` (its record count: no transactions here).
async fn ends_of(config: &KafkaConfig, topic: &str) -> HashMap<i32, i64> {
    let (config, topic) = (config.clone(), topic.to_string());
    blocking(move || {
        let mut ends = HashMap::new();
        for record in read_topic(&config, &topic, false) {
            let end = ends.entry(record.partition).or_insert(0);
            *end = (*end).max(record.offset + 1);
        }
        ends
    })
    .await
}

/// A static member (`group.instance.id`, librdkafka's default session.timeout.ms of 45 s)
/// keeps polling through a 60 s outage of the only broker while events keep coming. Its
/// session ends on its side during the outage (librdkafka forgets its member id), the
/// restarted broker still holds the member it loaded, and the first offset commit after the
/// outage, sent without a member id, is fenced: librdkafka's fatal FencedInstanceId (as the
/// broker logs: "Request memberId= for static member ... is fenced by existing memberId=...
/// during operation txn-offset-commit"). The source builds a new consumer and goes on from
/// the committed offsets: every event before and after the outage arrives, none committed
/// before the outage arrives twice, and the source never fails.
///
/// The fencing needs that order; with a 6 s session and a 15 s outage, or 15 s and 25 s,
/// the rejoin came first and replaced the member without a fencing (Kafka 4.4, librdkafka
/// 2.12), so this test uses the default session, as MSK users run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_resumes_after_an_outage_longer_than_its_session_timeout() {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap());
    let prefix = unique("static");
    let topic = topic_of(&prefix);
    let group = unique("static-group");
    TopicCreator::new(&config, TopicSpec::new(2, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let events = events_for(&prefix, 400);
    produce(&config, &events[..100]).await;

    let mut source = static_member(&config, &group, "static-0", &topic, 45_000);
    source.start(None).await.unwrap();
    let mut seen = HashMap::new();
    let before: HashSet<Position> = events[..100].iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &before, &mut seen, Duration::from_secs(60)).await;
    let ends = ends_of(&config, &topic).await;
    poll_until_committed(&mut source, &mut seen, &config, &group, &topic, &ends).await;

    // Events keep coming before, during and after the outage (the producer retries through
    // it), so the consumer has read and acknowledged offsets not yet committed when the
    // broker goes away.
    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (config, rest, written) =
            (config.clone(), events[100..].to_vec(), Arc::clone(&written));
        async move {
            let mut sink = KafkaSink::builder(config, Arc::new(DebeziumJson::with_schema()))
                .build()
                .unwrap();
            for chunk in rest.chunks(10) {
                sink.write(chunk).await.unwrap();
                written.fetch_add(1, Ordering::SeqCst);
                // Paces the writer so the stream spans the outage.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sink.flush().await.unwrap();
        }
    });
    let restarted = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let outage = tokio::spawn({
        let (broker, restarted, written) = (
            Arc::clone(&broker),
            Arc::clone(&restarted),
            Arc::clone(&written),
        );
        async move {
            let started = Instant::now();
            while written.load(Ordering::SeqCst) < 5 {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the writer is stuck"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            blocking({
                let broker = Arc::clone(&broker);
                move || broker.stop()
            })
            .await;
            // The outage: longer than the 45 s session timeout.
            tokio::time::sleep(Duration::from_secs(60)).await;
            blocking(move || broker.restart()).await;
            *restarted.lock().unwrap() = Some(Instant::now());
        }
    });
    let all: HashSet<Position> = events.iter().map(|e| e.position().clone()).collect();
    consume_until(&mut source, &all, &mut seen, Duration::from_secs(240)).await;
    let recovered = Instant::now();
    outage.await.unwrap();
    writer.await.unwrap();
    let restarted = restarted.lock().unwrap().unwrap();
    eprintln!(
        "broker serving again to the last event read: {:?}; {} of {} events read more than once (the replay after the last commit)",
        recovered - restarted,
        seen.values().filter(|&&n| n > 1).count(),
        events.len()
    );
    assert_eq!(
        source.consumers_rebuilt(),
        1,
        "the outage fenced the member once, and the source replaced its consumer"
    );
    let twice: Vec<_> = before.iter().filter(|p| seen[*p] > 1).collect();
    assert!(
        twice.is_empty(),
        "events committed before the outage read again: {twice:?}"
    );
    source.close().await.unwrap();
}

/// Two live members with one `group.instance.id` (a copy-pasted configuration) fence each
/// other forever; one of them stops with an error that names the setting instead of
/// rebuilding its consumer again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_with_the_same_group_instance_id_fails_naming_the_setting() {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap());
    let prefix = unique("duplicate");
    let topic = topic_of(&prefix);
    let group = unique("duplicate-group");
    TopicCreator::new(&config, TopicSpec::new(2, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    produce(&config, &events_for(&prefix, 20)).await;

    let mut first = static_member(&config, &group, "same-0", &topic, 6_000);
    first.start(None).await.unwrap();
    let mut seen = HashMap::new();
    // The first member owns the partitions before the second one starts.
    let started = Instant::now();
    while seen.len() < 20 {
        assert!(started.elapsed() < Duration::from_secs(60), "no events");
        poll_once(&mut first, &mut seen).await.unwrap();
    }
    let mut second = static_member(&config, &group, "same-0", &topic, 6_000);
    second.start(None).await.unwrap();
    let started = Instant::now();
    let error = loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "two members with one group.instance.id went on for 2 minutes"
        );
        if let Err(error) = poll_once(&mut first, &mut seen).await {
            break error;
        }
        if let Err(error) = poll_once(&mut second, &mut seen).await {
            break error;
        }
    };
    eprintln!(
        "stopped {:?} after the second member started; consumers rebuilt: first {}, second {}",
        started.elapsed(),
        first.consumers_rebuilt(),
        second.consumers_rebuilt()
    );
    let typed = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<KafkaIoError>())
        .unwrap_or_else(|| panic!("not a KafkaIoError: {error:?}"));
    assert!(
        matches!(typed, KafkaIoError::DuplicateGroupInstanceId { group_instance_id, .. } if group_instance_id == "same-0"),
        "{typed:?}"
    );
    assert!(
        error.to_string().contains("group.instance.id")
            || typed.to_string().contains("group.instance.id"),
        "{error}: {typed}"
    );
    drop(broker);
}

/// A transaction commit that runs into a 15 s outage of the only broker times out (the sink's
/// timeout of each blocking call is 5 s): librdkafka marks that error retriable, and the sink
/// calls commit again until the broker is back. The flush reports every position durable and
/// a `read_committed` consumer sees every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_times_out_during_an_outage_is_retried_and_nothing_is_lost_or_duplicated() {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap());
    let prefix = unique("txn-outage");
    let topic = topic_of(&prefix);
    let offsets = unique("offsets");
    let creator = TopicCreator::new(&config, TopicSpec::new(2, 1).compacted(false)).unwrap();
    creator.ensure(&topic).await.unwrap();
    TopicCreator::new(&config, TopicSpec::new(1, 1))
        .unwrap()
        .ensure(&offsets)
        .await
        .unwrap();
    let events = events_for(&prefix, 200);
    let mut sink = kafka_io::TransactionalSink::builder(
        config.clone(),
        Arc::new(DebeziumJson::with_schema()),
        unique("txn"),
        &offsets,
    )
    .timeout(Duration::from_secs(5))
    .build()
    .await
    .unwrap();
    sink.write(&events[..100]).await.unwrap();
    let reported = sink.flush().await.unwrap();
    assert_eq!(reported.last(), Some(events[99].position()));
    sink.write(&events[100..]).await.unwrap();

    blocking({
        let broker = Arc::clone(&broker);
        move || broker.stop()
    })
    .await;
    let flush = tokio::spawn(async move {
        let reported = sink.flush().await;
        (sink, reported)
    });
    // The outage: three times the sink's timeout.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let stopped_at = Instant::now();
    blocking({
        let broker = Arc::clone(&broker);
        move || broker.restart()
    })
    .await;
    let serving = Instant::now();
    let (_sink, reported) = flush.await.unwrap();
    eprintln!(
        "outage {:?} (stop to serving), commit done {:?} after the broker served again",
        serving - stopped_at + Duration::from_secs(15),
        serving.elapsed()
    );
    let reported = reported.unwrap_or_else(|e| panic!("the commit failed: {e} ({e:?})"));
    assert_eq!(reported.last(), Some(events[199].position()));

    let stored = {
        let (config, topic) = (config.clone(), topic.clone());
        blocking(move || {
            read_topic(&config, &topic, true)
                .iter()
                .filter(|r| !r.is_tombstone())
                .map(|r| seq(&r.position()))
                .collect::<Vec<_>>()
        })
        .await
    };
    let once: HashSet<u64> = stored.iter().copied().collect();
    assert_eq!(once.len(), events.len(), "no event lost");
    assert_eq!(stored.len(), events.len(), "no event duplicated");
}

/// A transaction that outlives `transaction.timeout.ms` (5 s here) during a 15 s outage
/// cannot commit: its messages time out (librdkafka caps their timeout at the transaction's),
/// the commit gets an error that requires abort, and the sink aborts — retrying the abort
/// until the broker is back — and fails the flush without reporting anything. The checkpoint
/// stays at the last committed transaction; a new sink (the restarted pipeline) reads it, the
/// events after it are written again, and a `read_committed` consumer sees every event once.
///
/// Whether the sink's own abort gets through is a race with the restarted coordinator, which
/// aborts a timed-out transaction by itself: when the messages timed out during the outage the
/// sink's retried abort got through (`aborted: true`); when their failure came from the
/// restarted broker, the coordinator had aborted first and the sink's abort got
/// `INVALID_TXN_STATE` (`aborted: false`) — 6 of 15 runs. Either way nothing of the
/// transaction is visible, which is what the replay below checks; in the first case the
/// sink's abort must have got through (a single abort call timed out: `aborted: false` in 3 of
/// 3 runs before the abort was retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_aborted_during_an_outage_fails_the_flush_and_its_replay_stores_every_event_once()
 {
    let broker = Arc::new(blocking(PrivateBroker::start).await);
    let config = KafkaConfig::new(broker.bootstrap())
        .set("transaction.timeout.ms", "5000")
        // Back soon after the broker, before the coordinator's own cleanup of timed-out
        // transactions (every 10 s) aborts it first.
        .set("reconnect.backoff.max.ms", "1000");
    let prefix = unique("txn-abort");
    let topic = topic_of(&prefix);
    let offsets = unique("offsets");
    let id = unique("txn");
    TopicCreator::new(&config, TopicSpec::new(2, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    TopicCreator::new(&config, TopicSpec::new(1, 1))
        .unwrap()
        .ensure(&offsets)
        .await
        .unwrap();
    let events = events_for(&prefix, 200);
    let build = || {
        kafka_io::TransactionalSink::builder(
            config.clone(),
            Arc::new(DebeziumJson::with_schema()),
            &id,
            &offsets,
        )
        .timeout(Duration::from_secs(3))
        // Longer than the transaction: the commit is still being retried when the broker is
        // back and the coordinator has aborted the transaction.
        .commit_budget(Duration::from_secs(120))
        .build_with_offset_store()
    };
    let (mut sink, _) = build().await.unwrap();
    sink.write(&events[..100]).await.unwrap();
    sink.flush().await.unwrap();
    sink.write(&events[100..]).await.unwrap();
    blocking({
        let broker = Arc::clone(&broker);
        move || broker.stop()
    })
    .await;
    let flush = tokio::spawn(async move {
        let reported = sink.flush().await;
        (sink, reported)
    });
    // The outage: longer than transaction.timeout.ms.
    tokio::time::sleep(Duration::from_secs(15)).await;
    blocking({
        let broker = Arc::clone(&broker);
        move || broker.restart()
    })
    .await;
    let (sink, reported) = flush.await.unwrap();
    let error = reported.expect_err("the coordinator aborted the transaction");
    let typed = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<KafkaIoError>())
        .unwrap_or_else(|| panic!("not a KafkaIoError: {error:?}"));
    assert!(
        matches!(
            typed,
            KafkaIoError::Transaction {
                operation: "commit",
                ..
            }
        ),
        "{typed:?}"
    );
    eprintln!("the flush failed: {typed:?}");
    // Messages that timed out during the outage (librdkafka: "N message(s) timed out on ..."):
    // the abort is the sink's, retried until the broker is back.
    if let KafkaIoError::Transaction {
        aborted, source, ..
    } = typed
        && source.to_string().contains("timed out")
    {
        assert!(
            aborted,
            "the sink's abort was retried until it got through: {typed:?}"
        );
    }
    drop(sink);

    // The restarted pipeline: the checkpoint is the first transaction's.
    let (mut sink, store) = build().await.unwrap();
    let checkpoint = cdc_core::OffsetStore::load(&store).await.unwrap().unwrap();
    let replay: Vec<ChangeEvent> = events
        .iter()
        .filter(|e| !checkpoint.covers(e.position()))
        .cloned()
        .collect();
    assert_eq!(
        replay.len(),
        100,
        "the aborted transaction's events are replayed"
    );
    sink.write(&replay).await.unwrap();
    let reported = sink.flush().await.unwrap();
    assert_eq!(reported.last(), Some(events[199].position()));

    let stored = {
        let (config, topic) = (config.clone(), topic.clone());
        blocking(move || {
            read_topic(&config, &topic, true)
                .iter()
                .filter(|r| !r.is_tombstone())
                .map(|r| seq(&r.position()))
                .collect::<Vec<_>>()
        })
        .await
    };
    let once: HashSet<u64> = stored.iter().copied().collect();
    assert_eq!(once.len(), events.len(), "no event lost");
    assert_eq!(stored.len(), events.len(), "no event duplicated");
}
