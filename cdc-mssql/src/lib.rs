//! SQL Server change data capture source for the cdc-core pipeline.
//!
//! This crate will hold the LSN-tracking reader on tiberius: catalog discovery of capture
//! instances, consistent snapshots, streaming of `cdc.<capture_instance>_CT` rows in commit
//! order, exact resume from a stored position, schema-change handling and retention checks.
//! It is being built under the "cdc-mssql" issue; until then it exports nothing.
