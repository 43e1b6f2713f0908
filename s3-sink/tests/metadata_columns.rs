//! Metadata column names: a table column named like one (`__op`) is refused with a typed
//! error before anything of the table is written or acknowledged; with another prefix the
//! same table's files hold both columns, and pyarrow reads them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{
    ChangeEvent, Column, DataType, KafkaOffset, Op, Position, Row, Sink, SourceInfo, TableId,
    TableSchema, Value,
};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Layout, NdjsonCompression, S3Sink, S3SinkError};
use std::sync::Arc;

/// `dbo.orders (id int, <user> nvarchar(20))`: five inserts whose `<user>` column holds
/// `user-<id>`, on stream `s`.
fn orders(user: &str) -> Vec<ChangeEvent> {
    let table = Arc::new(
        TableSchema::new(
            TableId::new("shop", "dbo", "orders"),
            vec![
                Column::new("id", DataType::Int, false),
                Column::new(user, DataType::NVarChar { length: Some(20) }, true),
            ],
            vec!["id".into()],
        )
        .unwrap(),
    );
    (1..=5)
        .map(|id| {
            let row = Row::new(vec![Value::I32(id), Value::String(format!("user-{id}"))]);
            let source = SourceInfo::new(
                "memory",
                "erp",
                Position::Sequence {
                    stream: "s".into(),
                    seq: id as u64,
                },
            );
            ChangeEvent::new(Arc::clone(&table), Op::Create, None, Some(row), source)
        })
        .collect()
}

fn formats() -> Vec<Format> {
    vec![
        Format::parquet(),
        Format::ndjson(),
        Format::ndjson_compressed(NdjsonCompression::Gzip),
    ]
}

async fn objects(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    support::objects(store, None)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// The sink's error inside a `cdc_core::Error`.
fn s3_error(error: &cdc_core::Error) -> &S3SinkError {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<S3SinkError>() {
            return found;
        }
        current = e.source();
    }
    panic!("no S3SinkError in {error:?}")
}

#[tokio::test]
async fn a_table_column_named_like_a_metadata_column_is_a_typed_error_naming_it_and_its_table() {
    for format in formats() {
        // `__OP` too: DuckDB (and Spark, Athena) compare names without case.
        for user in ["__op", "__OP", "__position"] {
            let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
            let mut sink = S3Sink::builder()
                .store(Arc::clone(&store), "lake")
                .format(format.clone())
                .build()
                .unwrap();
            let error = sink.write(&orders(user)).await.unwrap_err();
            match s3_error(&error) {
                S3SinkError::ColumnCollision {
                    table,
                    column,
                    added,
                } => {
                    assert_eq!(table.to_string(), "shop.dbo.orders", "{format:?}");
                    assert_eq!(column, user, "{format:?}");
                    assert_eq!(added, &user.to_lowercase(), "{format:?}");
                }
                other => panic!("{format:?} {user}: expected a collision, got {other}"),
            }
            let message = error.to_string() + &format!("{:?}", s3_error(&error));
            assert!(message.contains(user), "{message}");
            // Nothing written, nothing acknowledged.
            assert_eq!(sink.flush().await.unwrap(), Vec::<Position>::new());
            assert!(objects(&store).await.is_empty(), "{format:?}");
            assert_eq!(sink.stats().files_written, 0);
        }
    }
}

#[tokio::test]
async fn a_table_column_named_like_a_kafka_metadata_column_collides_only_in_kafka_borne_files() {
    let events = orders("__kafka_offset");
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .build()
        .unwrap();
    // Events from the database directly: no `__kafka_offset` column is added.
    sink.write(&events).await.unwrap();
    assert_eq!(sink.flush().await.unwrap().len(), 1);

    let through_kafka: Vec<ChangeEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.transport = Some(Position::Kafka(KafkaOffset {
                topic: "erp.shop.dbo.orders".into(),
                partition: 0,
                offset: i as i64,
            }));
            e
        })
        .collect();
    let error = sink.write(&through_kafka).await.unwrap_err();
    assert!(matches!(
        s3_error(&error),
        S3SinkError::ColumnCollision { column, .. } if column == "__kafka_offset"
    ));
}

#[tokio::test]
async fn a_table_column_named_like_a_derived_nanos_column_is_refused() {
    let table = Arc::new(
        TableSchema::new(
            TableId::new("shop", "dbo", "times"),
            vec![
                Column::new("id", DataType::Int, false),
                Column::new("at", DataType::DateTime2 { precision: 7 }, true),
                Column::new("at__nanos", DataType::Int, true),
            ],
            vec!["id".into()],
        )
        .unwrap(),
    );
    let row = Row::new(vec![Value::I32(1), Value::Null, Value::I32(5)]);
    let source = SourceInfo::new(
        "memory",
        "erp",
        Position::Sequence {
            stream: "s".into(),
            seq: 1,
        },
    );
    let event = ChangeEvent::new(table, Op::Create, None, Some(row), source);
    let mut sink = S3Sink::builder().url("memory:///lake").build().unwrap();
    let error = sink.write(&[event]).await.unwrap_err();
    match s3_error(&error) {
        S3SinkError::ColumnCollision { column, added, .. } => {
            assert_eq!(
                (column.as_str(), added.as_str()),
                ("at__nanos", "at__nanos")
            );
        }
        other => panic!("expected a collision, got {other}"),
    }
}

#[tokio::test]
async fn the_envelope_layout_holds_table_columns_inside_before_and_after_so_nothing_collides() {
    for format in [
        Format::parquet().with_layout(Layout::Debezium),
        Format::ndjson().with_layout(Layout::Debezium),
    ] {
        let mut sink = S3Sink::builder()
            .url("memory:///lake")
            .format(format)
            .build()
            .unwrap();
        sink.write(&orders("__op")).await.unwrap();
        assert_eq!(sink.flush().await.unwrap().len(), 1);
    }
}

const READ_COLUMNS: &str = r#"
import json, sys, pathlib
import pyarrow.parquet as pq
out = {}
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.parquet")):
    table = pq.read_table(path)
    out[path.name] = {"columns": table.column_names, "rows": table.to_pylist()}
print(json.dumps(out))
"#;

#[tokio::test]
async fn with_prefix_cdc_the_same_table_writes_a_file_pyarrow_reads_with_both_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = S3Sink::builder()
        .url(format!("file://{}", dir.path().display()))
        .metadata_prefix("_cdc_")
        .build()
        .unwrap();
    sink.write(&orders("__op")).await.unwrap();
    assert_eq!(sink.flush().await.unwrap().len(), 1);

    let seen: serde_json::Value = serde_json::from_str(&support::run_python(
        READ_COLUMNS,
        &[dir.path().to_str().unwrap()],
    ))
    .unwrap();
    let files = seen.as_object().unwrap();
    assert_eq!(files.len(), 1, "{seen}");
    let file = files.values().next().unwrap();
    let columns: Vec<&str> = file["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "id",
            "__op",
            "_cdc_op",
            "_cdc_deleted",
            "_cdc_commit_time",
            "_cdc_commit_lsn",
            "_cdc_change_lsn",
            "_cdc_event_serial_no",
            "_cdc_position"
        ]
    );
    let rows = file["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[2]["__op"], "user-3");
    assert_eq!(rows[2]["_cdc_op"], "c");
    assert_eq!(
        rows[2]["_cdc_position"],
        r#"{"kind":"sequence","stream":"s","seq":3}"#
    );
}

#[tokio::test]
async fn a_restarted_sink_finds_where_files_end_under_its_metadata_prefix() {
    for format in formats() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = || {
            S3Sink::builder()
                .store(Arc::clone(&store), "lake")
                .format(format.clone())
                .metadata_prefix("_cdc_")
                .build()
                .unwrap()
        };
        let events = orders("__op");
        let mut first = sink();
        first.write(&events[..3]).await.unwrap();
        first.flush().await.unwrap();

        // A replay from the start: the three stored events are skipped, two are new.
        let mut second = sink();
        second.write(&events).await.unwrap();
        second.flush().await.unwrap();
        assert_eq!(second.stats().events_skipped, 3, "{format:?}");
        let mut stored = support::stored_positions_in(&store, "_cdc_position").await;
        stored.sort_by_key(|p| p.to_string());
        let expected: Vec<Position> = events.iter().map(|e| e.position().clone()).collect();
        assert_eq!(stored, expected, "{format:?}");
    }
}

#[test]
fn a_metadata_prefix_with_control_characters_is_refused_at_build_time() {
    let result = S3Sink::builder()
        .url("memory:///lake")
        .metadata_prefix("_\n_")
        .build();
    match result {
        Err(S3SinkError::Config { field, .. }) => assert_eq!(field, "metadata_prefix"),
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a sink"),
    }
}
