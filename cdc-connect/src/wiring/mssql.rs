//! `[source.mssql]` → cdc-mssql's `MssqlConfig`, every key through the builder's public
//! methods, errors naming the pipeline-file field.

use super::{field_error, ms};
use crate::config::{self, ConfigError};
use cdc_mssql::MssqlConfig;

/// cdc-mssql's configuration from `[source.mssql]`.
pub fn mssql_config(section: &config::MssqlSection) -> Result<MssqlConfig, ConfigError> {
    let err = field_error("source.mssql");
    let mut b = match &section.connection {
        Some(ado) => MssqlConfig::from_ado_string(ado.expose())
            // The message names the connection-string key, never its value.
            .map_err(|e| ConfigError::field("source.mssql.connection", e.to_string()))?,
        None => MssqlConfig::builder(),
    };
    if let Some(v) = &section.host {
        b = b.host(v);
    }
    if let Some(v) = section.port {
        b = b.port(v);
    }
    if let Some(v) = &section.user {
        b = b.user(v);
    }
    if let Some(v) = &section.password {
        b = b.password(v.expose());
    }
    for d in &section.databases {
        b = b.database(d);
    }
    b = b.topic_prefix(&section.topic_prefix);
    if !section.include_tables.is_empty() {
        b = b.include_tables(section.include_tables.clone());
    }
    if !section.exclude_tables.is_empty() {
        b = b.exclude_tables(section.exclude_tables.clone());
    }
    if !section.exclude_columns.is_empty() {
        b = b.exclude_columns(section.exclude_columns.clone());
    }
    if let Some(spec) = &section.message_key_columns {
        b = b.message_key_columns(spec.clone());
    }
    if let Some(v) = section.snapshot_mode {
        use config::SnapshotMode as M;
        b = b.snapshot_mode(match v {
            M::Initial => cdc_mssql::SnapshotMode::Initial,
            M::InitialOnly => cdc_mssql::SnapshotMode::InitialOnly,
            M::NoData => cdc_mssql::SnapshotMode::NoData,
            M::WhenNeeded => cdc_mssql::SnapshotMode::WhenNeeded,
            M::Always => cdc_mssql::SnapshotMode::Always,
        });
    }
    if let Some(v) = section.snapshot_isolation {
        use config::SnapshotIsolation as I;
        b = b.snapshot_isolation(match v {
            I::Snapshot => cdc_mssql::SnapshotIsolation::Snapshot,
            I::RepeatableRead => cdc_mssql::SnapshotIsolation::RepeatableRead,
            I::ReadCommitted => cdc_mssql::SnapshotIsolation::ReadCommitted,
        });
    }
    if let Some(v) = section.stream_from_earliest {
        b = b.stream_from_earliest(v);
    }
    if let Some(v) = section.snapshot_chunk_size {
        b = b.snapshot_chunk_size(v);
    }
    if let Some(v) = section.poll_interval_ms {
        b = b.poll_interval(ms(v));
    }
    if let Some(v) = section.max_iteration_transactions {
        b = b.max_iteration_transactions(v);
    }
    if let Some(v) = section.page_size {
        b = b.page_size(v);
    }
    if let Some(v) = section.max_batch_events {
        b = b.max_batch_events(v);
    }
    if let Some(v) = section.heartbeat_interval_ms {
        b = b.heartbeat_interval((v > 0).then(|| ms(v)));
    }
    if let Some(v) = section.new_table_snapshot {
        b = b.new_table_snapshot(match v {
            config::NewTableSnapshot::Incremental => cdc_mssql::NewTableSnapshot::Incremental,
            config::NewTableSnapshot::Blocking => cdc_mssql::NewTableSnapshot::Blocking,
            config::NewTableSnapshot::None => cdc_mssql::NewTableSnapshot::None,
        });
    }
    if let Some(v) = section.retention_policy {
        b = b.retention_policy(match v {
            config::RetentionPolicy::Fail => cdc_mssql::RetentionPolicy::Fail,
            config::RetentionPolicy::Resnapshot => cdc_mssql::RetentionPolicy::Resnapshot,
        });
    }
    if let Some(v) = section.read_only_intent {
        b = b.read_only_intent(v);
    }
    if let Some(v) = section.command_timeout_ms {
        b = b.command_timeout(ms(v));
    }
    if let Some(v) = section.connect_timeout_ms {
        b = b.connect_timeout(ms(v));
    }
    if let Some(v) = section.encryption {
        use config::Encryption as E;
        b = b.encryption(match v {
            E::Required => cdc_mssql::Encryption::Required,
            E::Strict => cdc_mssql::Encryption::Strict,
            E::LoginOnly => cdc_mssql::Encryption::LoginOnly,
            E::Off => cdc_mssql::Encryption::Off,
        });
    }
    if let Some(v) = section.trust_server_certificate {
        b = b.trust_server_certificate(v);
    }
    if let Some(v) = &section.ca_file {
        b = b.ca_file(v);
    }
    if let Some(v) = section.max_retries {
        b = b.max_retries(v);
    }
    b.build().map_err(|e| err(e.to_string()))
}
