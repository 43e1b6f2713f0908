//! Collations: how the simulator compares and orders text, checked against orders recorded
//! on SQL Server 2022 (Estuary's `TestCollation` snapshots, Debezium's DBZ-7359 ids) and
//! SQL Server's errors for collation names and conflicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raw::{batch, find, login, reply};
use common::{connect, err_number, exec, message, try_exec};
use tokio::io::AsyncWriteExt;

#[path = "data/collation_cases.rs"]
mod cases;

use cases::{SQL_SORT_ORDER, UNICODE_ORDER, column, dbz_7359_table, estuary_order, page_through};

// The varchar and nvarchar halves (ground truth rows 61 and 63) are in tests/ground_truth.rs.

#[tokio::test]
async fn char_keys_sort_by_the_sql_sort_order_as_varchar_keys_do() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    assert_eq!(estuary_order(&mut c, "char").await, SQL_SORT_ORDER);
    sim.stop().await;
}

#[tokio::test]
async fn nchar_keys_sort_by_unicode_rules_as_nvarchar_keys_do() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    assert_eq!(estuary_order(&mut c, "nchar").await, UNICODE_ORDER);
    sim.stop().await;
}

/// Debezium's `orderMismatchPkChar...` cases: a char(50) key pads, and its SQL sort order
/// ignores the padding as varchar's does (the varchar case is ground truth C27).
#[tokio::test]
async fn keyset_paging_of_a_char_key_skips_36_ids_only_with_nvarchar_parameters() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let ids = dbz_7359_table(&mut c, "char(50)").await;
    let read = page_through(&mut c, "@").await;
    let distinct: std::collections::BTreeSet<&String> = read.iter().collect();
    assert_eq!(distinct.len(), ids.len() - 36);
    assert_eq!(page_through(&mut c, "CAST(@ AS char(50))").await, ids);
    sim.stop().await;
}

#[tokio::test]
async fn a_column_collation_is_recorded_and_shown_in_sys_columns() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.cols (id int PRIMARY KEY, a varchar(10), b nvarchar(10) COLLATE latin1_general_bin2, d datetime2)",
    )
    .await;
    exec(
        &mut c,
        "ALTER TABLE dbo.cols ADD e nchar(4) COLLATE Latin1_General_100_CI_AS_SC",
    )
    .await;
    let rows = column(
        &mut c,
        "SELECT ISNULL(collation_name, 'NULL') FROM sys.columns WHERE object_id = OBJECT_ID('dbo.cols') ORDER BY column_id",
    )
    .await;
    assert_eq!(
        rows,
        [
            "NULL",
            "SQL_Latin1_General_CP1_CI_AS",
            "Latin1_General_BIN2",
            "NULL",
            "Latin1_General_100_CI_AS_SC"
        ]
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_unknown_collation_name_is_error_448() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let e = try_exec(
        &mut c,
        "CREATE TABLE dbo.bad (id varchar(10) COLLATE Klingon_CI_AS PRIMARY KEY)",
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err_number(&e), message(&e)),
        (448, "Invalid collation 'Klingon_CI_AS'.".to_string())
    );
    let e = try_exec(&mut c, "SELECT 1 WHERE 'a' = 'A' COLLATE Latin1_General_XX")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 448);
    sim.stop().await;
}

#[tokio::test]
async fn a_case_sensitive_or_binary_key_keeps_a_and_upper_a_apart() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    for coll in [
        "Latin1_General_CS_AS",
        "SQL_Latin1_General_CP1_CS_AS",
        "Latin1_General_BIN2",
    ] {
        exec(&mut c, "DROP TABLE IF EXISTS dbo.k").await;
        exec(
            &mut c,
            &format!("CREATE TABLE dbo.k (id varchar(10) COLLATE {coll} PRIMARY KEY)"),
        )
        .await;
        exec(&mut c, "INSERT INTO dbo.k VALUES ('a'), ('A')").await;
        assert_eq!(column(&mut c, "SELECT id FROM dbo.k").await.len(), 2);
        assert_eq!(
            column(&mut c, "SELECT id FROM dbo.k WHERE id = 'A'").await,
            ["A"],
            "{coll}"
        );
    }
    // The default (case-insensitive) collation refuses the second: 2627.
    exec(&mut c, "CREATE TABLE dbo.ci (id varchar(10) PRIMARY KEY)").await;
    let e = try_exec(&mut c, "INSERT INTO dbo.ci VALUES ('a'), ('A')")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2627);
    sim.stop().await;
}

#[tokio::test]
async fn case_sensitive_collations_order_case_after_the_whole_string() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.cs (a varchar(20) COLLATE Latin1_General_CS_AS NOT NULL PRIMARY KEY)",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.cs VALUES ('h'), ('H'), ('he'), ('hE'), ('He'), ('HE'), ('g'), ('G'), ('goodbye'), ('Goodbye')",
    )
    .await;
    // Recorded on SQL Server (rsql.ch, "Problem with Case-Sensitive Collation Sort Order").
    assert_eq!(
        column(&mut c, "SELECT a FROM dbo.cs ORDER BY a").await,
        [
            "g", "G", "goodbye", "Goodbye", "h", "H", "he", "hE", "He", "HE"
        ]
    );
    assert_eq!(
        column(
            &mut c,
            "SELECT a FROM dbo.cs WHERE a >= 'G' AND a < 'H' ORDER BY a"
        )
        .await,
        ["G", "goodbye", "Goodbye", "h"]
    );
    sim.stop().await;
}

#[tokio::test]
async fn columns_of_different_collations_compare_only_with_collate() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.two (id int PRIMARY KEY, a varchar(10), b varchar(10) COLLATE Latin1_General_BIN2)",
    )
    .await;
    exec(&mut c, "INSERT INTO dbo.two VALUES (1, 'x', 'X')").await;
    let e = try_exec(&mut c, "SELECT id FROM dbo.two WHERE a = b")
        .await
        .unwrap_err();
    assert_eq!(
        (err_number(&e), message(&e)),
        (
            468,
            "Cannot resolve the collation conflict between \"SQL_Latin1_General_CP1_CI_AS\" and \"Latin1_General_BIN2\" in the equal to operation.".to_string()
        )
    );
    // An explicit COLLATE decides: case-insensitive equal, binary not.
    assert_eq!(
        column(
            &mut c,
            "SELECT 'y' FROM dbo.two WHERE a = b COLLATE SQL_Latin1_General_CP1_CI_AS"
        )
        .await,
        ["y"]
    );
    assert!(
        column(
            &mut c,
            "SELECT 'y' FROM dbo.two WHERE a COLLATE Latin1_General_BIN2 = b"
        )
        .await
        .is_empty()
    );
    // A literal takes the column's collation (coercible): binary, so 'x' is not 'X'.
    assert!(
        column(&mut c, "SELECT 'y' FROM dbo.two WHERE b = 'x'")
            .await
            .is_empty()
    );
    assert_eq!(
        column(&mut c, "SELECT 'y' FROM dbo.two WHERE a = 'X'").await,
        ["y"]
    );
    sim.stop().await;
}

#[tokio::test]
async fn order_by_collate_sorts_by_the_named_collation() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, "CREATE TABLE dbo.o (id nvarchar(10) PRIMARY KEY)").await;
    exec(
        &mut c,
        "INSERT INTO dbo.o VALUES (N'b'), (N'B2'), (N'a'), (N'co-op'), (N'coop')",
    )
    .await;
    assert_eq!(
        column(
            &mut c,
            "SELECT id FROM dbo.o ORDER BY id COLLATE Latin1_General_BIN2"
        )
        .await,
        ["B2", "a", "b", "co-op", "coop"]
    );
    // Word sort: the hyphen is ignored but for the last tie-break.
    assert_eq!(
        column(&mut c, "SELECT id FROM dbo.o ORDER BY id").await,
        ["a", "b", "B2", "coop", "co-op"]
    );
    sim.stop().await;
}

#[tokio::test]
async fn min_max_group_by_and_distinct_follow_the_column_collation() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.g (id int PRIMARY KEY, ci varchar(10), cs varchar(10) COLLATE Latin1_General_CS_AS, v varchar(10))",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.g VALUES (1, 'a', 'a', 'Y-2'), (2, 'A', 'A', 'Y1')",
    )
    .await;
    assert_eq!(
        column(&mut c, "SELECT DISTINCT ci FROM dbo.g").await.len(),
        1
    );
    assert_eq!(
        column(&mut c, "SELECT cs FROM dbo.g GROUP BY cs")
            .await
            .len(),
        2
    );
    // varchar: the SQL sort order puts '-' before '1'; nvarchar: the hyphen is ignored.
    assert_eq!(column(&mut c, "SELECT MIN(v) FROM dbo.g").await, ["Y-2"]);
    assert_eq!(
        column(&mut c, "SELECT MIN(CAST(v AS nvarchar(10))) FROM dbo.g").await,
        ["Y1"]
    );
    sim.stop().await;
}

#[tokio::test]
async fn like_matches_case_and_accents_as_the_column_collation_compares() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.l (id int PRIMARY KEY, ci varchar(10), cs varchar(10) COLLATE Latin1_General_CS_AS, ai nvarchar(10) COLLATE Latin1_General_CI_AI)",
    )
    .await;
    exec(&mut c, "INSERT INTO dbo.l VALUES (1, 'Abc', 'Abc', N'Ébc')").await;
    assert_eq!(
        column(&mut c, "SELECT 'y' FROM dbo.l WHERE ci LIKE 'a%'").await,
        ["y"]
    );
    assert!(
        column(&mut c, "SELECT 'y' FROM dbo.l WHERE cs LIKE 'a%'")
            .await
            .is_empty()
    );
    assert_eq!(
        column(&mut c, "SELECT 'y' FROM dbo.l WHERE cs LIKE 'A%'").await,
        ["y"]
    );
    assert_eq!(
        column(&mut c, "SELECT 'y' FROM dbo.l WHERE ai LIKE N'eb_'").await,
        ["y"]
    );
    assert!(
        column(
            &mut c,
            "SELECT 'y' FROM dbo.l WHERE ci COLLATE Latin1_General_BIN2 LIKE 'abc'"
        )
        .await
        .is_empty()
    );
    sim.stop().await;
}

#[tokio::test]
async fn window_functions_order_and_partition_text_by_its_collation() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.w (id int PRIMARY KEY, k varchar(10), p varchar(10) COLLATE Latin1_General_CS_AS)",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.w VALUES (1, 'Y1', 'a'), (2, 'Y-2', 'A'), (3, 'Z', 'a')",
    )
    .await;
    // varchar under the SQL sort order: '-' before digits ('Y-2' < 'Y1' < 'Z').
    assert_eq!(
        column(
            &mut c,
            "SELECT k FROM (SELECT k, ROW_NUMBER() OVER (ORDER BY k) AS n FROM dbo.w) AS x WHERE n = 1"
        )
        .await,
        ["Y-2"]
    );
    // Word sort ignores the hyphen: 'Y1' < 'Y-2'.
    assert_eq!(
        column(
            &mut c,
            "SELECT k FROM (SELECT k, ROW_NUMBER() OVER (ORDER BY CAST(k AS nvarchar(10))) AS n FROM dbo.w) AS x WHERE n = 1"
        )
        .await,
        ["Y1"]
    );
    // A case-sensitive partition keeps 'a' and 'A' apart: two rows numbered 1 besides 'a''s 2.
    let rows = c
        .simple_query("SELECT ROW_NUMBER() OVER (PARTITION BY p ORDER BY id) FROM dbo.w")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let mut n: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0).unwrap()).collect();
    n.sort();
    assert_eq!(n, [1, 1, 2]);
    sim.stop().await;
}

#[tokio::test]
async fn a_unique_index_on_a_case_sensitive_column_accepts_values_differing_in_case() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.u (id int PRIMARY KEY, cs varchar(10) COLLATE Latin1_General_CS_AS, ci varchar(10))",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.u VALUES (1, 'a', 'a'), (2, 'A', 'A')",
    )
    .await;
    exec(&mut c, "CREATE UNIQUE INDEX ux_cs ON dbo.u (cs)").await;
    let e = try_exec(&mut c, "CREATE UNIQUE INDEX ux_ci ON dbo.u (ci)")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 1505);
    let e = try_exec(&mut c, "INSERT INTO dbo.u VALUES (3, 'a', 'b')")
        .await
        .unwrap_err();
    assert_eq!(err_number(&e), 2601);
    sim.stop().await;
}

/// Debezium's `orderMismatchPkNvarchar...`/`orderMismatchPkNchar...` cases: an nvarchar or
/// nchar key orders and compares by the same (Unicode) rules, so nvarchar parameters read
/// every id once.
#[tokio::test]
async fn keyset_paging_of_an_nvarchar_or_nchar_key_reads_every_id_once() {
    for key_type in ["nvarchar(50)", "nchar(50)"] {
        let sim = common::start().await;
        let mut c = connect(&sim).await;
        let ids = dbz_7359_table(&mut c, key_type).await;
        let mut read = page_through(&mut c, "@").await;
        assert_eq!(read.len(), ids.len(), "{key_type}");
        read.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(read, expected, "{key_type}");
        sim.stop().await;
    }
}

/// COLMETADATA carries each text column's collation ([MS-TDS] 2.2.5.1.2): the default's
/// `09 04 D0 00 34` (as SQL Server sends it), a binary collation's fBinary2 flag and sort id
/// 0, a `_100` UTF-8 collation's version and fUTF8 flag. tiberius decodes them all (code page
/// 1252 from LCID 0x0409).
#[tokio::test]
async fn result_columns_carry_their_collation_on_the_wire() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE TABLE dbo.wire (d varchar(5), b varchar(5) COLLATE Latin1_General_BIN2, u nvarchar(5) COLLATE Latin1_General_100_CI_AS_SC_UTF8, s varchar(5) COLLATE SQL_Latin1_General_CP1_CS_AS); INSERT INTO dbo.wire VALUES ('é', 'é', N'é', 'é')",
    )
    .await;
    let row = c
        .simple_query("SELECT d, b, u, s FROM dbo.wire")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    let got: Vec<&str> = (0..4).map(|i| row.get::<&str, _>(i).unwrap()).collect();
    assert_eq!(got, ["é"; 4]);
    let (mut s, _) = login(&sim, "").await;
    s.write_all(&batch("SELECT d, b, u, s FROM dbo.wire"))
        .await
        .unwrap();
    let r = reply(&mut s).await;
    // varchar(5) then its collation, for each column in turn
    let d = find(&r, &[0xA7, 5, 0, 0x09, 0x04, 0xD0, 0x00, 0x34]);
    let b = find(&r, &[0xA7, 5, 0, 0x09, 0x04, 0x00, 0x02, 0x00]);
    let u = find(&r, &[0xE7, 10, 0, 0x09, 0x04, 0xD0, 0x24, 0x00]);
    let cs = find(&r, &[0xA7, 5, 0, 0x09, 0x04, 0xC0, 0x00, 0x33]);
    assert!(
        d.is_some() && b.is_some() && u.is_some() && cs.is_some(),
        "{d:?} {b:?} {u:?} {cs:?}"
    );
    assert!(d < b && b < u && u < cs);
    sim.stop().await;
}

/// A `_UTF8` collation on a varchar column would need UTF-8 storage, which the simulator
/// lacks: it refuses the column rather than store code page 1252 text under a UTF-8 label.
#[tokio::test]
async fn a_utf8_collation_on_a_varchar_column_is_refused_as_unsupported() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    let e = try_exec(
        &mut c,
        "CREATE TABLE dbo.u8 (id int PRIMARY KEY, v varchar(10) COLLATE Latin1_General_100_CI_AS_SC_UTF8)",
    )
    .await
    .unwrap_err();
    assert!(message(&e).contains("UTF-8 collations"), "{}", message(&e));
    exec(
        &mut c,
        "CREATE TABLE dbo.u16 (id int PRIMARY KEY, v nvarchar(10) COLLATE Latin1_General_100_CI_AS_SC_UTF8)",
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn a_change_table_column_keeps_the_source_column_collation() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE coll;
         USE coll;
         CREATE TABLE dbo.src (id int PRIMARY KEY, v varchar(10) COLLATE Latin1_General_BIN2);
         EXEC sys.sp_cdc_enable_db;
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'src', @role_name = NULL;
         INSERT INTO dbo.src VALUES (1, 'X');
         EXEC sys.sp_cdc_scan;",
    )
    .await;
    assert_eq!(
        column(
            &mut c,
            "SELECT collation_name FROM sys.columns WHERE object_id = OBJECT_ID('cdc.dbo_src_CT') AND name = 'v'"
        )
        .await,
        ["Latin1_General_BIN2"]
    );
    assert!(
        column(&mut c, "SELECT v FROM cdc.dbo_src_CT WHERE v = 'x'")
            .await
            .is_empty()
    );
    sim.stop().await;
}
