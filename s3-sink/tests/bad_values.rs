//! An event the format cannot encode is a typed error that stores and acknowledges nothing:
//! in particular, the file it would have opened is not uploaded later, empty but named after
//! (and, in Parquet, ending at) the event it does not hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{
    ChangeEvent, Column, DataType, Decimal, Op, Position, Row, Sink, SourceInfo, TableId,
    TableSchema, Value,
};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, S3Sink, S3SinkError};
use std::sync::Arc;

/// `dbo.prices (id int, price decimal(4,2))` holding `price` at stream position `seq`.
fn price(seq: u64, price: Decimal) -> ChangeEvent {
    let table = Arc::new(
        TableSchema::new(
            TableId::new("shop", "dbo", "prices"),
            vec![
                Column::new("id", DataType::Int, false),
                Column::new(
                    "price",
                    DataType::Decimal {
                        precision: 4,
                        scale: 2,
                    },
                    true,
                ),
            ],
            vec!["id".into()],
        )
        .unwrap(),
    );
    let row = Row::new(vec![Value::I32(1), Value::Decimal(price)]);
    let position = Position::Sequence {
        stream: "s".into(),
        seq,
    };
    let source = SourceInfo::new("memory", "erp", position);
    ChangeEvent::new(table, Op::Create, None, Some(row), source)
}

#[tokio::test]
async fn a_file_whose_first_event_cannot_be_encoded_is_never_uploaded() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .format(Format::parquet())
        .build()
        .unwrap();
    // Six digits do not fit decimal(4,2).
    let error = sink
        .write(&[price(1, Decimal::new(123_456, 2))])
        .await
        .unwrap_err();
    let source = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<S3SinkError>())
        .expect("an S3SinkError");
    assert!(matches!(source, S3SinkError::Encode { .. }), "{source}");
    assert!(sink.flush().await.unwrap().is_empty());
    assert_eq!(sink.stats().files_written, 0);
    assert!(support::objects(&store, None).await.is_empty());

    // The next event of the source partition opens a file of its own and is stored.
    let good = price(2, Decimal::new(1_234, 2));
    sink.write(std::slice::from_ref(&good)).await.unwrap();
    assert_eq!(sink.flush().await.unwrap(), vec![good.position().clone()]);
    assert_eq!(
        support::stored_positions(&store).await,
        vec![good.position().clone()]
    );
}
