//! The worker's web address scan: the hook [`Worker::web_scan`] runs after the activity
//! scanner on a client's packet that can carry a web address (TCP with payload, UDP to port 53
//! or 443), reads the address of each request ([`crate::webscan::WebFlow`]: every HTTP request
//! and DNS message of a connection, a TLS or QUIC flow's server name once), looks it up in the
//! loaded [`webaddr::AddressSet`] through the worker's cache of recent verdicts
//! ([`webaddr::LookupCache`], emptied when the set is replaced; trusted addresses first) and
//! acts as the policy's
//! `web_address_scan` says:
//!
//! | traffic | block, inline | block, mirror |
//! |---|---|---|
//! | HTTP request | drop it; 403 block page with FIN to the client, RST past it; RST to the server | RST both ends |
//! | TLS ClientHello | drop it; RST both ends | RST both ends |
//! | DNS over TCP | drop it; the block answer with FIN to the client, RST past it; RST to the server | RST both ends |
//! | DNS over UDP | drop the query; answer it (`dns_answer`, RFC 8914 EDE naming the list) | report only |
//! | QUIC Initial, `quic: inspect` | drop it and the flow | report only |
//! | any QUIC v1 Initial, `quic: block` | drop it (counted; the flow's first reported) | passes |
//!
//! Inline, a query for `use-application-dns.net` gets NXDOMAIN (`doh_canary_nxdomain`, counted).
//! `inform` and monitoring mode report and change nothing (monitoring says `would_block`).
//! Every injected frame carries the flow's VLAN tag stack (the triggering frame's).

use std::borrow::Cow;
use std::sync::Arc;

use policy::{DnsAnswer, Mode, QuicMode, WebAction};
use webaddr::{AddressSet, Verdict as Lookup};

use super::{Attach, DropReason, Output, Pkt, Toward, Tracked, Verdict, Worker};
use crate::app::dns::answer::{self, BlockMode, Transport};
use crate::app::dns::eve::DnsEve;
use crate::app::dns::parser::DnsError;
use crate::app::http::eve::HttpEve;
use crate::app::quic::crypto::MaterialCache;
use crate::app::quic::eve::QuicEve;
use crate::app::tls::eve::TlsEve;
use crate::blockpage::{PageValues, Template};
use crate::decode::{self, Ip, L4};
use crate::event::{Alert, Engine, Event, EventKind, Response, Signature, WebAddressHit};
use crate::flow::FlowUpdate;
use crate::reset;
use crate::scanner::AppFields;
use crate::webscan::question::{self, NameBuf, Questions};
use crate::webscan::{self, GiveUp, Observed, Step};

/// Generator id of web address scan alerts (the built-in engines' generator).
pub const WEB_GID: u32 = crate::attack::GID;

/// Signature ids of web address scan alerts, one per protocol the address came from.
pub const SID_HTTP: u32 = 9_200_001;
/// A TLS ClientHello's server name.
pub const SID_TLS: u32 = 9_200_002;
/// A DNS query name.
pub const SID_DNS: u32 = 9_200_003;
/// A QUIC Initial's server name.
pub const SID_QUIC: u32 = 9_200_004;
/// A flow's first QUIC Initial dropped under `quic: block` (no name read).
pub const SID_QUIC_BLOCKED: u32 = 9_200_005;

/// Longest address copied into an event or a block page, in bytes: a request target can be as
/// long as the head.
const MAX_REPORTED: usize = 2048;

/// QUIC's port.
const QUIC_PORT: u16 = 443;

/// Whether a packet can carry a web address ([`wants`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Wants {
    /// It can: a client's TCP segment with payload, a UDP datagram to DNS's port, a client's
    /// UDP datagram to QUIC's port.
    Scan,
    /// Not this packet (a server's segment, a bare ACK, a datagram from the server's side).
    Skip,
    /// No packet of this flow ever can: UDP with neither port DNS's or QUIC's, another
    /// protocol than TCP and UDP. The caller marks the flow read ([`WebFlow::finish`]), so
    /// its later packets stop at the flow's peek ([`super::EnginePeek::web_done`]).
    Never,
}

/// Whether a packet of a flow not read to its end yet (the caller tests
/// [`super::EnginePeek::web_done`] first) can carry a web address. Inlined into the packet
/// path.
///
/// [`WebFlow::finish`]: crate::webscan::WebFlow::finish
#[inline(always)]
pub(super) fn wants(ip: &Ip<'_>, upd: FlowUpdate) -> Wants {
    match &ip.l4 {
        L4::Tcp(t) if upd.to_server && !t.payload.is_empty() => Wants::Scan,
        L4::Tcp(_) => Wants::Skip,
        L4::Udp(u) if u.dst_port == webscan::DNS_PORT => Wants::Scan,
        // A QUIC client's port is never DNS's: a flow between the two ports is read as DNS
        // only, so its QUIC side never ends the reading of its DNS side.
        L4::Udp(u)
            if u.dst_port == QUIC_PORT && u.src_port != webscan::DNS_PORT && upd.to_server =>
        {
            Wants::Scan
        }
        L4::Udp(u)
            if [u.src_port, u.dst_port]
                .iter()
                .any(|&p| p == webscan::DNS_PORT || p == QUIC_PORT) =>
        {
            Wants::Skip
        }
        _ => Wants::Never,
    }
}

/// The web address scan's scratch space, one per worker.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// A DNS query's first question name, written by the check of its questions: kept between
    /// queries (boxed, 1 KiB), so a query does not zero a fresh buffer.
    name: Option<Box<NameBuf>>,
    /// Client Initial key material of recent QUIC connection ids.
    quic_keys: MaterialCache,
}

/// What the caller of [`Worker::web_observed`] has read of a DNS query already.
#[derive(Clone, Copy)]
enum DnsRead<'a> {
    /// Nothing (or no DNS query): the questions are read from the observed message.
    Nothing,
    /// The checked question section.
    Questions(Questions<'a>),
    /// The name of the query's one question.
    OnlyName(&'a [u8]),
}

/// Where the address came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Http,
    Tls,
    Quic,
    Dns,
}

impl Worker {
    /// Load (or unload, with `None`) the web address lists; takes effect with the next packet.
    /// Flows already read are not read again.
    pub fn set_web_addresses(&mut self, set: Option<Arc<AddressSet>>) {
        self.web = set;
    }

    /// The loaded web address lists.
    pub fn web_addresses(&self) -> Option<&Arc<AddressSet>> {
        self.web.as_ref()
    }

    /// The web address scan of one packet [`wants`] accepted.
    #[inline(never)]
    pub(super) fn web_scan(
        &mut self,
        pkt: &Pkt<'_>,
        flow: Tracked<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        if !self.policy.policy().web_address_scan.enabled {
            return Verdict::Forward;
        }
        let tracked = flow;
        let (ip, key) = (pkt.ip, tracked.key);
        match &ip.l4 {
            L4::Tcp(t) => {
                let Some(flow) = self.flows.get_mut_at(key, &tracked.upd) else {
                    return Verdict::Forward;
                };
                if flow.ext.web.done() {
                    return Verdict::Forward;
                }
                let mut step = flow.ext.web.on_client_segment(t.seq, t.payload, t.dst_port);
                // Each request of the segment in turn (pipelined HTTP, DNS messages back to
                // back), until one is blocked. Whether one more was received is asked before
                // the lookup: most segments hold one request, and the flow is not looked up
                // again for them.
                let mut more = flow.ext.web.has_more();
                loop {
                    match step {
                        Step::Wait | Step::GaveUp(GiveUp::NotWeb) => return Verdict::Forward,
                        Step::GaveUp(_) => {
                            self.counters.web.unread += 1;
                            return Verdict::Forward;
                        }
                        Step::Found(obs) => {
                            let v = self.web_observed(&obs, DnsRead::Nothing, pkt, tracked, out);
                            if v != Verdict::Forward {
                                return v;
                            }
                        }
                    }
                    if !more {
                        return Verdict::Forward;
                    }
                    let Some(flow) = self.flows.get_mut_at(key, &tracked.upd) else {
                        return Verdict::Forward;
                    };
                    step = flow.ext.web.more();
                    more = flow.ext.web.has_more();
                }
            }
            L4::Udp(u) if u.dst_port == webscan::DNS_PORT => {
                let mut first = self.web_scratch.name.take().unwrap_or_default();
                let read = question::questions_first(u.payload, &mut first);
                let v = self.web_dns_udp(u.payload, read, pkt, tracked, out);
                self.web_scratch.name = Some(first);
                v
            }
            L4::Udp(u) if u.dst_port == QUIC_PORT => {
                let p = self.policy.policy();
                if p.web_address_scan.quic == QuicMode::Block {
                    if p.mode != Mode::Monitoring
                        && self.cfg.attach == Attach::Inline
                        && webscan::is_quic_v1_initial(u.payload)
                    {
                        self.counters.web.quic_blocked += 1;
                        // Reported once a flow: a browser retries its Initial a few times
                        // before it falls back to TCP, and each retry is counted.
                        let first = self
                            .flows
                            .get_mut_at(key, &tracked.upd)
                            .is_some_and(|f| f.ext.web.quic_dropped());
                        if first {
                            self.report_quic_block(pkt, tracked, out);
                        }
                        return Verdict::Drop(DropReason::WebAddress);
                    }
                    return Verdict::Forward;
                }
                let Some(flow) = self.flows.get_mut_at(key, &tracked.upd) else {
                    return Verdict::Forward;
                };
                match flow
                    .ext
                    .web
                    .on_quic_datagram(u.payload, &mut self.web_scratch.quic_keys)
                {
                    Step::Wait | Step::GaveUp(GiveUp::NotWeb) => Verdict::Forward,
                    Step::GaveUp(_) => {
                        self.counters.web.unread += 1;
                        Verdict::Forward
                    }
                    Step::Found(obs) => {
                        self.web_observed(&obs, DnsRead::Nothing, pkt, tracked, out)
                    }
                }
            }
            _ => Verdict::Forward,
        }
    }

    /// A packet of a flow no packet of which can carry a web address ([`Wants::Never`]): the
    /// flow is marked read, once, so its later packets stop at its peek. Out of line: once a
    /// flow.
    #[cold]
    #[inline(never)]
    pub(super) fn web_never(&mut self, flow: Tracked<'_>) {
        if let Some(f) = self.flows.get_mut_at(flow.key, &flow.upd) {
            f.ext.web.finish();
        }
    }

    /// A DNS query datagram, its questions checked and its first name read in that walk.
    fn web_dns_udp(
        &mut self,
        payload: &[u8],
        read: Result<Option<(Questions<'_>, &[u8])>, DnsError>,
        pkt: &Pkt<'_>,
        tracked: Tracked<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        let (questions, first) = match read {
            Ok(Some(q)) => q,
            Ok(None) => return Verdict::Forward,
            Err(_) => {
                self.counters.web.unread += 1;
                return Verdict::Forward;
            }
        };
        let obs = Observed::Dns {
            message: Cow::Borrowed(payload),
            tcp: false,
            questions: questions.len(),
        };
        if questions.len() == 1 {
            // One question, as nearly every query has: its name was read with the check, once,
            // for the canary and for the lookup.
            if answer::is_canary(first)
                && let Some(v) = self.doh_canary(pkt, payload, out)
            {
                return v;
            }
            return self.web_observed(&obs, DnsRead::OnlyName(first), pkt, tracked, out);
        }
        // Several: the canary is looked for in every name before any is looked up.
        let mut canary = false;
        let mut names = questions.names();
        while let Some(name) = names.next_name() {
            if answer::is_canary(name) {
                canary = true;
                break;
            }
        }
        if canary && let Some(v) = self.doh_canary(pkt, payload, out) {
            return v;
        }
        // The questions checked above are walked once more for their names, not checked
        // again.
        self.web_observed(&obs, DnsRead::Questions(questions), pkt, tracked, out)
    }

    /// Look an observed address up and act on a listed one. `dns`: what the caller has read of
    /// a DNS query already.
    fn web_observed(
        &mut self,
        obs: &Observed<'_>,
        dns: DnsRead<'_>,
        pkt: &Pkt<'_>,
        flow: Tracked<'_>,
        out: &mut impl Output,
    ) -> Verdict {
        let (decoded, ip, scope, meta) = (pkt.decoded, pkt.ip, pkt.scope, pkt.meta);
        let (key, upd) = (flow.key, flow.upd);
        let Some(set) = self.web.clone() else {
            return Verdict::Forward;
        };
        // The reported address is spelled out only for a hit (most lookups find nothing); a
        // DNS name is written where the question reader put it, so it is kept at once.
        let (source, hit, dns_name) = match obs {
            Observed::Http {
                method,
                target,
                host,
            } => {
                self.counters.web.lookups += 1;
                let v = self
                    .web_cache
                    .lookup_http_request(&set, method, target, host.as_deref());
                (Source::Http, v, None)
            }
            Observed::Tls { sni } => {
                self.counters.web.lookups += 1;
                (Source::Tls, self.web_cache.lookup_host(&set, sni), None)
            }
            Observed::Quic { sni } => {
                self.counters.web.lookups += 1;
                (Source::Quic, self.web_cache.lookup_host(&set, sni), None)
            }
            Observed::Dns { .. } => {
                // The first listed name of the question section counts.
                let mut found = (Lookup::NoMatch, None);
                let questions = match dns {
                    DnsRead::OnlyName(name) => {
                        let v = self.dns_lookup(&set, name);
                        if v.is_listed() {
                            found = (v, Some(lossy(name)));
                        }
                        None
                    }
                    DnsRead::Questions(q) => Some(q),
                    DnsRead::Nothing => obs.dns_questions(),
                };
                if let Some(questions) = questions {
                    let mut names = questions.names();
                    while let Some(name) = names.next_name() {
                        let v = self.dns_lookup(&set, name);
                        if v.is_listed() {
                            found = (v, Some(lossy(name)));
                            break;
                        }
                    }
                }
                (Source::Dns, found.0, found.1)
            }
        };
        let m = match hit {
            Lookup::Listed(m) => m,
            Lookup::Trusted { .. } => {
                if source != Source::Dns {
                    self.counters.web.trusted += 1;
                }
                return Verdict::Forward;
            }
            Lookup::NoMatch => return Verdict::Forward,
        };
        let address = match obs {
            Observed::Http { target, host, .. } => http_address(target, host.as_deref()),
            Observed::Tls { sni } | Observed::Quic { sni } => lossy(sni),
            Observed::Dns { .. } => dns_name.unwrap_or_default(),
        };
        let category = m.list.category.as_str().to_owned();
        *self.counters.web.hits.entry(category.clone()).or_insert(0) += 1;
        let p = self.policy.policy();
        let w = &p.web_address_scan;
        let monitoring = p.mode == Mode::Monitoring;
        let blocks = w.action == WebAction::Block;
        let inline = self.cfg.attach == Attach::Inline;
        // What can be enforced where: TCP inline and on a mirror (resets), DNS and QUIC over
        // UDP only inline (a mirror cannot stop a datagram, and an answer would race the real
        // one).
        let tcp = matches!(ip.l4, L4::Tcp(_));
        let enforce = blocks && !monitoring && (tcp || inline);
        let page = (enforce && inline && source == Source::Http).then(|| {
            // The policy's template was checked when the policy was read; the built-in page
            // stands in should it not parse.
            let template = w
                .block_page
                .as_deref()
                .and_then(|t| Template::parse(t).ok())
                .unwrap_or_default();
            template.response(&PageValues {
                address: &address,
                category: &category,
                list: &m.list.id,
                entry: &m.entry,
            })
        });
        let dns_reply = (enforce && source == Source::Dns)
            .then(|| {
                let mode = match w.dns_answer {
                    DnsAnswer::Null => BlockMode::Null,
                    DnsAnswer::Nxdomain => BlockMode::NxDomain,
                };
                let list = format!("svm: listed in {} ({category})", m.list.id);
                match (&ip.l4, obs) {
                    (L4::Udp(u), _) => {
                        answer::block_answer(u.payload, Transport::Udp, mode, &list).ok()
                    }
                    // Over TCP, inline: the answer goes to the client before the FIN, as the
                    // block page does (a mirror only resets).
                    (L4::Tcp(_), Observed::Dns { message, .. }) if inline => {
                        answer::block_answer(message, Transport::Tcp, mode, &list).ok()
                    }
                    _ => None,
                }
            })
            .flatten();
        let hit = WebAddressHit {
            list: m.list.id.clone(),
            category: category.clone(),
            entry: m.entry.clone(),
            kind: m.kind.as_str(),
            version: m.list.version.clone(),
            action: w.action.as_str(),
            address: address.clone(),
        };
        let app = app_fields(source, obs, &address);
        let (sid, what) = match source {
            Source::Http => (SID_HTTP, "HTTP request"),
            Source::Tls => (SID_TLS, "TLS server name"),
            Source::Quic => (SID_QUIC, "QUIC server name"),
            Source::Dns => (SID_DNS, "DNS query"),
        };
        let severity = match category.as_str() {
            "malware" | "phishing" => 1,
            _ => 2,
        };
        out.event(Event {
            ts: meta.ts,
            pcap_cnt: Some(meta.pcap_cnt),
            kind: EventKind::Alert(Alert {
                response: if blocks {
                    Response::Terminate
                } else {
                    Response::Inform
                },
                enforced: enforce,
                monitoring,
                app: Some(Box::new(app)),
                web_address: Some(Box::new(hit)),
                ..Alert::new(
                    super::flow_packet(scope, ip, upd),
                    Engine::WebAddressScan,
                    Signature {
                        name: Cow::Owned(format!("Listed web address ({category}): {what}")),
                        gid: WEB_GID,
                        sid,
                        rev: 1,
                        category: Cow::Owned(format!("Web address: {category}")),
                        severity,
                    },
                )
            }),
        });
        // Isolation: a hit whose client (the frame's sender) is a protected VM may isolate it,
        // on a TCP flow whose handshake the SVM saw (as for rule alerts: a forged client never
        // isolates; so DNS over UDP and QUIC hits do not).
        let proven = self.flows.get(key).is_some_and(|f| f.handshake_seen());
        if proven && self.iso.is_some() {
            let trigger = crate::isolation::hook::Trigger {
                engine: Engine::WebAddressScan,
                signature: Cow::Owned(format!("Listed web address ({category}): {what}")),
                sid,
                classtype: None,
                category: Some(Arc::from(category.as_str())),
                priority: severity,
                flow_id: Some(upd.id),
                src: ip.src(),
            };
            self.isolate_on(&pkt.frame(), trigger, out);
        }
        if !enforce {
            return Verdict::Forward;
        }
        match &ip.l4 {
            L4::Tcp(t) => {
                let seg = super::segment(decoded, ip, t);
                if inline {
                    let answer = page.as_deref().or(dns_reply.as_deref());
                    for (frame, to_server) in reset::block_request(&seg, answer) {
                        self.counters.injected += 1;
                        let toward = if to_server {
                            Toward::Destination
                        } else {
                            Toward::Source
                        };
                        out.inject(frame, toward);
                    }
                    self.flows.terminate(key);
                    Verdict::Drop(DropReason::WebAddress)
                } else {
                    if !t.flags.has(decode::TcpFlags::RST) {
                        self.inject_resets(decoded, ip, t, out);
                    }
                    Verdict::Forward
                }
            }
            // DNS over UDP, inline: the query is dropped and answered; QUIC: the Initial is
            // dropped and so is the rest of the flow.
            L4::Udp(u) => {
                if let Some(reply) = dns_reply
                    && let Some(frame) = reset::udp_reply(
                        &decoded.vlan,
                        decoded.eth_src,
                        decoded.eth_dst,
                        ip.src(),
                        ip.dst(),
                        u.src_port,
                        u.dst_port,
                        &reply,
                    )
                {
                    self.counters.injected += 1;
                    out.inject(frame, Toward::Source);
                }
                if source == Source::Quic {
                    self.flows.terminate(key);
                }
                Verdict::Drop(DropReason::WebAddress)
            }
            _ => Verdict::Drop(DropReason::WebAddress),
        }
    }

    /// One DNS question name looked up, counted (a trusted one as well).
    fn dns_lookup<'s>(&mut self, set: &'s AddressSet, name: &[u8]) -> Lookup<'s> {
        self.counters.web.lookups += 1;
        let v = self.web_cache.lookup_host(set, name);
        if let Lookup::Trusted { .. } = v {
            self.counters.web.trusted += 1;
        }
        v
    }

    /// The event of a flow's first QUIC Initial dropped under `quic: block`: no address is
    /// read (the Initial is not decrypted), the flow's ends and port say what was stopped.
    fn report_quic_block(&mut self, pkt: &Pkt<'_>, flow: Tracked<'_>, out: &mut impl Output) {
        out.event(Event {
            ts: pkt.meta.ts,
            pcap_cnt: Some(pkt.meta.pcap_cnt),
            kind: EventKind::Alert(Alert {
                response: Response::Terminate,
                enforced: true,
                app: Some(Box::new(AppFields {
                    app_proto: "quic",
                    ..AppFields::default()
                })),
                ..Alert::new(
                    super::flow_packet(pkt.scope, pkt.ip, flow.upd),
                    Engine::WebAddressScan,
                    Signature {
                        name: Cow::Borrowed("QUIC Initial dropped (quic: block)"),
                        gid: WEB_GID,
                        sid: SID_QUIC_BLOCKED,
                        rev: 1,
                        category: Cow::Borrowed("Web address: QUIC blocked"),
                        severity: 3,
                    },
                )
            }),
        });
    }

    /// A query for `use-application-dns.net`, inline in standard mode with
    /// `doh_canary_nxdomain`: dropped and answered NXDOMAIN, so browsers keep DNS where the
    /// appliance sees it. `None`: the query goes on to the lists as any other.
    fn doh_canary(
        &mut self,
        pkt: &Pkt<'_>,
        query: &[u8],
        out: &mut impl Output,
    ) -> Option<Verdict> {
        let p = self.policy.policy();
        if !p.web_address_scan.doh_canary_nxdomain
            || p.mode == Mode::Monitoring
            || self.cfg.attach != Attach::Inline
        {
            return None;
        }
        let L4::Udp(u) = &pkt.ip.l4 else {
            return None;
        };
        let reply = answer::canary_answer(query, Transport::Udp).ok()?;
        let frame = reset::udp_reply(
            &pkt.decoded.vlan,
            pkt.decoded.eth_src,
            pkt.decoded.eth_dst,
            pkt.ip.src(),
            pkt.ip.dst(),
            u.src_port,
            u.dst_port,
            &reply,
        )?;
        self.counters.injected += 1;
        self.counters.web.doh_canary += 1;
        out.inject(frame, Toward::Source);
        Some(Verdict::Drop(DropReason::WebAddress))
    }
}

fn lossy(b: &[u8]) -> String {
    let b = b.get(..b.len().min(MAX_REPORTED)).unwrap_or_default();
    String::from_utf8_lossy(b).into_owned()
}

/// The address an HTTP request asked for: the target itself when absolute-form or CONNECT,
/// else the host followed by the origin-form target.
fn http_address(target: &[u8], host: Option<&[u8]>) -> String {
    match host {
        Some(h) if target.starts_with(b"/") => {
            let mut a = lossy(h);
            a.push_str(&lossy(target));
            a.truncate(MAX_REPORTED);
            a
        }
        _ => lossy(target),
    }
}

/// The EVE app-layer fields of a hit: `http.hostname`/`http.url`/`http.http_method`,
/// `tls.sni`, `quic.sni` or `dns.query[0].rrname`, built by the protocols' EVE objects.
fn app_fields(source: Source, obs: &Observed<'_>, address: &str) -> AppFields {
    match (source, obs) {
        (
            Source::Http,
            Observed::Http {
                method,
                target,
                host,
            },
        ) => AppFields {
            app_proto: "http",
            http: Some(HttpEve::request(
                host.as_deref().map(lossy),
                lossy(target),
                lossy(method),
            )),
            ..AppFields::default()
        },
        (Source::Tls, _) => AppFields {
            app_proto: "tls",
            tls: Some(TlsEve::new(address.to_owned())),
            ..AppFields::default()
        },
        // EVE's QUIC records carry the name as `quic.sni`.
        (Source::Quic, _) => AppFields {
            app_proto: "quic",
            quic: Some(QuicEve::new(address.to_owned())),
            ..AppFields::default()
        },
        _ => AppFields {
            app_proto: "dns",
            dns: Some(DnsEve::query(address.to_owned(), false)),
            ..AppFields::default()
        },
    }
}
