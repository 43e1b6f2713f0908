#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Authentication settings: OAUTHBEARER token providers are wired into every client, and
//! (feature `msk-iam`) Amazon MSK IAM tokens are signed.

mod common;

use cdc_core::DebeziumJson;
use common::*;
use kafka_io::{BearerToken, KafkaConfig, KafkaSink, Secret, Security, Tls, TokenProvider};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct CountingTokens {
    calls: AtomicUsize,
}

impl TokenProvider for CountingTokens {
    fn token(&self) -> Result<BearerToken, Box<dyn std::error::Error + Send + Sync>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(BearerToken {
            token: Secret::new("tok-secret"),
            principal: "cdc".into(),
            expires_at_ms: 4_102_444_800_000, // 2100-01-01
        })
    }
}

/// `Security::OAuthBearer` sets SASL_SSL + OAUTHBEARER, and librdkafka asks the provider for
/// a token through the sink's client context; the token never shows in Debug output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_provider_is_asked_for_tokens() {
    let mock = mock(1, &[(SAMPLE_TOPIC, 1)]);
    let tokens = Arc::new(CountingTokens::default());
    let security = Security::OAuthBearer {
        tokens: tokens.clone(),
        tls: Tls::default(),
    };
    let config = KafkaConfig::new(mock.bootstrap_servers()).security(security);
    let client = config.client_config();
    assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(client.get("sasl.mechanisms"), Some("OAUTHBEARER"));
    let _sink = KafkaSink::builder(config.clone(), Arc::new(DebeziumJson::schemaless()))
        .build()
        .unwrap();
    let started = Instant::now();
    while tokens.calls.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "librdkafka never asked for a token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = tokens.token().unwrap();
    assert!(!format!("{token:?} {config:?}").contains("tok-secret"));
}

/// Amazon MSK IAM (feature `msk-iam`): with AWS credentials in the environment the token is
/// a base64url-encoded SigV4-presigned `kafka-cluster:Connect` URL; without credentials the
/// provider returns an error (it neither panics nor hangs). Run
/// `AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y cargo test -p kafka-io --features msk-iam`.
#[cfg(feature = "msk-iam")]
#[test]
fn msk_iam_tokens_are_signed_or_fail_cleanly() {
    use base64::Engine;
    let security = Security::msk_iam("eu-west-1");
    let client = KafkaConfig::new("b-1:9098")
        .security(security)
        .client_config();
    assert_eq!(client.get("sasl.mechanisms"), Some("OAUTHBEARER"));
    let provider = kafka_io::MskIamTokens::new("eu-west-1");
    let has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    match provider.token() {
        Ok(token) => {
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token.token.expose())
                .unwrap();
            let url = String::from_utf8(url).unwrap();
            assert!(
                url.starts_with("https://kafka.eu-west-1.amazonaws.com/"),
                "{url}"
            );
            assert!(
                url.contains("Action=kafka-cluster%3AConnect") && url.contains("X-Amz-Signature="),
                "{url}"
            );
            assert!(token.expires_at_ms > 0);
        }
        Err(error) => assert!(
            !has_credentials,
            "credentials were set but signing failed: {error}"
        ),
    }
}
