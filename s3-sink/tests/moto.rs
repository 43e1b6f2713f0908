//! Against moto's S3: multipart uploads of large files, and a crash-and-replay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::testing::sample_events;
use cdc_core::{ChangeEvent, Checkpoint, Row, Sink, Value};
use s3_sink::{Format, Rotation, S3Sink};
use std::collections::HashSet;

fn sink(moto: &support::Moto, url: &str, format: Format, rotation: Rotation) -> S3Sink {
    let mut builder = S3Sink::builder()
        .url(url)
        .format(format)
        .rotation(rotation)
        .part_size(5 * 1024 * 1024);
    for (key, value) in moto.options() {
        builder = builder.option(key, value);
    }
    builder.build().unwrap()
}

/// Events with 500-byte names, so a few tens of thousands make a file of several parts.
fn wide_events(n: usize) -> Vec<ChangeEvent> {
    sample_events("wide", n)
        .into_iter()
        .map(|mut e| {
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                let mut values = row.values().to_vec();
                values[1] = Value::String(format!("{:0>500}", row.values().len()));
                *row = Row::new(values);
            }
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_as_a_multipart_upload_to_s3() {
    let moto = support::Moto::start();
    moto.create_bucket("big");
    let events = wide_events(30_000);
    let rotation = Rotation {
        max_records: None,
        max_bytes: None,
        ..Rotation::default()
    };
    let mut sink = sink(&moto, "s3://big/mp", Format::ndjson(), rotation);
    sink.write(&events).await.unwrap();
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[29_999].position().clone()]
    );
    let stats = sink.stats();
    assert_eq!((stats.files_written, stats.multipart_files), (1, 1));
    println!(
        "multipart: {} B, accounted peak {} B",
        stats.bytes_written, stats.peak_buffered_bytes
    );
    assert!(
        stats.bytes_written > 10 * 1024 * 1024,
        "three parts or more: {}",
        stats.bytes_written
    );
    assert!(
        stats.peak_buffered_bytes < 12 * 1024 * 1024,
        "parts bound the buffer: {}",
        stats.peak_buffered_bytes
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(support::download(&moto.store("big"), dir.path()).await, 1);
    let seen = support::read_back(dir.path());
    let (_, entry) = seen.iter().next().unwrap();
    assert_eq!(entry["duckdb_rows"], 30_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_replay_on_s3_stores_every_event_once() {
    let moto = support::Moto::start();
    moto.create_bucket("replay");
    let events = sample_events("s3-replay", 100);
    let rotation = Rotation {
        max_records: Some(30),
        ..Rotation::default()
    };
    let mut acked = Checkpoint::default();
    {
        let mut first = sink(
            &moto,
            "s3://replay/cdc",
            Format::parquet(),
            rotation.clone(),
        );
        for chunk in events[..75].chunks(10) {
            for p in first.write(chunk).await.unwrap() {
                acked.advance(p);
            }
        }
        // Dropped with 15 events in an open file.
    }
    // Replay from before the acknowledged position, as after a lost checkpoint.
    let mut second = sink(&moto, "s3://replay/cdc", Format::parquet(), rotation);
    assert!(acked.covers(events[59].position()));
    second.write(&events[40..]).await.unwrap();
    second.flush().await.unwrap();
    assert_eq!(second.stats().events_skipped, 20);
    let positions = support::stored_positions(&moto.store("replay")).await;
    let unique: HashSet<String> = positions.iter().map(|p| p.to_string()).collect();
    assert_eq!((positions.len(), unique.len()), (100, 100));
}

/// Set in the child process of `aws_environment_alone_configures_the_store`.
const CHILD: &str = "S3_SINK_TEST_ENV_CHILD";

/// The store is configured from `AWS_*` variables alone (`AmazonS3Builder::from_env`). The
/// environment cannot be changed safely inside a running test, so the test runs itself as a
/// child process with the variables set; the child writes through a bare `s3://` URL and the
/// parent checks the objects on moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_environment_alone_configures_the_store() {
    if std::env::var_os(CHILD).is_some() {
        let mut sink = S3Sink::builder().url("s3://from-env/cdc").build().unwrap();
        let events = sample_events("env", 12);
        sink.write(&events).await.unwrap();
        assert_eq!(
            sink.flush().await.unwrap(),
            vec![events[11].position().clone()]
        );
        return;
    }
    let moto = support::Moto::start();
    moto.create_bucket("from-env");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "aws_environment_alone_configures_the_store"])
        .env(CHILD, "1")
        .env("AWS_ENDPOINT", &moto.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the child process failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let positions = support::stored_positions(&moto.store("from-env")).await;
    assert_eq!(positions.len(), 12);
}
