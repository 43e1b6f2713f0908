//! Exactly-once Parquet and NDJSON files on any object_store backend.
//!
//! This crate will hold the object-store sink: formats, partitioners, deterministic rotation
//! and Kafka Connect style object names. It is being built under the "s3-sink" issue.
