//! OAUTHBEARER tokens: the provider trait, and the client context every client of this crate
//! uses so that librdkafka can ask for a fresh token.

use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use std::sync::Arc;

/// A bearer token for SASL/OAUTHBEARER.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken {
    /// The token, never logged.
    pub token: crate::Secret,
    /// The Kafka principal it stands for.
    pub principal: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerToken")
            .field("principal", &self.principal)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Makes bearer tokens when librdkafka needs one (at connect, and before the last expires).
///
/// Called from librdkafka's threads, never from an async task: it may block.
pub trait TokenProvider: Send + Sync + std::fmt::Debug {
    /// A fresh token.
    fn token(&self) -> Result<BearerToken, Box<dyn std::error::Error + Send + Sync>>;
}

/// The context of every client this crate creates: it answers librdkafka's token refresh
/// with the configured provider (unused unless `sasl.mechanisms=OAUTHBEARER`).
#[derive(Clone, Default)]
pub(crate) struct AuthContext {
    pub(crate) tokens: Option<Arc<dyn TokenProvider>>,
}

impl AuthContext {
    pub(crate) fn oauth_token(&self) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let provider = self
            .tokens
            .as_ref()
            .ok_or("OAUTHBEARER needs Security::OAuthBearer")?;
        let token = provider.token().map_err(|e| e.to_string())?;
        Ok(OAuthToken {
            token: token.token.expose().to_string(),
            principal_name: token.principal,
            lifetime_ms: token.expires_at_ms,
        })
    }
}

/// Implements `ClientContext` for a client context: librdkafka's OAUTHBEARER token refresh
/// goes to the [`AuthContext`] that `|context| expr` reaches. The one definition for the
/// contexts of every client this crate creates (producer, consumer, admin).
macro_rules! oauth_client_context {
    ($context:ty, |$this:ident| $auth:expr) => {
        impl rdkafka::ClientContext for $context {
            const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

            fn generate_oauth_token(
                &self,
                _: Option<&str>,
            ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
                let $this = self;
                $crate::auth::AuthContext::oauth_token($auth)
            }
        }
    };
}
pub(crate) use oauth_client_context;

oauth_client_context!(AuthContext, |context| context);

impl ConsumerContext for AuthContext {}

/// Amazon MSK IAM: SigV4-signed tokens from the default AWS credentials chain
/// (environment, profile, web identity, instance or task role), through
/// `aws-msk-iam-sasl-signer`.
#[cfg(feature = "msk-iam")]
#[derive(Debug, Clone)]
pub struct MskIamTokens {
    region: String,
}

#[cfg(feature = "msk-iam")]
impl MskIamTokens {
    /// Tokens for a cluster in `region` (`eu-west-1`).
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
        }
    }
}

#[cfg(feature = "msk-iam")]
impl TokenProvider for MskIamTokens {
    fn token(&self) -> Result<BearerToken, Box<dyn std::error::Error + Send + Sync>> {
        let region = aws_types::region::Region::new(self.region.clone());
        // The signer is async and needs a tokio runtime for the credential providers;
        // librdkafka may call from inside one of the application's runtimes, where a nested
        // `block_on` panics, so the token is made on a short-lived thread of its own.
        let signed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(aws_msk_iam_sasl_signer::generate_auth_token(region))
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })
        })
        .join()
        .map_err(|_| "the MSK IAM signer thread panicked")??;
        let (token, expires_at_ms) = signed;
        Ok(BearerToken {
            token: crate::Secret::new(token),
            principal: "msk-iam".into(),
            expires_at_ms,
        })
    }
}
