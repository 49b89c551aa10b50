//! moto's AWS emulator as a test fixture: started on a free loopback port, killed on drop.
//!
//! The server is `$FLEETDECK_MOTO_SERVER` (set by `scripts/test`, which installs the pinned
//! moto), else `moto_server` on `PATH`. Without either the tests fail and say so: an EKS
//! test that silently skips would look like a pass.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_eks::config::{BehaviorVersion, Credentials, Region};

/// How long moto may take to start answering (a cold Python start on a busy machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The account id moto gives every resource.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// A running `moto_server`; killed when dropped.
pub struct MotoServer {
    child: Child,
    port: u16,
    /// Holds the server's log, shown if it fails to start.
    _dir: tempfile::TempDir,
}

/// The moto server binary, or a message saying how to get one.
fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEETDECK_MOTO_SERVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FLEETDECK_MOTO_SERVER={} does not exist; run ./scripts/test, which installs moto",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "moto_server not found: run the tests with ./scripts/test (it installs \
                 moto[server] into a virtualenv and sets FLEETDECK_MOTO_SERVER), or set \
                 FLEETDECK_MOTO_SERVER to a moto_server binary"
            )
        })
}

/// A port nobody listens on right now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl MotoServer {
    /// Starts moto on 127.0.0.1 and waits until it answers.
    pub fn start() -> Self {
        let binary = server_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let log_path = dir.path().join("moto.log");
        let log = std::fs::File::create(&log_path).expect("moto log file");
        let port = free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        server.wait_until_up(&log_path);
        server
    }

    fn wait_until_up(&mut self, log: &Path) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                panic!(
                    "moto_server did not start on port {} ({}):\n{text}",
                    self.port,
                    exited.map_or("timed out".to_string(), |s| s.to_string())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An EKS client for `region` on this server, to set the scene.
    pub fn eks(&self, region: &str) -> aws_sdk_eks::Client {
        let config = aws_sdk_eks::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_eks::Client::from_conf(config)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Already gone is fine; there is nothing else to do about a kill that fails.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One cluster to create: name, Kubernetes version and tags.
pub struct ClusterSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub tags: &'static [(&'static str, &'static str)],
}

/// Creates the clusters in `region` of `server`, as a user would with the SDK.
pub async fn create_clusters(server: &MotoServer, region: &str, clusters: &[ClusterSpec]) {
    let eks = server.eks(region);
    for spec in clusters {
        let mut req = eks
            .create_cluster()
            .name(spec.name)
            .version(spec.version)
            .role_arn(format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/eks-cluster"))
            .resources_vpc_config(
                aws_sdk_eks::types::VpcConfigRequest::builder()
                    .subnet_ids("subnet-0a1b2c3d")
                    .build(),
            );
        for (k, v) in spec.tags {
            req = req.tags(*k, *v);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("create {} in {region}: {e:?}", spec.name));
    }
}

/// A Security Hub client acting with `credentials` in `region` of this server.
pub fn securityhub_with(
    server: &MotoServer,
    region: &str,
    credentials: Credentials,
) -> aws_sdk_securityhub::Client {
    aws_sdk_securityhub::Client::from_conf(
        aws_sdk_securityhub::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(server.endpoint())
            .credentials_provider(credentials)
            .build(),
    )
}

/// Security Hub findings shaped as their producers write them.
pub mod findings {
    use std::collections::HashMap;

    use aws_sdk_securityhub::types::{
        AwsSecurityFinding, Compliance, ComplianceStatus, RecordState, Resource, ResourceDetails,
        Severity, SeverityLabel, Workflow, WorkflowStatus,
    };

    /// What every finding here has: schema, account, region, times, NEW and ACTIVE.
    fn base(
        id: &str,
        account: &str,
        region: &str,
        label: SeverityLabel,
    ) -> aws_sdk_securityhub::types::builders::AwsSecurityFindingBuilder {
        AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id(id)
            .aws_account_id(account)
            .region(region)
            .created_at("2026-12-01T08:00:00Z")
            .updated_at("2026-12-01T08:00:00Z")
            .severity(Severity::builder().label(label).build())
            .workflow(Workflow::builder().status(WorkflowStatus::New).build())
            .record_state(RecordState::Active)
    }

    /// A Kyverno result as Policy Reporter imports it: resource type `Other`, the policy
    /// and the object in `Details.Other`, the cluster in a `cluster` custom field.
    pub fn kyverno(
        id: &str,
        account: &str,
        region: &str,
        cluster: &str,
        policy: &str,
        object: (&str, &str, &str),
        label: SeverityLabel,
    ) -> AwsSecurityFinding {
        let (kind, namespace, name) = object;
        let other = HashMap::from([
            ("Source".to_string(), "kyverno".to_string()),
            ("Category".to_string(), "Best Practices".to_string()),
            ("Policy".to_string(), policy.to_string()),
            ("Rule".to_string(), policy.to_string()),
            ("Result".to_string(), "fail".to_string()),
            ("Report".to_string(), format!("{namespace}/polr-{name}")),
            ("Resource Kind".to_string(), kind.to_string()),
            ("Resource Namespace".to_string(), namespace.to_string()),
            ("Resource Name".to_string(), name.to_string()),
            ("cluster".to_string(), cluster.to_string()),
        ]);
        base(id, account, region, label)
            .product_arn(format!(
                "arn:aws:securityhub:{region}:{account}:product/{account}/default"
            ))
            .product_name("Policy Reporter")
            .company_name("Kyverno")
            .generator_id(format!("kyverno/{policy}"))
            .types("Software and Configuration Checks/Kubernetes Policies/kyverno")
            .title(format!("{policy}: {kind} {namespace}/{name}"))
            .description(format!("validation error: {policy}"))
            .compliance(
                Compliance::builder()
                    .status(ComplianceStatus::Failed)
                    .build(),
            )
            .resources(
                Resource::builder()
                    .r#type("Other")
                    .id(format!("uid-{id}"))
                    .region(region)
                    .details(ResourceDetails::builder().set_other(Some(other)).build())
                    .build(),
            )
            .build()
    }

    /// A finding of AWS's EKS.2 control on the cluster itself: tied by the cluster's ARN
    /// (`cluster_region` may differ from `region`, the aggregation region it is in).
    pub fn eks_control(
        id: &str,
        account: &str,
        region: &str,
        cluster_region: &str,
        cluster: &str,
    ) -> AwsSecurityFinding {
        base(id, account, cluster_region, SeverityLabel::High)
            .product_arn(format!(
                "arn:aws:securityhub:{region}::product/aws/securityhub"
            ))
            .generator_id("security-control/EKS.2")
            .title("EKS clusters should run on a supported Kubernetes version")
            .description("EKS.2")
            .compliance(
                Compliance::builder()
                    .status(ComplianceStatus::Failed)
                    .security_control_id("EKS.2")
                    .build(),
            )
            .resources(
                Resource::builder()
                    .r#type("AwsEksCluster")
                    .id(format!(
                        "arn:aws:eks:{cluster_region}:{account}:cluster/{cluster}"
                    ))
                    .region(cluster_region)
                    .build(),
            )
            .build()
    }

    /// Imports `findings`, 100 a call, as `BatchImportFindings` takes them.
    pub async fn import(client: &aws_sdk_securityhub::Client, findings: Vec<AwsSecurityFinding>) {
        for chunk in findings.chunks(100) {
            let out = client
                .batch_import_findings()
                .set_findings(Some(chunk.to_vec()))
                .send()
                .await
                .expect("findings imported");
            assert_eq!(out.failed_count(), Some(0), "{out:?}");
        }
    }
}

impl MotoServer {
    /// A Security Hub client for `region` on this server, with moto's test credentials.
    pub fn securityhub(&self, region: &str) -> aws_sdk_securityhub::Client {
        securityhub_with(
            self,
            region,
            Credentials::new("testing", "testing", None, None, "test"),
        )
    }
}
