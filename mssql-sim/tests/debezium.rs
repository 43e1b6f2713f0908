//! Debezium's own SQL Server connector (3.6.1.Final, embedded engine, Maven Central) streams
//! from the simulator, run through `scripts/debezium.sh run`: the initial snapshot (a schema
//! change record, then `r` records), then an insert, an update and a delete made while it
//! streams (`c`, `u`, `d` and the delete's tombstone), with the commit and change LSNs the
//! simulator's change table holds. Fails loudly when Java or Maven is missing (scripts/setup.sh
//! installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod debezium_harness;

use std::time::Duration;

use mssql_sim::{SimConfig, Simulator};
use serde_json::Value as Json;

/// An LSN as Debezium prints it: `00000027:00000758:0004`.
fn lsn_text(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}:{}:{}", &hex[0..8], &hex[8..16], &hex[16..20])
}

fn op(r: &Json) -> Option<&str> {
    r["value"]["payload"]["op"].as_str()
}

/// A Connect `Decimal` (base64 big-endian two's complement unscaled value).
fn decimal(v: &Json) -> i128 {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap();
    let mut x: i128 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    for b in bytes {
        x = (x << 8) | i128::from(b);
    }
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_snapshots_then_streams_inserts_updates_and_deletes() {
    debezium_harness::build();
    let sim = Simulator::start(
        SimConfig::new(common::PASSWORD).capture_interval(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    sim.run_script(
        "CREATE DATABASE shop
GO
USE shop
GO
EXEC sys.sp_cdc_enable_db
GO
CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(40), price decimal(10,2))
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL
GO
INSERT INTO dbo.items VALUES (1, N'apple', 1.50), (2, N'pear', 2.25)",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("records.jsonl");
    let mut child = debezium_harness::start(&sim, common::PASSWORD, "dbo.items", 7, dir.path());
    // The snapshot: a schema change record and the two rows.
    debezium_harness::wait_for(dir.path(), 3, &mut child).await;
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "USE shop").await;
    common::exec(&mut c, "INSERT INTO dbo.items VALUES (3, N'plum', 3.00)").await;
    common::exec(&mut c, "UPDATE dbo.items SET price = 9.99 WHERE id = 1").await;
    common::exec(&mut c, "DELETE FROM dbo.items WHERE id = 2").await;
    debezium_harness::wait_for(dir.path(), 7, &mut child).await;
    debezium_harness::finish(&mut child, dir.path()).await;
    let debezium_log = std::fs::read_to_string(dir.path().join("debezium.log")).unwrap();

    let records = debezium_harness::lines(&out);
    assert_eq!(records.len(), 7);
    // Schema change record on the server topic, keyed by database.
    assert_eq!(records[0]["topic"], "server1");
    assert_eq!(records[0]["key"]["payload"]["databaseName"], "shop");
    let topics: Vec<&str> = records[1..]
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert!(topics.iter().all(|t| *t == "server1.shop.dbo.items"));
    let ops: Vec<Option<&str>> = records[1..].iter().map(op).collect();
    assert_eq!(
        ops,
        vec![Some("r"), Some("r"), Some("c"), Some("u"), Some("d"), None]
    );
    let keys: Vec<i64> = records[1..]
        .iter()
        .map(|r| r["key"]["payload"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(keys, vec![1, 2, 3, 1, 2, 2]);
    assert!(
        records[6]["value"].is_null(),
        "a tombstone follows the delete"
    );
    assert_eq!(records[3]["value"]["payload"]["after"]["name"], "plum");
    assert_eq!(records[4]["value"]["payload"]["before"]["name"], "apple");
    assert_eq!(
        records[1]["value"]["payload"]["source"]["snapshot"],
        "first"
    );
    assert_eq!(records[2]["value"]["payload"]["source"]["snapshot"], "last");

    // Streamed records carry the change table's commit and change LSNs.
    let ct = c
        .simple_query(
            "SELECT __$start_lsn, __$seqval FROM cdc.dbo_items_CT WHERE __$operation IN (1, 2, 4) ORDER BY __$start_lsn, __$seqval",
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let lsns: Vec<(String, String)> = ct
        .iter()
        .map(|r| {
            (
                lsn_text(r.get::<&[u8], _>(0).unwrap()),
                lsn_text(r.get::<&[u8], _>(1).unwrap()),
            )
        })
        .collect();
    // Row 0 is the initial insert (snapshotted); rows 1.. are the streamed changes.
    let seen: Vec<(String, String)> = records[3..6]
        .iter()
        .map(|r| {
            let s = &r["value"]["payload"]["source"];
            (
                s["commit_lsn"].as_str().unwrap().to_string(),
                s["change_lsn"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(seen, lsns[lsns.len() - 3..].to_vec(), "{debezium_log}");
    sim.stop().await;
}

const TYPES_SETUP: &str = "CREATE DATABASE shop
GO
USE shop
GO
EXEC sys.sp_cdc_enable_db
GO
CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(40), price decimal(10,2))
GO
CREATE TABLE dbo.types (id int NOT NULL PRIMARY KEY, ti tinyint, si smallint, bi bigint, b bit, n numeric(10,5), m money, sm smallmoney, r real, f float, c char(6), vc varchar(20), nc nchar(6), nvc nvarchar(20), tx text, ntx ntext, vmax nvarchar(max), bn binary(4), vb varbinary(8), img image, d date, t time(4), dt datetime, sdt smalldatetime, dt2 datetime2(7), dto datetimeoffset(3), g uniqueidentifier, x xml)
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'types', @role_name = NULL
GO
INSERT INTO dbo.items VALUES (1, N'apple', 1.50), (2, N'pear', 2.25)
GO
INSERT INTO dbo.types VALUES (1, 255, -32768, 9223372036854775807, 1, 12345.12, 1234567891234.29, 214748.3647, 1.234567e10, 1.23456789012345e10, 'asdf', 'vc', N'hello', N'Grüße', 'text', N'ntext', N'max', 0x12345678, 0xDEADBEEF, 0x12345678, '2018-07-13', '10:23:45.6789', '1991-08-31T12:34:56.789', '2018-07-13 14:23:45', '1900-01-01T23:59:59.9999999', '2018-07-13 12:23:45.456+11:00', '6F9619FF-8B86-D011-B42D-00C04FC964FF', '<hello>world</hello>')";

/// Values as `shared/sqlserver-ground-truth.md` records them for real servers (B1–B5), read by
/// Debezium from the simulator; then a two-table transaction, a primary-key update, a
/// rolled-back insert and a delete while it streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_reads_every_column_type_and_transaction_shape_as_on_a_real_server() {
    debezium_harness::build();
    let sim = Simulator::start(
        SimConfig::new(common::PASSWORD).capture_interval(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    sim.run_script(TYPES_SETUP).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("records.jsonl");
    // 2 schema changes + 3 snapshot rows + c, u (one transaction) + d, tombstone, c (key
    // update) + d, tombstone = 12; the rolled-back insert gives nothing.
    let mut child = debezium_harness::start(
        &sim,
        common::PASSWORD,
        "dbo.items,dbo.types",
        12,
        dir.path(),
    );
    debezium_harness::wait_for(dir.path(), 5, &mut child).await;
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "USE shop").await;
    common::exec(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.items VALUES (3, N'plum', 3.00); UPDATE dbo.types SET nvc = N'changed', dto = '2024-01-15T00:00:00+00:00' WHERE id = 1; COMMIT",
    )
    .await;
    common::exec(&mut c, "UPDATE dbo.items SET id = 10 WHERE id = 1").await;
    common::exec(
        &mut c,
        "BEGIN TRAN; INSERT INTO dbo.items VALUES (99, N'never', 0); ROLLBACK",
    )
    .await;
    common::exec(&mut c, "DELETE FROM dbo.items WHERE id = 2").await;
    debezium_harness::wait_for(dir.path(), 12, &mut child).await;
    debezium_harness::finish(&mut child, dir.path()).await;

    let records = debezium_harness::lines(&out);
    let data: Vec<&Json> = records.iter().filter(|r| r["topic"] != "server1").collect();
    assert_eq!(
        records.len() - data.len(),
        2,
        "one schema change record per table"
    );
    let snap = data
        .iter()
        .find(|r| r["topic"] == "server1.shop.dbo.types" && op(r) == Some("r"))
        .unwrap();
    let a = &snap["value"]["payload"]["after"];
    assert_eq!(a["ti"], 255);
    assert_eq!(a["si"], -32768);
    assert_eq!(a["bi"], 9_223_372_036_854_775_807i64);
    assert_eq!(a["b"], true);
    assert_eq!(
        decimal(&a["n"]),
        1_234_512_000,
        "numeric(10,5) carries the full scale"
    );
    assert_eq!(
        decimal(&a["m"]),
        12_345_678_912_342_900,
        "money has 4 decimals"
    );
    assert_eq!(decimal(&a["sm"]), 2_147_483_647);
    assert_eq!(
        a["r"].as_f64().unwrap() as f32,
        12_345_669_632f32,
        "real is IEEE single"
    );
    assert_eq!(a["f"], 12_345_678_901.234_5);
    assert_eq!(a["c"], "asdf  ", "char is blank-padded");
    assert_eq!(a["vc"], "vc");
    assert_eq!(a["nc"], "hello ");
    assert_eq!(a["nvc"], "Grüße");
    assert_eq!(a["tx"], "text");
    assert_eq!(a["ntx"], "ntext");
    assert_eq!(a["vmax"], "max");
    assert_eq!(a["bn"], "EjRWeA==");
    assert_eq!(a["vb"], "3q2+7w==");
    assert_eq!(a["img"], "EjRWeA==");
    assert_eq!(a["d"], 17725, "date as days since the epoch");
    assert_eq!(a["t"], 37_425_678_900i64, "time(4) as microseconds");
    assert_eq!(
        a["dt"], 683_642_096_790i64,
        "datetime .789 is stored as .790"
    );
    assert_eq!(
        a["sdt"], 1_531_491_840_000i64,
        "smalldatetime rounds 45 s up"
    );
    assert_eq!(
        a["dt2"], -2_208_902_400_000_000_100i64,
        "datetime2(7) keeps 100 ns"
    );
    assert_eq!(a["dto"], "2018-07-13T12:23:45.456+11:00");
    assert_eq!(a["g"], "6F9619FF-8B86-D011-B42D-00C04FC964FF");
    assert_eq!(a["x"], "<hello>world</hello>");

    let streamed: Vec<&&Json> = data.iter().filter(|r| op(r) != Some("r")).collect();
    let shape: Vec<(String, Option<&str>, i64)> = streamed
        .iter()
        .map(|r| {
            (
                r["topic"]
                    .as_str()
                    .unwrap()
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_string(),
                op(r),
                r["key"]["payload"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("items".to_string(), Some("c"), 3),
            ("types".to_string(), Some("u"), 1),
            ("items".to_string(), Some("d"), 1),
            ("items".to_string(), None, 1),
            ("items".to_string(), Some("c"), 10),
            ("items".to_string(), Some("d"), 2),
            ("items".to_string(), None, 2),
        ],
        "the rolled-back insert of 99 never appears"
    );
    let commit = |r: &Json| {
        r["value"]["payload"]["source"]["commit_lsn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        commit(streamed[0]),
        commit(streamed[1]),
        "one transaction, one commit LSN"
    );
    assert_eq!(
        commit(streamed[2]),
        commit(streamed[4]),
        "a key update is delete + insert in one transaction"
    );
    assert_ne!(commit(streamed[1]), commit(streamed[2]));
    let u = &streamed[1]["value"]["payload"];
    assert_eq!(u["after"]["nvc"], "changed");
    assert_eq!(u["after"]["dto"], "2024-01-15T00:00:00Z");
    // text/ntext/image are NULL in update-before change rows on real servers: Debezium marks
    // them unavailable; an unchanged nvarchar(max) is NULL there too and stays null.
    assert_eq!(u["before"]["tx"], "__debezium_unavailable_value");
    assert_eq!(u["before"]["ntx"], "__debezium_unavailable_value");
    assert!(u["before"]["vmax"].is_null());
    assert_eq!(u["before"]["nvc"], "Grüße");
    sim.stop().await;
}
