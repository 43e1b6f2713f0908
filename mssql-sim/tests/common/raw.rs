//! A raw TDS client's pieces, for the tests that check bytes on the wire: packets, SQL batches,
//! reading a whole reply, and PRELOGIN + LOGIN7 as sa.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One packet of type `ty` holding all of `payload` (status EOM, packet id 1).
pub fn packet(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![ty, 1];
    p.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(payload);
    p
}

/// UTF-16LE, as TDS sends text.
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// A SQL batch with ALL_HEADERS (transaction descriptor 0, one request outstanding).
pub fn batch(sql: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&utf16(sql));
    packet(1, &p)
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The payload of every packet up to the one with EOM, each a tabular result packet (type 4).
pub async fn reply(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h[0], 4, "tabular result packets");
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0; len - 8];
        s.read_exact(&mut body).await.unwrap();
        out.extend_from_slice(&body);
        if h[1] & 1 == 1 {
            return out;
        }
    }
}

/// PRELOGIN without encryption (its answer must carry the ENCRYPTION option), then LOGIN7 as
/// sa into `database` (the login's default when empty); the socket and the login's reply.
pub async fn login(sim: &mssql_sim::Simulator, database: &str) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let mut pre = vec![
        0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF,
    ];
    pre.extend_from_slice(&[16, 0, 0, 0, 0, 0, 2]);
    s.write_all(&packet(0x12, &pre)).await.unwrap();
    let pre_reply = reply(&mut s).await;
    assert!(find(&pre_reply, &[0x01, 0x00]).is_some());
    let scrambled: Vec<u8> = utf16(super::PASSWORD)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect();
    let fields: Vec<Vec<u8>> = vec![
        utf16("h"),
        utf16("sa"),
        scrambled,
        utf16("t"),
        utf16("s"),
        vec![],
        utf16("raw"),
        vec![],
        utf16(database),
    ];
    let mut l = vec![0u8; 4];
    l.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    l.extend_from_slice(&8192u32.to_le_bytes());
    l.extend_from_slice(&[0; 24]);
    let mut data = Vec::new();
    for f in &fields {
        l.extend_from_slice(&((94 + data.len()) as u16).to_le_bytes());
        l.extend_from_slice(&((f.len() / 2) as u16).to_le_bytes());
        data.extend_from_slice(f);
    }
    l.extend_from_slice(&[0; 22]);
    l.extend_from_slice(&data);
    let n = l.len() as u32;
    l[..4].copy_from_slice(&n.to_le_bytes());
    s.write_all(&packet(0x10, &l)).await.unwrap();
    let r = reply(&mut s).await;
    (s, r)
}
