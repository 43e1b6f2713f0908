//! The `mssql-sim` binary: argument parsing, `--script`, and serving clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_runs_a_setup_script_and_serves() {
    let dir = std::env::temp_dir().join(format!("mssql-sim-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("setup.sql");
    std::fs::write(&script, "CREATE DATABASE app\nGO\nUSE app\nCREATE TABLE dbo.t (id int PRIMARY KEY)\nINSERT INTO dbo.t VALUES (1), (2), (3)\nGO\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .args([
            "--port",
            "0",
            "--sa-password",
            common::PASSWORD,
            "--capture-interval-ms",
            "0",
            "--script",
        ])
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let mut config = tiberius::Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(tiberius::AuthMethod::sql_server("sa", common::PASSWORD));
    config.encryption(tiberius::EncryptionLevel::NotSupported);
    config.database("app");
    let mut c = common::connect_with(config).await.unwrap();
    let row = c
        .simple_query("SELECT COUNT(*) FROM dbo.t")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(3));
    child.kill().unwrap();
    child.wait().unwrap();
    // bad arguments exit with status 2
    let status = Command::new(env!("CARGO_BIN_EXE_mssql-sim"))
        .arg("--bogus")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
