//! Snapshots: consistent under concurrent writes, handed over to streaming at the right LSN.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Op, SnapshotMarker, Value};
use cdc_mssql::{SnapshotIsolation, SnapshotMode};
use std::collections::BTreeMap;
use support::Target;

/// Customers 1..=n, named `c<id>`.
async fn insert_customers(target: &Target, n: i32) {
    let inserts: String = (1..=n)
        .map(|id| format!("INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"))
        .collect();
    target.run(&inserts).await;
}

#[tokio::test]
async fn snapshot_with_concurrent_writes_then_streaming_gives_every_row_once() {
    let target = Target::with_orders("snapshot_concurrent").await;
    // Writes while the snapshot is open: under SNAPSHOT isolation. (Under the REPEATABLE READ
    // a database without it gets, they wait for the snapshot's table locks: tests/locking.rs.)
    target
        .run("ALTER DATABASE [snapshot_concurrent] SET ALLOW_SNAPSHOT_ISOLATION ON;")
        .await;
    insert_customers(&target, 50).await;
    target.scan().await;

    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_chunk_size(7)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let progress = source.snapshot_progress();
    let mut state: BTreeMap<i32, Vec<Value>> = BTreeMap::new();
    let mut snapshot_events = Vec::new();
    let apply = |events: Vec<cdc_core::ChangeEvent>, state: &mut BTreeMap<i32, Vec<Value>>| {
        for e in events {
            let Value::I32(id) = e.row().unwrap().0[0] else {
                panic!()
            };
            match e.op {
                Op::Delete => assert!(
                    state.remove(&id).is_some(),
                    "delete of a row never seen: {id}"
                ),
                _ => {
                    if let Some(before) = &e.before {
                        let Value::I32(old) = before.0[0] else {
                            panic!()
                        };
                        if old != id {
                            state.remove(&old);
                        }
                    }
                    state.insert(id, e.after.unwrap().0);
                }
            }
        }
    };
    // The first chunk, then writes while the snapshot is open, then the rest.
    let first = source.next_batch().await.unwrap().unwrap();
    assert!(first.events.iter().all(|e| e.op == Op::Read));
    assert_eq!(first.events[0].source.snapshot, SnapshotMarker::First);
    snapshot_events.extend(first.events.clone());
    apply(first.events, &mut state);
    target
        .run(
            "UPDATE dbo.customers SET name = N'changed' WHERE id = 40;
             DELETE FROM dbo.customers WHERE id = 45;
             INSERT INTO dbo.customers (id, name) VALUES (51, N'new');
             UPDATE dbo.customers SET name = N'changed too' WHERE id = 2;",
        )
        .await;
    target.scan().await;
    for batch in support::drain(&mut source, 60).await {
        if batch.events.iter().any(|e| e.op == Op::Read) {
            snapshot_events.extend(batch.events.iter().cloned());
        }
        apply(batch.events, &mut state);
    }
    assert_eq!(
        snapshot_events.len(),
        50,
        "the snapshot reads the table as it was when it began"
    );
    assert_eq!(
        snapshot_events.last().unwrap().source.snapshot,
        SnapshotMarker::Last
    );
    let tables = progress.tables();
    let customers = tables
        .iter()
        .find(|(_, p)| p.table == "dbo.customers")
        .unwrap();
    assert!(
        customers.1.done && customers.1.rows_done == 50,
        "{tables:?}"
    );
    assert_eq!(customers.1.rows_estimated, 50, "{tables:?}");

    let mut conn = target.connect().await;
    let rows = support::exec(
        &mut conn,
        "SELECT id, name, credit FROM dbo.customers ORDER BY id",
    )
    .await
    .unwrap();
    let expected: BTreeMap<i32, Vec<Value>> = rows[0]
        .iter()
        .map(|r| {
            let id = r.get::<i32, _>(0).unwrap();
            (
                id,
                vec![
                    Value::I32(id),
                    Value::String(r.get::<&str, _>(1).unwrap().into()),
                    Value::Null,
                ],
            )
        })
        .collect();
    assert_eq!(state, expected, "the materialised stream equals the table");
}

#[tokio::test]
async fn initial_only_snapshots_and_ends() {
    let target = Target::with_orders("snapshot_only").await;
    target.run("INSERT INTO dbo.orders (id, customer_id, amount, placed) VALUES (1, 1, 1.5, '2024-01-01'), (2, 1, 2.5, '2024-01-02');").await;
    let mut source = target
        .source(
            target
                .config()
                .snapshot_mode(SnapshotMode::InitialOnly)
                .build()
                .unwrap(),
            None,
        )
        .await;
    let mut events = Vec::new();
    let mut heartbeat = None;
    while let Some(batch) = source.next_batch().await.unwrap() {
        events.extend(batch.events);
        heartbeat = batch.heartbeat.or(heartbeat);
    }
    assert_eq!(events.len(), 2);
    assert!(
        heartbeat.is_some(),
        "the hand-off position is reported so a later start streams from it"
    );
}

#[tokio::test]
async fn a_restart_mid_snapshot_continues_after_the_last_key() {
    let target = Target::with_orders("snapshot_resume").await;
    let mut inserts = String::new();
    for id in 1..=30 {
        inserts.push_str(&format!(
            "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
        ));
    }
    target.run(&inserts).await;
    target.scan().await;
    let config = || {
        target
            .config()
            .snapshot_mode(SnapshotMode::Initial)
            .snapshot_chunk_size(7)
            .build()
            .unwrap()
    };

    let mut first = target.source(config(), None).await;
    let mut read = Vec::new();
    while read.len() < 10 {
        read.extend(first.next_batch().await.unwrap().unwrap().events);
    }
    first.close().await.unwrap();
    let mut checkpoint = cdc_core::Checkpoint::default();
    checkpoint.advance(read.last().unwrap().position().clone());
    let id_of = |e: &cdc_core::ChangeEvent| match e.row().unwrap().0[0] {
        Value::I32(id) => id,
        _ => panic!(),
    };
    let last_id = id_of(read.last().unwrap());

    // Meanwhile: a row before the cursor changes, a row after it changes.
    target.run("UPDATE dbo.customers SET name = N'early change' WHERE id = 2; UPDATE dbo.customers SET name = N'late change' WHERE id = 29;").await;
    target.scan().await;

    let mut second = target.source(config(), Some(&checkpoint)).await;
    let mut rest = Vec::new();
    for batch in support::drain(&mut second, 40).await {
        rest.extend(batch.events);
    }
    let snapshot_ids: Vec<i32> = rest
        .iter()
        .filter(|e| e.op == Op::Read)
        .map(id_of)
        .collect();
    assert_eq!(
        snapshot_ids,
        ((last_id + 1)..=30).collect::<Vec<_>>(),
        "continues after the last key, nothing re-read"
    );
    assert!(read[0].source.commit_time.is_some());
    assert_eq!(
        rest[0].source.commit_time, read[0].source.commit_time,
        "snapshot rows carry the hand-off's commit time, the same after a restart"
    );
    let late = rest
        .iter()
        .find(|e| e.op == Op::Read && id_of(e) == 29)
        .unwrap();
    assert_eq!(
        late.after.as_ref().unwrap().0[1],
        Value::String("late change".into())
    );
    // Streaming from the original hand-off brings the change to the row read before the stop.
    assert!(
        rest.iter().any(|e| e.op == Op::Update && id_of(e) == 2),
        "the early change is streamed: {:?}",
        rest.iter()
            .map(|e| (e.op, id_of(e), e.position().to_string()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn repeatable_read_holds_shared_table_locks_until_the_snapshot_ends() {
    let target = Target::with_orders("snapshot_locks").await;
    insert_customers(&target, 20).await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_isolation(SnapshotIsolation::RepeatableRead)
        .snapshot_chunk_size(5)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let locks = "SELECT l.request_mode FROM sys.dm_tran_locks l \
                 WHERE l.resource_type = 'OBJECT' \
                 AND l.resource_associated_entity_id = OBJECT_ID('dbo.customers')";
    let mut conn = target.connect().await;

    let first = source.next_batch().await.unwrap().unwrap();
    assert_eq!(first.events[0].source.snapshot, SnapshotMarker::First);
    let held = support::exec(&mut conn, locks).await.unwrap();
    let modes: Vec<&str> = held[0].iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(
        modes,
        ["S"],
        "a shared lock on the table while the snapshot reads"
    );

    let mut snapshot_rows = first.events.len();
    while snapshot_rows < 20 {
        let batch = source.next_batch().await.unwrap().unwrap();
        snapshot_rows += batch.events.iter().filter(|e| e.op == Op::Read).count();
    }
    // The snapshot transaction ends once its last row is handed out and streaming begins.
    support::drain(&mut source, 2).await;
    let held = support::exec(&mut conn, locks).await.unwrap();
    assert!(held[0].is_empty(), "locks released when the snapshot ended");
}

/// Debezium's snapshot markers (`RelationalSnapshotChangeEventSource::setSnapshotMarker` and
/// the buffered last record): `first` on the first table's first row,
/// `first_in_data_collection` on another table's first row, `last_in_data_collection` on a
/// table's last row (also when it is its only row), `last` on the snapshot's last row, `true`
/// on the rest — also where a table's last row ends a full chunk, so that only the next,
/// empty chunk shows the table is done.
#[tokio::test]
async fn snapshot_rows_carry_debeziums_first_and_last_markers_per_table() {
    let target = Target::new("snapshot_markers").await;
    let mut script = String::new();
    for table in ["a", "b", "c", "d"] {
        script.push_str(&format!(
            "CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', @role_name = NULL;
"
        ));
    }
    script.push_str(
        "INSERT INTO dbo.a VALUES (1), (2); INSERT INTO dbo.c VALUES (1); INSERT INTO dbo.d VALUES (1), (2), (3);",
    );
    target.run(&script).await;
    let mut source = target
        .source(
            target
                .config()
                .snapshot_mode(SnapshotMode::InitialOnly)
                .snapshot_chunk_size(2)
                .build()
                .unwrap(),
            None,
        )
        .await;
    let mut markers = Vec::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        for e in batch.events {
            let Some(Value::I32(id)) = e.after.as_ref().map(|r| r.0[0].clone()) else {
                panic!("{e:?}");
            };
            markers.push((e.table.id.table.clone(), id, e.source.snapshot));
        }
    }
    use SnapshotMarker::*;
    let expected = [
        ("a", 1, First),
        ("a", 2, LastInDataCollection),
        ("c", 1, LastInDataCollection),
        ("d", 1, FirstInDataCollection),
        ("d", 2, True),
        ("d", 3, Last),
    ]
    .map(|(t, id, m)| (t.to_string(), id, m));
    assert_eq!(markers, expected);
}

/// A keyset chunk that ends inside equal values of a `datetime` first key column continues
/// exactly after its last row, with each row read once: the last key's values are compared
/// in their columns' types. tiberius binds a timestamp as `datetime2`, and SQL Server
/// converts a `datetime` to `datetime2` exactly (.003 is 1/300 s, .0033333…), so an uncast
/// `at = @P` never holds and `at > @P` holds for the row just read (ground truth 29/30; the
/// `varchar` half is C27, which needs collations the simulator does not have).
#[tokio::test]
async fn a_snapshot_chunked_by_a_datetime_and_varchar_key_reads_every_row_once() {
    let target = Target::new("snapshot_typed_keys").await;
    let mut script = String::from(
        "CREATE TABLE dbo.readings (at datetime NOT NULL, code varchar(20) NOT NULL, v int NULL, \
         CONSTRAINT pk_readings PRIMARY KEY (at, code));\n\
         EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'readings', @role_name = NULL;\n",
    );
    let ats = ["10:00:00.003", "10:00:00.007", "10:00:01.000"];
    let codes = ["Y-11-3-4", "Y1-01-1-1", "a", "b"];
    for at in ats {
        for code in codes {
            script.push_str(&format!(
                "INSERT INTO dbo.readings (at, code, v) VALUES ('2024-01-01 {at}', '{code}', 1);\n"
            ));
        }
    }
    target.run(&script).await;
    let mut source = target
        .source(
            target
                .config()
                .snapshot_mode(SnapshotMode::InitialOnly)
                .snapshot_chunk_size(3)
                .build()
                .unwrap(),
            None,
        )
        .await;
    let mut read = BTreeMap::new();
    let mut events = 0;
    // Bounded: uncast, the chunk after a boundary at `.003` re-reads the same rows for ever.
    while events <= 10 * ats.len() * codes.len()
        && let Some(batch) = source.next_batch().await.unwrap()
    {
        for event in batch.events {
            events += 1;
            let after = event.after.expect("a snapshot row has an after image");
            let key = format!("{:?}/{:?}", after.0[0], after.0[1]);
            *read.entry(key).or_insert(0) += 1;
        }
    }
    assert_eq!(
        read.len(),
        ats.len() * codes.len(),
        "every row read: {read:?}"
    );
    assert!(read.values().all(|&n| n == 1), "each row once: {read:?}");
}
