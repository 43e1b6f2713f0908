//! NDJSON files in the Debezium layout take their lines from the codec the builder was
//! given; a codec whose output is not one JSON object per event is a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, DebeziumJson, EncodedRecord, EventCodec, Sink};
use object_store::ObjectStore;
use object_store::memory::InMemory;
use s3_sink::{Format, Layout, NdjsonOptions, S3Sink, S3SinkError};
use std::sync::Arc;

/// Debezium JSON with the Connect schema, plus a marker field, so the test can tell its
/// lines from the default codec's.
struct Marked(DebeziumJson);

impl EventCodec for Marked {
    fn name(&self) -> &str {
        "marked"
    }
    fn encode(&self, event: &ChangeEvent) -> cdc_core::Result<EncodedRecord> {
        let mut record = self.0.encode(event)?;
        if let Some(value) = &mut record.value {
            let mut json: serde_json::Value = serde_json::from_slice(value).unwrap();
            json["marked"] = true.into();
            *value = serde_json::to_vec(&json).unwrap();
        }
        Ok(record)
    }
    fn decode(&self, record: &EncodedRecord) -> cdc_core::Result<Option<ChangeEvent>> {
        self.0.decode(record)
    }
}

/// A codec whose values are not JSON objects.
struct NotJson;

impl EventCodec for NotJson {
    fn name(&self) -> &str {
        "not-json"
    }
    fn encode(&self, _event: &ChangeEvent) -> cdc_core::Result<EncodedRecord> {
        Ok(EncodedRecord {
            key: None,
            value: Some(b"[1, 2]".to_vec()),
            headers: Vec::new(),
        })
    }
    fn decode(&self, _record: &EncodedRecord) -> cdc_core::Result<Option<ChangeEvent>> {
        Ok(None)
    }
}

fn envelope() -> Format {
    Format::ndjson().with_layout(Layout::Debezium)
}

#[tokio::test]
async fn ndjson_debezium_lines_come_from_the_builders_codec() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .format(envelope())
        .codec(Marked(DebeziumJson::with_schema()))
        .build()
        .unwrap();
    let events = sample_events("s", 4);
    sink.write(&events).await.unwrap();
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[3].position().clone()]
    );
    let files = support::objects(&store, None).await;
    assert_eq!(files.len(), 1);
    let lines: Vec<serde_json::Value> = files[0]
        .1
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        assert_eq!(line["marked"], true, "{line}");
        assert!(
            line.get("schema").is_some() && line.get("payload").is_some(),
            "{line}"
        );
        assert!(line.get("__position").is_some(), "{line}");
    }
}

#[tokio::test]
async fn a_codec_that_does_not_write_json_objects_is_a_typed_encode_error() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "lake")
        .format(envelope())
        .codec(NotJson)
        .build()
        .unwrap();
    let error = sink.write(&sample_events("s", 2)).await.unwrap_err();
    let source = std::error::Error::source(&error)
        .and_then(|e| e.downcast_ref::<S3SinkError>())
        .expect("an S3SinkError");
    match source {
        S3SinkError::Encode { reason, .. } => assert!(reason.contains("not-json"), "{reason}"),
        other => panic!("expected an encode error, got {other}"),
    }
    assert!(sink.flush().await.unwrap().is_empty());
    assert!(support::objects(&store, None).await.is_empty());
}

#[test]
fn a_codec_is_refused_where_no_file_uses_it_or_where_debezium_schemas_would_be_ignored() {
    let field = |format: Format| match S3Sink::builder()
        .url("memory:///lake")
        .format(format)
        .codec(DebeziumJson::schemaless())
        .build()
    {
        Err(S3SinkError::Config { field, .. }) => field,
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a sink"),
    };
    assert_eq!(field(Format::parquet()), "codec");
    assert_eq!(field(Format::ndjson()), "codec");
    assert_eq!(
        field(Format::Ndjson(NdjsonOptions {
            layout: Layout::Debezium,
            debezium_schemas: true,
            ..NdjsonOptions::default()
        })),
        "format.debezium_schemas"
    );
}
