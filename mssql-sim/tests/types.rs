//! Every column type (and NULL of each) through COLMETADATA/ROW/NBCROW to tiberius, and
//! typed RPC parameters from tiberius back through `sp_executesql`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use tiberius::ColumnData;
use tiberius::numeric::Numeric;
use uuid::Uuid;

const CREATE: &str = "CREATE TABLE dbo.all_types (
  id int NOT NULL PRIMARY KEY,
  c_tinyint tinyint, c_smallint smallint, c_int int, c_bigint bigint, c_bit bit,
  c_dec decimal(38,10), c_num numeric(10,2), c_money money, c_smallmoney smallmoney,
  c_real real, c_float float, c_char char(5), c_varchar varchar(50), c_nchar nchar(5),
  c_nvarchar nvarchar(50), c_nvmax nvarchar(max), c_vmax varchar(max), c_text text, c_ntext ntext,
  c_binary binary(4), c_varbinary varbinary(50), c_vbmax varbinary(max), c_date date,
  c_time time(3), c_datetime datetime, c_smalldatetime smalldatetime, c_dt2 datetime2(7),
  c_dto datetimeoffset(5), c_guid uniqueidentifier, c_xml xml, c_rv rowversion)";

const INSERT: &str = "INSERT INTO dbo.all_types (id, c_tinyint, c_smallint, c_int, c_bigint, c_bit, c_dec, c_num,
  c_money, c_smallmoney, c_real, c_float, c_char, c_varchar, c_nchar, c_nvarchar, c_nvmax, c_vmax, c_text,
  c_ntext, c_binary, c_varbinary, c_vbmax, c_date, c_time, c_datetime, c_smalldatetime, c_dt2, c_dto, c_guid, c_xml)
  VALUES (1, 255, -32768, 2147483647, 9223372036854775807, 1,
  1234567890123456789012345678.0123456789, -12345678.91, 922337203685477.5807, -214748.3648,
  3.5, 2.25, 'ab', 'hello', N'äö', N'Grüße €', N'long nvarchar(max) value', 'long varchar(max)', 'text value',
  N'ntext ünicode', 0x01020304, 0xDEADBEEF, 0x00FF, '2024-02-29', '13:45:30.123', '2024-01-02 03:04:05.997',
  '2024-01-02 03:04:00', '2024-01-02 03:04:05.1234567', '2024-01-02 03:04:05.12345 +05:30',
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', N'<a>1</a>');
  INSERT INTO dbo.all_types (id) VALUES (2);";

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[tokio::test]
async fn every_type_and_null_reaches_tiberius() {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    common::exec(&mut c, CREATE).await;
    common::exec(&mut c, INSERT).await;
    let rows = c
        .simple_query("SELECT * FROM dbo.all_types ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<u8, _>("c_tinyint"), Some(255));
    assert_eq!(r.get::<i16, _>("c_smallint"), Some(-32768));
    assert_eq!(r.get::<i32, _>("c_int"), Some(i32::MAX));
    assert_eq!(r.get::<i64, _>("c_bigint"), Some(i64::MAX));
    assert_eq!(r.get::<bool, _>("c_bit"), Some(true));
    let d: Numeric = r.get("c_dec").unwrap();
    assert_eq!(
        (d.value(), d.scale()),
        (12345678901234567890123456780123456789, 10)
    );
    let n: Numeric = r.get("c_num").unwrap();
    assert_eq!((n.value(), n.scale()), (-1234567891, 2));
    match r.try_get::<ColumnData<'_>, _>("c_money").unwrap().unwrap() {
        ColumnData::F64(Some(m)) => assert!((m - 922_337_203_685_477.6).abs() < 1.0),
        ColumnData::Numeric(Some(m)) => {
            assert_eq!((m.value(), m.scale()), (9223372036854775807, 4))
        }
        other => panic!("money decoded as {other:?}"),
    }
    match r
        .try_get::<ColumnData<'_>, _>("c_smallmoney")
        .unwrap()
        .unwrap()
    {
        ColumnData::F64(Some(m)) => assert!((m + 214748.3648).abs() < 1e-6),
        ColumnData::Numeric(Some(m)) => assert_eq!((m.value(), m.scale()), (-2147483648, 4)),
        other => panic!("smallmoney decoded as {other:?}"),
    }
    assert_eq!(r.get::<f32, _>("c_real"), Some(3.5));
    assert_eq!(r.get::<f64, _>("c_float"), Some(2.25));
    assert_eq!(r.get::<&str, _>("c_char"), Some("ab   "));
    assert_eq!(r.get::<&str, _>("c_varchar"), Some("hello"));
    assert_eq!(r.get::<&str, _>("c_nchar"), Some("äö   "));
    assert_eq!(r.get::<&str, _>("c_nvarchar"), Some("Grüße €"));
    assert_eq!(
        r.get::<&str, _>("c_nvmax"),
        Some("long nvarchar(max) value")
    );
    assert_eq!(r.get::<&str, _>("c_vmax"), Some("long varchar(max)"));
    assert_eq!(r.get::<&str, _>("c_text"), Some("text value"));
    assert_eq!(r.get::<&str, _>("c_ntext"), Some("ntext ünicode"));
    assert_eq!(r.get::<&[u8], _>("c_binary"), Some(&[1u8, 2, 3, 4][..]));
    assert_eq!(
        r.get::<&[u8], _>("c_varbinary"),
        Some(&[0xDEu8, 0xAD, 0xBE, 0xEF][..])
    );
    assert_eq!(r.get::<&[u8], _>("c_vbmax"), Some(&[0u8, 0xFF][..]));
    assert_eq!(
        r.get::<NaiveDate, _>("c_date"),
        NaiveDate::from_ymd_opt(2024, 2, 29)
    );
    assert_eq!(
        r.get::<NaiveTime, _>("c_time"),
        NaiveTime::from_hms_milli_opt(13, 45, 30, 123)
    );
    // datetime keeps 1/300 s ticks: .997 is 299 ticks, which tiberius decodes as .996666666
    assert_eq!(
        r.get::<NaiveDateTime, _>("c_datetime"),
        Some(dt("2024-01-02 03:04:05.996666666"))
    );
    assert_eq!(
        r.get::<NaiveDateTime, _>("c_smalldatetime"),
        Some(dt("2024-01-02 03:04:00"))
    );
    assert_eq!(
        r.get::<NaiveDateTime, _>("c_dt2"),
        Some(dt("2024-01-02 03:04:05.1234567"))
    );
    let dto: chrono::DateTime<FixedOffset> = r.get("c_dto").unwrap();
    let expected = FixedOffset::east_opt(5 * 3600 + 30 * 60)
        .unwrap()
        .from_local_datetime(&dt("2024-01-02 03:04:05.12345"))
        .unwrap();
    assert_eq!(dto, expected);
    assert_eq!(dto.offset().local_minus_utc(), 19800);
    assert_eq!(
        r.get::<Uuid, _>("c_guid"),
        Some(Uuid::parse_str("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap())
    );
    let xml: &tiberius::xml::XmlData = r.get("c_xml").unwrap();
    assert_eq!(xml.to_string(), "<a>1</a>");
    let rv: &[u8] = r.get("c_rv").unwrap();
    assert_eq!(rv.len(), 8);

    // Row 2: every column except the key and rowversion is NULL (sent as NBCROW).
    let r = &rows[1];
    for (i, col) in r.columns().iter().enumerate() {
        let v: ColumnData<'_> = r.try_get(i).unwrap().unwrap();
        let is_null = matches!(
            v,
            ColumnData::U8(None)
                | ColumnData::I16(None)
                | ColumnData::I32(None)
                | ColumnData::I64(None)
                | ColumnData::F32(None)
                | ColumnData::F64(None)
                | ColumnData::Bit(None)
                | ColumnData::String(None)
                | ColumnData::Guid(None)
                | ColumnData::Binary(None)
                | ColumnData::Numeric(None)
                | ColumnData::Xml(None)
                | ColumnData::DateTime(None)
                | ColumnData::SmallDateTime(None)
                | ColumnData::Time(None)
                | ColumnData::Date(None)
                | ColumnData::DateTime2(None)
                | ColumnData::DateTimeOffset(None)
        );
        match col.name() {
            "id" | "c_rv" => assert!(!is_null, "{} should not be NULL", col.name()),
            name => assert!(is_null, "{name} should be NULL, got {v:?}"),
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn typed_rpc_parameters_round_trip() {
    let sim = common::start().await;
    let mut c = common::connect(&sim).await;
    let when = dt("2023-05-06 07:08:09.1234567");
    let date = NaiveDate::from_ymd_opt(2020, 1, 31).unwrap();
    let time = NaiveTime::from_hms_micro_opt(23, 59, 58, 123456).unwrap();
    let dto = FixedOffset::west_opt(3 * 3600)
        .unwrap()
        .from_local_datetime(&when)
        .unwrap();
    let guid = Uuid::parse_str("11112222-3333-4444-5555-666677778888").unwrap();
    let num = Numeric::new_with_scale(-123456789012345678901234567890123456, 6);
    let bytes: &[u8] = &[9, 8, 7];
    let none: Option<i32> = None;
    let long = "x".repeat(5000);
    let row = c
        .query(
            "SELECT @P1 AS a, @P2 AS b, @P3 AS c, @P4 AS d, @P5 AS e, @P6 AS f, @P7 AS g, @P8 AS h, @P9 AS i, @P10 AS j, @P11 AS k, @P12 AS l, @P13 AS m, @P14 AS n, @P15 AS o, @P16 AS p",
            &[&1u8, &-2i16, &3i32, &-4i64, &true, &1.5f32, &-2.75f64, &"ünï", &bytes, &guid, &num, &when, &date, &time, &dto, &none],
        )
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<u8, _>("a"), Some(1));
    assert_eq!(row.get::<i16, _>("b"), Some(-2));
    assert_eq!(row.get::<i32, _>("c"), Some(3));
    assert_eq!(row.get::<i64, _>("d"), Some(-4));
    assert_eq!(row.get::<bool, _>("e"), Some(true));
    assert_eq!(row.get::<f32, _>("f"), Some(1.5));
    assert_eq!(row.get::<f64, _>("g"), Some(-2.75));
    assert_eq!(row.get::<&str, _>("h"), Some("ünï"));
    assert_eq!(row.get::<&[u8], _>("i"), Some(bytes));
    assert_eq!(row.get::<Uuid, _>("j"), Some(guid));
    assert_eq!(row.get::<Numeric, _>("k"), Some(num));
    assert_eq!(row.get::<NaiveDateTime, _>("l"), Some(when));
    assert_eq!(row.get::<NaiveDate, _>("m"), Some(date));
    assert_eq!(row.get::<NaiveTime, _>("n"), Some(time));
    assert_eq!(row.get::<chrono::DateTime<FixedOffset>, _>("o"), Some(dto));
    assert_eq!(row.get::<i32, _>("p"), None);

    // A long string parameter goes as nvarchar(max) (PLP) both ways.
    let row = c
        .query("SELECT @P1 AS s, LEN(@P1) AS n", &[&long.as_str()])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>("s"), Some(long.as_str()));
    assert_eq!(row.get::<i32, _>("n"), Some(5000));

    // Parameters in DML.
    common::exec(
        &mut c,
        "CREATE TABLE t (id int PRIMARY KEY, name nvarchar(20), amount decimal(10,2))",
    )
    .await;
    let res = c
        .execute(
            "INSERT INTO t VALUES (@P1, @P2, @P3), (@P4, @P5, @P6)",
            &[
                &1i32,
                &"a",
                &Numeric::new_with_scale(1050, 2),
                &2i32,
                &"b",
                &none,
            ],
        )
        .await
        .unwrap();
    assert_eq!(res.rows_affected(), &[2]);
    let rows = c
        .query(
            "SELECT id, name, amount FROM t WHERE id >= @P1 ORDER BY id DESC",
            &[&1i32],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<&str, _>("name"), Some("b"));
    assert_eq!(rows[0].get::<Numeric, _>("amount"), None);
    assert_eq!(
        rows[1].get::<Numeric, _>("amount"),
        Some(Numeric::new_with_scale(1050, 2))
    );
    sim.stop().await;
}
