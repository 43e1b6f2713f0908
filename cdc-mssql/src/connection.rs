//! One connection per database, reconnected with backoff when a transient failure breaks it.

use crate::handshake::{self, Watch, Watched};
use crate::{Encryption, Error, MssqlConfig, NetworkStep};
use cdc_core::Position;
use futures::future::BoxFuture;
use std::sync::Arc;
use tiberius::Client;
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The waits between reconnect attempts: `initial_backoff`, doubling, at most `max_backoff`,
/// for `max_retries` retries ([`backon`]'s exponential schedule, without jitter).
pub(crate) fn retry_schedule(config: &MssqlConfig, max_retries: u32) -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(config.initial_backoff)
        .with_max_delay(config.max_backoff.max(config.initial_backoff))
        .with_factor(2.0)
        .with_max_times(max_retries as usize)
        .build()
}

/// A tiberius client over tokio's TCP stream.
pub(crate) type SqlClient = Client<Compat<Watched<TcpStream>>>;

/// A lazily (re)connected client for one database.
pub(crate) struct Connection {
    config: Arc<MssqlConfig>,
    database: String,
    client: Option<SqlClient>,
    /// The server answered a login on this connection (or the one it is a sibling of) once:
    /// a connection step that times out later is an overloaded or failing-over server and is
    /// retried; one that never answered is more likely a wrong address or encryption setting,
    /// reported at once.
    answered_before: bool,
}

impl Connection {
    pub(crate) fn new(config: Arc<MssqlConfig>, database: String) -> Self {
        Self {
            config,
            database,
            client: None,
            answered_before: false,
        }
    }

    /// Another, not yet connected, connection to the same database.
    pub(crate) fn sibling(&self) -> Connection {
        Connection {
            answered_before: self.answered_before,
            ..Connection::new(Arc::clone(&self.config), self.database.clone())
        }
    }

    /// The configuration the connection was made with.
    pub(crate) fn config(&self) -> &MssqlConfig {
        &self.config
    }

    pub(crate) fn database(&self) -> &str {
        &self.database
    }

    /// Connects and logs in within `Connect Timeout` (TCP connect, pre-login, TLS handshake
    /// and login together, as Microsoft.Data.SqlClient bounds them); a timeout is
    /// [`Error::Timeout`] naming the step the server stopped answering in.
    async fn connect(&self) -> Result<SqlClient, Error> {
        let deadline = tokio::time::Instant::now() + self.config.connect_timeout;
        let (watch, result) = self.connect_once(deadline, false).await;
        match result {
            // Encrypt=Optional connected without validating the certificate, but the server
            // forces encryption: Microsoft's drivers validate then, so connect again validating.
            Err(_) if watch.refuses_forced_encryption() && watch.server_forces_encryption() => {
                self.connect_once(deadline, true).await.1
            }
            result => result,
        }
    }

    async fn connect_once(
        &self,
        deadline: tokio::time::Instant,
        server_forces_encryption: bool,
    ) -> (Arc<Watch>, Result<SqlClient, Error>) {
        let config = &self.config;
        let validate = handshake::validates_certificate(
            config.encryption,
            config.trust_server_certificate,
            server_forces_encryption,
        );
        let watch =
            Watch::new(!validate && !server_forces_encryption && !config.trust_server_certificate);
        let address = config.address();
        let timeout = |step: NetworkStep| Error::Timeout {
            address: address.clone(),
            database: self.database.clone(),
            step,
            after: config.connect_timeout,
            hint: (step == NetworkStep::TlsHandshake && config.encryption == Encryption::Strict)
                .then(|| {
                    "Encrypt=Strict needs a server offering TDS 8.0 (SQL Server 2022 or later); \
                     a server speaking only TDS 7.x never answers its TLS handshake: use \
                     Encrypt=Mandatory there"
                        .to_string()
                }),
        };
        let connect_error = |source: std::io::Error| Error::Connect {
            address: address.clone(),
            source: Box::new(source),
        };
        let tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(&address)).await {
            Err(_) => return (watch, Err(timeout(NetworkStep::Connect))),
            Ok(Err(source)) => return (watch, Err(connect_error(source))),
            Ok(Ok(tcp)) => tcp,
        };
        if let Err(source) = tcp.set_nodelay(true) {
            return (watch, Err(connect_error(source)));
        }
        let mut tiberius = config.tiberius(&self.database);
        if !validate {
            tiberius.trust_cert();
        } else if let Some(ca) = &config.ca_file {
            tiberius.trust_cert_ca(ca.display().to_string());
        }
        // The deadline below bounds the whole connection, TCP connect included.
        tiberius.handshake_timeout(None);
        let stream = Watched::new(
            tcp,
            Arc::clone(&watch),
            config.encryption == Encryption::Strict,
        );
        let result = match tokio::time::timeout_at(
            deadline,
            Client::connect(tiberius, stream.compat_write()),
        )
        .await
        {
            Err(_) => Err(timeout(watch.step())),
            Ok(Ok(client)) => Ok(client),
            Ok(Err(tiberius::error::Error::Io {
                kind: std::io::ErrorKind::TimedOut,
                ..
            })) => Err(timeout(watch.step())),
            Ok(Err(source))
                if config.encryption == Encryption::Strict
                    && watch.step() == NetworkStep::TlsHandshake =>
            {
                Err(Error::StrictEncryptionNotOffered {
                    address: address.clone(),
                    source: Box::new(source),
                })
            }
            Ok(Err(source)) => Err(self.server_error(source, None)),
        };
        (watch, result)
    }

    pub(crate) fn server_error(
        &self,
        source: tiberius::error::Error,
        position: Option<Position>,
    ) -> Error {
        if let tiberius::error::Error::Io {
            kind: std::io::ErrorKind::TimedOut,
            ..
        } = &source
        {
            // tiberius's per-response `Command Timeout` ran out.
            return Error::Timeout {
                address: self.config.address(),
                database: self.database.clone(),
                step: NetworkStep::Query,
                after: self.config.command_timeout,
                hint: None,
            };
        }
        if let tiberius::error::Error::Server(token) = &source
            // 229/230/916: no permission on an object, a column or a database; 297/300: VIEW
            // SERVER STATE (or VIEW DATABASE STATE) missing for the sys.dm_tran_* views.
            && matches!(token.code(), 229 | 230 | 916 | 297 | 300)
        {
            return Error::PermissionDenied {
                database: self.database.clone(),
                message: token.message().to_string(),
            };
        }
        Error::Server {
            database: self.database.clone(),
            position,
            source: Box::new(source),
        }
    }

    /// Runs `op` on the client, reconnecting and retrying with exponential backoff while the
    /// failure is transient (connection reset, timeout, deadlock victim). The operation must be
    /// safe to repeat on a new connection: the reader only reads, and nothing here may run
    /// inside a transaction (a new connection has none) — see [`Connection::run_once`].
    pub(crate) async fn run<T>(
        &mut self,
        what: &str,
        op: impl for<'c> FnMut(&'c mut SqlClient) -> BoxFuture<'c, Result<T, tiberius::error::Error>>,
    ) -> Result<T, Error> {
        self.run_with(what, self.config.max_retries, op).await
    }

    /// Runs `op` once, for statements that belong to an open transaction: a reconnect would
    /// silently run them outside it. A failure drops the connection (the transaction with it)
    /// and is returned; the caller decides how to start over.
    pub(crate) async fn run_once<T>(
        &mut self,
        what: &str,
        op: impl for<'c> FnMut(&'c mut SqlClient) -> BoxFuture<'c, Result<T, tiberius::error::Error>>,
    ) -> Result<T, Error> {
        self.run_with(what, 0, op).await
    }

    /// Drops the connection (and whatever transaction it had open); the next call reconnects.
    pub(crate) fn reset(&mut self) {
        self.client = None;
    }

    async fn run_with<T>(
        &mut self,
        what: &str,
        max_retries: u32,
        mut op: impl for<'c> FnMut(
            &'c mut SqlClient,
        ) -> BoxFuture<'c, Result<T, tiberius::error::Error>>,
    ) -> Result<T, Error> {
        let mut attempt = 0u32;
        let mut waits = retry_schedule(&self.config, max_retries);
        loop {
            let result = match self.client.as_mut() {
                Some(client) => op(client).await.map_err(|e| self.server_error(e, None)),
                None => match self.connect().await {
                    Ok(client) => {
                        self.answered_before = true;
                        let client = self.client.insert(client);
                        op(client).await.map_err(|e| self.server_error(e, None))
                    }
                    Err(e) => Err(e),
                },
            };
            // A failed request may leave the connection mid-result (or its transaction
            // gone): never reuse it, whether or not the failure is retried.
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => {
                    self.client = None;
                    error
                }
            };
            let retried = error.is_transient()
                || (self.answered_before && error.is_connection_step_timeout());
            match waits.next() {
                Some(wait) if retried => {
                    attempt += 1;
                    tracing::warn!(database = %self.database, %what, attempt, ?wait, error = %error, "transient failure; reconnecting");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error),
            }
        }
    }

    pub(crate) async fn close(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reconnect_waits_double_from_initial_backoff_up_to_max_backoff_for_max_retries()
    -> Result<(), Error> {
        let mut config = MssqlConfig::builder()
            .host("db")
            .user("cdc")
            .database("shop")
            .max_retries(10)
            .build()?;
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(700);
        let waits: Vec<u64> = retry_schedule(&config, 6)
            .map(|wait| wait.as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 700, 700, 700]);
        assert_eq!(
            retry_schedule(&config, 0).count(),
            0,
            "run_once never waits"
        );
        Ok(())
    }
}
