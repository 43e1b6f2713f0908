//! The `cdc` binary as a service: SQL Server (the simulator) → S3 files (local store),
//! `/metrics` scraped and parsed by a Prometheus text-format parser, `/health` and `/ready`
//! answered, and SIGTERM ending the run cleanly with the checkpoint saved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mssql_sim::{SimConfig, Simulator};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use support::{free_port, sample as value, scrape, wait_for};

const PASSWORD: &str = "Service-Passw0rd!";
const ROWS: usize = 60;

fn setup_script() -> String {
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
    script
}

/// `GET path` over HTTP/1.0: (status, body), or `None` if nothing listens yet.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    wait_for("cdc to exit", timeout, || child.try_wait().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_the_checkpoint_saved_and_metrics_scrape() {
    let sim =
        Simulator::start(SimConfig::new(PASSWORD).capture_interval(Duration::from_millis(100)))
            .await
            .unwrap();
    let script = setup_script();
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    {
        let sim = &sim;
        tokio::task::block_in_place(|| sim.run_script(&script).unwrap());
    }
    let work = tempfile::tempdir().unwrap();
    let lake = work.path().join("lake");
    let offsets = work.path().join("offsets.json");
    let port = free_port();
    let config = format!(
        r#"
[pipeline]
name = "svc"
flush_interval_ms = 200

[source.mssql]
connection = "${{SVC_ADO}}"
topic_prefix = "erp"
poll_interval_ms = 100

[sink.s3]
url = "file://{lake}"
format = "ndjson"

[sink.s3.rotation]
max_records = 20

[offsets]
file = "{offsets}"

[ops]
listen = "127.0.0.1:{port}"
"#,
        lake = lake.display(),
        offsets = offsets.display()
    );
    std::fs::create_dir_all(&lake).unwrap();
    let path = work.path().join("pipeline.toml");
    std::fs::write(&path, config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("run")
        .arg(&path)
        .env("SVC_ADO", &ado)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // /health answers as soon as the server is up; /ready once the pipeline runs.
    let (status, _) = wait_for("/health", Duration::from_secs(60), || get(port, "/health"));
    assert_eq!(status, 200);
    // Every row (snapshot reads, 20 per file) made durable, as the metrics say.
    let first = wait_for(
        "all events in the metrics",
        Duration::from_secs(120),
        || {
            let s = scrape(port)?;
            (value(&s, "cdc_events_total", &[("table", "shop.dbo.items")])? >= ROWS as f64
                && value(&s, "cdc_checkpoints_total", &[])? >= 1.0)
                .then_some(s)
        },
    );
    assert_eq!(
        value(
            &first,
            "cdc_events_total",
            &[
                ("table", "shop.dbo.items"),
                ("op", "r"),
                ("pipeline", "svc")
            ]
        ),
        Some(ROWS as f64)
    );
    assert!(
        value(
            &first,
            "cdc_event_bytes_total",
            &[("table", "shop.dbo.items")]
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        value(&first, "cdc_ready", &[("pipeline", "svc")]),
        Some(1.0)
    );
    assert_eq!(get(port, "/ready").unwrap().0, 200);
    let files = wait_for("three files", Duration::from_secs(60), || {
        let s = scrape(port)?;
        let files = value(&s, "cdc_files_written_total", &[])?;
        (files >= 3.0).then_some(files)
    });
    assert_eq!(files, 3.0);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "cdc exits 0 after SIGTERM");

    // The checkpoint covers every event written: its lane's position is the last row's.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&offsets).unwrap()).unwrap();
    let text = saved.to_string();
    assert!(text.contains("shop"), "{text}");
    let lines = support::ndjson_records(&lake);
    assert_eq!(lines.len(), ROWS);

    // A restart reads nothing again: no file is added or changed, nothing is written twice.
    let mut again = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("run")
        .arg(&path)
        .env("SVC_ADO", &ado)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    tokio::task::block_in_place(|| {
        sim.run_script("USE shop\nGO\nINSERT INTO dbo.items VALUES (1000, N'after restart')\nGO\n")
            .unwrap()
    });
    // Wait for the new row to be read (it stays in an open file until rotation).
    wait_for("the new event", Duration::from_secs(60), || {
        let s = scrape(port)?;
        (value(&s, "cdc_events_total", &[("table", "shop.dbo.items")])? >= 1.0).then_some(())
    });
    let s = scrape(port).unwrap();
    assert_eq!(
        value(&s, "cdc_events_total", &[("table", "shop.dbo.items")]),
        Some(1.0),
        "only the new change is read after the restart"
    );
    Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(
        wait_exit(&mut again, Duration::from_secs(60)).code(),
        Some(0)
    );
    sim.stop().await;
}
