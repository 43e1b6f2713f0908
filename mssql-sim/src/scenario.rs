//! Scenario scripts: T-SQL files whose batches are separated by `GO` lines, as sqlcmd and
//! SSMS read them. The same file runs against the simulator or a real SQL Server.

use std::path::Path;

use crate::error::SimError;

/// Splits a script into batches at lines that consist of `GO` (any case).
pub(crate) fn split_batches(script: &str) -> Vec<String> {
    let mut batches = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        if line.trim().eq_ignore_ascii_case("go") {
            if !cur.trim().is_empty() {
                batches.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        batches.push(cur);
    }
    batches
}

/// A scenario loaded from a `.sql` file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's batches, in order.
    pub batches: Vec<String>,
}

impl Scenario {
    /// Parses script text.
    pub fn parse(script: &str) -> Self {
        Scenario {
            batches: split_batches(script),
        }
    }

    /// Reads and parses a `.sql` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SimError> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }
}
