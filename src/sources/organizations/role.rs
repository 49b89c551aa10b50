//! The role assumed in a member account: a credentials provider over the management
//! account's STS client, so the SDK's identity cache refreshes it before it expires.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};

use crate::sources::aws::{CallError, CallKind, CallStats, RequestBudget, call};

/// Credentials this close to expiring are not handed out again.
const FRESH_FOR_AT_LEAST: Duration = Duration::from_secs(5 * 60);

/// `sts:AssumeRole` of one member account's role.
#[derive(Clone, Debug)]
pub struct MemberRole {
    sts: aws_sdk_sts::Client,
    arn: String,
    session_name: String,
    external_id: Option<String>,
    budget: Arc<RequestBudget>,
    /// The last credentials, so the check made at discovery serves the first calls too.
    last: Arc<Mutex<Option<Credentials>>>,
}

impl MemberRole {
    pub fn new(
        sts: aws_sdk_sts::Client,
        arn: String,
        session_name: String,
        external_id: Option<String>,
    ) -> Self {
        Self {
            sts,
            arn,
            session_name,
            external_id,
            budget: Arc::new(RequestBudget::default()),
            last: Arc::default(),
        }
    }

    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// Credentials of the role: the last ones while they stay fresh, else AssumeRole.
    /// A refusal reads as AWS said it (`sts:AssumeRole: AccessDenied: User: ... is not
    /// authorized to perform: sts:AssumeRole on resource: ...`).
    pub async fn assume(&self, stats: &mut CallStats) -> Result<Credentials, CallError> {
        if let Some(fresh) = self.fresh() {
            return Ok(fresh);
        }
        let out = call(&self.budget, stats, "sts:AssumeRole", || {
            self.sts
                .assume_role()
                .role_arn(&self.arn)
                .role_session_name(&self.session_name)
                .set_external_id(self.external_id.clone())
                .send()
        })
        .await?;
        let Some(c) = out.credentials() else {
            return Err(CallError {
                kind: CallKind::Other,
                operation: "sts:AssumeRole".into(),
                message: format!("{}: the answer holds no credentials", self.arn),
            });
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "fleetdeck-organization",
        );
        if let Ok(mut last) = self.last.lock() {
            *last = Some(credentials.clone());
        }
        Ok(credentials)
    }

    fn fresh(&self) -> Option<Credentials> {
        let last = self.last.lock().ok()?.clone()?;
        let fresh = last
            .expiry()
            .is_some_and(|at| at > SystemTime::now() + FRESH_FOR_AT_LEAST);
        fresh.then_some(last)
    }
}

impl ProvideCredentials for MemberRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            // The member's sources count their own calls; this one is the role's.
            let mut stats = CallStats::default();
            self.assume(&mut stats)
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}
