//! Typed events of the dataplane. The control plane turns them into EVE JSON (and later syslog,
//! CEF, the central server's batches); the dataplane only says what happened.

use core::net::IpAddr;
use std::borrow::Cow;

use vlan::VlanScope;

use crate::blocks::BlockKey;
use crate::decode::IpProto;
use crate::time::Timestamp;

/// The engine that produced an alert or a block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Engine {
    /// Network Attack Blocker.
    AttackBlocker,
    /// An administrator.
    Manual,
    /// Network Activity Scanner (signature rules).
    ActivityScanner,
    /// Web Addresses Scan (address lists).
    WebAddressScan,
    /// The frame decoder: frames it cannot inspect (headers nested too deep).
    Decoder,
}

impl Engine {
    /// Name used in events and the block table.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::AttackBlocker => "attack_blocker",
            Engine::Manual => "manual",
            Engine::ActivityScanner => "activity_scanner",
            Engine::WebAddressScan => "web_address_scan",
            Engine::Decoder => "decoder",
        }
    }
}

/// What the SVM decided to do about a detection (the policy's action after exclusions).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Response {
    /// Report only.
    Inform,
    /// Drop and reset the connection.
    Terminate,
    /// Drop, reset, and block the source in its VLAN.
    TerminateAndBlock,
}

impl Response {
    /// Name as in the policy.
    pub const fn name(self) -> &'static str {
        match self {
            Response::Inform => "inform",
            Response::Terminate => "terminate",
            Response::TerminateAndBlock => "terminate_and_block",
        }
    }
}

impl From<policy::Action> for Response {
    fn from(a: policy::Action) -> Self {
        match a {
            policy::Action::Inform => Response::Inform,
            policy::Action::Terminate => Response::Terminate,
            policy::Action::TerminateAndBlock => Response::TerminateAndBlock,
        }
    }
}

/// Why a detection that the policy says to block did not block its source: the source address
/// may be forged, or the administrator listed it. The detection is still terminated and
/// reported (EVE `alert.block_skipped`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockSkip {
    /// A detection one forged packet or fragment can cause, from a source that has not proven
    /// its address (no TCP handshake completed from its MAC address recently), while the policy's
    /// `attack_blocker.block_unverified_sources` is off.
    UnverifiedSource,
    /// The packet carried an address whose bound MAC address is another one (MAC spoofing seen
    /// on the same packet): blocking the address would block its owner.
    SpoofedSource,
    /// The address is in the policy's `never_block` list.
    NeverBlock,
}

impl BlockSkip {
    /// Name in events.
    pub const fn name(self) -> &'static str {
        match self {
            BlockSkip::UnverifiedSource => "unverified_source",
            BlockSkip::SpoofedSource => "spoofed_source",
            BlockSkip::NeverBlock => "never_block",
        }
    }
}

/// The packet an event is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PacketRef {
    /// Flow id, if the packet belongs to a tracked flow.
    pub flow_id: Option<u64>,
    /// VLAN scope.
    pub scope: VlanScope,
    /// Source address.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Ports for TCP/UDP.
    pub ports: Option<(u16, u16)>,
    /// IP protocol; `None` for ARP.
    pub proto: Option<IpProto>,
    /// Whether the packet travels from the flow's client to its server (`Some(true)`) or back;
    /// `None` outside the flow table (EVE `direction`).
    pub to_server: Option<bool>,
}

/// What became of the packet a rule alert was raised on (EVE `verdict.action`, Suricata's
/// verdict: the packet's final action after all its matches).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RuleVerdict {
    /// Let through, inspected.
    Alert,
    /// A `pass` rule matched: let through, and the rules after it not evaluated.
    Pass,
    /// Dropped (inline or `--simulate-ips`; a `reject` too).
    Drop,
}

impl RuleVerdict {
    /// The EVE name.
    pub fn name(self) -> &'static str {
        match self {
            RuleVerdict::Alert => "alert",
            RuleVerdict::Pass => "pass",
            RuleVerdict::Drop => "drop",
        }
    }
}

/// An alert (EVE `event_type: alert`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Alert {
    /// The packet that raised it.
    pub packet: PacketRef,
    /// Engine.
    pub engine: Engine,
    /// Signature (attack name).
    pub signature: Cow<'static, str>,
    /// Generator id.
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
    /// Category.
    pub category: Cow<'static, str>,
    /// Priority, 1 highest.
    pub severity: u8,
    /// What the SVM decided.
    pub response: Response,
    /// Whether the response was carried out (`false` in monitoring mode or for `inform`).
    pub enforced: bool,
    /// Monitoring mode: `response` is what would have happened.
    pub monitoring: bool,
    /// An exclusion changed the response (e.g. `do_not_block`).
    pub excluded: bool,
    /// Block made for this alert, in minutes (would-be in monitoring mode).
    pub block_minutes: Option<u16>,
    /// The policy said to block, but the source was not blocked, for this reason (`response`
    /// then says `terminate`).
    pub block_skipped: Option<BlockSkip>,
    /// App-layer fields of the flow (activity scanner alerts), when known.
    pub app: Option<Box<crate::scanner::AppFields>>,
    /// The list entry a web address scan alert is about (EVE `web_address`).
    pub web_address: Option<Box<WebAddressHit>>,
    /// The interface (or DPDK port) the packet came in on, set by the driver from the frame's
    /// receive port (EVE `in_iface`); `None` in replay, which has no interface.
    pub in_iface: Option<std::sync::Arc<str>>,
    /// Activity scanner alerts: the packet's verdict after all its rule matches.
    pub verdict: Option<RuleVerdict>,
}

/// What an alert says was matched: a signature rule, or a built-in engine's detection.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Signature {
    /// Name (the rule's `msg`, the attack's name).
    pub name: Cow<'static, str>,
    /// Generator id.
    pub gid: u32,
    /// Signature id.
    pub sid: u32,
    /// Revision.
    pub rev: u32,
    /// Category.
    pub category: Cow<'static, str>,
    /// Priority, 1 highest.
    pub severity: u8,
}

impl Alert {
    /// The one builder of alerts: `engine` matched `sig` on `packet`. The alert starts as a
    /// report only (`inform`, not enforced, no exclusion, no block, no app or list fields, no
    /// interface); the caller sets what it decided and knows besides, with struct update
    /// syntax (`Alert { response, ..Alert::new(packet, engine, sig) }`).
    pub fn new(packet: PacketRef, engine: Engine, sig: Signature) -> Alert {
        let Signature {
            name,
            gid,
            sid,
            rev,
            category,
            severity,
        } = sig;
        Alert {
            packet,
            engine,
            signature: name,
            gid,
            sid,
            rev,
            category,
            severity,
            response: Response::Inform,
            enforced: false,
            monitoring: false,
            excluded: false,
            block_minutes: None,
            block_skipped: None,
            app: None,
            web_address: None,
            in_iface: None,
            verdict: None,
        }
    }
}

/// The list entry that matched a web address (EVE `web_address`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WebAddressHit {
    /// The list's id (its file as configured).
    pub list: String,
    /// The list's category.
    pub category: String,
    /// The canonical entry that matched.
    pub entry: String,
    /// The entry's kind (`domain`, `host`, `url`, `ip`).
    pub kind: &'static str,
    /// The list's version.
    pub version: String,
    /// The policy's action: `block` or `inform`.
    pub action: &'static str,
    /// The address looked up, as requested (host and target, server name or query name).
    pub address: String,
}

/// Why a block ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnblockReason {
    /// Its time ran out.
    Expired,
    /// An administrator lifted it.
    Manual,
    /// The table was full: a newer detection block took its place (the detection block
    /// closest to expiry goes first; manual blocks are never evicted).
    Evicted,
}

impl UnblockReason {
    /// Name in events.
    pub const fn name(self) -> &'static str {
        match self {
            UnblockReason::Expired => "expired",
            UnblockReason::Manual => "manual",
            UnblockReason::Evicted => "evicted",
        }
    }
}

/// A change to the block table (EVE `event_type: block`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BlockChange {
    /// The table was full of blocks that may not be evicted (manual ones; a detection block
    /// evicts the detection block closest to expiry), or the keeper too far behind: the source
    /// is not blocked. Counted (`svm_blocks_refused_total`) and reported.
    Refused {
        /// The engine that asked (`manual` for an administrator).
        engine: Engine,
        /// The detection name or the admin's note.
        reason: Cow<'static, str>,
        /// The detection's signature id.
        sid: Option<u32>,
        /// The duration asked for.
        duration_secs: u64,
    },
    /// A source was blocked.
    Added {
        /// Engine that blocked it.
        engine: Engine,
        /// Reason (detection name or admin note).
        reason: Cow<'static, str>,
        /// Signature id of the detection, if any.
        sid: Option<u32>,
        /// When it ends.
        expires: Timestamp,
        /// Duration in seconds.
        duration_secs: u64,
        /// Flow of the detection, if any.
        flow_id: Option<u64>,
    },
    /// A block ended.
    Removed {
        /// Why.
        reason: UnblockReason,
        /// Packets dropped while it lasted.
        hits: u64,
        /// When it was made.
        created: Timestamp,
    },
}

/// What happened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EventKind {
    /// A detection.
    Alert(Alert),
    /// A block was added or removed.
    Block {
        /// Scope and address.
        key: BlockKey,
        /// The change.
        change: BlockChange,
    },
    /// A protected VM was isolated or released, or would have been (monitoring mode).
    Isolation {
        /// The VM.
        vm: std::sync::Arc<crate::isolation::ProtectedVm>,
        /// The change.
        change: crate::isolation::IsolationChange,
    },
}

/// One event.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// When: the packet's time, or the expiry time for expiries.
    pub ts: Timestamp,
    /// 1-based packet number in replay, for events caused by a packet.
    pub pcap_cnt: Option<u64>,
    /// What.
    pub kind: EventKind,
}
