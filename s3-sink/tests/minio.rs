//! Against MinIO, an S3 server that verifies SigV4 request signatures (moto does not), started
//! by `scripts/minio.sh` (built with `go install` through the Go module proxy): credentials,
//! conditional creates (`PutMode::Create`), multipart uploads and their abort, the sink's
//! exactly-once conformance and the object-store offset store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_trait::async_trait;
use cdc_core::testing::{SinkHarness, offset_store_conformance, sample_events, sink_conformance};
use cdc_core::{
    ChangeEvent, Checkpoint, ObjectOffsetStore, OffsetStore, Position, Row, Sink, Value,
};
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use s3_sink::{Format, Rotation, S3Sink, S3SinkError};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

const USER: &str = "cdc-test";
const SECRET: &str = "cdc-test-secret";

/// A MinIO server of one test on free ports, with `buckets` created; stopped on drop.
struct Minio {
    port: u16,
    dir: PathBuf,
    endpoint: String,
}

impl Minio {
    fn start(buckets: &[&str]) -> Self {
        let port = loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
                break port;
            }
        };
        let dir = std::env::temp_dir().join(format!("cdc-rs-minio-test-{port}"));
        let minio = Minio {
            port,
            dir,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let output = minio
            .script("start")
            .env("MINIO_BUCKETS", buckets.join(" "))
            .env("MINIO_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("bash runs scripts/minio.sh");
        assert!(
            output.status.success(),
            "scripts/minio.sh start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        minio
    }

    fn script(&self, command: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg(support::workspace_root().join("scripts/minio.sh"))
            .arg(command)
            .env("MINIO_PORT", self.port.to_string())
            .env("MINIO_DIR", &self.dir)
            .env("MINIO_ROOT_USER", USER)
            .env("MINIO_ROOT_PASSWORD", SECRET);
        c
    }

    /// Sink options for `s3://` URLs on this server, signing with `secret`.
    fn options(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_region", "us-east-1".into()),
            ("aws_access_key_id", USER.into()),
            ("aws_secret_access_key", secret.into()),
            ("aws_virtual_hosted_style_request", "false".into()),
        ]
    }

    fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(USER)
                .with_secret_access_key(SECRET)
                .build()
                .unwrap(),
        )
    }

    /// Multipart uploads started and neither completed nor aborted in `bucket` (boto3).
    fn open_multipart_uploads(&self, bucket: &str) -> usize {
        let script = r#"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
print(len(s3.list_multipart_uploads(Bucket=sys.argv[4]).get("Uploads", [])))
"#;
        support::run_python(script, &[&self.endpoint, USER, SECRET, bucket])
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Minio {
    fn drop(&mut self) {
        let _ = self.script("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sink(minio: &Minio, url: &str, secret: &str, format: Format, rotation: Rotation) -> S3Sink {
    let mut builder = S3Sink::builder()
        .url(url)
        .format(format)
        .rotation(rotation)
        .part_size(5 * 1024 * 1024);
    for (key, value) in minio.options(secret) {
        builder = builder.option(key, value);
    }
    builder.build().unwrap()
}

/// Events with 500-byte names, so some tens of thousands make a file of several parts.
fn wide_events(n: usize) -> Vec<ChangeEvent> {
    sample_events("wide", n)
        .into_iter()
        .map(|mut e| {
            for row in [&mut e.before, &mut e.after].into_iter().flatten() {
                let mut values = row.values().to_vec();
                values[1] = Value::String(format!("{:0>500}", row.values().len()));
                *row = Row::new(values);
            }
            e
        })
        .collect()
}

fn unbounded() -> Rotation {
    Rotation {
        max_records: None,
        max_bytes: None,
        ..Rotation::default()
    }
}

/// A wrong secret makes MinIO refuse the signature: the flush fails with the typed
/// `S3SinkError::Authentication`, naming the bucket, not a generic store error, and nothing is
/// reported durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_a_typed_authentication_error_naming_the_bucket() {
    let minio = Minio::start(&["guarded"]);
    let mut sink = sink(
        &minio,
        "s3://guarded/cdc",
        "not-the-secret",
        Format::ndjson(),
        Rotation::default(),
    );
    let events = sample_events("auth", 10);
    let error = match sink.write(&events).await {
        Err(e) => e,
        Ok(reported) => {
            assert!(reported.is_empty(), "nothing is durable: {reported:?}");
            sink.flush()
                .await
                .expect_err("a wrong secret cannot upload")
        }
    };
    let cdc_core::Error::Sink { source, .. } = &error else {
        panic!("unexpected {error:?}")
    };
    match source.downcast_ref::<S3SinkError>() {
        Some(e @ S3SinkError::Authentication { bucket, .. }) => {
            assert_eq!(bucket, "guarded");
            assert!(e.to_string().contains("bucket guarded"), "{e}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
    assert!(
        support::objects(&minio.store("guarded"), None)
            .await
            .is_empty(),
        "nothing was stored"
    );
}

/// MinIO honours `If-None-Match: *`: a second conditional create of a key fails, the object
/// keeps its first bytes — what the sink's `PutMode::Create` uploads rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_create_of_an_existing_key_is_refused() {
    let minio = Minio::start(&["create"]);
    let store = minio.store("create");
    let key = Path::from("cdc/file.json");
    let create = || PutOptions::from(PutMode::Create);
    store
        .put_opts(&key, PutPayload::from_static(b"first"), create())
        .await
        .unwrap();
    let second = store
        .put_opts(&key, PutPayload::from_static(b"second"), create())
        .await
        .expect_err("the key exists");
    assert!(
        matches!(
            second,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        ),
        "{second:?}"
    );
    let stored = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(&stored[..], b"first");
}

/// A crash and a replay write the same files: the replay's conditional creates find identical
/// objects (success), and every event is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_replay_stores_every_event_once() {
    let minio = Minio::start(&["replay"]);
    let events = sample_events("minio-replay", 100);
    let rotation = Rotation {
        max_records: Some(30),
        ..Rotation::default()
    };
    let mut acked = Checkpoint::default();
    {
        let mut first = sink(
            &minio,
            "s3://replay/cdc",
            SECRET,
            Format::parquet(),
            rotation.clone(),
        );
        for chunk in events[..75].chunks(10) {
            for p in first.write(chunk).await.unwrap() {
                acked.advance(p);
            }
        }
        // Dropped with events in an open file: a crash.
    }
    assert!(acked.covers(events[59].position()));
    let mut second = sink(
        &minio,
        "s3://replay/cdc",
        SECRET,
        Format::parquet(),
        rotation,
    );
    second.write(&events[40..]).await.unwrap();
    second.flush().await.unwrap();
    let positions = support::stored_positions(&minio.store("replay")).await;
    let unique: std::collections::HashSet<String> =
        positions.iter().map(|p| p.to_string()).collect();
    assert_eq!((positions.len(), unique.len()), (100, 100));
}

/// A large file goes up as a multipart upload that MinIO assembles; when another writer creates
/// the key while the upload is under way, the sink refuses with `Conflict` and aborts its upload,
/// leaving no parts behind and the other object untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_uploads_complete_and_a_conflicting_one_is_aborted() {
    let minio = Minio::start(&["big", "taken"]);
    let events = wide_events(30_000);
    let mut first = sink(&minio, "s3://big/mp", SECRET, Format::ndjson(), unbounded());
    first.write(&events).await.unwrap();
    assert_eq!(
        first.flush().await.unwrap(),
        vec![events[29_999].position().clone()]
    );
    let stats = first.stats();
    assert_eq!((stats.files_written, stats.multipart_files), (1, 1));
    let objects = support::objects(&minio.store("big"), None).await;
    assert_eq!(objects.len(), 1);
    let (key, bytes) = &objects[0];
    assert_eq!(
        bytes.len() as u64,
        stats.bytes_written,
        "MinIO holds every part"
    );
    let positions = support::stored_positions(&minio.store("big")).await;
    assert_eq!(positions.len(), 30_000);
    assert_eq!(minio.open_multipart_uploads("big"), 0);

    // Another writer creates the key while the sink's multipart upload is under way.
    let taken = minio.store("taken");
    let interloper: Arc<dyn ObjectStore> = Arc::new(Interloper {
        inner: Arc::clone(&taken),
    });
    let mut second = S3Sink::builder()
        .store(interloper, "mp")
        .format(Format::ndjson())
        .rotation(unbounded())
        .part_size(5 * 1024 * 1024)
        .build()
        .unwrap();
    let result = match second.write(&events).await {
        Err(e) => Err(e),
        Ok(_) => second.flush().await,
    };
    let error = result.expect_err("the key holds other bytes");
    let cdc_core::Error::Sink { source, .. } = &error else {
        panic!("unexpected {error:?}")
    };
    assert!(
        matches!(
            source.downcast_ref::<S3SinkError>(),
            Some(S3SinkError::Conflict { .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        minio.open_multipart_uploads("taken"),
        0,
        "the upload was aborted"
    );
    let kept = taken
        .get(&Path::from(key.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&kept[..], INTERLOPER_BYTES, "never overwritten");
}

const INTERLOPER_BYTES: &[u8] = b"someone else's";

/// A store that lets another writer put an object at a key just as a multipart upload to that
/// key starts: the race the sink's check before completing a multipart upload guards against.
#[derive(Debug)]
struct Interloper {
    inner: Arc<dyn ObjectStore>,
}

impl std::fmt::Display for Interloper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Interloper {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner
            .put(location, PutPayload::from_static(INTERLOPER_BYTES))
            .await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

struct Harness {
    store: Arc<dyn ObjectStore>,
}

#[async_trait]
impl SinkHarness for Harness {
    type Sink = S3Sink;

    async fn new_sink(&mut self) -> cdc_core::Result<S3Sink> {
        S3Sink::builder()
            .store(Arc::clone(&self.store), "conformance")
            .format(Format::parquet())
            .build()
            .map_err(|e| cdc_core::Error::config("sink", e.to_string()))
    }

    async fn stored_positions(&mut self) -> cdc_core::Result<Vec<Position>> {
        Ok(support::stored_positions(&self.store).await)
    }

    async fn stored_values(&mut self, column: &str) -> cdc_core::Result<Vec<(Position, String)>> {
        Ok(support::stored_values(&self.store, column).await)
    }

    fn exactly_once(&self) -> bool {
        true
    }
}

/// The sink passes cdc-core's exactly-once sink conformance suite on MinIO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_conforms_exactly_once_on_minio() {
    let minio = Minio::start(&["conformance"]);
    sink_conformance(&mut Harness {
        store: minio.store("conformance"),
    })
    .await
    .unwrap();
}

/// cdc-core's object-store offset store on MinIO: the offset store conformance suite, and a
/// second writer on the same prefix is fenced (its conditional create of the next generation
/// is refused by the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_offset_store_conforms_and_fences_a_second_writer_on_minio() {
    let minio = Minio::start(&["offsets"]);
    let store = minio.store("offsets");
    offset_store_conformance(&ObjectOffsetStore::new(Arc::clone(&store), "conformance"))
        .await
        .unwrap();

    let first = ObjectOffsetStore::new(Arc::clone(&store), "pipeline");
    let second = ObjectOffsetStore::new(Arc::clone(&store), "pipeline");
    let mut checkpoint = Checkpoint::default();
    checkpoint.advance(sample_events("fence", 1)[0].position().clone());
    assert_eq!(first.load().await.unwrap(), None);
    assert_eq!(second.load().await.unwrap(), None);
    first.save(&checkpoint).await.unwrap();
    let error = second
        .save(&checkpoint)
        .await
        .expect_err("the second writer lost the race for the generation");
    assert!(error.is_fenced(), "{error:?}");
    assert_eq!(first.load().await.unwrap(), Some(checkpoint));
}
