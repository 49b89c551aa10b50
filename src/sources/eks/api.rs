//! The EKS calls the source makes, each through `call` (budget, retries, counters), with
//! pagination done by hand so that every page is budgeted and counted.

use std::sync::Arc;

use aws_sdk_eks::Client;
use aws_sdk_eks::types::{
    Addon, Category, Cluster, ClusterVersionInformation, Insight, InsightSummary, InsightsFilter,
    Nodegroup, Update,
};

use crate::sources::aws::{CallError, CallKind, CallStats, RequestBudget, call};

/// A runaway `nextToken` (an endpoint that hands back the same token) must not loop forever.
const MAX_PAGES: usize = 1_000;

/// The EKS client with the budget and counters every call goes through.
pub(super) struct Api {
    client: Client,
    budget: Arc<RequestBudget>,
    pub(super) stats: CallStats,
}

/// Pages through a list operation: `$send` sends one page's request for `$token`, `$items`
/// takes the items out of its output `$out`; stops at the last page.
macro_rules! paginate {
    ($self:ident, $op:literal, |$token:ident| $send:expr, |$out:ident| $items:expr) => {{
        let mut items = Vec::new();
        let mut $token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let $out = call(&$self.budget, &mut $self.stats, $op, || $send).await?;
            let next = $out.next_token.clone();
            items.extend($items);
            match next {
                // An empty token is what some endpoints send instead of none.
                Some(t) if !t.is_empty() && Some(&t) != $token.as_ref() => $token = Some(t),
                _ => break,
            }
        }
        Ok(items)
    }};
}

impl Api {
    pub(super) fn new(client: Client, budget: Arc<RequestBudget>) -> Self {
        Self {
            client,
            budget,
            stats: CallStats::default(),
        }
    }

    /// The request rate the account and region allows now.
    pub(super) fn pace(&self, now: crate::model::Timestamp) -> crate::model::Pace {
        self.budget.pace(now)
    }

    /// Every cluster name in the region.
    pub(super) async fn list_clusters(&mut self) -> Result<Vec<String>, CallError> {
        paginate!(
            self,
            "eks:ListClusters",
            |token| self
                .client
                .list_clusters()
                .set_next_token(token.clone())
                .send(),
            |out| out.clusters.unwrap_or_default()
        )
    }

    pub(super) async fn describe_cluster(&mut self, name: &str) -> Result<Cluster, CallError> {
        let client = &self.client;
        let out = call(&self.budget, &mut self.stats, "eks:DescribeCluster", || {
            client.describe_cluster().name(name).send()
        })
        .await?;
        out.cluster.ok_or_else(|| empty("eks:DescribeCluster"))
    }

    /// The region's Kubernetes versions and where each stands on support.
    pub(super) async fn describe_cluster_versions(
        &mut self,
    ) -> Result<Vec<ClusterVersionInformation>, CallError> {
        paginate!(
            self,
            "eks:DescribeClusterVersions",
            |token| self
                .client
                .describe_cluster_versions()
                .set_next_token(token.clone())
                .send(),
            |out| out.cluster_versions.unwrap_or_default()
        )
    }

    /// Upgrade-readiness and misconfiguration insights of a cluster.
    pub(super) async fn list_insights(
        &mut self,
        cluster: &str,
    ) -> Result<Vec<InsightSummary>, CallError> {
        let filter = InsightsFilter::builder()
            .categories(Category::UpgradeReadiness)
            .categories(Category::Misconfiguration)
            .build();
        paginate!(
            self,
            "eks:ListInsights",
            |token| self
                .client
                .list_insights()
                .cluster_name(cluster)
                .filter(filter.clone())
                .set_next_token(token.clone())
                .send(),
            |out| out.insights.unwrap_or_default()
        )
    }

    pub(super) async fn describe_insight(
        &mut self,
        cluster: &str,
        id: &str,
    ) -> Result<Insight, CallError> {
        let client = &self.client;
        let out = call(&self.budget, &mut self.stats, "eks:DescribeInsight", || {
            client
                .describe_insight()
                .cluster_name(cluster)
                .id(id)
                .send()
        })
        .await?;
        out.insight.ok_or_else(|| empty("eks:DescribeInsight"))
    }

    /// Update ids of the cluster itself, or of one of its add-ons.
    pub(super) async fn list_updates(
        &mut self,
        cluster: &str,
        addon: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        paginate!(
            self,
            "eks:ListUpdates",
            |token| self
                .client
                .list_updates()
                .name(cluster)
                .set_addon_name(addon.map(str::to_string))
                .set_next_token(token.clone())
                .send(),
            |out| out.update_ids.unwrap_or_default()
        )
    }

    pub(super) async fn describe_update(
        &mut self,
        cluster: &str,
        addon: Option<&str>,
        id: &str,
    ) -> Result<Update, CallError> {
        let client = &self.client;
        let out = call(&self.budget, &mut self.stats, "eks:DescribeUpdate", || {
            client
                .describe_update()
                .name(cluster)
                .set_addon_name(addon.map(str::to_string))
                .update_id(id)
                .send()
        })
        .await?;
        out.update.ok_or_else(|| empty("eks:DescribeUpdate"))
    }

    pub(super) async fn list_addons(&mut self, cluster: &str) -> Result<Vec<String>, CallError> {
        paginate!(
            self,
            "eks:ListAddons",
            |token| self
                .client
                .list_addons()
                .cluster_name(cluster)
                .set_next_token(token.clone())
                .send(),
            |out| out.addons.unwrap_or_default()
        )
    }

    pub(super) async fn describe_addon(
        &mut self,
        cluster: &str,
        addon: &str,
    ) -> Result<Addon, CallError> {
        let client = &self.client;
        let out = call(&self.budget, &mut self.stats, "eks:DescribeAddon", || {
            client
                .describe_addon()
                .cluster_name(cluster)
                .addon_name(addon)
                .send()
        })
        .await?;
        out.addon.ok_or_else(|| empty("eks:DescribeAddon"))
    }

    pub(super) async fn list_nodegroups(
        &mut self,
        cluster: &str,
    ) -> Result<Vec<String>, CallError> {
        paginate!(
            self,
            "eks:ListNodegroups",
            |token| self
                .client
                .list_nodegroups()
                .cluster_name(cluster)
                .set_next_token(token.clone())
                .send(),
            |out| out.nodegroups.unwrap_or_default()
        )
    }

    pub(super) async fn describe_nodegroup(
        &mut self,
        cluster: &str,
        nodegroup: &str,
    ) -> Result<Nodegroup, CallError> {
        let client = &self.client;
        let out = call(
            &self.budget,
            &mut self.stats,
            "eks:DescribeNodegroup",
            || {
                client
                    .describe_nodegroup()
                    .cluster_name(cluster)
                    .nodegroup_name(nodegroup)
                    .send()
            },
        )
        .await?;
        out.nodegroup.ok_or_else(|| empty("eks:DescribeNodegroup"))
    }
}

/// A success without the object asked for: a broken endpoint, reported like any failure.
fn empty(operation: &str) -> CallError {
    CallError {
        kind: CallKind::Other,
        operation: operation.into(),
        message: "the response has no object".into(),
    }
}

/// The endpoint does not serve this operation at all: an emulator (moto answers 404 with an
/// HTML page and no AWS error code) or a partition without the API. A missing *resource*
/// comes with `ResourceNotFoundException` instead, which `call` reports as
/// `"ResourceNotFoundException: ..."`; only a bare 404 lands here.
pub(super) fn is_unsupported(err: &CallError) -> bool {
    (err.kind == CallKind::NotFound && err.message.starts_with("HTTP 404"))
        || err.message.starts_with("UnknownOperationException")
}
