//! `hierarchyid`: its text form (`/1/2.1/3/`), its stored bytes and the errors SQL Server
//! raises for either.
//!
//! The stored form is the bit string of [MS-SSCLRT] §2.1 ("hierarchyid"): each level
//! `/a.b.c/` is a sequence of integers; each integer is written with the bit pattern of the
//! range it falls in (a fixed prefix, value bits `x` holding `value - min` most significant
//! first, some fixed filler bits) and one final bit `T`, 1 where the level ends and 0 where a
//! `.` follows. A component that a `.` follows is stored as `value + 1`, so that `/1.x/`
//! sorts after `/1/` and before `/2/`. The bit string is padded with zero bits to a whole
//! byte; the root `/` is zero bytes. Comparing the bytes (shorter first on a common prefix)
//! gives SQL Server's depth-first order, which is why the engine keeps the bytes.
//!
//! Recorded server facts these follow (`sqlserver-ground-truth.md` row 76, and the
//! `hierarchyid::Parse` documentation example): `/1/2/3/` → `5B5E`, `/` → empty,
//! `/1/` → `58`, `/2/1/` → `6AC0`, `/1/1/3/` → `5ADE`.

use crate::error::{SqlError, SqlResult};

/// One value range of a component and its bit pattern: `0`/`1` fixed bits, `x` value bits
/// (most significant first), `T` the terminator bit. From [MS-SSCLRT]; prefixes are
/// prefix-free, so a reader picks the pattern by its leading bits.
struct Pattern {
    min: i64,
    max: i64,
    bits: &'static str,
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        min: -281_479_271_682_120,
        max: -4_294_971_465,
        bits: "000100xxxxxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxxx0xxxxxx0xxx0x1xxxT",
    },
    Pattern {
        min: -4_294_971_464,
        max: -4_169,
        bits: "000101xxxxxxxxxxxxxxxxxxx0xxxxxx0xxx0x1xxxT",
    },
    Pattern {
        min: -4_168,
        max: -73,
        bits: "000110xxxxx0xxx0x1xxxT",
    },
    Pattern {
        min: -72,
        max: -9,
        bits: "0010xx0x1xxxT",
    },
    Pattern {
        min: -8,
        max: -1,
        bits: "00111xxxT",
    },
    Pattern {
        min: 0,
        max: 3,
        bits: "01xxT",
    },
    Pattern {
        min: 4,
        max: 7,
        bits: "100xxT",
    },
    Pattern {
        min: 8,
        max: 15,
        bits: "101xxxT",
    },
    Pattern {
        min: 16,
        max: 79,
        bits: "110xx0x1xxxT",
    },
    Pattern {
        min: 80,
        max: 1_103,
        bits: "1110xxx0xxx0x1xxxT",
    },
    Pattern {
        min: 1_104,
        max: 5_199,
        bits: "11110xxxxx0xxx0x1xxxT",
    },
    Pattern {
        min: 5_200,
        max: 4_294_972_495,
        bits: "111110xxxxxxxxxxxxxxxxxxx0xxxxxx0xxx0x1xxxT",
    },
    Pattern {
        min: 4_294_972_496,
        max: 281_479_271_683_151,
        bits: "111111xxxxxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxxx0xxxxxx0xxx0x1xxxT",
    },
];

/// The length of each pattern's fixed prefix, the bits a reader matches before knowing the
/// pattern (the leading run up to the first `x`).
fn prefix(p: &Pattern) -> &'static str {
    let end = p.bits.find('x').unwrap_or(p.bits.len());
    &p.bits[..end]
}

/// SQL Server's error 6522 wrapping the CLR exception of `SqlHierarchyId.Parse` (24001), as a
/// real server prints it (statement-level, state 2).
pub(crate) fn parse_error(input: &str) -> SqlError {
    SqlError::new(
        6522,
        format!(
            "A .NET Framework error occurred during execution of user-defined routine or aggregate \"hierarchyid\": \n\
             Microsoft.SqlServer.Types.HierarchyIdException: 24001: SqlHierarchyId.Parse failed because the input string '{input}' is not a valid string representation of a SqlHierarchyId node.\n\
             Microsoft.SqlServer.Types.HierarchyIdException: \n   at Microsoft.SqlServer.Types.SqlHierarchyId.Parse(SqlString input)\n."
        ),
    )
    .state(2)
    .statement_only()
}

/// Error 6522 wrapping the CLR exception for bytes that are no hierarchyid (24000). The
/// number and exception are SQL Server's; the exact stack-trace lines are not reproduced.
pub(crate) fn binary_error() -> SqlError {
    SqlError::new(
        6522,
        "A .NET Framework error occurred during execution of user-defined routine or aggregate \"hierarchyid\": \n\
         Microsoft.SqlServer.Types.HierarchyIdException: 24000: SqlHierarchyId operation failed because HierarchyId object was constructed from an invalid binary string. \n\
         Microsoft.SqlServer.Types.HierarchyIdException: \n   at Microsoft.SqlServer.Types.OrdPath.ExtractComponent(BitStream bs)\n.",
    )
    .state(2)
    .statement_only()
}

/// Parses the canonical text form (`hierarchyid::Parse`, `CAST(text AS hierarchyid)`) into
/// the stored bytes. Refuses anything else — missing slashes, empty levels, signs other than
/// a leading `-`, spaces (trailing blanks included, as the documentation says), out-of-range
/// components — with [`parse_error`].
pub(crate) fn parse(input: &str) -> SqlResult<Vec<u8>> {
    let err = || parse_error(input);
    let mut bits = Vec::new();
    if input != "/" {
        let inner = input
            .strip_prefix('/')
            .and_then(|s| s.strip_suffix('/'))
            .ok_or_else(err)?;
        for level in inner.split('/') {
            let parts: Vec<&str> = level.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let digits = part.strip_prefix('-').unwrap_or(part);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let value: i64 = part.parse().map_err(|_| err())?;
                let last = i + 1 == parts.len();
                let stored = if last {
                    Some(value)
                } else {
                    value.checked_add(1)
                };
                let stored = stored.ok_or_else(err)?;
                let pattern = PATTERNS
                    .iter()
                    .find(|p| (p.min..=p.max).contains(&stored))
                    .ok_or_else(err)?;
                put_component(&mut bits, pattern, stored, last);
            }
        }
    }
    Ok(pack(&bits))
}

fn put_component(bits: &mut Vec<bool>, p: &Pattern, stored: i64, last: bool) {
    // `stored - min` fits: every range spans less than 2^49.
    let offset = (stored - p.min) as u64;
    let width = p.bits.bytes().filter(|&b| b == b'x').count() as u32;
    let mut next = width;
    for b in p.bits.bytes() {
        match b {
            b'0' => bits.push(false),
            b'1' => bits.push(true),
            b'x' => {
                next -= 1;
                bits.push((offset >> next) & 1 == 1);
            }
            _ => bits.push(last),
        }
    }
}

fn pack(bits: &[bool]) -> Vec<u8> {
    bits.chunks(8)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i)))
        })
        .collect()
}

/// The levels of a stored hierarchyid, each a list of components. Refuses bytes that no
/// `Parse` could have produced (unknown prefix, wrong filler bits, a level left open, a
/// whole byte of padding) with [`binary_error`].
pub(crate) fn decode(bytes: &[u8]) -> SqlResult<Vec<Vec<i64>>> {
    let bit = |i: usize| bytes[i / 8] >> (7 - i % 8) & 1 == 1;
    let total = bytes.len() * 8;
    let mut levels = Vec::new();
    let mut level = Vec::new();
    let mut at = 0;
    loop {
        // The rest is padding once no 1 bit remains; padding is shorter than a byte.
        if (at..total).all(|i| !bit(i)) {
            if total - at >= 8 || !level.is_empty() {
                return Err(binary_error());
            }
            return Ok(levels);
        }
        let pattern = PATTERNS
            .iter()
            .find(|p| {
                let pre = prefix(p).as_bytes();
                at + pre.len() <= total
                    && pre
                        .iter()
                        .enumerate()
                        .all(|(i, &c)| bit(at + i) == (c == b'1'))
            })
            .ok_or_else(binary_error)?;
        if at + pattern.bits.len() > total {
            return Err(binary_error());
        }
        let mut offset: u64 = 0;
        let mut last = false;
        for (i, c) in pattern.bits.bytes().enumerate() {
            let b = bit(at + i);
            match c {
                b'x' => offset = offset << 1 | u64::from(b),
                b'T' => last = b,
                fixed => {
                    if b != (fixed == b'1') {
                        return Err(binary_error());
                    }
                }
            }
        }
        at += pattern.bits.len();
        let stored = pattern.min + offset as i64;
        if last {
            level.push(stored);
            levels.push(std::mem::take(&mut level));
        } else {
            level.push(stored - 1);
        }
    }
}

/// `ToString()`: the canonical text of stored bytes (`/` for the root).
pub(crate) fn to_text(bytes: &[u8]) -> SqlResult<String> {
    let mut out = String::from("/");
    for level in decode(bytes)? {
        let parts: Vec<String> = level.iter().map(i64::to_string).collect();
        out.push_str(&parts.join("."));
        out.push('/');
    }
    Ok(out)
}

/// `GetLevel()`: the number of levels (0 for the root).
pub(crate) fn level(bytes: &[u8]) -> SqlResult<i64> {
    Ok(decode(bytes)?.len() as i64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn parse_gives_the_bytes_sql_server_stores() {
        for (text, bytes) in [
            ("/1/2/3/", "5B5E"),
            ("/", ""),
            ("/1/", "58"),
            ("/2/1/", "6AC0"),
            ("/1/1/3/", "5ADE"),
        ] {
            assert_eq!(hex(&parse(text).unwrap()), bytes, "{text}");
        }
    }

    #[test]
    fn to_text_round_trips_every_range_and_dotted_levels() {
        for text in [
            "/",
            "/0/",
            "/3/4/7/8/15/16/79/80/1103/1104/5199/5200/",
            "/4294972495/4294972496/281479271683151/",
            "/-1/-8/-9/-72/-73/-4168/-4169/-4294971464/-4294971465/-281479271682120/",
            "/1.1/2.-3.5/",
            "/1/2.1/",
        ] {
            let bytes = parse(text).unwrap();
            assert_eq!(to_text(&bytes).unwrap(), text);
        }
        assert_eq!(level(&parse("/1/2.1/").unwrap()).unwrap(), 2);
        assert_eq!(level(&[]).unwrap(), 0);
    }

    #[test]
    fn byte_order_is_depth_first() {
        let order = [
            "/", "/1/", "/1/1/", "/1/1.1/", "/1/2/", "/1.1/", "/2/", "/80/",
        ];
        let bytes: Vec<Vec<u8>> = order.iter().map(|t| parse(t).unwrap()).collect();
        for pair in bytes.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }

    #[test]
    fn parse_refuses_what_sql_server_refuses_with_6522() {
        for bad in [
            "",
            "1/",
            "/1",
            "/1/1",
            "//",
            "/a/",
            "/1//",
            "/1./",
            "/ 1/",
            "/1/ ",
            "/+1/",
            "/281479271683152/",
            "/-281479271682121/",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.number, 6522, "{bad}");
            assert!(e.message.contains("24001"), "{bad}");
            assert!(e.message.contains(&format!("'{bad}'")));
        }
    }

    #[test]
    fn decode_refuses_bytes_no_parse_produces() {
        for bad in [&[0x00][..], &[0x58, 0x00], &[0x50], &[0xFF]] {
            assert_eq!(decode(bad).unwrap_err().number, 6522, "{bad:?}");
        }
    }
}
