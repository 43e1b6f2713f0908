//! Peak memory of the reader on one very large transaction: `ROWS` (default 5 000 000) rows
//! inserted in a single transaction, streamed through `MssqlSource` into a counting sink.
//! Not a timed test: it prints the reader process's peak resident set size (Linux `VmHWM`),
//! measured from just before the source starts to the last event.
//!
//! The simulator runs as its own process (the release `mssql-sim` binary), so its memory —
//! it holds the table, the log and the change table — is not counted against the reader:
//!
//! ```sh
//! cargo build --release -p mssql-sim --bin mssql-sim
//! ROWS=5000000 cargo bench -p cdc-mssql --bench large_transaction
//! ```
//!
//! `MSSQL_SIM_BIN` overrides the simulator binary's path (default
//! `target/release/mssql-sim`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cdc_core::ChangeSource;
use cdc_mssql::{Encryption, MssqlConfig, MssqlSource, SnapshotMode};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

const PASSWORD: &str = "Bench-Passw0rd!";

type Conn = Client<Compat<TcpStream>>;

/// The simulator process, stopped when dropped.
struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn pid_rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn connect(port: u16, database: &str) -> Option<Conn> {
    let mut c = Config::new();
    c.host("127.0.0.1");
    c.port(port);
    c.database(database);
    c.authentication(AuthMethod::sql_server("sa", PASSWORD));
    c.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(c.get_addr()).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    Client::connect(c, tcp.compat_write()).await.ok()
}

async fn exec(c: &mut Conn, sql: &str) {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
}

fn main() {
    // `cargo test --all-targets` runs harness-less benches without `--bench`: this one
    // measures minutes of work against a separately built simulator, so it only runs
    // under `cargo bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!(
            "large_transaction: a measurement, run it with `cargo bench -p cdc-mssql --bench large_transaction`"
        );
        return;
    }
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let page: u32 = std::env::var("PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let bin = std::env::var("MSSQL_SIM_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| format!("{}/../target", env!("CARGO_MANIFEST_DIR")));
        format!("{target}/release/mssql-sim")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args([
            "--port",
            &port.to_string(),
            "--sa-password",
            PASSWORD,
            "--capture-interval-ms",
            "0",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin} (build it with `cargo build --release -p mssql-sim`): {e}")
        });
    let sim = Sim(child);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Wait (bounded) for the simulator to accept logins.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut master = loop {
            if let Some(c) = connect(port, "master").await {
                break c;
            }
            assert!(Instant::now() < deadline, "the simulator did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        exec(&mut master, "CREATE DATABASE big").await;
        let mut c = connect(port, "big").await.unwrap();
        exec(
            &mut c,
            "EXEC sys.sp_cdc_enable_db;
             CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL, amount decimal(18,2) NOT NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;",
        )
        .await;

        let config = MssqlConfig::builder()
            .host("127.0.0.1")
            .port(port)
            .user("sa")
            .password(PASSWORD)
            .database("big")
            .encryption(Encryption::Off)
            .snapshot_mode(SnapshotMode::NoData)
            .page_size(page)
            .heartbeat_interval(None)
            .build()
            .unwrap();
        let mut source = MssqlSource::new(config);
        source.start(None).await.unwrap();

        let load = Instant::now();
        exec(&mut c, "BEGIN TRANSACTION").await;
        for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
            let values: Vec<String> = chunk
                .iter()
                .map(|i| format!("({i}, N'item {}', {}.{:02})", i % 97, i % 100_000, i % 100))
                .collect();
            exec(
                &mut c,
                &format!("INSERT INTO dbo.items VALUES {}", values.join(", ")),
            )
            .await;
        }
        exec(&mut c, "COMMIT TRANSACTION").await;
        exec(&mut c, "EXEC sys.sp_cdc_scan").await;
        eprintln!(
            "loaded {rows} rows in one transaction in {:.1} s; simulator RSS {} MB",
            load.elapsed().as_secs_f64(),
            pid_rss_kb(sim.0.id(), "VmRSS:") / 1024
        );

        // Peak RSS from here on: Linux resets VmHWM to the current RSS on "5".
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_kb("VmRSS:");
        let read = Instant::now();
        let (mut events, mut batches, mut largest) = (0usize, 0usize, 0usize);
        while events < rows {
            let batch = source.next_batch().await.unwrap().unwrap();
            largest = largest.max(batch.events.len());
            events += batch.events.len();
            batches += usize::from(!batch.events.is_empty());
        }
        let peak = status_kb("VmHWM:");
        println!(
            "large_transaction: {events} events in {batches} batches (largest {largest}) in {:.1} s; \
             reader RSS before {} MB, peak while reading {} MB (page_size {page})",
            read.elapsed().as_secs_f64(),
            before / 1024,
            peak / 1024
        );
        source.close().await.unwrap();
    });
    drop(sim);
}
