/*
 * perf_worker.c - `sluice --perf --perf-workers N`: the data path on N
 * processes, one per queue of a multi-queue TUN device.
 *
 * lwIP is one instance per process, so after the shared set-up (namespace,
 * device, queues) the parent forks N workers.  Worker i keeps queue i's fd
 * and builds what the single-process benchmark has: an event loop, the
 * stack on its queue and the path's server (lwIP's raw API, or the relay
 * with its own in-process SOCKS5 server).  The parent keeps no queue and
 * runs the N client threads; connection i is steered to queue i (see
 * perf_netns.c), so every worker serves exactly one connection per run.
 *
 * Parent and worker talk over a SOCK_SEQPACKET socketpair, one message per
 * packet: the worker says READY once set up; per run the parent sends RUN
 * (the connection's bytes), the worker says READY for it (only then do the
 * clients connect) and later ACCEPTED (the server's
 * accept time, CLOCK_MONOTONIC, which both processes share) and DONE (bytes
 * moved, the first error, the stack's counters over the run).  A worker
 * exits when its socket reaches EOF: the parent closes it at tear-down, or
 * died (then PR_SET_PDEATHSIG kills the worker too).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "perf_int.h"
#include "stack.h"
#include "tun.h"

#define PERF_WORKER_READY_TIMEOUT	10000	/* ms to set up */
#define PERF_WORKER_EXIT_TIMEOUT	5000	/* ms to exit at tear-down */

enum perf_msg_type {
	PERF_MSG_READY = 1,	/* worker: set up (idx 0), or ready for run idx */
	PERF_MSG_RUN,		/* parent: serve run idx, `bytes' bytes */
	PERF_MSG_ACCEPTED,	/* worker: the server accepted at t_start */
	PERF_MSG_DONE,		/* worker: moved `bytes'; err, counters */
};

struct perf_msg {
	uint32_t		type;		/* enum perf_msg_type */
	uint32_t		idx;		/* the run, 1-based */
	uint64_t		bytes;
	struct timespec		t_start;
	uint64_t		rx_packets;	/* DONE: the stack over the run */
	uint64_t		tx_packets;
	uint64_t		tx_dropped;
	char			err[PERF_ERR_MAX];	/* DONE: "" when fine */
};

/* The parent's view of one worker. */
struct perf_worker {
	struct perf		*p;
	unsigned		 idx;		/* 0-based, = its queue */
	pid_t			 pid;		/* -1: reaped */
	int			 fd;		/* our end; -1 when closed */
	struct event		*ev;
};

/* One message: 0, or -1 (errno set). */
static int
perf_msg_send(int fd, const struct perf_msg *m)
{
	ssize_t n;

	do
		n = send(fd, m, sizeof(*m), MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(*m)) {
		if (n >= 0)
			errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

/* One message: 1, 0 at EOF, or -1 (errno set; EAGAIN: none yet). */
static int
perf_msg_recv(int fd, struct perf_msg *m)
{
	ssize_t n;

	do
		n = recv(fd, m, sizeof(*m), 0);
	while (n == -1 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n != (ssize_t)sizeof(*m)) {
		if (n >= 0)
			errno = EMSGSIZE;
		return -1;
	}
	m->err[sizeof(m->err) - 1] = '\0';
	return 1;
}

/* ---- the worker ------------------------------------------------------ */

/* Drop the connection of a finished run (the SOCKS5 thread is off it). */
static void
perf_worker_run_free(struct perf *p)
{
	if (p->run == NULL)
		return;
	if (p->o.path == PERF_PATH_RELAY) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = NULL;
		pthread_mutex_unlock(&p->socks.lock);
		if (!atomic_load(&p->run->server_done))
			perf_socks_stop(&p->socks);
	}
	perf_server_drop(p->run, true);
	free(p->run);
	p->run = NULL;
}

void
perf_worker_check(struct perf *p)
{
	struct perf_run *r = p->run;
	struct perf_msg m;
	struct stack_stats st;
	const char *err;
	bool sdone, failed;

	if (r == NULL || r->finished)
		return;
	memset(&m, 0, sizeof(m));
	m.idx = r->idx;
	if (!r->accept_sent && atomic_load(&r->accepted)) {
		r->accept_sent = true;
		m.type = PERF_MSG_ACCEPTED;
		m.t_start = r->t_start;
		if (perf_msg_send(p->ctl_fd, &m) == -1)
			log_warn("perf: worker %u: to the parent", p->self + 1);
	}
	/* the server half is ours to read once server_done is set */
	sdone = atomic_load(&r->server_done);
	failed = r->main_err[0] != '\0' ||
	    (sdone && r->server_err[0] != '\0');
	if (!failed && !sdone)
		return;
	r->finished = true;
	if (failed) {
		atomic_store(&r->abort, true);
		perf_server_drop(r, true);
		if (p->o.path == PERF_PATH_RELAY) {
			pthread_mutex_lock(&p->socks.lock);
			if (p->socks.conn_fd != -1)
				shutdown(p->socks.conn_fd, SHUT_RDWR);
			pthread_mutex_unlock(&p->socks.lock);
		}
	}
	m.type = PERF_MSG_DONE;
	m.t_start = r->t_start;
	/* a SOCKS5 thread still on the run owns server_moved */
	m.bytes = sdone || p->o.path == PERF_PATH_STACK ? r->server_moved : 0;
	if ((err = perf_run_error(r)) != NULL)
		snprintf(m.err, sizeof(m.err), "worker %u: %s", p->self + 1,
		    err);
	stack_get_stats(p->stack, &st);
	m.rx_packets = st.rx_packets - r->st0.rx_packets;
	m.tx_packets = st.tx_packets - r->st0.tx_packets;
	m.tx_dropped = st.tx_dropped - r->st0.tx_dropped;
	if (perf_msg_send(p->ctl_fd, &m) == -1)
		log_warn("perf: worker %u: to the parent", p->self + 1);
}

/* The parent: a run to serve, or EOF (stop). */
static void
perf_worker_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf *p = arg;
	struct perf_run *r;
	struct perf_msg m;
	int n;

	(void)what;
	if ((n = perf_msg_recv(fd, &m)) == -1 && errno == EAGAIN)
		return;
	if (n <= 0 || m.type != PERF_MSG_RUN) {
		if (n == -1)
			log_warn("perf: worker %u: from the parent",
			    p->self + 1);
		event_base_loopbreak(p->base);
		return;
	}
	/* the previous run is over: its lwIP callbacks have returned */
	perf_worker_run_free(p);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		log_errorx("perf: worker %u: out of memory", p->self + 1);
		event_base_loopbreak(p->base);
		return;
	}
	r->p = p;
	r->idx = m.idx;
	r->stream = p->self;
	r->port = p->o.mode == PERF_READER ? PERF_PORT_READER :
	    PERF_PORT_WRITER;
	r->bytes = m.bytes;
	atomic_init(&r->client_fd, -1);
	stack_get_stats(p->stack, &r->st0);
	p->run = r;
	if (p->o.path == PERF_PATH_RELAY) {
		pthread_mutex_lock(&p->socks.lock);
		p->socks.run = r;
		pthread_mutex_unlock(&p->socks.lock);
	}
	/* the parent starts the clients only now: a SYN read before this
	 * message would have met the previous run */
	memset(&m, 0, sizeof(m));
	m.type = PERF_MSG_READY;
	m.idx = r->idx;
	if (perf_msg_send(p->ctl_fd, &m) == -1)
		log_warn("perf: worker %u: to the parent", p->self + 1);
}

/* A worker's life: set up, serve runs until the parent closes.  Exits. */
static void __attribute__((noreturn))
perf_worker_main(struct perf *p)
{
	struct perf_msg m;
	struct event *ev = NULL;
	int rc = 1;

	if (perf_loop_setup(p) == -1 || perf_server_setup(p) == -1)
		goto out;
	if ((ev = event_new(p->base, p->ctl_fd, EV_READ | EV_PERSIST,
	    perf_worker_ctl_cb, p)) == NULL || event_add(ev, NULL) == -1) {
		log_errorx("perf: worker %u: cannot add events", p->self + 1);
		goto out;
	}
	memset(&m, 0, sizeof(m));
	m.type = PERF_MSG_READY;
	if (perf_msg_send(p->ctl_fd, &m) == -1)
		goto out;
	if (event_base_dispatch(p->base) == -1)
		log_errorx("perf: worker %u: event loop failed", p->self + 1);
	else
		rc = 0;
out:
	if (ev != NULL)
		event_free(ev);
	perf_worker_run_free(p);
	perf_teardown(p);
	close(p->ctl_fd);
	fflush(stderr);
	_exit(rc);
}

/* ---- the parent ------------------------------------------------------ */

/* A worker's message during a run: fill in its connection's server half. */
static void
perf_workers_ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct perf_worker *w = arg;
	struct perf *p = w->p;
	struct perf_run *r;
	struct perf_msg m;
	int n;

	(void)what;
	if ((n = perf_msg_recv(fd, &m)) == -1 && errno == EAGAIN)
		return;
	r = w->idx < p->nstreams ? p->streams[w->idx] : NULL;
	if (n <= 0) {
		/* it exited or failed: no more of it */
		event_del(w->ev);
		if (r != NULL && !p->finished)
			perf_main_fail(r, "worker %u: %s", w->idx + 1,
			    n == 0 ? "exited" : strerror(errno));
		return;
	}
	if (r == NULL || m.idx != r->idx || atomic_load(&r->server_done))
		return;
	switch (m.type) {
	case PERF_MSG_ACCEPTED:
		r->t_start = m.t_start;
		atomic_store(&r->accepted, true);
		break;
	case PERF_MSG_DONE:
		r->t_start = m.t_start;
		r->server_moved = m.bytes;
		snprintf(r->server_err, sizeof(r->server_err), "%s", m.err);
		r->st.rx_packets = m.rx_packets;
		r->st.tx_packets = m.tx_packets;
		r->st.tx_dropped = m.tx_dropped;
		atomic_store(&r->server_done, true);
		break;
	default:
		return;
	}
	perf_run_check(p);
}

int
perf_workers_start(struct perf *p)
{
	unsigned i, j, n = p->o.workers;
	int sv[2];
	pid_t parent = getpid(), pid;

	if ((p->workers = calloc(n, sizeof(*p->workers))) == NULL) {
		fprintf(stderr, "sluice: --perf: out of memory\n");
		return -1;
	}
	for (i = 0; i < n; i++) {
		p->workers[i].p = p;
		p->workers[i].idx = i;
		p->workers[i].pid = -1;
		p->workers[i].fd = -1;
	}
	/* nothing buffered twice */
	fflush(NULL);
	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) == -1) {
			log_error("perf: socketpair");
			return -1;
		}
		if ((pid = fork()) == -1) {
			log_error("perf: fork");
			close(sv[0]);
			close(sv[1]);
			return -1;
		}
		if (pid == 0) {
			/* the worker: its queue and its socket, nothing else */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			close(sv[0]);
			for (j = 0; j < i; j++)
				close(p->workers[j].fd);
			free(p->workers);
			p->workers = NULL;
			p->ctl_fd = sv[1];
			p->self = i;
			for (j = 0; j < (unsigned)p->tun.nqueues; j++)
				if (j != i)
					close(p->tun.queues[j]);
			p->tun.fd = p->tun.queues[i];
			p->tun.nqueues = 0;
			perf_worker_main(p);
		}
		close(sv[1]);
		p->workers[i].pid = pid;
		p->workers[i].fd = sv[0];
	}
	/* the parent keeps no queue: the workers' keep the device */
	tun_close(&p->tun);
	return 0;
}

/*
 * Wait (blocking, bounded) for every worker's READY for run idx (0: the
 * set-up).  0, or -1 (printed).
 */
static int
perf_workers_wait_ready(struct perf *p, unsigned idx)
{
	struct perf_worker *w;
	struct pollfd pfd;
	struct perf_msg m;
	unsigned i;
	int n, got;

	for (i = 0; i < p->o.workers; i++) {
		w = &p->workers[i];
		pfd.fd = w->fd;
		pfd.events = POLLIN;
		for (;;) {
			do
				n = poll(&pfd, 1, PERF_WORKER_READY_TIMEOUT);
			while (n == -1 && errno == EINTR);
			got = n == 1 ? perf_msg_recv(w->fd, &m) : -1;
			if (got == -1 && errno == EAGAIN)
				continue;
			/* nothing else is due now; skip it if it comes */
			if (got != 1 || (m.type == PERF_MSG_READY &&
			    m.idx == idx))
				break;
		}
		if (got != 1) {
			fprintf(stderr, "sluice: --perf: worker %u %s\n",
			    i + 1, n == 0 ? "does not answer" : "exited");
			return -1;
		}
	}
	return 0;
}

int
perf_workers_ready(struct perf *p)
{
	struct perf_worker *w;
	unsigned i;

	if (perf_workers_wait_ready(p, 0) == -1)
		return -1;
	for (i = 0; i < p->o.workers; i++) {
		w = &p->workers[i];
		if (evutil_make_socket_nonblocking(w->fd) == -1 ||
		    (w->ev = event_new(p->base, w->fd, EV_READ | EV_PERSIST,
		    perf_workers_ctl_cb, w)) == NULL ||
		    event_add(w->ev, NULL) == -1) {
			log_errorx("perf: cannot add events");
			return -1;
		}
	}
	return 0;
}

int
perf_workers_run(struct perf *p)
{
	struct perf_msg m;
	unsigned i;

	for (i = 0; i < p->nstreams; i++) {
		memset(&m, 0, sizeof(m));
		m.type = PERF_MSG_RUN;
		m.idx = p->streams[i]->idx;
		m.bytes = p->streams[i]->bytes;
		if (perf_msg_send(p->workers[i].fd, &m) == -1) {
			fprintf(stderr, "sluice: --perf: worker %u: %s\n",
			    i + 1, strerror(errno));
			return -1;
		}
	}
	return perf_workers_wait_ready(p, p->streams[0]->idx);
}

void
perf_workers_stop(struct perf *p)
{
	struct perf_worker *w;
	struct timespec t0, now;
	unsigned i, left;
	int status;

	if (p->workers == NULL)
		return;
	/* EOF on its socket stops a worker */
	for (i = 0; i < p->o.workers; i++) {
		w = &p->workers[i];
		if (w->ev != NULL)
			event_free(w->ev);
		w->ev = NULL;
		if (w->fd != -1)
			close(w->fd);
		w->fd = -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		left = 0;
		for (i = 0; i < p->o.workers; i++) {
			w = &p->workers[i];
			if (w->pid == -1)
				continue;
			if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
				if (!WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0)
					log_warnx("perf: worker %u exited "
					    "badly (status 0x%x)", i + 1,
					    (unsigned)status);
				w->pid = -1;
			} else
				left++;
		}
		if (left > 0)
			usleep(10000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (left > 0 &&
	    perf_ts_diff(&t0, &now) * 1000 < PERF_WORKER_EXIT_TIMEOUT);
	for (i = 0; i < p->o.workers; i++) {
		w = &p->workers[i];
		if (w->pid == -1)
			continue;
		log_warnx("perf: worker %u does not exit: killed", i + 1);
		kill(w->pid, SIGKILL);
		waitpid(w->pid, &status, 0);
		w->pid = -1;
	}
	free(p->workers);
	p->workers = NULL;
}
