//! Running Debezium's SQL Server connector (scripts/debezium.sh) against a simulator from a test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mssql_sim::Simulator;
use serde_json::Value as Json;

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/debezium.sh")
}

/// Builds the harness, failing loudly when Java or Maven is missing.
pub fn build() {
    let out = Command::new("bash")
        .arg(script())
        .arg("build")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/debezium.sh build failed (Java and Maven come from scripts/setup.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The records written so far, one JSON value per line.
pub fn lines(path: &Path) -> Vec<Json> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Debezium on `tables` of database `shop`, stopping after `max` records (or 60 s without one);
/// records go to `dir/records.jsonl`, its log to `dir/debezium.log`.
pub fn start(sim: &Simulator, password: &str, tables: &str, max: usize, dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("debezium.log")).unwrap();
    Command::new("bash")
        .arg(script())
        .arg("run")
        .arg("127.0.0.1")
        .arg(sim.addr().port().to_string())
        .arg(password)
        .arg("shop")
        .arg(tables)
        .arg(dir.join("records.jsonl"))
        .arg(max.to_string())
        .arg("60")
        .arg(dir.join("work"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits (bounded) until `dir/records.jsonl` holds at least `n` records.
pub async fn wait_for(dir: &Path, n: usize, child: &mut Child) {
    let path = dir.join("records.jsonl");
    let start = Instant::now();
    while lines(&path).len() < n {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "Debezium exited ({status}) after {} records:\n{}",
                lines(&path).len(),
                std::fs::read_to_string(dir.join("debezium.log")).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no {n} records from Debezium within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) for the harness to exit and asserts it succeeded.
pub async fn finish(child: &mut Child, dir: &Path) {
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
    let log = std::fs::read_to_string(dir.join("debezium.log")).unwrap_or_default();
    assert!(status.success(), "Debezium failed:\n{log}");
}
