//! Streams a large change set from `cdc.fn_cdc_get_all_changes_*` to one tiberius client and
//! checks every row arrives once; prints the rate (the measured figure lives in the criterion
//! bench `benches/stream.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use futures::TryStreamExt;

const ROWS: usize = 250_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_row_streaming_throughput() {
    let sim = common::start().await;
    let mut setup = String::from(
        "CREATE DATABASE bench\nGO\nUSE bench\nCREATE TABLE dbo.events (id int NOT NULL PRIMARY KEY, kind nvarchar(20) NOT NULL, amount decimal(12,2) NULL, at datetime2(3) NULL)\n\
         EXEC sys.sp_cdc_enable_db\nEXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'events', @role_name = NULL\nGO\n",
    );
    for chunk in 0..ROWS / 1000 {
        setup.push_str("USE bench\nINSERT INTO dbo.events VALUES ");
        for i in 0..1000 {
            let id = chunk * 1000 + i;
            if i > 0 {
                setup.push(',');
            }
            write!(
                setup,
                "({id}, N'kind{}', {}.25, '2024-01-01 00:00:00.000')",
                id % 7,
                id % 1000
            )
            .unwrap();
        }
        setup.push_str("\nGO\n");
    }
    let t = Instant::now();
    sim.run_script(&setup).unwrap();
    sim.scan();
    println!("loaded and captured {ROWS} rows in {:?}", t.elapsed());

    let mut config = common::config(&sim, common::PASSWORD);
    config.database("bench");
    let mut c = common::connect_with(config).await.unwrap();
    let sql = "DECLARE @from binary(10) = sys.fn_cdc_get_min_lsn('dbo_events'), @to binary(10) = sys.fn_cdc_get_max_lsn();
               SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_events(@from, @to, N'all')";
    // warm-up run, then the measured one
    let mut best = f64::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        let mut stream = c.simple_query(sql).await.unwrap().into_row_stream();
        let mut n = 0usize;
        let mut sum = 0i64;
        let mut first = None;
        while let Some(row) = stream.try_next().await.unwrap() {
            first.get_or_insert_with(|| t.elapsed());
            sum += row.get::<i32, _>("id").unwrap() as i64;
            n += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, ROWS);
        assert_eq!(sum, (ROWS as i64 - 1) * ROWS as i64 / 2);
        best = best.min(secs);
        println!(
            "first row after {:?}, all rows after {secs:.3} s",
            first.unwrap_or_default()
        );
    }
    let rate = ROWS as f64 / best;
    println!(
        "streamed {ROWS} change rows to one tiberius client in {best:.3} s = {rate:.0} rows/s"
    );
    // Speed is measured, not asserted: `cargo bench -p mssql-sim --bench stream` holds the
    // figure (≈600k rows/s in release); a timed assertion would fail on a busy machine.
    sim.stop().await;
}
