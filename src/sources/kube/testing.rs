//! Test doubles shared by the Kubernetes source's tests: credentials, a CA, and API-server
//! responses shaped like the real ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use http::{Request, Response};
use kube::client::Body;

use crate::model::ClusterId;
use crate::sources::ClusterTarget;

/// A self-signed EC certificate, base64 of PEM, as EKS's `certificateAuthority.data`.
pub const TEST_CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJnakNDQVNlZ0F3SUJBZ0lVU2wyY1NqSnR2cFlQSnhxTksrVlB6NHZ2S1lzd0NnWUlLb1pJemowRUF3SXcKRlRFVE1CRUdBMVVFQXd3S2EzVmlaWEp1WlhSbGN6QWdGdzB5TmpFeE1qRXdOelU0TURkYUdBOHlNVEkyTVRBeQpPREEzTlRnd04xb3dGVEVUTUJFR0ExVUVBd3dLYTNWaVpYSnVaWFJsY3pCWk1CTUdCeXFHU000OUFnRUdDQ3FHClNNNDlBd0VIQTBJQUJJUnBBVzNRVHFPMUdWL0tqRVFUNFNGYWwrWnNENy9hN2o5SlZKWHR1MEh5YVdOR0szNXAKRE1ad1dnUDkwVk1UZzQ4cnNWVmFPNzc1Nmk5bFZaOEx6VjJqVXpCUk1CMEdBMVVkRGdRV0JCUWJsSk12WVVkTQozN1Z5SUx3YWJOa1FxaWxRWVRBZkJnTlZIU01FR0RBV2dCUWJsSk12WVVkTTM3VnlJTHdhYk5rUXFpbFFZVEFQCkJnTlZIUk1CQWY4RUJUQURBUUgvTUFvR0NDcUdTTTQ5QkFNQ0Ewa0FNRVlDSVFDT2V4RWdXam9DQUtOUVlMdUkKM3IrK0s2aE5OdXdER0YvcjUrcEdyV0JRQmdJaEFNS0doQzdCakVsbGU3eG1XNTdrUnQ0YjFIekJxclZTeExGZwoxenZvcjlqQgotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";

/// The API server's answer to a request with a bad token, byte for byte.
pub const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;

/// `GET /version` on EKS 1.33.
pub const VERSION: &str = r#"{"major":"1","minor":"33","gitVersion":"v1.33.4-eks-e386d34","gitCommit":"0d6a2ba4a4a4d3c0d2b2a38bc5e2c9a6f5b3a3ae","gitTreeState":"clean","buildDate":"2025-08-14T02:49:52Z","goVersion":"go1.24.5","compiler":"gc","platform":"linux/amd64"}"#;

/// Hands out new session credentials on every call (as after a rotation), and counts.
#[derive(Debug, Clone, Default)]
pub struct Rotating(pub Arc<AtomicUsize>);

impl ProvideCredentials for Rotating {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(format!("session-{n}")),
            None,
            "test",
        )))
    }
}

/// A credentials provider that rotates on every call.
pub fn rotating() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Rotating::default())
}

/// A production cluster target with an endpoint and CA, as EKS describes it.
pub fn target(account: &str, region: &str, name: &str) -> ClusterTarget {
    ClusterTarget {
        id: ClusterId::new(account, region, name),
        arn: format!("arn:aws:eks:{region}:123456789012:cluster/{name}"),
        endpoint: Some(format!(
            "https://{:X}.gr7.{region}.eks.amazonaws.com",
            name.len() * 0x1F2E3D
        )),
        certificate_authority: Some(TEST_CA.into()),
        production: true,
    }
}

/// A response with `status` and a JSON body.
#[allow(clippy::unwrap_used)]
pub fn json(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.as_bytes().to_vec()))
        .unwrap()
}

/// The API server's `Status` for a failure.
pub fn status(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

/// The `Authorization` header of a request, if any.
pub fn bearer(request: &Request<Body>) -> Option<String> {
    request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
