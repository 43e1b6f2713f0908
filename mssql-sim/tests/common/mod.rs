//! Shared helpers: start a simulator and connect tiberius to it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

pub mod raw;

use mssql_sim::{SimConfig, Simulator};
use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

pub const PASSWORD: &str = "Sim-Passw0rd!";

pub type Conn = Client<Compat<TcpStream>>;

pub async fn start() -> Simulator {
    Simulator::start(SimConfig::new(PASSWORD).manual_capture())
        .await
        .unwrap()
}

pub fn config(sim: &Simulator, password: &str) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1");
    c.port(sim.addr().port());
    c.authentication(AuthMethod::sql_server("sa", password));
    // No TLS: tiberius only skips the TLS handshake when both sides say NOT_SUP.
    c.encryption(EncryptionLevel::NotSupported);
    c
}

pub async fn connect_with(config: Config) -> tiberius::Result<Conn> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

pub async fn connect(sim: &Simulator) -> Conn {
    connect_with(config(sim, PASSWORD)).await.unwrap()
}

/// Runs a batch, failing the test on any error.
pub async fn exec(c: &mut Conn, sql: &str) {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
}

/// Runs a batch and returns the first error.
pub async fn try_exec(c: &mut Conn, sql: &str) -> tiberius::Result<Vec<Vec<tiberius::Row>>> {
    c.simple_query(sql).await?.into_results().await
}

/// The message text of a failed call.
pub fn message(e: &tiberius::error::Error) -> String {
    match e {
        tiberius::error::Error::Server(t) => t.message().to_string(),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Server error number of a failed call.
pub fn err_number(e: &tiberius::error::Error) -> u32 {
    match e {
        tiberius::error::Error::Server(t) => t.code(),
        other => panic!("expected a server error, got {other:?}"),
    }
}
