//! The EKS bearer token, made here rather than by `aws eks get-token`: a presigned STS
//! `GetCallerIdentity` URL that the API server hands to STS to learn who is calling.
//!
//! `k8s-aws-v1.` + base64url (no padding) of
//! `https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-...`,
//! signed (SigV4, service `sts`, 60 s presign) with the header `x-k8s-aws-id: {cluster}`
//! among the signed headers, so a token for one cluster is refused by another. EKS accepts
//! the token for 15 minutes after its `X-Amz-Date`; [`TokenSource`] caches it and signs a
//! new one well before then.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The prefix EKS (aws-iam-authenticator) expects in front of the encoded URL.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that binds the token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long EKS accepts a token after the time it was signed at.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A token is renewed when less than this is left of its life.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// The presign expiry `aws eks get-token` uses; EKS ignores it in favour of its own 15 minutes.
const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// Why no token could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The account's credential chain gave nothing (expired SSO session, no profile...).
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// SigV4 presigning failed (a malformed region or cluster name).
    #[error("cannot sign the STS request: {0}")]
    Signing(String),
}

/// A bearer token and the times that govern its use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EksToken {
    /// `k8s-aws-v1.<base64url>`, for `Authorization: Bearer`.
    pub token: String,
    /// The `X-Amz-Date` it was signed with.
    pub signed_at: SystemTime,
    /// When EKS stops accepting it: 15 minutes after signing, or when the credentials it
    /// was signed with expire, whichever is first.
    pub valid_until: SystemTime,
}

impl EksToken {
    /// When to sign a new one: five minutes before the end, or halfway through when the
    /// credentials are short-lived, so a token is never used past its end and never
    /// re-signed on every request either.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .valid_until
            .duration_since(self.signed_at)
            .unwrap_or_default();
        self.valid_until - RENEW_BEFORE.min(life / 2)
    }
}

/// The STS host of a region: China regions live under `amazonaws.com.cn`.
fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

/// Signs a token for `cluster` (its EKS name) in `region` with `creds`, as of `at`.
pub fn presign(
    cluster: &str,
    region: &str,
    creds: &Credentials,
    at: SystemTime,
) -> Result<EksToken, TokenError> {
    let url = format!(
        "https://{}/?Action=GetCallerIdentity&Version=2011-06-15",
        sts_host(region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::empty(),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();
    // The presigned URL is the query string the signer computed, applied to the request.
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();

    let fifteen = at + TOKEN_LIFETIME;
    let valid_until = creds.expiry().map_or(fifteen, |exp| exp.min(fifteen));
    Ok(EksToken {
        token: format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(presigned)),
        signed_at: at,
        valid_until,
    })
}

/// Hands out a current token for one cluster, signing a new one only when the cached one
/// is near its end or the API server rejected it. Shared by every request of a client, so
/// renewal needs no new client.
#[derive(Debug)]
pub struct TokenSource {
    cluster: String,
    region: String,
    credentials: SharedCredentialsProvider,
    // A tokio mutex: concurrent requests that find the token stale wait for one signing
    // instead of each asking the credential chain.
    cached: tokio::sync::Mutex<Option<EksToken>>,
}

impl TokenSource {
    /// A source for `cluster` (its EKS name) in `region`, signing with `credentials`.
    pub fn new(
        cluster: impl Into<String>,
        region: impl Into<String>,
        credentials: SharedCredentialsProvider,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            region: region.into(),
            credentials,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The token to send now. Signing uses the wall clock, never a simulated one: STS
    /// checks `X-Amz-Date` against real time.
    pub async fn current(&self) -> Result<String, TokenError> {
        self.current_at(SystemTime::now()).await
    }

    /// [`Self::current`] as of `now`.
    pub async fn current_at(&self, now: SystemTime) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| now < t.renew_at()) {
            return Ok(token.token.clone());
        }
        let token = self.sign(now).await?;
        let value = token.token.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// A new token after the API server refused `rejected`. When another request has
    /// already replaced it, that newer token is returned rather than signing again.
    pub async fn renew(&self, rejected: &str) -> Result<String, TokenError> {
        self.renew_at(rejected, SystemTime::now()).await
    }

    /// [`Self::renew`] as of `now`.
    pub async fn renew_at(&self, rejected: &str, now: SystemTime) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.token != rejected) {
            return Ok(token.token.clone());
        }
        let token = self.sign(now).await?;
        let value = token.token.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn sign(&self, now: SystemTime) -> Result<EksToken, TokenError> {
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| TokenError::Credentials(error_chain(&e)))?;
        presign(&self.cluster, &self.region, &creds, now)
    }
}

/// An error and its causes on one line: the SDK's top-level messages alone are vague
/// ("failed to load credentials").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_credential_types::provider::future;

    use super::*;

    /// 2026-03-01T12:00:00Z.
    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400)
    }

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session.map(str::to_string),
            None,
            "test",
        )
    }

    /// Decodes a token back to its URL and query parameters (percent-decoded).
    fn decode(token: &str) -> (String, HashMap<String, String>) {
        let encoded = token.strip_prefix(TOKEN_PREFIX).unwrap();
        assert!(!encoded.contains('='), "no padding: {encoded}");
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
        let uri: http::Uri = url.parse().unwrap();
        let query = uri
            .query()
            .unwrap()
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (k.to_string(), percent_decode(v))
            })
            .collect();
        (url, query)
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let token = presign("prod-use1-api-01", "eu-west-1", &creds(None), t0()).unwrap();
        assert!(token.token.starts_with("k8s-aws-v1."));
        let (url, q) = decode(&token.token);
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?"),
            "{url}"
        );
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["Version"], "2011-06-15");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            q["X-Amz-Credential"],
            "AKIDEXAMPLE/20260301/eu-west-1/sts/aws4_request"
        );
        assert_eq!(q["X-Amz-Date"], "20260301T120000Z");
        assert_eq!(q["X-Amz-Expires"], "60");
        let signed: Vec<&str> = q["X-Amz-SignedHeaders"].split(';').collect();
        assert!(signed.contains(&"host"), "{signed:?}");
        assert!(signed.contains(&"x-k8s-aws-id"), "{signed:?}");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert!(!q.contains_key("X-Amz-Security-Token"));
        assert_eq!(token.signed_at, t0());
        assert_eq!(token.valid_until, t0() + Duration::from_secs(900));
    }

    #[test]
    fn the_signature_binds_the_cluster_name() {
        let a = presign("a", "eu-west-1", &creds(None), t0()).unwrap();
        let b = presign("b", "eu-west-1", &creds(None), t0()).unwrap();
        assert_ne!(
            decode(&a.token).1["X-Amz-Signature"],
            decode(&b.token).1["X-Amz-Signature"]
        );
    }

    #[test]
    fn session_credentials_carry_their_token() {
        let token = presign("c", "eu-west-1", &creds(Some("FwoG/se+ss=")), t0()).unwrap();
        let (_, q) = decode(&token.token);
        assert_eq!(q["X-Amz-Security-Token"], "FwoG/se+ss=");
    }

    #[test]
    fn china_regions_use_their_own_sts_domain() {
        let token = presign("c", "cn-north-1", &creds(None), t0()).unwrap();
        let (url, _) = decode(&token.token);
        assert!(
            url.starts_with("https://sts.cn-north-1.amazonaws.com.cn/?"),
            "{url}"
        );
    }

    #[test]
    fn short_lived_credentials_shorten_the_token() {
        let mut c = creds(Some("s"));
        *c.expiry_mut() = Some(t0() + Duration::from_secs(120));
        let token = presign("c", "eu-west-1", &c, t0()).unwrap();
        assert_eq!(token.valid_until, t0() + Duration::from_secs(120));
        // Renewed halfway rather than on every request.
        assert_eq!(token.renew_at(), t0() + Duration::from_secs(60));
    }

    /// Hands out new session credentials on every call, and counts the calls.
    #[derive(Debug, Clone, Default)]
    struct Rotating(Arc<AtomicUsize>);

    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(creds(Some(&format!("session-{n}")))))
        }
    }

    fn source() -> (TokenSource, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Rotating(calls.clone()));
        (
            TokenSource::new("prod-use1-api-01", "us-east-1", provider),
            calls,
        )
    }

    #[tokio::test]
    async fn token_is_cached_and_renewed_before_the_fifteen_minute_mark() {
        let (tokens, calls) = source();
        let first = tokens.current_at(t0()).await.unwrap();
        for minute in [1, 5, 9] {
            let at = t0() + Duration::from_secs(minute * 60);
            assert_eq!(
                tokens.current_at(at).await.unwrap(),
                first,
                "minute {minute}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "signed once");

        // Ten minutes in, five are left: a new token, signed now.
        let at = t0() + Duration::from_secs(600);
        let second = tokens.current_at(at).await.unwrap();
        assert_ne!(second, first);
        assert_eq!(decode(&second).1["X-Amz-Date"], "20260301T121000Z");
        assert_eq!(
            tokens
                .current_at(at + Duration::from_secs(1))
                .await
                .unwrap(),
            second
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_rejected_token_is_renewed_once_however_many_requests_saw_it_rejected() {
        let (tokens, calls) = source();
        let first = tokens.current_at(t0()).await.unwrap();
        let renewed = tokens.renew_at(&first, t0()).await.unwrap();
        assert_ne!(renewed, first);
        // A second request that was also refused the old token gets the renewed one.
        assert_eq!(tokens.renew_at(&first, t0()).await.unwrap(), renewed);
        assert_eq!(tokens.current_at(t0()).await.unwrap(), renewed);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[derive(Debug)]
    struct NoCredentials;

    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(
                aws_credential_types::provider::error::CredentialsError::not_loaded(
                    "the SSO session for profile 'prod' has expired",
                ),
            ))
        }
    }

    #[tokio::test]
    async fn missing_credentials_are_a_clear_error() {
        let provider = SharedCredentialsProvider::new(NoCredentials);
        let tokens = TokenSource::new("c", "us-east-1", provider);
        let e = tokens.current().await.unwrap_err();
        assert!(matches!(e, TokenError::Credentials(_)), "{e:?}");
        assert!(e.to_string().starts_with("no AWS credentials"), "{e}");
        assert!(e.to_string().contains("SSO session"), "{e}");
    }
}
