//! The demo as a source task: a `DemoFleet` driven by a clock and by the app's commands.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::{DemoFleet, DemoOptions, SOURCE_NAME};
use crate::clock::Clock;
use crate::model::SourceEvent;
use crate::sources::{SourceCommand, SourceHandle};

/// How often (real time) the demo catches up with its clock at most...
const TICK: Duration = Duration::from_millis(500);
/// ...and at least, however fast its clock runs.
const FASTEST_TICK: Duration = Duration::from_millis(50);

/// The demo catches up once per simulated minute, as a metrics poller delivers minutes,
/// within `FASTEST_TICK..=TICK`: at `--demo-speed 600` ten times a second, one event per
/// cluster each time, so a fast demo streams events as a busy fleet would rather than
/// in a few large batches.
fn tick_for(speed: f64) -> Duration {
    Duration::from_secs_f64(60.0 / speed).clamp(FASTEST_TICK, TICK)
}
/// Commands are rare (a key press); a small queue is plenty.
const COMMAND_CAPACITY: usize = 16;

/// Spawns the demo as a tokio task: sends the initial events, then every ~500 ms (real
/// time) what happened up to `clock.now()`; handles `SourceCommand`s, replying on their
/// oneshot; exits when the events channel is closed.
pub fn spawn(
    options: DemoOptions,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (commands, mut inbox) = mpsc::channel(COMMAND_CAPACITY);
    tokio::spawn(async move {
        let mut fleet = DemoFleet::new(&options, clock.now());
        if !send_all(&events, fleet.initial_events()).await {
            return;
        }
        let mut tick = tokio::time::interval(tick_for(options.speed));
        // After a stall, catch up once rather than in a burst: each catch-up covers
        // everything up to the clock's now anyway.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut inbox_open = true;
        loop {
            let batch = tokio::select! {
                () = events.closed() => return,
                _ = tick.tick() => fleet.advance_to(clock.now()),
                command = inbox.recv(), if inbox_open => match command {
                    Some(command) => handle(&mut fleet, command, &clock),
                    // Nobody can send commands any more; keep the fleet running.
                    None => {
                        inbox_open = false;
                        Vec::new()
                    }
                },
            };
            if !send_all(&events, batch).await {
                return;
            }
        }
    });
    SourceHandle {
        name: SOURCE_NAME.into(),
        commands,
    }
}

/// Carries out one command and replies to it; returns the events it produced.
fn handle(fleet: &mut DemoFleet, command: SourceCommand, clock: &Clock) -> Vec<SourceEvent> {
    match command {
        SourceCommand::Focus(cluster) => fleet.focus(cluster, clock.now()),
        SourceCommand::Targets { seq, .. } => vec![SourceEvent::Targeted {
            source: SOURCE_NAME.into(),
            seq,
        }],
        SourceCommand::PauseWave {
            rollout,
            wave,
            by,
            reason,
            reply,
        } => {
            let result = fleet.pause_wave(&rollout, wave, &by, &reason, clock.now());
            reply_with(fleet, result, wave, "paused", reply)
        }
        SourceCommand::ResumeWave {
            rollout,
            wave,
            by,
            reply,
        } => {
            let result = fleet.resume_wave(&rollout, wave, &by, clock.now());
            reply_with(fleet, result, wave, "resumed", reply)
        }
        SourceCommand::Remediate(request) => {
            super::remediate::handle(fleet, request);
            Vec::new()
        }
        SourceCommand::SilenceAlert {
            alert,
            created_by,
            comment,
            minutes,
            reply,
            ..
        } => {
            let (result, events) =
                fleet.silence(&alert, &created_by, &comment, minutes, clock.now());
            // The requester may have stopped waiting.
            let _ = reply.send(result);
            events
        }
        SourceCommand::ExpireSilences { alert, ids, reply } => {
            let (result, events) = fleet.expire_silences(&alert, &ids);
            let _ = reply.send(result);
            events
        }
        SourceCommand::UpdateFindings {
            alert,
            notified,
            by,
            note,
            reply,
        } => {
            let (result, events) = fleet.update_findings(&alert, notified, &by, &note);
            let _ = reply.send(result);
            events
        }
        command @ SourceCommand::Relay { .. } => {
            crate::sources::refuse_wave(command, SOURCE_NAME);
            Vec::new()
        }
    }
}

fn reply_with(
    fleet: &DemoFleet,
    result: Result<Vec<SourceEvent>, crate::rollout::RolloutError>,
    wave: usize,
    verb: &str,
    reply: tokio::sync::oneshot::Sender<crate::sources::WriteResult>,
) -> Vec<SourceEvent> {
    let (message, events) = match result {
        Ok(events) => {
            let name = &fleet.rollout().waves[wave].name;
            (Ok(format!("wave {name} {verb}")), events)
        }
        Err(error) => (Err(error.to_string()), Vec::new()),
    };
    // The requester may have given up waiting; the change stands either way.
    let _ = reply.send(message);
    events
}

/// Sends events in order; false once the receiver is gone.
async fn send_all(events: &mpsc::Sender<SourceEvent>, batch: Vec<SourceEvent>) -> bool {
    for event in batch {
        if events.send(event).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_catches_up_once_a_simulated_minute_within_bounds() {
        assert_eq!(tick_for(1.0), TICK, "real time: twice a second");
        assert_eq!(tick_for(60.0), TICK, "a minute a second still ticks twice");
        assert_eq!(tick_for(600.0), Duration::from_millis(100));
        assert_eq!(tick_for(3600.0), FASTEST_TICK, "never a busy loop");
    }
}
