//! The credentials of every account and region fleetdeck reads, shared by the sources
//! that need them: the EKS and CloudWatch sources have their SDK configs, and the
//! Kubernetes source signs EKS tokens (native access) with the same credentials. An
//! organization's accounts are discovered while running, so the Kubernetes source looks
//! them up here when it dials, not once at start.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

/// `(account, region)` -> credentials; cheap to clone, every clone sees the same map.
#[derive(Clone, Default)]
pub struct AccountCredentials(Arc<RwLock<HashMap<(String, String), SharedCredentialsProvider>>>);

impl AccountCredentials {
    /// Records the credentials of `sdk` (if it has any) for `account` in `region`; a
    /// rediscovered account replaces what was there.
    pub fn insert(&self, account: &str, region: &str, sdk: &SdkConfig) {
        let Some(provider) = sdk.credentials_provider() else {
            return;
        };
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((account.to_string(), region.to_string()), provider);
    }

    /// The credentials of `account` in `region`, if fleetdeck reads it.
    pub fn get(&self, account: &str, region: &str) -> Option<SharedCredentialsProvider> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(account.to_string(), region.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials;

    use super::*;

    fn sdk(key: &str) -> SdkConfig {
        SdkConfig::builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                key, "secret", None, None, "test",
            )))
            .build()
    }

    #[tokio::test]
    async fn every_clone_sees_what_one_records() {
        use aws_credential_types::provider::ProvideCredentials;
        let shared = AccountCredentials::default();
        let kube_side = shared.clone();
        assert!(kube_side.get("member", "us-east-1").is_none());
        shared.insert("member", "us-east-1", &sdk("AKIA1"));
        shared.insert("member", "eu-west-1", &sdk("AKIA2"));
        shared.insert("other", "us-east-1", &sdk("AKIA3"));
        let got = kube_side
            .get("member", "eu-west-1")
            .expect("recorded")
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(got.access_key_id(), "AKIA2");
        // Rediscovered with new credentials: replaced.
        shared.insert("member", "eu-west-1", &sdk("AKIA4"));
        let got = kube_side
            .get("member", "eu-west-1")
            .expect("recorded")
            .provide_credentials()
            .await
            .expect("credentials");
        assert_eq!(got.access_key_id(), "AKIA4");
        assert!(kube_side.get("other", "us-east-1").is_some());
        // A config without credentials records nothing.
        shared.insert("bare", "us-east-1", &SdkConfig::builder().build());
        assert!(kube_side.get("bare", "us-east-1").is_none());
    }
}
