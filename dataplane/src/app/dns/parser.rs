//! DNS message header and question section, over checked reads.
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

/// Wire length of a name (RFC 1035 section 2.3.4: 255 octets).
pub const MAX_NAME_LEN: usize = 255;

const HEADER_LEN: usize = 12;

/// A parsed message: header fields we use and the question names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response.
    pub response: bool,
    /// Opcode.
    pub opcode: u8,
    /// Question names as `dns.query` shows them: labels joined by '.', no trailing dot, bytes
    /// as sent (case kept); the root name is empty.
    pub queries: Vec<Vec<u8>>,
    /// Question types, in the order of `queries`.
    pub qtypes: Vec<u16>,
    /// The question count exceeded [`MAX_QUESTIONS`] (recoverable).
    pub truncated: bool,
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

/// Parse the header and question section of one message. Later sections are not read.
pub fn parse_message(msg: &[u8]) -> Result<Message, DnsError> {
    let id = u16_at(msg, 0).ok_or(DnsError::Truncated)?;
    let flags = u16_at(msg, 2).ok_or(DnsError::Truncated)?;
    let qdcount = usize::from(u16_at(msg, 4).ok_or(DnsError::Truncated)?);
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let mut m = Message {
        id,
        response: flags & 0x8000 != 0,
        opcode: u8::try_from((flags >> 11) & 0xf).unwrap_or_default(),
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
        m.qtypes.push(qtype);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(m.qtypes, vec![1, 15]);
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
    }
}
