/*
 * fuzz_packet.c - the TUN input path: IP packets fed to lwIP (with our
 * patch) through stack_input() or the TUN read callback, answered by a
 * catch-all listener.
 *
 * Input: one byte of options, then up to FUZZ_MAX_PACKETS records.
 * Options:
 *   0x01  deliver the packets through the TUN fd (the stack's own read
 *         callback, run by the event loop) instead of stack_input()
 *   0x02  do not check checksums (as with TUN checksum offload)
 * Each record is a 16-bit big-endian header and the packet.  The header's
 * low 11 bits are the packet length (cut to what is left); the high bits
 * ask the harness for help a fuzzer cannot easily give itself:
 *   0x0800  fix the IPv4 header and TCP/UDP/ICMP/ICMPv6 checksums
 *   0x1000  the TCP ack number is relative: add the ISS of the stack's
 *           last SYN-ACK (so ack 1 acknowledges the SYN-ACK)
 *   0x2000  before this packet, answer deferred SYNs (tcp_syn_release)
 *   0x4000  after it, run tcp_tmr() (retransmits, SYN_RCVD timeouts, ...)
 *   0x8000  after it, run the reassembly timers and sys_check_timeouts()
 *
 * The listener's answer depends on the destination port mod 4: 0 accept
 * and discard data, 1 refuse (RST), 2 defer the SYN-ACK (as flows do while
 * dialing), 3 accept and echo data back.  The stack's "TUN" is one end of
 * a datagram socketpair; the harness holds the other, reads the output
 * back, checks it fits the MTU and notes the ISS of SYN-ACKs.  After each
 * input every pcb is aborted and the reassembly queues and ND state are
 * flushed, so inputs do not leak state into each other (beyond lwIP's
 * counters and ISS).  lwIP's assertions are on: one failing is a crash.
 *
 * FUZZ_PACKET_DEBUG=1 in the environment traces packets in and out.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/ip4_frag.h"
#include "lwip/ip6_frag.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "log.h"
#include "stack.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MTU		1500
#define FUZZ_MAX_PACKETS	16
#define FUZZ_MAX_DEFERRED	32

#define FUZZ_OPT_TUN		0x01
#define FUZZ_OPT_NO_CHECK	0x02

#define FUZZ_LEN_MASK		0x07ff
#define FUZZ_FIX_CSUM		0x0800
#define FUZZ_REL_ACK		0x1000
#define FUZZ_RELEASE		0x2000
#define FUZZ_TCP_TMR		0x4000
#define FUZZ_REASS_TMR		0x8000

static struct event_base *fuzz_base;
static struct stack *fuzz_stack;
static int fuzz_peer_fd = -1;		/* our end of the "TUN" */
static uint32_t fuzz_iss;		/* of the last SYN-ACK seen */
static struct tcp_pcb *fuzz_deferred[FUZZ_MAX_DEFERRED];
static unsigned long fuzz_iterations;
static bool fuzz_debug;			/* FUZZ_PACKET_DEBUG=1: trace */

/* A big-endian 32-bit field. */
static uint32_t
fuzz_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ---- checksums ---------------------------------------------------------- */

static uint32_t
fuzz_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t
fuzz_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Offset of the checksum in a transport header, or -1. */
static int
fuzz_csum_off(uint8_t proto, size_t l4len)
{
	switch (proto) {
	case 6:
		return l4len >= 20 ? 16 : -1;
	case 17:
		return l4len >= 8 ? 6 : -1;
	case 1:
	case 58:
		return l4len >= 4 ? 2 : -1;
	default:
		return -1;
	}
}

/* Checksum the transport part l4[0..l4len), with the pseudo header
 * (src, dst of alen bytes each) unless proto is ICMPv4. */
static void
fuzz_fix_l4(uint8_t proto, const uint8_t *src, const uint8_t *dst,
    size_t alen, uint8_t *l4, size_t l4len)
{
	int off = fuzz_csum_off(proto, l4len);
	uint32_t sum = 0;
	uint16_t c;

	if (off < 0)
		return;
	l4[off] = l4[off + 1] = 0;
	if (proto != 1) {
		sum = fuzz_sum(sum, src, alen);
		sum = fuzz_sum(sum, dst, alen);
		sum += proto;
		sum += (uint32_t)(l4len & 0xffff) + (uint32_t)(l4len >> 16);
	}
	sum = fuzz_sum(sum, l4, l4len);
	c = fuzz_fold(sum);
	if (c == 0 && proto == 17)
		c = 0xffff;
	l4[off] = (uint8_t)(c >> 8);
	l4[off + 1] = (uint8_t)c;
}

/*
 * Where the transport header of an unfragmented packet starts; *proto and
 * *l4len describe it.  -1 when the packet is too odd to tell.  IPv6 only
 * with the transport header right after the fixed header.
 */
static long
fuzz_l4(const uint8_t *p, size_t len, uint8_t *proto, size_t *l4len)
{
	size_t hl, tot;

	if (len >= 20 && p[0] >> 4 == 4) {
		hl = (size_t)(p[0] & 0x0f) * 4;
		tot = (size_t)(p[2] << 8 | p[3]);
		if (hl < 20 || tot < hl || tot > len)
			return -1;
		if ((p[6] & 0x3f) != 0 || p[7] != 0)	/* MF or offset */
			return -1;
		*proto = p[9];
		*l4len = tot - hl;
		return (long)hl;
	}
	if (len >= 40 && p[0] >> 4 == 6) {
		tot = 40 + (size_t)(p[4] << 8 | p[5]);
		if (tot > len)
			return -1;
		*proto = p[6];
		*l4len = tot - 40;
		return 40;
	}
	return -1;
}

static void
fuzz_fix_checksums(uint8_t *p, size_t len)
{
	size_t hl, l4len;
	uint8_t proto;
	uint16_t c;
	long off;

	if (len >= 20 && p[0] >> 4 == 4) {
		hl = (size_t)(p[0] & 0x0f) * 4;
		if (hl >= 20 && hl <= len) {
			p[10] = p[11] = 0;
			c = fuzz_fold(fuzz_sum(0, p, hl));
			p[10] = (uint8_t)(c >> 8);
			p[11] = (uint8_t)c;
		}
	}
	if ((off = fuzz_l4(p, len, &proto, &l4len)) < 0)
		return;
	if (p[0] >> 4 == 4)
		fuzz_fix_l4(proto, p + 12, p + 16, 4, p + off, l4len);
	else
		fuzz_fix_l4(proto, p + 8, p + 24, 16, p + off, l4len);
}

/* Make the ack number relative to the ISS of the last SYN-ACK. */
static void
fuzz_fix_ack(uint8_t *p, size_t len)
{
	size_t l4len;
	uint8_t proto, *t;
	uint32_t ack;
	long off;

	if ((off = fuzz_l4(p, len, &proto, &l4len)) < 0 || proto != 6 ||
	    l4len < 20)
		return;
	t = p + off;
	ack = fuzz_get32(t + 8) + fuzz_iss;
	t[8] = (uint8_t)(ack >> 24);
	t[9] = (uint8_t)(ack >> 16);
	t[10] = (uint8_t)(ack >> 8);
	t[11] = (uint8_t)ack;
}

/* ---- output ------------------------------------------------------------- */

/* One line about a packet, for FUZZ_PACKET_DEBUG. */
static void
fuzz_trace(const char *dir, const uint8_t *p, size_t len)
{
	size_t l4len;
	uint8_t proto;
	long off = fuzz_l4(p, len, &proto, &l4len);
	const uint8_t *t;

	if (off < 0) {
		fprintf(stderr, "%s: %zu bytes, v%d, not parsed\n", dir, len,
		    len > 0 ? p[0] >> 4 : 0);
		return;
	}
	t = p + off;
	if (proto == 6 && l4len >= 20)
		fprintf(stderr, "%s: v%d tcp %u -> %u flags 0x%02x seq %u "
		    "ack %u data %zu\n", dir, p[0] >> 4, t[0] << 8 | t[1],
		    t[2] << 8 | t[3], t[13],
		    fuzz_get32(t + 4), fuzz_get32(t + 8),
		    l4len - (size_t)(t[12] >> 4) * 4);
	else
		fprintf(stderr, "%s: v%d proto %u, %zu bytes\n", dir,
		    p[0] >> 4, proto, len);
}

/* Look at one packet the stack wrote: it must fit the MTU and be IP. */
static void
fuzz_note_output(const uint8_t *p, size_t len)
{
	size_t l4len;
	uint8_t proto;
	long off;

	assert(len <= FUZZ_MTU);
	assert(len >= 20 && (p[0] >> 4 == 4 || p[0] >> 4 == 6));
	off = fuzz_l4(p, len, &proto, &l4len);
	if (fuzz_debug)
		fuzz_trace("out", p, len);
	if (off < 0 || proto != 6 || l4len < 20)
		return;
	p += off;
	if ((p[13] & 0x12) == 0x12)	/* SYN|ACK */
		fuzz_iss = fuzz_get32(p + 4);
}

/* Read everything the stack wrote so far (the socketpair never fills). */
static void
fuzz_drain(void)
{
	static uint8_t buf[65536];
	ssize_t n;

	while ((n = recv(fuzz_peer_fd, buf, sizeof(buf), MSG_TRUNC)) >= 0) {
		assert((size_t)n <= sizeof(buf));
		fuzz_note_output(buf, (size_t)n);
	}
	assert(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- the listener ------------------------------------------------------- */

static err_t
fuzz_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct pbuf *q;
	bool echo = arg != NULL;

	(void)err;
	if (p == NULL) {
		/* the client closed: close our side too */
		tcp_arg(pcb, NULL);
		tcp_recv(pcb, NULL);
		if (tcp_close(pcb) != ERR_OK) {
			tcp_abort(pcb);
			return ERR_ABRT;
		}
		return ERR_OK;
	}
	if (fuzz_debug)
		fprintf(stderr, "recv: %u bytes, mss %u snd_wnd %u max %u "
		    "unsent %u\n", p->tot_len, pcb->mss, (unsigned)pcb->snd_wnd,
		    (unsigned)pcb->snd_wnd_max,
		    pcb->unsent != NULL ? pcb->unsent->len : 0);
	if (echo) {
		for (q = p; q != NULL; q = q->next) {
			if (q->len > tcp_sndbuf(pcb))
				break;
			if (tcp_write(pcb, q->payload, q->len,
			    TCP_WRITE_FLAG_COPY) != ERR_OK)
				break;
		}
		tcp_output(pcb);
	}
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

/* A deferred pcb died before we answered: forget it. */
static void
fuzz_deferred_err_cb(void *arg, err_t err)
{
	struct tcp_pcb **slot = arg;

	(void)err;
	*slot = NULL;
}

static signed char
fuzz_syn_cb(void *arg, struct tcp_pcb *pcb)
{
	static int echo_marker;
	int i;

	(void)arg;
	switch (pcb->local_port % 4) {
	case 0:
		tcp_recv(pcb, fuzz_recv_cb);
		return ERR_OK;
	case 1:
		return ERR_ABRT;
	case 2:
		for (i = 0; i < FUZZ_MAX_DEFERRED; i++) {
			if (fuzz_deferred[i] == NULL)
				break;
		}
		if (i == FUZZ_MAX_DEFERRED)
			return ERR_MEM;
		fuzz_deferred[i] = pcb;
		tcp_arg(pcb, &fuzz_deferred[i]);
		tcp_err(pcb, fuzz_deferred_err_cb);
		return ERR_INPROGRESS;
	default:
		tcp_arg(pcb, &echo_marker);
		tcp_recv(pcb, fuzz_recv_cb);
		return ERR_OK;
	}
}

/* Answer every deferred SYN, as a flow does once its tunnel is open. */
static void
fuzz_release(void)
{
	struct tcp_pcb *pcb;
	int i;

	for (i = 0; i < FUZZ_MAX_DEFERRED; i++) {
		if ((pcb = fuzz_deferred[i]) == NULL)
			continue;
		fuzz_deferred[i] = NULL;
		tcp_arg(pcb, NULL);
		tcp_err(pcb, NULL);
		tcp_recv(pcb, fuzz_recv_cb);
		(void)tcp_syn_release(pcb);
		fuzz_drain();
	}
}

/* Forget everything this input set up: pcbs, fragments, ND state. */
static void
fuzz_reset(void)
{
	struct tcp_pcb *pcb;
	int i;

	memset(fuzz_deferred, 0, sizeof(fuzz_deferred));
	while ((pcb = tcp_active_pcbs) != NULL) {
		tcp_arg(pcb, NULL);
		tcp_recv(pcb, NULL);
		tcp_sent(pcb, NULL);
		tcp_err(pcb, NULL);
		tcp_abort(pcb);
		fuzz_drain();
	}
	while ((pcb = tcp_tw_pcbs) != NULL)
		tcp_abort(pcb);
	for (i = 0; i <= IP_REASS_MAXAGE; i++)
		ip_reass_tmr();
	for (i = 0; i <= IPV6_REASS_MAXAGE; i++)
		ip6_reass_tmr();
	nd6_cleanup_netif(netif_default);
	netif_default->mtu6 = netif_default->mtu;
	fuzz_drain();
}

/* ---- libFuzzer ---------------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2];

	(void)argc;
	(void)argv;
	fuzz_debug = getenv("FUZZ_PACKET_DEBUG") != NULL;
	log_init(fuzz_debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	if ((fuzz_base = event_base_new()) == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		perror("socketpair");
		abort();
	}
	fuzz_peer_fd = sv[1];
	if ((fuzz_stack = stack_new(fuzz_base, sv[0], FUZZ_MTU)) == NULL ||
	    stack_listen_any(fuzz_stack, fuzz_syn_cb, NULL) == -1)
		abort();
	return 0;
}

/* Hand one packet to the stack, by stack_input() or through the fd. */
static void
fuzz_deliver(const uint8_t *pkt, size_t len, bool tun)
{
	if (!tun) {
		stack_input(fuzz_stack, pkt, len);
		return;
	}
	if (send(fuzz_peer_fd, pkt, len, 0) != (ssize_t)len) {
		perror("send");
		abort();
	}
	event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 1, len;
	uint16_t hdr;
	uint8_t *pkt, opt;
	int n;

	if (size < 1)
		return 0;
	opt = data[0];
	stack_set_checksums(fuzz_stack, true, (opt & FUZZ_OPT_NO_CHECK) == 0);
	for (n = 0; n < FUZZ_MAX_PACKETS && size - off >= 2; n++) {
		hdr = (uint16_t)(data[off] << 8 | data[off + 1]);
		off += 2;
		len = hdr & FUZZ_LEN_MASK;
		if (len > size - off)
			len = size - off;
		/* an exact-size copy, so reading past len is caught */
		if ((pkt = malloc(len > 0 ? len : 1)) == NULL)
			break;
		memcpy(pkt, data + off, len);
		off += len;

		if (hdr & FUZZ_RELEASE)
			fuzz_release();
		if (hdr & FUZZ_REL_ACK)
			fuzz_fix_ack(pkt, len);
		if (hdr & FUZZ_FIX_CSUM)
			fuzz_fix_checksums(pkt, len);
		if (fuzz_debug)
			fuzz_trace("in", pkt, len);
		fuzz_deliver(pkt, len, (opt & FUZZ_OPT_TUN) != 0);
		free(pkt);
		fuzz_drain();
		if (hdr & FUZZ_TCP_TMR) {
			tcp_tmr();
			fuzz_drain();
		}
		if (hdr & FUZZ_REASS_TMR) {
			ip_reass_tmr();
			ip6_reass_tmr();
			sys_check_timeouts();
			fuzz_drain();
		}
	}
	if (++fuzz_iterations % 64 == 0) {
		sys_check_timeouts();
		fuzz_drain();
	}
	if (fuzz_debug) {
		struct stack_stats st;

		stack_get_stats(fuzz_stack, &st);
		fprintf(stderr, "stats: rx %llu dropped %llu tx %llu "
		    "ip_dropped %llu tcp_dropped %llu\n",
		    (unsigned long long)st.rx_packets,
		    (unsigned long long)st.rx_dropped,
		    (unsigned long long)st.tx_packets,
		    (unsigned long long)st.ip_dropped,
		    (unsigned long long)st.tcp_dropped);
		fprintf(stderr, "frag: v4 recv %u drop %u, v6 recv %u drop %u\n",
		    (unsigned)lwip_stats.ip_frag.recv,
		    (unsigned)lwip_stats.ip_frag.drop,
		    (unsigned)lwip_stats.ip6_frag.recv,
		    (unsigned)lwip_stats.ip6_frag.drop);
	}
	fuzz_reset();
	return 0;
}
