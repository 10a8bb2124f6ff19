//! VLAN identifiers, zero-copy views of VLAN tags, and the tag stack that scopes flows, blocks and
//! exclusions.
//!
//! # Contract
//! [`TagPacket::new_checked`] verifies that the buffer holds a whole 4-byte tag (TCI + inner
//! EtherType); after it succeeds every accessor is panic-free. [`TagPacket::new_unchecked`] is only
//! for buffers we sized ourselves for emission ([`TagRepr::emit`]). Setters exist only for
//! `T: AsMut<[u8]>` and keep the length invariant.
//!
//! A frame's tags are read outer first. [`VlanStack`] holds at most [`MAX_TAGS`] tags; a deeper
//! stack is reported by the decoder as a counted event, never stored truncated as if it were whole.

#![forbid(unsafe_code)]

use core::fmt;
use serde::{Deserialize, Serialize};

/// Deepest tag stack we track: three tags, as Suricata decodes (`VLAN_MAX_LAYERS`), so that a
/// customer tag inside a service tag (QinQ) inside one more provider tag keeps its own scope
/// and the `vlan.id`/`vlan.layers` rule keywords see every layer. A fourth tag is an anomaly the
/// decoder counts. Cost of the third slot: [`VlanScope`] grows from 6 to 8 bytes and
/// [`VlanStack`] from 10 to 14; the flow key (the scope packed into 56 bits of a `u128` word,
/// [`VlanScope::bits`]) keeps its size.
pub const MAX_TAGS: usize = 3;

/// Length of one VLAN tag on the wire: TCI (2 bytes) followed by the inner EtherType (2 bytes).
/// The TPID that announces the tag is the EtherType field that precedes it.
pub const TAG_LEN: usize = 4;

/// A VLAN id, 0..=4094. 4095 is reserved by IEEE 802.1Q and never names a VLAN on the wire
/// (VMware uses it to mean "trunk: all VLANs", which the policy spells `any`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(transparent)]
pub struct VlanId(u16);

/// Error for a VLAN id outside 0..=4094.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InvalidVlanId(pub u16);

impl fmt::Display for InvalidVlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VLAN id {} is out of range 0..=4094 (4095 is reserved)",
            self.0
        )
    }
}

impl std::error::Error for InvalidVlanId {}

impl VlanId {
    /// Highest VLAN id that names a VLAN.
    pub const MAX: u16 = 4094;

    /// A VLAN id if `raw` is in 0..=4094.
    pub const fn new(raw: u16) -> Result<Self, InvalidVlanId> {
        if raw <= Self::MAX {
            Ok(Self(raw))
        } else {
            Err(InvalidVlanId(raw))
        }
    }

    /// The numeric id.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for VlanId {
    type Error = InvalidVlanId;
    fn try_from(raw: u16) -> Result<Self, Self::Error> {
        Self::new(raw)
    }
}

impl<'de> Deserialize<'de> for VlanId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = u16::deserialize(d)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Tag protocol identifier: the EtherType value that announces a VLAN tag. Open enum: any other
/// value is carried as `Unknown` and means "not a tag".
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Tpid {
    /// IEEE 802.1Q customer tag, 0x8100.
    Dot1Q,
    /// IEEE 802.1ad service tag (QinQ outer), 0x88a8.
    Dot1Ad,
    /// Pre-standard QinQ outer tag used by older switches, 0x9100.
    QinQ9100,
    /// Any other EtherType: not a VLAN tag.
    Unknown(u16),
}

impl From<u16> for Tpid {
    fn from(raw: u16) -> Self {
        match raw {
            0x8100 => Tpid::Dot1Q,
            0x88a8 => Tpid::Dot1Ad,
            0x9100 => Tpid::QinQ9100,
            other => Tpid::Unknown(other),
        }
    }
}

impl From<Tpid> for u16 {
    fn from(t: Tpid) -> u16 {
        match t {
            Tpid::Dot1Q => 0x8100,
            Tpid::Dot1Ad => 0x88a8,
            Tpid::QinQ9100 => 0x9100,
            Tpid::Unknown(raw) => raw,
        }
    }
}

impl Tpid {
    /// Whether this EtherType announces a VLAN tag we decode.
    pub const fn is_tag(self) -> bool {
        !matches!(self, Tpid::Unknown(_))
    }
}

/// Error from a checked view: the buffer is shorter than one tag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer shorter than a VLAN tag")
    }
}

impl std::error::Error for Truncated {}

mod field {
    use core::ops::Range;
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
}

/// Zero-copy view of one VLAN tag: the 4 bytes after a TPID (TCI, then the inner EtherType).
#[derive(Debug, Clone)]
pub struct TagPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TagPacket<T> {
    /// Wrap a buffer without checking its length. Only for buffers sized for emission.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wrap a buffer received from the wire; fails if it cannot hold a tag.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Verify the buffer holds a whole tag. After success, accessors do not panic.
    pub fn check_len(&self) -> Result<(), Truncated> {
        if self.buffer.as_ref().len() < TAG_LEN {
            Err(Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn read_u16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = self.buffer.as_ref();
        match b.get(r) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            // Unreachable after check_len; a zero keeps an unchecked view from panicking.
            _ => 0,
        }
    }

    /// Tag control information (PCP, DEI, VID).
    pub fn tci(&self) -> u16 {
        self.read_u16(field::TCI)
    }

    /// Priority code point, 0..=7.
    pub fn pcp(&self) -> u8 {
        // Three bits: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let pcp = (self.tci() >> 13) as u8;
        pcp
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The raw 12-bit VLAN id field; 4095 is possible on the wire and must be checked by callers.
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// EtherType (or next TPID) of what follows the tag.
    pub fn inner_ethertype(&self) -> u16 {
        self.read_u16(field::ETHERTYPE)
    }

    /// Bytes after the tag.
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(TAG_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TagPacket<T> {
    fn write_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        if let Some(dst) = self.buffer.as_mut().get_mut(r) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Set the whole TCI.
    pub fn set_tci(&mut self, tci: u16) {
        self.write_u16(field::TCI, tci);
    }

    /// Set the inner EtherType.
    pub fn set_inner_ethertype(&mut self, ethertype: u16) {
        self.write_u16(field::ETHERTYPE, ethertype);
    }
}

/// One tag as it appeared on the wire: the TPID that announced it and its TCI.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tag {
    /// The TPID that announced this tag.
    pub tpid: Tpid,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl Tag {
    /// An 802.1Q tag with priority 0.
    pub const fn dot1q(id: VlanId) -> Self {
        Tag {
            tpid: Tpid::Dot1Q,
            tci: id.get(),
        }
    }

    /// An 802.1ad service tag with priority 0.
    pub const fn dot1ad(id: VlanId) -> Self {
        Tag {
            tpid: Tpid::Dot1Ad,
            tci: id.get(),
        }
    }

    /// The raw 12-bit VLAN id.
    pub const fn vid(self) -> u16 {
        self.tci & 0x0fff
    }
}

/// Meaning of one tag for emission: the TCI and the EtherType that follows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TagRepr {
    /// Tag control information.
    pub tci: u16,
    /// EtherType (or TPID of a further tag) after this tag.
    pub inner_ethertype: u16,
}

impl TagRepr {
    /// Parse a checked view.
    pub fn parse<T: AsRef<[u8]>>(packet: &TagPacket<T>) -> Result<Self, Truncated> {
        packet.check_len()?;
        Ok(TagRepr {
            tci: packet.tci(),
            inner_ethertype: packet.inner_ethertype(),
        })
    }

    /// Bytes [`TagRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        TAG_LEN
    }

    /// Write the tag into a buffer of at least [`TAG_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TagPacket<T>) {
        packet.set_tci(self.tci);
        packet.set_inner_ethertype(self.inner_ethertype);
    }
}

/// The VLAN tags of a frame, outer first, at most [`MAX_TAGS`]. Equality and hashing cover the
/// VLAN ids and the tag kinds, not the priority bits: two frames of one flow may carry different
/// PCP values and still belong to the same VLAN.
#[derive(Clone, Copy, Default)]
pub struct VlanStack {
    tags: [Tag; MAX_TAGS],
    len: u8,
}

const EMPTY_TAG: Tag = Tag {
    tpid: Tpid::Dot1Q,
    tci: 0,
};

impl Default for Tag {
    fn default() -> Self {
        EMPTY_TAG
    }
}

/// Error from [`VlanStack::push`]: the stack already holds [`MAX_TAGS`] tags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StackFull;

impl fmt::Display for StackFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_TAGS} VLAN tags")
    }
}

impl std::error::Error for StackFull {}

impl VlanStack {
    /// No tags: untagged traffic.
    pub const UNTAGGED: VlanStack = VlanStack {
        tags: [EMPTY_TAG; MAX_TAGS],
        len: 0,
    };

    /// A stack of the given tags, outer first.
    pub fn from_tags(tags: &[Tag]) -> Result<Self, StackFull> {
        let mut s = VlanStack::UNTAGGED;
        for t in tags {
            s.push(*t)?;
        }
        Ok(s)
    }

    /// A single 802.1Q tag.
    pub fn single(id: VlanId) -> Self {
        let mut s = VlanStack::UNTAGGED;
        s.tags[0] = Tag::dot1q(id);
        s.len = 1;
        s
    }

    /// An 802.1ad outer tag around an 802.1Q inner tag.
    pub fn qinq(outer: VlanId, inner: VlanId) -> Self {
        VlanStack {
            tags: [Tag::dot1ad(outer), Tag::dot1q(inner), EMPTY_TAG],
            len: 2,
        }
    }

    /// Append an inner tag.
    pub fn push(&mut self, tag: Tag) -> Result<(), StackFull> {
        let slot = self.tags.get_mut(usize::from(self.len)).ok_or(StackFull)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the frame was untagged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tags, outer first.
    pub fn tags(&self) -> &[Tag] {
        self.tags.get(..self.len()).unwrap_or(&[])
    }

    /// VLAN ids, outer first (EVE's `vlan` array).
    pub fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.tags().iter().map(|t| t.vid())
    }

    /// The outermost VLAN id: the VLAN of the hypervisor port group the frame arrived on.
    pub fn outer(&self) -> Option<u16> {
        self.tags().first().map(|t| t.vid())
    }

    /// Bytes the tags take on the wire.
    pub fn wire_len(&self) -> usize {
        self.len() * TAG_LEN
    }

    /// The key used for VLAN-scoped state: the ids with the tag kinds, no priority bits.
    pub fn scope(&self) -> VlanScope {
        let mut ids = [0u16; MAX_TAGS];
        for (slot, tag) in ids.iter_mut().zip(self.tags()) {
            *slot = tag.vid();
        }
        VlanScope { ids, len: self.len }
    }

    /// Write the tags into `buf` (which must hold [`VlanStack::wire_len`] bytes) so that the last
    /// one announces `inner_ethertype`. The TPID of the first tag belongs in the Ethernet header's
    /// EtherType field, which the caller writes with [`VlanStack::outer_tpid`].
    pub fn emit(&self, buf: &mut [u8], inner_ethertype: u16) -> Result<(), Truncated> {
        let tags = self.tags();
        for (i, tag) in tags.iter().enumerate() {
            let next = tags
                .get(i + 1)
                .map_or(inner_ethertype, |n| u16::from(n.tpid));
            let start = i * TAG_LEN;
            let chunk = buf.get_mut(start..start + TAG_LEN).ok_or(Truncated)?;
            TagRepr {
                tci: tag.tci,
                inner_ethertype: next,
            }
            .emit(&mut TagPacket::new_unchecked(chunk));
        }
        Ok(())
    }

    /// The TPID to put in the Ethernet EtherType field, or `inner_ethertype` when untagged.
    pub fn outer_tpid(&self, inner_ethertype: u16) -> u16 {
        self.tags()
            .first()
            .map_or(inner_ethertype, |t| u16::from(t.tpid))
    }
}

impl PartialEq for VlanStack {
    fn eq(&self, other: &Self) -> bool {
        self.scope() == other.scope()
    }
}

impl Eq for VlanStack {}

impl core::hash::Hash for VlanStack {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.scope().hash(state);
    }
}

impl fmt::Debug for VlanStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.scope(), f)
    }
}

/// The VLAN scope of flows, blocks and exclusions: the VLAN ids of a tag stack, outer first.
/// Untagged traffic is its own scope. Compact (6 bytes) and cheap to hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VlanScope {
    ids: [u16; MAX_TAGS],
    len: u8,
}

impl VlanScope {
    /// Untagged traffic.
    pub const UNTAGGED: VlanScope = VlanScope {
        ids: [0; MAX_TAGS],
        len: 0,
    };

    /// A scope from ids, outer first. Fails on more than [`MAX_TAGS`] ids.
    pub fn from_ids(ids: &[VlanId]) -> Result<Self, StackFull> {
        if ids.len() > MAX_TAGS {
            return Err(StackFull);
        }
        let mut s = VlanScope::UNTAGGED;
        for (slot, id) in s.ids.iter_mut().zip(ids) {
            *slot = id.get();
        }
        // At most MAX_TAGS, checked above.
        #[allow(clippy::cast_possible_truncation)]
        let len = ids.len() as u8;
        s.len = len;
        Ok(s)
    }

    /// One VLAN id.
    pub fn single(id: VlanId) -> Self {
        VlanScope {
            ids: [id.get(), 0, 0],
            len: 1,
        }
    }

    /// The ids, outer first.
    pub fn ids(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether this is untagged traffic.
    pub fn is_untagged(&self) -> bool {
        self.len == 0
    }

    /// The scope as one integer below 2^56 ([`Self::BITS`]): the number of ids in bits 0..8,
    /// the outer id in 8..24, the next in 24..40, the innermost in 40..56. Equal scopes give
    /// equal bits and the reverse (every constructor leaves the ids past the length at 0),
    /// without a branch on the length: flow and per-address keys are built from it on every
    /// packet.
    #[inline]
    pub fn bits(&self) -> u64 {
        let [outer, middle, inner] = self.ids;
        u64::from(self.len)
            | u64::from(outer) << 8
            | u64::from(middle) << 24
            | u64::from(inner) << 40
    }

    /// How many low bits [`Self::bits`] uses.
    pub const BITS: u32 = 56;

    /// The outermost id, if tagged.
    pub fn outer(&self) -> Option<u16> {
        self.ids().first().copied()
    }
}

impl fmt::Display for VlanScope {
    /// `untagged`, `100`, or `100.200` (outer.inner), the form used in CLI output and API paths.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_untagged() {
            return f.write_str("untagged");
        }
        for (i, id) in self.ids().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VlanScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing a [`VlanScope`] from text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InvalidScope(pub String);

impl fmt::Display for InvalidScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid VLAN scope {:?}: expected `untagged`, an id 0..=4094, `outer.inner` or \
             `outer.middle.inner`",
            self.0
        )
    }
}

impl std::error::Error for InvalidScope {}

impl core::str::FromStr for VlanScope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidScope(s.to_owned());
        if s.eq_ignore_ascii_case("untagged") || s.eq_ignore_ascii_case("novlan") {
            return Ok(VlanScope::UNTAGGED);
        }
        let mut ids = Vec::with_capacity(MAX_TAGS);
        for part in s.split('.') {
            let raw: u16 = part.parse().map_err(|_| bad())?;
            ids.push(VlanId::new(raw).map_err(|_| bad())?);
        }
        VlanScope::from_ids(&ids).map_err(|_| bad())
    }
}

impl Serialize for VlanScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VlanScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // TCI 0x6064: PCP 3, DEI 0, VID 100; inner EtherType IPv4.
    static TAG_BYTES: [u8; 6] = [0x60, 0x64, 0x08, 0x00, 0xaa, 0xbb];

    #[test]
    fn tag_view_parses_fields() {
        let p = TagPacket::new_checked(&TAG_BYTES[..]).unwrap();
        assert_eq!(p.pcp(), 3);
        assert!(!p.dei());
        assert_eq!(p.vid(), 100);
        assert_eq!(p.inner_ethertype(), 0x0800);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    proptest! {
        /// `bits` is one-to-one on scopes of 0 to 3 ids however they are built (from ids,
        /// `single`, or a tag stack), holds the length and each id where it says, and stays
        /// below 2^`BITS`.
        #[test]
        fn scope_bits_one_to_one(
            a in proptest::collection::vec(1u16..4095, 0..=MAX_TAGS),
            b in proptest::collection::vec(1u16..4095, 0..=MAX_TAGS),
        ) {
            let scope = |ids: &[u16]| {
                let ids: Vec<VlanId> = ids.iter().filter_map(|&i| VlanId::new(i).ok()).collect();
                VlanScope::from_ids(&ids).unwrap()
            };
            let (sa, sb) = (scope(&a), scope(&b));
            prop_assert_eq!(sa == sb, sa.bits() == sb.bits());
            let id = |i: usize| u64::from(a.get(i).copied().unwrap_or(0));
            prop_assert_eq!(sa.bits(), a.len() as u64 | id(0) << 8 | id(1) << 24 | id(2) << 40);
            prop_assert!(sa.bits() < 1 << VlanScope::BITS);
            if let [one] = a.as_slice() {
                prop_assert_eq!(VlanScope::single(VlanId::new(*one).unwrap()).bits(), sa.bits());
            }
            let mut stack = VlanStack::UNTAGGED;
            for &i in &a {
                stack.push(Tag { tpid: Tpid::Dot1Q, tci: i }).unwrap();
            }
            prop_assert_eq!(stack.scope().bits(), sa.bits());
        }
    }

    #[test]
    fn tag_view_rejects_short_buffer() {
        assert_eq!(
            TagPacket::new_checked(&TAG_BYTES[..3]).unwrap_err(),
            Truncated
        );
        assert_eq!(TagPacket::new_checked(&[][..]).unwrap_err(), Truncated);
    }

    #[test]
    fn unchecked_short_view_does_not_panic() {
        let p = TagPacket::new_unchecked(&TAG_BYTES[..1]);
        assert_eq!(p.tci(), 0);
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn tag_emit_matches_fixture() {
        let mut buf = [0u8; 4];
        TagRepr {
            tci: 0x6064,
            inner_ethertype: 0x0800,
        }
        .emit(&mut TagPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, TAG_BYTES[..4]);
    }

    #[test]
    fn vlan_id_range() {
        assert!(VlanId::new(0).is_ok());
        assert!(VlanId::new(4094).is_ok());
        assert_eq!(VlanId::new(4095), Err(InvalidVlanId(4095)));
        assert!(serde_json::from_str::<VlanId>("4095").is_err());
        assert_eq!(serde_json::from_str::<VlanId>("12").unwrap().get(), 12);
    }

    #[test]
    fn tpid_open_enum_round_trips() {
        for raw in [0x8100u16, 0x88a8, 0x9100, 0x0800, 0x86dd] {
            assert_eq!(u16::from(Tpid::from(raw)), raw);
        }
        assert!(!Tpid::from(0x0800).is_tag());
        assert!(Tpid::from(0x9100).is_tag());
    }

    #[test]
    fn stack_caps_at_three() {
        let id = VlanId::new(7).unwrap();
        let mut s = VlanStack::UNTAGGED;
        s.push(Tag::dot1ad(id)).unwrap();
        s.push(Tag::dot1q(id)).unwrap();
        s.push(Tag::dot1q(id)).unwrap();
        assert_eq!(s.push(Tag::dot1q(id)), Err(StackFull));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn stack_equality_ignores_priority() {
        let a = VlanStack::from_tags(&[Tag {
            tpid: Tpid::Dot1Q,
            tci: 0x6064,
        }])
        .unwrap();
        let b = VlanStack::from_tags(&[Tag {
            tpid: Tpid::Dot1Q,
            tci: 0x0064,
        }])
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, VlanStack::UNTAGGED);
    }

    #[test]
    fn qinq_emit_chains_tpids() {
        let s = VlanStack::qinq(VlanId::new(100).unwrap(), VlanId::new(200).unwrap());
        let mut buf = [0u8; 8];
        s.emit(&mut buf, 0x0800).unwrap();
        assert_eq!(s.outer_tpid(0x0800), 0x88a8);
        assert_eq!(buf, [0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
        assert_eq!(s.emit(&mut buf[..5], 0x0800), Err(Truncated));
    }

    #[test]
    fn scope_text_form() {
        let s: VlanScope = "100.200".parse().unwrap();
        assert_eq!(s.ids(), &[100, 200]);
        assert_eq!(s.to_string(), "100.200");
        assert_eq!(
            "untagged".parse::<VlanScope>().unwrap(),
            VlanScope::UNTAGGED
        );
        assert!("4095".parse::<VlanScope>().is_err());
        let three: VlanScope = "1.2.3".parse().unwrap();
        assert_eq!(three.ids(), &[1, 2, 3]);
        assert!("1.2.3.4".parse::<VlanScope>().is_err());
        assert!("x".parse::<VlanScope>().is_err());
    }

    proptest! {
        #[test]
        fn stack_emit_then_parse(outer in 0u16..=4094, inner in 0u16..=4094, pcp in 0u16..8, et in any::<u16>()) {
            let stack = VlanStack::from_tags(&[
                Tag { tpid: Tpid::Dot1Ad, tci: (pcp << 13) | outer },
                Tag { tpid: Tpid::Dot1Q, tci: inner },
            ]).unwrap();
            let mut buf = vec![0u8; stack.wire_len()];
            stack.emit(&mut buf, et).unwrap();
            let first = TagPacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(first.vid(), outer);
            prop_assert_eq!(first.pcp(), u8::try_from(pcp).unwrap());
            prop_assert_eq!(first.inner_ethertype(), 0x8100);
            let second = TagPacket::new_checked(first.payload()).unwrap();
            prop_assert_eq!(second.vid(), inner);
            prop_assert_eq!(second.inner_ethertype(), et);
        }

        #[test]
        fn scope_display_parses_back(ids in proptest::collection::vec(0u16..=4094, 0..=MAX_TAGS)) {
            let ids: Vec<VlanId> = ids.into_iter().map(|i| VlanId::new(i).unwrap()).collect();
            let s = VlanScope::from_ids(&ids).unwrap();
            prop_assert_eq!(s.to_string().parse::<VlanScope>().unwrap(), s);
        }
    }
}
