//! Network steps are bounded and connection strings mean what Microsoft's drivers say (issue
//! 12, "Reader"): a server that accepts the TCP connection and never answers fails `start`
//! with a timeout naming the step; `Encrypt=Strict` against a TDS 7.4 server fails instead of
//! hanging and against a TDS 8.0 one connects, validating the certificate; `Encrypt` and
//! `TrustServerCertificate` follow Microsoft.Data.SqlClient. These use the simulator's TLS (a
//! certificate signed by its own CA) or a silent loopback listener, so they always run
//! locally.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cdc_core::ChangeSource;
use cdc_mssql::{MssqlConfig, MssqlConfigBuilder, MssqlSource, NetworkStep, SnapshotMode};
use mssql_sim::SimConfig;
use std::error::Error as _;
use std::time::Duration;
use support::{PASSWORD, Target};
use tokio::net::TcpListener;

/// A hang guard only: every test here ends within its configured timeouts (2 s) or fails.
const GUARD: Duration = Duration::from_secs(30);

/// A listener on 127.0.0.1 that accepts connections, keeps them open and never answers.
async fn silent_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

fn ado(port: u16, extra: &str) -> MssqlConfigBuilder {
    on_database(port, "shop", extra)
}

fn on_database(port: u16, database: &str, extra: &str) -> MssqlConfigBuilder {
    MssqlConfig::from_ado_string(&format!(
        "Server=tcp:127.0.0.1,{port};Database={database};User Id=sa;Password={PASSWORD};{extra}"
    ))
    .unwrap()
    .topic_prefix("test")
    .snapshot_mode(SnapshotMode::NoData)
    .heartbeat_interval(None)
}

/// Starts a source on `config`; its error, if any.
async fn start(config: MssqlConfigBuilder) -> Result<MssqlSource, cdc_core::Error> {
    let mut source = MssqlSource::new(config.build().unwrap());
    tokio::time::timeout(GUARD, source.start(None))
        .await
        .expect("start must end within its timeouts, not hang")?;
    Ok(source)
}

/// The reader's typed error inside the pipeline's.
fn mssql_error(error: &cdc_core::Error) -> &cdc_mssql::Error {
    error
        .source()
        .and_then(|s| s.downcast_ref::<cdc_mssql::Error>())
        .unwrap_or_else(|| panic!("not a cdc_mssql error: {error:?}"))
}

fn timed_out_step(error: &cdc_core::Error) -> NetworkStep {
    match mssql_error(error) {
        cdc_mssql::Error::Timeout { step, after, .. } => {
            assert_eq!(
                *after,
                Duration::from_secs(2),
                "the configured Connect Timeout"
            );
            *step
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out_in_the_pre_login_step() {
    let (port, listener) = silent_listener().await;
    let error = start(ado(port, "Connect Timeout=2")).await.unwrap_err();
    assert_eq!(timed_out_step(&error), NetworkStep::PreLogin);
    let text = error.to_string();
    assert!(
        text.contains("pre-login handshake") && text.contains("within 2s"),
        "the message names the step and the timeout: {text}"
    );
    listener.abort();
}

#[tokio::test]
async fn encrypt_strict_against_a_server_that_never_answers_times_out_in_the_tls_handshake() {
    let (port, listener) = silent_listener().await;
    let error = start(ado(port, "Connect Timeout=2;Encrypt=Strict"))
        .await
        .unwrap_err();
    assert_eq!(timed_out_step(&error), NetworkStep::TlsHandshake);
    assert!(
        error.to_string().contains("TDS 8.0"),
        "says what Strict needs: {error}"
    );
    listener.abort();
}

/// The simulator with the orders tables, TLS on (a self-signed certificate).
async fn tls_simulator(name: &str) -> (Target, u16) {
    let target = Target::with_orders(name).await;
    let port = target
        .sim
        .as_ref()
        .expect("TLS tests use the simulator's self-signed certificate")
        .addr()
        .port();
    (target, port)
}

fn on(target: &Target, port: u16, extra: &str) -> MssqlConfigBuilder {
    on_database(
        port,
        &target.database,
        &format!("Connect Timeout=2;{extra}"),
    )
}

#[tokio::test]
async fn encrypt_strict_against_a_tds_7_4_server_fails_in_the_tls_handshake_instead_of_hanging() {
    let target = Target::with_simulator(
        "net_strict",
        SimConfig::new(PASSWORD).manual_capture().tds_7_only(),
    )
    .await;
    target.scenario("orders").await;
    let port = target.sim.as_ref().unwrap().addr().port();
    let error = start(on(&target, port, "Encrypt=Strict"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("TLS handshake") && text.contains("TDS 8.0"),
        "names the step and what Strict needs: {text}"
    );
    assert!(
        !mssql_error(&error).is_transient(),
        "a server without TDS 8.0 does not gain it by retrying"
    );
}

#[tokio::test]
async fn encrypt_optional_connects_without_validating_a_self_signed_certificate() {
    let (target, port) = tls_simulator("net_optional").await;
    for value in ["false", "Optional", "no"] {
        let source = start(on(&target, port, &format!("Encrypt={value}"))).await;
        assert!(source.is_ok(), "Encrypt={value}: {:?}", source.err());
    }
}

#[tokio::test]
async fn encrypt_mandatory_validates_the_certificate_unless_trust_server_certificate() {
    let (target, port) = tls_simulator("net_mandatory").await;
    for value in ["true", "Mandatory", "yes"] {
        let error = start(on(&target, port, &format!("Encrypt={value}")))
            .await
            .err()
            .unwrap_or_else(|| panic!("Encrypt={value} accepted a self-signed certificate"));
        assert!(
            error.to_string().to_lowercase().contains("certificate"),
            "Encrypt={value}: the message says the certificate is the problem: {error}"
        );
        let trusted = start(on(
            &target,
            port,
            &format!("Encrypt={value};TrustServerCertificate=true"),
        ))
        .await;
        assert!(trusted.is_ok(), "Encrypt={value}: {:?}", trusted.err());
    }
}

#[tokio::test]
async fn a_failed_start_shows_its_cause_in_the_top_level_message() {
    let (port, listener) = silent_listener().await;
    let error = start(ado(port, "Connect Timeout=2")).await.unwrap_err();
    let text = error.to_string();
    assert!(
        // Named by the source's topic prefix (topic_prefix "test"), as kafka-io names its own.
        text.starts_with("change source test failed")
            && text.contains(&mssql_error(&error).to_string()),
        "{text}"
    );
    listener.abort();
}

/// A proxy to `upstream` that rewrites the server's PRELOGIN answer to `ENCRYPT_REQ` (a server
/// configured to force encryption); counts the connections it accepted.
async fn forcing_encryption_proxy(
    upstream: std::net::SocketAddr,
) -> (
    u16,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    tokio::io::copy(&mut client_read, &mut server_write)
                        .await
                        .ok();
                });
                // The first server packet is the PRELOGIN answer: set its ENCRYPTION option.
                let mut header = [0u8; 8];
                if server_read.read_exact(&mut header).await.is_err() {
                    return;
                }
                let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
                let mut payload = vec![0u8; length - 8];
                server_read.read_exact(&mut payload).await.unwrap();
                let mut i = 0;
                while payload[i] != 0xFF {
                    if payload[i] == 0x01 {
                        let offset =
                            usize::from(u16::from_be_bytes([payload[i + 1], payload[i + 2]]));
                        payload[offset] = 3;
                    }
                    i += 5;
                }
                client_write.write_all(&header).await.ok();
                client_write.write_all(&payload).await.ok();
                tokio::io::copy(&mut server_read, &mut client_write)
                    .await
                    .ok();
            });
        }
    });
    (port, accepted, task)
}

#[tokio::test]
async fn encrypt_optional_validates_the_certificate_when_the_server_forces_encryption() {
    let (target, port) = tls_simulator("net_forced").await;
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (proxy, accepted, task) = forcing_encryption_proxy(upstream).await;
    let error = start(on(&target, proxy, "Encrypt=Optional"))
        .await
        .expect_err("a self-signed certificate is refused when the server forces encryption");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "the message says the certificate is the problem: {error}"
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one connection that saw the server force encryption, one that validated"
    );
    task.abort();
}

/// A server offering TDS 8.0 (the simulator, as SQL Server 2022 and later): `Encrypt=Strict`
/// connects and streams, validating the server certificate against the CA given as
/// `ca_file`; without it the certificate is refused even with `TrustServerCertificate=true`,
/// which Strict ignores (Microsoft.Data.SqlClient's rule).
#[tokio::test]
async fn encrypt_strict_to_a_tds_8_server_validates_the_certificate_against_the_ca_file() {
    let (target, port) = tls_simulator("net_strict_tds8").await;
    let pem = target.sim.as_ref().unwrap().ca_certificate_pem().unwrap();
    let ca = std::env::temp_dir().join(format!("mssql-sim-ca-{}-{port}.pem", std::process::id()));
    std::fs::write(&ca, pem).unwrap();

    let error = start(on(
        &target,
        port,
        "Encrypt=Strict;TrustServerCertificate=true",
    ))
    .await
    .expect_err("Strict ignores TrustServerCertificate: an unknown CA is refused");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "the message says the certificate is the problem: {error}"
    );

    let mut source = start(on(&target, port, "Encrypt=Strict").ca_file(&ca))
        .await
        .unwrap_or_else(|e| panic!("Encrypt=Strict with the CA: {e}"));
    target
        .run("INSERT INTO dbo.customers (id, name) VALUES (77, N'over TDS 8.0');")
        .await;
    target.scan().await;
    let events = support::read_events(&mut source, 1).await;
    assert_eq!(events[0].table.id.table, "customers");
    std::fs::remove_file(&ca).ok();
}

/// A loopback proxy to `upstream` that can turn mute: while mute it drops the connections it
/// forwards and accepts new ones without ever answering (a server that is overloaded or
/// failing over); `muted_accepts` counts the connections it took while mute.
struct MuteProxy {
    port: u16,
    mute: std::sync::Arc<std::sync::atomic::AtomicBool>,
    muted_accepts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    forwarding: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MuteProxy {
    async fn start(upstream: u16) -> MuteProxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mute = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let muted_accepts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let forwarding = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (mute, muted_accepts, forwarding) =
                (mute.clone(), muted_accepts.clone(), forwarding.clone());
            async move {
                let mut held = Vec::new();
                while let Ok((mut client, _)) = listener.accept().await {
                    if mute.load(Ordering::SeqCst) {
                        muted_accepts.fetch_add(1, Ordering::SeqCst);
                        held.push(client);
                        continue;
                    }
                    let forward = tokio::spawn(async move {
                        if let Ok(mut server) =
                            tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                        {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    forwarding.lock().unwrap().push(forward);
                }
            }
        });
        MuteProxy {
            port,
            mute,
            muted_accepts,
            forwarding,
            task,
        }
    }

    /// Mute: open connections are cut, new ones get no answer.
    fn mute(&self) {
        self.mute.store(true, std::sync::atomic::Ordering::SeqCst);
        for forward in self.forwarding.lock().unwrap().drain(..) {
            forward.abort();
        }
    }
}

/// A server that answered the reader before and then stops answering logins (overloaded, or
/// failing over) is waited for on the reconnect schedule: the reader comes back once it
/// answers again, instead of failing the pipeline at the first silent pre-login — the crash
/// campaign's SQL Server → Kafka process exited that way when a loaded simulator took more
/// than 15 s to answer a login.
#[tokio::test]
async fn a_server_that_answered_before_and_stops_answering_logins_is_waited_for() {
    use std::sync::atomic::Ordering;
    let target = Target::with_orders("net_mute").await;
    let sim_port = target.sim.as_ref().unwrap().addr().port();
    let proxy = MuteProxy::start(sim_port).await;
    let mut source = start(on_database(
        proxy.port,
        &target.database,
        "Connect Timeout=1;Encrypt=false",
    ))
    .await
    .unwrap();
    let insert = |id: i32| format!("INSERT INTO dbo.customers (id, name) VALUES ({id}, N'n{id}');");
    target.run(&insert(900)).await;
    target.scan().await;
    let mut seen = 0;
    for _ in 0..20 {
        seen += source.next_batch().await.unwrap().unwrap().events.len();
        if seen > 0 {
            break;
        }
    }
    assert_eq!(seen, 1, "the reader streams through the proxy");

    proxy.mute();
    target.run(&insert(901)).await;
    target.scan().await;
    // The server answers again once the reader met its silence twice.
    let unmute = tokio::spawn({
        let (mute, muted) = (proxy.mute.clone(), proxy.muted_accepts.clone());
        async move {
            while muted.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            mute.store(false, Ordering::SeqCst);
        }
    });
    let mut events = Vec::new();
    for _ in 0..20 {
        let batch = tokio::time::timeout(GUARD, source.next_batch())
            .await
            .expect("the reader must not hang")
            .expect("a server that answered before is waited for, not given up on")
            .unwrap();
        events.extend(batch.events);
        if !events.is_empty() {
            break;
        }
    }
    assert_eq!(
        events.len(),
        1,
        "the insert made while the server was silent"
    );
    assert!(proxy.muted_accepts.load(Ordering::SeqCst) >= 2);
    unmute.await.unwrap();
    proxy.task.abort();
}
