//! Topic names: Debezium's `<topic.prefix>.<database>.<schema>.<table>`, made legal for Kafka.
//!
//! Kafka accepts topic names of at most 249 characters from `[a-zA-Z0-9._-]`, other than `.`
//! and `..` (`org.apache.kafka.common.internals.Topic`). SQL Server names may hold anything
//! (`dbo.[Order Details]`), so, as Debezium's topic naming strategies do
//! (`AbstractTopicNamingStrategy.sanitizedTopicName`), every other character becomes `_`, the
//! name is cut to 249 characters, and `.`/`..` become `_`/`__`. Debezium replaces per Java
//! `char`, that is per UTF-16 code unit, so a character outside the Basic Multilingual Plane
//! (an emoji) becomes two `_`; so does this. Dots in a name are legal and kept, so
//! `dbo.[a.b]` and a schema `dbo.a` with a table `b` share a topic — as in Debezium. Each name
//! that had to change is logged once, at warn level.
//!
//! Kafka's sink (kafka-io's `DefaultTopicNamer`) and the S3 sink's directory names both use
//! [`data_change_topic`], so a table's files sit under the topic its records went to.

use crate::TableId;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// What replaces a character Kafka does not accept (Debezium's `REPLACEMENT_CHAR`).
pub const TOPIC_REPLACEMENT_CHAR: char = '_';

fn legal(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `name` made a legal Kafka topic name as Debezium makes it (see the [module](self) docs);
/// borrowed when it already was one. The empty name stays empty (Debezium's rule has nothing
/// for it; no table gives one).
///
/// ```
/// use cdc_core::topic::sanitize_topic_name;
/// assert_eq!(sanitize_topic_name("erp.demo.dbo.Order Details"), "erp.demo.dbo.Order_Details");
/// assert_eq!(sanitize_topic_name("erp.demo.dbo.items"), "erp.demo.dbo.items");
/// assert_eq!(sanitize_topic_name(".."), "__");
/// ```
pub fn sanitize_topic_name(name: &str) -> Cow<'_, str> {
    if name.len() <= MAX_TOPIC_NAME_LENGTH && name.chars().all(legal) && name != "." && name != ".."
    {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len().min(MAX_TOPIC_NAME_LENGTH));
    for c in name.chars() {
        if legal(c) {
            out.push(c);
        } else {
            for _ in 0..c.len_utf16() {
                out.push(TOPIC_REPLACEMENT_CHAR);
            }
        }
    }
    // Only ASCII is left, so a byte index is a character index.
    out.truncate(MAX_TOPIC_NAME_LENGTH);
    if out == "." || out == ".." {
        out = out.replace('.', "_");
    }
    warn_once(name, &out);
    Cow::Owned(out)
}

/// The topic of a table's change events: `<prefix>.<database>.<schema>.<table>`, sanitised
/// with [`sanitize_topic_name`]. The prefix is Debezium's `topic.prefix` (the source's name).
///
/// ```
/// use cdc_core::TableId;
/// use cdc_core::topic::data_change_topic;
/// let table = TableId::new("demo", "dbo", "Order Details");
/// assert_eq!(data_change_topic("erp", &table), "erp.demo.dbo.Order_Details");
/// ```
pub fn data_change_topic(prefix: &str, table: &TableId) -> String {
    let name = format!(
        "{prefix}.{}.{}.{}",
        table.database, table.schema, table.table
    );
    match sanitize_topic_name(&name) {
        Cow::Borrowed(_) => name,
        Cow::Owned(sanitized) => sanitized,
    }
}

/// Logs a replaced name the first time it is seen; names come from table names, so the set
/// stays as small as the captured tables.
fn warn_once(name: &str, sanitized: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Every event of such a table comes here: only the first one allocates.
    if !seen.contains(name) && seen.insert(name.to_string()) {
        tracing::warn!(
            topic = name,
            sanitized,
            "not a valid Kafka topic name; characters other than [a-zA-Z0-9._-] replaced \
             with '_' and cut to 249 characters, as Debezium does"
        );
    }
}
