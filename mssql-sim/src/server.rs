//! The TCP server: accepts connections, runs the TDS handshake, executes requests and
//! streams results; plus the capture job that runs beside it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::cdc::job;
use crate::cdc::state::Cdc;
use crate::engine::catalog::Engine;
use crate::error::{SimError, SqlError};
use crate::faults::{Control, Faults};
use crate::sql::exec::Exec;
use crate::sql::out::{Env, Out};
use crate::sql::session::Session;
use crate::tds::packet::{Message, frame, read_message, ty, write_message};
use crate::tds::prepared::Plan;
use crate::tds::tokens::{self, DoneKind, done};
use crate::tds::{login, prelogin, rpc};
use crate::tls::PreloginWrap;

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
    /// Offer TLS (self-signed certificate) to clients that ask for encryption. Clients that
    /// say "not supported" always get plain TCP.
    pub tls: bool,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("sa_password", &"<redacted>")
            .field("capture_interval", &self.capture_interval)
            .field("tls", &self.tls)
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

    /// Sets the listening port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.bind.set_port(port);
        self
    }
}

/// What the engine lock guards: the storage engine and, beside it, the CDC state.
struct State {
    engine: Engine,
    cdc: Cdc,
}

impl State {
    fn exec<'a>(&'a mut self, sess: &'a mut Session, ctl: &'a Control) -> Exec<'a> {
        Exec::new(&mut self.engine, &mut self.cdc, sess, ctl)
    }

    fn scan(&mut self) -> usize {
        job::scan(&mut self.engine, &mut self.cdc)
    }
}

struct Shared {
    engine: Mutex<State>,
    tls: Option<TlsAcceptor>,
    ctl: Control,
    password: String,
    next_spid: AtomicU16,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the whole server down.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
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
            Some(crate::tls::self_signed_acceptor()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            engine: Mutex::new(State {
                engine: Engine::new(),
                cdc: Cdc::default(),
            }),
            tls,
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
                            if let Err(e) = connection(s, stream).await {
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
            let mut outs = run(&self.shared, &mut sess, |ex| {
                segs = ex.parse_segments(&batch)
            });
            loop {
                let mut wait = None;
                outs.extend(run(&self.shared, &mut sess, |ex| {
                    wait = ex.run_segments(&mut segs)
                }));
                match wait {
                    // run_script is synchronous; the engine is unlocked while it sleeps.
                    Some(d) => std::thread::sleep(d),
                    None => break,
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

/// Writes a response as TDS packets, flushing full packets as the buffer fills so large
/// results stream instead of piling up.
struct Responder<'w, W> {
    w: &'w mut W,
    packet_size: usize,
    buf: Vec<u8>,
    packet_id: u8,
    attention: Arc<AtomicBool>,
}

impl<W: AsyncWrite + Unpin> Responder<'_, W> {
    async fn maybe_flush(&mut self) -> Result<(), SimError> {
        let body = self.packet_size - 8;
        if self.buf.len() >= body * 16 {
            let full = self.buf.len() / body * body;
            let mut out = Vec::with_capacity(full + full / body * 8 + 8);
            frame(
                &mut out,
                ty::REPLY,
                &self.buf[..full],
                self.packet_size,
                false,
                &mut self.packet_id,
            );
            self.buf.drain(..full);
            self.w.write_all(&out).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), SimError> {
        let mut out = Vec::with_capacity(self.buf.len() + 64);
        frame(
            &mut out,
            ty::REPLY,
            &self.buf,
            self.packet_size,
            true,
            &mut self.packet_id,
        );
        self.buf.clear();
        self.w.write_all(&out).await?;
        self.w.flush().await?;
        Ok(())
    }

    fn attention(&self) -> bool {
        self.attention.swap(false, Ordering::SeqCst)
    }
}

enum Flow {
    Continue,
    Close,
}

/// Streams the outputs of one request. `rpc` wraps them the way a procedure call is answered.
/// `handle` is an `sp_prepexec` handle, returned as the OUTPUT value of parameter 0.
async fn respond<W: AsyncWrite + Unpin>(
    r: &mut Responder<'_, W>,
    outs: Vec<Out>,
    rpc: bool,
    handle: Option<i32>,
    ctl: &Control,
) -> Result<Flow, SimError> {
    if let Some(d) = ctl.delay() {
        tokio::time::sleep(d).await;
    }
    let last_done = outs.iter().rposition(|o| matches!(o, Out::Done { .. }));
    let mut errored = false;
    let mut close_after: Option<u64> = None;
    for (i, o) in outs.into_iter().enumerate() {
        match o {
            Out::Rows(rs) => {
                tokens::col_metadata(&mut r.buf, &rs.cols);
                if close_after.is_none() {
                    close_after = ctl.take_close_after_rows();
                }
                for (n, row) in rs.rows.iter().enumerate() {
                    if close_after == Some(n as u64) {
                        // Simulated network failure mid-result: what was written so far goes
                        // out, then the socket closes without a DONE.
                        let body = r.packet_size - 8;
                        let full = r.buf.len() / body * body;
                        let mut out = Vec::new();
                        frame(
                            &mut out,
                            ty::REPLY,
                            &r.buf[..full],
                            r.packet_size,
                            false,
                            &mut r.packet_id,
                        );
                        r.w.write_all(&out).await?;
                        r.w.flush().await?;
                        return Ok(Flow::Close);
                    }
                    let res = if tokens::prefer_nbc(row) {
                        tokens::nbc_row(&mut r.buf, &rs.cols, row)
                    } else {
                        tokens::row(&mut r.buf, &rs.cols, row)
                    };
                    if let Err(e) = res {
                        tokens::error(&mut r.buf, &e);
                        errored = true;
                        break;
                    }
                    // Flush and look for ATTENTION only now and then: both cost more
                    // than encoding a row.
                    if r.buf.len() >= r.packet_size * 16 {
                        r.maybe_flush().await?;
                    }
                    if n % 128 == 127 && r.attention() {
                        tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
                        r.finish().await?;
                        return Ok(Flow::Continue);
                    }
                }
            }
            Out::Done { count, error } => {
                let mut status = if count.is_some() { done::COUNT } else { 0 };
                if error || errored {
                    status |= done::ERROR;
                    errored = false;
                }
                let kind = if rpc {
                    DoneKind::InProc
                } else {
                    DoneKind::Done
                };
                if rpc || Some(i) != last_done {
                    status |= done::MORE;
                }
                tokens::done(&mut r.buf, kind, status, count.unwrap_or(0));
            }
            Out::Error(e) => tokens::error(&mut r.buf, &e),
            Out::Info(n, text) => tokens::info(&mut r.buf, n, &text),
            Out::Env(Env::Database { new, old }) => tokens::env_string(&mut r.buf, 1, &new, &old),
            Out::Env(Env::Begin(d)) => tokens::env_transaction(&mut r.buf, 8, d),
            Out::Env(Env::Commit(d)) => tokens::env_transaction(&mut r.buf, 9, d),
            Out::Env(Env::Rollback(d)) => tokens::env_transaction(&mut r.buf, 10, d),
        }
        r.maybe_flush().await?;
    }
    if rpc {
        tokens::return_status(&mut r.buf, 0);
        if let Some(h) = handle {
            tokens::return_int(&mut r.buf, 0, "", h);
        }
        tokens::done(&mut r.buf, DoneKind::Proc, done::FINAL, 0);
    } else if last_done.is_none() {
        tokens::done(&mut r.buf, DoneKind::Done, done::FINAL, 0);
    }
    if r.attention() {
        tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
    }
    r.finish().await?;
    Ok(Flow::Continue)
}

fn login_error(e: &SqlError) -> Vec<u8> {
    let mut b = Vec::new();
    tokens::error(&mut b, e);
    tokens::done(&mut b, DoneKind::Done, done::ERROR, 0);
    b
}

async fn connection(shared: Arc<Shared>, mut tcp: TcpStream) -> Result<(), SimError> {
    tcp.set_nodelay(true)?;
    // PRELOGIN is read straight from the socket so no bytes of a following TLS handshake
    // are buffered away from the TLS layer.
    let Some(msg) = read_message(&mut tcp).await? else {
        return Ok(());
    };
    if msg.ty != ty::PRELOGIN {
        return Err(SimError::Protocol(format!(
            "expected PRELOGIN, got packet type {}",
            msg.ty
        )));
    }
    let pre = prelogin::parse(&msg.payload)?;
    let answer = match (&shared.tls, pre.encryption) {
        (Some(_), prelogin::ENCRYPT_OFF) => prelogin::ENCRYPT_OFF,
        (Some(_), prelogin::ENCRYPT_ON | prelogin::ENCRYPT_REQ) => prelogin::ENCRYPT_ON,
        _ => prelogin::ENCRYPT_NOT_SUP,
    };
    debug!(client_encryption = pre.encryption, answer, "prelogin");
    write_message(&mut tcp, ty::REPLY, &prelogin::response(answer), 4096).await?;
    match (&shared.tls, answer) {
        (Some(acceptor), prelogin::ENCRYPT_ON) => {
            let mut tls = acceptor.accept(PreloginWrap::new(tcp)).await?;
            tls.get_mut().0.handshake_done();
            session(shared, tls, None).await
        }
        (Some(acceptor), prelogin::ENCRYPT_OFF) => {
            // Login-only encryption: LOGIN7 arrives over TLS, everything after in the clear.
            let mut tls = acceptor.accept(PreloginWrap::new(tcp)).await?;
            tls.get_mut().0.handshake_done();
            let login = read_message(&mut tls).await?;
            let (wrap, _) = tls.into_inner();
            match login {
                Some(m) => session(shared, wrap.inner, Some(m)).await,
                None => Ok(()),
            }
        }
        _ => session(shared, tcp, None).await,
    }
}

/// LOGIN7 and the request loop over a plain or TLS stream.
async fn session<S>(
    shared: Arc<Shared>,
    stream: S,
    login_msg: Option<Message>,
) -> Result<(), SimError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let msg = match login_msg {
        Some(m) => m,
        None => match read_message(&mut rd).await? {
            Some(m) => m,
            None => return Ok(()),
        },
    };
    if msg.ty != ty::LOGIN7 {
        return Err(SimError::Protocol(format!(
            "expected LOGIN7, got packet type {}",
            msg.ty
        )));
    }
    let login = login::parse(&msg.payload)?;
    debug!(?login, "login");
    let user_ok = login.user.eq_ignore_ascii_case("sa") && login.password == shared.password;
    if !user_ok || shared.ctl.logins_refused() {
        let e = SqlError::new(18456, format!("Login failed for user '{}'.", login.user))
            .state(1)
            .class(14);
        write_message(&mut wr, ty::REPLY, &login_error(&e), 4096).await?;
        return Ok(());
    }
    let db = if login.database.is_empty() {
        "master".to_string()
    } else {
        login.database.clone()
    };
    let found = shared.engine().engine.db(&db).map(|d| d.name.clone());
    let db_name = match found {
        Ok(n) => n,
        Err(_) => {
            let e = SqlError::new(
                4060,
                format!("Cannot open database \"{db}\" requested by the login. The login failed."),
            )
            .class(11);
            let mut b = Vec::new();
            tokens::error(&mut b, &e);
            b.extend(login_error(
                &SqlError::new(18456, format!("Login failed for user '{}'.", login.user)).class(14),
            ));
            write_message(&mut wr, ty::REPLY, &b, 4096).await?;
            return Ok(());
        }
    };
    let packet_size = match login.packet_size {
        0 => 4096,
        n => n.clamp(512, 32767) as usize,
    };
    let spid = shared.next_spid.fetch_add(1, Ordering::Relaxed);
    let mut sess = Session::new(&db_name.to_lowercase(), &login.user, spid);
    let mut b = Vec::new();
    tokens::env_string(&mut b, 1, &db_name, "master");
    tokens::info(
        &mut b,
        5701,
        &format!("Changed database context to '{db_name}'."),
    );
    tokens::env_collation(&mut b);
    tokens::env_string(&mut b, 2, "us_english", "");
    tokens::info(&mut b, 5703, "Changed language setting to us_english.");
    tokens::login_ack(&mut b);
    tokens::env_string(&mut b, 4, &packet_size.to_string(), "4096");
    tokens::done(&mut b, DoneKind::Done, done::FINAL, 0);
    write_message(&mut wr, ty::REPLY, &b, packet_size).await?;

    // A reader task, so an ATTENTION can arrive while a result is streaming.
    let attention = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel::<Message>(8);
    let attn2 = attention.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(m)) = read_message(&mut rd).await {
            if m.ty == ty::ATTENTION {
                attn2.store(true, Ordering::SeqCst);
            }
            if tx.send(m).await.is_err() {
                break;
            }
        }
    });
    let generation = shared.ctl.restart_gen();
    let result = serve(
        &shared,
        &mut sess,
        &mut wr,
        &mut rx,
        attention,
        packet_size,
        generation,
    )
    .await;
    reader.abort();
    {
        let mut eng = shared.engine();
        let mut ex = eng.exec(&mut sess, &shared.ctl);
        ex.abort_open();
    }
    let _ = wr.shutdown().await;
    result
}

async fn serve<W: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    sess: &mut Session,
    wr: &mut W,
    rx: &mut mpsc::Receiver<Message>,
    attention: Arc<AtomicBool>,
    packet_size: usize,
    generation: u64,
) -> Result<(), SimError> {
    loop {
        if shared.ctl.restart_gen() != generation {
            return Ok(());
        }
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = shared.ctl.restarted() => return Ok(()),
        };
        let Some(msg) = msg else { return Ok(()) };
        let mut r = Responder {
            w: wr,
            packet_size,
            buf: Vec::new(),
            packet_id: 1,
            attention: attention.clone(),
        };
        let flow = match msg.ty {
            ty::ATTENTION => {
                if r.attention() {
                    tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
                    r.finish().await?;
                }
                Flow::Continue
            }
            ty::SQL_BATCH => {
                let sql = rpc::parse_batch(&msg.payload)?;
                shared.ctl.record(|| sql.clone());
                sess.vars.clear(); // variables live for one batch, as in T-SQL
                let mut segs = Default::default();
                let mut outs = run(shared, sess, |ex| {
                    // Table variables are taken apart first (sql/table_vars.rs).
                    if !ex.run_with_table_vars(&sql) {
                        segs = ex.parse_segments(&sql)
                    }
                });
                // WAITFOR DELAY pauses between statements with the engine unlocked, so the
                // capture job and other sessions keep running.
                loop {
                    let mut wait = None;
                    outs.extend(run(shared, sess, |ex| wait = ex.run_segments(&mut segs)));
                    match wait {
                        Some(d) => tokio::time::sleep(d).await,
                        None => break,
                    }
                }
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
            ty::TRANSACTION_MANAGER => {
                let outs = run(shared, sess, |ex| ex.run_tm(&msg.payload));
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
            ty::RPC => {
                let req = rpc::parse(&msg.payload)?;
                shared.ctl.record(|| {
                    let texts: Vec<String> = req
                        .params
                        .iter()
                        .filter_map(|p| p.value.to_text())
                        .collect();
                    format!("EXEC {} {}", req.proc_name, texts.join(" "))
                });
                sess.vars.clear();
                let (outs, handle) = match sess.prepared.plan(req) {
                    Plan::Forward(req) => (run(shared, sess, |ex| ex.run_rpc(req)), None),
                    Plan::Execute { req, handle } => {
                        (run(shared, sess, |ex| execute_rpc(ex, req)), handle)
                    }
                    Plan::Nothing => (Vec::new(), None),
                    Plan::Fail(e) => (
                        vec![
                            Out::Error(e),
                            Out::Done {
                                count: None,
                                error: true,
                            },
                        ],
                        None,
                    ),
                };
                respond(&mut r, outs, true, handle, &shared.ctl).await?
            }
            other => {
                let e = SqlError::unsupported(format!("TDS packet type {other}"));
                let mut outs = Vec::new();
                outs.push(Out::Error(e));
                outs.push(Out::Done {
                    count: None,
                    error: true,
                });
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
        };
        if let Flow::Close = flow {
            return Ok(());
        }
    }
}

fn run(shared: &Shared, sess: &mut Session, f: impl FnOnce(&mut Exec<'_>)) -> Vec<Out> {
    let mut eng = shared.engine();
    let mut ex = eng.exec(sess, &shared.ctl);
    f(&mut ex);
    std::mem::take(&mut ex.out)
}

/// Runs an `sp_executesql` request: its values become the session's variables, then its
/// statement runs, through the table-variable path when it declares one.
fn execute_rpc(ex: &mut Exec<'_>, req: rpc::RpcRequest) {
    let stmt = req.params.first().and_then(|p| p.value.to_text());
    match stmt {
        Some(stmt) if stmt.to_lowercase().contains("table") => {
            for p in req.params.iter().skip(2) {
                let ty = p.ty.unwrap_or_else(|| p.value.natural_type());
                ex.sess
                    .vars
                    .insert(p.name.to_lowercase(), (ty, p.value.clone()));
            }
            if !ex.run_with_table_vars(&stmt) {
                ex.run_batch(&stmt);
            }
        }
        _ => ex.run_rpc(req),
    }
}
