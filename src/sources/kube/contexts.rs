//! Which kubeconfig context reaches which cluster.
//!
//! In order: the `[kubernetes.contexts]` table; a context whose cluster entry (or the
//! context itself) is named by the cluster's EKS ARN, as `aws eks update-kubeconfig`
//! writes it; a context whose cluster's `server` is the cluster's endpoint. Several matches
//! by the same rule: the first in the file wins, so the choice is stable.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kube::config::{Kubeconfig, KubeconfigError};

use crate::model::ClusterId;
use crate::sources::ClusterTarget;

/// The contexts of the user's kubeconfig, and the explicit mapping from the config file.
#[derive(Clone, Debug, Default)]
pub struct Contexts {
    kubeconfig: Kubeconfig,
    explicit: BTreeMap<String, ClusterId>,
}

impl Contexts {
    /// Contexts from `kubeconfig` with the `[kubernetes.contexts]` table. Table entries
    /// naming a context the file lacks are logged and ignored.
    pub fn new(kubeconfig: Kubeconfig, explicit: &BTreeMap<String, ClusterId>) -> Self {
        let mut kept = BTreeMap::new();
        for (context, id) in explicit {
            if kubeconfig.contexts.iter().any(|c| &c.name == context) {
                kept.insert(context.clone(), id.clone());
            } else {
                tracing::warn!(%context, cluster = %id, "[kubernetes.contexts] names a context the kubeconfig does not have");
            }
        }
        Self {
            kubeconfig,
            explicit: kept,
        }
    }

    /// The kubeconfig the contexts come from.
    pub fn kubeconfig(&self) -> &Kubeconfig {
        &self.kubeconfig
    }

    /// How many contexts the kubeconfig has.
    pub fn len(&self) -> usize {
        self.kubeconfig.contexts.len()
    }

    /// True when there is no kubeconfig context at all.
    pub fn is_empty(&self) -> bool {
        self.kubeconfig.contexts.is_empty()
    }

    /// The context that reaches `target`, if any.
    pub fn context_for(&self, target: &ClusterTarget) -> Option<&str> {
        if let Some((context, _)) = self.explicit.iter().find(|(_, id)| **id == target.id) {
            return Some(context);
        }
        let contexts = || {
            self.kubeconfig
                .contexts
                .iter()
                .filter_map(|c| c.context.as_ref().map(|ctx| (c.name.as_str(), ctx)))
        };
        if !target.arn.is_empty() {
            let by_arn =
                contexts().find(|(name, ctx)| *name == target.arn || ctx.cluster == target.arn);
            if let Some((name, _)) = by_arn {
                return Some(name);
            }
        }
        let endpoint = target.endpoint.as_deref().map(normalize_server)?;
        contexts()
            .find(|(_, ctx)| {
                self.server_of(&ctx.cluster)
                    .is_some_and(|server| normalize_server(server) == endpoint)
            })
            .map(|(name, _)| name)
    }

    fn server_of(&self, cluster: &str) -> Option<&str> {
        self.kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster)?
            .cluster
            .as_ref()?
            .server
            .as_deref()
    }
}

/// `https://ABC.gr7.us-east-1.eks.amazonaws.com/` and `https://abc.gr7...com` are the same
/// server: hosts are case-insensitive and a trailing slash or default port means nothing.
fn normalize_server(server: &str) -> String {
    let lower = server.trim().trim_end_matches('/').to_ascii_lowercase();
    lower
        .strip_suffix(":443")
        .filter(|_| lower.starts_with("https://"))
        .map_or_else(|| lower.clone(), str::to_string)
}

/// Why the kubeconfig could not be used (a missing file is not an error: no contexts).
#[derive(Debug, thiserror::Error)]
#[error("{}: {detail}", path.display())]
pub struct KubeconfigLoadError {
    /// The file that failed.
    pub path: PathBuf,
    /// What was wrong with it.
    pub detail: String,
}

/// Reads the kubeconfig: `configured` if set, else every file `$KUBECONFIG` lists, else
/// `~/.kube/config`. Missing files contribute nothing, as with kubectl.
pub fn load_kubeconfig(configured: Option<&Path>) -> Result<Kubeconfig, KubeconfigLoadError> {
    load_kubeconfig_with(
        configured,
        std::env::var_os("KUBECONFIG"),
        std::env::home_dir(),
    )
}

/// [`load_kubeconfig`] with the environment given, for tests.
pub fn load_kubeconfig_with(
    configured: Option<&Path>,
    env: Option<OsString>,
    home: Option<PathBuf>,
) -> Result<Kubeconfig, KubeconfigLoadError> {
    let paths: Vec<PathBuf> = match (configured, env) {
        (Some(path), _) => vec![expand_home(path, home.as_deref())],
        (None, Some(list)) if !list.is_empty() => std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        (None, _) => home
            .map(|h| vec![h.join(".kube").join("config")])
            .unwrap_or_default(),
    };
    let mut merged = Kubeconfig::default();
    for path in paths {
        let config = match Kubeconfig::read_from(&path) {
            Ok(config) => config,
            Err(KubeconfigError::ReadConfig(e, _)) if e.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => {
                return Err(KubeconfigLoadError {
                    path,
                    detail: super::token::error_chain(&e),
                });
            }
        };
        merged = merged.merge(config).map_err(|e| KubeconfigLoadError {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    }
    Ok(merged)
}

/// `~/x` is `x` in the home directory; the config file keeps it as written.
fn expand_home(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing;
    use super::*;

    /// What `aws eks update-kubeconfig` writes, plus a hand-made context by server, and an
    /// explicitly mapped one.
    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01
clusters:
- name: arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01
  cluster:
    server: https://AAA.gr7.us-east-1.eks.amazonaws.com
    certificate-authority-data: LS0tLS1CRUdJTg==
- name: edge
  cluster:
    server: https://bbb.yl4.eu-west-1.eks.amazonaws.com/
- name: lab
  cluster:
    server: https://10.0.0.1:6443
contexts:
- name: arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01
  context:
    cluster: arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01
    user: arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01
- name: edge-admin
  context:
    cluster: edge
    user: admin
- name: lab
  context:
    cluster: lab
    user: admin
users:
- name: admin
  user:
    token: abc
"#;

    fn contexts(explicit: &[(&str, ClusterId)]) -> Contexts {
        let explicit = explicit
            .iter()
            .map(|(c, id)| (c.to_string(), id.clone()))
            .collect();
        Contexts::new(Kubeconfig::from_yaml(KUBECONFIG).unwrap(), &explicit)
    }

    #[test]
    fn a_context_is_found_by_the_eks_arn() {
        let mut target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        target.endpoint = Some("https://elsewhere.example".into());
        assert_eq!(
            contexts(&[]).context_for(&target),
            Some("arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-api-01")
        );
    }

    #[test]
    fn a_context_is_found_by_its_server() {
        let mut target = testing::target("prod", "eu-west-1", "edge");
        target.endpoint = Some("https://BBB.yl4.eu-west-1.eks.amazonaws.com:443".into());
        assert_eq!(contexts(&[]).context_for(&target), Some("edge-admin"));
        target.endpoint = Some("https://ccc.yl4.eu-west-1.eks.amazonaws.com".into());
        assert_eq!(contexts(&[]).context_for(&target), None);
    }

    #[test]
    fn the_explicit_table_wins_and_names_only_contexts_that_exist() {
        let id = ClusterId::new("lab", "us-west-2", "lab-1");
        let mut target = testing::target("lab", "us-west-2", "lab-1");
        target.endpoint = None;
        let mapped = contexts(&[("lab", id.clone()), ("gone", id.clone())]);
        assert_eq!(mapped.context_for(&target), Some("lab"));
        // The table outranks the ARN.
        let prod = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let mapped = contexts(&[("edge-admin", prod.id.clone())]);
        assert_eq!(mapped.context_for(&prod), Some("edge-admin"));
        // A table entry for a context the file lacks is ignored.
        let mapped = contexts(&[("gone", id)]);
        assert_eq!(mapped.context_for(&target), None);
    }

    #[test]
    fn no_kubeconfig_means_no_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        let empty = load_kubeconfig_with(None, None, Some(home.clone())).unwrap();
        assert!(empty.contexts.is_empty());
        let missing = dir.path().join("nope");
        let empty = load_kubeconfig_with(Some(&missing), None, Some(home.clone())).unwrap();
        assert!(empty.contexts.is_empty());
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        assert_eq!(
            Contexts::new(empty, &BTreeMap::new()).context_for(&target),
            None
        );
    }

    #[test]
    fn kubeconfig_comes_from_the_config_then_the_environment_then_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_path_buf();
        std::fs::create_dir_all(home.join(".kube")).unwrap();
        std::fs::write(home.join(".kube/config"), KUBECONFIG).unwrap();
        let one = |name: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters: []\ncontexts:\n- name: {name}\n  context:\n    cluster: x\n"
            )
        };
        std::fs::write(home.join("a.yaml"), one("from-a")).unwrap();
        std::fs::write(home.join("b.yaml"), one("from-b")).unwrap();
        let names = |k: &Kubeconfig| {
            k.contexts
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };

        let from_home = load_kubeconfig_with(None, None, Some(home.clone())).unwrap();
        assert_eq!(names(&from_home).len(), 3);

        // $KUBECONFIG lists files to merge; a missing one is skipped, as kubectl does.
        let list = std::env::join_paths([
            home.join("a.yaml"),
            home.join("missing.yaml"),
            home.join("b.yaml"),
        ])
        .unwrap();
        let from_env = load_kubeconfig_with(None, Some(list.clone()), Some(home.clone())).unwrap();
        assert_eq!(names(&from_env), ["from-a", "from-b"]);

        // The config file's path wins, with `~` as the home directory.
        let configured =
            load_kubeconfig_with(Some(Path::new("~/b.yaml")), Some(list), Some(home.clone()))
                .unwrap();
        assert_eq!(names(&configured), ["from-b"]);

        std::fs::write(home.join("bad.yaml"), "contexts: 5\n").unwrap();
        let e = load_kubeconfig_with(Some(&home.join("bad.yaml")), None, Some(home.clone()))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", home.join("bad.yaml").display())),
            "{e}"
        );
    }
}
