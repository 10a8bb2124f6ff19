/* Exported wrappers of DPDK's static inline functions and macros, which have no symbol to link. */
#ifndef SVM_DPDK_SHIM_H
#define SVM_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

uint16_t shim_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t shim_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *pool);
void shim_pktmbuf_free(struct rte_mbuf *m);
void shim_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n);
char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
void *shim_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t shim_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t shim_pktmbuf_nb_segs(const struct rte_mbuf *m);
/* Copies `len` bytes from offset `off` of a (possibly chained) mbuf into `buf`; 0 on success. */
int shim_pktmbuf_copy_out(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *buf);
/* The first segment's data and length in one call (the per-frame hot path); returns pkt_len. */
uint32_t shim_pktmbuf_view(struct rte_mbuf *m, uint8_t **data, uint16_t *data_len);
unsigned int shim_lcore_id(void);
int shim_errno(void);
/* 1 if the port reports link up, 0 if down, a negative errno on failure. */
int shim_eth_link_up(uint16_t port);

#endif
