//! TDS packet framing: an 8-byte header, then payload; a message ends at the packet with
//! the end-of-message status bit.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::SimError;

/// Packet types the server reads or writes.
pub(crate) mod ty {
    pub(crate) const SQL_BATCH: u8 = 1;
    pub(crate) const RPC: u8 = 3;
    pub(crate) const REPLY: u8 = 4;
    pub(crate) const ATTENTION: u8 = 6;
    pub(crate) const TRANSACTION_MANAGER: u8 = 14;
    pub(crate) const LOGIN7: u8 = 16;
    pub(crate) const PRELOGIN: u8 = 18;
}

const HEADER: usize = 8;
const STATUS_EOM: u8 = 0x01;
/// Largest message the simulator accepts from a client (guards memory on hostile input).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// One complete client message.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) ty: u8,
    pub(crate) payload: Vec<u8>,
}

/// Reads one message (all packets up to end-of-message). `Ok(None)` on clean EOF.
pub(crate) async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Message>, SimError> {
    let mut payload = Vec::new();
    let mut first_ty = None;
    loop {
        let mut h = [0u8; HEADER];
        match r.read_exact(&mut h).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && first_ty.is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if len < HEADER {
            return Err(SimError::Protocol(format!(
                "packet length {len} shorter than header"
            )));
        }
        let start = payload.len();
        if start + len > MAX_MESSAGE {
            return Err(SimError::Protocol("message too large".into()));
        }
        payload.resize(start + len - HEADER, 0);
        r.read_exact(&mut payload[start..]).await?;
        let ty = *first_ty.get_or_insert(h[0]);
        if h[1] & STATUS_EOM != 0 {
            return Ok(Some(Message { ty, payload }));
        }
    }
}

/// Splits `payload` into packets of at most `packet_size` bytes; the last one carries EOM
/// only if `end` is set (a long result is written in several flushes).
pub(crate) fn frame(
    out: &mut Vec<u8>,
    ty: u8,
    payload: &[u8],
    packet_size: usize,
    end: bool,
    packet_id: &mut u8,
) {
    let max = packet_size.saturating_sub(HEADER).max(1);
    let mut chunks = payload.chunks(max).peekable();
    if payload.is_empty() {
        push_packet(out, ty, &[], end, packet_id);
        return;
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        push_packet(out, ty, c, last && end, packet_id);
    }
}

fn push_packet(out: &mut Vec<u8>, ty: u8, body: &[u8], eom: bool, packet_id: &mut u8) {
    let len = (body.len() + HEADER) as u16;
    out.push(ty);
    out.push(if eom { STATUS_EOM } else { 0 });
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0, 0x33]); // spid 51, as a real server reports a user session
    out.push(*packet_id);
    out.push(0);
    *packet_id = packet_id.wrapping_add(1);
    out.extend_from_slice(body);
}

/// Writes a whole message (framed) and flushes.
pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    ty: u8,
    payload: &[u8],
    packet_size: usize,
) -> Result<(), SimError> {
    let mut out = Vec::with_capacity(payload.len() + 64);
    let mut id = 1u8;
    frame(&mut out, ty, payload, packet_size, true, &mut id);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}
