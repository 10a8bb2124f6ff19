//! The answers svm gives in place of a resolver when a DNS query names a listed address (issue
//! 17 item 4), and the `use-application-dns.net` canary answer. Pure functions: the query's bytes
//! in, the answer's bytes out (the UDP payload, or the TCP form with its 2-byte length), or an
//! error saying why the query cannot be answered; no state, no panics on any input.
//!
//! Two modes ([`BlockMode`]):
//! - `null` (the default): `A 0.0.0.0` or `AAAA ::` with a short TTL ([`BLOCK_TTL`]); another
//!   type gets NODATA (NOERROR, no answer, the SOA in the authority section for negative
//!   caching, RFC 2308 section 2.2). The address is a forged answer: RFC 8914 info-code 4.
//! - `nxdomain`: NXDOMAIN with the SOA in the authority section (RFC 2308 section 2.1); RFC 8914
//!   info-code 15 (Blocked).
//!
//! The answer echoes the id, the question (byte for byte: case randomisation survives), RD and
//! CD; sets QR and RA (the client asked a resolver; it must not go looking for another). The SOA
//! belongs to the queried name and names `svm.invalid` (RFC 6761: never resolvable) as its
//! source, so no real zone is impersonated.
//!
//! # EDNS and Extended DNS Errors
//! When the query carries an OPT record (RFC 6891), the answer carries one too, with an
//! Extended DNS Error option (RFC 8914) whose extra text names the list. When the query has no
//! OPT, the answer has none either, and so no Extended DNS Error: RFC 6891 section 7 says the
//! responder MUST NOT include an OPT record then (the client said it does not understand one;
//! old stub resolvers drop such answers as FORMERR), and RFC 8914 section 3 defines the option
//! for answers to queries that include an OPT. The block is still plain to see: the address
//! 0.0.0.0/:: or NXDOMAIN, and the event svm reports. Every current stub and browser resolver
//! sends an OPT. A query of EDNS version above 0 gets BADVERS (RFC 6891 section 6.1.3), so the
//! client asks again in version 0.

/// TTL of a blocking answer and of its SOA, and the SOA's negative-caching time (seconds).
/// Short, so that an address taken off a list works again within seconds, as Pi-hole and
/// AdGuard do (2 s and 10 s).
pub const BLOCK_TTL: u32 = 10;

/// Bytes of an Extended DNS Error's extra text kept (cut at a character boundary). With the
/// longest question (259 bytes) and the SOA, the whole answer stays within the 512 bytes a UDP
/// answer may have without EDNS.
pub const MAX_EXTRA_TEXT: usize = 128;

/// Firefox's canary name: an NXDOMAIN for it keeps Firefox from switching to DNS over HTTPS,
/// so names stay visible to svm.
pub const CANARY: &str = "use-application-dns.net";

/// UDP payload size svm announces in its OPT record (the DNS flag day 2020 value).
const UDP_PAYLOAD_SIZE: u16 = 1232;

/// Records walked after the question to find the OPT (a query carries one, maybe a TSIG).
const MAX_RECORDS: usize = 16;

const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_SOA: u16 = 6;
const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u16 = 3;
/// BADVERS: extended RCODE 16 = 1 in the OPT's upper 8 bits, 0 in the header.
const EXT_RCODE_BADVERS: u8 = 1;
const OPTION_EDE: u16 = 15;

/// RFC 8914 info-codes svm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdeCode {
    /// 4: Forged Answer (the null address).
    ForgedAnswer,
    /// 15: Blocked (NXDOMAIN).
    Blocked,
    /// 17: Filtered (the canary: answered by policy, not because the name is bad).
    Filtered,
}

impl From<EdeCode> for u16 {
    fn from(c: EdeCode) -> u16 {
        match c {
            EdeCode::ForgedAnswer => 4,
            EdeCode::Blocked => 15,
            EdeCode::Filtered => 17,
        }
    }
}

/// How a listed name is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockMode {
    /// `A 0.0.0.0` / `AAAA ::`, NODATA for other types.
    #[default]
    Null,
    /// NXDOMAIN.
    NxDomain,
}

/// The form of the query and of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A UDP payload.
    Udp,
    /// A TCP message with its 2-byte length prefix (RFC 1035 section 4.2.2). Bytes after the
    /// first message (a pipelined query) are not read.
    Tcp,
}

/// Why a query cannot be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Shorter than its header, question or records say, or a TCP length past the bytes.
    #[error("dns answer: query truncated")]
    Truncated,
    /// The message is a response (QR set).
    #[error("dns answer: message is a response")]
    NotQuery,
    /// Not a standard query (opcode 0).
    #[error("dns answer: opcode {0} is not a standard query")]
    Opcode(u8),
    /// Not exactly one question (RFC 9619).
    #[error("dns answer: {0} questions, not one")]
    QuestionCount(u16),
    /// The question name is compressed, has a reserved label type or is longer than 255 bytes.
    #[error("dns answer: bad question name")]
    BadName,
    /// More than one OPT record (RFC 6891 section 6.1.1: FORMERR).
    #[error("dns answer: more than one OPT record")]
    DuplicateOpt,
    /// More records than [`MAX_RECORDS`] after the question.
    #[error("dns answer: too many records")]
    TooManyRecords,
}

/// What an answer needs from a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query<'a> {
    /// Transaction id.
    pub id: u16,
    /// Header flags.
    pub flags: u16,
    /// The question as sent: name, type, class.
    pub question: &'a [u8],
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The query's EDNS version, when it has an OPT record.
    pub edns_version: Option<u8>,
}

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(b.try_into().ok()?))
}

/// Offset just past an uncompressed name at `pos`, checking label types and length.
fn skip_name(msg: &[u8], mut pos: usize, allow_pointer: bool) -> Result<usize, AnswerError> {
    let mut wire = 0usize;
    loop {
        let len = *msg.get(pos).ok_or(AnswerError::Truncated)?;
        match len & 0xc0 {
            0 => {
                wire = wire.saturating_add(usize::from(len)).saturating_add(1);
                if wire > super::parser::MAX_NAME_LEN {
                    return Err(AnswerError::BadName);
                }
                pos = pos.saturating_add(1).saturating_add(usize::from(len));
                if len == 0 {
                    return if pos <= msg.len() {
                        Ok(pos)
                    } else {
                        Err(AnswerError::Truncated)
                    };
                }
            }
            // A record's owner may point back at the question; the question itself cannot.
            0xc0 if allow_pointer => {
                return msg
                    .get(pos..pos.saturating_add(2))
                    .map(|_| pos.saturating_add(2))
                    .ok_or(AnswerError::Truncated);
            }
            _ => return Err(AnswerError::BadName),
        }
    }
}

/// Read a standard query with one question, and its OPT record if any.
pub fn parse_query(msg: &[u8]) -> Result<Query<'_>, AnswerError> {
    if msg.len() < HEADER_LEN {
        return Err(AnswerError::Truncated);
    }
    let word = |at| u16_at(msg, at).ok_or(AnswerError::Truncated);
    let (id, flags) = (word(0)?, word(2)?);
    if flags & 0x8000 != 0 {
        return Err(AnswerError::NotQuery);
    }
    let opcode = u8::try_from((flags >> 11) & 0x0f).unwrap_or(u8::MAX);
    if opcode != 0 {
        return Err(AnswerError::Opcode(opcode));
    }
    let qdcount = word(4)?;
    if qdcount != 1 {
        return Err(AnswerError::QuestionCount(qdcount));
    }
    let records = usize::from(word(6)?)
        .saturating_add(usize::from(word(8)?))
        .saturating_add(usize::from(word(10)?));
    if records > MAX_RECORDS {
        return Err(AnswerError::TooManyRecords);
    }
    let name_end = skip_name(msg, HEADER_LEN, false)?;
    let qtype = word(name_end)?;
    let qclass = word(name_end.saturating_add(2))?;
    let q_end = name_end.saturating_add(4);
    let question = msg.get(HEADER_LEN..q_end).ok_or(AnswerError::Truncated)?;
    let mut edns_version = None;
    let mut pos = q_end;
    for _ in 0..records {
        let owner_end = skip_name(msg, pos, true)?;
        let rtype = word(owner_end)?;
        let ttl_hi = word(owner_end.saturating_add(4))?;
        let rdlen = usize::from(word(owner_end.saturating_add(8))?);
        pos = owner_end.saturating_add(10).saturating_add(rdlen);
        if pos > msg.len() {
            return Err(AnswerError::Truncated);
        }
        if rtype == TYPE_OPT {
            if edns_version.is_some() {
                return Err(AnswerError::DuplicateOpt);
            }
            edns_version = Some(u8::try_from(ttl_hi & 0xff).unwrap_or(u8::MAX));
        }
    }
    Ok(Query {
        id,
        flags,
        question,
        qtype,
        qclass,
        edns_version,
    })
}

/// The DNS message inside `query` for `transport`.
fn message(query: &[u8], transport: Transport) -> Result<&[u8], AnswerError> {
    match transport {
        Transport::Udp => Ok(query),
        Transport::Tcp => {
            let len = usize::from(u16_at(query, 0).ok_or(AnswerError::Truncated)?);
            query
                .get(2..2usize.saturating_add(len))
                .ok_or(AnswerError::Truncated)
        }
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.get(..end).unwrap_or_default()
}

/// What goes in the answer besides the question.
struct Reply<'t> {
    rcode: u16,
    /// The address of a null answer.
    address: Option<&'static [u8]>,
    soa: bool,
    ede: Option<(EdeCode, &'t str)>,
}

fn build(q: &Query<'_>, transport: Transport, reply: Reply<'_>) -> Vec<u8> {
    let badvers = q.edns_version.is_some_and(|v| v != 0);
    let mut out = Vec::with_capacity(512);
    if transport == Transport::Tcp {
        out.extend_from_slice(&[0, 0]);
    }
    let start = out.len();
    let flags = 0x8000 | (q.flags & 0x0110) | 0x0080 | if badvers { 0 } else { reply.rcode };
    let answers = u16::from(reply.address.is_some() && !badvers);
    let authority = u16::from(reply.soa && !badvers);
    let additional = u16::from(q.edns_version.is_some());
    for w in [q.id, flags, 1, answers, authority, additional] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(q.question);
    // Owner names point at the question's name (offset 12 of the message).
    const QNAME: [u8; 2] = [0xc0, 0x0c];
    let record = |out: &mut Vec<u8>, rtype: u16, rdata: &[u8]| {
        out.extend_from_slice(&QNAME);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&BLOCK_TTL.to_be_bytes());
        let len = u16::try_from(rdata.len()).unwrap_or(0);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(rdata);
    };
    if let (Some(addr), false) = (reply.address, badvers) {
        record(&mut out, q.qtype, addr);
    }
    if reply.soa && !badvers {
        let mut soa = Vec::with_capacity(64);
        soa.extend_from_slice(b"\x03svm\x07invalid\x00");
        soa.extend_from_slice(b"\x0ahostmaster\x03svm\x07invalid\x00");
        // Serial, refresh, retry, expire, minimum (the negative-caching TTL).
        for v in [1u32, 1800, 900, 604_800, BLOCK_TTL] {
            soa.extend_from_slice(&v.to_be_bytes());
        }
        record(&mut out, TYPE_SOA, &soa);
    }
    if q.edns_version.is_some() {
        let mut options = Vec::new();
        if let (Some((code, text)), false) = (reply.ede, badvers) {
            let text = cut(text, MAX_EXTRA_TEXT);
            let len = u16::try_from(text.len().saturating_add(2)).unwrap_or(2);
            options.extend_from_slice(&OPTION_EDE.to_be_bytes());
            options.extend_from_slice(&len.to_be_bytes());
            options.extend_from_slice(&u16::from(code).to_be_bytes());
            options.extend_from_slice(text.as_bytes());
        }
        out.push(0); // root
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&UDP_PAYLOAD_SIZE.to_be_bytes());
        let ext = if badvers { EXT_RCODE_BADVERS } else { 0 };
        out.extend_from_slice(&[ext, 0, 0, 0]); // extended rcode, version 0, no flags
        let len = u16::try_from(options.len()).unwrap_or(0);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&options);
    }
    if transport == Transport::Tcp {
        let len = u16::try_from(out.len().saturating_sub(start)).unwrap_or(u16::MAX);
        if let Some(prefix) = out.get_mut(..2) {
            prefix.copy_from_slice(&len.to_be_bytes());
        }
    }
    out
}

/// The answer to a query for a listed name: `mode` says which, `list` names the list in the
/// Extended DNS Error's extra text (cut to [`MAX_EXTRA_TEXT`] bytes; only when the query has an
/// OPT record, see the module doc).
pub fn block_answer(
    query: &[u8],
    transport: Transport,
    mode: BlockMode,
    list: &str,
) -> Result<Vec<u8>, AnswerError> {
    let q = parse_query(message(query, transport)?)?;
    let address: Option<&'static [u8]> = match (mode, q.qclass, q.qtype) {
        (BlockMode::Null, CLASS_IN, TYPE_A) => Some(&[0; 4]),
        (BlockMode::Null, CLASS_IN, TYPE_AAAA) => Some(&[0; 16]),
        _ => None,
    };
    let reply = Reply {
        rcode: if mode == BlockMode::NxDomain {
            RCODE_NXDOMAIN
        } else {
            0
        },
        soa: address.is_none(),
        address,
        ede: Some(match mode {
            BlockMode::Null => (EdeCode::ForgedAnswer, list),
            BlockMode::NxDomain => (EdeCode::Blocked, list),
        }),
    };
    Ok(build(&q, transport, reply))
}

/// Whether a query name (dotted, trailing dot or not, any case) is the canary [`CANARY`].
pub fn is_canary(qname: &[u8]) -> bool {
    let name = qname.strip_suffix(b".").unwrap_or(qname);
    name.eq_ignore_ascii_case(CANARY.as_bytes())
}

/// NXDOMAIN for the canary [`CANARY`] (whatever the query's name is: the caller checks it with
/// [`is_canary`]), with Extended DNS Error 17 (Filtered) when the query has an OPT record.
pub fn canary_answer(query: &[u8], transport: Transport) -> Result<Vec<u8>, AnswerError> {
    let q = parse_query(message(query, transport)?)?;
    let reply = Reply {
        rcode: RCODE_NXDOMAIN,
        address: None,
        soa: true,
        ede: Some((EdeCode::Filtered, "svm: DNS over HTTPS canary")),
    };
    Ok(build(&q, transport, reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::dns::parser::parse_message;
    use proptest::prelude::*;
    use simple_dns::rdata::RData;
    use simple_dns::{CLASS, Name, Packet, PacketFlag, Question, RCODE, TYPE};

    /// A query built by simple-dns: `name`, `qtype`, RD set, with an OPT record when `edns`.
    fn query(id: u16, name: &str, qtype: TYPE, edns: bool) -> Vec<u8> {
        let mut p = Packet::new_query(id);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype.into(),
            CLASS::IN.into(),
            false,
        ));
        if edns {
            *p.opt_mut() = Some(simple_dns::rdata::OPT {
                opt_codes: Vec::new(),
                udp_packet_size: 4096,
                version: 0,
            });
        }
        p.build_bytes_vec().unwrap()
    }

    /// The answer read by simple-dns and by our parser; returns simple-dns's view.
    fn read(answer: &[u8]) -> Packet<'_> {
        let ours = parse_message(answer).unwrap();
        assert!(ours.response);
        Packet::parse(answer).unwrap()
    }

    fn ede(p: &Packet<'_>) -> Option<(u16, String)> {
        let opt = p.opt()?;
        let o = opt.opt_codes.iter().find(|o| o.code == OPTION_EDE)?;
        let code = u16::from_be_bytes([o.data[0], o.data[1]]);
        Some((code, String::from_utf8(o.data[2..].to_vec()).unwrap()))
    }

    #[test]
    fn null_a_and_aaaa() {
        for (qtype, want) in [(TYPE::A, &[0u8; 4][..]), (TYPE::AAAA, &[0u8; 16][..])] {
            let q = query(0x4242, "Evil.Example.COM", qtype, true);
            let a = block_answer(
                &q,
                Transport::Udp,
                BlockMode::Null,
                "phishing-domains.txt (phishing)",
            )
            .unwrap();
            let p = read(&a);
            assert_eq!(p.id(), 0x4242);
            assert!(p.has_flags(PacketFlag::RESPONSE | PacketFlag::RECURSION_DESIRED));
            assert!(p.has_flags(PacketFlag::RECURSION_AVAILABLE));
            assert_eq!(p.rcode(), RCODE::NoError);
            // The question comes back as sent (case kept).
            assert_eq!(p.questions[0].qname.to_string(), "Evil.Example.COM");
            assert_eq!(p.answers.len(), 1);
            let rr = &p.answers[0];
            assert_eq!(rr.name.to_string(), "Evil.Example.COM");
            assert_eq!(rr.ttl, BLOCK_TTL);
            match &rr.rdata {
                RData::A(a) => assert_eq!(a.address.to_be_bytes(), want),
                RData::AAAA(a) => assert_eq!(a.address.to_be_bytes(), want),
                other => panic!("{other:?}"),
            }
            assert!(p.name_servers.is_empty());
            assert_eq!(
                ede(&p),
                Some((4, "phishing-domains.txt (phishing)".to_string()))
            );
        }
    }

    // Other types in null mode: NODATA with the SOA.
    #[test]
    fn null_nodata() {
        let q = query(1, "evil.example", TYPE::MX, true);
        let p_bytes = block_answer(&q, Transport::Udp, BlockMode::Null, "l").unwrap();
        let p = read(&p_bytes);
        assert_eq!(p.rcode(), RCODE::NoError);
        assert!(p.answers.is_empty());
        assert_eq!(p.name_servers.len(), 1);
        match &p.name_servers[0].rdata {
            RData::SOA(soa) => {
                assert_eq!(soa.mname.to_string(), "svm.invalid");
                assert_eq!(soa.minimum, BLOCK_TTL);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nxdomain() {
        let q = query(7, "bad.example.net", TYPE::A, true);
        let a = block_answer(
            &q,
            Transport::Udp,
            BlockMode::NxDomain,
            "malware-domains.txt",
        )
        .unwrap();
        let p = read(&a);
        assert_eq!(p.rcode(), RCODE::NameError);
        assert!(p.answers.is_empty());
        assert_eq!(p.name_servers[0].name.to_string(), "bad.example.net");
        assert!(matches!(p.name_servers[0].rdata, RData::SOA(_)));
        assert_eq!(ede(&p), Some((15, "malware-domains.txt".to_string())));
    }

    // No OPT in the query: none in the answer (RFC 6891 section 7), the block itself unchanged.
    #[test]
    fn no_opt_no_ede() {
        let q = query(9, "bad.example", TYPE::A, false);
        let a = block_answer(&q, Transport::Udp, BlockMode::Null, "list").unwrap();
        let p = read(&a);
        assert!(p.opt().is_none());
        assert!(p.additional_records.is_empty());
        assert_eq!(p.answers.len(), 1);
    }

    // EDNS version 1: BADVERS, no answer, an OPT of version 0.
    #[test]
    fn badvers() {
        let mut q = query(9, "bad.example", TYPE::A, true);
        // The OPT ends: extended rcode, version, flags (2), rdata length (2), no options.
        let version = q.len() - 5;
        q[version] = 1;
        let a = block_answer(&q, Transport::Udp, BlockMode::Null, "list").unwrap();
        let p = read(&a);
        assert!(p.answers.is_empty() && p.name_servers.is_empty());
        // simple-dns 0.13 reads the extended rcode and version from the wrong bytes of the
        // OPT's TTL (its low 16 bits instead of the high ones), so the bytes are checked here:
        // header rcode 0, OPT with extended rcode 1 (16 = BADVERS), version 0, no option.
        assert_eq!(a[3] & 0x0f, 0);
        assert_eq!(
            &a[a.len() - 11..],
            b"\x00\x00\x29\x04\xd0\x01\x00\x00\x00\x00\x00"
        );
    }

    #[test]
    fn tcp_form() {
        let q = query(3, "bad.example", TYPE::AAAA, true);
        let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        framed.extend_from_slice(b"\x00\x10next query...");
        let a = block_answer(&framed, Transport::Tcp, BlockMode::Null, "list").unwrap();
        let len = usize::from(u16::from_be_bytes([a[0], a[1]]));
        assert_eq!(len, a.len() - 2);
        let udp = block_answer(&q, Transport::Udp, BlockMode::Null, "list").unwrap();
        assert_eq!(&a[2..], &udp[..]);
        assert_eq!(
            block_answer(&framed[..20], Transport::Tcp, BlockMode::Null, "l"),
            Err(AnswerError::Truncated)
        );
    }

    #[test]
    fn canary() {
        assert!(is_canary(b"use-application-dns.net"));
        assert!(is_canary(b"Use-Application-DNS.net."));
        assert!(!is_canary(b"x.use-application-dns.net"));
        let q = query(5, "use-application-dns.net", TYPE::A, true);
        let a = canary_answer(&q, Transport::Udp).unwrap();
        let p = read(&a);
        assert_eq!(p.rcode(), RCODE::NameError);
        assert_eq!(ede(&p).map(|e| e.0), Some(17));
    }

    // The longest name with the longest text, without EDNS and with: within 512 bytes.
    #[test]
    fn sizes() {
        let label = "a".repeat(63);
        let name = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        let text = "é".repeat(200);
        for edns in [false, true] {
            for mode in [BlockMode::Null, BlockMode::NxDomain] {
                let q = query(1, &name, TYPE::TXT, edns);
                let a = block_answer(&q, Transport::Udp, mode, &text).unwrap();
                assert!(a.len() <= 512, "{}", a.len());
                let p = read(&a);
                if edns {
                    let (_, t) = ede(&p).unwrap();
                    assert_eq!(t.len(), MAX_EXTRA_TEXT);
                }
            }
        }
    }

    #[test]
    fn malformed() {
        let good = query(1, "a.example", TYPE::A, true);
        let answer = |q: &[u8]| block_answer(q, Transport::Udp, BlockMode::Null, "l");
        assert_eq!(answer(&good[..5]), Err(AnswerError::Truncated));
        assert_eq!(answer(&good[..good.len() - 3]), Err(AnswerError::Truncated));
        let mut r = good.clone();
        r[2] |= 0x80;
        assert_eq!(answer(&r), Err(AnswerError::NotQuery));
        let mut r = good.clone();
        r[2] |= 0x28; // opcode 5, UPDATE
        assert_eq!(answer(&r), Err(AnswerError::Opcode(5)));
        let mut r = good.clone();
        r[5] = 2;
        assert!(answer(&r).is_err());
        r[5] = 0;
        assert_eq!(answer(&r), Err(AnswerError::QuestionCount(0)));
        // A compressed question name.
        let mut r = good[..12].to_vec();
        r.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01");
        r[11] = 0;
        assert_eq!(answer(&r), Err(AnswerError::BadName));
        // Two OPT records.
        let mut r = good.clone();
        r[11] = 2;
        r.extend_from_slice(&good[good.len() - 11..]);
        assert_eq!(answer(&r), Err(AnswerError::DuplicateOpt));
        // 60 records announced.
        let mut r = good.clone();
        r[11] = 60;
        assert_eq!(answer(&r), Err(AnswerError::TooManyRecords));
    }

    proptest! {
        // Any name of valid labels, any type, both modes, both transports, with and without
        // EDNS: simple-dns and our parser read the answer, which echoes the query.
        #[test]
        fn answers_parse(
            labels in proptest::collection::vec("[a-zA-Z0-9-]{1,20}", 1..6),
            qtype in prop_oneof![Just(TYPE::A), Just(TYPE::AAAA), Just(TYPE::TXT), Just(TYPE::HTTPS)],
            nx in any::<bool>(),
            edns in any::<bool>(),
            id in any::<u16>(),
            text in ".{0,200}",
        ) {
            let name = labels.join(".");
            let q = query(id, &name, qtype, edns);
            let mode = if nx { BlockMode::NxDomain } else { BlockMode::Null };
            let a = block_answer(&q, Transport::Udp, mode, &text).unwrap();
            let ours = parse_message(&a).unwrap();
            prop_assert_eq!(ours.id, id);
            prop_assert_eq!(&ours.queries, &vec![name.as_bytes().to_vec()]);
            let p = Packet::parse(&a).unwrap();
            prop_assert_eq!(p.opt().is_some(), edns);
            prop_assert_eq!(p.rcode() == RCODE::NameError, nx);
        }

        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            for t in [Transport::Udp, Transport::Tcp] {
                let _ = block_answer(&buf, t, BlockMode::Null, "x");
                let _ = canary_answer(&buf, t);
            }
        }
    }
}
