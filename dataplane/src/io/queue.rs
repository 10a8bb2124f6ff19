//! An in-memory device: frames queued in, forwarded and injected frames collected out, per port,
//! with the same port rules as the live backends (see [`crate::io`]). For tests of whatever
//! drives a [`FrameHandler`] (the driver, [`crate::driver`]), without sockets or captures.

use std::collections::VecDeque;

use super::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use crate::output::{Toward, Verdict};
use crate::time::Timestamp;

/// How the queue device is attached, as the live backends are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueAttach {
    /// Two ports, each the other's peer: forwarded frames leave by the peer port.
    Inline,
    /// Port 0 receives copies (nothing is forwarded); injected frames leave by port 1 when
    /// `inject` is set, and are counted as unsent otherwise.
    Mirror {
        /// Whether port 1 exists for injections.
        inject: bool,
    },
}

/// A frame that left the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The frame.
    pub frame: Vec<u8>,
    /// Whether it was injected (else forwarded).
    pub injected: bool,
}

/// The in-memory device.
#[derive(Debug)]
pub struct QueueIo {
    attach: QueueAttach,
    rx: VecDeque<(PortId, Timestamp, Vec<u8>)>,
    tx: [Vec<Sent>; 2],
    stats: [PortStats; 2],
    closed: bool,
    unsent: u64,
    injections: Vec<Injection>,
}

impl QueueIo {
    /// An empty device.
    pub fn new(attach: QueueAttach) -> QueueIo {
        QueueIo {
            attach,
            rx: VecDeque::new(),
            tx: [Vec::new(), Vec::new()],
            stats: [PortStats::default(); 2],
            closed: false,
            unsent: 0,
            injections: Vec::new(),
        }
    }

    /// Queue `frame` to arrive on `port` at `ts`.
    pub fn push(&mut self, port: PortId, ts: Timestamp, frame: Vec<u8>) {
        self.rx.push_back((port, ts, frame));
    }

    /// No more frames will be queued: once the queue is empty the device is at its end.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// The frames that left by `port`, in order (taken).
    pub fn take_sent(&mut self, port: PortId) -> Vec<Sent> {
        self.tx
            .get_mut(usize::from(port))
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Frames still queued.
    pub fn waiting(&self) -> usize {
        self.rx.len()
    }

    fn send(&mut self, port: Option<PortId>, frame: Vec<u8>, injected: bool) {
        match port.and_then(|p| {
            let i = usize::from(p);
            self.tx.get_mut(i).zip(self.stats.get_mut(i))
        }) {
            Some((tx, st)) => {
                st.tx_packets += 1;
                tx.push(Sent { frame, injected });
            }
            None => self.unsent += 1,
        }
    }

    fn out_port(&self, rx_port: PortId, toward: Toward) -> Option<PortId> {
        match (self.attach, toward) {
            (QueueAttach::Inline, Toward::Source) => Some(rx_port),
            (QueueAttach::Inline, Toward::Destination) => Some(rx_port ^ 1),
            (QueueAttach::Mirror { inject }, _) => inject.then_some(1),
        }
    }
}

impl PacketIo for QueueIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize> {
        let mut n = 0;
        while n < burst.max(1) {
            let Some((port, ts, frame)) = self.rx.pop_front() else {
                break;
            };
            n += 1;
            if let Some(st) = self.stats.get_mut(usize::from(port)) {
                st.rx_packets += 1;
                st.rx_bytes += frame.len() as u64;
            }
            let verdict = handler.on_frame(&frame, RxMeta { port, ts });
            if verdict == Verdict::Forward && self.attach == QueueAttach::Inline {
                self.send(Some(port ^ 1), frame, false);
            }
            let mut injections = std::mem::take(&mut self.injections);
            handler.take_injections(&mut injections);
            for inj in injections.drain(..) {
                let port = self.out_port(inj.rx_port, inj.toward);
                self.send(port, inj.frame, true);
            }
            self.injections = injections;
        }
        Ok(n)
    }

    fn stats(&self) -> Vec<PortStats> {
        match self.attach {
            QueueAttach::Inline | QueueAttach::Mirror { inject: true } => self.stats.to_vec(),
            QueueAttach::Mirror { inject: false } => self.stats.iter().take(1).copied().collect(),
        }
    }

    fn idle(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn at_end(&self) -> bool {
        self.closed && self.rx.is_empty()
    }

    fn unsent(&self) -> u64 {
        self.unsent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forwards frames that start with 1, drops the others, and injects one frame toward each
    /// side for frames that start with 2.
    struct Toy {
        port: PortId,
        pending: Vec<(Vec<u8>, Toward)>,
    }

    impl FrameHandler for Toy {
        fn on_frame(&mut self, frame: &[u8], meta: RxMeta) -> Verdict {
            self.port = meta.port;
            match frame.first() {
                Some(1) => Verdict::Forward,
                Some(2) => {
                    self.pending.push((vec![20], Toward::Source));
                    self.pending.push((vec![21], Toward::Destination));
                    Verdict::Drop(crate::output::DropReason::Attack)
                }
                _ => Verdict::Drop(crate::output::DropReason::Rule),
            }
        }
        fn take_injections(&mut self, out: &mut Vec<Injection>) {
            let rx_port = self.port;
            out.extend(self.pending.drain(..).map(|(frame, toward)| Injection {
                frame,
                toward,
                rx_port,
            }));
        }
    }

    fn toy() -> Toy {
        Toy {
            port: 0,
            pending: Vec::new(),
        }
    }

    fn sent(f: u8, injected: bool) -> Sent {
        Sent {
            frame: vec![f],
            injected,
        }
    }

    #[test]
    fn inline_forwards_to_the_peer_and_injects_by_direction() {
        let mut io = QueueIo::new(QueueAttach::Inline);
        io.push(0, Timestamp(1), vec![1]);
        io.push(1, Timestamp(2), vec![2]);
        io.push(0, Timestamp(3), vec![3]);
        io.close();
        let mut h = toy();
        assert_eq!(io.poll(&mut h, 2).ok(), Some(2));
        assert!(!io.at_end());
        assert_eq!(io.poll(&mut h, 2).ok(), Some(1));
        assert!(io.at_end());
        assert_eq!(io.poll(&mut h, 2).ok(), Some(0));
        // Frame 1 from port 0 went out of port 1; the reset toward the source of frame 2
        // (received on port 1) out of port 1, the one toward its destination out of port 0.
        assert_eq!(io.take_sent(0), vec![sent(21, true)]);
        assert_eq!(io.take_sent(1), vec![sent(1, false), sent(20, true)]);
        let st = io.stats();
        assert_eq!(st.iter().map(|s| s.rx_packets).sum::<u64>(), 3);
        assert_eq!(st.iter().map(|s| s.tx_packets).sum::<u64>(), 3);
        assert_eq!(io.unsent(), 0);
    }

    #[test]
    fn mirror_forwards_nothing_and_injects_on_port_1_or_counts_unsent() {
        for inject in [true, false] {
            let mut io = QueueIo::new(QueueAttach::Mirror { inject });
            io.push(0, Timestamp(1), vec![1]);
            io.push(0, Timestamp(2), vec![2]);
            let mut h = toy();
            assert_eq!(io.poll(&mut h, 8).ok(), Some(2));
            assert!(io.take_sent(0).is_empty());
            if inject {
                assert_eq!(io.take_sent(1), vec![sent(20, true), sent(21, true)]);
                assert_eq!(io.unsent(), 0);
            } else {
                assert!(io.take_sent(1).is_empty());
                assert_eq!(io.unsent(), 2);
                assert_eq!(io.stats().len(), 1);
            }
            // Never closed: not at its end though empty.
            assert!(!io.at_end());
        }
    }
}
