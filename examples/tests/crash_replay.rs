//! Exactly once across crashes, end to end: SQL Server (mssql-sim) → Kafka (a real broker,
//! `TransactionalSink`) → S3 layout on a local store (`KafkaSource` → `S3Sink`, NDJSON).
//!
//! A workload commits transactions while both pipelines run; 100 times, at moments drawn from a
//! seeded generator, one or both pipelines are dropped without flushing (their tasks aborted:
//! open transactions, open files and unacknowledged positions are lost, as in a SIGKILL) and
//! started again from their stores. At the end every committed change must be in the topics
//! (read_committed) and in the files exactly once, identified by (commit_lsn, change_lsn,
//! event_serial_no) for streamed changes and by (table, key) for snapshot rows, and replaying
//! the events per key must give the tables' final contents.
//!
//! Needs a real Kafka broker (the mock cluster shows aborted transactions to read_committed
//! consumers): `KAFKA_BROKERS`, which `scripts/test.sh` and `.ci/run` export, or else one
//! this test starts with `scripts/kafka.sh`. `CRASH_SEED` replays a failing run;
//! `CRASH_ITERATIONS` changes the number of crashes (default 100).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../kafka-io/tests/common/broker.rs"]
#[allow(dead_code, unreachable_pub)]
mod broker;

use cdc_core::{DebeziumJson, EventCodec, MemoryOffsetStore, Pipeline, PipelineConfig};
use cdc_mssql::{MssqlConfig, MssqlSource};
use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::message::Message;
use kafka_io::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use kafka_io::{KafkaConfig, KafkaSource, TopicCreator, TopicSpec, TransactionalSink};
use mssql_sim::{SimConfig, Simulator};
use s3_sink::{Format, NdjsonOptions, Rotation, S3Sink};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::compat::TokioAsyncWriteCompatExt;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "Crash-Passw0rd!";
const ACCOUNTS: i64 = 20;
const TRANSACTIONS_PER_ITERATION: usize = 3;

/// Where one run keeps everything; names are unique per run so a shared broker can be reused.
struct Bed {
    sim: Simulator,
    kafka: KafkaConfig,
    run: String,
    files: tempfile::TempDir,
    codec: Arc<dyn EventCodec>,
}

impl Bed {
    fn prefix(&self) -> String {
        format!("crash{}", self.run)
    }
    fn topics(&self) -> Vec<String> {
        ["accounts", "transfers"]
            .iter()
            .map(|t| format!("{}.bank.dbo.{t}", self.prefix()))
            .collect()
    }
    fn offsets_topic(&self) -> String {
        format!("{}.offsets", self.prefix())
    }

    fn to_kafka(&self) -> JoinHandle<cdc_core::Result<cdc_core::PipelineReport>> {
        let ado = format!("{};database=bank", self.sim.ado_connection_string());
        let source = MssqlSource::new(
            MssqlConfig::from_ado_string(&ado)
                .unwrap()
                .topic_prefix(self.prefix())
                .poll_interval(Duration::from_millis(50))
                .build()
                .unwrap(),
        );
        let (kafka, codec, offsets, id) = (
            self.kafka.clone(),
            Arc::clone(&self.codec),
            self.offsets_topic(),
            format!("{}-eos", self.prefix()),
        );
        tokio::spawn(async move {
            let (sink, store) = TransactionalSink::builder(kafka, codec, id, offsets)
                .build_with_offset_store()
                .await
                .map_err(|e| e.into_sink_error("to-kafka"))?;
            Pipeline::new(
                PipelineConfig::new("to-kafka").flush_interval(Some(Duration::from_millis(100))),
                source,
                sink,
                store,
            )?
            .run(CancellationToken::new())
            .await
        })
    }

    fn to_files(&self, shutdown: CancellationToken) -> Running {
        let mut builder = KafkaSource::builder(
            self.kafka.clone(),
            Arc::clone(&self.codec),
            format!("{}-files", self.prefix()),
        );
        for topic in self.topics() {
            builder = builder.topic(topic);
        }
        let source = builder.build().unwrap();
        let sink = S3Sink::builder()
            .url(format!("file://{}", self.files.path().display()))
            .format(Format::Ndjson(NdjsonOptions::default()))
            .rotation(Rotation {
                max_records: Some(25),
                ..Rotation::default()
            })
            .build()
            .unwrap();
        let pipeline = Pipeline::new(
            PipelineConfig::new("to-files").flush_interval(Some(Duration::from_millis(100))),
            source,
            sink,
            // The consumer group's committed offsets are the checkpoint.
            MemoryOffsetStore::new(),
        )
        .unwrap();
        let metrics = pipeline.metrics();
        (tokio::spawn(pipeline.run(shutdown)), metrics)
    }
}

type Task = JoinHandle<cdc_core::Result<cdc_core::PipelineReport>>;
type Running = (Task, Arc<cdc_core::PipelineMetrics>);

/// Drops a pipeline without letting it flush: what a SIGKILL does to the process.
async fn crash(task: JoinHandle<cdc_core::Result<cdc_core::PipelineReport>>) {
    task.abort();
    match task.await {
        Err(e) if e.is_cancelled() => {}
        Err(e) => panic!("pipeline task panicked: {e}"),
        Ok(result) => panic!("pipeline ended before the crash: {result:?}"),
    }
}

fn workload(sim: &Simulator, from: usize, count: usize) {
    let mut sql = String::from("USE bank;\n");
    for i in from..from + count {
        let account = (i as i64 % ACCOUNTS) + 1;
        sql.push_str(&format!(
            "BEGIN TRANSACTION;\n\
             INSERT INTO dbo.transfers (id, account_id, amount) VALUES ({i}, {account}, {amount});\n\
             UPDATE dbo.accounts SET balance = balance + {amount}, version = version + 1 WHERE id = {account};\n",
            amount = (i % 97) as i64 + 1,
        ));
        if i % 7 == 6 {
            sql.push_str(&format!(
                "DELETE FROM dbo.transfers WHERE id = {};\n",
                i - 5
            ));
        }
        if i % 11 == 10 {
            sql.push_str(&format!(
                "INSERT INTO dbo.accounts (id, balance, version) VALUES ({}, 0, 0);\n",
                1000 + i
            ));
        }
        sql.push_str("COMMIT;\n");
    }
    sim.run_script(&sql).unwrap();
}

/// One change as the test identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Identity {
    /// A snapshot row: table and key.
    Snapshot(String, i64),
    /// A streamed change: commit LSN, change LSN, serial.
    Change(String, String, u64),
}

#[derive(Debug, Clone)]
struct Change {
    table: String,
    op: String,
    key: i64,
    after: Option<Json>,
    commit_lsn: String,
    change_lsn: String,
    serial: u64,
}

impl Change {
    /// Reads a Debezium envelope (with or without a schema) or a flattened row (the NDJSON
    /// default: the row's columns plus `__op`, `__commit_lsn`, ... metadata columns).
    fn parse(value: &Json) -> Change {
        if let Some(op) = value.get("__op") {
            let op = op.as_str().expect("__op").to_string();
            let mut row = value.as_object().expect("a row").clone();
            row.retain(|column, _| !column.starts_with("__"));
            let topic = value["__kafka_topic"].as_str().expect("__kafka_topic");
            // A snapshot row has only its commit LSN, as Debezium writes it; it is known by
            // (table, key).
            let snapshot_row = op == "r";
            let change_lsn = match value["__change_lsn"].as_str() {
                Some(lsn) => lsn.to_lowercase(),
                None if snapshot_row => String::new(),
                None => panic!("no __change_lsn in {value}"),
            };
            let serial = match value["__event_serial_no"].as_u64() {
                Some(serial) => serial,
                None if snapshot_row => 0,
                None => panic!("no __event_serial_no in {value}"),
            };
            return Change {
                table: topic.rsplit('.').next().unwrap_or_default().to_string(),
                key: row["id"].as_i64().expect("id"),
                after: (op != "d").then(|| Json::Object(row)),
                commit_lsn: value["__commit_lsn"].as_str().expect("lsn").to_lowercase(),
                change_lsn,
                serial,
                op,
            };
        }
        let payload = value.get("payload").unwrap_or(value);
        let source = &payload["source"];
        let op = payload["op"]
            .as_str()
            .unwrap_or_else(|| panic!("no op in {value}"))
            .to_string();
        let row = if op == "d" {
            &payload["before"]
        } else {
            &payload["after"]
        };
        Change {
            table: source["table"].as_str().expect("source.table").to_string(),
            key: row["id"].as_i64().expect("id"),
            after: (op != "d").then(|| payload["after"].clone()),
            commit_lsn: source["commit_lsn"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase(),
            change_lsn: source["change_lsn"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase(),
            serial: source["event_serial_no"].as_u64().unwrap_or_default(),
            op,
        }
    }

    fn identity(&self) -> Identity {
        if self.op == "r" {
            Identity::Snapshot(self.table.clone(), self.key)
        } else {
            Identity::Change(
                self.commit_lsn.clone(),
                self.change_lsn.clone(),
                self.serial,
            )
        }
    }
}

/// Every value of `topics` a read_committed consumer sees (tombstones left out).
fn read_committed(kafka: &KafkaConfig, topics: &[String]) -> Vec<Json> {
    let mut config: ClientConfig = kafka.client_config();
    config
        .set("group.id", "crash-replay-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = config.create().unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        for partition in metadata.topics()[0].partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .unwrap();
            ends.insert((topic.clone(), partition.id()), high);
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let started = Instant::now();
    loop {
        let positions = consumer.position().unwrap();
        let done = ends.iter().all(|((topic, partition), high)| {
            matches!(
                positions.find_partition(topic, *partition).map(|e| e.offset()),
                Some(Offset::Offset(at)) if at >= *high
            ) || *high == 0
        });
        if done {
            return values;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading the topics back timed out"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            if let Some(payload) = message.payload() {
                values.push(serde_json::from_slice(payload).unwrap());
            }
        }
    }
}

/// Every NDJSON line of every data file under `dir`.
fn read_files(dir: &std::path::Path) -> Vec<Json> {
    let mut lines = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                lines.extend(
                    text.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| serde_json::from_str::<Json>(l).unwrap()),
                );
            }
        }
    }
    lines
}

/// Checks one copy of the output (the topics, or the files): each change once, nothing
/// missing, and replaying it gives the tables' final contents.
fn check(
    what: &str,
    values: &[Json],
    expected_per_commit: &BTreeMap<String, usize>,
    final_rows: &BTreeMap<(String, i64), Json>,
) {
    let changes: Vec<Change> = values.iter().map(Change::parse).collect();
    let mut seen: HashMap<Identity, usize> = HashMap::new();
    for change in &changes {
        *seen.entry(change.identity()).or_default() += 1;
    }
    let mut duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    duplicates.sort();
    assert!(
        duplicates.is_empty(),
        "{what}: {} changes arrived more than once, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );

    // The hand-off: snapshot rows carry the LSN the snapshot read at; every transaction
    // committed after it must be streamed whole.
    let hand_off = changes
        .iter()
        .filter(|c| c.op == "r")
        .map(|c| c.commit_lsn.clone())
        .max()
        .unwrap_or_default();
    let mut streamed_per_commit: BTreeMap<String, usize> = BTreeMap::new();
    for change in changes.iter().filter(|c| c.op != "r") {
        assert!(
            change.commit_lsn > hand_off,
            "{what}: {change:?} was committed at or before the snapshot's hand-off {hand_off} but streamed too"
        );
        *streamed_per_commit
            .entry(change.commit_lsn.clone())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = expected_per_commit
        .iter()
        .filter(|(lsn, _)| **lsn > hand_off)
        .map(|(lsn, n)| (lsn.clone(), *n))
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|(lsn, n)| streamed_per_commit.get(*lsn) != Some(n))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} transactions are missing or incomplete (commit LSN, expected events): {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // Replaying in source order gives the final contents of both tables.
    let mut ordered = changes.clone();
    ordered.sort_by(|a, b| {
        (a.op != "r", &a.commit_lsn, a.serial).cmp(&(b.op != "r", &b.commit_lsn, b.serial))
    });
    let mut state: BTreeMap<(String, i64), Json> = BTreeMap::new();
    for change in ordered {
        let key = (change.table.clone(), change.key);
        match change.after {
            Some(after) => state.insert(key, after),
            None => state.remove(&key),
        };
    }
    assert_eq!(
        state.len(),
        final_rows.len(),
        "{what}: row count after replay"
    );
    for (key, row) in final_rows {
        let replayed = state
            .get(key)
            .unwrap_or_else(|| panic!("{what}: {key:?} missing after replay"));
        for (column, value) in row.as_object().unwrap() {
            assert_eq!(&replayed[column], value, "{what}: {key:?}.{column}");
        }
    }
}

/// Events per commit LSN in the change tables (an update's two rows are one event), and the
/// tables' final contents, read through SQL as any client would.
async fn expected(bed: &Bed) -> (BTreeMap<String, usize>, BTreeMap<(String, i64), Json>) {
    let mut config = tiberius::Config::new();
    config.host("127.0.0.1");
    config.port(bed.sim.addr().port());
    config.authentication(tiberius::AuthMethod::sql_server("sa", PASSWORD));
    config.encryption(tiberius::EncryptionLevel::Required);
    config.trust_cert();
    config.database("bank");
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .unwrap();
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap();
    let mut per_commit = BTreeMap::new();
    for table in ["accounts", "transfers"] {
        let rows = client
            .simple_query(format!(
                "SELECT __$start_lsn FROM cdc.dbo_{table}_CT WHERE __$operation <> 3"
            ))
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        for row in rows {
            let bytes: &[u8] = row.get(0).unwrap();
            // binary(10) → the 8:8:4 hex text form Debezium uses.
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let lsn = format!("{}:{}:{}", &hex[0..8], &hex[8..16], &hex[16..20]);
            *per_commit.entry(lsn).or_default() += 1;
        }
    }
    let mut final_rows = BTreeMap::new();
    for (table, columns) in [
        ("accounts", "id, balance, version"),
        ("transfers", "id, account_id, amount"),
    ] {
        let rows = client
            .simple_query(format!("SELECT {columns} FROM dbo.{table}"))
            .await
            .unwrap()
            .into_first_result()
            .await
            .unwrap();
        for row in rows {
            let mut object = serde_json::Map::new();
            for (i, column) in row.columns().iter().enumerate() {
                let value: i32 = row.get(i).unwrap();
                object.insert(column.name().to_string(), Json::from(value));
            }
            let id = i64::from(row.get::<i32, _>(0).unwrap());
            final_rows.insert((table.to_string(), id), Json::Object(object));
        }
    }
    (per_commit, final_rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_crashes_end_to_end_leave_every_change_exactly_once_in_topics_and_files() {
    crash_and_replay().await;
}

async fn crash_and_replay() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let iterations: usize = std::env::var("CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    eprintln!("crash_replay: CRASH_SEED={seed} CRASH_ITERATIONS={iterations}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let sim =
        Simulator::start(SimConfig::new(PASSWORD).capture_interval(Duration::from_millis(50)))
            .await
            .unwrap();
    let mut schema = String::from(
        "CREATE DATABASE bank;\nGO\nUSE bank;\nEXEC sys.sp_cdc_enable_db;\n\
         CREATE TABLE dbo.accounts (id int NOT NULL PRIMARY KEY, balance int NOT NULL, version int NOT NULL);\n\
         CREATE TABLE dbo.transfers (id int NOT NULL PRIMARY KEY, account_id int NOT NULL, amount int NOT NULL);\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'accounts', @role_name = NULL;\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'transfers', @role_name = NULL;\n",
    );
    // Rows present before the connector starts: the initial snapshot reads them.
    for id in 1..=ACCOUNTS {
        schema.push_str(&format!(
            "INSERT INTO dbo.accounts (id, balance, version) VALUES ({id}, 100, 0);\n"
        ));
    }
    sim.run_script(&schema).unwrap();

    let kafka = KafkaConfig::new(broker::shared())
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    let bed = Bed {
        sim,
        kafka,
        run: format!("{}{}", std::process::id(), fastrand::u32(..)),
        files: tempfile::tempdir().unwrap(),
        codec: Arc::new(DebeziumJson::with_schema()),
    };
    let creator = TopicCreator::new(&bed.kafka, TopicSpec::new(2, 1)).unwrap();
    for topic in bed.topics() {
        creator.ensure(&topic).await.unwrap();
    }
    TopicCreator::new(&bed.kafka, TopicSpec::new(1, 1).compacted(true))
        .unwrap()
        .ensure(&bed.offsets_topic())
        .await
        .unwrap();

    let mut to_kafka = bed.to_kafka();
    let mut to_files = bed.to_files(CancellationToken::new()).0;
    let mut issued = 0;
    for _ in 0..iterations {
        workload(&bed.sim, issued, TRANSACTIONS_PER_ITERATION);
        issued += TRANSACTIONS_PER_ITERATION;
        tokio::time::sleep(Duration::from_millis(rng.u64(50..400))).await;
        match rng.u8(0..3) {
            0 => {
                crash(to_kafka).await;
                to_kafka = bed.to_kafka();
            }
            1 => {
                crash(to_files).await;
                to_files = bed.to_files(CancellationToken::new()).0;
            }
            _ => {
                crash(to_kafka).await;
                crash(to_files).await;
                to_kafka = bed.to_kafka();
                to_files = bed.to_files(CancellationToken::new()).0;
            }
        }
    }

    // Let both catch up: first the topics (the SQL Server pipeline keeps running) ...
    bed.sim.scan();
    let (per_commit, final_rows) = expected(&bed).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let in_topics = loop {
        let in_topics = read_committed(&bed.kafka, &bed.topics());
        let changes: Vec<Change> = in_topics.iter().map(Change::parse).collect();
        let hand_off = changes
            .iter()
            .filter(|c| c.op == "r")
            .map(|c| c.commit_lsn.clone())
            .max()
            .unwrap_or_default();
        let snapshot_rows = changes.iter().filter(|c| c.op == "r").count();
        let streamed = changes.len() - snapshot_rows;
        let after_hand_off: usize = per_commit
            .iter()
            .filter(|(lsn, _)| **lsn > hand_off)
            .map(|(_, n)| n)
            .sum();
        let caught_up = snapshot_rows >= ACCOUNTS as usize && streamed >= after_hand_off;
        if caught_up || Instant::now() > deadline {
            // Past the deadline, the check below says what is missing.
            break in_topics;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    check("topics", &in_topics, &per_commit, &final_rows);

    // ... then the files: runs that end gracefully (closing and uploading their open files)
    // once they stop reading, until the files hold what the topics hold.
    crash(to_files).await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let shutdown = CancellationToken::new();
        let (task, metrics) = bed.to_files(shutdown.clone());
        let mut last = (u64::MAX, Instant::now());
        while last.1.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
            let read = metrics.snapshot().events_read;
            if read != last.0 {
                last = (read, Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        shutdown.cancel();
        task.await.unwrap().unwrap();
        if read_files(bed.files.path()).len() >= in_topics.len() || Instant::now() > deadline {
            break;
        }
    }
    crash(to_kafka).await;
    let in_files = read_files(bed.files.path());
    check("files", &in_files, &per_commit, &final_rows);
    assert_eq!(
        in_files.len(),
        in_topics.len(),
        "the files hold what the topics hold"
    );
}
