//! The data model: tables, values, events and positions.

mod checkpoint;
mod data_type;
mod event;
mod lsn;
mod position;
mod source_partition;
mod table;
mod value;

pub use checkpoint::Checkpoint;
pub use data_type::DataType;
pub use event::{ChangeEvent, Op, SchemaChange, SnapshotMarker, SourceInfo, TransactionInfo};
pub use lsn::{Lsn, LsnText, ParseLsnError};
pub use position::{KafkaOffset, LsnPosition, Position, SnapshotCursor};
pub use source_partition::SourcePartition;
pub use table::{Column, TableId, TableSchema, UnknownKeyColumn};
pub use value::{Decimal, ParseDecimalError, Row, Value};
