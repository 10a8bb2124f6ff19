//! The fields of a ClientHello and a ServerHello that fingerprints read, and the fingerprints
//! themselves: JA3 and JA3S (Salesforce; the string and its MD5, as Suricata's `ja3.string`,
//! `ja3.hash`, `ja3s.string`, `ja3s.hash`) and JA4 (FoxIO; Suricata's `ja4.hash`, the full
//! `t13d1516h2_8daaf6152771_e5627efa2ab1` form). Pure functions over the hello's bytes:
//! extensions are walked by hand (type, length, data), so an extension tls-parser does not know
//! still counts, and a malformed one ends the walk with what came before it.

use md5::{Digest, Md5};
use sha2::Sha256;

/// Extension numbers the fingerprints read (IANA TLS ExtensionType values).
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// At most this many entries of each list are kept (ciphers, extensions, groups, ...): a hello
/// is at most 64 KiB (the handshake cap), so 32,768 two-byte values; real ones have < 100.
pub const MAX_LIST: usize = 512;

/// ALPN names kept per hello for `tls.alpn`. Real clients offer 1-3; the extension can hold
/// 32,767 one-byte names, so the list is cut here (the first names are kept).
pub const MAX_ALPNS: usize = 16;

/// RFC 8701 GREASE values (`0x?a?a` with both bytes equal) are left out of every fingerprint.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// What fingerprints read from one hello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloFields {
    /// The hello's legacy version field.
    pub version: u16,
    /// Cipher suites offered (client) or chosen (server), GREASE included.
    pub ciphers: Vec<u16>,
    /// Extension types in order, GREASE included.
    pub extensions: Vec<u16>,
    /// supported_groups (elliptic curves).
    pub groups: Vec<u16>,
    /// ec_point_formats.
    pub point_formats: Vec<u8>,
    /// signature_algorithms, in order.
    pub sig_algs: Vec<u16>,
    /// supported_versions (a client's list, or the server's one choice).
    pub versions: Vec<u16>,
    /// The first ALPN protocol name.
    pub alpn: Option<Vec<u8>>,
    /// Every ALPN protocol name in order (`tls.alpn`), at most [`MAX_ALPNS`].
    pub alpns: Vec<Vec<u8>>,
    /// A server_name extension is present.
    pub has_sni: bool,
}

fn u16s(data: &[u8], out: &mut Vec<u16>) {
    for pair in data.chunks_exact(2) {
        if out.len() >= MAX_LIST {
            break;
        }
        if let [a, b] = pair {
            out.push(u16::from_be_bytes([*a, *b]));
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// A length-prefixed vector at the start of `d` (prefix of `n` bytes): its contents, clipped
/// to what is there.
fn vec_body(d: &[u8], n: usize) -> &[u8] {
    let len = match n {
        1 => d.first().map(|&l| usize::from(l)),
        _ => be16(d, 0).map(usize::from),
    };
    let body = d.get(n..).unwrap_or_default();
    body.get(..len.unwrap_or(0).min(body.len()))
        .unwrap_or_default()
}

impl HelloFields {
    /// Read the extension block of a hello (`ext` without its 2-byte length). `client`: the
    /// supported_versions extension is a list (ClientHello) rather than one value.
    pub fn read_extensions(&mut self, mut ext: &[u8], client: bool) {
        while let (Some(ty), Some(len)) = (be16(ext, 0), be16(ext, 2)) {
            let Some(data) = ext.get(4..4 + usize::from(len)) else {
                break;
            };
            if self.extensions.len() < MAX_LIST {
                self.extensions.push(ty);
            }
            match ty {
                EXT_SERVER_NAME => self.has_sni = true,
                EXT_SUPPORTED_GROUPS => u16s(vec_body(data, 2), &mut self.groups),
                EXT_EC_POINT_FORMATS => {
                    let pf = vec_body(data, 1);
                    self.point_formats = pf
                        .get(..pf.len().min(MAX_LIST))
                        .unwrap_or_default()
                        .to_vec();
                }
                EXT_SIGNATURE_ALGORITHMS => u16s(vec_body(data, 2), &mut self.sig_algs),
                EXT_ALPN => {
                    let mut list = vec_body(data, 2);
                    let first = vec_body(list, 1);
                    if !first.is_empty() {
                        self.alpn = Some(first.to_vec());
                    }
                    while let Some(&len) = list.first() {
                        if self.alpns.len() >= MAX_ALPNS {
                            break;
                        }
                        let name = vec_body(list, 1);
                        self.alpns.push(name.to_vec());
                        list = list.get(1 + usize::from(len)..).unwrap_or_default();
                    }
                }
                EXT_SUPPORTED_VERSIONS if client => u16s(vec_body(data, 1), &mut self.versions),
                EXT_SUPPORTED_VERSIONS => {
                    u16s(data.get(..2).unwrap_or_default(), &mut self.versions)
                }
                _ => {}
            }
            ext = ext.get(4 + usize::from(len)..).unwrap_or_default();
        }
    }
}

/// Append `v` in decimal. By hand: `write!` through the formatting machinery cost about 100
/// instructions a value, and a ClientHello's JA3 string has 30-60 values.
fn push_dec(out: &mut String, v: u16) {
    let mut digits = [0u8; 5];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// Append the values in decimal, joined by `-` (one string for the whole fingerprint: no
/// string a value, no vector of them).
fn join(out: &mut String, v: impl Iterator<Item = u16>) {
    for (i, x) in v.enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_dec(out, x);
    }
}

/// The values that are not GREASE.
fn no_grease(v: &[u16]) -> impl Iterator<Item = u16> + '_ {
    v.iter().copied().filter(|x| !is_grease(*x))
}

/// The JA3 string of a ClientHello: `version,ciphers,extensions,groups,point_formats`, decimal,
/// lists joined by `-`, GREASE left out.
pub fn ja3(h: &HelloFields) -> String {
    let mut s = String::with_capacity(256);
    push_dec(&mut s, h.version);
    s.push(',');
    join(&mut s, no_grease(&h.ciphers));
    s.push(',');
    join(&mut s, no_grease(&h.extensions));
    s.push(',');
    join(&mut s, no_grease(&h.groups));
    s.push(',');
    join(&mut s, h.point_formats.iter().map(|&x| u16::from(x)));
    s
}

/// The JA3S string of a ServerHello: `version,cipher,extensions`.
pub fn ja3s(h: &HelloFields) -> String {
    let mut s = String::with_capacity(64);
    push_dec(&mut s, h.version);
    s.push(',');
    join(&mut s, no_grease(&h.ciphers));
    s.push(',');
    join(&mut s, no_grease(&h.extensions));
    s
}

/// Lowercase hex of an MD5 digest (JA3 and JA3S hashes).
pub fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// The lowercase hex digit of a nibble.
pub(crate) fn nibble(n: u8) -> char {
    char::from_digit(u32::from(n & 0x0f), 16).unwrap_or('0')
}

fn push_hex(s: &mut String, b: &[u8]) {
    for x in b {
        s.push(nibble(x >> 4));
        s.push(nibble(*x));
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    push_hex(&mut s, b);
    s
}

/// The first 12 hex digits of the SHA-256 of `s`, or twelve zeros for an empty list (JA4).
fn sha12(s: &str, empty: bool) -> String {
    if empty {
        return "000000000000".into();
    }
    hex(Sha256::digest(s.as_bytes()).get(..6).unwrap_or_default())
}

/// Append the values as four lowercase hex digits each, joined by `,` (JA4's lists).
fn push_hex4(s: &mut String, v: &[u16]) {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_hex(s, &x.to_be_bytes());
    }
}

/// The JA4 fingerprint of a ClientHello over TCP (`t`).
pub fn ja4(h: &HelloFields) -> String {
    let version = h
        .versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(h.version);
    let ver = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0200 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let sni = if h.has_sni { 'd' } else { 'i' };
    let mut ciphers: Vec<u16> = h
        .ciphers
        .iter()
        .copied()
        .filter(|x| !is_grease(*x))
        .collect();
    let exts: Vec<u16> = h
        .extensions
        .iter()
        .copied()
        .filter(|x| !is_grease(*x))
        .collect();
    let alpn = match h.alpn.as_deref() {
        Some([first, .., last]) | Some([first @ last]) => {
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", char::from(*first), char::from(*last))
            } else {
                let f = hex(&[*first]);
                let l = hex(&[*last]);
                format!("{}{}", f.get(..1).unwrap_or("0"), l.get(1..).unwrap_or("0"))
            }
        }
        _ => "00".into(),
    };
    let a = format!(
        "t{ver}{sni}{:02}{:02}{alpn}",
        ciphers.len().min(99),
        exts.len().min(99)
    );
    ciphers.sort_unstable();
    let mut b_in = String::with_capacity(ciphers.len() * 5);
    push_hex4(&mut b_in, &ciphers);
    let b = sha12(&b_in, ciphers.is_empty());
    let mut sorted: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|&x| x != EXT_SERVER_NAME && x != EXT_ALPN)
        .collect();
    sorted.sort_unstable();
    let mut c_in = String::with_capacity((sorted.len() + h.sig_algs.len() + 1) * 5);
    push_hex4(&mut c_in, &sorted);
    if !h.sig_algs.is_empty() {
        c_in.push('_');
        push_hex4(&mut c_in, &h.sig_algs);
    }
    let c = sha12(&c_in, sorted.is_empty());
    format!("{a}_{b}_{c}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // An ALPN list emitted from names reads back as those names (the first MAX_ALPNS).
        #[test]
        fn alpn_list_round_trip(
            names in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..24),
        ) {
            let mut list = Vec::new();
            for n in &names {
                list.push(u8::try_from(n.len()).unwrap());
                list.extend_from_slice(n);
            }
            let mut ext = vec![0, 16];
            ext.extend_from_slice(&u16::try_from(list.len() + 2).unwrap().to_be_bytes());
            ext.extend_from_slice(&u16::try_from(list.len()).unwrap().to_be_bytes());
            ext.extend_from_slice(&list);
            let mut h = HelloFields::default();
            h.read_extensions(&ext, true);
            let want: Vec<Vec<u8>> = names.iter().take(MAX_ALPNS).cloned().collect();
            prop_assert_eq!(&h.alpns, &want);
            prop_assert_eq!(h.alpn.as_ref(), names.first());
        }
    }

    proptest! {
        // Extensions emitted as (type, length, data) read back as the same types in order,
        // whatever their contents; any byte string reads without a panic.
        #[test]
        fn extension_types_round_trip(
            exts in proptest::collection::vec(
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..20),
            junk in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut wire = Vec::new();
            for (ty, data) in &exts {
                wire.extend_from_slice(&ty.to_be_bytes());
                wire.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
                wire.extend_from_slice(data);
            }
            let mut h = HelloFields::default();
            h.read_extensions(&wire, true);
            let types: Vec<u16> = exts.iter().map(|(t, _)| *t).collect();
            prop_assert_eq!(&h.extensions, &types);
            let s = ja3(&h);
            prop_assert_eq!(s.matches(',').count(), 4);
            let j = ja4(&h);
            prop_assert_eq!(j.len(), 36, "{}", j);
            let mut h = HelloFields::default();
            h.read_extensions(&junk, false);
            let _ = (ja3s(&h), ja4(&h));
        }
    }

    proptest! {
        // The hand-written decimal join writes what `format!` writes.
        #[test]
        fn join_is_decimal(v in proptest::collection::vec(any::<u16>(), 0..40)) {
            let mut s = String::new();
            join(&mut s, v.iter().copied());
            let want: Vec<String> = v.iter().map(u16::to_string).collect();
            prop_assert_eq!(s, want.join("-"));
        }
    }

    #[test]
    fn decimal_edges() {
        for (v, want) in [
            (0u16, "0"),
            (9, "9"),
            (10, "10"),
            (771, "771"),
            (65535, "65535"),
        ] {
            let mut s = String::new();
            push_dec(&mut s, v);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn grease_values() {
        for v in [0x0a0a, 0x1a1a, 0xfafa] {
            assert!(is_grease(v));
        }
        for v in [0x0a1a, 0x1301, 0x000a, 0x0a0b] {
            assert!(!is_grease(v));
        }
    }

    // The worked example of the JA3 README (a Chrome ClientHello string) and its published hash.
    #[test]
    fn ja3_string_and_hash() {
        let h = HelloFields {
            version: 769,
            ciphers: vec![
                0x2a2a, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4,
            ],
            extensions: vec![0x0a0a, 0, 10, 11],
            groups: vec![23, 24, 25],
            point_formats: vec![0],
            ..HelloFields::default()
        };
        let s = ja3(&h);
        assert_eq!(
            s,
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(md5_hex(&s), "ada70206e40642a3e4461f35503241d5");
        let s = ja3s(&HelloFields {
            version: 771,
            ciphers: vec![49199],
            extensions: vec![65281, 0, 11],
            ..HelloFields::default()
        });
        assert_eq!(s, "771,49199,65281-0-11");
    }

    // The FoxIO JA4 README's example: a Chrome ClientHello gives t13d1516h2_8daaf6152771_...
    #[test]
    fn ja4_of_chrome() {
        let ciphers = vec![
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let extensions = vec![
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        let h = HelloFields {
            version: 0x0303,
            ciphers,
            extensions,
            sig_algs: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            versions: vec![0x2a2a, 0x0304, 0x0303],
            alpn: Some(b"h2".to_vec()),
            has_sni: true,
            ..HelloFields::default()
        };
        assert_eq!(ja4(&h), "t13d1516h2_8daaf6152771_e5627efa2ab1");
        // No ALPN, no SNI, no extensions.
        let bare = HelloFields {
            version: 0x0301,
            ciphers: vec![0x002f],
            ..HelloFields::default()
        };
        assert!(ja4(&bare).starts_with("t10i0100"), "{}", ja4(&bare));
        assert!(ja4(&bare).ends_with("_000000000000"));
    }

    #[test]
    fn extension_walk() {
        // SNI (empty), supported_groups [29, 23], ec_point_formats [0], ALPN ["h2",
        // "http/1.1"], supported_versions [0x0304], then a truncated extension.
        let ext = [
            &[0, 0, 0, 0][..],
            &[0, 10, 0, 6, 0, 4, 0, 29, 0, 23],
            &[0, 11, 0, 2, 1, 0],
            &[0, 16, 0, 14, 0, 12, 2, b'h', b'2', 8],
            b"http/1.1",
            &[0, 43, 0, 3, 2, 3, 4],
            &[0, 99, 0, 9, 1],
        ]
        .concat();
        let mut h = HelloFields::default();
        h.read_extensions(&ext, true);
        assert_eq!(h.extensions, vec![0, 10, 11, 16, 43]);
        assert_eq!(h.groups, vec![29, 23]);
        assert_eq!(h.point_formats, vec![0]);
        assert_eq!(h.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(h.alpns, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(h.versions, vec![0x0304]);
        assert!(h.has_sni);
    }
}
