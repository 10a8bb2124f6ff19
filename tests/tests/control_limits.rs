//! The management API under anonymous load, over real TLS on loopback: idle, slow and oversized
//! clients without a certificate cannot keep an admin out, no body is read before the role
//! check, and oversized bodies and huge invalid documents get bounded answers in the documented
//! JSON shape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};
use rustls::pki_types::ServerName;
use svm::control::Control;
use svm_e2e::control::{Harness, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const GOOD: &str = r#"{"mode":"monitoring"}"#;

/// A TLS connection to the harness's API, with `identity` as client certificate (or none).
async fn connect(h: &Harness, identity: Option<svm::tls::Identity>) -> TlsStream<TcpStream> {
    let cfg = svm::tls::client_config(&h.ca.roots(), identity).unwrap();
    let addr = h.base.trim_start_matches("https://");
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(cfg)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Send `head` (request line and headers, without the blank line), then `body` bytes (written
/// while the answer is read), and return the answer's status line and body text.
async fn exchange(mut tls: TlsStream<TcpStream>, head: &str, body: usize) -> (String, String) {
    tls.write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        let mut left = body;
        while left > 0 {
            let n = left.min(chunk.len());
            // The server may answer and close before taking it all.
            if wr.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
        let _ = wr.flush().await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if complete(&answer) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    writer.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// Whether `answer` holds a whole response with a `content-length` body.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .is_some_and(|n| body.len() >= n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_idle_slow_and_oversized_clients_do_not_keep_the_admin_out() {
    let h = Arc::new(Harness::start().await);
    let addr = h.base.trim_start_matches("https://").to_owned();

    // 300 connections that never say a word (a stalled handshake each).
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // 20 anonymous clients announcing a 16 MB policy upload: refused before the body.
    let mut uploads = Vec::new();
    for _ in 0..20 {
        let tls = connect(&h, None).await;
        uploads.push(tokio::spawn(async move {
            exchange(
                tls,
                "PUT /api/v1/policy HTTP/1.1\r\nhost: svm\r\ncontent-type: application/json\r\ncontent-length: 16000000",
                0,
            )
            .await
        }));
    }
    // 20 anonymous clients sending their headers a byte at a time.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut tls = connect(&h, None).await;
        slow.push(tokio::spawn(async move {
            for b in b"GET /v1/decisions/stream HTTP/1.1\r\nx-padding: " {
                if tls.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for u in uploads {
        let (status, body) = u.await.unwrap();
        assert!(status.contains(" 403 "), "{status}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "forbidden", "{body}");
    }

    // Meanwhile the admin pushes a policy and lists the blocks, each within a second.
    let second = Duration::from_secs(1);
    let r = tokio::time::timeout(
        second,
        h.call(&h.admin, Method::PUT, "/api/v1/policy", &[], GOOD),
    )
    .await
    .expect("the policy push answered within a second")
    .unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let r = tokio::time::timeout(
        second,
        h.call(&h.admin, Method::GET, "/api/v1/blocked-hosts", &[], ""),
    )
    .await
    .expect("the block list answered within a second")
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(json(&r).is_array());

    // The oldest idle connections were closed to make room: at most the unverified places
    // stay open.
    let mut closed = 0;
    for mut c in idle {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), c.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 300 - svm::api::server::MAX_UNVERIFIED,
        "{closed} of 300 idle connections closed"
    );
    for s in slow {
        s.abort();
    }
    h.stop();
}

#[tokio::test]
async fn no_body_is_read_before_the_role_check() {
    let h = Harness::start().await;
    let reader = h.ca.client("dashboard", Some("svm-readers")).identity();
    // A read-only client announcing 20 MB and sending none of it: the answer comes at once.
    let (status, body) = exchange(
        connect(&h, Some(reader)).await,
        "PUT /api/v1/policy HTTP/1.1\r\nhost: svm\r\ncontent-length: 20000000",
        0,
    )
    .await;
    assert!(status.contains(" 403 "), "{status}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["message"],
        "forbidden: this operation needs the admin role"
    );
    let nobody = h.ca.client("stranger", Some("elsewhere")).identity();
    let (status, _) = exchange(
        connect(&h, Some(nobody)).await,
        "POST /api/v1/blocked-hosts HTTP/1.1\r\nhost: svm\r\ncontent-length: 20000000",
        0,
    )
    .await;
    assert!(status.contains(" 403 "), "{status}");
    h.stop();
}

#[tokio::test]
async fn an_oversized_body_is_413_in_the_json_error_shape() {
    let h = Harness::start().await;
    let admin = h.ca.client("svm-admin", None).identity();
    let size = svm::api::MAX_BODY_BYTES + 1;
    let (status, body) = exchange(
        connect(&h, Some(admin)).await,
        &format!(
            "PUT /api/v1/policy HTTP/1.1\r\nhost: svm\r\ncontent-type: application/json\r\ncontent-length: {size}"
        ),
        size,
    )
    .await;
    assert!(status.contains(" 413 "), "{status}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "payload_too_large", "{body}");
    assert_eq!(
        v["message"],
        format!(
            "request body larger than {} bytes",
            svm::api::MAX_BODY_BYTES
        )
    );
    assert_eq!(h.control.policy().version, 0, "nothing applied");
    h.stop();
}

#[tokio::test]
async fn a_huge_invalid_policy_gets_a_bounded_answer() {
    let h = Harness::start().await;
    let bad: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"address":"10.0.{i}.300","vlan":100,"rule":"do_not_scan"}}"#))
        .collect();
    let doc = format!(
        r#"{{"version":"{}","exclusions":[{}]}}"#,
        "v".repeat(1 << 20),
        bad.join(",")
    );
    let r = h
        .call(&h.admin, Method::PUT, "/api/v1/policy", &[], &doc)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.len() < 64 << 10, "{} bytes", r.body.len());
    let v = json(&r);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), svm::api::error::MAX_PROBLEMS);
    assert_eq!(problems[0]["path"], "version");
    let total = 5001;
    assert_eq!(
        v["problems_not_listed"],
        total - svm::api::error::MAX_PROBLEMS
    );
    assert_eq!(
        v["message"],
        format!("{total} problem(s), the first 100 listed; nothing was applied")
    );
    h.stop();
}
