//! An Ethernet device: configuration, queues, bursts, statistics; stopped and closed on drop.

use std::ffi::c_int;
use std::time::{Duration, Instant};

use dpdk_sys as sys;

use super::distributor::FlowHash;
use super::eal::Eal;
use super::mbuf::{Mbuf, Mempool};
use super::{DpdkError, Errno};

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
/// several (see [`DpdkWorkers`](super::DpdkWorkers)), the port is shared by the workers and each queue is used by one
/// thread at a time, which the worker set guarantees.
#[derive(Debug)]
pub struct Port {
    pub(super) id: u16,
    pub(super) link_up: bool,
    pub(super) layout: QueueLayout,
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

    pub(super) fn wait_link(&self, timeout: Duration) -> bool {
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
    pub(super) unsafe fn rx_queue(&self, queue: u16, out: &mut Vec<Mbuf>, max: u16) -> usize {
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
    pub(super) unsafe fn tx_queue(&self, queue: u16, bufs: &mut Vec<Mbuf>) -> usize {
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
pub(super) const ENOTSUP: c_int = 95;
