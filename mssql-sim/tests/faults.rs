//! Fault injection through the Rust API and `EXEC sim.fault`, plus ATTENTION handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{connect, err_number, exec, try_exec};

const FIXTURE: &str = "CREATE TABLE dbo.n (id int PRIMARY KEY, v nvarchar(10));
INSERT INTO dbo.n VALUES (1,N'a'),(2,N'b'),(3,N'c'),(4,N'd'),(5,N'e'),(6,N'f'),(7,N'g'),(8,N'h'),(9,N'i'),(10,N'j')";

#[tokio::test]
async fn connection_closes_after_n_rows_then_service_continues() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    sim.faults().close_after_rows(3);
    let r = try_exec(&mut c, "SELECT * FROM dbo.n ORDER BY id").await;
    assert!(r.is_err(), "the result must be cut off");
    let mut c = connect(&sim).await;
    assert_eq!(
        try_exec(&mut c, "SELECT * FROM dbo.n").await.unwrap()[0].len(),
        10
    );
    sim.stop().await;
}

#[tokio::test]
async fn failures_delays_and_refused_logins() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;

    sim.faults().fail_next("dbo.n", 1205);
    let e = try_exec(&mut c, "SELECT 1").await;
    assert!(e.is_ok(), "non-matching statements are not affected");
    let e = try_exec(&mut c, "SELECT * FROM dbo.n").await.unwrap_err();
    assert_eq!(err_number(&e), 1205);
    assert!(
        try_exec(&mut c, "SELECT * FROM dbo.n").await.is_ok(),
        "the fault fires once"
    );

    exec(
        &mut c,
        "EXEC sim.fault @action = 'fail_next', @error = 4060, @match = 'SELECT'",
    )
    .await;
    let e = try_exec(&mut c, "SELECT 2").await.unwrap_err();
    assert_eq!(err_number(&e), 4060);

    sim.faults().delay_responses(Duration::from_millis(150));
    let t = Instant::now();
    exec(&mut c, "SELECT 3").await;
    assert!(t.elapsed() >= Duration::from_millis(150));
    sim.faults().delay_responses(Duration::ZERO);

    sim.faults().refuse_logins(true);
    let e = common::connect_with(common::config(&sim, common::PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 18456);
    sim.faults().refuse_logins(false);
    connect(&sim).await;
    sim.stop().await;
}

#[tokio::test]
async fn restart_drops_connections_and_keeps_data() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    sim.faults().restart();
    // A session notices the restart before its next request or while waiting for one; a
    // request already on its way when `restart` returned may still be answered, so the old
    // connection fails at the latest on the second request (no waiting on time).
    let first = try_exec(&mut c, "SELECT 1").await;
    let gone = first.is_err() || try_exec(&mut c, "SELECT 1").await.is_err();
    assert!(gone, "old connection is gone");
    let mut c = connect(&sim).await;
    assert_eq!(
        try_exec(&mut c, "SELECT * FROM dbo.n").await.unwrap()[0].len(),
        10
    );
    // the T-SQL form
    exec(&mut c, "EXEC sim.fault @action = 'restart'").await;
    // The session that restarted the server ends after answering: its next request fails.
    assert!(try_exec(&mut c, "SELECT 1").await.is_err());
    sim.stop().await;
}

#[tokio::test]
async fn attention_cancels_a_request_and_the_connection_stays_usable() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, FIXTURE).await;
    sim.faults().delay_responses(Duration::from_millis(300));
    let pending = tokio::time::timeout(
        Duration::from_millis(50),
        try_exec(&mut c, "SELECT * FROM dbo.n"),
    )
    .await;
    assert!(pending.is_err(), "the query is still running");
    c.cancel_query().await.unwrap();
    sim.faults().delay_responses(Duration::ZERO);
    let rows = try_exec(&mut c, "SELECT COUNT(*) FROM dbo.n")
        .await
        .unwrap();
    assert_eq!(rows[0][0].get::<i32, _>(0), Some(10));
    sim.stop().await;
}

#[tokio::test]
async fn scan_after_next_runs_the_capture_job_right_after_the_matching_statement() {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    common::exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY);
         EXEC sys.sp_cdc_enable_db;
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL;
         INSERT INTO dbo.t VALUES (1);",
    )
    .await;
    sim.faults().scan_after_next("lsn_time_mapping");
    // The statement itself saw nothing captured; the scan ran right after it.
    let first = common::try_exec(&mut c, "SELECT COUNT(*) FROM cdc.lsn_time_mapping")
        .await
        .unwrap();
    assert_eq!(first[0][0].get::<i32, _>(0), Some(0));
    let second = common::try_exec(&mut c, "SELECT COUNT(*) FROM cdc.lsn_time_mapping")
        .await
        .unwrap();
    assert_eq!(second[0][0].get::<i32, _>(0), Some(1));
    sim.stop().await;
}
