//! The clients of the feed and what each is sent. Every client has a bounded queue of
//! frames; a frame is encoded once and the same bytes go to every queue. A client whose
//! queue is full has fallen behind: it is sent nothing more until its queue has drained,
//! then a fresh whole picture instead of what it missed. So a slow or stuck client costs
//! at most its queue (shared bytes), never a growing buffer.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::engine::Engine;
use crate::feed::{self, Frame, tokens::Grant};

/// Frames a client's queue holds before it counts as behind.
pub const QUEUE_FRAMES: usize = 64;

struct Client {
    grant: Grant,
    address: SocketAddr,
    queue: mpsc::Sender<Bytes>,
    /// Fell behind: owed a whole picture once its queue has drained.
    behind: bool,
    resyncs: u64,
}

/// Every connected client.
#[derive(Default)]
pub struct Hub {
    clients: Vec<Client>,
    last_sent: Option<Instant>,
    /// The server's first complete picture is in, and the clients were told.
    complete: bool,
    /// The last picture encoded, and the store generation it shows: clients joining
    /// while nothing changed share it (encoding 5,000 clusters takes a while).
    picture: Option<(u64, bool, Bytes)>,
}

impl Hub {
    /// A new client: its hello and the whole picture, then whatever follows.
    pub fn join(
        &mut self,
        grant: Grant,
        address: SocketAddr,
        queue: mpsc::Sender<Bytes>,
        hello: Frame,
        engine: &mut Engine,
    ) {
        // What was folded in before this client joined belongs to the others' feed; the
        // picture below already holds it.
        self.publish(engine);
        tracing::info!(token = %grant.name, %address, "client connected");
        let client = Client {
            grant,
            address,
            queue,
            behind: false,
            resyncs: 0,
        };
        let picture = self.picture(engine);
        if client.queue.try_send(feed::encode(&hello)).is_err()
            || client.queue.try_send(picture).is_err()
        {
            return;
        }
        self.clients.push(client);
    }

    /// Sends what the engine folded in since the last call (or a heartbeat when nothing
    /// was for a while), and owed pictures to clients that have caught up.
    pub fn publish(&mut self, engine: &mut Engine) {
        let events = engine.take_published();
        let now_complete = !self.complete && engine.is_ready();
        let frame = if now_complete {
            // After the events that made it whole, in one frame with them.
            self.complete = true;
            let mut frames = Vec::new();
            if !events.is_empty() {
                frames.push(feed::encode(&Frame::Events {
                    sent_at: chrono::Utc::now(),
                    events,
                }));
            }
            frames.push(feed::encode(&Frame::Complete {
                sent_at: chrono::Utc::now(),
            }));
            Some(frames.concat().into())
        } else if !events.is_empty() {
            Some(feed::encode(&Frame::Events {
                sent_at: chrono::Utc::now(),
                events,
            }))
        } else if self
            .last_sent
            .is_none_or(|t| t.elapsed() >= feed::HEARTBEAT)
        {
            Some(feed::encode(&Frame::Heartbeat {
                sent_at: chrono::Utc::now(),
            }))
        } else {
            None
        };
        if frame.is_some() {
            self.last_sent = Some(Instant::now());
        }
        // One picture for every client owed one this turn.
        let mut owed: Option<Bytes> = None;
        let cache = &mut self.picture;
        self.clients.retain_mut(|client| {
            if client.queue.is_closed() {
                tracing::info!(token = %client.grant.name, address = %client.address,
                    resyncs = client.resyncs, "client gone");
                return false;
            }
            if client.behind {
                // Caught up (its queue is empty again): the whole picture, once.
                if client.queue.capacity() == client.queue.max_capacity() {
                    let picture = owed.get_or_insert_with(|| cached(cache, engine)).clone();
                    if client.queue.try_send(picture).is_ok() {
                        client.behind = false;
                        client.resyncs += 1;
                        tracing::info!(token = %client.grant.name, address = %client.address,
                            "client caught up: sent a fresh picture");
                    }
                }
                return true;
            }
            if let Some(frame) = &frame {
                match client.queue.try_send(frame.clone()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        tracing::warn!(token = %client.grant.name, address = %client.address,
                            "client fell behind: {QUEUE_FRAMES} frames queued; it gets a fresh picture once it has read them");
                        client.behind = true;
                    }
                    Err(TrySendError::Closed(_)) => return false,
                }
            }
            true
        });
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.clients.len()
    }
}

impl Hub {
    fn picture(&mut self, engine: &Engine) -> Bytes {
        cached(&mut self.picture, engine)
    }
}

/// The whole picture, encoded; the last one again if the store has not changed since.
fn cached(cache: &mut Option<(u64, bool, Bytes)>, engine: &Engine) -> Bytes {
    let key = (engine.store().generation(), engine.is_ready());
    if let Some((generation, complete, bytes)) = cache
        && (*generation, *complete) == key
    {
        return bytes.clone();
    }
    let bytes = picture(engine);
    *cache = Some((key.0, key.1, bytes.clone()));
    bytes
}

/// The whole picture, encoded.
fn picture(engine: &Engine) -> Bytes {
    feed::encode(&Frame::Picture {
        sent_at: chrono::Utc::now(),
        complete: engine.is_ready(),
        events: engine.store().picture(),
    })
}
