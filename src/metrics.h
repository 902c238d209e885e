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

struct dnsfwd;
struct fakeip;
struct flows;
struct metrics;
struct stack;
struct udps;
struct upstream;

/* Where the numbers come from; any but stack and flows may be NULL. */
struct metrics_sources {
	struct stack	*stack;
	struct flows	*flows;
	struct udps	*udps;
	struct dnsfwd	*dnsfwd;
	struct fakeip	*fakeip;
	struct upstream	**up;		/* the current one (reloads swap it) */
	const char	*tun_name;	/* for the kernel's drops; or NULL */
};

/*
 * Listen on addr (AF_INET/AF_INET6 with a port).  src must outlive the
 * metrics.  NULL with err on failure.
 */
struct metrics	*metrics_new(struct event_base *base,
		    const struct sockaddr *addr,
		    const struct metrics_sources *src, char *err,
		    size_t errlen);
void		 metrics_free(struct metrics *m);
/* Append the exposition of everything in src to out.  0 or -1. */
int		 metrics_render(struct evbuffer *out,
		    const struct metrics_sources *src);

#endif
