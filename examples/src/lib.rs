//! Shared pieces of the example programs: the embedded defaults (a simulated SQL Server with a
//! sample schema and a live workload) and a small flag parser, so each example shows only the
//! library calls it is about.

pub mod args;
pub mod sample;

/// What the examples return: any error, printed with its chain.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tiberius=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Waits until `metrics` counts at least `events` written and nothing more arrived for half
/// a second (or `timeout` passes); returns the count reached.
pub async fn wait_for_events(
    metrics: &cdc_core::PipelineMetrics,
    events: u64,
    timeout: std::time::Duration,
) -> u64 {
    let started = std::time::Instant::now();
    let (mut last, mut quiet_since) = (u64::MAX, std::time::Instant::now());
    loop {
        let written = metrics.snapshot().events_written;
        if written != last {
            (last, quiet_since) = (written, std::time::Instant::now());
        }
        let settled = quiet_since.elapsed() >= std::time::Duration::from_millis(500);
        if (written >= events && settled) || started.elapsed() > timeout {
            return written;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A `file://` URL for a local directory, emptied first: the embedded defaults start a new
/// simulator or mock cluster whose positions begin again, and the sink rightly refuses to
/// replace an object of a previous run with different content.
pub fn fresh_local_url(dir: &str) -> Result<String> {
    if std::path::Path::new(dir).exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(format!("file://{}", std::fs::canonicalize(dir)?.display()))
}

/// A checkpoint as text, one `lane position` per lane.
pub fn show(checkpoint: &cdc_core::Checkpoint) -> String {
    checkpoint
        .positions()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
