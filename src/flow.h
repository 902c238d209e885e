/*
 * flow.h - the TCP relay: each flow is one lwIP pcb (the client's
 * connection, terminated in our stack) and one upstream bufferevent.
 *
 * A SYN is answered only once the upstream tunnel is open (faithful
 * connect): if the proxy or the destination refuses, the client gets a RST.
 * Backpressure both ways with memory per flow bounded by flow_buffer,
 * half-close passed through, idle timeout, max_flows.
 */
#ifndef SLUICE_FLOW_H
#define SLUICE_FLOW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct stack;
struct upstream;
struct flows;
struct fakeip;

struct flows_limits {
	unsigned	max_flows;
	unsigned	idle_timeout_ms;	/* 0: none */
	size_t		flow_buffer;
	size_t		max_memory;		/* 0: no budget */
};

struct flows_stats {
	uint64_t	accepted;	/* SYNs taken */
	uint64_t	refused;	/* SYNs answered with RST */
	uint64_t	over_limit;	/* refused by max_flows */
	uint64_t	over_memory;	/* refused by the memory budget */
	uint64_t	loops;		/* refused: destination is the proxy */
	uint64_t	established;	/* tunnels opened */
	uint64_t	bytes_up;	/* client -> upstream */
	uint64_t	bytes_down;	/* upstream -> client */
	unsigned	active;
	size_t		held;		/* bytes buffered by all flows */
};

/* Start taking flows from the stack's catch-all listener.  NULL on error. */
struct flows	*flows_new(struct event_base *base, struct stack *stack,
		    struct upstream *up, const struct flows_limits *lim);
/* Close every flow (clients get a RST) and stop listening.  NULL is ok. */
void		 flows_free(struct flows *fl);
void		 flows_get_stats(const struct flows *fl, struct flows_stats *st);
/*
 * DNS fake-ip mode: flows to an address of fi's pools go to the proxy by
 * the name it stands for (and are refused with a RST when it stands for
 * none).  fi must outlive fl.
 */
void		 flows_set_fakeip(struct flows *fl, struct fakeip *fi);
/*
 * Worker processes (issue: one daemon over many queues): each publishes
 * its open flows and buffered bytes in all[self] (shared memory of n
 * slots), and max_flows and max_memory hold for the sum over all slots.
 */
struct flows_share {
	_Atomic unsigned	active;
	_Atomic size_t		held;
};
void		 flows_set_share(struct flows *fl, struct flows_share *all,
		    unsigned n, unsigned self);
/*
 * A reload: new flows dial up and get lim; flows that exist keep their
 * tunnels (and follow the new flow_buffer and idle timeout).
 */
void		 flows_reconfigure(struct flows *fl, struct upstream *up,
		    const struct flows_limits *lim);

#endif
