//! Updating an EKS add-on to a version (a runbook step). EKS has no dry run, so the
//! preview reads what would change: the add-on's current version and status
//! (`DescribeAddon`) and, when no version is given, EKS's default version for the
//! cluster's Kubernetes version (`DescribeAddonVersions`). The update itself is
//! `UpdateAddon` with `resolveConflicts=PRESERVE`, keeping settings someone changed.

use aws_sdk_eks::Client;
use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{AddonStatus, ResolveConflicts};

use crate::actions::Operation;
use crate::sources::WriteResult;
use crate::sources::remediation::RemediateRequest;

/// Carries out (or previews) the request, then answers it.
pub(super) async fn run(client: Client, request: RemediateRequest) {
    let result = perform(&client, &request).await;
    request.answer(result);
}

/// `eks:Op: Code: message`, or the transport's error in full.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(s) => format!(
            "eks:{op}: {}: {}",
            s.code().unwrap_or("Error"),
            s.message().unwrap_or_default()
        ),
        None => format!("eks:{op}: {}", DisplayErrorContext(&e)),
    }
}

pub async fn perform(client: &Client, request: &RemediateRequest) -> WriteResult {
    let Operation::UpdateAddon {
        addon,
        version,
        kubernetes_version,
    } = &request.remediation.op
    else {
        return Err(format!(
            "{} is not an EKS action; the EKS source cannot carry it out",
            request.remediation.op.kind()
        ));
    };
    let cluster = &request.remediation.cluster.name;
    let current = client
        .describe_addon()
        .cluster_name(cluster)
        .addon_name(addon)
        .send()
        .await
        .map_err(|e| describe("DescribeAddon", e))?
        .addon
        .ok_or_else(|| format!("eks:DescribeAddon: no add-on {addon} on {cluster}"))?;
    let from = current.addon_version.clone().unwrap_or_default();
    if let Some(status @ (AddonStatus::Updating | AddonStatus::Creating | AddonStatus::Deleting)) =
        &current.status
    {
        return Err(format!(
            "add-on {addon} on {cluster} is {}: wait for it to finish",
            status.as_str()
        ));
    }
    let (to, why) = match version {
        Some(v) => (v.clone(), String::new()),
        None => (
            default_version(client, addon, kubernetes_version).await?,
            format!(", EKS's default for Kubernetes {kubernetes_version}"),
        ),
    };
    if to == from {
        return Ok(format!(
            "add-on {addon} on {cluster} is already at {from}{why}: nothing to update"
        ));
    }
    if request.dry_run {
        return Ok(format!(
            "would update add-on {addon} on {cluster} from {from} to {to}{why} (status now {}; conflicts: PRESERVE). EKS has no dry run: this was read with DescribeAddon",
            current.status.as_ref().map_or("unknown", |s| s.as_str())
        ));
    }
    let update = client
        .update_addon()
        .cluster_name(cluster)
        .addon_name(addon)
        .addon_version(&to)
        .resolve_conflicts(ResolveConflicts::Preserve)
        .send()
        .await
        .map_err(|e| describe("UpdateAddon", e))?
        .update
        .ok_or("eks:UpdateAddon: the answer has no update")?;
    Ok(format!(
        "update {} of add-on {addon} on {cluster} from {from} to {to} started ({})",
        update.id.unwrap_or_default(),
        update.status.as_ref().map_or("InProgress", |s| s.as_str())
    ))
}

/// The version EKS marks default for `kubernetes_version`.
async fn default_version(
    client: &Client,
    addon: &str,
    kubernetes_version: &str,
) -> Result<String, String> {
    let out = client
        .describe_addon_versions()
        .addon_name(addon)
        .kubernetes_version(kubernetes_version)
        .send()
        .await
        .map_err(|e| describe("DescribeAddonVersions", e))?;
    out.addons()
        .iter()
        .flat_map(|a| a.addon_versions())
        .find(|v| v.compatibilities().iter().any(|c| c.default_version))
        .and_then(|v| v.addon_version.clone())
        .ok_or_else(|| {
            format!(
                "eks:DescribeAddonVersions: no default version of {addon} for Kubernetes {kubernetes_version}; give version=..."
            )
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use aws_sdk_eks::config::retry::RetryConfig;
    use aws_sdk_eks::operation::describe_addon::DescribeAddonOutput;
    use aws_sdk_eks::operation::describe_addon_versions::DescribeAddonVersionsOutput;
    use aws_sdk_eks::operation::update_addon::UpdateAddonOutput;
    use aws_sdk_eks::types::{
        Addon, AddonInfo, AddonVersionInfo, Compatibility, Update, UpdateStatus, UpdateType,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use tokio::sync::oneshot;

    use super::*;
    use crate::actions::Remediation;
    use crate::model::ClusterId;

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn request(version: Option<&str>, dry_run: bool) -> RemediateRequest {
        let (reply, _) = oneshot::channel();
        RemediateRequest {
            remediation: Remediation {
                cluster: ClusterId::new("prod", "eu-west-1", "prod-euw1-data-01"),
                production: true,
                step: Some("addon-degraded:55".into()),
                op: Operation::UpdateAddon {
                    addon: "coredns".into(),
                    version: version.map(str::to_string),
                    kubernetes_version: "1.31".into(),
                },
            },
            dry_run,
            progress: None,
            reply,
        }
    }

    fn describe_rule(status: AddonStatus) -> Rule {
        mock!(Client::describe_addon)
            .match_requests(|r| {
                r.cluster_name() == Some("prod-euw1-data-01") && r.addon_name() == Some("coredns")
            })
            .then_output(move || {
                DescribeAddonOutput::builder()
                    .addon(
                        Addon::builder()
                            .addon_name("coredns")
                            .cluster_name("prod-euw1-data-01")
                            .addon_version("v1.11.1-eksbuild.4")
                            .status(status.clone())
                            .build(),
                    )
                    .build()
            })
    }

    fn versions_rule() -> Rule {
        mock!(Client::describe_addon_versions)
            .match_requests(|r| {
                r.addon_name() == Some("coredns") && r.kubernetes_version() == Some("1.31")
            })
            .then_output(|| {
                let version = |v: &str, default: bool| {
                    AddonVersionInfo::builder()
                        .addon_version(v)
                        .compatibilities(
                            Compatibility::builder()
                                .cluster_version("1.31")
                                .default_version(default)
                                .build(),
                        )
                        .build()
                };
                DescribeAddonVersionsOutput::builder()
                    .addons(
                        AddonInfo::builder()
                            .addon_name("coredns")
                            .addon_versions(version("v1.11.4-eksbuild.10", false))
                            .addon_versions(version("v1.11.4-eksbuild.2", true))
                            .build(),
                    )
                    .build()
            })
    }

    fn update_rule() -> Rule {
        mock!(Client::update_addon)
            .match_requests(|r| {
                r.cluster_name() == Some("prod-euw1-data-01")
                    && r.addon_name() == Some("coredns")
                    && r.addon_version() == Some("v1.11.4-eksbuild.2")
                    && r.resolve_conflicts() == Some(&ResolveConflicts::Preserve)
            })
            .then_output(|| {
                UpdateAddonOutput::builder()
                    .update(
                        Update::builder()
                            .id("2f5c9a1e-0b4e-3c6a-9f3d-7e1c2b8a4d11")
                            .status(UpdateStatus::InProgress)
                            .r#type(UpdateType::AddonUpdate)
                            .build(),
                    )
                    .build()
            })
    }

    #[tokio::test]
    async fn preview_reads_versions_and_never_updates() {
        let (describe, versions, update) = (
            describe_rule(AddonStatus::Degraded),
            versions_rule(),
            update_rule(),
        );
        let c = client(&[&describe, &versions, &update]);
        let result = perform(&c, &request(None, true)).await.unwrap();
        assert_eq!(
            result,
            "would update add-on coredns on prod-euw1-data-01 from v1.11.1-eksbuild.4 to v1.11.4-eksbuild.2, EKS's default for Kubernetes 1.31 (status now DEGRADED; conflicts: PRESERVE). EKS has no dry run: this was read with DescribeAddon"
        );
        assert_eq!(update.num_calls(), 0, "a preview changes nothing");
    }

    #[tokio::test]
    async fn update_sends_update_addon_with_preserve() {
        let (describe, versions, update) = (
            describe_rule(AddonStatus::Degraded),
            versions_rule(),
            update_rule(),
        );
        let c = client(&[&describe, &versions, &update]);
        let result = perform(&c, &request(Some("v1.11.4-eksbuild.2"), false))
            .await
            .unwrap();
        assert_eq!(
            result,
            "update 2f5c9a1e-0b4e-3c6a-9f3d-7e1c2b8a4d11 of add-on coredns on prod-euw1-data-01 from v1.11.1-eksbuild.4 to v1.11.4-eksbuild.2 started (InProgress)"
        );
        assert_eq!(update.num_calls(), 1);
        assert_eq!(versions.num_calls(), 0, "a given version needs no lookup");
    }

    #[tokio::test]
    async fn an_add_on_in_flight_or_an_aws_error_is_refused_with_its_reason() {
        let (describe, update) = (describe_rule(AddonStatus::Updating), update_rule());
        let c = client(&[&describe, &update]);
        let e = perform(&c, &request(Some("v1.11.4-eksbuild.2"), false))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "add-on coredns on prod-euw1-data-01 is UPDATING: wait for it to finish"
        );
        assert_eq!(update.num_calls(), 0);

        let denied = mock!(Client::update_addon).then_http_response(|| {
            let mut r = HttpResponse::new(
                StatusCode::try_from(400).unwrap(),
                SdkBody::from(r#"{"message":"Addon version specified is not supported"}"#),
            );
            r.headers_mut()
                .insert("x-amzn-errortype", "InvalidParameterException");
            r.headers_mut().insert("content-type", "application/json");
            r
        });
        let describe = describe_rule(AddonStatus::Active);
        let c = client(&[&describe, &denied]);
        let e = perform(&c, &request(Some("v9"), false)).await.unwrap_err();
        assert_eq!(
            e,
            "eks:UpdateAddon: InvalidParameterException: Addon version specified is not supported"
        );
    }
}
