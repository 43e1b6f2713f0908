//! The crash campaign with the Kafka legs: the simulator as a separate process under a
//! continuous T-SQL workload (sent over TDS), `cdc` SQL Server → Kafka in exactly-once mode
//! (transactional producer, checkpoint in the Kafka offsets topic inside the transactions), the
//! real broker, and `cdc` Kafka → S3 (local store, the consumer group's offsets as checkpoint).
//! The driver SIGKILLs one of the two `cdc` processes at random moments and restarts it; at the
//! end every committed change is in the topic exactly once (read with `read_committed`) and in
//! the files exactly once, by `(commit_lsn, change_lsn, event_serial_no)`, and the time from each
//! restart to the restarted process's first event is shown.
//!
//! The broker is `KAFKA_BROKERS`, or one this test starts through `scripts/kafka.sh` (as
//! kafka-io's tests do). `CDC_CRASH_CHANGES` (default 20 000), `CDC_CRASH_KILLS` (default 10),
//! `CDC_CRASH_SEED`, `CDC_CRASH_LOG` (the `cdc` processes' `RUST_LOG`) and `CDC_CRASH_BIN`
//! (another `cdc` binary) size and replay a run; `scripts/crash-campaign.sh`
//! runs the long one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../../kafka-io/tests/common/broker.rs"]
#[allow(dead_code, unreachable_pub)]
mod broker;

use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::message::Message;
use kafka_io::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use kafka_io::{KafkaConfig, TopicCreator, TopicSpec};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{KillOnDrop, Rng, env_number, free_port, terminate};

/// Marks the simulator process's line that carries its connection string.
const ADO_LINE: &str = "CRASH_SIM_ADO ";
/// Set in the simulator process's environment: the SA password.
const SIM_ENV: &str = "CDC_CRASH_SIM_PASSWORD";

/// Not a test: the campaign's simulator process. The driver runs this test binary again with
/// `--exact simulator_process --ignored` and `CDC_CRASH_SIM_PASSWORD` set; the process serves
/// until its stdin closes (so it also ends when the driver dies). Without the variable it
/// returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the crash campaign's simulator process; started by the campaign's driver"]
async fn simulator_process() {
    let Ok(password) = std::env::var(SIM_ENV) else {
        return;
    };
    let sim = mssql_sim::Simulator::start(
        mssql_sim::SimConfig::new(password).capture_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        sim.run_script(
            "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
             CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, qty int NOT NULL)\nGO\n\
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n",
        )
        .unwrap()
    });
    println!("{ADO_LINE}{};Database=shop", sim.ado_connection_string());
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    })
    .await
    .unwrap();
    sim.stop().await;
}

/// Starts the simulator process; returns it and its ADO connection string.
fn start_simulator() -> (KillOnDrop, String) {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "simulator_process", "--ignored", "--nocapture"])
            .env(SIM_ENV, "Crash-Passw0rd!")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Reads every line, so the process never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(ado) = line.strip_prefix(ADO_LINE) {
                let _ = tx.send(ado.to_string());
            }
        }
    });
    let ado = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the simulator process printed its connection string");
    (child, ado)
}

/// The T-SQL workload, over TDS: batches of 50 rows, each row inserted, updated and (every
/// third) deleted, every statement its own transaction. Runs until `changes` changes are
/// committed and `stop` is set, counting them in `committed`.
async fn workload(ado: String, changes: usize, stop: Arc<AtomicBool>, committed: Arc<AtomicUsize>) {
    let mut config = tiberius::Config::from_ado_string(&ado).unwrap();
    // The simulator (a debug build, on a shared machine) slows down as the change tables grow
    // in a long run; a slow answer is not a failure of what is under test.
    config.command_timeout(Some(Duration::from_secs(600)));
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap();
    let mut id = 0usize;
    while committed.load(Ordering::SeqCst) < changes || !stop.load(Ordering::SeqCst) {
        let mut batch = String::new();
        let mut n = 0;
        for _ in 0..50 {
            id += 1;
            batch.push_str(&format!("INSERT INTO dbo.items VALUES ({id}, 1);\n"));
            batch.push_str(&format!("UPDATE dbo.items SET qty = 2 WHERE id = {id};\n"));
            n += 2;
            if id.is_multiple_of(3) {
                batch.push_str(&format!("DELETE FROM dbo.items WHERE id = {id};\n"));
                n += 1;
            }
        }
        client
            .simple_query(batch)
            .await
            .unwrap()
            .into_results()
            .await
            .unwrap();
        let before = committed.fetch_add(n, Ordering::SeqCst);
        if (before + n) / 10_000 > before / 10_000 {
            eprintln!("workload: {} changes committed", before + n);
        }
    }
}

/// The `cdc` binary: `CDC_CRASH_BIN` (a release build, or a copy that later builds do not
/// replace during a long run), else the one cargo built for this test.
fn cdc_binary() -> PathBuf {
    std::env::var_os("CDC_CRASH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cdc")))
}

/// One of the two `cdc` processes: its config and how to start it again.
struct Leg {
    name: &'static str,
    dir: PathBuf,
    config: fn(&Path, u16) -> String,
    ado: String,
    port: u16,
    child: Option<KillOnDrop>,
}

impl Leg {
    fn start(&mut self) -> Instant {
        self.port = free_port();
        let path = self.dir.join(format!("{}-{}.toml", self.name, self.port));
        std::fs::write(&path, (self.config)(&self.dir, self.port)).unwrap();
        let started = Instant::now();
        self.child = Some(KillOnDrop(
            Command::new(cdc_binary())
                .arg("run")
                .arg(&path)
                .env("CRASH_ADO", &self.ado)
                .env(
                    "RUST_LOG",
                    std::env::var("CDC_CRASH_LOG").unwrap_or_else(|_| "warn".into()),
                )
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        ));
        started
    }

    /// Waits until the process's metrics show a first event; the time since `started`.
    fn first_event(&mut self, started: Instant) -> Duration {
        let (name, port) = (self.name, self.port);
        let child = &mut self.child.as_mut().unwrap().0;
        support::await_first_event(name, port, child);
        started.elapsed()
    }

    fn sigkill(&mut self) {
        drop(self.child.take());
    }

    /// SIGTERM, then the exit status within 60 s.
    fn terminate(&mut self) -> Option<i32> {
        terminate(self.child.take().unwrap(), self.name)
    }
}

/// Names of this run's topics, group and transactional id: unique per process, so a shared
/// broker (`KAFKA_BROKERS`) can run the campaign again.
fn run_id() -> String {
    format!("crash{}", std::process::id())
}

fn brokers_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("brokers")).unwrap()
}

fn to_kafka_config(dir: &Path, port: u16) -> String {
    let run = run_id();
    format!(
        r#"
[pipeline]
name = "{run}-to-kafka"
flush_interval_ms = 200

[source.mssql]
connection = "${{CRASH_ADO}}"
topic_prefix = "{run}"
poll_interval_ms = 50
# Every committed change streams from the change tables (no snapshot).
snapshot_mode = "no_data"
stream_from_earliest = true

[sink.kafka]
brokers = "{brokers}"
exactly_once = true
transactional_id = "{run}-to-kafka"
offsets_topic = "{run}.offsets"

[ops]
listen = "127.0.0.1:{port}"
"#,
        brokers = brokers_file(dir)
    )
}

fn to_s3_config(dir: &Path, port: u16) -> String {
    let run = run_id();
    format!(
        r#"
[pipeline]
name = "{run}-to-s3"
flush_interval_ms = 200

[source.kafka]
brokers = "{brokers}"
group_id = "{run}-s3"
topics = ["{run}.shop.dbo.items"]
# Static membership: a restarted member takes its partitions back at once instead of waiting
# for the killed one's session to expire.
properties = {{ "group.instance.id" = "{run}-s3-0", "session.timeout.ms" = "10000" }}

[sink.s3]
url = "file://{lake}"
format = "ndjson"

[sink.s3.rotation]
max_records = 500
schedule_interval_ms = 1000

[ops]
listen = "127.0.0.1:{port}"
"#,
        brokers = brokers_file(dir),
        lake = dir.join("lake").display()
    )
}

type Key = (String, String, u64);

/// Every `(commit_lsn, change_lsn, event_serial_no)` in the files, with its count.
fn stored_changes(lake: &Path) -> HashMap<Key, usize> {
    let mut seen = HashMap::new();
    let mut stack = vec![lake.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    let v: serde_json::Value = serde_json::from_str(line).unwrap();
                    let key = (
                        v["__commit_lsn"].as_str().unwrap().to_string(),
                        v["__change_lsn"].as_str().unwrap().to_string(),
                        v["__event_serial_no"].as_u64().unwrap(),
                    );
                    *seen.entry(key).or_insert(0) += 1;
                }
            }
        }
    }
    seen
}

/// Every `(commit_lsn, change_lsn, event_serial_no)` in the topic as a `read_committed`
/// consumer sees it (tombstones left out), with its count.
fn topic_changes(brokers: &str, topic: &str) -> HashMap<Key, usize> {
    let mut client: ClientConfig = KafkaConfig::new(brokers).client_config();
    client
        .set("group.id", format!("{}-reader", run_id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let consumer: BaseConsumer = client.create().unwrap();
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
    let mut targets = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), timeout).unwrap();
        if high > low {
            targets.push((p.id(), high));
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    let mut seen = HashMap::new();
    if targets.is_empty() {
        return seen;
    }
    consumer.assign(&tpl).unwrap();
    let started = Instant::now();
    loop {
        let positions = consumer.position().unwrap();
        let done = targets.iter().all(|(p, high)| {
            matches!(positions.find_partition(topic, *p).map(|e| e.offset()),
                Some(Offset::Offset(at)) if at >= *high)
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "reading {topic} timed out"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.unwrap();
            let Some(value) = m.payload() else { continue };
            let v: serde_json::Value = serde_json::from_slice(value).unwrap();
            let source = &v["payload"]["source"];
            let key = (
                source["commit_lsn"].as_str().unwrap().to_string(),
                source["change_lsn"].as_str().unwrap().to_string(),
                source["event_serial_no"].as_u64().unwrap(),
            );
            *seen.entry(key).or_insert(0) += 1;
        }
    }
    seen
}

fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    match (sorted.first(), sorted.last()) {
        (Some(min), Some(max)) => format!(
            "min {min:?}, median {:?}, max {max:?} over {}",
            sorted[sorted.len() / 2],
            sorted.len()
        ),
        _ => "no restarts".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_cdc_processes_on_both_kafka_legs_leave_every_change_in_the_topic_and_the_files_exactly_once()
 {
    let campaign = Instant::now();
    let changes = env_number("CDC_CRASH_CHANGES", 20_000) as usize;
    let kills = env_number("CDC_CRASH_KILLS", 10);
    let seed = env_number("CDC_CRASH_SEED", 0x5eed_ca11);
    eprintln!("crash campaign (Kafka legs): {changes} changes, {kills} kills, seed {seed}");
    let mut rng = Rng(seed | 1);

    let brokers = tokio::task::spawn_blocking(broker::shared).await.unwrap();
    let run = run_id();
    let topic = format!("{run}.shop.dbo.items");
    let kafka = KafkaConfig::new(&brokers);
    TopicCreator::new(&kafka, TopicSpec::new(3, 1).compacted(false))
        .unwrap()
        .ensure(&topic)
        .await
        .unwrap();
    TopicCreator::new(&kafka, TopicSpec::new(1, 1))
        .unwrap()
        .ensure(&format!("{run}.offsets"))
        .await
        .unwrap();

    let (_sim, ado) = tokio::task::block_in_place(start_simulator);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("brokers"), &brokers).unwrap();
    std::fs::create_dir_all(work.path().join("lake")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(workload(
        ado.clone(),
        changes,
        Arc::clone(&stop),
        Arc::clone(&committed),
    ));

    let mut legs = [
        Leg {
            name: "to-kafka",
            dir: work.path().to_path_buf(),
            config: to_kafka_config,
            ado: ado.clone(),
            port: 0,
            child: None,
        },
        Leg {
            name: "to-s3",
            dir: work.path().to_path_buf(),
            config: to_s3_config,
            ado: ado.clone(),
            port: 0,
            child: None,
        },
    ];
    let mut restarts: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    tokio::task::block_in_place(|| {
        for leg in &mut legs {
            let started = leg.start();
            let first = leg.first_event(started);
            eprintln!("{}: first event {first:?} after start", leg.name);
        }
        for kill in 0..kills {
            // Spread over the whole workload (kill k once k/(kills+1) of the changes are
            // committed), then a random while more; SIGKILL one of the two at random and
            // restart it.
            support::await_share_of_workload(&committed, kill, kills, changes);
            std::thread::sleep(Duration::from_millis(100 + rng.below(1500)));
            let victim = rng.below(2) as usize;
            let leg = &mut legs[victim];
            leg.sigkill();
            let started = leg.start();
            let took = leg.first_event(started);
            eprintln!(
                "kill {}: {} restarted, first event after {took:?}",
                kill + 1,
                leg.name
            );
            restarts[victim].push(took);
        }
    });
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let total = committed.load(Ordering::SeqCst);

    // Both legs drain everything, then stop gracefully.
    let lake = work.path().join("lake");
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let stored = stored_changes(&lake);
            if stored.len() >= total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {total} changes in the files after 180 s",
                stored.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for leg in &mut legs {
            assert_eq!(
                leg.terminate(),
                Some(0),
                "{} exit code on SIGTERM",
                leg.name
            );
        }
    });

    let in_topic = tokio::task::block_in_place(|| topic_changes(&brokers, &topic));
    let duplicates: Vec<_> = in_topic.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        duplicates.is_empty(),
        "changes in the topic more than once (read_committed): {duplicates:?}"
    );
    assert_eq!(
        in_topic.len(),
        total,
        "every committed change is in the topic exactly once"
    );
    let stored = stored_changes(&lake);
    let duplicates: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        duplicates.is_empty(),
        "changes stored more than once: {duplicates:?}"
    );
    assert_eq!(
        stored.len(),
        total,
        "every committed change is stored exactly once"
    );
    let same: usize = stored.keys().filter(|k| in_topic.contains_key(*k)).count();
    assert_eq!(same, total, "the files hold the topic's changes");
    eprintln!(
        "crash campaign (Kafka legs): {total} changes, {kills} SIGKILLs, seed {seed}, {:?} in all; \
         restart to first event: SQL Server -> Kafka {}; Kafka -> S3 {}",
        campaign.elapsed(),
        summary(&restarts[0]),
        summary(&restarts[1])
    );
}
