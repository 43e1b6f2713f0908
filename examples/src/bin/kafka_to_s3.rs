//! Kafka → S3: a consumer group reads Debezium JSON topics and writes NDJSON files in the
//! Kafka Connect layout (`<topic>/partition=N/<topic>+N+<offset>.json`). Offsets are
//! committed only once the files holding them are uploaded.
//!
//! `cargo run -p cdc-examples --bin kafka_to_s3 [-- --brokers HOST:PORT --topic T --s3 URL]`

use cdc_core::testing::{MemorySource, sample_events};
use cdc_core::{DebeziumJson, EventCodec, MemoryOffsetStore, Pipeline, PipelineConfig};
use cdc_examples::{Result, args::Args, fresh_local_url, init_logging, wait_for_events};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource};
use s3_sink::{Format, NdjsonOptions, S3Sink};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "kafka_to_s3 [--brokers HOST:PORT --topic T] [--s3 URL]";
const EMBEDDED_EVENTS: usize = 500;

#[tokio::main]
async fn main() -> Result {
    init_logging();
    let args = Args::parse(USAGE, &["brokers", "topic", "s3"])?;
    let codec: Arc<dyn EventCodec> = Arc::new(DebeziumJson::with_schema());
    let mock = if args.get("brokers").is_none() {
        Some(MockCluster::new(1)?)
    } else {
        None
    };
    let (kafka, topic) = match &mock {
        Some(mock) => {
            // Embedded: fill a topic with sample change events first.
            let topic = "demo.demo.dbo.items".to_string();
            mock.create_topic(&topic, 2, 1)?;
            let kafka = KafkaConfig::new(mock.bootstrap_servers());
            let fill = Pipeline::new(
                PipelineConfig::new("fill"),
                MemorySource::new("samples", sample_events("samples", EMBEDDED_EVENTS))
                    .ending_when_drained(),
                KafkaSink::builder(kafka.clone(), Arc::clone(&codec)).build()?,
                MemoryOffsetStore::new(),
            )?;
            fill.run(CancellationToken::new()).await?;
            (kafka, topic)
        }
        None => (
            KafkaConfig::new(args.get("brokers").unwrap_or_default()),
            args.get("topic")
                .ok_or("--topic is required with --brokers")?
                .to_string(),
        ),
    };
    let url = match args.get("s3") {
        Some(url) => url.to_string(),
        None => fresh_local_url("demo-output/kafka_to_s3")?,
    };

    let source = KafkaSource::builder(kafka, codec, "kafka-to-s3")
        .topic(topic)
        .build()?;
    let sink = S3Sink::builder()
        .url(url.clone())
        .format(Format::Ndjson(NdjsonOptions::default()))
        .build()?;
    let pipeline = Pipeline::new(
        PipelineConfig::new("kafka-to-s3").flush_interval(Some(Duration::from_secs(1))),
        source,
        sink,
        MemoryOffsetStore::new(), // the consumer group's committed offsets are the checkpoint
    )?;
    let metrics = pipeline.metrics();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));
    let expected = if mock.is_some() {
        EMBEDDED_EVENTS as u64
    } else {
        1
    };
    let written = wait_for_events(&metrics, expected, Duration::from_secs(60)).await;
    shutdown.cancel();
    run.await??;
    println!("{written} events written to {url}");
    if written < expected {
        return Err(format!("expected {expected} events").into());
    }
    Ok(())
}
