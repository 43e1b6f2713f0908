//! Column types, rich enough to carry every SQL Server type without loss.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The declared type of a column.
///
/// The variants follow SQL Server's own type system so that a value read from a change table
/// can be written out again (to Kafka, Parquet or JSON) without rounding or truncation. Lengths
/// are in characters for the `N…` types and in bytes otherwise; `None` means `(max)`.
///
/// ```
/// use cdc_core::DataType;
/// let price = DataType::Decimal { precision: 38, scale: 10 };
/// assert_eq!(price.to_string(), "decimal(38,10)");
/// assert_eq!(DataType::NVarChar { length: None }.to_string(), "nvarchar(max)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum DataType {
    /// `bit`.
    Bit,
    /// `tinyint`: unsigned, 0 to 255.
    TinyInt,
    /// `smallint`.
    SmallInt,
    /// `int`.
    Int,
    /// `bigint`.
    BigInt,
    /// `decimal(p,s)` / `numeric(p,s)`, up to 38 digits.
    Decimal {
        /// Total number of digits, 1 to 38.
        precision: u8,
        /// Digits after the decimal point, 0 to `precision`.
        scale: u8,
    },
    /// `money`: a decimal(19,4).
    Money,
    /// `smallmoney`: a decimal(10,4).
    SmallMoney,
    /// `real` (32-bit float).
    Real,
    /// `float` (64-bit float).
    Float,
    /// `char(n)`.
    Char {
        /// Length in bytes.
        length: u32,
    },
    /// `varchar(n)` or `varchar(max)`.
    VarChar {
        /// Length in bytes; `None` is `max`.
        length: Option<u32>,
    },
    /// `nchar(n)`.
    NChar {
        /// Length in characters.
        length: u32,
    },
    /// `nvarchar(n)` or `nvarchar(max)`.
    NVarChar {
        /// Length in characters; `None` is `max`.
        length: Option<u32>,
    },
    /// `text` (deprecated large string).
    Text,
    /// `ntext` (deprecated large Unicode string).
    NText,
    /// `binary(n)`.
    Binary {
        /// Length in bytes.
        length: u32,
    },
    /// `varbinary(n)` or `varbinary(max)`.
    VarBinary {
        /// Length in bytes; `None` is `max`.
        length: Option<u32>,
    },
    /// `image` (deprecated large binary).
    Image,
    /// `date`.
    Date,
    /// `time(p)`, p = fractional second digits, 0 to 7.
    Time {
        /// Fractional second digits, 0 to 7.
        precision: u8,
    },
    /// `datetime`: 1/300 s ticks, shown by SQL Server rounded to milliseconds.
    DateTime,
    /// `smalldatetime`: minute precision.
    SmallDateTime,
    /// `datetime2(p)`: naive date and time to 100 ns.
    DateTime2 {
        /// Fractional second digits, 0 to 7.
        precision: u8,
    },
    /// `datetimeoffset(p)`: an instant and the offset it was written with.
    DateTimeOffset {
        /// Fractional second digits, 0 to 7.
        precision: u8,
    },
    /// `uniqueidentifier`.
    UniqueIdentifier,
    /// `xml`.
    Xml,
    /// `rowversion` / `timestamp`: an 8-byte counter.
    RowVersion,
    /// A type with no natural mapping (`geography`, `geometry`, `hierarchyid`, `sql_variant`),
    /// carried as bytes. cdc-mssql's forms: `geometry`/`geography` as EWKB (OGC WKB with the
    /// SRID inside, as PostGIS writes it), `hierarchyid` as its stored encoding
    /// ([MS-SSCLRT]; `/1/` is `0x58`), `sql_variant` as [MS-TDS]'s SSVARIANT bytes (base type,
    /// properties, value) so that values of different base types stay apart.
    Opaque {
        /// The SQL Server type name, lower case.
        type_name: String,
    },
}

impl DataType {
    /// Every kind of type once, with representative parameters; used by tests and conformance
    /// suites to make sure nothing is left out.
    pub fn samples() -> Vec<DataType> {
        use DataType::*;
        let mut all = vec![
            Bit,
            TinyInt,
            SmallInt,
            Int,
            BigInt,
            Decimal {
                precision: 38,
                scale: 0,
            },
            Decimal {
                precision: 38,
                scale: 10,
            },
            Decimal {
                precision: 9,
                scale: 2,
            },
            Money,
            SmallMoney,
            Real,
            Float,
            Char { length: 10 },
            VarChar { length: Some(50) },
            VarChar { length: None },
            NChar { length: 5 },
            NVarChar { length: Some(100) },
            NVarChar { length: None },
            Text,
            NText,
            Binary { length: 16 },
            VarBinary { length: Some(64) },
            VarBinary { length: None },
            Image,
            Date,
            DateTime,
            SmallDateTime,
            UniqueIdentifier,
            Xml,
            RowVersion,
        ];
        for precision in [0, 3, 6, 7] {
            all.push(Time { precision });
            all.push(DateTime2 { precision });
            all.push(DateTimeOffset { precision });
        }
        for name in ["geography", "geometry", "hierarchyid", "sql_variant"] {
            all.push(Opaque {
                type_name: name.to_string(),
            });
        }
        all
    }

    /// The fractional-second digits of a temporal type, if it has them.
    pub fn time_precision(&self) -> Option<u8> {
        match self {
            DataType::Time { precision }
            | DataType::DateTime2 { precision }
            | DataType::DateTimeOffset { precision } => Some(*precision),
            DataType::DateTime => Some(3),
            DataType::SmallDateTime => Some(0),
            _ => None,
        }
    }

    /// Precision and scale of the exact numeric types (decimal, numeric, money).
    pub fn decimal_precision_scale(&self) -> Option<(u8, u8)> {
        match self {
            DataType::Decimal { precision, scale } => Some((*precision, *scale)),
            DataType::Money => Some((19, 4)),
            DataType::SmallMoney => Some((10, 4)),
            _ => None,
        }
    }

    /// The SQL Server type name without parameters, upper case (`NVARCHAR`, `DATETIME2`).
    pub fn sql_name(&self) -> String {
        use DataType::*;
        match self {
            Bit => "BIT".into(),
            TinyInt => "TINYINT".into(),
            SmallInt => "SMALLINT".into(),
            Int => "INT".into(),
            BigInt => "BIGINT".into(),
            Decimal { .. } => "DECIMAL".into(),
            Money => "MONEY".into(),
            SmallMoney => "SMALLMONEY".into(),
            Real => "REAL".into(),
            Float => "FLOAT".into(),
            Char { .. } => "CHAR".into(),
            VarChar { .. } => "VARCHAR".into(),
            NChar { .. } => "NCHAR".into(),
            NVarChar { .. } => "NVARCHAR".into(),
            Text => "TEXT".into(),
            NText => "NTEXT".into(),
            Binary { .. } => "BINARY".into(),
            VarBinary { .. } => "VARBINARY".into(),
            Image => "IMAGE".into(),
            Date => "DATE".into(),
            Time { .. } => "TIME".into(),
            DateTime => "DATETIME".into(),
            SmallDateTime => "SMALLDATETIME".into(),
            DateTime2 { .. } => "DATETIME2".into(),
            DateTimeOffset { .. } => "DATETIMEOFFSET".into(),
            UniqueIdentifier => "UNIQUEIDENTIFIER".into(),
            Xml => "XML".into(),
            RowVersion => "ROWVERSION".into(),
            Opaque { type_name } => type_name.to_ascii_uppercase(),
        }
    }

    /// Builds a type from SQL Server's catalog description: the type name as in `sys.types`,
    /// `max_length` in bytes (`-1` for max), precision and scale. Returns `None` for a name
    /// this crate does not know.
    ///
    /// ```
    /// use cdc_core::DataType;
    /// assert_eq!(DataType::from_sql("nvarchar", -1, 0, 0), Some(DataType::NVarChar { length: None }));
    /// assert_eq!(DataType::from_sql("nchar", 20, 0, 0), Some(DataType::NChar { length: 10 }));
    /// assert_eq!(DataType::from_sql("numeric", 17, 38, 4), Some(DataType::Decimal { precision: 38, scale: 4 }));
    /// ```
    pub fn from_sql(type_name: &str, max_length: i32, precision: u8, scale: u8) -> Option<Self> {
        use DataType::*;
        let bytes = u32::try_from(max_length).ok();
        let chars = bytes.map(|b| b / 2);
        Some(match type_name.to_ascii_lowercase().as_str() {
            "bit" => Bit,
            "tinyint" => TinyInt,
            "smallint" => SmallInt,
            "int" => Int,
            "bigint" => BigInt,
            "decimal" | "numeric" => Decimal { precision, scale },
            "money" => Money,
            "smallmoney" => SmallMoney,
            "real" => Real,
            "float" => Float,
            "char" => Char { length: bytes? },
            "varchar" => VarChar { length: bytes },
            "nchar" => NChar { length: chars? },
            "nvarchar" | "sysname" => NVarChar { length: chars },
            "text" => Text,
            "ntext" => NText,
            "binary" => Binary { length: bytes? },
            "varbinary" => VarBinary { length: bytes },
            "image" => Image,
            "date" => Date,
            "time" => Time { precision: scale },
            "datetime" => DateTime,
            "smalldatetime" => SmallDateTime,
            "datetime2" => DateTime2 { precision: scale },
            "datetimeoffset" => DateTimeOffset { precision: scale },
            "uniqueidentifier" => UniqueIdentifier,
            "xml" => Xml,
            "timestamp" | "rowversion" => RowVersion,
            other @ ("geography" | "geometry" | "hierarchyid" | "sql_variant") => Opaque {
                type_name: other.to_string(),
            },
            _ => return None,
        })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DataType::*;
        let name = self.sql_name().to_ascii_lowercase();
        let len = |l: &Option<u32>| l.map_or_else(|| "max".to_string(), |l| l.to_string());
        match self {
            Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            Char { length } | NChar { length } | Binary { length } => write!(f, "{name}({length})"),
            VarChar { length } | NVarChar { length } | VarBinary { length } => {
                write!(f, "{name}({})", len(length))
            }
            Time { precision } | DateTime2 { precision } | DateTimeOffset { precision } => {
                write!(f, "{name}({precision})")
            }
            _ => f.write_str(&name),
        }
    }
}
