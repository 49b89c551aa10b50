//! Sources: one module per real system (and the demo simulator). Each runs as a tokio
//! task, owns its client, and sends `SourceEvent`s over a bounded channel. None touches
//! UI state.

pub mod aws;
pub mod demo;
pub mod eks;

use tokio::sync::{mpsc, oneshot};

use crate::model::ClusterId;

/// Capacity of the channel from all sources to the app loop. Bounded so a flood of
/// events slows the sources down instead of growing memory.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// The outcome of a write a source performed: a short human message either way.
pub type WriteResult = Result<String, String>;

/// What the app can ask a source to do.
#[derive(Debug)]
pub enum SourceCommand {
    /// The cluster now on screen (its full metric set is wanted), or none.
    Focus(Option<ClusterId>),
    /// Hold wave `wave` (index) of `rollout`: no new cell starts.
    PauseWave {
        rollout: String,
        wave: usize,
        by: String,
        reason: String,
        reply: oneshot::Sender<WriteResult>,
    },
    /// Release a paused or halted wave.
    ResumeWave {
        rollout: String,
        wave: usize,
        by: String,
        reply: oneshot::Sender<WriteResult>,
    },
}

/// A running source: its name and the way to send it commands.
#[derive(Clone, Debug)]
pub struct SourceHandle {
    pub name: String,
    pub commands: mpsc::Sender<SourceCommand>,
}
