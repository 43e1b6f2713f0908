//! The file size a user gets with the defaults: a default [`Pipeline`] (commits every
//! 10,000 events or 5 s) into a default [`S3Sink`] (Parquet, zstd; rotation at 100,000
//! records or 128 MiB), and the same with NDJSON. Prints records and bytes per file.
//!
//! ```text
//! cargo run -p s3-sink --release --example default_file_size [EVENTS]
//! ```
//!
//! The events are cdc-core's sample events (`demo.dbo.items`: int, nvarchar(100),
//! decimal(10,2); inserts with an update every 5th and a delete every 7th event).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::testing::{MemorySource, sample_events};
use cdc_core::{MemoryOffsetStore, Pipeline, PipelineConfig};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use s3_sink::{Format, S3Sink};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .map_or(250_000, |n| n.parse().expect("EVENTS is a number"));
    for (name, format) in [("parquet", Format::default()), ("ndjson", Format::ndjson())] {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let sink = S3Sink::builder()
            .store(Arc::clone(&store), "lake")
            .format(format)
            .build()
            .unwrap();
        let source = MemorySource::new("demo", sample_events("demo", events))
            .batch_size(1_000)
            .ending_when_drained();
        Pipeline::new(
            PipelineConfig::new("defaults"),
            source,
            sink,
            MemoryOffsetStore::new(),
        )
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
        let mut files: Vec<_> = store.list(None).try_collect().await.unwrap();
        files.sort_by(|a, b| a.location.cmp(&b.location));
        println!("{name}: {events} events -> {} files", files.len());
        for meta in files {
            let bytes = store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let records = match name {
                "ndjson" => bytes.iter().filter(|b| **b == b'\n').count(),
                _ => parquet::file::reader::SerializedFileReader::new(bytes.clone())
                    .map(|r| {
                        use parquet::file::reader::FileReader;
                        r.metadata().file_metadata().num_rows() as usize
                    })
                    .unwrap(),
            };
            println!(
                "  {}  {records} records  {} bytes ({:.1} bytes/record)",
                meta.location,
                meta.size,
                meta.size as f64 / records as f64
            );
        }
    }
}
