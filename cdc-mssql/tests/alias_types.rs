//! Columns of user-defined alias types (`CREATE TYPE dbo.Phone FROM nvarchar(20) NOT NULL`)
//! and of `sysname` are read as their base types: `sys.columns` joined to `sys.types` by
//! `user_type_id` names the alias, which is no SQL Server type the reader can map.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{Column, DataType, Op, Value};
use cdc_mssql::SnapshotMode;
use support::{Target, read_events};

const SETUP: &str = "CREATE TYPE dbo.Phone FROM nvarchar(20) NOT NULL;
CREATE TYPE dbo.Amount FROM decimal(9, 2) NULL;
GO
CREATE TABLE dbo.contacts (id int NOT NULL PRIMARY KEY, phone dbo.Phone, owner sysname, amount Amount);
GO
EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'contacts', @role_name = NULL;
GO
INSERT INTO dbo.contacts VALUES (1, N'555-0100', N'ann', 12.50);";

/// The columns the events carry: the base types, with the aliases' nullability.
fn expected_columns() -> Vec<Column> {
    vec![
        Column::new("id", DataType::Int, false),
        Column::new("phone", DataType::NVarChar { length: Some(20) }, false),
        Column::new("owner", DataType::NVarChar { length: Some(128) }, false),
        Column::new(
            "amount",
            DataType::Decimal {
                precision: 9,
                scale: 2,
            },
            true,
        ),
    ]
}

fn decimal(text: &str) -> Value {
    Value::Decimal(text.parse().unwrap())
}

#[tokio::test]
async fn alias_and_sysname_columns_are_snapshotted_and_streamed_as_their_base_types() {
    let target = Target::new("alias_types").await;
    target.run(SETUP).await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;

    let read = read_events(&mut source, 1).await;
    assert_eq!(read[0].op, Op::Read);
    assert_eq!(read[0].table.columns, expected_columns());
    assert_eq!(
        read[0].after.as_ref().unwrap().0,
        vec![
            Value::I32(1),
            Value::String("555-0100".into()),
            Value::String("ann".into()),
            decimal("12.50"),
        ]
    );

    target
        .run(
            "INSERT INTO dbo.contacts VALUES (2, N'555-0101', N'bob', NULL);
             UPDATE dbo.contacts SET phone = N'555-0199', owner = N'cid' WHERE id = 1;",
        )
        .await;
    target.scan().await;
    let streamed = read_events(&mut source, 2).await;
    assert_eq!(
        streamed.iter().map(|e| e.op).collect::<Vec<_>>(),
        vec![Op::Create, Op::Update]
    );
    for e in &streamed {
        assert_eq!(e.table.columns, expected_columns());
    }
    assert_eq!(
        streamed[0].after.as_ref().unwrap().0,
        vec![
            Value::I32(2),
            Value::String("555-0101".into()),
            Value::String("bob".into()),
            Value::Null,
        ]
    );
    let update = &streamed[1];
    assert_eq!(
        update.before.as_ref().unwrap().0[1..3],
        [
            Value::String("555-0100".into()),
            Value::String("ann".into())
        ]
    );
    assert_eq!(
        update.after.as_ref().unwrap().0,
        vec![
            Value::I32(1),
            Value::String("555-0199".into()),
            Value::String("cid".into()),
            decimal("12.50"),
        ]
    );
}
