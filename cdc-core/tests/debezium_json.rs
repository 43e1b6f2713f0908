//! The Debezium envelope's shape, field by field, as Kafka Connect consumers expect it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::testing::{every_type_events, sample_events};
use cdc_core::{DebeziumJson, EventCodec, Op, Position};
use serde_json::{Value, json};

fn value_json(codec: &DebeziumJson, event: &cdc_core::ChangeEvent) -> Value {
    serde_json::from_slice(&codec.encode(event).unwrap().value.unwrap()).unwrap()
}

#[test]
fn schemaless_envelope_has_debeziums_fields() {
    let event = every_type_events()
        .into_iter()
        .find(|e| e.op == Op::Update)
        .unwrap();
    let v = value_json(&DebeziumJson::schemaless(), &event);
    assert_eq!(v["op"], "u");
    let source = &v["source"];
    assert_eq!(source["connector"], "sqlserver");
    assert_eq!(source["name"], "erp");
    assert_eq!(source["db"], "demo");
    assert_eq!(source["schema"], "dbo");
    assert_eq!(source["table"], "every_type");
    assert_eq!(source["commit_lsn"], "00000027:00000758:0005");
    assert_eq!(source["change_lsn"], "00000027:00000750:0005");
    // Debezium's serial: an update's before and after rows at one change LSN.
    assert_eq!(source["event_serial_no"], 2);
    assert_eq!(source["snapshot"], "false");
    assert_eq!(source["ts_ms"], 1_767_225_600_123i64);
    assert_eq!(
        v["transaction"],
        json!({"id": "00000027:00000758:0005", "total_order": 5, "data_collection_order": 5})
    );
    let after = &v["after"];
    assert_eq!(after["id"], 2);
    // decimal(38,10) typical value 1234567 unscaled: base64 of 0x12d687.
    assert_eq!(after["c6_decimal_38_10_"], "EtaH");
    assert_eq!(
        after["c27_uniqueidentifier"],
        "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    );
    assert_eq!(
        after["c24_date"], 19_782,
        "2024-02-29 is day 19782 since 1970"
    );
    assert_eq!(after["c32_datetimeoffset_0_"], "2024-05-17T08:30:00+02:00");
    assert_eq!(
        after["c35_datetimeoffset_3_"],
        "2024-05-17T08:30:00.123+02:00"
    );
}

#[test]
fn schema_form_uses_connect_logical_types() {
    let event = &sample_events("s", 1)[0];
    let codec = DebeziumJson::with_schema();
    let record = codec.encode(event).unwrap();
    let v: Value = serde_json::from_slice(&record.value.unwrap()).unwrap();
    assert_eq!(v["schema"]["name"], "demo.demo.dbo.items.Envelope");
    let after = v["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    let price = after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "price")
        .unwrap();
    assert_eq!(price["type"], "bytes");
    assert_eq!(price["name"], "org.apache.kafka.connect.data.Decimal");
    assert_eq!(price["parameters"]["scale"], "2");
    assert_eq!(price["parameters"]["connect.decimal.precision"], "10");
    assert_eq!(v["payload"]["after"]["id"], 1);
    let key: Value = serde_json::from_slice(&record.key.unwrap()).unwrap();
    assert_eq!(key["payload"], json!({"id": 1}));
    assert_eq!(key["schema"]["name"], "demo.demo.dbo.items.Key");
}

#[test]
fn temporal_logical_names_follow_adaptive_precision() {
    let event = &every_type_events()[0];
    let v = value_json(&DebeziumJson::with_schema(), event);
    let after = v["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "after")
        .unwrap();
    let name_of = |column: &str| {
        after["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == column)
            .unwrap()["name"]
            .clone()
    };
    assert_eq!(name_of("c30_time_0_"), "io.debezium.time.Time");
    assert_eq!(name_of("c36_time_6_"), "io.debezium.time.MicroTime");
    assert_eq!(name_of("c39_time_7_"), "io.debezium.time.NanoTime");
    assert_eq!(name_of("c31_datetime2_0_"), "io.debezium.time.Timestamp");
    assert_eq!(
        name_of("c37_datetime2_6_"),
        "io.debezium.time.MicroTimestamp"
    );
    assert_eq!(
        name_of("c40_datetime2_7_"),
        "io.debezium.time.NanoTimestamp"
    );
    assert_eq!(
        name_of("c41_datetimeoffset_7_"),
        "io.debezium.time.ZonedTimestamp"
    );
    // Debezium 3.6.1 writes uniqueidentifier as a plain string (seen against mssql-sim).
    assert_eq!(name_of("c27_uniqueidentifier"), Value::Null);
    assert_eq!(name_of("c24_date"), "io.debezium.time.Date");
}

#[test]
fn garbage_is_a_decode_error_with_a_path() {
    let codec = DebeziumJson::with_schema();
    let mut record = codec.encode(&sample_events("s", 1)[0]).unwrap();
    let mut v: Value = serde_json::from_slice(record.value.as_ref().unwrap()).unwrap();
    v["payload"]["after"]["price"] = json!(12);
    record.value = Some(serde_json::to_vec(&v).unwrap());
    let err = codec.decode(&record).unwrap_err();
    assert!(
        matches!(&err, cdc_core::Error::Decode { path, .. } if path == "payload.after.price"),
        "{err}"
    );
    record.value = Some(b"{".to_vec());
    assert!(matches!(
        codec.decode(&record),
        Err(cdc_core::Error::Decode { .. })
    ));
}

/// The value of `event` under Debezium's default properties (schemas on).
fn debezium_default(event: &cdc_core::ChangeEvent) -> Value {
    value_json(&DebeziumJson::builder().schemas(true).build(), event)
}

fn row_field<'a>(v: &'a Value, column: &str) -> &'a Value {
    v["schema"]["fields"][1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == column)
        .unwrap()
}

#[test]
fn transaction_block_is_null_unless_provide_transaction_metadata_like_debeziums_default() {
    let event = &every_type_events()[1];
    assert!(event.source.transaction.is_some());
    assert_eq!(
        debezium_default(event)["payload"]["transaction"],
        Value::Null
    );
    let with = DebeziumJson::builder()
        .schemas(true)
        .provide_transaction_metadata(true)
        .build();
    assert_eq!(
        value_json(&with, event)["payload"]["transaction"],
        json!({"id": "00000027:00000758:0005", "total_order": 2, "data_collection_order": 2})
    );
    // The lossless presets keep it.
    assert!(value_json(&DebeziumJson::with_schema(), event)["payload"]["transaction"].is_object());
}

#[test]
fn source_column_type_parameters_only_with_column_propagate_source_type() {
    let event = &every_type_events()[1];
    let v = debezium_default(event);
    for f in v["schema"]["fields"][1]["fields"].as_array().unwrap() {
        let params = f["parameters"].as_object();
        assert!(
            params.is_none_or(|p| !p.keys().any(|k| k.starts_with("__debezium.source.column"))),
            "{f}"
        );
    }
    // Only a decimal keeps parameters, Connect's own.
    assert_eq!(row_field(&v, "id")["parameters"], Value::Null);
    let with = DebeziumJson::builder()
        .schemas(true)
        .column_propagate_source_type(true)
        .build();
    let v = value_json(&with, event);
    assert_eq!(
        row_field(&v, "c6_decimal_38_10_")["parameters"]["__debezium.source.column.type"],
        "DECIMAL"
    );
    assert_eq!(
        row_field(&v, "c6_decimal_38_10_")["parameters"]["__debezium.source.column.length"],
        "38"
    );
}

#[test]
fn row_schemas_have_no_version_or_primary_key_parameter_and_the_source_schema_has_version_1() {
    let v = debezium_default(&every_type_events()[1]);
    let row = &v["schema"]["fields"][1];
    assert_eq!(row["field"], "after");
    assert_eq!(row["version"], Value::Null);
    assert_eq!(row["parameters"], Value::Null);
    assert_eq!(v["schema"]["fields"][2]["field"], "source");
    assert_eq!(v["schema"]["fields"][2]["version"], 1);
    // The lossless form records both, to decode to the same table schema.
    let v = value_json(&DebeziumJson::with_schema(), &every_type_events()[1]);
    assert_eq!(
        v["schema"]["fields"][1]["parameters"]["__cdc.primary.key"],
        "[\"id\"]"
    );
}

#[test]
fn uniqueidentifier_and_xml_are_plain_strings_yet_decode_to_their_types_in_the_lossless_form() {
    let event = &every_type_events()[1];
    let v = debezium_default(event);
    let columns: Vec<_> = event.table.columns.iter().collect();
    for c in &columns {
        if matches!(
            c.data_type,
            cdc_core::DataType::UniqueIdentifier | cdc_core::DataType::Xml
        ) {
            let f = row_field(&v, &c.name);
            assert_eq!(f["type"], "string", "{}", c.name);
            assert_eq!(f["name"], Value::Null, "{}", c.name);
        }
    }
    let codec = DebeziumJson::with_schema();
    let back = codec
        .decode(&codec.encode(event).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(back.table.columns, event.table.columns);
}

#[test]
fn snapshot_rows_have_null_change_lsn_and_event_serial_no_like_debeziums() {
    let event = every_type_events()
        .into_iter()
        .find(|e| e.op == Op::Read)
        .unwrap();
    let source = &debezium_default(&event)["payload"]["source"];
    assert_eq!(source["commit_lsn"], "00000027:00000758:0005");
    assert_eq!(source["change_lsn"], Value::Null);
    assert_eq!(source["event_serial_no"], Value::Null);
    assert_eq!(source["sequence"], Value::Null);
    // Streamed rows keep them (an insert: one row at its change LSN).
    let streamed = &debezium_default(&every_type_events()[1])["payload"]["source"];
    assert_eq!(streamed["event_serial_no"], 1);
}

#[test]
fn debeziums_default_output_decodes_without_the_transaction() {
    let event = &every_type_events()[4];
    let codec = DebeziumJson::builder().schemas(true).build();
    let back = codec
        .decode(&codec.encode(event).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(back.op, event.op);
    assert_eq!(back.source.transaction, None);
    // The event's place in its transaction rides only in the transaction block; without it
    // Debezium's serial stands in.
    let Position::SqlServer(mut expected) = event.source.position.clone() else {
        panic!("a SQL Server sample");
    };
    expected.total_order = expected.event_serial_no;
    assert_eq!(back.source.position, Position::SqlServer(expected));
    assert_eq!(back.table.primary_key, event.table.primary_key);
}

#[test]
fn datetimeoffset_text_has_only_the_fraction_digits_it_needs_and_z_for_utc_like_debeziums() {
    use cdc_core::{Column, DataType, Row, TableId, TableSchema, Value as V};
    let table = std::sync::Arc::new(
        TableSchema::new(
            TableId::new("d", "dbo", "t"),
            vec![
                Column::new("id", DataType::Int, false),
                Column::new("dto", DataType::DateTimeOffset { precision: 3 }, true),
            ],
            vec!["id".into()],
        )
        .unwrap(),
    );
    let mut event = every_type_events()[1].clone();
    for (text, expected) in [
        ("2024-01-15T00:00:00+00:00", "2024-01-15T00:00:00Z"),
        ("2024-01-15T00:00:00.450+00:00", "2024-01-15T00:00:00.45Z"),
        (
            "2018-07-13T12:23:45.456+11:00",
            "2018-07-13T12:23:45.456+11:00",
        ),
        (
            "2018-07-13T12:23:45.001-05:30",
            "2018-07-13T12:23:45.001-05:30",
        ),
    ] {
        let dto = chrono::DateTime::parse_from_rfc3339(text).unwrap();
        event = cdc_core::ChangeEvent::new(
            table.clone(),
            Op::Create,
            None,
            Some(Row::new(vec![V::I32(1), V::DateTimeOffset(dto)])),
            event.source.clone(),
        );
        assert_eq!(
            debezium_default(&event)["payload"]["after"]["dto"],
            expected
        );
        // And reads back as the same instant and offset.
        let codec = DebeziumJson::with_schema();
        let back = codec
            .decode(&codec.encode(&event).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(back.after, event.after);
    }
}
