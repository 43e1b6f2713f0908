//! Where SQL Server refuses, the simulator refuses with the same error number and text; where
//! it returns a value, the simulator returns the same value (issue 12). Texts are SQL Server
//! 2022's sys.messages (language 1033) with their `%.*ls` arguments filled in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{connect, err_number, exec, try_exec};

/// The message text of a failed call.
fn message(e: &tiberius::error::Error) -> String {
    match e {
        tiberius::error::Error::Server(t) => t.message().to_string(),
        other => panic!("expected a server error, got {other:?}"),
    }
}

async fn int_rows(c: &mut common::Conn, sql: &str) -> Vec<Option<i64>> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.try_get::<u8, _>(0)
                .map(|v| v.map(i64::from))
                .or_else(|_| r.try_get::<i32, _>(0).map(|v| v.map(i64::from)))
                .or_else(|_| r.try_get::<i64, _>(0))
                .unwrap()
        })
        .collect()
}

const SNAPSHOT_OFF_3952: &str = "Snapshot isolation transaction failed accessing database 'shop' because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.";

#[tokio::test]
async fn snapshot_isolation_is_off_in_a_new_database_and_a_snapshot_read_fails_with_3952() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        [Some(0)]
    );
    // master and msdb have it on in a stock installation; model (the template) has it off.
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name IN ('master', 'model', 'msdb') ORDER BY name"
        )
        .await,
        [Some(1), Some(0), Some(1)]
    );
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3952);
    assert_eq!(message(&e), SNAPSHOT_OFF_3952);
    // An autocommit statement under SNAPSHOT is refused the same way.
    exec(&mut c, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").await;
    let e = try_exec(&mut c, "SELECT id FROM dbo.t").await.unwrap_err();
    assert_eq!(err_number(&e), 3952);
    sim.stop().await;
}

#[tokio::test]
async fn alter_database_set_allow_snapshot_isolation_turns_it_on_and_off() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; USE shop; CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);
         ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON;",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()"
        )
        .await,
        [Some(1)]
    );
    assert_eq!(
        int_rows(
            &mut c,
            "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION; SELECT id FROM dbo.t;"
        )
        .await,
        [Some(1)]
    );
    exec(
        &mut c,
        "COMMIT TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED;",
    )
    .await;
    exec(
        &mut c,
        "ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION OFF",
    )
    .await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()"
        )
        .await,
        [Some(0)]
    );
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3952);
    sim.stop().await;
}

#[tokio::test]
async fn alter_database_inside_a_transaction_fails_with_226() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(&mut c, "CREATE DATABASE shop; USE shop;").await;
    let e = try_exec(
        &mut c,
        "BEGIN TRANSACTION; ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 226);
    exec(&mut c, "ROLLBACK TRANSACTION").await;
    assert_eq!(
        int_rows(
            &mut c,
            "SELECT snapshot_isolation_state FROM sys.databases WHERE name = 'shop'"
        )
        .await,
        [Some(0)]
    );
    sim.stop().await;
}

#[tokio::test]
async fn switching_to_snapshot_inside_a_transaction_begun_under_another_level_fails_with_3951() {
    let sim = common::start().await;
    let mut c = connect(&sim).await;
    exec(
        &mut c,
        "CREATE DATABASE shop; ALTER DATABASE shop SET ALLOW_SNAPSHOT_ISOLATION ON; USE shop;
         CREATE TABLE dbo.t (id int PRIMARY KEY); INSERT INTO dbo.t VALUES (1);",
    )
    .await;
    let e = try_exec(
        &mut c,
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; BEGIN TRANSACTION;
         SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT id FROM dbo.t;",
    )
    .await
    .unwrap_err();
    assert_eq!(err_number(&e), 3951);
    assert_eq!(
        message(&e),
        "Transaction failed in database 'shop' because the statement was run under snapshot isolation but the transaction did not start in snapshot isolation. You cannot change the isolation level of the transaction to snapshot after the transaction has started unless the transaction was originally started under snapshot isolation level."
    );
    // Back under the level it began with, the transaction reads.
    assert_eq!(
        int_rows(
            &mut c,
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SELECT id FROM dbo.t;"
        )
        .await,
        [Some(1)]
    );
    exec(&mut c, "COMMIT TRANSACTION").await;
    sim.stop().await;
}
