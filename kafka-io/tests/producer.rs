#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The producer sink on librdkafka's mock cluster.

mod common;

use cdc_core::testing::{SinkHarness, sample_events, sink_conformance};
use cdc_core::{DebeziumJson, Op, Position, Sink};
use common::*;
use kafka_io::rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_io::{HEADER_OP, HEADER_TABLE, KafkaConfig, KafkaIoError, KafkaSink};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

fn sink(config: &KafkaConfig) -> KafkaSink {
    KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::schemaless()))
        .build()
        .unwrap()
}

/// Every record's key maps to one partition and, per key, positions only increase: the
/// per-key order of the source survives a 4-partition topic with many messages in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_across_four_partitions() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 4)]);
    let config = kafka(&mock);
    let mut sink = sink(&config);
    let events = keyed_events("order", 3000, 40);
    let mut reported = Vec::new();
    for chunk in events.chunks(500) {
        reported.extend(sink.write(chunk).await.unwrap());
    }
    reported.extend(sink.flush().await.unwrap());
    assert_eq!(
        reported.last(),
        Some(events.last().unwrap().position()),
        "flush reports the last position"
    );
    for pair in reported.windows(2) {
        assert!(
            seq(&pair[0]) < seq(&pair[1]),
            "reported positions only move forward"
        );
    }

    let records = read_topic(&config, SAMPLE_TOPIC, false);
    let deletes = events.iter().filter(|e| e.op == Op::Delete).count();
    assert_eq!(
        records.len(),
        events.len() + deletes,
        "one record per event plus a tombstone per delete"
    );
    let mut partition_of: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut last_seq: HashMap<Vec<u8>, u64> = HashMap::new();
    let partitions: HashSet<i32> = records.iter().map(|r| r.partition).collect();
    assert_eq!(partitions.len(), 4, "keys spread over the 4 partitions");
    for record in &records {
        let key = record.key.clone().unwrap();
        assert_eq!(
            *partition_of.entry(key.clone()).or_insert(record.partition),
            record.partition
        );
        let s = seq(&record.position());
        let previous = last_seq.insert(key, s);
        if record.is_tombstone() {
            assert_eq!(
                previous,
                Some(s),
                "a tombstone follows its delete, same position"
            );
        } else {
            assert!(
                previous.is_none_or(|p| p < s),
                "per-key order broken at seq {s}"
            );
        }
    }
}

/// Headers say what each record is; a tombstone (same key, no value) follows each delete;
/// tombstones can be turned off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_and_tombstones() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let config = kafka(&mock);
    let events = sample_events("headers", 14);
    let mut sink = sink(&config);
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();
    let records = read_topic(&config, SAMPLE_TOPIC, false);
    assert_eq!(
        records.len(),
        16,
        "14 events and 2 tombstones (events 7 and 14 are deletes)"
    );
    assert_eq!(records[6].header(HEADER_OP), Some(&b"d"[..]));
    assert_eq!(records[7].header(HEADER_OP), Some(&b"tombstone"[..]));
    assert!(records[7].is_tombstone());
    assert_eq!(
        records[7].key, records[6].key,
        "the tombstone carries the deleted key"
    );
    assert_eq!(
        records[0].header(HEADER_TABLE),
        Some(&b"demo.dbo.items"[..])
    );
    assert_eq!(records[0].position(), *events[0].position());

    let mut no_tombstones =
        KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::schemaless()))
            .tombstones(false)
            .topic_namer(|_: &cdc_core::ChangeEvent| "plain".to_string())
            .build()
            .unwrap();
    mock.create_topic("plain", 1, 1).unwrap();
    no_tombstones.write(&events).await.unwrap();
    no_tombstones.flush().await.unwrap();
    let records = read_topic(&config, "plain", false);
    assert_eq!(records.len(), 14, "no tombstones when turned off");
}

/// The single broker goes down for 10 s while events are produced and comes back: the
/// idempotent producer retries, every event is stored exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_10s_no_loss_no_duplicates() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 4)]);
    let config = kafka(&mock);
    let mut sink = sink(&config);
    let events = keyed_events("outage", 4000, 64);
    let (first, rest) = events.split_at(1000);
    sink.write(first).await.unwrap();
    sink.flush().await.unwrap();

    // The writer publishes how many writes it has started, so the outage is placed by what
    // the writer did, not by time.
    let chunks = rest.chunks(100).count();
    let (started, mut writes_started) = tokio::sync::watch::channel(0usize);
    let writer = tokio::spawn({
        let rest = rest.to_vec();
        async move {
            let mut reported = Vec::new();
            for chunk in rest.chunks(100) {
                started.send_modify(|n| *n += 1);
                reported.extend(sink.write(chunk).await?);
                // Pacing: the writes spread over the outage rather than finishing before it.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            reported.extend(sink.flush().await?);
            Ok::<_, cdc_core::Error>(reported)
        }
    });
    let wait = Duration::from_secs(30);
    tokio::time::timeout(wait, writes_started.wait_for(|n| *n >= 3))
        .await
        .expect("the writer starts writing")
        .unwrap();
    mock.broker_down(1).unwrap();
    let before_outage = *writes_started.borrow();
    assert!(before_outage < chunks, "writes remain for the outage");
    let outage = tokio::time::Instant::now();
    tokio::time::timeout(wait, writes_started.wait_for(|n| *n > before_outage))
        .await
        .expect("a write starts while the broker is down")
        .unwrap();
    // The outage lasts 10 s (the scenario, not a wait for anything).
    tokio::time::sleep_until(outage + Duration::from_secs(10)).await;
    let during_outage = *writes_started.borrow() - before_outage;
    assert!(during_outage >= 1, "the outage overlapped a write");
    mock.broker_up(1).unwrap();
    let reported = writer.await.unwrap().unwrap();
    assert_eq!(reported.last(), Some(events.last().unwrap().position()));

    let records = read_topic(&config, SAMPLE_TOPIC, false);
    let stored: Vec<u64> = records
        .iter()
        .filter(|r| !r.is_tombstone())
        .map(|r| seq(&r.position()))
        .collect();
    let unique: HashSet<u64> = stored.iter().copied().collect();
    assert_eq!(unique.len(), events.len(), "no event lost");
    assert_eq!(stored.len(), events.len(), "no event duplicated");
}

/// Retriable produce errors (not enough replicas, leader unavailable) are retried by
/// librdkafka: the flush succeeds and everything is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_produce_errors_are_retried() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 2)]);
    let config = kafka(&mock);
    let mut sink = sink(&config);
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ],
    );
    let events = sample_events("retry", 300);
    sink.write(&events).await.unwrap();
    let reported = sink.flush().await.unwrap();
    assert_eq!(reported, vec![events.last().unwrap().position().clone()]);
    let records = read_topic(&config, SAMPLE_TOPIC, false);
    let stored: Vec<u64> = records
        .iter()
        .filter(|r| !r.is_tombstone())
        .map(|r| seq(&r.position()))
        .collect();
    assert_eq!(stored.len(), 300, "retried, not duplicated");
    assert_eq!(stored.iter().copied().collect::<HashSet<_>>().len(), 300);
}

/// A produce error that cannot be retried surfaces from flush as a typed
/// `KafkaIoError::Delivery` naming the first undelivered position, and no position at or
/// after it was ever reported durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_delivery_is_typed_and_acknowledged_position_never_passes_it() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 2)]);
    let config = kafka(&mock).set("message.timeout.ms", "5000");
    let mut sink = sink(&config);
    let events = sample_events("fail", 200);
    sink.write(&events[..100]).await.unwrap();
    let mut reported: Vec<Position> = sink.flush().await.unwrap();
    assert_eq!(reported, vec![events[99].position().clone()]);

    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    let mut failure = None;
    for chunk in events[100..].chunks(10) {
        match sink.write(chunk).await {
            Ok(positions) => reported.extend(positions),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = match failure {
        Some(e) => e,
        None => sink.flush().await.expect_err("the flush must fail"),
    };
    let cdc_core::Error::Sink {
        position: Some(failed_at),
        source,
        ..
    } = &failure
    else {
        panic!("expected a sink error with a position, got {failure:?}");
    };
    let typed = source
        .downcast_ref::<KafkaIoError>()
        .expect("a KafkaIoError source");
    assert!(
        matches!(typed, KafkaIoError::Delivery { .. }),
        "typed delivery error, got {typed:?}"
    );
    assert!(seq(failed_at) > 100, "the failure is in the second half");
    let highest = reported.iter().map(seq).max().unwrap();
    assert!(
        highest < seq(failed_at),
        "acknowledged {highest}, which is not before the failure at {failed_at}"
    );
    assert!(
        matches!(sink.flush().await, Err(cdc_core::Error::Sink { .. })),
        "a failed sink stays failed"
    );
}

/// Holds only the bootstrap address: the mock cluster is not `Send`, the test keeps it alive.
struct Harness {
    config: KafkaConfig,
}

#[async_trait::async_trait]
impl SinkHarness for Harness {
    type Sink = KafkaSink;

    async fn new_sink(&mut self) -> cdc_core::Result<KafkaSink> {
        Ok(sink(&self.config))
    }

    async fn stored_positions(&mut self) -> cdc_core::Result<Vec<Position>> {
        let config = self.config.clone();
        let records = tokio::task::spawn_blocking(move || read_topic(&config, SAMPLE_TOPIC, false))
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
        let records = tokio::task::spawn_blocking(move || read_topic(&config, SAMPLE_TOPIC, false))
            .await
            .unwrap();
        Ok(records
            .iter()
            .filter_map(|r| Some((r.position(), r.column_text(column)?)))
            .collect())
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

/// The producer sink passes cdc-core's sink conformance suite (at-least-once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_conformance_on_mock() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 3)]);
    let mut harness = Harness {
        config: kafka(&mock),
    };
    sink_conformance(&mut harness).await.unwrap();
}

/// Builders reject bad settings naming the field; secrets never show in Debug.
#[test]
fn config_validation_names_the_field_and_hides_secrets() {
    use kafka_io::{SaslMechanism, Secret, Security, Tls};
    let codec = Arc::new(DebeziumJson::schemaless());
    let err = KafkaSink::builder(KafkaConfig::new(""), codec.clone())
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "bootstrap_servers"),
        "{err}"
    );
    let err = KafkaSink::builder(KafkaConfig::new("x:1"), codec.clone())
        .name(" ")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "name"),
        "{err}"
    );
    let security = Security::SaslSsl {
        mechanism: SaslMechanism::ScramSha512,
        username: "cdc".into(),
        password: Secret::new("hunter2"),
        tls: Tls::with_ca_file("/nonexistent/ca.pem"),
    };
    let config = KafkaConfig::new("x:1")
        .security(security.clone())
        .set("ssl.key.password", "pem-secret");
    let err = config.validate().unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "security.tls.ca_file"),
        "{err}"
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("pem-secret"),
        "{debug}"
    );
    let empty_password = Security::SaslSsl {
        mechanism: SaslMechanism::Plain,
        username: "cdc".into(),
        password: Secret::new(""),
        tls: Tls::default(),
    };
    let err = empty_password.validate().unwrap_err();
    assert!(
        matches!(&err, KafkaIoError::Config { field, .. } if field == "security.password"),
        "{err}"
    );
    // SASL_SSL settings reach librdkafka.
    let ok = Security::SaslSsl {
        mechanism: SaslMechanism::Plain,
        username: "cdc".into(),
        password: Secret::new("pw"),
        tls: Tls::default(),
    };
    let client = KafkaConfig::new("x:1").security(ok).client_config();
    assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(client.get("sasl.mechanisms"), Some("PLAIN"));
    assert_eq!(client.get("sasl.password"), Some("pw"));
}
