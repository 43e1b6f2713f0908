//! Two databases read by one source, each in its own position lane.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, Checkpoint};
use cdc_mssql::SnapshotMode;
use support::{Target, read_events};

#[tokio::test]
async fn two_databases_stream_into_two_lanes() {
    let target = Target::with_orders("first_db").await;
    let mut master = target.connect_to("master").await;
    support::exec(&mut master, "CREATE DATABASE second_db;")
        .await
        .unwrap();
    let mut second = target.connect_to("second_db").await;
    support::exec(&mut second, "EXEC sys.sp_cdc_enable_db;")
        .await
        .unwrap();
    let script = std::fs::read_to_string(format!(
        "{}/tests/scenarios/orders.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for batch in support::split_go(&script) {
        support::exec(&mut second, &batch).await.unwrap();
    }
    let config = target
        .config()
        .database("second_db")
        .snapshot_mode(SnapshotMode::NoData)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'first');")
        .await;
    support::exec(&mut second, "INSERT INTO dbo.customers (id, name) VALUES (1, N'second'); INSERT INTO dbo.customers (id, name) VALUES (2, N'second');").await.unwrap();
    target.scan().await;
    support::exec(&mut second, "EXEC sys.sp_cdc_scan;")
        .await
        .unwrap();

    let events = read_events(&mut source, 3).await;
    let mut checkpoint = Checkpoint::default();
    for e in &events {
        checkpoint.advance(e.position().clone());
    }
    let lanes: Vec<_> = checkpoint
        .positions()
        .map(|p| p.source_partition().to_string())
        .collect();
    assert_eq!(
        lanes,
        vec![
            "sqlserver/first_db".to_string(),
            "sqlserver/second_db".to_string()
        ]
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.table.id.database == "second_db")
            .count(),
        2
    );

    // Resuming with both lanes: only new changes, from either database.
    source.close().await.unwrap();
    let config = target
        .config()
        .database("second_db")
        .snapshot_mode(SnapshotMode::NoData)
        .build()
        .unwrap();
    let mut resumed = target.source(config, Some(&checkpoint)).await;
    support::exec(
        &mut second,
        "INSERT INTO dbo.customers (id, name) VALUES (3, N'second'); EXEC sys.sp_cdc_scan;",
    )
    .await
    .unwrap();
    let more = read_events(&mut resumed, 1).await;
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].table.id.database, "second_db");
    let extra = support::drain(&mut resumed, 5).await;
    assert!(extra.iter().all(|b| b.events.is_empty()));
}
