//! Handshake: PRELOGIN, LOGIN7 with SQL authentication, LOGINACK and ENVCHANGE.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[tokio::test]
async fn sa_logs_in_and_runs_a_batch() {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    let row = c
        .simple_query("SELECT 1 AS one, DB_NAME() AS db")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>("one"), Some(1));
    assert_eq!(row.get::<&str, _>("db"), Some("master"));
    sim.stop().await;
}

#[tokio::test]
async fn wrong_password_fails_with_18456() {
    let sim = common::start().await;
    let err = common::connect_with(common::config(&sim, "nope"))
        .await
        .unwrap_err();
    assert_eq!(common::err_number(&err), 18456);
    if let tiberius::error::Error::Server(t) = &err {
        assert_eq!(t.class(), 14);
    }
    sim.stop().await;
}

#[tokio::test]
async fn login_to_a_missing_database_fails_with_4060_and_an_existing_one_is_used() {
    let sim = common::start().await;
    let mut config = common::config(&sim, common::PASSWORD);
    config.database("nope");
    let err = common::connect_with(config).await.unwrap_err();
    assert_eq!(common::err_number(&err), 4060);
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, "CREATE DATABASE there").await;
    let mut config = common::config(&sim, common::PASSWORD);
    config.database("there");
    let mut c = common::connect_with(config).await.unwrap();
    let row = c
        .simple_query("SELECT DB_NAME()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("there"));
    sim.stop().await;
}
