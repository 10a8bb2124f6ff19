//! The web address scan's reading of a client's first bytes (`dataplane::webscan`): arbitrary
//! bytes cut into segments with arbitrary sequence numbers (in order, retransmitted, with gaps),
//! on the DNS, HTTP and TLS ports, or as a QUIC flow's datagrams; a flow that gave up, or a TLS
//! or QUIC flow that found its name, stays done; HTTP and DNS flows read request after request
//! (with the pipelined ones behind each). The DNS query reader runs on the same bytes, and the
//! scan's borrowing readers are held to the full parsers on them: the server name reader fails
//! where the TLS engine's ClientHello parser fails and finds every name it finds; the request
//! head reader gives what the HTTP parser gives (method, target, host, framing); the DNS
//! question reader gives the full DNS parser's question names of a query, or its error.
#![no_main]

use dataplane::app::dns::parser::parse_message;
use dataplane::app::http::parser::parse_request;
use dataplane::app::quic::crypto::MaterialCache;
use dataplane::app::tls::parser::client_hello;
use dataplane::webscan::{Observed, Step, WebFlow, dns_query, head, hello, is_quic_v1_initial};
use libfuzzer_sys::fuzz_target;

fn readers_agree(data: &[u8]) {
    let full = parse_message(data).map(|m| (!m.response && !m.queries.is_empty()).then_some(m.queries));
    let mine = dns_query(data).map(|q| {
        q.map(|q| {
            let mut names = q.names();
            let mut all = Vec::new();
            while let Some(n) = names.next_name() {
                all.push(n.to_vec());
            }
            all
        })
    });
    assert_eq!(full, mine, "the DNS question readers differ");
    let full = client_hello(data).map(|c| c.sni);
    let mine = hello::server_name(data);
    assert_eq!(full.is_err(), mine.is_err(), "one ClientHello reader failed alone");
    if let Ok(Some(name)) = &full {
        assert_eq!(mine, Ok(Some(name.as_slice())), "the server names differ");
    }
    match (parse_request(data), head::read_head(data)) {
        (Ok(Some(p)), Ok(Some(h))) => {
            let r = &p.request;
            assert_eq!(
                (p.len, &r.method[..], &r.uri_raw[..], r.host_raw.as_deref()),
                (h.len, h.method, h.target, h.host)
            );
            assert_eq!((p.body, p.bad_content_length), (h.body, h.bad_content_length));
        }
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("the request head readers differ: {a:?} against {b:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = is_quic_v1_initial(data);
    readers_agree(data);
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let port = [53u16, 80, 443, 8080][usize::from(ctl & 3)];
    let quic = ctl & 4 != 0;
    let cut = usize::from(ctl >> 3).max(1);
    let mut f = WebFlow::default();
    let mut keys = MaterialCache::default();
    let mut seq = 1000u32;
    for (i, chunk) in rest.chunks(cut).enumerate() {
        // Every seventh segment from the fourth on repeats the previous sequence number, every
        // seventh from the seventh jumps ahead.
        let at = match i % 7 {
            3 => seq.wrapping_sub(u32::try_from(chunk.len()).unwrap_or(0)),
            6 => seq.wrapping_add(100),
            _ => seq,
        };
        let was_done = f.done();
        let mut step = if quic {
            f.on_quic_datagram(chunk, &mut keys)
        } else {
            f.on_client_segment(at, chunk, port)
        };
        if was_done {
            assert_eq!(step, Step::Wait, "a done flow reads nothing");
        }
        // Each request pipelined behind the one found; a bounded number (each takes bytes).
        for _ in 0..=chunk.len() {
            match step {
                Step::Wait => break,
                Step::GaveUp(_) | Step::Found(Observed::Tls { .. } | Observed::Quic { .. }) => {
                    assert!(f.done());
                    break;
                }
                Step::Found(_) => step = f.more(),
            }
        }
        seq = at.wrapping_add(u32::try_from(chunk.len()).unwrap_or(0));
    }
});
