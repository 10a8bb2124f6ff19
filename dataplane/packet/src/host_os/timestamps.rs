//! TCP timestamp validation (PAWS, RFC 7323 section 5) as Suricata does it, per receiving
//! host's operating system ([`OsPolicy`], `host-os-policy`): a segment whose timestamp the
//! receiver would reject is not part of the connection, so it changes no state and is not
//! reassembled; it raises the stream event `pkt_invalid_timestamp`.
//!
//! Two checks, as Suricata's `stream-tcp.c`:
//! - before the server's SYN/ACK is accepted (`StateSynSentValidateTimestamp`): a packet from
//!   the server that echoes a timestamp the client never sent (any echo when the client's SYN
//!   had none, or another value than the SYN's) is a forged response, e.g. a RST that would
//!   tear down the connection an IDS follows (Suricata bug 3286);
//! - once both sides announced timestamps in the handshake (or a flow picked up midstream
//!   carries them), every segment with a timestamp (`StreamTcpValidateTimestamp`): one older
//!   than the sender's last (`TSval - last < 0`, Linux allowing one less) is rejected, with the
//!   per-OS exceptions for zero timestamps, HP-UX 11's in-sequence-only check and the 24-day
//!   idle rule; an accepted in-sequence segment moves the sender's last timestamp on
//!   (`StreamTcpHandleTimestamp`).
//!
//! Sequence comparisons are modulo 2^32. The state is a few words per flow, no allocation
//! beyond the flow's own box.

use super::OsPolicy;
use crate::decode::TcpFlags;

/// RFC 7323's 24 days: a connection idle that long has timestamps that may have wrapped.
pub const PAWS_24DAYS: u32 = 24 * 24 * 60 * 60;

/// One TCP segment as the validation reads it.
#[derive(Clone, Copy, Debug)]
pub struct TsSegment {
    /// Client to server.
    pub to_server: bool,
    /// Flags.
    pub flags: TcpFlags,
    /// Sequence number.
    pub seq: u32,
    /// Sequence space the segment takes: its payload plus one for a SYN and one for a FIN.
    pub seq_len: u32,
    /// The timestamp option, `(TSval, TSecr)`.
    pub ts: Option<(u32, u32)>,
    /// Capture time, whole seconds.
    pub now_secs: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Side {
    /// The last accepted TSval (0: none).
    last_ts: u32,
    /// When it was accepted, whole seconds.
    last_pkt_secs: u32,
    /// The sequence number after the side's highest segment.
    next_seq: u32,
    /// The side's SYN (or SYN/ACK) carried a timestamp.
    has_ts: bool,
    /// ... and it was zero.
    zero_ts: bool,
}

/// A flow's timestamp state. `sides[0]` is the client.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paws {
    sides: [Side; 2],
    /// The receiving host's policy per side (`os[0]`: the client host's).
    os: [OsPolicy; 2],
    /// Both sides use timestamps: every segment's is checked.
    session: bool,
    /// The client's SYN was seen.
    syn: bool,
    /// The server's SYN/ACK was accepted, or the flow was picked up midstream.
    open: bool,
    /// Picked up without the handshake.
    midstream: bool,
}

fn seq_lt(a: u32, b: u32) -> bool {
    i32::from_ne_bytes(a.wrapping_sub(b).to_ne_bytes()) < 0
}

impl Paws {
    /// The flow's client is the other endpoint ([`crate::flow::Flow::reverse`]).
    pub fn reverse(&mut self) {
        self.sides.swap(0, 1);
        self.os.swap(0, 1);
    }

    /// A flow whose client host has policy `client` and server host `server`.
    pub fn new(client: OsPolicy, server: OsPolicy) -> Self {
        Paws {
            os: [client, server],
            ..Paws::default()
        }
    }

    /// Whether the session checks timestamps (both sides announced them).
    pub fn in_use(&self) -> bool {
        self.session
    }

    /// Check one segment; false when the receiver would reject it for its timestamp (the
    /// segment then changes nothing here either).
    pub fn check(&mut self, s: &TsSegment) -> bool {
        let syn = s.flags.has(TcpFlags::SYN);
        let ack = s.flags.has(TcpFlags::ACK);
        let snd = usize::from(!s.to_server);
        let ok = if !self.syn && !self.open {
            self.first(s, syn && !ack);
            true
        } else if !self.open {
            self.handshake(s, syn, ack)
        } else {
            self.established(s, snd)
        };
        if ok && let Some(side) = self.sides.get_mut(snd) {
            let end = s.seq.wrapping_add(s.seq_len);
            if seq_lt(side.next_seq, end) {
                side.next_seq = end;
            }
        }
        ok
    }

    /// The flow's first segment: a SYN records the client's timestamp; anything else is a
    /// midstream pick-up, whose timestamp (if any) starts the checks.
    fn first(&mut self, s: &TsSegment, syn_only: bool) {
        let snd = usize::from(!s.to_server);
        if syn_only && s.to_server {
            self.syn = true;
            self.record_syn(s);
            return;
        }
        self.open = true;
        self.midstream = true;
        if let (Some((val, _)), Some(side)) = (s.ts, self.sides.get_mut(snd)) {
            self.session = true;
            *side = Side {
                last_ts: val,
                last_pkt_secs: s.now_secs,
                next_seq: s.seq,
                has_ts: true,
                zero_ts: val == 0,
            };
        } else if let Some(side) = self.sides.get_mut(snd) {
            side.next_seq = s.seq;
        }
    }

    fn record_syn(&mut self, s: &TsSegment) {
        let val = s.ts.map(|(v, _)| v);
        self.sides[0] = Side {
            last_ts: val.unwrap_or(0),
            last_pkt_secs: s.now_secs,
            next_seq: s.seq,
            has_ts: val.is_some(),
            zero_ts: val == Some(0),
        };
    }

    /// Between the client's SYN and the server's SYN/ACK (Suricata's SYN_SENT).
    fn handshake(&mut self, s: &TsSegment, syn: bool, ack: bool) -> bool {
        if s.to_server {
            if syn && !ack {
                // A SYN sent again: the latest one counts, as Suricata applies it.
                self.record_syn(s);
            }
            return true;
        }
        // Anything from the server echoes what the client sent, or it is not the server's.
        if let Some((_, ecr)) = s.ts {
            let client = self.sides[0];
            let bad = if client.has_ts {
                client.last_ts != 0 && ecr != 0 && ecr != client.last_ts
            } else {
                client.last_ts == 0 && ecr != 0
            };
            if bad {
                return false;
            }
        }
        if syn && ack {
            self.open = true;
            match s.ts {
                Some((val, _)) if self.sides[0].has_ts => {
                    self.session = true;
                    self.sides[1] = Side {
                        last_ts: val,
                        last_pkt_secs: s.now_secs,
                        next_seq: s.seq,
                        has_ts: true,
                        zero_ts: val == 0,
                    };
                }
                _ => {
                    self.session = false;
                    self.sides[0].last_ts = 0;
                    self.sides[0].zero_ts = false;
                    self.sides[1].last_ts = 0;
                    self.sides[1].next_seq = s.seq;
                }
            }
        }
        true
    }

    /// After the handshake: Suricata's `StreamTcpValidateTimestamp`, then, for an accepted
    /// segment, `StreamTcpHandleTimestamp`.
    fn established(&mut self, s: &TsSegment, snd: usize) -> bool {
        if !self.session {
            return true;
        }
        let policy = self.os.get(snd ^ 1).copied().unwrap_or_default();
        let midstream = self.midstream;
        let Some(side) = self.sides.get_mut(snd) else {
            return true;
        };
        let Some((ts, _)) = s.ts else {
            // Solaris stops using timestamps when a segment comes without one.
            if policy == OsPolicy::Solaris {
                self.session = false;
            }
            return true;
        };
        let in_seq = side.next_seq == s.seq;
        let mut check = true;
        let mut last_ts = side.last_ts;
        let mut stop_session = false;
        if side.zero_ts {
            match policy {
                OsPolicy::Linux | OsPolicy::Windows2k3 => {
                    check = false;
                    stop_session = true;
                }
                OsPolicy::OldLinux | OsPolicy::Windows | OsPolicy::Vista if in_seq => {
                    last_ts = ts;
                    check = false;
                }
                _ => {}
            }
        }
        if policy == OsPolicy::Hpux11 && !in_seq {
            check = false;
        }
        if ts == 0
            && !matches!(
                policy,
                OsPolicy::OldLinux
                    | OsPolicy::Windows
                    | OsPolicy::Windows2k3
                    | OsPolicy::Vista
                    | OsPolicy::Solaris
            )
        {
            return false;
        }
        if check {
            let diff = ts.wrapping_sub(last_ts);
            let diff = if policy == OsPolicy::Linux {
                diff.wrapping_add(1)
            } else {
                diff
            };
            let older = i32::from_ne_bytes(diff.to_ne_bytes()) < 0;
            let last_pkt = if side.last_pkt_secs == 0 && midstream {
                s.now_secs
            } else {
                side.last_pkt_secs
            };
            let idle = s.now_secs > last_pkt.saturating_add(PAWS_24DAYS);
            let invalid = older || (side.last_ts != 0 && idle);
            // After 24 idle days an in-sequence segment is taken whatever its timestamp.
            let taken_anyway = in_seq && idle;
            if invalid && !taken_anyway {
                return false;
            }
        }
        // Accepted: the handler's updates.
        if side.zero_ts
            && matches!(
                policy,
                OsPolicy::OldLinux | OsPolicy::Windows | OsPolicy::Vista
            )
        {
            side.zero_ts = false;
            if in_seq {
                side.last_ts = last_ts;
            }
        }
        if check {
            if in_seq {
                side.last_ts = ts;
            }
            side.last_pkt_secs = s.now_secs;
        }
        if stop_session {
            self.session = false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: u16 = TcpFlags::SYN;
    const ACK: u16 = TcpFlags::ACK;
    const RST: u16 = TcpFlags::RST;
    const FIN: u16 = TcpFlags::FIN;

    fn seg(
        to_server: bool,
        flags: u16,
        seq: u32,
        seq_len: u32,
        ts: Option<(u32, u32)>,
    ) -> TsSegment {
        TsSegment {
            to_server,
            flags: TcpFlags(flags),
            seq,
            seq_len,
            ts,
            now_secs: 1000,
        }
    }

    // Suricata bug 3286 (suricata-verify bug-3286-02/-03): before the SYN/ACK, a RST and a FIN
    // from the "server" that echo a timestamp the client never sent are rejected; the real
    // SYN/ACK and the connection go on.
    #[test]
    fn forged_responses_before_the_syn_ack_are_rejected() {
        // The client's SYN carries TSval 1821165629 (Linux).
        let mut p = Paws::new(OsPolicy::Bsd, OsPolicy::Bsd);
        assert!(p.check(&seg(true, SYN, 100, 1, Some((1_821_165_629, 0)))));
        assert!(!p.check(&seg(false, RST | ACK, 0, 0, Some((100, 100)))));
        assert!(!p.check(&seg(false, FIN | ACK, 0, 1, Some((100, 100)))));
        assert!(p.check(&seg(true, RST, 101, 0, None)));
        assert!(p.check(&seg(false, SYN | ACK, 26175, 1, Some((1_821_165_629, 0)))));
        assert!(p.in_use());
        assert!(p.check(&seg(
            true,
            ACK,
            101,
            0,
            Some((1_821_165_693, 1_821_165_629))
        )));
        // The client's SYN without timestamps (Windows): any echo is forged.
        let mut p = Paws::new(OsPolicy::Bsd, OsPolicy::Bsd);
        assert!(p.check(&seg(true, SYN, 100, 1, None)));
        assert!(!p.check(&seg(false, RST | ACK, 0, 0, Some((100, 100)))));
        assert!(p.check(&seg(false, SYN | ACK, 59247, 1, None)));
        assert!(!p.in_use());
        assert!(p.check(&seg(true, ACK, 101, 0, Some((5, 5)))));
    }

    // After the handshake: an older timestamp is rejected (Linux allows one less), a zero one
    // per OS; accepted in-sequence segments move the last timestamp on.
    #[test]
    fn paws_after_the_handshake() {
        let open = |server: OsPolicy| {
            let mut p = Paws::new(OsPolicy::Bsd, server);
            assert!(p.check(&seg(true, SYN, 0, 1, Some((500, 0)))));
            assert!(p.check(&seg(false, SYN | ACK, 9000, 1, Some((700, 500)))));
            assert!(p.check(&seg(true, ACK, 1, 0, Some((510, 700)))));
            p
        };
        let mut p = open(OsPolicy::Bsd);
        assert!(p.check(&seg(true, ACK, 1, 10, Some((520, 700)))));
        assert!(!p.check(&seg(true, ACK, 11, 10, Some((519, 700)))));
        assert!(!p.check(&seg(true, ACK, 11, 10, Some((0, 700)))));
        assert!(p.check(&seg(true, ACK, 11, 10, Some((521, 700)))));
        // Linux takes one less than the last, not two.
        let mut p = open(OsPolicy::Linux);
        assert!(p.check(&seg(true, ACK, 1, 10, Some((520, 700)))));
        assert!(!p.check(&seg(true, ACK, 11, 10, Some((518, 700)))));
        assert!(p.check(&seg(true, ACK, 11, 10, Some((519, 700)))));
        // A client whose SYN carried timestamp 0 may go on sending 0 to Windows (in
        // sequence), not to BSD; an older timestamp is still rejected by Windows.
        let zero = |server: OsPolicy| {
            let mut p = Paws::new(OsPolicy::Bsd, server);
            assert!(p.check(&seg(true, SYN, 0, 1, Some((0, 0)))));
            assert!(p.check(&seg(false, SYN | ACK, 9000, 1, Some((700, 0)))));
            p
        };
        assert!(zero(OsPolicy::Windows).check(&seg(true, ACK, 1, 10, Some((0, 700)))));
        assert!(!zero(OsPolicy::Bsd).check(&seg(true, ACK, 1, 10, Some((0, 700)))));
        let mut p = open(OsPolicy::Windows);
        assert!(!p.check(&seg(true, ACK, 1, 10, Some((0, 700)))));
        // HP-UX 11 checks in-sequence segments only.
        let mut p = open(OsPolicy::Hpux11);
        assert!(p.check(&seg(true, ACK, 1, 10, Some((520, 700)))));
        assert!(p.check(&seg(true, ACK, 5, 2, Some((1, 700)))));
        assert!(!p.check(&seg(true, ACK, 11, 10, Some((1, 700)))));
        // A segment without a timestamp passes.
        let mut p = open(OsPolicy::Bsd);
        assert!(p.check(&seg(true, ACK, 1, 10, None)));
        // After 24 idle days an in-sequence segment is taken whatever its timestamp.
        let mut p = open(OsPolicy::Bsd);
        let mut late = seg(true, ACK, 1, 10, Some((1, 700)));
        late.now_secs = 1000 + PAWS_24DAYS + 1;
        assert!(p.check(&late));
    }

    proptest::proptest! {
        // Any segments: no panic, and a rejected segment changes nothing.
        #[test]
        fn a_rejected_segment_changes_nothing(
            segs in proptest::collection::vec(
                (proptest::prelude::any::<bool>(), 0u16..64, proptest::prelude::any::<u32>(),
                 0u32..2000, proptest::option::of((proptest::prelude::any::<u32>(), proptest::prelude::any::<u32>())),
                 0u32..5_000_000),
                0..40),
            os in 0usize..15,
        ) {
            let policy = OsPolicy::NAMES[os].1;
            let mut p = Paws::new(policy, policy);
            for (to_server, flags, seq, seq_len, ts, now_secs) in segs {
                let s = TsSegment { to_server, flags: TcpFlags(flags), seq, seq_len, ts, now_secs };
                let before = format!("{p:?}");
                if !p.check(&s) {
                    proptest::prop_assert_eq!(before, format!("{p:?}"));
                }
            }
        }
    }
}
