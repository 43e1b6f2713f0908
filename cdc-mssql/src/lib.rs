//! SQL Server change data capture for the cdc-core pipeline: what Debezium's SQL Server
//! connector does, as a library on tiberius.
//!
//! [`MssqlSource`] reads the change tables (`cdc.<capture_instance>_CT`) of one or more
//! databases. Each poll reads a window of committed transactions from
//! `cdc.lsn_time_mapping` (at most [`max_iteration_transactions`](MssqlConfigBuilder::max_iteration_transactions)),
//! pages through the capture instances' rows in clustered-index order, merges tables into
//! commit order, pairs update images, and numbers events inside their transaction so that a
//! stored [`LsnPosition`] resumes exactly: no duplicate, no gap.
//! Snapshots read every table inside one transaction and hand over to streaming at the LSN
//! read inside it. Cleaned-up positions are a typed error (or a new snapshot), never a silent
//! skip; a second capture instance of a table is switched to at its start LSN with a schema
//! change event.
//!
//! - [`MssqlConfig`]: connection (ADO.NET string or builder), tables, snapshot, polling, TLS;
//! - [`MssqlSource`]: the [`ChangeSource`](cdc_core::ChangeSource);
//! - [`Error`]: what can go wrong, with what to run to fix it;
//! - [`CaptureJobError`]: why SQL Server's capture job fails, when it does
//!   ([`ServerConnection::capture_job_errors`]; the reader logs them while nothing arrives);
//! - [`Lsn`]: SQL Server's log sequence number (re-exported from cdc-core).
//!
//! Inside, one job per module: `config` (the configuration and its builder), `ado`
//! (connection strings), `connection` and `handshake` (reaching the server, reconnecting),
//! `capture_job` (the capture job's errors),
//! `catalog` (capture instances, columns, keys), `query` (the reader's SQL), `types` (driver
//! values to cdc-core values), `snapshot` (the initial snapshot), `stream` (change-table
//! windows in commit order), `incremental` (incremental and blocking snapshots, signals),
//! `source` (the [`ChangeSource`](cdc_core::ChangeSource) over them), `error`.

mod ado;
mod capture_job;
mod catalog;
mod config;
mod connection;
mod error;
mod handshake;
mod incremental;
mod query;
mod server_connection;
mod snapshot;
mod source;
mod stream;
mod types;

pub use capture_job::CaptureJobError;
pub use cdc_core::{Lsn, LsnPosition};
pub use config::{
    Encryption, MssqlConfig, MssqlConfigBuilder, NewTableSnapshot, RetentionPolicy, Secret,
    SnapshotIsolation, SnapshotMode, table_pattern_matches,
};
pub use error::Error;
pub use handshake::NetworkStep;
pub use incremental::{
    AdditionalCondition, ExecuteSnapshot, Signal, SignalError, SnapshotSignals, SnapshotType,
    StopSnapshot,
};
pub use server_connection::ServerConnection;
pub use snapshot::{SnapshotProgress, TableProgress};
pub use source::MssqlSource;
