//! The rollout driver: moves the demo's cells through their phases on a timetable derived
//! from the seed, applies what each phase does to its cluster (status UPDATING, the new
//! version), and writes the story's scripted incidents.

use chrono::TimeDelta;

use super::alarms::{Alarm, Episode};
use super::fleet::{self, PROD1, PROD2, STAGING, WAVES};
use super::hash::{between, hash, tag};
use super::{DemoFleet, Outbox};
use crate::model::{
    Cell, CellPhase, ClusterStatus, EksUpdate, Gate, GateStatus, InsightStatus, Rollout, Timestamp,
    Wave, WaveState,
};
use crate::rollout::guard::{self, Signals};
use crate::rollout::{advance_cell, cells_to_start, refresh_state};

/// The version every cell upgrades to.
const TARGET_MINOR: u8 = 31;
/// EKS updates kept per cluster (newest last).
const UPDATES_KEPT: usize = 3;

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

impl DemoFleet {
    fn two_hops(&self, c: usize) -> bool {
        self.members[c].from_minor < TARGET_MINOR - 1
    }

    /// Seconds hop `hop` (0 or 1) of a two-hop update takes: 5 to 7 minutes each.
    fn hop_secs(&self, c: usize, hop: i64) -> i64 {
        between(hash(self.seed, &[tag::PHASE, c as i64, 3 + hop]), 300, 420)
    }

    /// How long cluster `c` spends in `phase`: pre-check 1-2 min, update 8-14 min (two
    /// hops of 5-7 min from 1.29), post-check 1.5-2.5 min.
    pub(super) fn phase_secs(&self, c: usize, phase: CellPhase) -> i64 {
        let h = |k: i64| hash(self.seed, &[tag::PHASE, c as i64, k]);
        match phase {
            CellPhase::PreCheck => between(h(0), 60, 120),
            CellPhase::Updating if self.two_hops(c) => self.hop_secs(c, 0) + self.hop_secs(c, 1),
            CellPhase::Updating => between(h(1), 480, 840),
            CellPhase::PostCheck => between(h(2), 90, 150),
            _ => 0,
        }
    }

    /// When an updating two-hop cell reaches the intermediate version, if still ahead.
    fn pending_hop(&self, c: usize, cell: &Cell) -> Option<Timestamp> {
        (cell.phase == CellPhase::Updating
            && self.two_hops(c)
            && self.members[c].minor == self.members[c].from_minor)
            .then(|| cell.since + secs(self.hop_secs(c, 0)))
    }

    /// The cell's message on entering `phase`, for cluster `c` as it is now.
    fn message(&self, c: usize, phase: CellPhase) -> String {
        let member = &self.members[c];
        match phase {
            CellPhase::Pending => "waiting for its turn in the wave".into(),
            CellPhase::PreCheck => {
                let insights = &self.clusters[c].insights;
                let count = |s| insights.iter().filter(|i| i.status == s).count();
                let passing = count(InsightStatus::Passing);
                let flagged = insights.len() - passing;
                let flagged = if flagged > 0 {
                    format!(", {flagged} flagged")
                } else {
                    String::new()
                };
                format!(
                    "pre-checks: upgrade insights ({passing} passing{flagged}), add-on \
                     compatibility, no gate alarm firing"
                )
            }
            CellPhase::Updating if self.two_hops(c) && member.minor == member.from_minor => {
                format!(
                    "updating control plane 1.{} -> 1.{} (hop 1 of 2: 1.{} needs two hops to \
                     reach 1.{TARGET_MINOR})",
                    member.minor,
                    member.minor + 1,
                    member.from_minor
                )
            }
            CellPhase::Updating if self.two_hops(c) => format!(
                "updating control plane 1.{} -> 1.{TARGET_MINOR} (hop 2 of 2)",
                member.minor
            ),
            CellPhase::Updating => format!(
                "updating control plane 1.{} -> 1.{TARGET_MINOR}",
                member.minor
            ),
            CellPhase::PostCheck => {
                "post-checks: nodes Ready, add-ons healthy, API smoke tests passing".into()
            }
            CellPhase::Soaking => {
                format!("updated to 1.{TARGET_MINOR}; soaking with the wave")
            }
            CellPhase::Done => format!(
                "soaked {}m without a gate alarm",
                WAVES[member.wave].soak_minutes
            ),
            CellPhase::Failed => "failed".into(),
        }
    }

    /// Sets cluster `c`'s Kubernetes version and what follows from it.
    fn set_minor(&mut self, c: usize, minor: u8) {
        self.members[c].minor = minor;
        let cluster = &mut self.clusters[c];
        cluster.version = fleet::version(minor);
        cluster.platform_version = fleet::platform_version(minor).into();
        fleet::upgrade_addons(&mut cluster.addons, minor);
    }

    /// Records the EKS version update of one hop, as `DescribeUpdate` would show it.
    fn start_update(&mut self, c: usize, from: u8, started: Timestamp) {
        let hop = i64::from(from);
        let update = EksUpdate {
            id: fleet::uuid(hash(self.seed, &[tag::UPDATE_ID, c as i64, hop])),
            kind: "VersionUpdate".into(),
            status: "InProgress".into(),
            started,
            detail: format!("Kubernetes 1.{from} -> 1.{}", from + 1),
        };
        let updates = &mut self.clusters[c].updates;
        updates.push(update);
        if updates.len() > UPDATES_KEPT {
            updates.remove(0);
        }
    }

    fn finish_update(&mut self, c: usize) {
        if let Some(update) = self.clusters[c].updates.last_mut() {
            update.status = "Successful".into();
        }
    }

    /// What entering `phase` does to the cluster itself.
    fn enter_phase(&mut self, c: usize, phase: CellPhase, at: Timestamp) {
        match phase {
            CellPhase::Updating => {
                self.clusters[c].status = ClusterStatus::Updating;
                let from = self.members[c].minor;
                self.start_update(c, from, at);
            }
            CellPhase::PostCheck => {
                self.finish_update(c);
                self.set_minor(c, TARGET_MINOR);
                self.clusters[c].status = ClusterStatus::Active;
            }
            _ => {}
        }
    }

    /// The intermediate version of a two-hop update is reached.
    fn hop(&mut self, w: usize, ci: usize, c: usize, at: Timestamp) {
        self.finish_update(c);
        let minor = self.members[c].minor + 1;
        self.set_minor(c, minor);
        self.start_update(c, minor, at);
        let message = self.message(c, CellPhase::Updating);
        self.rollout.waves[w].cells[ci].message = message;
    }

    /// Moves cell `ci` of wave `w` along if it has something due by `at`. Returns whether
    /// anything changed.
    fn progress_cell(&mut self, w: usize, ci: usize, at: Timestamp, out: &mut Outbox) -> bool {
        let c = self.wave_clusters[w][ci];
        let cell = &self.rollout.waves[w].cells[ci];
        if !cell.phase.is_in_flight() {
            return false;
        }
        let mut changed = false;
        if let Some(hop_at) = self.pending_hop(c, cell).filter(|t| *t <= at) {
            self.hop(w, ci, c, hop_at);
            out.clusters.insert(c);
            changed = true;
        }
        let cell = &self.rollout.waves[w].cells[ci];
        let end = cell.since + secs(self.phase_secs(c, cell.phase));
        if end <= at {
            let Some(next) = crate::rollout::next_phase(cell.phase) else {
                return changed;
            };
            // Effects first, so the message describes the cluster as it now is.
            self.enter_phase(c, next, end);
            let message = self.message(c, next);
            advance_cell(&mut self.rollout.waves[w].cells[ci], message, end);
            out.clusters.insert(c);
            changed = true;
        }
        changed
    }

    /// The next instant the rollout has something to do: a phase or hop ending, a soak
    /// ending, or cells free to start now.
    pub(super) fn next_rollout_event(&self) -> Option<Timestamp> {
        let w = self.rollout.current_wave()?;
        let wave = &self.rollout.waves[w];
        let mut next: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| next = Some(next.map_or(t, |n| n.min(t)));
        for (ci, cell) in wave.cells.iter().enumerate() {
            if cell.phase.is_in_flight() {
                let c = self.wave_clusters[w][ci];
                consider(cell.since + secs(self.phase_secs(c, cell.phase)));
                if let Some(hop_at) = self.pending_hop(c, cell) {
                    consider(hop_at);
                }
            }
        }
        if !wave.state.is_held() {
            if let WaveState::Soaking { until } = wave.state {
                consider(until);
            }
            if cells_to_start(&self.rollout).is_some() {
                consider(self.now);
            }
        }
        next
    }

    /// Does everything due at `at`: finishes phases, ends soaks, moves on to the next wave
    /// (unless a gate alarm already fires on it) and starts cells. Returns whether
    /// anything changed.
    pub(super) fn step_rollout(&mut self, at: Timestamp, out: &mut Outbox) -> bool {
        let mut progressed = false;
        // Each pass moves every due cell one phase; a handful of passes settle any instant.
        for _ in 0..1_000 {
            let Some(w) = self.rollout.current_wave() else {
                break;
            };
            let mut changed = false;
            for ci in 0..self.rollout.waves[w].cells.len() {
                changed |= self.progress_cell(w, ci, at, out);
            }
            changed |= refresh_state(&mut self.rollout.waves[w], at);
            self.schedule_story();
            if self.rollout.current_wave() != Some(w) {
                // The guard lifts the next wave's soak hold, unless a gate alarm already
                // firing on it (or on an earlier wave) holds it before a single cell starts.
                self.guard_pass(at, out);
                out.rollout = true;
                progressed = true;
                continue;
            }
            if let Some((sw, cells)) = cells_to_start(&self.rollout) {
                for ci in cells {
                    let c = self.wave_clusters[sw][ci];
                    let message = self.message(c, CellPhase::PreCheck);
                    advance_cell(&mut self.rollout.waves[sw].cells[ci], message, at);
                }
                refresh_state(&mut self.rollout.waves[sw], at);
                changed = true;
            }
            if !changed {
                break;
            }
            out.rollout = true;
            progressed = true;
        }
        progressed
    }

    /// The demo's guard: the very pass `fleetdeck guard` runs against an ApplicationSet
    /// (`rollout::guard::enforce`), so the demo holds waves for their soak and trips the
    /// circuit breaker exactly as a real hub would. Run whenever a gate alarm changes or
    /// a wave finishes.
    pub(super) fn guard_pass(&mut self, at: Timestamp, out: &mut Outbox) {
        let signals = Signals {
            firing: self.firing_gates(),
            policies_failing: self
                .policies
                .failing(&self.clusters)
                .into_iter()
                .filter(|(_, p)| super::policy::MUST_PASS.contains(&p.as_str()))
                .collect(),
            ..Signals::default()
        };
        for action in guard::enforce(&mut self.rollout, &signals, at) {
            tracing::info!(rollout = %self.rollout.name, "demo guard: {}", action.describe());
            out.rollout = true;
        }
        out.gates = true;
    }

    /// The story's incident: once every prod-1 cell is updated (the wave soaks),
    /// `eks-apiserver-5xx-high` starts breaching on one prod-1 cluster three minutes
    /// later, fires three minutes after that and clears 15 minutes after firing. Scheduled
    /// from the live rollout, so it lands in the soak even if an operator held a wave.
    fn schedule_story(&mut self) {
        if self.story_scheduled {
            return;
        }
        let Some(wave) = self.rollout.waves.get(PROD1) else {
            return;
        };
        if wave.cells.is_empty() || !wave.cells.iter().all(|c| c.phase.is_updated()) {
            return;
        }
        let Some(soak_start) = wave.cells.iter().map(|c| c.since).max() else {
            return;
        };
        let clusters = &self.wave_clusters[PROD1];
        let cluster = clusters[(hash(self.seed, &[tag::PICK, 1]) % clusters.len() as u64) as usize];
        // Never rewrite a minute already reported.
        let start = (soak_start.timestamp().div_euclid(60) + 3).max(self.next_boundary);
        self.incidents.push(Episode {
            cluster,
            alarm: Alarm::Apiserver5xx,
            start,
            end: start + 17,
        });
        self.story_scheduled = true;
    }

    /// The incidents known from the start: a latency alarm already firing on a prod-2
    /// cluster and a 5xx burst on another half an hour in (prod-2 has not started, so
    /// neither trips the breaker), pending pods on a dev cluster and 429 throttling on a
    /// staging cluster (not gates).
    pub(super) fn script_incidents(&mut self) {
        let s = self.start_minute;
        let pick = |k: i64, clusters: &[usize]| -> Option<usize> {
            (!clusters.is_empty()).then(|| {
                clusters[(hash(self.seed, &[tag::PICK, k]) % clusters.len() as u64) as usize]
            })
        };
        let prod2 = &self.wave_clusters[PROD2];
        let latency = pick(2, prod2);
        let burst = pick(3, prod2).filter(|c| Some(*c) != latency).or_else(|| {
            // Another prod-2 cluster than the latency one, if there is one.
            prod2.iter().copied().find(|c| Some(*c) != latency)
        });
        let mut script = vec![];
        if let Some(c) = latency {
            script.push((c, Alarm::ApiserverLatency, s - 9, s + 12));
        }
        if let Some(c) = burst {
            script.push((c, Alarm::Apiserver5xx, s + 30, s + 44));
        }
        if let Some(c) = pick(4, &self.wave_clusters[1]) {
            script.push((c, Alarm::PendingPods, s - 15, s + 20));
        }
        if let Some(c) = pick(5, &self.wave_clusters[STAGING]) {
            script.push((c, Alarm::Throttling, s + 8, s + 26));
        }
        self.incidents.extend(
            script
                .into_iter()
                .map(|(cluster, alarm, start, end)| Episode {
                    cluster,
                    alarm,
                    start,
                    end,
                }),
        );
    }

    /// Two prod clusters whose etcd is well over 80% of its quota (one over 90%), so the
    /// etcd alarm has something to say.
    pub(super) fn fill_etcd_on_two_clusters(&mut self) {
        let prod: Vec<usize> = self.wave_clusters[PROD1]
            .iter()
            .chain(&self.wave_clusters[PROD2])
            .copied()
            .collect();
        if prod.len() < 2 {
            return;
        }
        let first = (hash(self.seed, &[tag::PICK, 6]) % prod.len() as u64) as usize;
        let second =
            (first + 1 + (hash(self.seed, &[tag::PICK, 7]) % (prod.len() - 1) as u64) as usize)
                % prod.len();
        self.members[prod[first]].profile.etcd_fraction = 0.83;
        self.members[prod[second]].profile.etcd_fraction = 0.91;
    }

    /// The rollout as it stands at `start`: sandbox and dev done, staging half updated
    /// with cells in flight, prod waves pending. Cluster versions are set to match.
    pub(super) fn initial_rollout(&mut self, start: Timestamp) -> Rollout {
        let created = start - TimeDelta::hours(6);
        let n = self.clusters.len();
        let mut waves = Vec::with_capacity(WAVES.len());
        for (w, spec) in WAVES.iter().enumerate() {
            let members = self.wave_clusters[w].clone();
            let mut cells: Vec<Cell> = members
                .iter()
                .map(|&c| Cell {
                    cluster: self.clusters[c].id.clone(),
                    app: None,
                    phase: CellPhase::Pending,
                    since: created,
                    message: self.message(c, CellPhase::Pending),
                })
                .collect();
            let max_parallel = fleet::max_parallel(w, n);
            match w {
                0 | 1 => {
                    // Finished before the demo started: sandbox about three hours ago.
                    let done = start - TimeDelta::minutes(if w == 0 { 200 } else { 75 });
                    for (cell, &c) in cells.iter_mut().zip(&members) {
                        self.mark_upgraded(c, done - TimeDelta::minutes(spec.soak_minutes + 14));
                        cell.phase = CellPhase::Done;
                        cell.since = done;
                        cell.message = self.message(c, CellPhase::Done);
                    }
                }
                STAGING => {
                    let updated = cells.len() / 2;
                    let in_flight = max_parallel.min(cells.len() - updated);
                    for (i, (cell, &c)) in cells.iter_mut().zip(&members).enumerate() {
                        if i < updated {
                            let since =
                                start - TimeDelta::minutes(4 + 6 * (updated - 1 - i) as i64);
                            self.mark_upgraded(c, since - TimeDelta::minutes(14));
                            cell.phase = CellPhase::Soaking;
                            cell.since = since;
                            cell.message = self.message(c, CellPhase::Soaking);
                        } else if i < updated + in_flight {
                            // Staggered: the first in flight is furthest along.
                            let j = (i - updated) as i64;
                            self.place_in_flight(c, cell, start, j, in_flight as i64);
                        }
                    }
                }
                _ => {}
            }
            let mut wave = Wave {
                name: spec.name.into(),
                environment: spec.environment.clone(),
                cells,
                state: WaveState::Pending,
                soak_secs: spec.soak_minutes * 60,
                max_parallel,
                holds: Vec::new(),
                soak_from: None,
            };
            refresh_state(&mut wave, start);
            waves.push(wave);
        }
        Rollout {
            name: "eks-1-31-upgrade".into(),
            source: super::SOURCE_NAME.into(),
            description: "Upgrade EKS control planes to Kubernetes 1.31".into(),
            waves,
            gates: [Alarm::Apiserver5xx, Alarm::ApiserverLatency]
                .iter()
                .map(|a| Gate {
                    alarm: a.name().into(),
                    status: GateStatus::Ok,
                })
                .collect(),
            unmatched: Vec::new(),
        }
    }

    /// A cluster upgraded before the demo started.
    fn mark_upgraded(&mut self, c: usize, started: Timestamp) {
        let from = self.members[c].from_minor;
        self.start_update(c, from, started);
        self.finish_update(c);
        self.set_minor(c, TARGET_MINOR);
    }

    /// Puts an in-flight cell `j` of `of` part-way through its phases at `start`.
    fn place_in_flight(&mut self, c: usize, cell: &mut Cell, start: Timestamp, j: i64, of: i64) {
        let pre = self.phase_secs(c, CellPhase::PreCheck);
        let update = self.phase_secs(c, CellPhase::Updating);
        let post = self.phase_secs(c, CellPhase::PostCheck);
        let elapsed = (pre + update + post) * (of - j) / (of + 1);
        let (phase, into) = if elapsed < pre {
            (CellPhase::PreCheck, elapsed)
        } else if elapsed < pre + update {
            (CellPhase::Updating, elapsed - pre)
        } else {
            (CellPhase::PostCheck, elapsed - pre - update)
        };
        let since = start - secs(into);
        match phase {
            CellPhase::Updating => {
                let entered = since;
                self.enter_phase(c, CellPhase::Updating, entered);
                if self.two_hops(c) && into >= self.hop_secs(c, 0) {
                    let minor = self.members[c].minor;
                    self.finish_update(c);
                    self.set_minor(c, minor + 1);
                    self.start_update(c, minor + 1, entered + secs(self.hop_secs(c, 0)));
                }
            }
            CellPhase::PostCheck => {
                self.mark_upgraded(c, since - secs(update));
            }
            _ => {}
        }
        cell.phase = phase;
        cell.since = since;
        cell.message = self.message(c, phase);
    }
}
