//! `cdc check`: connects before anything runs and reports what would be captured (databases,
//! capture instances, keys, columns, types) and every problem found, each with the T-SQL or
//! setting that fixes it.

use crate::config::{self, PipelineFile};
use crate::error_text::error_chain;
use crate::wiring;
use cdc_mssql::{ServerConnection, table_pattern_matches};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;
use tiberius::Row;

/// Snapshot speed assumed when comparing the expected snapshot time with the change-table
/// retention (rows per second; a deliberately low figure for a busy server).
pub const ASSUMED_SNAPSHOT_ROWS_PER_SECOND: u64 = 20_000;

/// One problem and its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub what: String,
    /// The T-SQL or setting that fixes it.
    pub fix: String,
}

/// What `cdc check` found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What would be captured, one line each.
    pub captured: Vec<String>,
    /// Problems, each with its fix.
    pub problems: Vec<Problem>,
    /// Every user table of the databases read so far (`schema.table`), and how many
    /// databases that is: include_tables entries are checked against all of them at the end.
    tables: Vec<String>,
    databases_read: usize,
}

impl Report {
    fn problem(&mut self, what: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            what: what.into(),
            fix: fix.into(),
        });
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.captured {
            let _ = writeln!(out, "{line}");
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "\nno problems found");
        } else {
            let _ = writeln!(out, "\n{} problem(s):", self.problems.len());
            for p in &self.problems {
                let _ = writeln!(out, "- {}\n  fix: {}", p.what, p.fix);
            }
        }
        out
    }
}

/// A connection to `database` made as the reader makes its own (same login, encryption,
/// certificate rules and timeouts: [`ServerConnection`]), from the configuration `cdc run`
/// builds out of `[source.mssql]`.
pub(crate) async fn connect(
    m: &config::MssqlSection,
    database: &str,
) -> Result<ServerConnection, String> {
    let config = wiring::mssql_config(m).map_err(|e| e.to_string())?;
    ServerConnection::open(&config, database)
        .await
        .map_err(|e| error_chain(&e))
}

fn text(row: &Row, i: usize) -> String {
    row.try_get::<&str, _>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_string()
}

fn int(row: &Row, i: usize) -> i64 {
    row.try_get::<i32, _>(i)
        .ok()
        .flatten()
        .map(i64::from)
        .or_else(|| row.try_get::<i64, _>(i).ok().flatten())
        .or_else(|| row.try_get::<u8, _>(i).ok().flatten().map(i64::from))
        .or_else(|| row.try_get::<i16, _>(i).ok().flatten().map(i64::from))
        .or_else(|| row.try_get::<bool, _>(i).ok().flatten().map(i64::from))
        .unwrap_or_default()
}

/// SQL Server error 229: permission denied on an object.
fn permission_denied(e: &cdc_mssql::Error) -> bool {
    matches!(e, cdc_mssql::Error::PermissionDenied { .. })
}

fn included(m: &config::MssqlSection, table: &str) -> bool {
    let matches = |patterns: &[String]| patterns.iter().any(|p| table_pattern_matches(p, table));
    (m.include_tables.is_empty() || matches(&m.include_tables)) && !matches(&m.exclude_tables)
}

async fn check_database(m: &config::MssqlSection, database: &str, report: &mut Report) {
    let user = m
        .user
        .clone()
        .unwrap_or_else(|| "<the reader's login>".into());
    let mut conn = match connect(m, database).await {
        Ok(conn) => conn,
        Err(e) => {
            report.problem(
                format!("database {database}: {e}"),
                "check source.mssql host, port, user, password, encryption and trust_server_certificate",
            );
            return;
        }
    };
    let db = match conn.rows("SELECT is_cdc_enabled, snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()",
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            report.problem(
                format!("database {database}: {}", error_chain(&e)),
                "check the login's access to the database",
            );
            return;
        }
    };
    let (cdc_on, snapshot_on) = db
        .first()
        .map_or((false, false), |r| (int(r, 0) == 1, int(r, 1) == 1));
    if !cdc_on {
        report.problem(
            format!("CDC is not enabled on database {database}"),
            format!("USE [{database}]; EXEC sys.sp_cdc_enable_db;"),
        );
        // Read, as far as include_tables goes: nothing in it can be captured.
        report.databases_read += 1;
        return;
    }
    // Unset, the reader uses SNAPSHOT only where the database allows it (REPEATABLE READ
    // elsewhere): only a configured SNAPSHOT can fail with 3952.
    let isolation = m.snapshot_isolation;
    let snapshots = !matches!(m.snapshot_mode, Some(config::SnapshotMode::NoData));
    if snapshots && isolation == Some(config::SnapshotIsolation::Snapshot) && !snapshot_on {
        report.problem(
            format!("snapshot isolation is off on {database}: the snapshot would fail with error 3952"),
            format!(
                "ALTER DATABASE [{database}] SET ALLOW_SNAPSHOT_ISOLATION ON; (or snapshot_isolation = \"repeatable_read\")"
            ),
        );
    }
    match conn.rows("SELECT sys.fn_cdc_get_max_lsn()").await {
        // An empty cdc.lsn_time_mapping gives NULL or 0x00000000000000000000.
        Ok(r) if r
            .first()
            .and_then(|r| r.try_get::<&[u8], _>(0).ok().flatten())
            .is_some_and(|lsn| lsn.iter().any(|b| *b != 0)) => {}
        Ok(_) => report.problem(
            format!("{database}: sys.fn_cdc_get_max_lsn() is empty: the capture job has not run (is SQL Server Agent running?)"),
            format!("USE [{database}]; EXEC sys.sp_cdc_start_job @job_type = N'capture';"),
        ),
        Err(e) => report.problem(format!("{database}: {}", error_chain(&e)), "check the login's access"),
    }
    // A capture job failing at every run captures nothing and leaves no other trace.
    // Unreadable without VIEW DATABASE STATE, which the reader does not need: not a problem.
    if let Ok(errors) = conn.capture_job_errors().await
        && !errors.is_empty()
    {
        let text = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
        report.problem(
            format!("{database}: the capture job is failing, nothing is captured: {text}"),
            "find the cause in SQL Server's error log; for 22859 after a change to a table with a hierarchyid, geometry or geography column and DDL on it (Microsoft KB 4538384): disable and re-enable CDC on that table",
        );
    }
    let tables = match conn.rows("SELECT t.object_id, s.name AS schema_name, t.name AS table_name, t.is_tracked_by_cdc FROM sys.tables t INNER JOIN sys.schemas s ON s.schema_id = t.schema_id",
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            report.problem(format!("{database}: {}", error_chain(&e)), "check the login's access");
            return;
        }
    };
    let mut by_id = HashMap::new();
    for t in &tables {
        by_id.insert(int(t, 0), (text(t, 1), text(t, 2), int(t, 3) == 1));
    }
    let instances = match conn
        .rows("SELECT capture_instance, object_id, source_object_id FROM cdc.change_tables")
        .await
    {
        Ok(r) => r,
        Err(e) if permission_denied(&e) => {
            report.problem(
                format!("{database}: the login cannot read the cdc schema: {}", error_chain(&e)),
                format!("USE [{database}]; GRANT SELECT ON SCHEMA::cdc TO [{user}]; (or add it to the capture instance's gating role)"),
            );
            return;
        }
        Err(e) => {
            report.problem(
                format!("{database}: {}", error_chain(&e)),
                "check the login's access",
            );
            return;
        }
    };
    let captured = conn
        .rows("SELECT object_id, column_name, column_ordinal FROM cdc.captured_columns")
        .await
        .unwrap_or_default();
    // An alias type's column shows its base type, as the reader reads it (cdc-mssql's
    // catalog query).
    let types = conn.rows("SELECT c.object_id, c.name, COALESCE(bt.name, t.name) AS type_name FROM sys.columns c INNER JOIN sys.types t ON t.user_type_id = c.user_type_id LEFT JOIN sys.types bt ON bt.user_type_id = c.system_type_id AND t.is_user_defined = 1 AND t.is_assembly_type = 0",
    )
    .await
    .unwrap_or_default();
    let keys = conn.rows("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION FROM INFORMATION_SCHEMA.KEY_COLUMN_USAGE",
    )
    .await
    .unwrap_or_default();
    let partitions = conn
        .rows("SELECT object_id, rows FROM sys.partitions")
        .await
        .unwrap_or_default();
    let mut total_rows = 0u64;
    for instance in &instances {
        let (name, ct_id, source_id) = (text(instance, 0), int(instance, 1), int(instance, 2));
        let Some((schema, table, _)) = by_id.get(&source_id) else {
            continue;
        };
        let qualified = format!("{schema}.{table}");
        if !included(m, &qualified) {
            continue;
        }
        let mut columns: Vec<(i64, String)> = captured
            .iter()
            .filter(|c| int(c, 0) == ct_id)
            .map(|c| (int(c, 2), text(c, 1)))
            .collect();
        columns.sort();
        let described: Vec<String> = columns
            .iter()
            .map(|(_, c)| {
                let ty = types
                    .iter()
                    .find(|t| int(t, 0) == source_id && text(t, 1) == *c)
                    .map(|t| text(t, 2))
                    .unwrap_or_else(|| "?".into());
                format!("{c} {ty}")
            })
            .collect();
        let mut key: Vec<(i64, String)> = keys
            .iter()
            .filter(|k| text(k, 0) == *schema && text(k, 1) == *table)
            .map(|k| (int(k, 3), text(k, 2)))
            .collect();
        key.sort();
        let key: Vec<String> = key.into_iter().map(|(_, c)| c).collect();
        let rows_estimate: i64 = partitions
            .iter()
            .filter(|p| int(p, 0) == source_id)
            .map(|p| int(p, 1))
            .sum();
        total_rows += rows_estimate.max(0) as u64;
        report.captured.push(format!(
            "{database}.{qualified}: capture instance {name}, key ({}), ~{rows_estimate} rows, columns: {}",
            key.join(", "),
            described.join(", ")
        ));
        if key.is_empty() {
            report.problem(
                format!("{database}.{qualified} has no primary key: events would have no key and a compacted topic would drop them"),
                format!("ALTER TABLE [{schema}].[{table}] ADD CONSTRAINT [PK_{table}] PRIMARY KEY (...); then re-create the capture instance with @index_name"),
            );
        }
    }
    for (schema, table, tracked) in by_id.values() {
        let qualified = format!("{schema}.{table}");
        if !tracked
            && schema != "cdc"
            && schema != "sys"
            && included(m, &qualified)
            && !m.include_tables.is_empty()
        {
            report.problem(
                format!("{database}.{qualified} is listed in include_tables but has no capture instance"),
                format!("USE [{database}]; EXEC sys.sp_cdc_enable_table @source_schema = N'{schema}', @source_name = N'{table}', @role_name = NULL;"),
            );
        }
    }
    report.tables.extend(
        by_id
            .values()
            .filter(|(schema, _, _)| schema != "cdc" && schema != "sys")
            .map(|(schema, table, _)| format!("{schema}.{table}")),
    );
    report.databases_read += 1;
    if report
        .captured
        .iter()
        .all(|l| !l.starts_with(&format!("{database}.")))
    {
        report.problem(
            format!("{database}: no captured table matches include_tables / exclude_tables"),
            "enable CDC on the tables (sys.sp_cdc_enable_table) or widen include_tables",
        );
    }
    match conn
        .rows("SELECT retention FROM msdb.dbo.cdc_jobs WHERE job_type = N'cleanup'")
        .await
    {
        Ok(r) => {
            if let Some(minutes) = r.first().map(|r| int(r, 0)) {
                let snapshot_minutes = total_rows / ASSUMED_SNAPSHOT_ROWS_PER_SECOND / 60;
                if snapshots && minutes > 0 && (minutes as u64) < snapshot_minutes * 2 {
                    report.problem(
                        format!("{database}: change-table retention is {minutes} min; the snapshot of ~{total_rows} rows may take ~{snapshot_minutes} min (at {ASSUMED_SNAPSHOT_ROWS_PER_SECOND} rows/s), and changes made meanwhile could be cleaned up before they are read"),
                        format!("EXEC sys.sp_cdc_change_job @job_type = N'cleanup', @retention = {};", (snapshot_minutes * 4).max(4320)),
                    );
                }
            }
        }
        Err(e) => report.captured.push(format!(
            "{database}: retention not checked (msdb.dbo.cdc_jobs: {})",
            error_chain(&e)
        )),
    }
}

async fn check_sink(file: &PipelineFile, report: &mut Report) {
    if let Some(s3) = &file.sink.s3 {
        let url = match url::Url::parse(&s3.url) {
            Ok(u) => u,
            Err(e) => {
                report.problem(
                    format!("sink.s3.url: {e}"),
                    "give an object_store URL such as s3://bucket/prefix",
                );
                return;
            }
        };
        match crate::wiring::object_store_for(&url, &s3.options) {
            Ok((store, prefix)) => {
                use futures::TryStreamExt;
                let listed = tokio::time::timeout(
                    Duration::from_secs(30),
                    store.list(Some(&prefix)).try_next(),
                )
                .await;
                match listed {
                    Ok(Ok(_)) => report.captured.push(format!("sink: {} is reachable", s3.url)),
                    Ok(Err(e)) => report.problem(
                        format!("sink.s3: cannot list {}: {e}", s3.url),
                        "check the bucket name, region, endpoint and credentials (s3:ListBucket, s3:PutObject, s3:GetObject)",
                    ),
                    Err(_) => report.problem(
                        format!("sink.s3: listing {} timed out", s3.url),
                        "check the endpoint and network path (VPC endpoint for S3)",
                    ),
                }
            }
            Err(e) => report.problem(format!("sink.s3: {e}"), "fix sink.s3.url and options"),
        }
    }
    if let Some(k) = &file.sink.kafka {
        match wiring::kafka_config(k.client(), "sink.kafka") {
            Ok(kafka) => match cluster_metadata(&kafka).await {
                Ok((brokers, _)) => report.captured.push(format!(
                    "sink: Kafka at {} answers ({brokers} brokers)",
                    k.brokers
                )),
                Err(e) => report.problem(
                    format!("sink.kafka: cannot reach {}: {e}", k.brokers),
                    "check brokers, security and the network path",
                ),
            },
            Err(e) => report.problem(e.to_string(), "fix [sink.kafka]"),
        }
    }
}

/// `[source.kafka]`: the brokers answer, and every topic to read exists. A topic that does
/// not exist may be one Debezium has not created yet (with its table's first change) — or a
/// typo that would never deliver anything; either way it is said, with the closest name.
async fn check_kafka_source(file: &PipelineFile, report: &mut Report) {
    let Some(k) = &file.source.kafka else {
        return;
    };
    let kafka = match wiring::kafka_config(k.client(), "source.kafka") {
        Ok(kafka) => kafka,
        Err(e) => return report.problem(e.to_string(), "fix [source.kafka]"),
    };
    match cluster_metadata(&kafka).await {
        Ok((brokers, topics)) => {
            report.captured.push(format!(
                "source: Kafka at {} answers ({brokers} brokers)",
                k.brokers
            ));
            for topic in k.topics.iter().filter(|t| !topics.contains(t)) {
                let fix = match config::closest(topic, &topics) {
                    Some(name) => format!("did you mean {name}? fix source.kafka.topics (or wait: Debezium creates a table's topic with its first change)"),
                    None => "fix source.kafka.topics (or wait: Debezium creates a table's topic with its first change)".to_string(),
                };
                report.problem(format!("source.kafka: topic {topic} does not exist"), fix);
            }
        }
        Err(e) => report.problem(
            format!("source.kafka: cannot reach {}: {e}", k.brokers),
            "check brokers, security and the network path",
        ),
    }
}

/// The number of brokers and the topic names of the cluster `kafka` reaches (15 s bound).
async fn cluster_metadata(kafka: &kafka_io::KafkaConfig) -> Result<(usize, Vec<String>), String> {
    use kafka_io::rdkafka::consumer::BaseConsumer;
    let consumer: BaseConsumer = kafka.client_config().create().map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || {
        use kafka_io::rdkafka::consumer::Consumer;
        consumer
            .fetch_metadata(None, Duration::from_secs(15))
            .map(|m| {
                let topics = m.topics().iter().map(|t| t.name().to_string()).collect();
                (m.brokers().len(), topics)
            })
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs every check of `file`.
pub async fn check(file: &PipelineFile) -> Report {
    let mut report = Report::default();
    if let Err(e) = wiring::validate(file) {
        report.problem(
            e.to_string(),
            "fix the field named; `cdc run` refuses it too",
        );
    }
    if let Some(m) = &file.source.mssql {
        let databases = match wiring::mssql_config(m) {
            Ok(c) => c.databases().to_vec(),
            Err(e) => {
                report.problem(e.to_string(), "fix [source.mssql]");
                return report;
            }
        };
        for database in &databases {
            check_database(m, database, &mut report).await;
        }
        // An include_tables entry that names no table of any database (a typo) would
        // silently capture nothing of what was meant. Only said when every database was read.
        if report.databases_read == databases.len() {
            for pattern in &m.include_tables {
                if !report
                    .tables
                    .iter()
                    .any(|n| table_pattern_matches(pattern, n))
                {
                    let fix = match config::closest(pattern, &report.tables) {
                        Some(name) => format!("did you mean {name}? fix include_tables"),
                        None => "fix include_tables".to_string(),
                    };
                    report.problem(
                        format!("include_tables entry {pattern:?} matches no table"),
                        fix,
                    );
                }
            }
        }
    }
    check_kafka_source(file, &mut report).await;
    check_sink(file, &mut report).await;
    report
}

#[cfg(test)]
mod tests {
    use super::included;
    use crate::config::MssqlSection;

    /// `cdc check` lists what the reader captures: a pattern with several `*` or a `?` selects
    /// the same tables for both (check had a matcher of its own that knew one `*` only).
    #[test]
    fn check_selects_tables_by_include_patterns_as_the_reader_does() {
        let m = MssqlSection {
            include_tables: vec!["dbo.order*_*s".into(), "sales.item?".into()],
            exclude_tables: vec!["dbo.*_archive_*s".into()],
            ..MssqlSection::default()
        };
        assert!(included(&m, "dbo.order_lines"));
        assert!(included(&m, "DBO.Orders_Returns"));
        assert!(included(&m, "sales.items"));
        assert!(!included(&m, "dbo.order_archive_lines"));
        assert!(!included(&m, "dbo.orders"));
        assert!(!included(&m, "sales.item"));
    }
}
