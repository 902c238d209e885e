/*
 * perf_int.h - what the parts of `sluice --perf` share: the options, one
 * run's state (written by the server side and the client thread, read by
 * the main thread), the whole benchmark's context, and the functions each
 * part offers the others.  Private to src/perf*.c; the public entry is
 * perf_main() in perf.h.
 *
 *   perf.c         orchestration: set-up, the runs, timers, tear-down
 *   perf_cli.c     the command line (usage, parsing)
 *   perf_netns.c   the private network namespace and its TUN device
 *   perf_pattern.c the byte pattern: source and check
 *   perf_client.c  the client thread (kernel TCP socket)
 *   perf_lwip.c    the server on lwIP's raw API (stack path)
 *   perf_socks.c   the in-process SOCKS5 server (relay path)
 *   perf_report.c  interval lines, per-run and summary output
 *   perf_worker.c  --perf-workers N: worker processes, one per TUN queue
 *
 * A run is one connection (struct perf_run) or, with --perf-workers N,
 * N connections at once: connection i is steered to TUN queue i, which
 * worker process i serves with a stack and server of its own; the parent
 * runs the client threads and learns the server halves over a socketpair.
 */
#ifndef SLUICE_PERF_INT_H
#define SLUICE_PERF_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "stack.h"
#include "tun.h"
#include "tunnel.h"

struct tcp_pcb;
struct upstream;
struct flows;
struct perf_worker;

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
#define PERF_WORKERS_MAX	TUN_QUEUES_MAX

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
	unsigned	 workers;	/* processes, one per TUN queue */
};

/*
 * One connection of a run.  The server side (main thread, or the SOCKS5
 * thread) and the client thread each fill in their half and then set their
 * done flag; the main thread reads a half only after it saw that flag.
 * With workers, the parent fills the server half in from the worker's
 * messages, and a worker never sees the client half.
 */
struct perf_run {
	struct perf		*p;
	unsigned		 idx;		/* 1-based */
	unsigned		 stream;	/* 0-based: the worker serving it */
	uint16_t		 port;
	uint16_t		 sport;		/* client's source port; 0: any */
	uint64_t		 bytes;		/* this connection's share */

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
	bool			 accept_sent;	/* worker: told the parent */
	struct stack_stats	 st0;
	struct stack_stats	 st;		/* workers: the run's counters */
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
	struct tunnel		*tunnel;	/* relay path */
	struct config		 relay_conf;	/* ... its configuration */
	struct perf_socks	 socks;
	int			 wake_fd;	/* eventfd: a thread has news */
	struct event		*wake_ev;
	struct event		*tick_ev;
	struct event		*deadline_ev;
	struct perf_run		*run;		/* the connection served here */
	double			*gbps;		/* per run */

	/* the current run: its connections (one, or one per worker) and its
	 * interval lines; main thread only */
	struct perf_run		*streams[PERF_WORKERS_MAX];
	unsigned		 nstreams;
	bool			 finished;
	struct timespec		 t0;		/* interval lines count from */
	double			 tick_at;	/* next interval line's end, s */
	uint64_t		 tick_bytes;

	/* --perf-workers N > 1 */
	struct perf_worker	*workers;	/* parent: o.workers of them */
	int			 ctl_fd;	/* worker: to the parent; else -1 */
	unsigned		 self;		/* worker: its index */
	bool			 steered;	/* queue i gets connection i */
};

/* Workers: is this the parent of worker processes? */
#define PERF_PARENT(p)	((p)->workers != NULL)

/* ---- small helpers ---- */

static inline double
perf_ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static inline double
perf_gbps(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
}

static inline const char *
perf_mode_name(enum perf_mode m)
{
	return m == PERF_READER ? "reader" : "writer";
}

static inline const char *
perf_path_name(enum perf_path p)
{
	return p == PERF_PATH_STACK ? "stack" : "relay";
}

/* perf.c */
/* Tell the main loop that a thread has news (its done flag is set). */
void	perf_wake(struct perf *p);
/* Main thread: fail the run with a message (the first one sticks). */
void	perf_main_fail(struct perf_run *r, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Main thread: the server accepted, interval lines start now. */
void	perf_tick_arm(struct perf *p, struct perf_run *r);
/* Main thread: finish the run if the threads' reports say it is over. */
void	perf_run_check(struct perf *p);
/* The first error of a run, or NULL. */
const char *perf_run_error(const struct perf_run *r);
/* The current run's error (over its connections), or NULL. */
const char *perf_error(const struct perf *p);
/* Event base, wake-up, interval and deadline events.  0 or -1 (logged). */
int	perf_loop_setup(struct perf *p);
/* The stack on p->tun.fd and the server of the path.  0 or -1 (logged). */
int	perf_server_setup(struct perf *p);
/* Undo perf_loop_setup, perf_server_setup and perf_netns_setup. */
void	perf_teardown(struct perf *p);

/* perf_cli.c */
/* Fill o from argv.  0, 1 (printed help: exit 0) or -1 (error printed). */
int	perf_parse(int argc, char *argv[], struct perf_opts *o);

/* perf_netns.c */
/*
 * A private network namespace with lo and the TUN device up; with workers
 * one queue each (p->tun.queues), steered by the client's source port
 * where the kernel allows.  0 or -1.
 */
int	perf_netns_setup(struct perf *p);
/* The client's source port for connection i of run idx (queue i). */
uint16_t perf_client_port(const struct perf *p, unsigned idx, unsigned i);

/* perf_pattern.c */
/* Fill the pattern; once, before any run. */
void	perf_pattern_init(void);
/* The len (<= PERF_CLIENT_BUF) bytes the source sends at offset off. */
const unsigned char *perf_source(const struct perf_opts *o, uint64_t off,
	    size_t len);
/* Check received bytes at offset off: 0, or -1 with err filled in. */
int	perf_verify(const char *who, uint64_t off, const void *buf,
	    size_t len, char *err, size_t errlen);

/* perf_client.c */
/* The client thread of one run (arg: the struct perf_run). */
void	*perf_client_main(void *arg);

/* perf_lwip.c */
/* Listen on lwIP for the mode's port (stack path).  0 or -1. */
int	perf_listen(struct perf *p);
/* Forget the run's server pcb: close it, or abort it. */
void	perf_server_drop(struct perf_run *r, bool abort);

/* perf_socks.c */
/* Start the SOCKS5 server thread on 127.0.0.1.  0 or -1 (logged). */
int	perf_socks_start(struct perf *p);
/* Stop it, cutting a connection in progress; safe to call twice. */
void	perf_socks_stop(struct perf_socks *sk);

/* perf_report.c */
/* Print the interval lines due, to stderr. */
void	perf_tick_print(struct perf *p, double now, bool last);
/* A run's lines (text) or objects (JSON) on stdout: with workers, one
 * per worker, then the run's total. */
void	perf_run_report(struct perf *p, double secs, double gbps);
/* min/median/max over the runs (text: only with several runs). */
void	perf_summary(const struct perf *p);

/* perf_worker.c */
/* Fork the workers, one per queue; returns in the parent only.  0 or -1. */
int	perf_workers_start(struct perf *p);
/* Parent: wait until every worker is ready, then watch them.  0 or -1. */
int	perf_workers_ready(struct perf *p);
/* Parent: hand run r's connections to the workers.  0 or -1. */
int	perf_workers_run(struct perf *p);
/* Parent: stop and reap the workers. */
void	perf_workers_stop(struct perf *p);
/* Worker: report accept and completion of its connection to the parent. */
void	perf_worker_check(struct perf *p);

#endif
