//! A SQL Server change data capture simulator that speaks TDS 7.4.
//!
//! Start one with [`Simulator::start`], point a TDS client (tiberius, FreeTDS) at
//! [`Simulator::addr`] and log in as `sa`. Tables live in memory; `sys.sp_cdc_enable_db`,
//! `sys.sp_cdc_enable_table`, `sys.sp_cdc_scan` and `cdc.fn_cdc_get_all_changes_<ci>`
//! behave like SQL Server's, so a CDC reader can be tested over the real wire protocol.
//!
//! Contents:
//! - [`server`]: the listener, connection handling and the capture job ([`Simulator`], [`SimConfig`]).
//! - `tds`: the wire protocol (packets, PRELOGIN, LOGIN7, tokens, type encodings, RPC).
//! - `tls`: TLS 1.2 inside PRELOGIN with a self-signed certificate (full or login-only).
//! - `sql`: parsing with sqlparser's MsSqlDialect (plus the few T-SQL forms it does not
//!   parse: `EXEC` with named arguments, `ALTER COLUMN`, `ALTER DATABASE ... SET`) and
//!   execution (queries, DML, DDL, catalog views, functions, system procedures).
//! - `engine`: in-memory tables with row versions for SNAPSHOT isolation.
//! - [`cdc`]: LSNs, capture instances, change tables, `fn_cdc_*` functions.
//! - [`faults`]: fault injection ([`Faults`]), also reachable as `EXEC sim.fault`.
//! - [`scenario`]: `.sql` scripts split at `GO`.
//! - [`value`]: SQL types and values; [`error`]: the crate's errors.

pub mod cdc;
mod engine;
pub mod error;
pub mod faults;
pub mod scenario;
pub mod server;
mod sql;
mod tds;
mod tls;
pub mod value;

pub use engine::log::Lsn;
pub use error::{SimError, SqlError};
pub use faults::Faults;
pub use scenario::{Scenario, split_batches};
pub use server::{SimConfig, Simulator};
