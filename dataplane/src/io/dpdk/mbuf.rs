//! Packet buffers: pools (never freed) and owned mbufs, and their bytes as views.

use std::ffi::{CString, c_int};
use std::ptr::NonNull;

use dpdk_sys as sys;

use super::eal::Eal;
use super::{DpdkError, Errno, MAX_LINEAR, VIEW_CHUNK};

/// A packet-mbuf pool. Pools are never freed (see the module doc), so a handle is always valid.
#[derive(Clone, Debug)]
pub struct Mempool {
    pub(super) pool: NonNull<sys::rte_mempool>,
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

    pub(super) fn as_ptr(&self) -> *mut sys::rte_mempool {
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

/// Fill `views` with the bytes of each frame of `bufs` (at most [`VIEW_CHUNK`]) in one shim
/// call. Returns a bitmask of the chained (multi-segment) frames, whose views are left empty.
pub(super) fn mbuf_views<'a>(bufs: &'a [Mbuf], views: &mut [&'a [u8]; VIEW_CHUNK]) -> u64 {
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
pub(super) fn free_bulk(bufs: &mut Vec<Mbuf>) {
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
