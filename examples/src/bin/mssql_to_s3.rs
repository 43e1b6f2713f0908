//! SQL Server → Parquet files, directly (no Kafka): snapshot, then stream, with a file
//! checkpoint so a restart resumes where it stopped.
//!
//! `cargo run -p cdc-examples --bin mssql_to_s3 [-- --mssql ADO --s3 s3://bucket/prefix]`

use cdc_core::{FileOffsetStore, Pipeline, PipelineConfig};
use cdc_examples::sample::{self, SampleServer};
use cdc_examples::{Result, args::Args, fresh_local_url, init_logging, show, wait_for_events};
use cdc_mssql::{MssqlConfig, MssqlSource};
use s3_sink::{Format, ParquetOptions, S3Sink};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "mssql_to_s3 [--mssql ADO] [--s3 URL] [--rounds N]";

#[tokio::main]
async fn main() -> Result {
    init_logging();
    let args = Args::parse(USAGE, &["mssql", "s3", "rounds"])?;
    let server = match args.get("mssql") {
        Some(ado) => SampleServer::external(ado),
        None => SampleServer::embedded().await?,
    };
    let url = match args.get("s3") {
        Some(url) => url.to_string(),
        None => fresh_local_url("demo-output/mssql_to_s3/files")?,
    };
    // The checkpoint belongs to the server: a new embedded simulator starts a new one.
    let offsets = match &server.simulator {
        Some(_) => std::env::temp_dir().join(format!("mssql_to_s3-{}.json", std::process::id())),
        None => "mssql_to_s3.offsets.json".into(),
    };

    // The source: every CDC-enabled table of the database, snapshot first.
    let source = MssqlSource::new(
        MssqlConfig::from_ado_string(&server.ado)?
            .topic_prefix("shop-server")
            .build()?,
    );
    // The sink: Parquet (zstd, typed columns) in the Kafka Connect layout, named by LSN.
    let sink = S3Sink::builder()
        .url(url.clone())
        .format(Format::Parquet(ParquetOptions::default()))
        .build()?;
    let pipeline = Pipeline::new(
        PipelineConfig::new("mssql-to-s3").flush_interval(Some(Duration::from_secs(1))),
        source,
        sink,
        FileOffsetStore::new(offsets),
    )?;
    let metrics = pipeline.metrics();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));

    let mut conn = server.connect().await?;
    let workload = sample::run_workload(
        &mut conn,
        args.number("rounds", 10)?,
        Duration::from_millis(50),
    )
    .await?;
    let seen = wait_for_events(&metrics, workload.changes, Duration::from_secs(60)).await;
    shutdown.cancel();
    let report = run.await??;
    println!(
        "{seen} events written to {url}; checkpoint {}",
        show(&report.checkpoint)
    );
    if seen < workload.changes {
        return Err(format!("expected at least {} events", workload.changes).into());
    }
    Ok(())
}
