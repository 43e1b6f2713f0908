//! The crate's error type.

use cdc_core::{Lsn, Position};

/// What can go wrong reading SQL Server change data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid.
    #[error("invalid SQL Server source configuration: {field}: {reason}")]
    Config {
        /// The offending field (or connection-string key).
        field: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The database does not have change data capture enabled.
    #[error(
        "change data capture is not enabled on database {database:?}; run as sysadmin: USE [{database}]; EXEC sys.sp_cdc_enable_db;"
    )]
    CdcNotEnabled {
        /// The database.
        database: String,
    },
    /// No table matched the include/exclude patterns, or a matching table is not tracked.
    #[error("no CDC-enabled table matches in database {database:?}{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    NoTables {
        /// The database.
        database: String,
        /// What to run to enable a table, when one is known.
        hint: Option<String>,
    },
    /// The login lacks a permission the reader needs.
    #[error(
        "permission denied in database {database:?}: {message} (the login needs SELECT on the cdc schema, e.g. membership in the capture instance's gating role or db_owner)"
    )]
    PermissionDenied {
        /// The database.
        database: String,
        /// The server's message.
        message: String,
    },
    /// The stored position is older than what the change tables still hold: the cleanup job
    /// removed changes the reader has not read.
    #[error(
        "position {requested} is no longer available in capture instance {capture_instance:?}: its minimum LSN is {minimum}; changes were cleaned up before they were read (re-snapshot, or lengthen retention with sys.sp_cdc_change_job @job_type = N'cleanup', @retention = ...)"
    )]
    LsnNotAvailable {
        /// The database.
        database: String,
        /// The capture instance whose data is gone.
        capture_instance: String,
        /// The first LSN the reader needed.
        requested: Lsn,
        /// The lowest LSN the instance still has.
        minimum: Lsn,
    },
    /// The capture instance the reader was reading a table from was disabled before the
    /// reader reached the start LSN of the table's new instance, and no snapshot of the table
    /// may be taken (`NewTableSnapshot::None`): the table's changes between `requested` and
    /// `start` were only in the dropped instance's change table.
    #[error(
        "capture instance {capture_instance:?} of {table} in database {database:?} was disabled while the reader was at {requested}, before the start {start} of its replacement {replacement:?}: the table's changes in between are lost (snapshot the table, e.g. with an incremental snapshot signal, and disable an old instance only once the reader has passed its replacement's start LSN)"
    )]
    CaptureInstanceDropped {
        /// The database.
        database: String,
        /// `schema.table`.
        table: String,
        /// The disabled capture instance.
        capture_instance: String,
        /// The table's capture instance now.
        replacement: String,
        /// The first LSN the reader needed.
        requested: Lsn,
        /// The replacement's start LSN.
        start: Lsn,
    },
    /// `SNAPSHOT` isolation was configured for the snapshot, but the database does not allow
    /// it (`sys.databases.snapshot_isolation_state` is not 1; SQL Server would refuse the
    /// first read with error 3952). Run [`statement`](Error::SnapshotIsolationNotAllowed::statement)
    /// as a database owner, or leave the isolation unset (REPEATABLE READ is then used there).
    #[error(
        "snapshot isolation is not allowed in database {database:?} (snapshot_isolation_state = {state}); run: {statement} (or leave snapshot_isolation unset to read under REPEATABLE READ with table locks)"
    )]
    SnapshotIsolationNotAllowed {
        /// The database.
        database: String,
        /// `sys.databases.snapshot_isolation_state`: 0 off, 2 turning off, 3 turning on.
        state: u8,
        /// The statement that allows it: `ALTER DATABASE [db] SET ALLOW_SNAPSHOT_ISOLATION ON;`.
        statement: String,
    },
    /// The server returned something the reader cannot interpret.
    #[error("unexpected data from {what}: {reason}")]
    Protocol {
        /// Which query or column.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A value could not be converted to its column's type.
    #[error("column {column:?} of {table}: {reason}")]
    Value {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Why.
        reason: String,
    },
    /// A database call failed (after retries, if it was transient).
    #[error("SQL Server error in database {database:?}{}", position.as_ref().map(|p| format!(" at {p}")).unwrap_or_default())]
    Server {
        /// The database.
        database: String,
        /// The position the reader was at.
        position: Option<Position>,
        /// The driver's error.
        source: Box<tiberius::error::Error>,
    },
    /// A step of reaching or using the server got no answer in time: `Connect Timeout`
    /// bounds the TCP connect, pre-login, TLS handshake and login together (default 15 s,
    /// Microsoft.Data.SqlClient's default); `Command Timeout` bounds each response of a query
    /// (default 30 s). A query's timeout is retried on a new connection; a connection step's
    /// is retried only when the server answered a login of that connection before (it is
    /// overloaded or failing over), and reported at once otherwise (a wrong address, port or
    /// encryption setting).
    #[error("{step} with {address} (database {database:?}) got no answer within {}{}", humantime(*after), hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Timeout {
        /// host:port.
        address: String,
        /// The database the connection is for.
        database: String,
        /// The step the server stopped answering in.
        step: crate::NetworkStep,
        /// The timeout that ran out.
        after: std::time::Duration,
        /// What probably causes it, when that is known (a server without TDS 8.0 for
        /// `Encrypt=Strict`).
        hint: Option<String>,
    },
    /// `Encrypt=Strict` (TDS 8.0: TLS before any TDS packet) was asked for and the server
    /// broke off the TLS handshake: it speaks only TDS 7.x (SQL Server before 2022, or a
    /// server without strict encryption). Not retried.
    #[error(
        "{address} did not complete the TLS handshake that Encrypt=Strict (TDS 8.0) needs; SQL Server 2022 or later offers it, use Encrypt=Mandatory for a server speaking only TDS 7.x"
    )]
    StrictEncryptionNotOffered {
        /// host:port.
        address: String,
        /// The driver's error.
        source: Box<tiberius::error::Error>,
    },
    /// Could not connect.
    #[error("cannot connect to {address}")]
    Connect {
        /// host:port.
        address: String,
        /// The cause.
        source: Box<std::io::Error>,
    },
}

impl Error {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn protocol(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Protocol {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Whether retrying (after reconnecting) may succeed: connection resets, timeouts,
    /// deadlock victims (1205) and the server's transient errors.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Timeout { step, .. } => *step == crate::NetworkStep::Query,
            Error::Server { source, .. } => is_transient_driver_error(source),
            _ => false,
        }
    }
}

impl Error {
    /// A connection step (TCP connect, pre-login, TLS handshake, login) got no answer in time.
    pub(crate) fn is_connection_step_timeout(&self) -> bool {
        matches!(self, Error::Timeout { step, hint: None, .. } if *step != crate::NetworkStep::Query)
    }
}

/// `15s`, `500ms`: a timeout as a connection string would give it.
fn humantime(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// SQL Server error numbers that a retry can fix: deadlock victim, lock timeout, Azure's
/// transient codes, and "database is starting up / not available right now".
const TRANSIENT_CODES: &[u32] = &[
    1205, 1222, 4060, 4221, 40143, 40197, 40501, 40613, 49918, 49919, 49920, 10928, 10929, 233,
    10053, 10054, 10060,
];

pub(crate) fn is_transient_driver_error(error: &tiberius::error::Error) -> bool {
    use tiberius::error::Error as E;
    match error {
        E::Io { .. } => true,
        E::Server(token) => TRANSIENT_CODES.contains(&token.code()),
        _ => false,
    }
}

impl Error {
    /// This error as a [`cdc_core::Error::Source`] of the source `name` (the source's logical
    /// name, Debezium's `topic.prefix`), with the position of a failed read when known — the
    /// convention kafka-io's `into_source_error` follows too.
    pub fn into_source_error(self, name: &str) -> cdc_core::Error {
        let position = match &self {
            Error::Server { position, .. } => position.clone(),
            _ => None,
        };
        cdc_core::Error::Source {
            name: name.to_string(),
            position,
            source: Box::new(self),
        }
    }
}
