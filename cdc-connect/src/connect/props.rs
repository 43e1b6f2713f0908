//! One connector's properties, each used, warned about or refused exactly once, and the
//! value forms Kafka Connect properties share (lists, regular expressions, converters).

use super::Warning;
use crate::config::{self, ConfigError};
use std::collections::BTreeMap;

/// One connector's properties being consumed: each property is used, warned about or
/// refused exactly once, and whatever is left at the end is unknown.
pub(super) struct Props<'a> {
    pub(super) connector: &'a str,
    pub(super) left: BTreeMap<String, String>,
    pub(super) warnings: &'a mut Vec<Warning>,
}

impl Props<'_> {
    pub(super) fn take(&mut self, key: &str) -> Option<String> {
        self.left.remove(key)
    }

    pub(super) fn take_any(&mut self, keys: &[&str]) -> Option<String> {
        let mut found = None;
        for key in keys {
            if let Some(v) = self.take(key) {
                found.get_or_insert(v);
            }
        }
        found
    }

    pub(super) fn parse<T: std::str::FromStr>(
        &mut self,
        key: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                ConfigError::field(
                    format!("{}: {key}", self.connector),
                    format!("cannot read {v:?} as a number or boolean"),
                )
            }),
        }
    }

    pub(super) fn warn(&mut self, key: &str, note: &str) {
        self.warnings.push(Warning {
            connector: self.connector.to_string(),
            property: key.to_string(),
            note: note.to_string(),
        });
    }

    /// Warns about (and drops) every property starting with `prefix`.
    pub(super) fn ignore_prefix(&mut self, prefix: &str, note: &str) {
        let keys: Vec<String> = self
            .left
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in keys {
            self.left.remove(&key);
            self.warn(&key, note);
        }
    }

    pub(super) fn ignore(&mut self, key: &str, note: &str) {
        if self.left.remove(key).is_some() {
            self.warn(key, note);
        }
    }

    pub(super) fn refuse(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::field(format!("{}: {key}", self.connector), reason)
    }

    /// Fails on the first property nobody consumed, naming the closest known one.
    pub(super) fn finish(self, known: &[&str]) -> Result<(), ConfigError> {
        if let Some(key) = self.left.keys().next() {
            let candidates: Vec<String> = known.iter().map(|k| k.to_string()).collect();
            let hint = config::closest(key, &candidates)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(ConfigError::field(
                format!("{}: {key}", self.connector),
                format!("unknown property: this service cannot tell what it would change{hint}"),
            ));
        }
        Ok(())
    }
}

pub(super) fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Debezium's include/exclude lists are regular expressions; the reader takes `*`
/// wildcards. Literal names (dots escaped or not) and `.*` translate; anything else is
/// refused rather than guessed.
pub(super) fn regex_to_wildcard(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('.') => out.push('.'),
                _ => return None,
            },
            '.' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push('*');
            }
            // An unescaped dot between names: users mean the separator.
            '.' => out.push('.'),
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | '$' | '#' | '@' | ' ') => {
                out.push(c)
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Kafka Connect's JsonConverter; returns whether schemas are embedded.
pub(super) fn json_converter(p: &mut Props<'_>, which: &str) -> Result<Option<bool>, ConfigError> {
    let class_key = format!("{which}.converter");
    let schemas_key = format!("{which}.converter.schemas.enable");
    let class = p.take(&class_key);
    if let Some(class) = &class
        && class != "org.apache.kafka.connect.json.JsonConverter"
    {
        return Err(p.refuse(
                &class_key,
                format!("{class} is not supported: events are Debezium JSON (org.apache.kafka.connect.json.JsonConverter)"),
            ));
    }
    let schemas = p.parse::<bool>(&schemas_key)?;
    Ok(schemas.or(class.map(|_| true)))
}
