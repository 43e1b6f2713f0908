//! A second capture instance mid-stream: the reader switches at its start LSN and emits a
//! schema change, losing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeSource, DataType, Value};
use support::{Target, drain};

#[tokio::test]
async fn a_new_capture_instance_switches_at_its_start_lsn_with_a_schema_change() {
    let target = Target::with_orders("schema_switch").await;
    let mut source = target.streaming_source().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'before');")
        .await;
    target.scan().await;
    target
        .run(
            "ALTER TABLE dbo.customers ADD email nvarchar(200) NULL;
             INSERT INTO dbo.customers (id, name, email) VALUES (2, N'old instance', N'x@y');",
        )
        .await;
    target.scan().await;
    target
        .run("EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL, @capture_instance = N'dbo_customers_v2';")
        .await;
    target
        .run("INSERT INTO dbo.customers (id, name, email) VALUES (3, N'new instance', N'a@b');")
        .await;
    target.scan().await;

    let batches = drain(&mut source, 40).await;
    let mut seen = Vec::new();
    let mut changes = Vec::new();
    for batch in batches {
        for change in batch.schema_changes {
            changes.push((seen.len(), change));
        }
        seen.extend(batch.events);
    }
    let ids: Vec<_> = seen
        .iter()
        .map(|e| e.after.as_ref().unwrap().0[0].clone())
        .collect();
    assert_eq!(
        ids,
        vec![Value::I32(1), Value::I32(2), Value::I32(3)],
        "no loss across the switch"
    );
    // The old instance keeps its columns: the added column is not captured there.
    assert_eq!(seen[1].table.columns.len(), 3);
    assert_eq!(changes.len(), 1, "one schema change: {changes:#?}");
    let (at, change) = &changes[0];
    assert_eq!(
        *at, 2,
        "the change comes right before the first event of the new instance"
    );
    assert_eq!(change.table.columns.last().unwrap().name, "email");
    assert_eq!(
        change.table.columns.last().unwrap().data_type,
        DataType::NVarChar { length: Some(200) }
    );
    assert!(change.table.version > seen[0].table.version);
    assert_eq!(seen[2].table.columns.len(), 4);
    assert_eq!(
        seen[2].after.as_ref().unwrap().0[3],
        Value::String("a@b".into())
    );
    source.close().await.unwrap();
}

#[tokio::test]
async fn same_columns_under_a_new_instance_emit_no_schema_change() {
    let target = Target::with_orders("schema_same").await;
    let mut source = target.streaming_source().await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (1, N'a');")
        .await;
    target.scan().await;
    target
        .run("EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'customers', @role_name = NULL, @capture_instance = N'dbo_customers_again';")
        .await;
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (2, N'b');")
        .await;
    target.scan().await;
    let batches = drain(&mut source, 40).await;
    let events: Vec<_> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert_eq!(events.len(), 2);
    assert!(batches.iter().all(|b| b.schema_changes.is_empty()));
    assert!(
        std::sync::Arc::ptr_eq(&events[0].table, &events[1].table),
        "the schema already emitted is kept"
    );
}
