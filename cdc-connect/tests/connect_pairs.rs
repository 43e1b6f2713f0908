//! What a newcomer's Debezium + Confluent S3 sink configurations must turn into: the files
//! Confluent's sink would write, only the tables the sink reads, and refusals naming the
//! property that cannot be honoured. Found by trying the migration as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_connect::config::RowLayout;
use cdc_connect::connect::{ConnectorConfig, WorkerSettings, translate};
use object_store::ObjectStoreExt;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

fn fixture(name: &str) -> ConnectorConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    ConnectorConfig::load(&path).unwrap()
}

fn with(base: &str, key: &str, value: &str) -> ConnectorConfig {
    let mut c = fixture(base);
    c.properties.insert(key.into(), value.into());
    c
}

fn worker() -> WorkerSettings {
    WorkerSettings {
        brokers: Some("b-1.msk:9098".into()),
    }
}

/// Confluent's ParquetFormat writes each record's value — the Debezium envelope — so tables
/// defined over its files read ours: before, the translation silently chose flat rows.
#[test]
fn parquet_format_writes_the_debezium_envelope_as_confluents_sink_does() {
    for connectors in [
        vec![fixture("s3-sink.properties.json")],
        vec![
            fixture("debezium-sqlserver.json"),
            fixture("s3-sink.properties.json"),
        ],
    ] {
        let t = translate(&connectors, &worker()).unwrap();
        let s3 = t.file.sink.s3.unwrap();
        assert_eq!(s3.layout, Some(RowLayout::Debezium));
    }
}

/// Schemaless JSON cannot be typed: before, every record went to the dead-letter topic while
/// the run looked healthy and wrote no file.
#[test]
fn schemaless_values_for_the_s3_sink_are_refused_naming_the_converter_property() {
    let sink = with(
        "s3-sink.properties.json",
        "value.converter.schemas.enable",
        "false",
    );
    let error = translate(std::slice::from_ref(&sink), &worker())
        .unwrap_err()
        .to_string();
    assert!(error.contains("value.converter.schemas.enable"), "{error}");
    // With both connectors no record passes through Kafka: the setting is said to have no
    // meaning, not fatal (a newcomer's MSK configuration was refused for it).
    let t = translate(&[fixture("debezium-sqlserver.json"), sink], &worker()).unwrap();
    assert!(
        t.warnings
            .iter()
            .any(|w| w.property == "value.converter.schemas.enable"),
        "{:?}",
        t.warnings
    );
}

/// Confluent's sink writes record values only, so its key converter changes no file: the
/// StringConverter many MSK setups give the sink is a warning, not a refusal.
#[test]
fn the_s3_sinks_key_converter_is_warned_about_not_refused() {
    let sink = with(
        "s3-sink.properties.json",
        "key.converter",
        "org.apache.kafka.connect.storage.StringConverter",
    );
    let t = translate(&[sink], &worker()).unwrap();
    assert!(
        t.warnings.iter().any(|w| w.property == "key.converter"),
        "{:?}",
        t.warnings
    );
}

/// With both connectors, changes go straight to S3: a table the source captured only for
/// Kafka must not land in the lake (before: every captured table did, with a warning).
#[test]
fn with_both_connectors_only_the_tables_the_sink_reads_are_captured() {
    let sink = with("s3-sink.properties.json", "topics", "erp.shop.dbo.orders");
    let t = translate(&[fixture("debezium-sqlserver.json"), sink], &worker()).unwrap();
    let mssql = t.file.source.mssql.unwrap();
    assert_eq!(mssql.include_tables, ["dbo.orders"]);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.property == "table.include.list" && w.note.contains("dbo.customers")),
        "{:?}",
        t.warnings
    );
}

/// Debezium's include list is a case-insensitive regular expression and the reader matches it
/// that way: a sink reading tables the list captures by pattern or in another case is taken
/// (before, the pair was refused because the names were compared as exact strings).
#[test]
fn a_sink_reading_tables_the_include_list_captures_by_pattern_or_in_another_case_is_taken() {
    let sink = with(
        "s3-sink.properties.json",
        "topics",
        "erp.shop.dbo.orders,erp.shop.dbo.customers",
    );
    for list in ["dbo\\.ord.*,dbo\\.customers", "DBO.ORDERS,dbo.Customers"] {
        let source = with("debezium-sqlserver.json", "table.include.list", list);
        let t = translate(&[source, sink.clone()], &worker()).unwrap();
        assert_eq!(
            t.file.source.mssql.unwrap().include_tables,
            ["dbo.orders", "dbo.customers"],
            "{list}"
        );
        assert!(
            !t.warnings
                .iter()
                .any(|w| w.property == "table.include.list"),
            "every pattern matches a table the sink reads: {:?}",
            t.warnings
        );
    }
}

#[test]
fn a_table_the_sink_reads_but_the_source_does_not_capture_is_refused() {
    let sink = with(
        "s3-sink.properties.json",
        "topics",
        "erp.shop.dbo.orders,erp.shop.dbo.invoices",
    );
    let error = translate(&[fixture("debezium-sqlserver.json"), sink], &worker())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("topics") && error.contains("dbo.invoices"),
        "{error}"
    );
}

/// Before, this named `topics.regex`, which the configuration did not have.
#[test]
fn a_dead_letter_topic_with_both_connectors_is_refused_naming_it() {
    let sink = with(
        "s3-sink.properties.json",
        "errors.deadletterqueue.topic.name",
        "dlq",
    );
    let error = translate(&[fixture("debezium-sqlserver.json"), sink], &worker())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("errors.deadletterqueue.topic.name") && !error.contains("topics.regex"),
        "{error}"
    );
}

/// The offsets object store honours the `AWS_*` environment as the S3 sink does (before:
/// object_store's `parse_url_opts` ignored it and asked the EC2 metadata service for
/// credentials, so the translated pair failed at start outside EC2). The environment is set
/// for a child run of this test (tests may not change their own process's environment); the
/// parent plays the S3 endpoint and records the request.
#[test]
fn the_offsets_object_store_reads_the_aws_environment() {
    if std::env::var_os("CDC_TEST_CHILD").is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let url = url::Url::parse("s3://lake/_cdc/erp.offsets.json").unwrap();
            let (store, path) =
                cdc_connect::wiring::object_store_for(&url, &Default::default()).unwrap();
            store.put(&path, "{}".into()).await.unwrap();
        });
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        head
    });
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_offsets_object_store_reads_the_aws_environment",
            "--nocapture",
        ])
        .env("CDC_TEST_CHILD", "1")
        .env("AWS_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_REGION", "eu-west-1")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let head = endpoint.join().unwrap();
    assert!(
        head[0].starts_with("PUT /lake/_cdc/erp.offsets.json "),
        "{head:?}"
    );
    assert!(
        head.iter().any(|h| h
            .to_ascii_lowercase()
            .starts_with("authorization: aws4-hmac-sha256 credential=akidexample/")),
        "signed with the environment's key: {head:?}"
    );
}

/// The seed's MSK configuration secures its schema-history clients (SASL_SSL, AWS_MSK_IAM);
/// none of that reaches the Kafka connections, which then connect in plaintext: the
/// translation says so, and where their security is set, instead of only "no schema history
/// topic is needed" (a newcomer's finding).
#[test]
fn a_secured_cluster_in_the_connector_properties_is_said_to_need_sink_kafka_security() {
    let mut source = fixture("debezium-sqlserver.json");
    for (k, v) in [
        (
            "schema.history.internal.producer.security.protocol",
            "SASL_SSL",
        ),
        (
            "schema.history.internal.producer.sasl.mechanism",
            "AWS_MSK_IAM",
        ),
    ] {
        source.properties.insert(k.into(), v.into());
    }
    let t = translate(&[source], &worker()).unwrap();
    assert!(
        t.warnings
            .iter()
            .any(|w| w.property == "security.protocol" && w.note.contains("[sink.kafka.security]")),
        "{:?}",
        t.warnings
    );
    assert!(t.file.sink.kafka.unwrap().security.is_none());
    // A plaintext cluster gets no such warning.
    let mut plain = fixture("debezium-sqlserver.json");
    plain
        .properties
        .retain(|k, _| !k.ends_with("security.protocol"));
    let t = translate(&[plain], &worker()).unwrap();
    assert!(
        !t.warnings.iter().any(|w| w.property == "security.protocol"),
        "{:?}",
        t.warnings
    );
}
