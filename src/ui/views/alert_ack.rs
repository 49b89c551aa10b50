//! Ack and un-ack from a view: refused up front when the mode or the alert's state makes
//! them pointless, else a y/n dialog saying what will happen and who will see it.

use crate::actions::{self, Action};
use crate::model::{AckKind, Alert, AlertSource, AlertState, Timestamp};
use crate::ui::widgets::dialog::Dialog;
use crate::ui::widgets::format;
use crate::ui::{Context, Effect};

/// `a` on an alert: a dialog to ack it for `minutes`, or why not.
pub fn ack_effect(alert: &Alert, minutes: u64, ctx: &Context) -> Effect {
    let action = Action::ack(alert, minutes);
    if let Err(denied) = actions::authorize(ctx.mode, None, action.clone()) {
        return Effect::Error(denied.reason);
    }
    if alert.state == AlertState::Resolved {
        return Effect::Error(format!("{} is resolved: nothing to ack", alert.name));
    }
    if let Some(ack) = alert.ack.as_ref().filter(|_| alert.is_acked(ctx.now))
        && !matches!(ack.kind, AckKind::Inhibited { .. })
    {
        return Effect::Error(format!(
            "{} is already acked by {}{}; A withdraws it",
            alert.name,
            ack.by,
            until_text(ack.until, ctx.now)
        ));
    }
    let how = match alert.source {
        AlertSource::Alertmanager => format!(
            "Alertmanager silence for {} with an exact matcher per label: every console and Alertmanager's UI see it.",
            format::duration(minutes as i64 * 60)
        ),
        AlertSource::SecurityHub => {
            "Sets its Security Hub findings to NOTIFIED with a note naming you: every console and Security Hub see it until someone sets them back to NEW.".to_string()
        }
        other => format!(
            "{} has no silences: recorded in the audit log and shown as acked here for {}.",
            other.as_str(),
            format::duration(minutes as i64 * 60)
        ),
    };
    Effect::Dialog(Dialog::Confirm {
        title: "ack alert".into(),
        environment: environment(alert, ctx),
        lines: vec![format!("Ack {}?", action.target()), how],
        yes: "y ack".into(),
        action,
    })
}

/// `A` on an alert: a dialog to withdraw its ack, or why there is none to withdraw.
pub fn unack_effect(alert: &Alert, ctx: &Context) -> Effect {
    let action = Action::unack(alert);
    if let Err(denied) = actions::authorize(ctx.mode, None, action.clone()) {
        return Effect::Error(denied.reason);
    }
    let Some(ack) = alert.ack.as_ref().filter(|_| alert.is_acked(ctx.now)) else {
        return Effect::Error(format!("{} is not acked", alert.name));
    };
    let how = match &ack.kind {
        AckKind::Inhibited { .. } => {
            return Effect::Error(format!(
                "{} is held back by Alertmanager ({}), not acked: it clears by itself",
                alert.name, ack.comment
            ));
        }
        AckKind::Silence { ids } => format!(
            "Expires {} silence{} by {} in Alertmanager: the alert notifies again.",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            ack.by
        ),
        AckKind::Local => format!("Withdraws {}'s ack (recorded in the audit log).", ack.by),
        AckKind::Notified { findings } => format!(
            "Sets {findings} Security Hub finding{} acked by {} back to NEW.",
            if *findings == 1 { "" } else { "s" },
            ack.by
        ),
    };
    Effect::Dialog(Dialog::Confirm {
        title: "withdraw ack".into(),
        environment: environment(alert, ctx),
        lines: vec![format!("Withdraw the ack on {}?", action.target()), how],
        yes: "y withdraw".into(),
        action,
    })
}

/// How an ack reads in a list: `silenced until 14:05`, `inhibited by KubeNodeNotReady`,
/// `acked until 14:05`.
pub fn ack_note(alert: &Alert, ctx: &Context) -> Option<String> {
    let now = ctx.now;
    let ack = alert.ack.as_ref().filter(|_| alert.is_acked(now))?;
    Some(match &ack.kind {
        AckKind::Silence { .. } => format!("silenced{}", until_text(ack.until, now)),
        AckKind::Inhibited { by } => {
            // Inhibitions name fingerprints; say which alerts those are, where known.
            let mut names: Vec<&str> = ctx
                .store
                .alerts()
                .filter(|a| {
                    a.source == AlertSource::Alertmanager
                        && by.iter().any(|fp| {
                            a.key
                                .0
                                .strip_suffix(fp.as_str())
                                .is_some_and(|rest| rest.ends_with(':'))
                        })
                })
                .map(|a| a.name.as_str())
                .collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                ack.by.clone()
            } else {
                format!("{} by {}", ack.by, names.join(", "))
            }
        }
        AckKind::Local => format!("acked{}", until_text(ack.until, now)),
        AckKind::Notified { .. } => format!("notified by {}", ack.by),
    })
}

/// The alert's summary, after its ack note when it has one.
pub fn summary_with_note(alert: &Alert, ctx: &Context) -> String {
    match ack_note(alert, ctx) {
        Some(note) => format!("{note} · {}", alert.summary),
        None => alert.summary.clone(),
    }
}

/// ` until 14:05` (UTC), with the day when it is not today; empty for no end.
fn until_text(until: Option<Timestamp>, now: Timestamp) -> String {
    match until {
        Some(t) if t.date_naive() == now.date_naive() => format!(" until {}", t.format("%H:%M")),
        Some(t) => format!(" until {}", t.format("%b %-d %H:%M")),
        None => String::new(),
    }
}

fn environment(alert: &Alert, ctx: &Context) -> Option<crate::model::Environment> {
    alert
        .cluster
        .as_ref()
        .and_then(|c| ctx.store.cluster(c))
        .map(|c| c.environment.clone())
}
