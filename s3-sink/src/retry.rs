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

/// The default rides out an object store outage of about four minutes: 16 retries whose
/// waits (0.1 s doubling to 30 s) add up to 261 s. A sink that gave up after a few seconds
/// made every Kafka → S3 process exit on a 10 s S3 outage (Kafka Connect's S3 sink retries
/// a failed write as a `RetriableException` instead of killing the task); four minutes also
/// stays below a Kafka consumer's `max.poll.interval.ms` (5 minutes by default).
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 16,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
        }
    }
}

/// object_store's own retries inside one sink-level attempt: few and short, because the
/// sink-level loop around them is the one that waits out an outage (the two would multiply).
const REQUEST_RETRIES: u32 = 3;
/// The bound of one sink-level attempt's request-level retries.
const REQUEST_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// The waits of the sink-level retry loop: [`RetryPolicy::backoff`] for each of
    /// `max_retries` retries, as the [`backon`] schedule its retry loop follows.
    pub(crate) fn schedule(&self) -> impl backon::Backoff + use<> {
        let policy = self.clone();
        (0..self.max_retries).map(move |retry| policy.backoff(retry))
    }

    /// object_store's request-level [`RetryConfig`] for stores this crate builds: the same
    /// backoff, at most 3 retries (fewer when `max_retries` is lower) within 30 s per
    /// sink-level attempt.
    pub fn to_object_store(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: self.multiplier.max(1.0),
            },
            max_retries: self.max_retries.min(REQUEST_RETRIES) as usize,
            retry_timeout: REQUEST_RETRY_TIMEOUT,
        }
    }
}

/// Whether an error is worth retrying: throttling, server errors, timeouts, broken connections.
///
/// Typed answers come first: object_store's error variants (precondition, not-found,
/// already-exists, permission errors are never transient), then the first typed
/// [`object_store::client::HttpError`] in the source chain (its [`HttpErrorKind`] says whether
/// the request failed in transport), then the HTTP status of object_store's request error
/// (object_store 0.14 keeps that type private, so its status is read from the fixed
/// `status code: NNN` form it prints): 429 and 5xx are transient, any other status is not.
/// Only a chain with none of these — a store outside object_store's HTTP client that reports
/// a bare message — is classified by the words S3 uses for throttling and server errors
/// (`SlowDown`, `503`, `timed out`, …).
///
/// [`HttpErrorKind`]: object_store::client::HttpErrorKind
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
    let chain = || {
        std::iter::successors(
            Some(error as &(dyn std::error::Error + 'static)),
            |e: &&(dyn std::error::Error + 'static)| e.source(),
        )
    };
    if let Some(http) = chain().find_map(|e| e.downcast_ref::<object_store::client::HttpError>()) {
        use object_store::client::HttpErrorKind as K;
        return matches!(
            http.kind(),
            K::Connect | K::Request | K::Timeout | K::Interrupted
        );
    }
    if let Some(status) = chain().find_map(|e| http_status(&e.to_string())) {
        return status == 429 || (500..600).contains(&status);
    }
    chain().any(|e| {
        let text = e.to_string().to_ascii_lowercase();
        UNTYPED_MARKERS.iter().any(|m| text.contains(m))
    })
}

/// The words of throttling and server errors in a store error that carries no type or status.
const UNTYPED_MARKERS: [&str; 12] = [
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

/// The HTTP status in object_store's request error text (`Server returned non-2xx status
/// code: 503 Service Unavailable: …`), the one place object_store 0.14 exposes it.
fn http_status(text: &str) -> Option<u16> {
    const FORM: &str = "status code: ";
    let at = text.find(FORM)? + FORM.len();
    let digits = text.get(at..at + 3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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
/// result and the number of attempts made. The waits are [`RetryPolicy::schedule`]'s.
pub(crate) async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    counter: &RetryCounter,
    op: F,
) -> (Result<T, object_store::Error>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, object_store::Error>>,
{
    use backon::Retryable;
    let mut attempt = 1u32;
    let result = op
        .retry(policy.schedule())
        .sleep(tokio::time::sleep)
        .when(is_transient)
        .notify(|error, wait| {
            counter.0.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(attempt, error = %error, ?wait, "transient object store error, backing off");
            attempt += 1;
        })
        .await;
    (result, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_schedule_waits_what_backoff_says_for_max_retries_retries() {
        let policy = RetryPolicy {
            max_retries: 7,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            multiplier: 3.0,
        };
        let waits: Vec<Duration> = policy.schedule().collect();
        let expected: Vec<Duration> = (0..7).map(|retry| policy.backoff(retry)).collect();
        assert_eq!(waits, expected);
    }

    /// A newcomer's 10 s S3 outage made every Kafka → S3 process exit: the default budget
    /// waited about 3 s in all. It now waits out about four minutes, and object_store's
    /// request-level retries inside each attempt stay short so the two do not multiply.
    #[test]
    fn the_default_policy_waits_out_a_four_minute_outage_in_bounded_attempts() {
        let policy = RetryPolicy::default();
        let waited: Duration = policy.schedule().sum();
        assert_eq!(waited, Duration::from_millis(261_100));
        let inner = policy.to_object_store();
        assert_eq!(inner.max_retries, 3);
        assert_eq!(inner.retry_timeout, Duration::from_secs(30));
    }

    #[test]
    fn a_typed_http_failure_decides_over_the_words_in_its_message() {
        use object_store::client::{HttpError, HttpErrorKind};
        let decode = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Decode,
                std::io::Error::other("body of a 503 reply timed out"),
            )),
        };
        assert!(!is_transient(&decode), "a decode failure is not transient");
        let connect = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::other("refused"),
            )),
        };
        assert!(is_transient(&connect));
    }

    #[test]
    fn object_stores_status_decides_over_the_words_in_the_body() {
        let status = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: text.to_string().into(),
        };
        let not_found =
            status("Server returned non-2xx status code: 400 Bad Request: RequestTimeout");
        assert!(!is_transient(&not_found), "400 is not transient");
        let throttled = status("Server returned non-2xx status code: 429 Too Many Requests: ");
        assert!(is_transient(&throttled));
        let unavailable = status("Server returned non-2xx status code: 503 Service Unavailable: ");
        assert!(is_transient(&unavailable));
    }
}
