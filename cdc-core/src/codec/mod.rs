//! The event codec role: events to bytes and back.

mod debezium;
mod debezium_schema;
mod debezium_schema_read;
mod debezium_value;
mod debezium_writer;
mod handling;

pub use debezium::{DebeziumJson, DebeziumJsonBuilder};
pub use handling::{
    BinaryHandlingMode, DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER, DecimalHandlingMode, ParseModeError,
    TimePrecisionMode,
};

use crate::{ChangeEvent, Result};

/// An encoded event: what a Kafka record or a JSON line carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedRecord {
    /// Key bytes: the primary-key columns; `None` for keyless tables.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers the codec wants on the record (name, bytes).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Turns events into key, value and headers, and back.
///
/// Encoding is deterministic: the same event always gives the same bytes, which is what lets
/// sinks rewrite an identical object after a crash. `decode` returns `Ok(None)` for a
/// tombstone (a record with no value).
///
/// # Example
///
/// ```
/// use cdc_core::testing::sample_events;
/// use cdc_core::{DebeziumJson, EventCodec};
/// let codec = DebeziumJson::with_schema();
/// let event = &sample_events("demo", 1)[0];
/// let record = codec.encode(event).unwrap();
/// let back = codec.decode(&record).unwrap().unwrap();
/// assert_eq!(&back, event);
/// ```
pub trait EventCodec: Send + Sync {
    /// A short name for logs, headers and file extensions (`debezium-json`).
    fn name(&self) -> &str;

    /// Encodes one event.
    fn encode(&self, event: &ChangeEvent) -> Result<EncodedRecord>;

    /// Decodes one record; `Ok(None)` for a tombstone.
    fn decode(&self, record: &EncodedRecord) -> Result<Option<ChangeEvent>>;
}

impl<C: EventCodec + ?Sized> EventCodec for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn encode(&self, event: &ChangeEvent) -> Result<EncodedRecord> {
        (**self).encode(event)
    }
    fn decode(&self, record: &EncodedRecord) -> Result<Option<ChangeEvent>> {
        (**self).decode(record)
    }
}

impl<C: EventCodec + ?Sized> EventCodec for std::sync::Arc<C> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn encode(&self, event: &ChangeEvent) -> Result<EncodedRecord> {
        (**self).encode(event)
    }
    fn decode(&self, record: &EncodedRecord) -> Result<Option<ChangeEvent>> {
        (**self).decode(record)
    }
}
