//! `cdc check` against the simulator: what would be captured, and each problem with its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_connect::config::PipelineFile;
use mssql_sim::{SimConfig, Simulator};

const SETUP: &str = "CREATE DATABASE shop
GO
CREATE DATABASE plain
GO
USE shop
GO
EXEC sys.sp_cdc_enable_db
GO
CREATE TYPE dbo.Phone FROM nvarchar(20) NULL
GO
CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NOT NULL, phone dbo.Phone)
GO
CREATE TABLE dbo.audit (at datetime2 NOT NULL, note nvarchar(100) NULL)
GO
CREATE TABLE dbo.pending (id int NOT NULL PRIMARY KEY)
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'audit', @role_name = NULL
GO
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_capture_and_each_problem_with_its_fix() {
    // Manual capture: the capture job never ran, so there is no max LSN yet.
    let sim = Simulator::start(SimConfig::new("Check-Passw0rd!").manual_capture())
        .await
        .unwrap();
    tokio::task::block_in_place(|| sim.run_script(SETUP).unwrap());
    let lake = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[source.mssql]
connection = "${{ADO}};Database=shop,plain"
topic_prefix = "erp"
include_tables = ["dbo.items", "dbo.audit", "dbo.pending", "dbo.itmes"]

[sink.s3]
url = "file://{}"

[offsets]
file = "/tmp/unused.json"
"#,
        lake.path().display()
    );
    let ado = sim.ado_connection_string();
    let file = PipelineFile::parse(&text, "check.toml", |_| Some(ado.clone())).unwrap();
    let report = cdc_connect::check::check(&file).await;
    let rendered = report.render();

    let items = report
        .captured
        .iter()
        .find(|l| l.starts_with("shop.dbo.items:"))
        .unwrap_or_else(|| panic!("{rendered}"));
    assert!(items.contains("capture instance dbo_items"), "{items}");
    assert!(items.contains("key (id)"), "{items}");
    assert!(
        items.contains("id int") && items.contains("name nvarchar"),
        "{items}"
    );
    // An alias-typed column is listed by its base type, as the reader reads it.
    assert!(items.contains("phone nvarchar"), "{items}");
    assert!(
        report.captured.iter().any(|l| l.contains("is reachable")),
        "{rendered}"
    );

    let fixes: Vec<&str> = report.problems.iter().map(|p| p.fix.as_str()).collect();
    let has = |needle: &str| fixes.iter().any(|f| f.contains(needle));
    // shop has snapshot isolation off, as every new database does; with the isolation unset
    // the reader uses REPEATABLE READ there, so that is no problem.
    assert!(!has("ALLOW_SNAPSHOT_ISOLATION"), "{rendered}");
    assert!(has("USE [plain]; EXEC sys.sp_cdc_enable_db;"), "{rendered}");
    assert!(
        has("EXEC sys.sp_cdc_start_job @job_type = N'capture'"),
        "{rendered}"
    );
    assert!(has("@source_name = N'pending'"), "{rendered}");
    // A typo in include_tables matches no table of any database: said, with the closest name.
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("\"dbo.itmes\" matches no table")
                && p.fix.contains("did you mean dbo.items?")),
        "{rendered}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("shop.dbo.audit has no primary key")),
        "{rendered}"
    );

    // A configured SNAPSHOT isolation on a database without it would fail with 3952.
    let text = text.replace(
        r#"topic_prefix = "erp""#,
        "topic_prefix = \"erp\"\nsnapshot_isolation = \"snapshot\"",
    );
    let file = PipelineFile::parse(&text, "check.toml", |_| Some(ado.clone())).unwrap();
    let report = cdc_connect::check::check(&file).await;
    let rendered = report.render();
    assert!(
        report.problems.iter().any(|p| p
            .fix
            .contains("ALTER DATABASE [shop] SET ALLOW_SNAPSHOT_ISOLATION ON;")),
        "{rendered}"
    );
    sim.stop().await;
}

/// The `[source.mssql]` section of a check file for `connection`, reading `shop`.
fn connection_only(connection: &str) -> PipelineFile {
    let text = format!(
        r#"
[source.mssql]
connection = "{connection};Database=shop"
topic_prefix = "erp"

[sink.s3]
url = "file:///tmp/cdc-check-unused"

[offsets]
file = "/tmp/unused.json"
"#
    );
    PipelineFile::parse(&text, "check.toml", |_| None).unwrap()
}

/// `cdc check` connects as the reader does (cdc-mssql's `ServerConnection`): `Encrypt=Optional`
/// logs in to a server with a self-signed certificate without validating it, as
/// Microsoft.Data.SqlClient does and `cdc run` did — check had tiberius settings of its own
/// that refused it —; and a server that accepts and never answers is a timeout naming the
/// pre-login handshake after `Connect Timeout`, where check waited without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connects_with_the_readers_encryption_rules_and_timeouts() {
    let sim = Simulator::start(SimConfig::new("Check-Passw0rd!"))
        .await
        .unwrap();
    tokio::task::block_in_place(|| sim.run_script(SETUP).unwrap());
    let optional = connection_only(&format!(
        "server=tcp:127.0.0.1,{};user id=sa;password=Check-Passw0rd!;Encrypt=Optional",
        sim.addr().port()
    ));
    let report = cdc_connect::check::check(&optional).await;
    let rendered = report.render();
    assert!(
        report
            .captured
            .iter()
            .any(|l| l.starts_with("shop.dbo.items:")),
        "{rendered}"
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.what.contains("database shop")),
        "{rendered}"
    );

    // A refused login says why (the server's error 18456 and its text), not only "SQL Server
    // error in database": check showed the top-level message alone.
    let wrong = connection_only(&format!(
        "server=tcp:127.0.0.1,{};user id=sa;password=Wrong-Passw0rd!;Encrypt=Optional",
        sim.addr().port()
    ));
    let report = cdc_connect::check::check(&wrong).await;
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("database shop")
                && p.what.contains("Login failed for user 'sa'")),
        "{}",
        report.render()
    );

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mute = connection_only(&format!(
        "server=tcp:127.0.0.1,{port};user id=sa;password=x;Encrypt=Optional;Connect Timeout=1"
    ));
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        cdc_connect::check::check(&mute),
    )
    .await
    .expect("check is bounded by Connect Timeout");
    let rendered = report.render();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("database shop") && p.what.contains("pre-login handshake")),
        "{rendered}"
    );
    held.abort();
}

/// `cdc check` of a Kafka → S3 file refuses what `cdc run` refuses without connecting
/// (`max_records = 0`: it passed with "no problems found") and checks the Kafka source's
/// brokers (it checked nothing on that side: an address where nothing listens passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_what_run_refuses_and_reaches_the_kafka_source() {
    let text = r#"
[pipeline]
name = "erp-kafka-to-lake"

[source.kafka]
brokers = "127.0.0.1:9"
group_id = "connect-erp-s3-sink"
topics = ["erp.shop.dbo.orders"]

[sink.s3]
url = "file:///tmp/cdc-check-unused"

[sink.s3.rotation]
max_records = 0
"#;
    let file = PipelineFile::parse(text, "check.toml", |_| None).unwrap();
    let report = cdc_connect::check::check(&file).await;
    let rendered = report.render();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("sink.s3") && p.what.contains("max_records")),
        "{rendered}"
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("source.kafka: cannot reach 127.0.0.1:9")),
        "{rendered}"
    );
}

/// A capture job failing at every run (Microsoft's KB 4538384: a change to a table with a
/// hierarchyid column, then DDL on it, read by one run) is a problem `cdc check` names, with
/// the server's errors and the KB's fix; the same server before the failure has no such line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_failing_capture_job_with_its_errors() {
    let sim = Simulator::start(SimConfig::new("Check-Passw0rd!").manual_capture())
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        sim.run_script(
            "CREATE DATABASE shop\nGO\nUSE shop\nGO\nEXEC sys.sp_cdc_enable_db\nGO\n\
             CREATE TABLE dbo.places (id int NOT NULL PRIMARY KEY, node hierarchyid NULL)\nGO\n\
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'places', @role_name = NULL\nGO\n\
             INSERT INTO dbo.places VALUES (1, '/1/')\nGO\n",
        )
        .unwrap()
    });
    sim.scan();
    let file = connection_only(&sim.ado_connection_string());
    let failing = |report: &cdc_connect::check::Report| {
        report
            .problems
            .iter()
            .find(|p| p.what.contains("the capture job is failing"))
            .cloned()
    };
    let report = cdc_connect::check::check(&file).await;
    assert_eq!(failing(&report), None, "{}", report.render());
    tokio::task::block_in_place(|| {
        sim.run_script(
            "USE shop\nGO\nINSERT INTO dbo.places VALUES (2, '/2/')\nGO\n\
             ALTER TABLE dbo.places ADD note nvarchar(10) NULL\nGO\n",
        )
        .unwrap()
    });
    sim.scan();
    let report = cdc_connect::check::check(&file).await;
    let problem = failing(&report).unwrap_or_else(|| panic!("{}", report.render()));
    assert!(
        problem.what.contains("22859: Log Scan process failed"),
        "{}",
        problem.what
    );
    assert!(problem.what.contains("18805: "), "{}", problem.what);
    assert!(problem.fix.contains("KB 4538384"), "{}", problem.fix);
    sim.stop().await;
}
