//! What each watch's errors say about the connection: credentials rejected, a resource
//! this user may not read, or an API server that cannot be reached.
//!
//! kube-runtime's watcher reports errors but not recoveries: a re-list that succeeds
//! says so, but a watch that restarts cleanly emits nothing until an object changes. So
//! a watch's problem clears when that watch next delivers, or when it has not been
//! reported again for [`PROBLEM_TTL`]: a failing watch retries (and fails again, and
//! reports again) at least that often. Answers from other watches prove nothing: their
//! streams may have been opened before the token expired or the network broke.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use kube::runtime::watcher;

use crate::model::{Connection, Timestamp, WarningEvent};

/// The resources watched in a cluster, in the order their problems are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Kind {
    Nodes,
    Pods,
    Events,
    PodDisruptionBudgets,
    Deployments,
    PolicyReports,
    ClusterPolicyReports,
    Reports,
    ClusterReports,
}

impl Kind {
    /// The resource's plural name, as RBAC and the API server's messages spell it.
    pub(super) fn plural(self) -> &'static str {
        match self {
            Self::Nodes => "nodes",
            Self::Pods => "pods",
            Self::Events => "events",
            Self::PodDisruptionBudgets => "poddisruptionbudgets",
            Self::Deployments => "deployments",
            Self::PolicyReports => "policyreports",
            Self::ClusterPolicyReports => "clusterpolicyreports",
            Self::Reports => "reports",
            Self::ClusterReports => "clusterreports",
        }
    }

    /// A policy report resource: a cluster without its CRD is not a problem.
    pub(super) fn is_policy_report(self) -> bool {
        matches!(
            self,
            Self::PolicyReports | Self::ClusterPolicyReports | Self::Reports | Self::ClusterReports
        )
    }
}

/// Why a watch is not delivering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Problem {
    /// 401: the token was rejected. The connection layer refreshes it; the watch retries.
    Unauthorized,
    /// 403: this user may not list or watch the resource. `since` is the first refusal,
    /// so that retries do not make the note look new.
    Forbidden { message: String, since: Timestamp },
    /// Timeouts, resets, TLS, 5xx: the watch backs off and retries.
    Unreachable(String),
}

/// What an error means for the watch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Problem(Problem),
    /// 410 Gone: the watch fell out of the API server's window; the watcher re-lists by
    /// itself, and the old picture stands until the re-list completes.
    Expired,
    /// Worth a log line, not a change of state.
    Transient(String),
}

/// Whether the error is the API server saying it serves no such resource (404 on the
/// list): a CRD that is not installed.
pub(super) fn is_not_served(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 404
    )
}

/// Classifies one watcher error, at `now`.
pub(super) fn classify(error: &watcher::Error, now: Timestamp) -> Verdict {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => by_status(status, now),
            other => Verdict::Problem(Problem::Unreachable(other.to_string())),
        },
        watcher::Error::WatchError(status) => match by_status(status, now) {
            // An in-stream error other than 401/403/410 leaves the stream running.
            Verdict::Problem(Problem::Unreachable(m)) => Verdict::Transient(m),
            verdict => verdict,
        },
        watcher::Error::NoResourceVersion => Verdict::Transient(error.to_string()),
    }
}

fn by_status(status: &kube::core::Status, now: Timestamp) -> Verdict {
    match status.code {
        401 => Verdict::Problem(Problem::Unauthorized),
        403 => Verdict::Problem(Problem::Forbidden {
            message: status.message.clone(),
            since: now,
        }),
        410 => Verdict::Expired,
        code => Verdict::Problem(Problem::Unreachable(format!(
            "API server answered {code} {}: {}",
            status.reason, status.message
        ))),
    }
}

/// How long a problem stands without being reported again. kube-runtime's default
/// backoff retries at least every 60 s (30 s, doubled at most by jitter); a request that
/// fails may take a client timeout more to say so.
pub(super) const PROBLEM_TTL: Duration = Duration::from_secs(150);

/// A watch's problem and when it was last reported.
struct Failing {
    problem: Problem,
    reported: Instant,
}

/// The problem of every watch that has one.
#[derive(Default)]
pub(super) struct Access {
    watches: BTreeMap<Kind, Option<Failing>>,
}

impl Access {
    /// Starts tracking `kind` (problem-free until it reports otherwise).
    pub(super) fn watching(&mut self, kind: Kind) {
        self.watches.insert(kind, None);
    }

    /// Stops tracking `kind` (its resource is not served); true if it had a problem.
    pub(super) fn not_watching(&mut self, kind: Kind) -> bool {
        self.watches.remove(&kind).flatten().is_some()
    }

    /// `kind` reported `problem` at `at`; true if what the user sees changes.
    pub(super) fn failed(&mut self, kind: Kind, problem: Problem, at: Instant) -> bool {
        let Some(slot) = self.watches.get_mut(&kind) else {
            return false;
        };
        let changed = match (slot.as_ref().map(|f| &f.problem), &problem) {
            // A repeated refusal keeps its first time.
            (Some(Problem::Forbidden { message: old, .. }), Problem::Forbidden { message, .. }) => {
                old != message
            }
            (old, new) => old != Some(new),
        };
        match slot {
            Some(failing) if !changed => failing.reported = at,
            _ => {
                *slot = Some(Failing {
                    problem,
                    reported: at,
                })
            }
        }
        changed
    }

    /// The API server answered `kind`; true if its problem cleared.
    pub(super) fn heard(&mut self, kind: Kind) -> bool {
        self.watches.get_mut(&kind).and_then(Option::take).is_some()
    }

    /// Clears the problems not reported again since `PROBLEM_TTL` before `now`: their
    /// watches recovered silently. True if any cleared.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for slot in self.watches.values_mut() {
            if slot
                .as_ref()
                .is_some_and(|f| now.duration_since(f.reported) >= PROBLEM_TTL)
            {
                *slot = None;
                changed = true;
            }
        }
        changed
    }

    fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.watches.values().flatten().map(|f| &f.problem)
    }

    /// The connection as the cluster view shows it: rejected credentials affect every
    /// watch, so they always show; otherwise the connection is only unavailable when no
    /// watch of the cluster's own resources delivers (policy reports are extra: their
    /// answering says nothing about nodes and pods).
    pub(super) fn connection(&self) -> Connection {
        if self.problems().any(|p| *p == Problem::Unauthorized) {
            return Connection::Unavailable {
                reason: "credentials rejected (401)".into(),
            };
        }
        let core = || self.watches.iter().filter(|(k, _)| !k.is_policy_report());
        let problems: Vec<&Problem> = core()
            .filter_map(|(_, f)| f.as_ref().map(|f| &f.problem))
            .collect();
        if problems.is_empty() || problems.len() < core().count() {
            return Connection::Connected;
        }
        let unreachable = problems.iter().find_map(|p| match p {
            Problem::Unreachable(m) => Some(m.clone()),
            _ => None,
        });
        let reason = unreachable.unwrap_or_else(|| {
            let first = problems.iter().find_map(|p| match p {
                Problem::Forbidden { message, .. } => Some(message.as_str()),
                _ => None,
            });
            format!("forbidden (403): {}", first.unwrap_or_default())
        });
        Connection::Unavailable { reason }
    }

    /// One note per forbidden watch while others still deliver, shown with the cluster's
    /// warning events: the user sees why, say, no crashing pods are listed. When every
    /// watch is forbidden the connection says it instead.
    pub(super) fn notes(&self) -> Vec<WarningEvent> {
        if matches!(self.connection(), Connection::Unavailable { .. }) {
            return Vec::new();
        }
        self.watches
            .iter()
            .filter_map(|(kind, f)| match f.as_ref().map(|f| &f.problem) {
                Some(Problem::Forbidden { message, since }) => Some(WarningEvent {
                    namespace: String::new(),
                    object: format!("fleetdeck/watch-{}", kind.plural()),
                    reason: "Forbidden".into(),
                    message: message.clone(),
                    count: 1,
                    last_seen: Some(*since),
                }),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    fn forbidden(message: &str) -> Problem {
        Problem::Forbidden {
            message: message.into(),
            since: t(),
        }
    }

    #[test]
    fn forbidden_everywhere_is_unavailable_elsewhere_a_note() {
        let mut a = Access::default();
        a.watching(Kind::Nodes);
        a.watching(Kind::Pods);
        let at = Instant::now();
        assert!(a.failed(Kind::Pods, forbidden("pods is forbidden"), at));
        assert_eq!(a.connection(), Connection::Connected);
        assert_eq!(a.notes().len(), 1);
        assert!(a.failed(Kind::Nodes, forbidden("nodes is forbidden"), at));
        assert_eq!(
            a.connection(),
            Connection::Unavailable {
                reason: "forbidden (403): nodes is forbidden".into()
            }
        );
        assert!(a.notes().is_empty());
        // Nodes answering clears only the nodes refusal.
        assert!(a.heard(Kind::Nodes));
        assert_eq!(a.connection(), Connection::Connected);
        assert_eq!(a.notes().len(), 1);
    }

    #[test]
    fn repeated_refusal_is_not_a_change() {
        let mut a = Access::default();
        a.watching(Kind::Pods);
        let at = Instant::now();
        assert!(a.failed(Kind::Pods, forbidden("no"), at));
        assert!(!a.failed(Kind::Pods, forbidden("no"), at + PROBLEM_TTL / 2));
        // Reported again halfway: it stands a whole TTL from then.
        assert!(!a.expire(at + PROBLEM_TTL));
        assert!(a.expire(at + PROBLEM_TTL / 2 + PROBLEM_TTL));
        assert_eq!(a.notes(), vec![]);
    }

    #[test]
    fn another_watch_answering_does_not_clear_rejected_credentials() {
        let mut a = Access::default();
        a.watching(Kind::Nodes);
        a.watching(Kind::Pods);
        assert!(a.failed(Kind::Nodes, Problem::Unauthorized, Instant::now()));
        // The pods stream was opened with the old token and still delivers.
        assert!(!a.heard(Kind::Pods));
        assert_eq!(
            a.connection(),
            Connection::Unavailable {
                reason: "credentials rejected (401)".into()
            }
        );
        assert!(a.heard(Kind::Nodes));
        assert_eq!(a.connection(), Connection::Connected);
    }
}
