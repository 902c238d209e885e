/*
 * test_frag.c - worker processes and IP fragments (src/stack.c,
 * src/lwip_hooks.c).
 *
 * The kernel may put the fragments of one datagram on two TUN queues, so
 * each fragment has an owner among the workers (stack_frag_owner): the
 * same for every fragment of a datagram, whatever its offset or the
 * extension headers before it.  A fragment that another worker owns goes
 * to the steering callback, and one handed over (stack_input_fragment)
 * completes the datagram there.  The IDs each worker sends come from its
 * own part of the space (lwip_hooks_id_split).
 */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "lwip_hooks.h"
#include "stack.h"

#define PAYLOAD	2992		/* UDP data: 3000 bytes with the header */
#define FRAG	1480		/* IP payload per fragment at MTU 1500 */

static unsigned char data[PAYLOAD];

/* ---- building packets ------------------------------------------------ */

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static unsigned
ip_csum(const unsigned char *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

/*
 * Fragment k (0..2) of a UDP datagram of PAYLOAD bytes from
 * 198.18.0.1:4000 to 198.19.0.9:53 with IPv4 identification id, into pkt.
 * Its length.
 */
static size_t
frag4(unsigned char *pkt, unsigned id, int k)
{
	unsigned char udp[8 + PAYLOAD];
	size_t total = sizeof(udp), off = (size_t)k * FRAG;
	size_t len = total - off < FRAG ? total - off : FRAG;
	bool more = off + len < total;

	put16(udp, 4000);
	put16(udp + 2, 53);
	put16(udp + 4, (unsigned)total);
	put16(udp + 6, 0);			/* no checksum (IPv4) */
	memcpy(udp + 8, data, PAYLOAD);
	memset(pkt, 0, 20);
	pkt[0] = 0x45;
	put16(pkt + 2, (unsigned)(20 + len));
	put16(pkt + 4, id);
	put16(pkt + 6, (more ? 0x2000 : 0) | (unsigned)(off / 8));
	pkt[8] = 64;
	pkt[9] = 17;
	pkt[12] = 198, pkt[13] = 18, pkt[14] = 0, pkt[15] = 1;
	pkt[16] = 198, pkt[17] = 19, pkt[18] = 0, pkt[19] = 9;
	put16(pkt + 10, ip_csum(pkt, 20));
	memcpy(pkt + 20, udp + off, len);
	return 20 + len;
}

/*
 * An IPv6 packet from 2001:db8::1 to 2001:db8::2 with the given extension
 * headers (each 8 bytes) before a Fragment header of identification id
 * and offset off, or without one (UDP next).  Its length.
 */
static size_t
pkt6(unsigned char *pkt, const unsigned char *ext, int next, bool frag,
    uint32_t id, unsigned off)
{
	size_t o = 40;
	int i;

	memset(pkt, 0, 128);
	pkt[0] = 0x60;
	pkt[8] = 0x20, pkt[9] = 0x01, pkt[10] = 0x0d, pkt[11] = 0xb8;
	pkt[23] = 1;
	pkt[24] = 0x20, pkt[25] = 0x01, pkt[26] = 0x0d, pkt[27] = 0xb8;
	pkt[39] = 2;
	/* the chain: ext[0], ext[1], ... then 44 (Fragment) or 17 (UDP) */
	pkt[6] = (unsigned char)(next > 0 ? ext[0] : (frag ? 44 : 17));
	for (i = 0; i < next; i++) {
		pkt[o] = (unsigned char)(i + 1 < next ? ext[i + 1] :
		    (frag ? 44 : 17));
		pkt[o + 1] = 0;			/* 8 bytes */
		o += 8;
	}
	if (frag) {
		pkt[o] = 17;
		put16(pkt + o + 2, off << 3 | 1);
		pkt[o + 4] = (unsigned char)(id >> 24);
		pkt[o + 5] = (unsigned char)(id >> 16);
		pkt[o + 6] = (unsigned char)(id >> 8);
		pkt[o + 7] = (unsigned char)id;
		o += 8;
	}
	o += 8;					/* a UDP header's room */
	put16(pkt + 4, (unsigned)(o - 40));
	return o;
}

/* ---- the stack's callbacks -------------------------------------------- */

static unsigned char handed[8][2048];
static size_t handed_len[8];
static unsigned handed_n, handed_to[8];

static void
frag_cb(void *arg, unsigned owner, const void *pkt, size_t len)
{
	(void)arg;
	if (handed_n < 8 && len <= sizeof(handed[0])) {
		memcpy(handed[handed_n], pkt, len);
		handed_len[handed_n] = len;
		handed_to[handed_n++] = owner;
	}
}

static unsigned got_n;
static size_t got_len;
static bool got_same;

static void
udp_cb(void *arg, const struct sockaddr *src, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	size_t o = 0;

	(void)arg;
	(void)src;
	(void)dst;
	got_n++;
	got_len = len;
	got_same = len == PAYLOAD;
	for (int i = 0; i < iovcnt && got_same; i++) {
		got_same = o + iov[i].iov_len <= PAYLOAD &&
		    memcmp(data + o, iov[i].iov_base, iov[i].iov_len) == 0;
		o += iov[i].iov_len;
	}
}

/* An IPv4 identification whose fragments worker `want' of 2 owns. */
static unsigned
id_owned_by(int want)
{
	unsigned char pkt[2048];

	for (unsigned id = 1; id < 0x10000; id++) {
		frag4(pkt, id, 0);
		if (stack_frag_owner(pkt, 20 + FRAG, 2) == want)
			return id;
	}
	return 0;
}

/* ---- the tests ------------------------------------------------------- */

static void
test_owner4(void)
{
	unsigned char pkt[2048];
	int seen[2] = {0, 0}, o0;
	size_t len;

	for (unsigned id = 1; id <= 256; id++) {
		len = frag4(pkt, id, 0);
		o0 = stack_frag_owner(pkt, len, 2);
		CHECK(o0 == 0 || o0 == 1);
		if (o0 >= 0)
			seen[o0]++;
		/* the middle and last fragments: the same owner */
		len = frag4(pkt, id, 1);
		CHECK(stack_frag_owner(pkt, len, 2) == o0);
		len = frag4(pkt, id, 2);
		CHECK(stack_frag_owner(pkt, len, 2) == o0);
	}
	CHECK(seen[0] > 64 && seen[1] > 64);	/* both workers own some */
	/* no fragment: MF clear and offset 0 */
	len = frag4(pkt, 7, 0);
	put16(pkt + 6, 0x4000);			/* DF only */
	CHECK(stack_frag_owner(pkt, len, 2) == -1);
	/* one worker, or too short to tell */
	len = frag4(pkt, 7, 0);
	CHECK(stack_frag_owner(pkt, len, 1) == -1);
	CHECK(stack_frag_owner(pkt, 19, 2) == -1);
	CHECK(stack_frag_owner(pkt, 0, 2) == -1);
	pkt[0] = 0x55;				/* not IP */
	CHECK(stack_frag_owner(pkt, len, 2) == -1);
}

static void
test_owner6(void)
{
	static const unsigned char ext[] = {0, 60, 43};	/* HbH, DestOpt, Rt */
	unsigned char pkt[128];
	int seen[2] = {0, 0}, o;
	size_t len;

	for (uint32_t id = 1; id <= 256; id++) {
		len = pkt6(pkt, ext, 0, true, id, 0);
		o = stack_frag_owner(pkt, len, 2);
		CHECK(o == 0 || o == 1);
		if (o >= 0)
			seen[o]++;
		/* a later fragment, and one behind three extension headers */
		len = pkt6(pkt, ext, 0, true, id, 185);
		CHECK(stack_frag_owner(pkt, len, 2) == o);
		len = pkt6(pkt, ext, 3, true, id, 0);
		CHECK(stack_frag_owner(pkt, len, 2) == o);
	}
	CHECK(seen[0] > 64 && seen[1] > 64);
	/* no Fragment header, with or without extension headers */
	len = pkt6(pkt, ext, 0, false, 0, 0);
	CHECK(stack_frag_owner(pkt, len, 2) == -1);
	len = pkt6(pkt, ext, 3, false, 0, 0);
	CHECK(stack_frag_owner(pkt, len, 2) == -1);
	/* the Fragment header cut off, or an extension header running past
	 * the end */
	len = pkt6(pkt, ext, 0, true, 9, 0);
	CHECK(stack_frag_owner(pkt, 44, 2) == -1);
	len = pkt6(pkt, ext, 1, true, 9, 0);
	pkt[41] = 200;				/* 1608 bytes long */
	CHECK(stack_frag_owner(pkt, len, 2) == -1);
	CHECK(stack_frag_owner(pkt, 39, 2) == -1);
}

/* Through a stack: worker 0 of 2 keeps its fragments, hands the others. */
static void
test_steer(void)
{
	struct event_base *base;
	struct stack_stats st;
	struct stack *s;
	unsigned char pkt[2048];
	unsigned mine = id_owned_by(0), theirs = id_owned_by(1);
	int sv[2], k;
	size_t len;

	CHECK(mine != 0 && theirs != 0);
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
	CHECK((base = event_base_new()) != NULL);
	CHECK((s = stack_new(base, sv[0], 1500)) != NULL);
	if (s == NULL)
		return;
	stack_udp_any(s, udp_cb, NULL);
	CHECK(stack_set_workers(s, 0, 2, frag_cb, NULL) == 0);

	/* ours: reassembled here, nothing handed over */
	for (k = 0; k < 3; k++) {
		len = frag4(pkt, mine, k);
		stack_input(s, pkt, len);
	}
	CHECK(handed_n == 0);
	CHECK(got_n == 1 && got_same);

	/* theirs: all three handed to worker 1, none reassembled here */
	for (k = 2; k >= 0; k--) {
		len = frag4(pkt, theirs, k);
		stack_input(s, pkt, len);
	}
	CHECK(handed_n == 3);
	CHECK(handed_to[0] == 1 && handed_to[1] == 1 && handed_to[2] == 1);
	CHECK(got_n == 1);
	/* what worker 1 does with them (the same stack stands in for it) */
	for (unsigned i = 0; i < handed_n; i++)
		stack_input_fragment(s, handed[i], handed_len[i]);
	CHECK(got_n == 2 && got_same);

	stack_get_stats(s, &st);
	CHECK(st.frag_steered == 3);
	CHECK(st.frag_taken == 3);
	CHECK(st.rx_packets == 6);		/* taken ones are not read twice */
	CHECK(st.rx_dropped == 0);

	/* steering off: every fragment stays */
	CHECK(stack_set_workers(s, 0, 0, NULL, NULL) == 0);
	for (k = 0; k < 3; k++) {
		len = frag4(pkt, theirs + 0x100, k);
		stack_input(s, pkt, len);
	}
	CHECK(got_n == 3 && handed_n == 3);

	stack_free(s);
	event_base_free(base);
	close(sv[0]);
	close(sv[1]);
}

static void
test_ids(void)
{
	uint32_t size6 = (uint32_t)(0x100000000ull / 3);
	bool ok0 = true, ok1 = true, ok6 = true;
	unsigned v;

	lwip_hooks_id_split(0, 2);
	for (int i = 0; i < 70000; i++)
		ok0 = ok0 && sluice_lwip_ip4_id() < 0x8000;
	lwip_hooks_id_split(1, 2);
	for (int i = 0; i < 70000; i++)
		ok1 = ok1 && sluice_lwip_ip4_id() >= 0x8000;
	CHECK(ok0 && ok1);
	lwip_hooks_id_split(2, 3);
	for (int i = 0; i < 1000; i++)
		ok6 = ok6 && sluice_lwip_ip6_frag_id() >= 2 * size6;
	CHECK(ok6);
	/* consecutive IDs differ (a counter, not one value) */
	lwip_hooks_id_split(0, 1);
	v = sluice_lwip_ip4_id();
	CHECK(sluice_lwip_ip4_id() != v);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 31 + 7);
	test_owner4();
	test_owner6();
	test_steer();
	test_ids();
	return check_summary("frag");
}
