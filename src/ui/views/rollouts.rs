//! Rollouts: each rollout's waves with state, progress, soak countdown, gates and holds;
//! `enter` expands a wave's cells; `p` pauses and `r` resumes the selected wave.

use std::collections::HashSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{List, ListItem, Paragraph};

use crate::actions::{self, Action};
use crate::model::{CellPhase, GateStatus, HoldKind, Rollout, Wave, WaveState};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::columns::{self, Column};
use crate::ui::widgets::dialog::Dialog;
use crate::ui::widgets::format;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

/// A wave, by rollout name and wave index.
type WaveKey = (String, usize);

#[derive(Default)]
pub struct RolloutsState {
    pub selection: Selection<WaveKey>,
    pub expanded: HashSet<WaveKey>,
}

fn wave_keys(ctx: &Context) -> Vec<WaveKey> {
    ctx.store
        .rollouts()
        .iter()
        .flat_map(|r| (0..r.waves.len()).map(|w| (r.name.clone(), w)))
        .collect()
}

impl RolloutsState {
    /// Until the operator moves, the selection sits on the wave in progress.
    fn position(&self, ctx: &Context, keys: &[WaveKey]) -> Option<usize> {
        if self.selection.key().is_none() {
            let first = ctx.store.rollouts().first()?;
            let current = first
                .current_wave()
                .unwrap_or(first.waves.len().saturating_sub(1));
            return keys
                .iter()
                .position(|k| k.0 == first.name && k.1 == current);
        }
        self.selection.position(keys.len(), |i, k| keys[i] == *k)
    }

    fn selected<'a>(&self, ctx: &Context<'a>) -> Option<(&'a Rollout, usize, &'a Wave)> {
        let keys = wave_keys(ctx);
        let (name, w) = keys.get(self.position(ctx, &keys)?)?.clone();
        let rollout = ctx.store.rollouts().iter().find(|r| r.name == name)?;
        Some((rollout, w, rollout.waves.get(w)?))
    }

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        let keys = wave_keys(ctx);
        if self.selection.key().is_none()
            && let Some(p) = self.position(ctx, &keys)
        {
            self.selection.select(keys[p].clone());
        }
        if self.selection.navigate(
            action,
            keys.len(),
            |i, k| keys[i] == *k,
            |i| keys[i].clone(),
        ) {
            return Effect::None;
        }
        let Some((rollout, w, wave)) = self.selected(ctx) else {
            return Effect::Ignored;
        };
        match action {
            KeyAction::Enter => {
                let key = (rollout.name.clone(), w);
                if !self.expanded.remove(&key) {
                    self.expanded.insert(key);
                }
                Effect::None
            }
            KeyAction::PauseWave => {
                let draft = Action::PauseWave {
                    rollout: rollout.name.clone(),
                    wave: w,
                    wave_name: wave.name.clone(),
                    reason: String::new(),
                };
                if let Err(denied) =
                    actions::authorize(ctx.mode, ctx.store.permission(draft.kind(), None), draft)
                {
                    return Effect::Error(denied.reason);
                }
                match &wave.state {
                    WaveState::Done => Effect::Error(format!(
                        "wave {} is already done; there is nothing to pause",
                        wave.name
                    )),
                    WaveState::Paused { by, .. } => {
                        Effect::Error(format!("wave {} is already paused by {by}", wave.name))
                    }
                    WaveState::Halted { .. } => Effect::Error(format!(
                        "wave {} is already halted by the circuit breaker",
                        wave.name
                    )),
                    _ => Effect::Dialog(Dialog::PauseReason {
                        rollout: rollout.name.clone(),
                        wave: w,
                        wave_name: wave.name.clone(),
                        environment: wave.environment.clone(),
                        in_flight: wave.cells_in_flight(),
                        effect: pause_effect(rollout, w),
                        reason: String::new(),
                        error: None,
                    }),
                }
            }
            KeyAction::ResumeWave => {
                let draft = Action::ResumeWave {
                    rollout: rollout.name.clone(),
                    wave: w,
                    wave_name: wave.name.clone(),
                };
                if let Err(denied) =
                    actions::authorize(ctx.mode, ctx.store.permission(draft.kind(), None), draft)
                {
                    return Effect::Error(denied.reason);
                }
                // Refused up front, not after a y: resume waits for the gate to clear.
                if wave.state.is_held()
                    && let Some((alarm, cluster)) = firing_gate(rollout, w)
                {
                    return Effect::Error(format!(
                        "resume blocked: gate alarm {alarm} is still firing on {}; resume when it clears",
                        cluster.name
                    ));
                }
                match (&wave.state, wave.state.reason()) {
                    (state, Some(reason)) if state.is_held() => {
                        let held = match state {
                            WaveState::Paused { by, at, .. } => format!(
                                "paused by {by} {} ago: {reason}",
                                format::age(ctx.now, *at)
                            ),
                            _ => reason,
                        };
                        Effect::Dialog(Dialog::ConfirmResume {
                            rollout: rollout.name.clone(),
                            wave: w,
                            wave_name: wave.name.clone(),
                            environment: wave.environment.clone(),
                            held,
                            consequence: resume_consequence(rollout, w, ctx),
                        })
                    }
                    _ => Effect::Error(format!("wave {} is not paused or halted", wave.name)),
                }
            }
            _ => Effect::Ignored,
        }
    }
}

/// A gate alarm firing on a cluster of wave `w` or an earlier one, if any.
fn firing_gate(rollout: &Rollout, w: usize) -> Option<(String, crate::model::ClusterId)> {
    rollout.gates.iter().find_map(|g| match &g.status {
        GateStatus::Firing { cluster }
            if crate::rollout::wave_of(rollout, cluster).is_some_and(|cw| cw <= w) =>
        {
            Some((g.alarm.clone(), cluster.clone()))
        }
        _ => None,
    })
}

/// What pausing wave `w` holds, in plain words.
fn pause_effect(rollout: &Rollout, w: usize) -> String {
    let wave = &rollout.waves[w];
    let next = rollout
        .waves
        .get(w + 1)
        .map(|n| format!("wave {}", n.name))
        .unwrap_or_else(|| "the end of the rollout".into());
    let argo = wave.cells.iter().any(|c| c.app.is_some());
    if wave.cells.iter().all(|c| c.phase.is_updated()) {
        format!(
            "Every cluster of {} is updated: the pause holds {next} from starting until you resume. The soak clock keeps running.",
            wave.name
        )
    } else if argo {
        "Sets this step's maxUpdate to 0 on the hub, so every console sees it paused. No new application in it will sync; applications already Pending or Progressing will finish: Argo CD does not stop a sync in progress.".into()
    } else {
        "No new cluster in this wave will start. Clusters already updating finish: an EKS update can't be stopped mid-flight.".into()
    }
}

/// What resuming wave `w` sets moving, so the operator confirms the real consequence:
/// what is still in flight finishes first, the soak follows, and a next wave the guard
/// holds (or will hold) does not start "now".
fn resume_consequence(rollout: &Rollout, w: usize, ctx: &Context) -> String {
    resume_words(rollout, w, ctx.now, ctx.store.guard_next(&rollout.name))
}

fn resume_words(
    rollout: &Rollout,
    w: usize,
    now: crate::model::Timestamp,
    guard_next: &[crate::rollout::guard::GuardAction],
) -> String {
    let wave = &rollout.waves[w];
    let count =
        |phase: fn(&CellPhase) -> bool| wave.cells.iter().filter(|c| phase(&c.phase)).count();
    let waiting = count(|p| *p == CellPhase::Pending);
    let in_flight = count(CellPhase::is_in_flight);
    let argo = wave.cells.iter().any(|c| c.app.is_some());
    let unit = if argo { "application(s)" } else { "cluster(s)" };
    // The guard's hold on the next wave, in force or placed by its next pass.
    let guard_hold = rollout.waves.get(w + 1).and_then(|n| {
        n.guard_hold().map(|h| h.describe()).or_else(|| {
            guard_next
                .iter()
                .find(|a| a.placed && a.wave == w + 1)
                .map(|a| a.hold.describe())
        })
    });
    let next = match rollout.waves.get(w + 1) {
        Some(n) if n.state.is_held() => format!(
            "wave {} stays held ({}) until it is resumed too",
            n.name,
            n.state.name()
        ),
        Some(n) => match &guard_hold {
            Some(why) => format!(
                "then wave {} ({} clusters) starts once the guard releases it ({why})",
                n.name,
                n.cells.len()
            ),
            None => format!("then wave {} ({} clusters) starts", n.name, n.cells.len()),
        },
        None => "then the rollout is complete".into(),
    };
    let soak = format::duration(wave.soak_secs);
    if waiting > 0 {
        let flight = if in_flight > 0 {
            format!(" (besides {in_flight} still in flight)")
        } else {
            String::new()
        };
        return format!(
            "{waiting} {unit} waiting in {} will start updating{flight}, {} at a time; after them a {soak} soak, {next}.",
            wave.name, wave.max_parallel
        );
    }
    if in_flight > 0 {
        return format!(
            "{in_flight} {unit} of {} still updating finish first; after them a {soak} soak, {next}.",
            wave.name
        );
    }
    match (&wave.state, crate::rollout::soak_end(wave)) {
        (WaveState::Halted { .. }, _) => {
            format!("The alarm fired during this wave, so the {soak} soak starts over; {next}.")
        }
        (_, Some(end)) if end > now => format!(
            "The soak goes on for {}; {next}.",
            format::countdown((end - now).num_seconds())
        ),
        _ => match (rollout.waves.get(w + 1), &guard_hold) {
            (Some(n), _) if n.state.is_held() => {
                let mut s = next.clone();
                s.push('.');
                capitalized(&s)
            }
            (Some(n), Some(why)) => format!(
                "Wave {} ({} clusters) waits for the guard: {why}.",
                n.name,
                n.cells.len()
            ),
            _ => {
                let mut s = next.replacen("then ", "", 1);
                s.push_str(" now.");
                capitalized(&s)
            }
        },
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn state_style(state: &WaveState, ctx: &Context) -> Style {
    let t = ctx.theme;
    match state {
        WaveState::Pending => t.muted,
        WaveState::Running => t.info,
        WaveState::Soaking { .. } => t.accent,
        WaveState::Paused { .. } => t.warning,
        WaveState::Halted { .. } => t.critical,
        WaveState::Done => t.ok,
    }
}

fn phase_style(phase: CellPhase, ctx: &Context) -> Style {
    let t = ctx.theme;
    match phase {
        CellPhase::Pending => t.muted,
        CellPhase::PreCheck | CellPhase::Updating | CellPhase::PostCheck => t.info,
        CellPhase::Soaking => t.accent,
        CellPhase::Done => t.ok,
        CellPhase::Failed => t.critical,
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &RolloutsState, ctx: &Context) {
    let t = ctx.theme;
    let g = ctx.glyphs;
    let keys = wave_keys(ctx);
    let selected = state.position(ctx, &keys);
    let wide = area.width >= 110;
    let widths = Widths::for_width(wide);

    let mut items: Vec<ListItem> = Vec::new();
    let mut selected_row = None;
    let mut k = 0;
    // The rows that must be on screen with the selected wave: its rollout's title (for
    // the first wave) and its cells when expanded.
    let mut must_show = None;
    for rollout in ctx.store.rollouts() {
        let title_row = items.len();
        items.push(ListItem::new(Line::from(vec![
            Span::styled(rollout.name.clone(), t.title),
            Span::styled(
                format!(
                    "  {:.0}% · {} · {}/{} cells · {} · {}",
                    rollout.percent(),
                    match rollout.current_wave() {
                        Some(w) => format!("step {}/{}", w + 1, rollout.waves.len()),
                        None => "complete".into(),
                    },
                    rollout.cells_done(),
                    rollout.cells_total(),
                    rollout.source,
                    rollout.description
                ),
                t.muted,
            ),
        ])));
        for warning in ctx.store.rollout_warnings(&rollout.name) {
            items.push(ListItem::new(Line::from(Span::styled(
                format!("  ! {warning}"),
                t.warning,
            ))));
        }
        if !rollout.unmatched.is_empty() {
            let names: Vec<&str> = rollout
                .unmatched
                .iter()
                .map(|c| c.app.as_deref().unwrap_or(c.cluster.name.as_str()))
                .collect();
            items.push(ListItem::new(Line::from(Span::styled(
                format!(
                    "  {} application(s) match no step and are never synced by this rollout: {}",
                    names.len(),
                    names.join(", ")
                ),
                t.warning,
            ))));
        }
        for next in ctx.store.guard_next(&rollout.name) {
            items.push(ListItem::new(Line::from(Span::styled(
                format!("  guard, next pass: {}", next.describe()),
                t.muted,
            ))));
        }
        if !rollout.gates.is_empty() {
            let mut line = vec![Span::styled("  gates so far:", t.muted)];
            for (i, gate) in rollout.gates.iter().enumerate() {
                if i > 0 {
                    line.push(Span::styled(" ·", t.muted));
                }
                line.push(match &gate.status {
                    GateStatus::Ok => Span::styled(format!(" {} ok", gate.alarm), t.ok),
                    GateStatus::Firing { cluster } => Span::styled(
                        format!(" {} FIRING on {}", gate.alarm, cluster.name),
                        t.critical,
                    ),
                    GateStatus::Unknown => {
                        Span::styled(format!(" {} unknown", gate.alarm), t.unknown)
                    }
                });
            }
            items.push(ListItem::new(Line::from(line)));
        }
        for (w, wave) in rollout.waves.iter().enumerate() {
            let expanded = state.expanded.contains(&(rollout.name.clone(), w));
            if selected == Some(k) {
                selected_row = Some(items.len());
                let first = if w == 0 { title_row } else { items.len() };
                let last = items.len() + if expanded { wave.cells.len() } else { 0 };
                must_show = Some((first, last));
            }
            k += 1;
            items.push(ListItem::new(wave_line(wave, expanded, &widths, ctx)));
            if expanded {
                for cell in &wave.cells {
                    // An Argo CD cell is an Application: name it, and say where it goes.
                    let (name, message) = match &cell.app {
                        Some(app) => (
                            app.clone(),
                            format!("on {}: {}", cell.cluster.name, cell.message),
                        ),
                        None => (cell.cluster.name.clone(), cell.message.clone()),
                    };
                    items.push(ListItem::new(columns::line(
                        vec![
                            Column::left(format!("     {name}"), 29, t.text),
                            Column::left(cell.phase.as_str(), 10, phase_style(cell.phase, ctx)),
                            Column::right(format::age(ctx.now, cell.since), 6, t.muted),
                            Column::rest(message, t.muted),
                        ],
                        g,
                    )));
                }
            }
        }
    }

    let updates = eks_updates_in_flight(ctx);
    let nothing = ctx.store.rollouts().is_empty() && updates.is_empty();
    if !updates.is_empty() {
        items.push(ListItem::new(Line::from(Span::styled(
            format!("EKS updates in flight ({})", updates.len()),
            t.title,
        ))));
        for (cluster, update) in updates {
            items.push(ListItem::new(columns::line(
                vec![
                    Column::left(format!("   {}", cluster.name), 29, t.text),
                    Column::left(update.status.clone(), 10, t.info),
                    Column::right(format::age(ctx.now, update.started), 6, t.muted),
                    Column::rest(format!("{}: {}", update.kind, update.detail), t.muted),
                ],
                g,
            )));
        }
    }

    let env = state.selected(ctx).map(|(_, _, wave)| &wave.environment);
    let block = ctx.block(" rollouts ".into(), env);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [head, body] = inner.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
    ]));
    let h = t.title;
    frame.render_widget(
        Paragraph::new(columns::line(
            vec![
                Column::left("WAVE", widths.wave + 3, h),
                Column::left("STATE", widths.state, h),
                Column::right("CELLS", widths.cells, h),
                Column::left("PROGRESS", widths.bar, h),
                Column::left("SOAK", widths.soak, h),
                Column::rest("NOTE", h),
            ],
            g,
        )),
        head,
    );
    if let (Some((first, last)), Some(sel)) = (must_show, selected_row) {
        state
            .selection
            .keep_in_view(first, last, sel, usize::from(body.height));
    }
    let list = List::new(items).highlight_style(t.selection);
    state.selection.draw_list(frame, list, body, selected_row);
    if nothing {
        frame.render_widget(Line::from(Span::styled("no rollouts", t.muted)), body);
    }
}

/// EKS updates (version, add-on, config) still in progress, oldest first: their own
/// progress, whether or not a rollout drives them.
fn eks_updates_in_flight<'a>(
    ctx: &Context<'a>,
) -> Vec<(&'a crate::model::ClusterId, &'a crate::model::EksUpdate)> {
    let mut updates: Vec<_> = ctx
        .store
        .clusters()
        .iter()
        .flat_map(|c| c.updates.iter().map(move |u| (&c.id, u)))
        .filter(|(_, u)| matches!(u.status.as_str(), "InProgress" | "Pending"))
        .collect();
    updates.sort_by_key(|(id, u)| (u.started, (*id).clone()));
    updates
}

struct Widths {
    wave: usize,
    state: usize,
    cells: usize,
    bar: usize,
    soak: usize,
}

impl Widths {
    fn for_width(wide: bool) -> Self {
        Self {
            wave: if wide { 24 } else { 10 },
            state: 8,
            cells: 6,
            bar: if wide { 20 } else { 10 },
            soak: 11,
        }
    }
}

/// A wave's row; a held wave gets a second, full-width line saying who or what holds it
/// and why, so nothing that matters is cut at 80 columns.
fn wave_line(wave: &Wave, expanded: bool, w: &Widths, ctx: &Context) -> Text<'static> {
    let t = ctx.theme;
    // A held wave whose clusters are all updated keeps soaking: show the real clock.
    let soak_end = crate::rollout::soak_end(wave);
    let soak = match (&wave.state, soak_end) {
        (WaveState::Soaking { until }, _) => format!(
            "soak {}",
            format::countdown((*until - ctx.now).num_seconds())
        ),
        (WaveState::Done, _) => "soaked".into(),
        // A halt voids the soak: it starts over on resume.
        (WaveState::Halted { .. }, Some(_)) => "soak reset".into(),
        (state, Some(end)) if state.is_held() => {
            format!("soak {}", format::countdown((end - ctx.now).num_seconds()))
        }
        _ => format!("soak {}", format::duration(wave.soak_secs)),
    };
    let mut hold = match &wave.state {
        WaveState::Paused { by, reason, at } => Some(format!(
            "paused by {by} {} ago: {reason}",
            format::age(ctx.now, *at)
        )),
        WaveState::Halted { alarm, cluster, at } => Some(format!(
            "circuit breaker {} ago: {alarm} fired on {} ({}/{})",
            format::age(ctx.now, *at),
            cluster.name,
            cluster.account,
            cluster.region
        )),
        _ => None,
    };
    // A hold stops new cells only: say plainly that the ones already updating carry on.
    if let Some(h) = hold.as_mut()
        && wave.cells_in_flight() > 0
    {
        h.push_str(&format!(
            " · {} in flight will finish",
            wave.cells_in_flight()
        ));
    }
    let note = match (&hold, wave.guard_hold()) {
        // Compact: the column is short at 80 columns; `enter` shows the cells.
        (None, Some(guard)) => match &guard.kind {
            HoldKind::Soak { after } => format!("waits for {after} soak"),
            HoldKind::Insights { cluster, .. } => format!("insight failing on {cluster}"),
            HoldKind::Policy { cluster, policy } if wave.cells_in_flight() > 0 => format!(
                "policy {policy} fails on {cluster} · {} in flight",
                wave.cells_in_flight()
            ),
            HoldKind::Policy { cluster, policy } => format!("policy {policy} fails on {cluster}"),
            _ => guard.describe(),
        },
        (None, None) if wave.cells_in_flight() > 0 => {
            format!("{} in flight", wave.cells_in_flight())
        }
        _ => String::new(),
    };
    let style = state_style(&wave.state, ctx);
    let note_style = t.muted;
    let marker = if expanded {
        ctx.glyphs.expanded
    } else {
        ctx.glyphs.collapsed
    };
    let row = columns::line(
        vec![
            Column::left(format!(" {marker}"), 2, t.muted),
            Column::left(wave.name.clone(), w.wave, ctx.env_style(&wave.environment)),
            Column::left(wave.state.name().to_uppercase(), w.state, style),
            Column::right(
                format!("{}/{}", wave.cells_done(), wave.cells.len()),
                w.cells,
                t.text,
            ),
            Column::left(
                format::bar(wave.progress(), w.bar, ctx.glyphs),
                w.bar,
                style,
            ),
            Column::left(soak, w.soak, t.muted),
            Column::rest(note, note_style),
        ],
        ctx.glyphs,
    );
    let mut text = Text::from(row);
    if let Some(h) = hold {
        text.push_line(Line::from(vec![Span::raw("     "), Span::styled(h, style)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, ClusterId, Environment, Hold, Timestamp};

    fn t(s: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000 + s, 0).expect("valid time")
    }

    fn cell(name: &str, phase: CellPhase) -> Cell {
        Cell {
            cluster: ClusterId::new("acct", "us-east-1", name),
            app: Some(format!("addons-{name}")),
            phase,
            since: t(0),
            message: String::new(),
        }
    }

    fn wave(name: &str, cells: Vec<Cell>, state: WaveState) -> Wave {
        Wave {
            name: name.into(),
            environment: Environment::from_tag(name),
            cells,
            state,
            soak_secs: 1800,
            max_parallel: 1,
            holds: vec![],
            soak_from: None,
        }
    }

    /// Staging paused with one application still Progressing; prod after it.
    fn rollout() -> Rollout {
        let paused = WaveState::Paused {
            by: "alice".into(),
            reason: "incident".into(),
            at: t(0),
        };
        Rollout {
            name: "addons".into(),
            source: "argocd:hub".into(),
            description: String::new(),
            waves: vec![
                wave(
                    "staging",
                    vec![
                        cell("stg-a", CellPhase::Soaking),
                        cell("stg-b", CellPhase::Updating),
                    ],
                    paused,
                ),
                wave(
                    "prod",
                    (0..4)
                        .map(|i| cell(&format!("prod-{i}"), CellPhase::Pending))
                        .collect(),
                    WaveState::Pending,
                ),
            ],
            gates: vec![],
            unmatched: vec![],
        }
    }

    #[test]
    fn resuming_a_wave_with_an_application_in_flight_says_it_finishes_then_soaks() {
        let text = resume_words(&rollout(), 0, t(60), &[]);
        assert_eq!(
            text,
            "1 application(s) of staging still updating finish first; after them a 30m soak, \
             then wave prod (4 clusters) starts."
        );
        assert!(!text.contains("starts now"));
    }

    #[test]
    fn a_next_wave_the_guard_holds_is_not_said_to_start_now() {
        let mut r = rollout();
        r.waves[0].cells[1].phase = CellPhase::Done;
        r.waves[0].cells[0].phase = CellPhase::Done;
        r.waves[1].holds.push(Hold {
            kind: HoldKind::Soak {
                after: "staging".into(),
            },
            by: "fleetdeck-guard".into(),
            at: t(0),
        });
        let text = resume_words(&r, 0, t(60), &[]);
        assert_eq!(
            text,
            "Wave prod (4 clusters) waits for the guard: held until staging has soaked."
        );
        // Without any hold, it does start now.
        r.waves[1].holds.clear();
        assert_eq!(
            resume_words(&r, 0, t(60), &[]),
            "Wave prod (4 clusters) starts now."
        );
    }
}
