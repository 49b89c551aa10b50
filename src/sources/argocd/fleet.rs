//! Which spoke cluster an Application deploys to.
//!
//! Argo CD names a destination by API server URL (`spec.destination.server`) or by the
//! name of its cluster secret (`spec.destination.name`). EKS gives the endpoint with an
//! upper-case host (`https://0123ABCD.gr7.us-east-1.eks.amazonaws.com`), while cluster
//! secrets are often written by hand or by tools in lower case, with a trailing slash or
//! an explicit `:443`; those all name the same server. Names are matched exactly against
//! the cluster's EKS name or ARN (`argocd cluster add` with an EKS kubeconfig context uses
//! the ARN); a name shared by clusters in several accounts or regions maps to none of
//! them rather than to a guess.

use std::collections::HashMap;

use crate::model::ClusterId;
use crate::sources::ClusterTarget;

/// The fleet, indexed the ways a destination can name a cluster.
#[derive(Debug, Default)]
pub(super) struct FleetIndex {
    by_endpoint: HashMap<String, ClusterId>,
    /// `None` when the name is ambiguous.
    by_name: HashMap<String, Option<ClusterId>>,
    production: HashMap<ClusterId, bool>,
}

impl FleetIndex {
    pub(super) fn new(fleet: &[ClusterTarget]) -> Self {
        let mut index = Self::default();
        for target in fleet {
            if let Some(endpoint) = target.endpoint.as_deref().filter(|e| !e.is_empty()) {
                index
                    .by_endpoint
                    .insert(normalize_endpoint(endpoint), target.id.clone());
            }
            index
                .by_name
                .entry(target.id.name.clone())
                .and_modify(|found| {
                    if found.as_ref() != Some(&target.id) {
                        *found = None;
                    }
                })
                .or_insert_with(|| Some(target.id.clone()));
            if !target.arn.is_empty() {
                index
                    .by_name
                    .insert(target.arn.clone(), Some(target.id.clone()));
            }
            index
                .production
                .insert(target.id.clone(), target.production);
        }
        index
    }

    /// The cluster a destination names: by server URL first, else by name or ARN.
    pub(super) fn cluster_for(
        &self,
        server: Option<&str>,
        name: Option<&str>,
    ) -> Option<ClusterId> {
        server
            .and_then(|s| self.by_endpoint.get(&normalize_endpoint(s)))
            .or_else(|| {
                name.and_then(|n| self.by_name.get(n))
                    .and_then(Option::as_ref)
            })
            .cloned()
    }

    /// Whether the cluster serves production, as its environment tag says.
    pub(super) fn is_production(&self, cluster: &ClusterId) -> bool {
        self.production.get(cluster).copied().unwrap_or(false)
    }
}

/// An API server URL in one spelling: scheme and host lower-cased, the default HTTPS port
/// and trailing slashes dropped. The path (a proxy's, say) is kept as written.
pub(super) fn normalize_endpoint(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("https".to_string(), url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    if scheme == "https" && authority.ends_with(":443") {
        authority.truncate(authority.len() - ":443".len());
    }
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(account: &str, name: &str, endpoint: Option<&str>) -> ClusterTarget {
        ClusterTarget {
            id: ClusterId::new(account, "us-east-1", name),
            arn: format!("arn:aws:eks:us-east-1:{account}:cluster/{name}"),
            endpoint: endpoint.map(str::to_string),
            certificate_authority: None,
            production: false,
        }
    }

    #[test]
    fn endpoints_match_whatever_the_case_slash_or_default_port() {
        let fleet = FleetIndex::new(&[target(
            "111",
            "prod-1",
            Some("https://0123ABCD.gr7.us-east-1.eks.amazonaws.com"),
        )]);
        for server in [
            "https://0123abcd.gr7.us-east-1.eks.amazonaws.com",
            "https://0123ABCD.gr7.us-east-1.eks.amazonaws.com/",
            "HTTPS://0123abcd.GR7.us-east-1.eks.amazonaws.com:443//",
        ] {
            assert_eq!(
                fleet.cluster_for(Some(server), None),
                Some(ClusterId::new("111", "us-east-1", "prod-1")),
                "{server}"
            );
        }
        assert_eq!(
            fleet.cluster_for(Some("https://kubernetes.default.svc"), None),
            None
        );
    }

    #[test]
    fn names_match_the_cluster_name_or_arn_but_not_an_ambiguous_name() {
        let fleet = FleetIndex::new(&[
            target("111", "prod-1", None),
            target("111", "shared", None),
            target("222", "shared", None),
        ]);
        let prod1 = ClusterId::new("111", "us-east-1", "prod-1");
        assert_eq!(fleet.cluster_for(None, Some("prod-1")), Some(prod1.clone()));
        assert_eq!(
            fleet.cluster_for(None, Some("arn:aws:eks:us-east-1:111:cluster/prod-1")),
            Some(prod1)
        );
        assert_eq!(fleet.cluster_for(None, Some("shared")), None);
        assert_eq!(
            fleet.cluster_for(None, Some("arn:aws:eks:us-east-1:222:cluster/shared")),
            Some(ClusterId::new("222", "us-east-1", "shared"))
        );
        assert_eq!(fleet.cluster_for(None, Some("in-cluster")), None);
    }

    #[test]
    fn paths_keep_their_case() {
        assert_eq!(
            normalize_endpoint("https://Proxy.example.com/k8s/Clusters/C-1/"),
            "https://proxy.example.com/k8s/Clusters/C-1"
        );
    }
}
