//! Rows of `sqlserver-ground-truth.md` that are about change rows, read through the reader:
//! what a real SQL Server 2022 stores for an inserted literal must arrive in the event as
//! that value (table-driven; a failure names the row).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{Op, Value};
use chrono::{NaiveDate, NaiveTime};
use support::{Target, read_events};

/// (ground-truth row, column type, literal, expected value in the event)
fn cases() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let dt = |y, mo, d, h, mi, s, ns| {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_nano_opt(h, mi, s, ns)
            .unwrap()
    };
    let dec = |s: &str| Value::Decimal(s.parse().unwrap());
    vec![
        ("1", "NUMERIC(10,5)", "12345.12", dec("12345.12000")),
        ("9", "MONEY", "6.323", dec("6.3230")),
        ("9", "SMALLMONEY", "5.323", dec("5.3230")),
        ("14", "NUMERIC", "2", dec("2")),
        ("17", "REAL", "1.234567e10", Value::F32(1.234_567e10)),
        (
            "18",
            "FLOAT",
            "9.87654321e-10",
            Value::F64(9.876_543_21e-10),
        ),
        ("24", "TINYINT", "22", Value::U8(22)),
        (
            "29",
            "DATETIME",
            "'1991-08-31T12:34:56.789'",
            Value::DateTime(dt(1991, 8, 31, 12, 34, 56, 790_000_000)),
        ),
        (
            "30",
            "DATETIME",
            "'1991-08-31T12:34:54.111'",
            Value::DateTime(dt(1991, 8, 31, 12, 34, 54, 110_000_000)),
        ),
        (
            "34",
            "SMALLDATETIME",
            "'1991-08-31T12:34:56.789'",
            Value::DateTime(dt(1991, 8, 31, 12, 35, 0, 0)),
        ),
        (
            "39",
            "DATETIME2(7)",
            "'9999-12-31 23:59:59.9999999'",
            Value::DateTime(dt(9999, 12, 31, 23, 59, 59, 999_999_900)),
        ),
        (
            "44",
            "TIME(2)",
            "'10:23:45.678'",
            Value::Time(NaiveTime::from_hms_milli_opt(10, 23, 45, 680).unwrap()),
        ),
        (
            "47",
            "DATETIMEOFFSET",
            "'2018-07-13 12:23:45.456+11:00'",
            Value::DateTimeOffset(
                chrono::DateTime::parse_from_rfc3339("2018-07-13T12:23:45.456+11:00").unwrap(),
            ),
        ),
        ("53", "CHAR(6)", "'asdf'", Value::String("asdf  ".into())),
        ("53", "NCHAR(6)", "N'hello'", Value::String("hello ".into())),
        ("60", "VARCHAR(10)", "'vcč'", Value::String("vcc".into())),
        ("60", "NVARCHAR(10)", "N'vcč'", Value::String("vcč".into())),
        (
            "68",
            "BINARY(8)",
            "0x12345678",
            Value::Bytes(vec![0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]),
        ),
        (
            "72",
            "UNIQUEIDENTIFIER",
            "'8292f3cb-0cce-41e8-86aa-ae09bcc988e9'",
            Value::Uuid("8292f3cb-0cce-41e8-86aa-ae09bcc988e9".parse().unwrap()),
        ),
    ]
}

#[tokio::test]
async fn change_rows_carry_the_values_sql_server_stores() {
    let target = Target::new("gt_reader").await;
    let cases = cases();
    let columns: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, ty, _, _))| format!("c{i} {ty} NULL"))
        .collect();
    let literals: Vec<&str> = cases.iter().map(|(_, _, l, _)| *l).collect();
    target
        .run(&format!(
            "CREATE TABLE dbo.gt (id int NOT NULL PRIMARY KEY, {});
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'gt', @role_name = NULL;",
            columns.join(", ")
        ))
        .await;
    let mut source = target.streaming_source().await;
    target
        .run(&format!(
            "INSERT INTO dbo.gt VALUES (1, {});",
            literals.join(", ")
        ))
        .await;
    target.scan().await;
    let events = read_events(&mut source, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].op, Op::Create);
    let row = events[0].after.as_ref().unwrap();
    let mut failures = Vec::new();
    for (i, (gt, ty, literal, expected)) in cases.iter().enumerate() {
        let got = &row.0[i + 1];
        if got != expected {
            failures.push(format!(
                "row {gt} ({ty} {literal}): expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Row 82 through the reader: a computed column arrives as NULL in change events (the change
/// table holds NULL for it).
#[tokio::test]
async fn computed_columns_arrive_as_null_in_change_events() {
    let target = Target::new("gt_reader_computed").await;
    target
        .run(
            "CREATE TABLE dbo.lines (id int NOT NULL PRIMARY KEY, qty int NULL, price decimal(10,2) NULL, total AS (qty * price));
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'lines', @role_name = NULL;",
        )
        .await;
    let mut source = target.streaming_source().await;
    target
        .run("INSERT INTO dbo.lines (id, qty, price) VALUES (1, 2, 3.50);")
        .await;
    target.scan().await;
    let events = read_events(&mut source, 1).await;
    let row = events[0].after.as_ref().unwrap();
    assert_eq!(row.0[1], Value::I32(2));
    assert_eq!(row.0[3], Value::Null);
}
