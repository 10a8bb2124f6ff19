//! Reading address list files: every line becomes canonical entries, is ignored for a stated
//! reason (blank, comment, a hosts file's `localhost` lines), or is reported with its number.
//! Nothing is dropped silently.
//!
//! Line forms ([`Format::Auto`], decided per line):
//! - `example.com`, `*.example.com`, `.example.com`: the domain and every name below it;
//! - `1.2.3.4`, `[2001:db8::1]`: an IP host;
//! - `example.com/path`, `http://example.com/path?query`: a URL prefix (a URL whose path is `/`
//!   and has no query is the whole site, so it becomes a domain entry, as Safe Browsing's
//!   `host/` expression matches every URL of the host and of the names below it);
//! - hosts-file lines `0.0.0.0 name [name...]`: each name exactly (as the system resolver reads
//!   a hosts file), not the names below it;
//! - adblock `||example.com^` (domain and below), `||example.com/path` (URL prefix),
//!   `|example.com^` (that name exactly, as AdGuard reads it); `$` options are ignored;
//!   exception (`@@`) and wildcard (`*` inside) rules are reported as unsupported;
//! - `#` and `!` comments, `[Adblock Plus 2.0]` headers, blank lines.
//!
//! [`Format::SuricataDataset`]: a Suricata dataset string file, one base64 string a line (a
//! `,value` after it is ignored); each decoded string is read as a plain line above.

use base64::Engine as _;

use crate::canon::{self, CanonUrl};

/// Longest line read (bytes). A longer line is reported, not truncated: no list entry or URL a
/// list would name needs more, and it bounds the work one line can cost.
pub const MAX_LINE: usize = 8192;

/// How the lines of a file are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Plain domains or URLs, hosts-file lines and adblock lines, told apart per line.
    #[default]
    Auto,
    /// Suricata dataset string file: base64, one string a line.
    SuricataDataset,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Format::Auto),
            "dataset" | "suricata-dataset" => Ok(Format::SuricataDataset),
            other => Err(format!("unknown list format {other:?} (auto, dataset)")),
        }
    }
}

/// What an entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// The name and every name below it.
    Domain,
    /// Exactly this name.
    Host,
    /// Host + path prefix (with or without query), Safe Browsing's expression semantics.
    Url,
    /// An IPv4 or IPv6 host.
    Ip,
}

impl EntryKind {
    /// Lowercase name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Domain => "domain",
            EntryKind::Host => "host",
            EntryKind::Url => "url",
            EntryKind::Ip => "ip",
        }
    }
}

/// One canonical entry of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What it covers.
    pub kind: EntryKind,
    /// Canonical text: the host for domains, hosts and IPs; `host/path[?query]` for URLs.
    pub text: String,
    /// 1-based line number in its file.
    pub line: usize,
}

impl Entry {
    /// The host part of the entry.
    pub fn host(&self) -> &str {
        match self.kind {
            EntryKind::Url => self.text.split('/').next().unwrap_or(&self.text),
            _ => &self.text,
        }
    }
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineErrorKind {
    /// The line is longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    /// Not UTF-8 where text is needed.
    #[error("not UTF-8")]
    NotUtf8,
    /// Not base64 (dataset files).
    #[error("not base64: {0}")]
    NotBase64(String),
    /// The host is not a host name or IP address after canonicalisation.
    #[error("not a host name: {0:?}")]
    BadHost(String),
    /// Text with spaces that is no hosts-file line.
    #[error("unexpected whitespace (not a hosts-file line): {0:?}")]
    Whitespace(String),
    /// Adblock syntax we do not read.
    #[error("unsupported adblock rule ({0}): {1:?}")]
    UnsupportedAdblock(&'static str, String),
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub kind: LineErrorKind,
}

/// A file read into entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// Entries in file order (a hosts line can give several).
    pub entries: Vec<Entry>,
    /// Lines that could not be read, in file order.
    pub errors: Vec<LineError>,
    /// Lines that hold nothing to read: blank lines, comments, headers, and hosts-file lines
    /// that only name the machine itself.
    pub ignored_lines: usize,
    /// Names of hosts-file lines that name the machine itself (`localhost`, `broadcasthost`,
    /// ...), skipped.
    pub hosts_boilerplate: usize,
    /// Lines read in all.
    pub lines: usize,
}

impl ParsedList {
    /// Entries of one kind.
    pub fn count(&self, kind: EntryKind) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }
}

/// A list file read from disk: its entries and its version (the first 16 hex digits of the
/// file's `xxh3_64`, so two loads of the same bytes have the same version).
#[derive(Debug, Clone)]
pub struct LoadedList {
    /// The file's lines read.
    pub parsed: ParsedList,
    /// Version derived from the bytes.
    pub version: String,
    /// Size of the file in bytes.
    pub bytes: usize,
}

/// Read a list file.
pub fn load_file(path: &std::path::Path, format: Format) -> std::io::Result<LoadedList> {
    let bytes = std::fs::read(path)?;
    Ok(LoadedList {
        parsed: parse_list(&bytes, format),
        version: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes)),
        bytes: bytes.len(),
    })
}

/// Read a whole list file's bytes.
pub fn parse_list(bytes: &[u8], format: Format) -> ParsedList {
    let mut out = ParsedList::default();
    if bytes.is_empty() {
        return out;
    }
    // A final newline ends the last line; it does not start another.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        out.lines += 1;
        if raw.len() > MAX_LINE {
            out.errors.push(LineError {
                line,
                kind: LineErrorKind::TooLong,
            });
            continue;
        }
        let result = match format {
            Format::Auto => parse_line(raw, line, &mut out),
            Format::SuricataDataset => parse_dataset_line(raw, line, &mut out),
        };
        if let Err(kind) = result {
            out.errors.push(LineError { line, kind });
        }
    }
    out
}

fn parse_dataset_line(raw: &[u8], line: usize, out: &mut ParsedList) -> Result<(), LineErrorKind> {
    let text = raw.trim_ascii();
    if text.is_empty() {
        out.ignored_lines += 1;
        return Ok(());
    }
    let b64 = match text.iter().position(|&b| b == b',') {
        Some(i) => text.get(..i).unwrap_or_default(),
        None => text,
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| LineErrorKind::NotBase64(e.to_string()))?;
    let entry = plain_entry(decoded.trim_ascii(), line)?;
    out.entries.push(entry);
    Ok(())
}

/// Names a hosts file gives the machine itself; a blocklist in hosts format repeats them.
const HOSTS_BOILERPLATE: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

fn parse_line(raw: &[u8], line: usize, out: &mut ParsedList) -> Result<(), LineErrorKind> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| LineErrorKind::NotUtf8)?
        .trim();
    if text.is_empty()
        || text.starts_with('#')
        || text.starts_with('!')
        || (text.starts_with('[') && text.ends_with(']') && text.contains("Adblock"))
    {
        out.ignored_lines += 1;
        return Ok(());
    }
    if text.starts_with("@@") {
        return Err(LineErrorKind::UnsupportedAdblock(
            "exception",
            text.to_string(),
        ));
    }
    if let Some(rest) = text.strip_prefix("||") {
        out.entries.push(adblock_entry(rest, line, false, text)?);
        return Ok(());
    }
    if let Some(rest) = text.strip_prefix('|') {
        out.entries.push(adblock_entry(rest, line, true, text)?);
        return Ok(());
    }
    // A trailing ` # comment` (hosts files have them).
    let text = match text.find(" #").or_else(|| text.find("\t#")) {
        Some(i) => text.get(..i).unwrap_or(text).trim_end(),
        None => text,
    };
    let mut fields = text.split_ascii_whitespace();
    let first = fields.next().unwrap_or_default();
    let mut names = fields.peekable();
    if names.peek().is_none() {
        out.entries.push(plain_entry(first.as_bytes(), line)?);
        return Ok(());
    }
    if first.parse::<std::net::IpAddr>().is_err() {
        return Err(LineErrorKind::Whitespace(text.to_string()));
    }
    let before = out.entries.len();
    for name in names {
        let lower = name.to_ascii_lowercase();
        if HOSTS_BOILERPLATE.contains(&lower.as_str()) {
            out.hosts_boilerplate += 1;
            continue;
        }
        let host = checked_host(name.as_bytes())?;
        let kind = if canon::host_is_ip(&host) {
            EntryKind::Ip
        } else {
            EntryKind::Host
        };
        out.entries.push(Entry {
            kind,
            text: host,
            line,
        });
    }
    if out.entries.len() == before {
        out.ignored_lines += 1;
    }
    Ok(())
}

/// `||host^`, `||host/path`, `|host^` (exact): `rest` is what follows the bars.
fn adblock_entry(
    rest: &str,
    line: usize,
    exact: bool,
    whole: &str,
) -> Result<Entry, LineErrorKind> {
    // Options after `$` (`$all`, `$document`, ...) change nothing for a network address.
    let body = rest.split('$').next().unwrap_or(rest);
    let body = body.strip_suffix('^').unwrap_or(body);
    if body.contains('*') {
        return Err(LineErrorKind::UnsupportedAdblock(
            "wildcard",
            whole.to_string(),
        ));
    }
    if body.contains('^') || body.is_empty() {
        return Err(LineErrorKind::UnsupportedAdblock(
            "separator inside",
            whole.to_string(),
        ));
    }
    let entry = plain_entry(body.as_bytes(), line)?;
    if exact && entry.kind == EntryKind::Domain {
        return Ok(Entry {
            kind: EntryKind::Host,
            ..entry
        });
    }
    Ok(entry)
}

/// A plain line: a domain, an IP host or a URL.
fn plain_entry(text: &[u8], line: usize) -> Result<Entry, LineErrorKind> {
    let is_url = text.contains(&b'/') || text.contains(&b'?');
    if !is_url {
        let name = text
            .strip_prefix(b"*.")
            .or_else(|| text.strip_prefix(b"."))
            .unwrap_or(text);
        let host = checked_host(name)?;
        let kind = if canon::host_is_ip(&host) {
            EntryKind::Ip
        } else {
            EntryKind::Domain
        };
        return Ok(Entry {
            kind,
            text: host,
            line,
        });
    }
    let url = canon::canonicalize(text);
    check_host(&url.host)?;
    Ok(url_entry(&url, line))
}

/// A canonical URL as an entry: the whole site (`/`, no query) is a domain or IP entry.
pub(crate) fn url_entry(url: &CanonUrl, line: usize) -> Entry {
    if url.path == "/" && url.query.is_none() {
        let kind = if url.host_is_ip() {
            EntryKind::Ip
        } else {
            EntryKind::Domain
        };
        return Entry {
            kind,
            text: url.host.clone(),
            line,
        };
    }
    Entry {
        kind: EntryKind::Url,
        text: url.expression(),
        line,
    }
}

fn checked_host(raw: &[u8]) -> Result<String, LineErrorKind> {
    let host = canon::canonical_host(raw);
    check_host(&host)?;
    Ok(host)
}

/// An entry's host must be an IP literal or a name of labels `a-z 0-9 _ -` (1 to 63 bytes,
/// 253 in all), so an entry never holds escapes or stray punctuation.
fn check_host(host: &str) -> Result<(), LineErrorKind> {
    if canon::host_is_ip(host) {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(LineErrorKind::BadHost(host.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds(text: &str) -> Vec<(EntryKind, String)> {
        let p = parse_list(text.as_bytes(), Format::Auto);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.entries.into_iter().map(|e| (e.kind, e.text)).collect()
    }

    #[test]
    fn every_line_form() {
        use EntryKind::*;
        let got = kinds(
            "# comment\n! adblock comment\n[Adblock Plus 2.0]\n\n\
             Example.COM\n*.wild.org\n1.2.3.4\n0x01020305\n\
             github.com/x/raw/a.exe\nhttps://Evil.example/Login?next=1#frag\nhttp://site.example\n\
             0.0.0.0 localhost\n0.0.0.0 ads.example  tracker.example # two names\n127.0.0.1 10.1.1.1\n\
             ||bad.example^\n||host.example/path/x^$all\n|exact.example^\n||dom.example^$important\n",
        );
        assert_eq!(
            got,
            [
                (Domain, "example.com".to_string()),
                (Domain, "wild.org".into()),
                (Ip, "1.2.3.4".into()),
                (Ip, "1.2.3.5".into()),
                (Url, "github.com/x/raw/a.exe".into()),
                (Url, "evil.example/Login?next=1".into()),
                (Domain, "site.example".into()),
                (Host, "ads.example".into()),
                (Host, "tracker.example".into()),
                (Ip, "10.1.1.1".into()),
                (Domain, "bad.example".into()),
                (Url, "host.example/path/x".into()),
                (Host, "exact.example".into()),
                (Domain, "dom.example".into()),
            ]
        );
    }

    #[test]
    fn unreadable_lines_are_reported_with_their_numbers() {
        let text = b"good.example\n%20mandrillapp.com\nbad host here\n@@||ok.example^\n||a*.example^\n\xff\xfe\nlast.example";
        let p = parse_list(text, Format::Auto);
        let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6]);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.lines, 7);
        assert_eq!(p.entries.get(1).map(|e| e.line), Some(7));
        assert!(p.errors.iter().all(|e| !e.to_string().is_empty()));
    }

    #[test]
    fn dataset_lines_are_base64() {
        use base64::engine::general_purpose::STANDARD;
        let text = format!(
            "{}\n{},12\nnot base64!\n",
            STANDARD.encode("Evil.Example"),
            STANDARD.encode("evil.example/dl/x.bin")
        );
        let p = parse_list(text.as_bytes(), Format::SuricataDataset);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(
            p.entries.first().map(|e| e.text.as_str()),
            Some("evil.example")
        );
        assert_eq!(p.entries.get(1).map(|e| e.kind), Some(EntryKind::Url));
        assert_eq!(p.errors.first().map(|e| e.line), Some(3));
    }

    #[test]
    fn long_lines_are_refused() {
        let long = "a".repeat(MAX_LINE + 1);
        let p = parse_list(long.as_bytes(), Format::Auto);
        assert_eq!(
            p.errors.first().map(|e| &e.kind),
            Some(&LineErrorKind::TooLong)
        );
    }

    proptest! {
        /// Every line is an entry, a comment/boilerplate line, or an error with its number.
        #[test]
        fn no_line_is_lost(lines in proptest::collection::vec(
            prop_oneof![
                "[a-z]{1,8}\\.(com|org|co\\.uk)",
                "0\\.0\\.0\\.0 [a-z]{1,8}\\.net",
                "\\|\\|[a-z]{1,6}\\.io\\^",
                "[a-z]{1,5}\\.com/[a-z/]{0,10}",
                "#.{0,10}",
                "[ -~]{0,20}",
            ],
            0..30,
        )) {
            let text = lines.join("\n");
            let p = parse_list(text.as_bytes(), Format::Auto);
            let mut seen: Vec<usize> = p.entries.iter().map(|e| e.line).collect();
            seen.extend(p.errors.iter().map(|e| e.line));
            seen.sort_unstable();
            seen.dedup();
            prop_assert_eq!(seen.len() + p.ignored_lines, p.lines);
            let expected = if text.is_empty() {
                0
            } else {
                text.strip_suffix('\n').unwrap_or(&text).split('\n').count()
            };
            prop_assert_eq!(p.lines, expected);
            for e in &p.entries {
                prop_assert!(e.line >= 1 && e.line <= p.lines);
            }
        }
    }
}
