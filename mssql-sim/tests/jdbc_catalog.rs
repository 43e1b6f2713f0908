//! The ODBC catalog procedures and table variables Microsoft's mssql-jdbc uses for
//! `DatabaseMetaData.getTables/getColumns/getPrimaryKeys` (and so Debezium's schema reads),
//! checked through tiberius.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tiberius::Row;

async fn setup() -> (mssql_sim::Simulator, common::Conn) {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "CREATE DATABASE shop").await;
    common::exec(&mut c, "USE shop").await;
    common::exec(&mut c, "EXEC sys.sp_cdc_enable_db").await;
    common::exec(
        &mut c,
        "CREATE TABLE dbo.items (id int IDENTITY(1,1) NOT NULL, code nvarchar(20) NOT NULL, price decimal(10,2), at datetime2(3), CONSTRAINT pk_items PRIMARY KEY (code, id))",
    )
    .await;
    common::exec(
        &mut c,
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL",
    )
    .await;
    (sim, c)
}

/// COLUMN_NAME, DATA_TYPE, TYPE_NAME, PRECISION, LENGTH, SCALE, NULLABLE, ORDINAL_POSITION.
type ColumnRow = (
    String,
    i16,
    String,
    Option<i32>,
    Option<i32>,
    Option<i16>,
    i16,
    i32,
);

async fn rows(c: &mut common::Conn, sql: &str) -> Vec<Row> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
}

#[tokio::test]
async fn sp_tables_lists_user_tables_as_table_and_cdc_tables_as_system_table() {
    let (sim, mut c) = setup().await;
    let r = rows(&mut c, "EXEC sp_tables NULL, NULL, N'shop', N'''TABLE'''").await;
    let names: Vec<(&str, &str, &str)> = r
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(1).unwrap(),
                r.get::<&str, _>(2).unwrap(),
                r.get::<&str, _>(3).unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("dbo", "items", "TABLE")]);
    assert_eq!(r[0].get::<&str, _>("TABLE_QUALIFIER"), Some("shop"));
    let r = rows(&mut c, "EXEC sp_tables @table_owner = N'cdc'").await;
    assert!(r.iter().any(|r| r.get::<&str, _>(2) == Some("dbo_items_CT")
        && r.get::<&str, _>(3) == Some("SYSTEM TABLE")));
    sim.stop().await;
}

#[tokio::test]
async fn sp_tables_with_another_database_as_qualifier_fails_with_15250() {
    let (sim, mut c) = setup().await;
    let e = common::try_exec(&mut c, "EXEC sp_tables NULL, NULL, N'master'")
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&e), 15250);
    sim.stop().await;
}

#[tokio::test]
async fn sp_columns_100_reports_odbc_3_types_in_ordinal_order() {
    let (sim, mut c) = setup().await;
    let r = rows(
        &mut c,
        "EXEC sp_columns_100 N'items', N'dbo', N'shop', N'%', 2, 3",
    )
    .await;
    let got: Vec<ColumnRow> = r
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>("COLUMN_NAME").unwrap().to_string(),
                r.get::<i16, _>("DATA_TYPE").unwrap(),
                r.get::<&str, _>("TYPE_NAME").unwrap().to_string(),
                r.get::<i32, _>("PRECISION"),
                r.get::<i32, _>("LENGTH"),
                r.get::<i16, _>("SCALE"),
                r.get::<i16, _>("NULLABLE").unwrap(),
                r.get::<i32, _>("ORDINAL_POSITION").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "id".into(),
                4,
                "int identity".into(),
                Some(10),
                Some(4),
                Some(0),
                0,
                1
            ),
            (
                "code".into(),
                -9,
                "nvarchar".into(),
                Some(20),
                Some(40),
                None,
                0,
                2
            ),
            (
                "price".into(),
                3,
                "decimal".into(),
                Some(10),
                Some(12),
                Some(2),
                1,
                3
            ),
            (
                "at".into(),
                93,
                "datetime2".into(),
                Some(23),
                Some(16),
                Some(3),
                1,
                4
            ),
        ]
    );
    assert_eq!(r[0].get::<i16, _>("SS_IS_IDENTITY"), Some(1));
    assert_eq!(r[1].get::<&str, _>("IS_NULLABLE"), Some("NO"));
    assert_eq!(r[0].columns().len(), 29, "sp_columns_100 has 29 columns");
    sim.stop().await;
}

#[tokio::test]
async fn sp_pkeys_reports_key_columns_in_key_order_with_the_constraint_name() {
    let (sim, mut c) = setup().await;
    let r = rows(&mut c, "EXEC sp_pkeys N'items', N'dbo', N'shop'").await;
    let got: Vec<(&str, i16, &str)> = r
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>("COLUMN_NAME").unwrap(),
                r.get::<i16, _>("KEY_SEQ").unwrap(),
                r.get::<&str, _>("PK_NAME").unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("code", 1, "pk_items"), ("id", 2, "pk_items")]);
    let e = common::try_exec(&mut c, "EXEC sp_pkeys").await.unwrap_err();
    assert_eq!(common::err_number(&e), 201);
    sim.stop().await;
}

#[tokio::test]
async fn table_variable_filled_by_insert_exec_is_selectable_and_gone_after_the_batch() {
    let (sim, mut c) = setup().await;
    let r = rows(
        &mut c,
        "DECLARE @cols TABLE(TABLE_QUALIFIER SYSNAME, TABLE_OWNER SYSNAME, TABLE_NAME SYSNAME, COLUMN_NAME SYSNAME, KEY_SEQ SMALLINT, PK_NAME SYSNAME);\
         INSERT INTO @cols EXEC sp_pkeys N'items', N'dbo', N'shop';\
         SELECT COLUMN_NAME AS c, CASE KEY_SEQ WHEN 1 THEN 'first' ELSE 'later' END AS k FROM @cols ORDER BY KEY_SEQ DESC;",
    )
    .await;
    let got: Vec<(&str, &str)> = r
        .iter()
        .map(|r| (r.get::<&str, _>(0).unwrap(), r.get::<&str, _>(1).unwrap()))
        .collect();
    assert_eq!(got, vec![("id", "later"), ("code", "first")]);
    let left = rows(&mut c, "SELECT name FROM tempdb.sys.tables").await;
    assert!(
        left.is_empty(),
        "the table variable lives for its batch only"
    );
    // Used after its batch, the variable is unknown again.
    assert!(
        common::try_exec(&mut c, "SELECT * FROM @cols")
            .await
            .is_err()
    );
    sim.stop().await;
}
