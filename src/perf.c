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
void
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
void
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
