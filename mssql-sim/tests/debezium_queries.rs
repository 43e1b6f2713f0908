//! SQL that Debezium's SQL Server connector (3.6) sends, as real-server behaviours: its
//! capture-instance discovery with `ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...)`, and the
//! savepoint mssql-jdbc sets and rolls back around the schema snapshot's table locks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tiberius::Row;

async fn rows(c: &mut common::Conn, sql: &str) -> Vec<Row> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
}

async fn setup() -> (mssql_sim::Simulator, common::Conn) {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    for sql in [
        "CREATE DATABASE shop",
        "USE shop",
        "EXEC sys.sp_cdc_enable_db",
        "CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(40))",
        "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, qty int)",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL",
    ] {
        common::exec(&mut c, sql).await;
    }
    (sim, c)
}

#[tokio::test]
async fn debezium_change_table_discovery_numbers_capture_instances_per_table() {
    let (sim, mut c) = setup().await;
    // Debezium's GET_CHANGE_TABLES with the database name placeholder filled in.
    let r = rows(
        &mut c,
        "WITH ordered_change_tables AS (SELECT ROW_NUMBER() OVER (PARTITION BY ct.source_object_id, ct.start_lsn ORDER BY ct.create_date DESC) AS ct_sequence, ct.* FROM [shop].cdc.change_tables AS ct) \
         SELECT OBJECT_SCHEMA_NAME(source_object_id, DB_ID('shop')), OBJECT_NAME(source_object_id, DB_ID('shop')), capture_instance, object_id, start_lsn FROM ordered_change_tables WHERE ct_sequence = 1",
    )
    .await;
    let mut got: Vec<(String, String, String)> = r
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get::<&str, _>(1).unwrap().to_string(),
                r.get::<&str, _>(2).unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("dbo".into(), "items".into(), "dbo_items".into()),
            ("dbo".into(), "orders".into(), "dbo_orders".into()),
        ]
    );
    sim.stop().await;
}

#[tokio::test]
async fn row_number_rank_and_dense_rank_number_rows_within_each_partition() {
    let (sim, mut c) = setup().await;
    common::exec(
        &mut c,
        "INSERT INTO dbo.orders VALUES (1, 5), (2, 5), (3, 7), (4, 1), (5, 7), (6, 9)",
    )
    .await;
    let r = rows(
        &mut c,
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY id % 2 ORDER BY qty DESC, id) AS rn, \
                RANK() OVER (ORDER BY qty) AS rk, DENSE_RANK() OVER (ORDER BY qty) AS dr \
         FROM dbo.orders ORDER BY id",
    )
    .await;
    let got: Vec<(i32, i64, i64, i64)> = r
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>(0).unwrap(),
                r.get::<i64, _>(1).unwrap(),
                r.get::<i64, _>(2).unwrap(),
                r.get::<i64, _>(3).unwrap(),
            )
        })
        .collect();
    // odd ids: 1 (5), 3 (7), 5 (7) → 3, 5, 1; even ids: 2 (5), 4 (1), 6 (9) → 6, 2, 4
    // qty order: 1 | 5 5 | 7 7 | 9 → rank 1, 2, 2, 4, 4, 6; dense 1, 2, 2, 3, 3, 4
    assert_eq!(
        got,
        vec![
            (1, 3, 2, 2),
            (2, 2, 2, 2),
            (3, 1, 4, 3),
            (4, 3, 1, 1),
            (5, 2, 4, 3),
            (6, 1, 6, 4),
        ]
    );
    sim.stop().await;
}

#[tokio::test]
async fn row_number_without_order_by_fails_with_4112() {
    let (sim, mut c) = setup().await;
    let e = common::try_exec(
        &mut c,
        "SELECT ROW_NUMBER() OVER (PARTITION BY id) FROM dbo.items",
    )
    .await
    .unwrap_err();
    assert_eq!(common::err_number(&e), 4112);
    sim.stop().await;
}

#[tokio::test]
async fn rollback_to_a_savepoint_keeps_the_transaction_and_releases_later_locks() {
    let (sim, mut c) = setup().await;
    // What mssql-jdbc sends for setSavepoint("dbz_schema_snapshot") with auto-commit off.
    common::exec(
        &mut c,
        "IF @@TRANCOUNT = 0 BEGIN BEGIN TRAN IF @@TRANCOUNT = 2 COMMIT TRAN END SAVE TRAN [dbz_schema_snapshot]",
    )
    .await;
    common::exec(
        &mut c,
        "SELECT TOP(0) * FROM [shop].[dbo].[items] WITH (TABLOCKX)",
    )
    .await;
    let locks = rows(&mut c, "SELECT request_mode FROM sys.dm_tran_locks").await;
    assert_eq!(locks.len(), 1, "TABLOCKX holds an exclusive table lock");
    // Connection.rollback(savepoint)
    common::exec(
        &mut c,
        "IF @@TRANCOUNT > 0 ROLLBACK TRAN [dbz_schema_snapshot]",
    )
    .await;
    let r = rows(&mut c, "SELECT @@TRANCOUNT").await;
    assert_eq!(r[0].get::<i32, _>(0), Some(1), "the transaction stays open");
    assert!(
        rows(&mut c, "SELECT request_mode FROM sys.dm_tran_locks")
            .await
            .is_empty()
    );
    common::exec(&mut c, "IF @@TRANCOUNT > 0 COMMIT TRAN").await;
    let r = rows(&mut c, "SELECT @@TRANCOUNT").await;
    assert_eq!(r[0].get::<i32, _>(0), Some(0));
    sim.stop().await;
}

#[tokio::test]
async fn rollback_to_an_unknown_savepoint_fails_with_6401_and_outside_a_transaction_with_3903() {
    let (sim, mut c) = setup().await;
    let e = common::try_exec(&mut c, "ROLLBACK TRAN nowhere")
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&e), 3903);
    common::exec(&mut c, "BEGIN TRAN; SAVE TRAN here").await;
    let e = common::try_exec(&mut c, "ROLLBACK TRANSACTION nowhere")
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&e), 6401);
    sim.stop().await;
}

#[tokio::test]
async fn todatetimeoffset_and_datepart_tzoffset_give_debeziums_change_time() {
    let (sim, mut c) = setup().await;
    let r = rows(
        &mut c,
        "SELECT DATEPART(TZOFFSET, TODATETIMEOFFSET('2024-03-01 10:11:12', 330)), \
                DATEPART(hour, TODATETIMEOFFSET('2024-03-01 10:11:12', '+05:30')), \
                DATEPART(tz, TODATETIMEOFFSET('2024-03-01 10:11:12', '-02:00')), \
                DATEPART(TZOFFSET, SYSDATETIMEOFFSET()), \
                DATEPART(year, '2024-03-01'), DATEPART(dw, '2024-03-03')",
    )
    .await;
    let got: Vec<Option<i32>> = (0..6).map(|i| r[0].get::<i32, _>(i)).collect();
    // The simulator's clock runs at UTC, so the session's offset is 0; 2024-03-03 is a Sunday.
    assert_eq!(
        got,
        vec![
            Some(330),
            Some(10),
            Some(-120),
            Some(0),
            Some(2024),
            Some(1)
        ]
    );
    // Debezium's LSN_TIMESTAMP_SELECT_STATEMENT on a real change row.
    common::exec(&mut c, "INSERT INTO dbo.items VALUES (1, N'a')").await;
    sim.scan();
    let r = rows(
        &mut c,
        "SELECT DATEPART(TZOFFSET, TODATETIMEOFFSET([shop].sys.fn_cdc_map_lsn_to_time([__$start_lsn]), DATEPART(TZOFFSET, SYSDATETIMEOFFSET()))) FROM [shop].cdc.[dbo_items_CT]",
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].get::<i32, _>(0), Some(0));
    sim.stop().await;
}

#[tokio::test]
async fn datepart_with_an_unknown_part_fails_with_155() {
    let (sim, mut c) = setup().await;
    let e = common::try_exec(&mut c, "SELECT DATEPART(fortnight, SYSDATETIME())")
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&e), 155);
    sim.stop().await;
}

#[tokio::test]
async fn sp_cdc_help_jobs_reports_the_capture_job_with_its_polling_interval() {
    let (sim, mut c) = setup().await;
    // Debezium reads job_type and pollinginterval through {call sys.sp_cdc_help_jobs}.
    let r = rows(&mut c, "EXEC sys.sp_cdc_help_jobs").await;
    let got: Vec<(&str, i64)> = r
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>("job_type").unwrap(),
                r.get::<i64, _>("pollinginterval").unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("capture", 5), ("cleanup", 0)]);
    common::exec(&mut c, "USE master").await;
    let e = common::try_exec(&mut c, "EXEC sys.sp_cdc_help_jobs")
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&e), 22901);
    sim.stop().await;
}

#[tokio::test]
async fn select_star_beside_a_window_call_shows_only_the_tables_columns_and_the_call() {
    let (sim, mut c) = setup().await;
    common::exec(&mut c, "INSERT INTO dbo.items VALUES (1, N'a'), (2, N'b')").await;
    let r = rows(
        &mut c,
        "SELECT *, ROW_NUMBER() OVER (ORDER BY id DESC) AS rn FROM dbo.items ORDER BY id",
    )
    .await;
    let names: Vec<&str> = r[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["id", "name", "rn"]);
    assert_eq!(r[0].get::<i64, _>("rn"), Some(2));
    sim.stop().await;
}
