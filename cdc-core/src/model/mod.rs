//! The data model: tables, values, events and positions.

mod data_type;
mod event;
mod position;
mod source_partition;
mod table;
mod value;

pub use data_type::DataType;
pub use event::{ChangeEvent, Op, SchemaChange, SnapshotMarker, SourceInfo, TransactionInfo};
pub use position::{
    Checkpoint, KafkaOffset, Lsn, LsnPosition, LsnText, ParseLsnError, Position, SnapshotCursor,
};
pub use source_partition::SourcePartition;
pub use table::{Column, TableId, TableSchema, UnknownKeyColumn};
pub use value::{Decimal, ParseDecimalError, Row, Value};
