//! Value decoding for RPC parameters: a bounds-checked [`Reader`] over the payload and
//! [`read_typed_value`], a TYPE_INFO followed by its value, refused with a protocol error
//! when the bytes run short or name a type the simulator does not take.

use chrono::{Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

use super::wire::{PLP_NULL, PLP_UNKNOWN, epoch_0001, epoch_1900};
use crate::error::SimError;
use crate::value::{Len, SqlType, Value, time_extra};

/// A cursor over client bytes that never panics on short input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SimError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(SimError::Protocol("unexpected end of message".into())),
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SimError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SimError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SimError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SimError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn uint(&mut self, n: usize) -> Result<u64, SimError> {
        let b = self.take(n)?;
        let mut a = [0u8; 8];
        a[..n.min(8)].copy_from_slice(&b[..n.min(8)]);
        Ok(u64::from_le_bytes(a))
    }

    /// UTF-16LE string of `chars` code units.
    pub(crate) fn utf16(&mut self, chars: usize) -> Result<String, SimError> {
        let b = self.take(chars.saturating_mul(2))?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| SimError::Protocol("invalid UTF-16".into()))
    }

    /// B_VARCHAR: u8 length in characters.
    pub(crate) fn b_varchar(&mut self) -> Result<String, SimError> {
        let n = self.u8()? as usize;
        self.utf16(n)
    }

    fn plp(&mut self) -> Result<Option<Vec<u8>>, SimError> {
        let total = self.u64()?;
        if total == PLP_NULL {
            return Ok(None);
        }
        let mut data = Vec::new();
        loop {
            let n = self.u32()? as usize;
            if n == 0 {
                break;
            }
            data.extend_from_slice(self.take(n)?);
        }
        let _ = PLP_UNKNOWN;
        Ok(Some(data))
    }
}

fn bytes_to_string(ty_byte: u8, b: &[u8]) -> Result<String, SimError> {
    match ty_byte {
        0xEF | 0xE7 | 0x63 | 0xF1 => {
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| SimError::Protocol("invalid UTF-16".into()))
        }
        _ => Ok(b.iter().map(|&c| crate::value::cp1252_char(c)).collect()),
    }
}

fn read_date3(r: &mut Reader<'_>) -> Result<NaiveDate, SimError> {
    let days = r.uint(3)? as i64;
    epoch_0001()
        .checked_add_signed(Duration::days(days))
        .ok_or_else(|| SimError::Protocol("date out of range".into()))
}

/// A datetime/smalldatetime value: days since 1900-01-01 plus a time of day; client bytes
/// may be out of range, which must be an error and not a panic.
fn from_1900(days: i64, time: Duration) -> Result<NaiveDateTime, SimError> {
    epoch_1900()
        .and_time(NaiveTime::MIN)
        .checked_add_signed(Duration::days(days))
        .and_then(|d| d.checked_add_signed(time))
        .ok_or_else(|| SimError::Protocol("datetime out of range".into()))
}

fn read_time(r: &mut Reader<'_>, scale: u8, n: usize) -> Result<NaiveTime, SimError> {
    let units = r.uint(n)?;
    let ns = units.saturating_mul(10u64.pow(9 - scale.min(7) as u32));
    let secs = (ns / 1_000_000_000) as u32;
    NaiveTime::from_num_seconds_from_midnight_opt(secs, (ns % 1_000_000_000) as u32)
        .ok_or_else(|| SimError::Protocol("time out of range".into()))
}

/// Reads a TYPE_INFO and one value (RPC parameter layout). Returns the declared type
/// (None for the NULL type) and the value.
pub(crate) fn read_typed_value(r: &mut Reader<'_>) -> Result<(Option<SqlType>, Value), SimError> {
    let t = r.u8()?;
    let fixed = |r: &mut Reader<'_>, n: usize| r.uint(n);
    Ok(match t {
        0x1F => (None, Value::Null),
        0x30 => (Some(SqlType::TinyInt), Value::Int(fixed(r, 1)? as i64)),
        0x34 => (
            Some(SqlType::SmallInt),
            Value::Int(fixed(r, 2)? as u16 as i16 as i64),
        ),
        0x38 => (
            Some(SqlType::Int),
            Value::Int(fixed(r, 4)? as u32 as i32 as i64),
        ),
        0x7F => (Some(SqlType::BigInt), Value::Int(fixed(r, 8)? as i64)),
        0x32 => (Some(SqlType::Bit), Value::Bit(fixed(r, 1)? != 0)),
        0x3B => (
            Some(SqlType::Real),
            Value::Float(f32::from_bits(fixed(r, 4)? as u32) as f64),
        ),
        0x3E => (
            Some(SqlType::Float),
            Value::Float(f64::from_bits(fixed(r, 8)?)),
        ),
        0x26 | 0x68 | 0x6D | 0x6E | 0x6F | 0x24 | 0x6A | 0x6C => {
            let max = r.u8()?;
            let (p, s) = if matches!(t, 0x6A | 0x6C) {
                (r.u8()?, r.u8()?)
            } else {
                (0, 0)
            };
            let ty = match (t, max) {
                (0x26, 1) => SqlType::TinyInt,
                (0x26, 2) => SqlType::SmallInt,
                (0x26, 4) => SqlType::Int,
                (0x26, _) => SqlType::BigInt,
                (0x68, _) => SqlType::Bit,
                (0x6D, 4) => SqlType::Real,
                (0x6D, _) => SqlType::Float,
                (0x6E, 4) => SqlType::SmallMoney,
                (0x6E, _) => SqlType::Money,
                (0x6F, 4) => SqlType::SmallDateTime,
                (0x6F, _) => SqlType::DateTime,
                (0x24, _) => SqlType::UniqueIdentifier,
                _ => SqlType::Decimal(p.clamp(1, 38), s.min(p)),
            };
            let len = r.u8()? as usize;
            if len == 0 {
                return Ok((Some(ty), Value::Null));
            }
            let v = match t {
                0x26 => {
                    let raw = r.uint(len)?;
                    Value::Int(match len {
                        1 => raw as i64,
                        2 => raw as u16 as i16 as i64,
                        4 => raw as u32 as i32 as i64,
                        _ => raw as i64,
                    })
                }
                0x68 => Value::Bit(r.uint(len)? != 0),
                0x6D if len == 4 => Value::Float(f32::from_bits(r.uint(4)? as u32) as f64),
                0x6D => Value::Float(f64::from_bits(r.uint(8)?)),
                0x6E if len == 4 => Value::Money(r.uint(4)? as u32 as i32 as i64),
                0x6E => {
                    let hi = r.uint(4)? as u32 as i32 as i64;
                    let lo = r.uint(4)?;
                    Value::Money((hi << 32) | lo as i64)
                }
                0x6F if len == 4 => {
                    let days = r.uint(2)? as i64;
                    let mins = r.uint(2)? as i64;
                    Value::DateTime(from_1900(days, Duration::minutes(mins))?)
                }
                0x6F => {
                    let days = r.uint(4)? as u32 as i32 as i64;
                    let ticks = r.uint(4)? as i64;
                    let ns = ticks * 10_000_000 / 3;
                    Value::DateTime(from_1900(days, Duration::nanoseconds(ns))?)
                }
                0x24 => {
                    let b = r.take(16)?;
                    let mut a = [0u8; 16];
                    a.copy_from_slice(b);
                    Value::Guid(Uuid::from_bytes_le(a))
                }
                _ => {
                    let sign = r.u8()?;
                    let mag = r.take(len - 1)?;
                    let mut a = [0u8; 16];
                    let n = mag.len().min(16);
                    a[..n].copy_from_slice(&mag[..n]);
                    let m = u128::from_le_bytes(a) as i128;
                    Value::Decimal(if sign == 0 { -m } else { m }, s)
                }
            };
            (Some(ty), v)
        }
        0x28 => {
            let len = r.u8()?;
            if len == 0 {
                (Some(SqlType::Date), Value::Null)
            } else {
                (Some(SqlType::Date), Value::Date(read_date3(r)?))
            }
        }
        0x29..=0x2B => {
            let scale = r.u8()?.min(7);
            let ty = match t {
                0x29 => SqlType::Time(scale),
                0x2A => SqlType::DateTime2(scale),
                _ => SqlType::DateTimeOffset(scale),
            };
            let len = r.u8()? as usize;
            if len == 0 {
                return Ok((Some(ty), Value::Null));
            }
            let tn = 3 + time_extra(scale) as usize;
            let time = read_time(r, scale, tn)?;
            let v = match t {
                0x29 => Value::Time(time),
                0x2A => Value::DateTime(NaiveDateTime::new(read_date3(r)?, time)),
                _ => {
                    let utc = NaiveDateTime::new(read_date3(r)?, time);
                    let mins = r.u16()? as i16 as i32;
                    let off = FixedOffset::east_opt(mins * 60)
                        .ok_or_else(|| SimError::Protocol("bad offset".into()))?;
                    Value::DateTimeOffset(utc.and_utc().with_timezone(&off))
                }
            };
            (Some(ty), v)
        }
        0xA7 | 0xAF | 0xE7 | 0xEF | 0xA5 | 0xAD => {
            let max = r.u16()?;
            if matches!(t, 0xA7 | 0xAF | 0xE7 | 0xEF) {
                r.take(5)?; // collation
            }
            let wide = matches!(t, 0xE7 | 0xEF);
            let n = if wide { max / 2 } else { max };
            let len = if max == 0xffff {
                Len::Max
            } else {
                Len::N(n.max(1))
            };
            let ty = match t {
                0xA7 => SqlType::VarChar(len),
                0xAF => SqlType::Char(n.max(1)),
                0xE7 => SqlType::NVarChar(len),
                0xEF => SqlType::NChar(n.max(1)),
                0xA5 => SqlType::VarBinary(len),
                _ => SqlType::Binary(n.max(1)),
            };
            let data = if max == 0xffff {
                r.plp()?
            } else {
                let l = r.u16()?;
                if l == 0xffff {
                    None
                } else {
                    Some(r.take(l as usize)?.to_vec())
                }
            };
            let v = match data {
                None => Value::Null,
                Some(b) if matches!(t, 0xA5 | 0xAD) => Value::Bytes(b),
                Some(b) => Value::Str(bytes_to_string(t, &b)?),
            };
            (Some(ty), v)
        }
        0x23 | 0x63 | 0x22 => {
            let _max = r.u32()?;
            if t != 0x22 {
                r.take(5)?;
            }
            let ty = match t {
                0x23 => SqlType::Text,
                0x63 => SqlType::NText,
                _ => SqlType::Image,
            };
            let ptr = r.u8()? as usize;
            if ptr == 0 {
                return Ok((Some(ty), Value::Null));
            }
            r.take(ptr + 8)?;
            let n = r.u32()? as usize;
            let b = r.take(n)?;
            let v = if t == 0x22 {
                Value::Bytes(b.to_vec())
            } else {
                Value::Str(bytes_to_string(t, b)?)
            };
            (Some(ty), v)
        }
        0xF1 => {
            let schema = r.u8()?;
            if schema == 1 {
                r.b_varchar()?;
                r.b_varchar()?;
                let n = r.u16()? as usize;
                r.utf16(n)?;
            }
            let v = match r.plp()? {
                None => Value::Null,
                Some(b) => Value::Str(bytes_to_string(0xF1, &b)?),
            };
            (Some(SqlType::Xml), v)
        }
        other => {
            return Err(SimError::Protocol(format!(
                "unsupported parameter type 0x{other:02X}"
            )));
        }
    })
}
