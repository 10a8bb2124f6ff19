//! Initial packet protection of QUIC v1 (RFC 9001 section 5): the client's Initial keys derived
//! from the destination connection id of its first Initial (HKDF-SHA256 with the version's salt,
//! section 5.2), header protection removal (AES-128 in ECB on a 16-byte sample, section 5.4.3)
//! and AEAD_AES_128_GCM decryption (section 5.3), all by `ring`.
//!
//! Initial keys protect nothing secret: anyone who sees the first datagram can derive them.
//! They only keep middleboxes from ossifying the handshake, which is what lets us read it.

use ring::aead::quic::{AES_128, HeaderProtectionKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};

use super::QuicError;
use super::parser::{LongPacket, decode_packet_number};

/// The salt of version 1's Initial secrets (RFC 9001 section 5.2).
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

/// Bytes of the header protection sample (RFC 9001 section 5.4.2).
const SAMPLE_LEN: usize = 16;

/// The AEAD tag (AES-128-GCM).
const TAG_LEN: usize = 16;

/// A length for `ring`'s HKDF-Expand.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label of TLS 1.3 (RFC 8446 section 7.1) with an empty context, as QUIC uses it.
fn expand_label(secret: &Prk, label: &[u8], out: &mut [u8]) -> Result<(), QuicError> {
    let out_len = u16::try_from(out.len()).map_err(|_| QuicError::Keys)?;
    let full_len = u8::try_from(label.len().saturating_add(6)).map_err(|_| QuicError::Keys)?;
    let len = out_len.to_be_bytes();
    let info: [&[u8]; 5] = [&len, &[full_len], b"tls13 ", label, &[0]];
    secret
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| QuicError::Keys)
}

/// The client's Initial keys of one connection.
pub struct InitialKeys {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    hp: HeaderProtectionKey,
}

impl core::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("InitialKeys")
    }
}

/// Key material: packet key, IV, header protection key.
pub type Material = ([u8; 16], [u8; NONCE_LEN], [u8; 16]);

/// The client's Initial key material (RFC 9001 section 5.2), as the appendix A.1 vectors show
/// it.
pub fn client_initial_material(dcid: &[u8]) -> Result<Material, QuicError> {
    let initial = Salt::new(HKDF_SHA256, &INITIAL_SALT_V1).extract(dcid);
    let mut client = [0u8; 32];
    expand_label(&initial, b"client in", &mut client)?;
    let client = Prk::new_less_safe(HKDF_SHA256, &client);
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    let mut hp = [0u8; 16];
    expand_label(&client, b"quic key", &mut key)?;
    expand_label(&client, b"quic iv", &mut iv)?;
    expand_label(&client, b"quic hp", &mut hp)?;
    Ok((key, iv, hp))
}

/// Destination connection ids a [`MaterialCache`] remembers the key material of.
pub const MATERIAL_CACHE_SLOTS: usize = 64;

/// Longest destination connection id (RFC 9000 section 17.2: 20 bytes in version 1).
const MAX_DCID: usize = 20;

/// The client Initial key material of recently seen destination connection ids: deriving it
/// (HKDF-SHA256, five HMACs) costs tens of thousands of instructions, and the same id comes
/// back (a client repeating its Initial; a looped capture). The material is a function of the
/// id alone ([`client_initial_material`]), so a remembered one is exactly what deriving it
/// again gives: whoever chooses the ids can only evict entries, never change what an Initial
/// decrypts to. Direct-mapped by the id's bytes, each slot holding the whole id it answers for.
#[derive(Clone, Debug, Default)]
pub struct MaterialCache {
    /// Empty until the first lookup (a worker that never sees QUIC pays nothing).
    slots: Vec<Option<([u8; MAX_DCID], u8, Material)>>,
}

impl MaterialCache {
    /// [`client_initial_material`] of `dcid`, remembered.
    pub fn get(&mut self, dcid: &[u8]) -> Result<Material, QuicError> {
        let Ok(len) = u8::try_from(dcid.len()) else {
            return client_initial_material(dcid);
        };
        let mut id = [0u8; MAX_DCID];
        let Some(to) = id.get_mut(..dcid.len()) else {
            return client_initial_material(dcid);
        };
        to.copy_from_slice(dcid);
        if self.slots.is_empty() {
            self.slots = vec![None; MATERIAL_CACHE_SLOTS];
        }
        let at = id.iter().fold(usize::from(len), |h, &b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        }) % MATERIAL_CACHE_SLOTS;
        let Some(slot) = self.slots.get_mut(at) else {
            return client_initial_material(dcid);
        };
        if let Some((k, l, m)) = slot
            && *l == len
            && *k == id
        {
            return Ok(*m);
        }
        let m = client_initial_material(dcid)?;
        *slot = Some((id, len, m));
        Ok(m)
    }
}

impl InitialKeys {
    /// The client's keys for the connection whose first Initial had this destination id.
    pub fn client(dcid: &[u8]) -> Result<Self, QuicError> {
        Self::from_material(client_initial_material(dcid)?)
    }

    /// [`InitialKeys::client`], the key material taken from `cache` when it holds the id's.
    pub fn client_cached(dcid: &[u8], cache: &mut MaterialCache) -> Result<Self, QuicError> {
        Self::from_material(cache.get(dcid)?)
    }

    fn from_material((key, iv, hp): Material) -> Result<Self, QuicError> {
        let key = UnboundKey::new(&AES_128_GCM, &key).map_err(|_| QuicError::Keys)?;
        let hp = HeaderProtectionKey::new(&AES_128, &hp).map_err(|_| QuicError::Keys)?;
        Ok(InitialKeys {
            key: LessSafeKey::new(key),
            iv,
            hp,
        })
    }

    /// Remove the header protection of `p` and decrypt its payload into `scratch` (which is
    /// overwritten). `largest` is the largest packet number decrypted before in this space.
    /// Returns the packet number and the plaintext frames (a slice of `scratch`).
    pub fn open<'s>(
        &self,
        p: &LongPacket<'_>,
        largest: Option<u64>,
        scratch: &'s mut Vec<u8>,
    ) -> Result<(u64, &'s [u8]), QuicError> {
        // The sample starts 4 bytes after the packet number's first byte, whatever its length
        // (RFC 9001 section 5.4.2), and must lie inside the packet.
        let sample_at = p.pn_offset.checked_add(4).ok_or(QuicError::Truncated)?;
        let sample = p
            .packet
            .get(sample_at..sample_at.saturating_add(SAMPLE_LEN))
            .ok_or(QuicError::Truncated)?;
        let mask = self.hp.new_mask(sample).map_err(|_| QuicError::Keys)?;
        let [m0, m @ ..] = mask;
        scratch.clear();
        scratch.extend_from_slice(p.packet);
        let first = scratch.first_mut().ok_or(QuicError::Truncated)?;
        // Long header: the low four bits are protected.
        *first ^= m0 & 0x0f;
        let pn_len = usize::from(*first & 0x03) + 1;
        let pn_end = p.pn_offset.saturating_add(pn_len);
        let pn_bytes = scratch
            .get_mut(p.pn_offset..pn_end)
            .ok_or(QuicError::Truncated)?;
        let mut truncated = 0u64;
        for (b, k) in pn_bytes.iter_mut().zip(m) {
            *b ^= k;
            truncated = (truncated << 8) | u64::from(*b);
        }
        let pn_bits = u32::try_from(pn_len * 8).map_err(|_| QuicError::Truncated)?;
        let pn = decode_packet_number(largest, truncated, pn_bits);
        let mut nonce = self.iv;
        for (n, b) in nonce.iter_mut().rev().zip(pn.to_be_bytes().iter().rev()) {
            *n ^= b;
        }
        if scratch.len() < pn_end.saturating_add(TAG_LEN) {
            return Err(QuicError::Truncated);
        }
        let (header, body) = scratch.split_at_mut(pn_end);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                body,
            )
            .map_err(|_| QuicError::Decrypt)?;
        Ok((pn, plain))
    }
}

/// Protect a client Initial, the inverse of [`InitialKeys::open`]: `header` is the unprotected
/// long header up to and including the packet number (its length in the first byte's low bits),
/// `payload` the frames (at least 4 bytes with a 1-byte packet number, so a sample exists). For
/// generating QUIC traffic (tests, fuzzing, testgen); RFC 9001 A.2's packet is reproduced by a
/// test.
pub fn seal_client_initial(
    dcid: &[u8],
    header: &[u8],
    pn: u64,
    payload: &[u8],
) -> Result<Vec<u8>, QuicError> {
    let (key, iv, hp) = client_initial_material(dcid)?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).map_err(|_| QuicError::Keys)?);
    let mut nonce = iv;
    for (n, b) in nonce.iter_mut().rev().zip(pn.to_be_bytes().iter().rev()) {
        *n ^= b;
    }
    let mut packet = header.to_vec();
    let mut body = payload.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(header),
            &mut body,
        )
        .map_err(|_| QuicError::Keys)?;
    packet.extend_from_slice(&body);
    packet.extend_from_slice(tag.as_ref());
    let first = *header.first().ok_or(QuicError::Truncated)?;
    let pn_len = usize::from(first & 0x03) + 1;
    let pn_offset = header
        .len()
        .checked_sub(pn_len)
        .ok_or(QuicError::Truncated)?;
    let sample_at = pn_offset.saturating_add(4);
    let sample = packet
        .get(sample_at..sample_at.saturating_add(SAMPLE_LEN))
        .ok_or(QuicError::Truncated)?;
    let hp = HeaderProtectionKey::new(&AES_128, &hp).map_err(|_| QuicError::Keys)?;
    let [m0, m @ ..] = hp.new_mask(sample).map_err(|_| QuicError::Keys)?;
    if let Some(b) = packet.first_mut() {
        *b ^= m0 & 0x0f;
    }
    let pn_bytes = packet
        .get_mut(pn_offset..pn_offset.saturating_add(pn_len))
        .ok_or(QuicError::Truncated)?;
    for (b, k) in pn_bytes.iter_mut().zip(m) {
        *b ^= k;
    }
    Ok(packet)
}

/// A protected client Initial of version 1 for `dcid` (no source id, no token) with a 2-byte
/// packet number `pn`, carrying `frames` padded with PADDING to at least `min_payload` bytes
/// (clients pad the datagram to 1,200 bytes).
pub fn client_initial(
    dcid: &[u8],
    pn: u16,
    frames: &[u8],
    min_payload: usize,
) -> Result<Vec<u8>, QuicError> {
    let mut payload = frames.to_vec();
    payload.resize(payload.len().max(min_payload).max(20), 0);
    let cid_len = u8::try_from(dcid.len())
        .ok()
        .filter(|l| usize::from(*l) <= super::parser::MAX_CID_LEN)
        .ok_or(QuicError::BadConnectionId)?;
    // Length: packet number, payload, tag; a 4-byte varint.
    let length = payload.len().saturating_add(2 + TAG_LEN);
    let length = u32::try_from(length)
        .ok()
        .filter(|l| *l < 1 << 30)
        .ok_or(QuicError::CryptoTooLong)?;
    let mut header = vec![0xc1, 0, 0, 0, 1, cid_len];
    header.extend_from_slice(dcid);
    header.extend_from_slice(&[0, 0]); // no source id, no token
    header.extend_from_slice(&(length | 0x8000_0000).to_be_bytes());
    header.extend_from_slice(&pn.to_be_bytes());
    seal_client_initial(dcid, &header, u64::from(pn), &payload)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 9001 appendix A.1.
    #[test]
    fn rfc9001_keys() {
        let (key, iv, hp) = client_initial_material(&hex("8394c8f03e515708")).unwrap();
        assert_eq!(key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    // The cache gives what deriving gives, for every id however they share slots: ids that
    // differ only in length (a trailing zero byte) or in one byte, the empty id, 20 bytes, and
    // more ids than slots, asked twice each (the second time from the cache or after an
    // eviction).
    #[test]
    fn the_material_cache_answers_as_deriving_does() {
        let mut ids: Vec<Vec<u8>> = vec![
            hex("8394c8f03e515708"),
            hex("8394c8f03e51570800"),
            hex("8394c8f03e515709"),
            Vec::new(),
            vec![0xff; 20],
        ];
        ids.extend((0..u8::try_from(MATERIAL_CACHE_SLOTS * 2).unwrap()).map(|i| vec![i, 7]));
        let mut cache = MaterialCache::default();
        for _ in 0..2 {
            for id in &ids {
                assert_eq!(cache.get(id), client_initial_material(id), "{id:02x?}");
            }
        }
        let a = cache.get(&hex("8394c8f03e515708")).unwrap();
        let b = cache.get(&hex("8394c8f03e51570800")).unwrap();
        assert_ne!(a, b);
    }
}
