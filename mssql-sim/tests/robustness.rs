//! Hostile or broken client bytes end that client's request or connection, never the
//! server: malformed PRELOGIN/LOGIN7 and random SQL_BATCH/RPC payloads after a real login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn packet(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![ty, 1];
    p.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(payload);
    p
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn login7(user: &str, password: &str) -> Vec<u8> {
    let scrambled: Vec<u8> = utf16(password)
        .into_iter()
        .map(|b| b.rotate_left(4) ^ 0xA5)
        .collect();
    let fields: Vec<Vec<u8>> = vec![
        utf16("host"),
        utf16(user),
        scrambled,
        utf16("fuzz"),
        utf16("sim"),
        vec![],
        utf16("raw"),
        vec![],
        vec![],
    ];
    let mut fixed = Vec::new();
    fixed.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
    fixed.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    fixed.extend_from_slice(&4096u32.to_le_bytes());
    fixed.extend_from_slice(&[0; 12]); // prog version, pid, connection id
    fixed.extend_from_slice(&[0xE0, 0x03, 0, 0]); // option flags
    fixed.extend_from_slice(&[0; 8]); // time zone, lcid
    let mut data = Vec::new();
    let base = 94usize;
    for f in &fields {
        fixed.extend_from_slice(&((base + data.len()) as u16).to_le_bytes());
        fixed.extend_from_slice(&((f.len() / 2) as u16).to_le_bytes());
        data.extend_from_slice(f);
    }
    fixed.extend_from_slice(&[0; 6]); // client id
    fixed.extend_from_slice(&[0; 16]); // sspi, attach db, change password, sspi long
    assert_eq!(fixed.len(), base);
    fixed.extend_from_slice(&data);
    let len = fixed.len() as u32;
    fixed[..4].copy_from_slice(&len.to_le_bytes());
    fixed
}

const PRELOGIN_NOT_SUP: [u8; 12] = [
    0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF, 0x00,
];

async fn logged_in(sim: &mssql_sim::Simulator) -> TcpStream {
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let mut pre = PRELOGIN_NOT_SUP.to_vec();
    pre.extend_from_slice(&[0; 6]); // version data
    pre[0..12].copy_from_slice(&PRELOGIN_NOT_SUP);
    let mut body = vec![
        0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF,
    ];
    body.extend_from_slice(&[16, 0, 0, 0, 0, 0, 2]);
    s.write_all(&packet(0x12, &body)).await.unwrap();
    read_reply(&mut s).await.unwrap();
    s.write_all(&packet(0x10, &login7("sa", common::PASSWORD)))
        .await
        .unwrap();
    let reply = read_reply(&mut s).await.unwrap();
    assert!(reply.contains(&0xAD), "LOGINACK expected");
    s
}

/// Reads one reply message (until end-of-message), or None if the server closed.
async fn read_reply(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let mut h = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut h))
            .await
            .ok()?
            .ok()?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0; len.saturating_sub(8)];
        s.read_exact(&mut body).await.ok()?;
        out.extend_from_slice(&body);
        if h[1] & 1 == 1 {
            return Some(out);
        }
    }
}

#[tokio::test]
async fn garbage_never_takes_the_server_down() {
    let sim = common::start().await;
    // malformed handshakes
    for bytes in [
        packet(0x12, &[0x01, 0xFF, 0xFF, 0x00, 0x09]),
        packet(0x12, &[]),
        packet(0x10, &[1, 2, 3]),
        vec![0x12, 1, 0, 3, 0, 0, 1, 0],
        packet(0x01, b"SELECT 1"),
    ] {
        let mut s = TcpStream::connect(sim.addr()).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let _ = read_reply(&mut s).await;
    }
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let mut body = vec![
        0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF,
    ];
    body.extend_from_slice(&[16, 0, 0, 0, 0, 0, 2]);
    s.write_all(&packet(0x12, &body)).await.unwrap();
    read_reply(&mut s).await.unwrap();
    let mut bad_login = login7("sa", common::PASSWORD);
    bad_login[40] = 0xFF; // user name offset out of range
    s.write_all(&packet(0x10, &bad_login)).await.unwrap();
    let _ = read_reply(&mut s).await;

    // random request payloads after a real login
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..200 {
        let mut s = logged_in(&sim).await;
        let len = (next() % 200) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 && payload.len() > 30 {
            // a plausible ALL_HEADERS and an RPC by id, then noise in the parameters
            payload[..4].copy_from_slice(&22u32.to_le_bytes());
            payload[22..24].copy_from_slice(&0xFFFFu16.to_le_bytes());
            payload[24..26].copy_from_slice(&10u16.to_le_bytes());
        }
        let ty = if round % 2 == 0 { 0x03 } else { 0x01 };
        s.write_all(&packet(ty, &payload)).await.unwrap();
        let _ = read_reply(&mut s).await;
    }
    // the server still serves normal clients
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "SELECT 1").await;
    sim.stop().await;
}
