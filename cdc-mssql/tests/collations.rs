//! Snapshots of a text key whose SQL sort order differs from the Unicode rules (ground truth
//! C27, Debezium DBZ-7359): a varchar `SQL_Latin1_General_CP1_CI_AS` key read in keyset
//! chunks must give every row exactly once, because the reader compares each bound key
//! value in the column's own type (cdc-mssql snapshot/keyset.rs). With the key bound as
//! nvarchar, SQL Server (and the simulator) compare `id > @P1` by the Unicode rules while
//! `ORDER BY id` follows the SQL sort order: Debezium's chunks skipped 36 of the ids, and
//! without the cast this reader's chunks read dozens of ids again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeEvent, ChangeSource, Op, SnapshotMarker, Value};
use cdc_mssql::{ExecuteSnapshot, MssqlSource};
use std::collections::BTreeMap;
use support::Target;

/// Debezium's DBZ-7359 ids (575, in SQL sort order), kept with the simulator's tests.
fn ids() -> Vec<String> {
    include_str!("../../mssql-sim/tests/data/dbz_7359_ids.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A database with `dbo.dbz7359 (id varchar(32) COLLATE SQL_Latin1_General_CP1_CI_AS PRIMARY
/// KEY, data int)` holding the ids, CDC enabled on it.
async fn dbz_7359(name: &str) -> (Target, Vec<String>) {
    let target = Target::new(name).await;
    target
        .run(
            "CREATE TABLE dbo.dbz7359 (id varchar(32) COLLATE SQL_Latin1_General_CP1_CI_AS NOT NULL PRIMARY KEY, data int NOT NULL);
             GO
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'dbz7359', @role_name = NULL;",
        )
        .await;
    let ids = ids();
    for chunk in ids.chunks(100) {
        let values: Vec<String> = chunk.iter().map(|id| format!("('{id}', 1)")).collect();
        target
            .run(&format!(
                "INSERT INTO dbo.dbz7359 (id, data) VALUES {};",
                values.join(", ")
            ))
            .await;
    }
    target.scan().await;
    (target, ids)
}

/// Counts the snapshot reads of `dbo.dbz7359` per id.
fn count_reads(events: &[ChangeEvent], incremental: bool, reads: &mut BTreeMap<String, usize>) {
    for e in events {
        if e.table.id.table != "dbz7359" || e.op != Op::Read {
            continue;
        }
        assert_eq!(
            e.source.snapshot == SnapshotMarker::Incremental,
            incremental,
            "{:?}",
            e.source.snapshot
        );
        let row = e.after.as_ref().unwrap();
        match &row.0[0] {
            Value::String(s) => *reads.entry(s.to_string()).or_default() += 1,
            other => panic!("not a string key: {other:?}"),
        }
    }
}

/// Every id read, and each once.
fn assert_each_once(reads: &BTreeMap<String, usize>, ids: &[String]) {
    let twice: Vec<&String> = reads
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|i| !reads.contains_key(*i)).collect();
    assert!(
        twice.is_empty() && missing.is_empty(),
        "read more than once ({}): {twice:?}; never read ({}): {missing:?}",
        twice.len(),
        missing.len()
    );
    assert_eq!(reads.len(), ids.len());
}

/// Reads batches until the source goes quiet, counting incremental snapshot reads.
async fn pump(source: &mut MssqlSource, reads: &mut BTreeMap<String, usize>) {
    for _ in 0..1000 {
        let batch = source.next_batch().await.unwrap().unwrap();
        if batch.events.is_empty() && batch.heartbeat.is_none() {
            return;
        }
        count_reads(&batch.events, true, reads);
    }
    panic!("the source did not go quiet within 1000 batches");
}

#[tokio::test]
async fn the_initial_snapshot_of_a_sql_collation_varchar_key_reads_every_row_once() {
    let (target, ids) = dbz_7359("coll_initial").await;
    assert_eq!(ids.len(), 575);
    let config = target.config().snapshot_chunk_size(250).build().unwrap();
    let mut source = MssqlSource::new(config);
    source.start(None).await.unwrap();
    let mut reads = BTreeMap::new();
    // The snapshot ends when the source streams: poll until a batch brings nothing more.
    for _ in 0..1000 {
        let batch = source.next_batch().await.unwrap().unwrap();
        if batch.events.is_empty() && !reads.is_empty() {
            break;
        }
        count_reads(&batch.events, false, &mut reads);
    }
    assert_each_once(&reads, &ids);
}

#[tokio::test]
async fn an_incremental_snapshot_of_a_sql_collation_varchar_key_reads_every_row_once() {
    let (target, ids) = dbz_7359("coll_incremental").await;
    let config = target.streaming().build().unwrap();
    let mut source = MssqlSource::new(config).incremental_chunk_size(250);
    source.start(None).await.unwrap();
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.dbz7359"]))
        .unwrap();
    let mut reads = BTreeMap::new();
    let mut rounds = 0;
    // Each chunk is closed by a watermark the capture job (manual here) has to scan.
    while !source.incremental_snapshot_pending().is_empty() || rounds == 0 {
        rounds += 1;
        assert!(rounds < 100, "the snapshot did not finish");
        target.scan().await;
        pump(&mut source, &mut reads).await;
    }
    target.scan().await;
    pump(&mut source, &mut reads).await;
    assert_each_once(&reads, &ids);
}
