//! Large-object columns the change table did not capture arrive as `Value::Unavailable`
//! (Debezium's `unavailable.value.placeholder`), not as NULL: SQL Server holds
//! `text`/`ntext`/`image` as NULL in delete and update-before rows, and `(max)` columns as
//! NULL in update-before rows unless the update changed them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{DebeziumJson, EventCodec, Op, Value};
use support::{Target, read_events};

/// An event's operation with its before and after values.
type Images = (Op, Option<Vec<Value>>, Option<Vec<Value>>);

fn s(v: &str) -> Value {
    Value::String(v.into())
}

#[tokio::test]
async fn large_objects_a_change_row_does_not_carry_are_unavailable_not_null() {
    let target = Target::new("lob_unavailable").await;
    target
        .run(
            "CREATE TABLE dbo.docs (id int PRIMARY KEY, title nvarchar(50), body nvarchar(max), legacy ntext);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'docs', @role_name = NULL;",
        )
        .await;
    let mut source = target.streaming_source().await;
    target
        .run(
            "INSERT INTO dbo.docs VALUES (1, N't1', N'b1', N'l1');
             UPDATE dbo.docs SET title = N't2' WHERE id = 1;
             UPDATE dbo.docs SET body = N'b2' WHERE id = 1;
             UPDATE dbo.docs SET body = NULL WHERE id = 1;
             UPDATE dbo.docs SET body = N'b3' WHERE id = 1;
             DELETE FROM dbo.docs WHERE id = 1;",
        )
        .await;
    target.scan().await;
    let events = read_events(&mut source, 6).await;
    let images: Vec<Images> = events
        .iter()
        .map(|e| {
            (
                e.op,
                e.before.as_ref().map(|r| r.0.clone()),
                e.after.as_ref().map(|r| r.0.clone()),
            )
        })
        .collect();
    let u = || Value::Unavailable;
    let row = |t: &str, b: Value, l: Value| Some(vec![Value::I32(1), s(t), b, l]);
    assert_eq!(
        images,
        vec![
            (Op::Create, None, row("t1", s("b1"), s("l1"))),
            // Title only: body and legacy unchanged, not captured in the before image.
            (Op::Update, row("t1", u(), u()), row("t2", s("b1"), s("l1"))),
            // Body changed: its before value is there; ntext never is.
            (
                Op::Update,
                row("t2", s("b1"), u()),
                row("t2", s("b2"), s("l1"))
            ),
            (
                Op::Update,
                row("t2", s("b2"), u()),
                row("t2", Value::Null, s("l1"))
            ),
            // Set from NULL: the changed column's NULL is its value, and stays NULL.
            (
                Op::Update,
                row("t2", Value::Null, u()),
                row("t2", s("b3"), s("l1"))
            ),
            // Delete: the (max) column's value is there, the ntext one is not.
            (Op::Delete, row("t2", s("b3"), u()), None),
        ]
    );

    // Debezium JSON writes Debezium's placeholder for it.
    let codec = DebeziumJson::schemaless();
    let record = codec.encode(&events[1]).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&record.value.unwrap()).unwrap();
    assert_eq!(value["before"]["body"], "__debezium_unavailable_value");
    assert_eq!(value["before"]["legacy"], "__debezium_unavailable_value");
    assert_eq!(value["after"]["body"], "b1");
}
