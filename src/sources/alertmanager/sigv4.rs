//! SigV4 header signing for Amazon Managed Prometheus (service `aps`): its Alertmanager API
//! (`/workspaces/{id}/alertmanager/api/v2/...`) takes only signed requests. The signer is
//! the AWS SDK's own (`aws-sigv4`), as for the EKS token; credentials come from the
//! standard chain, with the configured profile.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The service name Amazon Managed Prometheus signs for.
pub const SERVICE: &str = "aps";

/// Signs requests for one region with credentials from a provider.
#[derive(Clone, Debug)]
pub struct Signer {
    pub region: String,
    pub service: &'static str,
    credentials: SharedCredentialsProvider,
}

impl Signer {
    pub fn new(region: String, credentials: SharedCredentialsProvider) -> Self {
        Self {
            region,
            service: SERVICE,
            credentials,
        }
    }

    /// The credential chain for `profile` (or the default chain), in `region`.
    pub async fn from_chain(region: &str, profile: Option<&str>) -> Result<Self, String> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()));
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let credentials = sdk.credentials_provider().ok_or_else(|| {
            "no AWS credential provider: set a profile or AWS credentials".to_string()
        })?;
        Ok(Self::new(region.to_string(), credentials))
    }

    /// Signs `request` (its body given separately, as bytes) with fresh credentials.
    pub async fn sign(&self, request: &mut http::Request<()>, body: &[u8]) -> Result<(), String> {
        let creds = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| format!("no AWS credentials for SigV4: {}", error_chain(&e)))?;
        sign_request(
            request,
            body,
            &creds,
            &self.region,
            self.service,
            SystemTime::now(),
        )
    }
}

/// Adds `authorization`, `x-amz-date` (and `x-amz-security-token` for temporary
/// credentials) to `request`, signing its method, path, query, headers and `body`.
pub fn sign_request(
    request: &mut http::Request<()>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    at: SystemTime,
) -> Result<(), String> {
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign: {e}"))?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(epoch: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch)
    }

    /// 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
    const SUITE_TIME: u64 = 1_440_938_160;

    fn suite_creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_string),
            None,
            "test",
        )
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sha256_hex(data: &[u8]) -> String {
        hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        ring::hmac::sign(&key, data.as_bytes()).as_ref().to_vec()
    }

    /// The signature of a canonical request, computed independently of `aws-sigv4` from the
    /// SigV4 specification: string to sign, then the derived key chain.
    fn signature(canonical_request: &str, date: &str, region: &str, service: &str) -> String {
        let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            sha256_hex(canonical_request.as_bytes())
        );
        let k_date = hmac(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &date[..8]);
        let k_region = hmac(&k_date, region);
        let k_service = hmac(&k_region, service);
        let k_signing = hmac(&k_service, "aws4_request");
        hex(&hmac(&k_signing, &string_to_sign))
    }

    /// `method uri` with `headers`, signed as of the suite's time.
    fn signed(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: Option<&str>,
        region: &str,
        service: &str,
    ) -> http::Request<()> {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let mut request = builder.body(()).expect("request");
        sign_request(
            &mut request,
            body,
            &suite_creds(token),
            region,
            service,
            at(SUITE_TIME),
        )
        .expect("signed");
        request
    }

    fn header<'a>(request: &'a http::Request<()>, name: &str) -> &'a str {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name} missing: {:?}", request.headers()))
    }

    #[test]
    fn get_vanilla_matches_the_aws_test_suite() {
        // "get-vanilla" of the AWS SigV4 test suite: its published signature.
        let request = signed(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            None,
            "us-east-1",
            "service",
        );
        assert_eq!(header(&request, "x-amz-date"), "20150830T123600Z");
        assert_eq!(
            header(&request, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn an_amp_silence_post_is_signed_for_aps_over_its_canonical_request() {
        let body = br#"{"matchers":[],"comment":"x"}"#;
        let request = signed(
            "POST",
            "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/alertmanager/api/v2/silences",
            &[("content-type", "application/json")],
            body,
            Some("SESSION"),
            "us-east-1",
            SERVICE,
        );
        assert_eq!(header(&request, "x-amz-security-token"), "SESSION");
        let date = header(&request, "x-amz-date");
        let auth = header(&request, "authorization");
        let signed_headers = "content-type;host;x-amz-date;x-amz-security-token";
        assert!(
            auth.starts_with(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/aps/aws4_request, SignedHeaders={signed_headers}, Signature="
            )),
            "{auth}"
        );
        // The canonical request, as the SigV4 specification builds it.
        let canonical = format!(
            "POST\n/workspaces/ws-1/alertmanager/api/v2/silences\n\n\
             content-type:application/json\n\
             host:aps-workspaces.us-east-1.amazonaws.com\n\
             x-amz-date:{date}\n\
             x-amz-security-token:SESSION\n\n\
             {signed_headers}\n{}",
            sha256_hex(body)
        );
        let expected = signature(&canonical, date, "us-east-1", "aps");
        assert!(
            auth.ends_with(&format!("Signature={expected}")),
            "{auth}\nexpected signature {expected} over\n{canonical}"
        );
    }

    #[test]
    fn query_strings_are_signed_in_canonical_order() {
        let request = signed(
            "GET",
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-2/alertmanager/api/v2/alerts?silenced=true&active=true",
            &[],
            b"",
            None,
            "eu-west-1",
            SERVICE,
        );
        let date = header(&request, "x-amz-date").to_string();
        let canonical = format!(
            "GET\n/workspaces/ws-2/alertmanager/api/v2/alerts\nactive=true&silenced=true\n\
             host:aps-workspaces.eu-west-1.amazonaws.com\nx-amz-date:{date}\n\n\
             host;x-amz-date\n{}",
            sha256_hex(b"")
        );
        let expected = signature(&canonical, &date, "eu-west-1", "aps");
        assert!(
            header(&request, "authorization").ends_with(&expected),
            "canonical request mismatch:\n{canonical}"
        );
    }
}
