//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics, so
//! that of several guard replicas exactly one acts.
//!
//! Each round a replica reads the Lease `fleetdeck-guard` in the hub's Argo CD namespace
//! and [`decide`]s: no Lease -> create it (POST; 409 AlreadyExists means another replica
//! won); held by me -> renew (PUT with the `resourceVersion` read); held by another whose
//! `renewTime + leaseDurationSeconds` has passed, or by nobody -> take over with
//! `leaseTransitions + 1` (PUT; 409 Conflict means another replica won); otherwise follow.
//!
//! A leader acts only within [`ACT_WINDOW_SECS`] of the moment it *sent* its last
//! successful renewal, ten seconds short of the Lease's expiry: a leader that cannot renew
//! (API server unreachable, lost the Lease) stops acting before anyone else may take over,
//! with room for clock skew between replicas. Never two acting guards.

use chrono::Duration;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff;
use kube::api::{Api, PostParams};

use crate::model::Timestamp;

/// The Lease's name, in the hub's Argo CD namespace.
pub const LEASE_NAME: &str = "fleetdeck-guard";
/// How long a Lease is valid after its last renewal.
pub const LEASE_DURATION_SECS: i64 = 30;
/// How often the leader renews (and a follower looks again).
pub const RENEW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How long after sending a successful renewal the leader may act: the lease duration
/// less a 10 s margin for clock skew and writes in flight.
pub const ACT_WINDOW_SECS: i64 = LEASE_DURATION_SECS - 10;

/// What a Lease says, as far as the election is concerned.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Empty when nobody holds it (released).
    pub holder: String,
    pub acquired: Option<Timestamp>,
    pub renewed: Option<Timestamp>,
    pub duration_secs: i64,
    pub transitions: i32,
}

/// What to do about the Lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// There is no Lease: create one held by me.
    Create,
    /// I hold it: renew it.
    Renew,
    /// Nobody holds it or the holder let it expire: take it, counting a transition.
    TakeOver { transitions: i32 },
    /// Someone else holds it until `until`.
    Follow { holder: String, until: Timestamp },
}

/// client-go's decision table, at `now`, for candidate `me`.
pub fn decide(current: Option<&Record>, me: &str, now: Timestamp) -> Decision {
    let Some(record) = current else {
        return Decision::Create;
    };
    if record.holder == me {
        return Decision::Renew;
    }
    let take_over = Decision::TakeOver {
        transitions: record.transitions.saturating_add(1),
    };
    if record.holder.is_empty() {
        return take_over;
    }
    // No renewal time at all reads as expired, as in client-go.
    match record.renewed.or(record.acquired) {
        Some(renewed) => {
            let until = renewed + Duration::seconds(record.duration_secs);
            // Valid while strictly before its end, as client-go reads it.
            if now >= until {
                take_over
            } else {
                Decision::Follow {
                    holder: record.holder.clone(),
                    until,
                }
            }
        }
        None => take_over,
    }
}

/// The election's result for one round.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    /// I hold the Lease; I may act until `act_until`.
    Leading { act_until: Timestamp },
    /// Someone else does (`None`: another replica won a race just now).
    Following { holder: Option<String> },
}

/// The Lease of one candidate.
pub struct LeaseLock {
    api: Api<Lease>,
    namespace: String,
    identity: String,
}

impl LeaseLock {
    /// The Lease `fleetdeck-guard` in `namespace`, contended for as `identity`.
    pub fn new(client: kube::Client, namespace: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            identity: identity.to_string(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn what(&self) -> String {
        format!(
            "Lease {}/{LEASE_NAME} (coordination.k8s.io/v1)",
            self.namespace
        )
    }

    /// One round of the election at `now`: read, decide, write.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Term, String> {
        let what = self.what();
        let current = self.read().await?;
        let record = current.as_ref().map(record_of);
        let leading = Term::Leading {
            act_until: now + Duration::seconds(ACT_WINDOW_SECS),
        };
        let spec = match decide(record.as_ref(), &self.identity, now) {
            Decision::Follow { holder, .. } => {
                return Ok(Term::Following {
                    holder: Some(holder),
                });
            }
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.held_spec(now, now, 0)),
                };
                return match self.api.create(&write_params(), &lease).await {
                    Ok(_) => Ok(leading),
                    // Another replica created it between our read and our write.
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        Ok(Term::Following { holder: None })
                    }
                    Err(e) => Err(format!("creating {what}: {}", describe(&e))),
                };
            }
            Decision::Renew => {
                // Renewing keeps when it was acquired and how often it changed hands.
                let acquired = record.as_ref().and_then(|r| r.acquired).unwrap_or(now);
                let transitions = record.as_ref().map_or(0, |r| r.transitions);
                self.held_spec(acquired, now, transitions)
            }
            Decision::TakeOver { transitions } => self.held_spec(now, now, transitions),
        };
        match self.replace(current, spec).await {
            Ok(()) => Ok(leading),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Term::Following { holder: None }),
            Err(e) => Err(format!("updating {what}: {}", describe(&e))),
        }
    }

    /// Gives the Lease up if I hold it, so a successor takes over at once rather than
    /// after it expires: no holder, a one-second duration. Returns whether it was mine.
    pub async fn release(&self, now: Timestamp) -> Result<bool, String> {
        let what = self.what();
        let current = self.read().await?;
        let Some(record) = current.as_ref().map(record_of) else {
            return Ok(false);
        };
        if record.holder != self.identity {
            return Ok(false);
        }
        let spec = LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(micro_time(now)),
            renew_time: Some(micro_time(now)),
            lease_transitions: Some(record.transitions),
            ..LeaseSpec::default()
        };
        self.replace(current, spec)
            .await
            .map(|()| true)
            .map_err(|e| format!("releasing {what}: {}", describe(&e)))
    }

    /// The Lease as it is now; `None` when there is none (404).
    async fn read(&self) -> Result<Option<Lease>, String> {
        self.api
            .get_opt(LEASE_NAME)
            .await
            .map_err(|e| format!("reading {}: {}", self.what(), describe(&e)))
    }

    fn held_spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION_SECS as i32),
            acquire_time: Some(micro_time(acquired)),
            renew_time: Some(micro_time(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// PUT `spec` onto the Lease as read, with its `resourceVersion`: the API server
    /// answers 409 Conflict if anyone wrote it since.
    async fn replace(&self, current: Option<Lease>, spec: LeaseSpec) -> Result<(), kube::Error> {
        let mut lease = current.unwrap_or_default();
        lease.metadata.name = Some(LEASE_NAME.into());
        lease.metadata.namespace = Some(self.namespace.clone());
        lease.spec = Some(spec);
        self.api
            .replace(LEASE_NAME, &write_params(), &lease)
            .await
            .map(|_| ())
    }
}

/// Creates and replaces by the guard, recorded as fleetdeck's (`managedFields`).
pub(crate) fn write_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(crate::sources::kube::connect::FIELD_MANAGER.into()),
    }
}

/// The election's view of a Lease.
pub fn record_of(lease: &Lease) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        acquired: spec.acquire_time.as_ref().and_then(timestamp),
        renewed: spec.renew_time.as_ref().and_then(timestamp),
        duration_secs: spec
            .lease_duration_seconds
            .map_or(LEASE_DURATION_SECS, i64::from),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// Who this guard is in the election: `--identity`, else `$POD_NAME`, else the hostname.
pub fn identity(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    hostname: impl FnOnce() -> Option<String>,
) -> Result<String, String> {
    flag.map(str::to_string)
        .or_else(|| env("POD_NAME"))
        .or_else(hostname)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            "no identity for leader election: pass --identity NAME or set POD_NAME".to_string()
        })
}

fn micro_time(t: Timestamp) -> MicroTime {
    let micros = t.timestamp_micros();
    MicroTime(jiff::Timestamp::from_microsecond(micros).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

fn timestamp(t: &MicroTime) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp_micros(t.0.as_microsecond())
}

/// A kube error as an operator should read it: the API server's own message and code.
pub(crate) fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
