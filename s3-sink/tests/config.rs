//! The builder validates at build time and names the bad field; secrets stay out of Debug.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use s3_sink::{Format, ParquetCompression, ParquetOptions, Rotation, S3Sink, S3SinkError};

fn field_of(result: s3_sink::Result<S3Sink>) -> String {
    match result {
        Err(S3SinkError::Config { field, .. }) => field,
        Err(other) => panic!("expected a config error, got {other}"),
        Ok(_) => panic!("expected a config error, got a sink"),
    }
}

#[test]
fn each_bad_setting_is_named() {
    assert_eq!(field_of(S3Sink::builder().build()), "url");
    assert_eq!(field_of(S3Sink::builder().url("ftp://x/y").build()), "url");
    assert_eq!(
        field_of(S3Sink::builder().url("lake/no/scheme").build()),
        "url"
    );
    assert_eq!(
        field_of(S3Sink::builder().url("s3:///prefix").build()),
        "url"
    );
    assert_eq!(
        field_of(
            S3Sink::builder()
                .url("s3://bucket/p")
                .option("aws_no_such_key", "1")
                .build()
        ),
        "option aws_no_such_key"
    );
    assert_eq!(
        field_of(
            S3Sink::builder()
                .url("memory:///p")
                .option("aws_region", "x")
                .build()
        ),
        "option aws_region"
    );
    assert_eq!(
        field_of(
            S3Sink::builder()
                .url("s3://bucket/p")
                .part_size(1024)
                .build()
        ),
        "part_size"
    );
    assert_eq!(
        field_of(
            S3Sink::builder()
                .url("memory:///p")
                .part_size(8 << 20)
                .memory_budget(1 << 20)
                .build()
        ),
        "memory_budget"
    );
    let rotation = Rotation {
        max_records: Some(0),
        ..Rotation::default()
    };
    assert_eq!(
        field_of(
            S3Sink::builder()
                .url("memory:///p")
                .rotation(rotation)
                .build()
        ),
        "rotation.max_records"
    );
    let zstd = Format::Parquet(ParquetOptions {
        compression: ParquetCompression::Zstd(99),
        ..Default::default()
    });
    assert_eq!(
        field_of(S3Sink::builder().url("memory:///p").format(zstd).build()),
        "format.compression"
    );
}

#[test]
fn urls_open_s3_local_and_memory_stores() {
    let sink = S3Sink::builder()
        .url("s3://bucket/lake/raw")
        .option("aws_region", "eu-west-1")
        .option("aws_access_key_id", "AKIDEXAMPLE")
        .option("aws_secret_access_key", "very-secret-value")
        .build()
        .unwrap();
    assert_eq!(sink.prefix().as_ref(), "lake/raw");
    let dir = tempfile::tempdir().unwrap();
    let local = S3Sink::builder()
        .url(format!("file://{}/lake", dir.path().display()))
        .build()
        .unwrap();
    assert_eq!(local.prefix().as_ref(), "");
    assert!(dir.path().join("lake").is_dir());
    let memory = S3Sink::builder().url("memory:///x/y").build().unwrap();
    assert_eq!(memory.prefix().as_ref(), "x/y");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let builder = S3Sink::builder()
        .url("s3://bucket/lake")
        .option("aws_access_key_id", "AKIDEXAMPLE")
        .option("aws_secret_access_key", "very-secret-value")
        .option("aws_session_token", "token-value");
    let text = format!("{builder:?}");
    assert!(
        !text.contains("very-secret-value") && !text.contains("token-value"),
        "{text}"
    );
    assert!(
        text.contains("aws_secret_access_key"),
        "keys are shown: {text}"
    );
    let sink = builder.build().unwrap();
    let text = format!("{sink:?}");
    assert!(
        !text.contains("very-secret-value") && !text.contains("token-value"),
        "{text}"
    );
}
