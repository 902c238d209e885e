/*
 * perf_client.c - the client thread of a `sluice --perf` run: an ordinary
 * blocking kernel TCP socket to --perf-addr through the TUN device, which
 * reads and checks the stream (reader mode) or writes it (writer mode),
 * then waits for the server's FIN.  Every blocking call gives up after
 * PERF_IO_TIMEOUT; the main thread may shut the socket down to unblock it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf_int.h"

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
			    "%llu bytes", (unsigned long long)r->bytes);
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
	uint64_t total = r->bytes, got = 0;
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
	uint64_t total = r->bytes, put = 0;
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

void *
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
	/* with workers, the source port picks the TUN queue */
	sin.sin_port = htons(r->sport);
	if (r->sport != 0 &&
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perf_client_fail(r, "client: bind to port %u: %s", r->sport,
		    strerror(errno));
		goto done;
	}
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
