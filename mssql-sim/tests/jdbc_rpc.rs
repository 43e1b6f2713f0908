//! The RPCs drivers such as Microsoft's mssql-jdbc send for prepared statements, as raw TDS:
//! `sp_executesql` with positional values, `sp_prepexec` (returns a handle in a RETURNVALUE
//! token), `sp_execute` and `sp_unprepare` (MS-TDS 2.2.6.6 ProcIDs 10, 13, 12, 15).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{batch, find, packet, reply, utf16};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A raw TDS session as sa in `shop`.
async fn login(sim: &mssql_sim::Simulator) -> TcpStream {
    let (s, r) = common::raw::login(sim, "shop").await;
    assert!(find(&r, &[0xAD]).is_some(), "LOGINACK");
    s
}

/// An unnamed nvarchar(4000) parameter.
fn nvarchar(v: &str) -> Vec<u8> {
    let mut p = vec![0, 0, 0xE7, 0x40, 0x1F, 0x09, 0x04, 0xD0, 0x00, 0x34];
    let b = utf16(v);
    p.extend_from_slice(&(b.len() as u16).to_le_bytes());
    p.extend_from_slice(&b);
    p
}

/// An unnamed int parameter; `output` sets the by-reference status bit; `None` is NULL.
fn int(v: Option<i32>, output: bool) -> Vec<u8> {
    let mut p = vec![0, u8::from(output), 0x26, 4];
    match v {
        Some(v) => {
            p.push(4);
            p.extend_from_slice(&v.to_le_bytes());
        }
        None => p.push(0),
    }
    p
}

/// An RPC by well-known procedure id with the given parameters.
fn rpc(proc_id: u16, params: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&0xFFFFu16.to_le_bytes());
    p.extend_from_slice(&proc_id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    for x in params {
        p.extend_from_slice(x);
    }
    packet(3, &p)
}

const SP_EXECUTESQL: u16 = 10;
const SP_EXECUTE: u16 = 12;
const SP_PREPEXEC: u16 = 13;
const SP_UNPREPARE: u16 = 15;

/// The handle in a RETURNVALUE token: ordinal 0, empty name, status 1, user type 0, flags 1,
/// INTN(4), length 4, value.
fn returned_handle(r: &[u8]) -> Option<i32> {
    let at = find(
        r,
        &[0xAC, 0, 0, 0, 0x01, 0, 0, 0, 0, 0x01, 0x00, 0x26, 4, 4],
    )?;
    Some(i32::from_le_bytes(r[at + 14..at + 18].try_into().unwrap()))
}

fn error_number(r: &[u8]) -> Option<i32> {
    let at = find(r, &[0xAA])?;
    Some(i32::from_le_bytes(r[at + 3..at + 7].try_into().unwrap()))
}

fn has_int_row(r: &[u8], v: i32) -> bool {
    let mut row = vec![0xD1, 4];
    row.extend_from_slice(&v.to_le_bytes());
    find(r, &row).is_some()
}

async fn sim_with_shop() -> mssql_sim::Simulator {
    let sim = common::start().await;
    sim.run_script("CREATE DATABASE shop").unwrap();
    sim
}

#[tokio::test]
async fn sp_executesql_binds_positional_values_to_the_declared_names() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    s.write_all(&rpc(
        SP_EXECUTESQL,
        &[
            nvarchar("SELECT @P1 - @P0 AS v"),
            nvarchar("@P0 int,@P1 int"),
            int(Some(2), false),
            int(Some(44), false),
        ],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), None);
    assert!(has_int_row(&r, 42), "44 - 2 with values bound by position");
    assert_eq!(returned_handle(&r), None, "sp_executesql returns no handle");
    sim.stop().await;
}

#[tokio::test]
async fn sp_executesql_with_a_declared_value_missing_fails_with_8178() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    s.write_all(&rpc(
        SP_EXECUTESQL,
        &[
            nvarchar("SELECT @P0 + @P1 AS v"),
            nvarchar("@P0 int,@P1 int"),
            int(Some(1), false),
        ],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), Some(8178));
    sim.stop().await;
}

#[tokio::test]
async fn sp_prepexec_returns_handle_1_and_sp_execute_runs_it_with_new_values() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    s.write_all(&rpc(
        SP_PREPEXEC,
        &[
            int(None, true),
            nvarchar("@P0 int"),
            nvarchar("SELECT @P0 + 1 AS v"),
            int(Some(10), false),
        ],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), None);
    assert!(has_int_row(&r, 11));
    assert_eq!(
        returned_handle(&r),
        Some(1),
        "a connection's first handle is 1"
    );
    // Token order: rows, DONEINPROC, RETURNSTATUS 0, RETURNVALUE, DONEPROC (final).
    let status = find(&r, &[0x79, 0, 0, 0, 0]).expect("RETURNSTATUS 0");
    let value = find(&r, &[0xAC]).unwrap();
    assert!(status < value);
    assert_eq!(&r[r.len() - 13..r.len() - 10], &[0xFE, 0x00, 0x00]);

    s.write_all(&rpc(
        SP_EXECUTE,
        &[int(Some(1), false), int(Some(41), false)],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), None);
    assert!(has_int_row(&r, 42));
    assert_eq!(returned_handle(&r), None);

    // A second statement prepared on the same connection gets the next handle.
    s.write_all(&rpc(
        SP_PREPEXEC,
        &[int(None, true), nvarchar(""), nvarchar("SELECT 7 AS v")],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert!(has_int_row(&r, 7));
    assert_eq!(returned_handle(&r), Some(2));
    sim.stop().await;
}

#[tokio::test]
async fn sp_execute_of_an_unknown_handle_fails_with_8179() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    s.write_all(&rpc(SP_EXECUTE, &[int(Some(5), false)]))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), Some(8179));
    sim.stop().await;
}

#[tokio::test]
async fn sp_unprepare_drops_the_handle() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    s.write_all(&rpc(
        SP_PREPEXEC,
        &[int(None, true), nvarchar(""), nvarchar("SELECT 1 AS v")],
    ))
    .await
    .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(returned_handle(&r), Some(1));
    s.write_all(&rpc(SP_UNPREPARE, &[int(Some(1), false)]))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), None);
    assert_eq!(&r[r.len() - 13..r.len() - 10], &[0xFE, 0x00, 0x00]);
    s.write_all(&rpc(SP_EXECUTE, &[int(Some(1), false)]))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), Some(8179), "the handle is gone");
    s.write_all(&rpc(SP_UNPREPARE, &[int(Some(1), false)]))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), Some(8179), "unpreparing twice fails");
    sim.stop().await;
}

#[tokio::test]
async fn prepared_handles_belong_to_their_connection() {
    let sim = sim_with_shop().await;
    let mut a = login(&sim).await;
    let mut b = login(&sim).await;
    a.write_all(&rpc(
        SP_PREPEXEC,
        &[int(None, true), nvarchar(""), nvarchar("SELECT 1 AS v")],
    ))
    .await
    .unwrap();
    assert_eq!(returned_handle(&reply(&mut a).await), Some(1));
    b.write_all(&rpc(SP_EXECUTE, &[int(Some(1), false)]))
        .await
        .unwrap();
    assert_eq!(error_number(&reply(&mut b).await), Some(8179));
    sim.stop().await;
}

#[tokio::test]
async fn sp_unprepare_in_a_batch_drops_handles_as_mssql_jdbc_discards_them() {
    let sim = sim_with_shop().await;
    let mut s = login(&sim).await;
    for expected in [1, 2] {
        s.write_all(&rpc(
            SP_PREPEXEC,
            &[int(None, true), nvarchar(""), nvarchar("SELECT 1 AS v")],
        ))
        .await
        .unwrap();
        assert_eq!(returned_handle(&reply(&mut s).await), Some(expected));
    }
    // What mssql-jdbc sends once enough closed statements wait for their handles to go.
    s.write_all(&batch("EXEC sp_unprepare 1;EXEC sp_unprepare 2;"))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    assert_eq!(error_number(&r), None);
    s.write_all(&rpc(SP_EXECUTE, &[int(Some(2), false)]))
        .await
        .unwrap();
    assert_eq!(error_number(&reply(&mut s).await), Some(8179));
    s.write_all(&batch("EXEC sp_unprepare 1")).await.unwrap();
    assert_eq!(error_number(&reply(&mut s).await), Some(8179));
    sim.stop().await;
}
