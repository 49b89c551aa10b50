//! A rollout's plan: soak time per wave, gate alarms, whether EKS upgrade insights must
//! pass, and policies that must pass. Written as YAML (or JSON) in the ApplicationSet's `fleetdeck.io/plan`
//! annotation, or in a plans file mapping ApplicationSet names to plans:
//!
//! ```yaml
//! soak: 30m                       # every wave, after its last cell is healthy
//! soak_by_wave: { prod-1: 2h }    # by wave name or 1-based step number
//! gates:                          # alarms that stop the rollout
//!   - eks-apiserver-5xx-*         # CloudWatch alarm name or glob
//!   - alarm: KubeAPIErrorBudgetBurn   # Alertmanager alertname ...
//!     labels: { severity: critical }  # ... and label globs
//! insights_must_pass: true        # EKS version upgrades: hold while not PASSING
//! policies_must_pass:             # hold a wave while a cluster of it fails one of these
//!   - pdb-maxunavailable          # policy name (Security Hub or PolicyReport) or glob
//!   - check-deprecated-*
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::model::{Alert, ClusterId, Gate, GateStatus};

/// The soak time when a plan names none.
pub const DEFAULT_SOAK_SECS: i64 = 30 * 60;

/// One rollout's plan. Serializable so `fleetdeck serve` can hand its plans to the
/// consoles connected to it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Soak after each wave, seconds.
    pub soak_secs: i64,
    /// Per-wave soak, by wave name or 1-based step number as written.
    pub soak_by_wave: BTreeMap<String, i64>,
    pub gates: Vec<GatePattern>,
    pub insights_must_pass: bool,
    /// Policies (names or globs) that must pass on a wave's clusters before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies_must_pass: Vec<PolicyPattern>,
}

/// A policy name or glob of `policies_must_pass`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyPattern {
    pub pattern: String,
    matcher: GlobMatcher,
}

impl TryFrom<String> for PolicyPattern {
    type Error = String;

    fn try_from(pattern: String) -> Result<Self, String> {
        let matcher = Glob::new(&pattern)
            .map_err(|e| format!("policies_must_pass: bad pattern {pattern:?}: {e}"))?
            .compile_matcher();
        Ok(Self { pattern, matcher })
    }
}

impl From<PolicyPattern> for String {
    fn from(p: PolicyPattern) -> Self {
        p.pattern
    }
}

impl PartialEq for PolicyPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl PolicyPattern {
    /// Whether policy `name` is one that must pass.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern == name || self.matcher.is_match(name)
    }
}

/// A gate: an alarm name or glob, and label globs that must all match too.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "GateSpec", into = "GateSpec")]
pub struct GatePattern {
    pub alarm: String,
    matcher: GlobMatcher,
    labels: Vec<(String, GlobMatcher)>,
}

/// A gate as written: the patterns, uncompiled.
#[derive(PartialEq, Serialize, Deserialize)]
struct GateSpec {
    alarm: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl TryFrom<GateSpec> for GatePattern {
    type Error = String;

    fn try_from(spec: GateSpec) -> Result<Self, String> {
        Self::new(&spec.alarm, &spec.labels)
    }
}

impl From<GatePattern> for GateSpec {
    fn from(gate: GatePattern) -> Self {
        Self {
            labels: gate
                .labels
                .iter()
                .map(|(k, m)| (k.clone(), m.glob().glob().to_string()))
                .collect(),
            alarm: gate.alarm,
        }
    }
}

impl PartialEq for GatePattern {
    fn eq(&self, other: &Self) -> bool {
        GateSpec::from(self.clone()) == GateSpec::from(other.clone())
    }
}

impl GatePattern {
    fn new(alarm: &str, labels: &BTreeMap<String, String>) -> Result<Self, String> {
        let glob = |s: &str| {
            Glob::new(s)
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("gate {alarm:?}: bad pattern {s:?}: {e}"))
        };
        Ok(Self {
            alarm: alarm.to_string(),
            matcher: glob(alarm)?,
            labels: labels
                .iter()
                .map(|(k, v)| Ok((k.clone(), glob(v)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// Whether this firing alert is this gate.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.matcher.is_match(&alert.name)
            && self.labels.iter().all(|(key, glob)| {
                alert
                    .labels
                    .get(key)
                    .is_some_and(|value| glob.is_match(value))
            })
    }
}

impl Plan {
    /// A plan with only a soak time.
    pub fn with_soak(soak_secs: i64) -> Self {
        Self {
            soak_secs,
            ..Self::default()
        }
    }

    /// Reads a plan from YAML or JSON text; `origin` names where it came from in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let raw: RawPlan =
            serde_norway::from_str(text).map_err(|e| format!("{origin}: {}", yaml_error(&e)))?;
        raw.into_plan().map_err(|e| format!("{origin}: {e}"))
    }

    /// The soak of wave `name`, step `step` (1-based).
    pub fn soak_for(&self, name: &str, step: usize) -> i64 {
        self.soak_by_wave
            .get(name)
            .or_else(|| self.soak_by_wave.get(&step.to_string()))
            .copied()
            .unwrap_or(self.soak_secs)
    }

    /// The gates as the rollout model shows them, status unknown until computed.
    pub fn model_gates(&self) -> Vec<Gate> {
        self.gates
            .iter()
            .map(|g| Gate {
                alarm: g.alarm.clone(),
                status: GateStatus::Ok,
            })
            .collect()
    }

    /// The gate alarms firing now, on a known cluster: (alarm name, cluster), by cluster
    /// then name, so the cluster a gate names does not depend on the order alerts came in.
    pub fn firing<'a>(
        &self,
        alerts: impl IntoIterator<Item = &'a Alert>,
    ) -> Vec<(String, ClusterId)> {
        let mut firing: Vec<(String, ClusterId)> = alerts
            .into_iter()
            .filter(|a| a.is_firing())
            .filter(|a| self.gates.iter().any(|g| g.matches(a)))
            .filter_map(|a| Some((a.name.clone(), a.cluster.clone()?)))
            .collect();
        firing.sort_unstable_by(|(x, a), (y, b)| (a, x).cmp(&(b, y)));
        firing.dedup();
        firing
    }
}

/// The plans file's plan for ApplicationSet `namespace/name`: keyed by `namespace/name`,
/// else by `name`.
pub fn find<'a>(
    plans: &'a BTreeMap<String, Plan>,
    namespace: &str,
    name: &str,
) -> Option<&'a Plan> {
    plans
        .get(&format!("{namespace}/{name}"))
        .or_else(|| plans.get(name))
}

/// Reads a plans file: a map from ApplicationSet name (`name` or `namespace/name`) to
/// its plan.
pub fn load_file(path: &Path) -> Result<BTreeMap<String, Plan>, String> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{origin}: {e}"))?;
    let raw: BTreeMap<String, RawPlan> =
        serde_norway::from_str(&text).map_err(|e| format!("{origin}: {}", yaml_error(&e)))?;
    raw.into_iter()
        .map(|(name, plan)| {
            let plan = plan
                .into_plan()
                .map_err(|e| format!("{origin}: plan {name}: {e}"))?;
            Ok((name, plan))
        })
        .collect()
}

fn yaml_error(e: &serde_norway::Error) -> String {
    match e.location() {
        Some(at) => format!("line {}: {e}", at.line()),
        None => e.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    soak: Option<String>,
    #[serde(default)]
    soak_by_wave: BTreeMap<String, String>,
    #[serde(default)]
    gates: Vec<RawGate>,
    #[serde(default)]
    insights_must_pass: bool,
    #[serde(default)]
    policies_must_pass: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawGate {
    Name(String),
    Full {
        alarm: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    },
}

impl RawPlan {
    fn into_plan(self) -> Result<Plan, String> {
        let soak_secs = match &self.soak {
            Some(s) => parse_duration(s).map_err(|e| format!("soak: {e}"))?,
            None => DEFAULT_SOAK_SECS,
        };
        let soak_by_wave = self
            .soak_by_wave
            .iter()
            .map(|(wave, s)| {
                let secs = parse_duration(s).map_err(|e| format!("soak_by_wave.{wave}: {e}"))?;
                Ok((wave.clone(), secs))
            })
            .collect::<Result<_, String>>()?;
        let gates = self
            .gates
            .iter()
            .map(|g| match g {
                RawGate::Name(alarm) => GatePattern::new(alarm, &BTreeMap::new()),
                RawGate::Full { alarm, labels } => GatePattern::new(alarm, labels),
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            soak_secs,
            soak_by_wave,
            gates,
            insights_must_pass: self.insights_must_pass,
            policies_must_pass: self
                .policies_must_pass
                .into_iter()
                .map(PolicyPattern::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The longest duration a plan (or `--interval`) may give: a soak is added to a
/// timestamp, and a year is longer than any real soak.
pub const MAX_DURATION_SECS: i64 = 365 * 86_400;

/// `90s`, `30m`, `2h`, `1h30m`, or `0`; at most [`MAX_DURATION_SECS`].
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    let mut total = 0i64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("{text:?} is not a duration (like 90s, 30m, 2h)")),
        };
        let n: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (like 90s, 30m, 2h)"))?;
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .filter(|total| *total <= MAX_DURATION_SECS)
            .ok_or_else(|| format!("{text:?} is longer than a year"))?;
        number.clear();
    }
    if !number.is_empty() || text.is_empty() {
        return Err(format!(
            "{text:?} is not a duration: give a unit (like 90s, 30m, 2h)"
        ));
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{AlertKey, AlertSource, AlertState, Severity, Timestamp};

    fn alert(name: &str, labels: &[(&str, &str)], firing: bool) -> Alert {
        Alert {
            key: AlertKey(name.into()),
            source: AlertSource::Cloudwatch,
            cluster: Some(ClusterId::new("a", "us-east-1", "prod-1")),
            name: name.into(),
            severity: Severity::Critical,
            state: if firing {
                AlertState::Firing
            } else {
                AlertState::Resolved
            },
            first_seen: Timestamp::UNIX_EPOCH,
            last_change: Timestamp::UNIX_EPOCH,
            summary: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            runbook_url: None,
            ack: None,
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_duration("30").unwrap_err().contains("give a unit"));
        assert!(
            parse_duration("3 weeks")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    /// Found by tests/fuzz_parsers.rs: `n * unit` overflowed (a panic in debug builds),
    /// and a duration that fit an i64 still panicked later, added to a timestamp.
    #[test]
    fn durations_too_long_for_a_timestamp_are_errors_not_panics() {
        for text in [
            "110000000000000d",
            "9223372036854775807s",
            "9999999999999999h",
            "366d",
        ] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains("longer than a year"), "{text}: {e}");
        }
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION_SECS));
        assert_eq!(parse_duration("364d23h60m"), Ok(MAX_DURATION_SECS));
        let e = Plan::parse(
            "soak: 0\nsoak_by_wave: { \"0\": \"110000000000000d\" }\n",
            "annotation",
        )
        .unwrap_err();
        assert!(
            e.contains("soak_by_wave.0") && e.contains("longer than a year"),
            "{e}"
        );
    }

    #[test]
    fn a_plan_reads_soaks_gates_and_insights() {
        let plan = Plan::parse(
            "soak: 20m\nsoak_by_wave: { prod-1: 2h, \"4\": 1h }\ngates:\n  - eks-apiserver-5xx-*\n  - alarm: KubeAPIErrorBudgetBurn\n    labels: { severity: crit* }\ninsights_must_pass: true\n",
            "annotation",
        )
        .unwrap();
        assert_eq!(plan.soak_for("staging", 3), 1200);
        assert_eq!(plan.soak_for("prod-1", 4), 7200);
        assert_eq!(plan.soak_for("prod-2", 4), 3600);
        assert!(plan.insights_must_pass);
        let firing = plan.firing(&[
            alert("eks-apiserver-5xx-high", &[], true),
            alert("eks-apiserver-5xx-low", &[], false),
            alert("KubeAPIErrorBudgetBurn", &[("severity", "critical")], true),
            alert("KubeAPIErrorBudgetBurn", &[("severity", "warning")], true),
            alert("NodeNotReady", &[], true),
        ]);
        let names: Vec<&str> = firing.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["KubeAPIErrorBudgetBurn", "eks-apiserver-5xx-high"]);
        assert_eq!(plan.model_gates().len(), 2);
        // The same alerts in another order name the same gates in the same order.
        let reversed = plan.firing(&[
            alert("NodeNotReady", &[], true),
            alert("KubeAPIErrorBudgetBurn", &[("severity", "critical")], true),
            alert("eks-apiserver-5xx-high", &[], true),
        ]);
        assert_eq!(reversed, firing);
    }

    #[test]
    fn a_plan_reads_the_policies_that_must_pass_and_says_what_is_wrong() {
        let plan = Plan::parse(
            "policies_must_pass:\n  - pdb-maxunavailable\n  - check-deprecated-*\n",
            "annotation",
        )
        .unwrap();
        let names: Vec<&str> = plan
            .policies_must_pass
            .iter()
            .map(|p| p.pattern.as_str())
            .collect();
        assert_eq!(names, ["pdb-maxunavailable", "check-deprecated-*"]);
        let must = |name: &str| plan.policies_must_pass.iter().any(|p| p.matches(name));
        assert!(must("pdb-maxunavailable") && must("check-deprecated-apis"));
        assert!(!must("require-run-as-nonroot"));
        // A plan is handed to connected consoles as JSON: the same plan comes back.
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        let e = Plan::parse("policies_must_pass: [\"[oops\"]\n", "annotation").unwrap_err();
        assert!(
            e.contains("policies_must_pass") && e.contains("[oops"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_plan_names_the_field_and_line() {
        let e = Plan::parse("soak: soon\n", "appset argocd/addons").unwrap_err();
        assert!(e.starts_with("appset argocd/addons: soak:"), "{e}");
        let e = Plan::parse("soak: 1m\nsoke: 2m\n", "plans.yaml").unwrap_err();
        assert!(e.contains("line 2") && e.contains("soke"), "{e}");
        let e = Plan::parse("gates: [\"[oops\"]\n", "p").unwrap_err();
        assert!(e.contains("bad pattern"), "{e}");
    }

    #[test]
    fn a_plans_file_maps_application_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.yaml");
        std::fs::write(&path, "addons:\n  soak: 10m\nargocd/cni:\n  soak: 1h\n").unwrap();
        let plans = load_file(&path).unwrap();
        assert_eq!(plans["addons"].soak_secs, 600);
        assert_eq!(plans["argocd/cni"].soak_secs, 3600);
        std::fs::write(&path, "addons:\n  soak: 10\n").unwrap();
        let e = load_file(&path).unwrap_err();
        assert!(e.contains("plans.yaml: plan addons: soak:"), "{e}");
    }
}
