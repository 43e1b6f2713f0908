//! Uploads that never overwrite: conditional single PUTs and checked multipart uploads.

use crate::error::{Result, S3SinkError};
use crate::retry::{RetryCounter, RetryPolicy, with_retry};
use crate::rotation::Reason;
use bytes::Bytes;
use cdc_core::Position;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, MultipartUpload, ObjectStore, ObjectStoreExt, PutMode,
    PutMultipartOptions, PutOptions, PutPayload,
};
use std::hash::Hasher;
use std::sync::Arc;

/// Store access with the sink's retry policy.
#[derive(Debug, Clone)]
pub(crate) struct Uploader {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) retry: RetryPolicy,
    pub(crate) retries: Arc<RetryCounter>,
}

/// A finished file waiting for its upload.
pub(crate) struct Sealed {
    pub(crate) entry: usize,
    pub(crate) path: Path,
    pub(crate) bytes: Vec<u8>,
    pub(crate) multipart: Option<Multipart>,
    pub(crate) last: Position,
    pub(crate) records: u64,
    pub(crate) reason: Reason,
}

/// A file whose upload completed.
pub(crate) struct Uploaded {
    pub(crate) entry: usize,
    pub(crate) path: Path,
    pub(crate) len: u64,
    pub(crate) multipart: bool,
    pub(crate) last: Position,
    pub(crate) records: u64,
    pub(crate) reason: Reason,
}

/// Uploads a sealed file: a conditional single PUT, or the multipart upload's last part and
/// completion.
pub(crate) async fn upload(uploader: &Uploader, sealed: Sealed) -> Result<Uploaded> {
    let len = sealed.bytes.len() as u64 + sealed.multipart.as_ref().map_or(0, Multipart::len);
    let multipart = sealed.multipart.is_some();
    match sealed.multipart {
        None => {
            uploader
                .put_new(&sealed.path, Bytes::from(sealed.bytes))
                .await?
        }
        Some(upload) => uploader.finish_multipart(upload, sealed.bytes).await?,
    }
    Ok(Uploaded {
        entry: sealed.entry,
        path: sealed.path,
        len,
        multipart,
        last: sealed.last,
        records: sealed.records,
        reason: sealed.reason,
    })
}

/// The error of a failed store call: [`S3SinkError::Authentication`] when the server refused
/// the credentials (HTTP 401/403), else [`S3SinkError::Store`].
fn store_error(
    bucket: &str,
    operation: &'static str,
    key: &Path,
    attempts: u32,
    source: object_store::Error,
) -> S3SinkError {
    if is_authentication(&source) {
        return S3SinkError::Authentication {
            bucket: bucket.to_string(),
            operation,
            key: key.to_string(),
            source: Box::new(source),
        };
    }
    S3SinkError::Store {
        operation,
        key: key.to_string(),
        attempts,
        source,
    }
}

/// Whether the server refused the credentials. object_store types this for some calls
/// (`PermissionDenied`, `Unauthenticated`) but wraps others (S3 listings, multipart calls) in
/// `Generic` with a private retry error, so the chain's text is checked too: the HTTP status
/// line and S3's error codes for bad credentials
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>).
fn is_authentication(error: &object_store::Error) -> bool {
    if matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) {
        return true;
    }
    const MARKERS: [&str; 7] = [
        "403 forbidden",
        "401 unauthorized",
        "<code>signaturedoesnotmatch</code>",
        "<code>invalidaccesskeyid</code>",
        "<code>accessdenied</code>",
        "<code>expiredtoken</code>",
        "<code>invalidtoken</code>",
    ];
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string().to_ascii_lowercase();
        if MARKERS.iter().any(|m| text.contains(m)) {
            return true;
        }
        current = e.source();
    }
    false
}

/// The bucket (or container) a store writes to, from its `Display` (`AmazonS3(bucket)`,
/// `GoogleCloudStorage(bucket)`); the whole text for stores that show something else.
fn bucket_of(store: &dyn ObjectStore) -> String {
    let shown = store.to_string();
    match shown.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
        Some((_, bucket)) if !bucket.is_empty() => bucket.to_string(),
        _ => shown,
    }
}

/// A content fingerprint that can be computed over a stream of chunks.
#[derive(Default)]
pub(crate) struct Fingerprint {
    hasher: std::collections::hash_map::DefaultHasher,
    len: u64,
}

impl Fingerprint {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.hasher.write(bytes);
        self.len += bytes.len() as u64;
    }
    fn value(&self) -> (u64, u64) {
        (self.len, self.hasher.finish())
    }
}

impl Uploader {
    /// The typed error of a failed call on this uploader's store.
    fn error(
        &self,
        operation: &'static str,
        key: &Path,
        attempts: u32,
        source: object_store::Error,
    ) -> S3SinkError {
        store_error(
            &bucket_of(self.store.as_ref()),
            operation,
            key,
            attempts,
            source,
        )
    }

    /// The whole object, retried.
    pub(crate) async fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || async {
            match self.store.get_opts(path, Default::default()).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        result.map_err(|e| self.error("get", path, attempts, e))
    }

    /// The last `n` bytes of an object (all of it if smaller) and the object's size.
    pub(crate) async fn get_suffix(&self, path: &Path, n: u64) -> Result<Option<(Bytes, u64)>> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || async {
            let options = GetOptions {
                range: Some(GetRange::Suffix(n)),
                ..GetOptions::default()
            };
            match self.store.get_opts(path, options).await {
                Ok(found) => {
                    let size = found.meta.size;
                    found.bytes().await.map(|b| Some((b, size)))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        result.map_err(|e| self.error("get", path, attempts, e))
    }

    /// A byte range of an object.
    pub(crate) async fn get_range(
        &self,
        path: &Path,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || {
            self.store.get_range(path, range.clone())
        })
        .await;
        result.map_err(|e| self.error("get", path, attempts, e))
    }

    /// Objects directly under `dir` (no recursion into sub-directories).
    pub(crate) async fn list(&self, dir: &Path) -> Result<Vec<Path>> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || {
            self.store.list_with_delimiter(Some(dir))
        })
        .await;
        let listing = result.map_err(|e| self.error("list", dir, attempts, e))?;
        Ok(listing.objects.into_iter().map(|m| m.location).collect())
    }

    /// Writes `bytes` at `path` unless an object is there already; an existing object with
    /// the same bytes counts as success (a replay), one with other bytes is a
    /// [`S3SinkError::Conflict`].
    pub(crate) async fn put_new(&self, path: &Path, bytes: Bytes) -> Result<()> {
        let payload = PutPayload::from(bytes.clone());
        let (result, attempts) = with_retry(&self.retry, &self.retries, || {
            self.store
                .put_opts(path, payload.clone(), PutOptions::from(PutMode::Create))
        })
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => match self.get(path).await? {
                Some(existing) if existing == bytes => {
                    tracing::info!(key = %path, "object already stored with identical bytes");
                    Ok(())
                }
                _ => Err(S3SinkError::Conflict {
                    key: path.to_string(),
                }),
            },
            Err(e) => Err(self.error("put", path, attempts, e)),
        }
    }

    /// Starts a multipart upload.
    pub(crate) async fn start_multipart(&self, path: &Path) -> Result<Multipart> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || {
            self.store
                .put_multipart_opts(path, PutMultipartOptions::default())
        })
        .await;
        let upload = result.map_err(|e| self.error("multipart start", path, attempts, e))?;
        Ok(Multipart {
            bucket: bucket_of(self.store.as_ref()),
            path: path.clone(),
            upload,
            parts: 0,
            fingerprint: Fingerprint::default(),
        })
    }

    /// Fingerprint of the object at `path`, streamed.
    async fn fingerprint(&self, path: &Path) -> Result<Option<(u64, u64)>> {
        let (result, attempts) = with_retry(&self.retry, &self.retries, || async {
            match self.store.get_opts(path, Default::default()).await {
                Ok(found) => {
                    let mut stream = found.into_stream();
                    let mut print = Fingerprint::default();
                    while let Some(chunk) = stream.next().await {
                        print.update(&chunk?);
                    }
                    Ok(Some(print.value()))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await;
        result.map_err(|e| self.error("get", path, attempts, e))
    }

    /// Uploads the last part and completes, unless an object appeared at the key meanwhile:
    /// object_store cannot make a multipart completion conditional, so the key is checked
    /// just before; the same bytes count as success, other bytes as a conflict. Any failure
    /// aborts the upload so no parts are left behind.
    pub(crate) async fn finish_multipart(
        &self,
        mut upload: Multipart,
        last: Vec<u8>,
    ) -> Result<()> {
        let result = async {
            if !last.is_empty() {
                upload.put(last).await?;
            }
            if let Some(existing) = self.fingerprint(&upload.path).await? {
                let same = existing == upload.fingerprint.value();
                let _ = upload.upload.abort().await;
                return if same {
                    Ok(())
                } else {
                    Err(S3SinkError::Conflict {
                        key: upload.path.to_string(),
                    })
                };
            }
            upload
                .upload
                .complete()
                .await
                .map(|_| ())
                .map_err(|e| self.error("multipart complete", &upload.path, 1, e))
        }
        .await;
        if let Err(e) = &result
            && !matches!(e, S3SinkError::Conflict { .. })
        {
            upload.abort().await;
        }
        result
    }
}

/// An open multipart upload.
pub(crate) struct Multipart {
    bucket: String,
    path: Path,
    upload: Box<dyn MultipartUpload>,
    parts: usize,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for Multipart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multipart")
            .field("path", &self.path)
            .field("parts", &self.parts)
            .finish()
    }
}

impl Multipart {
    /// Uploads one part. object_store retries the request itself; a part cannot be retried
    /// here because part numbers are assigned when a part is started.
    pub(crate) async fn put(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.fingerprint.update(&bytes);
        self.parts += 1;
        self.upload
            .put_part(PutPayload::from(bytes))
            .await
            .map_err(|e| store_error(&self.bucket, "multipart part", &self.path, 1, e))
    }

    /// Bytes uploaded in parts so far.
    pub(crate) fn len(&self) -> u64 {
        self.fingerprint.len
    }

    /// Abandons the upload; best effort, logged.
    pub(crate) async fn abort(mut self) {
        if let Err(e) = self.upload.abort().await {
            tracing::warn!(key = %self.path, error = %e, "could not abort multipart upload");
        } else {
            tracing::info!(key = %self.path, parts = self.parts, "aborted multipart upload");
        }
    }
}
