//! Microsoft's JDBC driver (mssql-jdbc, Maven Central) as an independent client of the
//! simulator, run through `scripts/debezium.sh jdbc`: login without TLS, with TLS inside PRELOGIN
//! (TDS 7.x) and with TDS 8.0 strict TLS, a statement,
//! prepared statements (the driver sends sp_executesql, then sp_prepexec, then sp_execute), and
//! the DatabaseMetaData calls Debezium makes (getTables, getColumns, getPrimaryKeys).
//! Fails loudly when Java or Maven is missing (scripts/setup.sh installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/debezium.sh")
}

/// Runs the JDBC probe against `port`; returns its stdout, failing with its output otherwise.
fn probe(port: u16, encrypt: &str) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args([
            "jdbc",
            "127.0.0.1",
            &port.to_string(),
            common::PASSWORD,
            "shop",
            encrypt,
        ])
        .output()
        .expect("bash runs scripts/debezium.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the JDBC probe failed (Java and Maven come from scripts/setup.sh)\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mssql_jdbc_logs_in_runs_prepared_statements_and_reads_metadata() {
    let sim = common::start().await;
    sim.run_script(
        "CREATE DATABASE shop\nGO\nUSE shop\nGO\nCREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(40), price decimal(10,2))",
    )
    .unwrap();
    let port = sim.addr().port();
    // TDS 8.0 strict: mssql-jdbc pins the simulator's certificate (`serverCertificate`; Strict
    // ignores trustServerCertificate) — a second, independent client of the strict handshake.
    let pinned =
        std::env::temp_dir().join(format!("mssql-sim-jdbc-{}-{port}.pem", std::process::id()));
    std::fs::write(&pinned, sim.server_certificate_pem().unwrap()).unwrap();
    let strict = format!("strict;serverCertificate={}", pinned.display());
    for encrypt in ["false".to_string(), "true".to_string(), strict] {
        let label = encrypt.clone();
        let out = tokio::task::spawn_blocking(move || probe(port, &encrypt))
            .await
            .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0], "product: Microsoft SQL Server 16.00.1000",
            "{out}"
        );
        assert_eq!(
            &lines[2..],
            &[
                "statement: shop 42",
                "prepared 1: 11 row1",
                "prepared 2: 21 row2",
                "prepared 3: 31 row3",
                "prepared 4: 41 row4",
                "prepared db 0: shop",
                "prepared db 1: shop",
                "prepared db 2: shop",
                "catalog: shop",
                "autocommit: true",
                "trancount in manual commit: 0",
                "isolation: 2",
                "tables: TABLE_NAME=items",
                "columns: COLUMN_NAME=id TYPE_NAME=int COLUMN_SIZE=10 IS_NULLABLE=NO",
                "columns: COLUMN_NAME=name TYPE_NAME=nvarchar COLUMN_SIZE=40 IS_NULLABLE=YES",
                "columns: COLUMN_NAME=price TYPE_NAME=decimal COLUMN_SIZE=10 IS_NULLABLE=YES",
                "primary keys: TABLE_NAME=items COLUMN_NAME=id KEY_SEQ=1",
                "ok",
            ],
            "encrypt={label}"
        );
    }
    std::fs::remove_file(&pinned).ok();
    sim.stop().await;
}
