use crate::testing::{every_type_events, sample_events};
use crate::{EncodedRecord, EventCodec, Result};

/// Checks a codec: deterministic encoding, keys made of the primary key, tombstones, and
/// (when `lossless`) that decoding gives back every event of every type unchanged.
pub fn codec_conformance(codec: &dyn EventCodec, lossless: bool) -> Result<()> {
    for event in every_type_events()
        .iter()
        .chain(sample_events("codec", 12).iter())
    {
        let record = codec.encode(event)?;
        assert_eq!(
            codec.encode(event)?,
            record,
            "encoding must be deterministic"
        );
        assert!(record.value.is_some(), "an event must encode to a value");
        assert_eq!(
            record.key.is_some(),
            event.key().is_some(),
            "a key exactly when the event has primary-key values ({:?})",
            event.op
        );
        let decoded = codec.decode(&record)?;
        assert!(
            decoded.is_some(),
            "an encoded event must decode to an event"
        );
        if lossless {
            assert_eq!(
                decoded.as_ref(),
                Some(event),
                "decode(encode(e)) must equal e"
            );
        }
    }

    let events = sample_events("codec", 7);
    let key = |i: usize| -> Result<Option<Vec<u8>>> { Ok(codec.encode(&events[i])?.key) };
    // Event 5 updates row 5 and event 7 deletes row 7; rows 1 and 2 differ.
    assert_ne!(
        key(0)?,
        key(1)?,
        "different primary keys must give different keys"
    );
    let mut same_row = events[4].clone();
    same_row.op = crate::Op::Delete;
    same_row.before = same_row.after.take();
    assert_eq!(
        codec.encode(&same_row)?.key,
        key(4)?,
        "the key must depend on the row's key only"
    );

    let tombstone = EncodedRecord {
        key: key(0)?,
        value: None,
        headers: Vec::new(),
    };
    assert_eq!(
        codec.decode(&tombstone)?,
        None,
        "a record without value is a tombstone"
    );
    Ok(())
}
