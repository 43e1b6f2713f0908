//! Hand-offs (issue 11): from the snapshot to streaming, from one poll to the next heartbeat,
//! from one connection to the next in the middle of a snapshot, and from page to page inside
//! one large transaction. No change may arrive twice or never.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeEvent, ChangeSource, Lsn, Op, Position, Value};
use cdc_mssql::{Error, RetentionPolicy, SnapshotMode};
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

/// Polls until a batch carries a heartbeat position (the snapshot's hand-off), within a bound.
async fn read_through_handoff(source: &mut cdc_mssql::MssqlSource) -> Vec<ChangeEvent> {
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

#[tokio::test]
async fn rows_committed_but_not_yet_captured_arrive_once_from_the_snapshot_only() {
    let target = Target::with_orders("handoff_uncaptured").await;
    // Three committed transactions the capture job has not read yet.
    target
        .run(
            "INSERT INTO dbo.customers (id, name) VALUES (1, N'a');
             INSERT INTO dbo.customers (id, name) VALUES (2, N'b');
             INSERT INTO dbo.customers (id, name) VALUES (3, N'c');",
        )
        .await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let snapshot = read_through_handoff(&mut source).await;
    assert_eq!(
        snapshot
            .iter()
            .map(|e| (e.op, id_of(e)))
            .collect::<Vec<_>>(),
        [(Op::Read, 1), (Op::Read, 2), (Op::Read, 3)]
    );
    let handoff = commit_lsn(&snapshot[0]);
    assert_ne!(
        handoff,
        Lsn::ZERO,
        "snapshot rows carry the hand-off's log position as their commit LSN, as Debezium's do"
    );
    assert!(snapshot.iter().all(|e| commit_lsn(e) == handoff));

    // Now the capture job reads the three, then one more row is committed and captured.
    target.scan().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (4, N'd');")
        .await;
    target.scan().await;
    let streamed = read_events(&mut source, 1).await;
    let rest = support::drain(&mut source, 10).await;
    let streamed: Vec<_> = streamed
        .into_iter()
        .chain(rest.into_iter().flat_map(|b| b.events))
        .collect();
    assert_eq!(
        streamed
            .iter()
            .map(|e| (e.op, id_of(e)))
            .collect::<Vec<_>>(),
        [(Op::Create, 4)],
        "only the row committed after the snapshot's read point is streamed"
    );
    assert!(commit_lsn(&streamed[0]) > handoff);
}

#[tokio::test]
async fn the_snapshot_handoff_is_the_log_position_of_its_read_point_not_the_capture_jobs() {
    let target = Target::with_orders("handoff_position").await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'a');")
        .await;
    target.scan().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (2, N'b');")
        .await;
    // The capture job got as far as the first insert; the log is past the second.
    let mut conn = target.connect().await;
    let max = support::exec(&mut conn, "SELECT sys.fn_cdc_get_max_lsn()")
        .await
        .unwrap();
    let captured = Lsn::from_bytes(max[0][0].get::<&[u8], _>(0).unwrap()).unwrap();
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::InitialOnly)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let mut events = Vec::new();
    let mut handoff = None;
    while let Some(batch) = source.next_batch().await.unwrap() {
        events.extend(batch.events);
        handoff = batch.heartbeat.or(handoff);
    }
    let Some(Position::SqlServer(handoff)) = handoff else {
        panic!("no hand-off")
    };
    assert_eq!(events.len(), 2);
    assert!(
        handoff.commit_lsn > captured,
        "hand-off {} must lie past the second insert, not at the capture job's {}",
        handoff.commit_lsn,
        captured
    );
}

#[tokio::test]
async fn a_heartbeat_never_moves_past_a_transaction_captured_after_the_poll_read_its_window() {
    let target = Target::with_orders("handoff_heartbeat").await;
    let sim = target
        .sim
        .as_ref()
        .expect("drives the simulator's fault hooks");
    let config = target
        .streaming()
        .heartbeat_interval(Some(std::time::Duration::from_millis(1)))
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    // Committed, not yet captured.
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'a');")
        .await;
    // The capture job runs right after the poll's window query, before its (empty) reply.
    sim.faults().scan_after_next("lsn_time_mapping");
    let mut events = Vec::new();
    let mut last_heartbeat = None;
    for _ in 0..100 {
        let batch = source.next_batch().await.unwrap().unwrap();
        if events.is_empty()
            && batch.events.is_empty()
            && let Some(Position::SqlServer(h)) = &batch.heartbeat
        {
            last_heartbeat = Some(h.clone());
        }
        events.extend(batch.events);
        if !events.is_empty() {
            break;
        }
    }
    assert_eq!(
        events.iter().map(|e| (e.op, id_of(e))).collect::<Vec<_>>(),
        [(Op::Create, 1)],
        "the insert arrives (heartbeat before it: {last_heartbeat:?})"
    );
    if let Some(h) = last_heartbeat {
        assert!(
            h.commit_lsn < commit_lsn(&events[0]),
            "no heartbeat before the insert moved past it"
        );
    }
}

#[tokio::test]
async fn an_idle_capture_job_marks_progress_that_moves_a_quiet_reader() {
    let target = Target::with_orders("handoff_idle").await;
    target
        .run("CREATE TABLE dbo.untracked (id int PRIMARY KEY);")
        .await;
    let mut source = target.streaming_source().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'a');")
        .await;
    target.scan().await;
    let first = read_events(&mut source, 1).await;
    // Only an untracked table changes: the capture job records a tran_id = 0x00 row.
    target
        .run("INSERT INTO dbo.untracked (id) VALUES (1);")
        .await;
    target.scan().await;
    let mut conn = target.connect().await;
    let marks = support::exec(
        &mut conn,
        "SELECT start_lsn, tran_id FROM cdc.lsn_time_mapping WHERE tran_id = 0x00",
    )
    .await
    .unwrap();
    let all = support::exec(
        &mut conn,
        "SELECT start_lsn, tran_id FROM cdc.lsn_time_mapping",
    )
    .await
    .unwrap();
    assert!(
        !marks[0].is_empty(),
        "the capture job marks its progress: {:?}",
        all[0]
    );
    let mut moved = None;
    for batch in support::drain(&mut source, 20).await {
        assert!(batch.events.is_empty());
        if let Some(Position::SqlServer(h)) = batch.heartbeat {
            moved = Some(h);
        }
    }
    let moved = moved.expect("the quiet reader's position moves");
    assert!(moved.commit_lsn > commit_lsn(&first[0]));
}

/// Inserts 1 and 2, snapshots them, reads through the hand-off, then 3 and 4 are captured and
/// the change table is cleaned up to the newest LSN: 3 is gone before the reader saw it.
async fn cleaned_after_handoff(
    name: &str,
    policy: RetentionPolicy,
) -> (Target, cdc_mssql::MssqlSource) {
    let target = Target::with_orders(name).await;
    target
        .run(
            "INSERT INTO dbo.customers (id, name) VALUES (1, N'a');
             INSERT INTO dbo.customers (id, name) VALUES (2, N'b');",
        )
        .await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .retention_policy(policy)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let snapshot = read_through_handoff(&mut source).await;
    assert_eq!(snapshot.len(), 2);
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (3, N'c');")
        .await;
    target.scan().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (4, N'd');")
        .await;
    target.scan().await;
    target
        .run("DECLARE @lwm binary(10) = sys.fn_cdc_get_max_lsn(); EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_customers', @low_water_mark = @lwm;")
        .await;
    (target, source)
}

#[tokio::test]
async fn cleanup_right_after_the_snapshot_handoff_is_a_typed_error() {
    let (_target, mut source) =
        cleaned_after_handoff("handoff_retention_fail", RetentionPolicy::Fail).await;
    let mut seen = Vec::new();
    let mut polls = 0;
    let err = loop {
        polls += 1;
        assert!(polls < 200, "no error within 200 polls; streamed {seen:?}");
        match source.next_batch().await {
            Ok(Some(batch)) => {
                seen.extend(batch.events);
                assert!(seen.len() < 10, "no error: {seen:?}");
            }
            Ok(None) => panic!("ended"),
            Err(e) => break e,
        }
    };
    assert!(seen.is_empty(), "nothing streamed past the gap: {seen:?}");
    let cdc_core::Error::Source { source, .. } = &err else {
        panic!("{err}")
    };
    match source.downcast_ref::<Error>().unwrap() {
        Error::LsnNotAvailable {
            capture_instance, ..
        } => assert_eq!(capture_instance, "dbo_customers"),
        other => panic!("expected LsnNotAvailable, got {other}"),
    }
}

#[tokio::test]
async fn cleanup_right_after_the_snapshot_handoff_resnapshots_under_that_policy() {
    let (_target, mut source) =
        cleaned_after_handoff("handoff_retention_resnapshot", RetentionPolicy::Resnapshot).await;
    let events = read_events(&mut source, 4).await;
    assert_eq!(
        events.iter().map(|e| (e.op, id_of(e))).collect::<Vec<_>>(),
        [(Op::Read, 1), (Op::Read, 2), (Op::Read, 3), (Op::Read, 4)],
        "a new snapshot holds every current row"
    );
}

#[tokio::test]
async fn a_connection_lost_mid_snapshot_takes_the_snapshot_again_at_one_point_in_time() {
    let target = Target::with_orders("handoff_snapshot_reconnect").await;
    // Writes while the snapshot is open: under SNAPSHOT isolation, where they do not wait
    // for the snapshot (under REPEATABLE READ they would wait for its table locks).
    target
        .run("ALTER DATABASE [handoff_snapshot_reconnect] SET ALLOW_SNAPSHOT_ISOLATION ON;")
        .await;
    let sim = target
        .sim
        .as_ref()
        .expect("drives the simulator's fault hooks");
    let inserts: String = (1..=30)
        .map(|id| format!("INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"))
        .collect();
    target.run(&inserts).await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .snapshot_chunk_size(7)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let mut events = source.next_batch().await.unwrap().unwrap().events;
    assert!(!events.is_empty() && events.iter().all(|e| e.op == Op::Read));
    let first_read = commit_lsn(&events[0]);
    // Writes after the snapshot's read point, then the connection breaks mid-chunk.
    target
        .run(
            "UPDATE dbo.customers SET name = N'changed' WHERE id = 29;
             INSERT INTO dbo.customers (id, name) VALUES (31, N'new');",
        )
        .await;
    target.scan().await;
    sim.faults().close_after_rows(2);
    events.extend(read_through_handoff(&mut source).await);
    for batch in support::drain(&mut source, 10).await {
        events.extend(batch.events);
    }

    // Positions only grow: none repeats.
    for pair in events.windows(2) {
        assert!(
            pair[0].position() < pair[1].position(),
            "{} then {}",
            pair[0].position(),
            pair[1].position()
        );
    }
    // Every row after the break comes from one new read point, which holds both writes.
    let second: Vec<&ChangeEvent> = events
        .iter()
        .filter(|e| e.op == Op::Read && commit_lsn(e) != first_read)
        .collect();
    assert!(
        second.iter().all(|e| commit_lsn(e) > first_read),
        "the snapshot was taken again after the break"
    );
    assert_eq!(
        second.iter().map(|e| id_of(e)).collect::<Vec<_>>(),
        (1..=31).collect::<Vec<_>>(),
        "the new read covers every table from its first row"
    );
    let row29 = second.iter().find(|e| id_of(e) == 29).unwrap();
    assert_eq!(
        row29.after.as_ref().unwrap().0[1],
        Value::String("changed".into())
    );
    // Reads at the first point end where the break happened: a prefix of the table.
    let first: Vec<i32> = events
        .iter()
        .filter(|e| e.op == Op::Read && commit_lsn(e) == first_read)
        .map(id_of)
        .collect();
    assert_eq!(first, (1..=first.len() as i32).collect::<Vec<_>>());
    assert!(first.len() < 30);
    // The writes are in the new snapshot, so they are not streamed again.
    let streamed: Vec<_> = events
        .iter()
        .filter(|e| e.op != Op::Read)
        .map(|e| (e.op, id_of(e)))
        .collect();
    assert!(streamed.is_empty(), "{streamed:?}");
}

#[tokio::test]
async fn a_large_transaction_is_fetched_page_by_page_not_held_whole() {
    let target = Target::with_orders("handoff_large_tx").await;
    let sim = target
        .sim
        .as_ref()
        .expect("drives the simulator's fault hooks");
    let config = || {
        target
            .streaming()
            .page_size(10)
            .max_batch_events(10)
            .build()
            .unwrap()
    };
    let mut source = target.source(config(), None).await;
    let mut checkpoint = cdc_core::Checkpoint::default();
    let mut sql = String::from("BEGIN TRANSACTION;\n");
    for id in 1..=100 {
        sql.push_str(&format!(
            "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
        ));
    }
    sql.push_str("COMMIT TRANSACTION;");
    target.run(&sql).await;
    target.scan().await;
    let first = read_events(&mut source, 1).await;
    assert_eq!(first.len(), 10, "a batch holds at most max_batch_events");
    checkpoint.advance(first.last().unwrap().position().clone());
    // The rest of the transaction has not been read yet: the next page's query fails.
    sim.faults().fail_next("dbo_customers_CT", 208);
    let err = loop {
        match source.next_batch().await {
            Ok(Some(b)) if b.events.is_empty() => continue,
            Ok(other) => panic!(
                "the rest of the transaction was held in memory: {:?} more events",
                other.map(|b| b.events.len())
            ),
            Err(e) => break e,
        }
    };
    assert!(format!("{err:?}").contains("208"), "{err:?}");

    // A new reader resumes inside the transaction exactly, page by page.
    let mut resumed = target.source(config(), Some(&checkpoint)).await;
    let mut rest = Vec::new();
    while rest.len() < 90 {
        let batch = resumed.next_batch().await.unwrap().unwrap();
        assert!(batch.events.len() <= 10);
        rest.extend(batch.events);
    }
    assert_eq!(
        rest.iter().map(id_of).collect::<Vec<_>>(),
        (11..=100).collect::<Vec<_>>()
    );
    let places: Vec<u64> = rest
        .iter()
        .map(|e| match e.position() {
            Position::SqlServer(p) => p.total_order,
            _ => 0,
        })
        .collect();
    assert_eq!(places, (11..=100).collect::<Vec<_>>());
    assert!(
        support::drain(&mut resumed, 5)
            .await
            .iter()
            .all(|b| b.events.is_empty())
    );
}

#[tokio::test]
async fn cleanup_in_the_middle_of_a_large_transaction_is_a_typed_error_not_a_short_read() {
    let target = Target::with_orders("handoff_large_tx_cleanup").await;
    let config = target
        .streaming()
        .page_size(10)
        .max_batch_events(10)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let mut sql = String::from("BEGIN TRANSACTION;\n");
    for id in 1..=100 {
        sql.push_str(&format!(
            "INSERT INTO dbo.customers (id, name) VALUES ({id}, N'c{id}');\n"
        ));
    }
    sql.push_str("COMMIT TRANSACTION;");
    target.run(&sql).await;
    // A later transaction in the same window.
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (101, N'late');")
        .await;
    target.scan().await;
    let first = read_events(&mut source, 1).await;
    assert_eq!(first.len(), 10);
    // Cleanup up to the later transaction while the large one is being read: its remaining
    // rows are gone, the later one's are not.
    target
        .run("DECLARE @lwm binary(10) = sys.fn_cdc_get_max_lsn(); EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_customers', @low_water_mark = @lwm;")
        .await;
    let mut more = Vec::new();
    let mut polls = 0;
    let err = loop {
        polls += 1;
        assert!(polls < 100, "no error; read {} more events", more.len());
        match source.next_batch().await {
            Ok(Some(b)) => more.extend(b.events),
            Ok(None) => panic!("ended"),
            Err(e) => break e,
        }
    };
    let cdc_core::Error::Source { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(
            source.downcast_ref::<Error>(),
            Some(Error::LsnNotAvailable { .. })
        ),
        "{err}"
    );
    assert!(
        more.iter().all(|e| id_of(e) <= 100 && id_of(e) > 10),
        "nothing past the gap: {:?}",
        more.iter().map(id_of).collect::<Vec<_>>()
    );
}
