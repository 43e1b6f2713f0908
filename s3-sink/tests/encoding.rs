//! Parquet encoding choices: dictionaries only where they pay, and the same bytes whether
//! record batches are encoded on the sink's encoding thread or on the caller's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::Sink;
use cdc_core::testing::sample_events;
use object_store::ObjectStore;
use object_store::memory::InMemory;
use parquet::file::metadata::ParquetMetaDataReader;
use s3_sink::{Dictionary, Format, ParquetOptions, Rotation, S3Sink};
use std::collections::BTreeMap;
use std::sync::Arc;

async fn run(options: ParquetOptions, rotation: Rotation) -> Vec<(String, bytes::Bytes)> {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "enc")
        .format(Format::Parquet(options))
        .rotation(rotation)
        .build()
        .unwrap();
    for chunk in sample_events("enc", 5_000).chunks(333) {
        sink.write(chunk).await.unwrap();
    }
    sink.flush().await.unwrap();
    support::objects(&store, None).await
}

/// Column path → whether its first row group's chunk has a dictionary page.
fn dictionaries(file: &bytes::Bytes) -> BTreeMap<String, bool> {
    let metadata = ParquetMetaDataReader::new().parse_and_finish(file).unwrap();
    metadata
        .row_group(0)
        .columns()
        .iter()
        .map(|c| {
            (
                c.column_path().string(),
                c.dictionary_page_offset().is_some(),
            )
        })
        .collect()
}

#[tokio::test]
async fn distinct_columns_are_plain_repeated_ones_get_a_dictionary() {
    let files = run(ParquetOptions::default(), Rotation::default()).await;
    assert_eq!(files.len(), 1);
    let dict = dictionaries(&files[0].1);
    for plain in ["id", "name", "price", "__commit_time", "__position"] {
        assert!(!dict[plain], "{plain}: {dict:?}");
    }
    assert!(dict["__op"], "{dict:?}");

    let always = ParquetOptions {
        dictionary: Dictionary::Always,
        ..ParquetOptions::default()
    };
    let files = run(always, Rotation::default()).await;
    let dict = dictionaries(&files[0].1);
    assert!(dict["id"] && dict["name"] && dict["__op"], "{dict:?}");
    assert!(!dict["__position"], "{dict:?}");

    let never = ParquetOptions {
        dictionary: Dictionary::Never,
        ..ParquetOptions::default()
    };
    let files = run(never, Rotation::default()).await;
    assert!(dictionaries(&files[0].1).values().all(|d| !d));
}

#[tokio::test]
async fn the_encoding_thread_changes_no_byte_and_no_file_boundary() {
    // Many batches per file, and files cut by size: the size the rotation sees includes the
    // writer's figures, which must not depend on how far the encoding thread has come.
    let rotation = Rotation {
        max_records: None,
        max_bytes: Some(40_000),
        ..Rotation::default()
    };
    let options = |background| ParquetOptions {
        batch_rows: 100,
        encode_in_background: background,
        ..ParquetOptions::default()
    };
    let inline = run(options(false), rotation.clone()).await;
    assert!(inline.len() > 3, "{} files", inline.len());
    for _ in 0..3 {
        let background = run(options(true), rotation.clone()).await;
        assert_eq!(
            background.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            inline.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
        assert!(background == inline, "same names, different bytes");
    }
}
