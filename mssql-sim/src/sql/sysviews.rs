//! Catalog views (`sys.*`, `INFORMATION_SCHEMA.*`) computed from the engine on demand.
//!
//! - this file: the view's name resolved to its database, and the row-building helpers.
//! - `sys`: the `sys.*` catalog views and DMVs.
//! - `information_schema`: the `INFORMATION_SCHEMA.*` views.
//! - `dm_cdc`: `sys.dm_cdc_errors`, the capture job's log scan errors.

mod dm_cdc;
mod information_schema;
mod sys;

use crate::error::SqlResult;
use crate::sql::exec::Exec;
use crate::sql::rel::{Rel, RelCol};
use crate::value::{Len, SqlType, Value};

const NAME: SqlType = SqlType::NVarChar(Len::N(128));

fn rel(cols: &[(&str, SqlType)], rows: Vec<Vec<Value>>) -> Rel {
    Rel {
        cols: cols
            .iter()
            .map(|(n, t)| RelCol {
                qual: String::new(),
                name: n.to_string(),
                ty: *t,
                nullable: true,
                collation: None,
            })
            .collect(),
        rows,
    }
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn i(x: i64) -> Value {
    Value::Int(x)
}

fn b(x: bool) -> Value {
    Value::Bit(x)
}

const ALL_TYPES: [SqlType; 32] = [
    SqlType::TinyInt,
    SqlType::SmallInt,
    SqlType::Int,
    SqlType::BigInt,
    SqlType::Bit,
    SqlType::Decimal(18, 0),
    SqlType::Money,
    SqlType::SmallMoney,
    SqlType::Real,
    SqlType::Float,
    SqlType::Char(1),
    SqlType::VarChar(Len::N(8000)),
    SqlType::NChar(1),
    SqlType::NVarChar(Len::N(4000)),
    SqlType::Text,
    SqlType::NText,
    SqlType::Image,
    SqlType::Binary(1),
    SqlType::VarBinary(Len::N(8000)),
    SqlType::Date,
    SqlType::Time(7),
    SqlType::DateTime,
    SqlType::SmallDateTime,
    SqlType::DateTime2(7),
    SqlType::DateTimeOffset(7),
    SqlType::UniqueIdentifier,
    SqlType::Xml,
    SqlType::RowVersion,
    SqlType::HierarchyId,
    SqlType::Variant,
    SqlType::Geometry,
    SqlType::Geography,
];

/// An LSN in the numeric form the `sys.dm_tran_*` views use: VLF sequence × 10^15 + block
/// × 10^5 + slot (what Microsoft's `fn_convertnumericlsntobinary` template takes apart).
fn numeric_lsn(l: crate::engine::log::Lsn) -> i128 {
    let b = l.to_bytes();
    let vlf = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let block = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let slot = u16::from_be_bytes([b[8], b[9]]);
    i128::from(vlf) * 1_000_000_000_000_000 + i128::from(block) * 100_000 + i128::from(slot)
}

impl Exec<'_> {
    /// A catalog view by name, if `parts` names one.
    pub(crate) fn system_view(&mut self, parts: &[String]) -> SqlResult<Option<Rel>> {
        let (db_name, schema, view) = match parts {
            [s, v] => (self.sess.db.clone(), s.to_lowercase(), v.to_lowercase()),
            [d, s, v] => (d.to_lowercase(), s.to_lowercase(), v.to_lowercase()),
            _ => return Ok(None),
        };
        if schema != "sys" && schema != "information_schema" {
            return Ok(None);
        }
        if schema == "sys" {
            if let Some(r) = self.dm_cdc_view(&db_name, &view) {
                return Ok(Some(r));
            }
            self.sys_view(&db_name, &view)
        } else {
            self.information_schema_view(&db_name, &view)
        }
    }
}
