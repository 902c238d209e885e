/*
 * fuzz_packet.c - the TUN input path: IP packets fed to lwIP (with our
 * patch) through stack_input() or the TUN read callback, in two modes.
 *
 * Input: one byte of options; FUZZ_OPT_RELAY picks the mode.
 *   0x01  (packet mode) deliver the packets through the TUN fd (the
 *         stack's own read callback, run by the event loop) instead of
 *         stack_input()
 *   0x02  do not check checksums (as with TUN checksum offload)
 *   0x04  relay mode (below); without it, packet mode
 *   0x08  drop ICMP echo requests ([tun] icmp = drop) instead of answering
 *
 * Packet mode answers SYNs with a private catch-all listener.  After the
 * options byte come up to FUZZ_MAX_PACKETS records, each a 16-bit
 * big-endian header and the packet.  The header's low 11 bits are the
 * packet length (cut to what is left); the high bits ask the harness for
 * help a fuzzer cannot easily give itself:
 *   0x0800  fix the IPv4 header and TCP/UDP/ICMP/ICMPv6 checksums
 *   0x1000  the TCP ack number is relative: add the ISS of the stack's
 *           last SYN-ACK (so ack 1 acknowledges the SYN-ACK)
 *   0x2000  before this packet, answer deferred SYNs (tcp_syn_release)
 *   0x4000  after it, run tcp_tmr() (retransmits, SYN_RCVD timeouts, ...)
 *   0x8000  after it, run the reassembly timers and sys_check_timeouts()
 * The listener's answer depends on the destination port mod 4: 0 accept
 * and discard data, 1 refuse (RST), 2 defer the SYN-ACK (as flows do while
 * dialing), 3 accept and echo data back.  UDP datagrams (the stack's UDP
 * intake, lwIP patch 0006) get, by destination port mod 4: 0 nothing,
 * 1 ICMP port unreachable, 2 the datagram echoed back, 3 a reply 45 times
 * as long (at most the largest datagram), fragmented to the MTU.
 *
 * Relay mode drives real flows (src/flow.c) through a real upstream
 * (src/upstream.c) to a SOCKS5 server inside this process, on 127.0.0.1
 * (RFC 1928: no auth, CONNECT).  The byte after the options configures
 * the input (FUZZ_CFG_*: flow_buffer, max_flows, whether the server
 * echoes, whether it holds CONNECT replies until told); then come ops, one
 * byte each, kind in the high nibble, arguments after it.  Client
 * connection c (0..3) is 10.0.0.2:40000+c (fd00::2 for IPv6) to
 * 198.18.1.1:8000+c ([2001:db8::1]); the harness plays its TCP side,
 * keeping its sequence numbers and what the stack sent, and the server's
 * connection for c is the one whose CONNECT asked for port 8000+c.
 *   0x0c SYN       c = low 2 bits; bit 2: IPv6; bit 3: a new ISS (else
 *                  the same, a retransmission).  Then opts (1 byte: 0x01
 *                  MSS, then 2 bytes of MSS after the window; 0x02
 *                  SACK-permitted; 0x04 window scale, shift opts >> 4)
 *                  and the window (2 bytes)
 *   0x1c SEG       flags (1), window (2), data length (2, mod 1461);
 *                  seq is ours, ack is all the stack sent.  Bit 2: then a
 *                  signed seq and a signed ack delta (1 byte each); bit 3:
 *                  do not advance our seq (a retransmission)
 *   0x2_ RAW       a packet-mode record (header and packet)
 *   0x3n LOOP      (n + 1) * 4 turns of the event loop (EVLOOP_NONBLOCK)
 *   0x4n TMR       n + 1 calls of tcp_tmr() (lwIP's TCP clock)
 *   0x5c SEND      the server sends K bytes, K 2 bytes; bit 2: K * 16
 *   0x6c CTL       server: bits 2-3: 0 shut its write side (after what
 *                  it queued), 1 close (after it), 2 reset, 3 pause or
 *                  resume reading
 *   0x7c REPLY     answer a held CONNECT: bit 2 refuse, else succeed
 *   0x8c AUTOACK   bit 2: on (then the window, 2 bytes) or off: the
 *                  client acks everything the stack sends on c
 *   0x9_ TIMERS    sys_check_timeouts() and the reassembly timers
 * Loop turns, acks and server bytes per input are bounded.
 *
 * Either way the stack's "TUN" is one end of a datagram socketpair; the
 * harness holds the other, reads the output back, checks it fits the MTU
 * and notes the ISS of SYN-ACKs and the sequence space of its connections.
 * After each input the flows (or the listener) go, every pcb is aborted,
 * the server's connections are closed and the reassembly queues and ND
 * state are flushed, so inputs do not leak state into each other (beyond
 * lwIP's counters and ISS).  lwIP's assertions are on: one failing is a
 * crash.  lwIP's timer also runs on the real clock from the event loop.
 * Loop turns and timers stop after FUZZ_MAX_MS of an input.
 * FUZZ_PACKET_SPIN=1 makes a busy event loop (a callback that stays
 * active turn after turn once the input is done) or an input that runs
 * out of time a crash too.
 *
 * FUZZ_PACKET_DEBUG=1 in the environment traces packets in and out.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#undef TCP_MSS		/* glibc's 512; lwIP's options define their own */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lwip/ip4_frag.h"
#include "lwip/ip6_frag.h"
#include "lwip/nd6.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "config.h"
#include "flow.h"
#include "log.h"
#include "stack.h"
#include "upstream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MTU		1500
#define FUZZ_MAX_PACKETS	16
#define FUZZ_MAX_DEFERRED	32

#define FUZZ_OPT_TUN		0x01
#define FUZZ_OPT_NO_CHECK	0x02
#define FUZZ_OPT_RELAY		0x04
#define FUZZ_OPT_NO_ECHO	0x08

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
static bool fuzz_spin;			/* FUZZ_PACKET_SPIN=1: busy loops crash */

static void	fuzz_conn_note(const uint8_t *, size_t);

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
	fuzz_conn_note(p, l4len);
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

/* ---- relay mode: the client side ----------------------------------------- */

#define FUZZ_CONNS		4
#define FUZZ_SPORT		40000	/* client c is port FUZZ_SPORT + c */
#define FUZZ_DPORT		8000	/* to port FUZZ_DPORT + c */
#define FUZZ_MAX_SRV		16
#define FUZZ_MAX_OPS		256
#define FUZZ_MAX_TURNS		1024	/* event loop turns per input */
#define FUZZ_MAX_ACKS		1024	/* automatic ACKs per input */
#define FUZZ_MAX_SRV_BYTES	(3u << 20)	/* server bytes per input */
#define FUZZ_MAX_DATA		1460	/* client bytes per segment */
#define FUZZ_SPIN_TURNS		256
#define FUZZ_MAX_MS		1000	/* loop turns and timers per input */

/* the configuration byte of a relay input */
#define FUZZ_CFG_HOLD		0x01	/* hold CONNECT replies for REPLY */
#define FUZZ_CFG_ECHO		0x02	/* the server echoes what it reads */
#define FUZZ_CFG_BUFFER		0x0c	/* flow_buffer 16k << (2 * this) */
#define FUZZ_CFG_FEW_FLOWS	0x10	/* max_flows 2 */

/* op kinds (high nibble) */
enum fuzz_op {
	FUZZ_OP_SYN,
	FUZZ_OP_SEG,
	FUZZ_OP_RAW,
	FUZZ_OP_LOOP,
	FUZZ_OP_TMR,
	FUZZ_OP_SEND,
	FUZZ_OP_CTL,
	FUZZ_OP_REPLY,
	FUZZ_OP_AUTOACK,
	FUZZ_OP_TIMERS,
};

#define TH_FIN	0x01
#define TH_SYN	0x02
#define TH_RST	0x04
#define TH_ACK	0x10

enum fuzz_srv_state {
	FUZZ_SRV_METHOD,	/* waiting for the method selection */
	FUZZ_SRV_REQUEST,	/* waiting for CONNECT */
	FUZZ_SRV_HELD,		/* CONNECT read, reply held for a REPLY op */
	FUZZ_SRV_RELAY,
};

/* One connection of the in-process SOCKS5 server. */
struct fuzz_srv {
	struct bufferevent	*bev;		/* NULL: slot free */
	enum fuzz_srv_state	 state;
	int			 conn;		/* client connection, or -1 */
	bool			 shut_pending;	/* shut once output drains */
	bool			 shut;		/* write side shut */
	bool			 close_pending;	/* close once output drains */
	bool			 paused;	/* not reading */
	bool			 eof;		/* the relay shut its side */
};

/* The harness's side of one client TCP connection. */
struct fuzz_conn {
	bool		 used;
	bool		 v6;
	bool		 synack;	/* seen a SYN-ACK, no RST since */
	bool		 autoack;
	uint32_t	 iss;		/* ours */
	uint32_t	 snd_nxt;	/* ours */
	uint32_t	 rcv_nxt;	/* the end of what the stack sent */
	uint32_t	 acked;		/* the last ack we sent */
	uint16_t	 ack_wnd;	/* window of automatic ACKs */
	struct fuzz_srv	*srv;		/* the server's side, or NULL */
};

static struct evconnlistener *fuzz_listener;
static struct upstream *fuzz_up;
static struct flows *fuzz_flows;
static struct fuzz_srv fuzz_srvs[FUZZ_MAX_SRV];
static struct fuzz_conn fuzz_conns[FUZZ_CONNS];
static uint8_t fuzz_cfg;
static bool fuzz_closing;		/* between inputs: refuse accepts */
static unsigned fuzz_turns, fuzz_acks;
static struct timespec fuzz_start;	/* of this input */
static size_t fuzz_srv_bytes;

static const uint8_t fuzz_c4[4] = { 10, 0, 0, 2 };
static const uint8_t fuzz_s4[4] = { 198, 18, 1, 1 };
static const uint8_t fuzz_c6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 2 };
static const uint8_t fuzz_s6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 1 };

static void
fuzz_put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
fuzz_put32(uint8_t *p, uint32_t v)
{
	fuzz_put16(p, v >> 16);
	fuzz_put16(p + 2, v & 0xffff);
}

/* Note what the stack sent on one of our connections (t: TCP header). */
static void
fuzz_conn_note(const uint8_t *t, size_t l4len)
{
	unsigned port = (unsigned)(t[2] << 8 | t[3]);
	size_t hl = (size_t)(t[12] >> 4) * 4;
	struct fuzz_conn *k;
	uint32_t seq, end;

	if (port < FUZZ_SPORT || port >= FUZZ_SPORT + FUZZ_CONNS)
		return;
	k = &fuzz_conns[port - FUZZ_SPORT];
	if (!k->used || hl < 20 || hl > l4len)
		return;
	if (t[13] & TH_RST) {
		k->synack = false;
		return;
	}
	seq = fuzz_get32(t + 4);
	if ((t[13] & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK)) {
		if (!k->synack) {
			k->synack = true;
			k->rcv_nxt = seq + 1;
			k->acked = seq;		/* the handshake ACK is due */
		}
	}
	if (!k->synack)
		return;
	end = seq + (uint32_t)(l4len - hl) + ((t[13] & TH_SYN) ? 1 : 0) +
	    ((t[13] & TH_FIN) ? 1 : 0);
	if ((int32_t)(end - k->rcv_nxt) > 0)
		k->rcv_nxt = end;
}

/*
 * Build one segment of client connection c and hand it to the stack.
 * opt: TCP options (a multiple of 4 bytes); dlen bytes of data follow,
 * a pattern that depends on the sequence number only.
 */
static void
fuzz_conn_emit(int c, unsigned flags, uint32_t seq, uint32_t ack,
    unsigned wnd, const uint8_t *opt, size_t optlen, size_t dlen)
{
	static uint8_t pkt[FUZZ_MTU];
	const struct fuzz_conn *k = &fuzz_conns[c];
	size_t ihl = k->v6 ? 40 : 20, thl = 20 + optlen, tot, i;
	uint8_t *t;

	if (ihl + thl + dlen > FUZZ_MTU)
		dlen = FUZZ_MTU - ihl - thl;
	tot = ihl + thl + dlen;
	memset(pkt, 0, ihl + thl);
	if (k->v6) {
		pkt[0] = 0x60;
		fuzz_put16(pkt + 4, (unsigned)(thl + dlen));
		pkt[6] = 6;
		pkt[7] = 64;
		memcpy(pkt + 8, fuzz_c6, 16);
		memcpy(pkt + 24, fuzz_s6, 16);
	} else {
		pkt[0] = 0x45;
		fuzz_put16(pkt + 2, (unsigned)tot);
		pkt[6] = 0x40;
		pkt[8] = 64;
		pkt[9] = 6;
		memcpy(pkt + 12, fuzz_c4, 4);
		memcpy(pkt + 16, fuzz_s4, 4);
	}
	t = pkt + ihl;
	fuzz_put16(t, FUZZ_SPORT + (unsigned)c);
	fuzz_put16(t + 2, FUZZ_DPORT + (unsigned)c);
	fuzz_put32(t + 4, seq);
	fuzz_put32(t + 8, ack);
	t[12] = (uint8_t)((thl / 4) << 4);
	t[13] = (uint8_t)flags;
	fuzz_put16(t + 14, wnd);
	if (optlen > 0)
		memcpy(t + 20, opt, optlen);
	for (i = 0; i < dlen; i++)
		t[thl + i] = (uint8_t)('a' + (seq + i) % 26);
	fuzz_fix_checksums(pkt, tot);
	if (fuzz_debug)
		fuzz_trace("in", pkt, tot);
	stack_input(fuzz_stack, pkt, tot);
}

/* Ack what the stack sent on connections that ack by themselves. */
static bool
fuzz_autoack(void)
{
	struct fuzz_conn *k;
	bool sent = false;
	int c;

	for (c = 0; c < FUZZ_CONNS; c++) {
		k = &fuzz_conns[c];
		if (!k->used || !k->autoack || !k->synack ||
		    k->rcv_nxt == k->acked || fuzz_acks >= FUZZ_MAX_ACKS)
			continue;
		fuzz_acks++;
		k->acked = k->rcv_nxt;
		fuzz_conn_emit(c, TH_ACK, k->snd_nxt, k->rcv_nxt, k->ack_wnd,
		    NULL, 0, 0);
		sent = true;
	}
	return sent;
}

/* Read the stack's output and answer it with automatic ACKs, a bounded
 * number of rounds. */
static void
fuzz_settle(void)
{
	int i;

	for (i = 0; i < 16; i++) {
		fuzz_drain();
		if (!fuzz_autoack())
			break;
	}
	fuzz_drain();
}

/*
 * One turn of the event loop: poll once, run what is active, return.
 * EVLOOP_NONBLOCK alone keeps turning while callbacks stay active, and a
 * bufferevent whose input sits at its read high watermark re-activates
 * its read callback every turn (libevent >= 2.1.11): that would never
 * return.  The zero loopexit ends the loop after the first turn.
 */
static void
fuzz_turn(void)
{
	static const struct timeval zero = { 0, 0 };

	event_base_loopexit(fuzz_base, &zero);
	event_base_loop(fuzz_base, EVLOOP_NONBLOCK);
}

/*
 * Whether this input used up its time.  A turn can be slow (a flow that
 * re-runs an expensive failing write every turn); without FUZZ_PACKET_SPIN
 * the input then goes on without turning the loop, so libFuzzer's -timeout
 * does not stop the campaign; with it, such an input is a crash.
 */
static bool
fuzz_out_of_time(void)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - fuzz_start.tv_sec) * 1000 +
	    (now.tv_nsec - fuzz_start.tv_nsec) / 1000000;
	if (ms < FUZZ_MAX_MS)
		return false;
	if (fuzz_spin) {
		fprintf(stderr, "fuzz_packet: the input ran %ld ms: a busy "
		    "or slow event loop\n", ms);
		abort();
	}
	return true;
}

/* Run the event loop for n turns (the relay, the server, the dials). */
static void
fuzz_loop(unsigned n)
{
	while (n-- > 0 && fuzz_turns < FUZZ_MAX_TURNS && !fuzz_out_of_time()) {
		fuzz_turns++;
		fuzz_turn();
		fuzz_settle();
	}
}

/*
 * FUZZ_PACKET_SPIN=1: after each relay input, the loop must go idle: a
 * callback that re-activates itself on every turn (a busy loop in the
 * daemon, 100% CPU) is a crash.
 */
static void
fuzz_check_spin(void)
{
	int i;

	for (i = 0; i < FUZZ_SPIN_TURNS; i++) {
		fuzz_turn();
		fuzz_drain();
		if (event_base_get_num_events(fuzz_base,
		    EVENT_BASE_COUNT_ACTIVE) == 0)
			return;
	}
	fprintf(stderr, "fuzz_packet: the event loop still has active "
	    "callbacks after %d turns: a busy loop\n", FUZZ_SPIN_TURNS);
	abort();
}

/* ---- relay mode: the SOCKS5 server ----------------------------------------- */

/* Close one server connection, with a RST when rst. */
static void
fuzz_srv_free(struct fuzz_srv *s, bool rst)
{
	struct linger lg = { 1, 0 };

	if (s->bev == NULL)
		return;
	if (rst)
		(void)setsockopt(bufferevent_getfd(s->bev), SOL_SOCKET,
		    SO_LINGER, &lg, sizeof(lg));
	bufferevent_free(s->bev);	/* the fd closes on a later turn */
	s->bev = NULL;
	if (s->conn >= 0 && fuzz_conns[s->conn].srv == s)
		fuzz_conns[s->conn].srv = NULL;
	s->conn = -1;
}

/* Answer CONNECT: success (then relay) or "connection refused". */
static void
fuzz_srv_reply(struct fuzz_srv *s, bool ok)
{
	uint8_t rep[10] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };

	if (!ok)
		rep[1] = 5;
	bufferevent_write(s->bev, rep, sizeof(rep));
	if (ok)
		s->state = FUZZ_SRV_RELAY;
	else
		s->close_pending = true;
}

/* Whether the server may still queue bytes on s. */
static bool
fuzz_srv_writable(const struct fuzz_srv *s)
{
	return s != NULL && s->bev != NULL && !s->shut && !s->shut_pending &&
	    !s->close_pending;
}

static void
fuzz_srv_read_cb(struct bufferevent *bev, void *arg)
{
	struct fuzz_srv *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len, need;
	unsigned port;
	uint8_t *b;

	for (;;) {
		len = evbuffer_get_length(in);
		switch (s->state) {
		case FUZZ_SRV_METHOD:
			if (len < 2 || (b = evbuffer_pullup(in, 2)) == NULL)
				return;
			need = 2 + (size_t)b[1];
			if (b[0] != 5) {
				fuzz_srv_free(s, true);
				return;
			}
			if (len < need)
				return;
			evbuffer_drain(in, need);
			bufferevent_write(bev, "\x05\x00", 2);
			s->state = FUZZ_SRV_REQUEST;
			break;
		case FUZZ_SRV_REQUEST:
			if (len < 5 || (b = evbuffer_pullup(in, 5)) == NULL)
				return;
			if (b[3] == 1)
				need = 10;
			else if (b[3] == 4)
				need = 22;
			else if (b[3] == 3)
				need = 7 + (size_t)b[4];
			else {
				fuzz_srv_free(s, true);
				return;
			}
			if (len < need ||
			    (b = evbuffer_pullup(in, (ssize_t)need)) == NULL)
				return;
			port = (unsigned)(b[need - 2] << 8 | b[need - 1]);
			evbuffer_drain(in, need);
			if (port >= FUZZ_DPORT && port < FUZZ_DPORT + FUZZ_CONNS) {
				s->conn = (int)(port - FUZZ_DPORT);
				fuzz_conns[s->conn].srv = s;
			}
			if (fuzz_cfg & FUZZ_CFG_HOLD) {
				s->state = FUZZ_SRV_HELD;
				return;
			}
			fuzz_srv_reply(s, true);
			break;
		case FUZZ_SRV_HELD:
			return;
		case FUZZ_SRV_RELAY:
			if (len == 0)
				return;
			if ((fuzz_cfg & FUZZ_CFG_ECHO) && fuzz_srv_writable(s))
				evbuffer_add_buffer(bufferevent_get_output(bev),
				    in);
			else
				evbuffer_drain(in, len);
			return;
		}
	}
}

/* The output drained: carry out a shutdown or close that waited for it. */
static void
fuzz_srv_write_cb(struct bufferevent *bev, void *arg)
{
	struct fuzz_srv *s = arg;

	if (s->close_pending) {
		fuzz_srv_free(s, false);
		return;
	}
	if (s->shut_pending) {
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
		s->shut_pending = false;
		s->shut = true;
		if (s->eof)
			fuzz_srv_free(s, false);
	}
}

static void
fuzz_srv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct fuzz_srv *s = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR) {
		fuzz_srv_free(s, false);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->eof = true;
		if (s->shut || s->state != FUZZ_SRV_RELAY)
			fuzz_srv_free(s, false);
	}
}

static void
fuzz_srv_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct fuzz_srv *s = NULL;
	int i, one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	(void)arg;
	for (i = 0; i < FUZZ_MAX_SRV && !fuzz_closing; i++) {
		if (fuzz_srvs[i].bev == NULL) {
			s = &fuzz_srvs[i];
			break;
		}
	}
	if (s == NULL) {
		close(fd);
		return;
	}
	/* no Nagle: a small send must not wait for a delayed ACK */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(s, 0, sizeof(*s));
	s->conn = -1;
	if ((s->bev = bufferevent_socket_new(fuzz_base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(s->bev, fuzz_srv_read_cb, fuzz_srv_write_cb,
	    fuzz_srv_event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* The server queues n bytes on s (a pattern). */
static void
fuzz_srv_send(struct fuzz_srv *s, size_t n)
{
	static uint8_t pat[65536];
	struct evbuffer *out;
	size_t chunk;

	if (!fuzz_srv_writable(s))
		return;
	if (pat[0] == 0) {
		for (chunk = 0; chunk < sizeof(pat); chunk++)
			pat[chunk] = (uint8_t)('A' + chunk % 26);
	}
	if (n > FUZZ_MAX_SRV_BYTES - fuzz_srv_bytes)
		n = FUZZ_MAX_SRV_BYTES - fuzz_srv_bytes;
	fuzz_srv_bytes += n;
	out = bufferevent_get_output(s->bev);
	while (n > 0) {
		chunk = n < sizeof(pat) ? n : sizeof(pat);
		if (evbuffer_add(out, pat, chunk) == -1)
			break;
		n -= chunk;
	}
}

/* CTL: shut, close, reset, or pause/resume the server's side of c. */
static void
fuzz_srv_ctl(struct fuzz_srv *s, unsigned what)
{
	bool empty;

	if (s == NULL || s->bev == NULL)
		return;
	empty = evbuffer_get_length(bufferevent_get_output(s->bev)) == 0;
	switch (what) {
	case 0:
		if (s->shut || s->shut_pending || s->close_pending)
			break;
		if (!empty) {
			s->shut_pending = true;
			break;
		}
		(void)shutdown(bufferevent_getfd(s->bev), SHUT_WR);
		s->shut = true;
		if (s->eof)
			fuzz_srv_free(s, false);
		break;
	case 1:
		if (empty)
			fuzz_srv_free(s, false);
		else
			s->close_pending = true;
		break;
	case 2:
		fuzz_srv_free(s, true);
		break;
	default:
		s->paused = !s->paused;
		if (s->paused)
			bufferevent_disable(s->bev, EV_READ);
		else
			bufferevent_enable(s->bev, EV_READ);
		break;
	}
}

/* ---- relay mode: one input -------------------------------------------------- */

/* A cursor over the input. */
struct fuzz_in {
	const uint8_t	*p;
	size_t		 left;
};

static unsigned
fuzz_in8(struct fuzz_in *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static unsigned
fuzz_in16(struct fuzz_in *in)
{
	unsigned v = fuzz_in8(in) << 8;

	return v | fuzz_in8(in);
}

/* SYN on connection c: op bits 2 (IPv6) and 3 (new ISS), then options. */
static void
fuzz_op_syn(struct fuzz_in *in, int c, unsigned op)
{
	struct fuzz_conn *k = &fuzz_conns[c];
	unsigned o = fuzz_in8(in), wnd = fuzz_in16(in), mss = 1460;
	uint8_t opt[12];
	size_t n = 0;

	if (o & 0x01)
		mss = fuzz_in16(in);
	if (!k->used || (op & 0x08)) {
		uint32_t old = k->iss;
		struct fuzz_srv *srv = k->srv;

		memset(k, 0, sizeof(*k));
		k->used = true;
		k->iss = old + 0x01000000u + (uint32_t)c * 0x10000000u;
		k->ack_wnd = 65535;
		k->srv = srv;
	}
	k->v6 = (op & 0x04) != 0;
	k->synack = false;
	k->snd_nxt = k->iss + 1;
	if (o & 0x01) {
		opt[n++] = 2;
		opt[n++] = 4;
		fuzz_put16(opt + n, mss);
		n += 2;
	}
	if (o & 0x02) {
		opt[n++] = 1;
		opt[n++] = 1;
		opt[n++] = 4;
		opt[n++] = 2;
	}
	if (o & 0x04) {
		opt[n++] = 1;
		opt[n++] = 3;
		opt[n++] = 3;
		opt[n++] = (uint8_t)(o >> 4);
	}
	fuzz_conn_emit(c, TH_SYN, k->iss, 0, wnd, opt, n, 0);
}

/* A segment on connection c: flags, window, length, maybe deltas. */
static void
fuzz_op_seg(struct fuzz_in *in, int c, unsigned op)
{
	struct fuzz_conn *k = &fuzz_conns[c];
	unsigned flags = fuzz_in8(in), wnd = fuzz_in16(in);
	size_t len = fuzz_in16(in) % (FUZZ_MAX_DATA + 1);
	int32_t dseq = 0, dack = 0;
	uint32_t seq, ack;

	if (op & 0x04) {
		dseq = (int8_t)fuzz_in8(in);
		dack = (int8_t)fuzz_in8(in);
	}
	if (!k->used)
		return;
	seq = k->snd_nxt + (uint32_t)dseq;
	ack = (flags & TH_ACK) ? k->rcv_nxt + (uint32_t)dack : 0;
	if (flags & TH_ACK)
		k->acked = ack;
	fuzz_conn_emit(c, flags, seq, ack, wnd, NULL, 0, len);
	if (!(op & 0x08))
		k->snd_nxt = seq + (uint32_t)len + ((flags & TH_SYN) ? 1 : 0) +
		    ((flags & TH_FIN) ? 1 : 0);
}

/* FUZZ_PACKET_DEBUG: the send side of our connections' pcbs. */
static void
fuzz_trace_pcbs(unsigned op)
{
	const struct tcp_pcb *pcb;
	const struct fuzz_srv *srv;
	int c;

	for (c = 0; c < FUZZ_CONNS; c++) {
		if ((srv = fuzz_conns[c].srv) == NULL || srv->bev == NULL)
			continue;
		fprintf(stderr, "op 0x%02x: server %d state %d output %zu "
		    "input %zu%s%s%s\n", op, c, (int)srv->state,
		    evbuffer_get_length(bufferevent_get_output(srv->bev)),
		    evbuffer_get_length(bufferevent_get_input(srv->bev)),
		    srv->shut ? " shut" : "", srv->paused ? " paused" : "",
		    srv->eof ? " eof" : "");
	}
	for (pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next) {
		if (pcb->remote_port < FUZZ_SPORT ||
		    pcb->remote_port >= FUZZ_SPORT + FUZZ_CONNS)
			continue;
		fprintf(stderr, "op 0x%02x: pcb %u state %d snd_wnd %u max %u "
		    "mss %u snd_buf %u queuelen %u unsent %s oversize %u\n",
		    op, pcb->remote_port, (int)pcb->state,
		    (unsigned)pcb->snd_wnd, (unsigned)pcb->snd_wnd_max,
		    pcb->mss, (unsigned)pcb->snd_buf,
		    (unsigned)pcb->snd_queuelen,
		    pcb->unsent != NULL ? "yes" : "no",
		    (unsigned)pcb->unsent_oversize);
	}
}

/* A packet-mode record, inside a relay input. */
static void
fuzz_op_raw(struct fuzz_in *in)
{
	unsigned hdr = fuzz_in16(in);
	size_t len = hdr & FUZZ_LEN_MASK;
	uint8_t *pkt;

	if (len > in->left)
		len = in->left;
	if ((pkt = malloc(len > 0 ? len : 1)) == NULL)
		return;
	memcpy(pkt, in->p, len);
	in->p += len;
	in->left -= len;
	if (hdr & FUZZ_REL_ACK)
		fuzz_fix_ack(pkt, len);
	if (hdr & FUZZ_FIX_CSUM)
		fuzz_fix_checksums(pkt, len);
	if (fuzz_debug)
		fuzz_trace("in", pkt, len);
	stack_input(fuzz_stack, pkt, len);
	free(pkt);
	if (hdr & FUZZ_TCP_TMR) {
		fuzz_settle();
		tcp_tmr();
	}
}

static void
fuzz_relay_begin(uint8_t cfg)
{
	struct flows_limits lim;

	fuzz_cfg = cfg;
	clock_gettime(CLOCK_MONOTONIC, &fuzz_start);
	memset(fuzz_conns, 0, sizeof(fuzz_conns));
	fuzz_turns = fuzz_acks = 0;
	fuzz_srv_bytes = 0;
	memset(&lim, 0, sizeof(lim));
	lim.max_flows = (cfg & FUZZ_CFG_FEW_FLOWS) ? 2 : 64;
	lim.idle_timeout_ms = 0;	/* the idle clock is the real one */
	lim.flow_buffer = (size_t)16384 << (2 * ((cfg & FUZZ_CFG_BUFFER) >> 2));
	if ((fuzz_flows = flows_new(fuzz_base, fuzz_stack, fuzz_up,
	    &lim)) == NULL)
		abort();
}

/* Close every flow and server connection; let the loop finish the
 * closes (and accept and drop late connections). */
static void
fuzz_relay_end(void)
{
	int i;

	flows_free(fuzz_flows);
	fuzz_flows = NULL;
	fuzz_drain();
	for (i = 0; i < FUZZ_MAX_SRV; i++)
		fuzz_srv_free(&fuzz_srvs[i], false);
	fuzz_closing = true;
	for (i = 0; i < 3; i++) {
		fuzz_turn();
		fuzz_drain();
	}
	fuzz_closing = false;
	for (i = 0; i < FUZZ_MAX_SRV; i++)
		fuzz_srv_free(&fuzz_srvs[i], false);
	memset(fuzz_conns, 0, sizeof(fuzz_conns));
}

static void
fuzz_relay(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned op, n;
	int c, ops;

	fuzz_relay_begin((uint8_t)fuzz_in8(&in));
	for (ops = 0; ops < FUZZ_MAX_OPS && in.left > 0; ops++) {
		op = fuzz_in8(&in);
		c = (int)(op & 0x03);
		n = op & 0x0f;
		switch (op >> 4) {
		case FUZZ_OP_SYN:
			fuzz_op_syn(&in, c, op);
			break;
		case FUZZ_OP_SEG:
			fuzz_op_seg(&in, c, op);
			break;
		case FUZZ_OP_RAW:
			fuzz_op_raw(&in);
			break;
		case FUZZ_OP_LOOP:
			fuzz_loop((n + 1) * 4);
			break;
		case FUZZ_OP_TMR:
			while (n-- + 1 > 0 && !fuzz_out_of_time()) {
				tcp_tmr();
				fuzz_settle();
			}
			break;
		case FUZZ_OP_SEND:
			n = fuzz_in16(&in);
			fuzz_srv_send(fuzz_conns[c].srv,
			    (op & 0x04) ? (size_t)n << 4 : n);
			break;
		case FUZZ_OP_CTL:
			fuzz_srv_ctl(fuzz_conns[c].srv, (op >> 2) & 0x03);
			break;
		case FUZZ_OP_REPLY:
			if (fuzz_conns[c].srv != NULL &&
			    fuzz_conns[c].srv->state == FUZZ_SRV_HELD)
				fuzz_srv_reply(fuzz_conns[c].srv,
				    (op & 0x04) == 0);
			break;
		case FUZZ_OP_AUTOACK:
			fuzz_conns[c].autoack = (op & 0x04) != 0;
			if (fuzz_conns[c].autoack)
				fuzz_conns[c].ack_wnd = (uint16_t)fuzz_in16(&in);
			break;
		case FUZZ_OP_TIMERS:
			ip_reass_tmr();
			ip6_reass_tmr();
			sys_check_timeouts();
			break;
		default:
			break;
		}
		fuzz_settle();
		if (fuzz_debug)
			fuzz_trace_pcbs(op);
	}
	if (fuzz_debug) {
		struct flows_stats fs;

		flows_get_stats(fuzz_flows, &fs);
		fprintf(stderr, "flows: accepted %llu refused %llu "
		    "established %llu up %llu down %llu active %u; "
		    "%u turns, %u acks\n",
		    (unsigned long long)fs.accepted,
		    (unsigned long long)fs.refused,
		    (unsigned long long)fs.established,
		    (unsigned long long)fs.bytes_up,
		    (unsigned long long)fs.bytes_down, fs.active,
		    fuzz_turns, fuzz_acks);
	}
	if (fuzz_spin)
		fuzz_check_spin();
	fuzz_relay_end();
}

/* The upstream: the in-process server's port, as socks5://. */
static void
fuzz_relay_init(void)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	struct config cfg;
	char url[64], err[CONFIG_ERR_MAX];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fuzz_listener = evconnlistener_new_bind(fuzz_base,
	    fuzz_srv_accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_REUSEABLE, 64, (struct sockaddr *)&sin,
	    sizeof(sin))) == NULL ||
	    getsockname(evconnlistener_get_fd(fuzz_listener),
	    (struct sockaddr *)&sin, &slen) == -1) {
		perror("fuzz_packet: listener");
		abort();
	}
	snprintf(url, sizeof(url), "socks5://127.0.0.1:%u",
	    ntohs(sin.sin_port));
	config_defaults(&cfg);
	if (config_set(&cfg, "upstream", "url", url, err, sizeof(err)) == -1 ||
	    (fuzz_up = upstream_new(fuzz_base, &cfg, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_packet: %s\n", err);
		abort();
	}
}

/* ---- libFuzzer ---------------------------------------------------------- */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int sv[2], sz = 4 << 20;

	(void)argc;
	(void)argv;
	/* the relay writes to sockets the server may have reset */
	signal(SIGPIPE, SIG_IGN);
	fuzz_debug = getenv("FUZZ_PACKET_DEBUG") != NULL;
	fuzz_spin = getenv("FUZZ_PACKET_SPIN") != NULL;
	log_init(fuzz_debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
	if ((fuzz_base = event_base_new()) == NULL)
		abort();
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		perror("socketpair");
		abort();
	}
	/* room for bursts: what does not fit is dropped (TCP retransmits) */
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	fuzz_peer_fd = sv[1];
	if ((fuzz_stack = stack_new(fuzz_base, sv[0], FUZZ_MTU)) == NULL)
		abort();
	fuzz_relay_init();
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
	fuzz_turn();
}

/* Packet mode: the UDP intake's answer (see the top of the file). */
static void
fuzz_udp_cb(void *arg, const struct sockaddr *src, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	static uint8_t buf[65536];
	size_t n = 0, i, max;
	int k;
	uint16_t port;

	(void)arg;
	assert(src->sa_family == dst->sa_family);
	assert(src->sa_family == AF_INET || src->sa_family == AF_INET6);
	for (k = 0; k < iovcnt; k++) {
		assert(n + iov[k].iov_len <= len);
		memcpy(buf + n, iov[k].iov_base, iov[k].iov_len);
		n += iov[k].iov_len;
	}
	assert(n == len);
	port = ntohs(src->sa_family == AF_INET ?
	    ((const struct sockaddr_in *)(const void *)dst)->sin_port :
	    ((const struct sockaddr_in6 *)(const void *)dst)->sin6_port);
	switch (port % 4) {
	case 1:
		stack_icmp_port_unreach(fuzz_stack, src, dst, buf, len);
		break;
	case 2:
		stack_udp_output(fuzz_stack, dst, src, buf, len);
		break;
	case 3:
		max = src->sa_family == AF_INET ? 65507 : 65527;
		for (i = len; i < max && i < len * 45; i++)
			buf[i] = (uint8_t)i;
		stack_udp_output(fuzz_stack, dst, src, buf, i);
		break;
	default:
		break;
	}
}

/* Packet mode: records to the private listener. */
static void
fuzz_packets(uint8_t opt, const uint8_t *data, size_t size)
{
	size_t off = 0, len;
	uint16_t hdr;
	uint8_t *pkt;
	int n;

	if (stack_listen_any(fuzz_stack, fuzz_syn_cb, NULL) == -1)
		abort();
	stack_udp_any(fuzz_stack, fuzz_udp_cb, NULL);
	stack_set_icmp_echo(fuzz_stack, (opt & FUZZ_OPT_NO_ECHO) == 0);
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
	stack_unlisten(fuzz_stack);
	stack_udp_any(fuzz_stack, NULL, NULL);
	stack_set_icmp_echo(fuzz_stack, true);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t opt;

	if (size < 1)
		return 0;
	opt = data[0];
	stack_set_checksums(fuzz_stack, true, (opt & FUZZ_OPT_NO_CHECK) == 0);
	if (opt & FUZZ_OPT_RELAY)
		fuzz_relay(data + 1, size - 1);
	else
		fuzz_packets(opt, data + 1, size - 1);
	if (++fuzz_iterations % 64 == 0) {
		sys_check_timeouts();
		fuzz_drain();
	}
	if (fuzz_debug) {
		struct stack_stats st;

		stack_get_stats(fuzz_stack, &st);
		fprintf(stderr, "stats: rx %llu dropped %llu tx %llu "
		    "tx_dropped %llu ip_dropped %llu tcp_dropped %llu\n",
		    (unsigned long long)st.rx_packets,
		    (unsigned long long)st.rx_dropped,
		    (unsigned long long)st.tx_packets,
		    (unsigned long long)st.tx_dropped,
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
