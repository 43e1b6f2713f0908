//! Scenario files: batches separated by GO, run through tiberius against the simulator, or
//! against a real SQL Server when MSSQL_URL (an ADO.NET connection string) is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mssql_sim::Scenario;
use tokio::net::TcpStream;
use tokio_util::compat::TokioAsyncWriteCompatExt;

/// Runs every batch of `scenario` and returns the result sets of the last one.
async fn run(c: &mut common::Conn, scenario: &Scenario) -> Vec<Vec<tiberius::Row>> {
    let mut last = Vec::new();
    for b in &scenario.batches {
        last = c
            .simple_query(b.as_str())
            .await
            .unwrap()
            .into_results()
            .await
            .unwrap_or_else(|e| panic!("batch failed: {e}\n{b}"));
    }
    last
}

#[tokio::test]
async fn cdc_scenario_file_runs_against_the_simulator_or_mssql_url() {
    let scenario = Scenario::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/cdc_basic.sql"
    ))
    .unwrap();
    assert!(scenario.batches.len() >= 4);
    let (sim, mut c) = match std::env::var("MSSQL_URL") {
        Ok(url) => {
            let config = tiberius::Config::from_ado_string(&url).unwrap();
            let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            (
                None,
                tiberius::Client::connect(config, tcp.compat_write())
                    .await
                    .unwrap(),
            )
        }
        Err(_) => {
            let sim = common::start().await;
            let c = common::connect(&sim).await;
            (Some(sim), c)
        }
    };
    let sets = run(&mut c, &scenario).await;
    let ops: Vec<i32> = sets
        .last()
        .unwrap()
        .iter()
        .map(|r| r.get::<i32, _>("__$operation").unwrap())
        .collect();
    assert_eq!(ops, vec![2, 2, 3, 4, 1]);
    if let Some(sim) = sim {
        sim.stop().await;
    }
}

#[tokio::test]
async fn scripts_run_in_process_too() {
    let sim = common::start().await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scenarios/cdc_basic.sql"
    ))
    .unwrap();
    sim.run_script(&text).unwrap();
    let err = sim.run_script("SELECT * FROM nowhere").unwrap_err();
    assert!(
        err.to_string().contains("Invalid object name 'nowhere'"),
        "{err}"
    );
    sim.stop().await;
}
