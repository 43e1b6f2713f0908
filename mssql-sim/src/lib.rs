//! A SQL Server change data capture simulator that speaks TDS 7.4.
//!
//! Start one with [`Simulator::start`], point a TDS client (tiberius, FreeTDS) at
//! [`Simulator::addr`] and log in as `sa`. Tables live in memory; `sys.sp_cdc_enable_db`,
//! `sys.sp_cdc_enable_table`, `sys.sp_cdc_scan` and `cdc.fn_cdc_get_all_changes_<ci>`
//! behave like SQL Server's, so a CDC reader can be tested over the real wire protocol.
//!
//! Public surface: [`Simulator`] and its [`SimConfig`], [`Faults`] to inject failures,
//! [`Scenario`] scripts, and the errors [`SimError`] / [`SqlError`]. Everything else is the
//! simulator's inside, listed here in dependency order (each module uses only those above it):
//!
//! - `error`: the crate's errors.
//! - `value`: SQL types and values, conversion.
//! - `engine`: in-memory tables with row versions for SNAPSHOT isolation, transactions, the
//!   transaction log and its LSNs.
//! - `cdc`: CDC state beside the engine (`state`), the capture job (`job`), the
//!   `sp_cdc_*` procedures (`capture`).
//! - `tds`: the wire protocol (packets, PRELOGIN, LOGIN7, tokens, type encodings, RPC).
//! - `sql`: parsing with sqlparser's MsSqlDialect (plus the few T-SQL forms it does not
//!   parse: `EXEC` with named arguments, `ALTER COLUMN`, `ALTER DATABASE ... SET`) and
//!   execution (queries, DML, DDL, transactions, catalog views, functions, system procedures,
//!   and CDC's SQL face: the `fn_cdc_*` functions and change-table paging).
//! - `tls`: TLS 1.2 inside PRELOGIN with a self-signed certificate (full or login-only).
//! - `faults`: fault injection, also reachable as `EXEC sim.fault`.
//! - `scenario`: `.sql` scripts split at `GO`.
//! - `server`: the listener, connection handling and the capture job's timer.

mod cdc;
mod engine;
mod error;
mod faults;
mod scenario;
mod server;
mod sql;
mod tds;
mod tls;
mod value;

pub use error::{SimError, SqlError};
pub use faults::Faults;
pub use scenario::Scenario;
pub use server::{SimConfig, Simulator};
