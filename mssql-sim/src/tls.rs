//! TLS for TDS: the simulator's certificates, TDS 8.0 strict TLS, and the PRELOGIN wrapping
//! TDS 7.x requires while the TLS handshake runs (handshake records travel inside TDS PRELOGIN
//! packets; afterwards TLS records go straight over TCP).

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

/// The simulator's TLS: a CA of its own and a server certificate for `localhost` /
/// `127.0.0.1` it signed (clients validate it by trusting the CA, `ca_file`; TDS 8.0 strict
/// always validates), served in the two ways SQL Server 2022 offers TLS.
pub(crate) struct Tls {
    /// TDS 7.x: TLS 1.2 inside PRELOGIN packets after the PRELOGIN exchange.
    pub(crate) prelogin: TlsAcceptor,
    /// TDS 8.0 strict: TLS 1.2 or 1.3 straight over TCP before any TDS packet, ALPN `tds/8.0`.
    pub(crate) strict: TlsAcceptor,
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    /// The server certificate, PEM (what mssql-jdbc pins with `serverCertificate`).
    pub(crate) server_pem: String,
}

/// ALPN protocol of TDS 8.0 (MS-TDS 2.1, "TDS 8.0"; what tiberius and mssql-jdbc offer).
const TDS_8_ALPN: &[u8] = b"tds/8.0";

impl Tls {
    /// Fresh keys and certificates.
    pub(crate) fn generate() -> Result<Tls, SimError> {
        let failed =
            |e: rcgen::Error| SimError::Invalid(format!("certificate generation failed: {e}"));
        let ca_key = rcgen::KeyPair::generate().map_err(failed)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mssql-sim test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(failed)?;
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(failed)?;
        let cert = params.signed_by(&key, &ca).map_err(failed)?;
        let chain = vec![cert.der().clone(), ca.der().clone()];
        let key_der = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        // SQL Server speaks TLS 1.2 inside TDS 7.x PRELOGIN; FreeTDS loses its TLS 1.3
        // Finished message in this mode, so 1.3 is not offered there.
        let mut prelogin = server_config(
            &[&tokio_rustls::rustls::version::TLS12],
            chain.clone(),
            key_der(),
        )?;
        // Tickets sent after the handshake would still be wrapped in PRELOGIN packets while
        // the client has already switched to raw TLS records; SQL Server sends none either.
        prelogin.send_tls13_tickets = 0;
        let mut strict = server_config(
            &[
                &tokio_rustls::rustls::version::TLS13,
                &tokio_rustls::rustls::version::TLS12,
            ],
            chain,
            key_der(),
        )?;
        strict.alpn_protocols = vec![TDS_8_ALPN.to_vec()];
        Ok(Tls {
            prelogin: TlsAcceptor::from(Arc::new(prelogin)),
            strict: TlsAcceptor::from(Arc::new(strict)),
            ca_pem: ca.pem(),
            server_pem: cert.pem(),
        })
    }
}

fn server_config(
    versions: &[&'static tokio_rustls::rustls::SupportedProtocolVersion],
    chain: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, SimError> {
    let failed = |e: tokio_rustls::rustls::Error| {
        SimError::Invalid(format!("TLS configuration failed: {e}"))
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(failed)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(failed)
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
