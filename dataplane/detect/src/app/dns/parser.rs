//! DNS message: header, question section and the names and types of the answer, authority and
//! additional records, over checked reads.
//! Pure functions: no state, no logging, no panics on any input.
//!
//! Hand-written rather than simple-dns (which the tests use to build fixtures): a query is all we
//! need, and simple-dns rejects the whole message on an unknown QTYPE/QCLASS or a bad record in a
//! later section (an easy way to hide a query name from `dns.query`), and it preallocates from the
//! attacker's question count. Names follow RFC 1035 section 4.1.4, with Suricata's caps.

/// Questions kept per message. Real queries carry one; Suricata caps the records it walks too.
/// Beyond it: [`DnsError::TooManyQuestions`] is reported, the first ones are kept.
pub const MAX_QUESTIONS: usize = 32;

/// Compression pointers followed per name. A loop (or a chain longer than any real name needs:
/// a name has at most 127 labels) is cut here.
pub const MAX_POINTER_JUMPS: usize = 64;

/// Records kept per answer, authority or additional section (Suricata walks every record; a
/// UDP message of 64 KiB holds at most ~5,000 minimal ones). Beyond it the rest of the message
/// is not read and [`Message::truncated`] is set.
pub const MAX_RECORDS: usize = 256;

/// Wire length of a name (RFC 1035 section 2.3.4: 255 octets), for the names we write.
pub const MAX_NAME_LEN: usize = 255;

/// Longest dotted name kept from a message, as Suricata (`MAX_NAME_LEN` in its `dns.rs`): a
/// longer one is cut here, read to its end, and raises `dns.name_too_long`.
pub const MAX_READ_NAME_LEN: usize = 1025;

/// Labels and pointers walked per name, as Suricata: beyond it a name that followed a pointer
/// is cut (`dns.too_many_labels`), one that did not fails the message.
pub const MAX_NAME_SEGMENTS: usize = 255;

const HEADER_LEN: usize = 12;

/// One resource record of the answer, authority or additional section: what rules read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The owner name, dotted as [`Message::queries`].
    pub name: Vec<u8>,
    /// TYPE, big-endian as on the wire (the form `dns.rrtype` reads).
    pub rrtype: [u8; 2],
}

/// A parsed message: header fields we use, the questions and the records' names and types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response.
    pub response: bool,
    /// Opcode.
    pub opcode: u8,
    /// `dns.opcode` and `dns.rcode` as one-byte buffers (`[opcode]`, `[rcode]`), the form the
    /// integer keywords read.
    pub opcode_rcode: [[u8; 1]; 2],
    /// The Z bit (reserved, must be 0) is set.
    pub z: bool,
    /// Question names as `dns.query` shows them: labels joined by '.', no trailing dot, bytes
    /// as sent (case kept); the root name is empty.
    pub queries: Vec<Vec<u8>>,
    /// Bit `i` set: question `i`'s name was cut at [`MAX_READ_NAME_LEN`] (EVE
    /// `rrname_truncated`; [`MAX_QUESTIONS`] fit the bits).
    pub queries_cut: u32,
    /// Question types, in the order of `queries`, big-endian as on the wire.
    pub qtypes: Vec<[u8; 2]>,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Additional section.
    pub additionals: Vec<Record>,
    /// The question count exceeded [`MAX_QUESTIONS`] (recoverable).
    pub truncated: bool,
    /// A record section could not be read to its end (malformed, or more than
    /// [`MAX_RECORDS`]): the records before are kept (recoverable).
    pub records_cut: bool,
    /// The transaction's events (`app-layer-event:dns.*`).
    pub events: TxEvents,
}

/// Suricata's DNS transaction events a message raises (`app-layer-event:dns.<name>`), a bit
/// each. `not_a_request` and `not_a_response` depend on the direction: [`TxEvents::names`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxEvents(u8);

impl TxEvents {
    /// A name was longer than [`MAX_READ_NAME_LEN`] and was cut.
    pub const NAME_TOO_LONG: TxEvents = TxEvents(1);
    /// A name had more than [`MAX_NAME_SEGMENTS`] labels and pointers.
    pub const TOO_MANY_LABELS: TxEvents = TxEvents(1 << 1);
    /// The Z bit (reserved) is set.
    pub const Z_FLAG_SET: TxEvents = TxEvents(1 << 2);
    /// Opcode 7 or above (unassigned).
    pub const INVALID_OPCODE: TxEvents = TxEvents(1 << 3);
    /// A record section could not be read ([`Message::records_cut`]).
    pub const MALFORMED_DATA: TxEvents = TxEvents(1 << 4);

    /// Each event with its Suricata name, in the order [`Self::names`] gives them.
    const NAMES: [(TxEvents, &'static str); 5] = [
        (Self::MALFORMED_DATA, "dns.malformed_data"),
        (Self::Z_FLAG_SET, "dns.z_flag_set"),
        (Self::INVALID_OPCODE, "dns.invalid_opcode"),
        (Self::NAME_TOO_LONG, "dns.name_too_long"),
        (Self::TOO_MANY_LABELS, "dns.too_many_labels"),
    ];

    /// Every event name a message can raise: what `app-layer-event` accepts for DNS.
    pub const ALL_NAMES: [&'static str; 7] = [
        "dns.malformed_data",
        "dns.z_flag_set",
        "dns.invalid_opcode",
        "dns.name_too_long",
        "dns.too_many_labels",
        "dns.not_a_request",
        "dns.not_a_response",
    ];

    /// Add `other`'s events.
    pub fn insert(&mut self, other: TxEvents) {
        self.0 |= other.0;
    }

    /// Whether every event of `other` is set.
    pub const fn contains(self, other: TxEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the events of a message seen going to the server (`to_server`) or the
    /// client; a response sent to the server is `dns.not_a_request`, a query sent to the
    /// client `dns.not_a_response` (Suricata's request and response parsers).
    pub fn names(self, response: bool, to_server: bool) -> impl Iterator<Item = &'static str> {
        let wrong_way = match (to_server, response) {
            (true, true) => Some("dns.not_a_request"),
            (false, false) => Some("dns.not_a_response"),
            _ => None,
        };
        Self::NAMES
            .into_iter()
            .filter(move |(e, _)| self.contains(*e))
            .map(|(_, n)| n)
            .chain(wrong_way)
    }
}

/// Why a message cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the header, or a question runs past the end.
    #[error("dns: truncated")]
    Truncated,
    /// A label length with the reserved bits (0x40, 0x80 alone).
    #[error("dns: bad label type")]
    BadLabel,
    /// More than [`MAX_POINTER_JUMPS`] pointers in one name.
    #[error("dns: compression pointer loop")]
    PointerLoop,
    /// More than [`MAX_NAME_SEGMENTS`] labels in a name that followed no pointer.
    #[error("dns: too many labels")]
    TooManyLabels,
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Read the name at `start`; returns it (dotted) and the offset just past it in the message.
/// As Suricata: a name longer than [`MAX_READ_NAME_LEN`] is cut there and read to its end
/// ([`TxEvents::NAME_TOO_LONG`]); past [`MAX_NAME_SEGMENTS`] labels and pointers, a name that
/// followed a pointer is cut ([`TxEvents::TOO_MANY_LABELS`]) and one that did not fails.
pub fn read_name(
    msg: &[u8],
    start: usize,
    events: &mut TxEvents,
) -> Result<(Vec<u8>, usize), DnsError> {
    let mut name = Vec::new();
    let after = walk_name(msg, start, events, |label| {
        if !name.is_empty() {
            name.push(b'.');
        }
        name.extend_from_slice(label);
    })?;
    name.truncate(MAX_READ_NAME_LEN);
    Ok((name, after))
}

/// Walk the name at `start` as [`read_name`] reads it, giving each label to `label` in order
/// until the dotted name is longer than [`MAX_READ_NAME_LEN`] (the caller cuts it there: no
/// label is given after that); the offset just past the name in the message. The one walk of
/// the parser and of the web address scan's allocation-free question reader
/// (`webscan::question`), so the two cannot differ.
pub fn walk_name(
    msg: &[u8],
    start: usize,
    events: &mut TxEvents,
    mut label: impl FnMut(&[u8]),
) -> Result<usize, DnsError> {
    let mut pos = start;
    let mut end: Option<usize> = None;
    let mut jumps = 0usize;
    let mut segments = 0usize;
    // The dotted length so far, and whether the name was cut.
    let mut name_len = 0usize;
    let mut cut = false;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(end.unwrap_or(pos.saturating_add(1))),
            0x00 => {
                let l = usize::from(len);
                let from = pos.saturating_add(1);
                let bytes = msg
                    .get(from..from.saturating_add(l))
                    .ok_or(DnsError::Truncated)?;
                if !cut {
                    name_len = name_len
                        .saturating_add(usize::from(name_len != 0))
                        .saturating_add(l);
                    label(bytes);
                }
                pos = from.saturating_add(l);
            }
            0xc0 => {
                let ptr = usize::from(u16_at(msg, pos).ok_or(DnsError::Truncated)? & 0x3fff);
                jumps = jumps.saturating_add(1);
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::PointerLoop);
                }
                end.get_or_insert(pos.saturating_add(2));
                pos = ptr;
            }
            _ => return Err(DnsError::BadLabel),
        }
        segments = segments.saturating_add(1);
        if segments > MAX_NAME_SEGMENTS {
            events.insert(TxEvents::TOO_MANY_LABELS);
            return match end {
                Some(after) => {
                    events.insert(TxEvents::NAME_TOO_LONG);
                    Ok(after)
                }
                None => Err(DnsError::TooManyLabels),
            };
        }
        if !cut && name_len > MAX_READ_NAME_LEN {
            cut = true;
            events.insert(TxEvents::NAME_TOO_LONG);
            if let Some(after) = end {
                return Ok(after);
            }
        }
    }
}

/// Read `count` records from `pos` into `out` (at most [`MAX_RECORDS`]); the offset after them,
/// or `None` when one does not parse or the cap cut the section.
fn read_records(
    msg: &[u8],
    mut pos: usize,
    count: usize,
    out: &mut Vec<Record>,
    events: &mut TxEvents,
) -> Option<usize> {
    for i in 0..count {
        if i >= MAX_RECORDS {
            return None;
        }
        let (name, after) = read_name(msg, pos, events).ok()?;
        let rrtype = u16_at(msg, after)?.to_be_bytes();
        let rdlen = usize::from(u16_at(msg, after.checked_add(8)?)?);
        let end = after.checked_add(10)?.checked_add(rdlen)?;
        if end > msg.len() {
            return None;
        }
        out.push(Record { name, rrtype });
        pos = end;
    }
    Some(pos)
}

/// Parse one message: the header, the questions (an error in them fails the message), and the
/// names and types of the other sections (an error there keeps what was read, see
/// [`Message::records_cut`]).
pub fn parse_message(msg: &[u8]) -> Result<Message, DnsError> {
    let id = u16_at(msg, 0).ok_or(DnsError::Truncated)?;
    let flags = u16_at(msg, 2).ok_or(DnsError::Truncated)?;
    let qdcount = usize::from(u16_at(msg, 4).ok_or(DnsError::Truncated)?);
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let opcode = u8::try_from((flags >> 11) & 0xf).unwrap_or_default();
    let rcode = u8::try_from(flags & 0xf).unwrap_or_default();
    let mut m = Message {
        id,
        response: flags & 0x8000 != 0,
        opcode,
        opcode_rcode: [[opcode], [rcode]],
        z: flags & 0x0040 != 0,
        truncated: qdcount > MAX_QUESTIONS,
        ..Message::default()
    };
    let mut pos = HEADER_LEN;
    const { assert!(MAX_QUESTIONS <= 32, "queries_cut holds a bit per question") };
    for i in 0..qdcount.min(MAX_QUESTIONS) {
        let mut ev = TxEvents::default();
        let (name, after) = read_name(msg, pos, &mut ev)?;
        if ev.contains(TxEvents::NAME_TOO_LONG) {
            m.queries_cut |= 1u32
                .checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
                .unwrap_or(0);
        }
        m.events.insert(ev);
        let qtype = u16_at(msg, after).ok_or(DnsError::Truncated)?;
        u16_at(msg, after.saturating_add(2)).ok_or(DnsError::Truncated)?;
        pos = after.saturating_add(4);
        m.queries.push(name);
        m.qtypes.push(qtype.to_be_bytes());
    }
    if m.z {
        m.events.insert(TxEvents::Z_FLAG_SET);
    }
    if opcode >= 7 {
        m.events.insert(TxEvents::INVALID_OPCODE);
    }
    if m.truncated {
        return Ok(m);
    }
    let counts = [6usize, 8, 10].map(|at| usize::from(u16_at(msg, at).unwrap_or(0)));
    let [an, ns, ar] = counts;
    let mut cut = false;
    let mut ev = m.events;
    let next = read_records(msg, pos, an, &mut m.answers, &mut ev)
        .and_then(|p| read_records(msg, p, ns, &mut m.authorities, &mut ev))
        .and_then(|p| read_records(msg, p, ar, &mut m.additionals, &mut ev));
    if next.is_none() {
        cut = true;
        ev.insert(TxEvents::MALFORMED_DATA);
    }
    m.events = ev;
    m.records_cut = cut;
    Ok(m)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    // Header: id 0x1234, RD, 2 questions. Q1 "www.Example.com" A IN; Q2 "mail" + pointer to
    // "Example.com" at offset 16, MX IN.
    const TWO_Q: &[u8] = b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\
\x03www\x07Example\x03com\x00\x00\x01\x00\x01\
\x04mail\xc0\x10\x00\x0f\x00\x01";

    #[test]
    fn compression_pointer() {
        let m = parse_message(TWO_Q).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(!m.response);
        assert_eq!(
            m.queries,
            vec![b"www.Example.com".to_vec(), b"mail.Example.com".to_vec()]
        );
        assert_eq!(m.qtypes, vec![[0, 1], [0, 15]]);
    }

    // A response (QR, RD, RA, Z, NXDOMAIN): question "a.io" A; answer a.io A; authority io NS;
    // additional x.io A (name "x" + pointer to "io").
    pub(crate) const RESPONSE: &[u8] = b"\x12\x34\x81\xc3\x00\x01\x00\x01\x00\x01\x00\x01\
\x01a\x02io\x00\x00\x01\x00\x01\
\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01\
\xc0\x0e\x00\x02\x00\x01\x00\x00\x00\x3c\x00\x02\xc0\x0c\
\x01x\xc0\x0e\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x02";

    #[test]
    fn response_sections() {
        let m = parse_message(RESPONSE).unwrap();
        assert!(m.response && m.z);
        assert_eq!(m.opcode_rcode, [[0], [3]]);
        assert_eq!(m.queries, vec![b"a.io".to_vec()]);
        let rec = |n: &[u8], t: u16| Record {
            name: n.to_vec(),
            rrtype: t.to_be_bytes(),
        };
        assert_eq!(m.answers, vec![rec(b"a.io", 1)]);
        assert_eq!(m.authorities, vec![rec(b"io", 2)]);
        assert_eq!(m.additionals, vec![rec(b"x.io", 1)]);
        assert!(!m.records_cut);
        // The additional record's data cut short: the sections before it are kept.
        let m = parse_message(&RESPONSE[..RESPONSE.len() - 1]).unwrap();
        assert_eq!(m.authorities.len(), 1);
        assert!(m.additionals.is_empty());
        assert!(m.records_cut);
        // An opcode 4 (NOTIFY) request.
        let m = parse_message(b"\x00\x01\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
        assert_eq!(m.opcode_rcode, [[4], [0]]);
        assert!(!m.response && !m.z);
    }

    // A pointer to itself, two labels pointing at each other, and two bare pointers.
    #[test]
    fn pointer_loops() {
        let self_loop = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01";
        assert_eq!(parse_message(self_loop), Err(DnsError::PointerLoop));
        let pair = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\xc0\x10\x01b\xc0\x0c";
        assert_eq!(parse_message(pair), Err(DnsError::PointerLoop));
        let pair = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0e\xc0\x0c";
        assert_eq!(parse_message(pair), Err(DnsError::PointerLoop));
    }

    // As Suricata: a name over 1025 bytes is cut there and the message kept (name_too_long);
    // more than 255 labels fail a name that followed no pointer, and cut one that did.
    #[test]
    fn long_names_are_cut() {
        let header = |qd: u8| {
            let mut m = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
            m[5] = qd;
            m
        };
        // 20 labels of 63 bytes: 1279 bytes dotted.
        let mut long = header(2);
        for _ in 0..20 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(b"\x00\x00\x01\x00\x01");
        // The second question points at the first.
        long.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
        let m = parse_message(&long).unwrap();
        assert_eq!(m.queries.len(), 2);
        assert!(m.queries.iter().all(|q| q.len() == MAX_READ_NAME_LEN));
        assert_eq!(m.queries_cut, 0b11);
        assert!(m.events.contains(TxEvents::NAME_TOO_LONG));
        assert!(!m.events.contains(TxEvents::TOO_MANY_LABELS));
        let names: Vec<_> = m.events.names(false, true).collect();
        assert_eq!(names, ["dns.name_too_long"]);
        // 300 one-byte labels: too many, no pointer followed.
        let mut many = header(1);
        for _ in 0..300 {
            many.extend_from_slice(b"\x01a");
        }
        many.extend_from_slice(b"\x00\x00\x01\x00\x01");
        assert_eq!(parse_message(&many), Err(DnsError::TooManyLabels));
        // The same labels reached through a pointer (say an answer's owner): cut after the
        // pointer and 255 labels, flagged, the name ending after the pointer.
        let mut msg = header(0);
        let at = msg.len();
        for _ in 0..300 {
            msg.extend_from_slice(b"\x01a");
        }
        msg.push(0);
        let owner = msg.len();
        msg.extend_from_slice(&(u16::try_from(at).unwrap() | 0xc000).to_be_bytes());
        let mut ev = TxEvents::default();
        let (name, after) = read_name(&msg, owner, &mut ev).unwrap();
        assert_eq!(after, owner + 2);
        assert!(ev.contains(TxEvents::TOO_MANY_LABELS) && ev.contains(TxEvents::NAME_TOO_LONG));
        assert_eq!(name.len(), 2 * MAX_NAME_SEGMENTS - 1);
        // The Z bit and an unassigned opcode.
        let mut z = header(0);
        z[2] = 0x78;
        z[3] = 0x40;
        let m = parse_message(&z).unwrap();
        let names: Vec<_> = m.events.names(false, true).collect();
        assert_eq!(names, ["dns.z_flag_set", "dns.invalid_opcode"]);
        let names: Vec<_> = m.events.names(false, false).collect();
        assert_eq!(
            names,
            ["dns.z_flag_set", "dns.invalid_opcode", "dns.not_a_response"]
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(parse_message(b"\x00\x01"), Err(DnsError::Truncated));
        let bad_label =
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40a\x00\x00\x01\x00\x01";
        assert_eq!(parse_message(bad_label), Err(DnsError::BadLabel));
        let no_type = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00";
        assert_eq!(parse_message(no_type), Err(DnsError::Truncated));
        // 40 questions announced, 40 present: the first 32 kept, flagged.
        let mut many = b"\x00\x01\x00\x00\x00\x28\x00\x00\x00\x00\x00\x00".to_vec();
        for _ in 0..40 {
            many.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        }
        let m = parse_message(&many).unwrap();
        assert!(m.truncated);
        assert_eq!(m.queries.len(), MAX_QUESTIONS);
    }

    // Cross-check with simple-dns as the emitter (with its name compression).
    #[test]
    fn agrees_with_simple_dns() {
        use simple_dns::{CLASS, Name, Packet, Question, TYPE};
        let mut p = Packet::new_query(7);
        for n in ["a.example.org", "b.a.example.org", "example.org"] {
            p.questions.push(Question::new(
                Name::new_unchecked(n),
                TYPE::A.into(),
                CLASS::IN.into(),
                false,
            ));
        }
        let wire = p.build_bytes_vec_compressed().unwrap();
        let m = parse_message(&wire).unwrap();
        assert_eq!(
            m.queries,
            vec![
                b"a.example.org".to_vec(),
                b"b.a.example.org".to_vec(),
                b"example.org".to_vec()
            ]
        );
    }

    proptest! {
        #[test]
        fn never_panics(msg in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_message(&msg);
        }

        // Any damage to a well-formed response: no panic, the record caps hold.
        #[test]
        fn damaged_response(at in 0usize..RESPONSE.len(), x in any::<u8>(), cut in 12usize..120) {
            let mut m = RESPONSE.to_vec();
            m[at] ^= x;
            m.truncate(cut);
            if let Ok(p) = parse_message(&m) {
                prop_assert!(p.answers.len() + p.authorities.len() + p.additionals.len() <= 3 * MAX_RECORDS);
            }
        }
    }
}
