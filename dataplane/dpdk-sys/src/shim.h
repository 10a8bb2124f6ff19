/* Exported wrappers of DPDK's static inline functions and macros, which have no symbol to link. */
#ifndef SVM_DPDK_SHIM_H
#define SVM_DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

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
/* The views of a whole burst in one call: for each of the n mbufs, its data and data length if
 * the frame is in one segment, NULL and 0 if it is chained. */
void shim_pktmbuf_views(struct rte_mbuf *const *pkts, uint16_t n, uint8_t **data,
			uint16_t *data_len);
unsigned int shim_lcore_id(void);
int shim_errno(void);
/* 1 if the port reports link up, 0 if down, a negative errno on failure. */
int shim_eth_link_up(uint16_t port);


/* What a port offers for several queues: queue limits, the RSS hash functions it supports and
 * its RSS key size (0 if it does not say). 0 on success, a negative errno on failure. */
int shim_eth_caps(uint16_t port, uint16_t *max_rx, uint16_t *max_tx, uint64_t *rss_offloads,
		  uint8_t *key_size);
/* rte_eth_dev_configure with nb_rx receive and nb_tx transmit queues. rss == 0: no RSS (DPDK's
 * default configuration). rss != 0: RSS over the IP addresses (and TCP/UDP/SCTP ports when
 * l4 != 0) with the symmetric key (0x6d5a repeated), restricted to the hash functions the device
 * offers; *hf_out is what was asked for after that restriction (0: the device offers none).
 * Returns rte_eth_dev_configure's result. */
int shim_eth_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss, int l4,
		       uint64_t *hf_out);
/* The RSS hash functions shim_eth_configure asks for (before the device's restriction). */
uint64_t shim_rss_hf(int l4);
/* rte_ring_create for one producer and one consumer (RING_F_SP_ENQ | RING_F_SC_DEQ). */
struct rte_ring *shim_ring_create_spsc(const char *name, unsigned int count, int socket);
unsigned int shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);

#endif
