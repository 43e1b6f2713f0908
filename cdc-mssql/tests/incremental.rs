//! Incremental snapshots (issue 17): a table read in primary-key chunks while streaming goes
//! on, de-duplicated against the stream with log-position watermarks, resumable from the
//! checkpoint, driven by Debezium's signals — and never writing to the source database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{
    ChangeEvent, ChangeSource, Checkpoint, Op, Position, SnapshotMarker, SourcePartition, Value,
};
use cdc_mssql::{ExecuteSnapshot, MssqlSource};
use std::collections::{BTreeMap, HashMap};
use support::{Target, int};

/// `dbo.items` with CDC on and rows `1..=rows` at version 1. Every change the tests make sets
/// a higher `version`, so a row older than what a consumer already has is recognisable.
async fn items(name: &str, rows: i32) -> Target {
    let target = Target::new(name).await;
    target
        .run(
            "CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, version int NOT NULL, note nvarchar(50) NULL);
             GO
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;",
        )
        .await;
    if rows > 0 {
        let mut sql = String::from("BEGIN TRANSACTION;\n");
        for id in 1..=rows {
            sql.push_str(&format!(
                "INSERT INTO dbo.items (id, version, note) VALUES ({id}, 1, N'n{id}');\n"
            ));
        }
        sql.push_str("COMMIT TRANSACTION;");
        target.run(&sql).await;
    }
    target.scan().await;
    target
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Null => None,
        other => panic!("not a string: {other:?}"),
    }
}

/// A consumer applying events in order to a copy of `dbo.items`, refusing any incremental
/// snapshot row older than a change of its key it already applied.
#[derive(Default)]
struct Consumer {
    rows: BTreeMap<i32, (i32, Option<String>)>,
    /// Per key: the last version applied, and whether it was a delete.
    last: HashMap<i32, (i32, bool)>,
    /// Keys of the incremental snapshot rows, in arrival order.
    reads: Vec<i32>,
    /// Keys of `dbo.items` that streamed changes touched.
    streamed: std::collections::BTreeSet<i32>,
    /// `(table, op)` of every event, in arrival order.
    log: Vec<(String, Op)>,
    /// Per event of `log`: whether its position carries an incremental snapshot's progress.
    carries_progress: Vec<bool>,
    checkpoint: Checkpoint,
}

impl Consumer {
    fn apply(&mut self, e: &ChangeEvent) {
        self.log.push((e.table.id.table.to_string(), e.op));
        self.carries_progress
            .push(matches!(e.position(), Position::SqlServer(p) if p.snapshot.is_some()));
        self.checkpoint.advance(e.position().clone());
        if e.table.id.table != "items" {
            return;
        }
        let row = e.after.as_ref().or(e.before.as_ref()).unwrap();
        let (id, version, note) = (int(&row.0[0]), int(&row.0[1]), text(&row.0[2]));
        match e.op {
            Op::Read => {
                assert_eq!(e.source.snapshot, SnapshotMarker::Incremental);
                if let Some(&(last, deleted)) = self.last.get(&id) {
                    assert!(
                        if deleted {
                            version > last
                        } else {
                            version >= last
                        },
                        "stale snapshot row for id {id}: version {version} after {} of version {last}",
                        if deleted { "a delete" } else { "a change" }
                    );
                }
                self.reads.push(id);
                self.rows.insert(id, (version, note));
                self.last.insert(id, (version, false));
            }
            Op::Create | Op::Update => {
                self.streamed.insert(id);
                // A streamed change older than the snapshot row already applied would be
                // the same fault the other way round (a chunk handed out too early).
                if let Some(&(last, false)) = self.last.get(&id) {
                    assert!(
                        version >= last,
                        "change of id {id} to version {version} after version {last}"
                    );
                }
                self.rows.insert(id, (version, note));
                self.last.insert(id, (version, false));
            }
            Op::Delete => {
                self.streamed.insert(id);
                self.rows.remove(&id);
                self.last.insert(id, (version, true));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Inserts into `table` that arrived between the first and the last snapshot row.
    fn streamed_between_reads(&self, table: &str) -> usize {
        let reads = || self.log.iter().map(|(_, op)| *op == Op::Read);
        let (Some(first), Some(last)) = (
            reads().position(|read| read),
            reads().rposition(|read| read),
        ) else {
            return 0;
        };
        self.log[first..last]
            .iter()
            .filter(|(t, op)| t == table && *op == Op::Create)
            .count()
    }

    /// Reads batches until the source has nothing more to say (an empty batch).
    async fn pump(&mut self, source: &mut MssqlSource) {
        for _ in 0..1000 {
            let batch = source.next_batch().await.unwrap().unwrap();
            if batch.events.is_empty() && batch.heartbeat.is_none() {
                return;
            }
            for e in &batch.events {
                self.apply(e);
            }
            if let Some(h) = batch.heartbeat {
                self.checkpoint.advance(h);
            }
        }
        panic!("the source did not go quiet within 1000 batches");
    }
}

/// `dbo.items` as the database holds it.
async fn table(target: &Target) -> BTreeMap<i32, (i32, Option<String>)> {
    let mut conn = target.connect().await;
    let rows = support::exec(&mut conn, "SELECT id, version, note FROM dbo.items")
        .await
        .unwrap();
    rows[0]
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>(0).unwrap(),
                (
                    r.get::<i32, _>(1).unwrap(),
                    r.get::<&str, _>(2).map(str::to_string),
                ),
            )
        })
        .collect()
}

async fn source_with_chunks(
    target: &Target,
    chunk: u32,
    checkpoint: Option<&Checkpoint>,
) -> MssqlSource {
    let mut source =
        MssqlSource::new(target.streaming().build().unwrap()).incremental_chunk_size(chunk);
    source.start(checkpoint).await.unwrap();
    source
}

/// Rounds of "scan, read one batch" until the first snapshot rows arrived (bounded); one batch
/// at a time, so nothing past the first chunk is read.
async fn until_first_chunk(target: &Target, source: &mut MssqlSource, consumer: &mut Consumer) {
    for _ in 0..20 {
        target.scan().await;
        let batch = source.next_batch().await.unwrap().unwrap();
        for e in &batch.events {
            consumer.apply(e);
        }
        if !consumer.reads.is_empty() {
            return;
        }
    }
}

/// Rounds of "scan, read what the source has" until the snapshot is over (bounded).
async fn until_finished(target: &Target, source: &mut MssqlSource, consumer: &mut Consumer) {
    for _ in 0..100 {
        target.scan().await;
        consumer.pump(source).await;
        if source.incremental_snapshot_pending().is_empty() {
            target.scan().await;
            consumer.pump(source).await;
            return;
        }
    }
    panic!(
        "the incremental snapshot did not finish: {:?}",
        source.incremental_snapshot_pending()
    );
}

#[tokio::test]
async fn incremental_snapshot_under_concurrent_changes_of_the_same_keys_ends_equal_to_the_table_with_no_stale_row()
 {
    concurrent_changes("inc_concurrent", false).await;
}

#[tokio::test]
async fn under_snapshot_isolation_the_incremental_snapshot_also_ends_equal_to_the_table_with_no_stale_row()
 {
    concurrent_changes("inc_concurrent_si", true).await;
}

/// Chunks of 7 rows read while three keys change per transaction, two transactions a round,
/// the capture job lagging every other round; the chunk transactions run under SNAPSHOT
/// isolation where the database allows it, else under REPEATABLE READ (a stock database).
async fn concurrent_changes(name: &str, snapshot_isolation: bool) {
    let target = items(name, 60).await;
    if snapshot_isolation {
        target
            .run(&format!(
                "ALTER DATABASE [{name}] SET ALLOW_SNAPSHOT_ISOLATION ON;"
            ))
            .await;
    }
    // One transaction per window: a window can end before a chunk's read point while
    // changes committed before that point are still to come.
    let config = target
        .streaming()
        .max_iteration_transactions(1)
        .build()
        .unwrap();
    let mut source = MssqlSource::new(config).incremental_chunk_size(7);
    source.start(None).await.unwrap();
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    // The test is the only writer: it knows which keys exist.
    let mut exists: BTreeMap<i32, bool> = (1..=60).map(|id| (id, true)).collect();
    let mut version = 1;
    let mut rounds = 0;
    while !source.incremental_snapshot_pending().is_empty() || rounds == 0 {
        rounds += 1;
        assert!(rounds < 200, "the snapshot did not finish");
        // Changes to keys ahead of, inside and behind the chunk being read: updates,
        // deletes, inserts of new keys and re-inserts of deleted ones, each key changed by
        // two transactions in a row.
        for tx in 0..2 {
            let mut sql = String::from("BEGIN TRANSACTION;\n");
            for step in 0..3 {
                let id = (rounds * 13 + step * 29) % 70 + 1;
                version += 1;
                let present = exists.get(&id).copied().unwrap_or(false);
                if !present {
                    sql.push_str(&format!(
                        "INSERT INTO dbo.items (id, version, note) VALUES ({id}, {version}, N'i{version}');\n"
                    ));
                    exists.insert(id, true);
                } else if (rounds + step + tx) % 4 == 0 {
                    sql.push_str(&format!("DELETE FROM dbo.items WHERE id = {id};\n"));
                    exists.insert(id, false);
                } else {
                    sql.push_str(&format!(
                        "UPDATE dbo.items SET version = {version}, note = N'u{version}' WHERE id = {id};\n"
                    ));
                }
            }
            sql.push_str("COMMIT TRANSACTION;");
            target.run(&sql).await;
        }
        // Every other round the capture job lags: the next chunk is read at a point the
        // change tables have not reached yet.
        if rounds % 2 == 0 {
            target.scan().await;
        }
        consumer.pump(&mut source).await;
    }
    // Nothing more changes: whatever is in flight arrives.
    target.scan().await;
    consumer.pump(&mut source).await;
    assert!(
        consumer.reads.len() > 30,
        "most rows came from the snapshot: {:?}",
        consumer.reads
    );
    assert!(
        consumer.log.iter().any(|(_, op)| *op == Op::Delete)
            && consumer.log.iter().any(|(_, op)| *op == Op::Update),
        "changes were streamed while the snapshot ran"
    );
    assert_eq!(consumer.rows, table(&target).await);
}

#[tokio::test]
async fn incremental_rows_encode_as_debezium_reads_with_source_snapshot_incremental() {
    use cdc_core::{DebeziumJson, EventCodec};
    let target = items("inc_envelope", 3).await;
    let mut source = source_with_chunks(&target, 10, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut reads = Vec::new();
    for _ in 0..20 {
        target.scan().await;
        let batch = source.next_batch().await.unwrap().unwrap();
        reads.extend(batch.events.into_iter().filter(|e| e.op == Op::Read));
        if reads.len() == 3 {
            break;
        }
    }
    assert_eq!(reads.len(), 3);
    let codec = DebeziumJson::schemaless();
    let record = codec.encode(&reads[0]).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&record.value.unwrap()).unwrap();
    assert_eq!(value["op"], "r");
    assert_eq!(value["source"]["snapshot"], "incremental");
    assert_eq!(value["source"]["db"], "inc_envelope");
    assert_eq!(value["after"]["id"], 1);
    codec.register(std::sync::Arc::clone(&reads[0].table));
    let decoded = codec
        .decode(&cdc_core::EncodedRecord {
            key: record.key,
            value: Some(serde_json::to_vec(&value).unwrap()),
            headers: Vec::new(),
        })
        .unwrap()
        .unwrap();
    assert_eq!(decoded.source.snapshot, SnapshotMarker::Incremental);
}

#[tokio::test]
async fn a_restart_after_a_durable_chunk_continues_at_the_next_chunk() {
    let target = items("inc_restart", 30).await;
    let mut source = source_with_chunks(&target, 10, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    for _ in 0..20 {
        target.scan().await;
        consumer.pump(&mut source).await;
        if consumer.reads.len() >= 10 {
            break;
        }
    }
    assert_eq!(
        consumer.reads,
        (1..=10).collect::<Vec<_>>(),
        "one chunk of ten"
    );
    // The process stops here; what the consumer made durable is its checkpoint.
    let checkpoint = consumer.checkpoint.clone();
    source.close().await.unwrap();

    let mut source = source_with_chunks(&target, 10, Some(&checkpoint)).await;
    assert_eq!(
        source.incremental_snapshot_pending(),
        [("inc_restart.dbo.items".to_string(), false)],
        "the snapshot's progress came back from the checkpoint"
    );
    let mut after = Consumer::default();
    until_finished(&target, &mut source, &mut after).await;
    assert_eq!(after.reads, (11..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_restart_after_a_durable_row_in_the_middle_of_a_chunk_continues_after_that_row() {
    let target = items("inc_restart_row", 30).await;
    let mut source = source_with_chunks(&target, 10, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..20 {
        target.scan().await;
        let batch = source.next_batch().await.unwrap().unwrap();
        events.extend(batch.events.into_iter().filter(|e| e.op == Op::Read));
        if events.len() >= 10 {
            break;
        }
    }
    // Only the first four rows of the chunk became durable.
    let mut checkpoint = Checkpoint::default();
    for e in &events[..4] {
        checkpoint.advance(e.position().clone());
    }
    source.close().await.unwrap();

    let mut source = source_with_chunks(&target, 10, Some(&checkpoint)).await;
    let mut after = Consumer::default();
    until_finished(&target, &mut source, &mut after).await;
    assert_eq!(after.reads, (5..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_table_snapshot_interleaves_with_another_table_that_keeps_streaming() {
    let target = items("inc_interleave", 20).await;
    target
        .run(
            "CREATE TABLE dbo.customers (id int NOT NULL PRIMARY KEY, version int NOT NULL, note nvarchar(50) NULL);
             GO
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL;",
        )
        .await;
    target.scan().await;
    let mut source = source_with_chunks(&target, 5, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["inc_interleave.dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    for round in 1..100 {
        target
            .run(&format!(
                "INSERT INTO dbo.customers (id, version, note) VALUES ({round}, 1, N'c');"
            ))
            .await;
        target.scan().await;
        consumer.pump(&mut source).await;
        if source.incremental_snapshot_pending().is_empty() {
            break;
        }
    }
    assert_eq!(consumer.reads, (1..=20).collect::<Vec<_>>());
    let streamed_between = consumer.streamed_between_reads("customers");
    assert!(
        streamed_between >= 2,
        "customers kept streaming between the snapshot's chunks: {:?}",
        consumer.log
    );
    assert!(
        consumer
            .log
            .iter()
            .all(|(table, op)| (table == "items") == (*op == Op::Read)),
        "items only snapshotted, customers only streamed"
    );
}

#[tokio::test]
async fn a_row_inserted_into_the_debezium_signal_table_starts_the_snapshot_where_it_streams() {
    let target = items("inc_signal_table", 12).await;
    target
        .run(
            "CREATE TABLE dbo.debezium_signal (id varchar(42) NOT NULL PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048) NULL);
             GO
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'debezium_signal', @role_name = NULL;",
        )
        .await;
    target.scan().await;
    let mut source = MssqlSource::new(target.streaming().build().unwrap())
        .incremental_chunk_size(5)
        .signal_data_collection("inc_signal_table.dbo.debezium_signal")
        .unwrap();
    source.start(None).await.unwrap();
    target
        .run(
            r#"INSERT INTO dbo.debezium_signal (id, type, data) VALUES ('ad-hoc-1', 'execute-snapshot', '{"data-collections": ["inc_signal_table.dbo.items"], "type": "incremental", "additional-conditions": [{"data-collection": "inc_signal_table.dbo.items", "filter": "id > 2"}]}');
               INSERT INTO dbo.debezium_signal (id, type, data) VALUES ('bad-1', 'execute-snapshot', '{"data-collections": ["dbo.items"], "additional-conditions": [{"data-collection": "dbo.items", "filter": "1=1; DELETE FROM dbo.items"}]}');"#,
        )
        .await;
    let mut consumer = Consumer::default();
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(
        consumer.reads,
        (3..=12).collect::<Vec<_>>(),
        "the valid signal ran once; the one with a second statement in its filter was ignored"
    );
    // The signal row itself is an ordinary change event, and already carried the snapshot's
    // progress in its position (a checkpoint there resumes the snapshot).
    let signal_rows: Vec<bool> = consumer
        .log
        .iter()
        .zip(&consumer.carries_progress)
        .filter(|((t, op), _)| t == "debezium_signal" && *op == Op::Create)
        .map(|(_, carries)| *carries)
        .collect();
    assert_eq!(signal_rows, [true, true]);
    assert_eq!(
        MssqlSource::new(target.streaming().build().unwrap())
            .signal_data_collection("debezium_signal")
            .err()
            .map(|e| e.to_string().contains("signal_data_collection")),
        Some(true)
    );
}

#[tokio::test]
async fn a_chunk_read_that_fails_transiently_is_read_again_and_no_row_is_lost_or_repeated() {
    let target = items("inc_transient", 12).await;
    let sim = target
        .sim
        .as_ref()
        .expect("this test injects a fault into the simulator");
    let mut source = source_with_chunks(&target, 5, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    for _ in 0..10 {
        target.scan().await;
        consumer.pump(&mut source).await;
        if !consumer.reads.is_empty() {
            break;
        }
    }
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5]);
    // The second chunk's read is chosen as a deadlock victim (1205), inside its transaction.
    sim.faults().fail_next("TOP 5 [id]", 1205);
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, (1..=12).collect::<Vec<_>>());
    assert_eq!(consumer.rows, table(&target).await);
}

#[tokio::test]
async fn additional_conditions_limit_the_rows_read() {
    let target = items("inc_condition", 20).await;
    let mut source = source_with_chunks(&target, 4, None).await;
    source
        .signals()
        .send_debezium(
            "execute-snapshot",
            r#"{"data-collections": ["inc_condition.dbo.items"], "type": "incremental",
                "additional-conditions": [{"data-collection": "inc_condition.dbo.items", "filter": "id <= 3 OR id > 17"}]}"#,
        )
        .unwrap();
    let mut consumer = Consumer::default();
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, [1, 2, 3, 18, 19, 20]);
}

/// A filter the server refuses (a column the table lacks) drops that table from the snapshot,
/// with an error in the log, and streaming goes on: before, the chunk query's error 207
/// stopped the whole pipeline after the signal had been accepted with 202 (found trying
/// `POST /signals` as a user would).
#[tokio::test]
async fn a_filter_the_server_refuses_drops_that_table_from_the_snapshot_and_streaming_goes_on() {
    let target = items("inc_bad_filter", 5).await;
    let mut source = source_with_chunks(&target, 4, None).await;
    source
        .signals()
        .execute_snapshot(
            ExecuteSnapshot::incremental(["dbo.items"])
                .with_condition("dbo.items", "nosuchcol = 1"),
        )
        .unwrap();
    let mut consumer = Consumer::default();
    until_finished(&target, &mut source, &mut consumer).await;
    assert!(consumer.reads.is_empty(), "{:?}", consumer.reads);
    target
        .run("UPDATE dbo.items SET version = 2 WHERE id = 1;")
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;
    assert!(consumer.streamed.contains(&1), "streaming went on");
    // A good signal afterwards is taken.
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn pause_stops_reading_chunks_until_resume() {
    let target = items("inc_pause", 20).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    let signals = source.signals();
    signals
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    until_first_chunk(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5]);
    signals.pause_snapshot().unwrap();
    for _ in 0..5 {
        target.scan().await;
        consumer.pump(&mut source).await;
    }
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5], "no chunk while paused");
    assert_eq!(
        source.incremental_snapshot_pending(),
        [("inc_pause.dbo.items".to_string(), true)]
    );
    signals.resume_snapshot().unwrap();
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, (1..=20).collect::<Vec<_>>());
}

#[tokio::test]
async fn stop_ends_the_snapshot_and_streaming_goes_on() {
    let target = items("inc_stop", 20).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    let signals = source.signals();
    signals
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    until_first_chunk(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5]);
    signals.stop_snapshot(Vec::<String>::new()).unwrap();
    target
        .run("UPDATE dbo.items SET version = 2 WHERE id = 12;")
        .await;
    for _ in 0..5 {
        target.scan().await;
        consumer.pump(&mut source).await;
    }
    assert_eq!(consumer.reads, [1, 2, 3, 4, 5], "no chunk after stop");
    assert!(source.incremental_snapshot_pending().is_empty());
    assert_eq!(consumer.rows.get(&12), Some(&(2, Some("n12".to_string()))));
    // Positions no longer carry the snapshot's progress: a restart does not resume it.
    let Some(Position::SqlServer(p)) = consumer
        .checkpoint
        .get(&SourcePartition::sql_server("inc_stop"))
    else {
        panic!("no checkpoint");
    };
    assert!(p.snapshot.is_none(), "{p:?}");
}

/// Whether a statement the reader sent could write: a write or DDL keyword as a word of its
/// text, or a procedure call other than the driver's statement-execution procedures.
fn writes(statement: &str) -> bool {
    const WRITES: &[&str] = &[
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "CREATE",
        "ALTER",
        "DROP",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "DENY",
        "BULK",
        "WRITETEXT",
        "UPDATETEXT",
        "INTO",
    ];
    let words: Vec<String> = statement
        .split(|c: char| !(c.is_alphanumeric() || "_$@#".contains(c)))
        .map(str::to_uppercase)
        .collect();
    if words.iter().any(|w| WRITES.contains(&w.as_str())) {
        return true;
    }
    // Procedures: only the driver's own way to run a parameterised statement.
    statement.starts_with("EXEC ")
        && !statement.starts_with("EXEC sp_executesql ")
        && !statement.starts_with("EXEC sp_prepexec ")
}

#[tokio::test]
async fn the_reader_sends_no_statement_that_writes_to_the_source_database() {
    let target = items("inc_no_writes", 25).await;
    let sim = target
        .sim
        .as_ref()
        .expect("this test reads the simulator's statement log");
    sim.faults().record_statements();
    let mut source = source_with_chunks(&target, 4, None).await;
    source
        .signals()
        .execute_snapshot(
            ExecuteSnapshot::incremental(["dbo.items"]).with_condition("dbo.items", "id > 2"),
        )
        .unwrap();
    let mut consumer = Consumer::default();
    for round in 0..100 {
        // Concurrent changes go in through the simulator itself, not over TDS: only the
        // reader's statements are in the log.
        sim.run_script(&format!(
            "USE inc_no_writes;\nUPDATE dbo.items SET version = {}, note = N'x' WHERE id = {};",
            round + 2,
            round % 25 + 1
        ))
        .unwrap();
        sim.scan();
        consumer.pump(&mut source).await;
        if source.incremental_snapshot_pending().is_empty() && round > 0 {
            break;
        }
    }
    sim.scan();
    consumer.pump(&mut source).await;
    // A blocking snapshot reads the same way, with streaming paused.
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::blocking(["dbo.items"]))
        .unwrap();
    let mut blocking_reads = 0;
    for _ in 0..100 {
        let batch = source.next_batch().await.unwrap().unwrap();
        blocking_reads += batch.events.iter().filter(|e| e.op == Op::Read).count();
        if source.incremental_snapshot_pending().is_empty() {
            break;
        }
    }
    assert_eq!(blocking_reads, 25, "the blocking snapshot read every row");
    source.close().await.unwrap();
    let statements = sim.faults().recorded_statements();
    assert!(
        statements.iter().any(|s| s.contains("SAVE TRANSACTION"))
            && statements.iter().any(|s| s.contains("FROM [dbo].[items]")),
        "the log holds the reader's chunk reads: {statements:#?}"
    );
    let writing: Vec<&String> = statements.iter().filter(|s| writes(s)).collect();
    assert!(writing.is_empty(), "statements that write: {writing:#?}");
    assert_eq!(consumer.reads.first(), Some(&3));
    assert_eq!(consumer.rows, table(&target).await);
}

/// `dbo.items` (rows 1..=rows at version 1) not yet captured, and `dbo.customers` captured.
async fn items_not_captured_yet(name: &str, rows: i32) -> Target {
    let target = Target::new(name).await;
    let mut sql = String::from(
        "CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, version int NOT NULL, note nvarchar(50) NULL);
         GO
         CREATE TABLE dbo.customers (id int NOT NULL PRIMARY KEY, version int NOT NULL, note nvarchar(50) NULL);
         GO
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL;
         GO
",
    );
    for id in 1..=rows {
        sql.push_str(&format!(
            "INSERT INTO dbo.items (id, version, note) VALUES ({id}, 1, N'n{id}');\n"
        ));
    }
    target.run(&sql).await;
    target.scan().await;
    target
}

/// Issue 17, point 4: a table that becomes captured while the source streams (its capture
/// instance is created, and the include list selects it) is snapshotted incrementally — its
/// rows from before capture began are in no change table — while another table keeps
/// streaming; changes made to it meanwhile are never overwritten by an older chunk row.
#[tokio::test]
async fn a_table_that_becomes_captured_while_streaming_is_snapshotted_while_another_keeps_streaming()
 {
    let target = items_not_captured_yet("inc_new_table", 20).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    let mut consumer = Consumer::default();
    target
        .run("INSERT INTO dbo.customers (id, version, note) VALUES (100, 1, N'c');")
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;
    assert_eq!(consumer.log, [("customers".to_string(), Op::Create)]);

    target
        .run(
            "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;
             GO
             UPDATE dbo.items SET version = 2, note = N'changed' WHERE id = 3;
             DELETE FROM dbo.items WHERE id = 4;
             INSERT INTO dbo.items (id, version, note) VALUES (21, 2, N'new');",
        )
        .await;
    for round in 1..100 {
        target
            .run(&format!(
                "INSERT INTO dbo.customers (id, version, note) VALUES ({round}, 1, N'c');
                 UPDATE dbo.items SET version = version + 1 WHERE id = {};",
                (round % 20) + 1
            ))
            .await;
        target.scan().await;
        consumer.pump(&mut source).await;
        if !consumer.reads.is_empty() && source.incremental_snapshot_pending().is_empty() {
            break;
        }
    }
    target.scan().await;
    consumer.pump(&mut source).await;
    let rows = table(&target).await;
    assert_eq!(consumer.rows, rows, "the consumer's items equal the table");
    // A row changed after capture began may come from the stream alone (the chunk row it
    // would have been is superseded); every other row must have been read.
    let unread: Vec<&i32> = rows
        .keys()
        .filter(|id| !consumer.reads.contains(id) && !consumer.streamed.contains(id))
        .collect();
    assert!(
        unread.is_empty(),
        "rows neither read nor streamed: {unread:?}"
    );
    assert!(consumer.reads.len() >= 10, "{:?}", consumer.reads);
    assert!(
        consumer.streamed_between_reads("customers") >= 1,
        "customers kept streaming between the new table's chunks: {:?}",
        consumer.log
    );
}

/// With `NewTableSnapshot::None` a table that becomes captured is only streamed: its changes
/// arrive, its older rows do not.
#[tokio::test]
async fn with_new_table_snapshot_none_a_newly_captured_table_is_only_streamed() {
    let target = items_not_captured_yet("inc_new_table_none", 5).await;
    let config = target
        .streaming()
        .new_table_snapshot(cdc_mssql::NewTableSnapshot::None)
        .build()
        .unwrap();
    let mut source = MssqlSource::new(config).incremental_chunk_size(5);
    source.start(None).await.unwrap();
    let mut consumer = Consumer::default();
    consumer.pump(&mut source).await;
    target
        .run(
            "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;
             GO
             INSERT INTO dbo.items (id, version, note) VALUES (6, 1, N'new');",
        )
        .await;
    for _ in 0..5 {
        target.scan().await;
        consumer.pump(&mut source).await;
    }
    assert!(consumer.reads.is_empty(), "{:?}", consumer.log);
    assert_eq!(consumer.log, [("items".to_string(), Op::Create)]);
    assert!(source.incremental_snapshot_pending().is_empty());
}

/// Updates row 3 and streams until the update arrived: the source has read past a change.
async fn stream_an_update_of_row_3(
    target: &Target,
    source: &mut MssqlSource,
    consumer: &mut Consumer,
) {
    target
        .run("UPDATE dbo.items SET version = 2 WHERE id = 3;")
        .await;
    for _ in 0..10 {
        target.scan().await;
        consumer.pump(source).await;
        if consumer.streamed.contains(&3) {
            break;
        }
    }
    assert!(consumer.streamed.contains(&3), "the first update streamed");
}

/// Microsoft's schema-change procedure for `dbo.items` in one go: a column added, a new capture
/// instance, the old one disabled at once.
const SWITCH_ITEMS: &str = "ALTER TABLE dbo.items ADD extra int NULL;
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL, @capture_instance = N'dbo_items_v2';
EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'items', @capture_instance = N'dbo_items';";

/// The switch of `dbo.items` to a new capture instance in one go (new instance, old one
/// disabled) while an incremental snapshot of it runs, after its first chunk was read and one
/// of those rows changed: the change was only in the dropped instance. The table is read
/// again, whole, after the running snapshot, so the consumer ends equal to the table. Found by
/// a breaker: the table was already in the running snapshot, so no second read was queued,
/// and row 1 kept its old value.
#[tokio::test]
async fn an_instance_disabled_early_during_a_snapshot_of_its_table_has_the_table_read_again_whole()
{
    let target = items("inc_switch_running", 30).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    until_first_chunk(&target, &mut source, &mut consumer).await;
    assert!(consumer.reads.contains(&1), "{:?}", consumer.reads);
    target
        .run(&format!(
            "UPDATE dbo.items SET version = 2, note = N'changed' WHERE id = 1;\n{SWITCH_ITEMS}"
        ))
        .await;
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(
        consumer.rows,
        table(&target).await,
        "the consumer's items equal the table"
    );
}

/// The same switch while the source is stopped: at the restart the table's only capture
/// instance was created after the checkpoint (the server has forgotten the one before), so the
/// table is snapshotted as a newly captured one, and the update committed to the dropped
/// instance is not lost. Found by a breaker: the reader streamed from the new instance's start
/// and the update was gone.
#[tokio::test]
async fn an_instance_created_while_the_source_was_stopped_has_its_table_snapshotted_at_the_restart()
{
    let target = items("inc_switch_stopped", 10).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    let mut consumer = Consumer::default();
    stream_an_update_of_row_3(&target, &mut source, &mut consumer).await;
    let checkpoint = consumer.checkpoint.clone();
    source.close().await.unwrap();

    target
        .run(
            &format!(
                "UPDATE dbo.items SET version = 2, note = N'changed' WHERE id = 2;\n{SWITCH_ITEMS}\nUPDATE dbo.items SET version = 2 WHERE id = 4;"
            ),
        )
        .await;
    let mut source = source_with_chunks(&target, 5, Some(&checkpoint)).await;
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(
        consumer.rows,
        table(&target).await,
        "the consumer's items equal the table"
    );
}

/// CDC disabled and re-enabled on a table under the same capture-instance name while the
/// source streams — how DBAs pick up a new column, and the fix Microsoft's KB 4538384 gives —
/// is a new instance: the update committed to the old one before it was read is gone, so the
/// table is read again, whole. Found by a newcomer: the reader took the re-created instance
/// for the old one, saw its minimum LSN jump past its position and stopped with a retention
/// error ("changes were cleaned up before they were read").
#[tokio::test]
async fn an_instance_disabled_and_re_enabled_under_its_name_has_the_table_read_again_whole() {
    let target = items("inc_reenable", 10).await;
    let mut source = source_with_chunks(&target, 5, None).await;
    let mut consumer = Consumer::default();
    stream_an_update_of_row_3(&target, &mut source, &mut consumer).await;
    target
        .run(
            "UPDATE dbo.items SET version = 2, note = N'changed' WHERE id = 2;
             ALTER TABLE dbo.items ADD extra int NULL;
             EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'items', @capture_instance = N'dbo_items';
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;
             UPDATE dbo.items SET version = 2 WHERE id = 4;",
        )
        .await;
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(
        consumer.rows,
        table(&target).await,
        "the consumer's items equal the table"
    );
}

/// A signal-driven snapshot counts its rows where the initial snapshot counts its own
/// (`MssqlSource::snapshot_progress`, which the `cdc_snapshot_rows_done/total` metrics and the
/// progress bars read): it stayed at the initial snapshot's figures while an incremental
/// snapshot read 1 500 rows (found by a breaker, and a newcomer before it).
#[tokio::test]
async fn an_incremental_snapshot_counts_its_rows_in_the_snapshot_progress() {
    let target = items("inc_progress", 25).await;
    let mut source = source_with_chunks(&target, 10, None).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::incremental(["dbo.items"]))
        .unwrap();
    let mut consumer = Consumer::default();
    until_finished(&target, &mut source, &mut consumer).await;
    assert_eq!(consumer.reads.len(), 25);
    let progress = source.snapshot_progress().tables();
    assert_eq!(
        progress,
        [(
            "inc_progress".to_string(),
            cdc_mssql::TableProgress {
                table: "dbo.items".into(),
                rows_done: 25,
                rows_estimated: 25,
                done: true,
            }
        )]
    );
}
