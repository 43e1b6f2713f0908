//! The progress line, until every change has arrived in both sinks.

use crate::observe::Observed;
use cdc_core::PipelineMetrics;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Prints progress until the parquet leg holds as many durable events as SQL Server sent to
/// Kafka (at least `changes`) and the JSON leg wrote as many, or a pipeline stopped, or two
/// minutes passed. `metrics` are SQL Server→Kafka, Kafka→Parquet and Kafka→JSON.
pub(crate) async fn until_arrived(
    metrics: &[Arc<PipelineMetrics>; 3],
    observed: &Mutex<Observed>,
    changes: u64,
    finished: impl Fn() -> bool,
) {
    let durable = || {
        observed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts
            .values()
            .sum::<u64>()
    };
    let started = Instant::now();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut shown = String::new();
    loop {
        let [a, b, c] = metrics.each_ref().map(|m| m.snapshot());
        let line = format!(
            "  sqlserver→kafka {:>5} events | kafka→parquet {:>5} durable | kafka→json {:>5} written",
            a.events_written,
            durable(),
            c.events_written
        );
        if line != shown {
            // Redraw in place on a terminal; one line per change in a log.
            if terminal {
                print!("\r{line}")
            } else {
                println!("{line}")
            }
            let _ = std::io::Write::flush(&mut std::io::stdout());
            shown = line;
        }
        let sent = a.events_written;
        let arrived = sent >= changes
            && durable() == sent
            && b.events_written == sent
            && c.events_written == sent;
        if arrived || finished() || started.elapsed() > Duration::from_secs(120) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
