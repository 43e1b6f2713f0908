//! `cdc run` with Kafka on either side, against librdkafka's mock cluster: SQL Server → Kafka
//! (checkpoint in a file), then Kafka → S3 (the consumer group's offsets are the checkpoint).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kafka_io::rdkafka::mocking::MockCluster;
use mssql_sim::{SimConfig, Simulator};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{KillOnDrop, events, free_port, terminate, wait_for};

const ROWS: usize = 25;

fn run_until(config: &Path, ado: &str, port: u16, wanted: f64) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .arg("run")
            .arg(config)
            .env("KT_ADO", ado)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for(
        &format!("cdc to deliver {wanted} events"),
        Duration::from_secs(120),
        || {
            if events(port).is_some_and(|v| v >= wanted) {
                return Some(());
            }
            assert!(child.0.try_wait().unwrap().is_none(), "cdc exited early");
            None
        },
    );
    assert_eq!(terminate(child, "cdc"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlserver_to_kafka_then_kafka_to_s3_through_the_cdc_binary() {
    let sim = Simulator::start(
        SimConfig::new("Kafka-Passw0rd!").capture_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let mut script = String::from(
        "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
         CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL)\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n",
    );
    for id in 1..=ROWS {
        script.push_str(&format!(
            "INSERT INTO dbo.items VALUES ({id}, N'item {id}')\n"
        ));
    }
    script.push_str("GO\n");
    tokio::task::block_in_place(|| sim.run_script(&script).unwrap());
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("erp.shop.dbo.items", 1, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    let work = tempfile::tempdir().unwrap();

    let port = free_port();
    let to_kafka = work.path().join("to-kafka.toml");
    std::fs::write(
        &to_kafka,
        format!(
            r#"
[pipeline]
name = "to-kafka"
flush_interval_ms = 100

[source.mssql]
connection = "${{KT_ADO}}"
topic_prefix = "erp"

[sink.kafka]
brokers = "{brokers}"

[offsets]
file = "{}"

[ops]
listen = "127.0.0.1:{port}"
"#,
            work.path().join("to-kafka.offsets.json").display()
        ),
    )
    .unwrap();
    tokio::task::block_in_place(|| run_until(&to_kafka, &ado, port, ROWS as f64));

    let port = free_port();
    let lake = work.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let to_s3 = work.path().join("to-s3.toml");
    std::fs::write(
        &to_s3,
        format!(
            r#"
[pipeline]
name = "to-s3"
flush_interval_ms = 100

[source.kafka]
brokers = "{brokers}"
group_id = "connect-erp-s3-sink"
topics = ["erp.shop.dbo.items"]
properties = {{ "auto.offset.reset" = "earliest" }}

[sink.s3]
url = "file://{}"
format = "ndjson"

[sink.s3.rotation]
max_records = {ROWS}

[ops]
listen = "127.0.0.1:{port}"
"#,
            lake.display()
        ),
    )
    .unwrap();
    tokio::task::block_in_place(|| run_until(&to_s3, &ado, port, ROWS as f64));

    // The Kafka Connect layout: <topic>/partition=0/<topic>+0+<offset>.json, every row once.
    let dir = lake.join("erp.shop.dbo.items/partition=0");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("erp.shop.dbo.items+0+0000000000")
    );
    let lines = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(lines.lines().count(), ROWS);
    sim.stop().await;
}
