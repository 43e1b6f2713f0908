//! Reading the file's text: `${ENV}` substitution (comments left alone), TOML errors turned
//! into [`ConfigError`]s naming the key, its table and the closest valid key or value
//! without quoting a (maybe secret) line, and warnings for keys under their old names.

use super::ConfigError;

/// `[source.mssql]` keys still read under an old name, with the name in Debezium's
/// vocabulary that replaced it (serde aliases on [`MssqlSection`](super::MssqlSection)).
const RENAMED_MSSQL_KEYS: &[(&str, &str, &str)] = &[
    ("server_name", "topic_prefix", "topic.prefix"),
    (
        "max_transactions_per_poll",
        "max_iteration_transactions",
        "max.iteration.transactions",
    ),
];

/// One warning per old key name `text` uses (see [`RENAMED_MSSQL_KEYS`]); `text` already
/// parsed as a [`PipelineFile`](super::PipelineFile), so it is valid TOML.
pub(super) fn renamed_key_warnings(text: &str) -> Vec<String> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let Some(mssql) = table
        .get("source")
        .and_then(|s| s.get("mssql"))
        .and_then(|m| m.as_table())
    else {
        return Vec::new();
    };
    RENAMED_MSSQL_KEYS
        .iter()
        .filter(|(old, _, _)| mssql.contains_key(*old))
        .map(|(old, new, debezium)| {
            format!(
                "source.mssql.{old} is deprecated and will be removed: write {new} \
                 (Debezium's {debezium})"
            )
        })
        .collect()
}

/// The byte ranges of the TOML comments in `text` (`#` to the end of the line, outside
/// strings): text there is left as written.
fn comment_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    // The end of a string opened at `from` by `quote`, after its closing delimiter.
    let close = |from: usize, quote: &[u8], escapes: bool, multi_line: bool| {
        let mut j = from;
        while j < bytes.len() {
            if escapes && bytes[j] == b'\\' {
                j += 2;
            } else if bytes[j..].starts_with(quote) {
                return j + quote.len();
            } else if !multi_line && bytes[j] == b'\n' {
                return j;
            } else {
                j += 1;
            }
        }
        bytes.len()
    };
    while i < bytes.len() {
        i = match bytes[i] {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => close(i + 3, b"\"\"\"", true, true),
            b'\'' if bytes[i..].starts_with(b"'''") => close(i + 3, b"'''", false, true),
            b'"' => close(i + 1, b"\"", true, false),
            b'\'' => close(i + 1, b"'", false, false),
            b'#' => {
                let end = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                ranges.push(i..end);
                end
            }
            _ => i + 1,
        };
    }
    ranges
}

/// Replaces `${NAME}` with the variable's value, escaped for a TOML basic string (the place
/// such references belong: `password = "${MSSQL_PASSWORD}"`). `$${` stands for a literal `${`.
/// Comments are left as written: `# ${NAME} is …` documents, it does not reference.
pub(super) fn substitute(
    text: &str,
    origin: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let comments = comment_ranges(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let offset = text.len() - rest.len() + at;
        if let Some(comment) = comments.iter().find(|c| c.contains(&offset)) {
            // Copy through the end of the comment unchanged.
            let end = comment.end - (text.len() - rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let line = text.len() - rest.len() + at;
        let line = text[..line].matches('\n').count() + 1;
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Invalid {
                origin: origin.into(),
                line,
                table: String::new(),
                message: "`${` without a closing `}`".into(),
            });
        };
        let name = &after[..end];
        let value = env(name).ok_or_else(|| ConfigError::MissingEnv {
            origin: origin.into(),
            line,
            name: name.into(),
        })?;
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a TOML/serde error into a [`ConfigError`] that names the key, its table and the
/// closest valid key or value, without quoting the (substituted, maybe secret) line.
pub(super) fn toml_error(error: &toml::de::Error, text: &str, origin: &str) -> ConfigError {
    let message = without_string_values(error.message().trim());
    let (line, table) = match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            // The table is the header in force on the span's first line (a missing field's
            // span starts at its table's header).
            let line_end = text
                .get(span.start..)
                .and_then(|rest| rest.find('\n'))
                .map_or(text.len(), |at| span.start + at);
            let through_line = text.get(..line_end).unwrap_or(text);
            (before.matches('\n').count() + 1, table_at(through_line))
        }
        None => (0, String::new()),
    };
    let quoted = backquoted(&message);
    if message.starts_with("unknown field")
        && let Some((key, valid)) = quoted.split_first()
    {
        return ConfigError::UnknownKey {
            origin: origin.into(),
            line,
            table,
            key: key.clone(),
            suggestion: closest(key, valid),
        };
    }
    let message = if message.starts_with("unknown variant") {
        match quoted.split_first() {
            Some((value, valid)) => match closest(value, valid) {
                Some(s) => format!("{message}; did you mean `{s}`?"),
                None => message,
            },
            None => message,
        }
    } else {
        message
    };
    ConfigError::Invalid {
        origin: origin.into(),
        line,
        table,
        message,
    }
}

/// serde quotes the offending string (`invalid type: string "…", expected u16`): after
/// `${ENV}` substitution it may be a secret, so it is dropped.
fn without_string_values(message: &str) -> String {
    for kind in ["invalid type: string \"", "invalid value: string \""] {
        if let Some(rest) = message.strip_prefix(kind) {
            let expected = rest
                .rfind("\", expected ")
                .map(|at| &rest[at + 1..])
                .unwrap_or_default();
            return format!("{}{expected}", kind.trim_end_matches(" \""));
        }
    }
    message.to_string()
}

/// The `[table]` or `[[table]]` header in force at the end of `before`.
fn table_at(before: &str) -> String {
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The `` `quoted` `` words of a serde message, in order.
fn backquoted(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest(word: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}
