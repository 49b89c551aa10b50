//! Test doubles shared by the Kubernetes source's tests: credentials, a CA, and API-server
//! responses shaped like the real ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::Value;
use tower_test::mock;

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

/// A request the API server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// An API server (kube's mock-service pattern) answering each request with `answer(request, how many came before)`.
pub fn server(
    mut answer: impl FnMut(&Seen, usize) -> (u16, Value) + Send + 'static,
) -> (kube::Client, Log) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let seen_log = log.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let bytes = request
                .into_body()
                .collect()
                .await
                .expect("request body")
                .to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen {
                method,
                path,
                query,
                content_type,
                body,
            };
            let (code, reply) = answer(&seen, n);
            n += 1;
            seen_log.lock().expect("log").push(seen);
            send.send_response(json(code, &reply.to_string()));
        }
    });
    (kube::Client::new(service, "default"), log)
}
