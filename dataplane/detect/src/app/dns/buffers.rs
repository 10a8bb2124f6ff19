//! The `dns.*` detection buffers: which part of a DNS message each names, read the same way in
//! both directions (the scanner's `ScanBuffers::get` asks here).

use crate::rules::BufferKind;

/// The `dns.*` buffers read the same way in both directions.
#[derive(Clone, Copy)]
pub(crate) enum DnsPart {
    Queries,
    Answers,
    Authorities,
    Additionals,
    Opcode,
    Rcode,
}

pub(crate) fn dns_buffer(kind: BufferKind) -> Option<DnsPart> {
    Some(match kind {
        BufferKind::DnsQueriesRrname => DnsPart::Queries,
        BufferKind::DnsAnswersRrname => DnsPart::Answers,
        BufferKind::DnsAuthoritiesRrname => DnsPart::Authorities,
        BufferKind::DnsAdditionalsRrname => DnsPart::Additionals,
        BufferKind::DnsOpcode => DnsPart::Opcode,
        BufferKind::DnsRcode => DnsPart::Rcode,
        _ => return None,
    })
}

/// Instance `n` of a `dns.*` buffer of the message ([`dns_buffer`]).
pub(crate) fn dns_nth(
    kind: BufferKind,
    m: &crate::app::dns::parser::Message,
    n: usize,
) -> Option<&[u8]> {
    let records = match dns_buffer(kind)? {
        DnsPart::Queries => return m.queries.get(n).map(Vec::as_slice),
        DnsPart::Opcode | DnsPart::Rcode if n > 0 => return None,
        DnsPart::Opcode => return m.opcode_rcode.first().map(<[u8; 1]>::as_slice),
        DnsPart::Rcode => return m.opcode_rcode.get(1).map(<[u8; 1]>::as_slice),
        DnsPart::Answers => &m.answers,
        DnsPart::Authorities => &m.authorities,
        DnsPart::Additionals => &m.additionals,
    };
    records.get(n).map(|r| r.name.as_slice())
}

/// A DNS response with one entry in every section, for the scanner's `every_buffer`.
pub(crate) fn every_dns() -> &'static crate::app::dns::parser::Message {
    use crate::app::dns::parser::{Message, Record};
    static M: std::sync::LazyLock<Message> = std::sync::LazyLock::new(|| Message {
        response: true,
        queries: vec![Vec::new()],
        qtypes: vec![[0, 1]],
        answers: vec![Record::default()],
        authorities: vec![Record::default()],
        additionals: vec![Record::default()],
        events: crate::app::dns::parser::TxEvents::Z_FLAG_SET,
        ..Message::default()
    });
    &M
}
