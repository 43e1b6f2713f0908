//! Transient failures are retried with backoff; persistent ones become typed errors; a failed
//! multipart upload is aborted; an existing object with other bytes is never overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_trait::async_trait;
use cdc_core::Sink;
use cdc_core::testing::sample_events;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use s3_sink::{ParquetOptions, RetryPolicy, S3Sink, S3SinkError};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// An in-memory store whose first `fail` calls answer 503 SlowDown, and whose multipart
/// parts fail when `fail_parts` is set.
#[derive(Debug, Default)]
struct Flaky {
    inner: InMemory,
    fail: AtomicUsize,
    calls: AtomicUsize,
    fail_parts: bool,
    aborts: Arc<AtomicUsize>,
}

impl fmt::Display for Flaky {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flaky({})", self.inner)
    }
}

impl Flaky {
    fn check(&self) -> object_store::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.fail.load(Ordering::SeqCst);
        if left > 0 {
            self.fail.store(left - 1, Ordering::SeqCst);
            return Err(object_store::Error::Generic {
                store: "flaky",
                source:
                    "503 Service Unavailable: <Code>SlowDown</Code> Please reduce your request rate"
                        .into(),
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FailingUpload {
    inner: Box<dyn MultipartUpload>,
    aborts: Arc<AtomicUsize>,
}

#[async_trait]
impl MultipartUpload for FailingUpload {
    fn put_part(&mut self, _: PutPayload) -> UploadPart {
        Box::pin(async {
            Err(object_store::Error::Generic {
                store: "flaky",
                source: "connection reset".into(),
            })
        })
    }
    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        self.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check()?;
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check()?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        if self.fail_parts {
            return Ok(Box::new(FailingUpload {
                inner,
                aborts: Arc::clone(&self.aborts),
            }));
        }
        Ok(inner)
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check()?;
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
        self.check()?;
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

fn fast_retry(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2.0,
    }
}

#[tokio::test]
async fn slow_down_responses_are_retried_and_the_result_is_correct() {
    let flaky = Arc::new(Flaky {
        fail: AtomicUsize::new(3),
        ..Flaky::default()
    });
    let store: Arc<dyn ObjectStore> = flaky.clone();
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "retry")
        .retry(fast_retry(5))
        .build()
        .unwrap();
    let events = sample_events("retry", 50);
    sink.write(&events).await.unwrap();
    assert_eq!(
        sink.flush().await.unwrap(),
        vec![events[49].position().clone()]
    );
    let stats = sink.stats();
    assert_eq!(stats.retries, 3, "each 503 was retried once");
    assert_eq!(stats.files_written, 1);
    let positions = support::stored_positions(&store).await;
    assert_eq!(
        positions,
        events
            .iter()
            .map(|e| e.position().clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_spent_retry_budget_is_a_typed_error() {
    let store: Arc<dyn ObjectStore> = Arc::new(Flaky {
        fail: AtomicUsize::new(100),
        ..Flaky::default()
    });
    let mut sink = S3Sink::builder()
        .store(store, "retry")
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let error = sink.write(&sample_events("spent", 5)).await.unwrap_err();
    let cdc_core::Error::Sink { source, .. } = &error else {
        panic!("{error}")
    };
    match source.downcast_ref::<S3SinkError>() {
        Some(S3SinkError::Store {
            operation,
            attempts,
            ..
        }) => {
            assert_eq!((*operation, *attempts), ("list", 3));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(s3_sink::is_transient(&object_store::Error::Generic {
        store: "s3",
        source: "Server returned non-2xx status code: 503 Service Unavailable".into()
    }));
}

#[tokio::test]
async fn a_foreign_unreadable_object_fails_loudly_and_identical_bytes_count_as_stored() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let events = sample_events("conflict", 5);
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "c")
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();
    let (key, original) = support::objects(&store, None).await.remove(0);
    // Another writer's object at the same key, in a directory the new sink has not read:
    // simulate by writing under a new prefix with a foreign object already in place.
    let foreign = Path::from(key.replacen("c/", "d/", 1));
    store
        .put(&foreign, PutPayload::from_static(b"not ours"))
        .await
        .unwrap();
    // The new sink reads `not ours` as the latest file: recovery fails loudly, naming it.
    let mut other = S3Sink::builder()
        .store(Arc::clone(&store), "d")
        .build()
        .unwrap();
    let error = other.write(&events).await.unwrap_err();
    let text = format!("{:?}", error);
    assert!(
        text.contains("Recovery") && text.contains(foreign.as_ref()),
        "{text}"
    );
    // A sink that finds the same bytes (a replay) accepts them.
    let same = Path::from(key.replacen("c/", "e/", 1));
    store
        .put(&same, PutPayload::from(original.clone()))
        .await
        .unwrap();
    let mut replay = S3Sink::builder()
        .store(Arc::clone(&store), "e")
        .build()
        .unwrap();
    replay.write(&events).await.unwrap();
    replay.flush().await.unwrap();
    assert_eq!(replay.stats().events_skipped, 5);
}

#[tokio::test]
async fn a_put_onto_different_bytes_is_a_conflict() {
    // A store whose listing hides objects makes the sink try to create an object that exists.
    #[derive(Debug)]
    struct Blind(InMemory);
    impl fmt::Display for Blind {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Blind")
        }
    }
    #[async_trait]
    impl ObjectStore for Blind {
        async fn put_opts(
            &self,
            l: &Path,
            p: PutPayload,
            o: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.0.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
            self.0.get_opts(l, o).await
        }
        fn delete_stream(
            &self,
            l: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.0.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.0.list(p)
        }
        async fn list_with_delimiter(&self, _: Option<&Path>) -> object_store::Result<ListResult> {
            Ok(ListResult {
                common_prefixes: vec![],
                objects: vec![],
                extensions: Default::default(),
            })
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
            self.0.copy_opts(f, t, o).await
        }
    }
    let store: Arc<dyn ObjectStore> = Arc::new(Blind(InMemory::new()));
    let events = sample_events("blind", 5);
    let mut first = S3Sink::builder()
        .store(Arc::clone(&store), "b")
        .build()
        .unwrap();
    first.write(&events).await.unwrap();
    first.flush().await.unwrap();
    // Same events again: same key, same bytes, accepted.
    let mut same = S3Sink::builder()
        .store(Arc::clone(&store), "b")
        .build()
        .unwrap();
    same.write(&events).await.unwrap();
    same.flush().await.unwrap();
    // Different content at the same start position: refused, naming the key.
    let mut changed = events.clone();
    changed[4].after = changed[3].after.clone();
    let mut other = S3Sink::builder()
        .store(Arc::clone(&store), "b")
        .build()
        .unwrap();
    other.write(&changed).await.unwrap();
    let error = other.flush().await.unwrap_err();
    let cdc_core::Error::Sink { source, .. } = &error else {
        panic!("{error}")
    };
    match source.downcast_ref::<S3SinkError>() {
        Some(S3SinkError::Conflict { key }) => {
            assert!(key.ends_with("+00000000000000000001.parquet"), "{key}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn large_files_go_up_in_bounded_parts_and_a_failed_upload_is_aborted() {
    let options = ParquetOptions {
        row_group_bytes: 64 * 1024,
        batch_rows: 256,
        ..ParquetOptions::default()
    };
    let events = sample_events("big", 20_000);
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut sink = S3Sink::builder()
        .store(Arc::clone(&store), "mp")
        .format(s3_sink::Format::Parquet(options.clone()))
        .part_size(64 * 1024)
        .build()
        .unwrap();
    sink.write(&events).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(sink.stats().multipart_files, 1);
    assert!(
        sink.stats().peak_buffered_bytes < 2 * 1024 * 1024,
        "parts keep the buffer small"
    );
    assert_eq!(support::stored_positions(&store).await.len(), 20_000);

    let flaky = Arc::new(Flaky {
        fail_parts: true,
        ..Flaky::default()
    });
    let aborts = Arc::clone(&flaky.aborts);
    let mut sink = S3Sink::builder()
        .store(flaky.clone(), "mp")
        .format(s3_sink::Format::Parquet(options))
        .part_size(64 * 1024)
        .build()
        .unwrap();
    let error = sink.write(&events).await.unwrap_err();
    assert!(format!("{error:?}").contains("multipart part"), "{error:?}");
    assert_eq!(
        aborts.load(Ordering::SeqCst),
        1,
        "the failed upload was aborted"
    );
    assert!(
        support::objects(&(flaky as Arc<dyn ObjectStore>), None)
            .await
            .is_empty()
    );
}
