//! Reader throughput against the simulator: the CDC reader (decode, merge, pairing, event
//! building) compared with a plain tiberius `SELECT` of the same change table.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use cdc_core::ChangeSource;
use cdc_mssql::{Encryption, MssqlConfig, MssqlSource, SnapshotMode};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mssql_sim::{SimConfig, Simulator};
use std::time::{Duration, Instant};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

const PASSWORD: &str = "Bench-Passw0rd!";
const ROWS: usize = 20_000;

async fn connect(sim: &Simulator, database: &str) -> Client<tokio_util::compat::Compat<TcpStream>> {
    let mut c = Config::new();
    c.host("127.0.0.1");
    c.port(sim.addr().port());
    c.database(database);
    c.authentication(AuthMethod::sql_server("sa", PASSWORD));
    c.encryption(EncryptionLevel::NotSupported);
    let tcp = TcpStream::connect(c.get_addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    Client::connect(c, tcp.compat_write()).await.unwrap()
}

async fn setup() -> Simulator {
    let sim = Simulator::start(SimConfig::new(PASSWORD).manual_capture())
        .await
        .unwrap();
    let mut master = connect(&sim, "master").await;
    master
        .simple_query("CREATE DATABASE bench")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let mut c = connect(&sim, "bench").await;
    c.simple_query(
        "EXEC sys.sp_cdc_enable_db;
         CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, customer nvarchar(50) NOT NULL, amount decimal(18,2) NOT NULL, placed datetime2(7) NOT NULL, note nvarchar(100) NULL);
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL;",
    )
    .await
    .unwrap()
    .into_results()
    .await
    .unwrap();
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "({i}, N'customer {}', {}.{:02}, '2024-05-17T08:30:00.1234567', N'note {i}')",
                    i % 97,
                    i * 3,
                    i % 100
                )
            })
            .collect();
        let sql = format!(
            "BEGIN TRAN; INSERT INTO dbo.orders VALUES {}; COMMIT;",
            values.join(", ")
        );
        c.simple_query(sql)
            .await
            .unwrap()
            .into_results()
            .await
            .unwrap();
    }
    c.simple_query("EXEC sys.sp_cdc_scan")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    sim
}

/// A started source (connected, catalog loaded): set-up the timing leaves out.
async fn started_source(sim: &Simulator) -> MssqlSource {
    let config = MssqlConfig::builder()
        .host("127.0.0.1")
        .port(sim.addr().port())
        .user("sa")
        .password(PASSWORD)
        .database("bench")
        .encryption(Encryption::Off)
        .snapshot_mode(SnapshotMode::NoData)
        .stream_from_earliest(true)
        .heartbeat_interval(None)
        .build()
        .unwrap();
    let mut source = MssqlSource::new(config);
    source.start(None).await.unwrap();
    source
}

/// Reads every change row as events.
async fn read_with_source(mut source: MssqlSource) -> usize {
    let mut n = 0;
    while n < ROWS {
        n += source.next_batch().await.unwrap().unwrap().events.len();
    }
    source.close().await.unwrap();
    n
}

/// Reads every change row with one plain query on a connected client.
async fn read_with_select(mut c: Client<tokio_util::compat::Compat<TcpStream>>) -> usize {
    let rows = c
        .simple_query("SELECT * FROM cdc.dbo_orders_CT")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(setup());
    let mut group = c.benchmark_group("change_table_20k_rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.bench_function("cdc_reader", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let source = rt.block_on(started_source(&sim));
                let start = Instant::now();
                assert_eq!(rt.block_on(read_with_source(source)), ROWS);
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("plain_tiberius_select", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let client = rt.block_on(connect(&sim, "bench"));
                let start = Instant::now();
                assert_eq!(rt.block_on(read_with_select(client)), ROWS);
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
    rt.block_on(sim.stop());
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
