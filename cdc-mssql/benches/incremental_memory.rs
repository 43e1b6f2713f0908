//! Memory of an incremental snapshot: tables of different sizes read in chunks while
//! streaming, with a counting global allocator (peak_alloc) reporting the peak of live heap bytes above
//! what was live when the snapshot began. Not a timed test: it prints the figures.
//!
//! ```sh
//! cargo bench -p cdc-mssql --bench incremental_memory
//! ```
//!
//! The simulator runs in a child process (this binary again, holding the table), so only the
//! reader's heap is counted; the figures show the peak follows the chunk size, not the table
//! size.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cdc_core::{ChangeSource, Op};
use cdc_mssql::{Encryption, ExecuteSnapshot, MssqlConfig, MssqlSource, SnapshotMode};
use mssql_sim::{SimConfig, Simulator};
use peak_alloc::PeakAlloc;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const PASSWORD: &str = "Bench-Passw0rd!";

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// The simulator process (this binary again, see [`serve`]), stopped when dropped.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child: a simulator holding `bench.dbo.items` with `ROWS` rows; prints its port and
/// serves until killed.
fn serve(rows: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sim = Simulator::start(SimConfig::new(PASSWORD).manual_capture().without_tls())
            .await
            .unwrap();
        let mut script = String::from(
            "CREATE DATABASE bench;\nGO\nUSE bench;\nEXEC sys.sp_cdc_enable_db;\nGO\n\
             USE bench;\nCREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL, amount decimal(18,2) NOT NULL);\nGO\n\
             USE bench;\nEXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;\nGO\n",
        );
        for ids in (0..rows).collect::<Vec<_>>().chunks(1000) {
            let values: Vec<String> = ids
                .iter()
                .map(|i| format!("({i}, N'item {}', {}.{:02})", i % 97, i % 100_000, i % 100))
                .collect();
            script.push_str(&format!(
                "USE bench;\nINSERT INTO dbo.items VALUES {};\nGO\n",
                values.join(", ")
            ));
        }
        sim.run_script(&script).unwrap();
        sim.scan();
        println!("{}", sim.addr().port());
        std::future::pending::<()>().await;
    });
}

/// One run: `rows` rows snapshotted in chunks of `chunk`; returns (peak bytes above the
/// baseline, rows read, seconds).
async fn run(rows: usize, chunk: u32) -> (usize, usize, f64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("INCREMENTAL_MEMORY_SIM_ROWS", rows.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _sim = Sim(child);
    let port: u16 = line.trim().parse().expect("the simulator's port");
    let config = MssqlConfig::builder()
        .host("127.0.0.1")
        .port(port)
        .user("sa")
        .password(PASSWORD)
        .database("bench")
        .encryption(Encryption::Off)
        .snapshot_mode(SnapshotMode::NoData)
        .heartbeat_interval(None)
        .poll_interval(std::time::Duration::from_millis(1))
        .build()
        .unwrap();
    let mut scanner = tiberius_client(port).await;
    let mut source = MssqlSource::new(config).incremental_chunk_size(chunk);
    source.start(None).await.unwrap();
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let baseline = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let started = Instant::now();
    let mut read = 0usize;
    // Bounded: every chunk needs a few steps (read, a capture scan, the window that passes
    // its read point).
    for _ in 0..(rows / chunk as usize + 10) * 20 {
        scanner
            .simple_query("EXEC sys.sp_cdc_scan")
            .await
            .unwrap()
            .into_results()
            .await
            .unwrap();
        let batch = source.next_batch().await.unwrap().unwrap();
        read += batch.events.iter().filter(|e| e.op == Op::Read).count();
        if read >= rows && source.incremental_snapshot_pending().is_empty() {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = ALLOCATOR.peak_usage().saturating_sub(baseline);
    source.close().await.unwrap();
    (peak, read, seconds)
}

async fn tiberius_client(
    port: u16,
) -> tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>> {
    use tokio_util::compat::TokioAsyncWriteCompatExt;
    let mut c = tiberius::Config::new();
    c.host("127.0.0.1");
    c.port(port);
    c.database("bench");
    c.authentication(tiberius::AuthMethod::sql_server("sa", PASSWORD));
    c.encryption(tiberius::EncryptionLevel::NotSupported);
    let tcp = tokio::net::TcpStream::connect(c.get_addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tiberius::Client::connect(c, tcp.compat_write())
        .await
        .unwrap()
}

fn main() {
    if let Some(rows) = std::env::var("INCREMENTAL_MEMORY_SIM_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        return serve(rows);
    }
    // `cargo test --all-targets` runs harness-less benches without `--bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!(
            "incremental_memory: a measurement, run it with `cargo bench -p cdc-mssql --bench incremental_memory`"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| rows | chunk | rows read | peak heap above baseline | time |");
    println!("|---|---|---|---|---|");
    for (rows, chunk) in [
        (10_000, 512),
        (40_000, 512),
        (80_000, 512),
        (40_000, 128),
        (40_000, 2048),
    ] {
        let (peak, read, seconds) = rt.block_on(run(rows, chunk));
        assert_eq!(read, rows, "every row was read");
        println!(
            "| {rows} | {chunk} | {read} | {:.0} KiB | {seconds:.1} s |",
            peak as f64 / 1024.0
        );
    }
}
