/*
 * dnsfwd.h - DNS for the tunnel: queries over UDP to the DNS ports are
 * taken from the UDP relay and answered here.
 *
 * tcp mode: each query goes out as DNS over TCP (RFC 7766 framing),
 * through the upstream proxy of whatever kind, to the resolver the client
 * addressed (or a configured one), pipelined over a few reused
 * connections per resolver.  A query without an answer in time gets
 * SERVFAIL; an answer larger than the client takes over UDP goes back
 * truncated (TC), and the client retries over TCP, which the TCP relay
 * carries.
 *
 * fake-ip mode: A and AAAA queries are answered from the fake-IP pools
 * (fakeip.h), HTTPS and SVCB ones with NODATA (their address hints would
 * name real addresses); everything else, and names under the excluded
 * suffixes, as in tcp mode.
 */
#ifndef SLUICE_DNSFWD_H
#define SLUICE_DNSFWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>

struct dnsfwd;
struct fakeip;
struct stack;
struct upstream;

struct dnsfwd_options {
	bool			 fake_ip;	/* else tcp mode */
	const uint16_t		*ports;		/* the DNS ports */
	unsigned		 nports;
	const struct sockaddr	*server;	/* NULL: as the client asked */
	unsigned		 timeout_ms;
	struct fakeip		*fakeip;	/* fake-ip mode */
	const char		*exclude;	/* suffixes, blank-separated */
};

struct dnsfwd_stats {
	uint64_t	queries;	/* taken */
	uint64_t	fake;		/* answered from the fake pools */
	uint64_t	nodata;		/* HTTPS/SVCB answered NODATA */
	uint64_t	tcp;		/* answered by a resolver over TCP */
	uint64_t	truncated;	/* ... sent back cut, with TC */
	uint64_t	servfail;	/* answered SERVFAIL */
	uint64_t	timeouts;	/* ... of which for want of an answer */
	uint64_t	bad;		/* not a DNS query: dropped */
	unsigned	pending;	/* waiting for a resolver */
	unsigned	conns;		/* TCP connections to resolvers */
	unsigned	p50_ms;		/* answer latency over TCP, at most */
	unsigned	p99_ms;
};

/* NULL on error (logged).  The options' pointers must outlive it. */
struct dnsfwd	*dnsfwd_new(struct event_base *base, struct stack *stack,
		    struct upstream *up, const struct dnsfwd_options *o);
/* Drop every pending query (unanswered) and connection.  NULL is ok. */
void		 dnsfwd_free(struct dnsfwd *df);
/*
 * A datagram from the TUN (the udps_take_cb of udp.h): true when it went
 * to a DNS port and is ours (answered now, later, or dropped as bad).
 */
bool		 dnsfwd_take(void *arg, const struct sockaddr *src,
		    const struct sockaddr *dst, const struct iovec *iov,
		    int iovcnt, size_t len);
void		 dnsfwd_get_stats(const struct dnsfwd *df,
		    struct dnsfwd_stats *st);
/*
 * A reload: new connections to resolvers go through up, new queries
 * follow o (its fake_ip and fakeip must not change).
 */
void		 dnsfwd_reconfigure(struct dnsfwd *df, struct upstream *up,
		    const struct dnsfwd_options *o);

#endif
