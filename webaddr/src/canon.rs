//! Canonicalisation of web addresses as Google Safe Browsing does it (API v4, "URLs and
//! hashing"), applied alike to list entries and to what traffic shows, so both meet in one form.
//!
//! Steps, in order: remove tab, CR and LF; trim surrounding whitespace; drop the fragment (from
//! the first `#`); split scheme (default `http`), host (user info and port dropped) and
//! path/query on the raw text; unescape each part repeatedly until no `%XX` is left; host: remove
//! leading and trailing dots, collapse repeated dots, read an IPv4 address in any legal form
//! (decimal, octal, hex, fewer than four parts) as four decimal parts, Unicode names to punycode
//! (UTS 46 through the `idna` crate), lowercase; path: resolve `/./` and `/../`, collapse `//`
//! (the query is left as it is); finally escape bytes <= 0x20, >= 0x7f, `#` and `%` as `%XX`.
//!
//! Everything here works on bytes from traffic: no indexing, no panics; the work is linear in the
//! input's length (the repeated unescaping is one pass over a stack, see [`unescape_fully`]).

use std::net::{Ipv4Addr, Ipv6Addr};

/// A canonical address: host, path (starts with `/`) and query (without `?`; `Some("")` when the
/// address ends in a bare `?`, which Safe Browsing keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonUrl {
    /// The scheme, lowercase (`http` when the input had none). Not part of any lookup.
    pub scheme: String,
    /// Canonical host: a lowercase name, a dotted-decimal IPv4 address or `[IPv6]`.
    pub host: String,
    /// Canonical path, starting with `/`.
    pub path: String,
    /// The query, canonical (unescaped and escaped again), without the `?`.
    pub query: Option<String>,
}

impl CanonUrl {
    /// `scheme://host/path?query`, the form Safe Browsing's examples print.
    pub fn to_url(&self) -> String {
        format!("{}://{}", self.scheme, self.expression())
    }

    /// `host/path?query`, the full lookup expression.
    pub fn expression(&self) -> String {
        match &self.query {
            Some(q) => format!("{}{}?{q}", self.host, self.path),
            None => format!("{}{}", self.host, self.path),
        }
    }

    /// Whether the host is an IP literal (IPv4 dotted decimal or `[IPv6]`).
    pub fn host_is_ip(&self) -> bool {
        host_is_ip(&self.host)
    }
}

/// Whether a canonical host is an IP literal.
pub fn host_is_ip(host: &str) -> bool {
    // A canonical IPv4 address ends in a digit: most names are told apart without parsing.
    host.starts_with('[')
        || (host.ends_with(|c: char| c.is_ascii_digit()) && host.parse::<Ipv4Addr>().is_ok())
}

/// Canonicalise a URL (or a bare `host/path`, which gets `http`). Never fails: an empty host
/// stays empty (the caller decides whether that is an error).
pub fn canonicalize(input: &[u8]) -> CanonUrl {
    // Tab, CR and LF are removed wherever they are.
    let cleaned: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\t' | b'\r' | b'\n'))
        .collect();
    let trimmed = cleaned.trim_ascii();
    // The fragment goes before anything is unescaped (an escaped `%23` is data, not a fragment).
    let no_frag = match trimmed.iter().position(|&b| b == b'#') {
        Some(i) => trimmed.get(..i).unwrap_or_default(),
        None => trimmed,
    };
    let (scheme, rest) = split_scheme(no_frag);
    let authority_end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(authority_end);
    let (raw_path, raw_query) = match path_query.iter().position(|&b| b == b'?') {
        Some(i) => (
            path_query.get(..i).unwrap_or_default(),
            Some(path_query.get(i + 1..).unwrap_or_default()),
        ),
        None => (path_query, None),
    };
    CanonUrl {
        scheme,
        host: canonical_host(host_of_authority(authority)),
        path: canonical_path(raw_path),
        query: raw_query.map(|q| escape(&unescape_fully(q))),
    }
}

/// Canonicalise a bare host name (a TLS server name, a DNS query name, a `Host:` header without
/// its port). The same steps as the host part of [`canonicalize`].
pub fn canonical_host(raw: &[u8]) -> String {
    if let Some(name) = plain_name(raw) {
        return name;
    }
    let unescaped = unescape_fully(raw);
    let host = unescaped.as_slice();
    if let Some(inner) = host.strip_prefix(b"[").and_then(|h| h.strip_suffix(b"]"))
        && let Some(v6) = std::str::from_utf8(inner)
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
    {
        return format!("[{v6}]");
    }
    let mut name = fix_dots(host);
    // A name that UTS 46 turns into anything but letters, digits, `-`, `_` and dots (control
    // bytes or a `%` that now forms an escape with what follows) is kept as it was and escaped,
    // so a second canonicalisation gives the same result.
    if !name.is_ascii()
        && let Ok(ascii) = idna::domain_to_ascii_cow(&name, idna::AsciiDenyList::EMPTY)
        && ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        // UTS 46 maps ideographic full stops to dots; clean the dots again.
        name = fix_dots(ascii.as_bytes());
    }
    name.make_ascii_lowercase();
    if let Some(v4) = parse_ipv4(&name) {
        return v4.to_string();
    }
    escape_also(&name, HOST_ESCAPES)
}

/// Bytes kept escaped in a host besides those Safe Browsing escapes (see [`escape_also`]).
const HOST_ESCAPES: &[u8] = b"/?@:[]\\";

/// Longest name [`plain_name_into`] canonicalises in place (a DNS name has at most 253 bytes).
pub const PLAIN_MAX: usize = 253;

/// What each byte is in a plain name: a lowercase letter, digit, `-` or `_` (0), a capital, a
/// dot, or none of these.
const CAPITAL: u8 = 1;
const DOT: u8 = 2;
const BAD: u8 = 4;
// Evaluated at compile time: `b` stays below 256, so every index is in range and the cast exact.
#[allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
const NAME_BYTES: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_uppercase() {
            t[b] = CAPITAL;
        } else if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            t[b] = 0;
        }
        b += 1;
    }
    t[b'.' as usize] = DOT;
    t
};

/// A plain name (see [`plain_name_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// Canonical as it is.
    Canonical,
    /// Canonical once its capitals are lowercased.
    Capitals,
}

/// The fast path: a name of letters, digits, `-`, `_` and single inner dots whose last label
/// cannot be read as an IPv4 part is canonical once lowercased (no escape, no dot to fix, no
/// Unicode, no address): every step of the full path would leave it as it is. `None` when the
/// name needs the full path ([`canonical_host`]) or is longer than [`PLAIN_MAX`].
pub fn plain_name_kind(raw: &[u8]) -> Option<Plain> {
    if raw.len() > PLAIN_MAX {
        return None;
    }
    // One table load and no branch a byte: this runs on every looked-up name. A dot first,
    // after a dot or last is refused as a dot after a dot (`prev_dot` starts true and must end
    // false, which also refuses the empty name).
    let mut seen = 0u8;
    let mut double_dot = false;
    let mut prev_dot = true;
    for &b in raw {
        let class = NAME_BYTES.get(usize::from(b)).copied().unwrap_or(BAD);
        let dot = class == DOT;
        double_dot |= dot & prev_dot;
        prev_dot = dot;
        seen |= class;
    }
    if double_dot | prev_dot | (seen & BAD != 0) {
        return None;
    }
    let last_label = raw.iter().rposition(|&c| c == b'.').map_or(0, |i| i + 1);
    let label = raw.get(last_label..)?;
    let may_be_ip = label.iter().all(u8::is_ascii_digit)
        || label
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    if may_be_ip {
        return None;
    }
    Some(if seen & CAPITAL != 0 {
        Plain::Capitals
    } else {
        Plain::Canonical
    })
}

fn plain_name(raw: &[u8]) -> Option<String> {
    let mut buf = [0u8; PLAIN_MAX];
    plain_name_into(raw, &mut buf).map(str::to_owned)
}

/// A plain name ([`plain_name_kind`]) lowercased into a caller's buffer, without allocating:
/// the canonical name, or `None` when the name needs the full path ([`canonical_host`]) or is
/// longer than [`PLAIN_MAX`].
pub fn plain_name_into<'b>(raw: &[u8], buf: &'b mut [u8; PLAIN_MAX]) -> Option<&'b str> {
    plain_name_kind(raw)?;
    let out = buf.get_mut(..raw.len())?;
    out.copy_from_slice(raw);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// Host part of an authority: drop `user:password@` and a `:port`.
pub(crate) fn host_of_authority(authority: &[u8]) -> &[u8] {
    let host_port = match authority.iter().rposition(|&b| b == b'@') {
        Some(i) => authority.get(i + 1..).unwrap_or_default(),
        None => authority,
    };
    if host_port.starts_with(b"[") {
        // `[v6]:port`
        return match host_port.iter().position(|&b| b == b']') {
            Some(i) => host_port.get(..=i).unwrap_or(host_port),
            None => host_port,
        };
    }
    match host_port.iter().position(|&b| b == b':') {
        Some(i) => host_port.get(..i).unwrap_or_default(),
        None => host_port,
    }
}

/// `scheme://` prefix, lowercased; `http` when there is none.
fn split_scheme(s: &[u8]) -> (String, &[u8]) {
    if let Some(i) = s.windows(3).position(|w| w == b"://") {
        let scheme = s.get(..i).unwrap_or_default();
        let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if valid {
            let name = String::from_utf8_lossy(scheme).to_ascii_lowercase();
            return (name, s.get(i + 3..).unwrap_or_default());
        }
    }
    ("http".to_string(), s)
}

/// Unescape `%XX` repeatedly until none is left, in one pass: the output is kept as a stack,
/// and whenever its last three bytes form an escape they are replaced by the byte they stand
/// for (which may complete another escape with what precedes it). The result equals unescaping
/// the whole string again and again until it no longer changes (a property test holds the two
/// equal), without that loop's quadratic cost on `%252525...`.
pub fn unescape_fully(s: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    for &b in s {
        out.push(b);
        while let [.., b'%', h, l] = out.as_slice() {
            let (Some(h), Some(l)) = (hex_val(*h), hex_val(*l)) else {
                break;
            };
            out.truncate(out.len() - 3);
            out.push(h << 4 | l);
        }
    }
    out
}

/// One pass of plain `%XX` unescaping (the reference the property test compares with).
pub fn unescape_once(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex_val),
                s.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Escape bytes <= 0x20, >= 0x7f, `#` and `%` as `%XX` (upper-case hex).
fn escape(s: &[u8]) -> String {
    escape_also(s, b"")
}

/// [`escape`], and the bytes of `also` too. Safe Browsing leaves a host's `/` or a path's `?`
/// that came from an escape (`%2F`, `%3F`) bare, so the result would read differently a second
/// time; escaping them keeps canonicalisation idempotent (lists and traffic take the same way).
fn escape_also(s: &[u8], also: &[u8]) -> String {
    fn hex(n: u8) -> char {
        char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 })
    }
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if b <= 0x20 || b >= 0x7f || b == b'#' || b == b'%' || also.contains(&b) {
            out.push('%');
            out.push(hex(b >> 4));
            out.push(hex(b & 0x0f));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Remove leading and trailing dots and collapse runs of dots.
fn fix_dots(host: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(host.len());
    for part in host.split(|&b| b == b'.').filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push(b'.');
        }
        out.extend_from_slice(part);
    }
    out
}

/// An IPv4 address in any form `inet_aton` reads: one to four parts, each decimal, octal
/// (leading `0`) or hex (`0x`), the last part filling the remaining bytes.
fn parse_ipv4(host: &[u8]) -> Option<Ipv4Addr> {
    let mut parts = [0u64; 4];
    let mut n = 0usize;
    for part in host.split(|&b| b == b'.') {
        let slot = parts.get_mut(n)?;
        *slot = parse_ip_part(part)?;
        n += 1;
    }
    let parts = parts.get(..n)?;
    let (last, leading) = parts.split_last()?;
    let mut value: u64 = 0;
    for &p in leading {
        if p > 255 {
            return None;
        }
        value = value << 8 | p;
    }
    // 1 to 4 parts: the last one fills 4 - (parts - 1) bytes.
    let rest_bits: u32 = match leading.len() {
        0 => 32,
        1 => 24,
        2 => 16,
        _ => 8,
    };
    if *last >= 1u64 << rest_bits {
        return None;
    }
    value = value << rest_bits | last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ip_part(part: &[u8]) -> Option<u64> {
    let (digits, radix) = if let Some(h) = part
        .strip_prefix(b"0x")
        .or_else(|| part.strip_prefix(b"0X"))
    {
        (h, 16)
    } else if part.len() > 1 && part.starts_with(b"0") {
        (part.get(1..)?, 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() || digits.len() > 11 {
        return None;
    }
    let s = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(s, radix).ok()
}

/// Unescape the path fully, resolve `.` and `..` segments, collapse `//`, then escape.
fn canonical_path(raw: &[u8]) -> String {
    let unescaped = unescape_fully(raw);
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = true;
    for seg in unescaped.split(|&b| b == b'/') {
        match seg {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path: Vec<u8> = Vec::with_capacity(unescaped.len() + 1);
    for s in &segments {
        path.push(b'/');
        path.extend_from_slice(s);
    }
    if trailing_slash || path.is_empty() {
        path.push(b'/');
    }
    escape_also(&path, b"?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lossy(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }
    use proptest::prelude::*;

    /// Safe Browsing API v4, "URLs and hashing", Canonicalization: every published example.
    /// (developers.google.com/safe-browsing/v4/urls-hashing; the same table is in Firefox's
    /// toolkit/components/url-classifier/tests/unit/test_canonicalization.js.)
    const SAFE_BROWSING_EXAMPLES: &[(&[u8], &str)] = &[
        (b"http://host/%25%32%35", "http://host/%25"),
        (b"http://host/%25%32%35%25%32%35", "http://host/%25%25"),
        (b"http://host/%2525252525252525", "http://host/%25"),
        (b"http://host/asdf%25%32%35asd", "http://host/asdf%25asd"),
        (
            b"http://host/%%%25%32%35asd%%",
            "http://host/%25%25%25asd%25%25",
        ),
        (b"http://www.google.com/", "http://www.google.com/"),
        (
            b"http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
            "http://168.188.99.26/.secure/www.ebay.com/",
        ),
        (
            b"http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
            "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
        ),
        (
            b"http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
            "http://host%23.com/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
        ),
        (b"http://3279880203/blah", "http://195.127.0.11/blah"),
        (b"http://www.google.com/blah/..", "http://www.google.com/"),
        (b"www.google.com/", "http://www.google.com/"),
        (b"www.google.com", "http://www.google.com/"),
        (b"http://www.evil.com/blah#frag", "http://www.evil.com/blah"),
        (b"http://www.GOOgle.com/", "http://www.google.com/"),
        (b"http://www.google.com.../", "http://www.google.com/"),
        (
            b"http://www.google.com/foo\tbar\rbaz\n2",
            "http://www.google.com/foobarbaz2",
        ),
        (b"http://www.google.com/q?", "http://www.google.com/q?"),
        (b"http://www.google.com/q?r?", "http://www.google.com/q?r?"),
        (b"http://www.google.com/q?r?s", "http://www.google.com/q?r?s"),
        (b"http://evil.com/foo#bar#baz", "http://evil.com/foo"),
        (b"http://evil.com/foo;", "http://evil.com/foo;"),
        (b"http://evil.com/foo?bar;", "http://evil.com/foo?bar;"),
        (b"http://\x01\x80.com/", "http://%01%80.com/"),
        (b"http://notrailingslash.com", "http://notrailingslash.com/"),
        (b"http://www.gotaport.com:1234/", "http://www.gotaport.com/"),
        (b"  http://www.google.com/  ", "http://www.google.com/"),
        (b"http:// leadingspace.com/", "http://%20leadingspace.com/"),
        (b"http://%20leadingspace.com/", "http://%20leadingspace.com/"),
        (b"%20leadingspace.com/", "http://%20leadingspace.com/"),
        (b"https://www.securesite.com/", "https://www.securesite.com/"),
        (b"http://host.com/ab%23cd", "http://host.com/ab%23cd"),
        (
            b"http://host.com//twoslashes?more//slashes",
            "http://host.com/twoslashes?more//slashes",
        ),
    ];

    #[test]
    fn safe_browsing_published_examples() {
        let mut failures = Vec::new();
        for (input, want) in SAFE_BROWSING_EXAMPLES {
            let got = canonicalize(input).to_url();
            if got != *want {
                failures.push(format!("{:?}: got {got}, want {want}", lossy(input)));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert_eq!(SAFE_BROWSING_EXAMPLES.len(), 33);
    }

    #[test]
    fn ipv4_forms() {
        for (input, want) in [
            ("0x12.0x43.0x44.0x01", "18.67.68.1"),
            ("012.034.01.055", "10.28.1.45"),
            ("1.2.3", "1.2.0.3"),
            ("1.65535", "1.0.255.255"),
            ("0xC0A80001", "192.168.0.1"),
            ("1.2.3.256", "1.2.3.256"),
            ("1.2.3.4.5", "1.2.3.4.5"),
            ("09.1.1.1", "09.1.1.1"),
        ] {
            assert_eq!(canonical_host(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn hosts_idn_userinfo_ports_ipv6() {
        assert_eq!(canonical_host("bücher.DE".as_bytes()), "xn--bcher-kva.de");
        assert_eq!(
            canonical_host("例え。テスト".as_bytes()),
            "xn--r8jz45g.xn--zckzah"
        );
        assert_eq!(canonical_host(b"%62%C3%BCcher.de"), "xn--bcher-kva.de");
        let u = canonicalize(b"HTTP://user:pw@Example.COM:8080/A/./b/../C?Q=1#x");
        assert_eq!(u.to_url(), "http://example.com/A/C?Q=1");
        let v6 = canonicalize(b"http://[2001:DB8:0:0::1]:443/x");
        assert_eq!(v6.host, "[2001:db8::1]");
        assert!(v6.host_is_ip());
        assert_eq!(canonical_host(b"example.com."), "example.com");
    }

    #[test]
    fn idn_output_that_is_no_name_stays_escaped() {
        // Found by the url_canon fuzz target: UTS 46 lowercased `%\u{187}0c` around a `%`, so
        // punycode's ASCII part held `%0c`, a new escape.
        let input = b"\xc6\x87\x00tK%\xc6\x870c\x00\x00tK";
        let once = canonicalize(input).to_url();
        assert_eq!(canonicalize(once.as_bytes()).to_url(), once);
        assert!(!once.contains("xn--"), "{once}");
    }

    #[test]
    fn plain_names_are_lowercased_in_place() {
        let mut buf = [0u8; PLAIN_MAX];
        assert_eq!(
            plain_name_into(b"WWW.Example-1.CO.uk", &mut buf),
            Some("www.example-1.co.uk")
        );
        for needs_full_path in [
            &b"1.2.3.4"[..],
            b"a.0XFF",
            b"a..b",
            b".a.b",
            b"a.b.",
            b".",
            b"a%2eb",
            "bücher.de".as_bytes(),
            b"",
        ] {
            assert_eq!(plain_name_into(needs_full_path, &mut buf), None);
        }
        let long = format!("{}.example", "a".repeat(PLAIN_MAX));
        assert_eq!(plain_name_into(long.as_bytes(), &mut buf), None);
        assert_eq!(canonical_host(long.as_bytes()), long);
    }

    fn unescape_by_passes(s: &[u8]) -> Vec<u8> {
        let mut cur = s.to_vec();
        loop {
            let next = unescape_once(&cur);
            if next == cur {
                return cur;
            }
            cur = next;
        }
    }

    /// Bytes rich in `%`, hex digits, dots, slashes and non-ASCII.
    fn url_bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'%'),
                Just(b'2'),
                Just(b'5'),
                Just(b'e'),
                Just(b'F'),
                Just(b'.'),
                Just(b'/'),
                Just(b'?'),
                Just(b'#'),
                Just(b':'),
                Just(b'@'),
                Just(b'['),
                Just(b']'),
                b'a'..=b'z',
                b'0'..=b'9',
                any::<u8>(),
            ],
            0..48,
        )
    }

    proptest! {
        #[test]
        fn stack_unescape_equals_repeated_passes(s in url_bytes()) {
            prop_assert_eq!(unescape_fully(&s), unescape_by_passes(&s));
        }

        #[test]
        fn canonicalisation_is_idempotent(s in url_bytes()) {
            let once = canonicalize(&s).to_url();
            let twice = canonicalize(once.as_bytes()).to_url();
            prop_assert_eq!(&once, &twice, "input {:?}", lossy(&s));
        }

        #[test]
        fn fast_path_equals_full_path(s in "[a-zA-Z0-9._-]{1,24}") {
            if let Some(fast) = plain_name(s.as_bytes()) {
                // The full path without the fast path in front.
                let mut name = fix_dots(&unescape_fully(s.as_bytes()));
                name.make_ascii_lowercase();
                prop_assert!(parse_ipv4(&name).is_none());
                prop_assert_eq!(fast, escape_also(&name, HOST_ESCAPES));
            }
        }

        #[test]
        fn host_canonicalisation_is_idempotent(s in url_bytes()) {
            let once = canonical_host(&s);
            prop_assert_eq!(canonical_host(once.as_bytes()), once.clone());
            // Canonical output is printable ASCII without escapable bytes.
            prop_assert!(once.bytes().all(|b| b > 0x20 && b < 0x7f && b != b'#'));
        }
    }
}
