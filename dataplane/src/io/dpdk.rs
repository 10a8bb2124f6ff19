//! The DPDK backend: a safe wrapper over `dpdk-sys` and a [`PacketIo`] for both attach modes.
//!
//! Ownership of packet buffers is carried by types. An [`Mbuf`] owns one `rte_mbuf` and frees it
//! on drop; [`Port::rx_burst`] hands out owned mbufs; [`Port::tx_burst`] takes ownership of the
//! mbufs the device accepted and leaves the rest with the caller. Inline forwarding is zero-copy:
//! the mbuf received on one port is the one transmitted on its peer.
//!
//! Lifetimes. DPDK allows one `rte_eal_init` per process, and freeing the EAL or a pool while an
//! mbuf is still held would leave that mbuf dangling. So the EAL arguments, the EAL itself and
//! every mbuf pool live until the process exits: [`Eal`] is a proof of initialisation, and
//! [`Mempool`] a handle to a pool that is never freed. Ports are stopped and closed on drop (this
//! is what flushes a `net_pcap` `tx_pcap` file).
//!
//! Threads. `rte_eal_init` pins the calling thread to the main lcore and threads spawned after it
//! inherit that affinity: spawn control-plane threads first. One queue per port, polled by one
//! thread (`&mut self`); symmetric flow hashing over several queues is not done here yet.

// `unsafe` is confined to this module (STYLE 13); each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dpdk_sys as sys;

use super::{FrameHandler, Injection, PacketIo, PortId, PortStats, RxMeta};
use crate::time::Timestamp;
use crate::worker::{Toward, Verdict};

/// Largest receive burst [`DpdkIo::poll`] asks a device for.
pub const MAX_BURST: usize = 256;

/// Longest multi-segment frame copied out for the handler: a maximal IP datagram behind two VLAN
/// tags, with room to spare. A chain claiming more is forwarded uninspected (fail-open, like the
/// worker's undecodable frames).
pub const MAX_LINEAR: u32 = 65_535 + 64;

/// Transmit attempts per poll before the frames a full ring refused are dropped and counted.
const TX_ATTEMPTS: usize = 4;

/// Program name put in front of the EAL arguments (`argv[0]`).
const PROGRAM: &str = "svm";

/// Set by the first [`Eal::init`]; DPDK cannot initialise twice in one process.
static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// A DPDK error number (`rte_errno` or a negative return value), shown with `rte_strerror`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// From a DPDK return value that is a negative errno.
    fn from_ret(ret: c_int) -> Errno {
        Errno(ret.saturating_abs())
    }

    /// The calling thread's `rte_errno`.
    fn last() -> Errno {
        // SAFETY: reads the thread-local `rte_errno`; no arguments, no preconditions.
        Errno(unsafe { sys::shim_errno() })
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: rte_strerror accepts any number and returns a NUL-terminated string, static or
        // in a thread-local buffer that stays valid until this thread's next call; it is copied
        // out before returning.
        let text = unsafe {
            let p = sys::rte_strerror(self.0);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        write!(f, "{text} (errno {})", self.0)
    }
}

/// Errors of the DPDK backend.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` already ran (or failed) in this process.
    #[error(
        "the DPDK EAL was already initialised in this process; DPDK allows one rte_eal_init per \
         process (run each DPDK test in its own process)"
    )]
    AlreadyInitialized,
    /// An EAL argument contains a NUL byte.
    #[error("EAL argument {0:?} contains a NUL byte")]
    NulInArgument(String),
    /// `rte_eal_init` failed.
    #[error("rte_eal_init failed: {0}")]
    EalInit(Errno),
    /// No port has that device name.
    #[error("no DPDK port named {name:?}: {errno}")]
    NoSuchPort {
        /// The device name asked for.
        name: String,
        /// The cause.
        errno: Errno,
    },
    /// A port id is not a valid port.
    #[error("port {0} is not a valid DPDK port")]
    InvalidPort(u16),
    /// A port operation failed.
    #[error("port {port}: {op}: {errno}")]
    Port {
        /// The DPDK port id.
        port: u16,
        /// The call that failed.
        op: &'static str,
        /// The cause.
        errno: Errno,
    },
    /// An mbuf pool could not be created.
    #[error("mbuf pool {name:?}: {errno}")]
    Mempool {
        /// The pool name.
        name: String,
        /// The cause.
        errno: Errno,
    },
    /// The configuration is unusable.
    #[error("invalid DPDK configuration: {0}")]
    Config(&'static str),
}

/// Proof that the EAL is initialised; the EAL lives until the process exits.
#[derive(Clone, Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialise the EAL with `args` (EAL options only, without a program name; for example
    /// `["--no-huge", "-m", "128", "--no-pci", "--vdev=net_null0", "-l", "0"]`). Works once per
    /// process: a second call fails with [`DpdkError::AlreadyInitialized`], also after a failed
    /// first call, since DPDK cannot retry either.
    ///
    /// Pins the calling thread to the main lcore.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len().saturating_add(1));
        for arg in std::iter::once(PROGRAM).chain(args.iter().map(String::as_str)) {
            owned.push(CString::new(arg).map_err(|_| DpdkError::NulInArgument(arg.to_owned()))?);
        }
        let argc = c_int::try_from(owned.len())
            .map_err(|_| DpdkError::Config("too many EAL arguments"))?;
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        // rte_eal_init keeps pointers into argv (and getopt may permute the array): both the
        // strings and the array are leaked on purpose, once per process.
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a NULL, all leaked so
        // they outlive the EAL; EAL_STARTED guarantees this is the process's only call.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::EalInit(Errno::last()));
        }
        Ok(Eal { _private: () })
    }

    /// Number of ports the EAL probed (vdevs and bound NICs).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (self exists); no arguments.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port id of a device, by its name (`net_pcap0`, `0000:00:04.0`, ...).
    pub fn port_by_name(&self, name: &str) -> Result<u16, DpdkError> {
        let c = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: c is a valid NUL-terminated string and id a valid u16 to write, both alive for
        // the call; the EAL is initialised.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(DpdkError::NoSuchPort {
                name: name.to_owned(),
                errno: Errno::from_ret(ret),
            });
        }
        Ok(id)
    }

    /// The lcore the calling thread runs as (`u32::MAX`, `LCORE_ID_ANY`, for non-EAL threads).
    pub fn lcore_id(&self) -> u32 {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { sys::shim_lcore_id() }
    }
}

/// A packet-mbuf pool. Pools are never freed (see the module doc), so a handle is always valid.
#[derive(Clone, Debug)]
pub struct Mempool {
    pool: NonNull<sys::rte_mempool>,
}

// SAFETY: the pool lives for the process and DPDK's default mempool ops (ring_mp_mc) are safe to
// use from several threads; the per-lcore cache is only used by the lcore's own thread.
unsafe impl Send for Mempool {}
// SAFETY: as for Send: every operation through a shared handle (alloc, counts) is multi-thread
// safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Create a pool of `mbufs` packet buffers of the default size (2048 data bytes after 128 of
    /// headroom) with a per-lcore cache of `cache` buffers, on the caller's NUMA socket. `name`
    /// must be unique in the process.
    pub fn new(_eal: &Eal, name: &str, mbufs: u32, cache: u32) -> Result<Mempool, DpdkError> {
        let c = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let data_room = u16::try_from(sys::RTE_MBUF_DEFAULT_BUF_SIZE)
            .map_err(|_| DpdkError::Config("mbuf size"))?;
        // SAFETY: the EAL is initialised (an Eal exists); no arguments.
        let socket = unsafe { sys::rte_socket_id() };
        let socket = c_int::try_from(socket).unwrap_or(-1);
        // SAFETY: c is a valid NUL-terminated name alive for the call (DPDK copies it); the sizes
        // are plain values the call validates.
        let pool =
            unsafe { sys::rte_pktmbuf_pool_create(c.as_ptr(), mbufs, cache, 0, data_room, socket) };
        match NonNull::new(pool) {
            Some(pool) => Ok(Mempool { pool }),
            None => Err(DpdkError::Mempool {
                name: name.to_owned(),
                errno: Errno::last(),
            }),
        }
    }

    /// A fresh, empty mbuf, or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the process; the returned mbuf (if any) is exclusively
        // ours and becomes owned by the Mbuf.
        NonNull::new(unsafe { sys::shim_pktmbuf_alloc(self.pool.as_ptr()) }).map(Mbuf)
    }

    /// An mbuf holding a copy of `frame`, or `None` when the pool is exhausted or the frame does
    /// not fit one mbuf.
    pub fn alloc_frame(&self, frame: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.append(frame).then_some(m)
    }

    /// Mbufs free in the pool (including the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for the process; the call only reads counters.
        unsafe { sys::rte_mempool_avail_count(self.pool.as_ptr()) }
    }

    /// Mbufs taken from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid for the process; the call only reads counters.
        unsafe { sys::rte_mempool_in_use_count(self.pool.as_ptr()) }
    }

    fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.pool.as_ptr()
    }
}

/// One owned packet buffer; freed (returned to its pool) on drop.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the only owner of its rte_mbuf, and freeing it to its pool is multi-thread
// safe (ring_mp_mc), so it may move to another thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// The bytes of the first segment (all of the frame when [`Mbuf::is_contiguous`]).
    pub fn data(&self) -> &[u8] {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut len: u16 = 0;
        // SAFETY: self owns a valid mbuf; data and len are valid out-pointers for the call.
        unsafe { sys::shim_pktmbuf_view(self.0.as_ptr(), &mut data, &mut len) };
        if data.is_null() {
            return &[];
        }
        // SAFETY: mtod points at data_len initialised bytes inside the mbuf's buffer, which we own
        // exclusively and which stays put while &self is borrowed.
        unsafe { std::slice::from_raw_parts(data, usize::from(len)) }
    }

    /// Length of the whole frame, over all segments.
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: self owns a valid mbuf; the call only reads a field.
        unsafe { sys::shim_pktmbuf_pkt_len(self.0.as_ptr()) }
    }

    /// Whether the frame is in one segment.
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: self owns a valid mbuf; the call only reads a field.
        unsafe { sys::shim_pktmbuf_nb_segs(self.0.as_ptr()) <= 1 }
    }

    /// Replace `out` with the whole frame, all segments. False (and `out` empty) if the frame is
    /// longer than [`MAX_LINEAR`] or the chain is shorter than its packet length says.
    pub fn copy_to(&self, out: &mut Vec<u8>) -> bool {
        let len = self.pkt_len();
        out.clear();
        if len > MAX_LINEAR {
            return false;
        }
        out.resize(usize::try_from(len).unwrap_or(0), 0);
        // SAFETY: self owns a valid mbuf; out has len writable bytes, exclusively borrowed.
        let ret =
            unsafe { sys::shim_pktmbuf_copy_out(self.0.as_ptr(), 0, len, out.as_mut_ptr().cast()) };
        if ret != 0 {
            out.clear();
        }
        ret == 0
    }

    /// Append `bytes` to the frame. False (frame unchanged) if they do not fit the last segment's
    /// tailroom.
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        let Ok(len) = u16::try_from(bytes.len()) else {
            return false;
        };
        // SAFETY: self owns a valid mbuf exclusively (&mut self).
        let dst = unsafe { sys::shim_pktmbuf_append(self.0.as_ptr(), len) };
        if dst.is_null() {
            return false;
        }
        // SAFETY: rte_pktmbuf_append returned a pointer to len fresh bytes of tailroom inside the
        // mbuf we own; bytes is a separate Rust slice, so the regions do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), bytes.len()) };
        true
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf and nobody else references it; it is freed exactly once,
        // here (ownership given to a device never reaches this drop, see Port::tx_burst).
        unsafe { sys::shim_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Settings of one port.
#[derive(Clone, Copy, Debug)]
pub struct PortConfig {
    /// Receive descriptors (rounded to what the device accepts).
    pub rx_desc: u16,
    /// Transmit descriptors (rounded to what the device accepts).
    pub tx_desc: u16,
    /// Enable promiscuous mode (devices that do not support it are left as they are).
    pub promiscuous: bool,
    /// How long to wait for the link to come up after start; the port is usable either way.
    pub link_timeout: Duration,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            link_timeout: Duration::from_secs(5),
        }
    }
}

/// Device counters of one port (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthStats {
    /// Frames received.
    pub ipackets: u64,
    /// Frames sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Frames the device dropped because the receive ring was full.
    pub imissed: u64,
    /// Erroneous received frames.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Receive failures for want of an mbuf.
    pub rx_nombuf: u64,
}

/// A started port with one receive and one transmit queue; stopped and closed on drop.
#[derive(Debug)]
pub struct Port {
    id: u16,
    link_up: bool,
}

impl Port {
    /// Configure port `id` with one receive queue (filled from `pool`) and one transmit queue,
    /// start it, enable promiscuous mode, and wait up to `cfg.link_timeout` for link up.
    pub fn open(_eal: &Eal, id: u16, pool: &Mempool, cfg: &PortConfig) -> Result<Port, DpdkError> {
        // SAFETY: plain query on a port id; the EAL is initialised.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidPort(id));
        }
        let fail = |op, ret: c_int| DpdkError::Port {
            port: id,
            op,
            errno: Errno::from_ret(ret),
        };
        // A zeroed rte_eth_conf is DPDK's default: no RSS, no offloads.
        let conf = sys::rte_eth_conf::default();
        // SAFETY: conf is a valid rte_eth_conf alive for the call (DPDK copies it).
        let ret = unsafe { sys::rte_eth_dev_configure(id, 1, 1, &conf) };
        if ret < 0 {
            return Err(fail("rte_eth_dev_configure", ret));
        }
        // From here on a failure must close the port again; Port's drop does that.
        let port = Port { id, link_up: false };
        let (mut rx_desc, mut tx_desc) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: both pointers are valid u16s to update, alive for the call.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc) };
        if ret < 0 {
            return Err(fail("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: plain query on a valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        // SOCKET_ID_ANY (-1) means "no preference"; the queue setup calls take it as unsigned.
        let socket = u32::try_from(socket).unwrap_or(u32::MAX);
        // SAFETY: a NULL rx_conf selects the device's defaults; the pool is valid for the process
        // (pools are never freed), so the queue may keep using it.
        let ret = unsafe {
            sys::rte_eth_rx_queue_setup(id, 0, rx_desc, socket, std::ptr::null(), pool.as_ptr())
        };
        if ret < 0 {
            return Err(fail("rte_eth_rx_queue_setup", ret));
        }
        // SAFETY: a NULL tx_conf selects the device's defaults.
        let ret = unsafe { sys::rte_eth_tx_queue_setup(id, 0, tx_desc, socket, std::ptr::null()) };
        if ret < 0 {
            return Err(fail("rte_eth_tx_queue_setup", ret));
        }
        // SAFETY: the port is configured with its queues set up.
        let ret = unsafe { sys::rte_eth_dev_start(id) };
        if ret < 0 {
            return Err(fail("rte_eth_dev_start", ret));
        }
        if cfg.promiscuous {
            // SAFETY: plain call on a started port.
            let ret = unsafe { sys::rte_eth_promiscuous_enable(id) };
            // Virtual devices without a MAC filter (net_null, net_pcap on files) do not support it.
            if ret < 0 && ret != -ENOTSUP {
                return Err(fail("rte_eth_promiscuous_enable", ret));
            }
        }
        let mut port = port;
        port.link_up = port.wait_link(cfg.link_timeout);
        Ok(port)
    }

    fn wait_link(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.poll_link() == Some(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The link state now (`None` if the device cannot tell).
    pub fn poll_link(&self) -> Option<bool> {
        // SAFETY: plain query on a valid port id.
        match unsafe { sys::shim_eth_link_up(self.id) } {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        }
    }

    /// Whether the link was up when [`Port::open`] returned.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Receive up to `max` frames, appending them to `out`. Returns how many arrived.
    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: u16) -> usize {
        out.reserve(usize::from(max));
        let start = out.len();
        let spare = out.spare_capacity_mut();
        // Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of a pointer.
        let slots = spare.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        // SAFETY: slots points at at least max writable slots (reserved above); &mut self makes
        // this the only thread polling the queue.
        let n = unsafe { sys::shim_eth_rx_burst(self.id, 0, slots, max) };
        let n = usize::from(n).min(usize::from(max));
        // SAFETY: the device wrote n non-NULL pointers to mbufs it hands over to us into the
        // first n slots; each becomes an owned Mbuf (same layout), and n <= reserved capacity.
        unsafe { out.set_len(start + n) };
        n
    }

    /// Transmit the frames in `bufs`, from the front. The device takes ownership of those it
    /// accepts; they are removed from `bufs`, and the rest stay there, in order. Returns how many
    /// were sent.
    pub fn tx_burst(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
        let len = bufs.len();
        let n = u16::try_from(len).unwrap_or(u16::MAX);
        let base = bufs.as_mut_ptr();
        // While the device reads the array, bufs claims nothing: should anything unwind, the
        // mbufs leak instead of being freed twice.
        // SAFETY: 0 <= len; the elements stay initialised in the buffer and are handled below.
        unsafe { bufs.set_len(0) };
        // SAFETY: base points at len >= n initialised Mbufs, which are mbuf pointers (repr
        // transparent); &mut self makes this the only thread using the queue.
        let sent =
            unsafe { sys::shim_eth_tx_burst(self.id, 0, base.cast::<*mut sys::rte_mbuf>(), n) };
        let sent = usize::from(sent).min(len);
        // SAFETY: the first `sent` mbufs now belong to the device and are forgotten; the other
        // len - sent are still ours: move them to the front (the ranges may overlap, hence copy)
        // and make them visible again.
        unsafe {
            std::ptr::copy(base.add(sent), base, len - sent);
            bufs.set_len(len - sent);
        }
        sent
    }

    /// The device counters.
    pub fn eth_stats(&self) -> Result<EthStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: s is a valid rte_eth_stats to fill, alive for the call.
        let ret = unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        if ret < 0 {
            return Err(DpdkError::Port {
                port: self.id,
                op: "rte_eth_stats_get",
                errno: Errno::from_ret(ret),
            });
        }
        Ok(EthStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; a port that fails to stop is closed anyway.
        // SAFETY: the port is ours (one Port per id); after close nothing uses the id again.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// ENOTSUP on Linux (DPDK returns `-ENOTSUP` for unsupported device operations).
const ENOTSUP: c_int = 95;

/// Settings of a [`DpdkIo`].
#[derive(Clone, Debug)]
pub struct DpdkConfig {
    /// Name of the mbuf pool (unique per process).
    pub pool_name: String,
    /// Mbufs in the pool. Must cover every ring (rx_desc + tx_desc per port) plus bursts in flight
    /// and the per-lcore cache; 8191 fits in `-m 128`.
    pub mbufs: u32,
    /// Per-lcore mbuf cache.
    pub cache: u32,
    /// Port settings, for every port.
    pub port: PortConfig,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            pool_name: "svm_mbufs".to_owned(),
            mbufs: 8191,
            cache: 256,
            port: PortConfig::default(),
        }
    }
}

/// How [`DpdkIo`] uses its ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpdkAttach {
    /// Ports 0 and 1 receive, and forward to each other.
    Inline,
    /// Port 0 receives copies; port 1, if present, transmits injected frames only.
    Mirror,
}

/// The DPDK [`PacketIo`]: inline between two ports, or mirror with an optional inject port.
#[derive(Debug)]
pub struct DpdkIo {
    attach: DpdkAttach,
    /// Index = our [`PortId`].
    ports: Vec<Port>,
    pool: Mempool,
    rx: Vec<Mbuf>,
    /// Frames to transmit, per port.
    tx: Vec<Vec<Mbuf>>,
    injections: Vec<Injection>,
    /// Copy of a multi-segment frame for the handler.
    linear: Vec<u8>,
    /// Frames we could not transmit, per port: refused by a full ring, or injections without an
    /// mbuf or too long for one.
    tx_failed: Vec<u64>,
    /// Injections dropped because a mirror has no inject port (counted on port 0's tx_failed).
    unsent_injections: u64,
    clock: fn() -> Timestamp,
}

/// The wall clock as a [`Timestamp`].
pub fn wall_clock() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl DpdkIo {
    /// Inline between DPDK ports `ports[0]` (our port 0, the protected side) and `ports[1]`.
    pub fn inline(eal: &Eal, ports: [u16; 2], cfg: &DpdkConfig) -> Result<DpdkIo, DpdkError> {
        if ports[0] == ports[1] {
            return Err(DpdkError::Config("inline needs two distinct ports"));
        }
        Self::open(eal, DpdkAttach::Inline, &ports, cfg)
    }

    /// Mirror: receive on DPDK port `rx`; transmit injected frames on `inject`, if any.
    pub fn mirror(
        eal: &Eal,
        rx: u16,
        inject: Option<u16>,
        cfg: &DpdkConfig,
    ) -> Result<DpdkIo, DpdkError> {
        match inject {
            Some(i) if i == rx => Err(DpdkError::Config(
                "the inject port must differ from the receive port",
            )),
            Some(i) => Self::open(eal, DpdkAttach::Mirror, &[rx, i], cfg),
            None => Self::open(eal, DpdkAttach::Mirror, &[rx], cfg),
        }
    }

    fn open(
        eal: &Eal,
        attach: DpdkAttach,
        ids: &[u16],
        cfg: &DpdkConfig,
    ) -> Result<DpdkIo, DpdkError> {
        let pool = Mempool::new(eal, &cfg.pool_name, cfg.mbufs, cfg.cache)?;
        let ports = ids
            .iter()
            .map(|&id| Port::open(eal, id, &pool, &cfg.port))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DpdkIo {
            attach,
            tx: ids
                .iter()
                .map(|_| Vec::with_capacity(2 * MAX_BURST))
                .collect(),
            tx_failed: vec![0; ids.len()],
            ports,
            pool,
            rx: Vec::with_capacity(MAX_BURST),
            injections: Vec::new(),
            linear: Vec::new(),
            unsent_injections: 0,
            clock: wall_clock,
        })
    }

    /// Replace the receive clock (tests); the default is [`wall_clock`], read once per burst.
    pub fn set_clock(&mut self, clock: fn() -> Timestamp) {
        self.clock = clock;
    }

    /// The attach mode.
    pub fn attach(&self) -> DpdkAttach {
        self.attach
    }

    /// The mbuf pool the ports receive into.
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// The ports, by our [`PortId`].
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }

    /// Injections dropped because the mirror has no inject port.
    pub fn unsent_injections(&self) -> u64 {
        self.unsent_injections
    }

    /// Device counters per port.
    pub fn eth_stats(&self) -> Result<Vec<EthStats>, DpdkError> {
        self.ports.iter().map(Port::eth_stats).collect()
    }

    fn rx_ports(&self) -> usize {
        match self.attach {
            DpdkAttach::Inline => self.ports.len(),
            DpdkAttach::Mirror => 1,
        }
    }
}

impl PacketIo for DpdkIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize> {
        let max = u16::try_from(burst.clamp(1, MAX_BURST)).unwrap_or(1);
        let ts = (self.clock)();
        let rx_ports = self.rx_ports();
        let DpdkIo {
            attach,
            ports,
            pool,
            rx,
            tx,
            injections,
            linear,
            tx_failed,
            unsent_injections,
            ..
        } = self;
        let mut received = 0;
        for (index, port) in ports.iter_mut().enumerate().take(rx_ports) {
            rx.clear();
            received += port.rx_burst(rx, max);
            let port_id = PortId::try_from(index).unwrap_or(PortId::MAX);
            for mbuf in rx.drain(..) {
                let meta = RxMeta { port: port_id, ts };
                let verdict = if mbuf.is_contiguous() {
                    handler.on_frame(mbuf.data(), meta)
                } else if mbuf.copy_to(linear) {
                    handler.on_frame(linear, meta)
                } else {
                    // Too long, or a chain shorter than its length: not a frame we can show; it is
                    // forwarded uninspected (fail-open, see MAX_LINEAR).
                    Verdict::Forward
                };
                if let (DpdkAttach::Inline, Verdict::Forward) = (*attach, verdict)
                    && let Some(q) = tx.get_mut(index ^ 1)
                {
                    q.push(mbuf);
                }
                // Otherwise (dropped, or a mirror's copy) the mbuf is freed here.
                handler.take_injections(injections);
                for inj in injections.drain(..) {
                    let target = match (*attach, inj.toward) {
                        (DpdkAttach::Inline, Toward::Source) => Some(usize::from(inj.rx_port)),
                        (DpdkAttach::Inline, Toward::Destination) => {
                            Some(usize::from(inj.rx_port) ^ 1)
                        }
                        (DpdkAttach::Mirror, _) => (tx.len() > 1).then_some(1),
                    };
                    let Some(target) = target.filter(|&t| t < tx.len()) else {
                        *unsent_injections += 1;
                        if let Some(f) = tx_failed.first_mut() {
                            *f += 1;
                        }
                        continue;
                    };
                    match (pool.alloc_frame(&inj.frame), tx.get_mut(target)) {
                        (Some(m), Some(q)) => q.push(m),
                        _ => {
                            if let Some(f) = tx_failed.get_mut(target) {
                                *f += 1;
                            }
                        }
                    }
                }
            }
        }
        for ((port, q), failed) in ports
            .iter_mut()
            .zip(tx.iter_mut())
            .zip(tx_failed.iter_mut())
        {
            for _ in 0..TX_ATTEMPTS {
                if q.is_empty() || port.tx_burst(q) == 0 {
                    break;
                }
            }
            *failed += u64::try_from(q.len()).unwrap_or(u64::MAX);
            q.clear();
        }
        Ok(received)
    }

    fn stats(&self) -> Vec<PortStats> {
        self.ports
            .iter()
            .zip(&self.tx_failed)
            .map(|(port, &failed)| {
                let s = port.eth_stats().unwrap_or_default();
                PortStats {
                    rx_packets: s.ipackets,
                    rx_bytes: s.ibytes,
                    tx_packets: s.opackets,
                    rx_dropped: s.imissed.saturating_add(s.rx_nombuf),
                    tx_failed: failed.saturating_add(s.oerrors),
                }
            })
            .collect()
    }
}
