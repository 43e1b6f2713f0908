//! Debezium's own SQL Server connector (3.6.1.Final, embedded engine, Maven Central) streams
//! from the simulator, run through `scripts/debezium.sh run`: the initial snapshot (a schema
//! change record, then `r` records), then an insert, an update and a delete made while it
//! streams (`c`, `u`, `d` and the delete's tombstone), with the commit and change LSNs the
//! simulator's change table holds. Fails loudly when Java or Maven is missing (scripts/setup.sh
//! installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mssql_sim::{SimConfig, Simulator};
use serde_json::Value as Json;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/debezium.sh")
}

fn lines(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (bounded) until `path` holds at least `n` records or the harness exited.
async fn wait_for_records(path: &Path, n: usize, child: &mut Child, limit: Duration) {
    let start = Instant::now();
    while lines(path).len() < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "Debezium exited ({status}) after {} records",
                lines(path).len()
            );
        }
        assert!(
            start.elapsed() < limit,
            "no {n} records from Debezium within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An LSN as Debezium prints it: `00000027:00000758:0004`.
fn lsn_text(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}:{}:{}", &hex[0..8], &hex[8..16], &hex[16..20])
}

fn op(r: &Json) -> Option<&str> {
    r["value"]["payload"]["op"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_snapshots_then_streams_inserts_updates_and_deletes() {
    let build = Command::new("bash")
        .arg(script())
        .arg("build")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "scripts/debezium.sh build failed (Java and Maven come from scripts/setup.sh): {}",
        String::from_utf8_lossy(&build.stderr)
    );
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
    let log = std::fs::File::create(dir.path().join("debezium.log")).unwrap();
    let mut child = Command::new("bash")
        .arg(script())
        .arg("run")
        .arg("127.0.0.1")
        .arg(sim.addr().port().to_string())
        .arg(common::PASSWORD)
        .arg("shop")
        .arg("dbo.items")
        .arg(&out)
        .arg("7")
        .arg("60")
        .arg(dir.path().join("work"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // The snapshot: a schema change record and the two rows.
    wait_for_records(&out, 3, &mut child, Duration::from_secs(120)).await;
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "USE shop").await;
    common::exec(&mut c, "INSERT INTO dbo.items VALUES (3, N'plum', 3.00)").await;
    common::exec(&mut c, "UPDATE dbo.items SET price = 9.99 WHERE id = 1").await;
    common::exec(&mut c, "DELETE FROM dbo.items WHERE id = 2").await;
    wait_for_records(&out, 7, &mut child, Duration::from_secs(120)).await;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the harness did not stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let debezium_log = std::fs::read_to_string(dir.path().join("debezium.log")).unwrap();
    assert!(status.success(), "Debezium failed:\n{debezium_log}");

    let records = lines(&out);
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
