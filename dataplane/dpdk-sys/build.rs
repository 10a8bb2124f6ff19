//! Finds the system DPDK with pkg-config, generates narrow bindings with bindgen and compiles the
//! C shim that exports DPDK's static inline functions.
//!
//! Every cflag of `pkg-config --cflags libdpdk` goes to both bindgen and the shim: the pkg-config
//! crate drops `-march=...`, without which `rte_memcpy.h` does not compile (it needs SSSE3).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=src/wrapper.h");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    // Link the shared libdpdk: its PMDs are dlopen()ed at EAL init, and static linking through
    // the pkg-config crate wraps nothing in --whole-archive (the PMDs' constructors vanish).
    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_VERSION)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "dpdk-sys: libdpdk >= {MIN_VERSION} not found by pkg-config ({e}); \
                 install libdpdk-dev (Debian 12: apt-get install libdpdk-dev)"
            );
            std::process::exit(1);
        }
    };

    let cflags = dpdk_cflags();
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());

    let mut shim = cc::Build::new();
    shim.file("src/shim.c").include("src").warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    for path in &lib.include_paths {
        shim.include(path);
    }
    shim.compile("svm_dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("src/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Isrc")
        .allowlist_function(
            "rte_eal_init|rte_eal_cleanup|rte_eth_dev_count_avail|rte_eth_dev_get_port_by_name|\
             rte_eth_dev_socket_id|rte_eth_dev_info_get|rte_eth_dev_configure|\
             rte_eth_dev_adjust_nb_rx_tx_desc|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup|\
             rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|rte_eth_promiscuous_enable|\
             rte_eth_stats_get|rte_eth_stats_reset|rte_eth_dev_is_valid_port|\
             rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|\
             rte_mempool_in_use_count|rte_socket_id|rte_lcore_count|rte_strerror|rte_get_main_lcore|\
             rte_get_next_lcore|rte_eal_remote_launch|rte_eal_wait_lcore|rte_ring_free|shim_.*",
        )
        .allowlist_type(
            "rte_eth_conf|rte_eth_stats|rte_eth_dev_info|rte_mbuf|rte_mempool|rte_ring|lcore_function_t",
        )
        .allowlist_var(
            "RTE_MBUF_DEFAULT_.*|RTE_MAX_ETHPORTS|RTE_PKTMBUF_HEADROOM|RTE_ETH_LINK_.*|RTE_MAX_LCORE",
        )
        .derive_default(true)
        .layout_tests(false)
        .wrap_unsafe_ops(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate();
    let bindings = match bindings {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dpdk-sys: bindgen failed: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        eprintln!("dpdk-sys: writing bindings: {e}");
        std::process::exit(1);
    }
}

/// `pkg-config --cflags libdpdk`, split into arguments.
fn dpdk_cflags() -> Vec<String> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    match Command::new(pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Ok(o) => {
            eprintln!(
                "dpdk-sys: pkg-config --cflags libdpdk failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("dpdk-sys: running pkg-config: {e}");
            std::process::exit(1);
        }
    }
}
