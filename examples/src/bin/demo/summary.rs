//! The closing summary: what arrived, where, how fast, and how to query it.

use crate::observe::Observed;
use cdc_core::Op;
use futures::StreamExt;
use object_store::{ObjectStore, path::Path};
use std::sync::Arc;

/// The objects under `prefix`, with their sizes.
pub(crate) async fn files(store: Arc<dyn ObjectStore>, prefix: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut listing = store.list(Some(prefix));
    while let Some(Ok(meta)) = listing.next().await {
        files.push((meta.location.to_string(), meta.size));
    }
    files.sort();
    files
}

/// The `p`th percentile of `sorted` in ms, or `n/a` for an empty sample.
fn percentile(sorted: &[i64], p: f64) -> String {
    if sorted.is_empty() {
        return "n/a".into();
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    format!("{} ms", sorted[rank.min(sorted.len() - 1)])
}

/// Prints the summary to stdout.
pub(crate) fn print(
    observed: &Observed,
    files: &[(String, u64)],
    json_files: &[(String, u64)],
    duckdb_glob: &str,
) {
    println!("\n=== summary ===");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8}",
        "table", "read(r)", "insert", "update", "delete"
    );
    let tables: std::collections::BTreeSet<&String> =
        observed.counts.keys().map(|(t, _)| t).collect();
    let count = |t: &String, op| observed.counts.get(&(t.clone(), op)).copied().unwrap_or(0);
    for table in tables {
        println!(
            "{:<12} {:>8} {:>8} {:>8} {:>8}",
            table,
            count(table, Op::Read),
            count(table, Op::Create),
            count(table, Op::Update),
            count(table, Op::Delete)
        );
    }
    let total: u64 = observed.counts.values().sum();
    let bytes = |files: &[(String, u64)]| files.iter().map(|(_, b)| b).sum::<u64>();
    println!(
        "events: {total}; files written: {} Parquet ({} bytes), {} NDJSON ({} bytes)",
        files.len(),
        bytes(files),
        json_files.len(),
        bytes(json_files)
    );
    if let Some((lo, hi)) = observed.lsn_range {
        println!("LSN range: {lo} .. {hi}");
    }
    let mut latencies: Vec<i64> = observed.latencies_ms.iter().map(|(_, l)| *l).collect();
    latencies.sort_unstable();
    println!(
        "commit-to-file latency: p50 {}, p99 {} ({} streamed events)",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.len()
    );
    // Steady state: events committed after the first file was durable, so the consumer
    // groups had joined and the topics existed.
    let mut steady: Vec<i64> = observed
        .latencies_ms
        .iter()
        .filter(|(committed, _)| observed.first_durable_ms.is_some_and(|f| *committed > f))
        .map(|(_, l)| *l)
        .collect();
    steady.sort_unstable();
    println!(
        "commit-to-file latency, steady state: p50 {}, p99 {} ({} events committed after the first file was durable)",
        percentile(&steady, 50.0),
        percentile(&steady, 99.0),
        steady.len()
    );
    println!("\nquery the files with DuckDB:");
    println!(
        "  duckdb -c \"SELECT __op, count(*) FROM read_parquet('{duckdb_glob}') GROUP BY ALL ORDER BY ALL\""
    );
}
