//! Debezium's signals to a running `cdc run` with a SQL Server source (the simulator) writing
//! NDJSON files in the Debezium layout to a local store, streaming only (`snapshot_mode =
//! "no_data"`): `POST /signals` and the Kafka signal topic on a real broker (`KAFKA_BROKERS`, or
//! one this process starts through `scripts/kafka.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../../kafka-io/tests/common/broker.rs"]
#[allow(dead_code, unreachable_pub)]
mod broker;

use kafka_io::rdkafka::producer::{FutureProducer, FutureRecord};
use kafka_io::{KafkaConfig, TopicCreator, TopicSpec};
use mssql_sim::{SimConfig, Simulator};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{KillOnDrop, free_port, terminate, value, wait_for};

const PASSWORD: &str = "Signals-Passw0rd!";
/// Rows of `dbo.items` and `dbo.orders` that exist before `cdc` starts.
const ITEMS: usize = 10;
const ORDERS: usize = 4;
const WAIT: Duration = Duration::from_secs(120);

/// The simulator with `shop.dbo.items` and `shop.dbo.orders`, both captured and filled
/// before the pipeline starts; returns it and the ADO.NET connection string.
async fn simulator() -> (Simulator, String) {
    let sim =
        Simulator::start(SimConfig::new(PASSWORD).capture_interval(Duration::from_millis(100)))
            .await
            .unwrap();
    let mut script = String::from(
        "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
         CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL)\nGO\n\
         CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, item int NOT NULL)\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL\nGO\n",
    );
    for id in 1..=ITEMS {
        script.push_str(&format!(
            "INSERT INTO dbo.items VALUES ({id}, N'item {id}')\n"
        ));
    }
    for id in 1..=ORDERS {
        script.push_str(&format!("INSERT INTO dbo.orders VALUES ({id}, {id})\n"));
    }
    script.push_str("GO\n");
    tokio::task::block_in_place(|| sim.run_script(&script).unwrap());
    // The capture job has read every change so far: a streaming-only start (the max LSN)
    // lies after these rows, as once SQL Server's capture job has caught up.
    sim.scan();
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    (sim, ado)
}

/// A pipeline file: SQL Server → NDJSON (Debezium layout, one record per file so every
/// event is in a closed file at once) under `work/lake`, streaming only, chunks of 3 rows;
/// `extra` is appended to `[source.mssql]`.
fn pipeline_file(work: &Path, port: u16, extra: &str) -> PathBuf {
    let lake = work.join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let path = work.join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[pipeline]
name = "signals"
flush_interval_ms = 100

[source.mssql]
connection = "${{SIG_ADO}}"
topic_prefix = "erp"
snapshot_mode = "no_data"
poll_interval_ms = 100
incremental_chunk_size = 3
{extra}

[sink.s3]
url = "file://{lake}"
format = "ndjson"
layout = "debezium"

[sink.s3.rotation]
max_records = 1

[offsets]
file = "{offsets}"

[ops]
listen = "127.0.0.1:{port}"
"#,
            lake = lake.display(),
            offsets = work.join("offsets.json").display(),
        ),
    )
    .unwrap();
    path
}

fn start_cdc(config: &Path, ado: &str, port: u16) -> KillOnDrop {
    let child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .arg("run")
            .arg(config)
            .env("SIG_ADO", ado)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut child = child;
    wait_for("/ready", WAIT, || {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("cdc exited ({status}) before it was ready");
        }
        (request(port, "GET", "/ready", "")?.0 == 200).then_some(())
    });
    child
}

/// One HTTP/1.0 request: (status, body), or `None` if nothing listens.
fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

fn post_signal(port: u16, body: &str) -> (u16, String) {
    request(port, "POST", "/signals", body).expect("cdc serves POST /signals")
}

/// `cdc_events_total` of `table` with `op`, 0 when none was counted yet.
fn events(port: u16, table: &str, op: &str) -> f64 {
    value(port, "cdc_events_total", &[("table", table), ("op", op)]).unwrap_or(0.0)
}

/// Waits (bounded) for `wanted` events; fails at once if `cdc` exited.
fn wait_events(cdc: &mut KillOnDrop, port: u16, table: &str, op: &str, wanted: usize) {
    wait_for(&format!("{wanted} {op} events of {table}"), WAIT, || {
        if let Some(status) = cdc.0.try_wait().unwrap() {
            panic!("cdc exited ({status}) before {wanted} {op} events of {table}");
        }
        (events(port, table, op) >= wanted as f64).then_some(())
    });
}

/// `(op, source.snapshot, after.id)` of each record of `table`, sorted.
fn rows_of(records: &[serde_json::Value], table: &str) -> Vec<(String, String, i64)> {
    let mut rows: Vec<_> = records
        .iter()
        .filter(|r| r["source"]["table"] == table)
        .map(|r| {
            (
                r["op"].as_str().unwrap().to_string(),
                r["source"]["snapshot"].as_str().unwrap().to_string(),
                r["after"]["id"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn incremental_reads(ids: impl IntoIterator<Item = usize>) -> Vec<(String, String, i64)> {
    ids.into_iter()
        .map(|id| ("r".to_string(), "incremental".to_string(), id as i64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_execute_snapshot_reads_the_tables_existing_rows_as_incremental_reads_while_other_tables_stream()
 {
    let (sim, ado) = simulator().await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pipeline_file(work.path(), port, "");
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));

    let (status, body) = tokio::task::block_in_place(|| {
        post_signal(
            port,
            r#"{"type":"execute-snapshot","data":{"data-collections":["shop.dbo.items"],"type":"incremental"}}"#,
        )
    });
    assert_eq!(
        (status, body.as_str()),
        (202, "accepted execute-snapshot\n")
    );
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.items", "r", 1));
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.orders VALUES (100, 1)\nGO\n")
            .unwrap()
    });
    tokio::task::block_in_place(|| {
        wait_events(&mut child, port, "shop.dbo.items", "r", ITEMS);
        wait_events(&mut child, port, "shop.dbo.orders", "c", 1);
    });
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );

    let records = support::ndjson_records(&work.path().join("lake"));
    assert_eq!(rows_of(&records, "items"), incremental_reads(1..=ITEMS));
    assert_eq!(
        rows_of(&records, "orders"),
        [("c".to_string(), "false".to_string(), 100)],
        "the other table streamed its change and nothing of its older rows"
    );
    sim.stop().await;
}

/// Debezium's `"type": "blocking"` through `POST /signals`: the rows arrive once each with the
/// initial snapshot's markers, and streaming resumes after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_execute_snapshot_of_type_blocking_reads_the_rows_then_streaming_resumes() {
    let (sim, ado) = simulator().await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pipeline_file(work.path(), port, "");
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));

    let (status, _) = tokio::task::block_in_place(|| {
        post_signal(
            port,
            r#"{"type":"execute-snapshot","data":{"data-collections":["shop.dbo.items"],"type":"blocking"}}"#,
        )
    });
    assert_eq!(status, 202);
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.items", "r", ITEMS));
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.orders VALUES (100, 1)\nGO\n")
            .unwrap()
    });
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.orders", "c", 1));
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );

    let records = support::ndjson_records(&work.path().join("lake"));
    let mut expected: Vec<(String, String, i64)> = (1..=ITEMS as i64)
        .map(|id| {
            let marker = match id {
                1 => "first",
                n if n == ITEMS as i64 => "last",
                _ => "true",
            };
            ("r".to_string(), marker.to_string(), id)
        })
        .collect();
    expected.sort();
    assert_eq!(rows_of(&records, "items"), expected);
    assert_eq!(
        rows_of(&records, "orders"),
        [("c".to_string(), "false".to_string(), 100)]
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signal_body_gets_400_naming_the_problem_and_the_pipeline_keeps_running() {
    let (sim, ado) = simulator().await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pipeline_file(work.path(), port, "");
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));

    for (body, problem) in [
        ("{not json", "key must be a string"),
        (r#"{"data":{}}"#, "missing `type`"),
        (
            r#"{"type":"snapshot-now","data":{}}"#,
            "unknown signal type \"snapshot-now\"",
        ),
        (
            r#"{"type":"execute-snapshot","data":{"type":"incremental"}}"#,
            "missing field `data-collections`",
        ),
        (
            r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.items"],"additional-conditions":[{"data-collection":"dbo.items","filter":"1=1; DELETE FROM dbo.items"}]}}"#,
            "';' would end the statement",
        ),
        (
            r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.items"],"type":"sideways"}}"#,
            "unknown variant `sideways`",
        ),
    ] {
        let (status, text) = tokio::task::block_in_place(|| post_signal(port, body));
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(problem), "{body}: {text}");
    }
    let too_big = format!(
        r#"{{"type":"execute-snapshot","data":{{"data-collections":["{}"]}}}}"#,
        "x".repeat(70 * 1024)
    );
    assert_eq!(
        tokio::task::block_in_place(|| post_signal(port, &too_big)).0,
        413
    );
    assert_eq!(
        tokio::task::block_in_place(|| request(port, "GET", "/signals", "")).map(|r| r.0),
        Some(405)
    );

    // Still running: ready, streaming, and a good signal afterwards is taken.
    assert_eq!(
        tokio::task::block_in_place(|| request(port, "GET", "/ready", "")).map(|r| r.0),
        Some(200)
    );
    let (status, _) = tokio::task::block_in_place(|| {
        post_signal(
            port,
            r#"{"id":"row-1","type":"execute-snapshot","data":"{\"data-collections\":[\"dbo.orders\"]}"}"#,
        )
    });
    assert_eq!(status, 202, "the signal-table row shape, data as JSON text");
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.orders", "r", ORDERS));
    // A chunk goes out only once streaming passed its read point: this insert is streamed.
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.items VALUES (100, N'after')\nGO\n")
            .unwrap()
    });
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.items", "c", 1));
    assert_eq!(
        events(port, "shop.dbo.items", "r"),
        0.0,
        "no bad signal reached the source"
    );
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );
    sim.stop().await;
}

/// Run-unique names, so the shared broker can run the test again.
fn run_id() -> String {
    format!(
        "signals-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

async fn send(producer: &FutureProducer, topic: &str, key: &str, value: &str) {
    producer
        .send(
            FutureRecord::to(topic).partition(0).key(key).payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_signal_topic_starts_a_snapshot_for_the_topic_prefix_key_only_and_resumes_after_its_committed_offset()
 {
    let brokers = tokio::task::spawn_blocking(broker::shared).await.unwrap();
    let run = run_id();
    let topic = format!("{run}-signal");
    let kafka = KafkaConfig::new(&brokers);
    TopicCreator::new(&kafka, TopicSpec::new(1, 1))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let items = r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.items"],"type":"INCREMENTAL"}}"#;
    let orders = r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.orders"],"type":"INCREMENTAL"}}"#;
    // Offset 0: not a signal (logged and skipped); 1: another connector's; 2: ours.
    send(&producer, &topic, "erp", "{not a signal").await;
    send(&producer, &topic, "other-connector", items).await;
    send(&producer, &topic, "erp", orders).await;

    let (sim, ado) = simulator().await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "signal_kafka_topic = \"{topic}\"\nsignal_kafka_brokers = \"{brokers}\"\n\
         signal_kafka_group_id = \"{run}\"\n"
    );
    let config = pipeline_file(work.path(), port, &extra);
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.orders", "r", ORDERS));
    // Signals are applied in order and tables read in order: had the other key's items
    // snapshot been taken, its rows would have come first.
    assert_eq!(events(port, "shop.dbo.items", "r"), 0.0);
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );

    // A restart reads on after the group's committed offset: the orders snapshot is not run
    // again, a new message is.
    let port = free_port();
    let config = pipeline_file(work.path(), port, &extra);
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));
    send(&producer, &topic, "erp", items).await;
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.items", "r", ITEMS));
    assert_eq!(events(port, "shop.dbo.orders", "r"), 0.0);
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );

    let records = support::ndjson_records(&work.path().join("lake"));
    assert_eq!(rows_of(&records, "orders"), incremental_reads(1..=ORDERS));
    assert_eq!(rows_of(&records, "items"), incremental_reads(1..=ITEMS));
    sim.stop().await;
}

#[test]
fn a_misspelt_signal_key_is_refused_naming_the_closest_one() {
    let text = "[pipeline]\nname = \"p\"\n[source.mssql]\ntopic_prefix = \"erp\"\n\
                signal_kafka_topik = \"erp-signal\"\n[sink.kafka]\nbrokers = \"b:9092\"\n\
                exactly_once = true\n";
    let error = cdc_connect::PipelineFile::parse(text, "p.toml", |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown key `signal_kafka_topik`")
            && error.contains("did you mean `signal_kafka_topic`?"),
        "{error}"
    );
    let text = text.replace("signal_kafka_topik", "signal_kafka_group_id");
    let error = cdc_connect::PipelineFile::parse(&text, "p.toml", |_| None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "source.mssql.signal_kafka_group_id: only applies with signal_kafka_topic"
    );
}

#[test]
fn debeziums_signal_properties_translate_to_the_signal_keys() {
    use cdc_connect::connect::{ConnectorConfig, WorkerSettings, translate};
    let source = |extra: &[(&str, &str)]| {
        let mut properties: std::collections::BTreeMap<String, String> = [
            (
                "connector.class",
                "io.debezium.connector.sqlserver.SqlServerConnector",
            ),
            ("database.hostname", "db"),
            ("database.names", "shop"),
            ("topic.prefix", "erp"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ConnectorConfig {
            name: "erp-source".into(),
            properties,
        }
    };
    let worker = WorkerSettings {
        brokers: Some("b-1:9092".into()),
    };
    let t = translate(
        &[source(&[
            ("signal.enabled.channels", "source,kafka,jmx"),
            ("signal.data.collection", "shop.dbo.debezium_signal"),
            ("signal.kafka.bootstrap.servers", "b-2:9092"),
            ("signal.kafka.groupId", "erp-signals"),
            ("signal.kafka.poll.timeout.ms", "100"),
            ("signal.consumer.security.protocol", "SSL"),
            ("incremental.snapshot.chunk.size", "2048"),
        ])],
        &worker,
    )
    .unwrap();
    let m = t.file.source.mssql.as_ref().unwrap();
    assert_eq!(
        m.signal_data_collection.as_deref(),
        Some("shop.dbo.debezium_signal")
    );
    assert_eq!(
        m.signal_kafka_topic.as_deref(),
        Some("erp-signal"),
        "Debezium's default"
    );
    assert_eq!(m.signal_kafka_brokers.as_deref(), Some("b-2:9092"));
    assert_eq!(m.signal_kafka_group_id.as_deref(), Some("erp-signals"));
    assert_eq!(
        m.signal_kafka_properties
            .get("security.protocol")
            .map(String::as_str),
        Some("SSL")
    );
    assert_eq!(m.incremental_chunk_size, Some(2048));
    let warned: Vec<&str> = t.warnings.iter().map(|w| w.property.as_str()).collect();
    assert_eq!(
        warned,
        ["signal.enabled.channels", "signal.kafka.poll.timeout.ms"]
    );

    // Without the kafka channel (Debezium's default is `source` alone) the topic is unused.
    let t = translate(&[source(&[("signal.kafka.topic", "s")])], &worker).unwrap();
    assert_eq!(
        t.file.source.mssql.as_ref().unwrap().signal_kafka_topic,
        None
    );
    assert_eq!(t.warnings[0].property, "signal.kafka.topic");
    // With it, Debezium requires the brokers.
    let error = translate(&[source(&[("signal.enabled.channels", "kafka")])], &worker)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("signal.kafka.bootstrap.servers: missing"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_to_a_pipeline_whose_source_is_not_sql_server_gets_409() {
    let mock = kafka_io::rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("erp.shop.dbo.items", 1, 1).unwrap();
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let port = free_port();
    let config = work.path().join("from-kafka.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[pipeline]
name = "from-kafka"

[source.kafka]
brokers = "{brokers}"
group_id = "signals-409"
topics = ["erp.shop.dbo.items"]

[sink.s3]
url = "file://{lake}"
format = "ndjson"

[ops]
listen = "127.0.0.1:{port}"
"#,
            brokers = mock.bootstrap_servers(),
            lake = lake.display()
        ),
    )
    .unwrap();
    let child = tokio::task::block_in_place(|| start_cdc(&config, "", port));
    let (status, text) = tokio::task::block_in_place(|| {
        post_signal(
            port,
            r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.items"]}}"#,
        )
    });
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("not SQL Server"), "{text}");
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_into_the_signal_table_starts_the_snapshot() {
    let (sim, ado) = simulator().await;
    tokio::task::block_in_place(|| {
        sim.run_script(
            "USE shop\nGO\n\
             CREATE TABLE dbo.debezium_signal (id varchar(42) NOT NULL PRIMARY KEY, \
             type varchar(32) NOT NULL, data varchar(2048) NULL)\nGO\n\
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'debezium_signal', @role_name = NULL\nGO\n",
        )
        .unwrap()
    });
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = pipeline_file(
        work.path(),
        port,
        "signal_data_collection = \"dbo.debezium_signal\"\n",
    );
    let mut child = tokio::task::block_in_place(|| start_cdc(&config, &ado, port));
    // The insert must come after the streaming start (the max LSN when the source started):
    // a chunk goes out only once streaming passed its read point, so after the first row of
    // an items snapshot it does.
    let (status, _) = tokio::task::block_in_place(|| {
        post_signal(
            port,
            r#"{"type":"execute-snapshot","data":{"data-collections":["dbo.items"]}}"#,
        )
    });
    assert_eq!(status, 202);
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.items", "r", 1));
    tokio::task::block_in_place(|| {
        sim.run_script(
            "USE shop\nGO\nINSERT INTO dbo.debezium_signal VALUES ('s-1', 'execute-snapshot', \
             '{\"data-collections\": [\"shop.dbo.orders\"], \"type\": \"incremental\"}')\nGO\n",
        )
        .unwrap()
    });
    tokio::task::block_in_place(|| wait_events(&mut child, port, "shop.dbo.orders", "r", ORDERS));
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );
    let records = support::ndjson_records(&work.path().join("lake"));
    assert_eq!(rows_of(&records, "orders"), incremental_reads(1..=ORDERS));
    assert_eq!(rows_of(&records, "items"), incremental_reads(1..=ITEMS));
    let signal_rows = records
        .iter()
        .filter(|r| r["source"]["table"] == "debezium_signal")
        .count();
    assert_eq!(
        signal_rows, 1,
        "the signal row streams like any captured row"
    );
    sim.stop().await;
}
