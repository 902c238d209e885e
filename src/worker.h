/*
 * worker.h - [process] workers: one process per TUN queue.
 *
 * The daemon's first process (the master) sets everything up that is
 * shared: the multi-queue TUN device, routes, hooks, the metrics
 * listener, the privilege drop.  Then it forks one worker per queue; each
 * has its own event loop and its own lwIP (lwIP keeps its state in
 * globals, so one instance per process) and runs a tunnel (tunnel.h) on
 * its queue.  The kernel keeps every flow on one queue, so a flow lives
 * and dies in one worker.
 *
 * What must behave as one daemon goes through memory shared by all (an
 * anonymous MAP_SHARED mapping made before the first fork): each worker
 * publishes its open flows, buffered bytes and UDP associations there (so
 * max_flows, max_memory and [udp] max_flows hold for the sum) and its
 * counters (so the master logs and serves one set of numbers).  UDP
 * datagrams go to the worker that owns their source (udp.h).
 *
 * A worker that dies is forked again on the same queue; the others go on;
 * so is one whose loop stopped turning ([process] worker_timeout).
 * Its flows are lost (their clients get a RST on their next segment), its
 * counters are kept.  A worker whose TUN queue fails for good exits with
 * WORKER_EXIT_FATAL and the daemon stops, as one process would.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stdbool.h>
#include <sys/types.h>

#include <event2/event.h>

#include "flow.h"
#include "tunnel.h"
#include "udp.h"

#define WORKERS_MAX		16
#define WORKER_EXIT_FATAL	3	/* the TUN queue failed: stop all */

struct workers;

/* What one worker gets: its place among the others. */
struct worker_self {
	unsigned		 idx;		/* 0..n-1, also its queue */
	unsigned		 n;
	int			 queue_fd;
	struct flows_share	*flows;		/* n slots, shared */
	struct udps_share	*udps;
	const int		*steer_tx;	/* n sockets (udp.h) */
	int			 steer_rx;	/* ours */
	struct workers		*w;
};

/*
 * The body of a worker, in the child after fork: run until told to stop
 * (SIGTERM), publishing counters with worker_publish(); return the exit
 * status (0, or WORKER_EXIT_FATAL).
 */
typedef int (*workers_run_cb)(void *arg, const struct worker_self *self);

/*
 * Fork n workers (2..WORKERS_MAX) on queue_fds; restarts are timers on
 * the master's base.  NULL on error (logged; the workers already forked
 * are stopped).
 */
struct workers	*workers_new(struct event_base *base, unsigned n,
		    const int *queue_fds, workers_run_cb run, void *arg);
/*
 * Wait until every worker has published once (it is set up) or up to
 * timeout_ms; false when one is not.
 */
bool		 workers_wait_up(struct workers *w, unsigned timeout_ms);
/*
 * Stop them: SIGTERM, up to timeout_ms for them to close their flows and
 * exit, then SIGKILL.  Their last counters stay readable.
 */
void		 workers_stop(struct workers *w, unsigned timeout_ms);
void		 workers_free(struct workers *w);
/* On SIGCHLD: collect the workers that ended, and restart them. */
void		 workers_reap(struct workers *w);
/*
 * A worker whose loop has not turned for ms (it publishes every second)
 * is killed and started again; 0: never.  Default 0.
 */
void		 workers_set_timeout(struct workers *w, unsigned ms);
/* Send sig to every worker alive (SIGHUP: reload). */
void		 workers_signal(struct workers *w, int sig);
/* A worker's TUN queue failed: the daemon must stop, non-zero. */
bool		 workers_failed(const struct workers *w);
/*
 * The last non-zero exit status of a worker (a sanitizer's or valgrind's
 * error exit, say), or 0; a worker killed by a signal does not count.
 */
int		 workers_exit_code(const struct workers *w);
unsigned	 workers_count(const struct workers *w);
unsigned long long workers_restarts(const struct workers *w);
/* A worker's pid, or 0. */
pid_t		 workers_pid(const struct workers *w, unsigned i);

/*
 * Every worker's latest counters, summed (with those of workers that
 * died); per-worker ones to each[i] when not NULL.
 */
void		 workers_stats(struct workers *w, struct tunnel_stats *sum,
		    struct tunnel_stats *each);
/*
 * Ask every worker to publish now (SIGUSR1) and call done from the
 * master's loop once all have, or after a second.
 */
void		 workers_refresh(struct workers *w, void (*done)(void *),
		    void *arg);

/* In a worker: publish st (cheap; on a timer and on SIGUSR1). */
void		 worker_publish(const struct worker_self *self,
		    const struct tunnel_stats *st);

#endif
