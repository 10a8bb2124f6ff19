//! HTTP/1.x request parsing and the normalizations behind the sticky buffers.
//! Pure functions: no state, no logging, no panics on any input.
//!
//! The request line is parsed by hand ([`parse_request_line`]) because httparse is strict where
//! libhtp, whose behaviour rules are written against, is tolerant: a space inside the target
//! (`GET /a b HTTP/1.1`) is an error to httparse and part of the URI to libhtp, and httparse
//! cannot hand out the request line before the whole head has arrived. Headers are httparse's
//! ([`httparse::parse_headers`]).
//!
//! # Normalization (documented, deliberately small)
//! - `http.uri` ([`normalize_uri`]): the path and query only (an absolute-form URI
//!   `http://host/p` gives `/p`, as libhtp does for proxy requests); every valid `%XX` escape is
//!   decoded (invalid ones are kept as they are); then `.` and `..` segments of the path are
//!   removed (RFC 3986 section 5.2.4). `+` is not turned into a space; `%u` escapes are not
//!   decoded; repeated slashes are kept.
//! - `http.host` ([`normalize_host`]): from the absolute-form URI's authority if there is one,
//!   else from the Host header; ASCII-lowercased, the port and a trailing dot removed, IPv6
//!   brackets kept. `http.host.raw` is the value as sent.
//! - `http.header`: every header except Cookie, in order, as `Name: value\r\n`, with trailing
//!   spaces and tabs of the value removed (Suricata excludes Cookie from `http.header` and offers
//!   it as `http.cookie`).

/// Whitespace bytes that may follow a request line without a protocol in the same chunk of data
/// and leave it a whole HTTP/0.9 request (libhtp's `HTTP09_MAX_JUNK_LEN`): more, or anything
/// else, means the protocol was missing and header lines follow ([`is_http09`]).
pub const HTTP09_MAX_JUNK_LEN: usize = 16;

/// Headers per request the parser accepts. libhtp has no fixed cap; 128 is far above what
/// clients send (browsers send under 30) and keeps httparse's header array on the stack (4 KiB).
pub const MAX_HEADERS: usize = 128;

/// A parsed request: owned buffers, ready for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Method token.
    pub method: Vec<u8>,
    /// Request target as on the wire.
    pub uri_raw: Vec<u8>,
    /// Normalized URI.
    pub uri: Vec<u8>,
    /// Protocol token as sent ("HTTP/1.1"); empty for HTTP/0.9.
    pub protocol: Vec<u8>,
    /// Normalized host.
    pub host: Option<Vec<u8>>,
    /// Host as sent (absolute-URI authority or Host header value).
    pub host_raw: Option<Vec<u8>>,
    /// User-Agent value.
    pub user_agent: Option<Vec<u8>>,
    /// Header block without Cookie.
    pub header: Vec<u8>,
    /// Cookie value(s), joined by "; " when several Cookie headers were sent.
    pub cookie: Option<Vec<u8>>,
    /// Connection header value (the first one).
    pub connection: Option<Vec<u8>>,
    /// The head is complete: the header buffers are known (before, only the request line is).
    pub headers_done: bool,
    /// The request has a body (Content-Length > 0 or chunked).
    pub has_body: bool,
    /// The body collected so far (de-chunked), at most
    /// [`super::state::REQUEST_BODY_LIMIT`] bytes.
    pub body: Vec<u8>,
    /// The body ended (or there is none).
    pub body_done: bool,
    /// The server's response to this request, once its head arrived.
    pub response: Option<Box<super::response::Response>>,
    /// `http.request_line`: the request line as sent, without its line end.
    pub line: Vec<u8>,
    /// The fields every head has (`http.header_names`, `http.start`, single headers).
    pub fields: HeadFields,
    /// `frame:http1.request`: the request head as it was in the stream (line, headers, the
    /// empty line), one piece per contiguous run of stream bytes (a gap inside the head
    /// splits it; each piece is inspected alone, as Suricata inspects a frame's stream data).
    /// Empty until the head is complete.
    pub frame: Vec<Vec<u8>>,
}

/// Buffers of a request or response head besides the ones each side has alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadFields {
    /// `http.header_names`: `\r\n`, each header name followed by `\r\n`, then `\r\n`.
    pub header_names: Vec<u8>,
    /// `http.start`: the first line and every header as sent (`Name: value\r\n`), then
    /// `\r\n`.
    pub start: Vec<u8>,
    /// `http.content_type`.
    pub content_type: Option<Vec<u8>>,
    /// `http.content_len`.
    pub content_len: Option<Vec<u8>>,
    /// `http.referer` (requests).
    pub referer: Option<Vec<u8>>,
    /// `http.accept` (requests).
    pub accept: Option<Vec<u8>>,
    /// `http.accept_enc` (requests).
    pub accept_enc: Option<Vec<u8>>,
    /// `http.accept_lang` (requests).
    pub accept_lang: Option<Vec<u8>>,
    /// `http.header.raw`: the header lines as received (line ends and the empty line that
    /// ends the head included, Cookie included), the first line excluded.
    pub raw: Vec<u8>,
    /// `http.request_header` / `http.response_header` ([`Self::header`]): where each header's
    /// `Name: value` line lies in `start` (which holds exactly those bytes), in order. Ranges,
    /// not copies: no ET Open rule reads these buffers, and a copy of every header of every
    /// head was an allocation each.
    headers: Vec<(u32, u32)>,
}

impl HeadFields {
    /// Instance `n` of `http.request_header` / `http.response_header`: the `n`th header as
    /// `Name: value` (value trimmed).
    pub fn header(&self, n: usize) -> Option<&[u8]> {
        let &(from, to) = self.headers.get(n)?;
        self.start.get(from as usize..to as usize)
    }

    /// Build from the first line (without its end), the headers, and the bytes the header
    /// lines took on the wire (`raw`).
    pub fn new(line: &[u8], headers: &[httparse::Header<'_>], raw: &[u8]) -> HeadFields {
        // Sized once: growing `start` and `header_names` header by header reallocated them.
        let names: usize = headers.iter().map(|h| h.name.len() + 2).sum();
        let values: usize = headers.iter().map(|h| h.value.len() + 2).sum();
        let mut header_names = Vec::with_capacity(names + 4);
        header_names.extend_from_slice(b"\r\n");
        let mut start = Vec::with_capacity(line.len() + names + values + 4);
        start.extend_from_slice(line);
        let mut f = HeadFields {
            header_names,
            start,
            raw: raw.to_vec(),
            headers: Vec::with_capacity(headers.len()),
            ..HeadFields::default()
        };
        f.start.extend_from_slice(b"\r\n");
        for h in headers {
            let value = trim(h.value);
            f.header_names.extend_from_slice(h.name.as_bytes());
            f.header_names.extend_from_slice(b"\r\n");
            let from = f.start.len();
            f.start.extend_from_slice(h.name.as_bytes());
            f.start.extend_from_slice(b": ");
            f.start.extend_from_slice(value);
            // Heads are capped at `state::MAX_HEADER_BYTES`: never past 4 GiB.
            if let (Ok(from), Ok(to)) = (u32::try_from(from), u32::try_from(f.start.len())) {
                f.headers.push((from, to));
            }
            f.start.extend_from_slice(b"\r\n");
            // Compared in place: a lowercase copy of each name was an allocation a header.
            let is = |n: &str| h.name.eq_ignore_ascii_case(n);
            let slot = if is("content-type") {
                &mut f.content_type
            } else if is("content-length") {
                &mut f.content_len
            } else if is("referer") {
                &mut f.referer
            } else if is("accept") {
                &mut f.accept
            } else if is("accept-encoding") {
                &mut f.accept_enc
            } else if is("accept-language") {
                &mut f.accept_lang
            } else {
                continue;
            };
            slot.get_or_insert_with(|| value.to_vec());
        }
        f.header_names.extend_from_slice(b"\r\n");
        f.start.extend_from_slice(b"\r\n");
        f
    }
}

/// How the request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// Content-Length bytes.
    Length(u64),
    /// Transfer-Encoding: chunked.
    Chunked,
}

/// A complete request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Bytes the request line and headers took (including the empty line).
    pub len: usize,
    /// The request.
    pub request: Request,
    /// Its body framing.
    pub body: Body,
    /// Content-Length was unparseable or conflicting (the body is taken as empty).
    pub bad_content_length: bool,
}

/// Why a request head cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// More than [`MAX_HEADERS`] headers.
    #[error("http: too many headers")]
    TooManyHeaders,
    /// Request line or headers malformed.
    #[error("http: malformed request")]
    Malformed,
}

/// A parsed request line (`method SP target SP protocol`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// Bytes the line took, its line ending included.
    pub len: usize,
    /// Method token.
    pub method: &'a [u8],
    /// Request target, spaces inside it kept.
    pub target: &'a [u8],
    /// Protocol token (`HTTP/1.1`); `None` when the line has none: an HTTP/0.9 request
    /// (`GET /`), which has no headers, or a request whose protocol is missing, whose headers
    /// follow ([`is_http09`] tells them apart).
    pub protocol: Option<&'a [u8]>,
    /// The whole line as sent, without its line end.
    pub line: &'a [u8],
}

/// RFC 9110 `tchar`: the bytes a method token may hold.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parse the request line at the start of `buf`, tolerantly as libhtp does: the protocol is the
/// last space-separated token when it starts with `HTTP/`, the target is everything between the
/// method and it (so `GET /a b HTTP/1.1` has the target `/a b`, which httparse rejects), runs of
/// spaces or tabs separate, a bare LF ends the line. `Ok(None)`: no line end yet. Control bytes
/// in the line, a method that is not a token, or no target are [`ParseError::Malformed`].
pub fn parse_request_line(buf: &[u8]) -> Result<Option<RequestLine<'_>>, ParseError> {
    let Some(nl) = memchr::memchr(b'\n', buf) else {
        return Ok(None);
    };
    let line = buf.get(..nl).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Request lines can be kilobytes long (a URL with its query): the checks below read them
    // a vector at a time (a fold without an early exit, and memchr), not a byte at a time.
    if line
        .iter()
        .fold(false, |bad, b| bad | (b.is_ascii_control() & (*b != b'\t')))
    {
        return Err(ParseError::Malformed);
    }
    let m_end = memchr::memchr2(b' ', b'\t', line).unwrap_or(line.len());
    let (method, rest) = line.split_at(m_end);
    if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) {
        return Err(ParseError::Malformed);
    }
    let rest = trim(rest);
    if rest.is_empty() {
        return Err(ParseError::Malformed);
    }
    let (target, protocol) = match memchr::memrchr2(b' ', b'\t', rest) {
        Some(i) => {
            let proto = rest.get(i.saturating_add(1)..).unwrap_or_default();
            if proto.starts_with(b"HTTP/") {
                (trim(rest.get(..i).unwrap_or_default()), Some(proto))
            } else {
                (rest, None)
            }
        }
        None => (rest, None),
    };
    Ok(Some(RequestLine {
        len: nl.saturating_add(1),
        method,
        target,
        protocol,
        line,
    }))
}

/// Whether a request line without a protocol is a whole HTTP/0.9 request, as libhtp decides
/// (`REQ_PROTOCOL`): it is when `after`, the bytes that arrived with the line past its line end,
/// hold nothing but at most [`HTTP09_MAX_JUNK_LEN`] whitespace bytes (none, when the line ended
/// its chunk of data). Otherwise the protocol is missing (libhtp's "Request line: missing
/// protocol"), and the lines that follow are the request's headers: `GET /\r\nHost: a\r\n\r\n` is
/// one request with a Host header, not an HTTP/0.9 request followed by garbage.
pub fn is_http09(after: &[u8]) -> bool {
    let space = after
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c))
        .count();
    space == after.len() && space <= HTTP09_MAX_JUNK_LEN
}

impl Request {
    /// The transaction as known once its request line is parsed: method, URI and protocol; the
    /// header buffers are absent until [`Request::headers_done`].
    pub fn from_line(l: &RequestLine<'_>) -> Request {
        let (authority, _) = split_absolute(l.target);
        Request {
            method: l.method.to_vec(),
            uri_raw: l.target.to_vec(),
            uri: normalize_uri(l.target),
            protocol: l.protocol.unwrap_or_default().to_vec(),
            host: authority.map(normalize_host),
            host_raw: authority.map(<[u8]>::to_vec),
            user_agent: None,
            header: Vec::new(),
            cookie: None,
            connection: None,
            headers_done: false,
            has_body: false,
            body: Vec::new(),
            body_done: false,
            response: None,
            line: l.line.to_vec(),
            fields: HeadFields::default(),
            frame: Vec::new(),
        }
    }
}

/// Parse one request head at the start of `buf`: the request line ([`parse_request_line`]),
/// then the headers (httparse) up to the empty line. An HTTP/0.9 request line is a whole head;
/// a line without a protocol followed by more than whitespace in `buf` has headers
/// ([`is_http09`]). `Ok(None)`: incomplete, more bytes needed.
pub fn parse_request(buf: &[u8]) -> Result<Option<Parsed>, ParseError> {
    let Some(line) = parse_request_line(buf)? else {
        return Ok(None);
    };
    let mut request = Request::from_line(&line);
    request.headers_done = true;
    if line.protocol.is_none() && is_http09(buf.get(line.len..).unwrap_or_default()) {
        request.body_done = true;
        return Ok(Some(Parsed {
            len: line.len,
            request,
            body: Body::None,
            bad_content_length: false,
        }));
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let rest = buf.get(line.len..).unwrap_or_default();
    let (hlen, hdrs) = match httparse::parse_headers(rest, &mut headers) {
        Ok(httparse::Status::Complete(c)) => c,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(_) => return Err(ParseError::Malformed),
    };
    let (authority, _) = split_absolute(line.target);

    let mut header = Vec::new();
    let mut host_header: Option<&[u8]> = None;
    let mut cookie: Option<Vec<u8>> = None;
    let mut content_length: Option<u64> = None;
    let mut bad_content_length = false;
    let mut chunked = false;
    for h in hdrs.iter() {
        let value = trim_trailing(h.value);
        let name = h.name.as_bytes();
        if h.name.eq_ignore_ascii_case("cookie") {
            let c = cookie.get_or_insert_with(Vec::new);
            if !c.is_empty() {
                c.extend_from_slice(b"; ");
            }
            c.extend_from_slice(value);
            continue;
        }
        header.extend_from_slice(name);
        header.extend_from_slice(b": ");
        header.extend_from_slice(value);
        header.extend_from_slice(b"\r\n");
        if h.name.eq_ignore_ascii_case("host") {
            host_header.get_or_insert(value);
        } else if h.name.eq_ignore_ascii_case("user-agent") {
            request.user_agent.get_or_insert_with(|| value.to_vec());
        } else if h.name.eq_ignore_ascii_case("connection") {
            request.connection.get_or_insert_with(|| value.to_vec());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            match parse_content_length(value) {
                Some(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                _ => bad_content_length = true,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides the framing (RFC 9112 section 6.3).
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        }
    }
    let body = if chunked {
        Body::Chunked
    } else if bad_content_length {
        Body::None
    } else {
        match content_length {
            Some(0) | None => Body::None,
            Some(n) => Body::Length(n),
        }
    };
    request.fields = HeadFields::new(line.line, hdrs, rest.get(..hlen).unwrap_or_default());
    let host_raw = authority.or(host_header);
    request.host = host_raw.map(normalize_host);
    request.host_raw = host_raw.map(<[u8]>::to_vec);
    request.header = header;
    request.cookie = cookie;
    request.has_body = body != Body::None;
    request.body_done = !request.has_body;
    Ok(Some(Parsed {
        len: line.len.saturating_add(hlen),
        request,
        body,
        bad_content_length,
    }))
}

pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

pub fn trim_trailing(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |i| i.saturating_add(1));
    v.get(..end).unwrap_or_default()
}

pub fn trim(v: &[u8]) -> &[u8] {
    let v = trim_trailing(v);
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    v.get(start..).unwrap_or_default()
}

/// For an absolute-form target (`scheme://authority/path?q`): the authority and the rest
/// (`/path?q`, or `/` when empty). Otherwise `(None, target)`.
pub fn split_absolute(target: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some(i) = memchr::memmem::find(target, b"://") else {
        return (None, target);
    };
    let scheme = target.get(..i).unwrap_or_default();
    if scheme.is_empty()
        || !scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b))
    {
        return (None, target);
    }
    let after = target.get(i.saturating_add(3)..).unwrap_or_default();
    let end = after
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    let (auth, rest) = after.split_at(end);
    // Userinfo is not part of the host.
    let auth = match auth.iter().rposition(|b| *b == b'@') {
        Some(at) => auth.get(at.saturating_add(1)..).unwrap_or_default(),
        None => auth,
    };
    (Some(auth), if rest.is_empty() { b"/" } else { rest })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode every valid `%XX`; keep invalid escapes as they are.
pub fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0usize;
    while let Some(&b) = s.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i.saturating_add(1)).copied().and_then(hex),
                s.get(i.saturating_add(2)).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i = i.saturating_add(3);
            continue;
        }
        out.push(b);
        i = i.saturating_add(1);
    }
    out
}

/// RFC 3986 section 5.2.4 on a path.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let absolute = path.first() == Some(&b'/');
    let mut segs: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    if absolute && !segs.is_empty() {
        segs.remove(0);
    }
    let n = segs.len();
    let mut out: Vec<&[u8]> = Vec::with_capacity(n);
    for (i, seg) in segs.into_iter().enumerate() {
        let last = i.saturating_add(1) == n;
        match seg {
            b"." => {}
            b".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        // A trailing "." or ".." leaves a directory: keep the trailing slash.
        if last {
            out.push(b"");
        }
    }
    let mut res = Vec::with_capacity(path.len());
    for (i, seg) in out.iter().enumerate() {
        if absolute || i > 0 {
            res.push(b'/');
        }
        res.extend_from_slice(seg);
    }
    if res.is_empty() && absolute {
        res.push(b'/');
    }
    res
}

/// The `http.uri` normalization (see the module doc).
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let (_, target) = split_absolute(raw);
    let decoded = percent_decode(target);
    let q = decoded
        .iter()
        .position(|b| *b == b'?')
        .unwrap_or(decoded.len());
    let (path, query) = decoded.split_at(q);
    let mut out = remove_dot_segments(path);
    out.extend_from_slice(query);
    out
}

/// The `http.host` normalization (see the module doc).
pub fn normalize_host(raw: &[u8]) -> Vec<u8> {
    let v = trim(raw);
    let host = if v.first() == Some(&b'[') {
        // IPv6 literal: keep the brackets, drop what follows.
        match v.iter().position(|b| *b == b']') {
            Some(i) => v.get(..=i).unwrap_or(v),
            None => v,
        }
    } else {
        match v.iter().position(|b| *b == b':') {
            // One colon is host:port; more (a bare IPv6 address) have no port to strip.
            Some(i)
                if !v
                    .get(i.saturating_add(1)..)
                    .unwrap_or_default()
                    .contains(&b':') =>
            {
                v.get(..i).unwrap_or(v)
            }
            _ => v,
        }
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_get() {
        let raw = b"GET /index.html HTTP/1.1\r\nHost: Example.COM:8080\r\nUser-Agent: curl/8\r\nCookie: a=b\r\nAccept: */*  \r\n\r\n";
        let p = parse_request(raw).unwrap().unwrap();
        assert_eq!(p.len, raw.len());
        let r = p.request;
        assert_eq!(r.method, b"GET");
        assert_eq!(r.uri, b"/index.html");
        assert_eq!(r.protocol, b"HTTP/1.1");
        assert_eq!(r.host.as_deref(), Some(&b"example.com"[..]));
        assert_eq!(r.host_raw.as_deref(), Some(&b"Example.COM:8080"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"curl/8"[..]));
        assert_eq!(r.cookie.as_deref(), Some(&b"a=b"[..]));
        assert_eq!(
            r.header,
            b"Host: Example.COM:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\n"
        );
        // `http.header.raw`: the header lines as sent, Cookie and trailing blanks kept.
        assert_eq!(
            r.fields.raw,
            b"Host: Example.COM:8080\r\nUser-Agent: curl/8\r\nCookie: a=b\r\nAccept: */*  \r\n\r\n"
        );
        // `http.request_header`: one buffer a header, the value trimmed.
        let each: Vec<&[u8]> = (0..).map_while(|n| r.fields.header(n)).collect();
        assert_eq!(
            each,
            [
                &b"Host: Example.COM:8080"[..],
                b"User-Agent: curl/8",
                b"Cookie: a=b",
                b"Accept: */*"
            ]
        );
        assert_eq!(p.body, Body::None);
    }

    #[test]
    fn partial_and_malformed() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a"), Ok(None));
        // An unknown version is kept as sent (libhtp flags it, still parses the request).
        let p = parse_request(b"GET / HTTP/9.9\r\n\r\n").unwrap().unwrap();
        assert_eq!(p.request.protocol, b"HTTP/9.9");
        assert_eq!(parse_request(b"GET\r\n\r\n"), Err(ParseError::Malformed));
        assert_eq!(
            parse_request(b"G(T / HTTP/1.1\r\n\r\n"),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_request(b"G\x01T / HTTP/1.1\r\n\r\n"),
            Err(ParseError::Malformed)
        );
    }

    // A request line without a protocol: HTTP/0.9 when at most a little whitespace came with
    // it, else the protocol is missing and the lines after it are the request's headers, as
    // libhtp parses suricata-verify's `http-missing-protocol`.
    #[test]
    fn missing_protocol() {
        let raw = b"GET /gen.php?x=1\r\nHost: 5.8.88.25\r\nUser-Agent:Mozilla/5.0\r\n\r\n";
        let p = parse_request(raw).unwrap().unwrap();
        assert_eq!(p.len, raw.len());
        let r = p.request;
        assert_eq!(r.protocol, b"");
        assert_eq!(r.uri, b"/gen.php?x=1");
        assert_eq!(r.host.as_deref(), Some(&b"5.8.88.25"[..]));
        assert_eq!(r.user_agent.as_deref(), Some(&b"Mozilla/5.0"[..]));
        assert_eq!(r.fields.header_names, b"\r\nHost\r\nUser-Agent\r\n\r\n");
        // HTTP/0.9: the line alone, or followed by at most 16 whitespace bytes.
        for after in [&b""[..], b"\r\n", &[b' '; 16]] {
            let raw = [&b"GET /old\r\n"[..], after].concat();
            let p = parse_request(&raw).unwrap().unwrap();
            assert_eq!(p.len, 10);
            assert!(p.request.fields.header_names.is_empty());
        }
        assert!(is_http09(b" \t\r\n\x0b\x0c"));
        assert!(!is_http09(&[b' '; 17]));
        assert!(!is_http09(b"\r\nX"));
    }

    #[test]
    fn body_framing() {
        let p = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.body, Body::Length(12));
        let p = parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.body, Body::Chunked);
        let p = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(p.bad_content_length);
        assert_eq!(p.body, Body::None);
    }

    #[test]
    fn uri_normalization() {
        assert_eq!(normalize_uri(b"/a/./b/../c%2Ed?x=%41%zz"), b"/a/c.d?x=A%zz");
        assert_eq!(normalize_uri(b"/a/b/.."), b"/a/");
        assert_eq!(normalize_uri(b"/../../etc/passwd"), b"/etc/passwd");
        assert_eq!(normalize_uri(b"http://h.example:81/p?q"), b"/p?q");
        assert_eq!(normalize_uri(b"http://h.example"), b"/");
        assert_eq!(normalize_uri(b"*"), b"*");
        assert_eq!(normalize_uri(b"%"), b"%");
    }

    #[test]
    fn host_normalization() {
        assert_eq!(normalize_host(b"WWW.Example.com:443"), b"www.example.com");
        assert_eq!(normalize_host(b"example.com."), b"example.com");
        assert_eq!(normalize_host(b"[::1]:80"), b"[::1]");
        assert_eq!(normalize_host(b"::1"), b"::1");
        let p =
            parse_request(b"GET http://user@Proxy.Example:3128/x HTTP/1.1\r\nHost: other\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(p.request.host.as_deref(), Some(&b"proxy.example"[..]));
        assert_eq!(p.request.uri, b"/x");
    }

    #[test]
    fn request_line_tolerance() {
        let l = parse_request_line(b"GET  /a b\tc   HTTP/1.1\r\nHost")
            .unwrap()
            .unwrap();
        assert_eq!(l.method, b"GET");
        assert_eq!(l.target, b"/a b\tc");
        assert_eq!(l.protocol, Some(&b"HTTP/1.1"[..]));
        assert_eq!(l.len, b"GET  /a b\tc   HTTP/1.1\r\n".len());
        let l = parse_request_line(b"GET /x\n").unwrap().unwrap();
        assert_eq!((l.target, l.protocol), (&b"/x"[..], None));
        let l = parse_request_line(b"GET /x y\n").unwrap().unwrap();
        assert_eq!((l.target, l.protocol), (&b"/x y"[..], None));
        assert_eq!(parse_request_line(b"GET /x HTTP/1.1"), Ok(None));
        assert_eq!(
            parse_request_line(b" GET / HTTP/1.1\r\n"),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_request_line(b"GET /\0 HTTP/1.1\r\n"),
            Err(ParseError::Malformed)
        );
        // The full head: line, headers (httparse), body framing.
        let p = parse_request(b"GET /uri afterspace HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(p.request.uri, b"/uri afterspace");
        assert_eq!(p.request.connection.as_deref(), Some(&b"Keep-Alive"[..]));
        assert!(p.request.headers_done && p.request.body_done && !p.request.has_body);
    }

    proptest::proptest! {
        // Any method token, target without CR/LF/controls and version round-trip through the
        // request line parser; the target keeps its inner spaces.
        #[test]
        fn request_line_roundtrip(
            method in "[A-Z]{1,10}",
            target in "/[ -~]{0,40}[!-~]",
            minor in 0u8..10,
        ) {
            let line = format!("{method} {target} HTTP/1.{minor}\r\n");
            let l = parse_request_line(line.as_bytes()).unwrap().unwrap();
            proptest::prop_assert_eq!(l.len, line.len());
            proptest::prop_assert_eq!(l.method, method.as_bytes());
            let want = format!("HTTP/1.{minor}");
            proptest::prop_assert_eq!(l.protocol, Some(want.as_bytes()));
            proptest::prop_assert_eq!(l.target, target.trim_end().as_bytes());
        }

        // Arbitrary bytes: no panic; a parsed line never holds a line break.
        #[test]
        fn request_line_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Ok(Some(l)) = parse_request_line(&data) {
                proptest::prop_assert!(l.len <= data.len());
                proptest::prop_assert!(!l.target.contains(&b'\n') && !l.method.is_empty());
            }
            let _ = parse_request(&data);
        }

        // Each `http.request_header` instance is its header as `Name: value` (value trimmed),
        // read out of `start`, and `start` and `header_names` hold every header in order; the
        // single-header fields take the first of their name, whatever its case.
        #[test]
        fn head_fields_each_header(
            heads in proptest::collection::vec(
                ("(?i)(content-type|accept|x-[a-z]{0,6})", "[ -~]{0,12}"), 0..8),
            line in "[ -~]{0,20}",
        ) {
            let hs: Vec<httparse::Header<'_>> = heads
                .iter()
                .map(|(n, v)| httparse::Header { name: n, value: v.as_bytes() })
                .collect();
            let f = HeadFields::new(line.as_bytes(), &hs, b"");
            let one = |(n, v): &(String, String)| {
                [n.as_bytes(), b": ", trim(v.as_bytes())].concat()
            };
            let each: Vec<Vec<u8>> = heads.iter().map(one).collect();
            let got: Vec<Vec<u8>> =
                (0..).map_while(|n| f.header(n)).map(<[u8]>::to_vec).collect();
            proptest::prop_assert_eq!(&got, &each);
            let mut start = [line.as_bytes(), b"\r\n"].concat();
            let mut names = b"\r\n".to_vec();
            for ((n, _), e) in heads.iter().zip(&each) {
                start.extend_from_slice(e);
                start.extend_from_slice(b"\r\n");
                names.extend_from_slice(n.as_bytes());
                names.extend_from_slice(b"\r\n");
            }
            start.extend_from_slice(b"\r\n");
            names.extend_from_slice(b"\r\n");
            proptest::prop_assert_eq!(&f.start, &start);
            proptest::prop_assert_eq!(&f.header_names, &names);
            let first = |name: &str| {
                heads
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| trim(v.as_bytes()).to_vec())
            };
            proptest::prop_assert_eq!(f.content_type, first("content-type"));
            proptest::prop_assert_eq!(f.accept, first("accept"));
        }
    }
}
