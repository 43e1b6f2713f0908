//! The token stream as bytes: what a raw TDS client sees for login, transactions, several
//! statements in a batch, and an RPC.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{batch, find, login, packet, reply, utf16};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn token_stream_layout() {
    let sim = common::start().await;
    let (mut s, login) = login(&sim, "").await;
    // ENVCHANGE database (1), collation (7), language (2), packet size (4), LOGINACK, DONE
    assert!(find(&login, &[0xE3]).is_some());
    let loginack = find(&login, &[0xAD]).unwrap();
    assert_eq!(
        &login[loginack + 4..loginack + 8],
        &[0x74, 0, 0, 4],
        "TDS 7.4"
    );
    assert!(
        find(&login, &utf16("8192")).is_some(),
        "packet size ENVCHANGE"
    );
    assert!(
        find(&login, &[0x07, 0x05, 0x09, 0x04, 0xD0, 0x00, 0x34]).is_some(),
        "collation ENVCHANGE"
    );
    assert_eq!(login[login.len() - 13], 0xFD, "ends with DONE");

    // BEGIN TRAN: ENVCHANGE 8 with an 8-byte descriptor; COMMIT: ENVCHANGE 9 with the old one
    s.write_all(&batch("BEGIN TRAN")).await.unwrap();
    let r = reply(&mut s).await;
    let at = find(&r, &[0xE3, 0x0B, 0x00, 0x08, 0x08]).expect("begin transaction ENVCHANGE");
    let descriptor = r[at + 5..at + 13].to_vec();
    s.write_all(&batch("COMMIT")).await.unwrap();
    let r = reply(&mut s).await;
    let at = find(&r, &[0xE3, 0x0B, 0x00, 0x09, 0x00, 0x08]).expect("commit ENVCHANGE");
    assert_eq!(&r[at + 6..at + 14], &descriptor[..]);

    // two statements: COLMETADATA, ROW, DONE(MORE|COUNT, 1) ... DONE(COUNT, 1)
    s.write_all(&batch("SELECT 1 AS a; SELECT N'x' AS b"))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(r[0], 0x81);
    let first_done = find(&r, &[0xFD, 0x11, 0x00]).expect("DONE with MORE|COUNT");
    assert_eq!(
        u64::from_le_bytes(r[first_done + 5..first_done + 13].try_into().unwrap()),
        1
    );
    assert_eq!(
        &r[r.len() - 13..r.len() - 10],
        &[0xFD, 0x10, 0x00],
        "final DONE with COUNT"
    );

    // an error: ERROR token (0xAA) with number 208, then DONE with the error bit
    s.write_all(&batch("SELECT * FROM nope")).await.unwrap();
    let r = reply(&mut s).await;
    assert_eq!(r[0], 0xAA);
    assert_eq!(i32::from_le_bytes(r[3..7].try_into().unwrap()), 208);
    assert_eq!(&r[r.len() - 13..r.len() - 10], &[0xFD, 0x02, 0x00]);

    // RPC sp_executesql: DONEINPROC per statement, RETURNSTATUS 0, DONEPROC final
    let mut rpc = Vec::new();
    rpc.extend_from_slice(&22u32.to_le_bytes());
    rpc.extend_from_slice(&18u32.to_le_bytes());
    rpc.extend_from_slice(&2u16.to_le_bytes());
    rpc.extend_from_slice(&[0; 8]);
    rpc.extend_from_slice(&1u32.to_le_bytes());
    rpc.extend_from_slice(&0xFFFFu16.to_le_bytes());
    rpc.extend_from_slice(&10u16.to_le_bytes());
    rpc.extend_from_slice(&0u16.to_le_bytes());
    let stmt = utf16("SELECT @P1 AS v");
    rpc.extend_from_slice(&[0, 0, 0xE7, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34]);
    rpc.extend_from_slice(&(stmt.len() as u16).to_le_bytes());
    rpc.extend_from_slice(&stmt);
    let decl = utf16("@P1 int");
    rpc.extend_from_slice(&[0, 0, 0xE7, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34]);
    rpc.extend_from_slice(&(decl.len() as u16).to_le_bytes());
    rpc.extend_from_slice(&decl);
    rpc.push(3);
    rpc.extend_from_slice(&utf16("@P1"));
    rpc.extend_from_slice(&[0, 0x26, 4, 4]);
    rpc.extend_from_slice(&42i32.to_le_bytes());
    s.write_all(&packet(3, &rpc)).await.unwrap();
    let r = reply(&mut s).await;
    assert_eq!(r[0], 0x81);
    assert!(
        find(&r, &[0xD1, 0x04, 42, 0, 0, 0]).is_some(),
        "ROW with INTN 42"
    );
    let inproc = find(&r, &[0xFF, 0x11, 0x00]).expect("DONEINPROC with MORE|COUNT");
    assert_eq!(
        &r[inproc + 13..inproc + 18],
        &[0x79, 0, 0, 0, 0],
        "RETURNSTATUS 0"
    );
    assert_eq!(
        &r[r.len() - 13..r.len() - 10],
        &[0xFE, 0x00, 0x00],
        "final DONEPROC"
    );
    sim.stop().await;
}
