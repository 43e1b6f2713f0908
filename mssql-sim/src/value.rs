//! Column types and values of the in-memory engine, with SQL Server's conversion rules
//! reduced to what the simulator needs.
//!
//! - `types`: [`SqlType`] and [`Len`], wire sizes, parsing a type spelling.
//! - `values`: [`Value`], its text form, decimals and comparison.
//! - `collation`: [`Collation`], how text compares and orders (SQL sort order, Windows
//!   word sort, binary).
//! - `text`: date/time literals, code page 1252 and XML normalisation.
//! - `convert`: [`coerce`], a value to a column's type.
//! - `hierarchyid`: the `hierarchyid` text form, its stored bytes and their errors.
//! - `variant`: `sql_variant`'s base type and `SQL_VARIANT_PROPERTY`.
//! - `spatial`: `geometry`/`geography` WKT, WKB and their stored serialization.

pub(crate) mod collation;
mod convert;
pub(crate) mod hierarchyid;
pub(crate) mod spatial;
pub(crate) mod styles;
mod text;
mod types;
mod values;
pub(crate) mod variant;

pub(crate) use collation::Collation;
pub(crate) use convert::coerce;
pub(crate) use text::{cp1252_byte, cp1252_char, parse_datetime};
pub(crate) use types::{Len, SqlType};
pub(crate) use types::{decimal_len, parse_type, time_extra};
pub(crate) use values::Value;
pub(crate) use values::{TextCmp, as_datetime, compare, compare_in, parse_decimal, rescale};
