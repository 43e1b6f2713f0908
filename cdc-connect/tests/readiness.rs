//! `/ready` follows delivery: `cdc run` SQL Server → Kafka (librdkafka's mock cluster) answers
//! 503 while the only broker is down and changes wait for it longer than `[ops]
//! ready_stall_ms`, and 200 again once they are delivered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kafka_io::rdkafka::mocking::MockCluster;
use mssql_sim::{SimConfig, Simulator};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{KillOnDrop, events, free_port, terminate, wait_for};

/// `/ready`'s status code; `None` while nothing answers.
fn ready(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_answers_503_while_the_kafka_sink_cannot_deliver_past_the_stall_threshold_and_200_after()
 {
    let sim = Simulator::start(
        SimConfig::new("Ready-Passw0rd!").capture_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let script = "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
         CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL)\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n\
         INSERT INTO dbo.items VALUES (1, N'before')\nGO\n";
    tokio::task::block_in_place(|| sim.run_script(script).unwrap());
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("erp.shop.dbo.items", 1, 1).unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = work.path().join("to-kafka.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[pipeline]
name = "ready"
flush_interval_ms = 100

[source.mssql]
connection = "${{KT_ADO}}"
topic_prefix = "erp"

[sink.kafka]
brokers = "{}"

[offsets]
file = "{}"

[ops]
listen = "127.0.0.1:{port}"
ready_stall_ms = 2000
"#,
            mock.bootstrap_servers(),
            work.path().join("offsets.json").display()
        ),
    )
    .unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .arg("run")
            .arg(&config)
            .env("KT_ADO", &ado)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut running = |what: &str| {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "cdc exited early ({what})"
        );
    };
    tokio::task::block_in_place(|| {
        wait_for(
            "the first event delivered and /ready 200",
            Duration::from_secs(120),
            || {
                running("start");
                (events(port).is_some_and(|v| v >= 1.0) && ready(port) == Some(200)).then_some(())
            },
        );
        mock.broker_down(1).unwrap();
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.items VALUES (2, N'during')\nGO\n")
            .unwrap();
        let down = Instant::now();
        wait_for(
            "/ready 503 while the change waits for the broker",
            Duration::from_secs(60),
            || {
                running("outage");
                (ready(port) == Some(503)).then_some(())
            },
        );
        eprintln!("/ready 503 {:?} after the broker went down", down.elapsed());
        mock.broker_up(1).unwrap();
        let up = Instant::now();
        wait_for(
            "/ready 200 once the change is delivered",
            Duration::from_secs(60),
            || {
                running("recovery");
                (ready(port) == Some(200)).then_some(())
            },
        );
        eprintln!("/ready 200 {:?} after the broker came back", up.elapsed());
    });
    assert_eq!(terminate(child, "cdc"), Some(0));
}
