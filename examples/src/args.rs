//! `--flag value` parsing for the examples, without a dependency.

use std::collections::HashMap;

/// Flags given on the command line.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `std::env::args()`; `allowed` lists the flags (without `--`) the program takes.
    /// `--help` prints them and exits.
    pub fn parse(usage: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}\n\n{usage}"));
            };
            let (flag, value) = match flag.split_once('=') {
                Some((f, v)) => (f.to_string(), v.to_string()),
                None => (
                    flag.to_string(),
                    args.next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?,
                ),
            };
            if !allowed.contains(&flag.as_str()) {
                return Err(format!("unknown flag --{flag}\n\n{usage}"));
            }
            values.insert(flag, value);
        }
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
