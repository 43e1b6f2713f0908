//! Configuration of the SQL Server source: the built [`MssqlConfig`], its options in
//! Debezium's terms, and the include/exclude patterns. Building it, from a builder or an
//! ADO.NET connection string, with every field checked, is `builder`'s job.

mod builder;

pub use builder::MssqlConfigBuilder;

use crate::Error;
use std::path::PathBuf;
use std::time::Duration;

/// What to snapshot before streaming (Debezium's `snapshot.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// Snapshot when there is no stored position, then stream.
    #[default]
    Initial,
    /// Snapshot when there is no stored position, then stop.
    InitialOnly,
    /// Never snapshot data: stream from the current end of the log.
    NoData,
    /// Snapshot when there is no stored position or it is no longer available.
    WhenNeeded,
    /// Snapshot at every start, then stream.
    Always,
}

/// How the snapshot reads tables consistently.
///
/// When none is configured the reader chooses per database at the start of each snapshot:
/// `Snapshot` where `sys.databases.snapshot_isolation_state` is 1 (ON), else
/// `RepeatableRead`, Debezium's default `snapshot.isolation.mode`. A stock SQL Server
/// (Amazon RDS included) creates databases with `ALLOW_SNAPSHOT_ISOLATION OFF`, where a
/// `SNAPSHOT` transaction fails with error 3952. (`Default` is `Snapshot` for compatibility;
/// the builder does not use it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotIsolation {
    /// `SNAPSHOT` isolation: one consistent version of every table, no locks held during the
    /// read. Needs `ALTER DATABASE <db> SET ALLOW_SNAPSHOT_ISOLATION ON`; configured on a
    /// database without it, the snapshot fails at start with
    /// [`Error::SnapshotIsolationNotAllowed`](crate::Error::SnapshotIsolationNotAllowed).
    #[default]
    Snapshot,
    /// `REPEATABLE READ` with shared table locks (`WITH (TABLOCK, HOLDLOCK)`) on every
    /// captured table, taken before the read point and held to the end of the snapshot:
    /// writers to those tables wait until the snapshot is read. Works on every database.
    RepeatableRead,
    /// `READ COMMITTED`: no consistency across tables; changes during the snapshot are
    /// reconciled by streaming from the hand-off LSN.
    ReadCommitted,
}

/// What to do when the stored position fell out of the change tables' retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetentionPolicy {
    /// Stop with [`Error::LsnNotAvailable`](crate::Error::LsnNotAvailable).
    #[default]
    Fail,
    /// Take a new snapshot and stream from there.
    Resnapshot,
}

/// What to do with a table that becomes captured while the source runs (a capture instance
/// created for a table the include list selects): its rows from before capture began are in no
/// change table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NewTableSnapshot {
    /// Snapshot it incrementally, in chunks between polls, while every other table keeps
    /// streaming (the default): its rows arrive as `r` events with `snapshot = incremental`.
    #[default]
    Incremental,
    /// Snapshot it with streaming paused (a blocking snapshot, see
    /// [`SnapshotType::Blocking`](crate::SnapshotType::Blocking)): its rows arrive as `r`
    /// events with Debezium's initial-snapshot markers, then streaming resumes.
    Blocking,
    /// Stream only its changes from the moment capture began.
    None,
}

/// TLS towards the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Encrypt everything; fail if the server cannot (the default).
    #[default]
    Required,
    /// TDS 8.0 strict mode: TLS before the first TDS packet.
    Strict,
    /// Only the login is encrypted (`Encrypt=false`): for test servers.
    LoginOnly,
    /// No TLS at all: for servers without TLS such as a plain simulator.
    Off,
}

/// A password that never shows in `Debug` output or logs: cdc-core's, one type for the family.
pub use cdc_core::Secret;

/// Everything the source needs; built by [`MssqlConfig::builder`] or
/// [`MssqlConfig::from_ado_string`], validated at build time.
///
/// ```
/// use cdc_mssql::MssqlConfig;
/// let config = MssqlConfig::from_ado_string(
///     "Server=tcp:127.0.0.1,1433;Database=shop;User Id=cdc;Password=s3cret;TrustServerCertificate=true",
/// )
/// .unwrap()
/// .topic_prefix("erp")
/// .build()
/// .unwrap();
/// assert_eq!(config.databases(), &["shop".to_string()]);
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct MssqlConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Secret,
    pub(crate) databases: Vec<String>,
    pub(crate) topic_prefix: String,
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) excluded_columns: Vec<String>,
    /// Debezium's `message.key.columns` as written; parsed into `message_keys` by `build`.
    pub(crate) message_key_spec: String,
    /// `(table pattern, key columns)` per entry of `message.key.columns`, in order.
    pub(crate) message_keys: Vec<(String, Vec<String>)>,
    pub(crate) snapshot_mode: SnapshotMode,
    pub(crate) stream_from_earliest: bool,
    /// `None`: chosen per database from `snapshot_isolation_state` (see [`SnapshotIsolation`]).
    pub(crate) snapshot_isolation: Option<SnapshotIsolation>,
    pub(crate) snapshot_chunk_size: u32,
    pub(crate) poll_interval: Duration,
    pub(crate) max_iteration_transactions: u32,
    pub(crate) page_size: u32,
    pub(crate) max_batch_events: usize,
    pub(crate) heartbeat_interval: Option<Duration>,
    pub(crate) retention_policy: RetentionPolicy,
    pub(crate) new_table_snapshot: NewTableSnapshot,
    pub(crate) read_only_intent: bool,
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) encryption: Encryption,
    pub(crate) trust_server_certificate: bool,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) hostname_in_certificate: Option<String>,
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl MssqlConfig {
    /// A builder with Debezium-like defaults.
    pub fn builder() -> MssqlConfigBuilder {
        MssqlConfigBuilder::default()
    }

    /// A builder filled from an ADO.NET connection string. Recognised keys: `Server`
    /// (`tcp:host,port`), `Database`/`Initial Catalog` (several separated by commas), `User
    /// Id`, `Password`, `Encrypt` (`true`/`mandatory`, `strict`, `false`/`optional`, or
    /// `off`), `TrustServerCertificate`, `HostNameInCertificate`, `ApplicationIntent`,
    /// `Connect Timeout` and `Command Timeout` (seconds); a few pooling keys are accepted
    /// and ignored; anything else is an error naming the key.
    pub fn from_ado_string(s: &str) -> Result<MssqlConfigBuilder, Error> {
        MssqlConfigBuilder::default().ado_string(s)
    }

    /// The databases read.
    pub fn databases(&self) -> &[String] {
        &self.databases
    }

    /// The first part of topic names and the events' `source.name` (Debezium's
    /// `topic.prefix`; the host when none was given).
    pub fn topic_prefix(&self) -> &str {
        &self.topic_prefix
    }

    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The tiberius configuration for one database.
    pub(crate) fn tiberius(&self, database: &str) -> tiberius::Config {
        let mut config = tiberius::Config::new();
        config.host(&self.host);
        config.port(self.port);
        config.database(database);
        config.application_name("cdc-mssql");
        config.authentication(tiberius::AuthMethod::sql_server(
            &self.user,
            self.password.expose(),
        ));
        config.encryption(match self.encryption {
            Encryption::Required => tiberius::EncryptionLevel::Required,
            Encryption::Strict => tiberius::EncryptionLevel::Strict,
            Encryption::LoginOnly => tiberius::EncryptionLevel::Off,
            Encryption::Off => tiberius::EncryptionLevel::NotSupported,
        });
        // Whether the certificate is validated depends on the server's pre-login answer
        // too (Encrypt=Optional): the connection decides, see `crate::handshake`.
        if let Some(name) = &self.hostname_in_certificate {
            config.hostname_in_certificate(name);
        }
        config.readonly(self.read_only_intent);
        config.command_timeout(Some(self.command_timeout));
        config.handshake_timeout(Some(self.connect_timeout));
        config
    }

    /// Whether `schema.table` is read, by the include and exclude patterns.
    pub(crate) fn table_included(&self, schema: &str, table: &str) -> bool {
        let name = format!("{schema}.{table}");
        let matches = |patterns: &[String]| patterns.iter().any(|p| glob(p, &name));
        (self.include.is_empty() || matches(&self.include)) && !matches(&self.exclude)
    }

    /// The configured key columns of a table (Debezium's `message.key.columns`): the first
    /// entry whose pattern matches `database.schema.table` or `schema.table`.
    pub(crate) fn message_key_columns_of(
        &self,
        database: &str,
        schema: &str,
        table: &str,
    ) -> Option<&[String]> {
        let short = format!("{schema}.{table}");
        let full = format!("{database}.{short}");
        self.message_keys
            .iter()
            .find(|(p, _)| glob(p, &full) || glob(p, &short))
            .map(|(_, k)| k.as_slice())
    }

    /// Whether `schema.table.column` is excluded.
    pub(crate) fn column_excluded(&self, schema: &str, table: &str, column: &str) -> bool {
        let name = format!("{schema}.{table}.{column}");
        self.excluded_columns.iter().any(|p| glob(p, &name))
    }
}

/// Whether `name` (`schema.table`) matches an include or exclude pattern the way the reader
/// matches it: case-insensitive, `*` for any run of characters, `?` for one. `cdc check` uses it
/// so that what it reports as captured is what the reader captures.
///
/// ```
/// assert!(cdc_mssql::table_pattern_matches("dbo.order*_*s", "DBO.Order_Lines"));
/// assert!(!cdc_mssql::table_pattern_matches("dbo.orders", "dbo.order_lines"));
/// ```
pub fn table_pattern_matches(pattern: &str, name: &str) -> bool {
    glob(pattern, name)
}

/// Case-insensitive match with `*` for any run of characters (SQL Server names are
/// case-insensitive under the default collation).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        text.to_lowercase().chars().collect(),
    );
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] || p[pi] == '?') {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_case_insensitively() {
        assert!(glob("dbo.*", "DBO.Orders"));
        assert!(glob("*.orders", "sales.orders"));
        assert!(!glob("dbo.o*", "dbo.customers"));
        assert!(glob("dbo.customers.ssn", "dbo.Customers.SSN"));
    }
}
