//! Lag measured beside the pipeline, on connections of its own: the SQL Server source's LSN
//! distance ([`SOURCE_LSN_DISTANCE`]) and its capture job's errors ([`CAPTURE_JOB_ERRORS`]),
//! and the Kafka
//! source's consumer lag ([`CONSUMER_LAG`]). Both poll every
//! `[ops] lag_interval_ms` (default 5 000); a failed poll is logged and retried at the next
//! tick, never failing the pipeline.

use crate::check;
use crate::config::MssqlSection;
use crate::metering::{CAPTURE_JOB_ERRORS, CONSUMER_LAG, SOURCE_LSN_DISTANCE, SinkCounters};
use cdc_core::Lsn;
use cdc_mssql::ServerConnection;
use kafka_io::KafkaConfig;
use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one poll may take before it is given up (a stalled server must not stall it).
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// `max - delivered` with both LSNs read as 80-bit unsigned big-endian integers
/// (`vlf × 2^48 + block × 2^16 + slot`), 0 when `delivered` is at or past `max`.
///
/// ```
/// use cdc_core::Lsn;
/// use cdc_connect::lag::lsn_distance;
/// let at = |vlf, block, slot| Lsn::from_parts(vlf, block, slot);
/// assert_eq!(lsn_distance(at(0x27, 0x758, 5), at(0x27, 0x758, 3)), 2);
/// assert_eq!(lsn_distance(at(0x27, 0x759, 0), at(0x27, 0x758, 0)), 1 << 16);
/// assert_eq!(lsn_distance(at(0x28, 0, 0), at(0x27, 0, 0)), 1 << 48);
/// assert_eq!(lsn_distance(at(0x27, 0, 0), at(0x28, 0, 0)), 0);
/// ```
pub fn lsn_distance(max: Lsn, delivered: Lsn) -> u128 {
    fn value(lsn: Lsn) -> u128 {
        let mut wide = [0u8; 16];
        wide[6..].copy_from_slice(&lsn.to_bytes());
        u128::from_be_bytes(wide)
    }
    value(max).saturating_sub(value(delivered))
}

/// Polls `sys.fn_cdc_get_max_lsn()` of each of `databases` and sets
/// [`SOURCE_LSN_DISTANCE`] against the newest commit LSN `counters` saw delivered, and the
/// capture job's latest errors into [`CAPTURE_JOB_ERRORS`], until `stop` is cancelled.
pub fn spawn_mssql_lag(
    section: MssqlSection,
    databases: Vec<String>,
    counters: SinkCounters,
    every: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut conns: HashMap<String, ServerConnection> = HashMap::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            for database in &databases {
                let polled =
                    tokio::time::timeout(POLL_TIMEOUT, max_lsn(&section, database, &mut conns))
                        .await;
                let max = match polled {
                    Ok(Ok(max)) => max,
                    Ok(Err(e)) => {
                        tracing::debug!(%database, error = %e, "cannot read the max LSN");
                        conns.remove(database);
                        continue;
                    }
                    Err(_) => {
                        tracing::debug!(%database, "reading the max LSN timed out");
                        conns.remove(database);
                        continue;
                    }
                };
                if let (Some(max), Some(delivered)) = (max, counters.delivered_lsn(database)) {
                    metrics::gauge!(
                        SOURCE_LSN_DISTANCE,
                        "pipeline" => counters.pipeline().to_string(),
                        "database" => database.clone()
                    )
                    .set(lsn_distance(max, delivered) as f64);
                }
                let Some(conn) = conns.get_mut(database) else {
                    continue;
                };
                match tokio::time::timeout(POLL_TIMEOUT, conn.capture_job_errors()).await {
                    Ok(Ok(errors)) => metrics::gauge!(
                        CAPTURE_JOB_ERRORS,
                        "pipeline" => counters.pipeline().to_string(),
                        "database" => database.clone()
                    )
                    .set(errors.len() as f64),
                    Ok(Err(e)) => {
                        tracing::debug!(%database, error = %e, "cannot read the capture job's errors");
                    }
                    Err(_) => {
                        tracing::debug!(%database, "reading the capture job's errors timed out");
                        conns.remove(database);
                    }
                }
            }
        }
    });
}

async fn max_lsn(
    section: &MssqlSection,
    database: &str,
    conns: &mut HashMap<String, ServerConnection>,
) -> Result<Option<Lsn>, String> {
    let conn = match conns.entry(database.to_string()) {
        Entry::Occupied(open) => open.into_mut(),
        Entry::Vacant(slot) => slot.insert(check::connect(section, database).await?),
    };
    let rows = conn
        .rows("SELECT sys.fn_cdc_get_max_lsn()")
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .first()
        .and_then(|r| r.get::<&[u8], _>(0).and_then(Lsn::from_bytes))
        .filter(|l| *l != Lsn::ZERO))
}

/// Polls the high watermarks of every partition of `topics` and the committed offsets of
/// `group`, and sets [`CONSUMER_LAG`] per partition, until `stop` is cancelled.
pub fn spawn_consumer_lag(
    kafka: &KafkaConfig,
    group: &str,
    topics: Vec<String>,
    counters: SinkCounters,
    every: Duration,
    stop: CancellationToken,
) -> Result<(), String> {
    let mut config = kafka.client_config();
    // Its own client that never joins the group: it only reads the group's committed offsets.
    config
        .remove("group.instance.id")
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config
        .create()
        .map_err(|e| format!("cannot create the consumer-lag client: {e}"))?;
    let consumer = Arc::new(consumer);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let (consumer, topics) = (Arc::clone(&consumer), topics.clone());
            let lags = tokio::task::spawn_blocking(move || consumer_lags(&consumer, &topics)).await;
            match lags {
                Ok(Ok(lags)) => {
                    for (topic, partition, lag) in lags {
                        metrics::gauge!(
                            CONSUMER_LAG,
                            "pipeline" => counters.pipeline().to_string(),
                            "topic" => topic,
                            "partition" => partition.to_string()
                        )
                        .set(lag as f64);
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the consumer lag"),
                Err(e) => tracing::debug!(error = %e, "the consumer-lag poll failed"),
            }
        }
    });
    Ok(())
}

/// `(topic, partition, high watermark − committed)` of every partition of `topics`.
fn consumer_lags(
    consumer: &BaseConsumer,
    topics: &[String],
) -> Result<Vec<(String, i32, i64)>, String> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), POLL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        for t in metadata.topics() {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    let committed = consumer
        .committed_offsets(tpl, POLL_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut lags = Vec::new();
    for element in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(element.topic(), element.partition(), POLL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let from = match element.offset() {
            Offset::Offset(at) => at,
            _ => low,
        };
        lags.push((
            element.topic().to_string(),
            element.partition(),
            (high - from).max(0),
        ));
    }
    Ok(lags)
}
