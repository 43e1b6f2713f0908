//! An independent TDS client: FreeTDS `tsql` (Debian package freetds-bin) logs in, runs a
//! T-SQL workload and reads typed values. Fails loudly when `tsql` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn tsql(port: u16, password: &str, script: &str) -> String {
    let mut child = Command::new("tsql")
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "sa",
            "-P",
            password,
        ])
        .env("TDSVER", "7.4")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("FreeTDS `tsql` must be installed for this test: apt-get install -y freetds-bin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const WORKLOAD: &str = "CREATE DATABASE shop
go
USE shop
go
SELECT DB_NAME() AS current_db
go
CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(40), price decimal(10,2), qty bigint, ok bit, made date, at datetime2(3), g uniqueidentifier, blob varbinary(8))
go
INSERT INTO dbo.items VALUES (1, N'Grüße', 12.50, 9000000000, 1, '2024-03-01', '2024-03-01 10:11:12.345', '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0xCAFE), (2, N'plain', NULL, NULL, 0, NULL, NULL, NULL, NULL)
go
UPDATE dbo.items SET price = price * 2 WHERE id = 1
go
SELECT id, name, price, qty, ok, g, blob FROM dbo.items ORDER BY id
go
SELECT COUNT(*) AS n, MAX(price) AS top_price FROM dbo.items
go
SELECT * FROM dbo.missing
go
exit
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freetds_tsql_runs_a_workload() {
    let sim = common::start().await;
    let port = sim.addr().port();
    let out = tokio::task::spawn_blocking(move || tsql(port, common::PASSWORD, WORKLOAD))
        .await
        .unwrap();
    println!("{out}");
    assert!(out.contains("current_db\nshop"), "{out}");
    assert!(
        out.contains("1\tGrüße\t25.00\t9000000000\t1\t6F9619FF-8B86-D011-B42D-00C04FC964FF\tcafe"),
        "{out}"
    );
    assert!(out.contains("2\tplain\tNULL\tNULL\t0\tNULL\tNULL"), "{out}");
    assert!(out.contains("2\t25.00"), "{out}");
    assert!(
        out.contains("Msg 208") && out.contains("Invalid object name 'dbo.missing'"),
        "{out}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freetds_login_with_wrong_password_is_refused() {
    let sim = common::start().await;
    let port = sim.addr().port();
    let out = tokio::task::spawn_blocking(move || tsql(port, "wrong", "SELECT 1\ngo\nexit\n"))
        .await
        .unwrap();
    assert!(
        out.contains("18456") || out.contains("Login failed"),
        "{out}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freetds_with_required_encryption_uses_tls_throughout() {
    let sim = common::start().await;
    let port = sim.addr().port();
    let dir = std::env::temp_dir().join(format!("mssql-sim-freetds-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("freetds.conf");
    std::fs::write(&conf, format!("[sim]\n\thost = 127.0.0.1\n\tport = {port}\n\ttds version = 7.4\n\tencryption = require\n")).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("tsql")
            .args(["-S", "sim", "-U", "sa", "-P", common::PASSWORD])
            .env("FREETDSCONF", &conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "FreeTDS `tsql` must be installed for this test: apt-get install -y freetds-bin",
            );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"SELECT N'encrypted' AS s, 40 + 2 AS n\ngo\nexit\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap();
    assert!(out.contains("encrypted\t42"), "{out}");
    sim.stop().await;
}
