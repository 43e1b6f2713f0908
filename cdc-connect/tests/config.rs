//! Pipeline-file errors name the key, its table and the closest valid key; `${ENV}` is
//! substituted; secrets never show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_connect::config::{ConfigError, PipelineFile};

const VALID: &str = r#"
[pipeline]
name = "erp"

[source.mssql]
connection = "Server=tcp:db,1433;Database=shop;User Id=cdc;Password=${MSSQL_PASSWORD};TrustServerCertificate=true"
topic_prefix = "erp"
snapshot_mode = "initial"

[sink.s3]
url = "file:///tmp/lake"
format = "ndjson"

[sink.s3.partitioner]
kind = "time"
path_format = "'dt'=YYYY-MM-dd"
timezone = "Europe/Zurich"

[offsets]
file = "/tmp/erp.offsets.json"
"#;

fn env(name: &str) -> Option<String> {
    (name == "MSSQL_PASSWORD").then(|| "pa\"ss;wo\\rd".to_string())
}

fn parse(text: &str) -> Result<PipelineFile, ConfigError> {
    PipelineFile::parse(text, "pipeline.toml", env)
}

#[test]
fn env_references_are_substituted_and_secrets_never_printed() {
    let file = parse(VALID).unwrap();
    let connection = file
        .source
        .mssql
        .as_ref()
        .unwrap()
        .connection
        .as_ref()
        .unwrap();
    assert!(connection.expose().contains("Password=pa\"ss;wo\\rd;"));
    assert!(!format!("{file:?}").contains("wo\\rd"));
    assert!(!file.to_toml().contains("wo\\rd"));
    // The configuration it describes builds.
    cdc_connect::wiring::s3_sink(file.sink.s3.as_ref().unwrap(), "erp").unwrap();
}

#[test]
fn unset_env_reference_is_an_error_naming_the_variable_and_line() {
    let err = PipelineFile::parse(VALID, "pipeline.toml", |_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline.toml:6: environment variable MSSQL_PASSWORD is not set (referenced as ${MSSQL_PASSWORD})"
    );
}

#[test]
fn env_references_in_comments_are_left_alone() {
    let text = VALID
        .replace(
            "[source.mssql]\n",
            "[source.mssql]\n# ${NAME} is replaced by the environment variable NAME\n",
        )
        .replace(
            "topic_prefix = \"erp\"",
            "topic_prefix = \"erp\" # was ${OLD_NAME}",
        )
        .replace(
            "snapshot_mode = \"initial\"",
            "snapshot_mode = \"initial\"\nexclude_columns = [\"dbo.t.a#${MSSQL_PASSWORD}\", '#', \"\"\"\n#${MSSQL_PASSWORD}\"\"\"] # ${X}",
        );
    let file = parse(&text).unwrap();
    let mssql = file.source.mssql.as_ref().unwrap();
    assert_eq!(mssql.topic_prefix, "erp");
    // `#` inside strings starts no comment: references there are still substituted.
    assert_eq!(
        mssql.exclude_columns,
        ["dbo.t.a#pa\"ss;wo\\rd", "#", "#pa\"ss;wo\\rd"]
    );
}

#[test]
fn unknown_key_names_the_key_table_and_closest_valid_key() {
    let text = VALID.replace("snapshot_mode = ", "snapshot_mod = ");
    let err = parse(&text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pipeline.toml:8: unknown key `snapshot_mod` in [source.mssql]; did you mean `snapshot_mode`?"
    );
    // A Kafka Connect spelling is a dotted TOML key: its first part is the unknown key.
    let text = VALID.replace("path_format", "path.format");
    let err = parse(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        "pipeline.toml:16: unknown key `path` in [sink.s3.partitioner]; did you mean `path_format`?"
    );
}

#[test]
fn old_key_names_are_read_with_a_deprecation_warning_naming_the_new_key() {
    let text = VALID.replace(
        "topic_prefix = \"erp\"",
        "server_name = \"erp\"\nmax_transactions_per_poll = 7",
    );
    let file = parse(&text).unwrap();
    let mssql = file.source.mssql.as_ref().unwrap();
    assert_eq!(mssql.topic_prefix, "erp");
    assert_eq!(mssql.max_iteration_transactions, Some(7));
    assert_eq!(
        file.warnings,
        [
            "source.mssql.server_name is deprecated and will be removed: write topic_prefix \
             (Debezium's topic.prefix)",
            "source.mssql.max_transactions_per_poll is deprecated and will be removed: write \
             max_iteration_transactions (Debezium's max.iteration.transactions)",
        ]
    );
    // The printed file uses the new names only.
    let printed = file.to_toml();
    assert!(printed.contains("topic_prefix = \"erp\""), "{printed}");
    assert!(!printed.contains("server_name"), "{printed}");
    // A file with the new names has nothing to warn about.
    assert!(parse(VALID).unwrap().warnings.is_empty());
}

#[test]
fn an_old_key_name_beside_its_new_name_is_a_duplicate_key_error() {
    let text = VALID.replace(
        "topic_prefix = \"erp\"",
        "topic_prefix = \"erp\"\nserver_name = \"other\"",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.contains("duplicate field `topic_prefix`"), "{err}");
}

#[test]
fn an_unknown_key_is_still_refused_beside_the_old_key_names() {
    let text = VALID.replace(
        "topic_prefix = \"erp\"",
        "server_name = \"erp\"\nservername = \"erp\"",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("unknown key `servername` in [source.mssql]"),
        "{err}"
    );
}

#[test]
fn unknown_key_far_from_any_valid_key_gets_no_suggestion() {
    let text = VALID.replace("format = \"ndjson\"", "format = \"ndjson\"\nzzz = 1");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.ends_with("unknown key `zzz` in [sink.s3]"), "{err}");
}

#[test]
fn missing_field_is_an_error_naming_it_and_its_table() {
    let text = VALID.replace("topic_prefix = \"erp\"\n", "");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("missing field `topic_prefix`") && err.contains("[source.mssql]"),
        "{err}"
    );
}

#[test]
fn bad_value_is_an_error_with_the_closest_valid_value() {
    let text = VALID.replace("snapshot_mode = \"initial\"", "snapshot_mode = \"inital\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("unknown variant `inital`") && err.contains("did you mean `initial`?"),
        "{err}"
    );
    assert!(err.starts_with("pipeline.toml:8:"), "{err}");
    let text = VALID.replace("name = \"erp\"", "name = 5");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("invalid type") && err.contains("[pipeline]"),
        "{err}"
    );
}

#[test]
fn bad_value_error_does_not_quote_a_substituted_secret() {
    // A secret substituted into a field of the wrong type must not appear in the error.
    let text = VALID.replace(
        "topic_prefix = \"erp\"",
        "topic_prefix = \"erp\"\nport = \"${MSSQL_PASSWORD}\"",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(!err.contains("wo\\rd") && !err.contains("ss;wo"), "{err}");
}

#[test]
fn exactly_one_source_and_one_sink() {
    let text = VALID.replace(
        "[sink.s3]\n",
        "[sink.kafka]\nbrokers = \"k:9092\"\n\n[sink.s3]\n",
    );
    let err = parse(&text).unwrap_err().to_string();
    assert_eq!(
        err,
        "sink: give exactly one of [sink.kafka] and [sink.s3], not both"
    );
    let text = VALID.replace("[offsets]\nfile = \"/tmp/erp.offsets.json\"\n", "");
    let err = parse(&text).unwrap_err().to_string();
    assert!(err.starts_with("offsets: missing"), "{err}");
}

#[test]
fn bad_partitioner_setting_fails_at_build_naming_the_field() {
    let file = parse(&VALID.replace("Europe/Zurich", "Mars/Olympus")).unwrap();
    let err = cdc_connect::wiring::s3_sink(file.sink.s3.as_ref().unwrap(), "erp")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("sink.s3.partitioner.timezone:"), "{err}");
}

#[test]
fn readme_service_example_parses_and_builds() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("## Run it as a service").nth(1).unwrap();
    let example = section
        .split("```toml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    // Only the variable the example names is set, to a password with the characters that
    // break a connection string (the example once put it inside one).
    let file = PipelineFile::parse(example, "README.md", |name| {
        (name == "MSSQL_PASSWORD").then(|| "pa;ss'w=rd".into())
    })
    .unwrap();
    assert_eq!(file.pipeline.name, "erp-to-lake");
    cdc_connect::wiring::s3_sink(file.sink.s3.as_ref().unwrap(), "erp").unwrap();
    cdc_connect::wiring::mssql_config(file.source.mssql.as_ref().unwrap()).unwrap();
}

#[test]
fn an_unknown_value_handling_mode_fails_naming_the_debezium_property_and_its_values() {
    let text = r#"
[source.kafka]
brokers = "localhost:9092"
group_id = "g"
topics = ["t"]

[sink.kafka]
brokers = "localhost:9092"
decimal_handling_mode = "exact"
"#;
    let err = parse(text).unwrap_err().to_string();
    assert!(
        err.contains("pipeline.toml:9")
            && err
                .contains("decimal.handling.mode: \"exact\" is not one of precise, double, string"),
        "{err}"
    );
    let ok = parse(&text.replace("\"exact\"", "\"double\"")).map(|_| ());
    // Kafka to Kafka is refused by validate(), after the value was read.
    assert!(
        ok.as_ref()
            .is_err_and(|e| e.to_string().contains("Kafka to Kafka")),
        "{ok:?}"
    );
}

/// `new_table_snapshot` reaches cdc-mssql's `NewTableSnapshot`: `none` parses and builds, a
/// misspelt value names the closest one.
#[test]
fn new_table_snapshot_takes_incremental_or_none() {
    let text = VALID
        .replace(
            "snapshot_mode = \"initial\"",
            "snapshot_mode = \"initial\"\nnew_table_snapshot = \"none\"",
        )
        // The test password holds ';': quoted, as ADO.NET wants it.
        .replace("Password=${MSSQL_PASSWORD}", "Password='${MSSQL_PASSWORD}'");
    let file = parse(&text).unwrap();
    let m = file.source.mssql.as_ref().unwrap();
    assert_eq!(
        m.new_table_snapshot,
        Some(cdc_connect::config::NewTableSnapshot::None)
    );
    cdc_connect::wiring::mssql_config(m).unwrap();
    let err = parse(&text.replace("\"none\"", "\"incremetal\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `incremental`?"), "{err}");
}

/// A substituted password holding an unquoted `;` breaks the connection string; the error says
/// to quote it and shows no piece of it (it showed `wo\\rd;trustservercertificate` as an
/// unknown key).
#[test]
fn a_connection_string_broken_by_a_password_shows_no_piece_of_it() {
    let file = parse(VALID).unwrap();
    let err = cdc_connect::wiring::mssql_config(file.source.mssql.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("quoted"), "{err}");
    for piece in ["pa\"ss", "wo\\rd", "rd;"] {
        assert!(!err.contains(piece), "{err} shows {piece:?}");
    }
}

/// `cdc print-config` writes each secret as a reference to an environment variable named after
/// its place, and a file that still holds the literal placeholder of an older print-config is
/// refused naming the field (it was sent to the server as the secret: S3 answered
/// SignatureDoesNotMatch).
#[test]
fn printed_secrets_are_environment_references_and_the_literal_placeholder_is_refused() {
    let text = VALID.replace(
        "format = \"ndjson\"",
        "format = \"ndjson\"\noptions = { secret_access_key = \"s3-S3cret\", region = \"eu-west-1\" }",
    );
    let file = parse(&text).unwrap();
    let printed = file.to_toml();
    assert!(!printed.contains("s3-S3cret"), "{printed}");
    assert!(
        printed.contains("secret_access_key = \"${CDC_SINK_S3_OPTIONS_SECRET_ACCESS_KEY}\""),
        "{printed}"
    );
    assert!(printed.contains("region = \"eu-west-1\""), "{printed}");
    assert!(
        printed.contains("connection = \"${CDC_SOURCE_MSSQL_CONNECTION}\""),
        "{printed}"
    );
    let back = PipelineFile::parse(&printed, "printed.toml", |name| match name {
        "CDC_SINK_S3_OPTIONS_SECRET_ACCESS_KEY" => Some("s3-S3cret".to_string()),
        "CDC_SOURCE_MSSQL_CONNECTION" => Some("Server=tcp:db,1433".to_string()),
        _ => None,
    })
    .unwrap();
    assert_eq!(back.sink.s3, file.sink.s3);

    let old = text.replace("s3-S3cret", "<redacted>");
    let err = parse(&old).unwrap_err().to_string();
    assert!(
        err.contains("sink.s3.options.secret_access_key") && err.contains("placeholder"),
        "{err}"
    );
    let old = VALID.replace(
        "connection = \"Server=tcp:db,1433;Database=shop;User Id=cdc;Password=${MSSQL_PASSWORD};TrustServerCertificate=true\"",
        "connection = \"<redacted>\"",
    );
    let err = parse(&old).unwrap_err().to_string();
    // A secret field is named by its line and table (serde does not give the key).
    assert!(
        err.starts_with("pipeline.toml:6:")
            && err.contains("[source.mssql]")
            && err.contains("placeholder"),
        "{err}"
    );
}
