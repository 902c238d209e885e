/*
 * udp.c - the UDP relay (see udp.h).
 *
 * An association is keyed by the client's source address and port, kept
 * in a hash table under a random SipHash key.  It is OPENING while the
 * control connection and the UDP ASSOCIATE exchange run (datagrams wait in
 * a bounded queue), OPEN once the proxy named its relay (a connected UDP
 * socket carries the datagrams both ways, no queue), and FAILED for a
 * moment after a refusal, so that a client retrying at once gets port
 * unreachable at once instead of a new dial per datagram.
 *
 * Memory: the table, one struct per association, at most
 * UDP_QUEUE_DGRAMS / UDP_QUEUE_BYTES waiting per opening association and
 * UDP_QUEUE_TOTAL across all, and with address-dependent filtering at most
 * UDP_PEERS_MAX remembered remotes each.  Nothing else is buffered: a
 * datagram that cannot be sent now is dropped and counted, as a router
 * would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "fakeip.h"
#include "fnv.h"
#include "log.h"
#include "lwip_hooks.h"
#include "socks5.h"
#include "stack.h"
#include "udp.h"
#include "upstream.h"

#define UDP_QUEUE_DGRAMS	32		/* per opening association */
#define UDP_QUEUE_BYTES		(128 * 1024)	/* ... its payload */
#define UDP_QUEUE_TOTAL		(16 * 1024 * 1024)	/* all of them */
#define UDP_PEERS_MAX		64	/* remotes remembered per mapping */
#define UDP_FAIL_HOLD_MS	1000	/* a failed association answers */
#define UDP_REFUSED_HOLD_MS	2000	/* after the proxy said no to UDP */
#define UDP_RX_BATCH		64	/* datagrams read per wakeup */
#define UDP_RX_BUF		(SOCKS5_UDP_HDR_MAX + 65535)
#define UDP_STEER_MAX		16	/* workers */
#define UDP_STEER_BATCH		64	/* datagrams per wakeup */

/*
 * A datagram handed to the worker that owns its source, or (src's family
 * AF_UNSPEC) an IP fragment handed to the worker that reassembles it.
 */
struct udp_steer_hdr {
	struct sockaddr_storage	 src;
	struct sockaddr_storage	 dst;
};
#define UDP_ICMP_RATE		1000	/* port unreachable per second */
#define UDP_ICMP_BURST		100
#define UDP_IOV_MAX		66	/* header + stack's 64 pieces + 1 */
#define UDP_FAKES_MAX		8	/* fake-ip destinations remembered */

enum assoc_state {
	ASSOC_OPENING,
	ASSOC_OPEN,
	ASSOC_FAILED,
};

/* A datagram waiting for its association to open. */
struct udp_dgram {
	TAILQ_ENTRY(udp_dgram)	 entry;
	struct sockaddr_storage	 dst;
	size_t			 len;
	unsigned char		 data[];
};

struct assoc {
	struct udps		*u;
	uint64_t		 id;
	enum assoc_state	 state;
	struct sockaddr_storage	 client;
	char			 desc[64];	/* the client, for logs */
	struct assoc		*hnext;		/* hash chain */
	LIST_ENTRY(assoc)	 entry;		/* every association */
	struct upstream_dial	*dial;
	struct bufferevent	*ctl;		/* the control connection */
	int			 fd;		/* connected to the relay */
	struct event		*rx_ev;
	struct event		*timer;		/* idle, or the FAILED hold */
	struct timespec		 last_active;
	TAILQ_HEAD(, udp_dgram)	 queue;
	unsigned		 queued;
	size_t			 queued_bytes;
	struct sockaddr_storage	*peers;		/* remotes sent to */
	unsigned		 npeers;
	unsigned		 peer_next;	/* next slot to reuse when full */
	struct sockaddr_storage	 fakes[UDP_FAKES_MAX];	/* fake-ip ones */
	unsigned		 nfakes;
};

struct udps {
	struct event_base	*base;
	struct stack		*stack;
	struct upstream		*up;
	struct udps_limits	 lim;
	const char		*no_udp;	/* why the upstream has none */
	struct assoc		**table;
	size_t			 mask;		/* table size - 1 */
	uint8_t			 key[16];	/* SipHash key of the table */
	LIST_HEAD(, assoc)	 all;
	unsigned		 count;		/* in the table */
	size_t			 queued_total;
	uint64_t		 next_id;
	struct timespec		 refused_until;	/* no new dials before */
	double			 icmp_tokens;
	struct timespec		 icmp_at;
	unsigned char		*rxbuf;
	udps_take_cb		 take;		/* DNS, before anything else */
	void			*take_arg;
	struct fakeip		*fakeip;	/* DNS fake-ip mode */
	struct udps_share	*share;		/* workers: every one's count */
	unsigned		 nshare;
	struct udps_share	*self;
	unsigned		 steer_self;	/* workers: which one we are */
	unsigned		 steer_n;	/* 0: no steering */
	int			 steer_tx[UDP_STEER_MAX];
	struct event		*steer_ev;	/* on the rx socket */
	struct udps_stats	 st;
};

static void	assoc_free(struct assoc *);
static void	udps_publish(struct udps *);
static void	udps_check_upstream(struct udps *);
static bool	assoc_peer_known(const struct assoc *, const struct sockaddr *);
static void	assoc_fail(struct assoc *, const char *, bool);

/* ---- small helpers ----------------------------------------------------- */

static void
udp_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC_COARSE, ts);
}

/* Milliseconds from a to b (negative when b is earlier). */
static long long
udp_ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

static void
udp_ms_later(struct timespec *ts, unsigned ms)
{
	udp_now(ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* An IPv4-mapped IPv6 address (as some proxies report) as AF_INET. */
static void
udp_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 s6;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	if (ss->ss_family != AF_INET6)
		return;
	memcpy(&s6, ss, sizeof(s6));
	if (!IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr))
		return;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = s6.sin6_port;
	memcpy(&s4->sin_addr, &s6.sin6_addr.s6_addr[12], 4);
}

/*
 * Tell the client its datagram to dst cannot go (port unreachable), as
 * often as the rate allows: UDP_ICMP_RATE per second, bursts of
 * UDP_ICMP_BURST.
 */
static void
udp_unreach(struct udps *u, const struct sockaddr *client,
    const struct sockaddr *dst, const void *data, size_t len)
{
	struct timespec now;
	long long ms;

	udp_now(&now);
	ms = udp_ms_between(&u->icmp_at, &now);
	if (ms > 0) {
		u->icmp_tokens += (double)ms * UDP_ICMP_RATE / 1000.0;
		if (u->icmp_tokens > UDP_ICMP_BURST)
			u->icmp_tokens = UDP_ICMP_BURST;
		u->icmp_at = now;
	}
	if (u->icmp_tokens < 1.0) {
		u->st.icmp_limited++;
		return;
	}
	u->icmp_tokens -= 1.0;
	if (stack_icmp_port_unreach(u->stack, client, dst, data, len) == 0)
		u->st.icmp_sent++;
	else
		u->st.send_error++;
}

/* Copy an iovec's first len bytes to out. */
static void
udp_iov_copy(unsigned char *out, const struct iovec *iov, int iovcnt,
    size_t len)
{
	size_t n;
	int i;

	for (i = 0; i < iovcnt && len > 0; i++) {
		n = iov[i].iov_len < len ? iov[i].iov_len : len;
		memcpy(out, iov[i].iov_base, n);
		out += n;
		len -= n;
	}
}

/* ---- the table ----------------------------------------------------------- */

static size_t
udp_hash(const struct udps *u, const struct sockaddr *client)
{
	unsigned char k[18];
	size_t n;

	memset(k, 0, sizeof(k));
	if (client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)client;

		memcpy(k, &s6->sin6_addr, 16);
		memcpy(k + 16, &s6->sin6_port, 2);
		n = 18;
	} else {
		const struct sockaddr_in *s4 = (const void *)client;

		memcpy(k, &s4->sin_addr, 4);
		memcpy(k + 4, &s4->sin_port, 2);
		n = 6;
	}
	return (size_t)lwip_hooks_siphash(u->key, k, n) & u->mask;
}

static struct assoc *
udp_lookup(const struct udps *u, const struct sockaddr *client)
{
	struct assoc *a;

	for (a = u->table[udp_hash(u, client)]; a != NULL; a = a->hnext)
		if (addr_equal((struct sockaddr *)&a->client, client, true))
			return a;
	return NULL;
}

static void
udp_unlink(struct assoc *a)
{
	struct assoc **pp;

	for (pp = &a->u->table[udp_hash(a->u, (struct sockaddr *)&a->client)];
	    *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == a) {
			*pp = a->hnext;
			a->u->count--;
			return;
		}
	}
}

/* ---- associations -------------------------------------------------------- */

/* Drop the waiting datagrams; with unreach, tell their clients why. */
static void
assoc_flush_queue(struct assoc *a, bool unreach)
{
	struct udp_dgram *d;

	while ((d = TAILQ_FIRST(&a->queue)) != NULL) {
		TAILQ_REMOVE(&a->queue, d, entry);
		a->u->queued_total -= d->len;
		if (unreach) {
			a->u->st.refused++;
			udp_unreach(a->u, (struct sockaddr *)&a->client,
			    (struct sockaddr *)&d->dst, d->data, d->len);
		}
		free(d);
	}
	a->queued = 0;
	a->queued_bytes = 0;
}

/* The one function that frees an association. */
static void
assoc_free(struct assoc *a)
{
	struct udps *u = a->u;

	if (a->state != ASSOC_FAILED) {
		u->st.active--;
		udps_publish(u);
	}
	udp_unlink(a);
	LIST_REMOVE(a, entry);
	if (a->dial != NULL)
		upstream_dial_cancel(a->dial);
	if (a->ctl != NULL)
		bufferevent_free(a->ctl);
	if (a->rx_ev != NULL)
		event_free(a->rx_ev);
	if (a->fd != -1)
		close(a->fd);
	if (a->timer != NULL)
		event_free(a->timer);
	assoc_flush_queue(a, false);
	free(a->peers);
	free(a);
}

/*
 * End an association that failed: the waiting datagrams get port
 * unreachable, and it stays FAILED for UDP_FAIL_HOLD_MS so that retries
 * get it at once.  With refused (the proxy said no to UDP), no new
 * association is dialed for UDP_REFUSED_HOLD_MS either.
 */
static void
assoc_fail(struct assoc *a, const char *why, bool refused)
{
	struct udps *u = a->u;
	struct timeval tv = { UDP_FAIL_HOLD_MS / 1000,
	    (UDP_FAIL_HOLD_MS % 1000) * 1000 };
	static struct log_limit lim;

	log_at_limited(&lim, LOG_LEVEL_WARN, false,
	    "udp %llu %s: association via %s %s: %s",
	    (unsigned long long)a->id, a->desc, upstream_name(u->up),
	    refused ? "refused" : "failed", why);
	u->st.failed++;
	if (refused)
		udp_ms_later(&u->refused_until, UDP_REFUSED_HOLD_MS);
	assoc_flush_queue(a, true);
	if (a->ctl != NULL) {
		bufferevent_free(a->ctl);
		a->ctl = NULL;
	}
	if (a->rx_ev != NULL) {
		event_free(a->rx_ev);
		a->rx_ev = NULL;
	}
	if (a->fd != -1) {
		close(a->fd);
		a->fd = -1;
	}
	if (a->state != ASSOC_FAILED) {
		u->st.active--;
		udps_publish(u);
	}
	a->state = ASSOC_FAILED;
	evtimer_add(a->timer, &tv);
}

/* Remember a remote the client sent to (address-dependent filtering). */
static void
assoc_note_peer(struct assoc *a, const struct sockaddr *dst)
{
	unsigned i;

	for (i = 0; i < a->npeers; i++)
		if (addr_equal((struct sockaddr *)&a->peers[i], dst, false))
			return;
	if (a->peers == NULL &&
	    (a->peers = calloc(UDP_PEERS_MAX, sizeof(*a->peers))) == NULL)
		return;
	if (a->npeers < UDP_PEERS_MAX)
		i = a->npeers++;
	else
		i = a->peer_next++ % UDP_PEERS_MAX;	/* the oldest goes */
	memcpy(&a->peers[i], dst, addr_len(dst));
}

/* Remember a fake-ip destination (address and port) sent to. */
static void
assoc_note_fake(struct assoc *a, const struct sockaddr *dst)
{
	unsigned i;

	for (i = 0; i < a->nfakes; i++)
		if (addr_equal((struct sockaddr *)&a->fakes[i], dst, true))
			return;
	if (a->nfakes == UDP_FAKES_MAX) {
		memmove(&a->fakes[0], &a->fakes[1],
		    (UDP_FAKES_MAX - 1) * sizeof(a->fakes[0]));
		a->nfakes--;
	}
	memcpy(&a->fakes[a->nfakes++], dst, addr_len(dst));
}

/*
 * A reply from a remote the client never sent to, on the port of a
 * fake-ip destination it did send to, comes from what the proxy resolved
 * that name to: give it the fake address, which is what the client knows
 * (the newest such destination when several share the port).
 */
static void
assoc_unfake(const struct assoc *a, struct sockaddr_storage *from)
{
	uint16_t port = addr_port((struct sockaddr *)from);
	unsigned i;

	if (a->nfakes == 0 || assoc_peer_known(a, (struct sockaddr *)from))
		return;
	for (i = a->nfakes; i-- > 0;) {
		const struct sockaddr_storage *f = &a->fakes[i];

		if (f->ss_family == from->ss_family &&
		    addr_port((const struct sockaddr *)f) == port) {
			memcpy(from, f, sizeof(*from));
			return;
		}
	}
}

static bool
assoc_peer_known(const struct assoc *a, const struct sockaddr *src)
{
	unsigned i;

	for (i = 0; i < a->npeers; i++)
		if (addr_equal((struct sockaddr *)&a->peers[i], src, false))
			return true;
	return false;
}

/*
 * Send one datagram to the proxy's relay: the SOCKS5 UDP header, then the
 * payload.  A socket error the relay reported (it is gone) ends the
 * association; a full socket buffer only drops the datagram.
 */
static void
assoc_send(struct assoc *a, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	struct udps *u = a->u;
	uint8_t hdr[SOCKS5_UDP_HDR_MAX];
	struct iovec v[UDP_IOV_MAX];
	struct msghdr mh;
	int i, n = 0;
	size_t hl;

	if (u->fakeip != NULL && fakeip_contains(u->fakeip, dst)) {
		/* the proxy resolves the name the address stands for */
		const char *name = fakeip_name(u->fakeip, dst, false);
		uint16_t port = addr_port(dst);

		if (name == NULL) {
			u->st.refused++;	/* forgotten while queued */
			return;
		}
		hl = socks5_udp_build_name(hdr, sizeof(hdr), name, port);
		assoc_note_fake(a, dst);
	} else
		hl = socks5_udp_build(hdr, sizeof(hdr), dst);
	if (hl == 0) {
		u->st.send_error++;
		return;
	}
	v[n].iov_base = hdr;
	v[n++].iov_len = hl;
	for (i = 0; i < iovcnt && n < UDP_IOV_MAX; i++)
		v[n++] = iov[i];
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = v;
	mh.msg_iovlen = (size_t)n;
	if (sendmsg(a->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == -1) {
		u->st.send_error++;
		if (errno == EMSGSIZE) {
			static struct log_limit lim;

			log_at_limited(&lim, LOG_LEVEL_INFO, false, "udp %llu "
			    "%s: a datagram of %zu bytes does not fit the "
			    "socks5 relay with its %zu-byte header (65,507 in "
			    "all over IPv4): dropped", (unsigned long long)
			    a->id, a->desc, len, hl);
		}
		if (errno == ECONNREFUSED) {
			assoc_fail(a, "the proxy's udp relay is gone", false);
		}
		return;
	}
	if (u->lim.address_dependent || u->fakeip != NULL)
		assoc_note_peer(a, dst);
	udp_now(&a->last_active);
	u->st.up++;
	u->st.up_bytes += len;
}

/* One datagram from the relay, for the client. */
static void
assoc_deliver(struct assoc *a, const unsigned char *buf, size_t n)
{
	struct udps *u = a->u;
	struct socks5_udp_addr from;
	const char *why;
	size_t hl;

	switch (socks5_udp_parse(buf, n, &from, &hl, &why)) {
	case SOCKS5_UDP_OK:
		break;
	case SOCKS5_UDP_FRAGMENT:
		u->st.fragmented++;
		return;
	default:
		u->st.bad_reply++;
		log_debug("udp %llu %s: bad datagram from the relay: %s",
		    (unsigned long long)a->id, a->desc, why);
		return;
	}
	udp_unmap(&from.ss);
	if (from.ss.ss_family == a->client.ss_family)
		assoc_unfake(a, &from.ss);
	if (from.ss.ss_family != a->client.ss_family) {
		/* a name, or a family the client cannot take it from */
		u->st.bad_reply++;
		return;
	}
	if (u->lim.address_dependent &&
	    !assoc_peer_known(a, (struct sockaddr *)&from.ss)) {
		u->st.filtered++;
		return;
	}
	if (stack_udp_output(u->stack, (struct sockaddr *)&from.ss,
	    (struct sockaddr *)&a->client, buf + hl, n - hl) == -1) {
		u->st.send_error++;
		return;
	}
	udp_now(&a->last_active);
	u->st.down++;
	u->st.down_bytes += n - hl;
}

static void
assoc_rx_cb(evutil_socket_t fd, short what, void *arg)
{
	struct assoc *a = arg;
	struct udps *u = a->u;
	ssize_t n;
	int i;

	(void)what;
	for (i = 0; i < UDP_RX_BATCH; i++) {
		n = recv(fd, u->rxbuf, UDP_RX_BUF, MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			if (errno == ECONNREFUSED) {
				assoc_fail(a, "the proxy's udp relay is gone",
				    false);
				return;
			}
			u->st.bad_reply++;
			return;
		}
		if ((size_t)n > UDP_RX_BUF) {
			u->st.bad_reply++;	/* cannot be a valid one */
			continue;
		}
		assoc_deliver(a, u->rxbuf, (size_t)n);
	}
}

/* The control connection: nothing is expected on it but its end. */
static void
assoc_ctl_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev),
	    evbuffer_get_length(bufferevent_get_input(bev)));
}

static void
assoc_ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct assoc *a = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_debug("udp %llu %s: the proxy closed the association",
		    (unsigned long long)a->id, a->desc);
		assoc_free(a);
	}
}

/* Idle timeout (OPENING/OPEN) or the end of the FAILED hold. */
static void
assoc_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct assoc *a = arg;
	struct udps *u = a->u;
	struct timespec now;
	struct timeval tv;
	long long idle, left;

	(void)fd;
	(void)what;
	if (a->state == ASSOC_FAILED) {
		assoc_free(a);
		return;
	}
	udp_now(&now);
	/* an opening one ends by the dial's own (connect) timeout */
	idle = a->state == ASSOC_OPEN ?
	    udp_ms_between(&a->last_active, &now) : 0;
	if (idle >= (long long)u->lim.timeout_ms) {
		log_debug("udp %llu %s: idle for %lld ms, closed",
		    (unsigned long long)a->id, a->desc, idle);
		u->st.expired++;
		assoc_free(a);
		return;
	}
	left = (long long)u->lim.timeout_ms - idle;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	evtimer_add(a->timer, &tv);
}

/* The proxy answered the UDP ASSOCIATE. */
static void
assoc_dial_cb(void *arg, struct bufferevent *bev, const struct sockaddr *relay,
    const char *why, bool refused)
{
	struct assoc *a = arg;
	struct udps *u = a->u;
	struct udp_dgram *d;
	struct iovec iov;
	char err[160], rs[64];

	a->dial = NULL;		/* freed by the dialer when this returns */
	if (bev == NULL) {
		assoc_fail(a, why, refused);
		return;
	}
	a->ctl = bev;
	if ((a->fd = upstream_udp_socket(u->up, relay, err,
	    sizeof(err))) == -1) {
		assoc_fail(a, err, false);
		return;
	}
	if ((a->rx_ev = event_new(u->base, a->fd, EV_READ | EV_PERSIST,
	    assoc_rx_cb, a)) == NULL || event_add(a->rx_ev, NULL) == -1) {
		assoc_fail(a, "out of memory", false);
		return;
	}
	bufferevent_setcb(bev, assoc_ctl_read_cb, NULL, assoc_ctl_event_cb, a);
	bufferevent_enable(bev, EV_READ);
	a->state = ASSOC_OPEN;
	u->st.opened++;
	udp_now(&a->last_active);
	log_debug("udp %llu %s: association open, relay %s",
	    (unsigned long long)a->id, a->desc,
	    addr_str(relay, rs, sizeof(rs)));

	/* what waited goes now, in order */
	while (a->state == ASSOC_OPEN && (d = TAILQ_FIRST(&a->queue)) != NULL) {
		TAILQ_REMOVE(&a->queue, d, entry);
		a->queued--;
		a->queued_bytes -= d->len;
		u->queued_total -= d->len;
		iov.iov_base = d->data;
		iov.iov_len = d->len;
		assoc_send(a, (struct sockaddr *)&d->dst, &iov, 1, d->len);
		free(d);
	}
}

/* Queue a datagram while the association opens; false if it is full. */
static bool
assoc_enqueue(struct assoc *a, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	struct udps *u = a->u;
	struct udp_dgram *d;

	if (a->queued >= UDP_QUEUE_DGRAMS ||
	    a->queued_bytes + len > UDP_QUEUE_BYTES ||
	    u->queued_total + len > UDP_QUEUE_TOTAL ||
	    (d = malloc(sizeof(*d) + len)) == NULL)
		return false;
	memcpy(&d->dst, dst, addr_len(dst));
	d->len = len;
	udp_iov_copy(d->data, iov, iovcnt, len);
	TAILQ_INSERT_TAIL(&a->queue, d, entry);
	a->queued++;
	a->queued_bytes += len;
	u->queued_total += len;
	return true;
}

/* A new association for client, dialing; NULL if it cannot start. */
static struct assoc *
assoc_new(struct udps *u, const struct sockaddr *client)
{
	struct assoc *a;
	struct timeval tv;
	size_t h;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->u = u;
	a->id = ++u->next_id;
	a->fd = -1;
	a->state = ASSOC_OPENING;
	memcpy(&a->client, client, addr_len(client));
	addr_str(client, a->desc, sizeof(a->desc));
	TAILQ_INIT(&a->queue);
	udp_now(&a->last_active);
	if ((a->timer = evtimer_new(u->base, assoc_timer_cb, a)) == NULL) {
		free(a);
		return NULL;
	}
	h = udp_hash(u, client);
	a->hnext = u->table[h];
	u->table[h] = a;
	u->count++;
	u->st.active++;
	udps_publish(u);
	LIST_INSERT_HEAD(&u->all, a, entry);
	tv.tv_sec = u->lim.timeout_ms / 1000;
	tv.tv_usec = (u->lim.timeout_ms % 1000) * 1000;
	evtimer_add(a->timer, &tv);
	if ((a->dial = upstream_associate(u->up, assoc_dial_cb, a)) == NULL) {
		assoc_free(a);
		return NULL;
	}
	log_debug("udp %llu %s: opening an association via %s",
	    (unsigned long long)a->id, a->desc, upstream_name(u->up));
	return a;
}

/* ---- intake -------------------------------------------------------------- */

static void	udp_relay_input(struct udps *, const struct sockaddr *,
		    const struct sockaddr *, const struct iovec *, int, size_t);

static void
udps_publish(struct udps *u)
{
	if (u->self != NULL)
		atomic_store_explicit(&u->self->active, u->st.active,
		    memory_order_relaxed);
}

/* The worker (of n) that owns a client source's association. */
static unsigned
udps_owner(const struct sockaddr *src, unsigned n)
{
	const void *p;
	size_t len;
	uint16_t port = addr_port(src);
	unsigned char pb[2] = { (unsigned char)(port >> 8),
	    (unsigned char)port };

	if (n <= 1)
		return 0;
	if (src->sa_family == AF_INET6) {
		p = ((const struct sockaddr_in6 *)(const void *)src)->
		    sin6_addr.s6_addr;
		len = 16;
	} else {
		p = &((const struct sockaddr_in *)(const void *)src)->
		    sin_addr;
		len = 4;
	}
	/* the same in every worker: no key */
	return fnv1a(fnv1a(FNV1A_INIT, p, len), pb, 2) % n;
}

/* Hand a datagram to the worker that owns its source. */
static void
udp_steer_send(struct udps *u, unsigned owner, const struct sockaddr *src,
    const struct sockaddr *dst, const struct iovec *iov, int iovcnt)
{
	struct udp_steer_hdr h;
	struct iovec v[1 + 64];
	struct msghdr m;
	int n = iovcnt < 64 ? iovcnt : 64;

	memset(&h, 0, sizeof(h));
	memcpy(&h.src, src, addr_len(src));
	memcpy(&h.dst, dst, addr_len(dst));
	v[0].iov_base = &h;
	v[0].iov_len = sizeof(h);
	memcpy(v + 1, iov, (size_t)n * sizeof(*iov));
	memset(&m, 0, sizeof(m));
	m.msg_iov = v;
	m.msg_iovlen = (size_t)n + 1;
	if (sendmsg(u->steer_tx[owner], &m, MSG_DONTWAIT) == -1) {
		static struct log_limit lim;

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "udp: handing a "
		    "datagram to worker %u: %s", owner, strerror(errno));
		u->st.send_error++;
	}
}

/* Hand an IP fragment to the worker that reassembles it (stack_frag_cb). */
static void
udp_frag_send(void *arg, unsigned owner, const void *pkt, size_t len)
{
	struct udps *u = arg;
	struct udp_steer_hdr h;
	struct iovec v[2];
	struct msghdr m;

	memset(&h, 0, sizeof(h));
	h.src.ss_family = AF_UNSPEC;
	v[0].iov_base = &h;
	v[0].iov_len = sizeof(h);
	v[1].iov_base = (void *)(uintptr_t)pkt;
	v[1].iov_len = len;
	memset(&m, 0, sizeof(m));
	m.msg_iov = v;
	m.msg_iovlen = 2;
	if (sendmsg(u->steer_tx[owner], &m, MSG_DONTWAIT) == -1) {
		static struct log_limit lim;

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "udp: handing an "
		    "IP fragment to worker %u: %s", owner, strerror(errno));
		u->st.send_error++;
	}
}

/* Datagrams and fragments other workers handed us. */
static void
udp_steer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct udps *u = arg;
	struct udp_steer_hdr *h;
	struct iovec v;
	ssize_t n;

	(void)what;
	for (int i = 0; i < UDP_STEER_BATCH; i++) {
		n = recv(fd, u->rxbuf, UDP_RX_BUF, MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1)
			return;
		if ((size_t)n < sizeof(*h) || (size_t)n > UDP_RX_BUF) {
			u->st.bad_reply++;
			continue;
		}
		h = (struct udp_steer_hdr *)(void *)u->rxbuf;
		v.iov_base = u->rxbuf + sizeof(*h);
		v.iov_len = (size_t)n - sizeof(*h);
		if (h->src.ss_family == AF_UNSPEC) {
			stack_input_fragment(u->stack, v.iov_base, v.iov_len);
			continue;
		}
		udp_relay_input(u, (struct sockaddr *)&h->src,
		    (struct sockaddr *)&h->dst, &v, 1, v.iov_len);
	}
}

/* A datagram from the TUN (stack_udp_cb). */
static void
udp_input_cb(void *arg, const struct sockaddr *src, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	struct udps *u = arg;

	if (u->take != NULL && u->take(u->take_arg, src, dst, iov, iovcnt,
	    len))
		return;
	if (u->steer_n > 1) {
		unsigned owner = udps_owner(src, u->steer_n);

		if (owner != u->steer_self) {
			udp_steer_send(u, owner, src, dst, iov, iovcnt);
			return;
		}
	}
	udp_relay_input(u, src, dst, iov, iovcnt, len);
}

/* A datagram whose source this worker owns. */
static void
udp_relay_input(struct udps *u, const struct sockaddr *src,
    const struct sockaddr *dst, const struct iovec *iov, int iovcnt,
    size_t len)
{
	struct assoc *a;
	struct timespec now;
	unsigned char quote[1280];
	size_t qlen = len < sizeof(quote) ? len : sizeof(quote);
	unsigned total;

	if (u->no_udp != NULL) {
		u->st.no_udp++;
		goto unreach;
	}
	if (u->fakeip != NULL && fakeip_contains(u->fakeip, dst) &&
	    fakeip_name(u->fakeip, dst, false) == NULL) {
		static struct log_limit lim;
		char ds[64];

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "udp datagram to "
		    "%s: a fake-ip address that stands for no name (a restart "
		    "without [dns] state_file?)", addr_str(dst, ds,
		    sizeof(ds)));
		u->st.refused++;
		goto unreach;
	}
	if (upstream_is_proxy(u->up, dst)) {
		static struct log_limit lim;
		char ds[64];

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "udp datagram to "
		    "the proxy's own address %s came into the tunnel: the "
		    "route to the proxy leads into it", addr_str(dst, ds,
		    sizeof(ds)));
		u->st.refused++;
		goto unreach;
	}
	if ((a = udp_lookup(u, src)) != NULL) {
		switch (a->state) {
		case ASSOC_OPEN:
			assoc_send(a, dst, iov, iovcnt, len);
			return;
		case ASSOC_OPENING:
			if (!assoc_enqueue(a, dst, iov, iovcnt, len))
				u->st.queue_full++;
			return;
		case ASSOC_FAILED:
			u->st.refused++;
			goto unreach;
		}
	}
	udp_now(&now);
	if (udp_ms_between(&now, &u->refused_until) > 0) {
		u->st.refused++;
		goto unreach;
	}
	/* workers: claim a place, then count the others (as flows do), so
	 * that racing workers never exceed max_flows together */
	total = u->count;
	if (u->self != NULL)
		atomic_store_explicit(&u->self->active, u->st.active + 1,
		    memory_order_seq_cst);
	for (unsigned i = 0; i < u->nshare; i++)
		if (&u->share[i] != u->self)
			total += atomic_load_explicit(&u->share[i].active,
			    memory_order_seq_cst);
	if (total >= u->lim.max_flows) {
		udps_publish(u);
		static struct log_limit lim;

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "udp: %u "
		    "associations, the most [udp] max_flows allows: datagrams "
		    "from new sources refused", total);
		u->st.over_max++;
		goto unreach;
	}
	if ((a = assoc_new(u, src)) == NULL) {
		udps_publish(u);
		u->st.refused++;
		goto unreach;
	}
	if (!assoc_enqueue(a, dst, iov, iovcnt, len))
		u->st.queue_full++;
	return;
unreach:
	udp_iov_copy(quote, iov, iovcnt, qlen);
	udp_unreach(u, src, dst, quote, qlen);
}

/* ---- life cycle ---------------------------------------------------------- */

struct udps *
udps_new(struct event_base *base, struct stack *stack, struct upstream *up,
    const struct udps_limits *lim)
{
	struct udps *u;
	size_t n = 64;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		log_error("udp: calloc");
		return NULL;
	}
	u->base = base;
	u->stack = stack;
	u->up = up;
	u->lim = *lim;
	if (u->lim.timeout_ms == 0)
		u->lim.timeout_ms = 60 * 1000;
	LIST_INIT(&u->all);
	while (n < (size_t)u->lim.max_flows * 2)
		n <<= 1;
	u->mask = n - 1;
	u->icmp_tokens = UDP_ICMP_BURST;
	udp_now(&u->icmp_at);
	if ((u->table = calloc(n, sizeof(*u->table))) == NULL ||
	    (u->rxbuf = malloc(UDP_RX_BUF)) == NULL ||
	    getrandom(u->key, sizeof(u->key), 0) != sizeof(u->key)) {
		log_error("udp: cannot set up");
		free(u->table);
		free(u->rxbuf);
		free(u);
		return NULL;
	}
	udps_check_upstream(u);
	stack_udp_any(stack, udp_input_cb, u);
	return u;
}

void
udps_free(struct udps *u)
{
	struct assoc *a;

	if (u == NULL)
		return;
	stack_udp_any(u->stack, NULL, NULL);
	(void)stack_set_workers(u->stack, 0, 0, NULL, NULL);
	if (u->steer_ev != NULL)
		event_free(u->steer_ev);
	while ((a = LIST_FIRST(&u->all)) != NULL)
		assoc_free(a);
	free(u->table);
	free(u->rxbuf);
	free(u);
}

/* Why datagrams cannot go now, or NULL (logged when it changes). */
static void
udps_check_upstream(struct udps *u)
{
	if (!u->lim.enable)
		u->no_udp = "udp is off ([udp] enable = no)";
	else
		u->no_udp = upstream_udp_unsupported(u->up,
		    u->lim.allow_plain);
	if (u->no_udp != NULL)
		log_info("udp: not relayed: %s; datagrams get port "
		    "unreachable", u->no_udp);
}

void
udps_reconfigure(struct udps *u, struct upstream *up,
    const struct udps_limits *lim)
{
	u->up = up;
	u->lim = *lim;
	if (u->lim.timeout_ms == 0)
		u->lim.timeout_ms = 60 * 1000;
	udps_check_upstream(u);
}

void
udps_set_take(struct udps *u, udps_take_cb cb, void *arg)
{
	u->take = cb;
	u->take_arg = arg;
}

void
udps_set_fakeip(struct udps *u, struct fakeip *fi)
{
	u->fakeip = fi;
}

void
udps_set_share(struct udps *u, struct udps_share *all, unsigned n,
    unsigned self)
{
	u->share = all;
	u->nshare = n;
	u->self = &all[self];
	udps_publish(u);
}

int
udps_set_steer(struct udps *u, unsigned self, unsigned n, const int *tx,
    int rx)
{
	if (n > UDP_STEER_MAX || self >= n)
		return -1;
	if ((u->steer_ev = event_new(u->base, rx, EV_READ | EV_PERSIST,
	    udp_steer_cb, u)) == NULL || event_add(u->steer_ev, NULL) == -1) {
		log_errorx("udp: cannot take datagrams from other workers");
		return -1;
	}
	memcpy(u->steer_tx, tx, n * sizeof(*tx));
	u->steer_self = self;
	u->steer_n = n;
	/* IP fragments go to the worker that reassembles them, over tx too */
	return stack_set_workers(u->stack, self, n, udp_frag_send, u);
}

void
udps_get_stats(const struct udps *u, struct udps_stats *st)
{
	*st = u->st;
}
