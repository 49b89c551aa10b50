//! Rollouts: each rollout's waves with state, progress, soak countdown, gates and holds;
//! `enter` expands a wave's cells; `p` pauses and `r` resumes the selected wave.

use std::collections::HashSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::actions::{self, Action};
use crate::model::{CellPhase, Environment, GateStatus, Rollout, Wave, WaveState};
use crate::ui::keymap::KeyAction;
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

    pub fn selected_environment(&self, ctx: &Context) -> Option<Environment> {
        self.selected(ctx).map(|(_, _, w)| w.environment.clone())
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
                if let Err(denied) = actions::authorize(ctx.mode, draft) {
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
                if let Err(denied) = actions::authorize(ctx.mode, draft) {
                    return Effect::Error(denied.reason);
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
                        })
                    }
                    _ => Effect::Error(format!("wave {} is not paused or halted", wave.name)),
                }
            }
            _ => Effect::Ignored,
        }
    }
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

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &RolloutsState,
    ctx: &Context,
    env: Option<&Environment>,
) {
    let t = ctx.theme;
    let keys = wave_keys(ctx);
    let selected = state.position(ctx, &keys);
    let wide = area.width >= 110;
    let bar_width = if wide { 20 } else { 10 };

    let mut rows: Vec<Row> = Vec::new();
    let mut selected_row = None;
    let mut k = 0;
    for rollout in ctx.store.rollouts() {
        let gates = rollout
            .gates
            .iter()
            .map(|g| match &g.status {
                GateStatus::Ok => Span::styled(format!(" {} ok ", g.alarm), t.ok),
                GateStatus::Firing { cluster } => Span::styled(
                    format!(" {} FIRING on {} ", g.alarm, cluster.name),
                    t.critical,
                ),
                GateStatus::Unknown => Span::styled(format!(" {} unknown ", g.alarm), t.unknown),
            })
            .collect::<Vec<_>>();
        rows.push(Row::new([Cell::from(Line::from(vec![
            Span::styled(rollout.name.clone(), t.title),
            Span::styled(
                format!(
                    "  {:.0}% · {}/{} cells · {}",
                    rollout.percent(),
                    rollout.cells_done(),
                    rollout.cells_total(),
                    rollout.description
                ),
                t.muted,
            ),
        ]))]));
        if !gates.is_empty() {
            let mut line = vec![Span::styled("  gates:", t.muted)];
            line.extend(gates);
            rows.push(Row::new([Cell::from(Line::from(line))]));
        }
        for (w, wave) in rollout.waves.iter().enumerate() {
            if selected == Some(k) {
                selected_row = Some(rows.len());
            }
            k += 1;
            let key = (rollout.name.clone(), w);
            let expanded = state.expanded.contains(&key);
            let soak = match &wave.state {
                WaveState::Soaking { until } => format!(
                    "soak {}",
                    format::countdown((*until - ctx.now).num_seconds())
                ),
                WaveState::Done => "soaked".into(),
                _ => format!("soak {}", format::duration(wave.soak_secs)),
            };
            let note = match &wave.state {
                WaveState::Paused { by, reason, at } => {
                    format!("paused by {by} {} ago: {reason}", format::age(ctx.now, *at))
                }
                WaveState::Halted { alarm, cluster, at } => format!(
                    "HALTED {} ago: {alarm} fired on {}",
                    format::age(ctx.now, *at),
                    cluster.name
                ),
                _ if wave.cells_in_flight() > 0 => format!("{} in flight", wave.cells_in_flight()),
                _ => String::new(),
            };
            let note_style = if wave.state.is_held() {
                state_style(&wave.state, ctx)
            } else {
                t.muted
            };
            let marker = if expanded {
                ctx.glyphs.expanded
            } else {
                ctx.glyphs.collapsed
            };
            rows.push(Row::new([
                Cell::from(Line::from(vec![
                    Span::styled(format!(" {marker} "), t.muted),
                    Span::styled(wave.name.clone(), ctx.env_style(&wave.environment)),
                ])),
                Cell::from(wave.state.name().to_uppercase()).style(state_style(&wave.state, ctx)),
                Cell::from(format!("{:>3}/{:<3}", wave.cells_done(), wave.cells.len())),
                Cell::from(format::bar(wave.progress(), bar_width, ctx.glyphs))
                    .style(state_style(&wave.state, ctx)),
                Cell::from(soak).style(t.muted),
                Cell::from(note).style(note_style),
            ]));
            if expanded {
                for cell in &wave.cells {
                    rows.push(Row::new([
                        Cell::from(format!("     {}", cell.cluster.name)),
                        Cell::from(cell.phase.as_str()).style(phase_style(cell.phase, ctx)),
                        Cell::from(format::age(ctx.now, cell.since)).style(t.muted),
                        Cell::from(""),
                        Cell::from(""),
                        Cell::from(cell.message.clone()).style(t.muted),
                    ]));
                }
            }
        }
    }
    let widths = [
        Constraint::Length(if wide { 28 } else { 16 }),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(bar_width as u16),
        Constraint::Length(12),
        Constraint::Min(10),
    ];
    let header = Row::new(["WAVE", "STATE", "CELLS", "PROGRESS", "SOAK", "NOTE"]).style(t.title);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selection)
        .block(ctx.block(" rollouts ".into(), env));
    let mut ts = state.selection.table_state(selected_row);
    frame.render_stateful_widget(table, area, &mut ts);
    state
        .selection
        .remember(&ts, area.height.saturating_sub(3) as usize);
    if ctx.store.rollouts().is_empty() {
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(Line::from(Span::styled("no rollouts", t.muted)), inner);
    }
}
