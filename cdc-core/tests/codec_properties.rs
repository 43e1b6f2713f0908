//! Property tests: every data type round-trips through both Debezium JSON forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cdc_core::testing::strategies;
use cdc_core::{ChangeEvent, DataType, DebeziumJson, EventCodec, Lsn};
use proptest::prelude::*;

fn round_trip(codec: &DebeziumJson, event: &ChangeEvent) -> ChangeEvent {
    let record = codec.encode(event).unwrap();
    codec.decode(&record).unwrap().expect("not a tombstone")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn schema_form_round_trips_every_type(event in strategies::event()) {
        let back = round_trip(&DebeziumJson::with_schema(), &event);
        prop_assert_eq!(&back, &event);
        prop_assert_eq!(&back.table.columns, &event.table.columns, "types come back from the schema");
    }

    #[test]
    fn schemaless_form_round_trips_every_type(event in strategies::event()) {
        let codec = DebeziumJson::builder().lossless(true).table(event.table.clone()).build();
        prop_assert_eq!(round_trip(&codec, &event), event);
    }

    #[test]
    fn lsn_text_round_trips_and_orders_like_bytes(a in any::<[u8; 10]>(), b in any::<[u8; 10]>()) {
        let (x, y) = (Lsn::new(a), Lsn::new(b));
        prop_assert_eq!(x.to_string().parse::<Lsn>().unwrap(), x);
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        prop_assert_eq!(x.to_string().cmp(&y.to_string()), a.cmp(&b), "text sorts like bytes");
        if x != Lsn::MAX {
            prop_assert!(x < x.increment());
            prop_assert_eq!(x.increment().decrement(), x);
        }
    }
}

/// The generators above pick from `DataType::samples()`; make sure that list has every variant
/// (adding a variant without a sample makes this match fail to compile).
#[test]
fn samples_cover_every_data_type() {
    let samples = DataType::samples();
    let kinds: std::collections::HashSet<String> = samples.iter().map(DataType::sql_name).collect();
    for t in &samples {
        match t {
            DataType::Bit
            | DataType::TinyInt
            | DataType::SmallInt
            | DataType::Int
            | DataType::BigInt
            | DataType::Decimal { .. }
            | DataType::Money
            | DataType::SmallMoney
            | DataType::Real
            | DataType::Float
            | DataType::Char { .. }
            | DataType::VarChar { .. }
            | DataType::NChar { .. }
            | DataType::NVarChar { .. }
            | DataType::Text
            | DataType::NText
            | DataType::Binary { .. }
            | DataType::VarBinary { .. }
            | DataType::Image
            | DataType::Date
            | DataType::Time { .. }
            | DataType::DateTime
            | DataType::SmallDateTime
            | DataType::DateTime2 { .. }
            | DataType::DateTimeOffset { .. }
            | DataType::UniqueIdentifier
            | DataType::Xml
            | DataType::RowVersion
            | DataType::Opaque { .. } => {}
            _ => unreachable!("a new DataType variant needs a sample and a codec mapping"),
        }
    }
    assert_eq!(
        kinds.len(),
        32,
        "distinct SQL type names among the samples: {kinds:?}"
    );
}
