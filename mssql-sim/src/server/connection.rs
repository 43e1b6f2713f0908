//! One client connection: PRELOGIN (and TLS, in the TDS 7.x wrapping or TDS 8.0 strict), the
//! LOGIN7 exchange, then the request loop answering SQL batches, RPCs and attentions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tracing::debug;

use super::Shared;
use crate::error::{SimError, SqlError};
use crate::faults::Control;
use crate::sql::exec::{Exec, Pause};
use crate::sql::out::{Env, Out};
use crate::sql::session::Session;
use crate::tds::packet::{Message, frame, read_message, ty, write_message};
use crate::tds::prepared::Plan;
use crate::tds::tokens::{self, DoneKind, done};
use crate::tds::{login, prelogin, rpc};
use crate::tls::PreloginWrap;

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

pub(super) async fn connection(shared: Arc<Shared>, mut tcp: TcpStream) -> Result<(), SimError> {
    tcp.set_nodelay(true)?;
    // A TLS record first (content type 22, a ClientHello) is a TDS 8.0 strict client.
    let mut first = [0u8; 1];
    if tcp.peek(&mut first).await? == 1 && first[0] == TLS_HANDSHAKE_RECORD {
        return strict(shared, tcp).await;
    }
    // PRELOGIN is read straight from the socket so no bytes of a following TLS handshake
    // are buffered away from the TLS layer.
    let Some(pre) = read_prelogin(&mut tcp).await? else {
        return Ok(());
    };
    let answer = match (&shared.tls, pre.encryption) {
        (Some(_), prelogin::ENCRYPT_OFF) => prelogin::ENCRYPT_OFF,
        (Some(_), prelogin::ENCRYPT_ON | prelogin::ENCRYPT_REQ) => prelogin::ENCRYPT_ON,
        _ => prelogin::ENCRYPT_NOT_SUP,
    };
    debug!(client_encryption = pre.encryption, answer, "prelogin");
    write_message(&mut tcp, ty::REPLY, &prelogin::response(answer), 4096).await?;
    match (&shared.tls, answer) {
        (Some(tls), prelogin::ENCRYPT_ON) => {
            let mut tls = tls.prelogin.accept(PreloginWrap::new(tcp)).await?;
            tls.get_mut().0.handshake_done();
            session(shared, tls, None).await
        }
        (Some(tls), prelogin::ENCRYPT_OFF) => {
            // Login-only encryption: LOGIN7 arrives over TLS, everything after in the clear.
            let mut tls = tls.prelogin.accept(PreloginWrap::new(tcp)).await?;
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

/// The client's PRELOGIN, the first TDS message of a connection; `None` if the client
/// closed the connection first.
async fn read_prelogin<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<prelogin::ClientPrelogin>, SimError> {
    let Some(msg) = read_message(stream).await? else {
        return Ok(None);
    };
    if msg.ty != ty::PRELOGIN {
        return Err(SimError::Protocol(format!(
            "expected PRELOGIN, got packet type {}",
            msg.ty
        )));
    }
    prelogin::parse(&msg.payload).map(Some)
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TDS 8.0 strict (MS-TDS 3.3.5, the TDS 8.0 states): TLS straight over TCP, then PRELOGIN
/// and everything after inside it. A server without TLS, or one speaking only TDS 7.x, takes
/// the ClientHello for a malformed PRELOGIN and closes the connection, as such a server does.
async fn strict(shared: Arc<Shared>, tcp: TcpStream) -> Result<(), SimError> {
    let Some(tls) = shared.tls.as_ref().filter(|_| shared.strict_encryption) else {
        return Err(SimError::Protocol(
            "a TLS handshake before PRELOGIN (TDS 8.0 strict), which this server does not speak"
                .into(),
        ));
    };
    let mut stream = tls.strict.accept(tcp).await?;
    let Some(pre) = read_prelogin(&mut stream).await? else {
        return Ok(());
    };
    // Encryption is established already; the answer's encryption byte is unverified against
    // SQL Server 2022 (MS-TDS does not give it for TDS 8.0): "on" for a client that asked for
    // encryption, as in TDS 7.x, which tiberius and mssql-jdbc accept in strict mode.
    let answer = match pre.encryption {
        prelogin::ENCRYPT_OFF | prelogin::ENCRYPT_NOT_SUP => prelogin::ENCRYPT_NOT_SUP,
        _ => prelogin::ENCRYPT_ON,
    };
    debug!(
        client_encryption = pre.encryption,
        answer, "prelogin (TDS 8.0 strict)"
    );
    write_message(&mut stream, ty::REPLY, &prelogin::response(answer), 4096).await?;
    session(shared, stream, None).await
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

    // A reader task, so an ATTENTION can arrive while a result is streaming or a statement
    // waits for a lock.
    let attention = Arc::new(AtomicBool::new(false));
    let signals = Signals {
        attention: attention.clone(),
        closed: Arc::new(AtomicBool::new(false)),
        wake: Arc::new(Notify::new()),
    };
    let (tx, mut rx) = mpsc::channel::<Message>(8);
    let reader_signals = signals.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(m)) = read_message(&mut rd).await {
            if m.ty == ty::ATTENTION {
                reader_signals.attention.store(true, Ordering::SeqCst);
                reader_signals.wake.notify_one();
            }
            if tx.send(m).await.is_err() {
                break;
            }
        }
        reader_signals.closed.store(true, Ordering::SeqCst);
        reader_signals.wake.notify_one();
    });
    let generation = shared.ctl.restart_gen();
    let result = serve(
        &shared,
        &mut sess,
        &mut wr,
        &mut rx,
        &signals,
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
    signals: &Signals,
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
            attention: signals.attention.clone(),
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
                match drive(shared, sess, &mut segs, signals, generation).await {
                    Some(more) => outs.extend(more),
                    None => return Ok(()),
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
                let (segs, mut outs, handle) = match sess.prepared.plan(req) {
                    Plan::Forward(req) => {
                        let mut segs = Default::default();
                        let outs = run(shared, sess, |ex| segs = ex.rpc_segments(req));
                        (Some(segs), outs, None)
                    }
                    Plan::Execute { req, handle } => {
                        let mut segs = None;
                        let outs = run(shared, sess, |ex| segs = execute_rpc(ex, req));
                        (segs, outs, handle)
                    }
                    Plan::Nothing => (None, Vec::new(), None),
                    Plan::Fail(e) => (
                        None,
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
                if let Some(mut segs) = segs {
                    match drive(shared, sess, &mut segs, signals, generation).await {
                        Some(more) => outs.extend(more),
                        None => return Ok(()),
                    }
                }
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

pub(super) fn run(shared: &Shared, sess: &mut Session, f: impl FnOnce(&mut Exec<'_>)) -> Vec<Out> {
    let mut eng = shared.engine();
    let mut ex = eng.exec(sess, &shared.ctl);
    f(&mut ex);
    std::mem::take(&mut ex.out)
}

/// Runs an `sp_executesql` request: its values become the session's variables, then its
/// statement runs, through the table-variable path when it declares one (which cannot wait
/// for locks); otherwise its statements are returned for [`drive`] to run.
fn execute_rpc(
    ex: &mut Exec<'_>,
    req: rpc::RpcRequest,
) -> Option<std::collections::VecDeque<crate::sql::parse::Segment>> {
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
            None
        }
        _ => Some(ex.rpc_segments(req)),
    }
}

/// What the request loop and a waiting statement listen to besides the engine.
#[derive(Clone)]
struct Signals {
    /// The client sent ATTENTION (cancel).
    attention: Arc<AtomicBool>,
    /// The client's side of the connection is gone.
    closed: Arc<AtomicBool>,
    /// Notified when either of the above is set.
    wake: Arc<Notify>,
}

/// How a lock wait ended.
enum WaitEnd {
    /// A lock was released (or a victim chosen): run the statement again.
    Woken,
    /// `SET LOCK_TIMEOUT` expired.
    TimedOut,
    /// The client cancelled.
    Cancelled,
    /// The connection closed or the server restarted.
    Gone,
}

/// Runs a request's statements to their end: `WAITFOR DELAY` and lock waits pause them with
/// the engine unlocked, so other sessions (the lock's holder among them) and the capture job
/// go on. `None` when the connection must end (closed by the client, server restarted).
async fn drive(
    shared: &Arc<Shared>,
    sess: &mut Session,
    segs: &mut std::collections::VecDeque<crate::sql::parse::Segment>,
    signals: &Signals,
    generation: u64,
) -> Option<Vec<Out>> {
    let mut outs = Vec::new();
    loop {
        let mut pause = None;
        outs.extend(run(shared, sess, |ex| {
            ex.pausable = true;
            pause = ex.run_segments(segs)
        }));
        match pause {
            None => return Some(outs),
            Some(Pause::Delay(d)) => tokio::time::sleep(d).await,
            Some(Pause::Lock { seen, deadline }) => {
                match wait_for_lock(shared, signals, seen, deadline, generation).await {
                    WaitEnd::Woken => {}
                    WaitEnd::TimedOut => {
                        outs.extend(run(shared, sess, |ex| ex.lock_timed_out(segs)));
                    }
                    WaitEnd::Cancelled => {
                        outs.extend(run(shared, sess, |ex| ex.lock_wait_cancelled(segs)));
                        return Some(outs);
                    }
                    WaitEnd::Gone => return None,
                }
            }
        }
    }
}

/// Waits until the lock epoch moves past `seen`, the deadline passes, the client cancels or
/// goes away, or the server restarts.
async fn wait_for_lock(
    shared: &Shared,
    signals: &Signals,
    seen: u64,
    deadline: Option<std::time::Instant>,
    generation: u64,
) -> WaitEnd {
    let mut epochs = shared.ctl.lock_epochs();
    loop {
        if signals.closed.load(Ordering::SeqCst) || shared.ctl.restart_gen() != generation {
            return WaitEnd::Gone;
        }
        if signals.attention.load(Ordering::SeqCst) {
            return WaitEnd::Cancelled;
        }
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            moved = epochs.wait_for(|e| *e != seen) => {
                return if moved.is_ok() { WaitEnd::Woken } else { WaitEnd::Gone };
            }
            _ = expiry => return WaitEnd::TimedOut,
            _ = signals.wake.notified() => {}
            _ = shared.ctl.restarted() => return WaitEnd::Gone,
        }
    }
}
