//! A connection for tools that query the server beside the reader.

use crate::capture_job::{self, CaptureJobError};
use crate::connection::Connection;
use crate::{Error, MssqlConfig};
use futures::FutureExt;
use std::sync::Arc;

/// A connection to one database made exactly as the reader makes its own: the same login, the
/// same encryption and certificate rules (`Encrypt`/`TrustServerCertificate` as
/// Microsoft.Data.SqlClient reads them), the same `Connect Timeout` naming the step a server
/// stopped answering in, the same typed errors. For tools that look at the server beside the
/// reader — `cdc check`, LSN lag polling — so that what they report is what the reader meets.
///
/// Nothing is retried: a failure is returned at once (a diagnostic should say what is wrong,
/// not wait through the reader's reconnect schedule), and the next call reconnects.
pub struct ServerConnection {
    conn: Connection,
}

impl std::fmt::Debug for ServerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConnection")
            .field("address", &self.conn.config().address())
            .field("database", &self.conn.database())
            .finish_non_exhaustive()
    }
}

impl ServerConnection {
    /// Connects and logs in to `database` with `config`'s server, login and encryption.
    ///
    /// # Errors
    /// [`Error::Connect`], [`Error::Timeout`] (naming the step), [`Error::Server`] (a refused
    /// login), [`Error::PermissionDenied`], [`Error::StrictEncryptionNotOffered`].
    pub async fn open(config: &MssqlConfig, database: &str) -> Result<Self, Error> {
        let mut conn = Connection::new(Arc::new(config.clone()), database.to_string());
        conn.run_once("connect", |_| async { Ok(()) }.boxed())
            .await?;
        Ok(Self { conn })
    }

    /// The rows of the first result set of `sql` (a batch without parameters), within the
    /// configuration's command timeout.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] for SQL Server's permission errors (229, 230, 916, 297,
    /// 300), [`Error::Timeout`], [`Error::Server`] for any other error the server returns.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<tiberius::Row>, Error> {
        let sql = sql.to_string();
        self.conn
            .run_once("query", |client| {
                let sql = sql.clone();
                async move { client.simple_query(sql).await?.into_first_result().await }.boxed()
            })
            .await
    }

    /// The errors of the capture job's latest log scan session in this database: empty while
    /// the job works (or has not run), else what `sys.dm_cdc_errors` holds for that session
    /// — the capture job captures nothing more until the cause is fixed (see
    /// [`CaptureJobError`]).
    ///
    /// # Errors
    /// As [`rows`](Self::rows); [`Error::PermissionDenied`] without VIEW DATABASE STATE.
    pub async fn capture_job_errors(&mut self) -> Result<Vec<CaptureJobError>, Error> {
        let rows = self.rows(capture_job::LATEST_SESSION_ERRORS).await?;
        Ok(capture_job::from_rows(&rows))
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        self.conn.close().await;
    }
}
