/*
 * perf_socks.c - the in-process SOCKS5 server of the relay path of
 * `sluice --perf`: a thread with blocking sockets on 127.0.0.1 that takes
 * sluice's CONNECT for the current run's port (no authentication) and then
 * sources (reader mode) or sinks and checks (writer mode) the stream.
 * Connections for anything else are refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf_int.h"

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
	uint64_t total = r->bytes;
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
	uint64_t total = r->bytes;
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

int
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
void
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
