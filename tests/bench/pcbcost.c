/*
 * pcbcost.c - what one more connection costs every packet: lwIP's demux
 * of an incoming segment to its pcb, by the 4-tuple hash of our patch 0005
 * (tcp_pcb_hash_lookup = 1) and by lwIP's own linear scan of the active and
 * TIME-WAIT lists (0), with 1, 1000 and 10000 established connections.
 *
 * The stack is sluice's own (stack_new on a socketpair standing in for the
 * TUN, the catch-all listener of stack_listen_any); the peers are simulated
 * by IPv4 packets handed to stack_input(), checksums off on both sides (as
 * with TUN offloads) so that building packets costs little.  The netif's
 * output is a counter.  Measured, in ns per packet handed to stack_input():
 *
 *   ack   a pure ACK on a random established flow (nothing to do but find
 *         the pcb and run tcp_receive)
 *   data  16 bytes of data on a random established flow (lwIP's null recv
 *         callback takes them; every second one makes lwIP send an ACK)
 *   syn   a SYN for a new 4-tuple (a miss in both lists, then the
 *         catch-all listener: a new pcb and its SYN-ACK), each timed on
 *         its own; the new pcb is aborted after its timing
 *
 * Asserts nothing; prints a table.  usage: pcbcost [-benchtime SECONDS]
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "log.h"
#include "stack.h"

#define PC_MTU		1500
#define PC_MAX_FLOWS	10000
#define PC_DATA_LEN	16
#define PC_SYNS		2000	/* per measurement */

struct pc_flow {
	uint32_t	src, dst;	/* network byte order */
	uint16_t	sport, dport;	/* host byte order */
	uint32_t	seq;		/* the peer's next sequence number */
	uint32_t	ack;		/* what the peer acknowledges */
};

static struct stack	*pc_stack;
static struct pc_flow	 pc_flows[PC_MAX_FLOWS];
static int		 pc_nflows;
static struct tcp_pcb	*pc_syn_pcb;	/* SYN phase: the new pcb */
static bool		 pc_collect;
static uint32_t		 pc_iss;	/* of the last SYN-ACK */
static uint64_t		 pc_out;	/* packets the stack sent */
static uint64_t		 pc_rng = 0x9e3779b97f4a7c15ull;

static uint32_t
pc_rand(void)
{
	pc_rng ^= pc_rng << 13;
	pc_rng ^= pc_rng >> 7;
	pc_rng ^= pc_rng << 17;
	return (uint32_t)(pc_rng >> 16);
}

static double
pc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
pc_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* One IPv4 TCP segment from the flow's peer into the stack. */
static void
pc_send(const struct pc_flow *f, uint8_t flags, size_t datalen)
{
	unsigned char pkt[80] = { 0 };
	size_t thl = flags & 0x02 ? 24 : 20, len = 20 + thl + datalen;

	pkt[0] = 0x45;
	pkt[2] = (unsigned char)(len >> 8);
	pkt[3] = (unsigned char)len;
	pkt[6] = 0x40;
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, &f->src, 4);
	memcpy(pkt + 16, &f->dst, 4);
	pkt[20] = (unsigned char)(f->sport >> 8);
	pkt[21] = (unsigned char)f->sport;
	pkt[22] = (unsigned char)(f->dport >> 8);
	pkt[23] = (unsigned char)f->dport;
	pc_put32(pkt + 24, f->seq);
	pc_put32(pkt + 28, flags & 0x10 ? f->ack : 0);
	pkt[32] = (unsigned char)((thl / 4) << 4);
	pkt[33] = flags;
	pkt[34] = 0xff;
	pkt[35] = 0xff;
	if (flags & 0x02) {		/* MSS 1460 */
		pkt[40] = 2;
		pkt[41] = 4;
		pkt[42] = 0x05;
		pkt[43] = 0xb4;
	}
	stack_input(pc_stack, pkt, len);
}

static err_t
pc_output_cb(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
	unsigned char hdr[40];

	(void)netif;
	(void)dst;
	if (pbuf_copy_partial(p, hdr, 40, 0) == 40 && (hdr[33] & 0x12) == 0x12)
		pc_iss = (uint32_t)hdr[24] << 24 | (uint32_t)hdr[25] << 16 |
		    (uint32_t)hdr[26] << 8 | hdr[27];
	pc_out++;
	return ERR_OK;
}

static signed char
pc_syn_cb(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	if (pc_collect)
		pc_syn_pcb = pcb;
	return ERR_OK;
}

/* Flow i's 4-tuple: peers in 198.19.0.0/16, servers in 198.18.1.0/24. */
static void
pc_flow_init(struct pc_flow *f, uint32_t i, bool syn_only)
{
	f->src = htonl((198u << 24) | ((syn_only ? 18u : 19u) << 16) |
	    (syn_only ? 0x8000u : 0) | (i & 0x7fff));
	f->dst = htonl((198u << 24) | (18u << 16) | (1u << 8) | (1 + i % 200));
	f->sport = (uint16_t)(20000 + i % 40000);
	f->dport = 443;
	f->seq = 1000 + i;
}

/* Establish flows up to n (SYN, ACK of the SYN-ACK).  0 or -1. */
static int
pc_grow(int n)
{
	struct pc_flow *f;

	for (; pc_nflows < n; pc_nflows++) {
		f = &pc_flows[pc_nflows];
		pc_flow_init(f, (uint32_t)pc_nflows, false);
		pc_iss = 0;
		pc_send(f, 0x02, 0);
		if (pc_iss == 0) {
			fprintf(stderr, "pcbcost: no SYN-ACK for flow %d\n",
			    pc_nflows);
			return -1;
		}
		f->seq++;
		f->ack = pc_iss + 1;
		pc_send(f, 0x10, 0);
	}
	return 0;
}

/* ns per ack (data false) or data packet on random flows, for secs. */
static double
pc_measure_flows(bool data, double secs)
{
	uint64_t n = 0;
	double t0 = pc_now(), t;
	struct pc_flow *f;
	int i;

	for (;;) {
		for (i = 0; i < 256; i++) {
			f = &pc_flows[pc_rand() % (uint32_t)pc_nflows];
			if (data) {
				pc_send(f, 0x18, PC_DATA_LEN);
				f->seq += PC_DATA_LEN;
			} else
				pc_send(f, 0x10, 0);
		}
		n += 256;
		if ((t = pc_now() - t0) >= secs * 1e9)
			return t / (double)n;
	}
}

/* ns per SYN for a new 4-tuple, each timed alone and its pcb aborted
 * untimed, so that the lists keep their size. */
static double
pc_measure_syn(uint32_t base, int count)
{
	struct pc_flow f;
	double t0, t = 0;
	int i;

	pc_collect = true;
	for (i = 0; i < count; i++) {
		pc_syn_pcb = NULL;
		pc_flow_init(&f, base + (uint32_t)i, true);
		t0 = pc_now();
		pc_send(&f, 0x02, 0);
		t += pc_now() - t0;
		if (pc_syn_pcb != NULL)
			tcp_abort(pc_syn_pcb);
	}
	pc_collect = false;
	return t / (double)count;
}

int
main(int argc, char *argv[])
{
	static const int levels[] = { 1, 1000, 10000 };
	struct event_base *base;
	double secs = 0.3, r[2][3];
	uint32_t synbase = 0;
	int pair[2], li, mode, i;
	char *end;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-benchtime") == 0 && i + 1 < argc) {
			secs = strtod(argv[++i], &end) / 3;
			if (*end == 's')
				end++;
			if (*end != '\0' || secs <= 0 || secs > 20) {
				fprintf(stderr, "usage: pcbcost "
				    "[-benchtime SECONDS]\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: pcbcost [-benchtime SECONDS]\n");
			return 2;
		}
	}
	log_init(LOG_LEVEL_WARN);
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, pair) == -1 ||
	    (base = event_base_new()) == NULL ||
	    (pc_stack = stack_new(base, pair[0], PC_MTU)) == NULL ||
	    stack_listen_any(pc_stack, pc_syn_cb, NULL) == -1) {
		fprintf(stderr, "pcbcost: cannot start the stack\n");
		return 1;
	}
	stack_set_checksums(pc_stack, false, false);
	netif_default->output = pc_output_cb;

	printf("# ns per packet into stack_input(): lwIP's pcb lookup by the "
	    "4-tuple hash (on) or by scanning the lists (off)\n");
	printf("%8s  %9s %9s  %9s %9s  %9s %9s\n", "flows", "ack on",
	    "ack off", "data on", "data off", "syn on", "syn off");
	for (li = 0; li < (int)(sizeof(levels) / sizeof(levels[0])); li++) {
		if (pc_grow(levels[li]) == -1)
			return 1;
		for (mode = 1; mode >= 0; mode--) {
			tcp_pcb_hash_lookup = (u8_t)mode;
			r[mode][0] = pc_measure_flows(false, secs);
			r[mode][1] = pc_measure_flows(true, secs);
			r[mode][2] = pc_measure_syn(synbase, PC_SYNS);
			synbase += PC_SYNS;
		}
		tcp_pcb_hash_lookup = 1;
		printf("%8d  %9.0f %9.0f  %9.0f %9.0f  %9.0f %9.0f\n",
		    pc_nflows, r[1][0], r[0][0], r[1][1], r[0][1], r[1][2],
		    r[0][2]);
		fflush(stdout);
	}
	printf("# %llu packets sent by the stack\n", (unsigned long long)pc_out);
	return 0;
}
