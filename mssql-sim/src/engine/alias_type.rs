//! Alias data types as the catalog keeps them (a leaf, so that both the catalog and the
//! transactions that undo `DROP TYPE` can name one without depending on each other).

use crate::value::SqlType;

/// An alias data type (`CREATE TYPE [schema.]name FROM base_type [NULL | NOT NULL]`):
/// columns, variables and CAST/CONVERT of it behave as `base`; `sys.columns` reports its
/// `user_type_id` beside the base's `system_type_id` (Microsoft, "sys.types", "CREATE TYPE").
#[derive(Debug, Clone)]
pub(crate) struct AliasType {
    pub(crate) user_type_id: i32,
    pub(crate) schema_id: i32,
    pub(crate) name: String,
    /// The system type it is based on, with its length/precision/scale.
    pub(crate) base: SqlType,
    /// The nullability a column of this type gets when its definition says neither NULL
    /// nor NOT NULL (`sys.types.is_nullable`).
    pub(crate) nullable: bool,
}
