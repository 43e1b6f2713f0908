//! Which step of reaching the server a connection is in, watched on the bytes the driver
//! writes, so that a timeout names the step the server stopped answering in (as
//! Microsoft.Data.SqlClient's "Connection Timeout Expired … during the pre-login handshake"
//! does); and the server's pre-login answer on encryption, which decides whether an
//! `Encrypt=Optional` connection validates the certificate.

use crate::Encryption;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A step of reaching and using SQL Server, as named in [`Error::Timeout`](crate::Error::Timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NetworkStep {
    /// Opening the TCP connection (bounded by `Connect Timeout`).
    Connect,
    /// The TDS pre-login exchange: the client's PRELOGIN packet waits for the server's answer
    /// (bounded by `Connect Timeout`, with the steps after it).
    PreLogin,
    /// The TLS handshake: inside PRELOGIN packets for TDS 7.x, before any TDS packet for
    /// TDS 8.0 (`Encrypt=Strict`); bounded by `Connect Timeout`.
    TlsHandshake,
    /// The LOGIN7 exchange (bounded by `Connect Timeout`).
    Login,
    /// One query's round trip to the server (bounded by `Command Timeout`, per response).
    Query,
}

impl std::fmt::Display for NetworkStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetworkStep::Connect => "TCP connect",
            NetworkStep::PreLogin => "pre-login handshake",
            NetworkStep::TlsHandshake => "TLS handshake",
            NetworkStep::Login => "login",
            NetworkStep::Query => "query",
        })
    }
}

impl NetworkStep {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => NetworkStep::Connect,
            1 => NetworkStep::PreLogin,
            2 => NetworkStep::TlsHandshake,
            3 => NetworkStep::Login,
            _ => NetworkStep::Query,
        }
    }
}

/// Whether the server certificate is validated, as Microsoft.Data.SqlClient decides
/// ("Encryption and certificate validation behavior" in its documentation):
/// `Encrypt=Strict` always validates (`TrustServerCertificate` is ignored);
/// `Encrypt=Mandatory`/`true` validates unless `TrustServerCertificate=true`;
/// `Encrypt=Optional`/`false` encrypts only the login and validates nothing, unless the
/// server forces encryption (its pre-login answer), where it validates unless
/// `TrustServerCertificate=true`.
pub(crate) fn validates_certificate(
    encryption: Encryption,
    trust_server_certificate: bool,
    server_forces_encryption: bool,
) -> bool {
    match encryption {
        Encryption::Strict => true,
        Encryption::Required => !trust_server_certificate,
        Encryption::LoginOnly | Encryption::Off => {
            server_forces_encryption && !trust_server_certificate
        }
    }
}

/// The server's `ENCRYPTION` pre-login option (TDS `ENCRYPT_OFF` 0, `ENCRYPT_ON` 1,
/// `ENCRYPT_NOT_SUP` 2, `ENCRYPT_REQ` 3); `UNKNOWN` until the answer is read.
const UNKNOWN: u8 = 0xFF;

/// What a [`Watched`] stream saw; shared with the code that connects.
#[derive(Debug)]
pub(crate) struct Watch {
    step: AtomicU8,
    server_encryption: AtomicU8,
    /// Fail the connection as soon as the server's pre-login answer says it encrypts
    /// everything (`ENCRYPT_ON`/`ENCRYPT_REQ`): the caller connected without validating the
    /// certificate, which Microsoft's drivers only do when the server does not force it.
    refuse_forced_encryption: bool,
}

impl Watch {
    pub(crate) fn new(refuse_forced_encryption: bool) -> Arc<Self> {
        Arc::new(Self {
            step: AtomicU8::new(NetworkStep::PreLogin as u8),
            server_encryption: AtomicU8::new(UNKNOWN),
            refuse_forced_encryption,
        })
    }

    /// The furthest step the driver reached.
    pub(crate) fn step(&self) -> NetworkStep {
        NetworkStep::from_u8(self.step.load(Ordering::Relaxed))
    }

    /// Whether this connection stops when the server forces encryption.
    pub(crate) fn refuses_forced_encryption(&self) -> bool {
        self.refuse_forced_encryption
    }

    /// Whether the server's pre-login answer asked for encryption of everything.
    pub(crate) fn server_forces_encryption(&self) -> bool {
        matches!(self.server_encryption.load(Ordering::Relaxed), 1 | 3)
    }

    fn reach(&self, step: NetworkStep) {
        self.step.fetch_max(step as u8, Ordering::Relaxed);
    }
}

/// A stream that reports to a [`Watch`] what the driver does over it.
#[derive(Debug)]
pub(crate) struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
    writes: Framer,
    prelogin_sent: bool,
    /// The server's first TDS packet (its PRELOGIN answer) while it is being read; `None`
    /// once read, or when not wanted.
    first_reply: Option<Vec<u8>>,
}

impl<S> Watched<S> {
    /// Watches `inner`; `strict` when TLS starts before any TDS packet (TDS 8.0), where the
    /// server's first bytes are TLS and carry no pre-login answer.
    pub(crate) fn new(inner: S, watch: Arc<Watch>, strict: bool) -> Self {
        Self {
            inner,
            watch,
            writes: Framer::default(),
            prelogin_sent: false,
            first_reply: (!strict).then(Vec::new),
        }
    }

    fn on_frame(&mut self, tls: bool, kind: u8) {
        match (tls, kind) {
            // TDS PRELOGIN: the first is the pre-login itself; later ones carry TLS handshake
            // records (TDS 7.x wraps the TLS handshake in PRELOGIN packets).
            (false, 0x12) if !self.prelogin_sent => self.prelogin_sent = true,
            (false, 0x12) => self.watch.reach(NetworkStep::TlsHandshake),
            (false, 0x10) => self.watch.reach(NetworkStep::Login),
            // A raw TLS handshake record: TDS 8.0 strict mode.
            (true, 0x16) => self.watch.reach(NetworkStep::TlsHandshake),
            // TLS application data: the handshake is over on the client's side; what follows
            // is the (encrypted) LOGIN7.
            (true, 0x17) => self.watch.reach(NetworkStep::Login),
            _ => {}
        }
    }

    /// Collects the server's first packet; returns an error when the connection must stop.
    fn on_read(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(reply) = self.first_reply.as_mut() else {
            return Ok(());
        };
        reply.extend_from_slice(bytes);
        if reply.len() < 8 {
            return Ok(());
        }
        let length = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
        if reply.len() < length {
            return Ok(());
        }
        let encryption = prelogin_encryption(reply.get(8..length).unwrap_or_default());
        self.first_reply = None;
        if let Some(value) = encryption {
            self.watch.server_encryption.store(value, Ordering::Relaxed);
        }
        if self.watch.refuse_forced_encryption && self.watch.server_forces_encryption() {
            return Err(io::Error::other(
                "the server forces encryption: its certificate must be validated",
            ));
        }
        Ok(())
    }
}

/// The `ENCRYPTION` option (token 0x01) of a PRELOGIN packet's payload (MS-TDS 2.2.6.5).
fn prelogin_encryption(payload: &[u8]) -> Option<u8> {
    let mut i = 0;
    while let Some(&token) = payload.get(i) {
        if token == 0xFF {
            return None;
        }
        let field = payload.get(i + 1..i + 5)?;
        let offset = usize::from(u16::from_be_bytes([field[0], field[1]]));
        let length = u16::from_be_bytes([field[2], field[3]]);
        if token == 0x01 && length >= 1 {
            return payload.get(offset).copied();
        }
        i += 5;
    }
    None
}

/// Splits the bytes written into TDS packets (8-byte header, length at bytes 2..4 including
/// the header) and TLS records (5-byte header, content type 0x14..=0x17, body length at
/// bytes 3..5), reporting each one's type.
#[derive(Debug, Default)]
struct Framer {
    header: [u8; 8],
    have: usize,
    skip: usize,
}

impl Framer {
    fn feed(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(bool, u8)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let tls = (0x14..=0x17).contains(&if self.have == 0 {
                bytes[0]
            } else {
                self.header[0]
            });
            let need = if tls { 5 } else { 8 };
            let n = (need - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == need {
                let h = self.header;
                self.skip = if tls {
                    usize::from(u16::from_be_bytes([h[3], h[4]]))
                } else {
                    usize::from(u16::from_be_bytes([h[2], h[3]])).saturating_sub(8)
                };
                self.have = 0;
                on_frame(tls, h[0]);
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.on_read(&buf.filled()[before..])),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            let mut frames = Vec::new();
            this.writes
                .feed(&buf[..*n], |tls, kind| frames.push((tls, kind)));
            for (tls, kind) in frames {
                this.on_frame(tls, kind);
            }
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_reports_tds_packets_and_tls_records_split_across_writes() {
        let mut framer = Framer::default();
        let mut seen = Vec::new();
        // A PRELOGIN packet of 10 bytes (8 header + 2), then a TLS handshake record of 3
        // body bytes, fed one byte at a time.
        let bytes = [
            0x12, 1, 0, 10, 0, 0, 1, 0, 0xAA, 0xBB, 0x16, 3, 1, 0, 3, 1, 2, 3, 0x17, 3, 3, 0, 0,
        ];
        for b in bytes {
            framer.feed(&[b], |tls, kind| seen.push((tls, kind)));
        }
        assert_eq!(seen, [(false, 0x12), (true, 0x16), (true, 0x17)]);
    }

    #[test]
    fn certificate_validation_follows_microsoft_sqlclient() {
        use Encryption::*;
        // (Encrypt, TrustServerCertificate, server forces encryption) -> validated
        let table = [
            (LoginOnly, false, false, false),
            (LoginOnly, true, false, false),
            (LoginOnly, false, true, true),
            (LoginOnly, true, true, false),
            (Required, false, false, true),
            (Required, true, false, false),
            (Required, false, true, true),
            (Strict, true, false, true),
            (Strict, false, true, true),
        ];
        for (encryption, trust, forces, validated) in table {
            assert_eq!(
                validates_certificate(encryption, trust, forces),
                validated,
                "Encrypt={encryption:?} TrustServerCertificate={trust} forced={forces}"
            );
        }
    }

    #[test]
    fn prelogin_answer_yields_its_encryption_option() {
        // VERSION at offset 11 (6 bytes), ENCRYPTION at offset 17 (1 byte), terminator.
        let mut payload = vec![0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xFF];
        payload.extend_from_slice(&[16, 0, 0, 0, 0, 0, 3]);
        assert_eq!(prelogin_encryption(&payload), Some(3));
        assert_eq!(prelogin_encryption(&[0xFF]), None);
        assert_eq!(prelogin_encryption(&[0x01, 0]), None, "truncated: no panic");
    }
}
