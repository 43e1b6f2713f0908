//! Turning an event into the Kafka records that carry it.

use crate::{KafkaIoError, TopicNamer};
use cdc_core::{ChangeEvent, EventCodec, Op};
use rdkafka::message::{Header, OwnedHeaders};

/// Header carrying the operation's Debezium letter (`c`, `u`, `d`, `r`, `t`), or
/// `tombstone` on the null-valued record that follows a delete.
pub const HEADER_OP: &str = "cdc.op";
/// Header carrying the table as `database.schema.table`.
pub const HEADER_TABLE: &str = "cdc.table";
/// Header carrying the event's origin position as cdc-core's JSON (`{"kind":"sql_server",…}`).
pub const HEADER_POSITION: &str = "cdc.position";

/// One record to produce.
#[derive(Debug, Clone)]
pub(crate) struct OutRecord {
    pub(crate) topic: String,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl OutRecord {
    pub(crate) fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(
            OwnedHeaders::new_with_capacity(self.headers.len()),
            |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v),
                })
            },
        )
    }
}

/// The records for `event`: the event itself and, after a delete when `tombstones` is on, a
/// record with the same key and no value so that compaction drops the key.
pub(crate) fn records_for(
    event: &ChangeEvent,
    codec: &dyn EventCodec,
    namer: &dyn TopicNamer,
    tombstones: bool,
) -> Result<Vec<OutRecord>, KafkaIoError> {
    let encoded = codec.encode(event).map_err(|source| KafkaIoError::Encode {
        position: Box::new(event.position().clone()),
        source: Box::new(source),
    })?;
    let topic = namer.topic(event);
    let id = &event.table.id;
    let table = format!("{}.{}.{}", id.database, id.schema, id.table);
    // Serialising a Position cannot fail (plain strings and integers); an empty header would
    // only lose the hint, never data.
    let position = serde_json::to_vec(&event.source.position).unwrap_or_default();
    let mut headers = encoded.headers;
    headers.push((HEADER_OP.to_string(), event.op.code().as_bytes().to_vec()));
    headers.push((HEADER_TABLE.to_string(), table.clone().into_bytes()));
    headers.push((HEADER_POSITION.to_string(), position.clone()));
    let tombstone =
        (tombstones && event.op == Op::Delete && encoded.key.is_some()).then(|| OutRecord {
            topic: topic.clone(),
            key: encoded.key.clone(),
            value: None,
            headers: vec![
                (HEADER_OP.to_string(), b"tombstone".to_vec()),
                (HEADER_TABLE.to_string(), table.into_bytes()),
                (HEADER_POSITION.to_string(), position),
            ],
        });
    let mut out = Vec::with_capacity(2);
    out.push(OutRecord {
        topic,
        key: encoded.key,
        value: encoded.value,
        headers,
    });
    out.extend(tombstone);
    Ok(out)
}
