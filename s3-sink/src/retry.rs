//! Exponential backoff for transient object store failures.
//!
//! HTTP stores built by this crate also get object_store's own [`RetryConfig`] from the same
//! policy, which retries at the request level. The sink-level loop here covers any
//! `Arc<dyn ObjectStore>` (wrappers, custom stores) and re-classifies errors that escaped the
//! inner loop.

use object_store::{BackoffConfig, RetryConfig};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How the sink retries throttling (503 SlowDown), 5xx responses and timeouts.
///
/// ```
/// use s3_sink::RetryPolicy;
/// use std::time::Duration;
/// let policy = RetryPolicy { max_retries: 3, ..RetryPolicy::default() };
/// assert_eq!(policy.backoff(0), Duration::from_millis(100));
/// assert_eq!(policy.backoff(2), Duration::from_millis(400));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
    /// Growth factor between waits.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (from 0). Deterministic (no jitter) so tests can
    /// reason about it; stores built from a URL add object_store's jittered backoff inside.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self
            .multiplier
            .max(1.0)
            .powi(i32::try_from(retry).unwrap_or(i32::MAX));
        let wait = self.initial_backoff.as_secs_f64() * factor;
        Duration::from_secs_f64(wait.min(self.max_backoff.as_secs_f64()).max(0.0))
    }

    /// The same policy as object_store's request-level [`RetryConfig`].
    pub fn to_object_store(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: self.multiplier.max(1.0),
            },
            max_retries: self.max_retries as usize,
            retry_timeout: Duration::from_secs(180),
        }
    }
}

/// Whether an error is worth retrying: throttling, server errors, timeouts, broken connections.
///
/// object_store does not expose the HTTP status of its errors publicly, so this looks at the
/// typed [`object_store::client::HttpError`] kind when present and otherwise at the error chain's text
/// (`503`, `SlowDown`, `500`, `timed out`, …). Precondition, not-found, already-exists and
/// permission errors are never transient.
pub fn is_transient(error: &object_store::Error) -> bool {
    use object_store::Error as E;
    match error {
        E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::NotModified { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::PermissionDenied { .. }
        | E::Unauthenticated { .. } => return false,
        _ => {}
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                http.kind(),
                K::Connect | K::Request | K::Timeout | K::Interrupted
            ) {
                return true;
            }
        }
        let text = e.to_string().to_ascii_lowercase();
        const MARKERS: [&str; 12] = [
            "503",
            "slowdown",
            "slow down",
            "service unavailable",
            "500 ",
            "internal server error",
            "502",
            "bad gateway",
            "504",
            "gateway timeout",
            "timed out",
            "timeout",
        ];
        if MARKERS.iter().any(|m| text.contains(m)) {
            return true;
        }
        current = e.source();
    }
    false
}

/// Counts retries so tests and metrics can see them.
#[derive(Debug, Default)]
pub(crate) struct RetryCounter(AtomicU64);

impl RetryCounter {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `op` until it succeeds, fails permanently, or the policy is spent. Returns the
/// result and the number of attempts made.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    counter: &RetryCounter,
    mut op: F,
) -> (Result<T, object_store::Error>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, object_store::Error>>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return (Ok(v), attempt),
            Err(e) if attempt <= policy.max_retries && is_transient(&e) => {
                counter.0.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(attempt, error = %e, "transient object store error, backing off");
                tokio::time::sleep(policy.backoff(attempt - 1)).await;
            }
            Err(e) => return (Err(e), attempt),
        }
    }
}
