/*
 * seeds.c - write the seed corpora of the fuzz targets:
 *   seeds DIR      (make fuzz-seeds: DIR is tests/fuzz/corpus)
 * Text seeds are spelled out; packet seeds are built here with correct
 * checksums, in fuzz_packet's record format (see fuzz_packet.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* fuzz_packet.c's options and record header bits */
#define OPT_TUN		0x01
#define OPT_NO_CHECK	0x02
#define OPT_RELAY	0x04
#define FIX_CSUM	0x0800
#define REL_ACK		0x1000
#define RELEASE		0x2000
#define TCP_TMR		0x4000
#define REASS_TMR	0x8000

#define TH_FIN	0x01
#define TH_SYN	0x02
#define TH_RST	0x04
#define TH_PSH	0x08
#define TH_ACK	0x10

/* fuzz_packet.c's relay mode: the configuration byte and the ops */
#define CFG_HOLD	0x01
#define CFG_ECHO	0x02
#define CFG_BUF64K	0x04
#define CFG_BUF256K	0x08
#define CFG_FEW_FLOWS	0x10
#define OP_SYN		0x00
#define OP_SEG		0x10
#define OP_RAW		0x20
#define OP_LOOP		0x30
#define OP_TMR		0x40
#define OP_SEND		0x50
#define OP_CTL		0x60
#define OP_REPLY	0x70
#define OP_AUTOACK	0x80
#define OP_TIMERS	0x90
#define SYN_V6		0x04
#define SYN_NEW		0x08
#define SEG_DELTA	0x04
#define SEG_NOADV	0x08
#define SEND_X16	0x04
#define CTL_SHUT	0x00
#define CTL_CLOSE	0x04
#define CTL_RESET	0x08
#define CTL_PAUSE	0x0c
#define REPLY_REFUSE	0x04
#define AUTOACK_ON	0x04
#define SYNOPT_MSS	0x01
#define SYNOPT_SACK	0x02
#define SYNOPT_WS	0x04

static const char *seeds_dir;

static void
seeds_write(const char *target, const char *name, const void *data,
    size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", seeds_dir, target);
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", seeds_dir, target, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void
seeds_text(const char *target, const char *name, const char *s)
{
	seeds_write(target, name, s, strlen(s));
}

/* ---- packets ------------------------------------------------------------- */

struct pkt {
	uint8_t	b[2048];
	size_t	len;
};

/* An input for fuzz_packet: an options byte, then records of a 16-bit
 * header and a packet. */
struct input {
	uint8_t	b[8192];
	size_t	len;
};

static void
put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint32_t
sum(uint32_t s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t
fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void
start(struct input *in, uint8_t opt)
{
	in->b[0] = opt;
	in->len = 1;
}

static void
add(struct input *in, unsigned flags, const struct pkt *p)
{
	put16(in->b + in->len, flags | (unsigned)p->len);
	memcpy(in->b + in->len + 2, p->b, p->len);
	in->len += 2 + p->len;
}

/* Transport checksum at l4[off] with the pseudo header. */
static void
l4sum(const uint8_t *src, const uint8_t *dst, size_t alen, uint8_t proto,
    uint8_t *l4, size_t l4len, size_t off)
{
	uint32_t s = 0;

	put16(l4 + off, 0);
	if (proto != 1) {
		s = sum(s, src, alen);
		s = sum(s, dst, alen);
		s += proto;
		s += (uint32_t)l4len;
	}
	put16(l4 + off, fold(sum(s, l4, l4len)));
}

/* IPv4 around l4[0..n); proto 6, 17 or 1.  frag: flags+offset field. */
static void
ip4(struct pkt *p, const uint8_t src[4], const uint8_t dst[4],
    uint8_t proto, const uint8_t *l4, size_t n, unsigned id, unsigned frag)
{
	uint8_t *h = p->b;

	memset(h, 0, 20);
	h[0] = 0x45;
	put16(h + 2, (unsigned)(20 + n));
	put16(h + 4, id);
	put16(h + 6, frag);
	h[8] = 64;
	h[9] = proto;
	memcpy(h + 12, src, 4);
	memcpy(h + 16, dst, 4);
	put16(h + 10, fold(sum(0, h, 20)));
	memcpy(h + 20, l4, n);
	p->len = 20 + n;
}

static void
ip6(struct pkt *p, const uint8_t src[16], const uint8_t dst[16],
    uint8_t nh, const uint8_t *l4, size_t n)
{
	uint8_t *h = p->b;

	memset(h, 0, 40);
	h[0] = 0x60;
	put16(h + 4, (unsigned)n);
	h[6] = nh;
	h[7] = 64;
	memcpy(h + 8, src, 16);
	memcpy(h + 24, dst, 16);
	memcpy(h + 40, l4, n);
	p->len = 40 + n;
}

/* A TCP segment; SYNs carry MSS, SACK-permitted and window scale. */
static size_t
tcp(uint8_t *t, unsigned sport, unsigned dport, uint32_t seq, uint32_t ack,
    unsigned flags, const char *data)
{
	size_t hl = 20, dl = data != NULL ? strlen(data) : 0;

	memset(t, 0, 40);
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	if (flags & TH_SYN) {
		static const uint8_t opt[] = { 2, 4, 0x05, 0xb4, 4, 2, 1, 3,
		    3, 7, 1, 1 };

		memcpy(t + 20, opt, sizeof(opt));
		hl += sizeof(opt);
	}
	t[12] = (uint8_t)(hl / 4) << 4;
	t[13] = (uint8_t)flags;
	put16(t + 14, 65535);
	if (dl > 0)
		memcpy(t + hl, data, dl);
	return hl + dl;
}

static const uint8_t c4[4] = { 10, 0, 0, 2 };
static const uint8_t s4[4] = { 198, 18, 1, 1 };
static const uint8_t c6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 2 };
static const uint8_t s6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 1 };

static void
tcp4(struct pkt *p, unsigned dport, uint32_t seq, uint32_t ack,
    unsigned flags, const char *data)
{
	uint8_t t[1500];
	size_t n = tcp(t, 40000, dport, seq, ack, flags, data);

	l4sum(c4, s4, 4, 6, t, n, 16);
	ip4(p, c4, s4, 6, t, n, 1, 0x4000);
}

static void
tcp6(struct pkt *p, unsigned dport, uint32_t seq, uint32_t ack,
    unsigned flags, const char *data)
{
	uint8_t t[1500];
	size_t n = tcp(t, 40001, dport, seq, ack, flags, data);

	l4sum(c6, s6, 16, 6, t, n, 16);
	ip6(p, c6, s6, 6, t, n);
}

static void
seeds_packets(void)
{
	const char *T = "fuzz_packet";
	struct input in;
	struct pkt p;
	uint8_t l4[256], fr[256];
	size_t n;

	/* a SYN to 198.18.1.1:80 (accepted), one to [2001:db8::1]:443 */
	start(&in, 0);
	tcp4(&p, 80, 1000, 0, TH_SYN, NULL);
	add(&in, 0, &p);
	seeds_write(T, "syn4", in.b, in.len);

	start(&in, 0);
	tcp6(&p, 443, 2000, 0, TH_SYN, NULL);
	add(&in, 0, &p);
	seeds_write(T, "syn6", in.b, in.len);

	/* a whole session with the echo listener (port 443 = 3 mod 4), read
	 * from the TUN fd */
	start(&in, OPT_TUN);
	tcp4(&p, 443, 1000, 0, TH_SYN, NULL);
	add(&in, 0, &p);
	tcp4(&p, 443, 1001, 1, TH_ACK, NULL);
	add(&in, FIX_CSUM | REL_ACK, &p);
	tcp4(&p, 443, 1001, 1, TH_ACK | TH_PSH, "hello, world\n");
	add(&in, FIX_CSUM | REL_ACK, &p);
	tcp4(&p, 443, 1014, 14, TH_ACK, NULL);
	add(&in, FIX_CSUM | REL_ACK | TCP_TMR, &p);
	tcp4(&p, 443, 1014, 14, TH_ACK | TH_FIN, NULL);
	add(&in, FIX_CSUM | REL_ACK, &p);
	tcp4(&p, 443, 1015, 15, TH_ACK, NULL);
	add(&in, FIX_CSUM | REL_ACK, &p);
	seeds_write(T, "session4", in.b, in.len);

	/* IPv6, deferred SYN-ACK (port 22 = 2 mod 4), data out of order */
	start(&in, 0);
	tcp6(&p, 22, 5000, 0, TH_SYN, NULL);
	add(&in, 0, &p);
	tcp6(&p, 22, 5001, 1, TH_ACK, NULL);
	add(&in, RELEASE | FIX_CSUM | REL_ACK, &p);
	tcp6(&p, 22, 5006, 1, TH_ACK | TH_PSH, "world");
	add(&in, FIX_CSUM | REL_ACK, &p);
	tcp6(&p, 22, 5001, 1, TH_ACK | TH_PSH, "hello");
	add(&in, FIX_CSUM | REL_ACK | TCP_TMR, &p);
	tcp6(&p, 22, 5011, 1, TH_RST, NULL);
	add(&in, FIX_CSUM, &p);
	seeds_write(T, "deferred6", in.b, in.len);

	/* refused (port 8081 = 1 mod 4), then a SYN the timers give up on;
	 * checksums not checked */
	start(&in, OPT_NO_CHECK);
	tcp4(&p, 8081, 7, 0, TH_SYN, NULL);
	add(&in, 0, &p);
	tcp6(&p, 8082, 9, 0, TH_SYN, NULL);
	add(&in, TCP_TMR | REASS_TMR, &p);
	seeds_write(T, "refused", in.b, in.len);

	/* truncated headers: IPv4 cut at 12 bytes, IPv6 longer than sent */
	start(&in, 0);
	tcp4(&p, 80, 1, 0, TH_SYN, NULL);
	p.len = 12;
	add(&in, 0, &p);
	tcp6(&p, 80, 1, 0, TH_SYN, NULL);
	p.len -= 10;
	add(&in, 0, &p);
	seeds_write(T, "truncated", in.b, in.len);

	/* IPv4 fragments of an ICMP echo request (the reply comes back) */
	start(&in, 0);
	n = 8 + 40;
	memset(l4, 'f', n);
	l4[0] = 8;
	l4[1] = 0;
	put16(l4 + 4, 7);
	put16(l4 + 6, 1);
	l4sum(c4, s4, 4, 1, l4, n, 2);
	ip4(&p, c4, s4, 1, l4, 24, 77, 0x2000);		/* MF, off 0 */
	add(&in, 0, &p);
	ip4(&p, c4, s4, 1, l4 + 24, n - 24, 77, 3);	/* off 24/8 */
	add(&in, 0, &p);
	seeds_write(T, "frag4", in.b, in.len);

	/* IPv6 fragments of a TCP SYN */
	start(&in, 0);
	n = tcp(l4, 40002, 80, 3000, 0, TH_SYN, NULL);
	l4sum(c6, s6, 16, 6, l4, n, 16);
	memset(fr, 0, 8);
	fr[0] = 6;				/* next header: TCP */
	put16(fr + 2, 0x0001);			/* offset 0, M */
	put32(fr + 4, 0x12345678);
	memcpy(fr + 8, l4, 24);	/* lwIP wants the TCP header in one piece */
	ip6(&p, c6, s6, 44, fr, 8 + 24);
	add(&in, 0, &p);
	put16(fr + 2, 24);			/* offset 24 (3 << 3) */
	memcpy(fr + 8, l4 + 24, n - 24);
	ip6(&p, c6, s6, 44, fr, 8 + n - 24);
	add(&in, REASS_TMR, &p);
	seeds_write(T, "frag6", in.b, in.len);

	/* pings: ICMP echo and ICMPv6 echo, through the TUN fd, unchecked */
	start(&in, OPT_TUN | OPT_NO_CHECK);
	memset(l4, 0, 16);
	l4[0] = 8;
	put16(l4 + 4, 1);
	put16(l4 + 6, 1);
	memcpy(l4 + 8, "pingping", 8);
	l4sum(c4, s4, 4, 1, l4, 16, 2);
	ip4(&p, c4, s4, 1, l4, 16, 5, 0);
	add(&in, 0, &p);
	l4[0] = 128;
	l4sum(c6, s6, 16, 58, l4, 16, 2);
	ip6(&p, c6, s6, 58, l4, 16);
	add(&in, 0, &p);
	seeds_write(T, "ping", in.b, in.len);
}

/* ---- relay mode ------------------------------------------------------------ */

static void
op(struct input *in, unsigned b)
{
	in->b[in->len++] = (uint8_t)b;
}

static void
op16(struct input *in, unsigned v)
{
	put16(in->b + in->len, v);
	in->len += 2;
}

/* A relay input: options, configuration. */
static void
rstart(struct input *in, uint8_t cfg)
{
	start(in, OPT_RELAY);
	op(in, cfg);
}

/* SYN on connection c with MSS 1460, SACK and window scale 7. */
static void
rsyn(struct input *in, unsigned c, unsigned flags, unsigned wnd)
{
	op(in, OP_SYN | flags | c);
	op(in, SYNOPT_MSS | SYNOPT_SACK | SYNOPT_WS | 7 << 4);
	op16(in, wnd);
	op16(in, 1460);
}

static void
rseg(struct input *in, unsigned c, unsigned flags, unsigned wnd,
    unsigned len)
{
	op(in, OP_SEG | c);
	op(in, flags);
	op16(in, wnd);
	op16(in, len);
}

static void
rloop(struct input *in, unsigned turns)
{
	while (turns > 0) {
		unsigned n = turns > 64 ? 64 : turns;

		op(in, OP_LOOP | ((n + 3) / 4 - 1));
		turns -= n;
	}
}

static void
rsend(struct input *in, unsigned c, unsigned n)
{
	op(in, OP_SEND | c);
	op16(in, n);
}

static void
rautoack(struct input *in, unsigned c, unsigned wnd)
{
	op(in, OP_AUTOACK | AUTOACK_ON | c);
	op16(in, wnd);
}

/* Open connection c (IPv6 with SYN_V6) and ack the SYN-ACK; client
 * segments then announce 512 << 7 = 64 KiB. */
static void
ropen(struct input *in, unsigned c, unsigned v6)
{
	rsyn(in, c, v6, 65535);
	rloop(in, 16);			/* dial, SOCKS5, SYN-ACK */
	rseg(in, c, TH_ACK, 512, 0);
}

/* Open, data both ways; the close is up to the caller. */
static void
rsession(struct input *in, unsigned c, unsigned v6)
{
	ropen(in, c, v6);
	rseg(in, c, TH_ACK | TH_PSH, 512, 100);
	rloop(in, 8);
	rautoack(in, c, 512);
	rsend(in, c, 5000);
	rloop(in, 16);
}

static void
seeds_relay(void)
{
	const char *T = "fuzz_packet";
	struct input in;

	/* client FIN first, then the server's */
	rstart(&in, CFG_ECHO);
	rsession(&in, 0, 0);
	rseg(&in, 0, TH_ACK | TH_FIN, 512, 0);
	rloop(&in, 8);
	op(&in, OP_CTL | CTL_SHUT | 0);
	rloop(&in, 8);
	op(&in, OP_TMR | 3);
	seeds_write(T, "relay-client-fin", in.b, in.len);

	/* the server's FIN first (IPv6), then the client's */
	rstart(&in, CFG_ECHO);
	rsession(&in, 1, SYN_V6);
	op(&in, OP_CTL | CTL_SHUT | 1);
	rloop(&in, 8);
	rseg(&in, 1, TH_ACK | TH_PSH, 512, 300);
	rloop(&in, 8);
	rseg(&in, 1, TH_ACK | TH_FIN, 512, 0);
	rloop(&in, 8);
	op(&in, OP_TMR | 3);
	seeds_write(T, "relay-server-fin", in.b, in.len);

	/* both at once, data in flight both ways */
	rstart(&in, CFG_ECHO | CFG_BUF64K);
	rsession(&in, 2, 0);
	rsend(&in, 2, 20000);
	rseg(&in, 2, TH_ACK | TH_PSH | TH_FIN, 512, 1000);
	op(&in, OP_CTL | CTL_SHUT | 2);
	rloop(&in, 32);
	op(&in, OP_TMR | 7);
	rloop(&in, 8);
	seeds_write(T, "relay-both-fin", in.b, in.len);

	/* RST from the client while the server sends */
	rstart(&in, 0);
	rsession(&in, 0, 0);
	rsend(&in, 0, 60000);
	rloop(&in, 4);
	rseg(&in, 0, TH_RST, 0, 0);
	rloop(&in, 16);
	seeds_write(T, "relay-client-rst", in.b, in.len);

	/* RST from the server while the client sends (server paused) */
	rstart(&in, CFG_ECHO);
	rsession(&in, 3, SYN_V6);
	op(&in, OP_CTL | CTL_PAUSE | 3);
	rseg(&in, 3, TH_ACK | TH_PSH, 512, 1400);
	rseg(&in, 3, TH_ACK | TH_PSH, 512, 1400);
	rloop(&in, 8);
	op(&in, OP_CTL | CTL_RESET | 3);
	rloop(&in, 16);
	seeds_write(T, "relay-server-rst", in.b, in.len);

	/* the server closes after a burst; the client's window goes 0, then
	 * opens; two flows, one held then refused, one held then answered */
	rstart(&in, CFG_HOLD | CFG_FEW_FLOWS);
	rsyn(&in, 0, 0, 65535);
	rsyn(&in, 1, 0, 65535);
	rloop(&in, 16);
	op(&in, OP_REPLY | REPLY_REFUSE | 1);
	op(&in, OP_REPLY | 0);
	rloop(&in, 16);
	rseg(&in, 0, TH_ACK, 0, 0);
	rsend(&in, 0, 3000);
	op(&in, OP_CTL | CTL_CLOSE | 0);
	rloop(&in, 8);
	op(&in, OP_TMR | 15);
	rautoack(&in, 0, 8);
	rseg(&in, 0, TH_ACK, 8, 0);
	op(&in, OP_TMR | 15);
	rloop(&in, 8);
	seeds_write(T, "relay-hold-window", in.b, in.len);

	/*
	 * The tcp_write assertion "inconsistent oversize vs. space": the
	 * client's SYN and ACK announce window 0 (no window scaling), so
	 * lwIP's mss_local is its full MSS.  The server sends 3000 bytes,
	 * then more than the pcb's send buffer (flow_buffer, 16k) holds;
	 * libevent reads 4096 at a time, so the write that fills the buffer
	 * is short of what the relay holds and carries TCP_WRITE_FLAG_MORE,
	 * leaving an oversized tail segment.  An ACK announces window 20
	 * (mss_local drops to 10); the persist timer sends 20 bytes, their
	 * ACK frees room, and the relay's next tcp_write() finds oversize >
	 * space (lwIP patch 0004 fixes it).
	 */
	rstart(&in, 0);
	op(&in, OP_SYN | 0);
	op(&in, SYNOPT_MSS);
	op16(&in, 0);
	op16(&in, 1460);
	rloop(&in, 16);
	rseg(&in, 0, TH_ACK, 0, 0);
	rsend(&in, 0, 3000);
	rloop(&in, 8);
	rsend(&in, 0, 0xffff);
	rloop(&in, 64);
	rseg(&in, 0, TH_ACK, 20, 0);
	rautoack(&in, 0, 20);
	op(&in, OP_TMR | 15);
	rsend(&in, 0, 3000);
	rloop(&in, 16);
	op(&in, OP_TMR | 15);
	seeds_write(T, "relay-window-0-20", in.b, in.len);
}

/* ---- text targets -------------------------------------------------------- */

static void
seeds_socks5(void)
{
	static const uint8_t v4[] = { 5, 0, 0, 1, 198, 18, 1, 1, 0, 80 };
	static const uint8_t v6[] = { 5, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xbb };
	static const uint8_t name[] = { 5, 0, 0, 3, 11, 'e', 'x', 'a', 'm',
	    'p', 'l', 'e', '.', 'c', 'o', 'm', 0x01, 0xbb };
	static const uint8_t refused[] = { 5, 5, 0, 1, 0, 0, 0, 0, 0, 0 };
	static const uint8_t builder[] = { 200, 'a', 'l', 'i', 'c', 'e', 0,
	    's', '3', 'c', 'r', 'e', 't' };
	/* UDP ASSOCIATE replies: the relay's address in BND */
	static const uint8_t assoc_v4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x9c,
	    0x40 };
	static const uint8_t assoc_name[] = { 5, 0, 0, 3, 5, 'r', 'e', 'l',
	    'a', 'y', 0x9c, 0x40 };
	static const uint8_t assoc_refused[] = { 5, 7, 0, 1, 0, 0, 0, 0, 0,
	    0 };
	/* datagrams from the UDP relay: header, then payload */
	static const uint8_t udp_v4[] = { 0, 0, 0, 1, 8, 8, 4, 4, 0, 53,
	    0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0 };
	static const uint8_t udp_v6[] = { 0, 0, 0, 4, 0x20, 1, 0xd, 0xb8, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53, 0x01, 0xbb, 'q', 'u', 'i',
	    'c' };
	static const uint8_t udp_mapped[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1, 0, 7, 'x' };
	static const uint8_t udp_name[] = { 0, 0, 0, 3, 11, 'd', 'n', 's',
	    '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x03, 0x55, 'h', 'i' };
	static const uint8_t udp_rsv[] = { 0xff, 0xff, 0, 1, 1, 2, 3, 4, 0,
	    80 };
	static const uint8_t udp_frag[] = { 0, 0, 1, 1, 8, 8, 4, 4, 0, 53,
	    'x' };
	static const uint8_t udp_nul[] = { 0, 0, 0, 3, 3, 'a', 0, 'c', 0,
	    53 };
	/* an address for the address builders: cap, then IPv6 */
	static const uint8_t addr_v6[] = { 22, 1, 0x20, 1, 0xd, 0xb8, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90 };
	const char *T = "fuzz_socks5";

	seeds_write(T, "method_none", "\x05\x00", 2);
	seeds_write(T, "method_userpass", "\x05\x02", 2);
	seeds_write(T, "method_refused", "\x05\xff", 2);
	seeds_write(T, "auth_ok", "\x01\x00", 2);
	seeds_write(T, "connect_v4", v4, sizeof(v4));
	seeds_write(T, "connect_v6", v6, sizeof(v6));
	seeds_write(T, "connect_name", name, sizeof(name));
	seeds_write(T, "connect_refused", refused, sizeof(refused));
	seeds_write(T, "builder", builder, sizeof(builder));
	seeds_write(T, "assoc_v4", assoc_v4, sizeof(assoc_v4));
	seeds_write(T, "assoc_name", assoc_name, sizeof(assoc_name));
	seeds_write(T, "assoc_refused", assoc_refused, sizeof(assoc_refused));
	seeds_write(T, "udp_v4", udp_v4, sizeof(udp_v4));
	seeds_write(T, "udp_v6", udp_v6, sizeof(udp_v6));
	seeds_write(T, "udp_mapped", udp_mapped, sizeof(udp_mapped));
	seeds_write(T, "udp_name", udp_name, sizeof(udp_name));
	seeds_write(T, "udp_rsv", udp_rsv, sizeof(udp_rsv));
	seeds_write(T, "udp_frag", udp_frag, sizeof(udp_frag));
	seeds_write(T, "udp_nul", udp_nul, sizeof(udp_nul));
	seeds_write(T, "addr_v6", addr_v6, sizeof(addr_v6));
}

static void
seeds_http(void)
{
	static const uint8_t builder[] = { 7, 198, 18, 1, 1, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0x01, 0xbb, 0x02, 0x00, 'b', 'o', 'b', 0,
	    'p', 'a', 's', 's' };
	const char *T = "fuzz_http";

	seeds_text(T, "ok", "HTTP/1.1 200 Connection established\r\n\r\n");
	seeds_text(T, "bare_200", "HTTP/1.1 200\r\n\r\n");
	seeds_text(T, "auth_required", "HTTP/1.0 407 Proxy Authentication "
	    "Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\n"
	    "Content-Length: 0\r\n\r\n");
	seeds_text(T, "interim_fold", "HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nVia: 1.1 proxy\r\n\tfolded value\r\n\r\n"
	    "SSH-2.0-tunnel bytes");
	seeds_text(T, "bad_gateway", "HTTP/1.1 502 Bad Gateway\r\n"
	    "Server: x\r\nX-Reason: caf\xc3\xa9\r\n\r\n");
	seeds_write(T, "builder", builder, sizeof(builder));
}

static void
seeds_url(void)
{
	const char *T = "fuzz_url";

	seeds_text(T, "socks5", "socks5://127.0.0.1:1080");
	seeds_text(T, "socks5_tls_auth",
	    "socks5+tls://user:p%40ss!word@proxy.example.com:443/");
	seeds_text(T, "http_v6", "http://[::1]:8080");
	seeds_text(T, "https_auth", "HTTPS://alice:s3cr%3At!@[2001:db8::1]");
	seeds_text(T, "bad_port", "socks5://h:99999");
}

static void
seeds_config(void)
{
	const char *T = "fuzz_config";

	seeds_text(T, "full",
	    "; sluice\n"
	    "[tun]\n"
	    "name = sluice0\n"
	    "mtu = 1500\n"
	    "ipv4 = 198.18.0.1/15\n"
	    "ipv6 = fd00::1/64\n"
	    "offload = no\n"
	    "\n"
	    "[upstream]\n"
	    "url = socks5://user:s3cret!x@127.0.0.1:1080\n"
	    "connect_timeout = 10s\n"
	    "verify = yes\n"
	    "server_name = proxy.example.com\n"
	    "pin_sha256 = 00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff\n"
	    "\n"
	    "[limits]\n"
	    "max_flows = 4096\n"
	    "idle_timeout = 5m\n"
	    "flow_buffer = 256k\n"
	    "\n"
	    "[log]\n"
	    "level = info\n");
	seeds_text(T, "bad_value", "[tun]\nmtu = 12x\n");
	seeds_text(T, "bad_section", "[tunnel]\n");
	seeds_text(T, "syntax", "[upstream]\n  url = https://a:b!cd@h\n"
	    "this is not a key\n");
	seeds_text(T, "pin_base64", "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=");
	seeds_text(T, "duration", "250ms");
	seeds_text(T, "prefix6", "2001:db8::1/128");
}

/* ---- DNS messages (fuzz_dns: the input is one message) ------------------ */

static void
seeds_dns(void)
{
	/* www.example.test A IN, RD */
	static const uint8_t query_a[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0,
	    0, 0, 0, 0, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
	    4, 't', 'e', 's', 't', 0, 0, 1, 0, 1 };
	/* Example.COM AAAA IN; OPT: 1232, DO, a cookie option */
	static const uint8_t query_aaaa_edns[] = { 0xbe, 0xef, 0x01, 0x20, 0,
	    1, 0, 0, 0, 0, 0, 1, 7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C',
	    'O', 'M', 0, 0, 28, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0,
	    12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	/* CNAME, A via a pointer chain, NS, A via a pointer to a pointer */
	static const uint8_t response_compressed[] = { 0x12, 0x34, 0x81, 0x80,
	    0, 1, 0, 2, 0, 1, 0, 1, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm',
	    'p', 'l', 'e', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
	    0xc0, 12, 0, 5, 0, 1, 0, 0, 0x01, 0x2c, 0, 6, 3, 'w', 'e', 'b',
	    0xc0, 16,
	    0xc0, 46, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 7,
	    0xc0, 16, 0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, 6, 3, 'n', 's', '1',
	    0xc0, 16,
	    0xc0, 52, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 8 };
	/* a TXT query whose label holds '.', ' ', 0xff and '\\' */
	static const uint8_t query_escapes[] = { 0, 7, 0x01, 0x00, 0, 1, 0, 0,
	    0, 0, 0, 0, 6, 'a', '.', ' ', 0xff, '\\', 'b', 3, 'L', 'a', 'n', 0,
	    0, 16, 0, 1 };
	/* NXDOMAIN for nope.test AAAA with the zone's SOA, and OPT */
	static const uint8_t nxdomain_soa[] = { 0x77, 0x01, 0x81, 0x83, 0, 1,
	    0, 0, 0, 1, 0, 1, 4, 'n', 'o', 'p', 'e', 4, 't', 'e', 's', 't', 0,
	    0, 28, 0, 1,
	    0xc0, 17, 0, 6, 0, 1, 0, 0, 0x03, 0x84, 0, 32,
	    2, 'n', 's', 0xc0, 17, 4, 'r', 'o', 'o', 't', 0xc0, 17,
	    0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 0x03, 0x84, 0, 0x09, 0x3a,
	    0x80, 0, 0, 0x03, 0x84,
	    0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0 };
	/* no question, only an OPT with a cookie (RFC 7873 5.4) */
	static const uint8_t query_cookie[] = { 0xc0, 0x0c, 0x00, 0x00, 0, 0,
	    0, 0, 0, 0, 0, 1, 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 12, 0, 10,
	    0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	/* two questions, HTTPS then SVCB for _dns. + a pointer to the first */
	static const uint8_t query_two[] = { 0xab, 0xcd, 0x01, 0x00, 0, 2, 0,
	    0, 0, 0, 0, 0, 3, 'd', 'n', 's', 4, 't', 'e', 's', 't', 0, 0, 65,
	    0, 1, 4, '_', 'd', 'n', 's', 0xc0, 12, 0, 64, 0, 1 };
	/* big.test TXT: 3 RRs of a 255-byte string, over 512 bytes */
	static const uint8_t big_head[] = { 0x42, 0x42, 0x85, 0x80, 0, 1, 0,
	    3, 0, 0, 0, 0, 3, 'b', 'i', 'g', 4, 't', 'e', 's', 't', 0, 0, 16, 0,
	    1 };
	static const uint8_t big_rr[] = { 0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 30,
	    0x01, 0x00, 255 };
	uint8_t big[sizeof(big_head) + 3 * (sizeof(big_rr) + 255)];
	size_t off, i;
	const char *T = "fuzz_dns";

	memcpy(big, big_head, sizeof(big_head));
	off = sizeof(big_head);
	for (i = 0; i < 3; i++) {
		memcpy(big + off, big_rr, sizeof(big_rr));
		off += sizeof(big_rr);
		memset(big + off, 'x' + (int)i, 255);
		off += 255;
	}

	seeds_write(T, "query_a", query_a, sizeof(query_a));
	seeds_write(T, "query_aaaa_edns", query_aaaa_edns,
	    sizeof(query_aaaa_edns));
	seeds_write(T, "response_compressed", response_compressed,
	    sizeof(response_compressed));
	seeds_write(T, "query_escapes", query_escapes, sizeof(query_escapes));
	seeds_write(T, "nxdomain_soa", nxdomain_soa, sizeof(nxdomain_soa));
	seeds_write(T, "query_cookie", query_cookie, sizeof(query_cookie));
	seeds_write(T, "query_two", query_two, sizeof(query_two));
	seeds_write(T, "response_big_txt", big, sizeof(big));
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds DIR\n");
		return 2;
	}
	seeds_dir = argv[1];
	if (mkdir(seeds_dir, 0755) == -1 && errno != EEXIST) {
		perror(seeds_dir);
		return 1;
	}
	seeds_socks5();
	seeds_http();
	seeds_url();
	seeds_config();
	seeds_dns();
	seeds_packets();
	seeds_relay();
	return 0;
}
