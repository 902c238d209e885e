/*
 * writepacket.c - the per-packet cost of sluice's TCP send path, printed as
 * Go benchmark lines, the format of netstack's BenchmarkWritePacket:
 *
 *   BenchmarkWritePacket/link=sink/checksumOffloadDisabled/len(payload)=2048-2  N  ns/op  B/op  allocs/op
 *
 * One op queues len payload bytes on an established lwIP pcb the way the
 * relay does (tcp_write with TCP_WRITE_FLAG_COPY) and pushes the resulting
 * segment(s) to the link (tcp_output).  The pcb is sluice's own: the stack
 * module on a TUN fd, set up as the tunnel sets it up (stack_new, with
 * offloads stack_set_vnet_hdr, stack_pcb_init on the new pcb).  The peer is
 * simulated by packets fed to the netif's input, as the TUN read path
 * would: a SYN, the ACK of the handshake, then an ACK every two full-sized
 * wire segments (MTU 1500) or every 16 packets, as a delayed-ACK peer
 * sends them.  Processing those ACKs (which frees the queued segments) is
 * part of the measured time.
 *
 * Links:
 *   sink  the netif's output is replaced by a counter: our cost alone.
 *   tun   the stack's own output, one writev() per packet on a real TUN fd
 *         in a private network namespace.  The kernel takes each packet and
 *         drops it (its destination is not local and forwarding is off;
 *         ICMP errors are rate-limited), so the figure includes the
 *         kernel's per-packet cost up to its routing decision.
 *
 * checksumOffloadDisabled: a plain TUN device; lwIP computes and checks
 * IP and TCP checksums, and segments at the MTU's MSS (1460).
 * checksumOffloadEnabled: the tunnel's offload mode (IFF_VNET_HDR): TCP
 * checksums are left to the kernel, and segments may be TSO super-packets
 * of up to 64 KiB (a 2048-byte op is one segment).  On the sink link the
 * stack is in the same mode; only the virtio_net_hdr that stack_write
 * would add is not built.
 *
 * B/op and allocs/op count the heap: malloc, calloc, realloc and the
 * aligned allocators are interposed in this binary.  lwIP's pools and its
 * static heap (MEM_SIZE) are not malloc and are not counted.
 *
 * Each link and offload mode runs in a child process of its own (lwIP is
 * one instance per process, and the TUN's mode is fixed when it opens).
 *
 * usage: writepacket [-benchtime SECONDS] [-short] [-link sink|tun]
 *                    [-len N] [-offload on|off]
 * Needs root for the tun link (it is skipped otherwise).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "log.h"
#include "stack.h"
#include "tun.h"

#define WP_TUN_NAME	"wpbench0"
#define WP_MTU		1500
#define WP_PEER_PORT	40000
#define WP_LOCAL_PORT	80
#define WP_PEER_WSCALE	7
#define WP_WIRE_MSS	(WP_MTU - 40)	/* the peer's segments, for its ACKs */
#define WP_ACK_PKTS	16		/* packets per ACK at most */
#define WP_TARGET_NS	500.0

/* ---- heap accounting ------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define WP_COUNT_HEAP	0		/* the sanitizer owns malloc */
#else
#define WP_COUNT_HEAP	1

extern void	*__libc_malloc(size_t);
extern void	*__libc_calloc(size_t, size_t);
extern void	*__libc_realloc(void *, size_t);
extern void	*__libc_memalign(size_t, size_t);
extern void	 __libc_free(void *);
#endif

static bool	wp_counting;
static uint64_t	wp_allocs;
static uint64_t	wp_alloc_bytes;

static void
wp_count(size_t n)
{
	if (wp_counting) {
		wp_allocs++;
		wp_alloc_bytes += n;
	}
}

#if WP_COUNT_HEAP
void *
malloc(size_t n)
{
	wp_count(n);
	return __libc_malloc(n);
}

void *
calloc(size_t a, size_t b)
{
	wp_count(a * b);
	return __libc_calloc(a, b);
}

void *
realloc(void *p, size_t n)
{
	wp_count(n);
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}

int
posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	wp_count(n);
	if ((p = __libc_memalign(align, n)) == NULL)
		return ENOMEM;
	*out = p;
	return 0;
}

void *
aligned_alloc(size_t align, size_t n)
{
	wp_count(n);
	return __libc_memalign(align, n);
}
#endif

/* ---- the simulated peer ---------------------------------------------- */

enum wp_link {
	WP_LINK_SINK,
	WP_LINK_TUN,
};

struct wp {
	struct event_base	*base;
	struct stack		*stack;
	struct netif		*netif;
	netif_output_fn		 tun_output;	/* the stack's own */
	struct tun		 tun;
	int			 pair[2];	/* stand-in fd without a TUN */
	struct tcp_pcb		*listener;
	struct tcp_pcb		*pcb;		/* the established pcb */
	bool			 offload;
	ip4_addr_t		 peer;		/* the simulated client */
	ip4_addr_t		 local;		/* the pcb's side */
	uint32_t		 peer_seq;	/* next seq the peer would send */
	uint32_t		 iss;		/* lwIP's initial seq */
	bool			 capture;	/* next output: keep the SYN-ACK */
	uint64_t		 sink_packets;
	uint64_t		 sink_bytes;
	uint64_t		 acks;
	unsigned char		 payload[65536];
};

static struct wp wp;

static uint16_t
wp_csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t
wp_csum_add(uint32_t s, const unsigned char *b, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

/*
 * Feed one TCP segment from the peer into the netif, as the TUN read path
 * does (a PBUF_POOL pbuf handed to netif->input).  opt: TCP options.
 */
static void
wp_inject(uint8_t flags, uint32_t seq, uint32_t ack, const unsigned char *opt,
    size_t optlen)
{
	unsigned char pkt[80];
	size_t thl = 20 + optlen, len = 20 + thl;
	uint32_t s;
	uint16_t c;
	struct pbuf *p;

	memset(pkt, 0, len);
	pkt[0] = 0x45;
	pkt[2] = (unsigned char)(len >> 8);
	pkt[3] = (unsigned char)len;
	pkt[6] = 0x40;			/* DF */
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, &wp.peer.addr, 4);
	memcpy(pkt + 16, &wp.local.addr, 4);
	c = wp_csum_fold(wp_csum_add(0, pkt, 20));
	pkt[10] = (unsigned char)(c >> 8);
	pkt[11] = (unsigned char)c;

	pkt[20] = WP_PEER_PORT >> 8;
	pkt[21] = WP_PEER_PORT & 0xff;
	pkt[22] = WP_LOCAL_PORT >> 8;
	pkt[23] = WP_LOCAL_PORT & 0xff;
	pkt[24] = (unsigned char)(seq >> 24);
	pkt[25] = (unsigned char)(seq >> 16);
	pkt[26] = (unsigned char)(seq >> 8);
	pkt[27] = (unsigned char)seq;
	pkt[28] = (unsigned char)(ack >> 24);
	pkt[29] = (unsigned char)(ack >> 16);
	pkt[30] = (unsigned char)(ack >> 8);
	pkt[31] = (unsigned char)ack;
	pkt[32] = (unsigned char)((thl / 4) << 4);
	pkt[33] = flags;
	pkt[34] = 0xff;			/* window 65535 (<< WP_PEER_WSCALE) */
	pkt[35] = 0xff;
	memcpy(pkt + 40, opt, optlen);
	s = wp_csum_add(0, pkt + 12, 8);
	s += 6 + (uint32_t)thl;
	s = wp_csum_add(s, pkt + 20, thl);
	c = wp_csum_fold(s);
	pkt[36] = (unsigned char)(c >> 8);
	pkt[37] = (unsigned char)c;

	if ((p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL)) == NULL) {
		fprintf(stderr, "writepacket: out of pbufs\n");
		exit(1);
	}
	pbuf_take(p, pkt, (u16_t)len);
	if (wp.netif->input(p, wp.netif) != ERR_OK)
		pbuf_free(p);
}

/* The peer acknowledges everything lwIP sent. */
static void
wp_ack_all(void)
{
	wp_inject(0x10, wp.peer_seq, wp.pcb->snd_nxt, NULL, 0);
	wp.acks++;
}

static err_t
wp_sink_output_cb(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
	unsigned char hdr[40];

	(void)netif;
	(void)dst;
	if (wp.capture && pbuf_copy_partial(p, hdr, 40, 0) == 40) {
		/* the SYN-ACK: lwIP's initial sequence number */
		wp.iss = (uint32_t)hdr[24] << 24 | (uint32_t)hdr[25] << 16 |
		    (uint32_t)hdr[26] << 8 | hdr[27];
		wp.capture = false;
	}
	wp.sink_packets++;
	wp.sink_bytes += p->tot_len;
	return ERR_OK;
}

static err_t
wp_listen_accept_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK)
		return ERR_VAL;
	wp.pcb = pcb;
	stack_pcb_init(wp.stack, pcb);	/* as the relay does */
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

/* Listen, and run the three-way handshake with the simulated peer. */
static int
wp_connect(void)
{
	/* MSS 1460, NOP, window scale */
	static const unsigned char synopt[8] = { 2, 4, 0x05, 0xb4,
	    1, 3, 3, WP_PEER_WSCALE };
	struct tcp_pcb *pcb;

	IP4_ADDR(&wp.peer, 198, 18, 0, 2);
	IP4_ADDR(&wp.local, 198, 18, 0, 3);
	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_V4)) == NULL ||
	    tcp_bind(pcb, IP4_ADDR_ANY, WP_LOCAL_PORT) != ERR_OK ||
	    (wp.listener = tcp_listen(pcb)) == NULL) {
		fprintf(stderr, "writepacket: cannot listen\n");
		return -1;
	}
	tcp_accept(wp.listener, wp_listen_accept_cb);

	wp.netif->output = wp_sink_output_cb;
	wp.capture = true;
	wp.peer_seq = 1000;
	wp_inject(0x02, wp.peer_seq, 0, synopt, sizeof(synopt));	/* SYN */
	if (wp.capture) {
		fprintf(stderr, "writepacket: no SYN-ACK\n");
		return -1;
	}
	wp.peer_seq++;
	wp_inject(0x10, wp.peer_seq, wp.iss + 1, NULL, 0);		/* ACK */
	if (wp.pcb == NULL) {
		fprintf(stderr, "writepacket: handshake failed\n");
		return -1;
	}
	return 0;
}

/* ---- the benchmark loop ---------------------------------------------- */

static double
wp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n ops of len bytes.  0, or -1 if a segment could not be queued or sent. */
static int
wp_run(uint64_t n, u16_t len)
{
	struct tcp_pcb *pcb = wp.pcb;
	unsigned pkts = 0;
	uint64_t i;
	err_t err;

	for (i = 0; i < n; i++) {
		err = tcp_write(pcb, wp.payload, len, TCP_WRITE_FLAG_COPY);
		if (err == ERR_MEM) {
			wp_ack_all();
			pkts = 0;
			err = tcp_write(pcb, wp.payload, len,
			    TCP_WRITE_FLAG_COPY);
		}
		if (err != ERR_OK) {
			fprintf(stderr, "writepacket: tcp_write: %s\n",
			    stack_strerr(err));
			return -1;
		}
		tcp_output(pcb);
		if (pcb->unsent != NULL) {
			fprintf(stderr, "writepacket: tcp_output left data "
			    "unsent (window %u, cwnd %u)\n",
			    (unsigned)pcb->snd_wnd, (unsigned)pcb->cwnd);
			return -1;
		}
		pkts += (len + tcp_mss(pcb) - 1) / tcp_mss(pcb);
		if (pcb->snd_nxt - pcb->lastack >= 2 * WP_WIRE_MSS ||
		    pkts >= WP_ACK_PKTS) {
			wp_ack_all();
			pkts = 0;
		}
	}
	wp_ack_all();
	return 0;
}

/* Go's testing package prints ns/op with 3-4 significant digits. */
static void
wp_fmt_ns(char *buf, size_t len, double ns)
{
	if (ns >= 99.995)
		snprintf(buf, len, "%.0f", ns);
	else if (ns >= 9.9995)
		snprintf(buf, len, "%.1f", ns);
	else
		snprintf(buf, len, "%.2f", ns);
}

/* Go's b.N: grow by at most 100x, aim 20% past the target time. */
static uint64_t
wp_next_n(uint64_t n, double secs, double goal)
{
	uint64_t next, base = 1;

	if (secs <= 0)
		next = n * 100;
	else
		next = (uint64_t)((double)n * goal * 1.2 / secs);
	if (next > n * 100)
		next = n * 100;
	if (next <= n)
		next = n + 1;
	/* round up to 1, 2, 3, 5 x 10^k */
	while (base * 10 <= next)
		base *= 10;
	if (next <= base)
		return base;
	if (next <= 2 * base)
		return 2 * base;
	if (next <= 3 * base)
		return 3 * base;
	if (next <= 5 * base)
		return 5 * base;
	return 10 * base;
}

struct wp_result {
	double		ns_op;
	uint64_t	n;
	uint64_t	b_op;
	uint64_t	allocs_op;
};

static int
wp_bench(enum wp_link link, bool offload, u16_t len, double benchtime,
    struct wp_result *res)
{
	char name[160], ns[32];
	uint64_t n = 1, acks0;
	double t0, secs;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	wp.netif->output = link == WP_LINK_SINK ? wp_sink_output_cb :
	    wp.tun_output;
	/* warm up, then grow n until one run lasts benchtime */
	if (wp_run(20000, len) == -1)
		return -1;
	for (;;) {
		t0 = wp_now();
		if (wp_run(n, len) == -1)
			return -1;
		secs = wp_now() - t0;
		if (secs >= benchtime || n >= 1000000000)
			break;
		n = wp_next_n(n, secs, benchtime);
	}
	/* the measured run */
	wp_allocs = wp_alloc_bytes = 0;
	acks0 = wp.acks;
	wp_counting = true;
	t0 = wp_now();
	if (wp_run(n, len) == -1) {
		wp_counting = false;
		return -1;
	}
	secs = wp_now() - t0;
	wp_counting = false;
	(void)acks0;

	res->n = n;
	res->ns_op = secs * 1e9 / (double)n;
	res->b_op = wp_alloc_bytes / n;
	res->allocs_op = wp_allocs / n;
	snprintf(name, sizeof(name), "BenchmarkWritePacket/link=%s/"
	    "checksumOffload%s/len(payload)=%u-%ld",
	    link == WP_LINK_SINK ? "sink" : "tun",
	    offload ? "Enabled" : "Disabled", len, ncpu);
	wp_fmt_ns(ns, sizeof(ns), res->ns_op);
	if (WP_COUNT_HEAP)
		printf("%-72s\t%10llu\t%10s ns/op\t%8llu B/op\t%8llu allocs/op\n",
		    name, (unsigned long long)n, ns,
		    (unsigned long long)res->b_op,
		    (unsigned long long)res->allocs_op);
	else
		printf("%-72s\t%10llu\t%10s ns/op\n", name,
		    (unsigned long long)n, ns);
	fflush(stdout);
	return 0;
}

/* ---- set-up ---------------------------------------------------------- */

/* A TUN device in a private network namespace; false if not allowed. */
static bool
wp_tun_setup(bool offload)
{
	struct in_addr a;

	if (unshare(CLONE_NEWNET) == -1) {
		fprintf(stderr, "writepacket: unshare(CLONE_NEWNET): %s: the "
		    "tun link needs CAP_SYS_ADMIN and CAP_NET_ADMIN; skipped\n",
		    strerror(errno));
		return false;
	}
	inet_pton(AF_INET, "198.18.0.1", &a);
	if (tun_link_up("lo") == -1 ||
	    (offload ? tun_open_offload(&wp.tun, WP_TUN_NAME) :
	    tun_open(&wp.tun, WP_TUN_NAME)) == -1 ||
	    tun_set_mtu(&wp.tun, WP_MTU) == -1 ||
	    tun_add_ipv4(&wp.tun, &a, 24) == -1 || tun_up(&wp.tun) == -1) {
		fprintf(stderr, "writepacket: cannot set up the TUN device; "
		    "the tun link is skipped\n");
		tun_close(&wp.tun);
		return false;
	}
	if (offload && !wp.tun.vnet_hdr) {
		fprintf(stderr, "writepacket: the kernel refused TUN offloads; "
		    "skipped\n");
		tun_close(&wp.tun);
		return false;
	}
	return true;
}

/* What a child reports to the parent. */
struct wp_worst {
	double		ns_op;
	uint64_t	allocs_op;
	int		ran;
};

/*
 * One link and offload mode, in a child process: set up, run every length,
 * report the worst figures on fd.  Exit status 0, 1 (failed) or 3 (link
 * not available).
 */
static int
wp_child(enum wp_link link, bool offload, const u16_t *lens, size_t nlens,
    double benchtime, int fd)
{
	struct wp_worst worst = { 0, 0, 0 };
	struct wp_result res;
	int tfd, rc = 0;
	size_t i;

	wp.tun.fd = wp.pair[0] = wp.pair[1] = -1;
	wp.offload = offload;
	if (link == WP_LINK_TUN) {
		if (!wp_tun_setup(offload))
			return 3;
		tfd = wp.tun.fd;
	} else {
		/* the sink link writes nothing: any pollable fd will do */
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0,
		    wp.pair) == -1) {
			perror("writepacket: socketpair");
			return 1;
		}
		tfd = wp.pair[0];
	}
	if ((wp.base = event_base_new()) == NULL ||
	    (wp.stack = stack_new(wp.base, tfd, WP_MTU)) == NULL ||
	    (offload && stack_set_vnet_hdr(wp.stack) == -1)) {
		fprintf(stderr, "writepacket: cannot start the stack\n");
		return 1;
	}
	wp.netif = netif_default;
	wp.tun_output = wp.netif->output;
	if (wp_connect() == -1)
		return 1;
	for (i = 0; i < nlens; i++) {
		if (wp_bench(link, offload, lens[i], benchtime, &res) == -1) {
			rc = 1;
			continue;
		}
		worst.ran++;
		if (res.ns_op > worst.ns_op)
			worst.ns_op = res.ns_op;
		if (res.allocs_op > worst.allocs_op)
			worst.allocs_op = res.allocs_op;
	}
	if (link == WP_LINK_TUN) {
		struct stack_stats st;

		stack_get_stats(wp.stack, &st);
		printf("# tun link, offload %s: %llu packets written, %llu "
		    "write errors\n", offload ? "on" : "off",
		    (unsigned long long)st.tx_packets,
		    (unsigned long long)st.tx_dropped);
	}
	fflush(stdout);
	if (write(fd, &worst, sizeof(worst)) != (ssize_t)sizeof(worst))
		rc = 1;
	wp.netif->output = wp.tun_output;
	stack_free(wp.stack);
	event_base_free(wp.base);
	tun_close(&wp.tun);
	if (wp.pair[0] != -1) {
		close(wp.pair[0]);
		close(wp.pair[1]);
	}
	return rc;
}

static void
wp_usage(void)
{
	fprintf(stderr, "usage: writepacket [-benchtime SECONDS] [-short] "
	    "[-link sink|tun] [-len N] [-offload on|off]\n");
	exit(2);
}

static void
wp_print_cpu(void)
{
	char line[256], *v;
	FILE *f;

	if ((f = fopen("/proc/cpuinfo", "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "model name", 10) == 0 &&
		    (v = strchr(line, ':')) != NULL) {
			printf("cpu: %s", v + 2);
			break;
		}
	}
	fclose(f);
}

int
main(int argc, char *argv[])
{
	static const u16_t lens_all[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256,
	    512, 1024, 1460, 2048 };
	static const u16_t lens_short[] = { 1, 64, 512, 1460, 2048 };
	const u16_t *lens = lens_all;
	size_t nlens = sizeof(lens_all) / sizeof(lens_all[0]), i;
	double benchtime = 1.0, worst_sink = 0;
	uint64_t worst_allocs = 0;
	bool want_sink = true, want_tun = true, failed = false, sink_ran = false;
	int want_offload = -1, li, oi, status, pfd[2];
	struct wp_worst worst;
	u16_t one_len[1];
	pid_t pid;
	char *end;

	for (li = 1; li < argc; li++) {
		if (strcmp(argv[li], "-benchtime") == 0 && li + 1 < argc) {
			benchtime = strtod(argv[++li], &end);
			if (*end == 's')
				end++;
			if (*end != '\0' || benchtime <= 0 || benchtime > 60)
				wp_usage();
		} else if (strcmp(argv[li], "-len") == 0 && li + 1 < argc) {
			one_len[0] = (u16_t)strtoul(argv[++li], &end, 10);
			if (*end != '\0' || one_len[0] == 0 ||
			    one_len[0] > 65535 - 40)
				wp_usage();
			lens = one_len;
			nlens = 1;
		} else if (strcmp(argv[li], "-offload") == 0 && li + 1 < argc) {
			li++;
			if (strcmp(argv[li], "on") == 0)
				want_offload = 1;
			else if (strcmp(argv[li], "off") == 0)
				want_offload = 0;
			else
				wp_usage();
		} else if (strcmp(argv[li], "-short") == 0) {
			lens = lens_short;
			nlens = sizeof(lens_short) / sizeof(lens_short[0]);
		} else if (strcmp(argv[li], "-link") == 0 && li + 1 < argc) {
			li++;
			want_sink = strcmp(argv[li], "sink") == 0;
			want_tun = strcmp(argv[li], "tun") == 0;
			if (!want_sink && !want_tun)
				wp_usage();
		} else
			wp_usage();
	}
	log_init(LOG_LEVEL_WARN);
	for (i = 0; i < sizeof(wp.payload); i++)
		wp.payload[i] = (unsigned char)(i * 7 + 1);

	printf("goos: linux\ngoarch: %s\npkg: sluice/tests/bench\n",
#if defined(__x86_64__)
	    "amd64"
#elif defined(__aarch64__)
	    "arm64"
#else
	    "unknown"
#endif
	    );
	wp_print_cpu();
	printf("# one op: tcp_write(len, copy) + tcp_output on an established "
	    "pcb, ACK processing included\n");
	fflush(stdout);
	for (li = 0; li < 2; li++) {
		enum wp_link link = li == 0 ? WP_LINK_SINK : WP_LINK_TUN;

		if ((link == WP_LINK_SINK && !want_sink) ||
		    (link == WP_LINK_TUN && !want_tun))
			continue;
		for (oi = 0; oi < 2; oi++) {
			if (want_offload != -1 && want_offload != oi)
				continue;
			if (pipe(pfd) == -1 || (pid = fork()) == -1) {
				perror("writepacket: fork");
				return 1;
			}
			if (pid == 0) {
				close(pfd[0]);
				_exit(wp_child(link, oi == 1, lens, nlens,
				    benchtime, pfd[1]));
			}
			close(pfd[1]);
			memset(&worst, 0, sizeof(worst));
			if (read(pfd[0], &worst, sizeof(worst)) !=
			    (ssize_t)sizeof(worst))
				worst.ran = 0;
			close(pfd[0]);
			if (waitpid(pid, &status, 0) == -1 ||
			    !WIFEXITED(status)) {
				failed = true;
				continue;
			}
			if (WEXITSTATUS(status) == 3)
				continue;	/* link not available: skipped */
			if (WEXITSTATUS(status) != 0)
				failed = true;
			if (link == WP_LINK_SINK && worst.ran > 0) {
				sink_ran = true;
				if (worst.ns_op > worst_sink)
					worst_sink = worst.ns_op;
				if (worst.allocs_op > worst_allocs)
					worst_allocs = worst.allocs_op;
			}
		}
	}
	if (sink_ran && !failed)
		printf("# target (sink link, every length): <= %.0f ns/op and "
		    "0 allocs/op; worst: %.0f ns/op, %llu allocs/op: %s\n",
		    WP_TARGET_NS, worst_sink, (unsigned long long)worst_allocs,
		    worst_sink <= WP_TARGET_NS && worst_allocs == 0 ?
		    "met" : "missed");
	printf("%s\n", failed ? "FAIL" : "PASS");
	return failed ? 1 : 0;
}
