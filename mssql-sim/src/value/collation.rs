//! Collations: how SQL Server compares and orders text.
//!
//! A collation is named (`SQL_Latin1_General_CP1_CI_AS`, `Latin1_General_100_CI_AS_SC`,
//! `Latin1_General_BIN2`, ...) and decides, together with whether a comparison is Unicode,
//! which of three orders applies:
//!
//! - **binary** (`_BIN`, `_BIN2`): code point order (Unicode) or code page 1252 byte order
//!   (non-Unicode). `_BIN` is modelled as `_BIN2` (SQL Server's `_BIN` compares the first
//!   character by code point and the rest by bytes; the two differ only for characters
//!   outside the Basic Multilingual Plane and surrogates).
//! - **SQL sort order** (a `SQL_` collation and both operands non-Unicode, i.e.
//!   char/varchar/text): a "string sort" over code page 1252. Symbols (every byte that is not
//!   a digit or a Latin letter, including all of 0x80–0x9F, so `Š` and `Œ`) sort first in
//!   byte order, then digits, then letters; an accented letter is its base letter plus an
//!   accent difference. Hyphen and apostrophe are ordinary symbols.
//! - **Windows word sort** (every other case: a Windows collation, or a `SQL_` collation
//!   where either operand is Unicode, i.e. nchar/nvarchar/ntext, `N''`, or an nvarchar
//!   parameter — the varchar side is converted by data type precedence): hyphen-minus
//!   (U+002D), apostrophe (U+0027) and the soft hyphen are ignored except as a last
//!   tie-break; other symbols sort before digits, digits before letters; `ß` sorts as "ss",
//!   `Æ` as "ae", `Œ` as "oe", `Š` as `S` with a caron.
//!
//! In both linguistic orders the whole string's base letters decide first (primary level),
//! then its accents (secondary, `_AS` only), then its case (tertiary, `_CS` only: lower
//! case before upper case), then — word sort only — its ignored hyphens and apostrophes.
//! Trailing blanks (U+0020) never count (ANSI padding), in every order.
//!
//! What is verified and what is a model: the orders of the 36 keys of Estuary's
//! `TestCollation` snapshots (recorded on SQL Server 2022 for varchar/char and
//! nvarchar/nchar columns of `SQL_Latin1_General_CP1_CI_AS`, ground truth rows 61/63), the
//! C27 order (Debezium DBZ-7359: hyphens count in the SQL sort order, not in word sort),
//! and the case-sensitive tertiary order of a Windows `_CS_AS` collation (`g < G < goodbye`).
//! A model: the relative order of symbols other than `? ’ × ÷ • €` (Windows: ASCII
//! punctuation, then the listed groups below, then code point order; SQL: 1252 byte order
//! as recorded for those six), the order of accents (by combining mark code point: grave <
//! acute < circumflex < ... < diaeresis < stroke, which the recorded À < Á < Â and Ö < Ø
//! agree with), `ß`/`Æ`/`Þ` in the SQL sort order (a letter of their own after s, a and z),
//! the position of ignored characters in the final tie-break, upper case first under a
//! `SQL_..._CS_AS` sort order (SQL Server's sort order 51 has "upper case preference"), and
//! letters outside Latin (primary by lower-cased code point).

use std::cmp::Ordering;
use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::error::{SqlError, SqlResult};
use crate::value::SqlType;
use crate::value::text::cp1252_byte;

/// The family (and version) a collation's name starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    /// `SQL_Latin1_General_CP1_*`: a SQL sort order over code page 1252 for non-Unicode
    /// data, the Windows `Latin1_General` rules for Unicode data.
    SqlLatin1Cp1,
    /// `Latin1_General_*` (version 80 weights).
    Latin1General,
    /// `Latin1_General_100_*` (version 100 weights; modelled with the same tables).
    Latin1General100,
}

/// How strictly a collation tells strings apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Strength {
    /// `_BIN`: modelled as `_BIN2` (see the module comment).
    Bin,
    /// `_BIN2`: code point order.
    Bin2,
    /// `_CI`/`_CS` with `_AI`/`_AS`, and the Windows-only `_KS`/`_WS` flags (kana type and
    /// width; they change nothing for Latin text and are kept for the name).
    Linguistic {
        case: bool,
        accent: bool,
        kana: bool,
        width: bool,
    },
}

/// A collation, parsed from its name ([`Collation::parse`]); `Display` gives the name as
/// SQL Server spells it (`sys.columns.collation_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Collation {
    family: Family,
    strength: Strength,
    /// `_SC`: supplementary characters count as one character (no effect on ordering here).
    supplementary: bool,
    /// `_UTF8`: varchar holds UTF-8.
    utf8: bool,
}

/// The database (and server) default collation: `SQL_Latin1_General_CP1_CI_AS`.
pub(crate) const DEFAULT: Collation = Collation {
    family: Family::SqlLatin1Cp1,
    strength: Strength::Linguistic {
        case: false,
        accent: true,
        kana: false,
        width: false,
    },
    supplementary: false,
    utf8: false,
};

impl Default for Collation {
    fn default() -> Self {
        DEFAULT
    }
}

/// Whether a text type is Unicode (nchar, nvarchar, ntext: `Some(true)`) or not (char,
/// varchar, text: `Some(false)`); `None` for other types.
pub(crate) fn unicode_text(ty: &SqlType) -> Option<bool> {
    match ty {
        SqlType::NChar(_) | SqlType::NVarChar(_) | SqlType::NText | SqlType::Xml => Some(true),
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::Text => Some(false),
        _ => None,
    }
}

impl Collation {
    /// Parses a collation name, case-insensitively. The supported names: the
    /// `SQL_Latin1_General_CP1_` collations `CI_AS`, `CS_AS`, `CI_AI`; `Latin1_General_` and
    /// `Latin1_General_100_` with `BIN`, `BIN2` or `CI`/`CS` + `AI`/`AS` [+ `KS`] [+ `WS`]
    /// [+ `SC`, version 100 only] [+ `UTF8` after `SC` or `BIN2`, version 100 only].
    ///
    /// # Errors
    /// Any other name is SQL Server's error 448, "Invalid collation '<name>'.".
    pub(crate) fn parse(name: &str) -> SqlResult<Collation> {
        let invalid = || SqlError::new(448, format!("Invalid collation '{name}'."));
        let upper = name.trim().to_ascii_uppercase();
        let parts: Vec<&str> = upper.split('_').collect();
        let (family, rest) = match parts.as_slice() {
            ["SQL", "LATIN1", "GENERAL", "CP1", rest @ ..] => (Family::SqlLatin1Cp1, rest),
            ["LATIN1", "GENERAL", "100", rest @ ..] => (Family::Latin1General100, rest),
            ["LATIN1", "GENERAL", rest @ ..] => (Family::Latin1General, rest),
            _ => return Err(invalid()),
        };
        let v100 = family == Family::Latin1General100;
        let (strength, flags) = match rest {
            ["BIN", flags @ ..] if family != Family::SqlLatin1Cp1 => (Strength::Bin, flags),
            ["BIN2", flags @ ..] if family != Family::SqlLatin1Cp1 => (Strength::Bin2, flags),
            [c @ ("CI" | "CS"), a @ ("AI" | "AS"), flags @ ..] => (
                Strength::Linguistic {
                    case: *c == "CS",
                    accent: *a == "AS",
                    kana: false,
                    width: false,
                },
                flags,
            ),
            _ => return Err(invalid()),
        };
        let mut c = Collation {
            family,
            strength,
            supplementary: false,
            utf8: false,
        };
        if family == Family::SqlLatin1Cp1 {
            // The SQL_Latin1_General_CP1 collations SQL Server has: CI_AS, CS_AS, CI_AI.
            return match (strength, flags) {
                (Strength::Linguistic { case, accent, .. }, []) if accent || !case => Ok(c),
                _ => Err(invalid()),
            };
        }
        let mut flags = flags.iter().peekable();
        if let Strength::Linguistic {
            ref mut kana,
            ref mut width,
            ..
        } = c.strength
        {
            if flags.next_if(|f| **f == "KS").is_some() {
                *kana = true;
            }
            if flags.next_if(|f| **f == "WS").is_some() {
                *width = true;
            }
            if v100 && flags.next_if(|f| **f == "SC").is_some() {
                c.supplementary = true;
            }
        }
        let utf8_allowed = v100 && (c.supplementary || strength == Strength::Bin2);
        if utf8_allowed && flags.next_if(|f| **f == "UTF8").is_some() {
            c.utf8 = true;
        }
        match flags.next() {
            None => Ok(c),
            Some(_) => Err(invalid()),
        }
    }

    /// A character as LIKE matches it: lower-cased where the collation is
    /// case-insensitive, its base letter where accent-insensitive, itself for binary
    /// collations.
    pub(crate) fn fold_char(&self, c: char) -> char {
        let Strength::Linguistic { case, accent, .. } = self.strength else {
            return c;
        };
        let c = if accent {
            c
        } else {
            letter_parts(c)
                .and_then(|(bases, _, upper)| match bases.as_slice() {
                    [b] if upper => b.to_uppercase().next(),
                    [b] => Some(*b),
                    _ => None,
                })
                .unwrap_or(c)
        };
        if case {
            c
        } else {
            c.to_lowercase().next().unwrap_or(c)
        }
    }

    /// Whether varchar data of this collation is UTF-8 (`_UTF8`).
    pub(crate) fn is_utf8(&self) -> bool {
        self.utf8
    }

    /// The collation as TDS sends it with character data ([MS-TDS] 2.2.5.1.2): LCID (20
    /// bits, 0x0409 for every Latin1_General collation), the flags fIgnoreCase,
    /// fIgnoreAccent, fIgnoreWidth, fIgnoreKana, fBinary, fBinary2, fUTF8, a 4-bit version
    /// (0 for the version-less names, 2 for `_100`: a model from the version numbering
    /// 80/90/100), little-endian, then the SQL sort id (52 CI_AS, 51 CS_AS, 54 CI_AI for the
    /// `SQL_Latin1_General_CP1_` collations; 0 for Windows collations). The default's bytes,
    /// `09 04 D0 00 34`, are what SQL Server sends.
    pub(crate) fn tds_bytes(&self) -> [u8; 5] {
        let mut info: u32 = 0x0409;
        match self.strength {
            Strength::Bin => info |= 1 << 24,
            Strength::Bin2 => info |= 1 << 25,
            Strength::Linguistic {
                case,
                accent,
                kana,
                width,
            } => {
                if !case {
                    info |= 1 << 20;
                }
                if !accent {
                    info |= 1 << 21;
                }
                if !width {
                    info |= 1 << 22;
                }
                if !kana {
                    info |= 1 << 23;
                }
            }
        }
        if self.utf8 {
            info |= 1 << 26;
        }
        if self.family == Family::Latin1General100 {
            info |= 2 << 28;
        }
        let sort_id = match (self.family, self.strength) {
            (Family::SqlLatin1Cp1, Strength::Linguistic { case: true, .. }) => 51,
            (Family::SqlLatin1Cp1, Strength::Linguistic { accent: false, .. }) => 54,
            (Family::SqlLatin1Cp1, _) => 52,
            _ => 0,
        };
        let b = info.to_le_bytes();
        [b[0], b[1], b[2], b[3], sort_id]
    }

    /// Orders two strings. `unicode`: whether the comparison is Unicode (either operand
    /// nchar/nvarchar/ntext after data type precedence); it picks the SQL sort order or the
    /// Windows rules for a `SQL_` collation and the code page for binary collations.
    pub(crate) fn compare(&self, a: &str, b: &str, unicode: bool) -> Ordering {
        self.sort_key(a, unicode).cmp(&self.sort_key(b, unicode))
    }

    /// A hashable key with `key(a) == key(b)` exactly when [`Collation::compare`] says equal
    /// (for primary-key and unique indexes, GROUP BY and DISTINCT).
    pub(crate) fn key(&self, s: &str, unicode: bool) -> String {
        let mut out = String::with_capacity(s.len() * 3);
        for w in self.sort_key(s, unicode) {
            out.push_str(&format!("{w:x}."));
        }
        out
    }

    /// The sort key: the weights of each level, levels separated by 0 (every weight is at
    /// least 1), so that comparing keys lexicographically compares level by level.
    pub(crate) fn sort_key(&self, s: &str, unicode: bool) -> Vec<u32> {
        let s = s.trim_end_matches(' ');
        let (case, accent) = match self.strength {
            Strength::Bin | Strength::Bin2 => {
                return if unicode || self.utf8 {
                    s.chars().map(|c| c as u32 + 1).collect()
                } else {
                    s.chars()
                        .map(|c| u32::from(cp1252_byte(c).unwrap_or(b'?')) + 1)
                        .collect()
                };
            }
            Strength::Linguistic { case, accent, .. } => (case, accent),
        };
        let sql_order = self.family == Family::SqlLatin1Cp1 && !unicode;
        let mut levels = Levels::default();
        for c in s.chars() {
            if sql_order {
                sql_weights(c, &mut levels);
            } else {
                word_weights(c, &mut levels);
            }
        }
        let mut key = levels.primary;
        key.push(0);
        if accent {
            key.extend(levels.secondary);
        }
        key.push(0);
        if case {
            // SQL sort order 51 (SQL_..._CS_AS) prefers upper case; Windows lower case.
            key.extend(levels.tertiary.into_iter().map(|t| match (sql_order, t) {
                (true, UPPER) => LOWER,
                (true, LOWER) => UPPER,
                (_, t) => t,
            }));
        }
        key.push(0);
        key.extend(levels.ignored);
        key
    }
}

impl fmt::Display for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.family {
            Family::SqlLatin1Cp1 => "SQL_Latin1_General_CP1",
            Family::Latin1General => "Latin1_General",
            Family::Latin1General100 => "Latin1_General_100",
        })?;
        match self.strength {
            Strength::Bin => f.write_str("_BIN")?,
            Strength::Bin2 => f.write_str("_BIN2")?,
            Strength::Linguistic {
                case,
                accent,
                kana,
                width,
            } => {
                f.write_str(if case { "_CS" } else { "_CI" })?;
                f.write_str(if accent { "_AS" } else { "_AI" })?;
                if kana {
                    f.write_str("_KS")?;
                }
                if width {
                    f.write_str("_WS")?;
                }
            }
        }
        if self.supplementary {
            f.write_str("_SC")?;
        }
        if self.utf8 {
            f.write_str("_UTF8")?;
        }
        Ok(())
    }
}

/// Tertiary weights.
const LOWER: u32 = 1;
const UPPER: u32 = 2;
/// An expansion's tertiary weight (`ß` against "ss"), so that only case-sensitive
/// collations tell them apart.
const EXPANDED: u32 = 3;
/// The secondary weight of a character without accent.
const PLAIN: u32 = 1;

/// Primary weight bases: symbols < digits < letters < other scripts.
const SYMBOL: u32 = 0x0001_0000;
const SYMBOL_UNLISTED: u32 = 0x0002_0000;
const DIGIT: u32 = 0x0020_0000;
const LETTER: u32 = 0x0030_0000;
const OTHER_SCRIPT: u32 = 0x0040_0000;

#[derive(Default)]
struct Levels {
    primary: Vec<u32>,
    secondary: Vec<u32>,
    tertiary: Vec<u32>,
    ignored: Vec<u32>,
}

impl Levels {
    fn push(&mut self, primary: u32, secondary: u32, tertiary: u32) {
        self.primary.push(primary);
        self.secondary.push(secondary);
        self.tertiary.push(tertiary);
    }
}

/// Windows' symbol order (a model, see the module comment): ASCII punctuation as Windows
/// sorts it, then quotation marks, then other Latin-1 and 1252 symbols, the math operators,
/// general punctuation and currency. Verified relative order: `? ’ × ÷ • €`.
const WINDOWS_SYMBOLS: &str = concat!(
    "\t\n\r ",
    "!\"#$%&()*,./:;?@[\\]^_`{|}~",
    "¡¿‘’‚“”„‹›«»",
    "¦§¨©ª¬®¯°²³´µ¶·¸¹º¼½¾",
    "+<=>±×÷",
    "†‡•…‰",
    "¢£¤¥€ƒ",
);

/// A letter's base letters, accent and case: NFD's base letter and combining marks, plus
/// the letters decomposition does not give.
fn letter_parts(c: char) -> Option<(Vec<char>, Vec<u32>, bool)> {
    let upper = c.is_uppercase();
    let special: Option<(&str, u32)> = match c.to_lowercase().next().unwrap_or(c) {
        'ø' => Some(("o", 0x338)),
        'đ' => Some(("d", 0x335)),
        'ð' => Some(("d", 0x336)),
        'ł' => Some(("l", 0x337)),
        'ħ' => Some(("h", 0x335)),
        'ı' => Some(("i", 0x307)),
        _ => None,
    };
    if let Some((base, mark)) = special {
        return Some((base.chars().collect(), vec![mark], upper));
    }
    if !c.is_alphabetic() {
        return None;
    }
    let mut decomposed = std::iter::once(c).nfd();
    let base = decomposed.next().unwrap_or(c);
    let marks: Vec<u32> = decomposed.map(|m| m as u32).collect();
    let base = base.to_lowercase().next().unwrap_or(base);
    Some((vec![base], marks, upper))
}

/// The Windows (word sort) weights of one character.
fn word_weights(c: char, l: &mut Levels) {
    if matches!(c, '-' | '\'' | '\u{AD}') {
        // Ignored but for the last tie-break: where it stands and which it is.
        l.ignored.push(l.primary.len() as u32 + 1);
        l.ignored.push(c as u32 + 1);
        return;
    }
    let lower = c.to_lowercase().next().unwrap_or(c);
    let expansion = match lower {
        'ß' => Some("ss"),
        'æ' => Some("ae"),
        'œ' => Some("oe"),
        'þ' => Some("th"),
        _ => None,
    };
    if let Some(exp) = expansion {
        let t = if c == 'ß' {
            EXPANDED
        } else if c.is_uppercase() {
            UPPER
        } else {
            LOWER
        };
        for b in exp.chars() {
            l.push(letter_primary(b), PLAIN, t);
        }
        return;
    }
    if let Some(d) = c.to_digit(10) {
        l.push(DIGIT + d, PLAIN, LOWER);
        return;
    }
    if let Some((bases, marks, upper)) = letter_parts(c) {
        let t = if upper { UPPER } else { LOWER };
        for b in bases {
            l.push(letter_primary(b), accent_weight(&marks), t);
        }
        return;
    }
    l.push(symbol_primary(c), PLAIN, LOWER);
}

/// The SQL sort order's weights of one character of code page 1252 (anything else is
/// already '?' in a non-Unicode value).
fn sql_weights(c: char, l: &mut Levels) {
    let byte = cp1252_byte(c).unwrap_or(b'?');
    if byte.is_ascii_digit() {
        l.push(DIGIT + u32::from(byte - b'0'), PLAIN, LOWER);
        return;
    }
    let letter = byte.is_ascii_alphabetic() || (byte >= 0xC0 && byte != 0xD7 && byte != 0xF7);
    if letter {
        let lower = c.to_lowercase().next().unwrap_or(c);
        let t = if c.is_uppercase() { UPPER } else { LOWER };
        // Letters of their own (a model): Æ after a, ß after s, Þ after z.
        let own = match lower {
            'æ' => Some(letter_primary('a') + 1),
            'ß' => Some(letter_primary('s') + 1),
            'þ' => Some(letter_primary('z') + 1),
            _ => None,
        };
        if let Some(p) = own {
            l.push(p, PLAIN, t);
            return;
        }
        if let Some((bases, marks, _)) = letter_parts(c) {
            for b in bases {
                l.push(letter_primary(b), accent_weight(&marks), t);
            }
            return;
        }
    }
    // Every other byte, 0x80-0x9F included, is a symbol in byte order.
    l.push(SYMBOL + u32::from(byte), PLAIN, LOWER);
}

fn letter_primary(base: char) -> u32 {
    if base.is_ascii_lowercase() {
        LETTER + (base as u32 - 'a' as u32) * 4
    } else {
        OTHER_SCRIPT + base as u32
    }
}

fn accent_weight(marks: &[u32]) -> u32 {
    // One weight per character: the marks' code points (combining marks are U+0300-U+036F
    // for Latin; other marks keep their order above them).
    marks.iter().fold(PLAIN, |w, m| {
        w.wrapping_mul(0x400).wrapping_add(m.wrapping_sub(0x2FF))
    })
}

fn symbol_primary(c: char) -> u32 {
    match WINDOWS_SYMBOLS.chars().position(|s| s == c) {
        Some(i) => SYMBOL + i as u32,
        None => SYMBOL_UNLISTED + c as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_error_448() {
        for name in [
            "SQL_Latin1_General_CP1_CI_AS",
            "SQL_Latin1_General_CP1_CS_AS",
            "SQL_Latin1_General_CP1_CI_AI",
            "Latin1_General_CI_AS",
            "Latin1_General_CS_AS_KS_WS",
            "Latin1_General_100_CI_AS_SC",
            "Latin1_General_100_CI_AS_SC_UTF8",
            "Latin1_General_BIN",
            "Latin1_General_BIN2",
            "Latin1_General_100_BIN2_UTF8",
        ] {
            let c = Collation::parse(&name.to_lowercase()).map(|c| c.to_string());
            assert_eq!(c.ok().as_deref(), Some(name));
        }
        for bad in [
            "Klingon_CI_AS",
            "SQL_Latin1_General_CP1_BIN2",
            "Latin1_General_CI_AS_UTF8",
            "Latin1_General_CI_AS_SC",
            "Latin1_General_100_CI_AS_UTF8",
            "SQL_Latin1_General_CP1_CS_AI",
        ] {
            let e = Collation::parse(bad).err().map(|e| (e.number, e.message));
            assert_eq!(e, Some((448, format!("Invalid collation '{bad}'."))));
        }
    }

    #[test]
    fn tds_bytes_carry_lcid_flags_version_and_sort_id() {
        let bytes = |n: &str| Collation::parse(n).map(|c| c.tds_bytes()).ok();
        assert_eq!(DEFAULT.tds_bytes(), [0x09, 0x04, 0xD0, 0x00, 0x34]);
        assert_eq!(
            bytes("SQL_Latin1_General_CP1_CS_AS"),
            Some([0x09, 0x04, 0xC0, 0x00, 0x33])
        );
        assert_eq!(
            bytes("SQL_Latin1_General_CP1_CI_AI"),
            Some([0x09, 0x04, 0xF0, 0x00, 0x36])
        );
        assert_eq!(
            bytes("Latin1_General_BIN"),
            Some([0x09, 0x04, 0x00, 0x01, 0])
        );
        assert_eq!(
            bytes("Latin1_General_100_CI_AS_SC_UTF8"),
            Some([0x09, 0x04, 0xD0, 0x24, 0])
        );
    }

    #[test]
    fn word_sort_ignores_hyphens_but_for_the_last_tie_break() {
        let c = DEFAULT;
        assert_eq!(c.compare("Y-11-3-4", "Y1-01-1-1", true), Ordering::Greater);
        assert_eq!(c.compare("Y-11-3-4", "Y1-01-1-1", false), Ordering::Less);
        assert_eq!(c.compare("coop", "co-op", true), Ordering::Less);
        assert_ne!(c.key("coop", true), c.key("co-op", true));
    }

    #[test]
    fn case_and_trailing_blanks_follow_the_collation() {
        let ci = DEFAULT;
        assert_eq!(ci.key("Abc  ", false), ci.key("aBC", false));
        let cs = Collation::parse("Latin1_General_CS_AS").ok();
        let cs = cs.as_ref().map(|c| {
            let mut v = ["G", "goodbye", "g", "Goodbye", "h"];
            v.sort_by(|a, b| c.compare(a, b, true));
            v
        });
        assert_eq!(cs, Some(["g", "G", "goodbye", "Goodbye", "h"]));
        let bin = Collation::parse("Latin1_General_BIN2").ok();
        assert_eq!(bin.map(|b| b.compare("B", "a", true)), Some(Ordering::Less));
    }
}
