//! An HTTP/1 request head as the web address scan needs it, borrowed from the bytes: method,
//! target, the host (the absolute-form target's authority, else the first `Host` header) and
//! how the request's body is framed.
//!
//! [`crate::app::http::parser::parse_request`] builds a whole transaction for the rules (owned
//! buffers, the normalised URI and host, the header block, the cookie, a dozen more fields); the
//! scan reads none of them. This reader takes the same request line
//! ([`http::parse_request_line`]) and the same header parse (httparse) and reads the framing
//! headers by the same rules, so it accepts, refuses and frames exactly the heads the full
//! parser does (a property test and the `web_readers` fuzz target hold the two equal), without
//! allocating.

use crate::app::http::parser::{self as http, Body, MAX_HEADERS, ParseError};

/// Headers read before falling back to an array of [`MAX_HEADERS`].
const FEW_HEADERS: usize = 32;

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
    let (authority, _) = http::split_absolute(line.target);
    let mut head = Head {
        len: line.len,
        method: line.method,
        target: line.target,
        host: authority,
        body: Body::None,
        bad_content_length: false,
        upgrade: false,
    };
    // HTTP/0.9: the request line is the whole head.
    if line.protocol.is_none() {
        return Ok(Some(head));
    }
    let rest = buf.get(line.len..).unwrap_or_default();
    // Most heads have a dozen headers: a short array is filled first, and the full
    // `MAX_HEADERS` one (4 KiB to set up for every head) only when the short one is too short,
    // which parses the same bytes with the full parser's limit and so gives its answer.
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let mut all;
    let parsed = match httparse::parse_headers(rest, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {
            all = [httparse::EMPTY_HEADER; MAX_HEADERS];
            httparse::parse_headers(rest, &mut all)
        }
        other => other,
    };
    let (hlen, hdrs) = match parsed {
        Ok(httparse::Status::Complete(c)) => c,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(_) => return Err(ParseError::Malformed),
    };
    let mut host_header = None;
    let mut connection = None;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for h in hdrs.iter() {
        let value = http::trim_trailing(h.value);
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            host_header.get_or_insert(value);
        } else if name.eq_ignore_ascii_case("connection") {
            connection.get_or_insert(value);
        } else if name.eq_ignore_ascii_case("content-length") {
            match http::parse_content_length(value) {
                Some(n) if content_length.is_none_or(|c| c == n) => content_length = Some(n),
                _ => head.bad_content_length = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides the framing (RFC 9112 section 6.3).
            chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| http::trim(last).eq_ignore_ascii_case(b"chunked"));
        }
    }
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
        let h09 = read_head(b"GET /old\r\n").unwrap().unwrap();
        assert_eq!((h09.target, h09.host, h09.len), (&b"/old"[..], None, 10));
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

    proptest! {
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
