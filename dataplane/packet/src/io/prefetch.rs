//! Software prefetch: a hint that the cache line holding an address will be read or written soon,
//! so its miss overlaps other work instead of stalling the load that needs it.
//!
//! Why it is here: a random-source flood makes every packet miss the cache in several tables
//! (the flow index, the flow slab, the attack blocker's first-seen table) whose addresses are
//! known before the loads that need them (issue 15.1). `core::arch::x86_64::_mm_prefetch` is
//! still an `unsafe` call in Rust 1.95 (a `#[target_feature(enable = "sse")]` function, even
//! though SSE is part of the x86_64 baseline), and the crate allows `unsafe` only in the I/O
//! backends' modules; these two safe wrappers are the only `unsafe` outside them, each block
//! with its SAFETY note. On other architectures they do nothing.
#![allow(unsafe_code)]

/// Hint that the cache line at `p` will be read soon. Any address is fine: a prefetch never
/// faults and never changes what the program reads.
#[inline(always)]
pub fn read<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint: it never faults, whatever the address (an unmapped or
    // invalid one is ignored), has no effect on memory and reads nothing into the program; the
    // only requirement of the intrinsic, SSE, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hint that the cache line at `p` will be written soon (fetched for ownership where the
/// processor supports it, else as for a read).
#[inline(always)]
pub fn write<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `read`: `prefetchw` (or `prefetcht0` where the hint is not supported) is a
    // hint that never faults and changes no memory; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// [`write`] every cache line of a value of type `T` at `p` (a record about to be written
/// whole, e.g. a new flow into a free slot).
#[inline(always)]
pub fn write_all<T>(p: *const T) {
    let base = p.cast::<u8>();
    let mut off = 0;
    while off < size_of::<T>() {
        write(base.wrapping_add(off));
        off += 64;
    }
}
