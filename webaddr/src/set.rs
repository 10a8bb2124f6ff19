//! The compiled address set: every list's entries as 64-bit keys in one sorted array, shared by
//! every worker behind an `Arc` and never changed after [`AddressSetBuilder::build`] (a reload
//! builds a new set and swaps the `Arc`).
//!
//! Layout (fixed-width little-endian integers in three flat arrays, so a later version can
//! write them to a file and memory-map them as they are):
//! - `keys: [u64]`, sorted: for domains, hosts and IPs [`name_key`] of the canonical host (its
//!   labels hashed from the right, so one pass over a host gives all its parents' keys); for
//!   URLs `xxh3_64` of `host/path[?query]`. A URL entry also adds a marker record under its
//!   host's name key, so URL paths are only tried on hosts that have URL entries;
//! - `meta: [u32]`, beside each key: the list's index (high 24 bits) and the entry kind (low 8);
//!   records of one key are sorted by list index, so the first list given wins a tie;
//! - `buckets: [u32]`: where each run of keys with the same top bits starts (about 64 keys a
//!   bucket, so the table stays in cache); inside a bucket the key's place is interpolated from
//!   its next bits (the keys are uniform) and searched from there, so a probe costs about one
//!   cache miss, and the misses of the names of one walk are started together;
//! - `filter: [u64]`: a blocked Bloom filter of the keys, about a byte a key (a power of two of
//!   words; a key's word from its top bits, three bits in it from its low bits). Most names a
//!   walk probes are in no list; the filter, small enough to stay in cache (1 MiB for a million
//!   keys), says so for about 96% of them, and only the rest are looked for in `keys` (a cache
//!   miss each). It never says "absent" for a key the index holds.
//!
//! That is 13 bytes a record plus a few hundredths for the buckets. The entry's text is not stored: a
//! match is found by hashing a lookup expression built from the observed address, and that
//! expression *is* the canonical entry, so it is what a match reports. Two different texts with
//! the same 64-bit hash would be taken for each other; with a million entries the chance that a
//! given other name collides with one is about 1 in 2^44.
//!
//! Lookup order (the first hit is returned): trusted addresses first (a trusted hit is never
//! blocked); then from the exact host down to the registrable domain (in effect: the walk goes
//! down to two labels, see [`Walk`], and no public suffix can be listed), at each name: its URL entries (path with query, path, then the path's prefixes
//! ending in `/` from the longest), then a domain entry there, or a host or IP entry when the name
//! is the exact host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_64;

use crate::canon::{self, CanonUrl};
use crate::list::{EntryKind, ParsedList};
use crate::suffix;

/// Most lists one set holds (the list index has 24 bits in a record).
pub const MAX_LISTS: usize = 1 << 24;

/// What a list is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Category {
    /// Malware distribution.
    Malware,
    /// Phishing.
    Phishing,
    /// Scams (not phishing).
    Scam,
    /// The administrator's own list.
    Custom,
    /// Any other name (lowercase letters, digits, `-`, `_`).
    Other(String),
}

impl Category {
    /// The category's name.
    pub fn as_str(&self) -> &str {
        match self {
            Category::Malware => "malware",
            Category::Phishing => "phishing",
            Category::Scam => "scam",
            Category::Custom => "custom",
            Category::Other(s) => s,
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "malware" => Category::Malware,
            "phishing" => Category::Phishing,
            "scam" => Category::Scam,
            "custom" => Category::Custom,
            "" => return Err("empty category".to_string()),
            other
                if other.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                }) =>
            {
                Category::Other(other.to_string())
            }
            other => {
                return Err(format!(
                    "category {other:?}: use letters, digits, '-' and '_'"
                ));
            }
        })
    }
}

/// A list as the set knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    /// The list's id (the CLI uses the file name as given).
    pub id: String,
    /// Its category.
    pub category: Category,
    /// Its version (the CLI uses a hash of the file's bytes).
    pub version: String,
}

/// Why a list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// An entry would block a whole public suffix.
    #[error("list {list}: line {line}: {entry:?} is a public suffix; a list may not block it")]
    PublicSuffix {
        /// The list's id.
        list: String,
        /// 1-based line.
        line: usize,
        /// The canonical entry.
        entry: String,
    },
    /// More than [`MAX_LISTS`] lists.
    #[error("more than {MAX_LISTS} lists")]
    TooManyLists,
}

const KIND_DOMAIN: u32 = 0;
const KIND_HOST: u32 = 1;
const KIND_URL: u32 = 2;
const KIND_IP: u32 = 3;
/// Marker: the key's host has URL entries in this list.
const KIND_URL_HOST: u32 = 4;

fn kind_code(kind: EntryKind) -> u32 {
    match kind {
        EntryKind::Domain => KIND_DOMAIN,
        EntryKind::Host => KIND_HOST,
        EntryKind::Url => KIND_URL,
        EntryKind::Ip => KIND_IP,
    }
}

fn kind_of(code: u32) -> Option<EntryKind> {
    match code {
        KIND_DOMAIN => Some(EntryKind::Domain),
        KIND_HOST => Some(EntryKind::Host),
        KIND_URL => Some(EntryKind::Url),
        KIND_IP => Some(EntryKind::Ip),
        _ => None,
    }
}

/// The key of a URL expression (`host/path[?query]`): the hash of its canonical text.
pub fn key_of(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// The key of a host name (a domain, host or IP entry, or a URL entry's host): its labels
/// hashed from the right, each folded into the hash of the labels to its right
/// ([`absorb_label`]), so that one right-to-left pass over an observed host gives the keys of
/// all its parent names ([`Walk`]) instead of hashing each parent from its start.
pub fn name_key(name: &[u8]) -> u64 {
    name.rsplit(|&b| b == b'.').fold(NAME_SEED, absorb_label)
}

/// The state before a name's last label (digits of pi, as the constants below).
const NAME_SEED: u64 = 0x243f_6a88_85a3_08d3;
const MIX_A: u64 = 0x1319_8a2e_0370_7344;
const MIX_B: u64 = 0xa409_3822_299f_31d0;
const MIX_LEN: u64 = 0x082e_fa98_ec4e_6c89;

/// The 128-bit product of `a` and `b`, its halves xored: the mixing step of wyhash, rapidhash
/// and foldhash (a crate's hasher cannot be used here: the keys must stay the same across
/// versions, as a file of them could be memory-mapped, and none hashes a name label by label).
#[allow(clippy::cast_possible_truncation)] // The two halves of the product, on purpose.
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

fn le64(b: &[u8]) -> u64 {
    b.first_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c))
}

fn le32(b: &[u8]) -> u64 {
    b.first_chunk::<4>()
        .map_or(0, |c| u64::from(u32::from_le_bytes(*c)))
}

/// Fold one label into the state `h` of the labels to its right. Up to 16 bytes are read as two
/// words that together cover every byte (wyhash's reads of short inputs: the first and last 8,
/// or 4, bytes, or bytes 0, len/2 and len-1), one 128-bit multiply mixes them with the state,
/// and the label's length keeps overlapping reads apart; a longer label takes one multiply a 16
/// bytes. The state rotated is xored back in, so no label can cancel the names to its right.
fn absorb_label(h: u64, label: &[u8]) -> u64 {
    let len = u64::try_from(label.len()).unwrap_or(u64::MAX);
    let mut state = h;
    let mut rest = label;
    while rest.len() > 16 {
        let (chunk, tail) = rest.split_at(16);
        let high = le64(chunk.get(8..).unwrap_or_default());
        state = fold_mul(le64(chunk) ^ MIX_A ^ state, high ^ MIX_B);
        rest = tail;
    }
    let n = rest.len();
    let (a, b) = if n >= 8 {
        (le64(rest), le64(rest.get(n - 8..).unwrap_or_default()))
    } else if n >= 4 {
        (le32(rest), le32(rest.get(n - 4..).unwrap_or_default()))
    } else {
        let byte = |i: usize| u64::from(rest.get(i).copied().unwrap_or(0));
        let small = if n == 0 {
            0
        } else {
            byte(0) << 16 | byte(n / 2) << 8 | byte(n - 1)
        };
        (small, 0)
    };
    fold_mul(a ^ MIX_A ^ state, b ^ MIX_B ^ len.wrapping_mul(MIX_LEN)) ^ h.rotate_left(23)
}

/// Collects lists, then builds the immutable set.
#[derive(Debug, Default)]
pub struct AddressSetBuilder {
    lists: Vec<ListInfo>,
    records: Vec<(u64, u32)>,
    limits: Limits,
    trusted: Vec<(u64, u32)>,
    trusted_limits: Limits,
    entries: usize,
}

/// How far a lookup needs to walk, from the entries' shapes.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    /// Most labels of a name that holds a domain entry or URL entries: parents with more
    /// labels cannot match and are not probed.
    max_labels: usize,
    /// Most `/`-segments of a URL entry's path prefix ending in `/` (without a query):
    /// deeper prefixes of an observed path are not probed.
    max_prefix_depth: usize,
}

impl AddressSetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a list's entries. Refused whole when an entry is a public suffix.
    pub fn add_list(&mut self, info: ListInfo, parsed: &ParsedList) -> Result<(), CompileError> {
        if self.lists.len() >= MAX_LISTS {
            return Err(CompileError::TooManyLists);
        }
        check_suffixes(&info.id, parsed)?;
        let list = u32::try_from(self.lists.len()).map_err(|_| CompileError::TooManyLists)?;
        push_records(&mut self.records, &mut self.limits, list, parsed);
        self.entries += parsed.entries.len();
        self.lists.push(info);
        Ok(())
    }

    /// Add trusted addresses: never blocked, they beat every list (same canonicalisation and
    /// entry kinds; a trusted domain covers the names below it).
    pub fn add_trusted(&mut self, id: &str, parsed: &ParsedList) -> Result<(), CompileError> {
        check_suffixes(id, parsed)?;
        push_records(&mut self.trusted, &mut self.trusted_limits, 0, parsed);
        Ok(())
    }

    /// Sort and index. Linear in the entries after one sort.
    pub fn build(self) -> AddressSet {
        AddressSet {
            lists: self.lists,
            index: Index::build(self.records, self.limits),
            trusted: Index::build(self.trusted, self.trusted_limits),
            entries: self.entries,
            generation: GENERATIONS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

fn check_suffixes(id: &str, parsed: &ParsedList) -> Result<(), CompileError> {
    for e in &parsed.entries {
        if e.kind != EntryKind::Ip && suffix::is_public_suffix(e.host()) {
            return Err(CompileError::PublicSuffix {
                list: id.to_string(),
                line: e.line,
                entry: e.text.clone(),
            });
        }
    }
    Ok(())
}

fn push_records(out: &mut Vec<(u64, u32)>, limits: &mut Limits, list: u32, parsed: &ParsedList) {
    out.reserve(parsed.entries.len());
    for e in &parsed.entries {
        let key = match e.kind {
            EntryKind::Url => key_of(&e.text),
            EntryKind::Domain | EntryKind::Host | EntryKind::Ip => name_key(e.text.as_bytes()),
        };
        out.push((key, list << 8 | kind_code(e.kind)));
        match e.kind {
            EntryKind::Domain => {
                limits.max_labels = limits.max_labels.max(e.text.split('.').count());
            }
            EntryKind::Url => {
                let host = e.host();
                out.push((name_key(host.as_bytes()), list << 8 | KIND_URL_HOST));
                limits.max_labels = limits.max_labels.max(host.split('.').count());
                let path = e.text.get(host.len()..).unwrap_or_default();
                if path.ends_with('/') {
                    let depth = path.matches('/').count().saturating_sub(1);
                    limits.max_prefix_depth = limits.max_prefix_depth.max(depth);
                }
            }
            EntryKind::Host | EntryKind::Ip => {}
        }
    }
}

/// Sorted keys with their records and a bucket index (see the module doc).
#[derive(Debug, Clone, Default)]
struct Index {
    keys: Box<[u64]>,
    meta: Box<[u32]>,
    buckets: Box<[u32]>,
    /// A blocked Bloom filter of the keys ([`Index::may_hold`]): a word a key, three bits in it.
    filter: Box<[u64]>,
    /// `key >> filter_shift` is the key's filter word (64 when there is one word).
    filter_shift: u32,
    /// `key >> shift` is the bucket (64 when there is one bucket).
    shift: u32,
    /// `64 - shift`: `key << bits` is the key's place inside its bucket.
    bits: u32,
    limits: Limits,
}

impl Index {
    fn build(mut records: Vec<(u64, u32)>, limits: Limits) -> Index {
        records.sort_unstable();
        records.dedup();
        records.shrink_to_fit();
        let n = records.len();
        // About 64 keys a bucket: the table stays small enough to sit in cache (64 KiB for a
        // million keys), and the position inside a bucket is interpolated (keys are uniform).
        let bits = (n / KEYS_PER_BUCKET)
            .max(1)
            .next_power_of_two()
            .trailing_zeros()
            .min(32);
        let nbuckets = 1usize << bits;
        let shift = 64 - bits;
        let mut buckets = vec![0u32; nbuckets + 1];
        let mut keys = Vec::with_capacity(n);
        let mut meta = Vec::with_capacity(n);
        for &(k, m) in &records {
            let b = bucket_of(k, shift);
            if let Some(c) = buckets.get_mut(b + 1) {
                *c += 1;
            }
            keys.push(k);
            meta.push(m);
        }
        for i in 1..buckets.len() {
            let prev = buckets.get(i - 1).copied().unwrap_or(0);
            if let Some(c) = buckets.get_mut(i) {
                *c += prev;
            }
        }
        // About FILTER_BITS_PER_KEY bits a key, in a power of two of words.
        let words = (n * FILTER_BITS_PER_KEY / 64).max(1).next_power_of_two();
        let filter_shift = 64 - words.trailing_zeros();
        let mut filter = vec![0u64; words];
        for &k in &keys {
            if let Some(w) = filter.get_mut(filter_word(k, filter_shift)) {
                *w |= filter_bits(k);
            }
        }
        Index {
            keys: keys.into_boxed_slice(),
            meta: meta.into_boxed_slice(),
            buckets: buckets.into_boxed_slice(),
            filter: filter.into_boxed_slice(),
            filter_shift,
            shift,
            bits,
            limits,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.keys.len() * 8 + self.meta.len() * 4 + self.buckets.len() * 4 + self.filter.len() * 8
    }

    /// Whether `key` may be in the index: false means it is not (one load from the filter,
    /// small enough to stay in cache, instead of a cache miss into `keys` for most names a
    /// lookup probes, which are in no list).
    #[inline]
    fn may_hold(&self, key: u64) -> bool {
        let bits = filter_bits(key);
        self.filter
            .get(filter_word(key, self.filter_shift))
            .is_none_or(|&w| w & bits == bits)
    }

    /// The records stored under `key`.
    fn records(&self, key: u64) -> &[u32] {
        self.records_in(key, self.span(key))
    }

    /// Where `key`'s bucket lies in `keys` (one load from `buckets`).
    fn span(&self, key: u64) -> (usize, usize) {
        let b = bucket_of(key, self.shift);
        match (self.buckets.get(b), self.buckets.get(b + 1)) {
            (Some(&lo), Some(&hi)) => (lo as usize, hi as usize),
            _ => (0, 0),
        }
    }

    /// Where `key` should be inside its bucket's span, interpolated from its low bits.
    fn estimate(&self, key: u64, (lo, hi): (usize, usize)) -> usize {
        let frac = key.checked_shl(self.bits).unwrap_or(0) >> 32;
        let width = u64::try_from(hi - lo).unwrap_or(0);
        lo + usize::try_from((frac * width) >> 32).unwrap_or(0)
    }

    /// The records under `key` within its bucket's span, searched from the estimate outwards.
    fn records_in(&self, key: u64, span: (usize, usize)) -> &[u32] {
        let (lo, hi) = span;
        let mut i = self.estimate(key, span);
        while i > lo && self.keys.get(i - 1).is_some_and(|&k| k >= key) {
            i -= 1;
        }
        while i < hi && self.keys.get(i).is_some_and(|&k| k < key) {
            i += 1;
        }
        let len = self
            .keys
            .get(i..hi)
            .map_or(0, |rest| rest.iter().take_while(|&&k| k == key).count());
        self.meta.get(i..i + len).unwrap_or(&[])
    }

    /// Read the key at `key`'s estimated place: the load starts the cache miss early, so the
    /// misses of several names overlap (see [`find`]).
    fn touch(&self, key: u64, span: (usize, usize)) -> u64 {
        self.keys
            .get(self.estimate(key, span))
            .copied()
            .unwrap_or(0)
    }
}

/// Keys a bucket of the index holds on average.
const KEYS_PER_BUCKET: usize = 64;

/// Bits of the keys' filter a key, about: 8 (a byte an entry) with three bits set a key in one
/// 64-bit word says "absent" for about 96% of the keys that are not in the index.
const FILTER_BITS_PER_KEY: usize = 8;

/// The filter word of `key`: its top bits.
fn filter_word(key: u64, shift: u32) -> usize {
    usize::try_from(key.checked_shr(shift).unwrap_or(0)).unwrap_or(0)
}

/// The three bits of `key` in its filter word: from its low 18 bits (the word comes from the
/// top ones, the bucket's interpolation from those below the bucket's).
fn filter_bits(key: u64) -> u64 {
    1u64 << (key & 63) | 1u64 << ((key >> 6) & 63) | 1u64 << ((key >> 12) & 63)
}

fn bucket_of(key: u64, shift: u32) -> usize {
    usize::try_from(key.checked_shr(shift).unwrap_or(0)).unwrap_or(0)
}

/// A hit in the index: the record's meta and the expression that matched.
#[derive(Debug)]
struct Hit {
    meta: u32,
    entry: String,
}

/// A list entry that matched an observed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    /// The list.
    pub list: &'a ListInfo,
    /// The entry's kind.
    pub kind: EntryKind,
    /// The canonical entry.
    pub entry: String,
}

/// The answer for an observed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// No list names it.
    NoMatch,
    /// A trusted entry covers it (never blocked, whatever the lists say).
    Trusted {
        /// The trusted entry.
        entry: String,
    },
    /// A list names it.
    Listed(Match<'a>),
}

impl Verdict<'_> {
    /// Whether a list names it (and no trusted entry covers it).
    pub fn is_listed(&self) -> bool {
        matches!(self, Verdict::Listed(_))
    }
}

/// Compiled lists and trusted addresses, immutable; share it as `Arc<AddressSet>`.
#[derive(Debug, Clone, Default)]
pub struct AddressSet {
    lists: Vec<ListInfo>,
    index: Index,
    trusted: Index,
    entries: usize,
    /// Which build this is ([`AddressSet::generation`]).
    generation: u64,
}

/// Generations handed out by [`AddressSetBuilder::build`] (0 is the empty default set's).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl AddressSet {
    /// Build a set from lists (no trusted addresses), for tests and tools.
    pub fn from_lists<'p>(
        lists: impl IntoIterator<Item = (ListInfo, &'p ParsedList)>,
    ) -> Result<Arc<AddressSet>, CompileError> {
        let mut b = AddressSetBuilder::new();
        for (info, parsed) in lists {
            b.add_list(info, parsed)?;
        }
        Ok(Arc::new(b.build()))
    }

    /// The lists, in the order they were added.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// Entries added (before duplicates were merged).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Records in the index (entries plus URL host markers, duplicates merged).
    pub fn records(&self) -> usize {
        self.index.keys.len() + self.trusted.keys.len()
    }

    /// Bytes the compiled arrays take on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.index.heap_bytes() + self.trusted.heap_bytes()
    }

    /// Which build of lists this is: every [`AddressSetBuilder::build`] gives a new number
    /// (a clone keeps it, the empty default set has 0), so a cache of verdicts
    /// ([`crate::LookupCache`]) knows when the set it answered from was replaced.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Look up a URL as a browser would request it (`http://host/path?query`, or `host/path`).
    pub fn lookup_url(&self, url: &[u8]) -> Verdict<'_> {
        self.verdict(self.find_url_text(url))
    }

    /// Look up a host name alone: a TLS or QUIC server name, a DNS query name, a CONNECT
    /// target's host. URL entries with a path do not apply (the path is not seen).
    pub fn lookup_host(&self, host: &[u8]) -> Verdict<'_> {
        self.verdict(self.find_host(host))
    }

    /// A TLS ClientHello's or QUIC Initial's server name.
    pub fn lookup_server_name(&self, name: &[u8]) -> Verdict<'_> {
        self.lookup_host(name)
    }

    /// A DNS query name (a final `.` is ignored).
    pub fn lookup_dns_name(&self, qname: &[u8]) -> Verdict<'_> {
        self.lookup_host(qname)
    }

    /// An HTTP/1 request: its method, request target and `Host` header. CONNECT's
    /// authority-form target is looked up as a host; an absolute-form target
    /// (`http://host/path`) is the URL, whatever `Host` says (RFC 9112, 3.2.2); an origin-form
    /// target (`/path`) takes its host from `Host`; `*` (OPTIONS) looks up the host alone.
    pub fn lookup_http_request(
        &self,
        method: &[u8],
        target: &[u8],
        host_header: Option<&[u8]>,
    ) -> Verdict<'_> {
        self.verdict(self.find_http_request(method, target, host_header))
    }

    /// Look up a canonical address.
    pub fn lookup_canon(&self, url: &CanonUrl, host_only: bool) -> Verdict<'_> {
        let path = (!host_only).then_some(Path::Canon(url.path.as_str(), url.query.as_deref()));
        self.verdict(self.find_parts(url.host.as_bytes(), path.as_ref()))
    }

    pub(crate) fn find_url_text(&self, url: &[u8]) -> Found {
        let url = canon::canonicalize(url);
        let path = Path::Canon(&url.path, url.query.as_deref());
        self.find_parts(url.host.as_bytes(), Some(&path))
    }

    /// A host: a plain name is canonicalised into a stack buffer (no allocation), anything
    /// else takes the full path.
    pub(crate) fn find_host(&self, raw: &[u8]) -> Found {
        with_canonical_host(raw, |host| self.find_parts(host, None))
    }

    pub(crate) fn find_http_request(
        &self,
        method: &[u8],
        target: &[u8],
        host_header: Option<&[u8]>,
    ) -> Found {
        if method.eq_ignore_ascii_case(b"CONNECT") {
            return self.find_host(canon::host_of_authority(target));
        }
        if !target.starts_with(b"/") && target != b"*" {
            return self.find_url_text(target);
        }
        let Some(host) = host_header else {
            return Found::NoMatch;
        };
        let host = canon::host_of_authority(host.trim_ascii());
        if target == b"*" {
            return self.find_host(host);
        }
        // The target is canonicalised only if a name of the walk has URL entries (most hosts
        // have none, and a long target costs tens of thousands of instructions).
        let path = Path::Raw(target, std::cell::OnceCell::new());
        with_canonical_host(host, |host| self.find_parts(host, Some(&path)))
    }

    /// Trusted addresses first, then the lists: `path` is the canonical path and query, `None`
    /// for a host alone.
    fn find_parts(&self, host: &[u8], path: Option<&Path<'_>>) -> Found {
        if host.is_empty() {
            return Found::NoMatch;
        }
        match find_both(&self.trusted, &self.index, host, path) {
            Some((true, hit)) => Found::Trusted(hit.entry),
            Some((false, hit)) => Found::Listed(hit.meta, hit.entry),
            None => Found::NoMatch,
        }
    }

    /// What a lookup found, as the caller sees it.
    pub(crate) fn verdict(&self, found: Found) -> Verdict<'_> {
        match found {
            Found::NoMatch => Verdict::NoMatch,
            Found::Trusted(entry) => Verdict::Trusted { entry },
            Found::Listed(meta, entry) => {
                let list = usize::try_from(meta >> 8).unwrap_or(usize::MAX);
                match (self.lists.get(list), kind_of(meta & 0xff)) {
                    (Some(list), Some(kind)) => Verdict::Listed(Match { list, kind, entry }),
                    _ => Verdict::NoMatch,
                }
            }
        }
    }
}

/// `f` of the canonical form of the host `raw`: a plain name as it is, or lowercased on the
/// stack when it has capitals (no allocation either way), anything else through
/// [`canon::canonical_host`].
fn with_canonical_host<R>(raw: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    match canon::plain_name_kind(raw) {
        Some(canon::Plain::Canonical) => f(raw),
        Some(canon::Plain::Capitals) => {
            let mut buf = [0u8; canon::PLAIN_MAX];
            match buf.get_mut(..raw.len()) {
                Some(name) => {
                    name.copy_from_slice(raw);
                    name.make_ascii_lowercase();
                    f(name)
                }
                None => f(canon::canonical_host(raw).as_bytes()),
            }
        }
        None => f(canon::canonical_host(raw).as_bytes()),
    }
}

/// What a lookup found, before it is tied to the set's lists (what a cache keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    NoMatch,
    /// The trusted entry.
    Trusted(String),
    /// The record's meta and the entry.
    Listed(u32, String),
}

/// An observed path and query: canonical already, or an origin-form request target
/// canonicalised at its first use.
enum Path<'a> {
    /// The canonical path and query.
    Canon(&'a str, Option<&'a str>),
    /// A request target (`/path?query`) and its canonical form once needed.
    Raw(&'a [u8], std::cell::OnceCell<CanonUrl>),
}

impl Path<'_> {
    /// The canonical path and query.
    fn get(&self) -> (&str, Option<&str>) {
        match self {
            Path::Canon(path, query) => (path, *query),
            Path::Raw(raw, canon) => {
                let url = canon.get_or_init(|| canon::canonicalize(raw));
                (&url.path, url.query.as_deref())
            }
        }
    }
}

/// The names of a host that a lookup probes, with their keys, from one right-to-left pass over
/// the host (see [`name_key`]): the host itself, and its parents of at least two labels and at
/// most `max_labels`. A name of one label is never probed: every single label is a public
/// suffix (the Public Suffix List's implicit `*` rule), and a list naming a public suffix is
/// refused when compiled, so no key of the set can be one. The Public Suffix List is therefore
/// not consulted at lookup: a parent that is a public suffix (`co.uk`) is probed and cannot
/// match.
struct Walk {
    /// The names' keys, least specific first.
    keys: [u64; WALK_MAX],
    /// Where each name starts in the host (a name has at most 253 bytes).
    starts: [u8; WALK_MAX],
    /// Each name's labels.
    depths: [u8; WALK_MAX],
    n: usize,
    /// The host's labels.
    labels: usize,
}

/// Names a [`Walk`] holds; a set whose deepest entry has more labels (or a longer host than
/// [`canon::PLAIN_MAX`]) is walked by [`Walk::general`], which hashes each parent on its own.
const WALK_MAX: usize = 16;

/// A name of a walk: where it starts in the host, its labels, its key.
type WalkName = (usize, usize, u64);

impl Walk {
    /// An empty walk, filled by [`Walk::fill`].
    fn new() -> Self {
        Walk {
            keys: [0; WALK_MAX],
            starts: [0; WALK_MAX],
            depths: [0; WALK_MAX],
            n: 0,
            labels: 0,
        }
    }

    /// The walk of `host` for names of at most `max_labels` labels (and the host itself), into
    /// `self`. False when it needs more than [`WALK_MAX`] names or the host is too long.
    fn fill(&mut self, host: &[u8], max_labels: usize) -> bool {
        self.n = 0;
        self.labels = 0;
        if host.len() > canon::PLAIN_MAX {
            return false;
        }
        let mut h = NAME_SEED;
        let mut end = host.len();
        // Labels from the right: each label's hash is folded into the names right of it, so
        // every parent's key comes out of this one pass.
        loop {
            let label = host.get(..end).unwrap_or_default();
            let start = label
                .iter()
                .rposition(|&c| c == b'.')
                .map_or(0, |dot| dot + 1);
            h = absorb_label(h, label.get(start..).unwrap_or_default());
            self.labels += 1;
            let whole = start == 0;
            if self.labels >= 2 && (self.labels <= max_labels || whole) {
                let (Some(key), Some(at), Some(depth)) = (
                    self.keys.get_mut(self.n),
                    self.starts.get_mut(self.n),
                    self.depths.get_mut(self.n),
                ) else {
                    return false;
                };
                *key = h;
                *at = u8::try_from(start).unwrap_or(u8::MAX);
                *depth = u8::try_from(self.labels).unwrap_or(u8::MAX);
                self.n += 1;
            }
            if whole {
                return true;
            }
            end = start - 1;
        }
    }

    /// The names, least specific first.
    fn names(&self) -> impl DoubleEndedIterator<Item = WalkName> + '_ {
        self.keys
            .iter()
            .zip(self.starts.iter().zip(&self.depths))
            .take(self.n)
            .map(|(&key, (&at, &depth))| (usize::from(at), usize::from(depth), key))
    }

    /// The same names, each parent hashed on its own (deep sets and long hosts; the reference
    /// the one-pass walk is held to).
    fn general(host: &[u8], max_labels: usize) -> Vec<WalkName> {
        let labels = host.iter().filter(|&&b| b == b'.').count() + 1;
        let mut names = Vec::new();
        let mut start = 0;
        for k in (1..=labels).rev() {
            let name = host.get(start..).unwrap_or_default();
            if k >= 2 && (k <= max_labels || k == labels) {
                names.push((start, k, name_key(name)));
            }
            start += name
                .iter()
                .position(|&b| b == b'.')
                .map_or(name.len(), |i| i + 1);
        }
        names.reverse();
        names
    }
}

/// Whether a canonical host is an IP literal (`[IPv6]`, or dotted-decimal IPv4).
fn host_is_ip(host: &[u8]) -> bool {
    host.first() == Some(&b'[')
        || (host.last().is_some_and(u8::is_ascii_digit)
            && std::str::from_utf8(host).is_ok_and(canon::host_is_ip))
}

/// The first hit for the canonical `host` (with `path`, if any) in the trusted addresses, then
/// in the lists: `(true, hit)` for a trusted one (see the module doc for the order).
fn find_both(
    trusted: &Index,
    lists: &Index,
    host: &[u8],
    path: Option<&Path<'_>>,
) -> Option<(bool, Hit)> {
    if trusted.keys.is_empty() && lists.keys.is_empty() {
        return None;
    }
    if host_is_ip(host) {
        let key = name_key(host);
        for (is_trusted, index) in [(true, trusted), (false, lists)] {
            if let Some(hit) = find_at(index, index.records(key), host, 0, path) {
                return Some((is_trusted, hit));
            }
        }
        return None;
    }
    let max_labels = trusted.limits.max_labels.max(lists.limits.max_labels);
    let mut walk = Walk::new();
    if walk.fill(host, max_labels) {
        for (is_trusted, index) in [(true, trusted), (false, lists)] {
            if let Some(hit) = find_in(index, host, walk.labels, walk.names(), path) {
                return Some((is_trusted, hit));
            }
        }
        return None;
    }
    let names = Walk::general(host, max_labels);
    let labels = host.iter().filter(|&&b| b == b'.').count() + 1;
    for (is_trusted, index) in [(true, trusted), (false, lists)] {
        if let Some(hit) = find_in(index, host, labels, names.iter().copied(), path) {
            return Some((is_trusted, hit));
        }
    }
    None
}

/// The first hit among the walk's `names` (least specific first) in `index`, the most specific
/// name first. The first [`BATCH`] names' keys are located and their cache lines read before
/// any is examined, so their cache misses overlap instead of following one another.
fn find_in(
    index: &Index,
    host: &[u8],
    labels: usize,
    names: impl DoubleEndedIterator<Item = WalkName>,
    path: Option<&Path<'_>>,
) -> Option<Hit> {
    if index.keys.is_empty() {
        return None;
    }
    let max = index.limits.max_labels;
    let mut batch = [(0usize, 0usize, 0u64, (0usize, 0usize)); BATCH];
    let mut n = 0;
    let mut touched = 0u64;
    // Names in no list are most of a walk: the filter drops nearly all of them unread.
    let mut walk = names
        .rev()
        .filter(|&(_, k, key)| (k <= max || k == labels) && index.may_hold(key));
    for slot in batch.iter_mut() {
        let Some((start, k, key)) = walk.next() else {
            break;
        };
        let span = index.span(key);
        touched ^= index.touch(key, span);
        *slot = (start, k, key, span);
        n += 1;
    }
    std::hint::black_box(touched);
    let at = |start: usize, k: usize, records: &[u32]| -> Option<Hit> {
        let name = host.get(start..).unwrap_or_default();
        find_at(index, records, name, labels - k, path)
    };
    for &(start, k, key, span) in batch.iter().take(n) {
        if let Some(hit) = at(start, k, index.records_in(key, span)) {
            return Some(hit);
        }
    }
    for (start, k, key) in walk {
        if let Some(hit) = at(start, k, index.records(key)) {
            return Some(hit);
        }
    }
    None
}

/// Names of a walk whose buckets are read together (see [`find_in`]).
const BATCH: usize = 6;

/// Hits at one name of the walk: its URL entries first, then the name's own entry.
fn find_at(
    index: &Index,
    records: &[u32],
    name: &[u8],
    level: usize,
    path: Option<&Path<'_>>,
) -> Option<Hit> {
    if records.is_empty() {
        return None;
    }
    let has_urls = records.iter().any(|m| m & 0xff == KIND_URL_HOST);
    if has_urls
        && let Some(path) = path
        && let (path, query) = path.get()
        && let Some(hit) = find_url(index, name, path, query)
    {
        return Some(hit);
    }
    let named = records.iter().find(|&&m| match m & 0xff {
        KIND_DOMAIN => true,
        KIND_HOST | KIND_IP => level == 0,
        _ => false,
    })?;
    Some(Hit {
        meta: *named,
        entry: String::from_utf8_lossy(name).into_owned(),
    })
}

/// URL expressions under `name`: path with query, path, then prefixes ending in `/`.
fn find_url(index: &Index, name: &[u8], path: &str, query: Option<&str>) -> Option<Hit> {
    let mut expr: Vec<u8> = Vec::with_capacity(name.len() + path.len() + 16);
    let mut probe = |suffix: &str, query: Option<&str>| -> Option<Hit> {
        expr.clear();
        expr.extend_from_slice(name);
        expr.extend_from_slice(suffix.as_bytes());
        if let Some(q) = query {
            expr.push(b'?');
            expr.extend_from_slice(q.as_bytes());
        }
        let key = xxh3_64(&expr);
        if !index.may_hold(key) {
            return None;
        }
        let m = *index.records(key).iter().find(|&&m| m & 0xff == KIND_URL)?;
        Some(Hit {
            meta: m,
            entry: String::from_utf8_lossy(&expr).into_owned(),
        })
    };
    if let Some(q) = query
        && let Some(hit) = probe(path, Some(q))
    {
        return Some(hit);
    }
    if let Some(hit) = probe(path, None) {
        return Some(hit);
    }
    // Prefixes ending in `/`, longest first, no deeper than any entry goes.
    let ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    for (depth, &end) in ends.iter().enumerate().rev() {
        // Depth 0 is `/`: a whole-site URL entry was read as a domain entry.
        if depth == 0 || depth > index.limits.max_prefix_depth || end + 1 == path.len() {
            continue;
        }
        if let Some(hit) = probe(path.get(..=end).unwrap_or("/"), None) {
            return Some(hit);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{Format, parse_list};

    fn info(id: &str, category: Category) -> ListInfo {
        ListInfo {
            id: id.to_string(),
            category,
            version: "1".to_string(),
        }
    }

    fn set(lists: &[(&str, Category, &str)], trusted: &str) -> AddressSet {
        let mut b = AddressSetBuilder::new();
        for (id, cat, text) in lists {
            let p = parse_list(text.as_bytes(), Format::Auto);
            assert!(p.errors.is_empty(), "{:?}", p.errors);
            b.add_list(info(id, cat.clone()), &p)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let t = parse_list(trusted.as_bytes(), Format::Auto);
        b.add_trusted("trusted", &t)
            .unwrap_or_else(|e| panic!("{e}"));
        b.build()
    }

    fn hit(v: &Verdict<'_>) -> Option<(String, EntryKind, String)> {
        match v {
            Verdict::Listed(m) => Some((m.list.id.clone(), m.kind, m.entry.clone())),
            _ => None,
        }
    }

    fn sample() -> AddressSet {
        set(
            &[
                (
                    "mal",
                    Category::Malware,
                    "evil.example\n0.0.0.0 exact.example\n1.2.3.4\n[2001:db8::1]\n\
                     github.com/bad/repo/raw/x.exe\npaste.example/d/\nabco.example/?u=script\n\
                     xn--bcher-kva.de\nduckdns.org\n",
                ),
                (
                    "phish",
                    Category::Phishing,
                    "evil.example\nlogin.bank.example\n",
                ),
            ],
            "good.evil.example\n",
        )
    }

    #[test]
    fn domains_cover_the_names_below_them_and_first_list_wins() {
        let s = sample();
        let d = Some((
            "mal".to_string(),
            EntryKind::Domain,
            "evil.example".to_string(),
        ));
        assert_eq!(hit(&s.lookup_host(b"evil.example")), d);
        assert_eq!(hit(&s.lookup_host(b"A.B.Evil.Example.")), d);
        assert_eq!(hit(&s.lookup_url(b"http://x.evil.example:81/any?q#f")), d);
        assert_eq!(s.lookup_host(b"notevil.example"), Verdict::NoMatch);
        assert_eq!(s.lookup_host(b"example"), Verdict::NoMatch);
        // A private-section suffix listed as a whole platform covers its sites.
        assert!(s.lookup_host(b"someone.duckdns.org").is_listed());
        // IDN: the Unicode name meets its punycode entry.
        assert!(s.lookup_host("www.BÜCHER.de".as_bytes()).is_listed());
        assert!(s.lookup_url(b"http://%62%C3%BCcher.de/").is_listed());
    }

    #[test]
    fn hosts_lines_and_ips_are_exact() {
        let s = sample();
        assert!(s.lookup_host(b"exact.example").is_listed());
        assert_eq!(s.lookup_host(b"sub.exact.example"), Verdict::NoMatch);
        for ip in [
            "http://1.2.3.4/x",
            "http://0x01020304/",
            "http://16909060/",
            "http://01.02.03.04",
        ] {
            assert_eq!(
                hit(&s.lookup_url(ip.as_bytes())),
                Some(("mal".into(), EntryKind::Ip, "1.2.3.4".into())),
                "{ip}"
            );
        }
        assert!(s.lookup_url(b"http://[2001:db8:0::1]:8080/").is_listed());
        assert_eq!(s.lookup_url(b"http://1.2.3.5/"), Verdict::NoMatch);
    }

    #[test]
    fn url_entries_match_their_path_not_the_host() {
        let s = sample();
        let url = Some((
            "mal".to_string(),
            EntryKind::Url,
            "github.com/bad/repo/raw/x.exe".to_string(),
        ));
        assert_eq!(
            hit(&s.lookup_url(b"https://github.com/bad/repo/raw/x.exe")),
            url
        );
        assert_eq!(
            hit(&s.lookup_url(b"https://github.com/bad/repo/raw/x.exe?dl=1")),
            url
        );
        assert_eq!(
            hit(&s.lookup_url(b"http://www.github.com/bad//repo/./raw/%78.exe")),
            Some((
                "mal".into(),
                EntryKind::Url,
                "github.com/bad/repo/raw/x.exe".into()
            ))
        );
        assert_eq!(s.lookup_url(b"https://github.com/"), Verdict::NoMatch);
        assert_eq!(
            s.lookup_url(b"https://github.com/bad/repo/raw/x.exe2"),
            Verdict::NoMatch
        );
        assert_eq!(s.lookup_host(b"github.com"), Verdict::NoMatch);
        // A prefix ending in `/` covers what is below it.
        assert_eq!(
            hit(&s.lookup_url(b"http://paste.example/d/abc/def?x")),
            Some(("mal".into(), EntryKind::Url, "paste.example/d/".into()))
        );
        assert_eq!(s.lookup_url(b"http://paste.example/dd"), Verdict::NoMatch);
        // An entry with a query matches that query only.
        assert!(s.lookup_url(b"http://abco.example/?u=script").is_listed());
        assert_eq!(
            s.lookup_url(b"http://abco.example/?u=other"),
            Verdict::NoMatch
        );
        assert_eq!(s.lookup_url(b"http://abco.example/"), Verdict::NoMatch);
    }

    #[test]
    fn http_request_forms() {
        let s = sample();
        let get = |t: &[u8], h: Option<&[u8]>| s.lookup_http_request(b"GET", t, h);
        assert!(get(b"/bad/repo/raw/x.exe", Some(b"GitHub.com:443")).is_listed());
        assert!(
            get(
                b"http://github.com/bad/repo/raw/x.exe",
                Some(b"other.example")
            )
            .is_listed()
        );
        assert!(!get(b"/bad/repo/raw/x.exe", Some(b"other.example")).is_listed());
        // The target is canonicalised when a parent of the host has URL entries.
        assert!(get(b"/bad//repo/./raw/%78.exe?dl=1", Some(b"www.GitHub.com")).is_listed());
        assert!(!get(b"/bad//repo/./raw/%78.exe2", Some(b"www.github.com")).is_listed());
        assert!(!get(b"/bad/repo/raw/x.exe", None).is_listed());
        assert!(
            s.lookup_http_request(b"CONNECT", b"x.evil.example:443", None)
                .is_listed()
        );
        assert!(
            !s.lookup_http_request(b"CONNECT", b"github.com:443", None)
                .is_listed()
        );
        assert!(
            s.lookup_http_request(b"OPTIONS", b"*", Some(b"evil.example"))
                .is_listed()
        );
    }

    #[test]
    fn trusted_addresses_beat_every_list() {
        let s = sample();
        assert_eq!(
            s.lookup_host(b"a.good.evil.example"),
            Verdict::Trusted {
                entry: "good.evil.example".into()
            }
        );
        assert!(s.lookup_host(b"bad.evil.example").is_listed());
    }

    #[test]
    fn a_public_suffix_entry_refuses_the_list() {
        for bad in [
            "com",
            "co.uk",
            "||uk^",
            "0.0.0.0 github.io.co.uk\nco.uk/path/x",
        ] {
            let p = parse_list(bad.as_bytes(), Format::Auto);
            let mut b = AddressSetBuilder::new();
            let r = b.add_list(info("bad", Category::Custom), &p);
            assert!(
                matches!(r, Err(CompileError::PublicSuffix { .. })),
                "{bad}: {r:?}"
            );
        }
        let ok = parse_list(b"github.io\nexample.co.uk\n", Format::Auto);
        assert!(AddressSet::from_lists([(info("ok", Category::Custom), &ok)]).is_ok());
    }

    proptest::proptest! {
        /// The bucket index with its interpolated search finds exactly the keys it holds, with
        /// all their records (duplicates included), whatever their distribution.
        #[test]
        fn index_finds_exactly_its_keys(
            keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..600),
            clustered in proptest::collection::vec(0u64..64, 0..200),
            probes in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..50),
        ) {
            let mut records: Vec<(u64, u32)> = keys.iter().map(|&k| (k, 1)).collect();
            // Keys that share their top bits, and the same key in two lists.
            records.extend(clustered.iter().map(|&k| (0xdead_0000_0000_0000 | k, 2)));
            records.extend(keys.iter().take(20).map(|&k| (k, 3)));
            let index = Index::build(records.clone(), Limits::default());
            let mut want: std::collections::BTreeMap<u64, Vec<u32>> = Default::default();
            for (k, m) in records {
                want.entry(k).or_default().push(m);
            }
            for v in want.values_mut() {
                v.sort_unstable();
                v.dedup();
            }
            for (k, metas) in &want {
                proptest::prop_assert_eq!(index.records(*k), metas.as_slice());
                proptest::prop_assert!(index.may_hold(*k), "the filter lost a key");
            }
            for p in probes {
                let expected = want.get(&p).map_or(&[][..], Vec::as_slice);
                proptest::prop_assert_eq!(index.records(p), expected);
            }
        }
    }

    proptest::proptest! {
        /// The one-pass walk gives the names and keys that hashing each parent on its own
        /// gives (`name_key`, the key entries are stored under), whatever the host and depth.
        #[test]
        fn the_walk_hashes_every_parent_as_name_key_does(
            labels in proptest::collection::vec("[a-z0-9_-]{0,12}", 1..30),
            max_labels in 0usize..32,
        ) {
            let host = labels.join(".");
            let general = Walk::general(host.as_bytes(), max_labels);
            let mut walk = Walk::new();
            if walk.fill(host.as_bytes(), max_labels) {
                proptest::prop_assert_eq!(walk.names().collect::<Vec<_>>(), general.clone());
                proptest::prop_assert_eq!(walk.labels, labels.len());
            } else {
                proptest::prop_assert!(general.len() > WALK_MAX || host.len() > canon::PLAIN_MAX);
            }
            for &(start, k, key) in &general {
                let name = host.get(start..).unwrap_or_default();
                proptest::prop_assert_eq!(key, name_key(name.as_bytes()));
                proptest::prop_assert_eq!(k, name.split('.').count());
            }
        }
    }

    #[test]
    fn the_walk_stops_at_two_labels_and_at_the_deepest_entry() {
        let host = b"a.b.example.co.uk";
        let mut walk = Walk::new();
        assert!(walk.fill(host, 3));
        let names: Vec<(&[u8], usize)> = walk
            .names()
            .map(|(start, k, _)| (host.get(start..).unwrap_or_default(), k))
            .collect();
        let want: [(&[u8], usize); 3] = [
            (b"co.uk", 2),
            (b"example.co.uk", 3),
            (b"a.b.example.co.uk", 5),
        ];
        assert_eq!(names, want);
    }

    #[test]
    fn deep_entries_are_found_past_the_fast_walk() {
        // A domain entry deeper than the fast walk holds: the walk hashes each parent.
        let deep: Vec<String> = (0..WALK_MAX + 6).map(|i| format!("l{i}")).collect();
        let entry = format!("{}.example", deep.join("."));
        let text = format!("{entry}\nshallow.example\n");
        let s = set(&[("deep", Category::Custom, text.as_str())], "");
        assert_eq!(
            hit(&s.lookup_host(format!("a.b.{entry}").as_bytes())),
            Some(("deep".into(), EntryKind::Domain, entry.clone()))
        );
        assert!(s.lookup_host(b"x.shallow.example").is_listed());
        let cut = entry.get(3..).unwrap_or_default();
        assert_eq!(
            s.lookup_host(format!("a.{cut}").as_bytes()),
            Verdict::NoMatch
        );
    }

    #[test]
    fn the_filter_holds_every_key_and_drops_most_others() {
        let mut rng = crate::synth::Rng::new(7);
        let names: Vec<String> = (0..20_000).map(|_| rng.entry()).collect();
        let keys: Vec<(u64, u32)> = names.iter().map(|n| (name_key(n.as_bytes()), 1)).collect();
        let index = Index::build(keys.clone(), Limits::default());
        assert!(keys.iter().all(|&(k, _)| index.may_hold(k)));
        // Names in no list: about 4% pass (three bits of a word, a byte a key).
        let others = (0..20_000)
            .map(|_| name_key(rng.entry().as_bytes()))
            .filter(|&k| index.may_hold(k))
            .count();
        assert!(
            others < 1_600,
            "{others} of 20,000 absent names passed the filter"
        );
        assert_eq!(
            index.filter.len() * 8,
            32_768,
            "a byte a key, in a power of two"
        );
    }

    #[test]
    fn empty_set_and_empty_host() {
        let s = AddressSetBuilder::new().build();
        assert_eq!(s.lookup_host(b"evil.example"), Verdict::NoMatch);
        assert_eq!(sample().lookup_host(b""), Verdict::NoMatch);
        assert_eq!(sample().lookup_url(b"http:///path"), Verdict::NoMatch);
    }
}
