//! How the source reaches one cluster: the route (kubeconfig context or native EKS) and
//! the client it gives. Behind a trait so the source's tests can dial a fake API server.

use std::sync::Arc;

use aws_credential_types::provider::SharedCredentialsProvider;
use futures::future::BoxFuture;

use super::connect::{self, ConnectError};
use super::contexts::Contexts;
use super::token::TokenSource;
use crate::sources::ClusterTarget;
use crate::sources::aws::AccountCredentials;

/// The way to a cluster's API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Through this kubeconfig context.
    Context(String),
    /// From the EKS endpoint and CA, with a token signed with the account's credentials.
    Native,
}

/// Why a cluster of interest is not connected when there is no route to it.
pub const NO_ROUTE: &str = "no kubeconfig context and no EKS endpoint for it";

/// Gets clients for clusters.
pub trait Dial: Send + Sync + 'static {
    /// The route to `target`, if fleetdeck has one.
    fn route(&self, target: &ClusterTarget) -> Option<Route>;

    /// A client for `target` along `route`, and the URL it talks to (for messages).
    fn dial(
        &self,
        target: &ClusterTarget,
        route: Route,
    ) -> BoxFuture<'static, Result<(kube::Client, String), ConnectError>>;
}

/// The real dialer: kubeconfig contexts first, then native EKS access.
pub struct Dialer {
    contexts: Arc<Contexts>,
    native_auth: bool,
    /// The credentials of each `(account, region)`, discovered accounts included.
    credentials: AccountCredentials,
}

impl Dialer {
    /// A dialer over `contexts`, signing native tokens with the SDK configs' credentials
    /// when `native_auth`.
    pub fn new(contexts: Contexts, native_auth: bool, credentials: AccountCredentials) -> Self {
        Self {
            contexts: Arc::new(contexts),
            native_auth,
            credentials,
        }
    }

    fn credentials_for(&self, target: &ClusterTarget) -> Option<SharedCredentialsProvider> {
        self.credentials.get(&target.id.account, &target.id.region)
    }
}

impl Dial for Dialer {
    fn route(&self, target: &ClusterTarget) -> Option<Route> {
        if let Some(context) = self.contexts.context_for(target) {
            return Some(Route::Context(context.to_string()));
        }
        let native = self.native_auth
            && target.endpoint.is_some()
            && target.certificate_authority.is_some()
            && self.credentials_for(target).is_some();
        native.then_some(Route::Native)
    }

    fn dial(
        &self,
        target: &ClusterTarget,
        route: Route,
    ) -> BoxFuture<'static, Result<(kube::Client, String), ConnectError>> {
        let target = target.clone();
        match route {
            Route::Context(context) => {
                let contexts = self.contexts.clone();
                Box::pin(async move {
                    connect::kubeconfig_client(contexts.kubeconfig(), &context, &target).await
                })
            }
            Route::Native => {
                let credentials = self.credentials_for(&target);
                Box::pin(async move {
                    let Some(credentials) = credentials else {
                        return Err(ConnectError::Setup {
                            cluster: target.id.name.clone(),
                            detail: NO_ROUTE.into(),
                        });
                    };
                    let tokens = Arc::new(TokenSource::new(
                        target.id.name.clone(),
                        target.id.region.clone(),
                        credentials,
                    ));
                    let url = target.endpoint.clone().unwrap_or_default();
                    connect::native_client(&target, tokens).map(|client| (client, url))
                })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use kube::config::Kubeconfig;

    use super::super::testing;
    use super::*;

    fn sdk() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .credentials_provider(testing::rotating())
            .build()
    }

    fn dialer(native_auth: bool) -> Dialer {
        let kubeconfig = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: arn:aws:eks:us-east-1:123456789012:cluster/mapped\n  cluster:\n    server: https://mapped.example\ncontexts:\n- name: mapped\n  context:\n    cluster: arn:aws:eks:us-east-1:123456789012:cluster/mapped\n",
        )
        .unwrap();
        let credentials = AccountCredentials::default();
        credentials.insert("prod", "us-east-1", &sdk());
        Dialer::new(
            Contexts::new(kubeconfig, &BTreeMap::new()),
            native_auth,
            credentials,
        )
    }

    #[test]
    fn routes_prefer_a_context_then_native_access() {
        let d = dialer(true);
        assert_eq!(
            d.route(&testing::target("prod", "us-east-1", "mapped")),
            Some(Route::Context("mapped".into()))
        );
        assert_eq!(
            d.route(&testing::target("prod", "us-east-1", "other")),
            Some(Route::Native)
        );
        // No credentials for that account and region.
        assert_eq!(d.route(&testing::target("dev", "us-east-1", "other")), None);
        // No endpoint (EKS not described yet).
        let mut bare = testing::target("prod", "us-east-1", "other");
        bare.endpoint = None;
        assert_eq!(d.route(&bare), None);
        // Native access turned off.
        assert_eq!(
            dialer(false).route(&testing::target("prod", "us-east-1", "other")),
            None
        );
    }

    #[tokio::test]
    async fn the_native_route_dials_the_endpoint() {
        let d = dialer(true);
        let target = testing::target("prod", "us-east-1", "other");
        let (_, url) = d.dial(&target, Route::Native).await.unwrap();
        assert_eq!(Some(url), target.endpoint);
    }
}
