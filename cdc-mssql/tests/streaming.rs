//! Streaming against T-SQL scenarios: commit order across tables, update pairing, primary-key
//! updates, rollbacks, transaction metadata, heartbeats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Checkpoint, LsnPosition, Op, Position, Value};
use support::{Target, ops, read_events};

fn k(id: i32) -> String {
    format!("{:?}", vec![&Value::I32(id)])
}

#[tokio::test]
async fn inserts_updates_deletes_arrive_in_commit_order_across_tables() {
    let target = Target::with_orders("stream_order").await;
    let mut source = target.streaming_source().await;
    target.scenario("workload").await;
    target.scan().await;

    let events = read_events(&mut source, 9).await;
    assert_eq!(
        ops(&events),
        vec![
            ("customers:c".into(), k(1)),
            ("customers:c".into(), k(2)),
            ("customers:c".into(), k(3)),
            ("orders:c".into(), k(10)),
            ("customers:u".into(), k(1)),
            ("customers:u".into(), k(2)),
            ("customers:d".into(), k(3)),
            ("customers:c".into(), k(4)),
            ("orders:d".into(), k(10)),
        ]
    );

    // Values are exact: decimal(38,10), money at its maximum, datetime2(7) to 100 ns.
    let ada = events[0].after.as_ref().unwrap();
    assert_eq!(ada.0[1], Value::String("Ada".into()));
    assert_eq!(
        ada.0[2],
        Value::Decimal("1234567890123456789012345678.0123456789".parse().unwrap())
    );
    let order = events[3].after.as_ref().unwrap();
    assert_eq!(
        order.0[2],
        Value::Decimal("922337203685477.5807".parse().unwrap())
    );
    assert_eq!(
        order.0[3],
        Value::DateTime("2024-05-17T08:30:00.1234567".parse().unwrap())
    );

    // An update carries both images.
    let update = &events[4];
    assert_eq!(update.op, Op::Update);
    assert_eq!(
        update.before.as_ref().unwrap().0[2],
        Value::Decimal("1234567890123456789012345678.0123456789".parse().unwrap())
    );
    assert_eq!(
        update.after.as_ref().unwrap().0[2],
        Value::Decimal("10.0000000000".parse().unwrap())
    );

    // One commit LSN per transaction, total_order counting events inside it, table order too;
    // Debezium's event_serial_no counts rows per change LSN: 1 per insert, 2 for an update.
    let positions: Vec<_> = events
        .iter()
        .map(|e| match e.position() {
            Position::SqlServer(p) => p.clone(),
            other => panic!("{other}"),
        })
        .collect();
    assert!(
        positions[1..5]
            .iter()
            .all(|p| p.commit_lsn == positions[1].commit_lsn)
    );
    assert!(
        positions[0].commit_lsn < positions[1].commit_lsn
            && positions[1].commit_lsn < positions[5].commit_lsn
    );
    assert_eq!(
        positions[1..5]
            .iter()
            .map(|p| (p.total_order, p.event_serial_no))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 1), (3, 1), (4, 2)]
    );
    let tx = events[3].source.transaction.as_ref().unwrap();
    assert_eq!(
        (&*tx.id, tx.total_order, tx.data_collection_order),
        (positions[1].commit_lsn.to_string().as_str(), 3, 1)
    );
    assert!(events.iter().all(|e| e.source.commit_time.is_some()));
    for pair in events.windows(2) {
        assert!(
            pair[0].position() < pair[1].position(),
            "positions increase"
        );
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_produces_no_events() {
    let target = Target::with_orders("stream_rollback").await;
    let mut source = target.streaming_source().await;
    target.scenario("rollback").await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (7, N'after');")
        .await;
    target.scan().await;
    let events = read_events(&mut source, 1).await;
    assert_eq!(ops(&events), vec![("customers:c".to_string(), k(7))]);
    let more = support::drain(&mut source, 5).await;
    assert!(
        more.iter().all(|b| b.events.is_empty()),
        "nothing from the rolled-back transaction"
    );
}

#[tokio::test]
async fn quiet_database_heartbeats_advance_the_position() {
    let target = Target::with_orders("stream_heartbeat").await;
    target
        .run("CREATE TABLE dbo.untracked (id int PRIMARY KEY);")
        .await;
    let config = target
        .streaming()
        .heartbeat_interval(Some(std::time::Duration::from_millis(10)))
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'x');")
        .await;
    target.scan().await;
    let events = read_events(&mut source, 1).await;
    let first = events[0].position().clone();
    // More captured work arrives and is read; its window end is reported as a heartbeat.
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (2, N'y');")
        .await;
    target.scan().await;
    let mut heartbeat = None;
    for batch in support::drain(&mut source, 50).await {
        if let Some(h) = batch.heartbeat {
            heartbeat = Some(h);
        }
    }
    let heartbeat = heartbeat.expect("a heartbeat");
    assert!(
        heartbeat > first,
        "heartbeat {heartbeat} moved past {first}"
    );
    source.close().await.unwrap();
}

fn lsn_position(event: &cdc_core::ChangeEvent) -> LsnPosition {
    match event.position() {
        Position::SqlServer(p) => p.clone(),
        other => panic!("{other}"),
    }
}

/// Debezium's `event_serial_no` (rows read at one `(commit_lsn, change_lsn)`, an update
/// counting two: `SqlServerOffsetContext::setChangePosition`) next to our `total_order`: a
/// single-row key move's delete and insert share their change LSN (ground truth C2/C3:
/// Debezium gives them 1 and 2); a two-row move gives each row its own change LSN. A restart
/// from the delete half of the single-row move delivers its insert half next.
#[tokio::test]
async fn event_serial_no_counts_rows_per_change_lsn_as_debezium_and_resume_follows_total_order() {
    let target = Target::new("serials").await;
    target
        .run(
            "CREATE TABLE dbo.p (id int NOT NULL PRIMARY KEY, v int NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'p', @role_name = NULL;",
        )
        .await;
    let mut source = target.streaming_source().await;
    target
        .run(
            "BEGIN TRAN; INSERT INTO dbo.p VALUES (1, 0), (2, 0), (3, 0); COMMIT;
             UPDATE dbo.p SET v = 1 WHERE id = 1;
             UPDATE dbo.p SET id = 6 WHERE id = 1;
             UPDATE dbo.p SET id = id + 100 WHERE id IN (2, 3);",
        )
        .await;
    target.scan().await;
    let events = read_events(&mut source, 10).await;
    let expected_ops: Vec<(String, String)> = [
        ("p:c", 1),
        ("p:c", 2),
        ("p:c", 3),
        ("p:u", 1),
        ("p:d", 1),
        ("p:c", 6),
        ("p:d", 2),
        ("p:d", 3),
        ("p:c", 102),
        ("p:c", 103),
    ]
    .iter()
    .map(|(op, id)| (op.to_string(), k(*id)))
    .collect();
    assert_eq!(ops(&events), expected_ops);
    let p: Vec<LsnPosition> = events.iter().map(lsn_position).collect();
    let serials: Vec<(u64, u64)> = p
        .iter()
        .map(|p| (p.event_serial_no, p.total_order))
        .collect();
    assert_eq!(
        serials,
        [
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 1),
            (1, 1),
            (2, 2),
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 4)
        ]
    );
    assert_eq!(
        p[4].change_lsn, p[5].change_lsn,
        "a single-row move shares its change LSN"
    );
    for pair in events.windows(2) {
        assert!(
            pair[0].position() < pair[1].position(),
            "positions increase"
        );
    }

    // Restart from the delete half of the single-row move: its insert half comes next.
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(events[4].position().clone());
    let mut resumed = target
        .source(target.streaming().build().unwrap(), Some(&checkpoint))
        .await;
    target.scan().await;
    let rest = read_events(&mut resumed, 5).await;
    assert_eq!(ops(&rest), expected_ops[5..]);
    assert_eq!(rest.iter().map(lsn_position).collect::<Vec<_>>(), p[5..]);
}

/// A capture instance created after the reader's position (a table enabled while, or before,
/// the reader catches up) starts above that position: it is new, not cleaned up, even when
/// it was created within the same clock tick as the position's transaction — streaming goes
/// on and delivers its rows (before, the reader stopped with "position is no longer
/// available in capture instance dbo_late").
#[tokio::test]
async fn a_table_captured_after_the_position_is_new_not_cleaned_up() {
    let target = Target::new("late_instance").await;
    target
        .run(
            "CREATE TABLE dbo.early (id int NOT NULL PRIMARY KEY);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'early', @role_name = NULL;
             INSERT INTO dbo.early VALUES (1);
             CREATE TABLE dbo.late (id int NOT NULL PRIMARY KEY);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'late', @role_name = NULL;
             INSERT INTO dbo.late VALUES (2);",
        )
        .await;
    target.scan().await;
    // One transaction per poll: the first window ends at early's insert, below late's start.
    let config = target
        .streaming()
        .stream_from_earliest(true)
        .max_iteration_transactions(1)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let events = read_events(&mut source, 2).await;
    assert_eq!(
        ops(&events),
        vec![("early:c".into(), k(1)), ("late:c".into(), k(2))]
    );
}
