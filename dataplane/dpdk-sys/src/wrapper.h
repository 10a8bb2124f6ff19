/* Headers bindgen reads; the allowlist in build.rs keeps the bindings narrow. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_launch.h>
#include <rte_ring.h>
#include "shim.h"
