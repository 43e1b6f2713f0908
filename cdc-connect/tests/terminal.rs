//! Without a terminal on stderr (a service's logs go to a file or a collector), `cdc run`
//! draws no snapshot progress bar and writes its logs without colour codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mssql_sim::{SimConfig, Simulator};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 40;

fn events(port: u16) -> Option<f64> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let body = body.split_once("\r\n\r\n")?.1;
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).ok()?;
    let samples: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "cdc_events_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .collect();
    (!samples.is_empty()).then(|| samples.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_a_snapshot_draws_no_progress_bar_and_logs_have_no_colour_codes() {
    let sim = Simulator::start(
        SimConfig::new("Terminal-Passw0rd!").capture_interval(Duration::from_millis(100)),
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
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = work.path().join("snapshot.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[pipeline]
name = "terminal"
flush_interval_ms = 100

[source.mssql]
connection = "${{TERMINAL_ADO}}"
topic_prefix = "erp"
# Small chunks: the snapshot takes several progress updates.
snapshot_chunk_size = 5

[sink.s3]
url = "file://{}"
format = "ndjson"

[offsets]
file = "{}"

[ops]
listen = "127.0.0.1:{port}"
"#,
            work.path().display(),
            work.path().join("offsets.json").display()
        ),
    )
    .unwrap();
    let stderr_path = work.path().join("stderr.log");
    // stderr is a file, as under a service manager that redirects it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("run")
        .arg(&config)
        .env("TERMINAL_ADO", &ado)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !events(port).is_some_and(|v| v >= ROWS as f64) {
        assert!(child.try_wait().unwrap().is_none(), "cdc exited early");
        assert!(Instant::now() < deadline, "the snapshot did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "cdc did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        stderr.contains("pipeline stopped; checkpoint saved"),
        "the logs were written: {stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "no terminal escape codes (colours, cursor moves) in redirected logs: {stderr:?}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains("rows ("),
        "no progress bar in redirected logs: {stderr:?}"
    );
    sim.stop().await;
}
