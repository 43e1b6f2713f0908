//! Text forms a value passes through: date/time literals and fractional-second rounding,
//! code page 1252 (the default collation's non-Unicode text) and XML as SQL Server stores it.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// Parses the literal forms T-SQL scripts commonly use.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 6] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y%m%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
    ];
    for f in FORMATS {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    for f in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

pub(crate) fn parse_offset(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = zulu(s);
    let s = s.as_ref();
    for f in [
        "%Y-%m-%d %H:%M:%S%.f %:z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d);
        }
    }
    None
}

/// Rounds fractional seconds to `scale` digits, half up, as SQL Server stores `time(p)`,
/// `datetime2(p)` and `datetimeoffset(p)` (time(2) keeps '10:23:45.678' as .68: ground truth
/// row 44); past the last second of the day a `time` wraps to midnight.
pub(crate) fn round_time(t: NaiveTime, scale: u8) -> NaiveTime {
    round_datetime(NaiveDate::MIN.and_time(t), scale).time()
}

/// [`round_time`] for a date and time: the carry moves the date too.
pub(crate) fn round_datetime(d: NaiveDateTime, scale: u8) -> NaiveDateTime {
    let unit = 10i64.pow(9 - u32::from(scale.min(7)));
    let ns = i64::from(d.nanosecond() % 1_000_000_000);
    let rounded = (ns + unit / 2) / unit * unit;
    d.with_nanosecond(0)
        .and_then(|base| base.checked_add_signed(chrono::Duration::nanoseconds(rounded)))
        .unwrap_or(d)
}

/// Accepts `Z` for +00:00 (ISO 8601), as SQL Server does in datetimeoffset literals.
fn zulu(s: &str) -> std::borrow::Cow<'_, str> {
    match s.strip_suffix(['Z', 'z']) {
        Some(rest) => std::borrow::Cow::Owned(format!("{rest}+00:00")),
        None => std::borrow::Cow::Borrowed(s),
    }
}

/// Windows code page 1252 (the code page of SQL_Latin1_General_CP1_CI_AS and
/// Latin1_General_*): bytes 0x80-0x9F, `None` where 1252 has no character; the other bytes
/// are Latin-1.
#[rustfmt::skip]
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'), None, Some('‚'), Some('ƒ'), Some('„'), Some('…'), Some('†'), Some('‡'),
    Some('ˆ'), Some('‰'), Some('Š'), Some('‹'), Some('Œ'), None, Some('Ž'), None,
    None, Some('‘'), Some('’'), Some('“'), Some('”'), Some('•'), Some('–'), Some('—'),
    Some('˜'), Some('™'), Some('š'), Some('›'), Some('œ'), None, Some('ž'), Some('Ÿ'),
];

/// The code page 1252 byte of `c`, if 1252 has it.
pub(crate) fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..0x100).contains(&u) {
        return u8::try_from(u).ok();
    }
    CP1252_HIGH
        .iter()
        .position(|x| *x == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// The character of a code page 1252 byte (undefined bytes map to the C1 control of the same
/// number, as Windows' MultiByteToWideChar does).
pub(crate) fn cp1252_char(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_HIGH[usize::from(b - 0x80)].unwrap_or(char::from(b)),
        _ => char::from(b),
    }
}

/// Base letters of Latin Extended-A (U+0100-U+017F), `?` where Windows' best-fit table for
/// 1252 has no letter (ĳ, ĸ, ŉ, ŋ, ſ ...). Characters of the block that 1252 has (Œ œ Š š Ÿ
/// Ž ž) never get here.
const LATIN_EXT_A_BEST_FIT: &str = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKk?LlLlLlLlLlNnNnNn???OoOoOo??RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZz?";

/// Text as a non-Unicode column of the default collation (code page 1252) stores it: every
/// character 1252 has is kept, Latin letters with marks it lacks become their base letter
/// (best fit: 'č' → 'c', ground truth row 60), anything else becomes '?'.
pub(crate) fn to_code_page_1252(s: &str) -> String {
    s.chars()
        .map(|c| {
            if cp1252_byte(c).is_some() {
                return c;
            }
            let u = c as u32;
            if (0x100..0x180).contains(&u) {
                return LATIN_EXT_A_BEST_FIT
                    .chars()
                    .nth((u - 0x100) as usize)
                    .unwrap_or('?');
            }
            '?'
        })
        .collect()
}

/// XML as SQL Server stores it and returns it: the XML declaration (`<?xml ...?>`) is not
/// kept, whitespace-only text between tags is insignificant and dropped (the default
/// parsing of a string converted to xml), and an element with no content is written
/// self-closing (`<a></a>` → `<a/>`). Other text, attributes and comments stay as written.
pub(crate) fn normalize_xml(s: &str) -> String {
    let mut rest = s.trim_start();
    if rest.starts_with("<?xml")
        && let Some(end) = rest.find("?>")
    {
        rest = &rest[end + 2..];
    }
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    let b = rest.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let Some(close) = rest[i..].find('>').map(|e| i + e) else {
                out.push_str(&rest[i..]);
                break;
            };
            let tag = &rest[i..=close];
            out.push_str(tag);
            i = close + 1;
            // A start tag immediately followed by its end tag becomes self-closing.
            let is_start = !tag.starts_with("</")
                && !tag.starts_with("<?")
                && !tag.starts_with("<!")
                && !tag.ends_with("/>");
            if is_start {
                let name: String = tag[1..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                    .collect();
                let end_tag = format!("</{name}>");
                if rest[i..].starts_with(&end_tag) {
                    out.pop();
                    out.push_str("/>");
                    i += end_tag.len();
                }
            }
        } else {
            let next = rest[i..].find('<').map_or(b.len(), |e| i + e);
            let text = &rest[i..next];
            if !text.trim().is_empty() {
                out.push_str(text);
            }
            i = next;
        }
    }
    out
}
