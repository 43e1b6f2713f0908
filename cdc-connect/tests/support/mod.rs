//! Helpers shared by the tests that run the `cdc` binary: free ports, child processes that die
//! with the test, `/metrics` scrapes, bounded waits and the crash campaigns' reproducible
//! randomness.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `name` parsed as a number from the environment, else `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: reproducible from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Kills the process when dropped, passing or not.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until `check` returns `Some`, checking every 50 ms.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_for_every(what, timeout, Duration::from_millis(50), check)
}

/// Waits (bounded) until `check` returns `Some`, checking every `every` (the crash campaigns
/// time restarts at 20 ms).
pub fn wait_for_every<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// SIGTERM, then the exit code within 60 s (`what` names the process in the failure).
pub fn terminate(mut child: KillOnDrop, what: &str) -> Option<i32> {
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    wait_for(
        &format!("{what} to exit after SIGTERM"),
        Duration::from_secs(60),
        || child.0.try_wait().unwrap(),
    )
    .code()
}

/// The process's `/metrics`, parsed; `None` while it does not serve. Text that does not parse
/// fails the test.
pub fn scrape(port: u16) -> Option<prometheus_parse::Scrape> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let body = body.split_once("\r\n\r\n")?.1;
    Some(prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap())
}

/// The sum of the samples of `name` whose labels include `labels`; `None` if there is none
/// (or the process does not serve).
pub fn value(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    sample(&scrape(port)?, name, labels)
}

/// The sum of the samples of `name` in `scrape` whose labels include `labels`; `None` if there
/// is none (several values read from one scrape are consistent with each other).
pub fn sample(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
        .reduce(|a, b| a + b)
}

/// `cdc_events_total` summed over its labels.
pub fn events(port: u16) -> Option<f64> {
    value(port, "cdc_events_total", &[])
}

/// Every NDJSON record (`*.json`, one JSON value a line) in the files below `dir`.
pub fn ndjson_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    out.push(serde_json::from_str(line).unwrap());
                }
            }
        }
    }
    out
}

/// Waits (bounded, 120 s) until the `cdc` process `child`, serving metrics on `port`, shows a
/// first event; fails at once if it exits on its own. `name` names it in failures.
pub fn await_first_event(name: &str, port: u16, child: &mut Child) {
    wait_for_every(
        &format!("{name} to deliver an event"),
        Duration::from_secs(120),
        Duration::from_millis(20),
        || {
            if events(port).is_some_and(|v| v > 0.0) {
                return Some(());
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "{name} exited on its own"
            );
            None
        },
    );
}

/// Waits until a workload that counts its committed changes in `committed` reached the
/// `(kill + 1)`-th of `kills + 1` shares of `changes`: the crash campaigns spread their kills
/// over the whole workload this way (bounded by an hour, a hang guard).
pub fn await_share_of_workload(
    committed: &std::sync::atomic::AtomicUsize,
    kill: u64,
    kills: u64,
    changes: usize,
) {
    let due = (kill as usize + 1) * changes / (kills as usize + 1);
    wait_for_every(
        &format!(
            "the workload to reach {due} changes before kill {}",
            kill + 1
        ),
        Duration::from_secs(3600),
        Duration::from_millis(100),
        || (committed.load(std::sync::atomic::Ordering::SeqCst) >= due).then_some(()),
    );
}
