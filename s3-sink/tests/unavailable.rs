//! Large objects a change row does not carry (`Value::Unavailable`: an unchanged
//! `nvarchar(max)`/`varbinary(max)` in an update's before image, `ntext` in a delete) are stored
//! as Debezium's placeholder in every format and layout. Before, Parquet failed the whole file
//! ("value Unavailable does not fit the column's type") on any update that left a `(max)`
//! column alone, and flattened NDJSON wrote the text `"Unavailable"`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{
    ChangeEvent, Column, DataType, Op, Position, Row, Sink, SourceInfo, TableId, TableSchema, Value,
};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Layout, S3Sink};
use std::sync::Arc;

const PLACEHOLDER: &str = "__debezium_unavailable_value";

fn docs() -> Arc<TableSchema> {
    Arc::new(
        TableSchema::new(
            TableId::new("shop", "dbo", "docs"),
            vec![
                Column::new("id", DataType::Int, false),
                Column::new("body", DataType::NVarChar { length: None }, true),
                Column::new("blob", DataType::VarBinary { length: None }, true),
                Column::new("legacy", DataType::NText, true),
            ],
            vec!["id".into()],
        )
        .unwrap(),
    )
}

fn event(seq: u64, op: Op, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
    let position = Position::Sequence {
        stream: "s".into(),
        seq,
    };
    ChangeEvent::new(
        docs(),
        op,
        before,
        after,
        SourceInfo::new("memory", "erp", position),
    )
}

fn events() -> Vec<ChangeEvent> {
    let full = |body: &str| {
        Row::new(vec![
            Value::I32(1),
            Value::String(body.into()),
            Value::Bytes(vec![1, 2, 3]),
            Value::String("old".into()),
        ])
    };
    vec![
        event(1, Op::Create, None, Some(full("first"))),
        // An update of `legacy` only: the (max) columns are not in the change row.
        event(
            2,
            Op::Update,
            Some(Row::new(vec![
                Value::I32(1),
                Value::Unavailable,
                Value::Unavailable,
                Value::String("old".into()),
            ])),
            Some(Row::new(vec![
                Value::I32(1),
                Value::Unavailable,
                Value::Unavailable,
                Value::String("new".into()),
            ])),
        ),
        // A delete: ntext is never in a delete's row.
        event(
            3,
            Op::Delete,
            Some(Row::new(vec![
                Value::I32(1),
                Value::String("first".into()),
                Value::Bytes(vec![1, 2, 3]),
                Value::Unavailable,
            ])),
            None,
        ),
    ]
}

/// Every row of every data file under `dir`, as JSON (bytes as UTF-8 text where they are).
const READ_ROWS: &str = r#"
import json, sys, pathlib
import pyarrow.parquet as pq
def plain(v):
    if isinstance(v, bytes):
        return v.decode('utf-8', 'replace')
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
rows = []
for f in sorted(p for p in pathlib.Path(sys.argv[1]).rglob('*') if p.is_file()):
    if f.name.endswith('.parquet'):
        rows += [plain(r) for r in pq.read_table(f).to_pylist()]
    else:
        rows += [json.loads(l) for l in f.read_text().splitlines() if l]
print(json.dumps(rows))
"#;

async fn stored_rows(format: Format) -> Vec<serde_json::Value> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .format(format)
        .build()
        .unwrap();
    sink.write(&events()).await.unwrap();
    sink.flush().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    support::download(&store, dir.path()).await;
    let text = support::run_python(READ_ROWS, &[dir.path().to_str().unwrap()]);
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn flattened_parquet_and_ndjson_store_the_placeholder_for_an_unavailable_large_object() {
    for format in [Format::parquet(), Format::ndjson()] {
        let rows = stored_rows(format.clone()).await;
        assert_eq!(rows.len(), 3, "{format:?}: {rows:?}");
        // Flattened rows hold the after image (the before image for a delete).
        assert_eq!(rows[1]["body"], PLACEHOLDER, "{format:?}: {rows:?}");
        assert_eq!(rows[2]["legacy"], PLACEHOLDER, "{format:?}: {rows:?}");
        assert_eq!(rows[2]["body"], "first", "{format:?}: {rows:?}");
    }
    // Binary columns: Parquet holds the placeholder's bytes.
    let rows = stored_rows(Format::parquet()).await;
    assert_eq!(rows[1]["blob"], PLACEHOLDER, "{rows:?}");
}

#[tokio::test]
async fn envelope_parquet_stores_the_placeholder_in_before_and_after() {
    let rows = stored_rows(Format::parquet().with_layout(Layout::Debezium)).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1]["before"]["body"], PLACEHOLDER, "{rows:?}");
    assert_eq!(rows[1]["before"]["blob"], PLACEHOLDER, "{rows:?}");
    assert_eq!(rows[1]["after"]["legacy"], "new", "{rows:?}");
    assert_eq!(rows[2]["before"]["legacy"], PLACEHOLDER, "{rows:?}");
}
