//! Criterion benchmark: change rows streamed from `cdc.fn_cdc_get_all_changes_*` to one
//! tiberius client. Reports elements (change rows) per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::TryStreamExt;
use mssql_sim::{SimConfig, Simulator};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

const ROWS: usize = 250_000;

fn setup_script() -> String {
    let mut s = String::from(
        "CREATE DATABASE bench\nGO\nUSE bench\nCREATE TABLE dbo.events (id int NOT NULL PRIMARY KEY, kind nvarchar(20) NOT NULL, amount decimal(12,2) NULL, at datetime2(3) NULL)\n\
         EXEC sys.sp_cdc_enable_db\nEXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'events', @role_name = NULL\nGO\n",
    );
    for chunk in 0..ROWS / 1000 {
        s.push_str("USE bench\nINSERT INTO dbo.events VALUES ");
        for i in 0..1000 {
            let id = chunk * 1000 + i;
            if i > 0 {
                s.push(',');
            }
            write!(
                s,
                "({id}, N'kind{}', {}.25, '2024-01-01 00:00:00.000')",
                id % 7,
                id % 1000
            )
            .unwrap();
        }
        s.push_str("\nGO\n");
    }
    s
}

fn stream(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (sim, mut client) = rt.block_on(async {
        let sim = Simulator::start(SimConfig::new("Bench-Passw0rd!").manual_capture())
            .await
            .unwrap();
        sim.run_script(&setup_script()).unwrap();
        sim.scan();
        let mut cfg = Config::new();
        cfg.host("127.0.0.1");
        cfg.port(sim.addr().port());
        cfg.authentication(AuthMethod::sql_server("sa", "Bench-Passw0rd!"));
        cfg.encryption(EncryptionLevel::NotSupported);
        cfg.database("bench");
        let tcp = TcpStream::connect(cfg.get_addr()).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let client = Client::connect(cfg, tcp.compat_write()).await.unwrap();
        (sim, client)
    });
    let sql = "DECLARE @from binary(10) = sys.fn_cdc_get_min_lsn('dbo_events'), @to binary(10) = sys.fn_cdc_get_max_lsn();
               SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_events(@from, @to, N'all')";
    let mut g = c.benchmark_group("cdc_stream");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("fn_cdc_get_all_changes_250k_rows", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut s = client.simple_query(sql).await.unwrap().into_row_stream();
                let mut n = 0usize;
                while let Some(row) = s.try_next().await.unwrap() {
                    std::hint::black_box(row.get::<i32, _>("id"));
                    n += 1;
                }
                assert_eq!(n, ROWS);
            })
        })
    });
    g.finish();
    rt.block_on(sim.stop());
}

criterion_group!(benches, stream);
criterion_main!(benches);
