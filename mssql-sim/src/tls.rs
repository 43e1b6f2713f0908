//! TLS for TDS: a self-signed certificate, and the PRELOGIN wrapping MS-TDS requires while
//! the TLS handshake runs (handshake records travel inside TDS PRELOGIN packets; afterwards
//! TLS records go straight over TCP).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SimError;

const HEADER: usize = 8;
const PRELOGIN: u8 = 0x12;

/// Builds an acceptor with a fresh self-signed certificate for `localhost` / `127.0.0.1`.
pub(crate) fn self_signed_acceptor() -> Result<TlsAcceptor, SimError> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| SimError::Invalid(format!("certificate generation failed: {e}")))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        // SQL Server speaks TLS 1.2 inside TDS 7.x PRELOGIN; FreeTDS loses its TLS 1.3
        // Finished message in this mode, so 1.3 is not offered.
        .with_protocol_versions(&[&tokio_rustls::rustls::version::TLS12])
        .map_err(|e| SimError::Invalid(format!("TLS configuration failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| SimError::Invalid(format!("TLS configuration failed: {e}")))?;
    // Tickets sent after the handshake would still be wrapped in PRELOGIN packets while the
    // client has already switched to raw TLS records; SQL Server sends none either.
    cfg.send_tls13_tickets = 0;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// A stream that frames TLS handshake bytes in PRELOGIN packets until told the handshake
/// is over, then passes bytes through.
pub(crate) struct PreloginWrap<S> {
    pub(crate) inner: S,
    handshake: bool,
    header: [u8; HEADER],
    header_pos: usize,
    remaining: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    replay: Vec<u8>,
}

impl<S> PreloginWrap<S> {
    pub(crate) fn new(inner: S) -> Self {
        PreloginWrap {
            inner,
            handshake: true,
            header: [0; HEADER],
            header_pos: 0,
            remaining: 0,
            wbuf: Vec::new(),
            wpos: 0,
            replay: Vec::new(),
        }
    }

    /// From now on bytes go over the wire unwrapped.
    pub(crate) fn handshake_done(&mut self) {
        self.handshake = false;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginWrap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        if !this.handshake {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.remaining == 0 {
            while this.header_pos < HEADER {
                let mut hb = ReadBuf::new(&mut this.header[this.header_pos..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut hb))?;
                let n = hb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.header_pos += n;
            }
            if this.header[0] != PRELOGIN {
                if (0x14..=0x17).contains(&this.header[0]) {
                    // A raw TLS record: the client finished its handshake and moved on
                    // (rustls reads ahead before reporting the handshake done). Replay the
                    // bytes already taken and pass everything through from here.
                    this.handshake = false;
                    this.replay = this.header[..this.header_pos].to_vec();
                    this.header_pos = 0;
                    return self.poll_read(cx, buf);
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "expected a PRELOGIN packet during the TLS handshake",
                )));
            }
            let len = u16::from_be_bytes([this.header[2], this.header[3]]) as usize;
            this.remaining = len.saturating_sub(HEADER);
            this.header_pos = 0;
        }
        let want = this.remaining.min(buf.remaining());
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(want));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        buf.advance(n);
        this.remaining -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginWrap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.handshake {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if this.wbuf.is_empty() {
            this.wbuf
                .extend_from_slice(&[PRELOGIN, 1, 0, 0, 0, 0, 0, 0]);
            this.wpos = 0;
        }
        this.wbuf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.wbuf.len() > HEADER {
            if this.wpos == 0 {
                let len = this.wbuf.len().min(u16::MAX as usize) as u16;
                this.wbuf[2..4].copy_from_slice(&len.to_be_bytes());
            }
            while this.wpos < this.wbuf.len() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.wbuf[this.wpos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                this.wpos += n;
            }
            this.wbuf.clear();
            this.wpos = 0;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
