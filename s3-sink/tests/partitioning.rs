//! Partition directories that Hive-style readers decode back to the original values: DuckDB
//! reads every file with `hive_partitioning` and must see each field value unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{Sink, Value};
use s3_sink::{FieldPartitioner, Format, S3Sink, TimeBasedPartitioner};
use std::collections::BTreeSet;

/// Values holding every character class that needs escaping in a directory name.
const AWKWARD: [&str; 9] = [
    "EMEA/North",
    "Zürich",
    "a=b",
    "50%",
    "what?#1",
    "C:\\temp",
    "[x]{y}^~|<>",
    "two  spaces",
    "100%25",
];

/// DuckDB reads the NDJSON files under `dir` with Hive partitioning and prints the distinct
/// `name` partition values, one JSON string per line.
const READ_PARTITIONS: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
rows = con.execute(
    "select distinct name from read_json_auto(?, hive_partitioning = true, hive_types_autocast = false, union_by_name = true) order by 1",
    [sys.argv[1] + "/**/*.json"],
).fetchall()
for (name,) in rows:
    print(json.dumps(name))
"#;

#[tokio::test]
async fn field_partition_values_read_back_unchanged_by_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = sample_events("p", AWKWARD.len());
    let name = events[0].table.column_index("name").unwrap();
    for (event, value) in events.iter_mut().zip(AWKWARD) {
        // Deletes are partitioned by their before image.
        for row in [event.before.as_mut(), event.after.as_mut()]
            .into_iter()
            .flatten()
        {
            row.0[name] = Value::String(value.into());
        }
    }
    let mut sink = S3Sink::builder()
        .url(format!("file://{}", dir.path().display()))
        .format(Format::ndjson())
        .partitioner(FieldPartitioner::new(["name"]))
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();

    // Each value is exactly one directory level, escaped once.
    let mut dirs = BTreeSet::new();
    for entry in walk(dir.path()) {
        let relative = entry
            .strip_prefix(dir.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let segments: Vec<&str> = relative.split('/').collect();
        assert_eq!(segments.len(), 3, "topic/partition/file: {relative}");
        dirs.insert(segments[1].to_string());
    }
    assert!(dirs.contains("name=EMEA%2FNorth"), "{dirs:?}");
    assert!(dirs.contains("name=Zürich"), "{dirs:?}");
    assert!(dirs.contains("name=a%3Db"), "{dirs:?}");
    assert!(dirs.contains("name=50%25"), "{dirs:?}");
    assert!(dirs.contains("name=100%2525"), "{dirs:?}");

    // Move the files under a partition column name the files do not hold, so DuckDB's
    // value comes from the directory alone.
    let renamed = tempfile::tempdir().unwrap();
    for entry in walk(dir.path()) {
        let relative = entry.strip_prefix(dir.path()).unwrap().to_str().unwrap();
        let target = renamed
            .path()
            .join(relative.replacen("/name=", "/region=", 1));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    let script = READ_PARTITIONS.replace("distinct name", "distinct region");
    let read: BTreeSet<String> = support::run_python(&script, &[renamed.path().to_str().unwrap()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: BTreeSet<String> = AWKWARD.iter().map(|s| s.to_string()).collect();
    assert_eq!(read, expected);
}

#[tokio::test]
async fn daily_path_format_lays_out_kafka_connect_directories() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample_events("p", 3); // committed 2026-01-01T00:00:00.0xxZ
    let mut sink = S3Sink::builder()
        .url(format!("file://{}", dir.path().display()))
        .format(Format::ndjson())
        .partitioner(
            TimeBasedPartitioner::commit_time()
                .with_path_format("'dt'=YYYY-MM-dd")
                .unwrap()
                .with_zone("America/New_York")
                .unwrap(),
        )
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();
    let files = walk(dir.path());
    assert!(!files.is_empty());
    for file in files {
        let relative = file
            .strip_prefix(dir.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            relative.split('/').nth(1),
            Some("dt=2025-12-31"),
            "{relative}"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
