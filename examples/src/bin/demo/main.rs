//! The embedded demo: SQL Server → Kafka → Parquet and NDJSON files, in one process, with
//! nothing installed. A simulated SQL Server runs a live workload; its changes stream through
//! a Kafka mock cluster into `./demo-output/lake`. Real services replace the embedded ones
//! with `--mssql`, `--brokers` and `--s3`.

mod observe;
mod summary;

use cdc_core::{DebeziumJson, EventCodec, FileOffsetStore, Pipeline, PipelineConfig};
use cdc_examples::sample::{self, SampleServer};
use cdc_examples::{Result, args::Args, init_logging};
use cdc_mssql::{MssqlConfig, MssqlSource};
use kafka_io::rdkafka::mocking::MockCluster;
use kafka_io::{KafkaConfig, KafkaSink, KafkaSource, SaslMechanism, Secret, Security, Tls};
use observe::{Observe, Observed};
use s3_sink::{Format, NdjsonOptions, ParquetOptions, S3Sink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const USAGE: &str = "demo — SQL Server CDC → Kafka → Parquet/NDJSON, embedded by default

  --rounds N            workload transactions (default 30)
  --out DIR             local output directory (default ./demo-output)
  --mssql ADO           a real SQL Server (ADO.NET connection string); its database must hold
                        the sample schema (see examples/src/sample.rs)
  --brokers HOST:PORT   a real Kafka cluster instead of the embedded mock cluster
  --sasl-mechanism M    SCRAM-SHA-512 or PLAIN (SASL_SSL), with --sasl-username/--sasl-password
  --ca-file PEM         CA certificate for the brokers' TLS
  --s3 URL              write to s3://bucket/prefix (AWS_* environment) instead of DIR/lake";

const FLAGS: &[&str] = &[
    "rounds",
    "out",
    "mssql",
    "brokers",
    "sasl-mechanism",
    "sasl-username",
    "sasl-password",
    "ca-file",
    "s3",
];
const SERVER_NAME: &str = "demo";
const MARKER: &str = ".cdc-demo-output";

/// Empties a previous run's output (only a directory this demo created, recognised by its
/// marker file), so offsets of an old simulator are not resumed.
fn prepare(out: &Path) -> Result<PathBuf> {
    if out.join(MARKER).exists() {
        std::fs::remove_dir_all(out)?;
    } else if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        return Err(format!(
            "{} exists and was not made by the demo; choose another --out",
            out.display()
        )
        .into());
    }
    std::fs::create_dir_all(out.join("lake"))?;
    std::fs::write(out.join(MARKER), b"")?;
    Ok(std::fs::canonicalize(out)?)
}

fn kafka_security(args: &Args) -> Result<Security> {
    let tls = args
        .get("ca-file")
        .map_or_else(Tls::default, Tls::with_ca_file);
    Ok(match args.get("sasl-mechanism") {
        None if args.get("ca-file").is_some() => Security::Ssl(tls),
        None => Security::Plaintext,
        Some(m) => Security::SaslSsl {
            mechanism: match m {
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                "PLAIN" => SaslMechanism::Plain,
                other => return Err(format!("--sasl-mechanism: unknown {other}").into()),
            },
            username: args
                .get("sasl-username")
                .ok_or("--sasl-username is required with SASL")?
                .to_string(),
            password: Secret::new(
                args.get("sasl-password")
                    .ok_or("--sasl-password is required with SASL")?,
            ),
            tls,
        },
    })
}

#[tokio::main]
async fn main() -> Result {
    init_logging();
    let args = Args::parse(USAGE, FLAGS)?;
    let rounds = args.number("rounds", 30)?;
    let out = prepare(Path::new(args.get("out").unwrap_or("demo-output")))?;

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
            // The mock's group coordinator holds a join for `session.timeout.ms - 1 s`: keep
            // it short so the consumers start promptly.
            KafkaConfig::new(mock.bootstrap_servers())
                .set("session.timeout.ms", "3000")
                .set("heartbeat.interval.ms", "300")
        }
        (None, brokers) => {
            KafkaConfig::new(brokers.unwrap_or_default()).security(kafka_security(&args)?)
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
            .server_name(SERVER_NAME)
            .poll_interval(Duration::from_millis(100))
            .build()?,
    );
    let to_kafka = Pipeline::new(
        PipelineConfig::new("sqlserver-to-kafka").flush_interval(Some(Duration::from_millis(200))),
        source,
        KafkaSink::builder(kafka.clone(), Arc::clone(&codec)).build()?,
        FileOffsetStore::new(out.join("offsets-sqlserver.json")),
    )?;
    let consumer = |group: &str| -> Result<KafkaSource> {
        let mut builder = KafkaSource::builder(kafka.clone(), Arc::clone(&codec), group);
        for topic in &topics {
            builder = builder.topic(topic.clone());
        }
        Ok(builder.build()?)
    };
    let parquet = S3Sink::builder()
        .url(format!("{lake}/parquet"))
        .format(Format::Parquet(ParquetOptions::default()))
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
        .build()?;
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
        let everything = a.events_written >= workload.changes
            && durable() == a.events_written
            && c.events_written == a.events_written;
        if everything && b.events_written == a.events_written {
            break;
        }
        if runs.iter().any(|r| r.is_finished()) || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!();
    shutdown.cancel();
    for run in runs {
        run.await??;
    }
    let files = summary::files(store, &prefix).await;
    let observed = observed.lock().unwrap_or_else(PoisonError::into_inner);
    summary::print(
        &observed,
        &files,
        &format!("{}/lake/parquet/**/*.parquet", out.display()),
    );
    let total: u64 = observed.counts.values().sum();
    // For scripts (CI compares it with what DuckDB reads): totals and where the files are.
    std::fs::write(
        out.join("summary.json"),
        format!(
            "{{\"events\": {total}, \"files\": {}, \"parquet\": \"{}/lake/parquet\", \"json\": \"{}/lake/json\"}}\n",
            files.len(),
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
