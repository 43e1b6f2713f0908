//! `--flag value` options of the examples, parsed by clap.

use std::collections::HashMap;

/// Flags given on the command line.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<&'static str, String>,
}

impl Args {
    /// Parses `std::env::args()`; `allowed` lists the flags (without `--`) the program takes,
    /// each with one value. `--help` prints `usage` and the flags, then exits.
    pub fn parse(usage: &'static str, allowed: &[&'static str]) -> Result<Self, String> {
        let mut command = clap::Command::new("example")
            .about(usage)
            .no_binary_name(false);
        for flag in allowed {
            command = command.arg(
                clap::Arg::new(*flag)
                    .long(*flag)
                    .value_name("VALUE")
                    .num_args(1),
            );
        }
        let matches = match command.try_get_matches() {
            Ok(m) => m,
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.exit(),
            Err(e) => return Err(e.render().to_string()),
        };
        let values = allowed
            .iter()
            .filter_map(|flag| {
                matches
                    .get_one::<String>(flag)
                    .map(|value| (*flag, value.clone()))
            })
            .collect();
        Ok(Self { values })
    }

    /// The value of `--flag`, if given.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.values.get(flag).map(String::as_str)
    }

    /// The value of `--flag` parsed, or `default`.
    pub fn number(&self, flag: &str, default: u64) -> Result<u64, String> {
        self.get(flag).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| format!("--{flag} takes a number, got {v:?}"))
        })
    }
}
