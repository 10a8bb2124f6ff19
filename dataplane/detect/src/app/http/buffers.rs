//! The `http.*` detection buffers (and `file.data`, `frame:http1.request`) of one HTTP
//! transaction: its request and the response matched to it, read where they lie (the scanner's
//! `ScanBuffers` hands every app buffer to [`crate::app::AppBuffers::get_nth`], which asks
//! here for an HTTP transaction).
//!
//! A transaction's buffers appear as libhtp's do: the request-line buffers once the line is
//! complete, the header buffers once the head is, the body once it ended or
//! [`HTTP_BODY_MIN_INSPECT`] bytes of it arrived; the response's once its head is parsed.

use super::parser::{HeadFields, Request};
use super::response::Response;
use crate::app::{HTTP_BODY_MIN_INSPECT, HTTP_RESPONSE_BODY_MIN_INSPECT};
use crate::rules::BufferKind;

/// The buffers of one HTTP transaction: borrows its request (with the response in it).
#[derive(Clone, Copy, Debug)]
pub struct HttpBuffers<'a> {
    req: &'a Request,
}

/// Whether a transaction's request was seen: a parsed request line always has a method token
/// (a response whose request was not seen has an empty one).
pub(crate) fn request_seen(r: &Request) -> bool {
    !r.method.is_empty()
}

impl<'a> HttpBuffers<'a> {
    /// The buffers of the transaction `req` (its response included).
    pub fn new(req: &'a Request) -> Self {
        HttpBuffers { req }
    }

    /// The request, when it was seen (a response can come without one: midstream).
    pub fn request(&self) -> Option<&'a Request> {
        Some(self.req).filter(|r| request_seen(r))
    }

    /// The response matched to the request, once its head is parsed.
    pub fn response(&self) -> Option<&'a Response> {
        self.req.response.as_deref()
    }

    /// Instance `n` of buffer `kind` on the request's side (`to_server`) or the response's.
    pub fn get_nth(&self, kind: BufferKind, n: usize, to_server: bool) -> Option<&'a [u8]> {
        if to_server {
            self.request_nth(kind, n)
        } else {
            response_nth(self.response()?, kind, n)
        }
    }

    fn request_nth(&self, kind: BufferKind, n: usize) -> Option<&'a [u8]> {
        let r = self.request()?;
        // The request line's buffers, there from the line on.
        let line = match kind {
            BufferKind::HttpMethod => Some(&r.method),
            BufferKind::HttpUri => Some(&r.uri),
            BufferKind::HttpUriRaw => Some(&r.uri_raw),
            BufferKind::HttpProtocol => Some(&r.protocol),
            BufferKind::HttpRequestLine => Some(&r.line),
            _ => None,
        };
        if let Some(v) = line {
            return (n == 0).then_some(v.as_slice());
        }
        if !r.headers_done {
            return None;
        }
        let f = &r.fields;
        match kind {
            BufferKind::HttpRequestHeader => return f.header(n),
            BufferKind::Http1RequestFrame => return r.frame.get(n).map(Vec::as_slice),
            _ if n > 0 => return None,
            _ => {}
        }
        let some = |v: &'a Vec<u8>| Some(v.as_slice());
        match kind {
            BufferKind::HttpHost => r.host.as_deref(),
            BufferKind::HttpHostRaw => r.host_raw.as_deref(),
            BufferKind::HttpUserAgent => r.user_agent.as_deref(),
            BufferKind::HttpHeader => some(&r.header),
            BufferKind::HttpHeaderRaw => some(&f.raw),
            BufferKind::HttpCookie => r.cookie.as_deref(),
            BufferKind::HttpConnection => r.connection.as_deref(),
            // `file.data` towards the server: the request body (Suricata's HTTP file data).
            BufferKind::HttpRequestBody | BufferKind::FileData => (r.has_body
                && (r.body_done || r.body.len() >= HTTP_BODY_MIN_INSPECT))
                .then_some(r.body.as_slice()),
            BufferKind::HttpReferer => f.referer.as_deref(),
            BufferKind::HttpAccept => f.accept.as_deref(),
            BufferKind::HttpAcceptEnc => f.accept_enc.as_deref(),
            BufferKind::HttpAcceptLang => f.accept_lang.as_deref(),
            k => head_nth(f, k),
        }
    }

    /// A transaction where every buffer is present (empty), for the scanner's `buffer_filled`.
    pub(crate) fn every() -> HttpBuffers<'static> {
        static R: std::sync::LazyLock<Request> = std::sync::LazyLock::new(|| {
            let head = || {
                let one = [httparse::Header {
                    name: "",
                    value: b"",
                }];
                let mut f = HeadFields::new(b"", &one, b"");
                f.content_type = Some(Vec::new());
                f.content_len = Some(Vec::new());
                f.referer = Some(Vec::new());
                f.accept = Some(Vec::new());
                f.accept_enc = Some(Vec::new());
                f.accept_lang = Some(Vec::new());
                f
            };
            let response = Response {
                server: Some(Vec::new()),
                location: Some(Vec::new()),
                set_cookie: Some(Vec::new()),
                body_done: true,
                fields: head(),
                ..Response::default()
            };
            Request {
                method: b"GET".to_vec(),
                uri_raw: Vec::new(),
                uri: Vec::new(),
                protocol: Vec::new(),
                host: Some(Vec::new()),
                host_raw: Some(Vec::new()),
                user_agent: Some(Vec::new()),
                header: Vec::new(),
                cookie: Some(Vec::new()),
                connection: Some(Vec::new()),
                headers_done: true,
                has_body: true,
                body: Vec::new(),
                body_done: true,
                response: Some(Box::new(response)),
                line: Vec::new(),
                fields: head(),
                frame: vec![Vec::new()],
            }
        });
        HttpBuffers::new(&R)
    }
}

/// The buffers both heads have, read from `f`.
fn head_nth(f: &HeadFields, kind: BufferKind) -> Option<&[u8]> {
    match kind {
        BufferKind::HttpHeaderNames => Some(&f.header_names),
        BufferKind::HttpStart => Some(&f.start),
        BufferKind::HttpContentType => f.content_type.as_deref(),
        BufferKind::HttpContentLen => f.content_len.as_deref(),
        _ => None,
    }
}

/// Instance `n` of buffer `kind` of the response `p`.
fn response_nth(p: &Response, kind: BufferKind, n: usize) -> Option<&[u8]> {
    match kind {
        BufferKind::HttpResponseHeader => return p.fields.header(n),
        _ if n > 0 => return None,
        _ => {}
    }
    match kind {
        BufferKind::FileData => (p.body_done || p.body.len() >= HTTP_RESPONSE_BODY_MIN_INSPECT)
            .then_some(p.body.as_slice()),
        BufferKind::HttpHeader => Some(&p.header),
        BufferKind::HttpHeaderRaw => Some(&p.fields.raw),
        BufferKind::HttpCookie => p.set_cookie.as_deref(),
        BufferKind::HttpProtocol => Some(&p.protocol),
        BufferKind::HttpResponseLine => Some(&p.line),
        BufferKind::HttpStatCode => Some(&p.stat_code),
        BufferKind::HttpStatMsg => Some(&p.stat_msg),
        BufferKind::HttpServer => p.server.as_deref(),
        BufferKind::HttpLocation => p.location.as_deref(),
        k => head_nth(&p.fields, k),
    }
}
