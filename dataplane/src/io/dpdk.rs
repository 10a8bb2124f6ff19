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
//! inherit that affinity: spawn control-plane threads first. [`DpdkIo::inline`] and
//! [`DpdkIo::mirror`] open one worker on queue 0 of each port. [`DpdkWorkers`] opens several on
//! the same ports: RSS with a symmetric key over a receive queue per worker when the devices
//! offer it, otherwise a software distributor (worker 0 receives and hands frames to the others
//! over `rte_ring`s by a symmetric flow hash, [`flow_hash`]); each worker transmits on its own
//! queue, or on a shared one under a lock when the device has fewer. The other workers run on
//! EAL worker lcores ([`Eal::launch`]: `rte_eal_remote_launch`, so they are pinned to the
//! lcores of `-l` and use their lcore's mempool cache).

// `unsafe` is confined to this module (STYLE 13); each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
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

/// Frames whose views [`Out::burst`] builds at once (one shim call, a bitmask of chained frames);
/// a longer burst is handed over in several chunks. The default burst: the arrays are cleared
/// for every chunk, and twice the size cost half a nanosecond per frame.
const VIEW_CHUNK: usize = 32;

/// Transmit attempts per poll before the frames a full ring refused are dropped and counted.
const TX_ATTEMPTS: usize = 4;

/// Frames a worker keeps queued for a shared transmit queue while another worker holds its lock;
/// beyond this it waits for the lock.
const TX_DEFER_MAX: usize = 2 * MAX_BURST;

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
    /// More workers than EAL lcores.
    #[error(
        "{workers} workers but the EAL runs {lcores} lcores: give the EAL one lcore per worker \
         (-l with as many CPUs; worker 0 runs on the main lcore)"
    )]
    Lcores {
        /// Workers asked for.
        workers: u16,
        /// Lcores of the EAL.
        lcores: u32,
    },
    /// RSS was asked for and a receive port cannot.
    #[error(
        "port {port}: RSS over {workers} receive queues is not available (the device has \
         {max_rx_queues} receive queues, or no RSS over IP); use the software distribution"
    )]
    NoRss {
        /// The DPDK port id.
        port: u16,
        /// Workers asked for.
        workers: u16,
        /// Its receive queues.
        max_rx_queues: u16,
    },
    /// A job could not be launched on an lcore.
    #[error("launching a worker on lcore {lcore}: {errno}")]
    Launch {
        /// The lcore.
        lcore: u32,
        /// The cause.
        errno: Errno,
    },
    /// A ring could not be created.
    #[error("ring {name:?}: {errno}")]
    Ring {
        /// The ring name.
        name: String,
        /// The cause.
        errno: Errno,
    },
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

/// What a port offers for several queues (`rte_eth_dev_info`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCaps {
    /// Receive queues the device can have.
    pub max_rx_queues: u16,
    /// Transmit queues the device can have.
    pub max_tx_queues: u16,
    /// The RSS hash functions it supports (`RTE_ETH_RSS_*` bits); 0: no RSS.
    pub rss_offloads: u64,
    /// Its RSS key size in bytes (0 if it does not say).
    pub rss_key_size: u8,
}

/// How a port's receive side is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLayout {
    /// Receive queues.
    pub rx: u16,
    /// Transmit queues.
    pub tx: u16,
    /// RSS over the receive queues with the symmetric key, hashing what [`FlowHash`] says;
    /// `None`: no RSS (one receive queue, or the device's own spreading).
    pub rss: Option<FlowHash>,
}

impl QueueLayout {
    /// One receive and one transmit queue, no RSS.
    pub const SINGLE: QueueLayout = QueueLayout {
        rx: 1,
        tx: 1,
        rss: None,
    };
}

/// A started port; stopped and closed on drop.
///
/// With one queue, [`Port::rx_burst`] and [`Port::tx_burst`] (`&mut self`) use queue 0. With
/// several (see [`DpdkWorkers`]), the port is shared by the workers and each queue is used by one
/// thread at a time, which the worker set guarantees.
#[derive(Debug)]
pub struct Port {
    id: u16,
    link_up: bool,
    layout: QueueLayout,
}

impl Port {
    /// What port `id` offers for several queues.
    pub fn caps(_eal: &Eal, id: u16) -> Result<PortCaps, DpdkError> {
        let mut c = PortCaps::default();
        // SAFETY: every pointer is a valid, exclusively borrowed field of c, alive for the call;
        // the EAL is initialised.
        let ret = unsafe {
            sys::shim_eth_caps(
                id,
                &mut c.max_rx_queues,
                &mut c.max_tx_queues,
                &mut c.rss_offloads,
                &mut c.rss_key_size,
            )
        };
        if ret < 0 {
            return Err(DpdkError::Port {
                port: id,
                op: "rte_eth_dev_info_get",
                errno: Errno::from_ret(ret),
            });
        }
        Ok(c)
    }

    /// Configure port `id` with one receive queue (filled from `pool`) and one transmit queue,
    /// start it, enable promiscuous mode, and wait up to `cfg.link_timeout` for link up.
    pub fn open(eal: &Eal, id: u16, pool: &Mempool, cfg: &PortConfig) -> Result<Port, DpdkError> {
        Self::open_queues(eal, id, pool, cfg, QueueLayout::SINGLE)
    }

    /// [`Port::open`] with `layout.rx` receive queues (all filled from `pool`), `layout.tx`
    /// transmit queues and, if `layout.rss` says so, RSS with the symmetric key.
    pub fn open_queues(
        _eal: &Eal,
        id: u16,
        pool: &Mempool,
        cfg: &PortConfig,
        layout: QueueLayout,
    ) -> Result<Port, DpdkError> {
        // SAFETY: plain query on a port id; the EAL is initialised.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::InvalidPort(id));
        }
        if layout.rx == 0 || layout.tx == 0 {
            return Err(DpdkError::Config(
                "a port needs a receive and a transmit queue",
            ));
        }
        let fail = |op, ret: c_int| DpdkError::Port {
            port: id,
            op,
            errno: Errno::from_ret(ret),
        };
        let mut hf = 0u64;
        // Without RSS the shim passes a zeroed rte_eth_conf, DPDK's default: no RSS, no offloads.
        // SAFETY: hf is a valid u64 to write, alive for the call; the EAL is initialised.
        let ret = unsafe {
            sys::shim_eth_configure(
                id,
                layout.rx,
                layout.tx,
                c_int::from(layout.rss.is_some()),
                c_int::from(layout.rss == Some(FlowHash::Flows)),
                &mut hf,
            )
        };
        if ret < 0 {
            return Err(fail("rte_eth_dev_configure", ret));
        }
        // From here on a failure must close the port again; Port's drop does that.
        let port = Port {
            id,
            link_up: false,
            layout,
        };
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
        for q in 0..layout.rx {
            // SAFETY: a NULL rx_conf selects the device's defaults; the pool is valid for the
            // process (pools are never freed), so the queue may keep using it.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rx_desc, socket, std::ptr::null(), pool.as_ptr())
            };
            if ret < 0 {
                return Err(fail("rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..layout.tx {
            // SAFETY: a NULL tx_conf selects the device's defaults.
            let ret =
                unsafe { sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null()) };
            if ret < 0 {
                return Err(fail("rte_eth_tx_queue_setup", ret));
            }
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

    /// Its queues.
    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// Receive up to `max` frames from queue 0, appending them to `out`. Returns how many
    /// arrived.
    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: u16) -> usize {
        // SAFETY: &mut self: no other thread uses this port, so neither its queue 0.
        unsafe { self.rx_queue(0, out, max) }
    }

    /// Receive up to `max` frames from `queue`, appending them to `out`.
    ///
    /// # Safety
    /// No other thread may use receive queue `queue` of this port during the call (DPDK's
    /// queues are not thread-safe), and `queue` must be a configured receive queue.
    unsafe fn rx_queue(&self, queue: u16, out: &mut Vec<Mbuf>, max: u16) -> usize {
        out.reserve(usize::from(max));
        let start = out.len();
        let spare = out.spare_capacity_mut();
        // Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of a pointer.
        let slots = spare.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
        // SAFETY: slots points at at least max writable slots (reserved above); the caller
        // guarantees this thread is the only one polling the queue.
        let n = unsafe { sys::shim_eth_rx_burst(self.id, queue, slots, max) };
        let n = usize::from(n).min(usize::from(max));
        // SAFETY: the device wrote n non-NULL pointers to mbufs it hands over to us into the
        // first n slots; each becomes an owned Mbuf (same layout), and n <= reserved capacity.
        unsafe { out.set_len(start + n) };
        n
    }

    /// Transmit the frames in `bufs` on queue 0, from the front. The device takes ownership of
    /// those it accepts; they are removed from `bufs`, and the rest stay there, in order. Returns
    /// how many were sent.
    pub fn tx_burst(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
        // SAFETY: &mut self: no other thread uses this port, so neither its queue 0.
        unsafe { self.tx_queue(0, bufs) }
    }

    /// [`Port::tx_burst`] on `queue`.
    ///
    /// # Safety
    /// No other thread may use transmit queue `queue` of this port during the call, and `queue`
    /// must be a configured transmit queue.
    unsafe fn tx_queue(&self, queue: u16, bufs: &mut Vec<Mbuf>) -> usize {
        let len = bufs.len();
        let n = u16::try_from(len).unwrap_or(u16::MAX);
        let base = bufs.as_mut_ptr();
        // While the device reads the array, bufs claims nothing: should anything unwind, the
        // mbufs leak instead of being freed twice.
        // SAFETY: 0 <= len; the elements stay initialised in the buffer and are handled below.
        unsafe { bufs.set_len(0) };
        // SAFETY: base points at len >= n initialised Mbufs, which are mbuf pointers (repr
        // transparent); the caller guarantees this thread is the only one using the queue.
        let sent =
            unsafe { sys::shim_eth_tx_burst(self.id, queue, base.cast::<*mut sys::rte_mbuf>(), n) };
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
        // SAFETY: the port is ours (one Port per id) and, being dropped, used by nobody; after
        // close nothing uses the id again.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// ENOTSUP on Linux (DPDK returns `-ENOTSUP` for unsupported device operations).
const ENOTSUP: c_int = 95;

impl Eal {
    /// Lcores the EAL runs (`-l`/`--lcores`/`-c`), the main one included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised; no arguments.
        unsafe { sys::rte_lcore_count() }
    }

    /// The main lcore: the thread that called [`Eal::init`].
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised; no arguments.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The worker lcores (every enabled lcore but the main one), in increasing order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // rte_get_next_lcore(-1, ...) starts the walk; it returns RTE_MAX_LCORE at the end.
        let mut i = u32::MAX;
        loop {
            // SAFETY: the EAL is initialised; i is any lcore id or -1 as unsigned, which the
            // call accepts.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    /// Run `job` on worker lcore `lcore` (an EAL thread pinned to that lcore's CPU), now. The
    /// lcore must be idle (not the main lcore, not running another job). Wait for the job with
    /// [`Launched::wait`]; dropping the handle waits too.
    ///
    /// A job that panics returns -1 (the panic is caught at the lcore's boundary: unwinding into
    /// DPDK's C frames is not allowed).
    pub fn launch<F>(&self, lcore: u32, job: F) -> Result<Launched, DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        type Job = Box<dyn FnOnce() -> i32 + Send>;
        extern "C" fn trampoline(arg: *mut std::ffi::c_void) -> c_int {
            // SAFETY: arg is the Box<Job> leaked below for this one call; DPDK passes it to
            // exactly one run of this function, so ownership comes back exactly once.
            let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
        }
        let job: Box<Job> = Box::new(Box::new(job));
        let arg = Box::into_raw(job);
        // SAFETY: trampoline has the lcore_function_t signature; arg is a valid Box<Job> whose
        // ownership passes to the lcore on success. The job is 'static and Send, so it may run
        // on another thread for as long as it likes.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg.cast(), lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so the lcore never saw arg: it is still ours, once.
            drop(unsafe { Box::from_raw(arg) });
            return Err(DpdkError::Launch {
                lcore,
                errno: Errno::from_ret(ret),
            });
        }
        Ok(Launched { lcore, done: false })
    }
}

/// A job running on a worker lcore ([`Eal::launch`]).
#[derive(Debug)]
pub struct Launched {
    lcore: u32,
    done: bool,
}

impl Launched {
    /// The lcore.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Wait for the job to end; its return value (-1 if it panicked).
    pub fn wait(mut self) -> i32 {
        self.done = true;
        // SAFETY: the EAL is initialised and lcore is a worker lcore we launched on.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: as in wait.
            unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        }
    }
}

/// An `rte_ring` of mbufs between one producer and one consumer thread. Freed, with the mbufs
/// still in it, when both halves are gone.
#[derive(Debug)]
struct Ring {
    ring: NonNull<sys::rte_ring>,
}

// SAFETY: the ring lives until Drop; single-producer/single-consumer use is enforced by the two
// halves (each needs &mut for its side), so moving and sharing the handle between threads is
// what rte_ring is for.
unsafe impl Send for Ring {}
// SAFETY: as for Send.
unsafe impl Sync for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // Both halves are gone, so no thread uses the ring: free what is left, then the ring.
        let mut left: Vec<Mbuf> = Vec::with_capacity(MAX_BURST);
        loop {
            left.clear();
            // SAFETY: nobody else uses the ring (see above).
            if unsafe { ring_dequeue(self.ring, &mut left, MAX_BURST) } == 0 {
                break;
            }
        }
        // SAFETY: the ring is empty and unused; it was created by rte_ring_create.
        unsafe { sys::rte_ring_free(self.ring.as_ptr()) };
    }
}

/// Dequeue up to `max` mbufs, appending them to `out`.
///
/// # Safety
/// The caller is the ring's only consumer during the call.
unsafe fn ring_dequeue(ring: NonNull<sys::rte_ring>, out: &mut Vec<Mbuf>, max: usize) -> usize {
    out.reserve(max);
    let start = out.len();
    let n = u32::try_from(max).unwrap_or(u32::MAX);
    let slots = out
        .spare_capacity_mut()
        .as_mut_ptr()
        .cast::<*mut std::ffi::c_void>();
    // SAFETY: slots has room for max >= n pointers; the caller is the only consumer.
    let got = unsafe { sys::shim_ring_dequeue_burst(ring.as_ptr(), slots, n) };
    let got = usize::try_from(got).unwrap_or(0).min(max);
    // SAFETY: the ring only ever holds non-NULL mbuf pointers whose ownership the producer gave
    // up (RingProducer::enqueue); the first `got` slots now hold them, each an owned Mbuf.
    unsafe { out.set_len(start + got) };
    got
}

/// Ring names must be unique in the process.
static RING_SEQ: AtomicU32 = AtomicU32::new(0);

/// A single-producer, single-consumer ring of `size` slots (a power of two; `size - 1` usable).
fn ring_pair(size: u32) -> Result<(RingProducer, RingConsumer), DpdkError> {
    let name = format!("svm_ring_{}", RING_SEQ.fetch_add(1, Ordering::Relaxed));
    let c = CString::new(name.clone()).map_err(|_| DpdkError::NulInArgument(name.clone()))?;
    // SAFETY: the EAL is initialised (rings are only made by DpdkWorkers::open, which holds an
    // Eal); no arguments.
    let socket = c_int::try_from(unsafe { sys::rte_socket_id() }).unwrap_or(-1);
    // SAFETY: c is a valid NUL-terminated name alive for the call (DPDK copies it).
    let ring = unsafe { sys::shim_ring_create_spsc(c.as_ptr(), size, socket) };
    let ring = NonNull::new(ring).ok_or_else(|| DpdkError::Ring {
        name,
        errno: Errno::last(),
    })?;
    let ring = Arc::new(Ring { ring });
    Ok((RingProducer(Arc::clone(&ring)), RingConsumer(ring)))
}

/// The producing half of a [`Ring`].
#[derive(Debug)]
struct RingProducer(Arc<Ring>);

impl RingProducer {
    /// Enqueue the mbufs of `bufs`, from the front; those the ring took are removed, the rest
    /// (ring full) stay, in order. Returns how many were taken.
    fn enqueue(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
        let len = bufs.len();
        let n = u32::try_from(len).unwrap_or(u32::MAX);
        let base = bufs.as_mut_ptr();
        // As in Port::tx_queue: bufs claims nothing while the ring reads the array.
        // SAFETY: 0 <= len; the elements stay initialised in the buffer and are handled below.
        unsafe { bufs.set_len(0) };
        // SAFETY: base points at len >= n initialised Mbufs (mbuf pointers, repr transparent);
        // &mut self makes this thread the ring's only producer.
        let took = unsafe {
            sys::shim_ring_enqueue_burst(
                self.0.ring.as_ptr(),
                base.cast::<*mut std::ffi::c_void>(),
                n,
            )
        };
        let took = usize::try_from(took).unwrap_or(0).min(len);
        // SAFETY: the first `took` mbufs now belong to the ring (its consumer frees or sends
        // them) and are forgotten; the rest move to the front, still ours.
        unsafe {
            std::ptr::copy(base.add(took), base, len - took);
            bufs.set_len(len - took);
        }
        took
    }
}

/// The consuming half of a [`Ring`].
#[derive(Debug)]
struct RingConsumer(Arc<Ring>);

impl RingConsumer {
    /// Dequeue up to `max` mbufs, appending them to `out`; how many.
    fn dequeue(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        // SAFETY: &mut self makes this thread the ring's only consumer.
        unsafe { ring_dequeue(self.0.ring, out, max) }
    }
}

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
/// with a hash of the VLAN IDs, through [`super::afpacket::mix`] (AF_PACKET's finaliser; without
/// tags and ports the value is the AF_PACKET fanout program's). Sums are commutative, so both
/// directions agree. Non-IP and truncated frames hash to 0.
pub fn flow_hash(frame: &[u8], hash: FlowHash) -> u32 {
    let be16 = |at: usize| -> Option<u16> {
        let b = frame.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    };
    let be32 = |at: usize| -> Option<u32> {
        let b = frame.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    };
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
            super::afpacket::mix(vlans)
        };
        Some(super::afpacket::mix(sum ^ vlans))
    };
    inner().unwrap_or(0)
}

/// Settings of a [`DpdkIo`].
#[derive(Clone, Debug)]
pub struct DpdkConfig {
    /// Name of the mbuf pool (unique per process).
    pub pool_name: String,
    /// Mbufs in the pool, at least. Raised to what the queues, rings, per-lcore caches and
    /// bursts in flight can hold (see [`DpdkWorkers`]); 8191 fits in `-m 128`.
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

/// The ports, their pool and the locks of shared transmit queues; shared by a worker set and
/// closed with its last [`DpdkIo`].
#[derive(Debug)]
struct Shared {
    ports: Vec<Port>,
    pool: Mempool,
    /// Per port, per transmit queue: held around a burst when workers share the queue.
    tx_locks: Vec<Vec<Mutex<()>>>,
}

/// Where a worker's frames come from.
#[derive(Debug)]
enum RxSide {
    /// Its own receive queue on every receive port (one worker, or RSS).
    Queue(u16),
    /// Worker 0 of the software distribution: receives queue 0 of every receive port, keeps
    /// its share and hands the rest to the other workers.
    Distribute {
        hash: FlowHash,
        /// Per other worker (index - 1), per receive port.
        rings: Vec<Vec<RingProducer>>,
        /// Per other worker: frames of the burst going to it.
        staged: Vec<Vec<Mbuf>>,
        /// Frames of the burst it keeps.
        own: Vec<Mbuf>,
    },
    /// Another worker of the software distribution: its ring from worker 0, per receive port.
    Rings(Vec<RingConsumer>),
}

/// What a worker has to transmit, and what it could not.
#[derive(Debug)]
struct Out {
    attach: DpdkAttach,
    /// Frames to transmit, per port.
    tx: Vec<Vec<Mbuf>>,
    injections: Vec<Injection>,
    /// Verdicts of the frames of the burst being handled, in order.
    verdicts: Vec<Verdict>,
    /// Per batch of injections of the burst: (frames handled before they were made, end of the
    /// batch in `injections`).
    marks: Vec<(usize, usize)>,
    /// Frames of the burst to free (dropped, or a mirror's copies), freed in one call.
    free: Vec<Mbuf>,
    /// Copy of a multi-segment frame for the handler.
    linear: Vec<u8>,
    /// Frames we could not transmit, per port: refused by a full ring, or injections without an
    /// mbuf or too long for one.
    tx_failed: Vec<u64>,
    /// Injections dropped because a mirror has no inject port (counted on port 0's tx_failed).
    unsent_injections: u64,
}

/// One worker's [`PacketIo`] on DPDK ports: inline between two ports, or mirror with an optional
/// inject port. [`DpdkIo::inline`] and [`DpdkIo::mirror`] open one worker on queue 0 of each
/// port; [`DpdkWorkers`] opens several, each to be polled by its own thread.
#[derive(Debug)]
pub struct DpdkIo {
    attach: DpdkAttach,
    shared: Arc<Shared>,
    worker: usize,
    rx: RxSide,
    /// This worker's transmit queue on each port, and whether other workers share it.
    txq: Vec<(u16, bool)>,
    rx_buf: Vec<Mbuf>,
    out: Out,
    /// Frames dropped because a worker's ring was full, per receive port (distributor only).
    ring_full: Vec<u64>,
    /// Frames handed to each worker (distributor only; index 0 counts none).
    handed: Vec<u64>,
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
    /// Inline between DPDK ports `ports[0]` (our port 0, the protected side) and `ports[1]`;
    /// one worker.
    pub fn inline(eal: &Eal, ports: [u16; 2], cfg: &DpdkConfig) -> Result<DpdkIo, DpdkError> {
        DpdkWorkers::inline(eal, ports, cfg, &WorkersConfig::default())?.single()
    }

    /// Mirror: receive on DPDK port `rx`; transmit injected frames on `inject`, if any; one
    /// worker.
    pub fn mirror(
        eal: &Eal,
        rx: u16,
        inject: Option<u16>,
        cfg: &DpdkConfig,
    ) -> Result<DpdkIo, DpdkError> {
        DpdkWorkers::mirror(eal, rx, inject, cfg, &WorkersConfig::default())?.single()
    }

    /// Replace the receive clock (tests); the default is [`wall_clock`], read once per burst.
    pub fn set_clock(&mut self, clock: fn() -> Timestamp) {
        self.clock = clock;
    }

    /// The attach mode.
    pub fn attach(&self) -> DpdkAttach {
        self.attach
    }

    /// This worker's index in its set (0 for a single worker).
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The mbuf pool the ports receive into.
    pub fn pool(&self) -> &Mempool {
        &self.shared.pool
    }

    /// The ports, by our [`PortId`].
    pub fn ports(&self) -> &[Port] {
        &self.shared.ports
    }

    /// Injections dropped because the mirror has no inject port.
    pub fn unsent_injections(&self) -> u64 {
        self.out.unsent_injections
    }

    /// Frames the software distributor handed to each worker (all zero elsewhere).
    pub fn handed(&self) -> &[u64] {
        &self.handed
    }

    /// Frames the software distributor dropped because a worker's ring was full, per receive
    /// port (all zero elsewhere); also counted in [`PortStats::rx_dropped`].
    pub fn ring_full(&self) -> &[u64] {
        &self.ring_full
    }

    /// Device counters per port.
    pub fn eth_stats(&self) -> Result<Vec<EthStats>, DpdkError> {
        self.shared.ports.iter().map(Port::eth_stats).collect()
    }

    fn rx_ports(&self) -> usize {
        match self.attach {
            DpdkAttach::Inline => self.shared.ports.len(),
            DpdkAttach::Mirror => 1,
        }
    }
}

/// Fill `views` with the bytes of each frame of `bufs` (at most [`VIEW_CHUNK`]) in one shim
/// call. Returns a bitmask of the chained (multi-segment) frames, whose views are left empty.
fn mbuf_views<'a>(bufs: &'a [Mbuf], views: &mut [&'a [u8]; VIEW_CHUNK]) -> u64 {
    let n = bufs.len().min(VIEW_CHUNK);
    let mut data = [std::ptr::null_mut::<u8>(); VIEW_CHUNK];
    let mut lens = [0u16; VIEW_CHUNK];
    // SAFETY: bufs holds n owned, valid mbufs, and Mbuf is repr(transparent) over a non-null
    // mbuf pointer, so its slice is an array of n mbuf pointers; data and lens have room for n
    // entries (n <= VIEW_CHUNK). The shim only reads the mbufs.
    unsafe {
        sys::shim_pktmbuf_views(
            bufs.as_ptr().cast::<*mut sys::rte_mbuf>(),
            u16::try_from(n).unwrap_or(0),
            data.as_mut_ptr(),
            lens.as_mut_ptr(),
        );
    }
    let mut chained = 0u64;
    for (bit, ((view, &ptr), &len)) in views.iter_mut().zip(&data).zip(&lens).take(n).enumerate() {
        if ptr.is_null() {
            chained |= 1 << bit;
            *view = &[];
        } else {
            // SAFETY: the shim returned mtod and data_len of a single-segment mbuf of bufs: len
            // initialised bytes inside its buffer, which bufs owns and which stays put while
            // bufs is borrowed for 'a.
            *view = unsafe { std::slice::from_raw_parts(ptr, usize::from(len)) };
        }
    }
    chained
}

/// Free every mbuf of `bufs` (returned to their pools) in one call; `bufs` is left empty.
fn free_bulk(bufs: &mut Vec<Mbuf>) {
    let n = bufs.len();
    let Ok(count) = u32::try_from(n) else {
        bufs.clear();
        return;
    };
    if n == 0 {
        return;
    }
    // While the shim frees them, bufs claims nothing: should anything unwind, the mbufs leak
    // instead of being freed twice.
    // SAFETY: 0 <= len; the n elements stay initialised in the buffer and are freed below.
    unsafe { bufs.set_len(0) };
    // SAFETY: the buffer holds n owned mbufs (repr(transparent) pointers) that nobody else
    // references; each is freed exactly once, here, and no longer belongs to bufs.
    unsafe { sys::shim_pktmbuf_free_bulk(bufs.as_mut_ptr().cast::<*mut sys::rte_mbuf>(), count) };
}

/// Queue one injection on the transmit queue its direction calls for (inline: the receive port
/// toward the source, its peer toward the destination; mirror: the inject port), in a fresh
/// mbuf; count it as failed if there is no such port or no mbuf.
fn place_injection(
    attach: DpdkAttach,
    pool: &Mempool,
    tx: &mut [Vec<Mbuf>],
    tx_failed: &mut [u64],
    unsent_injections: &mut u64,
    inj: &Injection,
) {
    let ports = tx.len();
    let target = match (attach, inj.toward) {
        (DpdkAttach::Inline, Toward::Source) => Some(usize::from(inj.rx_port)),
        (DpdkAttach::Inline, Toward::Destination) => Some(usize::from(inj.rx_port) ^ 1),
        (DpdkAttach::Mirror, _) => (ports > 1).then_some(1),
    };
    let Some(target) = target.filter(|&t| t < ports) else {
        *unsent_injections += 1;
        if let Some(f) = tx_failed.first_mut() {
            *f += 1;
        }
        return;
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

impl Out {
    /// Run the handler on the frames received on port `index` in one burst, then queue each for
    /// transmission if forwarded or free it (dropped, or a mirror's copy), with the injections
    /// each frame caused right after it, as if the frames had been handled one at a time.
    ///
    /// The handler sees the burst first (views of up to [`VIEW_CHUNK`] frames at a time, one
    /// [`FrameHandler::on_burst`] call per run of single-segment frames, a copy of each chained
    /// one); the mbufs move only afterwards, so the views stay borrowed from `bufs` throughout.
    fn burst(
        &mut self,
        pool: &Mempool,
        index: usize,
        bufs: &mut Vec<Mbuf>,
        ts: Timestamp,
        handler: &mut dyn FrameHandler,
    ) {
        let meta = RxMeta {
            port: PortId::try_from(index).unwrap_or(PortId::MAX),
            ts,
        };
        self.verdicts.clear();
        self.marks.clear();
        let mut views: [&[u8]; VIEW_CHUNK] = [&[]; VIEW_CHUNK];
        for chunk in bufs.chunks(VIEW_CHUNK) {
            let chained = mbuf_views(chunk, &mut views);
            let n = chunk.len();
            let mut i = 0;
            while i < n {
                if (chained >> i) & 1 == 1 {
                    let verdict = match chunk.get(i) {
                        Some(m) if m.copy_to(&mut self.linear) => {
                            handler.on_frame(&self.linear, meta)
                        }
                        // Too long, or a chain shorter than its length: not a frame we can show;
                        // it is forwarded uninspected (fail-open, see MAX_LINEAR).
                        _ => Verdict::Forward,
                    };
                    self.verdicts.push(verdict);
                    i += 1;
                } else {
                    // The run of single-segment frames starting at i.
                    let run = usize::try_from((chained >> i).trailing_zeros()).unwrap_or(n);
                    let frames = views.get(i..n.min(i + run)).unwrap_or(&[]);
                    let before = self.verdicts.len();
                    handler.on_burst(frames, meta, &mut self.verdicts);
                    // Exactly one verdict per frame handled, whatever the handler pushed.
                    let pushed = self.verdicts.len() - before;
                    let handled = pushed.clamp(1, frames.len().max(1));
                    if pushed != handled {
                        self.verdicts.resize(before + handled, Verdict::Forward);
                    }
                    i += handled;
                }
                let queued = self.marks.last().map_or(0, |&(_, end)| end);
                handler.take_injections(&mut self.injections);
                if self.injections.len() > queued {
                    self.marks
                        .push((self.verdicts.len(), self.injections.len()));
                }
            }
        }
        let Out {
            attach,
            tx,
            injections,
            verdicts,
            marks,
            free,
            tx_failed,
            unsent_injections,
            ..
        } = self;
        let onward = match attach {
            DpdkAttach::Inline => index ^ 1,
            // A mirror forwards nothing: every frame is freed.
            DpdkAttach::Mirror => usize::MAX,
        };
        if marks.is_empty() {
            // No injection in this burst (the common case): only forward or free; inline with
            // every frame allowed (the most common), the whole burst moves in one copy.
            if let Some(q) = tx.get_mut(onward)
                && verdicts.len() == bufs.len()
                && verdicts.iter().all(|v| *v == Verdict::Forward)
            {
                q.append(bufs);
                return;
            }
            for (mbuf, verdict) in bufs.drain(..).zip(verdicts.iter()) {
                match (verdict, tx.get_mut(onward)) {
                    (Verdict::Forward, Some(q)) => q.push(mbuf),
                    _ => free.push(mbuf),
                }
            }
            free_bulk(free);
            return;
        }
        let mut marks = marks.iter().peekable();
        let mut done = 0;
        for (handled, (mbuf, verdict)) in bufs.drain(..).zip(verdicts.iter()).enumerate() {
            match (verdict, tx.get_mut(onward)) {
                (Verdict::Forward, Some(q)) => q.push(mbuf),
                _ => free.push(mbuf),
            }
            while let Some(&&(after, end)) = marks.peek()
                && after == handled + 1
            {
                for inj in injections.get(done..end).unwrap_or(&[]) {
                    place_injection(*attach, pool, tx, tx_failed, unsent_injections, inj);
                }
                done = end;
                marks.next();
            }
        }
        injections.clear();
        free_bulk(free);
    }

    /// Transmit what is queued on this worker's transmit queues; what a full ring still refuses
    /// after [`TX_ATTEMPTS`] bursts is freed and counted.
    ///
    /// A shared queue whose lock another worker holds is not waited for (unless `wait`, or more
    /// than [`TX_DEFER_MAX`] frames are queued): its frames stay queued for the next poll. Waiting
    /// on a lock whose holder has been preempted puts this worker to sleep too, which on a busy
    /// machine costs far more than the lock itself.
    fn flush(&mut self, shared: &Shared, txq: &[(u16, bool)], wait: bool) {
        for (p, ((port, q), failed)) in shared
            .ports
            .iter()
            .zip(self.tx.iter_mut())
            .zip(self.tx_failed.iter_mut())
            .enumerate()
        {
            if q.is_empty() {
                continue;
            }
            let Some(&(queue, locked)) = txq.get(p) else {
                continue;
            };
            let lock = shared
                .tx_locks
                .get(p)
                .and_then(|l| l.get(usize::from(queue)));
            let guard = match (locked, lock) {
                (false, _) => None,
                (true, Some(l)) => match l.try_lock() {
                    Ok(g) => Some(g),
                    Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                    Err(TryLockError::WouldBlock) if !wait && q.len() < TX_DEFER_MAX => continue,
                    Err(TryLockError::WouldBlock) => {
                        Some(l.lock().unwrap_or_else(PoisonError::into_inner))
                    }
                },
                (true, None) => {
                    // Not reachable: every shared queue has its lock. Drop rather than race.
                    *failed += u64::try_from(q.len()).unwrap_or(u64::MAX);
                    q.clear();
                    continue;
                }
            };
            for _ in 0..TX_ATTEMPTS {
                // SAFETY: the queue is this worker's alone (DpdkWorkers::open hands each queue to
                // one worker unless it marks it shared), or shared and its lock is held.
                if q.is_empty() || unsafe { port.tx_queue(queue, q) } == 0 {
                    break;
                }
            }
            drop(guard);
            *failed += u64::try_from(q.len()).unwrap_or(u64::MAX);
            q.clear();
        }
    }
}

impl Drop for DpdkIo {
    fn drop(&mut self) {
        // Frames still queued for a shared transmit queue (see Out::flush) go out now; whatever
        // the device refuses is freed with the queue.
        self.out.flush(&self.shared, &self.txq, true);
    }
}

impl PacketIo for DpdkIo {
    fn poll(&mut self, handler: &mut dyn FrameHandler, burst: usize) -> std::io::Result<usize> {
        let max = u16::try_from(burst.clamp(1, MAX_BURST)).unwrap_or(1);
        let ts = (self.clock)();
        let rx_ports = self.rx_ports();
        let DpdkIo {
            shared,
            rx,
            rx_buf,
            out,
            ring_full,
            handed,
            txq,
            ..
        } = self;
        let mut received = 0;
        for (index, port) in shared.ports.iter().enumerate().take(rx_ports) {
            rx_buf.clear();
            match rx {
                RxSide::Queue(queue) => {
                    // SAFETY: receive queue `queue` of every port belongs to this worker alone
                    // (DpdkWorkers::open gives each worker its own), and poll takes &mut self.
                    received += unsafe { port.rx_queue(*queue, rx_buf, max) };
                }
                RxSide::Distribute {
                    hash,
                    rings,
                    staged,
                    own,
                } => {
                    // SAFETY: with software distribution only worker 0 (this one) polls, and
                    // only queue 0, the one receive queue of the port.
                    received += unsafe { port.rx_queue(0, rx_buf, max) };
                    let workers = rings.len() + 1;
                    for m in rx_buf.drain(..) {
                        let w = usize::try_from(flow_hash(m.data(), *hash)).unwrap_or(0) % workers;
                        match w.checked_sub(1).and_then(|i| staged.get_mut(i)) {
                            Some(s) => s.push(m),
                            None => own.push(m),
                        }
                    }
                    for (i, s) in staged.iter_mut().enumerate() {
                        if s.is_empty() {
                            continue;
                        }
                        let took = rings
                            .get_mut(i)
                            .and_then(|r| r.get_mut(index))
                            .map_or(0, |r| r.enqueue(s));
                        if let Some(h) = handed.get_mut(i + 1) {
                            *h += u64::try_from(took).unwrap_or(u64::MAX);
                        }
                        if let Some(f) = ring_full.get_mut(index) {
                            *f += u64::try_from(s.len()).unwrap_or(u64::MAX);
                        }
                        // The worker's ring is full: these are dropped (freed) here.
                        s.clear();
                    }
                    rx_buf.append(own);
                }
                RxSide::Rings(consumers) => {
                    if let Some(c) = consumers.get_mut(index) {
                        received += c.dequeue(rx_buf, usize::from(max));
                    }
                }
            }
            out.burst(&shared.pool, index, rx_buf, ts, handler);
        }
        out.flush(shared, txq, false);
        Ok(received)
    }

    /// Worker 0 reports the device counters (shared by the workers: summing them would count
    /// each frame once per worker) and the frames its rings refused (as receive drops); every
    /// worker reports the frames it could not transmit.
    fn stats(&self) -> Vec<PortStats> {
        self.shared
            .ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let failed = self.out.tx_failed.get(i).copied().unwrap_or(0);
                if self.worker != 0 {
                    return PortStats {
                        tx_failed: failed,
                        ..PortStats::default()
                    };
                }
                let s = port.eth_stats().unwrap_or_default();
                let ring_full = self.ring_full.get(i).copied().unwrap_or(0);
                PortStats {
                    rx_packets: s.ipackets,
                    rx_bytes: s.ibytes,
                    tx_packets: s.opackets,
                    rx_dropped: s
                        .imissed
                        .saturating_add(s.rx_nombuf)
                        .saturating_add(ring_full),
                    tx_failed: failed.saturating_add(s.oerrors),
                }
            })
            .collect()
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
/// worker forwards and injects on its own; mbuf ownership moves with the [`Mbuf`] (device, ring,
/// worker, device), so each frame is freed or transmitted exactly once; rings still holding
/// frames at the end free them.
#[derive(Debug)]
pub struct DpdkWorkers {
    ios: Vec<DpdkIo>,
    spread: Spread,
    hash: FlowHash,
    tx_queues: Vec<u16>,
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

    fn single(self) -> Result<DpdkIo, DpdkError> {
        self.ios
            .into_iter()
            .next()
            .ok_or(DpdkError::Config("no worker"))
    }

    fn open(
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
fn pool_size(
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
