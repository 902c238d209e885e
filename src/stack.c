/*
 * stack.c - lwIP on a TUN fd, driven by libevent.
 *
 * Input: one persistent read event; each wakeup reads up to STACK_RX_BATCH
 * packets straight into pool pbufs (readv over the pbuf chain, no copy) and
 * hands them to ip_input.  Output: netif->output/output_ip6 write the pbuf
 * chain with one writev.  Timers: sys_check_timeouts() every
 * TCP_TMR_INTERVAL from a persistent libevent timer.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_net.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lwip/inet_chksum.h"
#include "lwip/memp.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"

#include "log.h"
#include "fnv.h"
#include "lwip_hooks.h"
#include "stack.h"

#define STACK_RX_BATCH	64
#define STACK_IOV_MAX	32
#define STACK_FRAG_HEAD	128	/* bytes of a packet stack_frag_owner() reads */
#define STACK_VNET_LEN	sizeof(struct virtio_net_hdr)
#define STACK_RXBUF_LEN	65536
#define STACK_CORK_IN_FLIGHT	(8 * 1024)	/* > 2 segments of MTU 1500 */
#define STACK_CORK_MAX		(64 * 1024)
#define STACK_QUEUE_AHEAD	(64 * 1024)	/* queued past the window */
#define STACK_LISTEN_PORT	9	/* the catch-all's placeholder port */

struct stack {
	struct event_base	*base;
	int			 fd;
	int			 mtu;
	struct netif		 netif;
	struct event		*rx_ev;
	struct event		*timer_ev;
	struct tcp_pcb		*listener;
	struct stack_stats	 st;
	bool			 vnet;		/* virtio_net_hdr + offloads */
	unsigned char		*rxbuf;		/* vnet: one 64 KiB packet */
	bool			 tx_error_logged;
	bool			 dead;		/* the TUN device failed for good */
	stack_fatal_cb		 fatal_cb;
	void			 *fatal_arg;
	stack_udp_cb		 udp_cb;
	void			*udp_arg;
	unsigned		 frag_self;	/* workers: which one we are */
	unsigned		 frag_n;	/* 0: fragments stay here */
	stack_frag_cb		 frag_cb;
	void			*frag_arg;
	unsigned char		*fragbuf;	/* one fragment, flattened */
};

/*
 * Per-pcb state we keep in lwIP's extension slot: the segment size the
 * kernel cuts TSO super-packets at, which is the client's own MSS (from
 * its SYN) when that is below the TUN's.
 */
static u8_t stack_ext_id = 0xff;

static void	stack_die(struct stack *, const char *, int);
static bool	stack_errno_fatal(int);

/* lwIP is a single global instance: one stack per process */
static struct stack *stack_current;
static bool stack_lwip_ready;

/* ---- lwIP platform hooks (arch/cc.h, NO_SYS) ------------------------- */

u32_t sys_now(void);

u32_t
sys_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u32_t)((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
}

void
sluice_lwip_diag(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_debug("lwip: %s", buf);
}

/* ---- output ------------------------------------------------------------ */

/* Fold a 32-bit one's complement sum to 16 bits. */
static uint16_t
stack_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * Fill the virtio_net_hdr for an outgoing packet.  TCP goes out with a
 * partial checksum (the pseudo-header sum, as Linux's CHECKSUM_PARTIAL) for
 * the kernel to finish, and segments longer than the TUN's MSS as one TSO
 * super-packet.  Anything else was checksummed by lwIP.  Headers are in the
 * first pbuf: lwIP builds them there.
 */
static void
stack_vnet_hdr_out(struct stack *s, struct pbuf *p, struct virtio_net_hdr *h)
{
	unsigned char *b = p->payload;
	unsigned ihl, thl, tcplen, paylen, mss;
	uint32_t sum;
	uint16_t ck;
	bool v6;

	memset(h, 0, sizeof(*h));
	if (p->len < 20)
		return;
	v6 = (b[0] >> 4) == 6;
	if (v6) {
		if (p->len < 60 || b[6] != IP_PROTO_TCP)
			return;
		ihl = 40;
		tcplen = (unsigned)(b[4] << 8 | b[5]);
	} else {
		ihl = (unsigned)(b[0] & 0x0f) * 4;
		if (b[9] != IP_PROTO_TCP || p->len < ihl + 20)
			return;
		tcplen = (unsigned)(b[2] << 8 | b[3]) - ihl;
	}
	thl = (unsigned)(b[ihl + 12] >> 4) * 4;
	if (p->len < ihl + thl || tcplen < thl)
		return;

	/* the pseudo-header sum, stored as Linux stores it */
	if (v6) {
		sum = sluice_chksum(b + 8, 32);
	} else {
		sum = sluice_chksum(b + 12, 8);
	}
	sum += lwip_htons(IP_PROTO_TCP);
	sum += lwip_htons((uint16_t)tcplen);
	ck = stack_fold(sum);
	memcpy(b + ihl + 16, &ck, 2);
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = (uint16_t)ihl;
	h->csum_offset = 16;

	paylen = tcplen - thl;
	mss = (unsigned)s->mtu - ihl - thl;
	if (paylen > mss || (paylen > 0 && s->netif.hints != NULL)) {
		/* a data segment of a pcb (tcp_output_segment set the hint):
		 * cut at the client's MSS when it asked for less */
		const struct tcp_pcb *pcb = (const struct tcp_pcb *)(const void *)
		    ((const char *)s->netif.hints -
		    offsetof(struct tcp_pcb, netif_hints));
		uintptr_t peer = stack_ext_id == 0xff ? 0 :
		    (uintptr_t)tcp_ext_arg_get(pcb, stack_ext_id);

		/* the client's MSS counts options as payload */
		if (peer != 0 && peer - (thl - 20) < mss)
			mss = (unsigned)peer - (thl - 20);
	}
	if (paylen > mss) {
		h->gso_type = v6 ? VIRTIO_NET_HDR_GSO_TCPV6 :
		    VIRTIO_NET_HDR_GSO_TCPV4;
		h->gso_size = (uint16_t)mss;
		h->hdr_len = (uint16_t)(ihl + thl);
	}
}

/*
 * Check the TCP checksum of a packet the kernel did not vouch for (one it
 * forwarded rather than made).  buf holds the whole IP packet.
 */
static bool
stack_tcp_csum_ok(const unsigned char *b, size_t len)
{
	unsigned ihl, tcplen;
	uint32_t sum;

	if ((b[0] >> 4) == 6) {
		if (len < 40 || b[6] != IP_PROTO_TCP)
			return true;	/* lwIP checks the rest */
		ihl = 40;
		sum = sluice_chksum(b + 8, 32);
	} else {
		ihl = (unsigned)(b[0] & 0x0f) * 4;
		if (len < 20 || b[9] != IP_PROTO_TCP || len < ihl ||
		    (b[6] & 0x3f) != 0 || b[7] != 0)
			return true;	/* not TCP, or a fragment */
		sum = sluice_chksum(b + 12, 8);
	}
	if (len < ihl + 20)
		return true;		/* lwIP drops it */
	tcplen = (unsigned)(len - ihl);
	sum += lwip_htons(IP_PROTO_TCP);
	sum += lwip_htons((uint16_t)tcplen);
	sum += sluice_chksum(b + ihl, (int)tcplen);
	return stack_fold(sum) == 0xffff;
}

/*
 * Finish the checksum of a packet the kernel handed over with NEEDS_CSUM
 * (the pseudo-header sum in the field; the rest is ours to add), as the
 * kernel's skb_checksum_help() would, so that lwIP's UDP and ICMP checks
 * see a complete one.  TCP is left alone: lwIP does not check it on an
 * offloading netif.  false when start and offset do not fit the packet.
 */
static bool
stack_csum_finish(unsigned char *b, size_t len, unsigned start,
    unsigned offset)
{
	uint16_t ck;

	if ((b[0] >> 4) == 6 ? len >= 40 && b[6] == IP_PROTO_TCP :
	    len >= 20 && b[9] == IP_PROTO_TCP)
		return true;
	if ((size_t)start + offset + 2 > len || start >= len)
		return false;
	ck = (uint16_t)~stack_fold(sluice_chksum(b + start,
	    (int)(len - start)));
	memcpy(b + start + offset, &ck, 2);
	return true;
}

/* Write one packet (a pbuf chain) to the TUN fd. */
static err_t
stack_write(struct stack *s, struct pbuf *p)
{
	/* iov[0] is the virtio_net_hdr with offloads, unused without */
	struct iovec iov[1 + STACK_IOV_MAX], *first = iov + 1;
	struct virtio_net_hdr h;
	struct pbuf *q;
	int n = 0;
	ssize_t w;

	/* before any copy: this fills in the TCP checksum field */
	if (s->vnet)
		stack_vnet_hdr_out(s, p, &h);
	for (q = p; q != NULL && n < STACK_IOV_MAX; q = q->next) {
		first[n].iov_base = q->payload;
		first[n].iov_len = q->len;
		n++;
	}
	if (q != NULL) {
		/* absurdly long chain: flatten it */
		static unsigned char flat[65536];
		pbuf_copy_partial(p, flat, p->tot_len, 0);
		first[0].iov_base = flat;
		first[0].iov_len = p->tot_len;
		n = 1;
	}
	if (s->vnet) {
		iov[0].iov_base = &h;
		iov[0].iov_len = STACK_VNET_LEN;
		w = writev(s->fd, iov, n + 1);
		if (w >= (ssize_t)STACK_VNET_LEN)
			w -= (ssize_t)STACK_VNET_LEN;
	} else
		w = writev(s->fd, first, n);
	if (w < 0) {
		s->st.tx_dropped++;
		if (errno == EBADFD || errno == EBADF || errno == ENXIO ||
		    errno == ENODEV)
			stack_die(s, "write", errno);
		else if (!s->tx_error_logged && stack_errno_fatal(errno)) {
			log_warn("tun: write");
			s->tx_error_logged = true;
		}
		/* TCP retransmits; nothing else to do */
		return ERR_OK;
	}
	s->st.tx_packets++;
	s->st.tx_bytes += (uint64_t)w;
	return ERR_OK;
}

static err_t
stack_netif_output4_cb(struct netif *netif, struct pbuf *p,
    const ip4_addr_t *dst)
{
	(void)dst;
	return stack_write(netif->state, p);
}

static err_t
stack_netif_output6_cb(struct netif *netif, struct pbuf *p,
    const ip6_addr_t *dst)
{
	(void)dst;
	return stack_write(netif->state, p);
}

static err_t
stack_netif_init_cb(struct netif *netif)
{
	struct stack *s = netif->state;

	netif->name[0] = 't';
	netif->name[1] = 'n';
	netif->mtu = (u16_t)(s->mtu > 65535 ? 65535 : s->mtu);
	netif->output = stack_netif_output4_cb;
	netif->output_ip6 = stack_netif_output6_cb;
	netif->flags = NETIF_FLAG_ACCEPT_ANY;
	return ERR_OK;
}

/* ---- input ------------------------------------------------------------- */

/* Read and discard one packet when no pbuf is free. */
static bool
stack_rx_discard(struct stack *s)
{
	unsigned char scratch[2048];
	ssize_t n = read(s->fd, scratch, sizeof(scratch));

	if (n <= 0) {
		if (n < 0 && stack_errno_fatal(errno))
			stack_die(s, "read", errno);
		return false;
	}
	s->st.rx_dropped++;
	return true;
}

/*
 * The TUN device failed for good (it was deleted: EBADFD, or I/O errors):
 * stop reading, so the loop does not spin, and tell the owner once.
 */
static void
stack_die(struct stack *s, const char *what, int err)
{
	char why[128];

	if (s->dead)
		return;
	s->dead = true;
	if (s->rx_ev != NULL)
		event_del(s->rx_ev);
	snprintf(why, sizeof(why), "tun: %s: %s", what, strerror(err));
	if (s->fatal_cb != NULL)
		s->fatal_cb(s->fatal_arg, why);
	else
		log_errorx("%s", why);
}

/* Whether errno after a TUN read or write means the device is gone. */
static bool
stack_errno_fatal(int err)
{
	return err != EAGAIN && err != EWOULDBLOCK && err != EINTR &&
	    err != ENOMEM && err != ENOBUFS;
}

/* Account for one read(); false when it brought no packet (EAGAIN, error). */
static bool
stack_rx_got(struct stack *s, ssize_t n)
{
	if (n <= 0) {
		if (n < 0 && stack_errno_fatal(errno))
			stack_die(s, "read", errno);
		return false;
	}
	s->st.rx_packets++;
	s->st.rx_bytes += (uint64_t)n;
	return true;
}

/*
 * Workers: the kernel puts an IP fragment on a TUN queue by its addresses
 * alone (it sees no ports in it), and a worker that writes a reply to
 * those addresses draws the choice to its own queue, so the fragments of
 * one datagram can reach two workers and neither could reassemble it.
 * Each fragment has an owner, the same in every worker (stack_frag_owner);
 * one owned by another worker goes there.  False when p was handed over
 * (and freed).
 */
static bool
stack_frag_keep(struct stack *s, struct pbuf *p)
{
	unsigned char head[STACK_FRAG_HEAD];
	const unsigned char *h = p->payload;
	size_t hlen = p->len;
	int owner;

	if (s->frag_n < 2)
		return true;
	if (hlen < sizeof(head) && hlen < p->tot_len) {
		hlen = pbuf_copy_partial(p, head, sizeof(head), 0);
		h = head;
	}
	owner = stack_frag_owner(h, hlen, s->frag_n);
	if (owner < 0 || (unsigned)owner == s->frag_self)
		return true;
	pbuf_copy_partial(p, s->fragbuf, p->tot_len, 0);
	s->frag_cb(s->frag_arg, (unsigned)owner, s->fragbuf, p->tot_len);
	s->st.frag_steered++;
	pbuf_free(p);
	return false;
}

/* Hand one packet read from the TUN to lwIP (or to its fragment's owner). */
static void
stack_deliver(struct stack *s, struct pbuf *p)
{
	if (!stack_frag_keep(s, p))
		return;
	if (s->netif.input(p, &s->netif) != ERR_OK) {
		s->st.rx_dropped++;
		pbuf_free(p);
	}
}

/*
 * Read with offloads: a virtio_net_hdr and a packet of up to 64 KiB into
 * rxbuf, then into pool pbufs.  Packets the kernel made come with
 * NEEDS_CSUM or DATA_VALID; others get their TCP checksum checked here,
 * since lwIP's own check is off on this netif.
 */
static void
stack_tun_read_vnet(struct stack *s, evutil_socket_t fd)
{
	struct virtio_net_hdr h;
	struct iovec iov[2];
	struct pbuf *p;
	unsigned char v;
	ssize_t n;
	size_t len;
	int i, got = 0;

	iov[0].iov_base = &h;
	iov[0].iov_len = STACK_VNET_LEN;
	iov[1].iov_base = s->rxbuf;
	iov[1].iov_len = STACK_RXBUF_LEN;
	for (i = 0; i < STACK_RX_BATCH && !s->dead; i++) {
		n = readv(fd, iov, 2);
		if (!stack_rx_got(s, n))
			break;
		got++;
		if ((size_t)n <= STACK_VNET_LEN || (size_t)n - STACK_VNET_LEN > 0xffff) {
			s->st.rx_dropped++;
			continue;
		}
		len = (size_t)n - STACK_VNET_LEN;
		v = s->rxbuf[0] >> 4;
		if ((v != 4 && v != 6) ||
		    (!(h.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM |
		    VIRTIO_NET_HDR_F_DATA_VALID)) &&
		    !stack_tcp_csum_ok(s->rxbuf, len)) ||
		    ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    !stack_csum_finish(s->rxbuf, len, h.csum_start,
		    h.csum_offset))) {
			s->st.rx_dropped++;
			continue;
		}
		if ((p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL)) == NULL) {
			s->st.rx_dropped++;
			continue;
		}
		pbuf_take(p, s->rxbuf, (u16_t)len);
		stack_deliver(s, p);
	}
	if (got > 0)
		s->st.rx_batches++;
}

static void
stack_tun_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stack *s = arg;
	struct iovec iov[STACK_IOV_MAX];
	struct pbuf *p, *q;
	unsigned char v;
	ssize_t n;
	int i, cnt, got = 0;

	(void)what;
	if (s->vnet) {
		stack_tun_read_vnet(s, fd);
		return;
	}
	for (i = 0; i < STACK_RX_BATCH && !s->dead; i++) {
		p = pbuf_alloc(PBUF_RAW, (u16_t)s->mtu, PBUF_POOL);
		if (p == NULL) {
			if (!stack_rx_discard(s))
				break;
			continue;
		}
		for (q = p, cnt = 0; q != NULL && cnt < STACK_IOV_MAX;
		    q = q->next, cnt++) {
			iov[cnt].iov_base = q->payload;
			iov[cnt].iov_len = q->len;
		}
		n = readv(fd, iov, cnt);
		if (!stack_rx_got(s, n)) {
			pbuf_free(p);
			break;
		}
		got++;
		pbuf_realloc(p, (u16_t)n);
		v = ((unsigned char *)p->payload)[0] >> 4;
		if (v != 4 && v != 6) {
			s->st.rx_dropped++;
			pbuf_free(p);
			continue;
		}
		stack_deliver(s, p);
	}
	if (got > 0)
		s->st.rx_batches++;
}

/* One packet of len bytes in a pool pbuf, or NULL (counted as dropped). */
static struct pbuf *
stack_pbuf_of(struct stack *s, const void *pkt, size_t len)
{
	struct pbuf *p;
	unsigned char v;

	if (len == 0 || len > (size_t)s->mtu ||
	    ((v = ((const unsigned char *)pkt)[0] >> 4) != 4 && v != 6) ||
	    (p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL)) == NULL) {
		s->st.rx_dropped++;
		return NULL;
	}
	pbuf_take(p, pkt, (u16_t)len);
	return p;
}

void
stack_input(struct stack *s, const void *pkt, size_t len)
{
	struct pbuf *p;

	s->st.rx_packets++;
	s->st.rx_bytes += len;
	if ((p = stack_pbuf_of(s, pkt, len)) != NULL)
		stack_deliver(s, p);
}

void
stack_input_fragment(struct stack *s, const void *pkt, size_t len)
{
	struct pbuf *p;

	s->st.frag_taken++;
	if ((p = stack_pbuf_of(s, pkt, len)) != NULL &&
	    s->netif.input(p, &s->netif) != ERR_OK) {
		s->st.rx_dropped++;
		pbuf_free(p);
	}
}

int
stack_frag_owner(const unsigned char *pkt, size_t len, unsigned n)
{
	uint32_t h = FNV1A_INIT;
	size_t off;
	unsigned nh;

	if (n < 2 || len < 20)
		return -1;
	if (pkt[0] >> 4 == 4) {
		/* MF or a fragment offset: a fragment */
		if (((pkt[6] << 8 | pkt[7]) & 0x3fff) == 0)
			return -1;
		h = fnv1a(h, pkt + 12, 8);	/* source, destination */
		h = fnv1a(h, pkt + 9, 1);	/* protocol */
		h = fnv1a(h, pkt + 4, 2);	/* identification */
		return (int)(h % n);
	}
	if (pkt[0] >> 4 != 6 || len < 40)
		return -1;
	/* the Fragment header, after the unfragmentable extension headers */
	nh = pkt[6];
	off = 40;
	for (int i = 0; i < 8; i++) {
		if (nh == 44) {
			if (off + 8 > len)
				return -1;
			/* source, destination; identification */
			h = fnv1a(h, pkt + 8, 32);
			h = fnv1a(h, pkt + off + 4, 4);
			return (int)(h % n);
		}
		/* hop-by-hop, routing, destination options */
		if ((nh != 0 && nh != 43 && nh != 60) || off + 2 > len)
			return -1;
		nh = pkt[off];
		off += ((size_t)pkt[off + 1] + 1) * 8;
	}
	return -1;
}

int
stack_set_workers(struct stack *s, unsigned self, unsigned n,
    stack_frag_cb cb, void *arg)
{
	if (n > 1 && s->fragbuf == NULL &&
	    (s->fragbuf = malloc(0x10000)) == NULL) {
		log_error("stack: malloc");
		return -1;
	}
	lwip_hooks_id_split(self, n);
	s->frag_self = self;
	s->frag_n = cb != NULL ? n : 0;
	s->frag_cb = cb;
	s->frag_arg = arg;
	return 0;
}

static void
stack_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sys_check_timeouts();
}

/* A deferred-SYN pcb completed its handshake: nothing to do, the SYN hook
 * already set it up (lwIP aborts the pcb without an accept callback). */
static err_t
stack_accept_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	(void)pcb;
	(void)err;
	return ERR_OK;
}

/* ---- life cycle --------------------------------------------------------- */

struct stack *
stack_new(struct event_base *base, int tun_fd, int mtu)
{
	struct stack *s;
	struct timeval tv = { 0, TCP_TMR_INTERVAL * 1000 };
	ip4_addr_t addr, mask;

	if (stack_current != NULL) {
		log_errorx("stack: lwIP runs one stack per process");
		return NULL;
	}
	if (mtu < 576 || mtu > 65535) {
		log_errorx("stack: bad mtu %d", mtu);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_error("stack: calloc");
		return NULL;
	}
	s->base = base;
	s->fd = tun_fd;
	s->mtu = mtu;
	/* announce what the link carries (lwIP caps it by the netif's MTU,
	 * less 40 or 60); with offloads that MTU is 0 and TCP_MSS stays */
	sluice_lwip_mss_announce = (unsigned short)(mtu - 40);
	if (!stack_lwip_ready) {
		lwip_init();
		stack_ext_id = tcp_ext_arg_alloc_id();
		stack_lwip_ready = true;
	}
	/* lwIP routes IPv4 only through a netif with an address; ours takes
	 * the IPv4 dummy address (RFC 7600), never seen as a flow address */
	IP4_ADDR(&addr, 192, 0, 0, 8);
	IP4_ADDR(&mask, 255, 255, 255, 255);
	if (netif_add(&s->netif, &addr, &mask, NULL, s, stack_netif_init_cb,
	    ip_input) == NULL) {
		log_errorx("stack: netif_add failed");
		goto bad;
	}
	netif_set_default(&s->netif);
	netif_set_up(&s->netif);
	netif_set_link_up(&s->netif);

	s->rx_ev = event_new(base, tun_fd, EV_READ | EV_PERSIST,
	    stack_tun_read_cb, s);
	s->timer_ev = event_new(base, -1, EV_PERSIST, stack_timer_cb, s);
	if (s->rx_ev == NULL || s->timer_ev == NULL ||
	    event_add(s->rx_ev, NULL) == -1 ||
	    event_add(s->timer_ev, &tv) == -1) {
		log_errorx("stack: cannot add events");
		goto bad;
	}
	stack_current = s;
	return s;
bad:
	if (s->rx_ev != NULL)
		event_free(s->rx_ev);
	if (s->timer_ev != NULL)
		event_free(s->timer_ev);
	if (s->netif.state == s)
		netif_remove(&s->netif);
	free(s);
	return NULL;
}

void
stack_free(struct stack *s)
{
	if (s == NULL)
		return;
	stack_unlisten(s);
	if (s->rx_ev != NULL)
		event_free(s->rx_ev);
	if (s->timer_ev != NULL)
		event_free(s->timer_ev);
	netif_set_down(&s->netif);
	netif_remove(&s->netif);
	free(s->rxbuf);
	free(s->fragbuf);
	if (stack_current == s)
		stack_current = NULL;
	free(s);
}

int
stack_set_vnet_hdr(struct stack *s)
{
	if ((s->rxbuf = malloc(STACK_RXBUF_LEN)) == NULL) {
		log_error("stack: malloc");
		return -1;
	}
	s->vnet = true;
	/*
	 * TCP segments of up to 64 KiB go out whole as TSO super-packets:
	 * no MTU for lwIP, or its IP layer would fragment them.  Datagrams
	 * of our own are fragmented at the TUN's MTU (stack_ip_send).
	 */
	s->netif.mtu = 0;
	s->netif.mtu6 = 0;
	sluice_lwip_mss_announce = TCP_MSS;
	/* the kernel finishes TCP checksums both ways; lwIP does the rest */
	NETIF_SET_CHECKSUM_CTRL(&s->netif,
	    NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_UDP |
	    NETIF_CHECKSUM_GEN_ICMP | NETIF_CHECKSUM_GEN_ICMP6 |
	    NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_UDP |
	    NETIF_CHECKSUM_CHECK_ICMP | NETIF_CHECKSUM_CHECK_ICMP6);
	return 0;
}

void
stack_pcb_init(struct stack *s, struct tcp_pcb *pcb)
{
	if (s->vnet)
		pcb->mss = STACK_GSO_MSS;
}

/*
 * The MSS option of the SYN lwIP is processing now (0: none or unreadable).
 * Only from the SYN hook, inside tcp_input: the IP header is still current
 * and the TCP header follows it in the same pool buffer (lwIP's own parse
 * caps the value at TCP_MSS, too low for large MTUs).
 */
static unsigned
stack_syn_mss(void)
{
	const unsigned char *ip, *t, *o;
	unsigned hl = ip_current_header_tot_len(), thl, i, len;

#if LWIP_IPV6
	if (ip_current_is_v6())
		ip = (const unsigned char *)ip6_current_header();
	else
#endif
		ip = (const unsigned char *)ip4_current_header();
	if (ip == NULL || hl + 60 > PBUF_POOL_BUFSIZE)
		return 0;
	t = ip + hl;
	thl = (unsigned)(t[12] >> 4) * 4;
	if (thl < 20 || (t[13] & 0x02) == 0)
		return 0;
	o = t + 20;
	for (i = 0; i < thl - 20; i += len) {
		if (o[i] == 0)
			break;
		if (o[i] == 1) {
			len = 1;
			continue;
		}
		if (i + 1 >= thl - 20 || (len = o[i + 1]) < 2 ||
		    i + len > thl - 20)
			break;
		if (o[i] == 2 && len == 4)
			return (unsigned)(o[i + 2] << 8 | o[i + 3]);
	}
	return 0;
}

void
stack_pcb_setup(struct stack *s, struct tcp_pcb *pcb, size_t buffer)
{
	tcpwnd_size_t wnd = (tcpwnd_size_t)buffer;
	unsigned peer;

	stack_pcb_init(s, pcb);
	peer = stack_syn_mss();
	if (s->vnet) {
		if (peer != 0 && stack_ext_id != 0xff) {
			if (peer < 88)
				peer = 88;	/* Linux's floor */
			tcp_ext_arg_set(pcb, stack_ext_id,
			    (void *)(uintptr_t)peer);
		}
	} else if (peer > pcb->mss) {
		/* lwIP caps the client's MSS at TCP_MSS (1460): at MTU 8500
		 * without offloads that is six packets where one would do */
		unsigned max = (unsigned)s->mtu -
		    (IP_IS_V6(&pcb->local_ip) ? 60 : 40);

		pcb->mss = (u16_t)(peer < max ? peer : max);
	}
	/* the window is the per-flow buffer: memory stays bounded */
	if (wnd > TCP_WND_MAX(pcb))
		wnd = TCP_WND_MAX(pcb);
	pcb->rcv_wnd = pcb->rcv_ann_wnd = wnd;
	/* and so is what lwIP holds for the client: up to 4x the buffer (at
	 * most TCP_SND_BUF, 1 MiB), since what is in flight counts too (at
	 * 1x downloads were ~25% slower here, at 2x ~10%); stack_pcb_room()
	 * keeps it to the client's window plus STACK_QUEUE_AHEAD */
	if (4 * buffer < TCP_SND_BUF)
		pcb->snd_buf = (tcpwnd_size_t)(4 * buffer);
}

/*
 * Segments one pcb may queue.  Segments carry whatever one tcp_write got,
 * often a few KiB (the pieces the upstream's socket was read in), so the
 * bound is the buffer in 2 KiB pieces, at least 64: enough to fill the
 * buffer, and 300 stalled flows with 256 KiB buffers hold at most 2/3 of
 * lwIP's segment pool.
 */
static unsigned
stack_pcb_queue_max(const struct tcp_pcb *pcb)
{
	unsigned n = (unsigned)(pcb->snd_buf + pcb->snd_lbb - pcb->lastack) /
	    2048;

	if (n < 64)
		n = 64;
	return n < TCP_SND_QUEUELEN ? n : TCP_SND_QUEUELEN;
}

/* Whether a memp pool is past num/den of its size. */
static bool
stack_pool_over(memp_t t, unsigned num, unsigned den)
{
#if MEMP_STATS
	const struct stats_mem *m = lwip_stats.memp[t];

	return m != NULL && m->avail > 0 &&
	    (uint64_t)m->used * den > (uint64_t)m->avail * num;
#else
	(void)t;
	(void)num;
	(void)den;
	return false;
#endif
}

/* Whether lwIP's heap is past num/den of its size. */
static bool
stack_heap_over(unsigned num, unsigned den)
{
#if MEM_STATS
	return (uint64_t)lwip_stats.mem.used * den > (uint64_t)MEM_SIZE * num;
#else
	(void)num;
	(void)den;
	return false;
#endif
}

size_t
stack_pcb_room(const struct tcp_pcb *pcb)
{
	unsigned qmax = stack_pcb_queue_max(pcb), qlen = tcp_sndqueuelen(pcb);
	size_t seg, room;
	u32_t queued, allow;

	if (qlen >= qmax)
		return 0;
	/* the last 1/16 of the shared segment pool and of the heap are for
	 * flows that are moving; the sent callback retries when ACKs free
	 * some */
	if (qlen > 4 && (stack_pool_over(MEMP_TCP_SEG, 15, 16) ||
	    stack_heap_over(15, 16)))
		return 0;
	/* tcp_write cuts at most half the largest window the client ever
	 * offered per segment: a client announcing a tiny window would make
	 * a large write thousands of tiny segments, over the queue bound */
	seg = pcb->snd_wnd_max / 2;
	if (seg == 0 || seg > pcb->mss)
		seg = pcb->mss;
	room = tcp_sndbuf(pcb);
	if (room > (size_t)(qmax - qlen) * seg)
		room = (size_t)(qmax - qlen) * seg;
	/* queue no more than the client's window takes, and some ahead for
	 * when its ACKs open it: a client that stops reading leaves the rest
	 * in the relay's own buffer (where reading the upstream pauses), not
	 * in lwIP's memory that all flows share */
	queued = pcb->snd_lbb - pcb->lastack;
	allow = (u32_t)pcb->snd_wnd + STACK_QUEUE_AHEAD;
	if (queued >= allow)
		return 0;
	if (room > allow - queued)
		room = allow - queued;
	return room;
}

bool
stack_pcb_cork(const struct tcp_pcb *pcb)
{
	u32_t in_flight = pcb->snd_nxt - pcb->lastack;
	u32_t queued = pcb->snd_lbb - pcb->snd_nxt;

	return pcb->unacked != NULL && in_flight >= STACK_CORK_IN_FLIGHT &&
	    queued < STACK_CORK_MAX;
}

/* An lwIP address and port (host order) as a sockaddr. */
static void
stack_ip_to_sa(const ip_addr_t *ip, u16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (IP_IS_V6(ip)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_2_ip6(ip)->addr, 16);
		sin6->sin6_port = htons(port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = ip_2_ip4(ip)->addr;
		sin->sin_port = htons(port);
	}
}

/* A sockaddr as an lwIP address and port (host order); -1 if not IP. */
static int
stack_sa_to_ip(const struct sockaddr *sa, ip_addr_t *ip, u16_t *port)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		IP_SET_TYPE(ip, IPADDR_TYPE_V4);
		ip_2_ip4(ip)->addr = sin->sin_addr.s_addr;
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		IP_SET_TYPE(ip, IPADDR_TYPE_V6);
		memcpy(ip_2_ip6(ip)->addr, &sin6->sin6_addr, 16);
		*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -1;
}

void
stack_pcb_dst(const struct tcp_pcb *pcb, struct sockaddr_storage *ss)
{
	ip_addr_t ip;
	u16_t port;

	memset(ss, 0, sizeof(*ss));
	if (tcp_tcp_get_tcp_addrinfo((struct tcp_pcb *)(uintptr_t)pcb, 1,
	    &ip, &port) != ERR_OK)
		return;
	stack_ip_to_sa(&ip, port, ss);
}

bool
stack_mem_pressure(const struct stack *s)
{
	(void)s;
	return stack_heap_over(7, 8) || stack_pool_over(MEMP_TCP_SEG, 7, 8) ||
	    stack_pool_over(MEMP_TCP_PCB, 31, 32);
}

const char *
stack_strerr(signed char err)
{
	switch (err) {
	case ERR_OK:		return "ok";
	case ERR_MEM:		return "out of lwIP memory";
	case ERR_BUF:		return "buffer error";
	case ERR_TIMEOUT:	return "timeout";
	case ERR_RTE:		return "no route";
	case ERR_INPROGRESS:	return "in progress";
	case ERR_VAL:		return "illegal value";
	case ERR_WOULDBLOCK:	return "would block";
	case ERR_USE:		return "address in use";
	case ERR_ALREADY:	return "already connecting";
	case ERR_ISCONN:	return "already connected";
	case ERR_CONN:		return "not connected";
	case ERR_IF:		return "netif error";
	case ERR_ABRT:		return "connection aborted (retransmissions "
				    "or memory ran out)";
	case ERR_RST:		return "connection reset by client";
	case ERR_CLSD:		return "connection closed";
	case ERR_ARG:		return "illegal argument";
	default:		return "unknown lwIP error";
	}
}

void
stack_set_fatal_cb(struct stack *s, stack_fatal_cb cb, void *arg)
{
	s->fatal_cb = cb;
	s->fatal_arg = arg;
}

int
stack_listen_any(struct stack *s, stack_syn_cb cb, void *arg)
{
	struct tcp_pcb *pcb, *lpcb;

	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_ANY)) == NULL) {
		log_errorx("stack: tcp_new failed");
		return -1;
	}
	/*
	 * any port: the catch-all takes what no other listener matches; the
	 * bound port is a placeholder (a SYN to it gets the same handling).
	 * Not 0: lwIP 2.1's tcp_new_port() wraps its counter from 0xffff to
	 * 0 and so fails when LWIP_RAND() started it there, 1 start in 16384
	 * (seen as "tcp_bind failed" in a CI run).
	 */
	if (tcp_bind(pcb, IP_ANY_TYPE, STACK_LISTEN_PORT) != ERR_OK) {
		tcp_abort(pcb);
		log_errorx("stack: tcp_bind failed");
		return -1;
	}
	if ((lpcb = tcp_listen(pcb)) == NULL) {
		tcp_abort(pcb);
		log_errorx("stack: tcp_listen failed");
		return -1;
	}
	tcp_arg(lpcb, arg);
	tcp_accept(lpcb, stack_accept_cb);
	tcp_listen_syn(lpcb, cb);
	tcp_listen_any_port(lpcb);
	s->listener = lpcb;
	return 0;
}

void
stack_unlisten(struct stack *s)
{
	if (s->listener != NULL) {
		tcp_listen_any_port(NULL);
		tcp_arg(s->listener, NULL);
		tcp_close(s->listener);
		s->listener = NULL;
	}
}

void
stack_set_checksums(struct stack *s, bool generate, bool check)
{
	u16_t flags = 0;

	if (generate)
		flags |= NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_TCP |
		    NETIF_CHECKSUM_GEN_UDP | NETIF_CHECKSUM_GEN_ICMP |
		    NETIF_CHECKSUM_GEN_ICMP6;
	if (check)
		flags |= NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_TCP |
		    NETIF_CHECKSUM_CHECK_UDP | NETIF_CHECKSUM_CHECK_ICMP |
		    NETIF_CHECKSUM_CHECK_ICMP6;
	NETIF_SET_CHECKSUM_CTRL(&s->netif, flags);
}

void
stack_get_stats(const struct stack *s, struct stack_stats *st)
{
	*st = s->st;
	st->ip_dropped = (uint64_t)lwip_stats.ip.drop + lwip_stats.ip6.drop;
	st->tcp_dropped = lwip_stats.tcp.drop;
	st->lwip_asserts = lwip_hooks_assert_count();
	st->echo_dropped = icmp_echo_dropped;
#if MEM_STATS
	st->heap_used_pct = (unsigned)((uint64_t)lwip_stats.mem.used * 100 /
	    MEM_SIZE);
#endif
#if MEMP_STATS
	if (lwip_stats.memp[MEMP_TCP_SEG] != NULL &&
	    lwip_stats.memp[MEMP_TCP_SEG]->avail > 0)
		st->seg_used_pct = (unsigned)((uint64_t)
		    lwip_stats.memp[MEMP_TCP_SEG]->used * 100 /
		    lwip_stats.memp[MEMP_TCP_SEG]->avail);
#endif
}

const char *
stack_pcb_addr(const struct tcp_pcb *pcb, bool local, char *buf, unsigned len)
{
	const ip_addr_t *a = local ? &pcb->local_ip : &pcb->remote_ip;
	u16_t port = local ? pcb->local_port : pcb->remote_port;
	char ip[IPADDR_STRLEN_MAX];

	ipaddr_ntoa_r(a, ip, sizeof(ip));
	if (IP_IS_V6(a))
		snprintf(buf, len, "[%s]:%u", ip, port);
	else
		snprintf(buf, len, "%s:%u", ip, port);
	return buf;
}

/* ---- UDP and ICMP -------------------------------------------------------- */

#define STACK_UDP_IOV_MAX	64

/*
 * lwIP's taker of every unicast datagram (lwIP patch 0006): p starts at the
 * UDP header and is trimmed to the UDP length.  The payload goes to the
 * owner as an iovec over the pbuf chain, flattened if the chain is longer
 * than STACK_UDP_IOV_MAX.
 */
static void
stack_udp_any_cb(void *arg, struct pbuf *p)
{
	struct stack *s = arg;
	struct sockaddr_storage src, dst;
	struct iovec iov[STACK_UDP_IOV_MAX];
	static unsigned char flat[65536];
	unsigned char hdr[8];
	struct pbuf *q;
	size_t len, off;
	int n = 0;

	if (s->udp_cb == NULL || pbuf_copy_partial(p, hdr, 8, 0) != 8) {
		pbuf_free(p);
		return;
	}
	stack_ip_to_sa(ip_current_src_addr(), (u16_t)(hdr[0] << 8 | hdr[1]),
	    &src);
	stack_ip_to_sa(ip_current_dest_addr(), (u16_t)(hdr[2] << 8 | hdr[3]),
	    &dst);
	len = (size_t)p->tot_len - 8;
	/* the payload starts 8 bytes in, maybe in a later pbuf */
	for (q = p, off = 8; q != NULL && off >= q->len; q = q->next)
		off -= q->len;
	for (; q != NULL && n < STACK_UDP_IOV_MAX; q = q->next, off = 0) {
		if (q->len == off)
			continue;
		iov[n].iov_base = (unsigned char *)q->payload + off;
		iov[n].iov_len = q->len - off;
		n++;
	}
	if (q != NULL) {
		pbuf_copy_partial(p, flat, (u16_t)len, 8);
		iov[0].iov_base = flat;
		iov[0].iov_len = len;
		n = 1;
	}
	s->udp_cb(s->udp_arg, (struct sockaddr *)&src,
	    (struct sockaddr *)&dst, iov, n, len);
	pbuf_free(p);
}

void
stack_udp_any(struct stack *s, stack_udp_cb cb, void *arg)
{
	s->udp_cb = cb;
	s->udp_arg = arg;
	udp_set_any(cb != NULL ? stack_udp_any_cb : NULL, s);
}

void
stack_set_icmp_echo(struct stack *s, bool answer)
{
	(void)s;
	icmp_echo_off = answer ? 0 : 1;
}

/*
 * Send p (an L4 message) from src to dst through the TUN, fragmented at
 * the TUN's MTU (which the netif lacks with offloads); frees p.
 */
static int
stack_ip_send(struct stack *s, struct pbuf *p, const ip_addr_t *src,
    const ip_addr_t *dst, u8_t ttl, u8_t proto)
{
	u16_t mtu = s->netif.mtu, mtu6 = s->netif.mtu6;
	err_t err;

	s->netif.mtu = s->netif.mtu6 = (u16_t)(s->mtu > 65535 ? 65535 : s->mtu);
	err = ip_output_if_src(p, src, dst, ttl, 0, proto, &s->netif);
	s->netif.mtu = mtu;
	s->netif.mtu6 = mtu6;
	pbuf_free(p);
	return err == ERR_OK ? 0 : -1;
}

int
stack_udp_output(struct stack *s, const struct sockaddr *from,
    const struct sockaddr *to, const void *data, size_t len)
{
	ip_addr_t src, dst;
	u16_t sport, dport, ck;
	struct pbuf *p;
	unsigned char *h;

	if (stack_sa_to_ip(from, &src, &sport) == -1 ||
	    stack_sa_to_ip(to, &dst, &dport) == -1 ||
	    IP_GET_TYPE(&src) != IP_GET_TYPE(&dst) ||
	    len > (IP_IS_V6(&dst) ? 65535 - 8 : 65535 - 20 - 8))
		return -1;
	if ((p = pbuf_alloc(PBUF_IP, (u16_t)(8 + len), PBUF_RAM)) == NULL)
		return -1;
	h = p->payload;
	h[0] = (unsigned char)(sport >> 8);
	h[1] = (unsigned char)sport;
	h[2] = (unsigned char)(dport >> 8);
	h[3] = (unsigned char)dport;
	h[4] = (unsigned char)((8 + len) >> 8);
	h[5] = (unsigned char)(8 + len);
	h[6] = h[7] = 0;
	if (len > 0)
		memcpy(h + 8, data, len);
	ck = ip_chksum_pseudo(p, IP_PROTO_UDP, p->tot_len, &src, &dst);
	if (ck == 0)
		ck = 0xffff;
	memcpy(h + 6, &ck, 2);
	return stack_ip_send(s, p, &src, &dst, UDP_TTL, IP_PROTO_UDP);
}

/*
 * The original datagram's IP and UDP headers as the client sent them
 * (client -> dst, the payload's first bytes after them), for quoting in an
 * ICMP error: what the client's kernel matches the error to its socket by.
 */
static void
stack_quote_udp(unsigned char *b, const ip_addr_t *client, u16_t cport,
    const ip_addr_t *dst, u16_t dport, size_t len, const void *data,
    size_t quote)
{
	size_t ihl = IP_IS_V6(dst) ? 40 : 20, ulen = 8 + len;
	uint16_t ck;

	if (IP_IS_V6(dst)) {
		memset(b, 0, 8);
		b[0] = 0x60;
		b[4] = (unsigned char)(ulen >> 8);
		b[5] = (unsigned char)ulen;
		b[6] = IP_PROTO_UDP;
		b[7] = 64;
		memcpy(b + 8, ip_2_ip6(client)->addr, 16);
		memcpy(b + 24, ip_2_ip6(dst)->addr, 16);
	} else {
		memset(b, 0, 20);
		b[0] = 0x45;
		b[2] = (unsigned char)((20 + ulen) >> 8);
		b[3] = (unsigned char)(20 + ulen);
		b[8] = 64;
		b[9] = IP_PROTO_UDP;
		memcpy(b + 12, &ip_2_ip4(client)->addr, 4);
		memcpy(b + 16, &ip_2_ip4(dst)->addr, 4);
		ck = (uint16_t)~stack_fold(sluice_chksum(b, 20));
		memcpy(b + 10, &ck, 2);
	}
	b[ihl] = (unsigned char)(cport >> 8);
	b[ihl + 1] = (unsigned char)cport;
	b[ihl + 2] = (unsigned char)(dport >> 8);
	b[ihl + 3] = (unsigned char)dport;
	b[ihl + 4] = (unsigned char)(ulen >> 8);
	b[ihl + 5] = (unsigned char)ulen;
	b[ihl + 6] = b[ihl + 7] = 0;	/* checksum: not needed to match */
	if (quote > len)
		quote = len;
	if (quote > 0)
		memcpy(b + ihl + 8, data, quote);
}

int
stack_icmp_port_unreach(struct stack *s, const struct sockaddr *client,
    const struct sockaddr *dst, const void *data, size_t len)
{
	ip_addr_t c, d;
	u16_t cport, dport, ck;
	struct pbuf *p;
	unsigned char *b;
	size_t room;
	bool v6;

	if (stack_sa_to_ip(client, &c, &cport) == -1 ||
	    stack_sa_to_ip(dst, &d, &dport) == -1 ||
	    IP_GET_TYPE(&c) != IP_GET_TYPE(&d))
		return -1;
	v6 = IP_IS_V6(&d);
	/* as much of the datagram as keeps the error within 576 (IPv4,
	 * RFC 1812) or 1280 bytes (IPv6, RFC 4443) */
	room = v6 ? 1280 - 40 - 8 - 48 : 576 - 20 - 8 - 28;
	if ((p = pbuf_alloc(PBUF_IP, (u16_t)(8 + (v6 ? 48 : 28) +
	    (len < room ? len : room)), PBUF_RAM)) == NULL)
		return -1;
	b = p->payload;
	memset(b, 0, 8);
	b[0] = v6 ? 1 : 3;	/* destination unreachable */
	b[1] = v6 ? 4 : 3;	/* port unreachable */
	stack_quote_udp(b + 8, &c, cport, &d, dport, len, data, room);
	if (v6)
		ck = ip6_chksum_pseudo(p, IP6_NEXTH_ICMP6, p->tot_len,
		    ip_2_ip6(&d), ip_2_ip6(&c));
	else
		ck = (u16_t)~stack_fold(sluice_chksum(b, p->tot_len));
	memcpy(b + 2, &ck, 2);
	return stack_ip_send(s, p, &d, &c, 64,
	    v6 ? IP6_NEXTH_ICMP6 : IP_PROTO_ICMP);
}
