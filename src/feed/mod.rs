//! The feed between `fleetdeck serve` and the consoles connected to it (`--connect`): one
//! process reads the fleet, every console shows it.
//!
//! A client asks `GET /v1/feed` with its bearer token and the protocol it speaks (the
//! `fleetdeck-protocol` header). The answer is a stream of frames: `Hello` (who the
//! server is, the role the token carries, its clock and rollout plans), then `Picture`
//! (the whole store as the events that build it, `Store::picture`), then `Events` as they
//! are folded into the server's store, `Complete` once the server's own sources have
//! all delivered their first picture (a `snapshot --connect` waits for it), and a
//! `Heartbeat` every few seconds when nothing else is said. A client that falls behind gets a fresh `Picture` instead of the events
//! it missed. The client folds every event into its own store, exactly as a local source's:
//! the same program with a different source.
//!
//! Encoding: each frame is JSON (the serde shapes the snapshot and the warm-start file
//! already use), prefixed by its length and a byte saying whether it is gzip-compressed
//! (frames over [`COMPRESS_OVER`] bytes are). A frame is encoded once and the same bytes
//! go to every client, so the server's work does not grow with the number of clients.

pub mod tokens;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::actions::{Action, Mode};
use crate::model::{SourceEvent, Timestamp};
use crate::rollout::plan::Plan;

/// The protocol this build speaks. A client and a server that differ refuse each other,
/// saying so.
pub const PROTOCOL: u32 = 1;
/// The request header that carries the client's protocol.
pub const PROTOCOL_HEADER: &str = "fleetdeck-protocol";
/// The media type of the feed.
pub const CONTENT_TYPE: &str = "application/vnd.fleetdeck.feed";
/// Frames larger than this are gzip-compressed.
pub const COMPRESS_OVER: usize = 16 * 1024;
/// A frame (after decompression) larger than this is refused: no server sends one.
pub const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;
/// A heartbeat goes out when nothing else has for this long.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// The feed's paths.
pub const FEED_PATH: &str = "/v1/feed";
pub const ACTIONS_PATH: &str = "/v1/actions";
pub const HEALTH_PATH: &str = "/healthz";

/// One message of the feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "kebab-case")]
pub enum Frame {
    Hello(Hello),
    /// The whole picture: replaces what the client knew. `complete`: the server's
    /// sources had all delivered their first complete picture (else `Complete` follows
    /// once they have).
    Picture {
        sent_at: Timestamp,
        complete: bool,
        events: Vec<SourceEvent>,
    },
    /// The server's first complete picture is in: what the client has now is whole.
    Complete {
        sent_at: Timestamp,
    },
    /// What the server folded into its store since the last frame, in order.
    Events {
        sent_at: Timestamp,
        events: Vec<SourceEvent>,
    },
    /// Nothing changed; the feed is alive.
    Heartbeat {
        sent_at: Timestamp,
    },
}

/// The first frame: who the server is and what the client may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// The server's fleetdeck version.
    pub version: String,
    /// The server's host name.
    pub server: String,
    /// The token's name.
    pub token: String,
    /// What the token allows: a viewer's console offers no write keys.
    pub role: Mode,
    /// The server's own mode: a server started `--viewer` carries out nothing.
    pub server_mode: Mode,
    /// The server shows the simulated demo fleet.
    pub demo: bool,
    /// The server's clock now, and how fast it runs (the demo's runs faster).
    pub now: Timestamp,
    pub speed: f64,
    /// The rollout plans of the server's config (`[hub] plans`), by ApplicationSet.
    #[serde(default)]
    pub plans: BTreeMap<String, Plan>,
}

/// A write sent by a connected console (`POST /v1/actions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: Action,
    /// Preview only (a dry run), nothing changes and nothing is audited.
    #[serde(default)]
    pub dry_run: bool,
    /// The OS user of the console, for the server's audit log.
    pub os_user: String,
}

/// The server's answer to an `ActionRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    pub ok: bool,
    pub message: String,
}

/// Encodes a frame once, for every client: length (4 bytes, big-endian), compression
/// (1 byte: 0 none, 1 gzip), then the JSON.
pub fn encode(frame: &Frame) -> Bytes {
    let json = match serde_json::to_vec(frame) {
        Ok(json) => json,
        // Every type in a frame serializes; a failure here is a bug, not input.
        Err(e) => {
            tracing::error!("feed frame not encodable: {e}");
            return Bytes::new();
        }
    };
    let (flag, payload) = if json.len() > COMPRESS_OVER {
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 8),
            flate2::Compression::fast(),
        );
        match gz.write_all(&json).and_then(|()| gz.finish()) {
            Ok(packed) => (1u8, packed),
            Err(_) => (0u8, json),
        }
    } else {
        (0u8, json)
    };
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&[flag]);
    out.extend_from_slice(&payload);
    out.freeze()
}

/// Why the bytes of a feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("frame of {0} bytes is larger than any server sends")]
    TooLarge(usize),
    #[error("unknown compression {0} in a frame header")]
    Compression(u8),
    #[error("frame does not unpack: {0}")]
    Unpack(std::io::Error),
    #[error("frame is not a feed frame: {0}")]
    Json(serde_json::Error),
}

/// Reassembles frames from the bytes of the stream, as they arrive in pieces.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let len = len as usize;
        if len > MAX_FRAME_BYTES {
            return Err(DecodeError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            self.buf.reserve(5 + len - self.buf.len());
            return Ok(None);
        }
        let flag = self.buf[4];
        self.buf.advance(5);
        let payload = self.buf.split_to(len);
        let json = match flag {
            0 => payload.to_vec(),
            1 => {
                let mut out = Vec::with_capacity(len * 8);
                flate2::read::GzDecoder::new(&payload[..])
                    .take(MAX_FRAME_BYTES as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(DecodeError::Unpack)?;
                if out.len() > MAX_FRAME_BYTES {
                    return Err(DecodeError::TooLarge(out.len()));
                }
                out
            }
            other => return Err(DecodeError::Compression(other)),
        };
        serde_json::from_slice(&json)
            .map(Some)
            .map_err(DecodeError::Json)
    }
}

/// The host of a feed URL, for the header's `via HOST`.
pub fn host_of(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| {
            u.authority()
                .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests;
