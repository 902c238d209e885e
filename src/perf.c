/*
 * perf.c - `sluice --perf reader|writer`: the reader/writer TUN throughput
 * self-benchmark.
 *
 * sluice moves itself into a private network namespace (unshare), brings up
 * lo and a TUN device there (198.18.0.1/24, a default route into it) and
 * runs the same stack, netif and TUN I/O code as the tunnel.  A client
 * thread connects an ordinary blocking kernel TCP socket to the peer
 * address through the TUN: port 1234 for reader mode (the server writes,
 * the client reads), 1235 for writer mode (the other way round).
 *
 * The server is, with --perf-path stack, lwIP's raw API on the stack's
 * main thread: a listener on the port, tcp_write() straight from a static
 * pattern (no copy), tcp_recved() as bytes are verified.  With --perf-path
 * relay the connection takes the product path: the catch-all listener,
 * the flow relay and a real SOCKS5 handshake to an in-process SOCKS5 server
 * on 127.0.0.1 (its own thread, blocking sockets) that sources or sinks the
 * bytes.  lwIP and libevent stay on the main thread.
 *
 * The byte at stream offset o is perf_pattern[o % PERF_PERIOD]; the period
 * is a prime, so no segment or buffer size lines up with it.  Whichever
 * side receives checks every byte; a mismatch fails the run.  Timing starts
 * when the server has accepted the connection and ends when the client has
 * moved its last byte.  Every wait is bounded (--perf-timeout per run, and
 * socket timeouts on the threads' blocking calls).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/capability.h>
#include <math.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "config.h"
#include "flow.h"
#include "log.h"
#include "perf.h"
#include "stack.h"
#include "tun.h"
#include "upstream.h"

#define PERF_PORT_READER	1234
#define PERF_PORT_WRITER	1235
#define PERF_CLIENT_BUF		1000000		/* the client's buffer */
#define PERF_PERIOD		1048573		/* pattern period, a prime */
#define PERF_PATTERN_LEN	(PERF_PERIOD + PERF_CLIENT_BUF)
#define PERF_SOCKS_BUF		(1024 * 1024)
#define PERF_BYTES_DEFAULT	1000000000ULL
#define PERF_BYTES_MAX		1000000000000ULL	/* 1e12 */
#define PERF_RUNS_MAX		1000
#define PERF_TIMEOUT_DEFAULT	120		/* seconds per run */
#define PERF_IO_TIMEOUT		10		/* seconds per blocking call */
#define PERF_TUN_NAME		"sluiceperf0"
#define PERF_ERR_MAX		256

enum perf_mode {
	PERF_READER,
	PERF_WRITER,
};

enum perf_path {
	PERF_PATH_STACK,
	PERF_PATH_RELAY,
};

struct perf_opts {
	enum perf_mode	 mode;
	enum perf_path	 path;
	uint64_t	 bytes;
	unsigned	 runs;
	unsigned	 timeout_s;
	int		 mtu;
	bool		 offload;	/* TSO/checksum offloads on the TUN */
	struct in_addr	 addr;		/* the client connects here */
	bool		 json;
	bool		 quiet;
	bool		 corrupt;	/* test only: flip a byte at the source */
	uint64_t	 corrupt_at;
	enum log_level	 log_level;
	size_t		 flow_buffer;	/* relay path; 0: the default */
};

/*
 * One run.  The server side (main thread, or the SOCKS5 thread) and the
 * client thread each fill in their half and then set their done flag; the
 * main thread reads a half only after it saw that flag.
 */
struct perf_run {
	struct perf		*p;
	unsigned		 idx;		/* 1-based */
	uint16_t		 port;

	/* the server */
	struct timespec		 t_start;	/* valid once accepted */
	atomic_bool		 accepted;
	uint64_t		 server_moved;
	char			 server_err[PERF_ERR_MAX];
	atomic_bool		 server_done;

	/* the client */
	atomic_int		 client_fd;
	atomic_uint_fast64_t	 client_moved;
	struct timespec		 t_end;
	char			 client_err[PERF_ERR_MAX];
	atomic_bool		 client_done;

	atomic_bool		 abort;		/* the main thread gave up */

	/* main thread only */
	char			 main_err[PERF_ERR_MAX];
	struct tcp_pcb		*pcb;		/* stack path: the server pcb */
	uint64_t		 queued;	/* stack path, reader: tcp_write()n */
	bool			 fin_sent;
	bool			 finished;
	double			 tick_at;	/* next interval line's end, s */
	uint64_t		 tick_bytes;
	struct stack_stats	 st0;
};

/* The in-process SOCKS5 server of the relay path. */
struct perf_socks {
	pthread_t		 thread;
	bool			 started;
	int			 lfd;
	int			 stop_fd;	/* eventfd */
	uint16_t		 port;
	pthread_mutex_t		 lock;
	struct perf_run		*run;		/* under lock */
	int			 conn_fd;	/* under lock */
	unsigned char		*buf;
};

struct perf {
	struct perf_opts	 o;
	struct event_base	*base;
	struct tun		 tun;
	struct stack		*stack;
	struct tcp_pcb		*listener;	/* stack path */
	struct upstream		*up;		/* relay path */
	struct flows		*flows;
	struct perf_socks	 socks;
	int			 wake_fd;	/* eventfd: a thread has news */
	struct event		*wake_ev;
	struct event		*tick_ev;
	struct event		*deadline_ev;
	struct perf_run		*run;		/* the current run */
	double			*gbps;		/* per run */
};

static unsigned char	perf_pattern[PERF_PATTERN_LEN];
/* test-only fault: the corrupted stretch, stable while lwIP refers to it */
static unsigned char	perf_corrupt_buf[PERF_CLIENT_BUF];

static void	perf_run_check(struct perf *);

/* ---- helpers --------------------------------------------------------- */

static double
perf_ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static double
perf_gbps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
}

static const char *
perf_mode_name(enum perf_mode m)
{
	return m == PERF_READER ? "reader" : "writer";
}

static const char *
perf_path_name(enum perf_path p)
{
	return p == PERF_PATH_STACK ? "stack" : "relay";
}

/* Tell the main loop that a thread has news (its done flag is set). */
static void
perf_wake(struct perf *p)
{
	uint64_t one = 1;

	while (write(p->wake_fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

/* ---- the pattern ----------------------------------------------------- */

static void
perf_pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	/* xorshift64: cheap, and no short repeats within the period */
	for (i = 0; i < PERF_PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		perf_pattern[i] = (unsigned char)(x >> 32);
	}
	/* the tail repeats the head, so any stretch of up to PERF_CLIENT_BUF
	 * bytes is contiguous */
	memcpy(perf_pattern + PERF_PERIOD, perf_pattern, PERF_CLIENT_BUF);
}

/*
 * The len (<= PERF_CLIENT_BUF) bytes the source sends at stream offset
 * off: the pattern itself, or once per run, with the test-only fault, a
 * copy with one byte flipped.  The memory stays valid and unchanged for
 * the rest of the run.
 */
static const unsigned char *
perf_source(const struct perf_opts *o, uint64_t off, size_t len)
{
	const unsigned char *src = perf_pattern + off % PERF_PERIOD;

	if (o->corrupt && o->corrupt_at >= off && o->corrupt_at - off < len) {
		memcpy(perf_corrupt_buf, src, len);
		perf_corrupt_buf[o->corrupt_at - off] ^= 0x5a;
		return perf_corrupt_buf;
	}
	return src;
}

/*
 * Check len bytes that `who' received at stream offset off against the
 * pattern.  0, or -1 with the first bad byte described in err.
 */
static int
perf_verify(const char *who, uint64_t off, const void *buf, size_t len,
    char *err, size_t errlen)
{
	const unsigned char *b = buf, *want;
	size_t n, i;

	while (len > 0) {
		n = len > PERF_CLIENT_BUF ? PERF_CLIENT_BUF : len;
		want = perf_pattern + off % PERF_PERIOD;
		if (memcmp(b, want, n) != 0) {
			for (i = 0; i < n && b[i] == want[i]; i++)
				;
			snprintf(err, errlen, "%s: data mismatch at byte %llu: "
			    "expected 0x%02x, got 0x%02x", who,
			    (unsigned long long)(off + i), want[i], b[i]);
			return -1;
		}
		b += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- the private namespace ------------------------------------------- */

/* Which of the capabilities --perf needs are missing ("" if none). */
static void
perf_missing_caps(char *buf, size_t len)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];

	buf[0] = '\0';
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		return;
	if (!(data[0].effective & (1U << CAP_SYS_ADMIN)))
		snprintf(buf, len, "CAP_SYS_ADMIN (to create a network "
		    "namespace)");
	if (!(data[0].effective & (1U << CAP_NET_ADMIN)))
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    buf[0] != '\0' ? " and " : "",
		    "CAP_NET_ADMIN (to create and configure the TUN device)");
}

/* A default route into the TUN device, so any --perf-addr goes there. */
static int
perf_route_default(const char *dev)
{
	struct rtentry rt;
	struct sockaddr_in *sin;
	char name[IFNAMSIZ];
	int s, rc;

	memset(&rt, 0, sizeof(rt));
	sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	snprintf(name, sizeof(name), "%s", dev);
	rt.rt_dev = name;
	rt.rt_flags = RTF_UP;
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = ioctl(s, SIOCADDRT, &rt);
	if (rc == -1 && errno == EEXIST)
		rc = 0;
	close(s);
	return rc;
}

/*
 * Leave the caller's network namespace for a new private one, and set up
 * lo and the TUN device there.  Nothing outside the new namespace is
 * touched.  0, or -1 with a message on stderr.
 */
static int
perf_netns_setup(struct perf *p)
{
	char missing[160];
	struct in_addr tun_addr;

	if (unshare(CLONE_NEWNET) == -1) {
		int e = errno;

		perf_missing_caps(missing, sizeof(missing));
		if (e == EPERM)
			fprintf(stderr, "sluice: --perf: cannot create a "
			    "private network namespace: missing %s; run as "
			    "root\n", missing[0] != '\0' ? missing :
			    "CAP_SYS_ADMIN (to create a network namespace)");
		else
			fprintf(stderr, "sluice: --perf: "
			    "unshare(CLONE_NEWNET): %s\n", strerror(e));
		return -1;
	}
	if (tun_link_up("lo") == -1) {
		fprintf(stderr, "sluice: --perf: cannot bring up lo: %s%s\n",
		    strerror(errno), errno == EPERM ?
		    " (missing CAP_NET_ADMIN)" : "");
		return -1;
	}
	if (access("/dev/net/tun", R_OK | W_OK) == -1) {
		fprintf(stderr, "sluice: --perf: /dev/net/tun: %s\n",
		    strerror(errno));
		return -1;
	}
	perf_missing_caps(missing, sizeof(missing));
	if (strstr(missing, "CAP_NET_ADMIN") != NULL) {
		fprintf(stderr, "sluice: --perf: missing CAP_NET_ADMIN (to "
		    "create and configure the TUN device); run as root\n");
		return -1;
	}
	inet_pton(AF_INET, "198.18.0.1", &tun_addr);
	if ((p->o.offload ? tun_open_offload(&p->tun, PERF_TUN_NAME) :
	    tun_open(&p->tun, PERF_TUN_NAME)) == -1 ||
	    tun_set_mtu(&p->tun, p->o.mtu) == -1 ||
	    tun_add_ipv4(&p->tun, &tun_addr, 24) == -1 ||
	    tun_up(&p->tun) == -1 ||
	    perf_route_default(p->tun.name) == -1) {
		fprintf(stderr, "sluice: --perf: cannot set up the TUN device "
		    "%s%s\n", PERF_TUN_NAME, errno == EPERM ?
		    ": missing CAP_NET_ADMIN" : "");
		return -1;
	}
	return 0;
}

/* ---- the client thread ----------------------------------------------- */

static void __attribute__((format(printf, 2, 3)))
perf_client_fail(struct perf_run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->client_err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(r->client_err, sizeof(r->client_err), fmt, ap);
	va_end(ap);
}

/* Wait for the server's FIN: 0, or -1 (error set). */
static int
perf_client_wait_eof(struct perf_run *r, int fd, unsigned char *buf)
{
	ssize_t n;

	for (;;) {
		n = read(fd, buf, 1);
		if (n == 0)
			return 0;
		if (n > 0) {
			perf_client_fail(r, "client: the server sent more than "
			    "%llu bytes", (unsigned long long)r->p->o.bytes);
			return -1;
		}
		if (errno == EINTR && !atomic_load(&r->abort))
			continue;
		perf_client_fail(r, "client: waiting for the server to close: "
		    "%s", errno == EAGAIN ? "timed out" : strerror(errno));
		return -1;
	}
}

static void
perf_client_read(struct perf_run *r, int fd, unsigned char *buf)
{
	uint64_t total = r->p->o.bytes, got = 0;
	size_t want;
	ssize_t n;

	while (got < total) {
		if (atomic_load_explicit(&r->abort, memory_order_relaxed))
			return;
		want = total - got < PERF_CLIENT_BUF ?
		    (size_t)(total - got) : PERF_CLIENT_BUF;
		n = read(fd, buf, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			perf_client_fail(r, "client: read after %llu of %llu "
			    "bytes: %s", (unsigned long long)got,
			    (unsigned long long)total, n == 0 ?
			    "connection closed" : errno == EAGAIN ?
			    "timed out" : strerror(errno));
			return;
		}
		if (perf_verify("client", got, buf, (size_t)n, r->client_err,
		    sizeof(r->client_err)) == -1)
			return;
		got += (uint64_t)n;
		atomic_store_explicit(&r->client_moved, got,
		    memory_order_relaxed);
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t_end);
	/* then our FIN ends the server's half */
	if (perf_client_wait_eof(r, fd, buf) == 0)
		shutdown(fd, SHUT_WR);
}

static void
perf_client_write(struct perf_run *r, int fd, unsigned char *buf)
{
	uint64_t total = r->p->o.bytes, put = 0;
	const unsigned char *src;
	size_t len;
	ssize_t n;

	while (put < total) {
		if (atomic_load_explicit(&r->abort, memory_order_relaxed))
			return;
		len = total - put < PERF_CLIENT_BUF ?
		    (size_t)(total - put) : PERF_CLIENT_BUF;
		/* the 1,000,000-byte buffer is a window on the pattern */
		src = perf_source(&r->p->o, put, len);
		n = write(fd, src, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			perf_client_fail(r, "client: write after %llu of %llu "
			    "bytes: %s", (unsigned long long)put,
			    (unsigned long long)total, errno == EAGAIN ?
			    "timed out" : strerror(errno));
			return;
		}
		put += (uint64_t)n;
		atomic_store_explicit(&r->client_moved, put,
		    memory_order_relaxed);
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t_end);
	if (shutdown(fd, SHUT_WR) == -1) {
		perf_client_fail(r, "client: shutdown: %s", strerror(errno));
		return;
	}
	/* the server closes once it has checked every byte */
	perf_client_wait_eof(r, fd, buf);
}

static void *
perf_client_main(void *arg)
{
	struct perf_run *r = arg;
	struct perf *p = r->p;
	struct sockaddr_in sin;
	struct timeval tv = { PERF_IO_TIMEOUT, 0 };
	unsigned char *buf = NULL;
	int fd;

	pthread_setname_np(pthread_self(), "perf-client");
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		perf_client_fail(r, "client: socket: %s", strerror(errno));
		goto done;
	}
	atomic_store(&r->client_fd, fd);
	/* every blocking call below gives up after PERF_IO_TIMEOUT */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* writer mode reads only the server's FIN */
	if ((buf = malloc(p->o.mode == PERF_READER ? PERF_CLIENT_BUF :
	    16)) == NULL) {
		perf_client_fail(r, "client: out of memory");
		goto done;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = p->o.addr;
	sin.sin_port = htons(r->port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perf_client_fail(r, "client: connect to %s:%u: %s",
		    inet_ntoa(p->o.addr), r->port, errno == EINPROGRESS ?
		    "timed out" : strerror(errno));
		goto done;
	}
	if (p->o.mode == PERF_READER)
		perf_client_read(r, fd, buf);
	else
		perf_client_write(r, fd, buf);
done:
	if (atomic_load(&r->abort) && r->client_err[0] == '\0')
		perf_client_fail(r, "client: aborted");
	/* the main thread closes the fd after the join: until then it may
	 * shut it down to unblock us */
	free(buf);
	atomic_store(&r->client_done, true);
	perf_wake(p);
	return NULL;
}

/* ---- the server on lwIP (stack path) --------------------------------- */

static void __attribute__((format(printf, 2, 3)))
perf_main_fail(struct perf_run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->main_err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(r->main_err, sizeof(r->main_err), fmt, ap);
		va_end(ap);
	}
	perf_run_check(r->p);
}

/* Forget the server pcb: clear its callbacks, then close or abort it. */
static void
perf_server_drop(struct perf_run *r, bool abort)
{
	struct tcp_pcb *pcb = r->pcb;

	if (pcb == NULL)
		return;
	r->pcb = NULL;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	if (abort || tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
}

/*
 * Reader mode: queue pattern bytes as far as the send buffer has room.
 * Only called from lwIP callbacks (accept, sent): tcp_input() runs
 * tcp_output() once they return, so calling it here would only walk the
 * queues twice.
 */
static void
perf_server_fill(struct perf_run *r)
{
	struct tcp_pcb *pcb = r->pcb;
	uint64_t total = r->p->o.bytes;
	u16_t mss = tcp_mss(pcb), chunk;
	size_t n;
	err_t err;

	/* whole segments per call, so no segment spans two calls */
	chunk = (u16_t)(mss > 0 ? (0xffff / mss) * mss : 0xffff);
	while (r->queued < total) {
		n = tcp_sndbuf(pcb);
		if (n == 0)
			break;
		if (n > chunk)
			n = chunk;
		if (n > total - r->queued)
			n = (size_t)(total - r->queued);
		/* no copy: the pattern is static and never changes */
		err = tcp_write(pcb, perf_source(&r->p->o, r->queued, n),
		    (u16_t)n, r->queued + n < total ? TCP_WRITE_FLAG_MORE : 0);
		if (err == ERR_MEM)
			break;		/* the sent callback comes back */
		if (err != ERR_OK) {
			perf_main_fail(r, "server: tcp_write: %s",
			    stack_strerr(err));
			return;
		}
		r->queued += n;
	}
	if (r->queued == total && !r->fin_sent &&
	    tcp_shutdown(pcb, 0, 1) == ERR_OK)
		r->fin_sent = true;
}

static err_t
perf_pcb_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct perf_run *r = arg;

	(void)pcb;
	if (r == NULL)
		return ERR_OK;
	r->server_moved += len;
	if (r->p->o.mode == PERF_READER)
		perf_server_fill(r);
	/* a failure aborted the pcb */
	return r->pcb == NULL ? ERR_ABRT : ERR_OK;
}

static err_t
perf_pcb_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct perf_run *r = arg;
	uint64_t total;
	struct pbuf *q;

	if (r == NULL) {
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	total = r->p->o.bytes;
	if (p == NULL) {
		/* the client's FIN */
		if (r->p->o.mode == PERF_WRITER ? r->server_moved != total :
		    !r->fin_sent) {
			perf_server_drop(r, true);
			perf_main_fail(r, "server: the client closed after "
			    "%llu of %llu bytes", (unsigned long long)
			    (r->p->o.mode == PERF_WRITER ? r->server_moved :
			    r->queued), (unsigned long long)total);
			return ERR_ABRT;
		}
		perf_server_drop(r, false);
		atomic_store(&r->server_done, true);
		perf_run_check(r->p);
		return ERR_OK;
	}
	if (err != ERR_OK) {
		pbuf_free(p);
		return ERR_OK;
	}
	if (r->p->o.mode == PERF_READER ||
	    r->server_moved + p->tot_len > total) {
		pbuf_free(p);
		perf_server_drop(r, true);
		perf_main_fail(r, "server: the client sent %s",
		    r->p->o.mode == PERF_READER ? "data in reader mode" :
		    "more bytes than expected");
		return ERR_ABRT;
	}
	for (q = p; q != NULL; q = q->next) {
		if (perf_verify("server", r->server_moved, q->payload, q->len,
		    r->server_err, sizeof(r->server_err)) == -1) {
			pbuf_free(p);
			perf_server_drop(r, true);
			perf_main_fail(r, "%s", r->server_err);
			return ERR_ABRT;
		}
		r->server_moved += q->len;
	}
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void
perf_pcb_err_cb(void *arg, err_t err)
{
	struct perf_run *r = arg;

	if (r == NULL)
		return;
	r->pcb = NULL;
	perf_main_fail(r, "server: connection %s after %llu bytes",
	    err == ERR_RST ? "reset" : stack_strerr(err),
	    (unsigned long long)r->server_moved);
}

static void	perf_tick_arm(struct perf *, struct perf_run *);

static err_t
perf_listen_accept_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct perf *p = arg;
	struct perf_run *r = p->run;

	if (err != ERR_OK || pcb == NULL)
		return ERR_VAL;
	if (r == NULL || r->finished || r->pcb != NULL ||
	    atomic_load(&r->accepted)) {
		/* not the connection we are waiting for */
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t_start);
	atomic_store(&r->accepted, true);
	r->pcb = pcb;
	stack_pcb_init(p->stack, pcb);
	tcp_arg(pcb, r);
	tcp_recv(pcb, perf_pcb_recv_cb);
	tcp_sent(pcb, perf_pcb_sent_cb);
	tcp_err(pcb, perf_pcb_err_cb);
	tcp_nagle_disable(pcb);
	perf_tick_arm(p, r);
	if (p->o.mode == PERF_READER)
		perf_server_fill(r);
	return r->pcb == NULL ? ERR_ABRT : ERR_OK;
}

static int
perf_listen(struct perf *p)
{
	struct tcp_pcb *pcb, *lpcb;
	uint16_t port = p->o.mode == PERF_READER ? PERF_PORT_READER :
	    PERF_PORT_WRITER;

	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_ANY)) == NULL)
		return -1;
	if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
		tcp_abort(pcb);
		return -1;
	}
	if ((lpcb = tcp_listen(pcb)) == NULL) {
		tcp_abort(pcb);
		return -1;
	}
	tcp_arg(lpcb, p);
	tcp_accept(lpcb, perf_listen_accept_cb);
	p->listener = lpcb;
	return 0;
}

/* ---- the SOCKS5 server (relay path) ---------------------------------- */

static int
perf_read_full(int fd, void *buf, size_t len)
{
	unsigned char *b = buf;
	ssize_t n;

	while (len > 0) {
		n = read(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
perf_write_full(int fd, const void *buf, size_t len)
{
	const unsigned char *b = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The server side of a SOCKS5 CONNECT with no authentication.  Returns the
 * requested port, or -1 with err set.  The reply is not sent yet.
 */
static int
perf_socks_handshake(int fd, char *err, size_t errlen)
{
	unsigned char b[262];
	static const unsigned char method[2] = { 5, 0 };
	size_t alen;
	int i;

	if (perf_read_full(fd, b, 2) == -1 || b[0] != 5 || b[1] == 0 ||
	    perf_read_full(fd, b + 2, b[1]) == -1) {
		snprintf(err, errlen, "socks5: bad greeting");
		return -1;
	}
	for (i = 0; i < b[1] && b[2 + i] != 0; i++)
		;
	if (i == b[1]) {
		snprintf(err, errlen, "socks5: no acceptable method offered");
		return -1;
	}
	if (perf_write_full(fd, method, sizeof(method)) == -1 ||
	    perf_read_full(fd, b, 4) == -1) {
		snprintf(err, errlen, "socks5: request: %s", strerror(errno));
		return -1;
	}
	if (b[0] != 5 || b[1] != 1 || b[2] != 0) {
		snprintf(err, errlen, "socks5: not a CONNECT request");
		return -1;
	}
	switch (b[3]) {
	case 1:
		alen = 4;
		break;
	case 4:
		alen = 16;
		break;
	case 3:
		if (perf_read_full(fd, b + 4, 1) == -1) {
			snprintf(err, errlen, "socks5: short request");
			return -1;
		}
		alen = b[4];
		break;
	default:
		snprintf(err, errlen, "socks5: bad address type %u", b[3]);
		return -1;
	}
	if (perf_read_full(fd, b + 5, alen + 2) == -1) {
		snprintf(err, errlen, "socks5: short request");
		return -1;
	}
	return (b[5 + alen] << 8) | b[6 + alen];
}

/* Reader mode: send the stream, then wait for the client's FIN. */
static int
perf_socks_source(struct perf_run *r, int fd, unsigned char *buf)
{
	uint64_t total = r->p->o.bytes;
	size_t len;
	ssize_t n;

	while (r->server_moved < total) {
		if (atomic_load_explicit(&r->abort, memory_order_relaxed))
			return -1;
		len = total - r->server_moved < PERF_CLIENT_BUF ?
		    (size_t)(total - r->server_moved) : PERF_CLIENT_BUF;
		n = write(fd, perf_source(&r->p->o, r->server_moved, len), len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(r->server_err, sizeof(r->server_err),
			    "socks5 server: write after %llu bytes: %s",
			    (unsigned long long)r->server_moved,
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		r->server_moved += (uint64_t)n;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		n = read(fd, buf, PERF_SOCKS_BUF);
		if (n == 0)
			return 0;
		if (n == -1 && errno == EINTR)
			continue;
		snprintf(r->server_err, sizeof(r->server_err),
		    "socks5 server: %s", n > 0 ? "the client sent data in "
		    "reader mode" : errno == EAGAIN ? "timed out waiting for "
		    "the client to close" : strerror(errno));
		return -1;
	}
}

/* Writer mode: take and check the stream until the client's FIN. */
static int
perf_socks_sink(struct perf_run *r, int fd, unsigned char *buf)
{
	uint64_t total = r->p->o.bytes;
	ssize_t n;

	for (;;) {
		if (atomic_load_explicit(&r->abort, memory_order_relaxed))
			return -1;
		n = read(fd, buf, PERF_SOCKS_BUF);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			break;
		if (n < 0) {
			snprintf(r->server_err, sizeof(r->server_err),
			    "socks5 server: read after %llu bytes: %s",
			    (unsigned long long)r->server_moved,
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return -1;
		}
		if (r->server_moved + (uint64_t)n > total) {
			snprintf(r->server_err, sizeof(r->server_err),
			    "socks5 server: the client sent more than %llu "
			    "bytes", (unsigned long long)total);
			return -1;
		}
		if (perf_verify("socks5 server", r->server_moved, buf,
		    (size_t)n, r->server_err, sizeof(r->server_err)) == -1)
			return -1;
		r->server_moved += (uint64_t)n;
	}
	if (r->server_moved != total) {
		snprintf(r->server_err, sizeof(r->server_err),
		    "socks5 server: the client closed after %llu of %llu bytes",
		    (unsigned long long)r->server_moved,
		    (unsigned long long)total);
		return -1;
	}
	return 0;
}

/* One connection from sluice's dialer: handshake, then the bytes. */
static void
perf_socks_serve(struct perf_socks *sk, int fd)
{
	/* VER, REP (0 or 5: refused), RSV, ATYP 1, BND.ADDR, BND.PORT */
	static const unsigned char ok[10] = { 5, 0, 0, 1 };
	static const unsigned char refused[10] = { 5, 5, 0, 1 };
	struct timeval tv = { PERF_IO_TIMEOUT, 0 };
	struct perf_run *r;
	struct perf *p;
	char err[PERF_ERR_MAX];
	int port;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((port = perf_socks_handshake(fd, err, sizeof(err))) == -1) {
		log_warnx("perf: %s", err);
		return;
	}
	pthread_mutex_lock(&sk->lock);
	r = sk->run;
	if (r != NULL && (atomic_load(&r->accepted) || port != r->port))
		r = NULL;
	if (r != NULL)
		sk->conn_fd = fd;
	pthread_mutex_unlock(&sk->lock);
	if (r == NULL) {
		log_warnx("perf: socks5 server: unexpected CONNECT to port %d",
		    port);
		perf_write_full(fd, refused, sizeof(refused));
		return;
	}
	if (perf_write_full(fd, ok, sizeof(ok)) == -1) {
		snprintf(r->server_err, sizeof(r->server_err),
		    "socks5 server: reply: %s", strerror(errno));
	} else {
		clock_gettime(CLOCK_MONOTONIC, &r->t_start);
		atomic_store(&r->accepted, true);
		perf_wake(r->p);
		if (r->p->o.mode == PERF_READER)
			perf_socks_source(r, fd, sk->buf);
		else
			perf_socks_sink(r, fd, sk->buf);
	}
	pthread_mutex_lock(&sk->lock);
	sk->conn_fd = -1;
	pthread_mutex_unlock(&sk->lock);
	shutdown(fd, SHUT_RDWR);
	/* the last touch of the run: the main thread may free it now */
	p = r->p;
	atomic_store(&r->server_done, true);
	perf_wake(p);
}

static void *
perf_socks_main(void *arg)
{
	struct perf_socks *sk = arg;
	struct pollfd pfd[2];
	int fd;

	pthread_setname_np(pthread_self(), "perf-socks");
	pfd[0].fd = sk->lfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = sk->stop_fd;
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, 1000) == -1 && errno != EINTR)
			break;
		if (pfd[1].revents != 0)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(sk->lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		perf_socks_serve(sk, fd);
		close(fd);
	}
	return NULL;
}

static int
perf_socks_start(struct perf *p)
{
	struct perf_socks *sk = &p->socks;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	if ((sk->buf = malloc(PERF_SOCKS_BUF)) == NULL)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((sk->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(sk->lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(sk->lfd, 16) == -1 ||
	    getsockname(sk->lfd, (struct sockaddr *)&sin, &slen) == -1) {
		log_error("perf: socks5 server on 127.0.0.1");
		return -1;
	}
	sk->port = ntohs(sin.sin_port);
	if ((sk->stop_fd = eventfd(0, EFD_CLOEXEC)) == -1) {
		log_error("perf: eventfd");
		return -1;
	}
	if (pthread_create(&sk->thread, NULL, perf_socks_main, sk) != 0) {
		log_errorx("perf: cannot start the socks5 server thread");
		return -1;
	}
	sk->started = true;
	return 0;
}

/* Stop the SOCKS5 thread (cutting a connection in progress) and free it. */
static void
perf_socks_stop(struct perf_socks *sk)
{
	uint64_t one = 1;

	if (sk->started) {
		pthread_mutex_lock(&sk->lock);
		if (sk->conn_fd != -1)
			shutdown(sk->conn_fd, SHUT_RDWR);
		pthread_mutex_unlock(&sk->lock);
		if (write(sk->stop_fd, &one, sizeof(one)) == -1)
			log_warn("perf: stop the socks5 server");
		pthread_join(sk->thread, NULL);
		sk->started = false;
	}
	if (sk->lfd != -1)
		close(sk->lfd);
	if (sk->stop_fd != -1)
		close(sk->stop_fd);
	sk->lfd = sk->stop_fd = -1;
	free(sk->buf);
	sk->buf = NULL;
}

/* ---- the run, on the main thread ------------------------------------- */

/* Print the interval lines due, iperf3-style, to stderr. */
static void
perf_tick_print(struct perf *p, struct perf_run *r, double now, bool last)
{
	uint64_t moved = atomic_load_explicit(&r->client_moved,
	    memory_order_relaxed);
	double from = r->tick_at - 1, to = last ? now : r->tick_at;
	uint64_t delta = moved - r->tick_bytes;

	if (p->o.quiet || to <= from)
		return;
	fprintf(stderr, "[%3u] %6.2f-%-6.2f sec %6.0f MBytes %6.2f Gbits/sec\n",
	    r->idx, from, to, (double)delta / (1024 * 1024),
	    perf_gbps(delta, to - from));
	r->tick_bytes = moved;
}

static void
perf_interval_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf *p = arg;
	struct perf_run *r = p->run;
	struct timespec now;
	struct timeval tv;
	double t, wait;

	(void)fd;
	(void)what;
	if (r == NULL || r->finished)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	t = perf_ts_diff(&r->t_start, &now);
	if (t >= r->tick_at) {
		perf_tick_print(p, r, t, false);
		r->tick_at += 1;
	}
	wait = r->tick_at - t;
	if (wait < 0.001)
		wait = 0.001;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	evtimer_add(p->tick_ev, &tv);
}

/* The server accepted: interval lines start now. */
static void
perf_tick_arm(struct perf *p, struct perf_run *r)
{
	struct timeval tv = { 1, 0 };

	r->tick_at = 1;
	if (!p->o.quiet) {
		fprintf(stderr, "[ ID] Interval           Transfer     "
		    "Bitrate\n");
		evtimer_add(p->tick_ev, &tv);
	}
}

/* The run is over, well or (failed) badly: stop the loop. */
static void
perf_run_finish(struct perf *p, struct perf_run *r, bool failed)
{
	int fd;

	if (r->finished)
		return;
	r->finished = true;
	evtimer_del(p->tick_ev);
	evtimer_del(p->deadline_ev);
	if (failed) {
		/* unblock the threads */
		atomic_store(&r->abort, true);
		if ((fd = atomic_load(&r->client_fd)) != -1)
			shutdown(fd, SHUT_RDWR);
		perf_server_drop(r, true);
		if (p->o.path == PERF_PATH_RELAY) {
			pthread_mutex_lock(&p->socks.lock);
			if (p->socks.conn_fd != -1)
				shutdown(p->socks.conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&p->socks.lock);
		}
	}
	event_base_loopbreak(p->base);
}

/* Look at what the threads reported; finish the run when it is over. */
static void
perf_run_check(struct perf *p)
{
	struct perf_run *r = p->run;
	bool cdone, sdone, failed;

	if (r == NULL || r->finished)
		return;
	if (atomic_load(&r->accepted) && p->o.path == PERF_PATH_RELAY &&
	    r->tick_at == 0)
		perf_tick_arm(p, r);
	/* a thread's error text is ours to read once its done flag is set */
	cdone = atomic_load(&r->client_done);
	sdone = atomic_load(&r->server_done);
	failed = r->main_err[0] != '\0' ||
	    (cdone && r->client_err[0] != '\0') ||
	    (sdone && r->server_err[0] != '\0');
	if (failed || (cdone && sdone))
		perf_run_finish(p, r, failed);
}

static void
perf_wake_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf *p = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("perf: eventfd");
	perf_run_check(p);
}

static void
perf_deadline_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf *p = arg;
	struct perf_run *r = p->run;

	(void)fd;
	(void)what;
	if (r == NULL || r->finished)
		return;
	perf_main_fail(r, "timed out after %u s (the client moved %llu of "
	    "%llu bytes)", p->o.timeout_s,
	    (unsigned long long)atomic_load(&r->client_moved),
	    (unsigned long long)p->o.bytes);
}

/* The first error of a run, or NULL. */
static const char *
perf_run_error(const struct perf_run *r)
{
	if (r->main_err[0] != '\0')
		return r->main_err;
	if (r->server_err[0] != '\0')
		return r->server_err;
	if (r->client_err[0] != '\0')
		return r->client_err;
	return NULL;
}

static void
perf_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void
perf_run_report(struct perf *p, struct perf_run *r, double secs, double gbps)
{
	const struct perf_opts *o = &p->o;
	const char *err = perf_run_error(r);
	struct stack_stats st;

	if (o->json) {
		stack_get_stats(p->stack, &st);
		printf("{\"type\":\"run\",\"run\":%u,\"mode\":\"%s\","
		    "\"path\":\"%s\",\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,"
		    "\"seconds\":%.6f,\"gbps\":%.3f,\"verified\":%s,"
		    "\"tun_rx_packets\":%llu,\"tun_tx_packets\":%llu,"
		    "\"tun_tx_dropped\":%llu",
		    r->idx, perf_mode_name(o->mode), perf_path_name(o->path),
		    o->mtu, p->tun.vnet_hdr ? "true" : "false",
		    (unsigned long long)o->bytes, secs, gbps,
		    err == NULL ? "true" : "false",
		    (unsigned long long)(st.rx_packets - r->st0.rx_packets),
		    (unsigned long long)(st.tx_packets - r->st0.tx_packets),
		    (unsigned long long)(st.tx_dropped - r->st0.tx_dropped));
		if (err != NULL) {
			printf(",\"error\":");
			perf_json_string(stdout, err);
		}
		printf("}\n");
	} else if (err == NULL) {
		printf("client io mode: %s, throughput: %.3f Gbps\n",
		    perf_mode_name(o->mode), gbps);
	}
	fflush(stdout);
}

/* One run: 0, or -1 (the error is printed). */
static int
perf_run_once(struct perf *p, unsigned idx)
{
	struct perf_run *r;
	struct timeval tv = { (time_t)p->o.timeout_s, 0 };
	pthread_t client;
	const char *err;
	double secs = 0, gbps = 0;
	int rc = -1;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		fprintf(stderr, "sluice: --perf: out of memory\n");
		return -1;
	}
	r->p = p;
	r->idx = idx;
	r->port = p->o.mode == PERF_READER ? PERF_PORT_READER :
	    PERF_PORT_WRITER;
	atomic_init(&r->client_fd, -1);
	stack_get_stats(p->stack, &r->st0);
	p->run = r;
	if (p->o.path == PERF_PATH_RELAY) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = r;
		pthread_mutex_unlock(&p->socks.lock);
	}
	evtimer_add(p->deadline_ev, &tv);
	if (pthread_create(&client, NULL, perf_client_main, r) != 0) {
		fprintf(stderr, "sluice: --perf: cannot start the client "
		    "thread\n");
		evtimer_del(p->deadline_ev);
		goto out;
	}
	if (event_base_dispatch(p->base) == -1)
		perf_main_fail(r, "event loop failed");
	if (!r->finished)
		perf_main_fail(r, "event loop ended early");
	pthread_join(client, NULL);
	if (atomic_load(&r->client_fd) != -1)
		close(atomic_load(&r->client_fd));
	if (p->o.path == PERF_PATH_RELAY) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = NULL;
		pthread_mutex_unlock(&p->socks.lock);
		/* a failed run may leave the socks5 thread on r: stop it
		 * before reading r's server half (or freeing r) */
		if (!atomic_load(&r->server_done))
			perf_socks_stop(&p->socks);
	}

	if ((err = perf_run_error(r)) == NULL) {
		secs = perf_ts_diff(&r->t_start, &r->t_end);
		gbps = perf_gbps(p->o.bytes, secs);
		perf_tick_print(p, r, secs, true);
		rc = 0;
	}
	perf_run_report(p, r, secs, gbps);
	if (err != NULL)
		fprintf(stderr, "sluice: --perf: %s run %u: %s\n",
		    perf_mode_name(p->o.mode), idx, err);
	p->gbps[idx - 1] = gbps;
out:
	if (p->o.path == PERF_PATH_RELAY && rc == -1)
		perf_socks_stop(&p->socks);
	p->run = NULL;
	free(r);
	return rc;
}

static int
perf_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
perf_summary(const struct perf *p)
{
	unsigned n = p->o.runs;
	double *v, med;

	if ((v = calloc(n, sizeof(*v))) == NULL)
		return;
	memcpy(v, p->gbps, n * sizeof(*v));
	qsort(v, n, sizeof(*v), perf_cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	if (p->o.json)
		printf("{\"type\":\"summary\",\"mode\":\"%s\",\"path\":\"%s\","
		    "\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,\"runs\":%u,"
		    "\"min\":%.3f,\"median\":%.3f,\"max\":%.3f,"
		    "\"threads\":1}\n",
		    perf_mode_name(p->o.mode), perf_path_name(p->o.path),
		    p->o.mtu, p->tun.vnet_hdr ? "true" : "false",
		    (unsigned long long)p->o.bytes, n, v[0], med, v[n - 1]);
	else if (n > 1)
		printf("client io mode: %s, runs: %u, throughput "
		    "min/median/max: %.3f/%.3f/%.3f Gbps\n",
		    perf_mode_name(p->o.mode), n, v[0], med, v[n - 1]);
	fflush(stdout);
	free(v);
}

/* ---- set-up and tear-down -------------------------------------------- */

static int
perf_relay_setup(struct perf *p)
{
	struct config c;
	struct flows_limits lim;
	char url[64], err[CONFIG_ERR_MAX];

	if (perf_socks_start(p) == -1)
		return -1;
	config_defaults(&c);
	snprintf(url, sizeof(url), "socks5://127.0.0.1:%u", p->socks.port);
	if (config_set(&c, "upstream", "url", url, err, sizeof(err)) == -1) {
		log_errorx("perf: %s", err);
		return -1;
	}
	if ((p->up = upstream_new(p->base, &c, err, sizeof(err))) == NULL) {
		log_errorx("perf: %s", err);
		return -1;
	}
	lim.max_flows = c.max_flows;
	lim.idle_timeout_ms = c.idle_timeout_ms;
	lim.flow_buffer = p->o.flow_buffer != 0 ? p->o.flow_buffer :
	    c.flow_buffer;
	if ((p->flows = flows_new(p->base, p->stack, p->up, &lim)) == NULL)
		return -1;
	return 0;
}

static int
perf_setup(struct perf *p)
{
	if (perf_netns_setup(p) == -1)
		return -1;
	log_init(p->o.log_level);
	if ((p->base = event_base_new()) == NULL) {
		log_errorx("perf: event_base_new failed");
		return -1;
	}
	if ((p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) {
		log_error("perf: eventfd");
		return -1;
	}
	p->wake_ev = event_new(p->base, p->wake_fd, EV_READ | EV_PERSIST,
	    perf_wake_read_cb, p);
	p->tick_ev = evtimer_new(p->base, perf_interval_timer_cb, p);
	p->deadline_ev = evtimer_new(p->base, perf_deadline_timer_cb, p);
	if (p->wake_ev == NULL || p->tick_ev == NULL ||
	    p->deadline_ev == NULL || event_add(p->wake_ev, NULL) == -1) {
		log_errorx("perf: cannot add events");
		return -1;
	}
	/* the tunnel's own set-up (main.c) */
	if ((p->stack = stack_new(p->base, p->tun.fd, p->o.mtu)) == NULL ||
	    (p->tun.vnet_hdr && stack_set_vnet_hdr(p->stack) == -1))
		return -1;
	if (p->o.path == PERF_PATH_STACK) {
		if (perf_listen(p) == -1) {
			log_errorx("perf: cannot listen on lwIP");
			return -1;
		}
		return 0;
	}
	return perf_relay_setup(p);
}

static void
perf_teardown(struct perf *p)
{
	if (p->listener != NULL) {
		tcp_arg(p->listener, NULL);
		tcp_accept(p->listener, NULL);
		tcp_close(p->listener);
		p->listener = NULL;
	}
	perf_socks_stop(&p->socks);
	flows_free(p->flows);
	/* libevent finalizes freed bufferevents in the loop: let it, or a
	 * flow still open here (a failed run) leaks its bufferevent */
	if (p->base != NULL)
		event_base_loop(p->base, EVLOOP_NONBLOCK);
	upstream_free(p->up);
	stack_free(p->stack);
	tun_close(&p->tun);
	if (p->wake_ev != NULL)
		event_free(p->wake_ev);
	if (p->tick_ev != NULL)
		event_free(p->tick_ev);
	if (p->deadline_ev != NULL)
		event_free(p->deadline_ev);
	if (p->wake_fd != -1)
		close(p->wake_fd);
	if (p->base != NULL)
		event_base_free(p->base);
	pthread_mutex_destroy(&p->socks.lock);
	free(p->gbps);
}

/* ---- command line ---------------------------------------------------- */

static void
perf_usage(FILE *f)
{
	fprintf(f,
"usage: sluice --perf reader|writer [options]\n"
"\n"
"Throughput self-benchmark.  A client thread moves bytes over a kernel TCP\n"
"socket through a TUN device to a server on sluice's own stack, in a\n"
"private network namespace sluice creates for itself (needs CAP_SYS_ADMIN\n"
"and CAP_NET_ADMIN; the host's network is never touched).  Every byte is\n"
"checked; a mismatch fails with exit status 1.\n"
"\n"
"  reader: the server writes, the client reads (port 1234)\n"
"  writer: the client writes, the server reads (port 1235)\n"
"\n"
"      --perf-bytes N        bytes per run (1e9)\n"
"      --perf-runs N         runs; more than one adds min/median/max (1)\n"
"      --perf-path PATH      stack: the server is lwIP's raw API (default)\n"
"                            relay: the flow relay and a SOCKS5 handshake to\n"
"                            an in-process SOCKS5 server that sources/sinks\n"
"      --perf-addr ADDR      IPv4 address the client connects to (198.18.0.2)\n"
"      --perf-timeout SEC    give up on a run after SEC seconds (120)\n"
"      --mtu N               TUN MTU, 576..65535 (1500)\n"
"      --tun-offload yes|no  TSO and checksum offloads on the TUN, as the\n"
"                            tunnel's [tun] offload (yes)\n"
"      --flow-buffer SIZE    relay path: buffer per flow (256k)\n"
"      --json                one JSON object per run, then a summary\n"
"      --quiet               no per-second interval lines on stderr\n"
"      --log-level LEVEL     debug, info, warn or error (warn)\n"
"      --perf-corrupt OFF    test only: flip the byte at stream offset OFF\n"
"                            at its source, to prove that the check works\n"
"  -h, --help                this help\n"
"\n"
"The data path runs on one thread (lwIP is one instance per process), so\n"
"there is no multi-threaded server mode yet: every figure is\n"
"single-threaded.\n");
}

/* "1000000000", "1e9", "50000000": a whole number 1..max. */
static bool
perf_parse_count(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	double d;
	unsigned long long u;

	errno = 0;
	u = strtoull(s, &end, 10);
	if (*s != '\0' && *s != '-' && *end == '\0' && errno == 0) {
		if (u < 1 || u > max)
			return false;
		*out = u;
		return true;
	}
	errno = 0;
	d = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || d < 1 ||
	    d > (double)max || d != floor(d))
		return false;
	*out = (uint64_t)d;
	return true;
}

enum {
	PERF_OPT_MODE = 1000,
	PERF_OPT_BYTES,
	PERF_OPT_RUNS,
	PERF_OPT_PATH,
	PERF_OPT_ADDR,
	PERF_OPT_TIMEOUT,
	PERF_OPT_MTU,
	PERF_OPT_OFFLOAD,
	PERF_OPT_FLOW_BUFFER,
	PERF_OPT_JSON,
	PERF_OPT_QUIET,
	PERF_OPT_LOG_LEVEL,
	PERF_OPT_CORRUPT,
};

static const struct option perf_longopts[] = {
	{ "perf",		required_argument,	NULL, PERF_OPT_MODE },
	{ "perf-bytes",		required_argument,	NULL, PERF_OPT_BYTES },
	{ "perf-runs",		required_argument,	NULL, PERF_OPT_RUNS },
	{ "perf-path",		required_argument,	NULL, PERF_OPT_PATH },
	{ "perf-addr",		required_argument,	NULL, PERF_OPT_ADDR },
	{ "perf-timeout",	required_argument,	NULL, PERF_OPT_TIMEOUT },
	{ "mtu",		required_argument,	NULL, PERF_OPT_MTU },
	{ "tun-offload",	required_argument,	NULL, PERF_OPT_OFFLOAD },
	{ "flow-buffer",	required_argument,	NULL, PERF_OPT_FLOW_BUFFER },
	{ "json",		no_argument,		NULL, PERF_OPT_JSON },
	{ "quiet",		no_argument,		NULL, PERF_OPT_QUIET },
	{ "log-level",		required_argument,	NULL, PERF_OPT_LOG_LEVEL },
	{ "perf-corrupt",	required_argument,	NULL, PERF_OPT_CORRUPT },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL,			0,			NULL, 0 },
};

/* Fill o from argv.  0, 1 (printed help: exit 0) or -1 (error printed). */
static int
perf_parse(int argc, char *argv[], struct perf_opts *o)
{
	struct config c;
	uint64_t v;
	bool have_mode = false;
	int ch;
	uint32_t a;
	size_t sz;

	config_defaults(&c);
	memset(o, 0, sizeof(*o));
	o->offload = c.offload;		/* as the tunnel */
	o->path = PERF_PATH_STACK;
	o->bytes = PERF_BYTES_DEFAULT;
	o->runs = 1;
	o->timeout_s = PERF_TIMEOUT_DEFAULT;
	o->mtu = 1500;
	o->log_level = LOG_LEVEL_WARN;
	inet_pton(AF_INET, "198.18.0.2", &o->addr);

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", perf_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case PERF_OPT_MODE:
			if (strcmp(optarg, "-h") == 0 ||
			    strcmp(optarg, "--help") == 0) {
				perf_usage(stdout);
				return 1;
			}
			if (strcmp(optarg, "reader") == 0)
				o->mode = PERF_READER;
			else if (strcmp(optarg, "writer") == 0)
				o->mode = PERF_WRITER;
			else
				goto bad_value;
			have_mode = true;
			break;
		case PERF_OPT_BYTES:
			if (!perf_parse_count(optarg, PERF_BYTES_MAX,
			    &o->bytes))
				goto bad_value;
			break;
		case PERF_OPT_RUNS:
			if (!perf_parse_count(optarg, PERF_RUNS_MAX, &v))
				goto bad_value;
			o->runs = (unsigned)v;
			break;
		case PERF_OPT_PATH:
			if (strcmp(optarg, "stack") == 0)
				o->path = PERF_PATH_STACK;
			else if (strcmp(optarg, "relay") == 0)
				o->path = PERF_PATH_RELAY;
			else
				goto bad_value;
			break;
		case PERF_OPT_ADDR:
			if (inet_pton(AF_INET, optarg, &o->addr) != 1)
				goto bad_value;
			a = ntohl(o->addr.s_addr);
			/* through the TUN: not lo, not the TUN's own address,
			 * not multicast or broadcast */
			if ((a >> 24) == 127 || (a >> 24) == 0 ||
			    a >= 0xe0000000 || a == 0xc6120001 ||
			    a == 0xc61200ff) {
				fprintf(stderr, "sluice: --perf-addr %s: must "
				    "be a unicast address reached through the "
				    "TUN device (not 198.18.0.1, lo or "
				    "multicast)\n", optarg);
				return -1;
			}
			break;
		case PERF_OPT_TIMEOUT:
			if (!perf_parse_count(optarg, 3600, &v))
				goto bad_value;
			o->timeout_s = (unsigned)v;
			break;
		case PERF_OPT_MTU:
			if (!perf_parse_count(optarg, 65535, &v) || v < 576)
				goto bad_value;
			o->mtu = (int)v;
			break;
		case PERF_OPT_OFFLOAD:
			if (strcmp(optarg, "yes") == 0)
				o->offload = true;
			else if (strcmp(optarg, "no") == 0)
				o->offload = false;
			else
				goto bad_value;
			break;
		case PERF_OPT_FLOW_BUFFER:
			if (!config_parse_size(optarg, &sz) || sz < 16384 ||
			    sz > 64 * 1024 * 1024)
				goto bad_value;
			o->flow_buffer = sz;
			break;
		case PERF_OPT_JSON:
			o->json = true;
			break;
		case PERF_OPT_QUIET:
			o->quiet = true;
			break;
		case PERF_OPT_LOG_LEVEL:
			if (!log_level_parse(optarg, &o->log_level))
				goto bad_value;
			break;
		case PERF_OPT_CORRUPT:
			errno = 0;
			v = strtoull(optarg, NULL, 10);
			if (errno != 0 || optarg[0] < '0' || optarg[0] > '9')
				goto bad_value;
			o->corrupt = true;
			o->corrupt_at = v;
			break;
		case 'h':
			perf_usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, "sluice: %s: needs a value\n",
			    argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "sluice: --perf: unknown option `%s'\n",
			    argv[optind - 1]);
			perf_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice: --perf: unexpected argument `%s'\n",
		    argv[optind]);
		return -1;
	}
	if (!have_mode) {
		fprintf(stderr, "sluice: --perf: reader or writer?\n");
		return -1;
	}
	if (o->corrupt && o->corrupt_at >= o->bytes) {
		fprintf(stderr, "sluice: --perf-corrupt: offset beyond "
		    "--perf-bytes\n");
		return -1;
	}
	return 0;

bad_value:
	fprintf(stderr, "sluice: %s: bad value `%s'\n", argv[optind - 1] ==
	    optarg ? argv[optind - 2] : argv[optind - 1], optarg);
	return -1;
}

int
perf_main(int argc, char *argv[])
{
	struct perf p;
	unsigned i;
	int rc;

	memset(&p, 0, sizeof(p));
	p.wake_fd = -1;
	p.tun.fd = -1;
	p.socks.lfd = p.socks.stop_fd = p.socks.conn_fd = -1;
	pthread_mutex_init(&p.socks.lock, NULL);
	if ((rc = perf_parse(argc, argv, &p.o)) != 0) {
		pthread_mutex_destroy(&p.socks.lock);
		return rc == 1 ? 0 : 1;
	}
	if ((p.gbps = calloc(p.o.runs, sizeof(*p.gbps))) == NULL) {
		pthread_mutex_destroy(&p.socks.lock);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	perf_pattern_init();

	rc = 1;
	if (perf_setup(&p) == -1)
		goto out;
	if (!p.o.quiet)
		fprintf(stderr, "sluice --perf: %s, %s path, %llu bytes x %u, "
		    "mtu %d%s, client -> %s:%u, data path on 1 thread\n",
		    perf_mode_name(p.o.mode), perf_path_name(p.o.path),
		    (unsigned long long)p.o.bytes, p.o.runs, p.o.mtu,
		    p.tun.vnet_hdr ? " with TSO/checksum offloads" :
		    " without offloads",
		    inet_ntoa(p.o.addr), p.o.mode == PERF_READER ?
		    PERF_PORT_READER : PERF_PORT_WRITER);
	for (i = 1; i <= p.o.runs; i++) {
		if (perf_run_once(&p, i) == -1)
			goto out;
	}
	if (p.o.runs > 1 || p.o.json)
		perf_summary(&p);
	rc = 0;
out:
	perf_teardown(&p);
	return rc;
}
