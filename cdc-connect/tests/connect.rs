//! Kafka Connect configurations as users have them translate to the expected pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_connect::config::{self, PartitionerKind};
use cdc_connect::connect::{ConnectorConfig, WorkerSettings, translate};
use std::path::PathBuf;

fn fixture(name: &str) -> ConnectorConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    ConnectorConfig::load(&path).unwrap()
}

fn worker() -> WorkerSettings {
    WorkerSettings {
        brokers: Some("b-1.msk:9098".into()),
    }
}

#[test]
fn debezium_and_s3_sink_pair_becomes_one_sqlserver_to_s3_pipeline() {
    let source = fixture("debezium-sqlserver.json");
    let sink = fixture("s3-sink.properties.json");
    let t = translate(&[source, sink], &worker()).unwrap();
    let file = &t.file;
    assert_eq!(file.pipeline.name, "erp-sqlserver-source");

    let m = file.source.mssql.as_ref().unwrap();
    assert_eq!(
        m.host.as_deref(),
        Some("erp-db.abc123xyz.eu-west-1.rds.amazonaws.com")
    );
    assert_eq!(m.port, Some(1433));
    assert_eq!(m.user.as_deref(), Some("cdc_reader"));
    assert_eq!(m.password.as_ref().unwrap().expose(), "Sup3r-S3cret!");
    assert_eq!(m.databases, ["shop"]);
    assert_eq!(m.topic_prefix, "erp");
    assert_eq!(m.include_tables, ["dbo.customers", "dbo.orders"]);
    assert_eq!(m.exclude_columns, ["dbo.customers.email"]);
    assert_eq!(m.snapshot_mode, Some(config::SnapshotMode::Initial));
    assert_eq!(
        m.snapshot_isolation,
        Some(config::SnapshotIsolation::Snapshot)
    );
    assert_eq!(m.max_iteration_transactions, Some(200));
    assert_eq!(m.heartbeat_interval_ms, Some(10_000));
    assert_eq!(m.encryption, Some(config::Encryption::Required));
    assert_eq!(m.trust_server_certificate, Some(true));
    assert!(file.source.kafka.is_none());

    let s3 = file.sink.s3.as_ref().unwrap();
    assert_eq!(s3.url, "s3://erp-data-lake/raw/cdc");
    assert_eq!(
        s3.options.get("region").map(String::as_str),
        Some("eu-west-1")
    );
    assert_eq!(s3.format, Some(config::FileFormat::Parquet));
    assert_eq!(s3.compression, Some(config::Compression::Snappy));
    assert_eq!(s3.part_size, Some(26_214_400));
    let rotation = s3.rotation.as_ref().unwrap();
    assert_eq!(rotation.max_records, Some(1000));
    assert_eq!(rotation.max_record_interval_ms, Some(600_000));
    assert_eq!(rotation.schedule_interval_ms, Some(3_600_000));
    let partitioner = s3.partitioner.as_ref().unwrap();
    assert_eq!(partitioner.kind, PartitionerKind::Time);
    assert_eq!(
        partitioner.path_format.as_deref(),
        Some("'year'=YYYY/'month'=MM/'day'=dd")
    );
    assert_eq!(partitioner.partition_duration_ms, Some(86_400_000));
    assert_eq!(partitioner.timezone.as_deref(), Some("UTC"));
    assert_eq!(partitioner.time_column, None);

    let offsets = file.offsets.as_ref().unwrap().object.as_ref().unwrap();
    assert_eq!(
        offsets.url,
        "s3://erp-data-lake/raw/cdc/_cdc/erp-sqlserver-source.offsets.json"
    );

    // Each ignored property is reported once.
    let properties: Vec<&str> = t.warnings.iter().map(|w| w.property.as_str()).collect();
    for expected in [
        "tasks.max",
        "include.schema.changes",
        "schema.history.internal.kafka.topic",
        "schema.compatibility",
        "tombstones.on.delete",
        "timestamp.extractor",
        // Accepted, but Debezium's heartbeat topic is not written: said, not silently dropped.
        "heartbeat.interval.ms",
    ] {
        assert!(
            properties.contains(&expected),
            "{expected} not warned: {properties:?}"
        );
    }
    let mut unique = properties.clone();
    unique.sort();
    unique.dedup();
    // tasks.max appears in both connectors, once each.
    assert_eq!(unique.len() + 1, properties.len(), "{properties:?}");

    // The pipeline it describes builds: the S3 sink, the time partitioner, the source config.
    cdc_connect::wiring::s3_sink(s3, "erp").unwrap();
    cdc_connect::wiring::mssql_config(m).unwrap();
    // And print-config shows it as TOML that parses back, the password redacted into a
    // reference to an environment variable named after its place.
    let toml = file.to_toml();
    assert!(!toml.contains("Sup3r-S3cret!"), "{toml}");
    assert!(
        toml.contains("password = \"${CDC_SOURCE_MSSQL_PASSWORD}\""),
        "{toml}"
    );
    let back = config::PipelineFile::parse(&toml, "printed", |name| {
        (name == "CDC_SOURCE_MSSQL_PASSWORD").then(|| "Sup3r-S3cret!".to_string())
    })
    .unwrap();
    assert_eq!(back.sink.s3, file.sink.s3);
}

#[test]
fn debezium_alone_becomes_sqlserver_to_kafka_with_offsets_in_a_topic() {
    let t = translate(
        &[fixture("debezium-sqlserver.json")],
        &WorkerSettings::default(),
    )
    .unwrap();
    let kafka = t.file.sink.kafka.as_ref().unwrap();
    // Taken from the schema-history client when the worker's is not given.
    assert_eq!(kafka.brokers, "b-1.msk.eu-west-1.amazonaws.com:9098");
    assert_eq!(kafka.tombstones, Some(true));
    assert_eq!(kafka.schemas, Some(true));
    let offsets = t.file.offsets.as_ref().unwrap().kafka.as_ref().unwrap();
    assert_eq!(offsets.topic, "cdc-offsets");
}

#[test]
fn s3_sink_alone_becomes_kafka_to_s3_in_the_connect_consumer_group() {
    let t = translate(&[fixture("s3-sink.properties.json")], &worker()).unwrap();
    let kafka = t.file.source.kafka.as_ref().unwrap();
    assert_eq!(kafka.group_id, "connect-erp-s3-sink");
    assert_eq!(
        kafka.topics,
        ["erp.shop.dbo.customers", "erp.shop.dbo.orders"]
    );
    assert_eq!(kafka.brokers, "b-1.msk:9098");
    assert!(t.file.offsets.is_none());
}

fn with(base: &str, key: &str, value: &str) -> ConnectorConfig {
    let mut c = fixture(base);
    c.properties.insert(key.into(), value.into());
    c
}

fn error_of(connectors: &[ConnectorConfig]) -> String {
    translate(connectors, &worker()).unwrap_err().to_string()
}

#[test]
fn message_key_columns_translate_with_table_regexes_as_wildcards() {
    let c = with(
        "debezium-sqlserver.json",
        "message.key.columns",
        "shop.dbo.ledger:code; dbo\\.notes:id, body;.*\\.orders:region",
    );
    let t = translate(std::slice::from_ref(&c), &worker()).unwrap();
    let m = t.file.source.mssql.as_ref().unwrap();
    assert_eq!(
        m.message_key_columns.as_deref(),
        Some("shop.dbo.ledger:code;dbo.notes:id, body;*.orders:region")
    );
    // The reader takes it as its builder option.
    cdc_connect::wiring::mssql_config(m).unwrap();
}

#[test]
fn properties_that_cannot_be_honoured_are_errors_naming_them() {
    for (base, key, value) in [
        (
            "debezium-sqlserver.json",
            "message.key.columns",
            "dbo\\.(a|b):order_no",
        ),
        (
            "debezium-sqlserver.json",
            "message.key.columns",
            "dbo.orders",
        ),
        ("debezium-sqlserver.json", "decimal.handling.mode", "exact"),
        (
            "debezium-sqlserver.json",
            "time.precision.mode",
            "nanoseconds",
        ),
        ("debezium-sqlserver.json", "binary.handling.mode", "base32"),
        ("debezium-sqlserver.json", "snapshot.mode", "recovery"),
        (
            "debezium-sqlserver.json",
            "table.include.list",
            "dbo\\.(a|b)",
        ),
        (
            "debezium-sqlserver.json",
            "value.converter",
            "io.confluent.connect.avro.AvroConverter",
        ),
        (
            "s3-sink.properties.json",
            "timestamp.extractor",
            "Wallclock",
        ),
        (
            "s3-sink.properties.json",
            "format.class",
            "io.confluent.connect.s3.format.avro.AvroFormat",
        ),
        ("s3-sink.properties.json", "path.format", "'month'=MMMM"),
        (
            "s3-sink.properties.json",
            "partitioner.class",
            "com.example.MyPartitioner",
        ),
    ] {
        let c = with(base, key, value);
        let result = translate(std::slice::from_ref(&c), &worker());
        let message = match result {
            Ok(t) => {
                // path.format is checked when the sink is built.
                let s3 = t.file.sink.s3.unwrap();
                cdc_connect::wiring::s3_sink(&s3, "x")
                    .unwrap_err()
                    .to_string()
            }
            Err(e) => e.to_string(),
        };
        let field = if key == "path.format" {
            "path_format"
        } else {
            key
        };
        assert!(message.contains(field), "{key}={value}: {message}");
    }
}

#[test]
fn debezium_value_handling_modes_become_the_kafka_sinks_codec() {
    use cdc_core::EventCodec;
    use cdc_core::codec::{BinaryHandlingMode, DecimalHandlingMode, TimePrecisionMode};
    let mut source = fixture("debezium-sqlserver.json");
    for (key, value) in [
        ("time.precision.mode", "connect"),
        ("decimal.handling.mode", "string"),
        ("binary.handling.mode", "hex"),
        ("unavailable.value.placeholder", "n/a"),
    ] {
        source.properties.insert(key.into(), value.into());
    }
    let t = translate(&[source], &worker()).unwrap();
    let kafka = t.file.sink.kafka.as_ref().unwrap();
    assert_eq!(kafka.time_precision_mode, Some(TimePrecisionMode::Connect));
    assert_eq!(
        kafka.decimal_handling_mode,
        Some(DecimalHandlingMode::String)
    );
    assert_eq!(kafka.binary_handling_mode, Some(BinaryHandlingMode::Hex));
    assert_eq!(kafka.unavailable_value_placeholder.as_deref(), Some("n/a"));
    // The pipeline file says the same in its own keys, and the codec it builds writes so.
    let toml = t.file.to_toml();
    assert!(toml.contains("time_precision_mode = \"connect\""), "{toml}");
    assert!(
        toml.contains("decimal_handling_mode = \"string\""),
        "{toml}"
    );
    let codec = cdc_connect::wiring::kafka_sink_codec(kafka);
    let event = &cdc_core::testing::sample_events("s", 1)[0];
    let value: serde_json::Value =
        serde_json::from_slice(&codec.encode(event).unwrap().value.unwrap()).unwrap();
    assert_eq!(value["payload"]["after"]["price"], "1.01");
}

#[test]
fn unknown_properties_are_errors_naming_the_closest_known_one() {
    let message = error_of(&[with(
        "debezium-sqlserver.json",
        "snapshot.isolation.mod",
        "snapshot",
    )]);
    assert!(
        message.contains("snapshot.isolation.mod")
            && message.contains("did you mean `snapshot.isolation.mode`"),
        "{message}"
    );
}

#[test]
fn sink_topics_from_another_prefix_are_refused() {
    let sink = with(
        "s3-sink.properties.json",
        "topics",
        "crm.shop.dbo.customers",
    );
    let message = error_of(&[fixture("debezium-sqlserver.json"), sink]);
    assert!(
        message.contains("topics") && message.contains("erp."),
        "{message}"
    );
}

/// Kafka Connect config-provider references, as MSK Connect users keep their secrets: before,
/// `${env:MSSQL_PASSWORD}` was sent to SQL Server as the password itself and `cdc check` showed
/// only "SQL Server error". `${env:NAME}` is resolved; anything else is refused naming the
/// property, and no message shows a value.
#[test]
fn config_provider_references_resolve_from_the_environment_or_are_refused_naming_the_property() {
    let text = |password: &str| {
        format!(
            r#"{{"name": "erp", "config": {{"connector.class": "io.debezium.connector.sqlserver.SqlServerConnector",
                "database.hostname": "db", "database.user": "cdc", "database.password": "{password}"}}}}"#
        )
    };
    let env = |name: &str| (name == "MSSQL_PASSWORD").then(|| "S3cret;pa'ss".to_string());
    let c =
        ConnectorConfig::parse_with_env(&text("${env:MSSQL_PASSWORD}"), "dbz.json", env).unwrap();
    assert_eq!(c.properties["database.password"], "S3cret;pa'ss");
    let c = ConnectorConfig::parse_with_env(&text("pre-${env::MSSQL_PASSWORD}"), "dbz.json", env)
        .unwrap();
    assert_eq!(c.properties["database.password"], "pre-S3cret;pa'ss");
    let c =
        ConnectorConfig::parse_with_env(&text("lit${NOT_A_PROVIDER}"), "dbz.json", env).unwrap();
    assert_eq!(c.properties["database.password"], "lit${NOT_A_PROVIDER}");

    for (value, says) in [
        ("${env:UNSET_PASSWORD}", "UNSET_PASSWORD is not set"),
        (
            "${file:/etc/kafka/secrets.properties:mssql.password}",
            "${file:…}",
        ),
        (
            "${secretsmanager:prod/mssql:password}",
            "${secretsmanager:…}",
        ),
    ] {
        let error = ConnectorConfig::parse_with_env(&text(value), "dbz.json", env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("database.password"), "{error}");
        assert!(error.contains(says), "{error}");
        assert!(!error.contains("S3cret"), "{error}");
    }
}

/// Translated Kafka Connect configurations have no `[ops]` section, so `cdc run
/// --connect-config …` served no `/metrics`, `/health` or `/ready`: `--listen` (or
/// `CDC_OPS_LISTEN`) gives them one, and overrides a pipeline file's.
#[test]
fn listen_gives_translated_configurations_their_ops_endpoints() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let print = |extra: &[&str], env: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cdc"));
        cmd.arg("print-config")
            .arg("--connect-config")
            .arg(fixtures.join("debezium-sqlserver.json"))
            .arg("--connect-config")
            .arg(fixtures.join("s3-sink.properties.json"))
            .args(extra)
            .env_remove("CDC_OPS_LISTEN");
        if let Some(listen) = env {
            cmd.env("CDC_OPS_LISTEN", listen);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let toml = String::from_utf8(out.stdout).unwrap();
        let file = config::PipelineFile::parse(&toml, "printed", |_| Some("x".into())).unwrap();
        file.ops.listen
    };
    assert_eq!(print(&[], None), None);
    assert_eq!(
        print(&["--listen", "127.0.0.1:9464"], None).as_deref(),
        Some("127.0.0.1:9464")
    );
    assert_eq!(
        print(&[], Some("0.0.0.0:9465")).as_deref(),
        Some("0.0.0.0:9465")
    );
}

/// With both connectors the S3 sink writes the JSON lines itself, so the Debezium source's
/// value handling modes — which decided what Confluent's JsonFormat files held — go to it:
/// `decimal.handling.mode=string` files hold "1.01", not the precise form's base64 (a newcomer
/// found them dropped with a warning that they had no meaning). With ParquetFormat they are
/// not applied, and said so; set on a Parquet `[sink.s3]` they are refused naming the field.
#[tokio::test]
async fn debezium_value_handling_modes_reach_the_s3_sinks_json_lines_when_both_connectors_run() {
    use cdc_core::Sink;
    use cdc_core::codec::{DecimalHandlingMode, TimePrecisionMode};
    let mut source = fixture("debezium-sqlserver.json");
    source
        .properties
        .insert("decimal.handling.mode".into(), "string".into());
    source
        .properties
        .insert("time.precision.mode".into(), "connect".into());
    let mut sink = fixture("s3-sink.properties.json");
    sink.properties.insert(
        "format.class".into(),
        "io.confluent.connect.s3.format.json.JsonFormat".into(),
    );
    sink.properties.remove("parquet.codec");
    let t = translate(&[source.clone(), sink], &worker()).unwrap();
    let s3 = t.file.sink.s3.clone().unwrap();
    assert_eq!(s3.decimal_handling_mode, Some(DecimalHandlingMode::String));
    assert_eq!(s3.time_precision_mode, Some(TimePrecisionMode::Connect));
    assert!(
        !t.warnings
            .iter()
            .any(|w| w.property.contains("decimal.handling.mode")),
        "{:?}",
        t.warnings
    );
    let dir = tempfile::tempdir().unwrap();
    let mut local = s3.clone();
    local.url = format!("file://{}", dir.path().display());
    local.options.clear();
    let mut sink = cdc_connect::wiring::s3_sink(&local, "handling").unwrap();
    let events = cdc_core::testing::sample_events("s", 1);
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();
    let lines: Vec<serde_json::Value> = walk(dir.path())
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["after"]["price"], "1.01", "{}", lines[0]);

    // ParquetFormat (the fixture's): not applied, and said.
    let t = translate(&[source, fixture("s3-sink.properties.json")], &worker()).unwrap();
    assert_eq!(t.file.sink.s3.as_ref().unwrap().decimal_handling_mode, None);
    assert!(
        t.warnings
            .iter()
            .any(|w| w.property.contains("decimal.handling.mode") && w.note.contains("Parquet")),
        "{:?}",
        t.warnings
    );
    let mut parquet = t.file.sink.s3.clone().unwrap();
    parquet.decimal_handling_mode = Some(DecimalHandlingMode::String);
    let err = cdc_connect::wiring::s3_sink(&parquet, "handling").unwrap_err();
    assert!(
        err.to_string().contains("sink.s3.decimal_handling_mode"),
        "{err}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
