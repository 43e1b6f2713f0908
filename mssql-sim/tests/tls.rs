//! TLS negotiated in PRELOGIN: full encryption, and login-only encryption (ENCRYPT_OFF).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mssql_sim::{SimConfig, Simulator};
use tiberius::EncryptionLevel;

async fn roundtrip(sim: &Simulator, level: EncryptionLevel) {
    let mut config = common::config(sim, common::PASSWORD);
    config.encryption(level);
    config.trust_cert();
    let mut c = common::connect_with(config).await.unwrap();
    let big = "é".repeat(20_000);
    let row = c
        .query("SELECT @P1 AS s, DB_NAME() AS db", &[&big.as_str()])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>("s"), Some(big.as_str()));
    assert_eq!(row.get::<&str, _>("db"), Some("master"));
}

#[tokio::test]
async fn full_tls_when_the_client_requires_encryption() {
    let sim = common::start().await;
    roundtrip(&sim, EncryptionLevel::Required).await;
    sim.stop().await;
}

#[tokio::test]
async fn login_only_tls_when_the_client_says_off() {
    let sim = common::start().await;
    roundtrip(&sim, EncryptionLevel::Off).await;
    sim.stop().await;
}

#[tokio::test]
async fn without_tls_a_client_that_requires_it_is_refused() {
    let sim = Simulator::start(
        SimConfig::new(common::PASSWORD)
            .manual_capture()
            .without_tls(),
    )
    .await
    .unwrap();
    let mut config = common::config(&sim, common::PASSWORD);
    config.encryption(EncryptionLevel::Required);
    config.trust_cert();
    assert!(common::connect_with(config).await.is_err());
    sim.stop().await;
}

#[tokio::test]
async fn ado_connection_string_connects() {
    let sim = common::start().await;
    let config = tiberius::Config::from_ado_string(&sim.ado_connection_string()).unwrap();
    let mut c = common::connect_with(config).await.unwrap();
    common::exec(&mut c, "SELECT 1").await;
    sim.stop().await;
}
