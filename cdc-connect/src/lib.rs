//! `cdc`: run a CDC pipeline as a service from one TOML file, or from the Kafka Connect
//! connector configurations a team already has (Debezium SQL Server source, Confluent S3
//! sink), without a JVM.
//!
//! The binary is a thin shell over this library, which is built only on the public API of
//! cdc-core, cdc-mssql, kafka-io and s3-sink:
//! - [`config`]: the pipeline file, `${ENV}` substitution, errors naming the key and the
//!   closest valid one, secrets redacted;
//! - [`connect`]: Kafka Connect properties → pipeline file, with warnings and errors;
//! - [`wiring`]: pipeline file → source, sink and offset store;
//! - [`metering`], [`lag`] and [`ops`]: Prometheus metrics, `/metrics`, `/health`, `/ready`;
//! - [`signals`]: Debezium's signals to a SQL Server source, from `POST /signals` and the
//!   Kafka signal topic;
//! - [`progress`]: snapshot progress bars, on a terminal only;
//! - [`check`]: `cdc check`, what would be captured and every problem with its fix;
//! - [`run`]: the run loop with graceful stop on SIGTERM/SIGINT;
//! - `error_text`: an error and its causes as one line, for `run`'s log and `check`.

pub mod check;
pub mod config;
pub mod connect;
mod error_text;
pub mod lag;
pub mod metering;
pub mod ops;
pub mod progress;
pub mod run;
pub mod signals;
pub mod wiring;

pub use config::{ConfigError, PipelineFile};
