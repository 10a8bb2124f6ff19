//! A small HTTPS/1.1 client over rustls and hyper: one request per connection, which is all the
//! daemon needs (event batches, NSX calls, the admin CLI) and keeps reconnection trivial.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// The URL is not `https://host[:port]/...`.
    #[error("bad url {0}")]
    BadUrl(String),
    /// TCP or TLS failed. The cause is in the message, not a `source`: printing the error
    /// chain printed it twice.
    #[error("connect {url}: {reason}")]
    Connect {
        /// Target.
        url: String,
        /// Why, TLS failures explained ([`crate::tls::explain`]).
        reason: String,
    },
    /// HTTP failed (with TLS 1.3 a refused client certificate shows here, at the first read).
    #[error("http {url}: {}", explain_hyper(cause))]
    Http {
        /// Target.
        url: String,
        /// Why.
        cause: hyper::Error,
    },
    /// The request could not be built (bad header value).
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    /// No answer in time.
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    /// A download was longer than its cap (nothing past the cap was kept).
    #[error("{url}: the answer is longer than {cap} bytes")]
    TooLarge {
        /// Target.
        url: String,
        /// The cap.
        cap: u64,
    },
    /// Writing a download failed.
    #[error("writing the answer of {url}: {source}")]
    Write {
        /// Target.
        url: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A hyper error in words: a TLS failure under it explained ([`crate::tls::explain`]), else
/// hyper's text with its causes.
fn explain_hyper(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return format!("{text}: {}", crate::tls::explain_io(io));
        }
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return format!("{text}: {}", crate::tls::explain(r));
        }
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// A response.
#[derive(Debug)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// The client.
#[derive(Clone)]
pub struct HttpsClient {
    connector: TlsConnector,
    timeout: Duration,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// A client with a TLS configuration (see [`crate::tls::client_config`]).
    pub fn new(config: Arc<ClientConfig>, timeout: Duration) -> Self {
        HttpsClient {
            connector: TlsConnector::from(config),
            timeout,
        }
    }

    /// Send one request.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpsError> {
        tokio::time::timeout(self.timeout, self.request_inner(method, url, headers, body))
            .await
            .map_err(|_| HttpsError::Timeout(self.timeout))?
    }

    async fn request_inner(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, HttpsError> {
        let resp = self.send(method, url, headers, body).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|cause| HttpsError::Http {
                url: url.into(),
                cause,
            })?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// `GET url` into `out`, at most `cap` bytes of body (a longer answer is an error as soon
    /// as it passes the cap, so an endless answer costs no more than `cap`), within the
    /// client's timeout. The status; on anything but 200 nothing is written.
    pub async fn download(
        &self,
        url: &str,
        cap: u64,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<StatusCode, HttpsError> {
        tokio::time::timeout(self.timeout, async {
            let resp = self.send(Method::GET, url, &[], Vec::new()).await?;
            let status = resp.status();
            if status != StatusCode::OK {
                return Ok(status);
            }
            let mut body = resp.into_body();
            let mut got = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|cause| HttpsError::Http {
                    url: url.into(),
                    cause,
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                got = got.saturating_add(data.len() as u64);
                if got > cap {
                    return Err(HttpsError::TooLarge {
                        url: url.into(),
                        cap,
                    });
                }
                out.write_all(&data).map_err(|source| HttpsError::Write {
                    url: url.into(),
                    source,
                })?;
            }
            Ok(status)
        })
        .await
        .map_err(|_| HttpsError::Timeout(self.timeout))?
    }

    /// `GET url` with `headers`, connected and answered within the client's timeout; the body
    /// is left to the caller to read at its own pace (endless streams, such as server-sent
    /// events).
    pub async fn get_streaming(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<hyper::Response<hyper::body::Incoming>, HttpsError> {
        tokio::time::timeout(
            self.timeout,
            self.send(Method::GET, url, headers, Vec::new()),
        )
        .await
        .map_err(|_| HttpsError::Timeout(self.timeout))?
    }

    /// Connect, send one request, return the answer with its body unread.
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, HttpsError> {
        let uri: Uri = url.parse().map_err(|_| HttpsError::BadUrl(url.into()))?;
        if uri.scheme_str() != Some("https") {
            return Err(HttpsError::BadUrl(url.into()));
        }
        let host = uri
            .host()
            .ok_or_else(|| HttpsError::BadUrl(url.into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let connect_err = |e: std::io::Error| HttpsError::Connect {
            url: url.into(),
            reason: crate::tls::explain_io(&e),
        };
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(connect_err)?;
        let name =
            ServerName::try_from(host.clone()).map_err(|_| HttpsError::BadUrl(url.into()))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(connect_err)?;
        let http_err = |cause| HttpsError::Http {
            url: url.into(),
            cause,
        };
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(http_err)?;
        tokio::spawn(conn);
        let path = uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let authority = uri
            .authority()
            .map_or_else(|| host.clone(), |a| a.as_str().to_owned());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        sender.send_request(req).await.map_err(http_err)
    }
}
