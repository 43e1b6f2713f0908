//! Test support: a SQL Server to run scenarios against — the simulator, or a real server when
//! `MSSQL_URL` (an ADO.NET connection string with a sysadmin login) is set — and helpers to
//! read events from the source.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use cdc_core::{ChangeEvent, ChangeSource, Checkpoint, SourceBatch};
use cdc_mssql::{Encryption, MssqlConfig, MssqlConfigBuilder, MssqlSource, SnapshotMode};
use mssql_sim::{SimConfig, Simulator};
use std::time::Duration;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub const PASSWORD: &str = "Sim-Passw0rd!";

pub type Conn = Client<Compat<TcpStream>>;

/// Where scenarios run.
pub struct Target {
    pub sim: Option<Simulator>,
    ado: String,
    pub database: String,
}

impl Target {
    /// A fresh database `name`, with CDC enabled on it, on the simulator (manual capture) or
    /// on `MSSQL_URL`.
    pub async fn new(name: &str) -> Target {
        Self::with_simulator(name, SimConfig::new(PASSWORD).manual_capture()).await
    }

    /// As [`Target::new`], on a simulator started with `config` unless `MSSQL_URL` is set.
    pub async fn with_simulator(name: &str, config: SimConfig) -> Target {
        let (sim, ado) = match std::env::var("MSSQL_URL") {
            Ok(url) => (None, url),
            Err(_) => {
                let sim = Simulator::start(config).await.unwrap();
                let ado = format!(
                    "Server=tcp:127.0.0.1,{};User Id=sa;Password={PASSWORD};Encrypt=off",
                    sim.addr().port()
                );
                (Some(sim), ado)
            }
        };
        let target = Target {
            sim,
            ado,
            database: name.to_string(),
        };
        let mut master = target.connect_to("master").await;
        exec(
            &mut master,
            &format!("IF DB_ID(N'{name}') IS NOT NULL DROP DATABASE [{name}];"),
        )
        .await
        .ok();
        exec(&mut master, &format!("CREATE DATABASE [{name}];"))
            .await
            .unwrap();
        let mut db = target.connect().await;
        exec(&mut db, "EXEC sys.sp_cdc_enable_db;").await.unwrap();
        target
    }

    /// A fresh database holding the `orders` scenario (customers and orders, CDC enabled).
    pub async fn with_orders(name: &str) -> Target {
        let target = Target::new(name).await;
        target.scenario("orders").await;
        target
    }

    /// A configuration that streams from the current end of the log, without a snapshot.
    pub fn streaming(&self) -> MssqlConfigBuilder {
        self.config().snapshot_mode(SnapshotMode::NoData)
    }

    /// A started source of [`Target::streaming`].
    pub async fn streaming_source(&self) -> MssqlSource {
        self.source(self.streaming().build().unwrap(), None).await
    }

    fn tiberius_config(&self, database: &str) -> Config {
        let mut config = match &self.sim {
            Some(sim) => {
                let mut c = Config::new();
                c.host("127.0.0.1");
                c.port(sim.addr().port());
                c.authentication(AuthMethod::sql_server("sa", PASSWORD));
                c.encryption(EncryptionLevel::NotSupported);
                c
            }
            None => Config::from_ado_string(&self.ado).unwrap(),
        };
        config.database(database);
        config
    }

    pub async fn connect_to(&self, database: &str) -> Conn {
        let config = self.tiberius_config(database);
        let tcp = TcpStream::connect(config.get_addr()).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        Client::connect(config, tcp.compat_write()).await.unwrap()
    }

    /// A connection to the test database.
    pub async fn connect(&self) -> Conn {
        self.connect_to(&self.database).await
    }

    /// Runs a T-SQL script (batches separated by `GO`) in the test database.
    pub async fn run(&self, script: &str) {
        let mut conn = self.connect().await;
        for batch in split_go(script) {
            exec(&mut conn, &batch)
                .await
                .unwrap_or_else(|e| panic!("{e}\nin batch:\n{batch}"));
        }
    }

    /// Runs the scenario file `tests/scenarios/<name>.sql`.
    pub async fn scenario(&self, name: &str) {
        let path = format!("{}/tests/scenarios/{name}.sql", env!("CARGO_MANIFEST_DIR"));
        self.run(&std::fs::read_to_string(&path).unwrap()).await;
    }

    /// Makes the capture job process the log now.
    pub async fn scan(&self) {
        self.run("EXEC sys.sp_cdc_scan;").await;
    }

    /// A source configuration for the test database.
    pub fn config(&self) -> MssqlConfigBuilder {
        let builder = MssqlConfig::from_ado_string(&self.ado)
            .unwrap()
            .database(self.database.clone())
            .topic_prefix("test");
        let builder = if self.sim.is_some() {
            builder.encryption(Encryption::Off)
        } else {
            builder
        };
        builder
            .poll_interval(Duration::from_millis(20))
            .heartbeat_interval(None)
    }

    /// A started source.
    pub async fn source(
        &self,
        config: MssqlConfig,
        checkpoint: Option<&Checkpoint>,
    ) -> MssqlSource {
        let mut source = MssqlSource::new(config);
        source.start(checkpoint).await.unwrap();
        source
    }
}

/// Splits a script at lines holding only `GO`, as SQL Server tools do.
pub fn split_go(script: &str) -> Vec<String> {
    let mut batches = vec![String::new()];
    for line in script.lines() {
        if line.trim().eq_ignore_ascii_case("go") {
            batches.push(String::new());
        } else if let Some(last) = batches.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    batches
        .into_iter()
        .filter(|b| !b.trim().is_empty())
        .collect()
}

pub async fn exec(conn: &mut Conn, sql: &str) -> tiberius::Result<Vec<Vec<tiberius::Row>>> {
    conn.simple_query(sql).await?.into_results().await
}

/// Reads batches until `n` events arrived (or panics after a few seconds of nothing).
pub async fn read_events(source: &mut MssqlSource, n: usize) -> Vec<ChangeEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} events, got {}: {events:#?}",
            events.len()
        );
        match source.next_batch().await.unwrap() {
            Some(batch) => events.extend(batch.events),
            None => break,
        }
    }
    events
}

/// Reads batches for a while and returns everything (for "nothing more arrives" checks).
pub async fn drain(source: &mut MssqlSource, polls: usize) -> Vec<SourceBatch> {
    let mut batches = Vec::new();
    for _ in 0..polls {
        match source.next_batch().await.unwrap() {
            Some(batch) => batches.push(batch),
            None => break,
        }
    }
    batches
}

/// `(op, key)` of each event, for compact assertions.
pub fn ops(events: &[ChangeEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                format!("{}:{}", e.table.id.table, e.op),
                format!("{:?}", e.key().unwrap_or_default()),
            )
        })
        .collect()
}

/// An `int` column's value (panics on anything else: a test's table has the type it declares).
pub fn int(v: &cdc_core::Value) -> i32 {
    match v {
        cdc_core::Value::I32(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}
