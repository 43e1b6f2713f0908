//! Our side of the Debezium comparison (`scripts/debezium-perf.sh`, docs/benchmarks.md): the
//! reader streams from an `mssql-sim` process the script started and loaded, and every event is
//! encoded with `DebeziumJson::with_schema()` (key and value, as Debezium's JsonConverter with
//! schemas does) into a sink that only counts events and bytes. Not a timed test: it prints one
//! line `perf {...}` with the events, encoded bytes, seconds, events/s, this process's peak
//! resident set (Linux `VmHWM`, kB) and its user + system CPU seconds (`/proc/self/stat`), over
//! its life and while the clock ran.
//!
//! Environment: `PERF_PORT` (the simulator's port), `PERF_PASSWORD` (sa's password),
//! `PERF_DATABASE`, `PERF_MODE` (`stream`: no snapshot, the start position is the capture job's
//! current end, then `EXEC sys.sp_cdc_scan` moves the backlog the simulator held back into the
//! change tables and the clock starts; `snapshot`: an initial snapshot, the clock starts with
//! the source), `PERF_EVENTS` (stop after this many events).
//!
//! ```sh
//! scripts/debezium-perf.sh stream 200000 2
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cdc_core::{ChangeSource, DebeziumJson, EventCodec};
use cdc_mssql::{Encryption, MssqlConfig, MssqlSource, SnapshotMode};
use std::time::Instant;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (`/proc/self/stat` fields 14 and 15, at the
/// kernel's USER_HZ of 100 ticks per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (see the bench's docs)"))
}

fn main() {
    // `cargo test --all-targets` runs harness-less benches without `--bench`: this one needs a
    // simulator the script started, so it only runs under `cargo bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("vs_debezium: a measurement, run it with scripts/debezium-perf.sh");
        return;
    }
    let port: u16 = env("PERF_PORT").parse().unwrap();
    let password = env("PERF_PASSWORD");
    let database = env("PERF_DATABASE");
    let stream = env("PERF_MODE") == "stream";
    let expected: usize = env("PERF_EVENTS").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = MssqlConfig::builder()
            .host("127.0.0.1")
            .port(port)
            .user("sa")
            .password(password.clone())
            .database(database.clone())
            .topic_prefix("server1")
            .encryption(Encryption::Off)
            .snapshot_mode(if stream {
                SnapshotMode::NoData
            } else {
                SnapshotMode::Initial
            })
            .heartbeat_interval(None)
            .build()
            .unwrap();
        let codec = DebeziumJson::with_schema();
        let mut source = MssqlSource::new(config);
        let mut started = Instant::now();
        let mut cpu_at_start = cpu_seconds();
        source.start(None).await.unwrap();
        if stream {
            let mut c = Config::new();
            c.host("127.0.0.1");
            c.port(port);
            c.database(database.clone());
            c.authentication(AuthMethod::sql_server("sa", &password));
            c.encryption(EncryptionLevel::NotSupported);
            let tcp = TcpStream::connect(c.get_addr()).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let mut client = Client::connect(c, tcp.compat_write()).await.unwrap();
            client
                .simple_query("EXEC sys.sp_cdc_scan")
                .await
                .unwrap()
                .into_results()
                .await
                .unwrap();
            started = Instant::now();
            cpu_at_start = cpu_seconds();
        }
        let (mut events, mut bytes) = (0usize, 0u64);
        while events < expected {
            let Some(batch) = source.next_batch().await.unwrap() else {
                break;
            };
            for event in &batch.events {
                let record = codec.encode(event).unwrap();
                bytes += record.key.as_ref().map_or(0, |k| k.len() as u64)
                    + record.value.as_ref().map_or(0, |v| v.len() as u64);
            }
            events += batch.events.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "perf {{\"side\":\"cdc-rs\",\"events\":{events},\"bytes\":{bytes},\"seconds\":{seconds:.3},\
             \"events_per_s\":{:.0},\"vm_hwm_kb\":{},\"cpu_s\":{:.2},\"cpu_clocked_s\":{:.2}}}",
            events as f64 / seconds,
            status_kb("VmHWM:"),
            cpu_seconds(),
            cpu_seconds() - cpu_at_start
        );
        source.close().await.unwrap();
    });
}
