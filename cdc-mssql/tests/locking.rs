//! The snapshot's locks as a real server enforces them (issue 12): the simulator makes writers
//! wait for locks, so what the reader's snapshot isolation costs the database's writers shows
//! here. Under REPEATABLE READ (the default where `ALLOW_SNAPSHOT_ISOLATION` is OFF) the
//! snapshot's shared table locks make a writer of a captured table wait until the snapshot's
//! transaction ends, and the writer's change then streams exactly once; under SNAPSHOT the
//! writer does not wait.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use cdc_core::{ChangeEvent, ChangeSource, Op, SnapshotMarker, Value};
use cdc_mssql::{MssqlSource, SnapshotIsolation, SnapshotMode};
use support::Target;

/// How long a test waits for a condition before it fails (each wait ends as soon as its
/// condition holds).
const PATIENCE: Duration = Duration::from_secs(20);

fn id_of(e: &ChangeEvent) -> i32 {
    match e.row().unwrap().0[0] {
        Value::I32(id) => id,
        _ => panic!("not an int key"),
    }
}

fn name_of(e: &ChangeEvent) -> Value {
    e.row().unwrap().0[1].clone()
}

async fn customers(target: &Target, n: i32) {
    let inserts: String = (1..=n)
        .map(|id| format!("INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"))
        .collect();
    target.run(&inserts).await;
    target.scan().await;
}

/// Sessions of the test database waiting for a lock now (`sys.dm_tran_locks`).
async fn waiting_sessions(target: &Target) -> Vec<i32> {
    let mut conn = target.connect().await;
    let rows = support::exec(
        &mut conn,
        "SELECT request_session_id FROM sys.dm_tran_locks \
         WHERE request_status = 'WAIT' AND resource_database_id = DB_ID()",
    )
    .await
    .unwrap();
    rows[0]
        .iter()
        .map(|r| r.get::<i32, _>(0).unwrap())
        .collect()
}

/// Shared table locks other sessions hold on `dbo.customers` now.
async fn customers_table_locks(target: &Target) -> usize {
    let mut conn = target.connect().await;
    let rows = support::exec(
        &mut conn,
        "SELECT request_mode FROM sys.dm_tran_locks WHERE resource_type = 'OBJECT' \
         AND request_status = 'GRANT' AND resource_associated_entity_id = OBJECT_ID('dbo.customers')",
    )
    .await
    .unwrap();
    rows[0].len()
}

/// A writer on its own connection: its session id and the task running `sql`.
async fn writer(
    target: &Target,
    sql: &'static str,
) -> (i32, tokio::task::JoinHandle<tiberius::Result<()>>) {
    let mut conn = target.connect().await;
    let spid = support::exec(&mut conn, "SELECT @@SPID").await.unwrap()[0][0]
        .get::<i32, _>(0)
        .unwrap();
    let task = tokio::spawn(async move { support::exec(&mut conn, sql).await.map(|_| ()) });
    (spid, task)
}

/// Waits (bounded) until session `spid` waits for a lock.
async fn until_waiting(target: &Target, spid: i32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !waiting_sessions(target).await.contains(&spid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the writer never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pulls snapshot batches until the snapshot's last row (marker `last`).
async fn read_to_last_snapshot_row(source: &mut MssqlSource) -> Vec<ChangeEvent> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let batch = source.next_batch().await.unwrap().unwrap();
        let last = batch
            .events
            .iter()
            .any(|e| e.source.snapshot == SnapshotMarker::Last);
        events.extend(batch.events);
        if last {
            return events;
        }
    }
    panic!("no last snapshot row within 100 polls");
}

/// Streams until an event for customer `id` arrived, then a few polls more (to see that no
/// second one follows); the events for `id`.
async fn streamed_for(source: &mut MssqlSource, target: &Target, id: i32) -> Vec<ChangeEvent> {
    target.scan().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut found = Vec::new();
    while found.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no change for {id}");
        let batch = source.next_batch().await.unwrap().unwrap();
        found.extend(batch.events.into_iter().filter(|e| id_of(e) == id));
    }
    for batch in support::drain(source, 5).await {
        found.extend(batch.events.into_iter().filter(|e| id_of(e) == id));
    }
    found
}

#[tokio::test]
async fn a_repeatable_read_snapshot_blocks_a_writer_until_its_transaction_ends_and_the_change_streams_once()
 {
    let target = Target::with_orders("locking_rr").await;
    customers(&target, 20).await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_isolation(SnapshotIsolation::RepeatableRead)
        .snapshot_chunk_size(7)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let mut snapshot = source.next_batch().await.unwrap().unwrap().events;
    assert!(snapshot.iter().all(|e| e.op == Op::Read));
    // Customer 18 is not read yet; the writer waits for the snapshot's table lock.
    let (spid, update) = writer(
        &target,
        "UPDATE dbo.customers SET name = N'changed' WHERE id = 18",
    )
    .await;
    until_waiting(&target, spid).await;
    assert!(!update.is_finished());
    snapshot.extend(read_to_last_snapshot_row(&mut source).await);
    // The snapshot read the row before the writer could change it ...
    let row18: Vec<_> = snapshot.iter().filter(|e| id_of(e) == 18).collect();
    assert_eq!(row18.len(), 1);
    assert_eq!(name_of(row18[0]), Value::String("c18".into()));
    // ... and its transaction ended with its last row: the writer goes on.
    tokio::time::timeout(PATIENCE, update)
        .await
        .expect("the writer still waits after the snapshot")
        .unwrap()
        .unwrap();
    let streamed = streamed_for(&mut source, &target, 18).await;
    assert_eq!(
        streamed
            .iter()
            .map(|e| (e.op, name_of(e)))
            .collect::<Vec<_>>(),
        [(Op::Update, Value::String("changed".into()))],
        "the change streams exactly once"
    );
    let last_read = snapshot.last().unwrap().position();
    assert!(streamed[0].position() > last_read, "after the snapshot");
}

#[tokio::test]
async fn under_snapshot_isolation_a_writer_does_not_wait_for_the_snapshot() {
    let target = Target::with_orders("locking_snapshot").await;
    target
        .run("ALTER DATABASE [locking_snapshot] SET ALLOW_SNAPSHOT_ISOLATION ON;")
        .await;
    customers(&target, 20).await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_isolation(SnapshotIsolation::Snapshot)
        .snapshot_chunk_size(7)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let mut snapshot = source.next_batch().await.unwrap().unwrap().events;
    assert!(snapshot.iter().all(|e| e.op == Op::Read));
    // The snapshot is open (nothing more pulled) and the writer finishes anyway.
    let (_, update) = writer(
        &target,
        "UPDATE dbo.customers SET name = N'changed' WHERE id = 18",
    )
    .await;
    tokio::time::timeout(PATIENCE, update)
        .await
        .expect("the writer waited for a SNAPSHOT snapshot")
        .unwrap()
        .unwrap();
    snapshot.extend(read_to_last_snapshot_row(&mut source).await);
    let row18: Vec<_> = snapshot.iter().filter(|e| id_of(e) == 18).collect();
    assert_eq!(row18.len(), 1);
    assert_eq!(
        name_of(row18[0]),
        Value::String("c18".into()),
        "the snapshot reads as of its read point"
    );
    let streamed = streamed_for(&mut source, &target, 18).await;
    assert_eq!(
        streamed
            .iter()
            .map(|e| (e.op, name_of(e)))
            .collect::<Vec<_>>(),
        [(Op::Update, Value::String("changed".into()))],
        "the change streams exactly once"
    );
}

#[tokio::test]
async fn the_snapshot_transaction_ends_before_its_last_row_is_handed_out() {
    let target = Target::with_orders("locking_last_row").await;
    customers(&target, 5).await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_isolation(SnapshotIsolation::RepeatableRead)
        .snapshot_chunk_size(2)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    assert_eq!(
        customers_table_locks(&target).await,
        1,
        "the snapshot's S lock"
    );
    read_to_last_snapshot_row(&mut source).await;
    // The consumer holds the last row and pulls nothing more: nothing is locked any longer,
    // so a writer does not wait for the consumer's next poll.
    assert_eq!(customers_table_locks(&target).await, 0);
    let (_, update) = writer(&target, "UPDATE dbo.customers SET name = N'x' WHERE id = 1").await;
    tokio::time::timeout(PATIENCE, update)
        .await
        .expect("the writer waits for a snapshot whose rows were all handed out")
        .unwrap()
        .unwrap();
}
