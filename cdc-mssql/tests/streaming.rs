//! Streaming against T-SQL scenarios: commit order across tables, update pairing, primary-key
//! updates, rollbacks, transaction metadata, heartbeats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Op, Position, Value};
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

    // One commit LSN per transaction, serials counting events inside it, table order too.
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
            .map(|p| p.event_serial_no)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
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
