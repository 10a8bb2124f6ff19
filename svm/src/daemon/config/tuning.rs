//! The top-level settings and the tuning sections: `policy`, `eve`, `checksums`,
//! `stats_interval_secs`, `burst`, the caps (`flows`, `defrag`, `blocks`), `af_packet` and `dpdk`.

use std::path::PathBuf;

use super::reader::Mapping;

use super::files::Need;
use super::reader::Reader;
use super::{AfPacketSettings, DpdkDistribution, DpdkHash, DpdkSettings, to_u32, to_usize};

/// The top-level scalar settings.
pub(super) struct General {
    pub(super) policy: Option<PathBuf>,
    pub(super) eve: Option<String>,
    pub(super) verify_checksums: bool,
    pub(super) stats_interval_secs: u64,
    pub(super) burst: u64,
}

/// `policy`, `eve`, `checksums`, `stats_interval_secs`, `burst`.
pub(super) fn general(r: &mut Reader, m: &mut Mapping) -> General {
    let policy = r
        .file(m, "policy", "policy", Need::Policy)
        .map(PathBuf::from);
    let eve = r.file(m, "eve", "eve", Need::Append);
    let verify_checksums = match r.string(m, "checksums", "checksums").as_deref() {
        None | Some("none") => false,
        Some("all") => true,
        Some(other) => {
            r.issue(
                "checksums",
                format!("unknown value {other:?} (none or all)"),
            );
            false
        }
    };
    let stats_interval_secs = r
        .uint(m, "stats_interval_secs", "stats_interval_secs", 0, 86_400)
        .unwrap_or(0);
    let burst = r.uint(m, "burst", "burst", 1, 1024).unwrap_or(64);
    General {
        policy,
        eve,
        verify_checksums,
        stats_interval_secs,
        burst,
    }
}

/// The per-worker and shared caps.
pub(super) struct Caps {
    pub(super) max_flows: usize,
    pub(super) defrag_max_datagrams: usize,
    pub(super) defrag_max_bytes: usize,
    pub(super) max_blocks: usize,
}

/// `flows`, `defrag`, `blocks`.
pub(super) fn caps(r: &mut Reader, m: &mut Mapping) -> Caps {
    let flow_defaults = dataplane::flow::FlowConfig::default();
    let defrag_defaults = dataplane::defrag::DefragConfig::default();
    let mut flows = r.section(m, "flows");
    let max_flows = r
        .uint(&mut flows, "max", "flows.max", 1024, 1 << 26)
        .map_or(flow_defaults.max_flows, to_usize);
    r.unknown(&flows, "flows");
    let mut defrag = r.section(m, "defrag");
    let defrag_max_datagrams = r
        .uint(
            &mut defrag,
            "max_datagrams",
            "defrag.max_datagrams",
            1,
            1 << 20,
        )
        .map_or(defrag_defaults.max_datagrams, to_usize);
    let defrag_max_bytes = r
        .uint(
            &mut defrag,
            "max_bytes",
            "defrag.max_bytes",
            1 << 16,
            1 << 32,
        )
        .map_or(defrag_defaults.max_bytes, to_usize);
    r.unknown(&defrag, "defrag");
    let mut blocks = r.section(m, "blocks");
    let max_blocks = r
        .uint(&mut blocks, "max", "blocks.max", 1, 1 << 24)
        .map_or(dataplane::blocks::DEFAULT_BLOCK_CAPACITY, to_usize);
    r.unknown(&blocks, "blocks");
    Caps {
        max_flows,
        defrag_max_datagrams,
        defrag_max_bytes,
        max_blocks,
    }
}

/// `af_packet`.
pub(super) fn af_packet(r: &mut Reader, m: &mut Mapping) -> AfPacketSettings {
    let mut afp = r.section(m, "af_packet");
    let d = AfPacketSettings::default();
    let block_size = r
        .uint(
            &mut afp,
            "block_size",
            "af_packet.block_size",
            4096,
            1 << 28,
        )
        .map_or(d.block_size, to_u32);
    if !block_size.is_power_of_two() {
        r.issue(
            "af_packet.block_size",
            format!("{block_size} is not a power of two"),
        );
    }
    let block_count = r
        .uint(&mut afp, "block_count", "af_packet.block_count", 2, 4096)
        .map_or(d.block_count, to_u32);
    let retire_ms = r
        .uint(&mut afp, "retire_ms", "af_packet.retire_ms", 1, 1000)
        .map_or(d.retire_ms, to_u32);
    let fanout_hash = match r
        .string(&mut afp, "fanout_hash", "af_packet.fanout_hash")
        .as_deref()
    {
        None | Some("addresses") => dataplane::io::afpacket::FanoutHash::Addresses,
        Some("kernel") => dataplane::io::afpacket::FanoutHash::Kernel,
        Some(other) => {
            r.issue(
                "af_packet.fanout_hash",
                format!("unknown value {other:?} (addresses or kernel)"),
            );
            d.fanout_hash
        }
    };
    let promiscuous = r
        .boolean(&mut afp, "promiscuous", "af_packet.promiscuous")
        .unwrap_or(d.promiscuous);
    r.unknown(&afp, "af_packet");
    AfPacketSettings {
        block_size,
        block_count,
        retire_ms,
        fanout_hash,
        promiscuous,
    }
}

/// `dpdk` (refused unless `dpdk` is the backend).
pub(super) fn dpdk(r: &mut Reader, m: &mut Mapping, dpdk: bool) -> DpdkSettings {
    let had_dpdk = m.get("dpdk").is_some_and(|v| !v.is_null());
    if had_dpdk && !dpdk {
        r.issue("dpdk", "only for backend: dpdk");
    }
    let mut dp = r.section(m, "dpdk");
    let dd = DpdkSettings::default();
    let distribution = match r
        .string(&mut dp, "distribution", "dpdk.distribution")
        .as_deref()
    {
        None | Some("auto") => DpdkDistribution::Auto,
        Some("rss") => DpdkDistribution::Rss,
        Some("software") => DpdkDistribution::Software,
        Some(other) => {
            r.issue(
                "dpdk.distribution",
                format!("unknown value {other:?} (auto, rss or software)"),
            );
            dd.distribution
        }
    };
    let dpdk_hash = match r.string(&mut dp, "hash", "dpdk.hash").as_deref() {
        None | Some("addresses") => DpdkHash::Addresses,
        Some("flows") => DpdkHash::Flows,
        Some(other) => {
            r.issue(
                "dpdk.hash",
                format!("unknown value {other:?} (addresses or flows)"),
            );
            dd.hash
        }
    };
    let ring_size = r
        .uint(&mut dp, "ring_size", "dpdk.ring_size", 64, 1 << 16)
        .map_or(dd.ring_size, to_u32);
    if !ring_size.is_power_of_two() {
        r.issue(
            "dpdk.ring_size",
            format!("{ring_size} is not a power of two"),
        );
    }
    r.unknown(&dp, "dpdk");
    DpdkSettings {
        distribution,
        hash: dpdk_hash,
        ring_size,
    }
}
