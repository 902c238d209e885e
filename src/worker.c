/*
 * worker.c - fork, watch and restart the worker processes, and the
 * memory they share with the master (see worker.h).
 *
 * Counters cross from a worker to the master through a slot per worker
 * guarded by a sequence count (a seqlock): the worker makes it odd,
 * copies, makes it even; the master copies until it reads the same even
 * count before and after.  A worker killed mid-copy leaves it odd; the
 * master then keeps what it had.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

/* Restart a worker that died this soon after it started only later. */
#define WORKER_QUICK_MS		1000
#define WORKER_BACKOFF_MAX_MS	5000
#define WORKER_STEER_BUF	(4 * 1024 * 1024)
/* How often the master looks for a worker whose loop stopped turning. */
#define WORKER_WATCH_MS		500
/* A check this late means the master itself did not run (stopped). */
#define WORKER_WATCH_LATE_MS	(4 * WORKER_WATCH_MS)

struct worker_slot {
	_Atomic unsigned	seq;	/* odd while the worker writes */
	_Atomic unsigned	gen;	/* publications so far */
	struct tunnel_stats	st;
};

struct workers_shm {
	struct flows_share	flows[WORKERS_MAX];
	struct udps_share	udps[WORKERS_MAX];
	struct worker_slot	slot[WORKERS_MAX];
};

struct worker_proc {
	struct workers		*w;
	unsigned		 idx;
	pid_t			 pid;		/* 0: not running */
	int			 queue_fd;
	int			 steer_rx;
	struct timespec		 started;
	unsigned		 quick_deaths;	/* in a row */
	struct event		*restart_ev;
	unsigned		 refresh_gen;
	unsigned		 seen_gen;	/* publications, last we looked */
	struct timespec		 seen_at;	/* when they last moved */
};

struct workers {
	struct event_base	*base;
	unsigned		 n;
	pid_t			 master;
	struct workers_shm	*shm;
	struct worker_proc	 p[WORKERS_MAX];
	int			 steer_tx[WORKERS_MAX];
	workers_run_cb		 run;
	void			*arg;
	bool			 stopping;
	bool			 failed;
	int			 exit_code;	/* a worker's non-zero exit */
	unsigned long long	 restarts;
	struct tunnel_stats	 retired;	/* of workers that died */
	struct event		*refresh_ev;
	unsigned		 refresh_ticks;
	struct event		*watch_ev;	/* stuck workers */
	unsigned		 stall_ms;	/* 0: never kill one */
	struct timespec		 watched_at;
	void			(*refresh_done)(void *);
	void			*refresh_arg;
};

/* Milliseconds from t to now. */
static long long
worker_ms_between(const struct timespec *t, const struct timespec *now)
{
	return (long long)(now->tv_sec - t->tv_sec) * 1000 +
	    (now->tv_nsec - t->tv_nsec) / 1000000;
}

static long long
worker_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return worker_ms_between(t, &now);
}

static void
worker_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* A consistent copy of slot i's counters; false when none could be had. */
static bool
worker_slot_read(const struct workers *w, unsigned i, struct tunnel_stats *st)
{
	const struct worker_slot *s = &w->shm->slot[i];
	unsigned a, b;

	for (int tries = 0; tries < 1000; tries++) {
		a = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (a & 1)
			continue;
		memcpy(st, &s->st, sizeof(*st));
		atomic_thread_fence(memory_order_acquire);
		b = atomic_load_explicit(&s->seq, memory_order_relaxed);
		if (a == b)
			return true;
	}
	return false;
}

void
worker_publish(const struct worker_self *self, const struct tunnel_stats *st)
{
	struct worker_slot *s = &self->w->shm->slot[self->idx];
	unsigned seq = atomic_load_explicit(&s->seq, memory_order_relaxed);

	atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(&s->st, st, sizeof(*st));
	atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
	atomic_fetch_add_explicit(&s->gen, 1, memory_order_release);
}

/* Start worker i: fork, and in the child run the body.  0 or -1. */
static int
workers_fork(struct workers *w, unsigned i)
{
	struct worker_proc *p = &w->p[i];
	struct worker_self self;
	char tag[24];
	pid_t pid;
	int rc;

	atomic_store(&w->shm->slot[i].gen, 0);
	if ((pid = fork()) == -1) {
		log_error("worker %u: fork", i);
		return -1;
	}
	if (pid > 0) {
		p->pid = pid;
		clock_gettime(CLOCK_MONOTONIC, &p->started);
		p->seen_gen = 0;
		p->seen_at = p->started;
		log_debug("worker %u: pid %ld on queue %u", i, (long)pid, i);
		return 0;
	}
	/* the child: die with the master, or the queues outlive it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != w->master)
		_exit(1);
	for (unsigned j = 0; j < w->n; j++) {
		if (j == i)
			continue;
		close(w->p[j].queue_fd);
		close(w->p[j].steer_rx);
	}
	signal(SIGCHLD, SIG_DFL);
	snprintf(tag, sizeof(tag), "worker %u", i);
	log_set_tag(tag);
	memset(&self, 0, sizeof(self));
	self.idx = i;
	self.n = w->n;
	self.queue_fd = p->queue_fd;
	self.flows = w->shm->flows;
	self.udps = w->shm->udps;
	self.steer_tx = w->steer_tx;
	self.steer_rx = p->steer_rx;
	self.w = w;
	rc = w->run(w->arg, &self);
	/* exit(), not _exit(): sanitizers check for leaks at exit, and the
	 * master's objects are still reachable from the frames below */
	fflush(NULL);
	exit(rc);
}

/* worker_how: how a worker ended, from its wait status, for the log. */
static void
worker_how(int status, char *how, size_t len)
{
	if (WIFEXITED(status))
		snprintf(how, len, "exited %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(how, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, len, "stopped (status %d)", status);
}

/*
 * Worker i was reaped (at start-up, in the loop or at stop) with status:
 * its pid is cleared, WORKER_EXIT_FATAL fails the daemon and another
 * non-zero exit (a sanitizer's 99) becomes its exit code; true for that.
 */
static bool
workers_exit_noted(struct workers *w, unsigned i, int status)
{
	w->p[i].pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 0)
		return false;
	if (WEXITSTATUS(status) == WORKER_EXIT_FATAL) {
		w->failed = true;
		return false;
	}
	w->exit_code = WEXITSTATUS(status);
	return true;
}

/* A worker is gone: fold its counters in; restart it unless stopping. */
static void
workers_reaped(struct workers *w, unsigned i, int status)
{
	struct worker_proc *p = &w->p[i];
	struct tunnel_stats st;
	char how[64];
	long long ms;

	worker_how(status, how, sizeof(how));
	(void)workers_exit_noted(w, i, status);
	if (w->stopping)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_FATAL) {
		log_errorx("worker %u %s: its TUN queue failed; stopping",
		    i, how);
		event_base_loopexit(w->base, NULL);
		return;
	}
	if (worker_slot_read(w, i, &st))
		tunnel_stats_add(&w->retired, &st, false);
	memset(&w->shm->slot[i], 0, sizeof(w->shm->slot[i]));
	atomic_store(&w->shm->flows[i].active, 0);
	atomic_store(&w->shm->flows[i].held, 0);
	atomic_store(&w->shm->udps[i].active, 0);
	w->restarts++;
	ms = worker_ms_since(&p->started);
	if (ms < WORKER_QUICK_MS)
		p->quick_deaths++;
	else
		p->quick_deaths = 0;
	ms = p->quick_deaths == 0 ? 0 : 100LL << (p->quick_deaths < 6 ?
	    p->quick_deaths : 6);
	if (ms > WORKER_BACKOFF_MAX_MS)
		ms = WORKER_BACKOFF_MAX_MS;
	log_warnx("worker %u %s: its flows are lost; starting it again%s",
	    i, how, ms > 0 ? " after a pause (it died right after start)" :
	    "");
	{
		struct timeval tv = { (time_t)(ms / 1000),
		    (suseconds_t)(ms % 1000) * 1000 };

		event_add(p->restart_ev, &tv);
	}
}

void
workers_reap(struct workers *w)
{
	int status;

	for (unsigned i = 0; i < w->n; i++) {
		if (w->p[i].pid == 0)
			continue;
		if (waitpid(w->p[i].pid, &status, WNOHANG) == w->p[i].pid)
			workers_reaped(w, i, status);
	}
}

static void
workers_restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker_proc *p = arg;

	(void)fd;
	(void)what;
	if (p->w->stopping || p->pid != 0)
		return;
	if (workers_fork(p->w, p->idx) == -1) {
		struct timeval tv = { 1, 0 };

		event_add(p->restart_ev, &tv);
	}
}

/*
 * Every WORKER_WATCH_MS: a worker's loop publishes its counters every
 * second (and while it sets up, not at all), so a worker whose count of
 * publications has not moved for stall_ms is stuck (a loop that never
 * returns, a deadlock, SIGSTOP): it gets SIGKILL, and the reaper starts
 * it again like any worker that died.  When the master's own check comes
 * late, the master was not running either (the whole group stopped, the
 * machine starved): the clocks start again rather than kill everyone.
 */
static void
workers_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workers *w = arg;
	struct worker_proc *p;
	struct timespec now;
	bool late;
	unsigned g;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	late = worker_ms_between(&w->watched_at, &now) > WORKER_WATCH_LATE_MS;
	w->watched_at = now;
	for (unsigned i = 0; i < w->n; i++) {
		p = &w->p[i];
		if (p->pid == 0 || w->stopping)
			continue;
		g = atomic_load(&w->shm->slot[i].gen);
		if (g != p->seen_gen || late || w->stall_ms == 0) {
			p->seen_gen = g;
			p->seen_at = now;
			continue;
		}
		if (worker_ms_between(&p->seen_at, &now) <
		    (long long)w->stall_ms)
			continue;
		log_warnx("worker %u (pid %ld) has not run its loop for %u "
		    "ms (worker_timeout): killing it", i, (long)p->pid,
		    w->stall_ms);
		kill(p->pid, SIGKILL);
		p->seen_at = now;	/* once: the reaper restarts it */
	}
}

void
workers_set_timeout(struct workers *w, unsigned ms)
{
	w->stall_ms = ms;
}

struct workers *
workers_new(struct event_base *base, unsigned n, const int *queue_fds,
    workers_run_cb run, void *arg)
{
	struct workers *w;
	unsigned i;
	int sv[2], sz = WORKER_STEER_BUF;

	if (n < 2 || n > WORKERS_MAX) {
		log_errorx("workers: %u: 2..%d", n, WORKERS_MAX);
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_error("workers: calloc");
		return NULL;
	}
	w->base = base;
	w->n = n;
	w->run = run;
	w->arg = arg;
	w->master = getpid();
	for (i = 0; i < WORKERS_MAX; i++) {
		w->p[i].queue_fd = -1;
		w->p[i].steer_rx = -1;
		w->steer_tx[i] = -1;
	}
	w->shm = mmap(NULL, sizeof(*w->shm), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->shm == MAP_FAILED) {
		log_error("workers: shared memory");
		w->shm = NULL;
		goto bad;
	}
	memset(w->shm, 0, sizeof(*w->shm));
	for (i = 0; i < n; i++) {
		w->p[i].queue_fd = queue_fds[i];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sv) == -1) {
			log_error("workers: socketpair");
			goto bad;
		}
		w->p[i].steer_rx = sv[0];
		w->steer_tx[i] = sv[1];
		if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &sz,
		    sizeof(sz)) == -1)
			(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz,
			    sizeof(sz));
		w->p[i].w = w;
		w->p[i].idx = i;
		if ((w->p[i].restart_ev = evtimer_new(base,
		    workers_restart_cb, &w->p[i])) == NULL)
			goto bad;
	}
	{
		struct timeval tv = { 0, WORKER_WATCH_MS * 1000 };

		clock_gettime(CLOCK_MONOTONIC, &w->watched_at);
		if ((w->watch_ev = event_new(base, -1, EV_PERSIST,
		    workers_watch_cb, w)) == NULL ||
		    event_add(w->watch_ev, &tv) == -1)
			goto bad;
	}
	for (i = 0; i < n; i++)
		if (workers_fork(w, i) == -1)
			goto bad;
	return w;
bad:
	workers_stop(w, 1000);
	workers_free(w);
	return NULL;
}

bool
workers_wait_up(struct workers *w, unsigned timeout_ms)
{
	struct timespec t0;
	char how[64];
	unsigned i;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (i = 0; i < w->n; i++)
			if (atomic_load(&w->shm->slot[i].gen) == 0)
				break;
		if (i == w->n)
			return true;
		if (w->p[i].pid == 0)
			return false;
		if (waitpid(w->p[i].pid, &status, WNOHANG) == w->p[i].pid) {
			/* reaped here, so workers_stop() must not wait
			 * for (or kill) that pid again */
			(void)workers_exit_noted(w, i, status);
			worker_how(status, how, sizeof(how));
			log_errorx("worker %u %s during start-up (its log "
			    "lines above say why)", i, how);
			return false;
		}
		if (worker_ms_since(&t0) > (long long)timeout_ms) {
			log_errorx("worker %u (pid %ld) not up after %u ms",
			    i, (long)w->p[i].pid, timeout_ms);
			return false;
		}
		worker_sleep_ms(5);
	}
}

void
workers_stop(struct workers *w, unsigned timeout_ms)
{
	struct timespec t0;
	bool alive;
	int status;

	if (w == NULL)
		return;
	w->stopping = true;
	workers_signal(w, SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		alive = false;
		for (unsigned i = 0; i < w->n; i++) {
			if (w->p[i].pid == 0)
				continue;
			if (waitpid(w->p[i].pid, &status, WNOHANG) ==
			    w->p[i].pid) {
				if (workers_exit_noted(w, i, status))
					log_warnx("worker %u exited %d", i,
					    w->exit_code);
			} else
				alive = true;
		}
		if (!alive)
			return;
		if (worker_ms_since(&t0) > (long long)timeout_ms)
			break;
		worker_sleep_ms(5);
	}
	for (unsigned i = 0; i < w->n; i++) {
		if (w->p[i].pid == 0)
			continue;
		log_warnx("worker %u (pid %ld) still running %u ms after "
		    "SIGTERM: killed", i, (long)w->p[i].pid, timeout_ms);
		kill(w->p[i].pid, SIGKILL);
		waitpid(w->p[i].pid, NULL, 0);
		w->p[i].pid = 0;
	}
}

void
workers_free(struct workers *w)
{
	if (w == NULL)
		return;
	for (unsigned i = 0; i < WORKERS_MAX; i++) {
		if (w->p[i].restart_ev != NULL)
			event_free(w->p[i].restart_ev);
		if (w->p[i].steer_rx != -1)
			close(w->p[i].steer_rx);
		if (w->steer_tx[i] != -1)
			close(w->steer_tx[i]);
	}
	if (w->refresh_ev != NULL)
		event_free(w->refresh_ev);
	if (w->watch_ev != NULL)
		event_free(w->watch_ev);
	if (w->shm != NULL)
		munmap(w->shm, sizeof(*w->shm));
	free(w);
}

void
workers_signal(struct workers *w, int sig)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->p[i].pid != 0)
			kill(w->p[i].pid, sig);
}

bool
workers_failed(const struct workers *w)
{
	return w->failed;
}

int
workers_exit_code(const struct workers *w)
{
	return w->exit_code;
}

unsigned
workers_count(const struct workers *w)
{
	return w->n;
}

unsigned long long
workers_restarts(const struct workers *w)
{
	return w->restarts;
}

pid_t
workers_pid(const struct workers *w, unsigned i)
{
	return i < w->n ? w->p[i].pid : 0;
}

void
workers_stats(struct workers *w, struct tunnel_stats *sum,
    struct tunnel_stats *each)
{
	struct tunnel_stats st;

	*sum = w->retired;
	for (unsigned i = 0; i < w->n; i++) {
		if (!worker_slot_read(w, i, &st))
			memset(&st, 0, sizeof(st));
		tunnel_stats_add(sum, &st, true);
		if (each != NULL)
			each[i] = st;
	}
}

static void
workers_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct workers *w = arg;
	struct timeval tv = { 0, 10 * 1000 };
	unsigned i;

	(void)fd;
	(void)what;
	for (i = 0; i < w->n; i++)
		if (w->p[i].pid != 0 && atomic_load(&w->shm->slot[i].gen) ==
		    w->p[i].refresh_gen)
			break;
	if (i < w->n && ++w->refresh_ticks < 100) {
		event_add(w->refresh_ev, &tv);
		return;
	}
	if (w->refresh_done != NULL)
		w->refresh_done(w->refresh_arg);
}

void
workers_refresh(struct workers *w, void (*done)(void *), void *arg)
{
	struct timeval tv = { 0, 10 * 1000 };

	if (w->refresh_ev == NULL && (w->refresh_ev = evtimer_new(w->base,
	    workers_refresh_cb, w)) == NULL) {
		done(arg);
		return;
	}
	for (unsigned i = 0; i < w->n; i++)
		w->p[i].refresh_gen = atomic_load(&w->shm->slot[i].gen);
	w->refresh_ticks = 0;
	w->refresh_done = done;
	w->refresh_arg = arg;
	workers_signal(w, SIGUSR1);
	event_add(w->refresh_ev, &tv);
}
