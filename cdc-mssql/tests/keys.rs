//! Keys of tables without a primary key: the capture instance's unique index
//! (`sys.sp_cdc_enable_table @index_name`, `cdc.index_columns`) as Debezium keys them, else a
//! configured key (Debezium's `message.key.columns`), else no key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{ChangeEvent, ChangeSource, Op, Value};
use cdc_mssql::{MssqlSource, SnapshotMode};
use support::{Target, read_events};

/// The input: a table whose only identity is a UNIQUE constraint, CDC enabled on it.
async fn ledger(name: &str) -> Target {
    let target = Target::new(name).await;
    target
        .run(
            "CREATE TABLE dbo.ledger (code nvarchar(20) NOT NULL, amount int NULL, CONSTRAINT uq_ledger_code UNIQUE (code));
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'ledger', @role_name = NULL, @index_name = N'uq_ledger_code';",
        )
        .await;
    target
}

fn key(e: &ChangeEvent) -> Option<Vec<Value>> {
    e.key().map(|k| k.into_iter().cloned().collect())
}

fn code(s: &str) -> Option<Vec<Value>> {
    Some(vec![Value::String(s.into())])
}

#[tokio::test]
async fn a_table_without_a_primary_key_is_keyed_by_its_capture_instance_index() {
    let target = ledger("keys_index").await;
    let mut source = target.streaming_source().await;
    target
        .run(
            "INSERT INTO dbo.ledger (code, amount) VALUES (N'A-1', 10), (N'B-2', 20);
             UPDATE dbo.ledger SET amount = 11 WHERE code = N'A-1';
             DELETE FROM dbo.ledger WHERE code = N'B-2';",
        )
        .await;
    target.scan().await;
    let events = read_events(&mut source, 4).await;
    assert_eq!(events.len(), 4);
    assert_eq!(events[0].table.primary_key, vec!["code".to_string()]);
    let got: Vec<(Op, Option<Vec<Value>>)> = events.iter().map(|e| (e.op, key(e))).collect();
    assert_eq!(
        got,
        vec![
            (Op::Create, code("A-1")),
            (Op::Create, code("B-2")),
            (Op::Update, code("A-1")),
            (Op::Delete, code("B-2")),
        ]
    );
}

#[tokio::test]
async fn a_snapshot_of_a_table_keyed_by_its_index_is_chunked_and_continues_after_the_last_key() {
    let target = ledger("keys_index_snapshot").await;
    let mut inserts = String::new();
    for i in 1..=30 {
        inserts.push_str(&format!(
            "INSERT INTO dbo.ledger (code, amount) VALUES (N'c{i:02}', {i});\n"
        ));
    }
    target.run(&inserts).await;
    target.scan().await;
    let config = || {
        target
            .config()
            .snapshot_mode(SnapshotMode::InitialOnly)
            .snapshot_chunk_size(7)
            .build()
            .unwrap()
    };
    let mut first = target.source(config(), None).await;
    let mut read = Vec::new();
    while read.len() < 10 {
        read.extend(first.next_batch().await.unwrap().unwrap().events);
    }
    first.close().await.unwrap();
    let last = read.last().unwrap();
    // The position's snapshot cursor holds the index key of the last row read: the table
    // was read in keyset chunks by it.
    let cursor = match last.position() {
        cdc_core::Position::SqlServer(p) => p.snapshot.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(cursor.table, "dbo.ledger");
    let last_code = match &last.row().unwrap().0[0] {
        Value::String(s) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(cursor.key.contains(&last_code), "{cursor:?}");
    let mut checkpoint = cdc_core::Checkpoint::default();
    checkpoint.advance(last.position().clone());

    let mut second = target.source(config(), Some(&checkpoint)).await;
    let mut rest = Vec::new();
    for batch in support::drain(&mut second, 40).await {
        rest.extend(batch.events);
    }
    let codes = |events: &[ChangeEvent]| -> Vec<String> {
        events
            .iter()
            .filter(|e| e.op == Op::Read)
            .map(|e| match &e.row().unwrap().0[0] {
                Value::String(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let after: Vec<String> = (1..=30)
        .map(|i| format!("c{i:02}"))
        .filter(|c| *c > last_code)
        .collect();
    assert_eq!(
        codes(&rest),
        after,
        "continues after the last key, nothing re-read"
    );
    let mut all = codes(&read);
    all.extend(codes(&rest));
    assert_eq!(all.len(), 30, "every row once: {all:?}");
}

/// A keyless table (no primary key, no index): CDC enabled without net changes.
async fn notes(name: &str) -> Target {
    let target = Target::new(name).await;
    target
        .run(
            "CREATE TABLE dbo.notes (id int NOT NULL, body nvarchar(20) NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'notes', @role_name = NULL, @supports_net_changes = 0;",
        )
        .await;
    target
}

#[tokio::test]
async fn a_table_without_any_key_has_keyless_events_unless_message_key_columns_names_one() {
    let target = notes("keys_configured").await;
    let mut plain = target.streaming_source().await;
    let mut keyed = target
        .source(
            target
                .streaming()
                .message_key_columns("keys_configured.dbo.notes:id")
                .build()
                .unwrap(),
            None,
        )
        .await;
    target
        .run("INSERT INTO dbo.notes (id, body) VALUES (7, N'x'); UPDATE dbo.notes SET body = N'y' WHERE id = 7;")
        .await;
    target.scan().await;
    let events = read_events(&mut plain, 2).await;
    assert!(
        events.iter().all(|e| e.key().is_none()),
        "no key configured, none in the table"
    );
    let events = read_events(&mut keyed, 2).await;
    assert_eq!(
        events.iter().map(key).collect::<Vec<_>>(),
        vec![Some(vec![Value::I32(7)]), Some(vec![Value::I32(7)])]
    );
}

#[tokio::test]
async fn message_key_columns_override_the_capture_instance_index() {
    let target = ledger("keys_override").await;
    let mut source = target
        .source(
            target
                .streaming()
                .message_key_columns("dbo.ledger:amount,code")
                .build()
                .unwrap(),
            None,
        )
        .await;
    target
        .run("INSERT INTO dbo.ledger (code, amount) VALUES (N'A-1', 10);")
        .await;
    target.scan().await;
    let events = read_events(&mut source, 1).await;
    assert_eq!(
        key(&events[0]),
        Some(vec![Value::I32(10), Value::String("A-1".into())])
    );
}

#[tokio::test]
async fn a_snapshot_by_a_configured_key_that_is_not_unique_loses_no_row() {
    let target = notes("keys_not_unique").await;
    // Equal keys across what would be a chunk boundary (chunks of two: 1, 2 | 2, 3, 3): a
    // keyset read by `id` would skip the second row with id 2.
    target
        .run("INSERT INTO dbo.notes (id, body) VALUES (1, N'a'), (2, N'b'), (2, N'c'), (3, N'd'), (3, N'e');")
        .await;
    target.scan().await;
    let mut source = target
        .source(
            target
                .config()
                .snapshot_mode(SnapshotMode::InitialOnly)
                .snapshot_chunk_size(2)
                .message_key_columns("dbo.notes:id")
                .build()
                .unwrap(),
            None,
        )
        .await;
    let mut events = Vec::new();
    for batch in support::drain(&mut source, 20).await {
        events.extend(batch.events);
    }
    let mut bodies: Vec<Value> = events
        .iter()
        .filter(|e| e.op == Op::Read)
        .map(|e| e.row().unwrap().0[1].clone())
        .collect();
    bodies.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(
        bodies,
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| Value::String((*s).into()))
            .collect::<Vec<_>>()
    );
    assert!(events.iter().all(|e| e.key().is_some()));
}

#[tokio::test]
async fn message_key_columns_naming_a_column_the_table_lacks_fail_at_start_naming_the_field() {
    let target = notes("keys_bad_column").await;
    let mut source = MssqlSource::new(
        target
            .streaming()
            .message_key_columns("dbo.notes:nope")
            .build()
            .unwrap(),
    );
    let err = source.start(None).await.unwrap_err();
    let text = format!("{err:#} {err:?}");
    assert!(text.contains("message_key_columns"), "{text}");
    assert!(text.contains("nope"), "{text}");
}

#[tokio::test]
async fn an_incremental_snapshot_of_a_table_keyed_by_its_index_reads_every_row_by_chunks() {
    let target = ledger("keys_incremental").await;
    let mut inserts = String::new();
    for i in 1..=12 {
        inserts.push_str(&format!(
            "INSERT INTO dbo.ledger (code, amount) VALUES (N'c{i:02}', {i});\n"
        ));
    }
    target.run(&inserts).await;
    target.scan().await;
    let mut source =
        MssqlSource::new(target.streaming().build().unwrap()).incremental_chunk_size(5);
    source.start(None).await.unwrap();
    source
        .signals()
        .execute_snapshot(cdc_mssql::ExecuteSnapshot::incremental(["dbo.ledger"]))
        .unwrap();
    let mut reads = Vec::new();
    for _ in 0..100 {
        target.scan().await;
        if let Some(batch) = source.next_batch().await.unwrap() {
            reads.extend(batch.events.into_iter().filter(|e| e.op == Op::Read));
        }
        if source.incremental_snapshot_pending().is_empty() && reads.len() >= 12 {
            break;
        }
    }
    let mut codes: Vec<Option<Vec<Value>>> = reads.iter().map(key).collect();
    codes.sort_by_key(|k| format!("{k:?}"));
    let expected: Vec<Option<Vec<Value>>> = (1..=12).map(|i| code(&format!("c{i:02}"))).collect();
    assert_eq!(codes, expected, "every row once, keyed by the index");
}
