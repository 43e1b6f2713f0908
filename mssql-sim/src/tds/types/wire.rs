//! What the encodings share: the collation sent with character data, PLP markers, which
//! types stream as PLP, and the epochs dates count from.

use chrono::NaiveDate;

use crate::value::{Len, SqlType};

/// SQL_Latin1_General_CP1_CI_AS as the 5-byte TDS collation (LCID 0x0409, sort id 52).
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

pub(super) const PLP_NULL: u64 = u64::MAX;
pub(super) const PLP_UNKNOWN: u64 = u64::MAX - 1;

/// Whether the type is streamed as PLP (partially length-prefixed) data.
pub(super) fn is_plp(ty: &SqlType) -> bool {
    matches!(
        ty,
        SqlType::VarChar(Len::Max)
            | SqlType::NVarChar(Len::Max)
            | SqlType::VarBinary(Len::Max)
            | SqlType::Xml
            // UDT values always travel as PLP ([MS-TDS] 2.2.5.5.4).
            | SqlType::HierarchyId
            | SqlType::Geometry
            | SqlType::Geography
    )
}

pub(super) fn epoch_0001() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)
}

pub(super) fn epoch_1900() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}
