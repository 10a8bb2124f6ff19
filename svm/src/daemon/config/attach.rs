//! Where the appliance sits: `backend`, `mode`, the interfaces or DPDK ports, `workers` and
//! `eal_args` (with the checks that tie the EAL arguments to the named ports).

use super::reader::{Mapping, Value};

use super::reader::Reader;
use super::{AttachConfig, Backend, MAX_WORKERS};
use policy::tree::describe;

/// What the top-level attach keys give.
pub(super) struct Attach {
    pub(super) backend: Option<Backend>,
    pub(super) attach: Option<AttachConfig>,
    pub(super) workers: u64,
    pub(super) eal_args: Vec<String>,
}

/// `backend`, `mode`, the interface or port keys, `workers` (or `cores`) and `eal_args`.
pub(super) fn read(r: &mut Reader, m: &mut Mapping) -> Attach {
    let backend = backend(r, m);
    let dpdk = backend == Some(Backend::Dpdk);
    let attach = interfaces(r, m, dpdk);
    let workers = workers(r, m);
    let eal_args = eal_args(r, m);
    if !eal_args.is_empty() && backend == Some(Backend::AfPacket) {
        r.issue("eal_args", "only for backend: dpdk");
    }
    if dpdk {
        check_dpdk(r, &eal_args, attach.as_ref(), workers);
    }
    Attach {
        backend,
        attach,
        workers,
        eal_args,
    }
}

/// `backend`.
fn backend(r: &mut Reader, m: &mut Mapping) -> Option<Backend> {
    let backend = match r.string(m, "backend", "backend").as_deref() {
        None | Some("af-packet") => Some(Backend::AfPacket),
        Some("dpdk") => Some(Backend::Dpdk),
        Some(other) => {
            r.issue(
                "backend",
                format!("unknown backend {other:?} (af-packet or dpdk)"),
            );
            None
        }
    };
    if backend == Some(Backend::Dpdk) && !cfg!(feature = "dpdk") {
        r.issue(
            "backend",
            "dpdk: this svm was built without DPDK support (cargo feature `dpdk`)",
        );
    }
    backend
}

/// `mode` and its interface keys (AF_PACKET) or port keys (DPDK).
fn interfaces(r: &mut Reader, m: &mut Mapping, dpdk: bool) -> Option<AttachConfig> {
    let mode = r.string(m, "mode", "mode");
    // AF_PACKET names interfaces, DPDK names devices (a vdev or a PCI address of eal_args).
    let (own, other) = if dpdk {
        (DPDK_PORT_KEYS, AFP_INTERFACE_KEYS)
    } else {
        (AFP_INTERFACE_KEYS, DPDK_PORT_KEYS)
    };
    for k in other {
        if m.remove(k).is_some() {
            r.issue(
                k,
                if dpdk {
                    "only for backend: af-packet (dpdk: vm_port, network_port, port, inject_port)"
                } else {
                    "only for backend: dpdk"
                },
            );
        }
    }
    let [k_vm, k_net, k_if, k_inject] = own;
    let vm = r.string(m, k_vm, k_vm);
    let net = r.string(m, k_net, k_net);
    let iface = r.string(m, k_if, k_if);
    let inject = r.string(m, k_inject, k_inject);
    match mode.as_deref() {
        Some("inline") => {
            for (v, k) in [(&iface, k_if), (&inject, k_inject)] {
                if v.is_some() {
                    r.issue(k, "only for mode: mirror");
                }
            }
            match (vm, net) {
                (Some(v), Some(n)) if v == n => {
                    r.issue(k_net, format!("must differ from {k_vm}"));
                    None
                }
                (Some(vm_interface), Some(network_interface)) => Some(AttachConfig::Inline {
                    vm_interface,
                    network_interface,
                }),
                (v, n) => {
                    if v.is_none() {
                        r.issue(k_vm, "required for mode: inline");
                    }
                    if n.is_none() {
                        r.issue(k_net, "required for mode: inline");
                    }
                    None
                }
            }
        }
        Some("mirror") => {
            for (v, k) in [(&vm, k_vm), (&net, k_net)] {
                if v.is_some() {
                    r.issue(k, "only for mode: inline");
                }
            }
            match iface {
                Some(interface) => {
                    if inject.as_ref() == Some(&interface) {
                        r.issue(k_inject, format!("must differ from {k_if}"));
                    }
                    Some(AttachConfig::Mirror {
                        interface,
                        inject_interface: inject,
                    })
                }
                None => {
                    r.issue(k_if, "required for mode: mirror");
                    None
                }
            }
        }
        Some(other) => {
            r.issue("mode", format!("unknown mode {other:?} (inline or mirror)"));
            None
        }
        None => {
            r.issue("mode", "required (inline or mirror)");
            None
        }
    }
}

/// `workers` (or `cores`).
fn workers(r: &mut Reader, m: &mut Mapping) -> u64 {
    match (m.contains_key("workers"), m.contains_key("cores")) {
        (true, true) => {
            r.issue("cores", "give either workers or cores, not both");
            m.remove("cores");
            r.uint(m, "workers", "workers", 1, MAX_WORKERS)
        }
        (false, true) => r.uint(m, "cores", "cores", 1, MAX_WORKERS),
        _ => r.uint(m, "workers", "workers", 1, MAX_WORKERS),
    }
    .unwrap_or(1)
}

/// `eal_args`.
fn eal_args(r: &mut Reader, m: &mut Mapping) -> Vec<String> {
    match m.remove("eal_args") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Value::String(s) => Some(s),
                other => {
                    r.issue(
                        &format!("eal_args[{i}]"),
                        format!("expected a string, got {}", describe(&other)),
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            r.issue(
                "eal_args",
                format!("expected a list of strings, got {}", describe(&other)),
            );
            vec![]
        }
    }
}

/// Interface keys of the AF_PACKET backend: inline VM side, inline network side, mirror, inject.
const AFP_INTERFACE_KEYS: [&str; 4] = [
    "vm_interface",
    "network_interface",
    "interface",
    "inject_interface",
];
/// Port keys of the DPDK backend, in the same order.
const DPDK_PORT_KEYS: [&str; 4] = ["vm_port", "network_port", "port", "inject_port"];

/// The devices an EAL command line brings up: `--vdev NAME,...` and the PCI allow-list
/// The devices an EAL command line brings up: `--vdev NAME,...` and the PCI allow-list
/// (`-a`/`--allow ADDRESS,...`), by the names DPDK gives their ports (a short PCI address gets
/// its `0000:` domain).
pub fn eal_devices(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (value, pci) = if let Some(v) = a.strip_prefix("--vdev=") {
            (Some(v.to_owned()), false)
        } else if let Some(v) = a.strip_prefix("--allow=") {
            (Some(v.to_owned()), true)
        } else if a == "--vdev" {
            (it.next().cloned(), false)
        } else if a == "-a" || a == "--allow" {
            (it.next().cloned(), true)
        } else if let Some(v) = a.strip_prefix("-a").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), true)
        } else {
            (None, false)
        };
        let Some(value) = value else { continue };
        let name = value
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if name.is_empty() {
            continue;
        }
        if pci && name.split(':').count() == 2 {
            out.push(format!("0000:{name}"));
        } else {
            out.push(name);
        }
    }
    out
}

/// The lcores an EAL command line enables with `-l LIST` / `-c MASK` (`None` if it uses
/// `--lcores`, whose CPU sets are not counted here, or none of them: then the EAL takes every
/// CPU and the daemon checks the count after `rte_eal_init`).
pub fn eal_lcores(args: &[String]) -> Option<usize> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--lcores" || a.starts_with("--lcores=") {
            return None;
        }
        let (value, mask) = if a == "-l" {
            (it.next().cloned(), false)
        } else if a == "-c" {
            (it.next().cloned(), true)
        } else if let Some(v) = a.strip_prefix("-l").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), false)
        } else if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty()) {
            (Some(v.to_owned()), true)
        } else {
            continue;
        };
        let value = value?;
        found = if mask {
            let hex = value.trim_start_matches("0x").trim_start_matches("0X");
            u128::from_str_radix(hex, 16)
                .ok()
                .map(|m| usize::try_from(m.count_ones()).unwrap_or(0))
        } else {
            let mut cpus = std::collections::BTreeSet::new();
            for part in value.split(',') {
                let (lo, hi) = part.split_once('-').unwrap_or((part, part));
                let (lo, hi) = (
                    lo.trim().parse::<u32>().ok()?,
                    hi.trim().parse::<u32>().ok()?,
                );
                if hi < lo || hi - lo > 1024 {
                    return None;
                }
                cpus.extend(lo..=hi);
            }
            Some(cpus.len())
        };
    }
    found
}

/// `backend: dpdk`: the EAL arguments must bring up every named port and, when they list the
/// lcores (`-l`, `-c`), give one per worker (worker 0 runs on the main lcore, the others on
/// worker lcores).
fn check_dpdk(r: &mut Reader, eal_args: &[String], attach: Option<&AttachConfig>, workers: u64) {
    if let Some(lcores) = eal_lcores(eal_args)
        && u64::try_from(lcores).unwrap_or(0) < workers
    {
        r.issue(
            "workers",
            format!(
                "{workers} workers need {workers} EAL lcores, eal_args enable {lcores} \
                 (-l with one CPU per worker)"
            ),
        );
    }
    if eal_args.is_empty() {
        r.issue(
            "eal_args",
            "required for backend: dpdk (at least the devices: --vdev=NAME,... or -a PCI-ADDRESS)",
        );
        return;
    }
    if eal_args.iter().any(|a| a == "--in-memory") && eal_args.iter().any(|a| a == "--no-huge") {
        r.issue(
            "eal_args",
            "--in-memory cannot be combined with --no-huge (use --no-shconf)",
        );
    }
    let devices = eal_devices(eal_args);
    if devices.is_empty() {
        r.issue(
            "eal_args",
            "names no device: add --vdev=NAME,... or -a PCI-ADDRESS for every port",
        );
        return;
    }
    let named: Vec<(&str, &String)> = match attach {
        Some(AttachConfig::Inline {
            vm_interface,
            network_interface,
        }) => vec![
            ("vm_port", vm_interface),
            ("network_port", network_interface),
        ],
        Some(AttachConfig::Mirror {
            interface,
            inject_interface,
        }) => std::iter::once(("port", interface))
            .chain(inject_interface.iter().map(|i| ("inject_port", i)))
            .collect(),
        None => vec![],
    };
    for (key, name) in named {
        if !devices.contains(name) {
            r.issue(
                key,
                format!(
                    "{name:?} is not a device of eal_args (devices: {})",
                    devices.join(", ")
                ),
            );
        }
    }
}
