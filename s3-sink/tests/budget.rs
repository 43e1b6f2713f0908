//! One memory budget across 1,000 open partitions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, Row, Sink, Value};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{FieldPartitioner, Format, S3Sink};
use std::collections::HashSet;
use std::sync::Arc;

/// 10,000 events spread over ids 0..1000, so 1,000 partitions are open at once.
fn events() -> Vec<ChangeEvent> {
    sample_events("budget", 10_000)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            let id = i32::try_from(i % 1000).unwrap();
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                let mut values = row.values().to_vec();
                values[0] = Value::I32(id);
                values[1] = Value::String(format!("partition {id} event {i} {}", "x".repeat(200)));
                *row = Row::new(values);
            }
            e
        })
        .collect()
}

/// Resident set size of this process, from /proc.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

async fn run(format: Format, budget: usize) -> (s3_sink::SinkStats, Arc<dyn ObjectStore>, u64) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "budget")
        .format(format)
        .partitioner(FieldPartitioner::new(["id"]))
        .memory_budget(budget)
        .part_size(1024 * 1024)
        .build()
        .unwrap();
    let events = events();
    let before = rss_bytes();
    let mut max_used = 0;
    for chunk in events.chunks(100) {
        sink.write(chunk).await.unwrap();
        max_used = max_used.max(sink.stats().buffered_bytes);
        assert!(
            sink.stats().buffered_bytes <= budget,
            "over budget after a write"
        );
    }
    let rss_growth = rss_bytes().saturating_sub(before);
    sink.flush().await.unwrap();
    (sink.stats(), store, rss_growth)
}

/// One test, so no other test in this binary allocates while resident memory is measured.
#[tokio::test]
async fn a_thousand_open_partitions_stay_inside_the_budget() {
    // Unconstrained first, in a fresh process: nothing is uploaded before the flush, so the
    // resident growth is the 1,000 open files alone, which the accounting must track.
    let (stats, _, rss) = run(Format::parquet(), 256 * 1024 * 1024).await;
    assert_eq!((stats.closed_by_budget, stats.closed_by_flush), (0, 1000));
    let accounted = stats.peak_buffered_bytes as u64;
    println!("1,000 open Parquet files: peak accounted {accounted} B, RSS growth {rss} B");
    assert!(
        accounted * 2 > rss && rss * 2 > accounted,
        "accounting {accounted} B vs measured {rss} B"
    );

    for (format, budget) in [
        (Format::parquet(), 16 * 1024 * 1024),
        (Format::ndjson(), 2 * 1024 * 1024),
    ] {
        let (stats, store, rss) = run(format.clone(), budget).await;
        println!(
            "{format:?}: budget {budget} B, peak accounted {} B, budget closes {}, files {}, RSS growth {rss} B",
            stats.peak_buffered_bytes, stats.closed_by_budget, stats.files_written
        );
        // The peak is taken after an append and before the closes it triggers, so it may pass
        // the budget by at most one event's growth.
        assert!(
            stats.peak_buffered_bytes <= budget + 64 * 1024,
            "peak {} over budget",
            stats.peak_buffered_bytes
        );
        assert!(stats.closed_by_budget > 0, "the budget forced closes");
        let positions = support::stored_positions(&store).await;
        let unique: HashSet<String> = positions.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            (positions.len(), unique.len()),
            (10_000, 10_000),
            "every event stored once"
        );
    }
}
