//! The CLR types and `sql_variant` through the reader: what each column's events carry, from
//! the snapshot and from the change table alike.
//!
//! - `hierarchyid`: its stored bytes ([MS-SSCLRT] encoding; ground-truth row 76: '/1/2/3/' is
//!   5B5E, the root '/' is zero bytes, '/1/' is 58, '/2/1/' is 6AC0).
//! - `geometry`/`geography`: EWKB — the OGC WKB of `STAsBinary()` with the SRID flag and
//!   `STSrid` inside (see `cdc_mssql`'s `types::spatial`).
//! - `sql_variant`: the base value with its TDS base type and properties (the SSVARIANT
//!   layout without its length; see `cdc_mssql`'s `types::variant`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::{DataType, Op, Value};
use cdc_mssql::SnapshotMode;
use support::{Target, read_events};

fn bytes(hex: &str) -> Value {
    Value::Bytes(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    )
}

/// (op, before, after) of the `node` column (index 1) of each event.
fn nodes(events: &[cdc_core::ChangeEvent]) -> Vec<(Op, Option<Value>, Option<Value>)> {
    events
        .iter()
        .map(|e| {
            (
                e.op,
                e.before.as_ref().map(|r| r.0[1].clone()),
                e.after.as_ref().map(|r| r.0[1].clone()),
            )
        })
        .collect()
}

/// Row 76 through the reader: snapshot rows and inserted, updated and deleted rows carry a
/// hierarchyid as its raw bytes, and the column's type is the opaque `hierarchyid`.
#[tokio::test]
async fn hierarchyid_reaches_events_as_its_stored_bytes() {
    let target = Target::new("clr_hierarchyid").await;
    target
        .run(
            "ALTER DATABASE [clr_hierarchyid] SET ALLOW_SNAPSHOT_ISOLATION ON;
             CREATE TABLE dbo.org (id int NOT NULL PRIMARY KEY, node hierarchyid NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'org', @role_name = NULL;
             INSERT INTO dbo.org VALUES (1, '/1/2/3/'), (2, '/');",
        )
        .await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let snapshot = read_events(&mut source, 2).await;
    assert_eq!(
        snapshot[0].table.columns[1].data_type,
        DataType::Opaque {
            type_name: "hierarchyid".into()
        }
    );
    target
        .run(
            "INSERT INTO dbo.org VALUES (3, '/1/');
             UPDATE dbo.org SET node = '/2/1/' WHERE id = 3;
             UPDATE dbo.org SET node = NULL WHERE id = 1;
             DELETE FROM dbo.org WHERE id = 2;",
        )
        .await;
    target.scan().await;
    let streamed = read_events(&mut source, 4).await;
    assert_eq!(
        nodes(&snapshot),
        vec![
            (Op::Read, None, Some(bytes("5B5E"))),
            (Op::Read, None, Some(bytes(""))),
        ]
    );
    assert_eq!(
        nodes(&streamed),
        vec![
            (Op::Create, None, Some(bytes("58"))),
            (Op::Update, Some(bytes("58")), Some(bytes("6AC0"))),
            (Op::Update, Some(bytes("5B5E")), Some(Value::Null)),
            (Op::Delete, Some(bytes("")), None),
        ]
    );
}

/// A sql_variant column's events keep each value's base type: an int 5 is INT4 (0x38) with
/// its four bytes, N'ab' NVARCHAR (0xE7) with its UTF-16 bytes, 0x0102 BIGVARBINARY (0xA5) —
/// where CAST to varbinary would make the int and a binary(4) the same bytes.
#[tokio::test]
async fn sql_variant_reaches_events_with_its_base_type() {
    let target = Target::new("clr_variant").await;
    target
        .run(
            "CREATE TABLE dbo.kv (id int NOT NULL PRIMARY KEY, v sql_variant NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'kv', @role_name = NULL;",
        )
        .await;
    let mut source = target.streaming_source().await;
    target
        .run(
            "INSERT INTO dbo.kv VALUES (1, 5);
             UPDATE dbo.kv SET v = N'ab' WHERE id = 1;
             UPDATE dbo.kv SET v = 0x0102 WHERE id = 1;
             UPDATE dbo.kv SET v = NULL WHERE id = 1;
             DELETE FROM dbo.kv WHERE id = 1;",
        )
        .await;
    target.scan().await;
    let events = read_events(&mut source, 5).await;
    let int5 = Value::Bytes(vec![0x38, 0, 5, 0, 0, 0]);
    // nvarchar(2) with SQL_Latin1_General_CP1_CI_AS's collation bytes.
    let ab = bytes("E7070904D00034040061006200");
    let bin = Value::Bytes(vec![0xA5, 2, 2, 0, 1, 2]);
    assert_eq!(
        nodes(&events),
        vec![
            (Op::Create, None, Some(int5.clone())),
            (Op::Update, Some(int5), Some(ab.clone())),
            (Op::Update, Some(ab), Some(bin.clone())),
            (Op::Update, Some(bin), Some(Value::Null)),
            (Op::Delete, Some(Value::Null), None),
        ]
    );
}

/// A sql_variant's base type reaches events as SQL Server has it, where tiberius's decoding
/// alone loses it: a varchar/char base is BIGVARCHR/BIGCHAR (0xA7/0xAF) with its collation,
/// declared length and code-page bytes; money/smallmoney are MONEY/SMALLMONEY (0x3C/0x7A),
/// not float; a decimal keeps its declared precision. Snapshot and change rows alike. Every
/// character base became nvarchar with zero collation bytes, money a float (0x3E).
#[tokio::test]
async fn sql_variant_events_keep_char_varchar_and_money_base_types() {
    let target = Target::new("clr_variant_bases").await;
    target
        .run(
            "ALTER DATABASE [clr_variant_bases] SET ALLOW_SNAPSHOT_ISOLATION ON;
             CREATE TABLE dbo.kv (id int NOT NULL PRIMARY KEY, v sql_variant NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'kv', @role_name = NULL;
             INSERT INTO dbo.kv VALUES (1, 'é'), (2, CAST('x' AS char(3))), (3, CAST(12.5 AS money)),
               (4, CAST(1.25 AS smallmoney)), (5, CAST(1.5 AS decimal(10,3))), (6, CAST(-2 AS money));",
        )
        .await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::Initial)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let collation = "0904D00034";
    let expected = vec![
        // varchar(1) 'é': code page 1252 byte 0xE9.
        bytes(&format!("A707{collation}0100E9")),
        // char(3) 'x  '.
        bytes(&format!("AF07{collation}0300782020")),
        // money 12.5 = 125000 ten-thousandths: high 32 bits, then low 32 bits.
        bytes("3C000000000048E80100"),
        // smallmoney 1.25 = 12500 ten-thousandths.
        bytes("7A00D4300000"),
        // decimal(10,3) 1.500: precision 10, scale 3, positive, 8 bytes.
        bytes("6A020A0301DC05000000000000"),
        // money -2 = -20000 ten-thousandths: 0xFFFFFFFF_FFFFB1E0.
        bytes("3C00FFFFFFFFE0B1FFFF"),
    ];
    let snapshot = read_events(&mut source, 6).await;
    let after = |events: &[cdc_core::ChangeEvent]| -> Vec<Value> {
        events
            .iter()
            .map(|e| e.after.as_ref().unwrap().0[1].clone())
            .collect()
    };
    assert_eq!(after(&snapshot), expected);
    target
        .run(
            "UPDATE dbo.kv SET v = CAST('ab' AS varchar(10)) WHERE id = 1;
             UPDATE dbo.kv SET v = CAST(7 AS money) WHERE id = 2;",
        )
        .await;
    target.scan().await;
    let streamed = read_events(&mut source, 2).await;
    assert_eq!(
        after(&streamed),
        vec![
            bytes(&format!("A707{collation}0A006162")),
            bytes("3C000000000070110100"),
        ]
    );
    assert_eq!(
        streamed[0].before.as_ref().unwrap().0[1],
        bytes(&format!("A707{collation}0100E9"))
    );
}

/// EWKB of a little-endian WKB point: type 1 with the SRID flag, the SRID, x, y.
fn ewkb_point(srid: u32, x: f64, y: f64) -> Value {
    let mut b = vec![1, 1, 0, 0, 0x20];
    b.extend_from_slice(&srid.to_le_bytes());
    b.extend_from_slice(&x.to_le_bytes());
    b.extend_from_slice(&y.to_le_bytes());
    Value::Bytes(b)
}

/// geometry and geography reach events as WKB with their SRID (EWKB), geography with
/// longitude as x; inserts, updates and deletes alike.
#[tokio::test]
async fn spatial_values_reach_events_as_wkb_with_their_srid() {
    let target = Target::new("clr_spatial").await;
    target
        .run(
            "CREATE TABLE dbo.places (id int NOT NULL PRIMARY KEY, g geometry NULL, p geography NULL);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'places', @role_name = NULL;",
        )
        .await;
    let mut source = target.streaming_source().await;
    target
        .run(
            "INSERT INTO dbo.places VALUES (1, geometry::Point(1, 2, 0), geography::Point(47.65, -122.34, 4326));
             UPDATE dbo.places SET g = geometry::STGeomFromText('POINT (3 4)', 3857) WHERE id = 1;
             DELETE FROM dbo.places WHERE id = 1;",
        )
        .await;
    target.scan().await;
    let events = read_events(&mut source, 3).await;
    assert_eq!(
        events[0].table.columns[2].data_type,
        DataType::Opaque {
            type_name: "geography".into()
        }
    );
    let cells = |r: &Option<cdc_core::Row>| r.as_ref().map(|r| (r.0[1].clone(), r.0[2].clone()));
    let p = ewkb_point(4326, -122.34, 47.65);
    let g1 = ewkb_point(0, 1.0, 2.0);
    let g2 = ewkb_point(3857, 3.0, 4.0);
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.op, cells(&e.before), cells(&e.after)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Op::Create, None, Some((g1.clone(), p.clone()))),
            (
                Op::Update,
                Some((g1, p.clone())),
                Some((g2.clone(), p.clone()))
            ),
            (Op::Delete, Some((g2, p)), None),
        ]
    );
}

/// A table keyed by a hierarchyid is snapshotted in chunks: the keyset compares the key with
/// its bytes, and every row arrives once, in depth-first key order.
#[tokio::test]
async fn a_hierarchyid_primary_key_is_snapshotted_in_chunks() {
    let target = Target::new("clr_hierarchyid_key").await;
    target
        .run(
            "ALTER DATABASE [clr_hierarchyid_key] SET ALLOW_SNAPSHOT_ISOLATION ON;
             CREATE TABLE dbo.tree (node hierarchyid NOT NULL PRIMARY KEY, name nvarchar(20));
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'tree', @role_name = NULL;
             INSERT INTO dbo.tree VALUES ('/2/', N'b'), ('/', N'root'), ('/1/1/', N'aa'), ('/1/', N'a'), ('/1.1/', N'a+');",
        )
        .await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::InitialOnly)
        .snapshot_chunk_size(2)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let events = read_events(&mut source, 5).await;
    let names: Vec<Value> = events
        .iter()
        .map(|e| e.after.as_ref().unwrap().0[1].clone())
        .collect();
    let s = |v: &str| Value::String(v.into());
    assert_eq!(names, [s("root"), s("a"), s("aa"), s("a+"), s("b")]);
    assert_eq!(events[0].after.as_ref().unwrap().0[0], bytes(""));
}

/// A table keyed by a sql_variant column is read in one query: its key values reach the
/// reader as SSVARIANT bytes, which cannot be bound back as the values they hold (SQL Server
/// refuses varbinary against sql_variant, 206). Found by a breaker: the snapshot failed with
/// 206 after its first chunk, at every restart.
#[tokio::test]
async fn a_table_keyed_by_sql_variant_is_snapshotted_in_one_query() {
    let target = Target::new("clr_variant_key").await;
    target
        .run(
            "ALTER DATABASE [clr_variant_key] SET ALLOW_SNAPSHOT_ISOLATION ON;
             CREATE TABLE dbo.vk (k sql_variant NOT NULL PRIMARY KEY, v int);
             EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'vk', @role_name = NULL;
             INSERT INTO dbo.vk VALUES (CAST(5 AS int), 1), (CAST(0x00000005 AS binary(4)), 2), (CAST(N'a' AS nvarchar(5)), 3), (CAST(7 AS bigint), 4), (CAST('2024-01-01' AS date), 5);",
        )
        .await;
    target.scan().await;
    let config = target
        .config()
        .snapshot_mode(SnapshotMode::InitialOnly)
        .snapshot_chunk_size(2)
        .build()
        .unwrap();
    let mut source = target.source(config, None).await;
    let events = read_events(&mut source, 5).await;
    let mut values: Vec<Value> = events
        .iter()
        .map(|e| e.after.as_ref().unwrap().0[1].clone())
        .collect();
    values.sort_by_key(|v| format!("{v:?}"));
    assert_eq!(
        values,
        (1..=5).map(Value::I32).collect::<Vec<_>>(),
        "every row once"
    );
}
