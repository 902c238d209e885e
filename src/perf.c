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
 *
 * This file runs the benchmark: set-up (namespace, event loop, stack,
 * server), each run's client thread, the wake-up, interval and deadline
 * events, and tear-down.  The other parts are listed in perf_int.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lwip/tcp.h"

#include "config.h"
#include "flow.h"
#include "log.h"
#include "perf.h"
#include "perf_int.h"
#include "stack.h"
#include "tun.h"
#include "upstream.h"

/* Tell the main loop that a thread has news (its done flag is set). */
void
perf_wake(struct perf *p)
{
	uint64_t one = 1;

	while (write(p->wake_fd, &one, sizeof(one)) == -1 && errno == EINTR)
		;
}

void __attribute__((format(printf, 2, 3)))
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

/* Bytes the clients of the current run have moved so far. */
static uint64_t
perf_client_moved(const struct perf *p)
{
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < p->nstreams; i++)
		sum += atomic_load_explicit(&p->streams[i]->client_moved,
		    memory_order_relaxed);
	return sum;
}

static void
perf_interval_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf *p = arg;
	struct timespec now;
	struct timeval tv;
	double t, wait;

	(void)fd;
	(void)what;
	if (p->nstreams == 0 || p->finished)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	t = perf_ts_diff(&p->t0, &now);
	if (t >= p->tick_at) {
		perf_tick_print(p, t, false);
		p->tick_at += 1;
	}
	wait = p->tick_at - t;
	if (wait < 0.001)
		wait = 0.001;
	tv.tv_sec = (time_t)wait;
	tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
	evtimer_add(p->tick_ev, &tv);
}

/*
 * The server accepted r: interval lines start now (a worker tells the
 * parent instead).
 */
void
perf_tick_arm(struct perf *p, struct perf_run *r)
{
	struct timeval tv = { 1, 0 };

	if (p->ctl_fd != -1) {
		perf_worker_check(p);
		return;
	}
	p->t0 = r->t_start;
	p->tick_at = 1;
	if (!p->o.quiet) {
		fprintf(stderr, "[ ID] Interval           Transfer     "
		    "Bitrate\n");
		evtimer_add(p->tick_ev, &tv);
	}
}

/* The run is over, well or (failed) badly: stop the loop. */
static void
perf_run_finish(struct perf *p, bool failed)
{
	struct perf_run *r;
	unsigned i;
	int fd;

	if (p->finished)
		return;
	p->finished = true;
	for (i = 0; i < p->nstreams; i++)
		p->streams[i]->finished = true;
	evtimer_del(p->tick_ev);
	evtimer_del(p->deadline_ev);
	if (failed) {
		/* unblock the threads; workers stop at tear-down */
		for (i = 0; i < p->nstreams; i++) {
			r = p->streams[i];
			atomic_store(&r->abort, true);
			if ((fd = atomic_load(&r->client_fd)) != -1)
				shutdown(fd, SHUT_RDWR);
		}
		if (p->run != NULL)
			perf_server_drop(p->run, true);
		if (p->o.path == PERF_PATH_RELAY && !PERF_PARENT(p)) {
			pthread_mutex_lock(&p->socks.lock);
			if (p->socks.conn_fd != -1)
				shutdown(p->socks.conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&p->socks.lock);
		}
	}
	event_base_loopbreak(p->base);
}

/* Look at what the threads reported; finish the run when it is over. */
void
perf_run_check(struct perf *p)
{
	struct perf_run *r;
	bool cdone, sdone, failed = false, done = true;
	unsigned i;

	if (p->ctl_fd != -1) {
		perf_worker_check(p);
		return;
	}
	if (p->nstreams == 0 || p->finished)
		return;
	for (i = 0; i < p->nstreams && p->tick_at == 0; i++)
		if (atomic_load(&p->streams[i]->accepted))
			perf_tick_arm(p, p->streams[i]);
	for (i = 0; i < p->nstreams; i++) {
		r = p->streams[i];
		/* a thread's error text is ours to read once its done flag
		 * is set */
		cdone = atomic_load(&r->client_done);
		sdone = atomic_load(&r->server_done);
		if (r->main_err[0] != '\0' ||
		    (cdone && r->client_err[0] != '\0') ||
		    (sdone && r->server_err[0] != '\0'))
			failed = true;
		if (!cdone || !sdone)
			done = false;
	}
	if (failed || done)
		perf_run_finish(p, failed);
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

	(void)fd;
	(void)what;
	if (p->nstreams == 0 || p->finished)
		return;
	perf_main_fail(p->streams[0], "timed out after %u s (the client%s "
	    "moved %llu of %llu bytes)", p->o.timeout_s,
	    p->nstreams > 1 ? "s" : "",
	    (unsigned long long)perf_client_moved(p),
	    (unsigned long long)p->o.bytes);
}

/* The first error of a run, or NULL. */
const char *
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

/*
 * The current run's error, or NULL: as perf_run_error() for one
 * connection, and the main thread's and servers' errors before the
 * clients' (which are often only "aborted" because of them).
 */
const char *
perf_error(const struct perf *p)
{
	unsigned i;

	for (i = 0; i < p->nstreams; i++)
		if (p->streams[i]->main_err[0] != '\0')
			return p->streams[i]->main_err;
	for (i = 0; i < p->nstreams; i++)
		if (p->streams[i]->server_err[0] != '\0')
			return p->streams[i]->server_err;
	for (i = 0; i < p->nstreams; i++)
		if (p->streams[i]->client_err[0] != '\0')
			return p->streams[i]->client_err;
	return NULL;
}

/* Free the current run's connections. */
static void
perf_streams_free(struct perf *p)
{
	unsigned i;

	for (i = 0; i < p->nstreams; i++)
		free(p->streams[i]);
	p->nstreams = 0;
	p->run = NULL;
}

/*
 * The connections of run idx: one, served here, or one per worker, each
 * with its share of the bytes and a source port that steers it to its
 * worker's queue.  0 or -1.
 */
static int
perf_streams_new(struct perf *p, unsigned idx)
{
	unsigned i, n = PERF_PARENT(p) ? p->o.workers : 1;
	struct perf_run *r;

	for (i = 0; i < n; i++) {
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			fprintf(stderr, "sluice: --perf: out of memory\n");
			perf_streams_free(p);
			return -1;
		}
		r->p = p;
		r->idx = idx;
		r->stream = i;
		r->port = p->o.mode == PERF_READER ? PERF_PORT_READER :
		    PERF_PORT_WRITER;
		r->bytes = p->o.bytes / n + (i < p->o.bytes % n ? 1 : 0);
		if (PERF_PARENT(p))
			r->sport = perf_client_port(p, idx, i);
		atomic_init(&r->client_fd, -1);
		p->streams[p->nstreams++] = r;
	}
	if (!PERF_PARENT(p)) {
		p->run = p->streams[0];
		stack_get_stats(p->stack, &p->run->st0);
	}
	p->finished = false;
	p->tick_at = 0;
	p->tick_bytes = 0;
	return 0;
}

/* One run: 0, or -1 (the error is printed). */
static int
perf_run_once(struct perf *p, unsigned idx)
{
	struct perf_run *r;
	struct timeval tv = { (time_t)p->o.timeout_s, 0 };
	struct timespec t_start, t_end;
	pthread_t client[PERF_WORKERS_MAX];
	unsigned i, started = 0;
	const char *err;
	double secs = 0, gbps = 0;
	int rc = -1;

	if (perf_streams_new(p, idx) == -1)
		return -1;
	if (p->o.path == PERF_PATH_RELAY && !PERF_PARENT(p)) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = p->run;
		pthread_mutex_unlock(&p->socks.lock);
	}
	if (PERF_PARENT(p) && perf_workers_run(p) == -1)
		goto out;
	evtimer_add(p->deadline_ev, &tv);
	for (i = 0; i < p->nstreams; i++) {
		if (pthread_create(&client[i], NULL, perf_client_main,
		    p->streams[i]) != 0)
			break;
		started++;
	}
	if (started < p->nstreams) {
		fprintf(stderr, "sluice: --perf: cannot start the client "
		    "thread\n");
		if (started == 0) {
			evtimer_del(p->deadline_ev);
			goto out;
		}
		perf_main_fail(p->streams[started], "cannot start the client "
		    "thread");
	}
	if (!p->finished && event_base_dispatch(p->base) == -1)
		perf_main_fail(p->streams[0], "event loop failed");
	if (!p->finished)
		perf_main_fail(p->streams[0], "event loop ended early");
	for (i = 0; i < started; i++)
		pthread_join(client[i], NULL);
	for (i = 0; i < p->nstreams; i++)
		if (atomic_load(&p->streams[i]->client_fd) != -1)
			close(atomic_load(&p->streams[i]->client_fd));
	if (p->o.path == PERF_PATH_RELAY && !PERF_PARENT(p)) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = NULL;
		pthread_mutex_unlock(&p->socks.lock);
		/* a failed run may leave the socks5 thread on r: stop it
		 * before reading r's server half (or freeing r) */
		if (!atomic_load(&p->run->server_done))
			perf_socks_stop(&p->socks);
	}

	if ((err = perf_error(p)) == NULL) {
		/* from the first accept to the last client's last byte */
		t_start = p->streams[0]->t_start;
		t_end = p->streams[0]->t_end;
		for (i = 1; i < p->nstreams; i++) {
			r = p->streams[i];
			if (perf_ts_diff(&r->t_start, &t_start) > 0)
				t_start = r->t_start;
			if (perf_ts_diff(&t_end, &r->t_end) > 0)
				t_end = r->t_end;
		}
		secs = perf_ts_diff(&t_start, &t_end);
		gbps = perf_gbps(p->o.bytes, secs);
		perf_tick_print(p, perf_ts_diff(&p->t0, &t_end), true);
		rc = 0;
	}
	perf_run_report(p, secs, gbps);
	if (err != NULL)
		fprintf(stderr, "sluice: --perf: %s run %u: %s\n",
		    perf_mode_name(p->o.mode), idx, err);
	p->gbps[idx - 1] = gbps;
out:
	if (p->o.path == PERF_PATH_RELAY && !PERF_PARENT(p) && rc == -1)
		perf_socks_stop(&p->socks);
	perf_streams_free(p);
	return rc;
}

/* ---- set-up and tear-down -------------------------------------------- */

/*
 * The relay path: the daemon's own tunnel (tunnel_new(), as main.c and
 * each worker wire it) on the TUN, to the in-process SOCKS5 server.
 */
static int
perf_relay_setup(struct perf *p)
{
	struct config *c = &p->relay_conf;
	char url[64], err[CONFIG_ERR_MAX];

	if (perf_socks_start(p) == -1)
		return -1;
	config_defaults(c);
	snprintf(url, sizeof(url), "socks5://127.0.0.1:%u", p->socks.port);
	if (config_set(c, "upstream", "url", url, err, sizeof(err)) == -1) {
		log_errorx("perf: %s", err);
		return -1;
	}
	c->mtu = p->o.mtu;
	c->udp = false;
	c->dns_mode = CONFIG_DNS_OFF;
	if (p->o.flow_buffer != 0)
		c->flow_buffer = p->o.flow_buffer;
	if ((p->up = upstream_new(p->base, c, err, sizeof(err))) == NULL) {
		log_errorx("perf: %s", err);
		return -1;
	}
	if ((p->tunnel = tunnel_new(p->base, p->tun.fd, p->tun.vnet_hdr, c,
	    p->up, NULL, NULL, NULL)) == NULL)
		return -1;
	p->stack = tunnel_stack(p->tunnel);
	return 0;
}

int
perf_loop_setup(struct perf *p)
{
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
	return 0;
}

int
perf_server_setup(struct perf *p)
{
	if (p->o.path == PERF_PATH_STACK) {
		/* lwIP alone, with a raw server of its own */
		if ((p->stack = stack_new(p->base, p->tun.fd, p->o.mtu)) ==
		    NULL || (p->tun.vnet_hdr &&
		    stack_set_vnet_hdr(p->stack) == -1))
			return -1;
		if (perf_listen(p) == -1) {
			log_errorx("perf: cannot listen on lwIP");
			return -1;
		}
		return 0;
	}
	return perf_relay_setup(p);
}

static int
perf_setup(struct perf *p)
{
	if (perf_netns_setup(p) == -1)
		return -1;
	log_init(p->o.log_level);
	if (p->o.workers > 1) {
		/* the workers set up their own loops, stacks and servers */
		if (perf_workers_start(p) == -1 ||
		    perf_loop_setup(p) == -1)
			return -1;
		return perf_workers_ready(p);
	}
	if (perf_loop_setup(p) == -1)
		return -1;
	return perf_server_setup(p);
}

void
perf_teardown(struct perf *p)
{
	if (p->listener != NULL) {
		tcp_arg(p->listener, NULL);
		tcp_accept(p->listener, NULL);
		tcp_close(p->listener);
		p->listener = NULL;
	}
	perf_socks_stop(&p->socks);
	if (p->tunnel != NULL) {
		/* it runs the loop to finalize the flows' bufferevents */
		tunnel_free(p->tunnel);
		p->stack = NULL;
	}
	upstream_free(p->up);
	stack_free(p->stack);
	perf_workers_stop(p);
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

int
perf_main(int argc, char *argv[])
{
	struct perf p;
	unsigned i;
	int rc;

	memset(&p, 0, sizeof(p));
	p.wake_fd = -1;
	p.ctl_fd = -1;
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
	if (!p.o.quiet && p.o.workers > 1)
		fprintf(stderr, "sluice --perf: %s, %s path, %llu bytes x %u, "
		    "mtu %d%s, %u clients -> %s:%u, data path on %u worker "
		    "processes (TUN queues%s)\n",
		    perf_mode_name(p.o.mode), perf_path_name(p.o.path),
		    (unsigned long long)p.o.bytes, p.o.runs, p.o.mtu,
		    p.tun.vnet_hdr ? " with TSO/checksum offloads" :
		    " without offloads", p.o.workers,
		    inet_ntoa(p.o.addr), p.o.mode == PERF_READER ?
		    PERF_PORT_READER : PERF_PORT_WRITER, p.o.workers,
		    p.steered ? ", client i steered to queue i" :
		    ", spread by the kernel's flow hash");
	else if (!p.o.quiet)
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
