//! The question names of a DNS query, read where they lie: the web address scan's reader.
//!
//! [`crate::app::dns::parser::parse_message`] builds the whole message: a `Vec` for every
//! question name and every record's name, and the record sections besides. The scan reads the
//! question names of each query datagram and needs nothing else, so [`questions`] checks the
//! header and every question as the full parser does (the same checks in the same order, so the
//! same error on the same message) without copying anything, and [`Questions::next_name`] then
//! writes each name, dotted, into a buffer on the stack: no allocation. Names are walked by the
//! parser's own [`parser::walk_name`], so their checks and their 1025-byte cut are the parser's.
//!
//! What it gives equals what the full parser gives (`Ok(None)` for a response or a message
//! without questions, the first [`MAX_QUESTIONS`] names, dotted as `dns.query` shows them, the
//! same [`DnsError`] for a malformed header or question): a property test below and the
//! `web_flow` fuzz target hold it to that.

use crate::app::dns::parser::{self, DnsError, MAX_QUESTIONS, MAX_READ_NAME_LEN, TxEvents};

const HEADER_LEN: usize = 12;

/// The checked question section of a query message (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct Questions<'a> {
    msg: &'a [u8],
    /// Questions checked, at most [`MAX_QUESTIONS`].
    count: usize,
}

/// A query's questions: `Ok(None)` for a response or a message without questions, `Err` when
/// the header or a question (of the first [`MAX_QUESTIONS`]) is malformed, as
/// [`crate::app::dns::parser::parse_message`] says.
pub fn questions(msg: &[u8]) -> Result<Option<Questions<'_>>, DnsError> {
    check(msg, |_| {})
}

/// [`questions`], with the first question's name written into `name` by the walk that checks
/// it: a query of one question, as nearly every query is, has its name read once, not once to
/// check it and once more by [`Names::next_name`]. The name is the one `next_name` gives first.
pub fn questions_first<'a, 'n>(
    msg: &'a [u8],
    name: &'n mut NameBuf,
) -> Result<Option<(Questions<'a>, &'n [u8])>, DnsError> {
    name.len = 0;
    let q = check(msg, |label| name.push(label))?;
    let name: &'n NameBuf = name;
    Ok(q.map(|q| (q, name.get())))
}

/// The header and the first [`MAX_QUESTIONS`] questions checked; `first` is given the first
/// question's labels.
fn check(msg: &[u8], first: impl FnMut(&[u8])) -> Result<Option<Questions<'_>>, DnsError> {
    let (Some(flags), Some(qdcount)) = (u16_at(msg, 2), u16_at(msg, 4)) else {
        return Err(DnsError::Truncated);
    };
    if msg.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let count = usize::from(qdcount).min(MAX_QUESTIONS);
    let mut pos = HEADER_LEN;
    if count > 0 {
        pos = question_end(msg, pos, first)?;
    }
    for _ in 1..count {
        pos = question_end(msg, pos, |_| {})?;
    }
    if flags & 0x8000 != 0 || count == 0 {
        return Ok(None);
    }
    Ok(Some(Questions { msg, count }))
}

/// A question name, dotted, in a buffer on the stack (cut at [`MAX_READ_NAME_LEN`] bytes, as
/// the full parser cuts it).
#[derive(Debug)]
pub struct NameBuf {
    buf: [u8; MAX_READ_NAME_LEN],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf {
            buf: [0; MAX_READ_NAME_LEN],
            len: 0,
        }
    }
}

impl NameBuf {
    /// One more label: as the full parser, labels are joined by dots and the name is cut at
    /// [`MAX_READ_NAME_LEN`] bytes (the walk stops giving labels once it is cut). A label is
    /// copied whole, not byte by byte: names near the cut are a kilobyte long.
    fn push(&mut self, label: &[u8]) {
        let buf = &mut self.buf;
        let mut len = self.len;
        if len != 0
            && let Some(slot) = buf.get_mut(len)
        {
            *slot = b'.';
            len += 1;
        }
        let take = label.len().min(buf.len().saturating_sub(len));
        if let (Some(to), Some(from)) = (buf.get_mut(len..len + take), label.get(..take)) {
            to.copy_from_slice(from);
            len += take;
        }
        self.len = len;
    }

    fn get(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl<'a> Questions<'a> {
    /// How many names [`Questions::names`] gives.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (never, for what [`questions`] returns).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A reader of the names, first to last.
    pub fn names(&self) -> Names<'a> {
        Names {
            msg: self.msg,
            pos: HEADER_LEN,
            left: self.count,
            buf: NameBuf::default(),
        }
    }

    /// The questions of a message [`questions`] checked already and found `count` in
    /// ([`Questions::len`]), not checked again (a message that was not checked so gives no
    /// name past what its bytes hold, and never panics).
    pub fn checked(msg: &'a [u8], count: usize) -> Questions<'a> {
        Questions {
            msg,
            count: count.min(MAX_QUESTIONS),
        }
    }
}

/// The question names, one after another, each written into the reader's own buffer.
#[derive(Debug)]
pub struct Names<'a> {
    msg: &'a [u8],
    pos: usize,
    left: usize,
    buf: NameBuf,
}

impl Names<'_> {
    /// The next name, dotted (labels joined by `.`, no trailing dot, bytes as sent; the root
    /// name is empty), or `None` after the last.
    pub fn next_name(&mut self) -> Option<&[u8]> {
        self.left = self.left.checked_sub(1)?;
        let buf = &mut self.buf;
        buf.len = 0;
        let end = walk_name(self.msg, self.pos, |label| buf.push(label)).ok()?;
        // The type and class follow the name (checked by `questions`).
        self.pos = end.saturating_add(4);
        Some(self.buf.get())
    }
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// The offset past the question at `pos` (its name, type and class).
fn question_end(msg: &[u8], pos: usize, label: impl FnMut(&[u8])) -> Result<usize, DnsError> {
    let after = walk_name(msg, pos, label)?;
    u16_at(msg, after).ok_or(DnsError::Truncated)?;
    u16_at(msg, after.saturating_add(2)).ok_or(DnsError::Truncated)?;
    Ok(after.saturating_add(4))
}

/// Walk the name at `start` with the parser's walk (its checks, errors and cut); its events are
/// the parser's to report, not the scan's.
fn walk_name(msg: &[u8], start: usize, label: impl FnMut(&[u8])) -> Result<usize, DnsError> {
    parser::walk_name(msg, start, &mut TxEvents::default(), label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::dns::parser::parse_message;
    use proptest::prelude::*;

    /// What the scan took from the full parser: the question names of a query.
    fn full(msg: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DnsError> {
        let m = parse_message(msg)?;
        Ok((!m.response && !m.queries.is_empty()).then_some(m.queries))
    }

    fn mine(msg: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DnsError> {
        let mut first = NameBuf::default();
        let with_first = questions_first(msg, &mut first).map(|q| q.map(|(q, _)| q.len()));
        assert_eq!(with_first, questions(msg).map(|q| q.map(|q| q.len())));
        let Some(q) = questions(msg)? else {
            return Ok(None);
        };
        let mut names = q.names();
        let mut out = Vec::new();
        while let Some(n) = names.next_name() {
            out.push(n.to_vec());
        }
        assert_eq!(out.len(), q.len(), "every checked question has a name");
        // The first name read while checking is the first the reader gives, and a message
        // checked already reads the same without the checks.
        let mut first = NameBuf::default();
        let (q1, name) = questions_first(msg, &mut first).unwrap().unwrap();
        assert_eq!(
            (q1.len(), Some(name.to_vec())),
            (q.len(), out.first().cloned())
        );
        let mut again = Questions::checked(msg, q.len()).names();
        for n in &out {
            assert_eq!(again.next_name(), Some(&n[..]));
        }
        Ok(Some(out))
    }

    // Two questions, the second "mail" with a pointer to "Example.com" (offset 16).
    const TWO_Q: &[u8] = b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\
\x03www\x07Example\x03com\x00\x00\x01\x00\x01\
\x04mail\xc0\x10\x00\x0f\x00\x01";

    #[test]
    fn names_as_the_full_parser_gives_them() {
        assert_eq!(
            mine(TWO_Q),
            Ok(Some(vec![
                b"www.Example.com".to_vec(),
                b"mail.Example.com".to_vec()
            ]))
        );
        // The root name, and a response (its question malformed or not).
        let root = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01";
        assert_eq!(mine(root), Ok(Some(vec![Vec::new()])));
        let mut resp = TWO_Q.to_vec();
        resp[2] |= 0x80;
        assert_eq!(mine(&resp), Ok(None));
        resp.truncate(20);
        assert_eq!(mine(&resp), Err(DnsError::Truncated));
        // No questions.
        assert_eq!(
            mine(&TWO_Q[..12].iter().map(|_| 0).collect::<Vec<_>>()),
            Ok(None)
        );
        for m in [TWO_Q, root, &resp] {
            assert_eq!(mine(m), full(m));
        }
    }

    #[test]
    fn malformed_as_the_full_parser_says() {
        let cases: [&[u8]; 6] = [
            b"\x00\x01",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40a\x00\x00\x01\x00\x01",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\xc0\x10\x01b\xc0\x0c",
        ];
        for m in cases {
            assert!(mine(m).is_err(), "{m:?}");
            assert_eq!(mine(m), full(m), "{m:?}");
        }
        // A name over 1025 bytes is cut there, as the full parser cuts it; one of more than
        // 255 labels that followed no pointer is refused.
        let mut long = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        for _ in 0..17 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(b"\x00\x00\x01\x00\x01");
        let names = mine(&long).unwrap().unwrap();
        assert_eq!(names[0].len(), MAX_READ_NAME_LEN);
        assert_eq!(mine(&long), full(&long));
        // The same name reached through a pointer: cut, and read past the pointer.
        let mut via = long.clone();
        via.truncate(via.len() - 5);
        via.extend_from_slice(b"\x00\x00\x01\x00\x01\x01b\xc0\x0c\x00\x01\x00\x01");
        via[5] = 2;
        assert_eq!(mine(&via).unwrap().unwrap()[1].len(), MAX_READ_NAME_LEN);
        assert_eq!(mine(&via), full(&via));
        let mut labels = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec();
        for _ in 0..=parser::MAX_NAME_SEGMENTS {
            labels.extend_from_slice(b"\x01a");
        }
        labels.extend_from_slice(b"\x00\x00\x01\x00\x01");
        assert_eq!(mine(&labels), Err(DnsError::TooManyLabels));
        assert_eq!(mine(&labels), full(&labels));
        // 40 questions announced and present: the first 32.
        let mut many = b"\x00\x01\x00\x00\x00\x28\x00\x00\x00\x00\x00\x00".to_vec();
        for _ in 0..40 {
            many.extend_from_slice(b"\x01a\x00\x00\x01\x00\x01");
        }
        assert_eq!(mine(&many).unwrap().unwrap().len(), MAX_QUESTIONS);
        assert_eq!(mine(&many), full(&many));
    }

    /// A query of names (labels from a small alphabet, with dots and binary bytes among them),
    /// later names pointing into earlier ones at times.
    fn query_bytes() -> impl Strategy<Value = Vec<u8>> {
        let label = proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'B'),
                Just(b'.'),
                Just(0u8),
                Just(0xc0),
                any::<u8>()
            ],
            1..70,
        );
        // Up to 24 labels: some names pass the 1025-byte cut.
        let name = proptest::collection::vec(label, 0..24);
        (
            any::<u16>(),
            proptest::collection::vec((name, any::<bool>()), 1..5),
        )
            .prop_map(|(flags, names)| {
                let mut m = vec![0, 1];
                m.extend_from_slice(&flags.to_be_bytes());
                m.extend_from_slice(&u16::try_from(names.len()).unwrap().to_be_bytes());
                m.extend_from_slice(&[0; 6]);
                for (labels, point) in names {
                    for l in &labels {
                        m.push(u8::try_from(l.len()).unwrap());
                        m.extend_from_slice(l);
                    }
                    if point {
                        m.extend_from_slice(&[0xc0, 12]);
                    } else {
                        m.push(0);
                    }
                    m.extend_from_slice(&[0, 1, 0, 1]);
                }
                m
            })
    }

    proptest! {
        /// Well-formed queries (some with names over the length cap), then damaged and cut:
        /// the same names or the same error as the full parser.
        #[test]
        fn agrees_with_the_full_parser(msg in query_bytes(), at in any::<usize>(), x in any::<u8>(),
                                       cut in any::<usize>()) {
            prop_assert_eq!(mine(&msg), full(&msg));
            let mut bad = msg.clone();
            let i = at % bad.len();
            bad[i] ^= x;
            bad.truncate(cut % (bad.len() + 1));
            prop_assert_eq!(mine(&bad), full(&bad));
        }

        #[test]
        fn any_bytes(msg in proptest::collection::vec(any::<u8>(), 0..600)) {
            prop_assert_eq!(mine(&msg), full(&msg));
        }
    }
}
