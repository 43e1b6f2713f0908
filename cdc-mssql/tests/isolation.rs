//! The snapshot's isolation on a stock server (issue 12): a new database has
//! `ALLOW_SNAPSHOT_ISOLATION OFF`, so the reader's default must work without it (REPEATABLE READ
//! with table locks, Debezium's default), use SNAPSHOT where the database allows it, and refuse
//! a configured SNAPSHOT on a database without it with a typed error naming the fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeEvent, ChangeSource, Lsn, Op, Position, Value};
use cdc_mssql::{Error, MssqlSource, SnapshotIsolation, SnapshotMode};
use support::{Target, read_events};

fn id_of(e: &ChangeEvent) -> i32 {
    match e.row().unwrap().0[0] {
        Value::I32(id) => id,
        _ => panic!("not an int key"),
    }
}

fn commit_lsn(e: &ChangeEvent) -> Lsn {
    match e.position() {
        Position::SqlServer(p) => p.commit_lsn,
        other => panic!("{other}"),
    }
}

/// Table locks (`request_mode`, table name) other sessions hold in the test database now.
async fn held_table_locks(target: &Target) -> Vec<(String, String)> {
    let mut conn = target.connect().await;
    let rows = support::exec(
        &mut conn,
        "SELECT l.request_mode, OBJECT_NAME(l.resource_associated_entity_id) FROM sys.dm_tran_locks l \
         WHERE l.resource_type = 'OBJECT' AND l.resource_database_id = DB_ID() AND l.request_session_id <> @@SPID \
         ORDER BY 2",
    )
    .await
    .unwrap();
    rows[0]
        .iter()
        .map(|r| {
            (
                r.get::<&str, _>(0).unwrap().to_string(),
                r.get::<&str, _>(1).unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Polls until a batch carries a heartbeat position (the snapshot's hand-off), within a bound.
async fn read_through_handoff(source: &mut MssqlSource) -> Vec<ChangeEvent> {
    let mut events = Vec::new();
    for _ in 0..200 {
        let batch = source.next_batch().await.unwrap().unwrap();
        events.extend(batch.events);
        if batch.heartbeat.is_some() {
            return events;
        }
    }
    panic!("no hand-off within 200 polls");
}

async fn snapshot_then_stream_once(target: &Target) -> (Vec<(String, String)>, Vec<(Op, i32)>) {
    target
        .run(
            "INSERT INTO dbo.customers (id, name) VALUES (1, N'a');
             INSERT INTO dbo.customers (id, name) VALUES (2, N'b');",
        )
        .await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_chunk_size(1)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    // The snapshot transaction is open now: what does it hold?
    let locks = held_table_locks(target).await;
    let snapshot = read_through_handoff(&mut source).await;
    assert_eq!(
        snapshot
            .iter()
            .map(|e| (e.op, id_of(e)))
            .collect::<Vec<_>>(),
        [(Op::Read, 1), (Op::Read, 2)]
    );
    let handoff = commit_lsn(&snapshot[0]);
    target.scan().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (3, N'c');")
        .await;
    target.scan().await;
    let streamed = read_events(&mut source, 1).await;
    let rest = support::drain(&mut source, 10).await;
    let streamed: Vec<_> = streamed
        .into_iter()
        .chain(rest.into_iter().flat_map(|b| b.events))
        .collect();
    assert!(streamed.iter().all(|e| commit_lsn(e) > handoff));
    (locks, streamed.iter().map(|e| (e.op, id_of(e))).collect())
}

#[tokio::test]
async fn an_unset_isolation_snapshots_a_database_without_snapshot_isolation_under_repeatable_read_table_locks()
 {
    let target = Target::with_orders("iso_default_off").await;
    let (locks, streamed) = snapshot_then_stream_once(&target).await;
    assert_eq!(
        locks,
        [
            ("S".to_string(), "customers".to_string()),
            ("S".to_string(), "orders".to_string())
        ],
        "REPEATABLE READ holds shared table locks for the whole snapshot"
    );
    assert_eq!(streamed, [(Op::Create, 3)], "each row exactly once");
}

#[tokio::test]
async fn an_unset_isolation_snapshots_a_database_with_snapshot_isolation_under_snapshot_without_locks()
 {
    let target = Target::with_orders("iso_default_on").await;
    target
        .run("ALTER DATABASE [iso_default_on] SET ALLOW_SNAPSHOT_ISOLATION ON;")
        .await;
    let (locks, streamed) = snapshot_then_stream_once(&target).await;
    assert_eq!(
        locks,
        [],
        "a SNAPSHOT read holds no table locks past its read point"
    );
    assert_eq!(streamed, [(Op::Create, 3)], "each row exactly once");
}

#[tokio::test]
async fn a_configured_snapshot_isolation_on_a_database_without_it_fails_at_start_with_the_alter_database_statement()
 {
    let target = Target::with_orders("iso_configured_off").await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_isolation(SnapshotIsolation::Snapshot)
        .build()
        .unwrap();
    let mut source = MssqlSource::new(config);
    let err = source.start(None).await.unwrap_err();
    let cdc_core::Error::Source { source, .. } = err else {
        panic!("{err}")
    };
    let err = *source.downcast::<Error>().unwrap();
    match &err {
        Error::SnapshotIsolationNotAllowed {
            database,
            state,
            statement,
        } => {
            assert_eq!(database, "iso_configured_off");
            assert_eq!(*state, 0);
            assert_eq!(
                statement,
                "ALTER DATABASE [iso_configured_off] SET ALLOW_SNAPSHOT_ISOLATION ON;"
            );
        }
        other => panic!("{other}"),
    }
    assert!(
        err.to_string()
            .contains("ALTER DATABASE [iso_configured_off] SET ALLOW_SNAPSHOT_ISOLATION ON;"),
        "{err}"
    );
}
