//! TYPE_INFO and value encodings: how each SQL type appears in COLMETADATA and ROW tokens,
//! and how RPC parameters arrive.
//!
//! - this file: TYPE_INFO as COLMETADATA carries it.
//! - `encode`: values into ROW tokens and output parameters, `sql_variant` values with their
//!   base type and properties among them (a variant's value is encoded as its base type's).
//! - `decode`: RPC parameter values out of a request.
//! - `wire`: what the encodings share (collation, PLP markers, which types are PLP, date
//!   epochs).

mod decode;
mod encode;
mod wire;

use crate::value::{Len, SqlType, decimal_len};
pub(crate) use decode::{Reader, read_typed_value};
pub(crate) use encode::put_value;
pub(crate) use wire::COLLATION;

/// Appends the TYPE_INFO of `ty` (without the usertype/flags prefix).
/// Character types carry `collation` (the column's, as [`crate::value::Collation::tds_bytes`]
/// gives it).
pub(crate) fn put_type_info(out: &mut Vec<u8>, ty: &SqlType, collation: &[u8; 5]) {
    let u16_len = |out: &mut Vec<u8>, l: &Len, mul: u16| match l {
        Len::N(n) => out.extend_from_slice(&n.saturating_mul(mul).to_le_bytes()),
        Len::Max => out.extend_from_slice(&0xffffu16.to_le_bytes()),
    };
    match ty {
        SqlType::TinyInt => out.extend_from_slice(&[0x26, 1]),
        SqlType::SmallInt => out.extend_from_slice(&[0x26, 2]),
        SqlType::Int => out.extend_from_slice(&[0x26, 4]),
        SqlType::BigInt => out.extend_from_slice(&[0x26, 8]),
        SqlType::Bit => out.extend_from_slice(&[0x68, 1]),
        SqlType::Decimal(p, s) => out.extend_from_slice(&[0x6A, decimal_len(*p), *p, *s]),
        SqlType::Money => out.extend_from_slice(&[0x6E, 8]),
        SqlType::SmallMoney => out.extend_from_slice(&[0x6E, 4]),
        SqlType::Real => out.extend_from_slice(&[0x6D, 4]),
        SqlType::Float => out.extend_from_slice(&[0x6D, 8]),
        SqlType::Char(n) => {
            out.push(0xAF);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(collation);
        }
        SqlType::VarChar(l) => {
            out.push(0xA7);
            u16_len(out, l, 1);
            out.extend_from_slice(collation);
        }
        SqlType::NChar(n) => {
            out.push(0xEF);
            out.extend_from_slice(&n.saturating_mul(2).to_le_bytes());
            out.extend_from_slice(collation);
        }
        SqlType::NVarChar(l) => {
            out.push(0xE7);
            u16_len(out, l, 2);
            out.extend_from_slice(collation);
        }
        SqlType::Text => {
            out.push(0x23);
            out.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
            out.extend_from_slice(collation);
        }
        SqlType::NText => {
            out.push(0x63);
            out.extend_from_slice(&0x3fff_ffffu32.to_le_bytes());
            out.extend_from_slice(collation);
        }
        SqlType::Binary(n) => {
            out.push(0xAD);
            out.extend_from_slice(&n.to_le_bytes());
        }
        SqlType::RowVersion => {
            out.push(0xAD);
            out.extend_from_slice(&8u16.to_le_bytes());
        }
        SqlType::Image => {
            out.push(0x22);
            out.extend_from_slice(&0x7fff_ffffu32.to_le_bytes());
        }
        SqlType::VarBinary(l) => {
            out.push(0xA5);
            u16_len(out, l, 1);
        }
        SqlType::Date => out.push(0x28),
        SqlType::Time(p) => out.extend_from_slice(&[0x29, *p]),
        SqlType::DateTime2(p) => out.extend_from_slice(&[0x2A, *p]),
        SqlType::DateTimeOffset(p) => out.extend_from_slice(&[0x2B, *p]),
        SqlType::DateTime => out.extend_from_slice(&[0x6F, 8]),
        SqlType::SmallDateTime => out.extend_from_slice(&[0x6F, 4]),
        SqlType::UniqueIdentifier => out.extend_from_slice(&[0x24, 16]),
        SqlType::Xml => out.extend_from_slice(&[0xF1, 0]),
        SqlType::HierarchyId => put_udt_info(out, 892, "hierarchyid", HIERARCHYID_ASSEMBLY),
        // Large UDTs: MAX_BYTE_SIZE 0xFFFF.
        SqlType::Geometry => put_udt_info(out, 0xFFFF, "geometry", GEOMETRY_ASSEMBLY),
        SqlType::Geography => put_udt_info(out, 0xFFFF, "geography", GEOGRAPHY_ASSEMBLY),
        // SSVARIANTTYPE with its LONGLEN maximum ([MS-TDS] 2.2.5.4.3).
        SqlType::Variant => {
            out.push(0x62);
            out.extend_from_slice(&8016u32.to_le_bytes());
        }
    }
}

/// The assembly-qualified CLR name SQL Server 2022 reports for `hierarchyid`
/// (Microsoft.SqlServer.Types, version 11 since SQL Server 2012).
const HIERARCHYID_ASSEMBLY: &str = "Microsoft.SqlServer.Types.SqlHierarchyId, Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91";

/// The assembly-qualified CLR name of `geometry`.
const GEOMETRY_ASSEMBLY: &str = "Microsoft.SqlServer.Types.SqlGeometry, Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91";

/// The assembly-qualified CLR name of `geography`.
const GEOGRAPHY_ASSEMBLY: &str = "Microsoft.SqlServer.Types.SqlGeography, Microsoft.SqlServer.Types, Version=11.0.0.0, Culture=neutral, PublicKeyToken=89845dcd8080cc91";

/// UDT TYPE_INFO (0xF0) with UDT_INFO as COLMETADATA carries it ([MS-TDS] 2.2.5.5.4):
/// MAX_BYTE_SIZE (USHORT), DB_NAME, SCHEMA_NAME, TYPE_NAME (B_VARCHAR each) and
/// ASSEMBLY_QUALIFIED_NAME (US_VARCHAR). The system CLR types live in schema `sys`; the
/// database name is left empty (what a real server sends there for system types is
/// unverified; tiberius and mssql-jdbc do not use it).
fn put_udt_info(out: &mut Vec<u8>, max_size: u16, type_name: &str, assembly: &str) {
    out.push(0xF0);
    out.extend_from_slice(&max_size.to_le_bytes());
    for name in ["", "sys", type_name] {
        let units: Vec<u16> = name.encode_utf16().collect();
        out.push(units.len() as u8);
        units
            .iter()
            .for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
    }
    let units: Vec<u16> = assembly.encode_utf16().collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    units
        .iter()
        .for_each(|u| out.extend_from_slice(&u.to_le_bytes()));
}
