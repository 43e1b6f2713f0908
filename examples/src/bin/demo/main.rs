//! The embedded demo: SQL Server → Kafka → Parquet and NDJSON files, in one process, with
//! nothing installed. A simulated SQL Server runs a live workload; its changes stream through
//! a Kafka mock cluster into `./demo-output/lake`. Real services replace the embedded ones
//! with `--mssql`, `--brokers` and `--s3`.

mod observe;
mod progress;
mod setup;
mod summary;

use cdc_core::{DebeziumJson, EventCodec, FileOffsetStore, Pipeline, PipelineConfig};
use cdc_examples::sample::{self, SampleServer};
use cdc_examples::{Result, args::Args, init_logging};
use cdc_mssql::{MssqlConfig, MssqlSource};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource};
use observe::{Observe, Observed};
use s3_sink::{Format, NdjsonOptions, ParquetOptions, Rotation, S3Sink};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SERVER_NAME: &str = "demo";

#[tokio::main]
async fn main() -> Result {
    init_logging();
    let args = Args::parse(setup::USAGE, setup::FLAGS)?;
    let rounds = args.number("rounds", 30)?;
    let out = setup::prepare(Path::new(args.get("out").unwrap_or("demo-output")))?;

    let server = match args.get("mssql") {
        Some(ado) => SampleServer::external(ado),
        None => SampleServer::embedded().await?,
    };
    let topics: Vec<String> = ["customers", "orders"]
        .iter()
        .map(|t| format!("{SERVER_NAME}.{}.dbo.{t}", sample::DATABASE))
        .collect();
    let mock = match args.get("brokers") {
        Some(_) => None,
        None => Some(MockCluster::new(1)?),
    };
    let kafka = match (&mock, args.get("brokers")) {
        (Some(mock), _) => {
            for topic in &topics {
                mock.create_topic(topic, 3, 1)?;
            }
            KafkaConfig::new(mock.bootstrap_servers())
        }
        (None, brokers) => {
            KafkaConfig::new(brokers.unwrap_or_default()).security(setup::kafka_security(&args)?)
        }
    };
    let lake = args.get("s3").map_or_else(
        || format!("file://{}", out.join("lake").display()),
        str::to_string,
    );
    println!(
        "SQL Server: {}",
        if server.simulator.is_some() {
            "embedded simulator"
        } else {
            "external"
        }
    );
    println!("Kafka:      {}", kafka.bootstrap_servers());
    println!("files:      {lake}");

    let codec: Arc<dyn EventCodec> = Arc::new(DebeziumJson::with_schema());
    let source = MssqlSource::new(
        MssqlConfig::from_ado_string(&server.ado)?
            .topic_prefix(SERVER_NAME)
            .poll_interval(Duration::from_millis(100))
            .build()?,
    );
    let to_kafka = Pipeline::new(
        PipelineConfig::new("sqlserver-to-kafka").flush_interval(Some(Duration::from_millis(200))),
        source,
        KafkaSink::builder(kafka.clone(), Arc::clone(&codec)).build()?,
        FileOffsetStore::new(out.join("offsets-sqlserver.json")),
    )?;
    let consumer_config = setup::consumer_config(&kafka, mock.is_some());
    let consumer = |group: &str| -> Result<KafkaSource> {
        let mut builder = KafkaSource::builder(consumer_config.clone(), Arc::clone(&codec), group);
        for topic in &topics {
            builder = builder.topic(topic.clone());
        }
        Ok(builder.build()?)
    };
    // Files close by the rotation rule only (the pipeline's commits do not close them): a
    // half-second schedule keeps the demo's files near real time.
    let rotation = Rotation {
        schedule_interval: Some(Duration::from_millis(500)),
        ..Rotation::default()
    };
    let parquet = S3Sink::builder()
        .url(format!("{lake}/parquet"))
        .format(Format::Parquet(ParquetOptions::default()))
        .rotation(rotation.clone())
        .build()?;
    let (store, prefix) = (parquet.store(), parquet.prefix().clone());
    let observed = Arc::new(Mutex::new(Observed::default()));
    let to_parquet = Pipeline::new(
        PipelineConfig::new("kafka-to-parquet").flush_interval(Some(Duration::from_millis(500))),
        consumer("demo-parquet")?,
        Observe::new(parquet, Arc::clone(&observed)),
        FileOffsetStore::new(out.join("offsets-parquet.json")),
    )?;
    let json = S3Sink::builder()
        .url(format!("{lake}/json"))
        .format(Format::Ndjson(NdjsonOptions::default()))
        .rotation(rotation)
        .build()?;
    let (json_store, json_prefix) = (json.store(), json.prefix().clone());
    let to_json = Pipeline::new(
        PipelineConfig::new("kafka-to-json").flush_interval(Some(Duration::from_millis(500))),
        consumer("demo-json")?,
        json,
        FileOffsetStore::new(out.join("offsets-json.json")),
    )?;

    let metrics = [to_kafka.metrics(), to_parquet.metrics(), to_json.metrics()];
    let shutdown = CancellationToken::new();
    let runs = [
        tokio::spawn(to_kafka.run(shutdown.clone())),
        tokio::spawn(to_parquet.run(shutdown.clone())),
        tokio::spawn(to_json.run(shutdown.clone())),
    ];

    println!(
        "\nrunning {rounds} transactions of inserts, updates and deletes, then deleting customer 3 ..."
    );
    let mut conn = server.connect().await?;
    let workload = sample::run_workload(&mut conn, rounds, Duration::from_millis(100)).await?;
    let finished = || runs.iter().any(|r| r.is_finished());
    progress::until_arrived(&metrics, &observed, workload.changes, finished).await;
    println!();
    shutdown.cancel();
    for run in runs {
        run.await??;
    }
    let files = summary::files(store, &prefix).await;
    let json_files = summary::files(json_store, &json_prefix).await;
    let observed = observed.lock().unwrap_or_else(PoisonError::into_inner);
    summary::print(
        &observed,
        &files,
        &json_files,
        &format!("{}/lake/parquet/**/*.parquet", out.display()),
    );
    let total: u64 = observed.counts.values().sum();
    // For scripts (CI compares it with what DuckDB reads): totals and where the files are.
    std::fs::write(
        out.join("summary.json"),
        format!(
            "{{\"events\": {total}, \"files\": {}, \"json_files\": {}, \"parquet\": \"{}/lake/parquet\", \"json\": \"{}/lake/json\"}}\n",
            files.len(),
            json_files.len(),
            out.display(),
            out.display()
        ),
    )?;
    if total < workload.changes {
        return Err(format!(
            "only {total} of at least {} changes arrived",
            workload.changes
        )
        .into());
    }
    Ok(())
}
