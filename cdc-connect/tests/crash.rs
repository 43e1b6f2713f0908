//! The crash campaign, SQL Server → S3 leg: a continuous T-SQL workload runs against the
//! simulator while `cdc` processes are killed with SIGKILL at random moments and restarted;
//! at the end every committed change is in the files exactly once, by
//! (commit_lsn, change_lsn, event_serial_no), and the restart-to-first-event times are shown.
//!
//! `CDC_CRASH_CHANGES` (default 20 000), `CDC_CRASH_KILLS` (default 10) and `CDC_CRASH_SEED`
//! size and replay a run; `scripts/crash-campaign.sh` runs the long one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mssql_sim::{SimConfig, Simulator};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{KillOnDrop, Rng, env_number, free_port, terminate};

fn spawn(config: &Path, ado: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("run")
        .arg(config)
        .env("CRASH_ADO", ado)
        .env(
            "RUST_LOG",
            std::env::var("CDC_CRASH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn write_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        r#"
[pipeline]
name = "crash"
flush_interval_ms = 200

[source.mssql]
connection = "${{CRASH_ADO}}"
topic_prefix = "erp"
poll_interval_ms = 50
# Every committed change streams from the change tables (no snapshot), so each one must be
# in the files exactly once.
snapshot_mode = "no_data"
stream_from_earliest = true

[sink.s3]
url = "file://{lake}"
format = "ndjson"

[sink.s3.rotation]
max_records = 500
schedule_interval_ms = 1000

[offsets]
file = "{offsets}"

[ops]
listen = "127.0.0.1:{port}"
"#,
        lake = dir.join("lake").display(),
        offsets = dir.join("offsets.json").display()
    );
    let path = dir.join(format!("crash-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Ranges of row ids with no event at all in the files.
fn missing_ids(lake: &Path) -> Vec<(u64, u64)> {
    let mut ids = std::collections::BTreeSet::new();
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
                    if let Some(id) = v["id"].as_u64() {
                        ids.insert(id);
                    }
                }
            }
        }
    }
    let max = ids.iter().next_back().copied().unwrap_or(0);
    let mut gaps = Vec::new();
    let mut start = None;
    for id in 1..=max + 1 {
        match (ids.contains(&id) || id == max + 1, start) {
            (false, None) => start = Some(id),
            (true, Some(s)) => {
                gaps.push((s, id - 1));
                start = None;
            }
            _ => {}
        }
    }
    gaps.push((max + 1, u64::MAX));
    gaps
}

/// Every `(commit_lsn, change_lsn, event_serial_no)` in the files, with its count.
fn stored_changes(lake: &Path) -> HashMap<(String, String, u64), usize> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_cdc_processes_leave_every_change_in_the_files_exactly_once() {
    let changes = env_number("CDC_CRASH_CHANGES", 20_000) as usize;
    let kills = env_number("CDC_CRASH_KILLS", 10);
    let seed = env_number("CDC_CRASH_SEED", 0x5eed_c0de);
    eprintln!("crash campaign: {changes} changes, {kills} kills, seed {seed}");
    let mut rng = Rng(seed | 1);

    let sim = Arc::new(
        Simulator::start(
            SimConfig::new("Crash-Passw0rd!").capture_interval(Duration::from_millis(100)),
        )
        .await
        .unwrap(),
    );
    tokio::task::block_in_place(|| {
        sim.run_script(
            "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
             CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, qty int NOT NULL)\nGO\n\
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL\nGO\n",
        )
        .unwrap()
    });
    let ado = format!("{};Database=shop", sim.ado_connection_string());
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("lake")).unwrap();

    // The workload: inserts, then an update and (for every third row) a delete, each its
    // own transaction, in batches, until `changes` changes are committed.
    // It goes on until the kills are over too, so every restart has new changes to read.
    let committed = Arc::new(AtomicUsize::new(0));
    let kills_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workload = {
        let (sim, committed, kills_done) = (
            Arc::clone(&sim),
            Arc::clone(&committed),
            Arc::clone(&kills_done),
        );
        std::thread::spawn(move || {
            let mut id = 0usize;
            while committed.load(Ordering::SeqCst) < changes || !kills_done.load(Ordering::SeqCst) {
                let mut script = String::from("USE shop\nGO\n");
                let mut n = 0;
                for _ in 0..50 {
                    id += 1;
                    script.push_str(&format!("INSERT INTO dbo.items VALUES ({id}, 1)\n"));
                    script.push_str(&format!("UPDATE dbo.items SET qty = 2 WHERE id = {id}\n"));
                    n += 2;
                    if id.is_multiple_of(3) {
                        script.push_str(&format!("DELETE FROM dbo.items WHERE id = {id}\n"));
                        n += 1;
                    }
                }
                script.push_str("GO\n");
                sim.run_script(&script).unwrap();
                committed.fetch_add(n, Ordering::SeqCst);
            }
        })
    };

    let mut restarts = Vec::new();
    for kill in 0..kills {
        let port = free_port();
        let config = write_config(work.path(), port);
        let started = Instant::now();
        let mut child = KillOnDrop(spawn(&config, &ado));
        let child = &mut child.0;
        // Restart to first new event, as the process's own metrics see it.
        support::await_first_event(&format!("cdc #{kill}"), port, child);
        restarts.push(started.elapsed());
        // Spread over the whole workload (kill k once k/(kills+1) of the changes are
        // committed), then run a random while more and SIGKILL.
        support::await_share_of_workload(&committed, kill, kills, changes);
        std::thread::sleep(Duration::from_millis(100 + rng.below(1500)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    kills_done.store(true, Ordering::SeqCst);
    workload.join().unwrap();
    let total = committed.load(Ordering::SeqCst);

    // A last run drains everything, then stops gracefully.
    let port = free_port();
    let config = write_config(work.path(), port);
    let last = KillOnDrop(spawn(&config, &ado));
    let lake = work.path().join("lake");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = stored_changes(&lake);
        if stored.len() >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {total} changes in the files after 120 s; ids missing: {:?}",
            stored.len(),
            missing_ids(&lake)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(terminate(last, "cdc"), Some(0));

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
    let mut sorted = restarts.clone();
    sorted.sort();
    eprintln!(
        "crash campaign: {total} changes, {kills} SIGKILLs; restart to first event: min {:?}, median {:?}, max {:?}",
        sorted.first().unwrap(),
        sorted[sorted.len() / 2],
        sorted.last().unwrap()
    );
}
