//! Hive-style escaping of partition values: what makes any value exactly one path segment.

/// Hive's name for a NULL partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Hive-style escaping, applied exactly once: the characters Hive and Spark escape in
/// partition directory names (`"#%'*/:=?\\{[]^`, DEL and control characters) plus the
/// ones object_store would otherwise encode again (`<>|~` and backquote) become `%XX`, so
/// a value is exactly one path segment that object_store keeps byte for byte and that
/// Hive-style readers (Hive, Spark, DuckDB, Athena) decode to the original value.
/// Other characters, non-ASCII letters included, stay as they are, as Hive leaves them.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let escaped = c.is_ascii_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '{'
                    | '}'
                    | '['
                    | ']'
                    | '^'
                    | '<'
                    | '>'
                    | '|'
                    | '~'
                    | '`'
            );
        if escaped {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out = out.replace('.', "%2E");
        if out.is_empty() {
            // Hive's name for an empty partition value is the default partition.
            out.push_str(NULL_PARTITION);
        }
    }
    out
}

/// One path segment exactly as [`escape`] produced it: object_store's `PathPart::from`
/// would percent-encode the `%` of every escape a second time.
pub(crate) fn escaped_segment(segment: &str) -> object_store::path::PathPart<'_> {
    object_store::path::PathPart::parse(segment).unwrap_or_else(|_| segment.into())
}
