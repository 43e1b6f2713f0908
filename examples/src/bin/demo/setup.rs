//! Command line, output directory and Kafka settings of the demo.

use cdc_examples::Result;
use cdc_examples::args::Args;
use kafka_io::{KafkaConfig, SaslMechanism, Secret, Security, Tls};
use std::path::{Path, PathBuf};

pub(crate) const USAGE: &str = "demo — SQL Server CDC → Kafka → Parquet/NDJSON, embedded by default

  --rounds N            workload transactions (default 30)
  --out DIR             local output directory (default ./demo-output)
  --mssql ADO           a real SQL Server (ADO.NET connection string); its database must hold
                        the sample schema (see examples/src/sample.rs)
  --brokers HOST:PORT   a real Kafka cluster instead of the embedded mock cluster
  --sasl-mechanism M    SCRAM-SHA-512 or PLAIN (SASL_SSL), with --sasl-username/--sasl-password
  --ca-file PEM         CA certificate for the brokers' TLS
  --s3 URL              write to s3://bucket/prefix (AWS_* environment) instead of DIR/lake";

pub(crate) const FLAGS: &[&str] = &[
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
const MARKER: &str = ".cdc-demo-output";

/// Empties a previous run's output (only a directory this demo created, recognised by its
/// marker file), so offsets of an old simulator are not resumed.
pub(crate) fn prepare(out: &Path) -> Result<PathBuf> {
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

pub(crate) fn kafka_security(args: &Args) -> Result<Security> {
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

/// The consumers' settings: on the mock cluster, whose group coordinator holds a join for
/// `session.timeout.ms - 1 s`, a short session so the consumers start promptly.
pub(crate) fn consumer_config(kafka: &KafkaConfig, mock: bool) -> KafkaConfig {
    if mock {
        kafka
            .clone()
            .set("session.timeout.ms", "3000")
            .set("heartbeat.interval.ms", "300")
    } else {
        kafka.clone()
    }
}
