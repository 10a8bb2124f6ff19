//! TLS ClientHello parsing over tls-parser: record framing and SNI extraction.
//! Pure functions: no state, no logging, no panics on any input.

use tls_parser::{
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType, parse_tls_extensions,
    parse_tls_message_handshake, parse_tls_raw_record,
};

/// Handshake message type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;

/// What the ClientHello told us.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The first `host_name` of the server_name extension, as sent.
    pub sni: Option<Vec<u8>>,
}

/// One record at the start of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A complete record: its content type, its payload, and the bytes it took.
    Complete {
        /// Content type (22 handshake).
        content_type: u8,
        /// Payload.
        payload: &'a [u8],
        /// Header + payload length.
        len: usize,
    },
    /// More bytes needed.
    Incomplete,
}

/// Why TLS bytes cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A record header is invalid or announces more than the protocol allows.
    #[error("tls: malformed record")]
    Record,
    /// The handshake message is not a well-formed ClientHello.
    #[error("tls: malformed handshake")]
    Handshake,
}

/// Read one record at the start of `buf`.
pub fn record(buf: &[u8]) -> Result<Record<'_>, ParseError> {
    match parse_tls_raw_record(buf) {
        Ok((rest, rec)) => Ok(Record::Complete {
            content_type: rec.hdr.record_type.0,
            payload: rec.data,
            len: buf.len().saturating_sub(rest.len()),
        }),
        Err(tls_parser::nom::Err::Incomplete(_)) => Ok(Record::Incomplete),
        Err(_) => Err(ParseError::Record),
    }
}

/// Whether a record content type is handshake.
pub fn is_handshake(content_type: u8) -> bool {
    content_type == TlsRecordType::Handshake.0
}

/// Length of the first handshake message in `hs` (header included), once its 4-byte header is
/// there, and its type.
pub fn handshake_len(hs: &[u8]) -> Option<(u8, usize)> {
    match hs {
        [t, a, b, c, ..] => Some((
            *t,
            4usize
                .saturating_add(usize::from(*a) << 16)
                .saturating_add(usize::from(*b) << 8)
                .saturating_add(usize::from(*c)),
        )),
        _ => None,
    }
}

/// Parse a complete ClientHello handshake message (header included) and extract the SNI.
pub fn client_hello(msg: &[u8]) -> Result<ClientHello, ParseError> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) =
        parse_tls_message_handshake(msg)
    else {
        return Err(ParseError::Handshake);
    };
    let mut hello = ClientHello::default();
    let Some(ext) = ch.ext else {
        return Ok(hello);
    };
    // Extensions that fail to parse end the list; SNI usually comes first, keep what parsed.
    let exts = parse_tls_extensions(ext)
        .map(|(_, e)| e)
        .unwrap_or_default();
    hello.sni = exts.iter().find_map(|e| match e {
        TlsExtension::SNI(names) => names
            .iter()
            .find(|(t, _)| *t == SNIType::HostName)
            .map(|(_, n)| n.to_vec()),
        _ => None,
    });
    Ok(hello)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello handshake message (header included) with SNI `name`.
    pub(crate) fn client_hello_msg(name: &[u8]) -> Vec<u8> {
        let mut sni = Vec::new();
        let list_len = u16::try_from(name.len() + 3).unwrap();
        sni.extend_from_slice(&[0x00, 0x00]);
        sni.extend_from_slice(&(list_len + 2).to_be_bytes());
        sni.extend_from_slice(&list_len.to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        sni.extend_from_slice(name);
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0x11; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[0x01, 0x00]); // null compression
        body.extend_from_slice(&u16::try_from(sni.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&sni);
        let mut msg = vec![CLIENT_HELLO];
        let l = u32::try_from(body.len()).unwrap().to_be_bytes();
        msg.extend_from_slice(&l[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// `payload` wrapped in handshake records of at most `max` bytes each.
    pub(crate) fn records(payload: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in payload.chunks(max) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn sni_extracted() {
        let msg = client_hello_msg(b"Www.Example.org");
        assert_eq!(
            client_hello(&msg).unwrap().sni.as_deref(),
            Some(&b"Www.Example.org"[..])
        );
        let rec = records(&msg, 1 << 14);
        match record(&rec).unwrap() {
            Record::Complete {
                content_type, len, ..
            } => {
                assert!(is_handshake(content_type));
                assert_eq!(len, rec.len());
            }
            Record::Incomplete => panic!("complete record expected"),
        }
        assert_eq!(record(&rec[..3]), Ok(Record::Incomplete));
        assert_eq!(client_hello(&msg[..20]), Err(ParseError::Handshake));
    }
}
