//! The AF_PACKET backend: Linux packet sockets with a TPACKET_V3 mmap receive ring.
//!
//! - Receive: one socket per receive port, a TPACKET_V3 ring of `block_count` blocks of
//!   `block_size` bytes. The kernel fills a block and hands it over when it is full or when the
//!   retire timeout runs out; we walk its packets, hand each to the [`FrameHandler`], and give
//!   the block back at once (frames we forward are copied out first).
//! - VLAN tags: the kernel strips the outer tag of a frame whose skb carries it as metadata
//!   (hardware or veth VLAN offload) and reports it in the ring header (`tp_vlan_tci`,
//!   `tp_vlan_tpid`, flags `TP_STATUS_VLAN_VALID` / `TP_STATUS_VLAN_TPID_VALID`); this is the
//!   ring's form of `PACKET_AUXDATA`. We re-insert the tag before the handler sees the frame, so
//!   VLAN scope and QinQ (outer tag from the header, inner one still in the data) work, and
//!   forwarded frames leave with their tags (Suricata bug 1780).
//! - Transmit: `sendmmsg` on the same socket (bound to its interface), batched once per poll,
//!   `PACKET_QDISC_BYPASS` on. Simpler than a TX ring and enough at veth speeds (one syscall per
//!   burst). A frame the kernel refuses is counted in `tx_failed`, never retried.
//! - Our own transmissions are not received back: `PACKET_IGNORE_OUTGOING` (Linux 4.20), and
//!   frames the ring marks `PACKET_OUTGOING` are skipped as a fallback.
//! - Promiscuous mode through `PACKET_ADD_MEMBERSHIP` (dropped with the socket).
//! - Several workers: each opens its own sockets and joins one fanout group per interface. Both
//!   directions of a flow arrive on different interfaces, so each interface's group must pick the
//!   same worker for both: the groups have the same members in the same order (sockets are
//!   opened one worker after the other), and the hash must be symmetric:
//!   - [`FanoutHash::Kernel`], `PACKET_FANOUT_HASH`: the skb flow hash. The kernel's software
//!     flow hash is symmetric (`__flow_hash_consistentify` orders addresses and ports before
//!     hashing), but a NIC that reports its own RSS hash (Toeplitz, usually not symmetric)
//!     replaces it. Fragments hash without ports, so they may land on another worker than
//!     their flow; we do not set `PACKET_FANOUT_FLAG_DEFRAG`, because the kernel would then
//!     reassemble, and we must see (and forward) fragments as they are.
//!   - [`FanoutHash::Addresses`] (the default): a classic BPF program (`PACKET_FANOUT_CBPF`)
//!     computes the sum of the source and destination IP addresses (IPv4, or the eight words of
//!     two IPv6 addresses; the outer VLAN tag is metadata by then and a QinQ inner tag is
//!     skipped), through a multiplicative finaliser. Symmetric whatever the NIC does,
//!     and it keeps one address pair on one worker: fragments with their flow, and a port scan
//!     of one host seen whole by one worker's detector. Non-IP frames go to worker 0.
//!
//! Safety: every `unsafe` block is in this module and carries a `SAFETY:` note. The ring is
//! shared with the kernel: we read a block only after its status says it is ours (acquire
//! load), read packet headers with bounds checked against the block, and hand the block back
//! with a release store.

#![allow(unsafe_code)]

use core::mem::{offset_of, size_of};
use core::ptr::NonNull;
use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::io::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use crate::output::{Toward, Verdict};
use crate::time::Timestamp;

/// Receive ring geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block; a power of two, a multiple of the page size.
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// Nominal frame size (TPACKET_V3 packs frames; this only sets `tp_frame_nr`).
    pub frame_size: u32,
    /// A block is handed over after this many milliseconds even if not full.
    pub retire_ms: u32,
}

impl Default for RingConfig {
    /// 64 blocks of 256 KiB: 16 MiB per receive socket, about 8000 full-size frames, and a
    /// retire timeout of 2 ms (latency of a lone packet in a quiet block).
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 18,
            block_count: 64,
            frame_size: 2048,
            retire_ms: 2,
        }
    }
}

/// How a fanout group spreads packets over workers (both must be symmetric, see module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanoutHash {
    /// Classic BPF sum of the IP addresses.
    #[default]
    Addresses,
    /// The kernel's flow hash (`PACKET_FANOUT_HASH`).
    Kernel,
}

/// Fanout group membership of one worker's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// Group id of port 0; port 1 uses `group + 1`. Groups are per network namespace.
    pub group: u16,
    /// The hash.
    pub hash: FanoutHash,
}

/// How the backend is attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfPacketAttach {
    /// Port 0 faces the VMs, port 1 the network; each forwards to the other.
    Inline {
        /// VM-side interface.
        vm: String,
        /// Network-side interface.
        network: String,
    },
    /// Port 0 receives copies; port 1, if any, transmits injected frames only.
    Mirror {
        /// The interface receiving copies.
        interface: String,
        /// Where injected frames go.
        inject: Option<String>,
    },
}

/// Settings of one [`AfPacketIo`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interfaces.
    pub attach: AfPacketAttach,
    /// Receive ring.
    pub ring: RingConfig,
    /// Fanout (several workers), or none (one worker).
    pub fanout: Option<Fanout>,
    /// Put receive interfaces in promiscuous mode.
    pub promiscuous: bool,
}

/// Errors opening the backend.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// No interface of that name (in this network namespace).
    #[error("interface {0:?} not found")]
    NoInterface(String),
    /// A socket call failed.
    #[error("interface {iface}: {what}: {source}")]
    Sys {
        /// The interface.
        iface: String,
        /// The call.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// Bad ring geometry.
    #[error("ring: {0}")]
    Ring(&'static str),
}

fn sys<'a>(iface: &'a str, what: &'static str) -> impl FnOnce(io::Error) -> AfPacketError + 'a {
    move |source| AfPacketError::Sys {
        iface: iface.to_owned(),
        what,
        source,
    }
}

// ETH_P_ALL (0x0003) in network byte order, as sockaddr_ll and socket() want it.
const ETH_P_ALL_BE: u16 = 0x0003_u16.to_be();
// AF_PACKET (17) as sockaddr_ll's family field.
const AF_PACKET_U16: u16 = 17;
// PACKET_MR_PROMISC (1) as packet_mreq's type field.
const MR_PROMISC_U16: u16 = 1;

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<T>()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: `val` points to a live, initialised `T` of `len` bytes for the duration of the
    // call; the kernel copies it and keeps no pointer.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            core::ptr::from_ref(val).cast(),
            len,
        )
    })
}

fn ifindex(name: &str) -> Result<libc::c_int, AfPacketError> {
    let c = CString::new(name).map_err(|_| AfPacketError::NoInterface(name.to_owned()))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    libc::c_int::try_from(idx)
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| AfPacketError::NoInterface(name.to_owned()))
}

fn new_socket(iface: &str) -> Result<OwnedFd, AfPacketError> {
    // Protocol 0: the socket receives nothing until bound with ETH_P_ALL to its interface, so no
    // frame of another interface slips into the ring between socket() and bind().
    // SAFETY: plain syscall with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    check(fd).map_err(sys(iface, "socket(AF_PACKET)"))?;
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(
    fd: &OwnedFd,
    iface: &str,
    ifindex: libc::c_int,
    protocol: u16,
) -> Result<(), AfPacketError> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { core::mem::zeroed() };
    sll.sll_family = AF_PACKET_U16;
    sll.sll_protocol = protocol;
    sll.sll_ifindex = ifindex;
    let len = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(20);
    // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes, alive for the call.
    check(unsafe { libc::bind(fd.as_raw_fd(), core::ptr::from_ref(&sll).cast(), len) })
        .map_err(sys(iface, "bind"))
}

/// The mmap'ed receive ring.
#[derive(Debug)]
struct Ring {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    block_count: usize,
    // The block we read next.
    block: usize,
    // Within a block being read: packets left and the next packet's offset.
    left: u32,
    off: usize,
    in_block: bool,
}

// Offset of `block_status` in a block descriptor.
const BLOCK_STATUS: usize = offset_of!(libc::tpacket_block_desc, hdr);

impl Ring {
    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: i < block_count (callers index modulo it), so the offset is inside the mapping.
        unsafe { self.base.as_ptr().add(i * self.block_size) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the block descriptor starts every block (page-aligned), `block_status` is a
        // naturally aligned u32 inside the mapping that the kernel and we both access; atomics
        // make the hand-over well defined. The mapping outlives `&self`.
        unsafe { AtomicU32::from_ptr(self.block_ptr(i).add(BLOCK_STATUS).cast()) }
    }

    fn block_header(&self, i: usize) -> libc::tpacket_hdr_v1 {
        // SAFETY: the descriptor lies at the start of the block, inside the mapping; we own the
        // block (status checked with acquire), so the kernel does not write it concurrently.
        unsafe {
            let d = self.block_ptr(i).cast::<libc::tpacket_block_desc>();
            core::ptr::read_unaligned(core::ptr::addr_of!((*d).hdr.bh1))
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly what mmap returned; nothing borrows the ring after
        // drop.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

#[derive(Debug)]
struct Port {
    name: String,
    fd: OwnedFd,
    ring: Option<Ring>,
    stats: PortStats,
    // PACKET_STATISTICS resets on read: we keep the running totals.
    kernel_drops: Cell<u64>,
}

/// A frame waiting to be sent: bytes in the TX arena.
#[derive(Clone, Copy, Debug)]
struct TxFrame {
    port: PortId,
    start: usize,
    len: usize,
}

/// Most frames per `sendmmsg` call.
const TX_BATCH: usize = 64;

/// The AF_PACKET backend of one worker.
#[derive(Debug)]
pub struct AfPacketIo {
    ports: Vec<Port>,
    inline: bool,
    // Frames with a re-inserted VLAN tag are assembled here.
    scratch: Vec<u8>,
    arena: Vec<u8>,
    tx: Vec<TxFrame>,
    injections: Vec<Injection>,
    unroutable: u64,
    truncated: u64,
}

// SAFETY: the ring pointer is owned by this value alone (no aliases are handed out beyond a
// `poll` call), so moving it to another thread is sound.
unsafe impl Send for AfPacketIo {}

impl AfPacketIo {
    /// Open the sockets (root or CAP_NET_RAW needed).
    pub fn open(cfg: &AfPacketConfig) -> Result<AfPacketIo, AfPacketError> {
        let r = cfg.ring;
        if !r.block_size.is_power_of_two() || r.block_size < 4096 || r.block_count == 0 {
            return Err(AfPacketError::Ring(
                "block size must be a power of two of at least 4096, block count at least 1",
            ));
        }
        if r.frame_size < 128 || r.frame_size > r.block_size {
            return Err(AfPacketError::Ring("frame size must be 128..=block size"));
        }
        let (ports, inline) = match &cfg.attach {
            AfPacketAttach::Inline { vm, network } => (
                vec![
                    open_rx(vm, cfg, cfg.fanout.map(|f| (f, 0)))?,
                    open_rx(network, cfg, cfg.fanout.map(|f| (f, 1)))?,
                ],
                true,
            ),
            AfPacketAttach::Mirror { interface, inject } => {
                let mut ports = vec![open_rx(interface, cfg, cfg.fanout.map(|f| (f, 0)))?];
                if let Some(i) = inject {
                    ports.push(open_tx(i)?);
                }
                (ports, false)
            }
        };
        Ok(AfPacketIo {
            ports,
            inline,
            scratch: Vec::with_capacity(1 << 16),
            arena: Vec::with_capacity(1 << 20),
            tx: Vec::with_capacity(256),
            injections: Vec::new(),
            unroutable: 0,
            truncated: 0,
        })
    }

    /// Wait until a receive ring has a block for us, at most `timeout_ms`.
    pub fn wait(&self, timeout_ms: i32) -> io::Result<()> {
        let mut fds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .filter(|p| p.ring.is_some())
            .map(|p| libc::pollfd {
                fd: p.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            })
            .collect();
        let n = libc::nfds_t::try_from(fds.len()).unwrap_or(0);
        // SAFETY: `fds` is a valid array of `n` pollfd, alive for the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
        match check(rc) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            r => r,
        }
    }

    /// Injected frames that had nowhere to go (mirror mode without an inject interface).
    pub fn unroutable(&self) -> u64 {
        self.unroutable
    }

    /// Frames the ring delivered shorter than on the wire (larger than a block can hold); they
    /// are inspected as far as present and not forwarded.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    /// Interface names by port.
    pub fn interfaces(&self) -> Vec<&str> {
        self.ports.iter().map(|p| p.name.as_str()).collect()
    }

    fn route(&self, inj: &Injection) -> Option<PortId> {
        match (self.inline, inj.toward) {
            (true, Toward::Source) => Some(inj.rx_port),
            (true, Toward::Destination) => Some(inj.rx_port ^ 1),
            (false, _) => (self.ports.len() > 1).then_some(1),
        }
    }

    fn queue(&mut self, port: PortId, frame: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(frame);
        self.tx.push(TxFrame {
            port,
            start,
            len: frame.len(),
        });
    }

    /// Receive up to `burst` frames from one port.
    fn rx_port(&mut self, port: PortId, handler: &mut dyn FrameHandler, burst: usize) -> usize {
        let mut n = 0;
        while n < burst {
            let Some(p) = self.ports.get_mut(usize::from(port)) else {
                return n;
            };
            let Some(ring) = p.ring.as_mut() else {
                return n;
            };
            if !ring.in_block {
                let b = ring.block;
                if ring.status(b).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    return n;
                }
                let h = ring.block_header(b);
                ring.left = h.num_pkts;
                ring.off = usize::try_from(h.offset_to_first_pkt).unwrap_or(usize::MAX);
                ring.in_block = true;
            }
            if ring.left == 0
                || ring.off.saturating_add(size_of::<libc::tpacket3_hdr>()) > ring.block_size
            {
                // Done (or a header that does not fit: give the block back rather than read
                // past it).
                let b = ring.block;
                ring.status(b)
                    .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                ring.block = (b + 1) % ring.block_count;
                ring.in_block = false;
                continue;
            }
            let block = ring.block_ptr(ring.block);
            let off = ring.off;
            // SAFETY: `off + size_of::<tpacket3_hdr>() <= block_size` was checked above, so the
            // header lies inside the block we own.
            let hdr: libc::tpacket3_hdr =
                unsafe { core::ptr::read_unaligned(block.add(off).cast()) };
            ring.left -= 1;
            ring.off = if hdr.tp_next_offset == 0 {
                ring.block_size
            } else {
                off.saturating_add(usize::try_from(hdr.tp_next_offset).unwrap_or(usize::MAX))
            };
            let mac = off.saturating_add(usize::from(hdr.tp_mac));
            let snap = usize::try_from(hdr.tp_snaplen).unwrap_or(usize::MAX);
            if mac.saturating_add(snap) > ring.block_size {
                continue;
            }
            // The sockaddr_ll after the header says whether this is our own transmission.
            let sll_off = off + tpacket_align(size_of::<libc::tpacket3_hdr>());
            let outgoing = sll_off + size_of::<libc::sockaddr_ll>() <= mac && {
                // SAFETY: the sockaddr_ll lies between the header and the frame, inside the
                // block (checked just above).
                let sll: libc::sockaddr_ll =
                    unsafe { core::ptr::read_unaligned(block.add(sll_off).cast()) };
                sll.sll_pkttype == libc::PACKET_OUTGOING
            };
            if outgoing {
                continue;
            }
            // SAFETY: `mac + snap <= block_size`: the frame lies inside the block we own, and
            // the kernel does not touch the block until we store TP_STATUS_KERNEL, which happens
            // after this borrow ends.
            let wire: &[u8] = unsafe { core::slice::from_raw_parts(block.add(mac), snap) };
            let truncated = hdr.tp_len != hdr.tp_snaplen;
            let ts = Timestamp::from_secs_micros(u64::from(hdr.tp_sec), hdr.tp_nsec / 1000);
            let tag = (hdr.tp_status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if hdr.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    hdr.hv1.tp_vlan_tpid
                } else {
                    0x8100
                };
                let tci = u16::try_from(hdr.hv1.tp_vlan_tci & 0xffff).unwrap_or(0);
                (tpid, tci)
            });
            p.stats.rx_packets += 1;
            p.stats.rx_bytes += u64::from(hdr.tp_len);
            n += 1;
            let frame: &[u8] = match tag {
                Some((tpid, tci)) if wire.len() >= 12 => {
                    self.scratch.clear();
                    self.scratch
                        .extend_from_slice(wire.get(..12).unwrap_or_default());
                    self.scratch.extend_from_slice(&tpid.to_be_bytes());
                    self.scratch.extend_from_slice(&tci.to_be_bytes());
                    self.scratch
                        .extend_from_slice(wire.get(12..).unwrap_or_default());
                    &self.scratch
                }
                _ => wire,
            };
            let verdict = handler.on_frame(frame, RxMeta { port, ts });
            if truncated {
                self.truncated += 1;
            } else if self.inline && verdict == Verdict::Forward {
                let start = self.arena.len();
                self.arena.extend_from_slice(frame);
                self.tx.push(TxFrame {
                    port: port ^ 1,
                    start,
                    len: frame.len(),
                });
            }
            handler.take_injections(&mut self.injections);
            if !self.injections.is_empty() {
                let injections = std::mem::take(&mut self.injections);
                for inj in &injections {
                    match self.route(inj) {
                        Some(out) => self.queue(out, &inj.frame),
                        None => self.unroutable += 1,
                    }
                }
                self.injections = injections;
                self.injections.clear();
            }
        }
        n
    }

    /// Send every queued frame, in order per port.
    fn flush(&mut self) {
        for (i, port) in self.ports.iter_mut().enumerate() {
            let frames: Vec<TxFrame> = self
                .tx
                .iter()
                .filter(|f| usize::from(f.port) == i)
                .copied()
                .collect();
            for chunk in frames.chunks(TX_BATCH) {
                let (sent, failed) = send_batch(&port.fd, &self.arena, chunk);
                port.stats.tx_packets += sent;
                port.stats.tx_failed += failed;
            }
        }
        self.tx.clear();
        self.arena.clear();
    }
}

/// Send frames with `sendmmsg`; returns (sent, failed).
fn send_batch(fd: &OwnedFd, arena: &[u8], frames: &[TxFrame]) -> (u64, u64) {
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(frames.len());
    for f in frames {
        let Some(bytes) = arena.get(f.start..f.start + f.len) else {
            continue;
        };
        iov.push(libc::iovec {
            iov_base: bytes.as_ptr().cast_mut().cast(),
            iov_len: bytes.len(),
        });
    }
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: msghdr/mmsghdr are plain data; all-zero is a valid value (no name, no
            // control data).
            let mut m: libc::mmsghdr = unsafe { core::mem::zeroed() };
            m.msg_hdr.msg_iov = core::ptr::from_mut(v);
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let total = msgs.len();
    let mut done = 0usize;
    let mut failed = 0u64;
    while done < total {
        let rest = msgs.get_mut(done..).unwrap_or_default();
        let n = libc::c_uint::try_from(rest.len()).unwrap_or(0);
        // SAFETY: `rest` is a valid array of `n` mmsghdr whose iovecs point into `arena`, all
        // alive and unmodified for the duration of the call.
        let rc =
            unsafe { libc::sendmmsg(fd.as_raw_fd(), rest.as_mut_ptr(), n, libc::MSG_DONTWAIT) };
        match usize::try_from(rc) {
            Ok(0) | Err(_) => {
                // The first message of `rest` failed (ENOBUFS, EMSGSIZE, EAGAIN...): count it
                // and go on with the next.
                failed += 1;
                done += 1;
            }
            Ok(k) => done += k,
        }
    }
    (
        u64::try_from(total).unwrap_or(0).saturating_sub(failed),
        failed,
    )
}

const fn tpacket_align(x: usize) -> usize {
    (x + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1)
}

fn open_rx(
    iface: &str,
    cfg: &AfPacketConfig,
    fanout: Option<(Fanout, u16)>,
) -> Result<Port, AfPacketError> {
    let idx = ifindex(iface)?;
    let fd = new_socket(iface)?;
    let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
        .map_err(sys(iface, "PACKET_VERSION TPACKET_V3"))?;
    let r = cfg.ring;
    let req = libc::tpacket_req3 {
        tp_block_size: r.block_size,
        tp_block_nr: r.block_count,
        tp_frame_size: r.frame_size,
        tp_frame_nr: r.block_size / r.frame_size * r.block_count,
        tp_retire_blk_tov: r.retire_ms,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
        .map_err(sys(iface, "PACKET_RX_RING"))?;
    let block_size = usize::try_from(r.block_size).map_err(|_| AfPacketError::Ring("size"))?;
    let block_count = usize::try_from(r.block_count).map_err(|_| AfPacketError::Ring("size"))?;
    let len = block_size
        .checked_mul(block_count)
        .ok_or(AfPacketError::Ring("ring larger than the address space"))?;
    // SAFETY: mapping the ring the kernel just allocated for this socket; length as requested.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(AfPacketError::Sys {
            iface: iface.to_owned(),
            what: "mmap ring",
            source: io::Error::last_os_error(),
        });
    }
    let ring = Ring {
        base: NonNull::new(base.cast()).ok_or(AfPacketError::Ring("mmap returned null"))?,
        len,
        block_size,
        block_count,
        block: 0,
        left: 0,
        off: 0,
        in_block: false,
    };
    let one: libc::c_int = 1;
    // Linux >= 4.20; older kernels fall back to skipping PACKET_OUTGOING frames in the ring.
    let _ = setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)
        .map_err(sys(iface, "PACKET_QDISC_BYPASS"))?;
    bind(&fd, iface, idx, ETH_P_ALL_BE)?;
    if cfg.promiscuous {
        let mreq = libc::packet_mreq {
            mr_ifindex: idx,
            mr_type: MR_PROMISC_U16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(sys(iface, "PACKET_ADD_MEMBERSHIP promiscuous"))?;
    }
    if let Some((f, port)) = fanout {
        let id = u32::from(f.group.wrapping_add(port));
        let kind = match f.hash {
            FanoutHash::Addresses => libc::PACKET_FANOUT_CBPF,
            FanoutHash::Kernel => libc::PACKET_FANOUT_HASH,
        };
        let arg: u32 = id | (kind << 16);
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
            .map_err(sys(iface, "PACKET_FANOUT"))?;
        if f.hash == FanoutHash::Addresses {
            let mut prog = address_hash_program();
            let fprog = libc::sock_fprog {
                len: u16::try_from(prog.len()).unwrap_or(0),
                filter: prog.as_mut_ptr(),
            };
            setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT_DATA, &fprog)
                .map_err(sys(iface, "PACKET_FANOUT_DATA (address hash)"))?;
        }
    }
    Ok(Port {
        name: iface.to_owned(),
        fd,
        ring: Some(ring),
        stats: PortStats::default(),
        kernel_drops: Cell::new(0),
    })
}

fn open_tx(iface: &str) -> Result<Port, AfPacketError> {
    let idx = ifindex(iface)?;
    let fd = new_socket(iface)?;
    let one: libc::c_int = 1;
    setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, &one)
        .map_err(sys(iface, "PACKET_QDISC_BYPASS"))?;
    // Protocol 0: bound for sending only, receives nothing.
    bind(&fd, iface, idx, 0)?;
    Ok(Port {
        name: iface.to_owned(),
        fd,
        ring: None,
        stats: PortStats::default(),
        kernel_drops: Cell::new(0),
    })
}

/// How long an idle worker waits in `poll(2)` for a ring block: a stop request is seen within
/// this time.
const IDLE_WAIT_MS: i32 = 100;

impl PacketIo for AfPacketIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> io::Result<usize> {
        let mut n = 0;
        for port in 0..self.ports.len() {
            let port = PortId::try_from(port).unwrap_or(PortId::MAX);
            n += self.rx_port(port, handler, burst);
        }
        if !self.tx.is_empty() {
            self.flush();
        }
        Ok(n)
    }

    fn idle(&mut self) -> io::Result<()> {
        self.wait(IDLE_WAIT_MS)
    }

    fn unsent(&self) -> u64 {
        self.unroutable
    }

    fn stats(&self) -> Vec<PortStats> {
        self.ports
            .iter()
            .map(|p| {
                if p.ring.is_some() {
                    // SAFETY: tpacket_stats_v3 is plain data; all-zero is valid.
                    let mut st: libc::tpacket_stats_v3 = unsafe { core::mem::zeroed() };
                    let mut len =
                        libc::socklen_t::try_from(size_of::<libc::tpacket_stats_v3>()).unwrap_or(0);
                    // SAFETY: `st` and `len` are valid for writes of the sizes given.
                    let rc = unsafe {
                        libc::getsockopt(
                            p.fd.as_raw_fd(),
                            libc::SOL_PACKET,
                            libc::PACKET_STATISTICS,
                            core::ptr::from_mut(&mut st).cast(),
                            &mut len,
                        )
                    };
                    if rc == 0 {
                        p.kernel_drops
                            .set(p.kernel_drops.get() + u64::from(st.tp_drops));
                    }
                }
                PortStats {
                    rx_dropped: p.kernel_drops.get(),
                    ..p.stats
                }
            })
            .collect()
    }
}

// Classic BPF opcodes (linux/filter.h).
const LD_H_ABS: u16 = 0x28;
const LD_W_IND: u16 = 0x40;
const LDX_IMM: u16 = 0x01;
const LDX_MEM: u16 = 0x61;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ADD_X: u16 = 0x0c;
const JEQ_K: u16 = 0x15;
const JA: u16 = 0x05;
const RET_A: u16 = 0x16;
const RET_K: u16 = 0x06;
const TAX: u16 = 0x07;
const RSH_K: u16 = 0x74;
const XOR_X: u16 = 0xac;
const MUL_K: u16 = 0x24;

pub use super::hash::mix;

fn push_mix_and_ret(p: &mut Vec<libc::sock_filter>) {
    p.push(ins(TAX, 0, 0, 0));
    p.push(ins(RSH_K, 0, 0, 16));
    p.push(ins(XOR_X, 0, 0, 0));
    p.push(ins(MUL_K, 0, 0, 0x045d_9f3b));
    p.push(ins(TAX, 0, 0, 0));
    p.push(ins(RSH_K, 0, 0, 16));
    p.push(ins(XOR_X, 0, 0, 0));
    p.push(ins(RET_A, 0, 0, 0));
}

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Ancillary load of `skb->protocol` (SKF_AD_OFF + SKF_AD_PROTOCOL).
const AD_PROTOCOL: u32 = 0xffff_f000;
const LD_W_ABS: u16 = 0x20;

/// The fanout program of [`FanoutHash::Addresses`]: the sum of the source and destination address
/// words (IPv4: 2 words, IPv6: 8), the same for both directions, through the finaliser [`mix`].
/// Non-IP frames return 0; the kernel takes the result modulo the group size, and a load past the
/// end of a short packet ends the program with 0.
///
/// A fanout program runs on the skb as the stack received it: data starts at the network header
/// (not the Ethernet header, unlike a socket filter), the outer VLAN tag has already been moved
/// to metadata by `skb_vlan_untag`, and `skb->protocol` is the EtherType after it. For QinQ that
/// is the inner TPID and the data starts with the inner tag's TCI and EtherType.
pub fn address_hash_program() -> Vec<libc::sock_filter> {
    // Layout (indices):
    //  0      ldx #0                       X = offset of the IP header in the data
    //  1      ld proto                     A = skb->protocol
    //  2..=4  jeq 8100/88a8/9100 -> TAG (6)
    //  5      ja DISPATCH (8)
    //  6      TAG: ldx #4
    //  7      ldh [2]                      A = EtherType after the inner tag
    //  8      DISPATCH: jeq 0x0800 -> V4
    //  9      jeq 0x86dd -> V6
    //  10     ret #0
    //  11..   V4: ld [x+12]; st M0; ld [x+16]; ldx M0; add x; mix; ret a
    //  24..   V6: stx M1; ld [x+8]; st M0; 7 x (ld [x+k]; ldx M0; add x; st M0; ldx M1); mix;
    //         ret a
    const V4: u8 = 11;
    const V6: u8 = 24;
    let mut p = Vec::with_capacity(80);
    p.push(ins(LDX_IMM, 0, 0, 0));
    p.push(ins(LD_W_ABS, 0, 0, AD_PROTOCOL));
    p.push(ins(JEQ_K, 3, 0, 0x8100));
    p.push(ins(JEQ_K, 2, 0, 0x88a8));
    p.push(ins(JEQ_K, 1, 0, 0x9100));
    p.push(ins(JA, 0, 0, 2));
    p.push(ins(LDX_IMM, 0, 0, 4));
    p.push(ins(LD_H_ABS, 0, 0, 2));
    p.push(ins(JEQ_K, V4 - 9, 0, 0x0800));
    p.push(ins(JEQ_K, V6 - 10, 0, 0x86dd));
    p.push(ins(RET_K, 0, 0, 0));
    debug_assert_eq!(p.len(), usize::from(V4));
    p.push(ins(LD_W_IND, 0, 0, 12));
    p.push(ins(ST, 0, 0, 0));
    p.push(ins(LD_W_IND, 0, 0, 16));
    p.push(ins(LDX_MEM, 0, 0, 0));
    p.push(ins(ADD_X, 0, 0, 0));
    push_mix_and_ret(&mut p);
    debug_assert_eq!(p.len(), usize::from(V6));
    p.push(ins(STX, 0, 0, 1));
    p.push(ins(LD_W_IND, 0, 0, 8));
    p.push(ins(ST, 0, 0, 0));
    for w in 1..8u32 {
        p.push(ins(LD_W_IND, 0, 0, 8 + 4 * w));
        p.push(ins(LDX_MEM, 0, 0, 0));
        p.push(ins(ADD_X, 0, 0, 0));
        p.push(ins(ST, 0, 0, 0));
        p.push(ins(LDX_MEM, 0, 0, 1));
    }
    push_mix_and_ret(&mut p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal classic BPF interpreter for the opcodes the fanout program uses.
    fn run_skb(prog: &[libc::sock_filter], protocol: u16, pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut m) = (0u32, 0u32, [0u32; 16]);
        let mut pc = 0usize;
        let ld = |off: usize, n: usize| -> Option<u32> {
            let b = pkt.get(off..off + n)?;
            Some(b.iter().fold(0u32, |acc, v| (acc << 8) | u32::from(*v)))
        };
        loop {
            let i = prog[pc];
            pc += 1;
            let k = i.k as usize;
            match i.code {
                LDX_IMM => x = i.k,
                LDX_MEM => x = m[k],
                STX => m[k] = x,
                ST => m[k] = a,
                LD_W_ABS if i.k == AD_PROTOCOL => a = u32::from(protocol),
                LD_H_ABS => match ld(k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_W_IND => match ld(k + x as usize, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                ADD_X => a = a.wrapping_add(x),
                TAX => x = a,
                RSH_K => a >>= i.k,
                XOR_X => a ^= x,
                MUL_K => a = a.wrapping_mul(i.k),
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JA => pc += k,
                RET_A => return a,
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    /// Run on a frame as the kernel presents it to fanout: the outer tag (if any) in metadata,
    /// `protocol` the EtherType after it, data from there on.
    fn run(prog: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let Some(et) = frame.get(12..14) else {
            return 0;
        };
        let mut et = u16::from_be_bytes([et[0], et[1]]);
        let mut off = 14;
        if matches!(et, 0x8100 | 0x88a8 | 0x9100) {
            // Outer tag to metadata.
            et = u16::from_be_bytes([frame[16], frame[17]]);
            off = 18;
        }
        run_skb(prog, et, &frame[off..])
    }

    fn eth(tags: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&100u16.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(&[0; 20]);
        h
    }

    fn v6(src: [u8; 16], dst: [u8; 16]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h.extend_from_slice(&[0; 20]);
        h
    }

    #[test]
    fn address_hash_is_symmetric_and_sees_through_tags() {
        let prog = address_hash_program();
        assert!(prog.len() < 4096);
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let want = mix(u32::from_be_bytes(a).wrapping_add(u32::from_be_bytes(b)));
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
            let ab = run(&prog, &eth(tags, 0x0800, &v4(a, b)));
            let ba = run(&prog, &eth(tags, 0x0800, &v4(b, a)));
            assert_eq!(ab, want, "tags {tags:x?}");
            assert_eq!(ab, ba);
        }
        let (s, d) = (
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe; 16],
        );
        let ab = run(&prog, &eth(&[0x8100], 0x86dd, &v6(s, d)));
        let ba = run(&prog, &eth(&[0x8100], 0x86dd, &v6(d, s)));
        assert_eq!(ab, ba);
        assert_ne!(ab, 0);
        // Pairs that differ in the same low bits spread over two workers.
        let spread: std::collections::HashSet<u32> = (0..16u8)
            .map(|f| {
                run(
                    &prog,
                    &eth(&[], 0x0800, &v4([10, 88, 0, f], [10, 88, 1, f])),
                ) % 2
            })
            .collect();
        assert_eq!(spread.len(), 2);
        let other = run(&prog, &eth(&[], 0x0806, &[0; 28]));
        assert_eq!(other, 0);
        assert_eq!(run(&prog, &[0; 10]), 0);
    }

    /// Replay's hash ([`crate::io::hash::address_hash`]) is the fanout program's.
    #[test]
    fn replay_hashes_as_the_fanout_program() {
        let prog = address_hash_program();
        let s6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut frames = vec![
            eth(&[], 0x0806, &[0; 28]),
            vec![0; 10],
            eth(&[], 0x0800, &v4([10, 0, 0, 1], [10, 0, 0, 2])[..18]),
            eth(&[0x8100], 0x86dd, &v6(s6, [0xfe; 16])),
            eth(
                &[0x8100, 0x8100, 0x8100],
                0x0800,
                &v4([1, 2, 3, 4], [5, 6, 7, 8]),
            ),
        ];
        for tags in [&[][..], &[0x8100], &[0x88a8, 0x8100], &[0x9100, 0x8100]] {
            for f in 0..8u8 {
                frames.push(eth(tags, 0x0800, &v4([10, 88, 0, f], [10, 88, 1, 3 * f])));
                frames.push(eth(tags, 0x86dd, &v6(s6, [f; 16])));
            }
        }
        for f in &frames {
            assert_eq!(crate::io::hash::address_hash(f), run(&prog, f), "{f:x?}");
        }
    }
}
