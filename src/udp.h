/*
 * udp.h - the UDP relay: datagrams from the TUN go to the upstream SOCKS5
 * proxy through UDP ASSOCIATE (RFC 1928 section 7), one association per
 * client source address and port.
 *
 * The mapping is endpoint-independent (RFC 4787 REQ-1, "full cone"): every
 * destination a client socket sends to goes through its one association,
 * and replies from any remote come back to that socket with the remote as
 * their source.  Filtering is endpoint-independent or address-dependent.
 * An association ends with its control connection or after the idle
 * timeout; the next datagram opens a new one.  Where a datagram cannot go
 * (an upstream without UDP, a refusal, a limit), the client gets ICMP port
 * unreachable, rate-limited, so that it fails at once instead of waiting.
 */
#ifndef SLUICE_UDP_H
#define SLUICE_UDP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>

struct stack;
struct upstream;
struct udps;
struct fakeip;

struct udps_limits {
	bool		enable;
	unsigned	max_flows;		/* associations */
	unsigned	timeout_ms;		/* idle time that ends one */
	bool		address_dependent;	/* filtering */
	bool		allow_plain;		/* relay in clear beside TLS */
};

struct udps_stats {
	unsigned	active;		/* associations opening or open */
	uint64_t	opened;		/* associations the proxy granted */
	uint64_t	failed;		/* ... it refused or that failed */
	uint64_t	expired;	/* ... that ended idle */
	uint64_t	up;		/* datagrams client -> proxy */
	uint64_t	up_bytes;	/* ... their payload */
	uint64_t	down;		/* datagrams proxy -> client */
	uint64_t	down_bytes;
	/* datagrams dropped, by reason */
	uint64_t	no_udp;		/* UDP off, or the upstream has none */
	uint64_t	refused;	/* the association failed or was refused */
	uint64_t	queue_full;	/* while the association opened */
	uint64_t	over_max;	/* max_flows associations exist */
	uint64_t	fragmented;	/* replies with FRAG != 0 */
	uint64_t	filtered;	/* replies filtering turned away */
	uint64_t	bad_reply;	/* malformed, or a remote we cannot use */
	uint64_t	send_error;	/* a send to the proxy or TUN failed */
	uint64_t	icmp_sent;	/* port unreachable sent to clients */
	uint64_t	icmp_limited;	/* ... not sent: over the rate */
};

/*
 * Take the stack's UDP and relay it through up.  NULL on error (logged).
 * With lim->enable false every datagram gets port unreachable.
 */
struct udps	*udps_new(struct event_base *base, struct stack *stack,
		    struct upstream *up, const struct udps_limits *lim);
/* End every association (silently) and stop taking UDP.  NULL is ok. */
void		 udps_free(struct udps *u);
void		 udps_get_stats(const struct udps *u, struct udps_stats *st);
/*
 * A reload: new associations go through up with lim (the table keeps its
 * size); open ones keep their relay.
 */
void		 udps_reconfigure(struct udps *u, struct upstream *up,
		    const struct udps_limits *lim);

/*
 * A taker that sees every datagram first (DNS): true when it took it.
 * The payload is valid during the call only.
 */
typedef bool (*udps_take_cb)(void *arg, const struct sockaddr *src,
    const struct sockaddr *dst, const struct iovec *iov, int iovcnt,
    size_t len);
void		 udps_set_take(struct udps *u, udps_take_cb cb, void *arg);
/*
 * DNS fake-ip mode: datagrams to an address of fi's pools go to the proxy
 * by the name it stands for (SOCKS5 ATYP DOMAINNAME), and replies to them
 * come back from that address.  fi must outlive u.
 */
void		 udps_set_fakeip(struct udps *u, struct fakeip *fi);

/*
 * Worker processes: each publishes its associations in all[self] (shared
 * memory of n slots) and [udp] max_flows holds for the sum.
 */
struct udps_share {
	_Atomic unsigned	active;
};
void		 udps_set_share(struct udps *u, struct udps_share *all,
		    unsigned n, unsigned self);
/*
 * Worker processes: the kernel spreads a client socket's datagrams over
 * the TUN queues by the whole 4-tuple, but its one association (its
 * mapping) must live in one worker.  Each source address and port has an
 * owner (a hash of both, the same in every worker); a datagram that
 * reaches another worker goes to its owner over a datagram socket:
 * tx[owner] (n of them, shared by every worker), received on rx by the
 * owner.  DNS taken by the take callback is answered where it arrives.
 * IP fragments go to the worker that reassembles them
 * (stack_set_workers) over the same sockets.
 */
int		 udps_set_steer(struct udps *u, unsigned self, unsigned n,
		    const int *tx, int rx);

#endif
