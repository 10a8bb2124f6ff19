//! The live dataplane's symmetric hash in Rust, so that replay spreads frames over its workers
//! exactly as AF_PACKET's fanout program ([`super::afpacket::address_hash_program`]) does: the
//! sum of the source and destination address words through [`mix`], behind at most two VLAN
//! tags (the kernel moves the outer one to metadata, the program steps over one more). Both
//! directions of a flow, its fragments and every probe of one source to one host meet on one
//! worker. The AF_PACKET tests hold the two equal on tagged, untagged, IPv4, IPv6, non-IP and
//! short frames.

/// The finaliser applied to the address sum: the kernel takes the result modulo the group size,
/// and a plain sum of two addresses that differ in the same low bits is always even.
pub fn mix(mut a: u32) -> u32 {
    a ^= a >> 16;
    a = a.wrapping_mul(0x045d_9f3b);
    a ^ (a >> 16)
}

/// The big-endian 16-bit word of `frame` at `at`, if the frame holds it.
pub(crate) fn be16(frame: &[u8], at: usize) -> Option<u16> {
    let b = frame.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// The big-endian 32-bit word of `frame` at `at`, if the frame holds it.
pub(crate) fn be32(frame: &[u8], at: usize) -> Option<u32> {
    let b = frame.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

fn is_tpid(t: u16) -> bool {
    matches!(t, 0x8100 | 0x88a8 | 0x9100)
}

/// The AF_PACKET fanout hash of an Ethernet frame: 0 for non-IP frames, frames with more than
/// two VLAN tags and frames too short for their addresses.
pub fn address_hash(frame: &[u8]) -> u32 {
    let be16 = |at| be16(frame, at);
    let be32 = |at| be32(frame, at);
    let inner = || -> Option<u32> {
        let mut at = 12usize;
        let mut ethertype = be16(at)?;
        for _ in 0..2 {
            if !is_tpid(ethertype) {
                break;
            }
            at += 4;
            ethertype = be16(at)?;
        }
        let l3 = at + 2;
        let sum = match ethertype {
            0x0800 => be32(l3 + 12)?.wrapping_add(be32(l3 + 16)?),
            0x86dd => {
                let mut sum = 0u32;
                for w in 0..8 {
                    sum = sum.wrapping_add(be32(l3 + 8 + 4 * w)?);
                }
                sum
            }
            _ => return None,
        };
        Some(mix(sum))
    };
    inner().unwrap_or(0)
}

/// The worker of `workers` that a frame goes to (0 with one worker).
pub fn worker_of(frame: &[u8], workers: usize) -> usize {
    match u32::try_from(workers) {
        Ok(n) if n > 1 => usize::try_from(address_hash(frame) % n).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(tags: &[u16], v6: bool, a: &[u8], b: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 100]);
        }
        if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 6, 64]);
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
        }
        f.extend_from_slice(a);
        f.extend_from_slice(b);
        f
    }

    proptest! {
        /// Both directions of a pair meet on one worker, behind 0 to 2 tags, v4 and v6.
        #[test]
        fn symmetric(
            a in proptest::collection::vec(any::<u8>(), 16),
            b in proptest::collection::vec(any::<u8>(), 16),
            tags in 0usize..3,
            v6 in any::<bool>(),
            workers in 1usize..9,
        ) {
            let n = if v6 { 16 } else { 4 };
            let tpids = [0x88a8, 0x8100];
            let t = &tpids[2 - tags..];
            let ab = frame(t, v6, &a[..n], &b[..n]);
            let ba = frame(t, v6, &b[..n], &a[..n]);
            prop_assert_eq!(address_hash(&ab), address_hash(&ba));
            prop_assert!(worker_of(&ab, workers) < workers);
        }

        /// Arbitrary bytes: no panic, a worker in range.
        #[test]
        fn any_bytes(data in proptest::collection::vec(any::<u8>(), 0..128), workers in 0usize..9) {
            prop_assert!(worker_of(&data, workers) < workers.max(1));
        }
    }
}
