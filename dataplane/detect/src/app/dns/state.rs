//! Per-flow DNS state: one message per UDP datagram; over TCP, messages framed by a 2-byte
//! length prefix (RFC 1035 section 4.2.2), reassembled across segments with a cap.

use super::parser::{self, DnsError};
use crate::app::{AppEvent, AppEvents, TxData};

/// A TCP-framed message is at most 65535 bytes (the prefix is 16 bits): that, plus the prefix,
/// is the most a direction holds.
pub const MAX_TCP_BUFFER: usize = 2 + 0xffff;

/// DNS state of one flow.
#[derive(Debug, Default)]
pub struct DnsState {
    /// Partial TCP message per direction: `[to_server, to_client]`.
    buf: [Vec<u8>; 2],
    /// TCP framing lost in a direction: nothing more is parsed there.
    stopped: [bool; 2],
}

fn event_of(e: DnsError) -> AppEvent {
    match e {
        DnsError::Truncated | DnsError::BadLabel => AppEvent::DnsMalformed,
        DnsError::PointerLoop => AppEvent::DnsPointerLoop,
        DnsError::TooManyLabels => AppEvent::DnsNameTooLong,
    }
}

/// Parse one message; each message, query or response, is a transaction of its own (as in
/// Suricata 8, whose DNS transactions are one-directional).
fn message(msg: &[u8], out: &mut Vec<TxData>, ev: &mut AppEvents) {
    match parser::parse_message(msg) {
        Ok(m) => {
            if m.truncated {
                ev.push(AppEvent::DnsTooManyQuestions);
            }
            if m.records_cut {
                ev.push(AppEvent::DnsMalformed);
            }
            if m.events.contains(parser::TxEvents::NAME_TOO_LONG) {
                ev.push(AppEvent::DnsNameTooLong);
            }
            out.push(TxData::Dns(m));
        }
        Err(e) => ev.push(event_of(e)),
    }
}

impl DnsState {
    /// One UDP payload.
    pub fn on_udp(
        &mut self,
        _to_server: bool,
        payload: &[u8],
        out: &mut Vec<TxData>,
        ev: &mut AppEvents,
    ) {
        message(payload, out, ev);
    }

    /// New in-order bytes of one TCP direction.
    pub fn on_tcp(
        &mut self,
        to_server: bool,
        data: &[u8],
        out: &mut Vec<TxData>,
        ev: &mut AppEvents,
    ) {
        let i = usize::from(!to_server);
        if self.stopped.get(i).copied().unwrap_or(true) {
            return;
        }
        let Some(buf) = self.buf.get_mut(i) else {
            return;
        };
        buf.extend_from_slice(data);
        let mut pos = 0usize;
        let mut bad = false;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let Some(len) = rest
                .first_chunk::<2>()
                .map(|b| usize::from(u16::from_be_bytes(*b)))
            else {
                break;
            };
            if len == 0 {
                bad = true;
                break;
            }
            let Some(msg) = rest.get(2..2usize.saturating_add(len)) else {
                break;
            };
            message(msg, out, ev);
            pos = pos.saturating_add(2).saturating_add(len);
        }
        buf.drain(..pos.min(buf.len()));
        if bad || buf.len() > MAX_TCP_BUFFER {
            ev.push(AppEvent::DnsBadTcpFraming);
            *buf = Vec::new();
            if let Some(s) = self.stopped.get_mut(i) {
                *s = true;
            }
        }
    }

    /// Bytes were lost in a TCP direction: its framing is gone.
    pub fn on_gap(&mut self, to_server: bool) {
        let i = usize::from(!to_server);
        if let Some(b) = self.buf.get_mut(i) {
            *b = Vec::new();
        }
        if let Some(s) = self.stopped.get_mut(i) {
            *s = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::AppBuffers;

    const QUERY: &[u8] =
        b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01";

    #[test]
    fn tcp_framing_across_segments() {
        let mut wire = Vec::new();
        for _ in 0..2 {
            wire.extend_from_slice(&u16::try_from(QUERY.len()).unwrap().to_be_bytes());
            wire.extend_from_slice(QUERY);
        }
        let mut s = DnsState::default();
        let mut out = Vec::new();
        let mut ev = AppEvents::default();
        for chunk in wire.chunks(7) {
            s.on_tcp(true, chunk, &mut out, &mut ev);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(
            AppBuffers::of(&out[1]).get(crate::rules::BufferKind::DnsQuery, true),
            Some(&b"www.example.com"[..])
        );
        assert!(ev.is_empty());
        s.on_tcp(true, &[0, 0], &mut out, &mut ev);
        assert_eq!(
            ev.iter().collect::<Vec<_>>(),
            vec![AppEvent::DnsBadTcpFraming]
        );
    }
}
