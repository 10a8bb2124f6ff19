//! What a worker hands back and the I/O backends act on: the verdict on a frame, the direction of
//! an injected frame, and the [`Output`] a worker writes events and injections to. These sit below
//! both the worker ([`crate::worker`]) and the backends ([`crate::io`]), so neither imports the
//! other.

use crate::event::Event;

/// What to do with a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Forward it unchanged (inline) / nothing to do (mirror).
    Forward,
    /// Drop it.
    Drop(DropReason),
}

/// Why a frame was dropped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// Its source is blocked in its VLAN.
    Blocked,
    /// Its flow was terminated earlier.
    Terminated,
    /// It is part of an attack the policy acts on.
    Attack,
    /// A `drop`/`reject` signature rule matched it.
    Rule,
    /// It is a frame of an isolated VM that no exclusion lets through.
    Isolated,
    /// The web address scan blocked the request (a listed address, or QUIC under `quic: block`).
    WebAddress,
    /// Its headers nest too deep to inspect (9 or more VLAN tags, more than 8 IPv6 extension
    /// headers) and the policy's `decode.too_deep` is `drop`.
    TooDeep,
    /// A TCP segment with URG set, under `stream.reassembly.urgent.policy: drop` (inline or
    /// `--simulate-ips`): Suricata's `stream_urgent` drop. Its bytes never reach the stream.
    StreamUrgent,
}

/// Which way an injected frame travels, relative to the frame that caused it. Inline, a frame
/// toward the source leaves through the port the frame came in on, one toward the destination
/// through the peer port; on a mirror, both leave through the inject port.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Toward {
    /// Back to the sender of the triggering frame.
    Source,
    /// On to the receiver of the triggering frame.
    Destination,
}

/// Where a worker puts what it produces besides the verdict.
pub trait Output {
    /// An event.
    fn event(&mut self, event: Event);
    /// A frame to inject (resets), ready for the wire.
    fn inject(&mut self, frame: Vec<u8>, toward: Toward);
}

/// Collects output in vectors (replay, tests).
#[derive(Debug, Default)]
pub struct VecOutput {
    /// Events in order.
    pub events: Vec<Event>,
    /// Injected frames in order, with their direction.
    pub injected: Vec<(Vec<u8>, Toward)>,
}

impl Output for VecOutput {
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn inject(&mut self, frame: Vec<u8>, toward: Toward) {
        self.injected.push((frame, toward));
    }
}
