//! The `dns.*` detection buffers (and `app-layer-event` for DNS) of one DNS message, read
//! where they lie (the scanner's `ScanBuffers` hands every app buffer to
//! [`crate::app::AppBuffers::get_nth`], which asks here for a DNS transaction).

use super::parser::Message;
use crate::rules::BufferKind;

/// The buffers of one DNS transaction: borrows its message.
#[derive(Clone, Copy, Debug)]
pub struct DnsBuffers<'a> {
    m: &'a Message,
}

/// The `dns.*` buffers read the same way in both directions.
#[derive(Clone, Copy)]
enum DnsPart {
    Queries,
    Answers,
    Authorities,
    Additionals,
    Opcode,
    Rcode,
}

fn dns_buffer(kind: BufferKind) -> Option<DnsPart> {
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

impl<'a> DnsBuffers<'a> {
    /// The buffers of the message `m`.
    pub fn new(m: &'a Message) -> Self {
        DnsBuffers { m }
    }

    /// The message.
    pub fn message(&self) -> &'a Message {
        self.m
    }

    /// The first `dns.query` name, if any.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.m.queries.first().map(Vec::as_slice)
    }

    /// Instance `n` of buffer `kind` of a packet towards the server (`to_server`) or the
    /// client.
    pub fn get_nth(&self, kind: BufferKind, n: usize, to_server: bool) -> Option<&'a [u8]> {
        let m = self.m;
        match kind {
            BufferKind::AppLayerEvent => m
                .events
                .names(m.response, to_server)
                .nth(n)
                .map(str::as_bytes),
            BufferKind::DnsQuery if to_server => m.queries.get(n).map(Vec::as_slice),
            BufferKind::DnsRrtype if to_server => m.qtypes.get(n).map(<[u8; 2]>::as_slice),
            BufferKind::DnsRrtype => m.answers.get(n).map(|r| r.rrtype.as_slice()),
            BufferKind::DnsResponseRrname if !to_server => {
                let m = Some(m).filter(|m| m.response)?;
                let names = m.queries.iter();
                let records = m.answers.iter().chain(&m.authorities).chain(&m.additionals);
                names
                    .chain(records.map(|r| &r.name))
                    .nth(n)
                    .map(Vec::as_slice)
            }
            k => self.part_nth(dns_buffer(k)?, n),
        }
    }

    /// Instance `n` of a `dns.*` buffer read the same way in both directions.
    fn part_nth(&self, part: DnsPart, n: usize) -> Option<&'a [u8]> {
        let m = self.m;
        let records = match part {
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

    /// A response with one entry in every section, for the scanner's `buffer_filled`.
    pub(crate) fn every() -> DnsBuffers<'static> {
        use super::parser::{Record, TxEvents};
        static M: std::sync::LazyLock<Message> = std::sync::LazyLock::new(|| Message {
            response: true,
            queries: vec![Vec::new()],
            qtypes: vec![[0, 1]],
            answers: vec![Record::default()],
            authorities: vec![Record::default()],
            additionals: vec![Record::default()],
            events: TxEvents::Z_FLAG_SET,
            ..Message::default()
        });
        DnsBuffers::new(&M)
    }
}
