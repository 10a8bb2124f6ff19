//! What a worker counts: frames by verdict, decoder events, detections, blocks, the web
//! address scan.

use super::Worker;
use crate::attack::Attack;
use crate::decode::{self, DecodeEvent};

/// Worker counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub packets: u64,
    /// Bytes received (frame lengths).
    pub bytes: u64,
    /// Frames forwarded (inline) / passed (mirror).
    pub forwarded: u64,
    /// Frames dropped because the source is blocked.
    pub dropped_blocked: u64,
    /// Frames dropped because their flow was terminated.
    pub dropped_terminated: u64,
    /// Frames dropped as attack packets.
    pub dropped_attack: u64,
    /// Frames dropped by `drop`/`reject` signature rules.
    pub dropped_rule: u64,
    /// TCP segments with URG set dropped by `stream.reassembly.urgent.policy: drop`.
    pub dropped_stream_urgent: u64,
    /// Activity scanner alerts raised.
    pub rule_alerts: u64,
    /// Frames that could not be decoded (forwarded uninspected; those nested too deep as
    /// `decode.too_deep` says, also counted in `too_deep`).
    pub invalid: u64,
    /// Per decoder event ([`DecodeEvent::ALL`] order): failures and anomalies.
    pub decoder: DecoderCounters,
    /// Frames skipped because of a bad checksum (with checksum validation on).
    pub bad_checksum: u64,
    /// Packets not inspected because of a `do_not_scan` exclusion.
    pub excluded: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Alerts raised, per attack ([`Attack::ALL`] order).
    pub detections: [u64; Attack::ALL.len()],
    /// Blocks made.
    pub blocks_added: u64,
    /// Blocks that could not be made because the keeper was too far behind (its own refusals
    /// and evictions are the keeper's counts).
    pub blocks_refused: u64,
    /// Frames injected (resets).
    pub injected: u64,
    /// Non-IP, non-ARP frames (forwarded uninspected).
    pub other_l3: u64,
    /// Tunnelled packets opened (GRE, ERSPAN, VXLAN, Geneve, Teredo, NSH, MPLS, PPPoE; IP-in-IP
    /// is not counted here).
    pub decapsulated: u64,
    /// Frames of isolated VMs dropped (inline) or answered with resets (mirror).
    pub dropped_isolated: u64,
    /// TCP flows of isolated VMs reset.
    pub isolation_resets: u64,
    /// Automatic isolations this worker started.
    pub isolations: u64,
    /// Monitoring mode: detections that would have isolated a VM.
    pub would_isolate: u64,
    /// Web address scan (see [`WebCounters`]).
    pub web: WebCounters,
    /// Frames no engine inspects because of the policy's `protection` (a VM with every engine
    /// off, or no listed VM under `only_listed_vms`), forwarded uninspected.
    pub unprotected: u64,
    /// Frames nested too deep to inspect (9 or more VLAN tags, more than 8 IPv6 extension
    /// headers), whatever `decode.too_deep` did with them.
    pub too_deep: u64,
    /// Of those, frames dropped (`decode.too_deep: drop`, inline).
    pub dropped_too_deep: u64,
}

/// One counter per decoder event, in [`DecodeEvent::ALL`] order (an array, read through
/// `Deref`; a type of its own because arrays longer than 32 have no `Default`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecoderCounters(pub [u64; DecodeEvent::ALL.len()]);

impl Default for DecoderCounters {
    fn default() -> Self {
        DecoderCounters([0; DecodeEvent::ALL.len()])
    }
}

impl core::ops::Deref for DecoderCounters {
    type Target = [u64; DecodeEvent::ALL.len()];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl core::ops::DerefMut for DecoderCounters {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Web address scan counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebCounters {
    /// Addresses looked up (HTTP requests, TLS server names, DNS query names).
    pub lookups: u64,
    /// Listed addresses, by the list's category.
    pub hits: std::collections::BTreeMap<String, u64>,
    /// Lookups a trusted address answered.
    pub trusted: u64,
    /// Frames dropped by the web address scan (requests, ClientHellos, queries, QUIC Initials).
    pub dropped: u64,
    /// QUIC v1 Initials dropped under `quic: block`.
    pub quic_blocked: u64,
    /// Flows whose first bytes could not be read (malformed, a gap, over the collection cap).
    pub unread: u64,
    /// `use-application-dns.net` queries answered NXDOMAIN.
    pub doh_canary: u64,
}

impl Counters {
    /// Alerts raised in total.
    pub fn alerts(&self) -> u64 {
        self.detections.iter().sum()
    }

    /// Frames dropped in total.
    pub fn dropped(&self) -> u64 {
        self.dropped_blocked
            + self.dropped_terminated
            + self.dropped_attack
            + self.dropped_rule
            + self.dropped_stream_urgent
            + self.dropped_isolated
            + self.web.dropped
            + self.dropped_too_deep
    }
}

impl Worker {
    /// Count a frame's decoder anomalies; true if one of them is a bad checksum.
    #[cold]
    pub(super) fn count_anomalies(&mut self, anomalies: &decode::Anomalies) -> bool {
        let mut bad_checksum = false;
        for a in anomalies.iter() {
            self.count_decoder(a);
            bad_checksum |= matches!(
                a,
                DecodeEvent::Ipv4BadChecksum
                    | DecodeEvent::TcpBadChecksum
                    | DecodeEvent::UdpBadChecksum
                    | DecodeEvent::IcmpBadChecksum
            );
        }
        bad_checksum
    }

    pub(super) fn count_decoder(&mut self, e: DecodeEvent) {
        if let Some(c) = self.counters.decoder.get_mut(e.index()) {
            *c += 1;
        }
    }
}
