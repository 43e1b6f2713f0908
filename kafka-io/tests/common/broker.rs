//! Real Apache Kafka brokers for the tests, started through `scripts/kafka.sh`.
//!
//! - [`shared`]: the broker named by `KAFKA_BROKERS` (`scripts/test.sh` and `.ci/run` start one
//!   and export it), or else one broker this test process starts on first use and that dies with
//!   the process. Tests on it use their own topic and group names.
//! - [`PrivateBroker`]: a broker of one test, which the test may stop, crash and restart.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh")
}

/// A client port whose neighbour (the controller port) is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The bootstrap address of the shared real broker.
pub fn shared() -> String {
    static SHARED: OnceLock<String> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var("KAFKA_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => brokers,
            _ => {
                let broker = PrivateBroker::start();
                let address = broker.bootstrap();
                // Lives as long as the process; the script's owner watch stops it at exit.
                std::mem::forget(broker);
                address
            }
        })
        .clone()
}

/// A broker owned by one test: stopped and its data removed on drop.
#[derive(Debug)]
pub struct PrivateBroker {
    port: u16,
    dir: PathBuf,
}

impl PrivateBroker {
    /// Formats and starts a new single-node broker on free ports; blocks until it serves.
    pub fn start() -> Self {
        let port = free_port_pair();
        let dir = std::env::temp_dir().join(format!("cdc-rs-kafka-test-{port}"));
        let broker = PrivateBroker { port, dir };
        broker.run("start");
        broker
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Controlled shutdown (SIGTERM); the data stays for [`restart`](Self::restart).
    pub fn stop(&self) {
        self.run("stop");
    }

    /// A crash (SIGKILL); the data stays for [`restart`](Self::restart).
    pub fn kill(&self) {
        self.run("kill");
    }

    /// Starts the same broker again on the same ports with its data; blocks until it serves.
    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, command: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(command)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_DIR", &self.dir)
            .env("KAFKA_OWNER_PID", std::process::id().to_string())
            .env("KAFKA_REMOVE_DIR", "1")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("bash runs scripts/kafka.sh");
        assert!(
            status.success(),
            "scripts/kafka.sh {command} failed ({status}) for the broker in {}",
            self.dir.display()
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("kill")
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_DIR", &self.dir)
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a blocking broker operation off the async runtime's worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("broker task")
}
