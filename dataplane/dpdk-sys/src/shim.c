/* See shim.h. Compiled with libdpdk's own cflags (rte_memcpy.h needs the -march it names). */
#include <string.h>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "shim.h"

uint16_t shim_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t shim_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *shim_pktmbuf_alloc(struct rte_mempool *pool)
{
	return rte_pktmbuf_alloc(pool);
}

void shim_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void shim_pktmbuf_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

char *shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

void *shim_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, void *);
}

uint16_t shim_pktmbuf_data_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_data_len(m);
}

uint32_t shim_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
	return rte_pktmbuf_pkt_len(m);
}

uint16_t shim_pktmbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

int shim_pktmbuf_copy_out(const struct rte_mbuf *m, uint32_t off, uint32_t len, void *buf)
{
	const void *p = rte_pktmbuf_read(m, off, len, buf);
	if (p == NULL)
		return -1;
	if (p != buf)
		memcpy(buf, p, len);
	return 0;
}

uint32_t shim_pktmbuf_view(struct rte_mbuf *m, uint8_t **data, uint16_t *data_len)
{
	*data = rte_pktmbuf_mtod(m, uint8_t *);
	*data_len = rte_pktmbuf_data_len(m);
	return rte_pktmbuf_pkt_len(m);
}

void shim_pktmbuf_views(struct rte_mbuf *const *pkts, uint16_t n, uint8_t **data,
			uint16_t *data_len)
{
	uint16_t i;

	for (i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];

		if (m->nb_segs <= 1) {
			data[i] = rte_pktmbuf_mtod(m, uint8_t *);
			data_len[i] = rte_pktmbuf_data_len(m);
		} else {
			data[i] = NULL;
			data_len[i] = 0;
		}
	}
}

unsigned int shim_lcore_id(void)
{
	return rte_lcore_id();
}

int shim_errno(void)
{
	return rte_errno;
}

int shim_eth_link_up(uint16_t port)
{
	struct rte_eth_link link;
	int ret;

	memset(&link, 0, sizeof(link));
	ret = rte_eth_link_get_nowait(port, &link);
	if (ret < 0)
		return ret;
	return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

int shim_eth_caps(uint16_t port, uint16_t *max_rx, uint16_t *max_tx, uint64_t *rss_offloads,
		  uint8_t *key_size)
{
	struct rte_eth_dev_info info;
	int ret;

	memset(&info, 0, sizeof(info));
	ret = rte_eth_dev_info_get(port, &info);
	if (ret < 0)
		return ret;
	*max_rx = info.max_rx_queues;
	*max_tx = info.max_tx_queues;
	*rss_offloads = info.flow_type_rss_offloads;
	*key_size = info.hash_key_size;
	return 0;
}

uint64_t shim_rss_hf(int l4)
{
	uint64_t hf = RTE_ETH_RSS_IP;

	if (l4)
		hf |= RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP;
	return hf;
}

/* Longest RSS key a device may ask for (52 bytes on i40e/ice, 40 on most others). */
#define SHIM_RSS_KEY_MAX 64

int shim_eth_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss, int l4,
		       uint64_t *hf_out)
{
	/* A key of one repeated 16-bit pattern makes Toeplitz symmetric: swapping the source and
	 * destination (addresses, ports) shifts the input by a multiple of 16 bits, which the
	 * key does not see (Woo and Park, "Scalable TCP Session Monitoring with Symmetric
	 * Receive-side Scaling", 2012). It stays static: rte_eth_dev_configure keeps the pointer
	 * only for the call, but some drivers read it again at start. */
	static uint8_t key[SHIM_RSS_KEY_MAX];
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint64_t hf;
	int ret;
	unsigned int i;

	memset(&conf, 0, sizeof(conf));
	*hf_out = 0;
	if (rss) {
		memset(&info, 0, sizeof(info));
		ret = rte_eth_dev_info_get(port, &info);
		if (ret < 0)
			return ret;
		for (i = 0; i < SHIM_RSS_KEY_MAX; i += 2) {
			key[i] = 0x6d;
			key[i + 1] = 0x5a;
		}
		hf = shim_rss_hf(l4) & info.flow_type_rss_offloads;
		*hf_out = hf;
		if (hf == 0)
			return -ENOTSUP;
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len =
			info.hash_key_size > 0 && info.hash_key_size <= SHIM_RSS_KEY_MAX ?
				info.hash_key_size : 40;
		conf.rx_adv_conf.rss_conf.rss_hf = hf;
	}
	return rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
}

struct rte_ring *shim_ring_create_spsc(const char *name, unsigned int count, int socket)
{
	return rte_ring_create(name, count, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

unsigned int shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{
	return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned int shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{
	return rte_ring_dequeue_burst(r, objs, n, NULL);
}
