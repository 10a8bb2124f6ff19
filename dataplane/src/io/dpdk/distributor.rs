//! Several workers on the same ports: RSS or the software distributor, its symmetric hash,
//! and the mbuf pool they need.

use std::ffi::c_int;
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::eal::Eal;
use super::io::{DpdkAttach, DpdkConfig, DpdkIo, Out, RxSide, Shared, wall_clock};
use super::mbuf::Mempool;
use super::port::{Port, QueueLayout};
use super::ring::{RingConsumer, RingProducer, ring_pair};
use super::{DpdkError, MAX_BURST};

/// What the software distributor and RSS hash, both symmetric (the two directions of a flow
/// give the same value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowHash {
    /// The IP addresses (and VLAN tags, in software): one address pair stays on one worker, its
    /// fragments and a scan of one host by one source included. Like AF_PACKET's default.
    #[default]
    Addresses,
    /// The addresses and the TCP/UDP/SCTP ports: spreads the connections between two hosts, but
    /// a fragmented datagram's fragments (after the first) may reach another worker than its
    /// connection, and a scan's probes spread over the workers.
    Flows,
}

/// The symmetric software flow hash of an Ethernet frame: the sum of the source and
/// destination IP address words (IPv4 or IPv6, behind up to four VLAN tags), plus with
/// [`FlowHash::Flows`] the sum of the two ports of an unfragmented TCP, UDP or SCTP packet, XORed
/// with a hash of the VLAN IDs, through [`crate::io::afpacket::mix`] (AF_PACKET's finaliser; without
/// tags and ports the value is the AF_PACKET fanout program's). Sums are commutative, so both
/// directions agree. Non-IP and truncated frames hash to 0.
pub fn flow_hash(frame: &[u8], hash: FlowHash) -> u32 {
    let be16 = |at| crate::io::hash::be16(frame, at);
    let be32 = |at| crate::io::hash::be32(frame, at);
    let inner = || -> Option<u32> {
        let mut at = 12usize;
        let mut ethertype = be16(at)?;
        let mut vlans = 0u32;
        let mut tags = 0;
        while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) && tags < 4 {
            let vid = u32::from(be16(at + 2)? & 0x0fff);
            vlans = vlans.wrapping_mul(0x9e37_79b1).wrapping_add(vid + 1);
            at += 4;
            ethertype = be16(at)?;
            tags += 1;
        }
        let l3 = at + 2;
        let (mut sum, l4, proto) = match ethertype {
            0x0800 => {
                let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
                let sum = be32(l3 + 12)?.wrapping_add(be32(l3 + 16)?);
                // Flags and fragment offset: MF set or an offset means a fragment.
                let fragment = be16(l3 + 6)? & 0x3fff != 0;
                let proto = (!fragment).then(|| frame.get(l3 + 9).copied()).flatten();
                (sum, l3 + ihl.max(20), proto)
            }
            0x86dd => {
                let mut sum = 0u32;
                for w in 0..8 {
                    sum = sum.wrapping_add(be32(l3 + 8 + 4 * w)?);
                }
                // Only a transport header right after the fixed header; extension headers
                // (fragments among them) hash by the addresses alone.
                (sum, l3 + 40, frame.get(l3 + 6).copied())
            }
            _ => return None,
        };
        if hash == FlowHash::Flows
            && let Some(6 | 17 | 132) = proto
        {
            // A truncated transport header hashes by the addresses alone.
            if let (Some(sport), Some(dport)) = (be16(l4), be16(l4 + 2)) {
                sum = sum.wrapping_add(u32::from(sport).wrapping_add(u32::from(dport)));
            }
        }
        let vlans = if vlans == 0 {
            0
        } else {
            crate::io::afpacket::mix(vlans)
        };
        Some(crate::io::afpacket::mix(sum ^ vlans))
    };
    inner().unwrap_or(0)
}

/// How several workers share the received frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distribution {
    /// RSS when every receive port offers it with a queue per worker, software otherwise.
    #[default]
    Auto,
    /// RSS; opening fails if a receive port cannot.
    Rss,
    /// The software distributor, whatever the ports offer.
    Software,
}

/// What a worker set ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// One worker, one receive queue per port.
    Single,
    /// One receive queue per worker on every receive port, RSS with the symmetric key.
    Rss,
    /// One receive queue per port, polled by worker 0, which hands frames over rings.
    Software,
}

/// Settings of a worker set ([`DpdkWorkers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkersConfig {
    /// Workers (at least 1, at most the EAL's lcores).
    pub workers: u16,
    /// RSS or software.
    pub distribution: Distribution,
    /// What the distribution hashes.
    pub hash: FlowHash,
    /// Slots of each distributor ring (a power of two).
    pub ring_size: u32,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            workers: 1,
            distribution: Distribution::Auto,
            hash: FlowHash::Addresses,
            ring_size: 1024,
        }
    }
}

/// Several workers on the same ports, one [`DpdkIo`] each, each to be polled by its own thread
/// (worker 0 by the main lcore, the others by worker lcores: [`Eal::launch`]).
///
/// - [`Spread::Rss`]: every receive port gets a receive queue per worker and RSS with the
///   symmetric Toeplitz key over what [`FlowHash`] says; worker `i` polls queue `i` of every
///   receive port.
/// - [`Spread::Software`] (devices without RSS, or [`Distribution::Software`]): one receive queue
///   per port, polled by worker 0, which computes [`flow_hash`] of each frame and hands it to
///   worker `hash % workers` over a single-producer, single-consumer `rte_ring` per worker and
///   receive port (or keeps it). A full ring drops the frame (freed, counted in
///   [`DpdkIo::ring_full`] and the port's `rx_dropped`).
///
/// Either way every port gets a transmit queue per worker if the device has that many; if not,
/// worker `i` uses queue `i % queues` and takes that queue's lock around each burst. Every
/// worker forwards and injects on its own; mbuf ownership moves with the [`Mbuf`](super::Mbuf) (device, ring,
/// worker, device), so each frame is freed or transmitted exactly once; rings still holding
/// frames at the end free them.
#[derive(Debug)]
pub struct DpdkWorkers {
    pub(super) ios: Vec<DpdkIo>,
    pub(super) spread: Spread,
    pub(super) hash: FlowHash,
    pub(super) tx_queues: Vec<u16>,
}

impl DpdkWorkers {
    /// Inline between `ports[0]` (the protected side) and `ports[1]`.
    pub fn inline(
        eal: &Eal,
        ports: [u16; 2],
        cfg: &DpdkConfig,
        workers: &WorkersConfig,
    ) -> Result<DpdkWorkers, DpdkError> {
        if ports[0] == ports[1] {
            return Err(DpdkError::Config("inline needs two distinct ports"));
        }
        Self::open(eal, DpdkAttach::Inline, &ports, cfg, workers)
    }

    /// Mirror: receive on `rx`; transmit injected frames on `inject`, if any.
    pub fn mirror(
        eal: &Eal,
        rx: u16,
        inject: Option<u16>,
        cfg: &DpdkConfig,
        workers: &WorkersConfig,
    ) -> Result<DpdkWorkers, DpdkError> {
        match inject {
            Some(i) if i == rx => Err(DpdkError::Config(
                "the inject port must differ from the receive port",
            )),
            Some(i) => Self::open(eal, DpdkAttach::Mirror, &[rx, i], cfg, workers),
            None => Self::open(eal, DpdkAttach::Mirror, &[rx], cfg, workers),
        }
    }

    /// The distribution chosen.
    pub fn spread(&self) -> Spread {
        self.spread
    }

    /// What the distribution hashes.
    pub fn hash(&self) -> FlowHash {
        self.hash
    }

    /// Transmit queues per port (fewer than the workers: shared, with a lock).
    pub fn tx_queues(&self) -> &[u16] {
        &self.tx_queues
    }

    /// The workers' I/O, by worker index.
    pub fn ios(&self) -> &[DpdkIo] {
        &self.ios
    }

    /// The workers' I/O, by worker index, to move each to its thread.
    pub fn into_ios(self) -> Vec<DpdkIo> {
        self.ios
    }

    pub(super) fn single(self) -> Result<DpdkIo, DpdkError> {
        self.ios
            .into_iter()
            .next()
            .ok_or(DpdkError::Config("no worker"))
    }

    pub(super) fn open(
        eal: &Eal,
        attach: DpdkAttach,
        ids: &[u16],
        cfg: &DpdkConfig,
        wcfg: &WorkersConfig,
    ) -> Result<DpdkWorkers, DpdkError> {
        let n = wcfg.workers;
        if n == 0 {
            return Err(DpdkError::Config("at least one worker"));
        }
        // Before any port opens: a worker needs an lcore.
        let lcores = eal.lcore_count();
        if u32::from(n) > lcores {
            return Err(DpdkError::Lcores { workers: n, lcores });
        }
        let rx_ports = match attach {
            DpdkAttach::Inline => ids.len(),
            DpdkAttach::Mirror => 1,
        };
        let caps = ids
            .iter()
            .map(|&id| Port::caps(eal, id))
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: a pure function of its argument.
        let wanted = unsafe { sys::shim_rss_hf(c_int::from(wcfg.hash == FlowHash::Flows)) };
        let lacks_rss = ids
            .iter()
            .zip(&caps)
            .take(rx_ports)
            .find(|(_, c)| c.max_rx_queues < n || c.rss_offloads & wanted == 0);
        let spread = match (n, wcfg.distribution, lacks_rss) {
            (1, _, _) => Spread::Single,
            (_, Distribution::Software, _) | (_, Distribution::Auto, Some(_)) => Spread::Software,
            (_, Distribution::Rss | Distribution::Auto, None) => Spread::Rss,
            (_, Distribution::Rss, Some((&id, c))) => {
                return Err(DpdkError::NoRss {
                    port: id,
                    workers: n,
                    max_rx_queues: c.max_rx_queues,
                });
            }
        };
        let layouts: Vec<QueueLayout> = caps
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let rss = spread == Spread::Rss && i < rx_ports;
                QueueLayout {
                    rx: if rss { n } else { 1 },
                    tx: n.min(c.max_tx_queues).max(1),
                    rss: rss.then_some(wcfg.hash),
                }
            })
            .collect();
        let pool = Mempool::new(
            eal,
            &cfg.pool_name,
            pool_size(cfg, wcfg, spread, &layouts, lcores),
            cfg.cache,
        )?;
        let ports = ids
            .iter()
            .zip(&layouts)
            .map(|(&id, &layout)| Port::open_queues(eal, id, &pool, &cfg.port, layout))
            .collect::<Result<Vec<_>, _>>()?;
        let tx_locks = layouts
            .iter()
            .map(|l| (0..l.tx).map(|_| Mutex::new(())).collect())
            .collect();
        let shared = Arc::new(Shared {
            ports,
            pool,
            tx_locks,
        });
        // Software distribution: a ring per other worker and receive port.
        let mut producers: Vec<Vec<RingProducer>> = Vec::new();
        let mut consumers: Vec<Vec<RingConsumer>> = Vec::new();
        if spread == Spread::Software {
            for _ in 1..n {
                let (mut ps, mut cs) = (Vec::new(), Vec::new());
                for _ in 0..rx_ports {
                    let (p, c) = ring_pair(wcfg.ring_size)?;
                    ps.push(p);
                    cs.push(c);
                }
                producers.push(ps);
                consumers.push(cs);
            }
        }
        let mut consumers = consumers.into_iter();
        let workers = usize::from(n);
        let ios = (0..n)
            .map(|w| {
                let rx = match (spread, w) {
                    (Spread::Software, 0) => RxSide::Distribute {
                        hash: wcfg.hash,
                        staged: producers
                            .iter()
                            .map(|_| Vec::with_capacity(MAX_BURST))
                            .collect(),
                        rings: std::mem::take(&mut producers),
                        own: Vec::with_capacity(MAX_BURST),
                    },
                    (Spread::Software, _) => RxSide::Rings(consumers.next().unwrap_or_default()),
                    (Spread::Single | Spread::Rss, w) => RxSide::Queue(w),
                };
                DpdkIo {
                    attach,
                    shared: Arc::clone(&shared),
                    worker: usize::from(w),
                    rx,
                    txq: layouts
                        .iter()
                        .map(|l| (w % l.tx.max(1), l.tx < n))
                        .collect(),
                    rx_buf: Vec::with_capacity(MAX_BURST),
                    out: Out {
                        attach,
                        tx: ids
                            .iter()
                            .map(|_| Vec::with_capacity(2 * MAX_BURST))
                            .collect(),
                        injections: Vec::new(),
                        verdicts: Vec::with_capacity(MAX_BURST),
                        marks: Vec::new(),
                        free: Vec::with_capacity(MAX_BURST),
                        linear: Vec::new(),
                        tx_failed: vec![0; ids.len()],
                        unsent_injections: 0,
                    },
                    ring_full: vec![0; ids.len()],
                    handed: vec![0; workers],
                    clock: wall_clock,
                }
            })
            .collect();
        Ok(DpdkWorkers {
            ios,
            spread,
            hash: wcfg.hash,
            tx_queues: layouts.iter().map(|l| l.tx).collect(),
        })
    }
}

/// Mbufs the pool needs: every receive and transmit descriptor, every distributor ring, every
/// lcore's cache, and each worker's bursts in flight (received, and queued per port); at least
/// `cfg.mbufs`.
pub(super) fn pool_size(
    cfg: &DpdkConfig,
    w: &WorkersConfig,
    spread: Spread,
    layouts: &[QueueLayout],
    lcores: u32,
) -> u32 {
    let rx_desc = u32::from(cfg.port.rx_desc);
    let tx_desc = u32::from(cfg.port.tx_desc);
    let burst = u32::try_from(MAX_BURST).unwrap_or(u32::MAX);
    let workers = u32::from(w.workers);
    let ports = u32::try_from(layouts.len()).unwrap_or(u32::MAX);
    let queues = layouts.iter().fold(0u32, |a, l| {
        a.saturating_add(u32::from(l.rx).saturating_mul(rx_desc))
            .saturating_add(u32::from(l.tx).saturating_mul(tx_desc))
    });
    let rings = if spread == Spread::Software {
        workers.saturating_sub(1)
    } else {
        0
    }
    .saturating_mul(ports)
    .saturating_mul(w.ring_size);
    let caches = lcores.saturating_mul(cfg.cache.saturating_mul(3) / 2);
    let flight = workers.saturating_mul(
        ports
            .saturating_mul(2)
            .saturating_add(1)
            .saturating_mul(burst),
    );
    queues
        .saturating_add(rings)
        .saturating_add(caches)
        .saturating_add(flight)
        .max(cfg.mbufs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An Ethernet frame with `tags` (TPID 0x8100, then the VIDs) around an IP packet.
    fn eth(tags: &[u16], ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for vid in tags {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, ports: (u16, u16), frag: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0];
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0u8; 16]);
        p
    }

    fn v6(src: [u8; 16], dst: [u8; 16], next: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, next, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p.extend_from_slice(&[0u8; 16]);
        p
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn without_tags_and_ports_it_is_the_af_packet_fanout_value() {
        let f = eth(&[], 0x0800, &v4(A, B, 6, (1234, 80), 0));
        let sum = u32::from_be_bytes(A).wrapping_add(u32::from_be_bytes(B));
        assert_eq!(
            flow_hash(&f, FlowHash::Addresses),
            crate::io::afpacket::mix(sum)
        );
    }

    #[test]
    fn both_directions_agree_and_ports_and_vlans_count() {
        for hash in [FlowHash::Addresses, FlowHash::Flows] {
            for tags in [&[][..], &[100], &[100, 200]] {
                let ab = eth(tags, 0x0800, &v4(A, B, 6, (40000, 80), 0));
                let ba = eth(tags, 0x0800, &v4(B, A, 6, (80, 40000), 0));
                assert_eq!(
                    flow_hash(&ab, hash),
                    flow_hash(&ba, hash),
                    "{hash:?} {tags:?}"
                );
                assert_ne!(flow_hash(&ab, hash), 0);
            }
        }
        let f = |tags: &[u16], sport| eth(tags, 0x0800, &v4(A, B, 17, (sport, 53), 0));
        // Ports: only with Flows.
        assert_eq!(
            flow_hash(&f(&[], 1000), FlowHash::Addresses),
            flow_hash(&f(&[], 1001), FlowHash::Addresses)
        );
        assert_ne!(
            flow_hash(&f(&[], 1000), FlowHash::Flows),
            flow_hash(&f(&[], 1001), FlowHash::Flows)
        );
        // VLANs: the same addresses in two VLANs hash apart.
        assert_ne!(
            flow_hash(&f(&[100], 1000), FlowHash::Addresses),
            flow_hash(&f(&[101], 1000), FlowHash::Addresses)
        );
        // A fragment hashes by the addresses alone, like its first fragment would not: so all
        // fragments of a datagram agree (the first one has MF set, hence also no ports).
        let frag = |off| eth(&[], 0x0800, &v4(A, B, 17, (1000, 53), off));
        assert_eq!(
            flow_hash(&frag(0x2000), FlowHash::Flows),
            flow_hash(&frag(0x0010), FlowHash::Flows)
        );
        assert_eq!(
            flow_hash(&frag(0x2000), FlowHash::Flows),
            flow_hash(&f(&[], 1000), FlowHash::Addresses)
        );
    }

    #[test]
    fn ipv6_is_symmetric_and_non_ip_is_zero() {
        let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let b = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        for hash in [FlowHash::Addresses, FlowHash::Flows] {
            let ab = eth(&[7], 0x86dd, &v6(a, b, 6, (5555, 443)));
            let ba = eth(&[7], 0x86dd, &v6(b, a, 6, (443, 5555)));
            assert_eq!(flow_hash(&ab, hash), flow_hash(&ba, hash));
            assert_ne!(flow_hash(&ab, hash), 0);
        }
        assert_eq!(flow_hash(&eth(&[], 0x0806, &[0u8; 28]), FlowHash::Flows), 0);
        assert_eq!(flow_hash(&[0u8; 10], FlowHash::Flows), 0);
        // Truncated inside the addresses: 0; inside the ports: the addresses alone.
        let full = eth(&[], 0x0800, &v4(A, B, 6, (1, 2), 0));
        assert_eq!(
            flow_hash(full.get(..28).unwrap_or_default(), FlowHash::Flows),
            0
        );
        assert_eq!(
            flow_hash(full.get(..35).unwrap_or_default(), FlowHash::Flows),
            flow_hash(&full, FlowHash::Addresses)
        );
    }

    #[test]
    fn pool_size_covers_queues_rings_and_caches() {
        let cfg = DpdkConfig::default();
        let single = [QueueLayout::SINGLE; 2];
        assert_eq!(
            pool_size(&cfg, &WorkersConfig::default(), Spread::Single, &single, 1),
            8191
        );
        let w = WorkersConfig {
            workers: 2,
            ..WorkersConfig::default()
        };
        let rss = [QueueLayout {
            rx: 2,
            tx: 2,
            rss: Some(FlowHash::Addresses),
        }; 2];
        // 2 ports x (2 x 1024 + 2 x 1024) + 2 lcores x 384 + 2 x 5 x 256
        assert_eq!(pool_size(&cfg, &w, Spread::Rss, &rss, 2), 8192 + 768 + 2560);
        let soft = [QueueLayout {
            rx: 1,
            tx: 1,
            rss: None,
        }; 2];
        // 2 x 2048 + 1 x 2 rings x 1024 + 768 + 2560
        assert_eq!(
            pool_size(&cfg, &w, Spread::Software, &soft, 2),
            4096 + 2048 + 768 + 2560
        );
    }

    proptest! {
        #[test]
        fn never_panics(frame in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = flow_hash(&frame, FlowHash::Addresses);
            let _ = flow_hash(&frame, FlowHash::Flows);
        }

        #[test]
        fn symmetric_for_any_v4_flow(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            sport in any::<u16>(), dport in any::<u16>(),
            proto in prop_oneof![Just(6u8), Just(17), Just(132), Just(1)],
            tags in proptest::collection::vec(0u16..4096, 0..3),
        ) {
            for hash in [FlowHash::Addresses, FlowHash::Flows] {
                let ab = eth(&tags, 0x0800, &v4(src, dst, proto, (sport, dport), 0));
                let ba = eth(&tags, 0x0800, &v4(dst, src, proto, (dport, sport), 0));
                prop_assert_eq!(flow_hash(&ab, hash), flow_hash(&ba, hash));
            }
        }
    }
}
