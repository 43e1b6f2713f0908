//! SQL Server column types: declared lengths, the type list, their wire sizes and parsing a
//! T-SQL type spelling.

use crate::error::{SqlError, SqlResult};

/// Declared length of a variable-length column: a number of characters/bytes or `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    /// `(n)`
    N(u16),
    /// `(max)`, sent as a PLP stream.
    Max,
}

/// A SQL Server column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SqlType {
    /// `tinyint`
    TinyInt,
    /// `smallint`
    SmallInt,
    /// `int`
    Int,
    /// `bigint`
    BigInt,
    /// `bit`
    Bit,
    /// `decimal(p, s)` / `numeric(p, s)`
    Decimal(u8, u8),
    /// `money`
    Money,
    /// `smallmoney`
    SmallMoney,
    /// `real`
    Real,
    /// `float`
    Float,
    /// `char(n)`
    Char(u16),
    /// `varchar(n|max)`
    VarChar(Len),
    /// `nchar(n)`
    NChar(u16),
    /// `nvarchar(n|max)`
    NVarChar(Len),
    /// `text`
    Text,
    /// `ntext`
    NText,
    /// `binary(n)`
    Binary(u16),
    /// `varbinary(n|max)`
    VarBinary(Len),
    /// `date`
    Date,
    /// `time(p)`
    Time(u8),
    /// `datetime`
    DateTime,
    /// `smalldatetime`
    SmallDateTime,
    /// `datetime2(p)`
    DateTime2(u8),
    /// `datetimeoffset(p)`
    DateTimeOffset(u8),
    /// `uniqueidentifier`
    UniqueIdentifier,
    /// `xml`
    Xml,
    /// `rowversion` / `timestamp`
    RowVersion,
    /// `image` (deprecated large binary, sent as IMAGE on the wire)
    Image,
    /// `hierarchyid`: a CLR type (UDT on the wire), stored as its [MS-SSCLRT] bytes.
    HierarchyId,
    /// `sql_variant`: a value with its own base type (0x62 on the wire).
    Variant,
    /// `geometry`: a CLR type, stored in its [MS-SSCLRT] serialization.
    Geometry,
    /// `geography`: a CLR type, stored in its [MS-SSCLRT] serialization.
    Geography,
}

impl SqlType {
    /// The type's name as `sys.types` and `INFORMATION_SCHEMA` show it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SqlType::TinyInt => "tinyint",
            SqlType::SmallInt => "smallint",
            SqlType::Int => "int",
            SqlType::BigInt => "bigint",
            SqlType::Bit => "bit",
            SqlType::Decimal(..) => "decimal",
            SqlType::Money => "money",
            SqlType::SmallMoney => "smallmoney",
            SqlType::Real => "real",
            SqlType::Float => "float",
            SqlType::Char(_) => "char",
            SqlType::VarChar(_) => "varchar",
            SqlType::NChar(_) => "nchar",
            SqlType::NVarChar(_) => "nvarchar",
            SqlType::Text => "text",
            SqlType::NText => "ntext",
            SqlType::Binary(_) => "binary",
            SqlType::VarBinary(_) => "varbinary",
            SqlType::Date => "date",
            SqlType::Time(_) => "time",
            SqlType::DateTime => "datetime",
            SqlType::SmallDateTime => "smalldatetime",
            SqlType::DateTime2(_) => "datetime2",
            SqlType::DateTimeOffset(_) => "datetimeoffset",
            SqlType::UniqueIdentifier => "uniqueidentifier",
            SqlType::Xml => "xml",
            SqlType::RowVersion => "timestamp",
            SqlType::Image => "image",
            SqlType::HierarchyId => "hierarchyid",
            SqlType::Variant => "sql_variant",
            SqlType::Geometry => "geometry",
            SqlType::Geography => "geography",
        }
    }

    /// `system_type_id` in `sys.types`.
    pub(crate) fn type_id(&self) -> u8 {
        match self {
            SqlType::TinyInt => 48,
            SqlType::SmallInt => 52,
            SqlType::Int => 56,
            SqlType::BigInt => 127,
            SqlType::Bit => 104,
            SqlType::Decimal(..) => 106,
            SqlType::Money => 60,
            SqlType::SmallMoney => 122,
            SqlType::Real => 59,
            SqlType::Float => 62,
            SqlType::Char(_) => 175,
            SqlType::VarChar(_) => 167,
            SqlType::NChar(_) => 239,
            SqlType::NVarChar(_) => 231,
            SqlType::Text => 35,
            SqlType::NText => 99,
            SqlType::Binary(_) => 173,
            SqlType::VarBinary(_) => 165,
            SqlType::Date => 40,
            SqlType::Time(_) => 41,
            SqlType::DateTime => 61,
            SqlType::SmallDateTime => 58,
            SqlType::DateTime2(_) => 42,
            SqlType::DateTimeOffset(_) => 43,
            SqlType::UniqueIdentifier => 36,
            SqlType::Xml => 241,
            SqlType::RowVersion => 189,
            SqlType::Image => 34,
            // Every CLR type shares system_type_id 240; user_type_id tells them apart.
            SqlType::HierarchyId | SqlType::Geometry | SqlType::Geography => 240,
            SqlType::Variant => 98,
        }
    }

    /// `max_length` as `sys.columns` reports it (-1 for max types).
    pub(crate) fn max_length(&self) -> i16 {
        match self {
            SqlType::TinyInt | SqlType::Bit => 1,
            SqlType::SmallInt => 2,
            SqlType::Int | SqlType::SmallMoney | SqlType::Real | SqlType::SmallDateTime => 4,
            SqlType::BigInt | SqlType::Money | SqlType::Float | SqlType::DateTime => 8,
            SqlType::RowVersion => 8,
            SqlType::Decimal(p, _) => decimal_len(*p) as i16 - 1,
            SqlType::Char(n) | SqlType::Binary(n) => *n as i16,
            SqlType::NChar(n) => (*n as i16).saturating_mul(2),
            SqlType::VarChar(Len::N(n)) | SqlType::VarBinary(Len::N(n)) => *n as i16,
            SqlType::NVarChar(Len::N(n)) => (*n as i16).saturating_mul(2),
            SqlType::VarChar(Len::Max) | SqlType::NVarChar(Len::Max) => -1,
            SqlType::VarBinary(Len::Max) | SqlType::Xml => -1,
            SqlType::Text | SqlType::NText | SqlType::Image => 16,
            SqlType::Date => 3,
            SqlType::Time(p) => 3 + time_extra(*p) as i16,
            SqlType::DateTime2(p) => 6 + time_extra(*p) as i16,
            SqlType::DateTimeOffset(p) => 8 + time_extra(*p) as i16,
            SqlType::UniqueIdentifier => 16,
            // sys.columns.max_length of a hierarchyid column (SQL Server: 892 bytes at most).
            SqlType::HierarchyId => 892,
            // sys.columns.max_length of a sql_variant column.
            SqlType::Variant => 8016,
            // The spatial types are large CLR types.
            SqlType::Geometry | SqlType::Geography => -1,
        }
    }

    /// `user_type_id` in `sys.types`: the system type id, except for the CLR types, which
    /// share system type 240 and have their own user type ids (hierarchyid 128,
    /// geometry 129, geography 130).
    pub(crate) fn user_type_id(&self) -> i32 {
        match self {
            SqlType::HierarchyId => 128,
            SqlType::Geometry => 129,
            SqlType::Geography => 130,
            other => i32::from(other.type_id()),
        }
    }

    /// Whether this is a CLR type (`sys.types.is_assembly_type`), sent as a UDT (0xF0).
    pub(crate) fn is_clr(&self) -> bool {
        matches!(
            self,
            SqlType::HierarchyId | SqlType::Geometry | SqlType::Geography
        )
    }

    /// Numeric precision as `sys.columns` reports it.
    pub(crate) fn precision(&self) -> u8 {
        match self {
            SqlType::TinyInt => 3,
            SqlType::SmallInt => 5,
            SqlType::Int => 10,
            SqlType::BigInt => 19,
            SqlType::Bit => 1,
            SqlType::Decimal(p, _) => *p,
            SqlType::Money => 19,
            SqlType::SmallMoney => 10,
            SqlType::Real => 24,
            SqlType::Float => 53,
            SqlType::Time(p) => 9 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTime2(p) => 20 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTimeOffset(p) => 27 + if *p > 0 { p + 1 } else { 0 },
            SqlType::DateTime => 23,
            SqlType::SmallDateTime => 16,
            SqlType::Date => 10,
            _ => 0,
        }
    }

    /// Numeric scale as `sys.columns` reports it.
    pub(crate) fn scale(&self) -> u8 {
        match self {
            SqlType::Decimal(_, s) => *s,
            SqlType::Money | SqlType::SmallMoney => 4,
            SqlType::Time(p) | SqlType::DateTime2(p) | SqlType::DateTimeOffset(p) => *p,
            SqlType::DateTime => 3,
            _ => 0,
        }
    }

    /// Whether values compare as text.
    pub(crate) fn is_string(&self) -> bool {
        matches!(
            self,
            SqlType::Char(_)
                | SqlType::VarChar(_)
                | SqlType::NChar(_)
                | SqlType::NVarChar(_)
                | SqlType::Text
                | SqlType::NText
                | SqlType::Xml
        )
    }
}

/// Bytes of the fractional-seconds part of time/datetime2/datetimeoffset for a scale.
pub(crate) fn time_extra(scale: u8) -> u8 {
    match scale {
        0..=2 => 0,
        3..=4 => 1,
        _ => 2,
    }
}

/// Wire length of a decimal with the given precision, including the sign byte.
pub(crate) fn decimal_len(precision: u8) -> u8 {
    match precision {
        0..=9 => 5,
        10..=19 => 9,
        20..=28 => 13,
        _ => 17,
    }
}

/// Parses a T-SQL type spelling such as `nvarchar(max)`, `DECIMAL(18, 2)` or `datetime2(3)`.
pub(crate) fn parse_type(text: &str) -> SqlResult<SqlType> {
    let t = text.trim().to_lowercase().replace(' ', "");
    let (name, args) = match t.split_once('(') {
        Some((n, rest)) => (n.to_string(), rest.trim_end_matches(')').to_string()),
        None => (t.clone(), String::new()),
    };
    let name = name
        .trim_matches(|c| c == '[' || c == ']')
        .trim_start_matches("sys.")
        .to_string();
    let nums: Vec<&str> = if args.is_empty() {
        vec![]
    } else {
        args.split(',').collect()
    };
    let num = |i: usize, d: u32| -> SqlResult<u32> {
        match nums.get(i) {
            None => Ok(d),
            Some(s) => s.parse().map_err(|_| SqlError::syntax(s)),
        }
    };
    let len = |d: u16, max_n: u32| -> SqlResult<Len> {
        match nums.first() {
            None => Ok(Len::N(d)),
            Some(&"max") => Ok(Len::Max),
            Some(s) => {
                let n: u32 = s.parse().map_err(|_| SqlError::syntax(s))?;
                if n == 0 || n > max_n {
                    return Err(SqlError::new(
                        131,
                        format!(
                            "The size ({n}) given to the type '{name}' exceeds the maximum allowed for any data type ({max_n})."
                        ),
                    ));
                }
                Ok(Len::N(n as u16))
            }
        }
    };
    let fixed = |d: u16, max_n: u32| -> SqlResult<u16> {
        match len(d, max_n)? {
            Len::N(n) => Ok(n),
            Len::Max => Err(SqlError::syntax("max")),
        }
    };
    let scale7 = |i| -> SqlResult<u8> { Ok(num(i, 7)?.min(7) as u8) };
    Ok(match name.as_str() {
        "tinyint" => SqlType::TinyInt,
        "smallint" => SqlType::SmallInt,
        "int" | "integer" => SqlType::Int,
        "bigint" => SqlType::BigInt,
        "bit" => SqlType::Bit,
        "decimal" | "numeric" | "dec" => {
            let p = num(0, 18)?;
            let s = num(1, 0)?;
            // 2750 is SQL Server's number for a precision above 38; its text, which names the
            // column's ordinal and the maximum, and the error for a scale above the precision
            // are unverified here.
            if !(1..=38).contains(&p) || s > p {
                return Err(SqlError::new(
                    2750,
                    format!("Column or parameter has an invalid precision/scale ({p},{s})."),
                ));
            }
            SqlType::Decimal(p as u8, s as u8)
        }
        "money" => SqlType::Money,
        "smallmoney" => SqlType::SmallMoney,
        "real" => SqlType::Real,
        "float" | "double" | "doubleprecision" => {
            if num(0, 53)? <= 24 {
                SqlType::Real
            } else {
                SqlType::Float
            }
        }
        "char" | "character" => SqlType::Char(fixed(1, 8000)?),
        "varchar" | "charactervarying" => SqlType::VarChar(len(1, 8000)?),
        "nchar" => SqlType::NChar(fixed(1, 4000)?),
        "nvarchar" | "sysname" => {
            if name == "sysname" {
                SqlType::NVarChar(Len::N(128))
            } else {
                SqlType::NVarChar(len(1, 4000)?)
            }
        }
        "text" => SqlType::Text,
        "ntext" => SqlType::NText,
        "binary" => SqlType::Binary(fixed(1, 8000)?),
        "varbinary" => SqlType::VarBinary(len(1, 8000)?),
        "image" => SqlType::Image,
        "date" => SqlType::Date,
        "time" => SqlType::Time(scale7(0)?),
        "datetime" => SqlType::DateTime,
        "smalldatetime" => SqlType::SmallDateTime,
        "datetime2" => SqlType::DateTime2(scale7(0)?),
        "datetimeoffset" => SqlType::DateTimeOffset(scale7(0)?),
        "uniqueidentifier" => SqlType::UniqueIdentifier,
        "xml" => SqlType::Xml,
        "rowversion" | "timestamp" => SqlType::RowVersion,
        "hierarchyid" => SqlType::HierarchyId,
        "sql_variant" => SqlType::Variant,
        "geometry" => SqlType::Geometry,
        "geography" => SqlType::Geography,
        other => {
            return Err(SqlError::new(
                2715,
                format!("Column, parameter, or variable #1: Cannot find data type {other}."),
            ));
        }
    })
}

/// The rank of a base type's family when two `sql_variant`s of different families are
/// compared: the family higher in Microsoft's hierarchy is greater — date and time, then
/// approximate numeric, exact numeric, character (Unicode and not), binary,
/// uniqueidentifier (Microsoft, "sql_variant (Transact-SQL)", comparing sql_variant values).
pub(crate) fn variant_family(base: &SqlType) -> u8 {
    match base {
        SqlType::DateTime2(_)
        | SqlType::DateTimeOffset(_)
        | SqlType::DateTime
        | SqlType::SmallDateTime
        | SqlType::Date
        | SqlType::Time(_) => 6,
        SqlType::Float | SqlType::Real => 5,
        SqlType::Decimal(..)
        | SqlType::Money
        | SqlType::SmallMoney
        | SqlType::BigInt
        | SqlType::Int
        | SqlType::SmallInt
        | SqlType::TinyInt
        | SqlType::Bit => 4,
        SqlType::NVarChar(_) | SqlType::NChar(_) | SqlType::VarChar(_) | SqlType::Char(_) => 3,
        SqlType::VarBinary(_) | SqlType::Binary(_) => 2,
        _ => 1,
    }
}
