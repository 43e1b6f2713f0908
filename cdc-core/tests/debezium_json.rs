//! The Debezium envelope's shape, field by field, as Kafka Connect consumers expect it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::testing::{every_type_events, sample_events};
use cdc_core::{DebeziumJson, EventCodec, Op};
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
    assert_eq!(source["event_serial_no"], 5);
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
    assert_eq!(name_of("c27_uniqueidentifier"), "io.debezium.data.Uuid");
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
