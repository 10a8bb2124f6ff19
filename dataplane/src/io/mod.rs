//! Packet I/O backends behind one trait.
//!
//! A backend owns one or two ports. [`PacketIo::poll`] receives a burst from every receive port,
//! hands each frame to a [`FrameHandler`] (the worker), then transmits a burst: frames the
//! handler forwards go out of the peer port unchanged (inline), frames it injects go out of the
//! port their direction calls for; finally the received buffers are released to the device.
//!
//! Port numbering: inline, port 0 faces the protected VMs and port 1 the network, each the other's
//! peer. Mirror: port 0 receives copies; port 1, if configured, only transmits injected frames.
//!
//! The offline backend is [`pcap`] ([`pcap::PcapIo`], under `svm replay`); the live backends
//! (AF_PACKET, DPDK: `dpdk`, behind the cargo feature of that name) implement the same trait, and
//! [`queue`] is an in-memory device for tests. [`crate::driver::run_worker`] drives any of them.

use crate::output::{Toward, Verdict};
use crate::time::Timestamp;

#[cfg(target_os = "linux")]
pub mod afpacket;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod hash;
pub mod pcap;
pub use svm_packet::io::prefetch;
pub mod queue;

/// Index of a port of a backend (0 or 1).
pub type PortId = u16;

/// Receive metadata of one frame.
#[derive(Clone, Copy, Debug)]
pub struct RxMeta {
    /// The port the frame arrived on.
    pub port: PortId,
    /// Receive time.
    pub ts: Timestamp,
}

/// The consumer of received frames: decides each frame's fate and may ask for frames to be
/// injected. Backends hand frames over one at a time ([`FrameHandler::on_frame`]) or a receive
/// burst at a time ([`FrameHandler::on_burst`], DPDK); either way each frame is decided once, in
/// the order received.
pub trait FrameHandler {
    /// Decide what happens to one received frame. The bytes are only valid during the call.
    fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict;
    /// Decide the fate of the first frames of a receive burst, in order: all of `frames` arrived
    /// on `meta.port` at `meta.ts`. Pushes one verdict per frame it handled onto `verdicts` and
    /// returns how many it handled, at least one unless `frames` is empty. A handler stops after
    /// a frame that caused injections, so that the backend, which drains
    /// [`FrameHandler::take_injections`] after each call, transmits them in the order a
    /// frame-at-a-time handler would; the backend then calls again with the rest.
    ///
    /// Lets a handler work on the burst as a whole (e.g. look up every frame's flow before
    /// processing the first). The default hands the first frame to [`FrameHandler::on_frame`].
    fn on_burst(&mut self, frames: &[&[u8]], meta: RxMeta, verdicts: &mut Vec<Verdict>) -> usize {
        match frames.first() {
            Some(frame) => {
                verdicts.push(self.on_frame(frame, meta));
                1
            }
            None => 0,
        }
    }
    /// Frames to transmit now, each with the direction relative to the frame that caused it and
    /// the port that frame arrived on. The backend drains this after each frame.
    fn take_injections(&mut self, out: &mut Vec<Injection>);
    /// How many frames ahead of the one handed over the handler wants named to
    /// [`FrameHandler::prefetch`] now, 0 for none (the default). A backend that can see its next
    /// frames without moving them (replay: the reader's buffer) asks once per poll, so the
    /// common frame pays nothing; the worker says yes only while new flows flood in
    /// ([`crate::flow::FlowTable::flooded`]).
    fn lookahead(&self) -> usize {
        0
    }
    /// A hint: `frame` will be handed over soon (after the frames before it). Changes no
    /// verdict and no state that decides one: the worker only starts fetching the cache lines
    /// the frame's lookups will read. The default does nothing.
    fn prefetch(&mut self, frame: &[u8]) {
        let _ = frame;
    }
}

/// A frame to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The frame, ready for the wire.
    pub frame: Vec<u8>,
    /// Direction relative to the triggering frame.
    pub toward: Toward,
    /// The port the triggering frame arrived on.
    pub rx_port: PortId,
}

/// Counters of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames transmitted (forwarded and injected).
    pub tx_packets: u64,
    /// Frames the device or kernel dropped before we saw them.
    pub rx_dropped: u64,
    /// Frames we could not transmit (ring full).
    pub tx_failed: u64,
}

/// A packet I/O backend.
pub trait PacketIo {
    /// Receive one burst (at most `burst` frames per receive port), run the handler on each
    /// frame, transmit forwarded and injected frames, release the buffers. Returns the number of
    /// frames received; 0 means nothing was waiting (the caller may back off).
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize>;
    /// Counters per port.
    fn stats(&self) -> Vec<PortStats>;
    /// After a poll that received nothing: wait a little for traffic (the default sleeps
    /// [`IDLE_SLEEP`]; AF_PACKET waits in `poll(2)`), so an idle worker leaves the CPU to the
    /// rest of the machine.
    fn idle(&mut self) -> std::io::Result<()> {
        std::thread::sleep(IDLE_SLEEP);
        Ok(())
    }
    /// Whether no frame will ever come again (the end of a capture); live devices never end.
    fn at_end(&self) -> bool {
        false
    }
    /// Injected frames that had no port to leave by (a mirror without an inject port).
    fn unsent(&self) -> u64 {
        0
    }
}

/// How long [`PacketIo::idle`] sleeps by default. Adds at most about this much latency to the
/// first frame after a pause; on a small machine, or over `net_af_packet`, busy polling starves
/// whatever feeds the ports.
pub const IDLE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);
