//! Rule text to [`Rule`]: pure functions over strings, no state beyond the load context.
//!
//! A file is split into rules (blank lines and `#` comments skipped, a trailing `\` continues a
//! rule on the next line). Each rule is `action proto src sport dir dst dport (options)`;
//! options are split on unescaped `;` (as Suricata does: quotes do not protect `;`).

use std::collections::HashMap;
use std::sync::Arc;

use super::ast::*;
use super::classification::Classifications;
use super::pcre;
use super::threshold::{self, ThresholdSpec};
use super::vars::Vars;

/// Longest rule accepted (bytes, after joining continuation lines). Suricata's own limit is
/// 8 KiB per line; ET Open's longest rules are a few KiB.
pub const MAX_RULE_LEN: usize = 64 * 1024;

/// What went wrong with one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// The text is malformed at this keyword.
    Syntax(String),
    /// A keyword (or value, e.g. a pcre construct) we do not implement.
    Unsupported(String),
    /// Well-formed but rejected, as Suricata rejects it (e.g. `within` shorter than content).
    Invalid(String),
    /// Same gid:sid as an earlier rule of the load.
    Duplicate,
}

/// A rule that was not loaded: where, which sid if known, which keyword, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: `{keyword}`: {}", .sid.map(|s| format!(" (sid {s})")).unwrap_or_default(), kind_text(.kind))]
pub struct RuleError {
    /// 1-based line where the rule starts.
    pub line: usize,
    /// The rule's sid, when it could be read.
    pub sid: Option<u32>,
    /// The keyword (or header field: `action`, `protocol`, `source`, ...) at fault.
    pub keyword: String,
    /// What is wrong.
    pub kind: RuleErrorKind,
}

fn kind_text(k: &RuleErrorKind) -> String {
    match k {
        RuleErrorKind::Syntax(d) => format!("syntax error: {d}"),
        RuleErrorKind::Unsupported(d) => format!("unsupported: {d}"),
        RuleErrorKind::Invalid(d) => format!("invalid: {d}"),
        RuleErrorKind::Duplicate => "duplicate signature id".to_owned(),
    }
}

/// Load context: variables, classes, and the flowbit name table shared by a rule set.
#[derive(Debug)]
pub struct ParseCtx<'a> {
    /// Variables.
    pub vars: &'a Vars,
    /// Classes.
    pub classes: &'a Classifications,
    /// Flowbit names to ids.
    pub flowbits: &'a mut HashMap<String, u32>,
}

type PResult<T> = Result<T, (String, RuleErrorKind)>;

fn syntax<T>(kw: &str, d: impl Into<String>) -> PResult<T> {
    Err((kw.to_owned(), RuleErrorKind::Syntax(d.into())))
}
fn invalid<T>(kw: &str, d: impl Into<String>) -> PResult<T> {
    Err((kw.to_owned(), RuleErrorKind::Invalid(d.into())))
}
fn unsupported<T>(kw: &str, d: impl Into<String>) -> PResult<T> {
    Err((kw.to_owned(), RuleErrorKind::Unsupported(d.into())))
}

/// A keyword's value, which must be there and not be empty.
fn need<'v>(name: &str, v: Option<&'v str>) -> PResult<&'v str> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => syntax(name, "needs a value"),
    }
}

/// The options of one keyword family ([`Builder::option`] tries each in turn): `Ok(false)` when
/// the keyword is not one of the family's.
type Family = fn(&mut Builder, &str, Option<&str>, &mut ParseCtx<'_>) -> PResult<bool>;

/// Split a file into `(line, rule text)`, joining `\` continuations.
pub fn split_rules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let (body, cont) = match line.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        match cur.as_mut() {
            Some((_, acc)) => {
                if acc.len() < MAX_RULE_LEN {
                    acc.push_str(body);
                }
            }
            None => {
                let t = body.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                cur = Some((i + 1, t.to_owned()));
            }
        }
        if !cont && let Some(r) = cur.take() {
            out.push(r);
        }
    }
    if let Some(r) = cur {
        out.push(r);
    }
    out
}

/// Parse one rule.
pub fn parse_rule(text: &str, line: usize, ctx: &mut ParseCtx<'_>) -> Result<Rule, RuleError> {
    let sid_hint = find_sid(text);
    parse_inner(text, line, ctx).map_err(|(keyword, kind)| RuleError {
        line,
        sid: sid_hint,
        keyword,
        kind,
    })
}

/// The sid, found textually (for error reports on rules that do not parse).
fn find_sid(text: &str) -> Option<u32> {
    let mut rest = text;
    while let Some(i) = rest.find("sid") {
        let before_ok = i == 0
            || rest
                .get(..i)
                .and_then(|b| b.trim_end().chars().last())
                .is_some_and(|c| c == ';' || c == '(');
        let after = rest.get(i + 3..)?;
        let after_t = after.trim_start();
        if before_ok && let Some(v) = after_t.strip_prefix(':') {
            let digits: String = v
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits.parse().ok();
        }
        rest = after;
    }
    None
}

fn parse_inner(text: &str, line: usize, ctx: &mut ParseCtx<'_>) -> PResult<Rule> {
    if text.len() > MAX_RULE_LEN {
        return syntax("rule", format!("longer than {MAX_RULE_LEN} bytes"));
    }
    let open = match text.find('(') {
        Some(i) => i,
        None => return syntax("options", "missing `(`"),
    };
    let (head, opts) = (
        text.get(..open).unwrap_or(""),
        text.get(open + 1..).unwrap_or(""),
    );
    let opts = match opts.trim_end().strip_suffix(')') {
        Some(o) => o,
        None => return syntax("options", "missing closing `)`"),
    };
    let fields = split_header(head);
    let [action, proto, src, sport, dir, dst, dport] = fields.as_slice() else {
        return syntax(
            "header",
            format!("expected 7 header fields, found {}", fields.len()),
        );
    };
    let action = match *action {
        "alert" => RuleAction::Alert,
        "drop" => RuleAction::Drop,
        "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => RuleAction::Reject,
        "pass" => RuleAction::Pass,
        "sdrop" | "log" | "activate" | "dynamic" | "config" => {
            return unsupported("action", format!("action `{action}`"));
        }
        other => return syntax("action", format!("unknown action `{other}`")),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        // `pkthdr` also matches packets without an IP header in Suricata; svm inspects IP
        // packets only, where the two are the same.
        "ip" | "pkthdr" => RuleProto::Ip,
        "ipv4" | "ip4" => RuleProto::Ipv4,
        "ipv6" | "ip6" => RuleProto::Ipv6,
        "tcp" => RuleProto::Tcp,
        "tcp-pkt" => RuleProto::TcpPkt,
        "tcp-stream" => RuleProto::TcpStream,
        "udp" => RuleProto::Udp,
        "icmp" => RuleProto::Icmp,
        "icmpv6" => RuleProto::Icmpv6,
        "http" | "http1" => RuleProto::Http,
        "tls" => RuleProto::Tls,
        "dns" => RuleProto::Dns,
        other => return unsupported("protocol", format!("protocol `{other}`")),
    };
    let direction = match *dir {
        "->" => Direction::To,
        "<>" => Direction::Both,
        "=>" => Direction::Tx,
        "<-" => return syntax("direction", "`<-` is not a direction (use `->`)"),
        other => return syntax("direction", format!("unknown direction `{other}`")),
    };
    let addr = |kw: &str, t: &str| {
        ctx.vars
            .address(t)
            .map_err(|e| (kw.to_owned(), var_kind(&e)))
    };
    let src = addr("source", src)?;
    let dst = addr("destination", dst)?;
    let port = |kw: &str, t: &str| ctx.vars.ports(t).map_err(|e| (kw.to_owned(), var_kind(&e)));
    let sport = port("source port", sport)?;
    let dport = port("destination port", dport)?;
    if !matches!(
        proto,
        RuleProto::Tcp
            | RuleProto::TcpPkt
            | RuleProto::TcpStream
            | RuleProto::Udp
            | RuleProto::Http
            | RuleProto::Tls
            | RuleProto::Dns
    ) && (!sport.is_any() || !dport.is_any())
        && !matches!(proto, RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6)
    {
        return invalid("destination port", "ports need a tcp or udp based protocol");
    }

    let mut b = Builder::default();
    for opt in split_options(opts) {
        let opt = opt.trim();
        if opt.is_empty() {
            continue;
        }
        let (name, value) = match opt.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (opt, None),
        };
        b.option(&name.to_ascii_lowercase(), value, ctx)?;
    }
    b.finish(line, action, proto, src, sport, direction, dst, dport, ctx)
}

/// Suricata 8's checks of the directions a rule's buffers read (`SigValidate`, `DetectFlowSetup`):
/// a transactional rule (`=>`) reads a buffer of each side of the transaction, no buffer that
/// either side has (`http.header`, `file.data`, `tls.cert_subject`, ...: which side would it
/// read?) and names no `flow` direction; any other rule reads one side only ("mixes keywords
/// with conflicting directions": it could never match).
fn tx_sides(direction: Direction, chains: &[Chain], flow: &FlowCheck) -> PResult<()> {
    let app = |c: &&Chain| {
        !c.buffer.is_header()
            && !matches!(
                c.buffer,
                BufferKind::Payload | BufferKind::Packet | BufferKind::Stream
            )
    };
    let side = |s: Side| chains.iter().filter(app).find(|c| c.buffer.side() == s);
    let (request, response) = (side(Side::ToServer), side(Side::ToClient));
    if direction != Direction::Tx {
        return match (request, response) {
            (Some(q), Some(r)) => invalid(
                r.buffer.name(),
                format!(
                    "reads the response while `{}` reads the request: a transactional rule (`=>`) \
                     reads both",
                    q.buffer.name()
                ),
            ),
            _ => Ok(()),
        };
    }
    if flow.to_server.is_some() {
        return invalid(
            "flow",
            "a transactional rule (`=>`) reads both directions: it names none",
        );
    }
    if let Some(c) = side(Side::Both) {
        return invalid(
            c.buffer.name(),
            "either side has this buffer: a transactional rule (`=>`) reads request or \
             response buffers",
        );
    }
    if request.is_none() || response.is_none() {
        return invalid(
            "direction",
            "a transactional rule (`=>`) reads a request buffer and a response buffer",
        );
    }
    Ok(())
}

fn var_kind(e: &super::vars::VarError) -> RuleErrorKind {
    match e {
        super::vars::VarError::Undefined(_) => RuleErrorKind::Invalid(e.to_string()),
        _ => RuleErrorKind::Syntax(e.to_string()),
    }
}

/// Whitespace-separated header fields, keeping `[...]` lists (which may hold spaces) whole.
fn split_header(head: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in head.char_indices() {
        match c {
            '[' => {
                depth += 1;
                start.get_or_insert(i);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && depth == 0 => {
                if let Some(s) = start.take()
                    && let Some(f) = head.get(s..i)
                {
                    out.push(f);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start
        && let Some(f) = head.get(s..)
    {
        out.push(f);
    }
    out
}

/// Split on `;` not preceded by a backslash.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ';' => {
                out.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(rest) = s.get(start..)
        && !rest.trim().is_empty()
    {
        out.push(rest);
    }
    out
}

/// Strip quotes (if any) and the rule-level escapes `\" \; \\ \:`.
/// A content step with no modifiers (`uricontent`, the legacy certificate keywords).
fn plain_content(pattern: Vec<u8>, negated: bool) -> Step {
    Step::Content(Box::new(Content {
        pattern,
        nocase: false,
        negated,
        offset: None,
        depth: None,
        distance: None,
        within: None,
        startswith: false,
        endswith: false,
        fast_pattern: FastPattern::No,
        finder: None,
    }))
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v);
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(n) = chars.next()
        {
            if !matches!(n, '"' | ';' | '\\' | ':') {
                out.push('\\');
            }
            out.push(n);
        } else {
            out.push(c);
        }
    }
    out
}

/// Decode a content string: quotes required, `|41 42|` hex, escapes `\" \; \\ \: \|`.
pub fn parse_content_bytes(v: &str) -> Result<Vec<u8>, String> {
    let v = v.trim();
    let inner = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or("content must be quoted")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut hex = false;
    let mut nibble: Option<u8> = None;
    let mut bytes = inner.bytes();
    while let Some(c) = bytes.next() {
        if hex {
            match c {
                b'|' => {
                    if nibble.is_some() {
                        return Err("odd number of hex digits".into());
                    }
                    hex = false;
                }
                b' ' | b'\t' => {
                    if nibble.is_some() {
                        return Err("space inside a hex byte".into());
                    }
                }
                _ => {
                    let d = (c as char).to_digit(16).ok_or("invalid hex digit")?;
                    let d = u8::try_from(d).map_err(|_| "invalid hex digit")?;
                    match nibble.take() {
                        Some(hi) => out.push(hi << 4 | d),
                        None => nibble = Some(d),
                    }
                }
            }
            continue;
        }
        match c {
            b'|' => hex = true,
            b'\\' => match bytes.next() {
                Some(e @ (b'"' | b';' | b'\\' | b':' | b'|')) => out.push(e),
                _ => return Err("invalid escape (only \\\" \\; \\\\ \\: \\| are allowed)".into()),
            },
            b'"' => return Err("unescaped `\"` in content".into()),
            _ => out.push(c),
        }
    }
    if hex {
        return Err("unterminated hex block".into());
    }
    if out.is_empty() {
        return Err("empty content".into());
    }
    Ok(out)
}

/// Parse `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `=N`, `A<>B`, `A-B`.
pub fn parse_numcmp(v: &str, max: u64) -> Option<NumCmp> {
    let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let num = |s: &str| -> Option<u64> {
        let n = if let Some(h) = s.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()?
        } else {
            s.parse::<u64>().ok()?
        };
        (n <= max).then_some(n)
    };
    if let Some((a, b)) = v.split_once("<>").or_else(|| {
        if v.starts_with(['<', '>', '!', '=']) {
            None
        } else {
            v.split_once('-')
        }
    }) {
        let (a, b) = (num(a)?, num(b)?);
        return (a < b).then_some(NumCmp::Between(a, b));
    }
    Some(if let Some(r) = v.strip_prefix("<=") {
        NumCmp::Le(num(r)?)
    } else if let Some(r) = v.strip_prefix(">=") {
        NumCmp::Ge(num(r)?)
    } else if let Some(r) = v.strip_prefix('<') {
        NumCmp::Lt(num(r)?)
    } else if let Some(r) = v.strip_prefix('>') {
        NumCmp::Gt(num(r)?)
    } else if let Some(r) = v.strip_prefix('!') {
        NumCmp::Ne(num(r)?)
    } else if let Some(r) = v.strip_prefix('=') {
        NumCmp::Eq(num(r)?)
    } else {
        NumCmp::Eq(num(&v)?)
    })
}

fn parse_int<T: std::str::FromStr>(kw: &str, v: Option<&str>) -> PResult<T> {
    let v = v.unwrap_or("").trim();
    match v.parse::<T>() {
        Ok(n) => Ok(n),
        Err(_) => syntax(kw, format!("expected a number, got `{v}`")),
    }
}

/// Sticky buffer keywords and the buffer each selects. A buffer svm does not fill is refused
/// at load ([`crate::scanner::buffer_filled`]).
pub const STICKY_BUFFERS: &[(&str, BufferKind)] = {
    use BufferKind::*;
    &[
        ("pkt_data", Payload),
        ("file.data", FileData),
        ("file_data", FileData),
        ("http.response_body", FileData),
        ("http.uri", HttpUri),
        ("http.uri.raw", HttpUriRaw),
        ("http.method", HttpMethod),
        ("http.host", HttpHost),
        ("http.host.raw", HttpHostRaw),
        ("http.user_agent", HttpUserAgent),
        ("http.header", HttpHeader),
        ("http.header.raw", HttpHeaderRaw),
        ("http.header_names", HttpHeaderNames),
        ("http_header_names", HttpHeaderNames),
        ("http.cookie", HttpCookie),
        ("http.referer", HttpReferer),
        ("http.content_type", HttpContentType),
        ("http.content_len", HttpContentLen),
        ("http.request_line", HttpRequestLine),
        ("http_request_line", HttpRequestLine),
        ("http.request_body", HttpRequestBody),
        ("http.response_line", HttpResponseLine),
        ("http_response_line", HttpResponseLine),
        ("http.stat_code", HttpStatCode),
        ("http.stat_msg", HttpStatMsg),
        ("http.server", HttpServer),
        ("http.location", HttpLocation),
        ("http.accept", HttpAccept),
        ("http.accept_enc", HttpAcceptEnc),
        ("http.accept_lang", HttpAcceptLang),
        ("http.connection", HttpConnection),
        ("http.protocol", HttpProtocol),
        ("http.start", HttpStart),
        ("tls.sni", TlsSni),
        ("tls_sni", TlsSni),
        ("tls.cert_subject", TlsCertSubject),
        ("tls_cert_subject", TlsCertSubject),
        ("tls.cert_issuer", TlsCertIssuer),
        ("tls_cert_issuer", TlsCertIssuer),
        ("tls.cert_serial", TlsCertSerial),
        ("tls_cert_serial", TlsCertSerial),
        ("tls.certs", TlsCerts),
        ("dns.query", DnsQuery),
        ("dns_query", DnsQuery),
        ("ja3.hash", Ja3Hash),
        ("ja3_hash", Ja3Hash),
        ("ja3s.hash", Ja3sHash),
        ("ja3s_hash", Ja3sHash),
        ("ja3.string", Ja3String),
        ("ja3s.string", Ja3sString),
        ("ja4.hash", Ja4Hash),
        ("tls.cert_fingerprint", TlsCertFingerprint),
        ("tls_cert_fingerprint", TlsCertFingerprint),
        ("tls.random", TlsRandom),
        ("tls.random_time", TlsRandomTime),
        ("tls.random_bytes", TlsRandomBytes),
        ("tls.alpn", TlsAlpn),
        ("tls.subjectaltname", TlsSubjectAltName),
        ("http.request_header", HttpRequestHeader),
        ("http.response_header", HttpResponseHeader),
        ("dns.queries.rrname", DnsQueriesRrname),
        ("dns.answers.rrname", DnsAnswersRrname),
        ("dns.authorities.rrname", DnsAuthoritiesRrname),
        ("dns.additionals.rrname", DnsAdditionalsRrname),
        ("dns.response.rrname", DnsResponseRrname),
        ("ipv4.hdr", Ipv4Hdr),
        ("ipv6.hdr", Ipv6Hdr),
        ("tcp.hdr", TcpHdr),
        ("udp.hdr", UdpHdr),
        ("icmpv4.hdr", Icmpv4Hdr),
        ("icmpv6.hdr", Icmpv6Hdr),
    ]
};

/// Legacy content modifiers (move the previous content to a buffer) and their buffers.
pub const LEGACY_BUFFERS: &[(&str, BufferKind)] = {
    use BufferKind::*;
    &[
        ("http_uri", HttpUri),
        ("http_raw_uri", HttpUriRaw),
        ("http_method", HttpMethod),
        ("http_host", HttpHost),
        ("http_raw_host", HttpHostRaw),
        ("http_user_agent", HttpUserAgent),
        ("http_header", HttpHeader),
        ("http_raw_header", HttpHeaderRaw),
        ("http_cookie", HttpCookie),
        ("http_client_body", HttpRequestBody),
        ("http_server_body", FileData),
        ("http_stat_code", HttpStatCode),
        ("http_stat_msg", HttpStatMsg),
    ]
};

fn lookup(table: &[(&str, BufferKind)], name: &str) -> Option<BufferKind> {
    table.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Sticky buffer keywords.
fn sticky(name: &str) -> Option<BufferKind> {
    lookup(STICKY_BUFFERS, name)
}

/// Refuse a buffer svm never fills ([`crate::scanner::buffer_filled`]): a rule reading it would
/// load and never fire. The skip is keyed by the buffer's name, whatever keyword named it.
fn not_filled(kind: BufferKind) -> PResult<()> {
    if crate::scanner::buffer_filled(kind) {
        return Ok(());
    }
    unsupported(
        kind.name(),
        format!("buffer {} not implemented", kind.name()),
    )
}

/// The buffer of `frame:NAME` (Suricata's `frame` keyword, `PROTO.TYPE`): svm has the HTTP/1
/// request frame; any other frame is reported unsupported.
fn frame(name: &str) -> PResult<BufferKind> {
    match name.trim() {
        "http1.request" => Ok(BufferKind::Http1RequestFrame),
        other => unsupported(
            "frame",
            format!("frame `{other}` not implemented (svm has frame:http1.request)"),
        ),
    }
}

/// Legacy content modifiers: move the previous content to a buffer.
fn legacy(name: &str) -> Option<BufferKind> {
    lookup(LEGACY_BUFFERS, name)
}

#[derive(Default)]
struct Builder {
    gid: Option<u32>,
    sid: Option<u32>,
    rev: Option<u32>,
    msg: Option<String>,
    classtype: Option<String>,
    priority: Option<u8>,
    flow: FlowCheck,
    packet: Vec<PacketCheck>,
    steps: Vec<(BufferKind, Step)>,
    last_content: Option<usize>,
    cur: Option<BufferKind>,
    dotprefix: Vec<BufferKind>,
    url_decode: Vec<BufferKind>,
    flowbits: Vec<FlowbitCmd>,
    hostbits: Vec<HostbitCmd>,
    noalert: bool,
    alert: bool,
    threshold: Option<ThresholdSpec>,
    /// `byte_extract` variables in slot order: name and the buffer that sets it.
    byte_vars: Vec<(String, BufferKind)>,
}

/// A keyword value that may name a `byte_extract` variable: the variable, else the number.
fn var_or<T>(var: Option<u8>, num: impl FnOnce() -> PResult<T>) -> PResult<Val<T>> {
    match var {
        Some(v) => Ok(Val::Var(v)),
        None => num().map(Val::Lit),
    }
}

/// The slot of variable `v` if `v` is a name (starts with a letter), an error for an unknown
/// name, `None` for a number.
fn lookup_var(kw: &str, v: &str, vars: &[(String, BufferKind)]) -> PResult<Option<u8>> {
    let v = v.trim();
    if !v.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Ok(None);
    }
    match vars.iter().position(|(n, _)| n == v) {
        Some(i) => Ok(u8::try_from(i).ok()),
        None => invalid(kw, format!("unknown byte_extract variable `{v}`")),
    }
}

impl Builder {
    fn var_of(&self, kw: &str, v: &str) -> PResult<Option<u8>> {
        lookup_var(kw, v, &self.byte_vars)
    }

    fn buffer(&self) -> BufferKind {
        self.cur.unwrap_or(BufferKind::Payload)
    }

    fn content_mut(&mut self, kw: &str) -> PResult<&mut Content> {
        let idx = match self.last_content {
            Some(i) => i,
            None => return syntax(kw, "needs a preceding `content`"),
        };
        match self.steps.get_mut(idx) {
            Some((_, Step::Content(c))) => Ok(c),
            _ => syntax(kw, "needs a preceding `content`"),
        }
    }

    fn option(&mut self, name: &str, value: Option<&str>, ctx: &mut ParseCtx<'_>) -> PResult<()> {
        // `frame:NAME`: a sticky buffer named by its value (Suricata's frames).
        let frame = if name == "frame" {
            Some(frame(need(name, value)?)?)
        } else {
            None
        };
        if let Some(kind) = frame.or_else(|| sticky(name)) {
            if value.is_some() && frame.is_none() {
                return syntax(name, "sticky buffer takes no value");
            }
            not_filled(kind)?;
            self.cur = Some(kind);
            self.last_content = None;
            return Ok(());
        }
        if let Some(kind) = legacy(name) {
            not_filled(kind)?;
            let idx = match self.last_content {
                Some(i) => i,
                None => return syntax(name, "needs a preceding `content`"),
            };
            if self.cur.is_some_and(|c| c != BufferKind::Payload) {
                return invalid(name, "content modifier used after a sticky buffer");
            }
            if let Some(s) = self.steps.get_mut(idx) {
                s.0 = kind;
            }
            return Ok(());
        }
        let families: [Family; 7] = [
            Self::meta,
            Self::flow_state,
            Self::header,
            Self::content,
            Self::modifier,
            Self::inspection,
            Self::transform,
        ];
        for family in families {
            if family(self, name, value, ctx)? {
                return Ok(());
            }
        }
        unsupported(name, format!("keyword `{name}`"))
    }

    /// Rule metadata: `msg`, `sid`, `gid`, `rev`, `priority`, `classtype`, `reference` and the
    /// keywords that do not change what matches (`metadata`, `target`, `tag`, `prefilter`).
    fn meta(&mut self, name: &str, value: Option<&str>, ctx: &mut ParseCtx<'_>) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "msg" => self.msg = Some(unquote(need(value)?)),
            "sid" => {
                let n: u32 = parse_int(name, value)?;
                if n == 0 {
                    return invalid(name, "sid 0");
                }
                self.sid = Some(n);
            }
            "gid" => self.gid = Some(parse_int(name, value)?),
            "rev" => self.rev = Some(parse_int(name, value)?),
            "priority" => {
                let p: u8 = parse_int(name, value)?;
                if p == 0 {
                    return invalid(name, "priority must be 1..=255");
                }
                self.priority = Some(p);
            }
            "classtype" => {
                let c = need(value)?.trim();
                if ctx.classes.get(c).is_none() {
                    return invalid(name, format!("unknown classtype `{c}`"));
                }
                self.classtype = Some(c.to_owned());
            }
            // `prefilter` only chooses Suricata's prefilter engine for the rule: no effect on what matches.
            "metadata" | "target" | "tag" | "prefilter" => {}
            "reference" => {
                if !need(value)?.contains(',') {
                    return syntax(name, "expected `type,id`");
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Flow state and alerting: `flow`, `flowbits`, `noalert`, `alert`, `threshold`,
    /// `detection_filter`.
    fn flow_state(
        &mut self,
        name: &str,
        value: Option<&str>,
        ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "flow" => self.flow(need(value)?)?,
            "flowbits" => self.flowbits(need(value)?, ctx)?,
            "hostbits" => self.hostbits(need(value)?, ctx)?,
            "noalert" => self.noalert = true,
            "alert" => self.alert = true,
            "threshold" | "detection_filter" => {
                if self.threshold.is_some() {
                    return invalid(name, "only one threshold or detection_filter per rule");
                }
                let spec = threshold::parse_spec(need(value)?, name == "detection_filter")
                    .map_err(|e| (name.to_owned(), RuleErrorKind::Syntax(e.to_string())))?;
                self.threshold = Some(spec);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Packet header checks: TCP flags, fragment bits, payload size, TTL, ICMP fields, IP protocol.
    fn header(
        &mut self,
        name: &str,
        value: Option<&str>,
        _ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "flags" | "tcp.flags" => self.packet.push(parse_flags(need(value)?)?),
            "fragbits" => self.packet.push(parse_fragbits(need(value)?)?),
            "stream_size" => {
                let v = need(value)?;
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                let [side, op, n] = parts.as_slice() else {
                    return syntax(name, "expected `side,operator,number`");
                };
                let side = match *side {
                    "client" => StreamSizeSide::Client,
                    "server" => StreamSizeSide::Server,
                    "both" => StreamSizeSide::Both,
                    "either" => StreamSizeSide::Either,
                    other => return syntax(name, format!("unknown side `{other}`")),
                };
                let n: u64 = match n.parse::<u32>() {
                    Ok(n) => u64::from(n),
                    Err(_) => return syntax(name, format!("bad number `{n}`")),
                };
                let cmp = match *op {
                    ">" => NumCmp::Gt(n),
                    "<" => NumCmp::Lt(n),
                    "=" => NumCmp::Eq(n),
                    "!=" => NumCmp::Ne(n),
                    ">=" => NumCmp::Ge(n),
                    "<=" => NumCmp::Le(n),
                    other => return syntax(name, format!("unknown operator `{other}`")),
                };
                self.packet.push(PacketCheck::StreamSize(side, cmp));
            }
            "decode-event" => {
                let v = need(value)?.trim();
                match crate::decode::DecodeEvent::from_suricata_name(v) {
                    Some(e) => self.packet.push(PacketCheck::DecodeEvent(e)),
                    None => {
                        return unsupported(name, format!("decoder event `{v}` is not raised"));
                    }
                }
            }
            "ipopts" => {
                let v = need(value)?;
                match super::packet::ipopts_flag(v) {
                    Some(f) => self.packet.push(PacketCheck::IpOpts(f)),
                    None => return invalid(name, format!("unknown IP option `{}`", v.trim())),
                }
            }
            "stream-event" => {
                let v = need(value)?;
                match stream_event::by_name(v) {
                    Some(e) => self.packet.push(PacketCheck::StreamEvent(e)),
                    None => return unsupported(name, format!("stream event `{}`", v.trim())),
                }
            }
            "dsize" => self
                .packet
                .push(PacketCheck::Dsize(cmp(name, value, 65535)?)),
            "ttl" => self.packet.push(PacketCheck::Ttl(cmp(name, value, 255)?)),
            "flow.age" => {
                self.packet
                    .push(PacketCheck::FlowAge(cmp(name, value, u64::from(u32::MAX))?))
            }
            "vlan.layers" => self
                .packet
                .push(PacketCheck::VlanLayers(cmp(name, value, 255)?)),
            "vlan.id" => {
                let v = need(value)?;
                let (id, layer) = match v.rsplit_once(',') {
                    Some((id, layer)) => (id, Some(layer.trim())),
                    None => (v, None),
                };
                let layer = match layer {
                    None | Some("any") => VlanLayer::Any,
                    Some("all") => VlanLayer::All,
                    Some(l) => match l.parse::<i8>() {
                        // Suricata: 0 to 2 from the outermost, -3 to -1 from the innermost.
                        Ok(i) if (-3..=2).contains(&i) => VlanLayer::Index(i),
                        _ => {
                            return invalid(
                                name,
                                format!("layer `{l}`: expected -3..=2, all or any"),
                            );
                        }
                    },
                };
                match parse_numcmp(id, 4095) {
                    Some(c) => self.packet.push(PacketCheck::VlanId(c, layer)),
                    None => return syntax(name, format!("bad VLAN id `{}`", id.trim())),
                }
            }
            "icmpv6.mtu" => self.packet.push(PacketCheck::Icmpv6Mtu(cmp(
                name,
                value,
                u64::from(u32::MAX),
            )?)),

            "flow.pkts" | "flow.bytes" => {
                let v = need(value)?;
                let Some((dir, n)) = v.split_once(',') else {
                    return syntax(name, "expected `direction,number`");
                };
                let dir = match dir.trim() {
                    "toserver" => FlowDir::ToServer,
                    "toclient" => FlowDir::ToClient,
                    "either" => FlowDir::Either,
                    other => return syntax(name, format!("unknown direction `{other}`")),
                };
                let n = cmp(name, Some(n), u64::MAX)?;
                self.packet.push(if name == "flow.pkts" {
                    PacketCheck::FlowPkts(dir, n)
                } else {
                    PacketCheck::FlowBytes(dir, n)
                });
            }
            // Suricata 7's forms of the same.
            "flow.pkts_toserver"
            | "flow.pkts_toclient"
            | "flow.bytes_toserver"
            | "flow.bytes_toclient" => {
                let n = cmp(name, value, u64::MAX)?;
                let dir = if name.ends_with("toserver") {
                    FlowDir::ToServer
                } else {
                    FlowDir::ToClient
                };
                self.packet.push(if name.starts_with("flow.pkts") {
                    PacketCheck::FlowPkts(dir, n)
                } else {
                    PacketCheck::FlowBytes(dir, n)
                });
            }
            "tcp.seq" => {
                self.packet
                    .push(PacketCheck::TcpSeq(cmp(name, value, u64::from(u32::MAX))?))
            }
            "tcp.ack" => {
                self.packet
                    .push(PacketCheck::TcpAck(cmp(name, value, u64::from(u32::MAX))?))
            }
            // The legacy forms (Suricata's `detect-seq.c`, `detect-ack.c`): one exact 32-bit
            // number, no operators.
            "seq" => {
                let n: u32 = parse_int(name, value)?;
                self.packet
                    .push(PacketCheck::TcpSeq(NumCmp::Eq(u64::from(n))))
            }
            "ack" => {
                let n: u32 = parse_int(name, value)?;
                self.packet
                    .push(PacketCheck::TcpAck(NumCmp::Eq(u64::from(n))))
            }
            "itype" => self.packet.push(PacketCheck::Itype(cmp(name, value, 255)?)),
            "icode" => self.packet.push(PacketCheck::Icode(cmp(name, value, 255)?)),
            "icmp_id" => self
                .packet
                .push(PacketCheck::IcmpId(parse_int(name, value)?)),
            "icmp_seq" => self
                .packet
                .push(PacketCheck::IcmpSeq(parse_int(name, value)?)),
            "ip_proto" => {
                let v = need(value)?;
                let named = match v
                    .trim()
                    .trim_start_matches('!')
                    .to_ascii_lowercase()
                    .as_str()
                {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "ipv6-icmp" | "icmpv6" => Some(58),
                    "gre" => Some(47),
                    "esp" => Some(50),
                    "ah" => Some(51),
                    "sctp" => Some(132),
                    _ => None,
                };
                let c = match named {
                    Some(n) if v.trim().starts_with('!') => NumCmp::Ne(n),
                    Some(n) => NumCmp::Eq(n),
                    None => cmp(name, value, 255)?,
                };
                self.packet.push(PacketCheck::IpProto(c));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `content` and `uricontent`: a new content match in the current buffer.
    fn content(
        &mut self,
        name: &str,
        value: Option<&str>,
        _ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "content" | "uricontent" => {
                let v = need(value)?;
                let (negated, body) = match v.strip_prefix('!') {
                    Some(r) => (true, r.trim_start()),
                    None => (false, v),
                };
                let pattern = parse_content_bytes(body)
                    .map_err(|e| (name.to_owned(), RuleErrorKind::Syntax(e)))?;
                let buf = if name == "uricontent" {
                    BufferKind::HttpUri
                } else {
                    self.buffer()
                };
                self.steps.push((buf, plain_content(pattern, negated)));
                self.last_content = Some(self.steps.len() - 1);
            }
            // Suricata's legacy certificate keywords: the value is looked for anywhere in the
            // field (`strstr`), `!` inverts; the fingerprint is compared in lowercase, as
            // Suricata lowercases the value at load. They read the certificate without
            // changing the sticky buffer.
            "tls.fingerprint" | "tls.subject" | "tls.issuerdn" => {
                let v = need(value)?.trim();
                let (negated, body) = match v.strip_prefix('!') {
                    Some(r) => (true, r.trim_start()),
                    None => (false, v),
                };
                let mut pattern = unquote(body).into_bytes();
                if pattern.is_empty() {
                    return syntax(name, "empty value");
                }
                let kind = match name {
                    "tls.fingerprint" => {
                        pattern.make_ascii_lowercase();
                        BufferKind::TlsCertFingerprint
                    }
                    "tls.subject" => BufferKind::TlsCertSubject,
                    _ => BufferKind::TlsCertIssuer,
                };
                not_filled(kind)?;
                self.steps.push((kind, plain_content(pattern, negated)));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Modifiers of the preceding `content`: `nocase`, `rawbytes`, `offset`, `depth`, `distance`,
    /// `within`, `startswith`, `endswith`, `fast_pattern`.
    fn modifier(
        &mut self,
        name: &str,
        value: Option<&str>,
        _ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "nocase" => self.content_mut(name)?.nocase = true,
            "rawbytes" => {
                self.content_mut(name)?;
            }
            "offset" | "depth" | "distance" | "within" => {
                let v = need(value)?.trim().to_owned();
                let var = self.var_of(name, &v)?;
                let c = self.content_mut(name)?;
                match name {
                    "offset" => c.offset = Some(var_or(var, || parse_int(name, Some(&v)))?),
                    "depth" => {
                        let d = var_or(var, || parse_int(name, Some(&v)))?;
                        if d == Val::Lit(0) {
                            return invalid(name, "depth 0");
                        }
                        c.depth = Some(d);
                    }
                    "distance" => c.distance = Some(var_or(var, || parse_int(name, Some(&v)))?),
                    _ => c.within = Some(var_or(var, || parse_int(name, Some(&v)))?),
                }
            }
            "startswith" => self.content_mut(name)?.startswith = true,
            "endswith" => self.content_mut(name)?.endswith = true,
            "fast_pattern" => {
                let fp = match value.map(str::trim) {
                    None | Some("") => FastPattern::Yes,
                    Some("only") => FastPattern::Only,
                    Some(v) => {
                        let (o, l) = v.split_once(',').ok_or_else(|| {
                            (
                                name.to_owned(),
                                RuleErrorKind::Syntax(format!("bad value `{v}`")),
                            )
                        })?;
                        FastPattern::Slice(parse_int(name, Some(o))?, parse_int(name, Some(l))?)
                    }
                };
                self.content_mut(name)?.fast_pattern = fp;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The other inspections of a buffer: `pcre`, `isdataat`, `bsize`, `urilen`, `byte_test`,
    /// `byte_jump`.
    fn inspection(
        &mut self,
        name: &str,
        value: Option<&str>,
        _ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        let need = |v| need(name, v);
        match name {
            "pcre" => {
                // Suricata takes the value with or without quotes (`pcre:/one/U;`): its parse
                // regex looks for `/.../flags` anywhere in it.
                let v = need(value)?.trim();
                let (neg, body) = match v.strip_prefix('!') {
                    Some(r) => ("!", r.trim_start()),
                    None => ("", v),
                };
                let quoted;
                let v = if body.starts_with('"') {
                    v
                } else {
                    quoted = format!("{neg}\"{body}\"");
                    quoted.as_str()
                };
                let t = pcre::translate(v).map_err(|e| {
                    let kind = match e {
                        pcre::PcreError::Unsupported(_) => {
                            RuleErrorKind::Unsupported(e.to_string())
                        }
                        _ => RuleErrorKind::Invalid(e.to_string()),
                    };
                    (name.to_owned(), kind)
                })?;
                let buf = t.buffer.unwrap_or(self.buffer());
                self.steps.push((
                    buf,
                    Step::Pcre(Box::new(Pcre {
                        regex: t.regex,
                        relative: t.relative,
                        negated: t.negated,
                    })),
                ));
            }
            "isdataat" => {
                let v = need(value)?;
                let (negated, v) = match v.trim().strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v.trim()),
                };
                let mut parts = v.split(',').map(str::trim);
                let first = parts.next().unwrap_or("");
                let var = self.var_of(name, first)?;
                let n = var_or(var, || parse_int(name, Some(first)))?;
                let mut relative = false;
                for p in parts {
                    match p {
                        "relative" => relative = true,
                        "rawbytes" => {}
                        other => return syntax(name, format!("unknown option `{other}`")),
                    }
                }
                self.steps.push((
                    self.buffer(),
                    Step::IsDataAt {
                        n,
                        relative,
                        negated,
                    },
                ));
            }
            "bsize" => {
                if self.cur.is_none_or(|c| c == BufferKind::Payload) {
                    return invalid(name, "needs a sticky buffer");
                }
                let c = cmp(name, value, u64::MAX)?;
                self.steps.push((self.buffer(), Step::Bsize(c)));
            }
            "urilen" => {
                let v = need(value)?;
                let (v, raw) = match v.split_once(',') {
                    Some((a, "raw")) => (a, true),
                    Some((a, "norm")) => (a, false),
                    Some(_) => return syntax(name, "expected `norm` or `raw`"),
                    None => (v, false),
                };
                let c = cmp(name, Some(v), 65535)?;
                let buf = if raw {
                    BufferKind::HttpUriRaw
                } else {
                    BufferKind::HttpUri
                };
                self.steps.push((buf, Step::Bsize(c)));
            }
            // Integer keywords of the transaction: they read their own buffer and leave the
            // sticky buffer as it is.
            "dns.opcode" | "dns.rcode" | "dns.rrtype" => {
                let (kind, max) = match name {
                    "dns.opcode" => (BufferKind::DnsOpcode, 15),
                    "dns.rcode" => (BufferKind::DnsRcode, 15),
                    _ => (BufferKind::DnsRrtype, 65535),
                };
                not_filled(kind)?;
                let c = cmp(name, value, max)?;
                self.steps.push((kind, Step::Uint(c)));
            }
            // Suricata's `ssl_version`: the version of this direction's hello is one of the
            // list (`!`: is known and none of them). Read as an anchored expression over the
            // version's name; an unknown version matches neither way.
            "ssl_version" => {
                let v = need(value)?.trim();
                let (negated, list) = match v.strip_prefix('!') {
                    Some(r) => (true, r),
                    None => (false, v),
                };
                const NAMES: [&str; 6] = ["sslv2", "sslv3", "tls1.0", "tls1.1", "tls1.2", "tls1.3"];
                let mut picked: Vec<&str> = Vec::new();
                for w in list.split([',', ' ', '\t']).filter(|w| !w.is_empty()) {
                    let Some(n) = NAMES.iter().find(|n| n.eq_ignore_ascii_case(w)) else {
                        return invalid(name, format!("unknown version `{w}`"));
                    };
                    if picked.contains(n) {
                        return invalid(name, format!("`{w}` twice"));
                    }
                    picked.push(n);
                }
                if picked.is_empty() {
                    return invalid(name, "no version");
                }
                let alts = picked.join("|").replace('.', "\\.");
                let neg = if negated { "!" } else { "" };
                let t = pcre::translate(&format!("{neg}\"/^(?:{alts})$/\""))
                    .map_err(|e| (name.to_owned(), RuleErrorKind::Invalid(e.to_string())))?;
                self.steps.push((
                    BufferKind::SslVersion,
                    Step::Pcre(Box::new(Pcre {
                        regex: t.regex,
                        relative: false,
                        negated: t.negated,
                    })),
                ));
            }
            // Suricata's `base64_decode:[bytes N][, offset M][, relative]` on the current
            // buffer; `base64_data` (below) selects what it decoded for the steps after it.
            "base64_decode" => {
                let mut d = Base64Decode {
                    bytes: None,
                    offset: 0,
                    relative: false,
                    steps: Vec::new(),
                };
                for part in value.unwrap_or("").split(',').map(str::trim) {
                    let mut words = part.split_whitespace();
                    match (words.next(), words.next(), words.next()) {
                        (None, ..) => {}
                        (Some("relative"), None, _) => d.relative = true,
                        (Some("bytes"), Some(n), None) => {
                            let n: u32 = parse_int(name, Some(n))?;
                            if n == 0 {
                                return invalid(name, "bytes 0");
                            }
                            d.bytes = Some(n);
                        }
                        (Some("offset"), Some(n), None) => d.offset = parse_int(name, Some(n))?,
                        _ => return syntax(name, format!("unknown option `{part}`")),
                    }
                }
                self.steps
                    .push((self.buffer(), Step::Base64Decode(Box::new(d))));
            }
            "base64_data" => {
                if value.is_some() {
                    return syntax(name, "takes no value");
                }
                self.cur = Some(BufferKind::Base64Data);
                self.last_content = None;
            }
            // The transaction's events by name; it reads its own buffer and leaves the sticky
            // buffer as it is. Only the events svm raises load.
            "app-layer-event" => {
                let v = need(value)?.trim();
                if !crate::app::dns::parser::TxEvents::ALL_NAMES.contains(&v) {
                    return unsupported(name, format!("app-layer-event:{v}"));
                }
                if self
                    .steps
                    .iter()
                    .any(|(b, _)| *b == BufferKind::AppLayerEvent)
                {
                    return unsupported(name, "more than one app-layer-event");
                }
                let Step::Content(mut c) = plain_content(v.as_bytes().to_vec(), false) else {
                    return invalid(name, "not a content");
                };
                c.startswith = true;
                c.endswith = true;
                self.steps
                    .push((BufferKind::AppLayerEvent, Step::Content(c)));
            }
            "byte_test" => {
                let bt = parse_byte_test(need(value)?, &self.byte_vars)?;
                self.steps.push((self.buffer(), Step::ByteTest(bt)));
            }
            "byte_jump" => {
                let bj = parse_byte_jump(need(value)?, &self.byte_vars)?;
                self.steps.push((self.buffer(), Step::ByteJump(bj)));
            }
            "byte_extract" => {
                let (be, var) = parse_byte_extract(need(value)?, self.byte_vars.len())?;
                if self.byte_vars.iter().any(|(n, _)| *n == var) {
                    return invalid(name, format!("variable `{var}` defined twice"));
                }
                if self.byte_vars.len() >= MAX_BYTE_VARS {
                    return invalid(name, format!("more than {MAX_BYTE_VARS} variables"));
                }
                self.byte_vars.push((var, self.buffer()));
                self.steps.push((self.buffer(), Step::ByteExtract(be)));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Buffer transforms: `dotprefix`, `url_decode`.
    fn transform(
        &mut self,
        name: &str,
        _value: Option<&str>,
        _ctx: &mut ParseCtx<'_>,
    ) -> PResult<bool> {
        match name {
            "dotprefix" => {
                let buf = self.buffer();
                if buf == BufferKind::Payload {
                    return invalid(name, "transform needs a sticky buffer");
                }
                if self.steps.iter().any(|(b, _)| *b == buf) {
                    return invalid(name, "transform must come before the buffer's matches");
                }
                self.dotprefix.push(buf);
            }
            "url_decode" => {
                let buf = self.buffer();
                if buf == BufferKind::Payload {
                    return invalid(name, "transform needs a sticky buffer");
                }
                if self.steps.iter().any(|(b, _)| *b == buf) {
                    return invalid(name, "transform must come before the buffer's matches");
                }
                self.url_decode.push(buf);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn flow(&mut self, v: &str) -> PResult<()> {
        for p in v.split(',').map(str::trim) {
            let f = &mut self.flow;
            match p {
                "established" => f.established = Some(true),
                "not_established" => f.established = Some(false),
                "stateless" => f.stateless = true,
                "to_server" | "from_client" => f.to_server = Some(true),
                "to_client" | "from_server" => f.to_server = Some(false),
                "only_stream" => f.stream = Some(true),
                "no_stream" => f.stream = Some(false),
                "only_frag" | "no_frag" => return unsupported("flow", format!("flow:{p}")),
                other => return syntax("flow", format!("unknown flow option `{other}`")),
            }
        }
        Ok(())
    }

    fn flowbits(&mut self, v: &str, ctx: &mut ParseCtx<'_>) -> PResult<()> {
        let (cmd, names) = match v.split_once(',') {
            Some((c, n)) => (c.trim(), Some(n.trim())),
            None => (v.trim(), None),
        };
        if cmd == "noalert" {
            self.noalert = true;
            return Ok(());
        }
        let Some(names) = names.filter(|n| !n.is_empty()) else {
            return syntax("flowbits", format!("`{cmd}` needs a name"));
        };
        let next = u32::try_from(ctx.flowbits.len()).unwrap_or(u32::MAX);
        let mut id = |n: &str| *ctx.flowbits.entry(n.trim().to_owned()).or_insert(next);
        let single = |kw: &str| -> PResult<()> {
            if names.contains(['|', '&']) {
                return syntax("flowbits", format!("`{kw}` takes one name"));
            }
            Ok(())
        };
        let cmd_v = match cmd {
            "set" => {
                single(cmd)?;
                FlowbitCmd::Set(id(names))
            }
            "unset" => {
                single(cmd)?;
                FlowbitCmd::Unset(id(names))
            }
            "toggle" => {
                single(cmd)?;
                FlowbitCmd::Toggle(id(names))
            }
            "isset" | "isnotset" => {
                if names.contains('|') && names.contains('&') {
                    return syntax("flowbits", "cannot mix `|` and `&`");
                }
                let any = names.contains('|');
                let mut ids = Vec::new();
                for n in names.split(['|', '&']) {
                    let next = u32::try_from(ctx.flowbits.len()).unwrap_or(u32::MAX);
                    ids.push(*ctx.flowbits.entry(n.trim().to_owned()).or_insert(next));
                }
                match (cmd, any) {
                    ("isset", true) => FlowbitCmd::IsSetAny(ids),
                    ("isset", false) => FlowbitCmd::IsSetAll(ids),
                    (_, false) => FlowbitCmd::IsNotSet(ids),
                    _ => return unsupported("flowbits", "isnotset with `|`"),
                }
            }
            other => return syntax("flowbits", format!("unknown command `{other}`")),
        };
        self.flowbits.push(cmd_v);
        Ok(())
    }

    /// `hostbits:<set|unset|toggle|isset|isnotset>,<name>[,<src|dst>]` or `hostbits:noalert`.
    fn hostbits(&mut self, v: &str, ctx: &mut ParseCtx<'_>) -> PResult<()> {
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let (cmd, name, side) = match parts.as_slice() {
            ["noalert"] => {
                self.noalert = true;
                return Ok(());
            }
            [cmd, name] => (*cmd, *name, "src"),
            [cmd, name, side] => (*cmd, *name, *side),
            _ => return syntax("hostbits", "expected `command,name[,src|dst]`"),
        };
        if name.is_empty() || name.contains(['|', '&']) {
            return syntax("hostbits", format!("`{cmd}` takes one name"));
        }
        let op = match cmd {
            "set" => HostbitOp::Set,
            "unset" => HostbitOp::Unset,
            "toggle" => HostbitOp::Toggle,
            "isset" => HostbitOp::IsSet,
            "isnotset" => HostbitOp::IsNotSet,
            other => return syntax("hostbits", format!("unknown command `{other}`")),
        };
        let side = match side {
            "src" => HostSide::Src,
            "dst" => HostSide::Dst,
            // Suricata refuses it too ("'both' not implemented").
            "both" => return unsupported("hostbits", "direction `both`"),
            other => return syntax("hostbits", format!("unknown direction `{other}`")),
        };
        let next = u32::try_from(ctx.flowbits.len()).unwrap_or(u32::MAX);
        let bit = *ctx.flowbits.entry(name.to_owned()).or_insert(next);
        self.hostbits.push(HostbitCmd { op, bit, side });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        self,
        line: usize,
        action: RuleAction,
        proto: RuleProto,
        src: super::vars::AddrSet,
        sport: super::vars::PortSet,
        direction: Direction,
        dst: super::vars::AddrSet,
        dport: super::vars::PortSet,
        ctx: &ParseCtx<'_>,
    ) -> PResult<Rule> {
        let Some(sid) = self.sid else {
            return syntax("sid", "missing sid");
        };
        // The `base64_data` steps go inside the `base64_decode` before them.
        let mut steps: Vec<(BufferKind, Step)> = Vec::with_capacity(self.steps.len());
        let mut decode_at = None;
        for (buf, step) in self.steps {
            if buf == BufferKind::Base64Data {
                match decode_at.and_then(|i| steps.get_mut(i)) {
                    Some((_, Step::Base64Decode(d))) => d.steps.push(step),
                    _ => return invalid("base64_data", "needs a base64_decode before it"),
                }
                continue;
            }
            if matches!(step, Step::Base64Decode(_)) {
                decode_at = Some(steps.len());
            }
            steps.push((buf, step));
        }
        let mut chains: Vec<Chain> = Vec::new();
        for (buf, mut step) in steps {
            // Also the buffers named by other means than a buffer keyword (pcre's /Q, /S, /Y).
            not_filled(buf)?;
            prepare_step(&mut step)?;
            match chains.iter_mut().find(|c| c.buffer == buf) {
                Some(ch) => ch.steps.push(step),
                None => chains.push(Chain {
                    buffer: buf,
                    dotprefix: self.dotprefix.contains(&buf),
                    url_decode: self.url_decode.contains(&buf),
                    steps: vec![step],
                }),
            }
        }
        // A variable is read in its own buffer after it is set, or in a buffer inspected later
        // (chains run in the order their buffers first appear).
        let chain_pos = |b: BufferKind| chains.iter().position(|c| c.buffer == b);
        for (pos, ch) in chains.iter().enumerate() {
            for slot in ch.steps.iter().flat_map(step_vars) {
                let def = self.byte_vars.get(usize::from(slot)).map(|(_, b)| *b);
                if def.and_then(chain_pos).is_none_or(|d| d > pos) {
                    return unsupported(
                        "byte_extract",
                        "variable read in a buffer inspected before the one setting it",
                    );
                }
            }
        }
        // Suricata refuses a header buffer the rule's protocol cannot have.
        for ch in &chains {
            let tcp = matches!(
                proto,
                RuleProto::Tcp
                    | RuleProto::TcpPkt
                    | RuleProto::TcpStream
                    | RuleProto::Http
                    | RuleProto::Tls
            );
            let ip = matches!(proto, RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Ipv6);
            let ok = match ch.buffer {
                BufferKind::TcpHdr => ip || tcp,
                BufferKind::UdpHdr => ip || proto == RuleProto::Udp,
                BufferKind::Icmpv4Hdr => {
                    matches!(proto, RuleProto::Ip | RuleProto::Ipv4 | RuleProto::Icmp)
                }
                BufferKind::Icmpv6Hdr => {
                    matches!(proto, RuleProto::Ip | RuleProto::Ipv6 | RuleProto::Icmpv6)
                }
                BufferKind::Ipv4Hdr => proto != RuleProto::Ipv6,
                BufferKind::Ipv6Hdr => proto != RuleProto::Ipv4,
                _ => true,
            };
            if !ok {
                return invalid(ch.buffer.name(), "the rule's protocol has no such header");
            }
        }
        for ch in &chains {
            let fps = ch
                .steps
                .iter()
                .filter(|s| matches!(s, Step::Content(c) if c.fast_pattern != FastPattern::No))
                .count();
            if fps > 1 {
                return invalid("fast_pattern", "more than one fast_pattern in a buffer");
            }
        }
        tx_sides(direction, &chains, &self.flow)?;
        let class = self.classtype.as_deref().and_then(|c| ctx.classes.get(c));
        let priority = self.priority.or(class.map(|c| c.priority)).unwrap_or(3);
        let anchored = chains
            .iter()
            .filter(|ch| ch.buffer == BufferKind::Payload)
            .flat_map(|ch| &ch.steps)
            .any(|s| {
                matches!(s, Step::Content(c)
                    if c.offset.is_some() || c.depth.is_some() || c.startswith)
            });
        let packet_too = !self.packet.is_empty() || anchored;
        Ok(Rule {
            action,
            gid: self.gid.unwrap_or(1),
            sid,
            rev: self.rev.unwrap_or(0),
            msg: Arc::from(self.msg.unwrap_or_default()),
            classtype: self.classtype.map(Arc::from),
            priority,
            proto,
            src,
            sport,
            direction,
            dst,
            dport,
            flow: self.flow,
            packet: self.packet,
            packet_too,
            chains,
            flowbits: self.flowbits,
            hostbits: self.hostbits,
            noalert: self.noalert,
            alert: self.alert,
            threshold: self.threshold,
            line,
        })
    }
}

fn cmp(kw: &str, v: Option<&str>, max: u64) -> PResult<NumCmp> {
    let v = v.unwrap_or("");
    match parse_numcmp(v, max) {
        Some(c) => Ok(c),
        None => syntax(kw, format!("bad value `{v}`")),
    }
}

/// The variable slots a step reads.
fn step_vars(s: &Step) -> Vec<u8> {
    match s {
        Step::Content(c) => [
            c.offset.and_then(|v| v.var()),
            c.depth.and_then(|v| v.var()),
            c.distance.and_then(|v| v.var()),
            c.within.and_then(|v| v.var()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Step::IsDataAt { n, .. } => n.var().into_iter().collect(),
        Step::ByteTest(b) => [b.nbytes.var(), b.value.var(), b.offset.var()]
            .into_iter()
            .flatten()
            .collect(),
        Step::ByteJump(b) => [b.nbytes.var(), b.offset.var()]
            .into_iter()
            .flatten()
            .collect(),
        Step::Base64Decode(d) => d.steps.iter().flat_map(step_vars).collect(),
        Step::Pcre(_) | Step::ByteExtract(_) | Step::Bsize(_) | Step::Uint(_) => Vec::new(),
    }
}

/// Content validation and the case-sensitive searcher, for a step and the steps it holds.
fn prepare_step(step: &mut Step) -> PResult<()> {
    match step {
        Step::Content(c) => {
            validate_content(c)?;
            if !c.nocase {
                c.finder = Some(memchr::memmem::Finder::new(&c.pattern).into_owned());
            }
        }
        Step::Base64Decode(d) => {
            for s in &mut d.steps {
                prepare_step(s)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Suricata's content validation: what it refuses to load.
fn validate_content(c: &Content) -> PResult<()> {
    let len = u32::try_from(c.pattern.len()).unwrap_or(u32::MAX);
    let absolute = c.offset.is_some() || c.depth.is_some();
    if absolute && c.is_relative() {
        return invalid(
            if c.depth.is_some() { "depth" } else { "offset" },
            "cannot mix depth/offset with distance/within on one content",
        );
    }
    if let Some(&d) = c.depth.as_ref().and_then(Val::lit)
        && d < len
    {
        return invalid(
            "depth",
            format!("depth {d} is smaller than the content ({len} bytes)"),
        );
    }
    if let Some(&w) = c.within.as_ref().and_then(Val::lit)
        && w < len
    {
        return invalid(
            "within",
            format!("within {w} is shorter than the content ({len} bytes)"),
        );
    }
    if c.startswith && (absolute || c.is_relative()) {
        return invalid(
            "startswith",
            "cannot mix with offset, depth, distance or within",
        );
    }
    if c.negated && c.fast_pattern == FastPattern::Only {
        return invalid("fast_pattern", "fast_pattern:only on a negated content");
    }
    if let FastPattern::Slice(o, l) = c.fast_pattern
        && (l == 0 || usize::from(o) + usize::from(l) > c.pattern.len())
    {
        return invalid("fast_pattern", "offset,length outside the content");
    }
    Ok(())
}

fn parse_flags(v: &str) -> PResult<PacketCheck> {
    let (main, ignore_s) = match v.split_once(',') {
        Some((a, b)) => (a.trim(), Some(b.trim())),
        None => (v.trim(), None),
    };
    let mut mode = BitsMode::Exact;
    let mut bits = 0u16;
    let bit = |c: char| -> Option<u16> {
        Some(match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            _ => return None,
        })
    };
    for c in main.chars() {
        match c {
            '+' => mode = BitsMode::All,
            '*' => mode = BitsMode::Any,
            '!' => mode = BitsMode::Not,
            c => match bit(c) {
                Some(b) => bits |= b,
                None => return syntax("flags", format!("unknown flag `{c}`")),
            },
        }
    }
    let mut ignore = 0u16;
    for c in ignore_s.unwrap_or("").chars() {
        match bit(c) {
            Some(b) => ignore |= b,
            None => return syntax("flags", format!("unknown mask flag `{c}`")),
        }
    }
    Ok(PacketCheck::Flags { mode, bits, ignore })
}

fn parse_fragbits(v: &str) -> PResult<PacketCheck> {
    let mut mode = BitsMode::Exact;
    let mut bits = 0u8;
    for c in v.trim().chars() {
        match c.to_ascii_uppercase() {
            '+' => mode = BitsMode::All,
            '*' => mode = BitsMode::Any,
            '!' => mode = BitsMode::Not,
            'R' => bits |= 1,
            'D' => bits |= 2,
            'M' => bits |= 4,
            other => return syntax("fragbits", format!("unknown bit `{other}`")),
        }
    }
    Ok(PacketCheck::Fragbits { mode, bits })
}

fn parse_num_value(kw: &str, s: &str) -> PResult<u64> {
    let s = s.trim();
    let r = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    match r {
        Ok(n) => Ok(n),
        Err(_) if s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
            unsupported(kw, "byte_extract variable as value")
        }
        Err(_) => syntax(kw, format!("bad number `{s}`")),
    }
}

fn parse_offset(kw: &str, s: &str) -> PResult<i32> {
    let s = s.trim();
    match s.parse::<i32>() {
        Ok(n) => Ok(n),
        Err(_) if s.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
            unsupported(kw, "byte_extract variable as offset")
        }
        Err(_) => syntax(kw, format!("bad offset `{s}`")),
    }
}

fn encoding_opts<'a>(
    kw: &str,
    opts: impl Iterator<Item = &'a str>,
    mut other: impl FnMut(&str) -> PResult<bool>,
) -> PResult<(ByteEncoding, bool, Option<u64>)> {
    let mut enc = ByteEncoding::Big;
    let mut string = false;
    let mut base = 10;
    let mut relative = false;
    let mut bitmask = None;
    for o in opts {
        let o = o.trim();
        match o {
            "relative" => relative = true,
            "big" => enc = ByteEncoding::Big,
            "little" => enc = ByteEncoding::Little,
            "string" => string = true,
            "dec" => base = 10,
            "hex" => base = 16,
            "oct" => base = 8,
            "dce" => return unsupported(kw, "dce"),
            _ if o.starts_with("bitmask") => {
                let v = o.trim_start_matches("bitmask").trim();
                bitmask = Some(parse_num_value(kw, v)?);
            }
            _ => {
                if !other(o)? {
                    return syntax(kw, format!("unknown option `{o}`"));
                }
            }
        }
    }
    if string {
        enc = ByteEncoding::String(base);
    }
    Ok((enc, relative, bitmask))
}

fn nbytes(kw: &str, s: &str, enc: ByteEncoding) -> PResult<u8> {
    let n: u8 = parse_int(kw, Some(s))?;
    // Binary reads take 1..=8 bytes. String reads take up to 20 digits; 0 (as some ET Open
    // rules write) reads every digit present, up to 20.
    let (min, max) = if matches!(enc, ByteEncoding::String(_)) {
        (0, 20)
    } else {
        (1, 8)
    };
    if n < min || n > max {
        return invalid(kw, format!("cannot read {n} bytes"));
    }
    Ok(n)
}

fn parse_byte_test(v: &str, vars: &[(String, BufferKind)]) -> PResult<ByteTest> {
    let kw = "byte_test";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, op, value, offset, rest @ ..] = parts.as_slice() else {
        return syntax(kw, "expected nbytes,op,value,offset[,options]");
    };
    let (negated, op_s) = match op.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, *op),
    };
    let op = match op_s {
        "<" => ByteOp::Lt,
        ">" => ByteOp::Gt,
        "=" => ByteOp::Eq,
        "" if negated => ByteOp::Eq,
        "<=" => ByteOp::Le,
        ">=" => ByteOp::Ge,
        "&" => ByteOp::And,
        "^" => ByteOp::Xor,
        _ => return syntax(kw, format!("unknown operator `{op}`")),
    };
    let (encoding, relative, bitmask) = encoding_opts(kw, rest.iter().copied(), |_| Ok(false))?;
    Ok(ByteTest {
        nbytes: var_or(lookup_var(kw, n, vars)?, || nbytes(kw, n, encoding))?,
        op,
        negated,
        value: var_or(lookup_var(kw, value, vars)?, || parse_num_value(kw, value))?,
        offset: var_or(lookup_var(kw, offset, vars)?, || parse_offset(kw, offset))?,
        relative,
        encoding,
        bitmask,
    })
}

fn parse_byte_jump(v: &str, vars: &[(String, BufferKind)]) -> PResult<ByteJump> {
    let kw = "byte_jump";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, offset, rest @ ..] = parts.as_slice() else {
        return syntax(kw, "expected nbytes,offset[,options]");
    };
    let mut multiplier = 1u64;
    let mut align = false;
    let mut from_beginning = false;
    let mut from_end = false;
    let mut post_offset = 0i32;
    let (encoding, relative, bitmask) = encoding_opts(kw, rest.iter().copied(), |o| {
        if o == "align" {
            align = true;
        } else if o == "from_beginning" {
            from_beginning = true;
        } else if o == "from_end" {
            from_end = true;
        } else if let Some(m) = o.strip_prefix("multiplier") {
            multiplier = parse_num_value(kw, m)?;
        } else if let Some(p) = o.strip_prefix("post_offset") {
            post_offset = parse_offset(kw, p)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    })?;
    if from_beginning && from_end {
        return invalid(kw, "from_beginning and from_end together");
    }
    Ok(ByteJump {
        nbytes: var_or(lookup_var(kw, n, vars)?, || nbytes(kw, n, encoding))?,
        offset: var_or(lookup_var(kw, offset, vars)?, || parse_offset(kw, offset))?,
        relative,
        encoding,
        multiplier,
        align,
        from_beginning,
        from_end,
        post_offset,
        bitmask,
    })
}

/// `byte_extract:nbytes,offset,name[,relative][,multiplier N][,big|little][,string[,hex|dec|oct]]
/// [,align 2|4]`: the step (storing into `slot`) and the variable's name.
fn parse_byte_extract(v: &str, slot: usize) -> PResult<(ByteExtract, String)> {
    let kw = "byte_extract";
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    let [n, offset, name, rest @ ..] = parts.as_slice() else {
        return syntax(kw, "expected nbytes,offset,name[,options]");
    };
    if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return syntax(kw, format!("bad variable name `{name}`"));
    }
    let mut multiplier = 1u64;
    let mut align = 0u8;
    let mut base_named = false;
    let (encoding, relative, bitmask) = encoding_opts(kw, rest.iter().copied(), |o| {
        if let Some(m) = o.strip_prefix("multiplier") {
            multiplier = parse_num_value(kw, m)?;
            if !(1..=65535).contains(&multiplier) {
                return invalid(kw, "multiplier must be 1..=65535");
            }
        } else if let Some(a) = o.strip_prefix("align") {
            align = match a.trim() {
                "2" => 2,
                "4" => 4,
                other => return invalid(kw, format!("align `{other}` (2 or 4)")),
            };
        } else {
            return Ok(false);
        }
        Ok(true)
    })?;
    for o in rest {
        base_named |= matches!(*o, "hex" | "dec" | "oct");
    }
    if bitmask.is_some() {
        return syntax(kw, "unknown option `bitmask`");
    }
    if base_named && !matches!(encoding, ByteEncoding::String(_)) {
        return invalid(kw, "a base needs `string`");
    }
    let nbytes: u8 = parse_int(kw, Some(n))?;
    let max = match encoding {
        ByteEncoding::String(8) => 23,
        ByteEncoding::String(16) => 14,
        ByteEncoding::String(_) => 20,
        _ => 8,
    };
    if nbytes == 0 || nbytes > max {
        return invalid(kw, format!("cannot read {nbytes} bytes (1..={max})"));
    }
    let offset = parse_offset(kw, offset)?;
    let slot = u8::try_from(slot).map_err(|_| {
        (
            kw.to_owned(),
            RuleErrorKind::Invalid("too many variables".into()),
        )
    })?;
    Ok((
        ByteExtract {
            nbytes,
            offset,
            relative,
            encoding,
            multiplier,
            align,
            slot,
        },
        (*name).to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Rule, RuleError> {
        let vars = Vars::default();
        let classes = Classifications::default();
        let mut flowbits = HashMap::new();
        let mut ctx = ParseCtx {
            vars: &vars,
            classes: &classes,
            flowbits: &mut flowbits,
        };
        parse_rule(text, 1, &mut ctx)
    }

    fn pcre_of(r: &Rule) -> (BufferKind, &Pcre) {
        r.chains
            .iter()
            .find_map(|c| {
                c.steps.iter().find_map(|s| match s {
                    Step::Pcre(p) => Some((c.buffer, p.as_ref())),
                    _ => None,
                })
            })
            .expect("a pcre step")
    }

    // `pcre` with and without quotes, negated or not: the same expression and buffer.
    #[test]
    fn pcre_quotes_optional() {
        for (v, negated) in [
            ("/one/U", false),
            ("\"/one/U\"", false),
            ("!/one/U", true),
            ("!\"/one/U\"", true),
        ] {
            let r = parse(&format!("alert tcp any any -> any any (pcre:{v}; sid:1;)")).unwrap();
            let (buf, p) = pcre_of(&r);
            assert_eq!(buf, BufferKind::HttpUri, "{v}");
            assert_eq!(p.negated, negated, "{v}");
            let re = p.regex.get().unwrap();
            assert!(re.is_match(b"/one"));
            assert!(!re.is_match(b"/on"));
        }
        assert!(parse("alert tcp any any -> any any (pcre:one; sid:1;)").is_err());
    }
}
