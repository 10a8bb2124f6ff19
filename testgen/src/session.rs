//! Benign TCP conversations with consistent sequence and acknowledgement numbers.

use std::net::IpAddr;

use crate::link::tcp_flags::{ACK, FIN, PSH, SYN};
use crate::rng::SplitMix64;
use crate::{Capture, Host, Link};

/// Largest data segment we send: a 1500-byte MTU minus IPv6 (40) and TCP (20) headers, so the
/// same split works for both families.
const SEGMENT: usize = 1440;

/// Initial sequence numbers for a conversation, derived from its endpoints only.
fn isns(client: &Host, server: &Host, sport: u16, dport: u16) -> (u32, u32) {
    let mut seed = u64::from(sport) << 16 | u64::from(dport);
    for ip in [client.ip, server.ip] {
        let bytes: Vec<u8> = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        for b in bytes {
            seed = seed.rotate_left(8) ^ u64::from(b);
        }
    }
    let mut rng = SplitMix64::new(seed);
    (rng.next_u32(), rng.next_u32())
}

/// Bytes as a sequence-number increment (wrapping, as sequence space does).
fn seq_len(data: &[u8]) -> u32 {
    u32::try_from(data.len()).unwrap_or(u32::MAX)
}

/// A whole benign TCP conversation from `client` to `server`: three-way handshake, `request`
/// from the client (segmented at 1440 bytes, PSH on the last), an ACK, `response` from the
/// server, an ACK, then FIN/ACK from the client, FIN/ACK from the server and the final ACK.
/// One frame every `gap_us` from `start_us`. An empty request or response is skipped with its ACK.
///
/// With both payloads non-empty and under 1440 bytes the capture has 10 frames.
#[allow(clippy::too_many_arguments)] // a conversation is its endpoints, payloads and pacing
pub fn tcp_session(
    link: &Link,
    client: &Host,
    server: &Host,
    sport: u16,
    dport: u16,
    request: &[u8],
    response: &[u8],
    start_us: u64,
    gap_us: u64,
) -> Capture {
    let (c_isn, s_isn) = isns(client, server, sport, dport);
    let mut cap = Capture::new();
    let mut t = start_us;
    let mut push = |cap: &mut Capture, frame: Vec<u8>| {
        cap.push(t, frame);
        t = t.saturating_add(gap_us);
    };
    let mut c_seq = c_isn;
    let mut s_seq = s_isn;
    push(
        &mut cap,
        link.tcp(client, server, sport, dport, SYN, c_seq, 0, &[]),
    );
    c_seq = c_seq.wrapping_add(1);
    push(
        &mut cap,
        link.tcp(server, client, dport, sport, SYN | ACK, s_seq, c_seq, &[]),
    );
    s_seq = s_seq.wrapping_add(1);
    push(
        &mut cap,
        link.tcp(client, server, sport, dport, ACK, c_seq, s_seq, &[]),
    );

    for (from_client, data) in [(true, request), (false, response)] {
        if data.is_empty() {
            continue;
        }
        let chunks: Vec<&[u8]> = data.chunks(SEGMENT).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let flags = if i == last { PSH | ACK } else { ACK };
            if from_client {
                push(
                    &mut cap,
                    link.tcp(client, server, sport, dport, flags, c_seq, s_seq, chunk),
                );
                c_seq = c_seq.wrapping_add(seq_len(chunk));
            } else {
                push(
                    &mut cap,
                    link.tcp(server, client, dport, sport, flags, s_seq, c_seq, chunk),
                );
                s_seq = s_seq.wrapping_add(seq_len(chunk));
            }
        }
        if from_client {
            push(
                &mut cap,
                link.tcp(server, client, dport, sport, ACK, s_seq, c_seq, &[]),
            );
        } else {
            push(
                &mut cap,
                link.tcp(client, server, sport, dport, ACK, c_seq, s_seq, &[]),
            );
        }
    }

    push(
        &mut cap,
        link.tcp(client, server, sport, dport, FIN | ACK, c_seq, s_seq, &[]),
    );
    c_seq = c_seq.wrapping_add(1);
    push(
        &mut cap,
        link.tcp(server, client, dport, sport, FIN | ACK, s_seq, c_seq, &[]),
    );
    s_seq = s_seq.wrapping_add(1);
    push(
        &mut cap,
        link.tcp(client, server, sport, dport, ACK, c_seq, s_seq, &[]),
    );
    cap
}

/// The body of the 200 response [`http_get`] returns.
pub const HTTP_BODY: &str = "<html><body>svm test page</body></html>\n";

/// `server`'s address as an HTTP `Host:` value (IPv6 in brackets).
pub fn host_header(server: &Host) -> String {
    match server.ip {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// The HTTP request [`http_get`] sends to `server`.
pub fn http_request(server: &Host) -> String {
    let host = host_header(server);
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: svm-testgen/1\r\nAccept: */*\r\n\r\n")
}

/// The HTTP response [`http_get`] receives.
pub fn http_response() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{HTTP_BODY}",
        HTTP_BODY.len()
    )
}

/// [`tcp_session`] to `server`:80 carrying `GET / HTTP/1.1` with a `Host:` header and a 200
/// response: 10 frames.
pub fn http_get(
    link: &Link,
    client: &Host,
    server: &Host,
    sport: u16,
    start_us: u64,
    gap_us: u64,
) -> Capture {
    let req = http_request(server);
    let resp = http_response();
    tcp_session(
        link,
        client,
        server,
        sport,
        80,
        req.as_bytes(),
        resp.as_bytes(),
        start_us,
        gap_us,
    )
}
