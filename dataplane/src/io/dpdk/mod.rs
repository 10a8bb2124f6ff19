//! The DPDK backend: a safe wrapper over `dpdk-sys` and a [`PacketIo`](crate::io::PacketIo) for both attach modes.
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
//!
//! Files: `eal` (the EAL and lcores), `mbuf` (pools and owned buffers), `port` (devices), `ring`
//! (the distributor's rings), `distributor` (several workers, the flow hash) and `io` (one
//! worker's `PacketIo`); this file holds the errors and the burst constants they share.

// `unsafe` is confined to this module (STYLE 13); each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};

use dpdk_sys as sys;

mod distributor;
mod eal;
mod io;
mod mbuf;
mod port;
mod ring;

pub use distributor::{Distribution, DpdkWorkers, FlowHash, Spread, WorkersConfig, flow_hash};
pub use eal::{Eal, Launched};
pub use io::{DpdkAttach, DpdkConfig, DpdkIo, wall_clock};
pub use mbuf::{Mbuf, Mempool};
pub use port::{EthStats, Port, PortCaps, PortConfig, QueueLayout};

/// Largest receive burst a [`DpdkIo`] asks a device for.
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
