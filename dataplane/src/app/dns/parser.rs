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

/// Wire length of a name (RFC 1035 section 2.3.4: 255 octets).
pub const MAX_NAME_LEN: usize = 255;

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
    /// A name longer than [`MAX_NAME_LEN`].
    #[error("dns: name too long")]
    NameTooLong,
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Read the name at `start`; returns it (dotted) and the offset just past it in the message.
pub fn read_name(msg: &[u8], start: usize) -> Result<(Vec<u8>, usize), DnsError> {
    let mut name = Vec::new();
    let mut wire_len = 0usize;
    let mut pos = start;
    let mut end: Option<usize> = None;
    let mut jumps = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let after = pos.saturating_add(1);
                return Ok((name, end.unwrap_or(after)));
            }
            0x00 => {
                let l = usize::from(len);
                wire_len = wire_len.saturating_add(l).saturating_add(1);
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                let from = pos.saturating_add(1);
                let label = msg
                    .get(from..from.saturating_add(l))
                    .ok_or(DnsError::Truncated)?;
                if !name.is_empty() {
                    name.push(b'.');
                }
                name.extend_from_slice(label);
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
    }
}

/// Read `count` records from `pos` into `out` (at most [`MAX_RECORDS`]); the offset after them,
/// or `None` when one does not parse or the cap cut the section.
fn read_records(msg: &[u8], mut pos: usize, count: usize, out: &mut Vec<Record>) -> Option<usize> {
    for i in 0..count {
        if i >= MAX_RECORDS {
            return None;
        }
        let (name, after) = read_name(msg, pos).ok()?;
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
    for _ in 0..qdcount.min(MAX_QUESTIONS) {
        let (name, after) = read_name(msg, pos)?;
        let qtype = u16_at(msg, after).ok_or(DnsError::Truncated)?;
        u16_at(msg, after.saturating_add(2)).ok_or(DnsError::Truncated)?;
        pos = after.saturating_add(4);
        m.queries.push(name);
        m.qtypes.push(qtype.to_be_bytes());
    }
    if m.truncated {
        return Ok(m);
    }
    let counts = [6usize, 8, 10].map(|at| usize::from(u16_at(msg, at).unwrap_or(0)));
    let [an, ns, ar] = counts;
    let mut cut = false;
    let next = read_records(msg, pos, an, &mut m.answers)
        .and_then(|p| read_records(msg, p, ns, &mut m.authorities))
        .and_then(|p| read_records(msg, p, ar, &mut m.additionals));
    if next.is_none() {
        cut = true;
    }
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
