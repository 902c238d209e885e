/*
 * udpblast.c - the UDP load generator and sink of tests/bench/udp.sh.
 *
 *   udpblast sink  -l ADDR:PORT [-r RUN] [-t MAX_S] [-i IDLE_MS] [-b RCVBUF]
 *   udpblast send  -d ADDR:PORT -s SIZE -R PPS -t SECS [-r RUN] [-w WARM_MS]
 *                  [-T TICK_US]
 *   udpblast socks -x PROXY:PORT -d ADDR:PORT -s SIZE -R PPS -t SECS [-r RUN]
 *                  [-w WARM_MS] [-T TICK_US] [-L LINGER_MS]
 *
 * send: plain UDP datagrams of SIZE payload bytes to ADDR:PORT (through a
 * TUN, for instance), paced at PPS datagrams a second (0: as fast as the
 * socket takes them) for SECS seconds.  socks: the same through a SOCKS5
 * server's UDP relay: an RFC 1928 UDP ASSOCIATE on a TCP connection to
 * PROXY, then every datagram with the 10-byte (IPv4; 22 for IPv6) SOCKS5
 * UDP request header in front, to the relay address the server answered;
 * the TCP connection is kept LINGER_MS (500) after the last datagram so
 * that the server does not end the association while its relay still
 * holds datagrams.  SIZE is the payload that reaches ADDR:PORT, header
 * excluded.
 *
 * Pacing: every TICK_US (100) microseconds the sender hands the kernel the
 * datagrams that are due since its start (sendmmsg), and sleeps between
 * ticks, so that on a small machine it leaves the CPUs to what it
 * measures.  Before the measured phase it sends one warm-up datagram
 * every 10 ms for WARM_MS (200), so that a relay that sets a session up on
 * the first datagram has done so; the sink counts those apart.
 *
 * Every payload starts with a 16-byte header: magic, run id (warm-up: the
 * run id with its top bit set) and sequence number.  The sink counts the
 * datagrams of run RUN (every run if RUN is 0) from the first one on until
 * none came for IDLE_MS (500), or MAX_S (60) seconds after its start, or
 * SIGTERM/SIGINT, then prints its counts.  It prints "ready" once bound.
 *
 * Output, one line of key=value pairs on stdout:
 *   send/socks: sent= bytes= secs= pps= errors= warm=
 *   sink:       received= bytes= warm= other= reordered= maxseq= span_ms=
 * bytes count payload bytes.  Exit status 0, or 1 on an error (stderr).
 *
 * Called with -benchtime (as `make bench` calls every bench binary) it says
 * what it is and exits 0: it measures nothing on its own.
 *
 * Every loop is bounded in time: SECS and MAX_S are at most 600.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define UB_MAGIC	0x55444221u	/* "UDB!" */
#define UB_HDR_LEN	16
#define UB_WARM_BIT	0x80000000u
#define UB_MAX_SECS	600
#define UB_MAX_PPS	100000000.0
#define UB_BATCH	256		/* datagrams per sendmmsg/recvmmsg */
#define UB_RECV_BUF	2048		/* per message; longer ones are counted, not read */
#define UB_SOCKS_HDR_MAX 22
#define UB_IO_TIMEOUT_S	5		/* SOCKS5 handshake: connect, each read and write */

enum ub_mode {
	UB_SINK,
	UB_SEND,
	UB_SOCKS
};

struct ub_opts {
	enum ub_mode		mode;
	struct sockaddr_storage	listen, dst, proxy;
	socklen_t		listen_len, dst_len, proxy_len;
	bool			have_listen, have_dst, have_proxy;
	size_t			size;
	double			pps;
	double			secs;
	uint32_t		run;
	int			warm_ms;
	int			tick_us;
	int			linger_ms;
	int			idle_ms;
	int			rcvbuf;
};

static volatile sig_atomic_t ub_stop;

static void
ub_signal_cb(int sig)
{
	(void)sig;
	ub_stop = 1;
}

static void
ub_usage(void)
{
	fprintf(stderr,
	    "usage: udpblast sink -l ADDR:PORT [-r RUN] [-t MAX_S] [-i IDLE_MS] [-b RCVBUF]\n"
	    "       udpblast send -d ADDR:PORT -s SIZE -R PPS -t SECS [-r RUN] [-w WARM_MS] [-T TICK_US]\n"
	    "       udpblast socks -x PROXY:PORT -d ADDR:PORT -s SIZE -R PPS -t SECS [-r RUN]\n"
	    "                      [-w WARM_MS] [-T TICK_US] [-L LINGER_MS]\n");
	exit(1);
}

static double
ub_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ub_sleep_until: sleep to the CLOCK_MONOTONIC time T (seconds). */
static void
ub_sleep_until(double t)
{
	struct timespec ts;

	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
	    !ub_stop)
		;
}

/* ub_parse_addr: "1.2.3.4:80" or "[::1]:80" into SS; false if malformed. */
static bool
ub_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = s;
	size_t hl;
	struct addrinfo hints, *res;
	char *end;
	unsigned long port;

	colon = strrchr(s, ':');
	if (colon == NULL || colon == s)
		return false;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']')
			return false;
		h = s + 1;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port == 0 || port > 65535)
		return false;
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return false;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	return true;
}

static bool
ub_parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

static int
ub_parse_int(const char *s, int lo, int hi)
{
	double v;

	if (!ub_parse_num(s, lo, hi, &v) || v != (double)(int)v) {
		fprintf(stderr, "udpblast: bad number: %s (want %d..%d)\n", s, lo, hi);
		exit(1);
	}
	return (int)v;
}

static void
ub_parse_args(int argc, char *argv[], struct ub_opts *o)
{
	int i;
	double v;

	memset(o, 0, sizeof(*o));
	o->secs = -1;
	o->pps = -1;
	o->warm_ms = 200;
	o->tick_us = 100;
	o->linger_ms = 500;
	o->idle_ms = 500;
	o->rcvbuf = 16 << 20;
	if (argc < 2)
		ub_usage();
	if (strcmp(argv[1], "sink") == 0)
		o->mode = UB_SINK;
	else if (strcmp(argv[1], "send") == 0)
		o->mode = UB_SEND;
	else if (strcmp(argv[1], "socks") == 0)
		o->mode = UB_SOCKS;
	else
		ub_usage();
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *val;

		if (a[0] != '-' || a[1] == '\0' || a[2] != '\0' || i + 1 >= argc)
			ub_usage();
		val = argv[++i];
		switch (a[1]) {
		case 'l':
			if (!ub_parse_addr(val, &o->listen, &o->listen_len))
				goto bad;
			o->have_listen = true;
			break;
		case 'd':
			if (!ub_parse_addr(val, &o->dst, &o->dst_len))
				goto bad;
			o->have_dst = true;
			break;
		case 'x':
			if (!ub_parse_addr(val, &o->proxy, &o->proxy_len))
				goto bad;
			o->have_proxy = true;
			break;
		case 's':
			o->size = (size_t)ub_parse_int(val, UB_HDR_LEN, 65507 - UB_SOCKS_HDR_MAX);
			break;
		case 'R':
			if (!ub_parse_num(val, 0, UB_MAX_PPS, &o->pps))
				goto bad;
			break;
		case 't':
			if (!ub_parse_num(val, 0.01, UB_MAX_SECS, &o->secs))
				goto bad;
			break;
		case 'r':
			if (!ub_parse_num(val, 0, UB_WARM_BIT - 1, &v) || v != (double)(uint32_t)v)
				goto bad;
			o->run = (uint32_t)v;
			break;
		case 'w':
			o->warm_ms = ub_parse_int(val, 0, 10000);
			break;
		case 'T':
			o->tick_us = ub_parse_int(val, 10, 100000);
			break;
		case 'L':
			o->linger_ms = ub_parse_int(val, 0, 60000);
			break;
		case 'i':
			o->idle_ms = ub_parse_int(val, 1, 60000);
			break;
		case 'b':
			o->rcvbuf = ub_parse_int(val, 4096, 1 << 30);
			break;
		default:
			ub_usage();
		}
		continue;
bad:
		fprintf(stderr, "udpblast: bad value for %s: %s\n", a, val);
		exit(1);
	}
	if (o->mode == UB_SINK) {
		if (!o->have_listen)
			ub_usage();
		if (o->secs < 0)
			o->secs = 60;
		return;
	}
	if (!o->have_dst || o->size == 0 || o->pps < 0 || o->secs < 0 ||
	    (o->mode == UB_SOCKS && !o->have_proxy))
		ub_usage();
	if (o->mode == UB_SEND && o->size > 65507)
		ub_usage();
}

/* ---- sink ---------------------------------------------------------------- */

static int
ub_sink(const struct ub_opts *o)
{
	struct mmsghdr msgs[UB_BATCH];
	struct iovec iov[UB_BATCH];
	static unsigned char bufs[UB_BATCH][UB_RECV_BUF];
	uint64_t received = 0, bytes = 0, warm = 0, other = 0, reordered = 0;
	uint64_t maxseq = 0, lastseq = 0;
	double start, first = 0, last = 0, now, until;
	struct pollfd pfd;
	int fd, i, n, one = 1;

	fd = socket(o->listen.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		perror("udpblast: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* beyond rmem_max when we may (root), so the sink is not what drops */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &o->rcvbuf, sizeof(o->rcvbuf)) == -1)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
	if (bind(fd, (const struct sockaddr *)&o->listen, o->listen_len) == -1) {
		perror("udpblast: bind");
		close(fd);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);

	for (i = 0; i < UB_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = UB_RECV_BUF;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	start = ub_now();
	while (!ub_stop) {
		now = ub_now();
		if (now - start >= o->secs)
			break;
		until = start + o->secs;
		if (received > 0 && last + o->idle_ms / 1000.0 < until)
			until = last + o->idle_ms / 1000.0;
		if (now >= until)
			break;
		n = poll(&pfd, 1, (int)((until - now) * 1000) + 1);
		if (n <= 0)
			continue;
		/* drain what is there, then look at the clock again */
		for (int rounds = 0; rounds < 64 && !ub_stop; rounds++) {
			memset(msgs, 0, sizeof(msgs));
			for (i = 0; i < UB_BATCH; i++) {
				msgs[i].msg_hdr.msg_iov = &iov[i];
				msgs[i].msg_hdr.msg_iovlen = 1;
			}
			n = recvmmsg(fd, msgs, UB_BATCH, MSG_TRUNC, NULL);
			if (n <= 0)
				break;
			now = ub_now();
			for (i = 0; i < n; i++) {
				const unsigned char *b = bufs[i];
				uint32_t magic, run;
				uint64_t seq;

				if (msgs[i].msg_len < UB_HDR_LEN) {
					other++;
					continue;
				}
				memcpy(&magic, b, 4);
				memcpy(&run, b + 4, 4);
				memcpy(&seq, b + 8, 8);
				magic = ntohl(magic);
				run = ntohl(run);
				if (magic != UB_MAGIC ||
				    (o->run != 0 && (run & ~UB_WARM_BIT) != o->run)) {
					other++;
					continue;
				}
				if (run & UB_WARM_BIT) {
					warm++;
					continue;
				}
				if (received == 0)
					first = now;
				else if (seq < lastseq)
					reordered++;
				received++;
				bytes += msgs[i].msg_len;
				lastseq = seq;
				if (seq > maxseq)
					maxseq = seq;
				last = now;
			}
			if (n < UB_BATCH)
				break;
		}
	}
	close(fd);
	printf("received=%" PRIu64 " bytes=%" PRIu64 " warm=%" PRIu64 " other=%" PRIu64
	    " reordered=%" PRIu64 " maxseq=%" PRIu64 " span_ms=%.0f\n",
	    received, bytes, warm, other, reordered, maxseq,
	    received > 0 ? (last - first) * 1000 : 0.0);
	return 0;
}

/* ---- SOCKS5 UDP ASSOCIATE ------------------------------------------------ */

static int
ub_write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
ub_read_all(int fd, unsigned char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* ub_put_addr: ATYP, address and port of SS at P; returns the length. */
static size_t
ub_put_addr(unsigned char *p, const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		p[0] = 0x01;
		memcpy(p + 1, &sin->sin_addr, 4);
		memcpy(p + 5, &sin->sin_port, 2);
		return 7;
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		p[0] = 0x04;
		memcpy(p + 1, &sin6->sin6_addr, 16);
		memcpy(p + 17, &sin6->sin6_port, 2);
		return 19;
	}
}

/*
 * ub_socks_associate: the UDP ASSOCIATE of O on a new TCP connection
 * (*TCP, kept open by the caller), from a new UDP socket (*UDP, connected
 * to the relay address the server answered).  0, or -1 with a message.
 */
static int
ub_socks_associate(const struct ub_opts *o, int *tcp, int *udp)
{
	struct timeval tv = { UB_IO_TIMEOUT_S, 0 };
	struct sockaddr_storage local, relay;
	socklen_t llen = sizeof(local), rlen;
	unsigned char req[32], rep[32];
	size_t n;
	int t = -1, u = -1;
	const char *what;

	t = socket(o->proxy.ss_family, SOCK_STREAM, 0);
	what = "tcp socket";
	if (t == -1)
		goto bad;
	setsockopt(t, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	what = "connect to the proxy";
	if (connect(t, (const struct sockaddr *)&o->proxy, o->proxy_len) == -1)
		goto bad;
	/* greeting: version 5, one method, "no authentication" */
	what = "greeting";
	if (ub_write_all(t, (const unsigned char *)"\x05\x01\x00", 3) == -1 ||
	    ub_read_all(t, rep, 2) == -1)
		goto bad;
	if (rep[0] != 0x05 || rep[1] != 0x00) {
		fprintf(stderr, "udpblast: proxy refused method 'none' (%02x %02x)\n",
		    rep[0], rep[1]);
		goto out;
	}
	/* our UDP socket on the address the TCP connection left from */
	what = "getsockname";
	if (getsockname(t, (struct sockaddr *)&local, &llen) == -1)
		goto bad;
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	what = "udp socket";
	u = socket(local.ss_family, SOCK_DGRAM, 0);
	if (u == -1 || bind(u, (struct sockaddr *)&local, llen) == -1 ||
	    getsockname(u, (struct sockaddr *)&local, &llen) == -1)
		goto bad;
	/* UDP ASSOCIATE, DST = the address and port we will send from */
	req[0] = 0x05;
	req[1] = 0x03;
	req[2] = 0x00;
	n = 3 + ub_put_addr(req + 3, &local);
	what = "udp associate";
	if (ub_write_all(t, req, n) == -1 || ub_read_all(t, rep, 4) == -1)
		goto bad;
	if (rep[0] != 0x05 || rep[1] != 0x00) {
		fprintf(stderr, "udpblast: proxy refused UDP ASSOCIATE (reply %u)\n", rep[1]);
		goto out;
	}
	memset(&relay, 0, sizeof(relay));
	if (rep[3] == 0x01) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&relay;

		if (ub_read_all(t, rep + 4, 6) == -1)
			goto bad;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, rep + 4, 4);
		memcpy(&sin->sin_port, rep + 8, 2);
		rlen = sizeof(*sin);
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY) &&
		    o->proxy.ss_family == AF_INET)
			sin->sin_addr = ((const struct sockaddr_in *)&o->proxy)->sin_addr;
	} else if (rep[3] == 0x04) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&relay;

		if (ub_read_all(t, rep + 4, 18) == -1)
			goto bad;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, rep + 4, 16);
		memcpy(&sin6->sin6_port, rep + 20, 2);
		rlen = sizeof(*sin6);
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) &&
		    o->proxy.ss_family == AF_INET6)
			sin6->sin6_addr = ((const struct sockaddr_in6 *)&o->proxy)->sin6_addr;
	} else {
		fprintf(stderr, "udpblast: relay address of type %u not supported\n", rep[3]);
		goto out;
	}
	what = "connect to the relay";
	if (connect(u, (struct sockaddr *)&relay, rlen) == -1)
		goto bad;
	*tcp = t;
	*udp = u;
	return 0;
bad:
	fprintf(stderr, "udpblast: %s: %s\n", what, errno ? strerror(errno) : "connection closed");
out:
	if (u != -1)
		close(u);
	if (t != -1)
		close(t);
	return -1;
}

/* ---- senders ------------------------------------------------------------- */

struct ub_tx {
	int		 fd;
	unsigned char	*buf;		/* UB_BATCH datagrams, each hdr + size */
	size_t		 hdr;		/* SOCKS5 header length, or 0 */
	size_t		 size;		/* payload */
	uint32_t	 run;
	uint64_t	 seq;
	uint64_t	 sent, errors;
};

/* ub_tx_batch: hand the kernel N (<= UB_BATCH) datagrams of run RUN; one
 * the kernel refuses (ECONNREFUSED after an ICMP error, ENOBUFS, ...) is
 * counted as an error and not sent again.  Returns how many it took. */
static int
ub_tx_batch(struct ub_tx *tx, int n, uint32_t run)
{
	struct mmsghdr msgs[UB_BATCH];
	struct iovec iov[UB_BATCH];
	size_t dlen = tx->hdr + tx->size;
	int i, taken = 0, r;

	memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)n);
	for (i = 0; i < n; i++) {
		unsigned char *p = tx->buf + (size_t)i * dlen + tx->hdr;
		uint32_t v;
		uint64_t seq = tx->seq + (uint64_t)i;

		v = htonl(UB_MAGIC);
		memcpy(p, &v, 4);
		v = htonl(run);
		memcpy(p + 4, &v, 4);
		memcpy(p + 8, &seq, 8);
		iov[i].iov_base = tx->buf + (size_t)i * dlen;
		iov[i].iov_len = dlen;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	i = 0;
	while (i < n && !ub_stop) {
		r = sendmmsg(tx->fd, msgs + i, (unsigned)(n - i), 0);
		if (r > 0) {
			i += r;
			taken += r;
		} else if (r == -1 && errno == EINTR) {
			continue;
		} else {
			tx->errors++;
			i++;
		}
	}
	tx->seq += (uint64_t)i;
	tx->sent += (uint64_t)taken;
	return taken;
}

static int
ub_send(const struct ub_opts *o)
{
	struct ub_tx tx;
	int tcp = -1, sndbuf = 4 << 20, rc = 1, k;
	double t0, now, next, end, warm_end, tick = o->tick_us / 1e6, secs;
	double want, cap;
	uint64_t due, warm_sent;
	unsigned char sh[UB_SOCKS_HDR_MAX];

	memset(&tx, 0, sizeof(tx));
	tx.fd = -1;
	tx.size = o->size;
	tx.run = o->run;
	if (o->mode == UB_SOCKS) {
		if (ub_socks_associate(o, &tcp, &tx.fd) == -1)
			return 1;
		/* RSV RSV FRAG, then the destination */
		sh[0] = sh[1] = sh[2] = 0;
		tx.hdr = 3 + ub_put_addr(sh + 3, &o->dst);
	} else {
		tx.fd = socket(o->dst.ss_family, SOCK_DGRAM, 0);
		if (tx.fd == -1 ||
		    connect(tx.fd, (const struct sockaddr *)&o->dst, o->dst_len) == -1) {
			perror("udpblast: udp socket");
			goto out;
		}
	}
	if (setsockopt(tx.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) == -1)
		setsockopt(tx.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	tx.buf = calloc(UB_BATCH, tx.hdr + tx.size);
	if (tx.buf == NULL) {
		perror("udpblast: calloc");
		goto out;
	}
	for (k = 0; k < UB_BATCH; k++)
		memcpy(tx.buf + (size_t)k * (tx.hdr + tx.size), sh, tx.hdr);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	/* warm-up: one datagram every 10 ms, not counted by the sink */
	warm_end = ub_now() + o->warm_ms / 1000.0;
	while (!ub_stop && ub_now() < warm_end) {
		ub_tx_batch(&tx, 1, tx.run | UB_WARM_BIT);
		ub_sleep_until(ub_now() + 0.01);
	}
	warm_sent = tx.sent;
	tx.sent = tx.errors = tx.seq = 0;

	/* at most a few ticks' worth at once when behind: no unbounded burst */
	cap = o->pps * tick * 4;
	if (cap < UB_BATCH)
		cap = UB_BATCH;
	t0 = ub_now();
	end = t0 + o->secs;
	next = t0;
	while (!ub_stop) {
		now = ub_now();
		if (now >= end)
			break;
		if (o->pps > 0)
			due = (uint64_t)(o->pps * (now - t0)) + 1;
		else
			due = tx.seq + UB_BATCH;
		want = due > tx.seq ? (double)(due - tx.seq) : 0;
		if (want > cap)
			want = cap;
		while (want >= 1 && !ub_stop) {
			k = want > UB_BATCH ? UB_BATCH : (int)want;
			ub_tx_batch(&tx, k, tx.run);
			want -= k;
		}
		if (o->pps > 0) {
			next += tick;
			if (next < now)
				next = now;	/* behind: no sleep */
			ub_sleep_until(next);
		}
	}
	secs = ub_now() - t0;
	printf("sent=%" PRIu64 " bytes=%" PRIu64 " secs=%.3f pps=%.0f errors=%" PRIu64
	    " warm=%" PRIu64 "\n", tx.sent, tx.sent * (uint64_t)tx.size, secs,
	    secs > 0 ? (double)tx.sent / secs : 0.0, tx.errors, warm_sent);
	fflush(stdout);
	rc = 0;
	/* the association ends with its TCP connection: let the relay drain */
	if (tcp != -1 && o->linger_ms > 0)
		ub_sleep_until(ub_now() + o->linger_ms / 1000.0);
out:
	free(tx.buf);
	if (tx.fd != -1)
		close(tx.fd);
	if (tcp != -1)
		close(tcp);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct ub_opts o;
	struct sigaction sa;

	if (argc >= 2 && strcmp(argv[1], "-benchtime") == 0) {
		printf("udpblast: the load generator of tests/bench/udp.sh, "
		    "no benchmark of its own (run tests/bench/udp.sh)\n");
		return 0;
	}
	ub_parse_args(argc, argv, &o);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ub_signal_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o.mode == UB_SINK)
		return ub_sink(&o);
	return ub_send(&o);
}
