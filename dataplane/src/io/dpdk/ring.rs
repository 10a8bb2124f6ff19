//! The single-producer, single-consumer `rte_ring`s of the software distributor.

use std::ffi::{CString, c_int};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use dpdk_sys as sys;

use super::mbuf::Mbuf;
use super::{DpdkError, Errno, MAX_BURST};

/// An `rte_ring` of mbufs between one producer and one consumer thread. Freed, with the mbufs
/// still in it, when both halves are gone.
#[derive(Debug)]
pub(super) struct Ring {
    pub(super) ring: NonNull<sys::rte_ring>,
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
pub(super) unsafe fn ring_dequeue(
    ring: NonNull<sys::rte_ring>,
    out: &mut Vec<Mbuf>,
    max: usize,
) -> usize {
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
pub(super) static RING_SEQ: AtomicU32 = AtomicU32::new(0);

/// A single-producer, single-consumer ring of `size` slots (a power of two; `size - 1` usable).
pub(super) fn ring_pair(size: u32) -> Result<(RingProducer, RingConsumer), DpdkError> {
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
pub(super) struct RingProducer(Arc<Ring>);

impl RingProducer {
    /// Enqueue the mbufs of `bufs`, from the front; those the ring took are removed, the rest
    /// (ring full) stay, in order. Returns how many were taken.
    pub(super) fn enqueue(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
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
pub(super) struct RingConsumer(Arc<Ring>);

impl RingConsumer {
    /// Dequeue up to `max` mbufs, appending them to `out`; how many.
    pub(super) fn dequeue(&mut self, out: &mut Vec<Mbuf>, max: usize) -> usize {
        // SAFETY: &mut self makes this thread the ring's only consumer.
        unsafe { ring_dequeue(self.0.ring, out, max) }
    }
}
