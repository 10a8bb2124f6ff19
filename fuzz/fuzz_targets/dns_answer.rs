//! The blocking DNS answers: any bytes as a query (UDP and TCP forms, both modes, the canary).
//! An answer is given only to a well-formed query, and then our parser reads it back with the
//! query's id and name, and it fits the 512 bytes of a UDP answer without EDNS.
#![no_main]

use dataplane::app::dns::answer::{BlockMode, Transport, block_answer, canary_answer};
use dataplane::app::dns::parser::parse_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (transport, skip) in [(Transport::Udp, 0usize), (Transport::Tcp, 2)] {
        let query = data.get(skip..).unwrap_or_default();
        let answers = [
            block_answer(data, transport, BlockMode::Null, "fuzz list é"),
            block_answer(data, transport, BlockMode::NxDomain, "fuzz list"),
            canary_answer(data, transport),
        ];
        for answer in answers.into_iter().flatten() {
            let msg = answer.get(skip..).unwrap_or_default();
            assert!(msg.len() <= 512, "answer of {} bytes", msg.len());
            let a = parse_message(msg).expect("our answer parses");
            assert!(a.response);
            let q = parse_message(query).expect("an answered query parses");
            assert_eq!(a.id, q.id);
            assert_eq!(a.queries, q.queries);
        }
    }
});
