//! The stored form of a [`Checkpoint`]: keyed by source partition in memory, by the source
//! partition's text (the old "lane" name) on the wire, unchanged since the first release.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::{
    Checkpoint, KafkaOffset, Lsn, LsnPosition, Position, SnapshotCursor, SourcePartition,
};

/// Written by the release before source partitions were typed (`Position::lane` keys), for
/// the checkpoint that [`every_kind`] builds: two Kafka partitions (10 sorts before 2 as
/// text), a stream, a snapshot in progress, a heartbeat past a transaction and a change.
const STORED: &str = r#"{"lanes":{"kafka/erp.shop.dbo.orders/10":{"kind":"kafka","topic":"erp.shop.dbo.orders","partition":10,"offset":7},"kafka/erp.shop.dbo.orders/2":{"kind":"kafka","topic":"erp.shop.dbo.orders","partition":2,"offset":41},"sequence/s":{"kind":"sequence","stream":"s","seq":20},"sqlserver/crm":{"kind":"sql_server","database":"crm","commit_lsn":"00000030:00000010:0001","change_lsn":"00000000:00000000:0000","event_serial_no":0,"total_order":41,"snapshot":{"table":"dbo.customers","key":"[41,\"x\"]"}},"sqlserver/hr":{"kind":"sql_server","database":"hr","commit_lsn":"00000031:00000020:0004","change_lsn":"ffffffff:ffffffff:ffff","event_serial_no":18446744073709551615,"total_order":18446744073709551615},"sqlserver/shop":{"kind":"sql_server","database":"shop","commit_lsn":"00000027:00000758:0005","change_lsn":"00000027:00000750:0002","event_serial_no":2,"total_order":3}}}"#;

fn kafka(partition: i32, offset: i64) -> Position {
    Position::Kafka(KafkaOffset {
        topic: "erp.shop.dbo.orders".into(),
        partition,
        offset,
    })
}

fn shop() -> Position {
    Position::SqlServer(LsnPosition {
        database: "shop".into(),
        commit_lsn: Lsn::from_parts(0x27, 0x758, 5),
        change_lsn: Lsn::from_parts(0x27, 0x750, 2),
        event_serial_no: 2,
        total_order: 3,
        snapshot: None,
    })
}

fn crm_snapshot() -> Position {
    Position::SqlServer(LsnPosition {
        database: "crm".into(),
        commit_lsn: Lsn::from_parts(0x30, 0x10, 1),
        change_lsn: Lsn::ZERO,
        event_serial_no: 0,
        total_order: 41,
        snapshot: Some(Box::new(cursor("dbo.customers", "[41,\"x\"]"))),
    })
}

/// A snapshot cursor as stored (built from its stored form, so that fields added later with
/// a default do not change this test).
fn cursor(table: &str, key: &str) -> SnapshotCursor {
    serde_json::from_value(serde_json::json!({ "table": table, "key": key })).unwrap()
}

fn hr_heartbeat() -> Position {
    Position::SqlServer(LsnPosition::end_of("hr", Lsn::from_parts(0x31, 0x20, 4)))
}

fn every_kind() -> Checkpoint {
    let mut checkpoint = Checkpoint::default();
    for position in [
        kafka(10, 7),
        kafka(2, 41),
        Position::Sequence {
            stream: "s".into(),
            seq: 20,
        },
        shop(),
        crm_snapshot(),
        hr_heartbeat(),
    ] {
        checkpoint.advance(position);
    }
    checkpoint
}

#[test]
fn a_checkpoint_stored_by_the_release_with_lane_keys_loads_by_source_partition() {
    let loaded: Checkpoint = serde_json::from_str(STORED).unwrap();
    assert_eq!(loaded, every_kind());
    let topic = "erp.shop.dbo.orders";
    assert_eq!(
        loaded.get(&SourcePartition::kafka(topic, 10)),
        Some(&kafka(10, 7))
    );
    assert_eq!(
        loaded.get(&SourcePartition::kafka(topic, 2)),
        Some(&kafka(2, 41))
    );
    assert_eq!(loaded.get(&SourcePartition::kafka(topic, 3)), None);
    assert_eq!(
        loaded.get(&SourcePartition::sequence("s")),
        Some(&Position::Sequence {
            stream: "s".into(),
            seq: 20
        })
    );
    assert_eq!(
        loaded.get(&SourcePartition::sql_server("shop")),
        Some(&shop())
    );
    assert_eq!(
        loaded.get(&SourcePartition::sql_server("crm")),
        Some(&crm_snapshot())
    );
    assert_eq!(
        loaded.get(&SourcePartition::sql_server("hr")),
        Some(&hr_heartbeat())
    );
    assert_eq!(loaded.positions().count(), 6);
}

#[test]
fn a_checkpoint_is_stored_in_the_form_the_release_with_lane_keys_wrote() {
    assert_eq!(serde_json::to_string(&every_kind()).unwrap(), STORED);
}

#[test]
fn a_checkpoint_round_trips_through_its_stored_form() {
    let mut checkpoint = every_kind();
    checkpoint.advance(kafka(2, 42));
    checkpoint.remove(&SourcePartition::sql_server("hr"));
    let text = serde_json::to_string(&checkpoint).unwrap();
    let back: Checkpoint = serde_json::from_str(&text).unwrap();
    assert_eq!(back, checkpoint);
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
    assert_eq!(back.get_for(&kafka(2, 0)), Some(&kafka(2, 42)));
    assert_eq!(back.get(&SourcePartition::sql_server("hr")), None);
    let empty: Checkpoint = serde_json::from_str(r#"{"lanes":{}}"#).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn positions_are_listed_in_the_order_of_their_source_partitions_text() {
    let listed: Vec<String> = every_kind()
        .positions()
        .map(|p| p.source_partition().to_string())
        .collect();
    assert_eq!(
        listed,
        [
            "kafka/erp.shop.dbo.orders/10",
            "kafka/erp.shop.dbo.orders/2",
            "sequence/s",
            "sqlserver/crm",
            "sqlserver/hr",
            "sqlserver/shop",
        ]
    );
}

#[test]
fn a_stored_entry_under_another_source_partitions_key_is_refused() {
    let stored = r#"{"lanes":{"sequence/a":{"kind":"sequence","stream":"b","seq":5}}}"#;
    let error = serde_json::from_str::<Checkpoint>(stored)
        .expect_err("the key is not the position's source partition")
        .to_string();
    assert!(
        error.contains(r#""sequence/a""#) && error.contains(r#""sequence/b""#),
        "{error}"
    );
    let kafka_under_sql_server =
        r#"{"lanes":{"sqlserver/t":{"kind":"kafka","topic":"t","partition":0,"offset":1}}}"#;
    assert!(serde_json::from_str::<Checkpoint>(kafka_under_sql_server).is_err());
}

#[test]
fn advancing_keeps_the_later_position_of_each_source_partition() {
    let mut checkpoint = Checkpoint::default();
    assert!(checkpoint.advance(kafka(2, 41)));
    assert!(!checkpoint.advance(kafka(2, 40)));
    assert!(!checkpoint.advance(kafka(2, 41)));
    assert!(checkpoint.advance(kafka(10, 1)));
    assert!(checkpoint.advance(kafka(2, 50)));
    assert_eq!(checkpoint.get_for(&kafka(2, 0)), Some(&kafka(2, 50)));
    assert_eq!(checkpoint.get_for(&kafka(10, 0)), Some(&kafka(10, 1)));
    assert!(checkpoint.covers(&kafka(2, 50)));
    assert!(!checkpoint.covers(&kafka(2, 51)));
    assert!(!checkpoint.covers(&kafka(3, 0)));
    assert_eq!(
        checkpoint.remove(&SourcePartition::kafka("erp.shop.dbo.orders", 2)),
        Some(kafka(2, 50))
    );
    assert!(!checkpoint.covers(&kafka(2, 0)));
}
