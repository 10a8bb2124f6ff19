//! An HTTP/1 request head as the web address scan needs it, borrowed from the bytes: method,
//! target, the host (the absolute-form target's authority, else the first `Host` header) and
//! how the request's body is framed.
//!
//! [`crate::app::http::parser::parse_request`] builds a whole transaction for the rules (owned
//! buffers, the normalised URI and host, the header block, the cookie, a dozen more fields); the
//! scan reads none of them. This reader takes the same request line
//! ([`http::parse_request_line`]), reads the header block as httparse reads it
//! ([`scan_headers`]: the same lines accepted and refused, without an array of headers to fill)
//! and the framing headers by the same rules, so it accepts, refuses and frames exactly the
//! heads the full parser does (property tests here, `tests/web_readers.rs` over the shared
//! captures and the `web_flow` fuzz target hold the two equal), without allocating.

use crate::app::http::parser::{self as http, Body, MAX_HEADERS, ParseError};

/// What a request head says, borrowed from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// Bytes the request line and headers took (the empty line included).
    pub len: usize,
    /// Method token.
    pub method: &'a [u8],
    /// Request target as sent.
    pub target: &'a [u8],
    /// The absolute-form target's authority, else the first `Host` header's value (trailing
    /// spaces and tabs removed).
    pub host: Option<&'a [u8]>,
    /// The body's framing.
    pub body: Body,
    /// `Content-Length` unreadable or conflicting (the body is taken as empty).
    pub bad_content_length: bool,
    /// The first `Connection` header names `upgrade`.
    pub upgrade: bool,
}

/// Read one request head at the start of `buf`; `Ok(None)` when it is not complete yet.
pub fn read_head(buf: &[u8]) -> Result<Option<Head<'_>>, ParseError> {
    let Some(line) = http::parse_request_line(buf)? else {
        return Ok(None);
    };
    // An origin-form target (`/...`, nearly every request) has no authority: its "scheme"
    // would start with `/`, which `split_absolute` refuses, so the search for `://` (a
    // substring searcher set up for each call) is not made for it.
    let authority = match line.target.first() {
        Some(b'/') => None,
        _ => http::split_absolute(line.target).0,
    };
    let mut head = Head {
        len: line.len,
        method: line.method,
        target: line.target,
        host: authority,
        body: Body::None,
        bad_content_length: false,
        upgrade: false,
    };
    let rest = buf.get(line.len..).unwrap_or_default();
    // HTTP/0.9: the request line is the whole head. A line without a protocol followed by more
    // than whitespace has headers (the protocol is missing), as the full parser reads it.
    if line.protocol.is_none() && http::is_http09(rest) {
        return Ok(Some(head));
    }
    let mut host_header = None;
    let mut connection = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let hlen = match scan_headers(rest, |name, value| {
        // Only the four names the scan needs are compared, by length first.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                host_header.get_or_insert(value);
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                connection.get_or_insert(value);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                match http::parse_content_length(value) {
                    Some(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                    _ => head.bad_content_length = true,
                }
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                // The last coding decides the framing (RFC 9112 section 6.3).
                chunked = value
                    .rsplit(|b| *b == b',')
                    .next()
                    .is_some_and(|last| http::trim(last).eq_ignore_ascii_case(b"chunked"));
            }
            _ => {}
        }
    })? {
        Some(n) => n,
        None => return Ok(None),
    };
    head.body = if chunked {
        Body::Chunked
    } else if head.bad_content_length {
        Body::None
    } else {
        match content_length {
            Some(0) | None => Body::None,
            Some(n) => Body::Length(n),
        }
    };
    head.host = authority.or(host_header);
    head.upgrade = connection.is_some_and(|c| {
        c.split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    });
    head.len = line.len.saturating_add(hlen);
    Ok(Some(head))
}

/// RFC 9110 `tchar`, the bytes of a header name (httparse's header name token).
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// [`is_tchar`] as a table: names are read a byte at a time.
#[allow(clippy::indexing_slicing)] // i < 256, in a constant
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        // (i < 256: the cast is exact.)
        #[allow(clippy::cast_possible_truncation)]
        let b = i as u8;
        t[i] = is_tchar(b);
        i += 1;
    }
    t
};

/// Whether a header line holds a byte httparse refuses in a value: a control byte other than
/// tab (`\r` included: only the line's last one is its end, taken off before). A fold without an
/// early exit, so long values (cookies) are read a vector at a time.
fn has_control(v: &[u8]) -> bool {
    v.iter()
        .fold(false, |bad, b| bad | (b.is_ascii_control() & (*b != b'\t')))
}

/// Whether `name` is a header name: one or more [`is_tchar`] bytes.
fn is_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|b| TCHAR.get(usize::from(*b)) == Some(&true))
}

/// The header block at the start of `buf`, read as `httparse::parse_headers` reads a request's
/// headers (default settings: no space before the colon, no obsolete line folding, a bare LF
/// ends a line), without filling an array of headers: each header's name and value (leading
/// and trailing spaces and tabs removed) go to `each`, in order. `Ok(Some(n))`: the block and
/// its empty line took `n` bytes; `Ok(None)`: it is not complete, and no byte so far is one
/// httparse refuses; errors as the full parser maps httparse's ([`ParseError::TooManyHeaders`]
/// for a complete header past [`MAX_HEADERS`], any other refusal [`ParseError::Malformed`]).
///
/// httparse reads byte by byte, and what it accepts comes down to lines: a line (up to its LF,
/// one CR before the LF taken off) is empty, ending the block, or a header, `NAME:VALUE` where
/// NAME is one or more `tchar` and VALUE holds no control byte but tab. A line without its LF
/// yet is a header's beginning, or refused when a byte already shows it cannot be one. This
/// reads the lines by `memchr` and checks each whole, which gives the same answers (a property
/// test and the `web_flow` fuzz target hold this reader to the full parser).
pub fn scan_headers<'b>(
    buf: &'b [u8],
    mut each: impl FnMut(&'b [u8], &'b [u8]),
) -> Result<Option<usize>, ParseError> {
    let mut pos = 0usize;
    let mut count = 0usize;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return incomplete_line(rest);
        };
        pos = pos.saturating_add(nl).saturating_add(1);
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(Some(pos));
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(ParseError::Malformed);
        };
        let (name, value) = line.split_at(colon);
        let value = value.get(1..).unwrap_or_default();
        if !is_name(name) || has_control(value) {
            return Err(ParseError::Malformed);
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        each(name, http::trim(value));
    }
}

/// The last line of a header block that has no LF yet: `Ok(None)` while it can still become a
/// header or the empty line, else httparse's refusal.
fn incomplete_line(line: &[u8]) -> Result<Option<usize>, ParseError> {
    match line {
        [] | [b'\r'] => return Ok(None),
        // A CR not followed by LF (the LF would have ended the line).
        [b'\r', ..] => return Err(ParseError::Malformed),
        _ => {}
    }
    let name_len = line
        .iter()
        .position(|b| TCHAR.get(usize::from(*b)) != Some(&true))
        .unwrap_or(line.len());
    let Some(after) = line.get(name_len..).and_then(|r| r.split_first()) else {
        return Ok(None);
    };
    let (sep, value) = after;
    if name_len == 0 || *sep != b':' {
        return Err(ParseError::Malformed);
    }
    // A CR that is the last byte waits for its LF.
    let value = value.strip_suffix(b"\r").unwrap_or(value);
    if has_control(value) {
        return Err(ParseError::Malformed);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the two readers are compared on: bytes taken, method, target, host, framing, a bad
    /// length, upgrade.
    type Owned = (usize, Vec<u8>, Vec<u8>, Option<Vec<u8>>, Body, bool, bool);

    fn owned(h: Result<Option<Head<'_>>, ParseError>) -> Result<Option<Owned>, ParseError> {
        h.map(|h| {
            h.map(|h| {
                (
                    h.len,
                    h.method.to_vec(),
                    h.target.to_vec(),
                    h.host.map(<[u8]>::to_vec),
                    h.body,
                    h.bad_content_length,
                    h.upgrade,
                )
            })
        })
    }

    /// The full parser's answer in the same terms.
    fn full(buf: &[u8]) -> Result<Option<Owned>, ParseError> {
        let Some(p) = http::parse_request(buf)? else {
            return Ok(None);
        };
        let r = p.request;
        let upgrade = r.connection.as_deref().is_some_and(|c| {
            c.split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        });
        Ok(Some((
            p.len,
            r.method,
            r.uri_raw,
            r.host_raw,
            p.body,
            p.bad_content_length,
            upgrade,
        )))
    }

    #[test]
    fn heads_and_their_framing() {
        let h = read_head(b"GET http://u:p@Bad.Example:81/x HTTP/1.1\r\nHost: other \r\n\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(h.method, b"GET");
        assert_eq!(h.target, b"http://u:p@Bad.Example:81/x");
        assert_eq!(h.host, Some(&b"Bad.Example:81"[..]));
        assert_eq!(h.len, 58);
        let h = read_head(
            b"POST /up HTTP/1.1\r\nHost: a.example\t\r\nHost: b\r\nContent-Length: 12\r\n\
              Connection: keep-alive, Upgrade\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.host, Some(&b"a.example"[..]));
        assert_eq!(h.body, Body::Length(12));
        assert!(h.upgrade);
        let h = read_head(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.bad_content_length);
        assert_eq!(h.body, Body::None);
        let h = read_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, Body::Chunked);
        assert_eq!(read_head(b"GET / HTTP/1.1\r\nHost: a"), Ok(None));
        assert_eq!(
            read_head(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
            Err(ParseError::Malformed)
        );
        // A `://` later in an origin-form target is no authority.
        let h = read_head(b"GET /r?u=http://bad.example/ HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.host, Some(&b"a"[..]));
        let h09 = read_head(b"GET /old\r\n").unwrap().unwrap();
        assert_eq!((h09.target, h09.host, h09.len), (&b"/old"[..], None, 10));
        // A line without a protocol followed by more than whitespace has headers, as the full
        // parser (libhtp's rule) reads it: the head ends at the empty line, the Host counts.
        let missing = read_head(b"GET /nine\r\nHost: b\r\n\r\nGET /next HTTP/1.1\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((missing.host, missing.len), (Some(&b"b"[..]), 22));
        let h = read_head(b"GET /nine\n\nGET /next ").unwrap().unwrap();
        assert_eq!(h.len, 11);
    }

    fn arb_head() -> impl Strategy<Value = Vec<u8>> {
        let header = prop_oneof![
            Just(b"Host: a.example".to_vec()),
            Just(b"host:B.example:8080  ".to_vec()),
            Just(b"Content-Length: 5".to_vec()),
            Just(b"Content-Length: x".to_vec()),
            Just(b"content-length: 0".to_vec()),
            Just(b"Transfer-Encoding: chunked".to_vec()),
            Just(b"Transfer-Encoding: chunked, gzip".to_vec()),
            Just(b"Connection: Upgrade".to_vec()),
            Just(b"Connection: close".to_vec()),
            Just(b"Cookie: a=b".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..20),
        ];
        let line = prop_oneof![
            Just(b"GET / HTTP/1.1".to_vec()),
            Just(b"GET http://x.example/p?q HTTP/1.0".to_vec()),
            Just(b"GET /r?u=http://y.example/ HTTP/1.1".to_vec()),
            Just(b"CONNECT bad.example:443 HTTP/1.1".to_vec()),
            Just(b"GET /nine".to_vec()),
            Just(b"POST /a b HTTP/1.1".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..30),
        ];
        (
            line,
            proptest::collection::vec(header, 0..8),
            any::<bool>(),
            any::<usize>(),
        )
            .prop_map(|(line, headers, crlf, cut)| {
                let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
                let mut out = line;
                out.extend_from_slice(eol);
                for h in headers {
                    out.extend_from_slice(&h);
                    out.extend_from_slice(eol);
                }
                out.extend_from_slice(eol);
                out.extend_from_slice(b"GET /next HTTP/1.1\r\n");
                let cut = cut % (out.len() + 1);
                if cut % 3 == 0 {
                    out.truncate(cut)
                }
                out
            })
    }

    #[test]
    fn header_lines_as_httparse_reads_them() {
        let mut n = 0;
        let ok = |b: &[u8]| read_head(b).map(|h| h.map(|h| h.len));
        for (buf, want) in [
            (&b"GET / HTTP/1.1\r\nA:\r\n\r\n"[..], Ok(Some(22))),
            (b"GET / HTTP/1.1\nA: b \t\nB:\x80\xff\n\n", Ok(Some(28))),
            (
                b"GET / HTTP/1.1\r\nA: b\r\r\n\r\n",
                Err(ParseError::Malformed),
            ),
            (
                b"GET / HTTP/1.1\r\nA : b\r\n\r\n",
                Err(ParseError::Malformed),
            ),
            (b"GET / HTTP/1.1\r\n:b\r\n\r\n", Err(ParseError::Malformed)),
            (
                b"GET / HTTP/1.1\r\n b: c\r\n\r\n",
                Err(ParseError::Malformed),
            ),
            (
                b"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",
                Err(ParseError::Malformed),
            ),
            (b"GET / HTTP/1.1\r\n\r\r\n", Err(ParseError::Malformed)),
            // Incomplete: a line that can still be a header waits, one that cannot is refused.
            (b"GET / HTTP/1.1\r\nA: b\r", Ok(None)),
            (b"GET / HTTP/1.1\r\nAb", Ok(None)),
            (b"GET / HTTP/1.1\r\n\r", Ok(None)),
            (b"GET / HTTP/1.1\r\nA: b\x01", Err(ParseError::Malformed)),
            (b"GET / HTTP/1.1\r\nA b", Err(ParseError::Malformed)),
            (b"GET / HTTP/1.1\r\n\rx", Err(ParseError::Malformed)),
            (b"GET / HTTP/1.1\r\nA:\r\r", Err(ParseError::Malformed)),
        ] {
            assert_eq!(ok(buf), want, "{:?}", String::from_utf8_lossy(buf));
            assert_eq!(
                owned(read_head(buf)).map(|h| h.map(|h| h.0)),
                full(buf).map(|h| h.map(|h| h.0))
            );
            n += 1;
        }
        assert_eq!(n, 15);
        // MAX_HEADERS headers are read; one more complete header is too many, an incomplete or
        // a malformed one is what it is.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        let mut done = many.clone();
        done.extend_from_slice(b"\r\n");
        assert!(matches!(read_head(&done), Ok(Some(_))));
        for (tail, want) in [
            (&b"Y: z\r\n\r\n"[..], Err(ParseError::TooManyHeaders)),
            (b"Y: z", Ok(false)),
            (b"Y z\r\n\r\n", Err(ParseError::Malformed)),
        ] {
            let mut b = many.clone();
            b.extend_from_slice(tail);
            assert_eq!(read_head(&b).map(|h| h.is_some()), want);
            assert_eq!(owned(read_head(&b)), full(&b));
        }
    }

    /// Header lines of the bytes that matter to the header grammar.
    fn arb_header_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            Just(b'a'),
            Just(b'Z'),
            Just(b'-'),
            Just(b':'),
            Just(b' '),
            Just(b'\t'),
            Just(b'\r'),
            Just(b'\n'),
            Just(0x7f),
            Just(0x80),
            Just(0),
            Just(b'"'),
        ];
        proptest::collection::vec(byte, 0..60).prop_map(|mut h| {
            let mut out = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            out.append(&mut h);
            out
        })
    }

    proptest! {
        /// Header blocks of the bytes httparse tells apart: the same answers.
        #[test]
        fn agrees_on_header_bytes(buf in arb_header_bytes()) {
            prop_assert_eq!(owned(read_head(&buf)), full(&buf));
        }

        /// Heads of real and random lines and headers, complete or cut: this reader and the
        /// full parser accept, refuse, frame and read them alike.
        #[test]
        fn agrees_with_the_full_parser(buf in arb_head()) {
            prop_assert_eq!(owned(read_head(&buf)), full(&buf));
        }

        #[test]
        fn agrees_on_any_bytes(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(owned(read_head(&buf)), full(&buf));
        }
    }
}
