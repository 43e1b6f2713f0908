//! SQL Server → Kafka: one topic per table (`<server>.<db>.<schema>.<table>`), keyed by the
//! primary key, Debezium JSON values, a tombstone after each delete, idempotent producer.
//!
//! `cargo run -p cdc-examples --bin mssql_to_kafka [-- --mssql ADO --brokers HOST:PORT]`

use cdc_core::{DebeziumJson, FileOffsetStore, Pipeline, PipelineConfig};
use cdc_examples::sample::{self, SampleServer};
use cdc_examples::{Result, args::Args, init_logging, show, wait_for_events};
use cdc_mssql::{MssqlConfig, MssqlSource};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::{KafkaConfig, KafkaSink};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "mssql_to_kafka [--mssql ADO] [--brokers HOST:PORT] [--rounds N]";

#[tokio::main]
async fn main() -> Result {
    init_logging();
    let args = Args::parse(USAGE, &["mssql", "brokers", "rounds"])?;
    let server = match args.get("mssql") {
        Some(ado) => SampleServer::external(ado),
        None => SampleServer::embedded().await?,
    };
    // Without --brokers, librdkafka's mock cluster: the real protocol on 127.0.0.1.
    let mock = if args.get("brokers").is_none() {
        Some(MockCluster::new(1)?)
    } else {
        None
    };
    let brokers = mock.as_ref().map_or_else(
        || args.get("brokers").unwrap_or_default().to_string(),
        MockCluster::bootstrap_servers,
    );

    let source = MssqlSource::new(
        MssqlConfig::from_ado_string(&server.ado)?
            .topic_prefix("shop-server")
            .build()?,
    );
    let sink = KafkaSink::builder(
        KafkaConfig::new(&brokers),
        Arc::new(DebeziumJson::with_schema()),
    )
    .build()?;
    let pipeline = Pipeline::new(
        PipelineConfig::new("mssql-to-kafka").flush_interval(Some(Duration::from_millis(200))),
        source,
        sink,
        FileOffsetStore::new(
            std::env::temp_dir().join(format!("mssql_to_kafka-{}.json", std::process::id())),
        ),
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
    let delivered = wait_for_events(&metrics, workload.changes, Duration::from_secs(60)).await;
    shutdown.cancel();
    let report = run.await??;
    println!(
        "{delivered} events delivered to {brokers}; checkpoint {}",
        show(&report.checkpoint)
    );
    if delivered < workload.changes {
        return Err(format!("expected at least {} events", workload.changes).into());
    }
    Ok(())
}
