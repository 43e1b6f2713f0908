//! The lag and progress metrics of `cdc run`, scraped from `/metrics` and parsed with a
//! Prometheus text-format parser: the SQL Server source's LSN distance, the Kafka source's
//! consumer lag per partition, and the source lag that keeps growing while a stalled source
//! delivers nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kafka_io::rdkafka::consumer::{BaseConsumer, Consumer};
use kafka_io::rdkafka::mocking::MockCluster;
use mssql_sim::{SimConfig, Simulator};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{KillOnDrop, free_port, terminate, value, wait_for};

const ROWS: usize = 25;

fn spawn(config: &Path, ado: &str) -> KillOnDrop {
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .arg("run")
            .arg(config)
            .env("METRICS_ADO", ado)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

async fn simulator(extra: &str) -> (Simulator, String) {
    let sim = Simulator::start(
        SimConfig::new("Metrics-Passw0rd!").capture_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let mut script = String::from(
        "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
         CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL)\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n",
    );
    script.push_str(extra);
    for id in 1..=ROWS {
        script.push_str(&format!(
            "INSERT INTO dbo.items VALUES ({id}, N'item {id}')\n"
        ));
    }
    script.push_str("GO\n");
    tokio::task::block_in_place(|| sim.run_script(&script).unwrap());
    // The capture job has processed the setup before `cdc` starts: its snapshot's rows then
    // carry the hand-off's commit time (with an empty cdc.lsn_time_mapping they carry none,
    // and the source lag has no commit time to start from until a change streams).
    sim.scan();
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    (sim, ado)
}

/// A SQL Server → S3 (NDJSON, local store) pipeline file.
fn to_s3(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join(format!("to-s3-{port}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[pipeline]
name = "metrics"
flush_interval_ms = 100

[source.mssql]
connection = "${{METRICS_ADO}}"
topic_prefix = "erp"
poll_interval_ms = 50

[sink.s3]
url = "file://{lake}"
format = "ndjson"

[sink.s3.rotation]
max_records = {ROWS}

[offsets]
file = "{offsets}"

[ops]
listen = "127.0.0.1:{port}"
lag_interval_ms = 100
"#,
            lake = dir.join("lake").display(),
            offsets = dir.join("offsets.json").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("lake")).unwrap();
    path
}

/// `00000027:00000758:0005` (or its ten bytes) as the 80-bit integer it spells.
fn lsn_number(text: &str) -> u128 {
    u128::from_str_radix(&text.replace(':', ""), 16).unwrap()
}

fn commit_lsns(lake: &Path) -> Vec<String> {
    support::ndjson_records(lake)
        .iter()
        .map(|v| v["__commit_lsn"].as_str().unwrap().to_string())
        .collect()
}

async fn max_lsn(ado: &str) -> u128 {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let config = tiberius::Config::from_ado_string(ado).unwrap();
    let tcp = tokio::net::TcpStream::connect(config.get_addr())
        .await
        .unwrap();
    let mut client = tiberius::Client::connect(config, tcp.compat_write())
        .await
        .unwrap();
    let row = client
        .query("SELECT sys.fn_cdc_get_max_lsn()", &[])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    let bytes: &[u8] = row.get(0).unwrap();
    bytes.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b))
}

/// Every row is delivered, then transactions on a table without CDC move
/// `sys.fn_cdc_get_max_lsn()` past the last change (the capture job's `tran_id = 0x00` rows):
/// the gauge is exactly that max LSN minus the newest delivered commit LSN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsn_distance_is_the_captured_max_lsn_minus_the_newest_delivered_commit_lsn() {
    let (sim, ado) = simulator("CREATE TABLE dbo.notes (id int NOT NULL PRIMARY KEY)\nGO\n").await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let lake = work.path().join("lake");
    let child = spawn(&to_s3(work.path(), port), &ado);
    tokio::task::block_in_place(|| {
        wait_for("every row in the files", Duration::from_secs(120), || {
            (commit_lsns(&lake).len() == ROWS).then_some(())
        })
    });
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.notes VALUES (1)\nINSERT INTO dbo.notes VALUES (2)\nGO\n")
            .unwrap()
    });
    // The capture job records its progress at its next scan.
    let newest = commit_lsns(&lake)
        .iter()
        .map(|l| lsn_number(l))
        .max()
        .unwrap();
    let max = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let max = max_lsn(&ado).await;
            if max > newest {
                break max;
            }
            assert!(Instant::now() < deadline, "the max LSN never moved");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let expected = (max - newest) as f64;
    tokio::task::block_in_place(|| {
        wait_for(
            &format!("cdc_source_lsn_distance = {expected}"),
            Duration::from_secs(30),
            || {
                (value(port, "cdc_source_lsn_distance", &[("database", "shop")]) == Some(expected))
                    .then_some(())
            },
        )
    });
    // Every error kind is exported from the start, at 0 while nothing failed.
    for kind in cdc_connect::metering::ERROR_KINDS {
        assert_eq!(
            value(port, "cdc_errors_total", &[("kind", kind)]),
            Some(0.0),
            "cdc_errors_total{{kind={kind}}}"
        );
    }
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );
    sim.stop().await;
}

/// A source whose server stops answering delivers nothing: `cdc_source_lag_ms` must keep
/// growing rather than stay at the lag of the last event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_lag_keeps_growing_while_a_stalled_source_delivers_nothing() {
    let (sim, ado) = simulator("").await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let _child = spawn(&to_s3(work.path(), port), &ado);
    tokio::task::block_in_place(|| {
        wait_for("every row delivered", Duration::from_secs(120), || {
            (value(port, "cdc_events_total", &[])? >= ROWS as f64).then_some(())
        })
    });
    // Every response from now on takes an hour: the source stalls.
    sim.faults().delay_responses(Duration::from_secs(3600));
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.items VALUES (1000, N'late')\nGO\n")
            .unwrap()
    });
    let (first, events) = tokio::task::block_in_place(|| {
        wait_for("a source lag", Duration::from_secs(30), || {
            Some((
                value(port, "cdc_source_lag_ms", &[])?,
                value(port, "cdc_events_total", &[])?,
            ))
        })
    });
    tokio::task::block_in_place(|| {
        wait_for(
            "the source lag to grow by 2 s",
            Duration::from_secs(60),
            || (value(port, "cdc_source_lag_ms", &[])? >= first + 2000.0).then_some(()),
        )
    });
    assert_eq!(
        value(port, "cdc_events_total", &[]),
        Some(events),
        "the stalled source delivered nothing meanwhile"
    );
    sim.faults().delay_responses(Duration::ZERO);
    sim.stop().await;
}

/// A capture job that fails at every run (Microsoft's KB 4538384: a change to a table with a
/// hierarchyid column, then DDL on it, read by one run) captures nothing and leaves the LSN
/// distance at 0; `cdc_source_capture_job_errors` shows its latest session's errors, and
/// drops back to 0 once CDC is disabled on that table and the job gets past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_job_errors_show_a_failing_capture_job_and_clear_when_it_recovers() {
    let (sim, ado) = simulator(
        "CREATE TABLE dbo.places (id int NOT NULL PRIMARY KEY, node hierarchyid NULL)\nGO\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'places', @role_name = NULL\nGO\n",
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn(&to_s3(work.path(), port), &ado);
    let errors = || {
        value(
            port,
            "cdc_source_capture_job_errors",
            &[("database", "shop")],
        )
    };
    tokio::task::block_in_place(|| {
        wait_for("every row delivered", Duration::from_secs(120), || {
            (value(port, "cdc_events_total", &[])? >= ROWS as f64).then_some(())
        });
        wait_for("the gauge at 0", Duration::from_secs(30), || {
            (errors()? == 0.0).then_some(())
        });
    });
    sim.faults().stop_capture();
    tokio::task::block_in_place(|| {
        sim.run_script(
            "USE shop\nGO\nINSERT INTO dbo.places VALUES (1, '/1/')\n\
             ALTER TABLE dbo.places ADD note nvarchar(10) NULL\nGO\n",
        )
        .unwrap()
    });
    sim.faults().start_capture();
    tokio::task::block_in_place(|| {
        wait_for(
            "the capture job's three errors",
            Duration::from_secs(30),
            || (errors()? == 3.0).then_some(()),
        )
    });
    tokio::task::block_in_place(|| {
        sim.run_script(
            "USE shop\nGO\nEXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'places', @capture_instance = N'all'\nGO\n",
        )
        .unwrap()
    });
    tokio::task::block_in_place(|| {
        wait_for("the gauge back at 0", Duration::from_secs(30), || {
            (errors()? == 0.0).then_some(())
        })
    });
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );
    sim.stop().await;
}

/// The Kafka source's lag per partition is the high watermark minus the group's committed
/// offset: all of each partition while the sink holds everything undurable (nothing
/// committed), 0 once a run has made everything durable and committed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_is_the_high_watermark_minus_the_committed_offset_per_partition() {
    let (sim, ado) = simulator("").await;
    let mock = MockCluster::new(1).unwrap();
    let topic = "erp.shop.dbo.items";
    mock.create_topic(topic, 2, 1).unwrap();
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
connection = "${{METRICS_ADO}}"
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
    let child = spawn(&to_kafka, &ado);
    tokio::task::block_in_place(|| {
        wait_for("every row in Kafka", Duration::from_secs(120), || {
            (value(port, "cdc_events_total", &[])? >= ROWS as f64).then_some(())
        })
    });
    assert_eq!(
        tokio::task::block_in_place(|| terminate(child, "cdc")),
        Some(0)
    );

    // What each partition holds, as the broker says.
    let reader: BaseConsumer = kafka_io::KafkaConfig::new(&brokers)
        .client_config()
        .create()
        .unwrap();
    let held: Vec<(i32, i64)> = tokio::task::block_in_place(|| {
        (0..2)
            .map(|p| {
                let (low, high) = reader
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap();
                (p, high - low)
            })
            .collect()
    });
    assert_eq!(
        held.iter().map(|(_, n)| n).sum::<i64>(),
        ROWS as i64,
        "{held:?}"
    );

    let lake = work.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let to_s3 = |port: u16, durable: bool| {
        let path = work.path().join(format!("to-s3-{port}.toml"));
        // Durable: every record its own file. Not durable: no flush by time or count and files
        // that never rotate, so the sink holds every record and nothing is committed.
        let (flush, rotation) = if durable {
            ("flush_interval_ms = 100", 1)
        } else {
            (
                "flush_interval_ms = 0\nflush_max_events = 1000000",
                1_000_000,
            )
        };
        std::fs::write(
            &path,
            format!(
                r#"
[pipeline]
name = "to-s3"
{flush}

[source.kafka]
brokers = "{brokers}"
group_id = "connect-erp-s3-sink"
topics = ["{topic}"]
properties = {{ "session.timeout.ms" = "3000", "heartbeat.interval.ms" = "300" }}

[sink.s3]
url = "file://{}"
format = "ndjson"

[sink.s3.rotation]
max_records = {rotation}

[ops]
listen = "127.0.0.1:{port}"
lag_interval_ms = 100
"#,
                lake.display()
            ),
        )
        .unwrap();
        path
    };
    let port = free_port();
    let holding = spawn(&to_s3(port, false), &ado);
    tokio::task::block_in_place(|| {
        wait_for("every record read", Duration::from_secs(120), || {
            (value(port, "cdc_events_total", &[])? >= ROWS as f64).then_some(())
        });
        for (partition, records) in &held {
            let partition = partition.to_string();
            wait_for(
                &format!("partition {partition}'s lag = {records}"),
                Duration::from_secs(30),
                || {
                    (value(
                        port,
                        "cdc_consumer_lag",
                        &[("topic", topic), ("partition", &partition)],
                    )? == *records as f64)
                        .then_some(())
                },
            );
        }
    });
    drop(holding);

    let port = free_port();
    let durable = spawn(&to_s3(port, true), &ado);
    tokio::task::block_in_place(|| {
        for (partition, _) in &held {
            let partition = partition.to_string();
            wait_for(
                &format!("partition {partition}'s lag = 0"),
                Duration::from_secs(60),
                || {
                    (value(
                        port,
                        "cdc_consumer_lag",
                        &[("topic", topic), ("partition", &partition)],
                    )? == 0.0)
                        .then_some(())
                },
            );
        }
    });
    assert_eq!(
        tokio::task::block_in_place(|| terminate(durable, "cdc")),
        Some(0)
    );
    sim.stop().await;
}

/// A snapshot interrupted by SIGKILL continues after its cursor; the restarted process's
/// progress counts the rows read before: the finished table in full, the current one from its
/// first row, not from 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_progress_counts_the_rows_read_before_a_restart() {
    const ALPHA: usize = 30;
    const BETA: usize = 60;
    let sim = Simulator::start(
        SimConfig::new("Metrics-Passw0rd!").capture_interval(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let mut script =
        String::from("CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n");
    for (table, rows) in [("alpha", ALPHA), ("beta", BETA)] {
        script.push_str(&format!(
            "CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL)\nGO\n\
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', @role_name = NULL\nGO\n"
        ));
        for id in 1..=rows {
            script.push_str(&format!(
                "INSERT INTO dbo.{table} VALUES ({id}, N'{table} {id}')\n"
            ));
        }
        script.push_str("GO\n");
    }
    tokio::task::block_in_place(|| sim.run_script(&script).unwrap());
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("lake")).unwrap();
    let offsets = work.path().join("offsets.json");
    let config = |port: u16| {
        let path = work.path().join(format!("snapshot-{port}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"
[pipeline]
name = "snapshot"
flush_interval_ms = 50

[source.mssql]
connection = "${{METRICS_ADO}}"
topic_prefix = "erp"
snapshot_chunk_size = 5

[sink.s3]
url = "file://{}"
format = "ndjson"

[sink.s3.rotation]
max_records = 1

[offsets]
file = "{}"

[ops]
listen = "127.0.0.1:{port}"
"#,
                work.path().join("lake").display(),
                offsets.display()
            ),
        )
        .unwrap();
        path
    };
    // Every response slowed down, so the snapshot is still reading dbo.beta when it is killed.
    sim.faults().delay_responses(Duration::from_millis(200));
    let port = free_port();
    let first = spawn(&config(port), &ado);
    tokio::task::block_in_place(|| {
        wait_for(
            "a checkpoint inside dbo.beta's snapshot",
            Duration::from_secs(120),
            || {
                std::fs::read_to_string(&offsets)
                    .ok()?
                    .contains("dbo.beta")
                    .then_some(())
            },
        )
    });
    drop(first); // SIGKILL
    sim.faults().delay_responses(Duration::ZERO);

    let port = free_port();
    let second = spawn(&config(port), &ado);
    let done = |table: &str| {
        value(
            port,
            "cdc_snapshot_rows_done",
            &[("database", "shop"), ("table", table)],
        )
    };
    tokio::task::block_in_place(|| {
        wait_for(
            &format!("rows done: dbo.alpha {ALPHA}, dbo.beta {BETA}"),
            Duration::from_secs(60),
            || {
                (done("dbo.alpha")? == ALPHA as f64 && done("dbo.beta")? == BETA as f64)
                    .then_some(())
            },
        )
    });
    assert_eq!(
        tokio::task::block_in_place(|| terminate(second, "cdc")),
        Some(0)
    );
    sim.stop().await;
}
