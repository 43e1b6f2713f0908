//! A SQL Server change data capture simulator that speaks TDS.
//!
//! This crate will hold a TDS 7.4 server with an in-memory T-SQL engine and a model of SQL
//! Server change data capture. It is being built under the "mssql-sim" issue.
