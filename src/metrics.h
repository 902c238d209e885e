/*
 * metrics.h - [metrics] listen: Prometheus text exposition (version
 * 0.0.4) at /metrics and a JSON summary at /status, served by libevent's
 * evhttp on the daemon's own event loop.
 *
 * The listener reads counters only; it takes GET and HEAD, nothing else.
 * It binds to loopback unless told otherwise: anything wider lets every
 * host that reaches it learn the traffic volume and the upstream's name.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <sys/types.h>

#include "tunnel.h"

struct metrics;

#define METRICS_WORKERS_MAX	16

/* What the listener shows, taken afresh for every request. */
struct metrics_snapshot {
	struct tunnel_stats	 st;		/* every worker's, summed */
	unsigned long long	 kernel_drops;	/* the TUN's queue */
	unsigned long long	 rss;		/* bytes, every process */
	unsigned long long	 fds;
	const char		*upstream;	/* upstream_name(), or NULL */
	unsigned		 nworkers;	/* 0 or 1: one process */
	unsigned long long	 restarts;
	struct {
		unsigned long long	accepted;
		unsigned long long	rx_packets;
	}			 w[METRICS_WORKERS_MAX];
};
typedef void (*metrics_get_cb)(void *arg, struct metrics_snapshot *s);

/*
 * Listen on addr (AF_INET/AF_INET6 with a port); every request asks get
 * for the numbers.  NULL with err on failure.
 */
struct metrics	*metrics_new(struct event_base *base,
		    const struct sockaddr *addr, metrics_get_cb get,
		    void *arg, char *err, size_t errlen);
void		 metrics_free(struct metrics *m);
/* Append the exposition of s to out.  0 or -1. */
int		 metrics_render(struct evbuffer *out,
		    const struct metrics_snapshot *s);
/* Resident bytes and open fds of pid (0: this process); 0 if unknown. */
unsigned long long metrics_rss(pid_t pid);
unsigned long long metrics_fds(pid_t pid);

#endif
