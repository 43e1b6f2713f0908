//! Blocking snapshots (issue 17, Debezium's `execute-snapshot` with `"type": "blocking"`):
//! streaming waits while the tables are read in chunks, the rows go out after everything
//! streamed before, in position order, and streaming resumes where it waited — also after a
//! restart in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeEvent, ChangeSource, Checkpoint, Op, Position, SnapshotMarker};
use cdc_mssql::{ExecuteSnapshot, MssqlSource, NewTableSnapshot};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use support::{Target, int};

/// `dbo.items` (rows `1..=rows`, version 1) and an empty `dbo.customers`, both captured.
async fn items_and_customers(name: &str, rows: i32) -> Target {
    let target = Target::new(name).await;
    let mut sql = String::from(
        "CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, version int NOT NULL);
         GO
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'items', @role_name = NULL;
         GO
         CREATE TABLE dbo.customers (id int NOT NULL PRIMARY KEY, version int NOT NULL);
         GO
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL;
         GO
         BEGIN TRANSACTION;\n",
    );
    for id in 1..=rows {
        sql.push_str(&format!(
            "INSERT INTO dbo.items (id, version) VALUES ({id}, 1);\n"
        ));
    }
    sql.push_str("COMMIT TRANSACTION;");
    target.run(&sql).await;
    target.scan().await;
    target
}

/// A consumer applying events in arrival order, checking that every position (events and
/// heartbeats) moves strictly forward — a sink skips anything at or before what it holds —
/// and that the file-name token of each event's position sorts the same way.
#[derive(Default)]
struct Consumer {
    /// `table -> id -> version`.
    tables: BTreeMap<String, BTreeMap<i32, i32>>,
    /// `(table, op, id, marker)` of every event, in arrival order.
    log: Vec<(String, Op, i32, SnapshotMarker)>,
    last: Option<Position>,
    last_token: Option<String>,
    checkpoint: Checkpoint,
}

impl Consumer {
    fn forward(&mut self, position: &Position) {
        if let Some(last) = &self.last {
            assert_eq!(
                last.partial_cmp(position),
                Some(Ordering::Less),
                "position {position} does not follow {last}"
            );
        }
        self.last = Some(position.clone());
        self.checkpoint.advance(position.clone());
    }

    fn apply(&mut self, e: &ChangeEvent) {
        self.forward(e.position());
        let token = e.position().sort_token();
        if let Some(last) = &self.last_token {
            assert!(*last < token, "file-name token {token} sorts before {last}");
        }
        self.last_token = Some(token);
        let table = e.table.id.table.to_string();
        let row = e.after.as_ref().or(e.before.as_ref()).unwrap();
        let (id, version) = (int(&row.0[0]), int(&row.0[1]));
        self.log.push((table.clone(), e.op, id, e.source.snapshot));
        let rows = self.tables.entry(table).or_default();
        match e.op {
            Op::Read | Op::Create | Op::Update => {
                rows.insert(id, version);
            }
            Op::Delete => {
                rows.remove(&id);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// One batch; whether it said anything.
    async fn one(&mut self, source: &mut MssqlSource) -> bool {
        let batch = source.next_batch().await.unwrap().unwrap();
        for e in &batch.events {
            self.apply(e);
        }
        if let Some(h) = &batch.heartbeat {
            self.forward(h);
        }
        !batch.events.is_empty() || batch.heartbeat.is_some()
    }

    /// Batches until the source has nothing more to say (bounded).
    async fn pump(&mut self, source: &mut MssqlSource) {
        for _ in 0..1000 {
            if !self.one(source).await {
                return;
            }
        }
        panic!("the source did not go quiet within 1000 batches");
    }

    fn reads(&self) -> Vec<i32> {
        self.log
            .iter()
            .filter(|(_, op, ..)| *op == Op::Read)
            .map(|(_, _, id, _)| *id)
            .collect()
    }
}

/// A table as the database holds it: `id -> version`.
async fn table(target: &Target, name: &str) -> BTreeMap<i32, i32> {
    let mut conn = target.connect().await;
    let rows = support::exec(&mut conn, &format!("SELECT id, version FROM dbo.{name}"))
        .await
        .unwrap();
    rows[0]
        .iter()
        .map(|r| (r.get::<i32, _>(0).unwrap(), r.get::<i32, _>(1).unwrap()))
        .collect()
}

async fn start_source(target: &Target, chunk: u32, checkpoint: Option<&Checkpoint>) -> MssqlSource {
    let mut source =
        MssqlSource::new(target.streaming().build().unwrap()).incremental_chunk_size(chunk);
    source.start(checkpoint).await.unwrap();
    source
}

#[tokio::test]
async fn a_blocking_snapshot_pauses_streaming_then_streaming_resumes_where_it_paused() {
    let target = items_and_customers("blk_pause", 25).await;
    let mut source = start_source(&target, 10, None).await;
    let mut consumer = Consumer::default();
    target
        .run("INSERT INTO dbo.customers (id, version) VALUES (1, 1);")
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;
    assert_eq!(
        consumer.log.len(),
        1,
        "the customer streamed before the signal"
    );

    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::blocking(["dbo.items"]))
        .unwrap();
    assert!(consumer.one(&mut source).await);
    assert_eq!(consumer.reads(), (1..=10).collect::<Vec<_>>(), "one chunk");
    // Changes while the snapshot runs: of a key already read, of a key not read yet (updated
    // and deleted), and of the other table. None may stream before the snapshot ends.
    target
        .run(
            "UPDATE dbo.items SET version = 2 WHERE id IN (3, 24);
             DELETE FROM dbo.items WHERE id = 22;
             INSERT INTO dbo.customers (id, version) VALUES (2, 1);",
        )
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;

    let ops: Vec<(&str, Op)> = consumer
        .log
        .iter()
        .map(|(t, op, ..)| (t.as_str(), *op))
        .collect();
    let first_read = ops.iter().position(|(_, op)| *op == Op::Read).unwrap();
    let last_read = ops.iter().rposition(|(_, op)| *op == Op::Read).unwrap();
    assert!(
        ops[first_read..=last_read]
            .iter()
            .all(|(t, op)| *t == "items" && *op == Op::Read),
        "nothing streamed while the snapshot ran: {ops:?}"
    );
    let mut expected_reads: Vec<i32> = (1..=25).filter(|&id| id != 22).collect();
    expected_reads.sort_unstable();
    assert_eq!(
        consumer.reads(),
        expected_reads,
        "each row once, in key order"
    );
    assert_eq!(
        &ops[last_read + 1..],
        [
            ("items", Op::Update),
            ("items", Op::Update),
            ("items", Op::Delete),
            ("customers", Op::Create)
        ],
        "the changes made meanwhile followed the snapshot"
    );
    let markers: Vec<SnapshotMarker> = consumer
        .log
        .iter()
        .filter(|(_, op, ..)| *op == Op::Read)
        .map(|(.., marker)| *marker)
        .collect();
    assert_eq!(markers.first(), Some(&SnapshotMarker::First));
    assert_eq!(markers.last(), Some(&SnapshotMarker::Last));
    assert!(
        markers[1..markers.len() - 1]
            .iter()
            .all(|m| *m == SnapshotMarker::True),
        "{markers:?}"
    );
    assert_eq!(consumer.tables["items"], table(&target, "items").await);
    assert_eq!(
        consumer.tables["customers"],
        table(&target, "customers").await
    );
    // Its rows are counted where the initial snapshot counts its own: 10 read before it
    // turned blocking, 14 after (row 22 was deleted in between).
    let items = source
        .snapshot_progress()
        .tables()
        .into_iter()
        .find(|(_, t)| t.table == "dbo.items")
        .map(|(_, t)| (t.rows_done, t.done));
    assert_eq!(items, Some((24, true)));

    // Streaming goes on after it.
    target
        .run("INSERT INTO dbo.customers (id, version) VALUES (3, 1);")
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;
    assert_eq!(
        consumer
            .log
            .last()
            .map(|(t, op, id, _)| (t.as_str(), *op, *id)),
        Some(("customers", Op::Create, 3))
    );
}

#[tokio::test]
async fn a_restart_in_a_blocking_snapshot_continues_after_the_last_durable_row_then_streams() {
    let target = items_and_customers("blk_restart", 25).await;
    let mut source = start_source(&target, 10, None).await;
    let mut consumer = Consumer::default();
    consumer.pump(&mut source).await;
    source
        .signals()
        .execute_snapshot(ExecuteSnapshot::blocking(["blk_restart.dbo.items"]))
        .unwrap();
    let batch = source.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.events.len(), 10);
    // Only the first four rows became durable; a change is committed meanwhile.
    for e in &batch.events[..4] {
        consumer.apply(e);
    }
    let checkpoint = consumer.checkpoint.clone();
    source.close().await.unwrap();
    target
        .run("UPDATE dbo.items SET version = 2 WHERE id = 2;")
        .await;
    target.scan().await;

    let mut source = start_source(&target, 10, Some(&checkpoint)).await;
    consumer.pump(&mut source).await;
    assert_eq!(
        consumer.reads(),
        (1..=25).collect::<Vec<_>>(),
        "rows 5.. after the restart, none twice"
    );
    assert_eq!(
        consumer
            .log
            .last()
            .map(|(t, op, id, _)| (t.as_str(), *op, *id)),
        Some(("items", Op::Update, 2)),
        "the change streamed after the snapshot's last row"
    );
    assert_eq!(consumer.tables["items"], table(&target, "items").await);

    // A second restart from the end: no snapshot row again.
    let checkpoint = consumer.checkpoint.clone();
    source.close().await.unwrap();
    let mut source = start_source(&target, 10, Some(&checkpoint)).await;
    let before = consumer.log.len();
    consumer.pump(&mut source).await;
    assert_eq!(consumer.log.len(), before, "nothing handed out twice");
}

#[tokio::test]
async fn with_new_table_snapshot_blocking_a_newly_captured_table_is_read_with_streaming_paused() {
    let target = items_and_customers("blk_new_table", 0).await;
    target
        .run(
            "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, version int NOT NULL);
             GO
             INSERT INTO dbo.orders (id, version) VALUES (1, 1), (2, 1), (3, 1);",
        )
        .await;
    let mut source = MssqlSource::new(
        target
            .streaming()
            .new_table_snapshot(NewTableSnapshot::Blocking)
            .build()
            .unwrap(),
    )
    .incremental_chunk_size(2);
    source.start(None).await.unwrap();
    let mut consumer = Consumer::default();
    consumer.pump(&mut source).await;
    target
        .run(
            "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL;
             GO
             INSERT INTO dbo.customers (id, version) VALUES (1, 1);",
        )
        .await;
    target.scan().await;
    for _ in 0..10 {
        consumer.pump(&mut source).await;
        if consumer.reads().len() == 3 {
            break;
        }
        target.scan().await;
    }
    assert_eq!(consumer.reads(), [1, 2, 3]);
    assert!(
        consumer
            .log
            .iter()
            .filter(|(_, op, ..)| *op == Op::Read)
            .all(|(t, ..)| t == "orders")
    );
    assert_eq!(consumer.tables["orders"], table(&target, "orders").await);
    assert_eq!(
        consumer.tables["customers"],
        table(&target, "customers").await
    );
}

/// A blocking snapshot whose filter the server refuses drops that table, reads the others, and
/// streaming resumes (before, the pipeline stopped).
#[tokio::test]
async fn a_refused_filter_drops_its_table_from_a_blocking_snapshot_and_streaming_resumes() {
    let target = items_and_customers("blk_bad_filter", 5).await;
    target
        .run("INSERT INTO dbo.customers (id, version) VALUES (1, 1), (2, 1);")
        .await;
    target.scan().await;
    let mut source = start_source(&target, 10, None).await;
    let mut consumer = Consumer::default();
    consumer.pump(&mut source).await;
    source
        .signals()
        .execute_snapshot(
            ExecuteSnapshot::blocking(["dbo.items", "dbo.customers"])
                .with_condition("dbo.items", "nosuchcol = 1"),
        )
        .unwrap();
    consumer.pump(&mut source).await;
    assert_eq!(consumer.reads(), [1, 2], "only the customers");
    target
        .run("INSERT INTO dbo.customers (id, version) VALUES (3, 1);")
        .await;
    target.scan().await;
    consumer.pump(&mut source).await;
    assert_eq!(
        consumer
            .log
            .last()
            .map(|(t, op, id, _)| (t.as_str(), *op, *id)),
        Some(("customers", Op::Create, 3))
    );
}
