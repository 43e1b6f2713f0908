//! Building a [`MssqlConfig`]: the builder's setters, the ADO.NET connection string's keys,
//! Debezium's `message.key.columns`, and `build`'s checks that name the bad field.

use super::{
    Encryption, MssqlConfig, NewTableSnapshot, RetentionPolicy, Secret, SnapshotIsolation,
    SnapshotMode,
};
use crate::{Error, ado};
use std::path::PathBuf;
use std::time::Duration;

/// Builds an [`MssqlConfig`]; [`build`](Self::build) checks every field.
#[derive(Debug, Clone)]
pub struct MssqlConfigBuilder {
    config: MssqlConfig,
}

impl Default for MssqlConfigBuilder {
    fn default() -> Self {
        Self {
            config: MssqlConfig {
                host: String::new(),
                port: 1433,
                user: String::new(),
                password: Secret::default(),
                databases: Vec::new(),
                topic_prefix: String::new(),
                include: Vec::new(),
                exclude: Vec::new(),
                excluded_columns: Vec::new(),
                message_key_spec: String::new(),
                message_keys: Vec::new(),
                snapshot_mode: SnapshotMode::Initial,
                stream_from_earliest: false,
                snapshot_isolation: None,
                snapshot_chunk_size: 10_000,
                poll_interval: Duration::from_millis(500),
                max_iteration_transactions: 500,
                page_size: 10_000,
                max_batch_events: 2_048,
                heartbeat_interval: Some(Duration::from_secs(10)),
                retention_policy: RetentionPolicy::Fail,
                new_table_snapshot: NewTableSnapshot::Incremental,
                read_only_intent: false,
                command_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(15),
                encryption: Encryption::Required,
                trust_server_certificate: false,
                ca_file: None,
                hostname_in_certificate: None,
                max_retries: 10,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
            },
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, Error> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(Error::config(
            key,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

fn parse_seconds(key: &str, value: &str) -> Result<Duration, Error> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| Error::config(key, format!("expected seconds, got {value:?}")))
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl MssqlConfigBuilder {
    /// Applies an ADO.NET connection string (see [`MssqlConfig::from_ado_string`]).
    pub fn ado_string(mut self, s: &str) -> Result<Self, Error> {
        let mut after_password = false;
        for (key, value) in ado::parse(s)? {
            // A piece of a password with an unquoted ';' can look like a key: never shown.
            let follows_password = std::mem::replace(&mut after_password, key == "password");
            let c = &mut self.config;
            match key.as_str() {
                "server" => (c.host, c.port) = ado::server_address(&value)?,
                "database" => {
                    c.databases = value
                        .split(',')
                        .map(|d| d.trim().to_string())
                        .filter(|d| !d.is_empty())
                        .collect()
                }
                "user id" => c.user = value,
                "password" => c.password = Secret::new(value),
                "encrypt" => {
                    c.encryption = match value.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "mandatory" => Encryption::Required,
                        "strict" => Encryption::Strict,
                        "false" | "no" | "optional" => Encryption::LoginOnly,
                        "off" | "notsupported" => Encryption::Off,
                        other => {
                            return Err(Error::config(
                                "Encrypt",
                                format!("unknown value {other:?}"),
                            ));
                        }
                    }
                }
                "trustservercertificate" => {
                    c.trust_server_certificate = parse_bool("TrustServerCertificate", &value)?
                }
                "hostnameincertificate" => c.hostname_in_certificate = Some(value),
                "applicationintent" => {
                    c.read_only_intent = match value.to_ascii_lowercase().as_str() {
                        "readonly" => true,
                        "readwrite" => false,
                        other => {
                            return Err(Error::config(
                                "ApplicationIntent",
                                format!("unknown value {other:?}"),
                            ));
                        }
                    }
                }
                "connect timeout" => c.connect_timeout = parse_seconds("Connect Timeout", &value)?,
                "command timeout" => c.command_timeout = parse_seconds("Command Timeout", &value)?,
                "application name"
                | "multipleactiveresultsets"
                | "persist security info"
                | "pooling"
                | "max pool size"
                | "min pool size"
                | "multisubnetfailover" => {}
                _ if follows_password => {
                    return Err(Error::config(
                        "connection string",
                        "an unknown key follows the password: a password holding ';' must be quoted (Password='…')",
                    ));
                }
                other => return Err(Error::config(other, "unknown connection-string key")),
            }
        }
        Ok(self)
    }

    /// Server host name or address.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }

    /// Login name.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.config.user = user.into();
        self
    }

    /// Login password.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.config.password = Secret::new(password);
        self
    }

    /// Adds a database to read.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.config.databases.push(database.into());
        self
    }

    /// The first part of topic names and the events' `source.name` (Debezium's
    /// `topic.prefix`): letters, digits, `.`, `_` and `-`; the host when not given.
    pub fn topic_prefix(mut self, name: impl Into<String>) -> Self {
        self.config.topic_prefix = name.into();
        self
    }

    /// Reads only tables matching one of these `schema.table` patterns (`*` wildcard).
    pub fn include_tables<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        patterns: I,
    ) -> Self {
        self.config.include = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Skips tables matching one of these `schema.table` patterns.
    pub fn exclude_tables<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        patterns: I,
    ) -> Self {
        self.config.exclude = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Drops columns matching one of these `schema.table.column` patterns from events.
    pub fn exclude_columns<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        patterns: I,
    ) -> Self {
        self.config.excluded_columns = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Keys for tables by configuration (Debezium's `message.key.columns`, same syntax):
    /// `<table>:<column>,<column>;<table>:<column>;…`, where `<table>` is `schema.table` or
    /// `database.schema.table` with `*` for any text (matched case-insensitively; the first
    /// matching entry wins). A configured key overrides the table's primary key and the
    /// capture instance's index for the events' key. The snapshot is chunked by it only
    /// when it is that primary key or a unique index of `NOT NULL` columns; otherwise the
    /// table is read in one query. Checked by [`build`](Self::build) (syntax) and when the
    /// catalog loads (a column the capture instance does not emit is
    /// [`Error::Config`](crate::Error::Config) naming `message_key_columns`).
    pub fn message_key_columns(mut self, spec: impl Into<String>) -> Self {
        self.config.message_key_spec = spec.into();
        self
    }

    setter!(/// Server port (default 1433).
        port: u16);
    setter!(/// What to snapshot before streaming.
        snapshot_mode: SnapshotMode);
    setter!(/// Without a stored position and without a snapshot, stream the change tables from
        /// their oldest row rather than from the current end of the log (replays the history
        /// the tables still hold).
        stream_from_earliest: bool);
    /// How the snapshot reads consistently (Debezium's `snapshot.isolation.mode`). Unset:
    /// `Snapshot` where the database allows it, else `RepeatableRead` (see
    /// [`SnapshotIsolation`]).
    pub fn snapshot_isolation(mut self, value: SnapshotIsolation) -> Self {
        self.config.snapshot_isolation = Some(value);
        self
    }
    setter!(/// Rows per snapshot query (keyset chunk).
        snapshot_chunk_size: u32);
    setter!(/// Pause between polls when there is nothing new (default 500 ms).
        poll_interval: Duration);
    setter!(/// At most this many transactions per poll window (default 500).
        max_iteration_transactions: u32);
    setter!(/// Rows per change-table query (default 10 000).
        page_size: u32);
    setter!(/// At most this many events per batch handed downstream (default 2048).
        max_batch_events: usize);
    setter!(/// How often a quiet database reports its position; `None` for never (default 10 s).
        heartbeat_interval: Option<Duration>);
    setter!(/// What to do when the position fell out of retention.
        retention_policy: RetentionPolicy);
    setter!(/// A table that becomes captured while the source runs: snapshotted incrementally
        /// (the default) or only streamed ([`NewTableSnapshot`]).
        new_table_snapshot: NewTableSnapshot);
    setter!(/// Connect with `ApplicationIntent=ReadOnly` (to read an availability-group secondary).
        read_only_intent: bool);
    setter!(/// Timeout of one query (tiberius defaults to 30 s).
        command_timeout: Duration);
    setter!(/// Timeout of connecting and logging in.
        connect_timeout: Duration);
    setter!(/// TLS mode (default [`Encryption::Required`]).
        encryption: Encryption);
    setter!(/// Accept any server certificate: only for tests or when asked for explicitly.
        trust_server_certificate: bool);
    setter!(/// Retries of a transient failure before giving up (default 10).
        max_retries: u32);

    /// Trusts the CA certificate(s) in this PEM or DER file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.ca_file = Some(path.into());
        self
    }

    /// Checks every field and returns the configuration; the error names the first bad field.
    pub fn build(self) -> Result<MssqlConfig, Error> {
        let mut c = self.config;
        c.message_keys = parse_message_keys(&c.message_key_spec)?;
        if c.host.trim().is_empty() {
            return Err(Error::config("host", "must be set (Server=tcp:host,port)"));
        }
        if c.user.is_empty() {
            return Err(Error::config("user", "must be set (User Id=...)"));
        }
        if c.databases.is_empty() {
            return Err(Error::config(
                "databases",
                "name at least one database (Database=...)",
            ));
        }
        if let Some(bad) = c
            .databases
            .iter()
            .find(|d| d.contains(']') || d.trim().is_empty())
        {
            return Err(Error::config(
                "databases",
                format!("invalid database name {bad:?}"),
            ));
        }
        let positive = |field: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, "must be greater than zero"))
            }
        };
        positive("poll_interval", !c.poll_interval.is_zero())?;
        positive(
            "max_iteration_transactions",
            c.max_iteration_transactions > 0,
        )?;
        positive("page_size", c.page_size > 0)?;
        positive("snapshot_chunk_size", c.snapshot_chunk_size > 0)?;
        positive("max_batch_events", c.max_batch_events > 0)?;
        positive("command_timeout", !c.command_timeout.is_zero())?;
        positive(
            "heartbeat_interval",
            c.heartbeat_interval.is_none_or(|d| !d.is_zero()),
        )?;
        if c.trust_server_certificate && c.ca_file.is_some() {
            return Err(Error::config(
                "ca_file",
                "choose either a CA file or trust_server_certificate, not both",
            ));
        }
        if let Some(ca) = &c.ca_file
            && !ca.is_file()
        {
            return Err(Error::config(
                "ca_file",
                format!("{} is not a readable file", ca.display()),
            ));
        }
        let topic_prefix = if c.topic_prefix.is_empty() {
            c.host.clone()
        } else {
            c.topic_prefix.clone()
        };
        if topic_prefix.contains(|ch: char| !(ch.is_ascii_alphanumeric() || "._-".contains(ch))) {
            return Err(Error::config(
                "topic_prefix",
                format!(
                    "{topic_prefix:?} may only hold letters, digits, '.', '_' and '-' (it prefixes topic names)"
                ),
            ));
        }
        Ok(MssqlConfig { topic_prefix, ..c })
    }
}

/// Parses `message.key.columns`: `<table>:<col>,<col>;…` (blank entries ignored).
fn parse_message_keys(spec: &str) -> Result<Vec<(String, Vec<String>)>, Error> {
    let bad = |entry: &str, why: &str| {
        Error::config(
            "message_key_columns",
            format!("{entry:?}: {why} (expected <table>:<column>,<column>;...)"),
        )
    };
    let mut out = Vec::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (table, columns) = entry
            .split_once(':')
            .ok_or_else(|| bad(entry, "no ':' between the table and its columns"))?;
        let table = table.trim();
        if table.is_empty() {
            return Err(bad(entry, "no table"));
        }
        let columns: Vec<String> = columns.split(',').map(|c| c.trim().to_string()).collect();
        if columns.iter().any(String::is_empty) {
            return Err(bad(entry, "an empty column name"));
        }
        out.push((table.to_string(), columns));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_fields_are_named() {
        let base = || MssqlConfig::builder().host("h").user("u").database("d");
        assert!(base().build().is_ok());
        let field = |r: Result<MssqlConfig, Error>| match r.unwrap_err() {
            Error::Config { field, .. } => field,
            other => panic!("{other}"),
        };
        assert_eq!(
            field(MssqlConfig::builder().user("u").database("d").build()),
            "host"
        );
        assert_eq!(field(base().page_size(0).build()), "page_size");
        assert_eq!(
            field(base().poll_interval(Duration::ZERO).build()),
            "poll_interval"
        );
        assert_eq!(
            field(base().ca_file("/nonexistent/ca.pem").build()),
            "ca_file"
        );
        assert_eq!(
            field(base().topic_prefix("bad name").build()),
            "topic_prefix"
        );
        assert_eq!(
            field(
                MssqlConfig::from_ado_string("Server=h;Bogus=1")
                    .map(|b| b.build())
                    .and_then(|r| r)
            ),
            "bogus"
        );
        assert_eq!(
            field(
                MssqlConfig::from_ado_string("Server=h;Encrypt=maybe")
                    .map(|b| b.build())
                    .and_then(|r| r)
            ),
            "Encrypt"
        );
    }

    #[test]
    fn message_key_columns_parse_as_debezium_writes_them() {
        let base = || MssqlConfig::builder().host("h").user("u").database("d");
        let c = base()
            .message_key_columns("dbo.ledger:code; shop.*.orders:region , no ;")
            .build()
            .unwrap();
        assert_eq!(
            c.message_key_columns_of("d", "DBO", "Ledger"),
            Some(&["code".to_string()][..])
        );
        assert_eq!(
            c.message_key_columns_of("shop", "sales", "orders"),
            Some(&["region".to_string(), "no".to_string()][..])
        );
        assert_eq!(c.message_key_columns_of("other", "sales", "orders"), None);
        for bad in ["dbo.ledger", ":code", "dbo.ledger:", "dbo.ledger:a,,b"] {
            match base().message_key_columns(bad).build().unwrap_err() {
                Error::Config { field, .. } => assert_eq!(field, "message_key_columns", "{bad}"),
                other => panic!("{bad}: {other}"),
            }
        }
    }

    #[test]
    fn password_never_in_debug() {
        let config = MssqlConfig::from_ado_string("Server=h;User Id=u;Password=hunter2;Database=d")
            .unwrap()
            .build()
            .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***"));
        assert_eq!(
            config.encryption,
            Encryption::Required,
            "TLS is required by default"
        );
        assert!(
            !config.trust_server_certificate,
            "certificates are checked by default"
        );
    }
}
