//! One client connection: PRELOGIN (and TLS, in the TDS 7.x wrapping or TDS 8.0 strict), the
//! LOGIN7 exchange, then the request loop answering SQL batches, RPCs and attentions.
//!
//! - this file: accepting a connection — PRELOGIN, TLS (wrapped or strict), LOGIN7 — and
//!   the session's life around its request loop.
//! - `requests`: the request loop and the `Responder` that streams answers as packets.
//! - `wait`: a request's statements run to their end, lock waits and cancels included.

mod requests;
mod wait;

use requests::serve;
use wait::Signals;
pub(super) use wait::run;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tracing::debug;

use crate::error::{SimError, SqlError};
use crate::server::shared::Shared;
use crate::sql::session::Session;
use crate::tds::packet::{Message, read_message, ty, write_message};
use crate::tds::tokens::{self, DoneKind, done};
use crate::tds::{login, prelogin};
use crate::tls::PreloginWrap;

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
