//! The simulator's public face: its configuration, start and stop, scripts, faults and the
//! capture job that runs beside the server; each accepted connection is served by
//! [`connection`].

mod connection;
mod shared;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU16;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::cdc::state::Cdc;
use crate::engine::catalog::Engine;
use crate::error::SimError;
use crate::faults::{Control, Faults};
use crate::sql::out::Out;
use crate::sql::session::Session;
use shared::{Shared, State};

/// How to run the simulator.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The `sa` login's password.
    pub sa_password: String,
    /// How often the capture job scans the log; `None` means only `EXEC sys.sp_cdc_scan`
    /// (or [`Simulator::scan`]) fills change tables, which makes tests deterministic.
    pub capture_interval: Option<Duration>,
    /// Offer TLS (a certificate signed by the simulator's own CA, see
    /// [`Simulator::ca_certificate_pem`]) to clients that ask for encryption. Clients that
    /// say "not supported" always get plain TCP.
    pub tls: bool,
    /// With `tls`: also accept TDS 8.0 strict encryption (TLS before the first TDS packet, as
    /// SQL Server 2022 and later do). `false` is a server speaking only TDS 7.x, which never
    /// answers a strict client's TLS handshake.
    pub strict_encryption: bool,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("sa_password", &"<redacted>")
            .field("capture_interval", &self.capture_interval)
            .field("tls", &self.tls)
            .field("strict_encryption", &self.strict_encryption)
            .finish()
    }
}

impl SimConfig {
    /// Listens on 127.0.0.1 with a free port, capture job every 5 s (SQL Server's default).
    pub fn new(sa_password: impl Into<String>) -> Self {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            sa_password: sa_password.into(),
            capture_interval: Some(Duration::from_millis(5000)),
            tls: true,
            strict_encryption: true,
        }
    }

    /// Only explicit scans fill change tables.
    pub fn manual_capture(mut self) -> Self {
        self.capture_interval = None;
        self
    }

    /// Sets the capture job's interval.
    pub fn capture_interval(mut self, d: Duration) -> Self {
        self.capture_interval = Some(d);
        self
    }

    /// Turns TLS off: every client is told encryption is not supported.
    pub fn without_tls(mut self) -> Self {
        self.tls = false;
        self
    }

    /// A server speaking only TDS 7.x (SQL Server 2019 and earlier): no TDS 8.0 strict
    /// encryption.
    pub fn tds_7_only(mut self) -> Self {
        self.strict_encryption = false;
        self
    }

    /// Sets the listening port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.bind.set_port(port);
        self
    }
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    capture: Option<JoinHandle<()>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Simulator {
    /// Binds and starts serving. Returns once the socket is listening.
    pub async fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let tls = if config.tls {
            Some(crate::tls::Tls::generate()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(State {
                engine: Engine::new(),
                cdc: Cdc::default(),
            }),
            tls,
            strict_encryption: config.strict_encryption,
            ctl: Control::new(),
            password: config.sa_password.clone(),
            next_spid: AtomicU16::new(51),
        });
        let s2 = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let s = s2.clone();
                        tokio::spawn(async move {
                            if let Err(e) = connection::connection(s, stream).await {
                                debug!(%peer, error = %e, "connection ended");
                            }
                        });
                    }
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        let capture = config.capture_interval.map(|every| {
            let s = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if s.ctl.capture_running() {
                        s.engine().scan();
                    }
                }
            })
        });
        Ok(Simulator {
            addr,
            shared,
            accept,
            capture,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// An ADO.NET connection string for this simulator, usable with tiberius's
    /// `Config::from_ado_string`: `sa` login, TLS with the self-signed certificate trusted
    /// (or `encrypt=DANGER_PLAINTEXT` when TLS is off). It contains the password, so keep it
    /// out of logs.
    pub fn ado_connection_string(&self) -> String {
        let encrypt = if self.shared.tls.is_some() {
            "true;TrustServerCertificate=true"
        } else {
            "DANGER_PLAINTEXT"
        };
        format!(
            "server=tcp:{},{};user id=sa;password={};encrypt={encrypt}",
            self.addr.ip(),
            self.addr.port(),
            self.shared.password
        )
    }

    /// The PEM certificate of the CA that signed the simulator's TLS certificate (for
    /// `localhost` and `127.0.0.1`), fresh for every simulator: what a client trusts to
    /// validate it (`ca_file`) — TDS 8.0 strict always validates. `None` without TLS.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// The PEM certificate the simulator presents (signed by
    /// [`ca_certificate_pem`](Self::ca_certificate_pem)), for clients that pin it, such as
    /// mssql-jdbc's `serverCertificate` with `encrypt=strict`. `None` without TLS.
    pub fn server_certificate_pem(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.server_pem.as_str())
    }

    /// The fault-injection handle.
    pub fn faults(&self) -> Faults {
        self.shared.ctl.faults().clone()
    }

    /// Runs one capture-job scan now (what `EXEC sys.sp_cdc_scan` does).
    pub fn scan(&self) {
        if self.shared.ctl.capture_running() {
            self.shared.engine().scan();
        }
    }

    /// Runs a T-SQL script in-process as `sa` (batches separated by `GO` lines). Stops at
    /// the first error and returns it.
    pub fn run_script(&self, script: &str) -> Result<(), SimError> {
        let mut sess = Session::new("master", "sa", 50);
        let mut result = Ok(());
        for batch in crate::scenario::split_batches(script) {
            sess.vars.clear();
            let mut segs = Default::default();
            let mut outs = connection::run(&self.shared, &mut sess, |ex| {
                segs = ex.parse_segments(&batch)
            });
            loop {
                let mut wait = None;
                outs.extend(connection::run(&self.shared, &mut sess, |ex| {
                    wait = ex.run_segments(&mut segs)
                }));
                match wait {
                    // run_script is synchronous; the engine is unlocked while it sleeps.
                    Some(crate::sql::exec::Pause::Delay(d)) => std::thread::sleep(d),
                    // Not pausable: a lock wait already failed with 1222 (sql/locking.rs).
                    Some(crate::sql::exec::Pause::Lock { .. }) | None => break,
                }
            }
            if let Some(e) = outs.into_iter().find_map(|o| match o {
                Out::Error(e) => Some(e),
                _ => None,
            }) {
                result = Err(SimError::Sql(e));
                break;
            }
        }
        let mut eng = self.shared.engine();
        eng.exec(&mut sess, &self.shared.ctl).abort_open();
        result
    }

    /// Stops accepting, drops every connection and stops the capture job.
    pub async fn stop(self) {
        self.accept.abort();
        if let Some(c) = &self.capture {
            c.abort();
        }
        self.shared.ctl.faults().restart();
        let _ = self.accept.await;
        if let Some(c) = self.capture {
            let _ = c.await;
        }
    }
}
