//! Where SQL Server refuses, the simulator refuses with the same error number and text; where
//! it returns a value, the simulator returns the same value (issue 12). Texts are SQL Server
//! 2022's sys.messages (language 1033) with their `%.*ls` arguments filled in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{connect, err_number, exec, message, try_exec};

async fn int_rows(c: &mut common::Conn, sql: &str) -> Vec<Option<i64>> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.try_get::<u8, _>(0)
                .map(|v| v.map(i64::from))
                .or_else(|_| r.try_get::<i32, _>(0).map(|v| v.map(i64::from)))
                .or_else(|_| r.try_get::<i64, _>(0))
                .unwrap()
        })
        .collect()
}

const SNAPSHOT_OFF_3952: &str = "Snapshot isolation transaction failed accessing database 'shop' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.";

#[tokio::test]
async fn snapshot_isolation_is_off_in_a_new_database_and_a_snapshot_read_fails_with_3952() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        [Some(0)]
    );
    // master and msdb have it on in a stock installation; model (the template) has it off.
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name IN ('master', 'model', 'msdb') ORDER BY name"
        )
        .await,
        [Some(1), Some(0), Some(1)]
    );
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3952);
    assert_eq!(message(&e), SNAPSHOT_OFF_3952);
    // An autocommit statement under SNAPSHOT is refused the same way.
    exec(&mut c, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").await;
    let e = try_exec(&mut c, "SELECT id FROM dbo.t").await.unwrap_err();
    assert_eq!(err_number(&e), 3952);
    sim.stop().await;
}

#[tokio::test]
async fn alter_database_set_allow_snapshot_isolation_turns_it_on_and_off() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);
         ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON;",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()"
        )
        .await,
        [Some(1)]
    );
    assert_eq!(
        int_rows(
            &mut c,
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; SELECT id FROM dbo.t;"
        )
        .await,
        [Some(1)]
    );
    exec(
        &mut c,
        "COMMIT TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED;",
    )
    .await;
    exec(
        &mut c,
        "ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION OFF",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()"
        )
        .await,
        [Some(0)]
    );
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3952);
    sim.stop().await;
}

#[tokio::test]
async fn alter_database_inside_a_transaction_fails_with_226() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, "CREATE DATABASE shop; USE shop;").await;
    let e = try_exec(
        &mut c,
        "BEGIN TRANSACTION; ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 226);
    exec(&mut c, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        [Some(0)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn switching_to_snapshot_inside_a_transaction_begun_under_another_level_fails_with_3951() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON; USE shop;
         CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);",
    )
    .await;
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN TRANSACTION;
         SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3951);
    assert_eq!(
        message(&e),
        "Transaction failed in database 'shop' because the statement was run under snapshot isolation but the transaction did not start in snapshot isolation. You cannot change the isolation level of the transaction to snapshot after the transaction has started unless the transaction was originally started under snapshot isolation level."
    );
    // Back under the level it began with, the transaction reads.
    assert_eq!(
        int_rows(
            &mut c,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SELECT id FROM dbo.t;"
        )
        .await,
        [Some(1)]
    );
    exec(&mut c, "COMMIT TRANSACTION").await;
    sim.stop().await;
}

/// A CDC-enabled database `shop` with `dbo.orders` captured and `dbo.notes` not.
const CDC_SHOP: &str = "CREATE DATABASE shop; USE shop; EXEC sys.sp_cdc_enable_db;
    CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, qty int NULL);
    CREATE TABLE dbo.notes (id int NOT NULL PRIMARY KEY);
    EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL;";

#[tokio::test]
async fn truncate_table_on_a_cdc_enabled_table_fails_with_4711_and_keeps_the_rows() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, CDC_SHOP).await;
    exec(
        &mut c,
        "INSERT INTO dbo.orders VALUES (1, 1), (2, 2); INSERT INTO dbo.notes VALUES (1);",
    )
    .await;
    let e = try_exec(&mut c, "TRUNCATE TABLE dbo.orders")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 4711);
    assert_eq!(
        message(&e),
        "Cannot truncate table 'dbo.orders' because it is published for replication or enabled for Change Data Capture."
    );
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM dbo.orders").await,
        [Some(2)]
    );
    // A table without a capture instance truncates.
    exec(&mut c, "TRUNCATE TABLE dbo.notes").await;
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM dbo.notes").await,
        [Some(0)]
    );
    sim.stop().await;
}

async fn lsn(c: &mut common::Conn, sql: &str) -> Vec<u8> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get::<&[u8], _>(0)
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn the_capture_job_marks_progress_over_uncaptured_work_with_tran_id_0x00_rows_that_move_only_the_max_lsn()
 {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, CDC_SHOP).await;
    exec(
        &mut c,
        "INSERT INTO dbo.orders VALUES (1, 1); EXEC sys.sp_cdc_scan;",
    )
    .await;
    let captured = lsn(&mut c, "SELECT sys.fn_cdc_get_max_lsn()").await;
    // Only uncaptured work follows: a write to a table without a capture instance.
    exec(
        &mut c,
        "INSERT INTO dbo.notes VALUES (1); EXEC sys.sp_cdc_scan;",
    )
    .await;
    let max = lsn(&mut c, "SELECT sys.fn_cdc_get_max_lsn()").await;
    assert!(max > captured, "the idle scan moves fn_cdc_get_max_lsn()");
    let last = lsn(
        &mut c,
        "SELECT TOP 1 tran_id FROM cdc.lsn_time_mapping ORDER BY start_lsn DESC",
    )
    .await;
    assert_eq!(last, [0u8]);
    assert_eq!(
        lsn(
            &mut c,
            "SELECT MAX(start_lsn) FROM cdc.lsn_time_mapping WHERE tran_id <> 0x00"
        )
        .await,
        captured,
        "the highest transaction with changes stays where it was"
    );
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT COUNT(*) FROM cdc.dbo_orders_CT WHERE __$start_lsn > (SELECT MAX(start_lsn) FROM cdc.lsn_time_mapping WHERE tran_id <> 0x00)"
        )
        .await,
        [Some(0)],
        "no change rows at the progress row"
    );
    // Nothing new, nothing more: a second idle scan adds no row.
    exec(&mut c, "EXEC sys.sp_cdc_scan").await;
    assert_eq!(lsn(&mut c, "SELECT sys.fn_cdc_get_max_lsn()").await, max);
    sim.stop().await;
}

/// `shop` with three captured transactions; returns their start LSNs in order.
async fn three_captured_transactions(c: &mut common::Conn) -> Vec<Vec<u8>> {
    exec(c, CDC_SHOP).await;
    exec(
        c,
        "INSERT INTO dbo.orders VALUES (1, 1); INSERT INTO dbo.orders VALUES (2, 2); INSERT INTO dbo.orders VALUES (3, 3); EXEC sys.sp_cdc_scan;",
    )
    .await;
    c.simple_query("SELECT start_lsn FROM cdc.lsn_time_mapping ORDER BY start_lsn")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<&[u8], _>(0).unwrap().to_vec())
        .collect()
}

async fn cleanup(
    c: &mut common::Conn,
    low_water_mark: Option<&[u8]>,
) -> tiberius::Result<tiberius::ExecuteResult> {
    match low_water_mark {
        Some(l) => {
            c.execute(
                "EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_orders', @low_water_mark = @P1",
                &[&l],
            )
            .await
        }
        None => {
            c.execute(
                "EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_orders', @low_water_mark = NULL",
                &[],
            )
            .await
        }
    }
}

#[tokio::test]
async fn cleanup_with_a_low_water_mark_outside_the_timeline_fails_with_22957() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let lsns = three_captured_transactions(&mut c).await;
    let beyond = [0xFFu8; 10];
    let e = cleanup(&mut c, Some(&beyond)).await.unwrap_err();
    assert_eq!(err_number(&e), 22957);
    assert!(
        message(&e).contains("is not within the Change Data Capture timeline"),
        "{e}"
    );
    let below = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let e = cleanup(&mut c, Some(&below)).await.unwrap_err();
    assert_eq!(err_number(&e), 22957);
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM cdc.dbo_orders_CT").await,
        [Some(3)]
    );
    assert_eq!(lsns.len(), 3);
    sim.stop().await;
}

#[tokio::test]
async fn cleanup_with_a_low_water_mark_that_is_no_lsn_time_mapping_start_lsn_fails_with_22964() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let lsns = three_captured_transactions(&mut c).await;
    // Inside the timeline, but between two transactions' commit LSNs.
    let between = lsn(
        &mut c,
        &format!(
            "SELECT sys.fn_cdc_increment_lsn(0x{})",
            lsns[0]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        ),
    )
    .await;
    assert!(between > lsns[0] && between < lsns[1]);
    let e = cleanup(&mut c, Some(&between)).await.unwrap_err();
    assert_eq!(err_number(&e), 22964);
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM cdc.dbo_orders_CT").await,
        [Some(3)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn cleanup_with_a_valid_low_water_mark_raises_the_minimum_and_a_null_one_keeps_it() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let lsns = three_captured_transactions(&mut c).await;
    cleanup(&mut c, Some(&lsns[1])).await.unwrap();
    assert_eq!(
        lsn(&mut c, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')").await,
        lsns[1]
    );
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM cdc.dbo_orders_CT").await,
        [Some(2)]
    );
    // NULL: the current low endpoint bounds the cleanup; it does not move to the maximum.
    cleanup(&mut c, None).await.unwrap();
    assert_eq!(
        lsn(&mut c, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')").await,
        lsns[1]
    );
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM cdc.dbo_orders_CT").await,
        [Some(2)]
    );
    // A mark below the current low endpoint leaves it where it is.
    cleanup(&mut c, Some(&lsns[0])).await.unwrap();
    assert_eq!(
        lsn(&mut c, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')").await,
        lsns[1]
    );
    sim.stop().await;
}

#[tokio::test]
async fn computed_columns_are_accepted_computed_on_select_and_null_in_the_change_table_with_a_mask_bit()
 {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.lines (id int NOT NULL PRIMARY KEY, qty int NULL, price decimal(10,2) NULL, total AS (qty * price));
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'lines', @role_name = NULL;
         INSERT INTO dbo.lines (id, qty, price) VALUES (1, 2, 3.50);
         INSERT INTO dbo.lines VALUES (2, 1, 1.25);
         UPDATE dbo.lines SET qty = 3 WHERE id = 1;
         DELETE FROM dbo.lines WHERE id = 2;
         EXEC sys.sp_cdc_scan;",
    )
    .await;
    let rows = c
        .simple_query("SELECT id, total FROM dbo.lines ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let totals: Vec<(i32, Option<tiberius::numeric::Numeric>)> = rows
        .iter()
        .map(|r| (r.get::<i32, _>(0).unwrap(), r.get(1)))
        .collect();
    // int * decimal(10,2) is decimal(21,2): 3 * 3.50 = 10.50.
    assert_eq!(
        totals,
        [(1, Some(tiberius::numeric::Numeric::new_with_scale(1050, 2)))]
    );
    let ct = c
        .simple_query(
            "SELECT __$operation, __$update_mask, total FROM cdc.dbo_lines_CT ORDER BY __$start_lsn, __$seqval, __$operation",
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let got: Vec<(i32, Vec<u8>, bool)> = ct
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>(0).unwrap(),
                r.get::<&[u8], _>(1).unwrap().to_vec(),
                r.get::<tiberius::numeric::Numeric, _>(2).is_none(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (2, vec![0x0F], true),
            (2, vec![0x0F], true),
            // the update changed qty (column 2) only: the computed column's bit stays clear
            (3, vec![0x02], true),
            (4, vec![0x02], true),
            (1, vec![0x0F], true),
        ]
    );
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT CAST(is_computed AS int) FROM cdc.captured_columns ORDER BY column_ordinal"
        )
        .await,
        [Some(0), Some(0), Some(0), Some(1)]
    );
    let e = try_exec(
        &mut c,
        "INSERT INTO dbo.lines (id, qty, price, total) VALUES (3, 1, 1, 1)",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 271);
    assert_eq!(
        message(&e),
        "The column \"total\" cannot be modified because it is either a computed column or is the result of a UNION operator."
    );
    let e = try_exec(&mut c, "UPDATE dbo.lines SET total = 1")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 271);
    sim.stop().await;
}

#[tokio::test]
async fn unique_constraints_are_enforced_and_name_the_row_identity_of_a_keyless_capture_instance() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.ledger (code nvarchar(20) NOT NULL, amount int NULL, CONSTRAINT uq_ledger_code UNIQUE (code));
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'ledger', @role_name = NULL, @index_name = N'uq_ledger_code';
         INSERT INTO dbo.ledger VALUES (N'a', 1);",
    )
    .await;
    let e = try_exec(&mut c, "INSERT INTO dbo.ledger VALUES (N'a', 2)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2627);
    assert_eq!(
        message(&e),
        "Violation of UNIQUE KEY constraint 'uq_ledger_code'. Cannot insert duplicate key in object 'dbo.ledger'. The duplicate key value is (a)."
    );
    let rows = c
        .simple_query("SELECT column_name, CAST(index_ordinal AS int) FROM cdc.index_columns")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get::<i32, _>(1).unwrap()
            ))
            .collect::<Vec<_>>(),
        [("code".to_string(), 1)]
    );
    let rows = c
        .simple_query("SELECT index_name, CAST(supports_net_changes AS int) FROM cdc.change_tables")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows[0].get::<&str, _>(0), Some("uq_ledger_code"));
    assert_eq!(rows[0].get::<i32, _>(1), Some(1));
    // An update of the unique column of another row into a taken value is refused too.
    exec(&mut c, "INSERT INTO dbo.ledger VALUES (N'b', 2)").await;
    let e = try_exec(
        &mut c,
        "UPDATE dbo.ledger SET code = N'a' WHERE code = N'b'",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 2627);
    sim.stop().await;
}

#[tokio::test]
async fn a_unique_index_enforces_its_key_with_2601_and_can_identify_rows_for_cdc() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.t (a int NOT NULL, b int NOT NULL, v int NULL);
         INSERT INTO dbo.t VALUES (1, 1, 0), (1, 2, 0);
         CREATE UNIQUE INDEX ix_t_ab ON dbo.t (a, b);",
    )
    .await;
    let e = try_exec(&mut c, "INSERT INTO dbo.t VALUES (1, 2, 9)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2601);
    assert_eq!(
        message(&e),
        "Cannot insert duplicate key row in object 'dbo.t' with unique index 'ix_t_ab'. The duplicate key value is (1, 2)."
    );
    // Without @index_name a keyless table cannot have net changes (22939) ...
    let e = try_exec(
        &mut c,
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL, @supports_net_changes = 1;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 22939);
    // ... with it, it can.
    exec(
        &mut c,
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL, @index_name = N'ix_t_ab', @supports_net_changes = 1;",
    )
    .await;
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM cdc.index_columns").await,
        [Some(2)]
    );
    // A unique index over duplicates is refused (1505); a column in an index cannot be dropped.
    let e = try_exec(&mut c, "CREATE UNIQUE INDEX ix_t_a ON dbo.t (a)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 1505);
    let e = try_exec(&mut c, "ALTER TABLE dbo.t DROP COLUMN b")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 5074);
    sim.stop().await;
}

#[tokio::test]
async fn nchar_lengths_count_utf16_code_units_and_trailing_blanks_past_the_length_are_dropped() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop;
         CREATE TABLE dbo.s (k int PRIMARY KEY, n6 nchar(6) NULL, n2 nchar(2) NULL, v3 varchar(3) NULL, nv3 nvarchar(3) NULL);
         INSERT INTO dbo.s (k, n6, n2, v3) VALUES (1, N'😀ab', N'😀', 'abc   ');",
    )
    .await;
    let row = c
        .simple_query("SELECT n6, n2, v3 FROM dbo.s")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    // 😀 is two UTF-16 code units: nchar(6) pads 😀ab (4 units) with 2 blanks; nchar(2) holds
    // it exactly.
    assert_eq!(row.get::<&str, _>(0), Some("😀ab  "));
    assert_eq!(row.get::<&str, _>(1), Some("😀"));
    assert_eq!(row.get::<&str, _>(2), Some("abc"));
    let e = try_exec(&mut c, "INSERT INTO dbo.s (k, nv3) VALUES (2, N'😀ab')")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2628);
    sim.stop().await;
}

#[tokio::test]
async fn xml_is_stored_as_sql_server_reserialises_it() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.x (k int PRIMARY KEY, v xml NULL);
         INSERT INTO dbo.x VALUES (1, '<?xml version=\"1.0\" encoding=\"utf-8\"?><root><a></a><b x=\"1\"></b></root>');
         INSERT INTO dbo.x VALUES (2, '<root>
             <child attr=\"value\">text</child>
         </root>');
         INSERT INTO dbo.x VALUES (3, '<empty/>');",
    )
    .await;
    let rows = c
        .simple_query("SELECT v FROM dbo.x ORDER BY k")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            r.try_get::<&tiberius::xml::XmlData, _>(0)
                .ok()
                .flatten()
                .map(|x| x.to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        got,
        [
            "<root><a/><b x=\"1\"/></root>",
            "<root><child attr=\"value\">text</child></root>",
            "<empty/>"
        ]
    );
    sim.stop().await;
}

#[tokio::test]
async fn lob_values_past_max_text_repl_size_fail_with_7139_in_cdc_tables_until_sp_configure_raises_it()
 {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.docs (id int PRIMARY KEY, body nvarchar(max) NULL);
         CREATE TABLE dbo.plain (id int PRIMARY KEY, body nvarchar(max) NULL);
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'docs', @role_name = NULL;",
    )
    .await;
    // 32 768 characters of nvarchar are 65 536 bytes: the default limit, allowed; one more is not.
    exec(
        &mut c,
        &format!("INSERT INTO dbo.docs VALUES (1, N'{}');", "x".repeat(32768)),
    )
    .await;
    let e = try_exec(
        &mut c,
        &format!("INSERT INTO dbo.docs VALUES (2, N'{}');", "x".repeat(32769)),
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 7139);
    assert!(
        message(&e).starts_with(
            "Length of LOB data (65538) to be replicated exceeds configured maximum 65536."
        ),
        "{e}"
    );
    // A table without a capture instance is not limited.
    exec(
        &mut c,
        &format!(
            "INSERT INTO dbo.plain VALUES (2, N'{}');",
            "x".repeat(40000)
        ),
    )
    .await;
    // sp_configure takes effect at RECONFIGURE.
    exec(&mut c, "EXEC sp_configure 'max text repl size', -1;").await;
    let e = try_exec(
        &mut c,
        &format!("INSERT INTO dbo.docs VALUES (2, N'{}');", "x".repeat(32769)),
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 7139);
    exec(&mut c, "RECONFIGURE;").await;
    exec(
        &mut c,
        &format!("INSERT INTO dbo.docs VALUES (2, N'{}');", "x".repeat(32769)),
    )
    .await;
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM dbo.docs").await,
        [Some(2)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn t_sql_from_real_server_scripts_runs_while_loops_dynamic_sql_and_clustering_words() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int NOT NULL, v int NULL);
         DECLARE @i int = 0;
         WHILE @i < 5 BEGIN SET @i = @i + 1; INSERT INTO dbo.t VALUES (@i, @i * 10); END;
         EXEC('INSERT INTO dbo.t VALUES (100, 0)');
         EXECUTE ('INSERT INTO dbo.t VALUES (' + '101, 0)');
         CREATE UNIQUE NONCLUSTERED INDEX ix_t_id ON dbo.t (id);
         CREATE CLUSTERED INDEX ix_t_v ON dbo.t (v);",
    )
    .await;
    assert_eq!(
        int_rows(&mut c, "SELECT id FROM dbo.t ORDER BY id").await,
        [
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(100),
            Some(101)
        ]
    );
    let e = try_exec(&mut c, "INSERT INTO dbo.t VALUES (1, 0)")
        .await
        .unwrap_err();
    assert_eq!(
        err_number(&e),
        2601,
        "the NONCLUSTERED unique index is kept"
    );
    sim.stop().await;
}

#[tokio::test]
async fn compound_assignment_applies_the_operator_to_the_whole_expression() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    assert_eq!(
        int_rows(
            &mut c,
            "DECLARE @i int = 2; SET @i += 1; SET @i *= 2 + 1; SET @i -= 1
             SELECT @i"
        )
        .await,
        // ((2 + 1) * (2 + 1)) - 1
        [Some(8)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn drop_column_takes_a_list_and_query_hints_are_accepted() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY, a int NULL, b int NULL, d int NULL);
         ALTER TABLE dbo.t DROP COLUMN a, b;",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT COUNT(*) FROM sys.columns WHERE object_id = OBJECT_ID('dbo.t')"
        )
        .await,
        [Some(2)]
    );
    assert_eq!(
        int_rows(&mut c, "SELECT COUNT(*) FROM dbo.t OPTION (MAXDOP 1)").await,
        [Some(0)]
    );
    sim.stop().await;
}

/// CONVERT of a date/time value to text in a style gives SQL Server's text for it (Microsoft,
/// "CAST and CONVERT", date and time styles): the type's own fractional digits (3 for datetime,
/// the scale for datetime2), and error 281 for a style SQL Server lacks. The style was
/// ignored, every style gave the same ISO text.
#[tokio::test]
async fn convert_to_text_in_a_date_style_gives_sql_servers_text() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    assert_eq!(
        text(
            &mut c,
            "SELECT CONVERT(varchar(30), CAST('2024-01-05 14:03:07.123' AS datetime), 121)"
        )
        .await,
        "2024-01-05 14:03:07.123"
    );
    assert_eq!(
        text(
            &mut c,
            "SELECT CONVERT(varchar(30), CAST('2024-01-05 14:03:07.123' AS datetime2), 121)"
        )
        .await,
        "2024-01-05 14:03:07.1230000"
    );
    assert_eq!(
        text(
            &mut c,
            "SELECT CONVERT(varchar(30), CAST('2024-01-05 14:03:07' AS datetime), 100)"
        )
        .await,
        "Jan  5 2024  2:03PM"
    );
    assert_eq!(
        text(
            &mut c,
            "SELECT CONVERT(nvarchar(10), CAST('2024-01-05' AS date), 103)"
        )
        .await,
        "05/01/2024"
    );
    assert_eq!(
        text(
            &mut c,
            "SELECT CONVERT(varchar(30), CAST('2024-01-05 14:03:07' AS datetime2(0)), 126)"
        )
        .await,
        "2024-01-05T14:03:07"
    );
    let e = try_exec(
        &mut c,
        "SELECT CONVERT(varchar(30), CAST('2024-01-05' AS datetime), 99)",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 281);
    assert_eq!(
        message(&e),
        "99 is not a valid style number when converting from datetime to a character string."
    );
    sim.stop().await;
}

/// A date/time value converted to text without a style takes its type's default (Microsoft,
/// "CAST and CONVERT": style 0 is the "Default for datetime and smalldatetime", 21/121 the
/// "default for time, date, datetime2, and datetimeoffset", the fraction as many digits as
/// the type's scale; "datetimeoffset": `YYYY-MM-DD hh:mm:ss[.nnnnnnn] [{+|-}hh:mm]`). The
/// type comes from the expression: a column, a CAST, a sql_variant's base type. Every type
/// gave ISO text with chrono's fraction.
#[tokio::test]
async fn a_date_or_time_converted_to_text_without_a_style_takes_its_types_default_form() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let cases = [
        (
            "CAST(CAST('2024-01-05 14:03:07.123' AS datetime) AS varchar(30))",
            "Jan  5 2024  2:03PM",
        ),
        (
            "CONVERT(nvarchar(30), CAST('2024-01-05 09:03:29' AS smalldatetime))",
            "Jan  5 2024  9:03AM",
        ),
        (
            "CAST(CAST('2024-01-05 14:03:07.123' AS datetime2) AS varchar(30))",
            "2024-01-05 14:03:07.1230000",
        ),
        (
            "CAST(CAST('2024-01-05 14:03:07.5' AS datetime2(0)) AS varchar(30))",
            "2024-01-05 14:03:08",
        ),
        (
            "CAST(CAST('2024-01-05' AS date) AS varchar(30))",
            "2024-01-05",
        ),
        (
            "CONVERT(varchar(30), CAST('14:03:07.5' AS time(3)))",
            "14:03:07.500",
        ),
        (
            "CAST(CAST('14:03:07' AS time) AS nvarchar(30))",
            "14:03:07.0000000",
        ),
        (
            "CAST(CAST('2024-01-05 14:03:07.5 +01:00' AS datetimeoffset(3)) AS varchar(40))",
            "2024-01-05 14:03:07.500 +01:00",
        ),
        (
            "CAST(CAST(CAST('2024-01-05 14:03:07' AS datetime) AS sql_variant) AS varchar(30))",
            "Jan  5 2024  2:03PM",
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(
            text(&mut c, &format!("SELECT {expr}")).await,
            want,
            "{expr}"
        );
    }
    // A column's declared type, in CAST and in an assignment to a character column.
    exec(
        &mut c,
        "CREATE TABLE dbo.stamps (id int NOT NULL PRIMARY KEY, at datetime NULL, at2 datetime2(2) NULL, s varchar(40) NULL);
         INSERT INTO dbo.stamps VALUES (1, '2024-01-05 14:03:07', '2024-01-05 14:03:07.25', NULL);
         INSERT INTO dbo.stamps (id, s) SELECT 2, at FROM dbo.stamps WHERE id = 1;
         UPDATE dbo.stamps SET s = at2 WHERE id = 1;",
    )
    .await;
    assert_eq!(
        text(
            &mut c,
            "SELECT CAST(at AS varchar(30)) FROM dbo.stamps WHERE id = 1"
        )
        .await,
        "Jan  5 2024  2:03PM"
    );
    assert_eq!(
        text(&mut c, "SELECT s FROM dbo.stamps WHERE id = 1").await,
        "2024-01-05 14:03:07.25"
    );
    assert_eq!(
        text(&mut c, "SELECT s FROM dbo.stamps WHERE id = 2").await,
        "Jan  5 2024  2:03PM"
    );
    sim.stop().await;
}

/// A date/time value assigned to a character variable takes its type's default text, as in
/// CAST (Microsoft, "CAST and CONVERT": style 0 is the default for datetime and
/// smalldatetime): `DECLARE … =`, `SET @s = …` and `SELECT @s = col`. They gave ISO text.
#[tokio::test]
async fn a_date_or_time_assigned_to_a_character_variable_takes_its_types_default_form() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.when2 (id int NOT NULL PRIMARY KEY, at datetime NULL);
         INSERT INTO dbo.when2 VALUES (1, '2024-01-05 14:03:07');",
    )
    .await;
    assert_eq!(
        text(
            &mut c,
            "DECLARE @s varchar(30) = CAST('2024-01-05 14:03:07' AS datetime); SELECT @s"
        )
        .await,
        "Jan  5 2024  2:03PM"
    );
    assert_eq!(
        text(
            &mut c,
            "DECLARE @d datetime2(3) = '2024-01-05 14:03:07.5'; DECLARE @s varchar(30); SET @s = @d; SELECT @s"
        )
        .await,
        "2024-01-05 14:03:07.500"
    );
    assert_eq!(
        text(
            &mut c,
            "DECLARE @s nvarchar(30); SELECT @s = at FROM dbo.when2 WHERE id = 1; SELECT @s"
        )
        .await,
        "Jan  5 2024  2:03PM"
    );
    sim.stop().await;
}

/// CONCAT converts each argument to text implicitly (Microsoft, "CONCAT"), a date/time one
/// as its type's default text: style 0 for datetime, the ODBC form with the scale's digits
/// for datetime2; a NULL argument is the empty string. It gave ISO text.
#[tokio::test]
async fn concat_of_a_date_or_time_takes_its_types_default_form() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.when3 (id int NOT NULL PRIMARY KEY, at datetime NULL, at2 datetime2(1) NULL);
         INSERT INTO dbo.when3 VALUES (1, '2024-01-05 14:03:07', '2024-01-05 14:03:07.5');",
    )
    .await;
    assert_eq!(
        text(
            &mut c,
            "SELECT CONCAT('at ', at, NULL, ' / ', at2, ' #', id) FROM dbo.when3"
        )
        .await,
        "at Jan  5 2024  2:03PM / 2024-01-05 14:03:07.5 #1"
    );
    sim.stop().await;
}

/// CONVERT of a datetimeoffset in styles 121, 126 and 127 keeps its offset as SQL Server
/// writes it: after a blank in 121, directly after the time in 126, and 127 is the UTC time
/// with `Z` (recorded for datetimeoffset(3) '1997-12-31 14:53:00.123 +04:30':
/// blog-en-with-hugo.netlify.app, "How to Cast a datetimeoffset to String in SQL Server").
/// The offset was dropped and 127 wrote the local time.
#[tokio::test]
async fn convert_of_a_datetimeoffset_in_styles_121_126_127_keeps_its_offset() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let at = "CAST('1997-12-31 14:53:00.123 +04:30' AS datetimeoffset(3))";
    for (style, want) in [
        (121, "1997-12-31 14:53:00.123 +04:30"),
        (126, "1997-12-31T14:53:00.123+04:30"),
        (127, "1997-12-31T10:23:00.123Z"),
    ] {
        assert_eq!(
            text(
                &mut c,
                &format!("SELECT CONVERT(nvarchar(35), {at}, {style})")
            )
            .await,
            want,
            "style {style}"
        );
    }
    sim.stop().await;
}

async fn text(c: &mut common::Conn, sql: &str) -> String {
    let rows = c
        .simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows[0].get::<&str, _>(0).unwrap().to_string()
}
