//! The EVE `http` object of an alert: the request's host, URL, user agent and method, as
//! Suricata's alert logger writes them (the fields we know), read from a transaction's
//! buffers ([`HttpEve::of`]) or given by the web address scan ([`HttpEve::request`]).

use super::buffers::HttpBuffers;
use crate::rules::BufferKind;
use serde::Serialize;

/// EVE `http` of an alert. Serialised in this field order; absent fields are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HttpEve {
    /// `http.hostname`: the normalised `Host` (`http.host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `http.url`: the raw request target (`http.uri.raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http.http_user_agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_user_agent: Option<String>,
    /// `http.http_method`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
}

impl HttpEve {
    /// The object of a transaction's request; `None` when its request line was not seen (a
    /// midstream response alone), which has neither method nor URL.
    pub fn of(b: &HttpBuffers<'_>) -> Option<HttpEve> {
        let s = |k: BufferKind| {
            b.get_nth(k, 0, true)
                .map(|x| String::from_utf8_lossy(x).into_owned())
        };
        let eve = HttpEve {
            hostname: s(BufferKind::HttpHost),
            url: s(BufferKind::HttpUriRaw),
            http_user_agent: s(BufferKind::HttpUserAgent),
            http_method: s(BufferKind::HttpMethod),
        };
        (eve.http_method.is_some() || eve.url.is_some()).then_some(eve)
    }

    /// The object of a request seen elsewhere (the web address scan): its host, target and
    /// method.
    pub fn request(hostname: Option<String>, url: String, method: String) -> HttpEve {
        HttpEve {
            hostname,
            url: Some(url),
            http_user_agent: None,
            http_method: Some(method),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::http::parser::{Request, parse_request, parse_request_line};

    fn json(r: &Request) -> Option<String> {
        HttpEve::of(&HttpBuffers::new(r)).map(|e| serde_json::to_string(&e).unwrap())
    }

    // A whole head gives the four fields in EVE's order (the host normalised, the URL raw); a
    // request line alone its method and URL (no header buffers before the head ends); a
    // response whose request was not seen no object at all.
    #[test]
    fn the_object_of_a_request() {
        let head = b"GET /a%41?b HTTP/1.1\r\nHost: Ex.ORG:80\r\nUser-Agent: t/1\r\n\r\n";
        let r = parse_request(head).unwrap().unwrap().request;
        assert_eq!(
            json(&r).unwrap(),
            r#"{"hostname":"ex.org","url":"/a%41?b","http_user_agent":"t/1","http_method":"GET"}"#
        );
        let line = parse_request_line(b"POST http://h.test/x HTTP/1.1\r\n")
            .unwrap()
            .unwrap();
        let r = Request::from_line(&line);
        assert_eq!(
            json(&r).unwrap(),
            r#"{"url":"http://h.test/x","http_method":"POST"}"#
        );
        let mut r = Request::from_line(&line);
        r.method.clear();
        assert_eq!(json(&r), None);
        let e = HttpEve::request(None, "/u".into(), "GET".into());
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"url":"/u","http_method":"GET"}"#
        );
    }
}
