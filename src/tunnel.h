/*
 * tunnel.h - one tunnel: everything behind one TUN queue, wired together
 * once for the daemon (main.c), each worker process (worker.c) and the
 * relay path of --perf: the lwIP stack on the queue's fd, the TCP flows,
 * the UDP associations, DNS (tcp or fake-ip mode) and the fake-IP table.
 *
 * The caller owns the event base, the TUN fd, the configuration and the
 * upstream; the tunnel follows them through tunnel_reconfigure().
 */
#ifndef SLUICE_TUNNEL_H
#define SLUICE_TUNNEL_H

#include <stdbool.h>

#include <event2/event.h>

#include "dnsfwd.h"
#include "fakeip.h"
#include "flow.h"
#include "stack.h"
#include "udp.h"
#include "upstream.h"

struct config;
struct tunnel;

/* Every counter of one tunnel, or summed over many (tunnel_stats_add). */
struct tunnel_stats {
	struct stack_stats	stack;
	struct flows_stats	flows;
	struct udps_stats	udp;
	struct dnsfwd_stats	dns;
	struct fakeip_stats	fakeip;
	struct upstream_stats	up;
	bool			has_udp;
	bool			has_dns;
	bool			has_fakeip;
};

/*
 * Wire a tunnel on the TUN (queue) fd tun_fd: vnet_hdr when it carries
 * offloads.  c must outlive the tunnel (a reload changes it in place and
 * calls tunnel_reconfigure); fi, when not NULL, is a fake-IP table shared
 * with other tunnels (fake-ip mode), else the tunnel makes its own.
 * fatal_cb is called once if the TUN fails for good.  NULL on error
 * (logged).
 */
struct tunnel	*tunnel_new(struct event_base *base, int tun_fd,
		    bool vnet_hdr, const struct config *c, struct upstream *up,
		    struct fakeip *fi, stack_fatal_cb fatal_cb,
		    void *fatal_arg);
/* Close every flow and association; the fd stays the caller's.  NULL ok. */
void		 tunnel_free(struct tunnel *t);
/* After a reload changed c in place: new flows go through up. */
void		 tunnel_reconfigure(struct tunnel *t, struct upstream *up);
/*
 * Workers: count against one max_flows, memory budget and UDP max_flows
 * with the others (slots in shared memory; see flow.h and udp.h).
 */
void		 tunnel_set_share(struct tunnel *t, struct flows_share *fs,
		    struct udps_share *us, unsigned n, unsigned self);

struct stack	*tunnel_stack(const struct tunnel *t);
struct udps	*tunnel_udps(const struct tunnel *t);
struct fakeip	*tunnel_fakeip(const struct tunnel *t);

void		 tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *st);
/*
 * Add b's counters to a.  Gauges add too (flows open in all workers),
 * but latency percentiles take the larger; with gauges false only the
 * counters are added (a dead worker's totals: its flows are gone).
 */
void		 tunnel_stats_add(struct tunnel_stats *a,
		    const struct tunnel_stats *b, bool gauges);
/*
 * The counters as one log line: "stats: ..." (who NULL) or "who: ...";
 * kernel_drops is the TUN's tx_dropped (tun_kernel_dropped).
 */
void		 tunnel_log_stats(const struct tunnel_stats *st,
		    unsigned long long kernel_drops, const char *who);

/*
 * The fake-IP table of c's pools, with the TUN's and the proxy's
 * addresses kept out and [dns] state_file read; shared: in memory that
 * worker processes forked later share (fakeip_new_shared).  NULL on
 * error (logged).
 */
struct fakeip	*tunnel_fakeip_new(const struct config *c,
		    struct upstream *up, bool shared);

#endif
