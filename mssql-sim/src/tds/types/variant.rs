//! A `sql_variant` value in a ROW token ([MS-TDS] 2.2.5.5.3, SSVARIANT): LONGLEN total length,
//! the base type's TDS type byte, the number of property bytes, the properties (precision and
//! scale; scale; collation and maximum length; maximum length) and the value without its own
//! length prefix. Integer, float, money and datetime bases use the fixed-length type bytes
//! (INT4 0x38, not INTN).

use super::COLLATION;
use super::encode::put_value;
use crate::error::SqlError;
use crate::value::{Len, SqlType, Value, variant};

/// The TDS type byte of a base type inside a sql_variant.
fn base_type_byte(base: &SqlType) -> Option<u8> {
    Some(match base {
        SqlType::TinyInt => 0x30,
        SqlType::SmallInt => 0x34,
        SqlType::Int => 0x38,
        SqlType::BigInt => 0x7F,
        SqlType::Bit => 0x32,
        SqlType::Real => 0x3B,
        SqlType::Float => 0x3E,
        SqlType::Money => 0x3C,
        SqlType::SmallMoney => 0x7A,
        SqlType::DateTime => 0x3D,
        SqlType::SmallDateTime => 0x3A,
        SqlType::Decimal(..) => 0x6A,
        SqlType::Char(_) => 0xAF,
        SqlType::VarChar(_) => 0xA7,
        SqlType::NChar(_) => 0xEF,
        SqlType::NVarChar(_) => 0xE7,
        SqlType::Binary(_) => 0xAD,
        SqlType::VarBinary(_) => 0xA5,
        SqlType::Date => 0x28,
        SqlType::Time(_) => 0x29,
        SqlType::DateTime2(_) => 0x2A,
        SqlType::DateTimeOffset(_) => 0x2B,
        SqlType::UniqueIdentifier => 0x24,
        _ => return None,
    })
}

/// Appends a non-NULL sql_variant holding `inner` of type `base`.
pub(super) fn put_variant(
    out: &mut Vec<u8>,
    inner: &Value,
    base: &SqlType,
) -> Result<(), SqlError> {
    let type_byte = base_type_byte(base).ok_or_else(|| {
        SqlError::new(
            206,
            format!(
                "Operand type clash: {} is incompatible with sql_variant",
                base.name()
            ),
        )
    })?;
    let mut props = Vec::with_capacity(variant::props_len(base));
    let declared = |n: &u16, per: u16| n.saturating_mul(per).to_le_bytes();
    match base {
        SqlType::Decimal(p, s) => props.extend_from_slice(&[*p, *s]),
        SqlType::Char(n) | SqlType::Binary(n) => props.extend_from_slice(&declared(n, 1)),
        SqlType::VarChar(Len::N(n)) | SqlType::VarBinary(Len::N(n)) => {
            props.extend_from_slice(&declared(n, 1))
        }
        SqlType::NChar(n) | SqlType::NVarChar(Len::N(n)) => {
            props.extend_from_slice(&declared(n, 2))
        }
        SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => props.push(*p),
        _ => {}
    }
    if matches!(
        base,
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_)
    ) {
        let len = std::mem::take(&mut props);
        props.extend_from_slice(&COLLATION);
        props.extend_from_slice(&len);
    }
    // The base type's own ROW encoding, without its length prefix (two bytes for the
    // USHORTLEN string and binary types, one for the rest).
    let mut value = Vec::new();
    put_value(&mut value, base, inner)?;
    let prefix = match base {
        SqlType::Char(_)
        | SqlType::VarChar(_)
        | SqlType::NChar(_)
        | SqlType::NVarChar(_)
        | SqlType::Binary(_)
        | SqlType::VarBinary(_) => 2,
        _ => 1,
    };
    let value = value.get(prefix..).unwrap_or_default();
    let total = 2 + props.len() + value.len();
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.push(type_byte);
    out.push(props.len() as u8);
    out.extend_from_slice(&props);
    out.extend_from_slice(value);
    Ok(())
}
