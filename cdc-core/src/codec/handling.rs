//! Debezium's value handling modes: how temporal, exact numeric and binary columns are written.
//!
//! The names and meanings are those of Debezium's SQL Server connector properties
//! `time.precision.mode`, `decimal.handling.mode`, `binary.handling.mode` and
//! `unavailable.value.placeholder`; each mode parses from the property's own value text.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The text was not one of a property's values; [`property`](Self::property) names the property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{property}: {value:?} is not one of {allowed}")]
pub struct ParseModeError {
    /// The Debezium property (`time.precision.mode`, …).
    pub property: &'static str,
    /// The rejected text.
    pub value: String,
    /// The accepted values, comma separated.
    pub allowed: &'static str,
}

macro_rules! debezium_mode {
    (
        $(#[$meta:meta])*
        $name:ident, $property:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// The Debezium property this mode is the value of.
            pub const PROPERTY: &'static str = $property;
            const ALLOWED: &'static str = concat!($($text, ", "),+);

            /// The value as Debezium spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Serialised as Debezium's value text.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// Read from Debezium's value text; anything else is an error listing the values.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        /// Parses Debezium's value text, case-insensitively as Debezium does.
        impl FromStr for $name {
            type Err = ParseModeError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim();
                $(
                    if wanted.eq_ignore_ascii_case($text) {
                        return Ok($name::$variant);
                    }
                )+
                Err(ParseModeError {
                    property: $property,
                    value: s.to_string(),
                    allowed: Self::ALLOWED.trim_end_matches(", "),
                })
            }
        }
    };
}

debezium_mode! {
    /// Debezium's `time.precision.mode`: how `date`, `time`, `datetime`, `smalldatetime` and
    /// `datetime2` columns are written (`datetimeoffset` is an `io.debezium.time.ZonedTimestamp`
    /// string in every mode).
    ///
    /// | SQL Server type | `adaptive` | `adaptive_time_microseconds` | `connect` |
    /// |---|---|---|---|
    /// | `date` | int32 days, `io.debezium.time.Date` | same | int32 days, `org.apache.kafka.connect.data.Date` |
    /// | `time(0-3)` | int32 ms of day, `io.debezium.time.Time` | int64 µs, `io.debezium.time.MicroTime` | int32 ms, `org.apache.kafka.connect.data.Time` |
    /// | `time(4-6)` | int64 µs, `io.debezium.time.MicroTime` | same | int32 ms, `…connect.data.Time` |
    /// | `time(7)` | int64 ns, `io.debezium.time.NanoTime` | int64 µs, `MicroTime` | int32 ms, `…connect.data.Time` |
    /// | `datetime`, `smalldatetime`, `datetime2(0-3)` | int64 ms since epoch, `io.debezium.time.Timestamp` | same | int64 ms, `org.apache.kafka.connect.data.Timestamp` |
    /// | `datetime2(4-6)` | int64 µs, `io.debezium.time.MicroTimestamp` | same | int64 ms, `…connect.data.Timestamp` |
    /// | `datetime2(7)` | ns since epoch, `io.debezium.time.NanoTimestamp` | same | int64 ms, `…connect.data.Timestamp` |
    ///
    /// Digits beyond a mode's unit are dropped (rounded toward the past), as Debezium does.
    /// A `datetime2(7)` value outside 1677-09-21T00:12:43.145224192 – 2262-04-11T23:47:16.854775807
    /// does not fit an int64 count of nanoseconds: it is written as the exact JSON integer
    /// (e.g. 9999-12-31 23:59:59.9999999 is `253402300799999999900`), which this codec decodes
    /// exactly; a reader that holds int64 only (Kafka Connect's `JsonConverter`) cannot read
    /// it, where Debezium itself writes a wrapped-around number. Choose `connect` for such
    /// readers if millisecond precision is enough.
    TimePrecisionMode, "time.precision.mode" {
        /// Each column in the unit its precision needs (the default).
        #[default]
        Adaptive => "adaptive",
        /// As `adaptive`, but every `time` column in microseconds.
        AdaptiveTimeMicroseconds => "adaptive_time_microseconds",
        /// Kafka Connect's own logical types, milliseconds at most.
        Connect => "connect",
    }
}

debezium_mode! {
    /// Debezium's `decimal.handling.mode`: how `decimal`, `numeric`, `money` and `smallmoney`
    /// columns are written.
    ///
    /// - `precise`: bytes, `org.apache.kafka.connect.data.Decimal` with the `scale` and
    ///   `connect.decimal.precision` parameters: the unscaled value in big-endian two's
    ///   complement (12.34 in `decimal(4,2)` is base64 `"BNI="` in JSON);
    /// - `double`: a float64, the nearest double (`12.34`) — digits beyond 15–17 are lost;
    /// - `string`: the plain decimal text with the column's scale (`"12.34"`).
    DecimalHandlingMode, "decimal.handling.mode" {
        /// Exact, as Kafka Connect's `Decimal` (the default).
        #[default]
        Precise => "precise",
        /// A float64.
        Double => "double",
        /// The decimal text.
        String => "string",
    }
}

debezium_mode! {
    /// Debezium's `binary.handling.mode`: how `binary`, `varbinary`, `image`, `rowversion` and
    /// the opaque types (`geography`, …) are written.
    ///
    /// - `bytes`: Connect `bytes`, which Kafka Connect's JSON converter writes as standard
    ///   base64;
    /// - `base64`: a Connect `string` holding standard base64 with padding;
    /// - `base64-url-safe`: a `string` holding the URL-safe alphabet (`-`, `_`) with padding,
    ///   as Java's `Base64.getUrlEncoder()`;
    /// - `hex`: a `string` of lower-case hex digits, two per byte.
    BinaryHandlingMode, "binary.handling.mode" {
        /// Connect bytes (the default).
        #[default]
        Bytes => "bytes",
        /// A base64 string.
        Base64 => "base64",
        /// A URL-safe base64 string.
        Base64UrlSafe => "base64-url-safe",
        /// A hex string.
        Hex => "hex",
    }
}

/// Debezium's default `unavailable.value.placeholder`.
pub const DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// The modes one codec writes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handling {
    pub(crate) time: TimePrecisionMode,
    pub(crate) decimal: DecimalHandlingMode,
    pub(crate) binary: BinaryHandlingMode,
    pub(crate) placeholder: Arc<str>,
    /// Debezium's `provide.transaction.metadata`: write the `transaction` block.
    pub(crate) transaction_metadata: bool,
    /// Debezium's `column.propagate.source.type` for every column: the
    /// `__debezium.source.column.*` field parameters.
    pub(crate) source_types: bool,
    /// Our own additions that Debezium does not write, needed to decode to the very same
    /// event: the row schema's `version` and `__cdc.primary.key`, a text binary column's
    /// `__cdc.binary.handling.mode`, and a snapshot row's resume cursor.
    pub(crate) lossless: bool,
}

impl Default for Handling {
    fn default() -> Self {
        Self {
            time: TimePrecisionMode::default(),
            decimal: DecimalHandlingMode::default(),
            binary: BinaryHandlingMode::default(),
            placeholder: DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER.into(),
            transaction_metadata: false,
            source_types: false,
            lossless: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_debezium_spellings_and_name_the_property_when_wrong() {
        assert_eq!(
            "adaptive_time_microseconds".parse(),
            Ok(TimePrecisionMode::AdaptiveTimeMicroseconds)
        );
        assert_eq!("CONNECT".parse(), Ok(TimePrecisionMode::Connect));
        assert_eq!("string".parse(), Ok(DecimalHandlingMode::String));
        assert_eq!(
            "base64-url-safe".parse(),
            Ok(BinaryHandlingMode::Base64UrlSafe)
        );
        let Err(err) = "nanos".parse::<TimePrecisionMode>() else {
            panic!("`nanos` is not a time.precision.mode");
        };
        assert_eq!(err.property, "time.precision.mode");
        assert_eq!(
            err.to_string(),
            "time.precision.mode: \"nanos\" is not one of adaptive, adaptive_time_microseconds, connect"
        );
    }
}
