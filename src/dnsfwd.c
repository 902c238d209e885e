/*
 * dnsfwd.c - DNS for the tunnel (see dnsfwd.h).
 *
 * A query waiting for a resolver is one struct dns_query on the list of
 * the connection that carries it, with its own timer.  On the connection
 * it has an ID of ours (unique among that connection's queries), so that
 * queries of different clients with the same ID can share a pipeline; the
 * client's ID goes back into the answer.  A connection that closes with
 * queries on it (resolvers close idle connections, RFC 7766 6.2.3, and
 * some after so many queries) hands them to another connection (see
 * dns_conn_close); a resolver that cannot be reached gets its queries
 * answered SERVFAIL at once.
 *
 * Bounded: at most DNS_PENDING_MAX queries wait (more get SERVFAIL), at
 * most DNS_CONNS_PER_RESOLVER connections per resolver and DNS_CONNS_MAX
 * in all, each idle-closed after DNS_IDLE_MS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "dns.h"
#include "dnsfwd.h"
#include "fakeip.h"
#include "http.h"
#include "log.h"
#include "stack.h"
#include "upstream.h"

#define DNS_PENDING_MAX		1024
#define DNS_PIPELINE		32	/* queries per connection before a new one */
#define DNS_MOVES_MAX		4	/* a query on connections that closed */
#define DNS_CONNS_PER_RESOLVER	4
#define DNS_CONNS_MAX		64
#define DNS_IDLE_MS		10000
#define DNS_FAKE_TTL		60	/* seconds */
#define DNS_MSG_MAX		65535
#define DNS_LAT_BUCKETS		17	/* < 1, 2, 4, ... 65536 ms */

struct dns_conn;

struct dns_query {
	TAILQ_ENTRY(dns_query)	 entry;
	struct dns_conn		*conn;
	struct dnsfwd		*df;
	struct sockaddr_storage	 client;
	struct sockaddr_storage	 dst;		/* as addressed: the reply's source */
	uint16_t		 client_id;
	uint16_t		 id;		/* ours, on conn */
	uint16_t		 qtype;
	bool			 sent;
	unsigned		 moves;		/* to another connection */
	size_t			 limit;		/* the client's UDP size */
	struct timespec		 start;
	struct event		*timer;
	size_t			 len;
	uint8_t			 msg[];
};

TAILQ_HEAD(dns_query_list, dns_query);

struct dns_conn {
	LIST_ENTRY(dns_conn)	 entry;
	struct dnsfwd		*df;
	struct sockaddr_storage	 resolver;
	struct upstream_dial	*dial;
	struct bufferevent	*bev;		/* once open */
	struct dns_query_list	 queries;
	unsigned		 n;
	bool			 stale;		/* a query on it timed out */
	uint64_t		 answered;
	uint16_t		 next_id;
	struct event		*idle_ev;
};

struct dnsfwd {
	struct event_base	*base;
	struct stack		*stack;
	struct upstream		*up;
	struct dnsfwd_options	 o;
	LIST_HEAD(, dns_conn)	 conns;
	unsigned		 nconns;
	unsigned		 pending;
	uint64_t		 lat[DNS_LAT_BUCKETS];
	uint8_t			 out[DNS_MSG_MAX];
	struct dnsfwd_stats	 st;
};

static void	dns_conn_close(struct dns_conn *, bool);
static void	dns_dispatch(struct dnsfwd *, struct dns_query *);

/* ---- answers --------------------------------------------------------- */

/* Send an answer (n bytes in df->out) to the query's client. */
static void
dns_reply(struct dnsfwd *df, const struct sockaddr *from,
    const struct sockaddr *client, size_t n)
{
	if (n > 0)
		stack_udp_output(df->stack, from, client, df->out, n);
}

/* Answer the query msg with rcode and no records. */
static void
dns_reply_rcode(struct dnsfwd *df, const struct sockaddr *from,
    const struct sockaddr *client, const uint8_t *msg, size_t len,
    uint8_t rcode)
{
	struct dns_info qi;
	const char *why;

	if (!dns_parse(msg, len, &qi, &why))
		return;
	dns_reply(df, from, client, dns_build_response(df->out,
	    sizeof(df->out), msg, len, &qi, rcode));
}

static void
dns_query_free(struct dns_query *q)
{
	struct dns_conn *c = q->conn;

	if (c != NULL) {
		TAILQ_REMOVE(&c->queries, q, entry);
		c->n--;
		q->conn = NULL;
		/* idle now: closed after DNS_IDLE_MS (a stale one at once,
		 * from the timer) */
		if (c->n == 0 && c->bev != NULL) {
			struct timeval tv = { c->stale ? 0 : DNS_IDLE_MS / 1000,
			    0 };

			evtimer_add(c->idle_ev, &tv);
		}
	}
	if (q->timer != NULL)
		event_free(q->timer);
	q->df->pending--;
	free(q);
}

/* The query ends unanswered by a resolver: SERVFAIL. */
static void
dns_query_fail(struct dns_query *q)
{
	struct dnsfwd *df = q->df;

	df->st.servfail++;
	dns_set_id(q->msg, q->client_id);	/* ours went out on the wire */
	dns_reply_rcode(df, (struct sockaddr *)&q->dst,
	    (struct sockaddr *)&q->client, q->msg, q->len,
	    DNS_RCODE_SERVFAIL);
	dns_query_free(q);
}

static void
dns_query_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	q->df->st.timeouts++;
	/* a resolver that did not answer in time gets no new queries on
	 * this connection; it closes once the others are answered */
	if (q->conn != NULL)
		q->conn->stale = true;
	dns_query_fail(q);
}

/* Record an answer's latency in the histogram. */
static void
dns_latency(struct dnsfwd *df, const struct timespec *start)
{
	struct timespec now;
	long long ms;
	unsigned b = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
	while (b + 1 < DNS_LAT_BUCKETS && ms >= (1ll << b))
		b++;
	df->lat[b]++;
}

/* The latency at quantile num/den: the upper bound of its bucket, in ms. */
static unsigned
dns_quantile(const struct dnsfwd *df, unsigned num, unsigned den)
{
	uint64_t total = 0, seen = 0;
	unsigned b;

	for (b = 0; b < DNS_LAT_BUCKETS; b++)
		total += df->lat[b];
	if (total == 0)
		return 0;
	for (b = 0; b < DNS_LAT_BUCKETS; b++) {
		seen += df->lat[b];
		if (seen * den >= total * num)
			break;
	}
	return b >= DNS_LAT_BUCKETS ? 1u << (DNS_LAT_BUCKETS - 1) : 1u << b;
}

/* ---- connections to resolvers ---------------------------------------- */

/* Write q on its (open) connection, framed. */
static void
dns_query_send(struct dns_query *q)
{
	uint8_t hdr[2] = { (uint8_t)(q->len >> 8), (uint8_t)q->len };

	dns_set_id(q->msg, q->id);
	if (bufferevent_write(q->conn->bev, hdr, 2) == -1 ||
	    bufferevent_write(q->conn->bev, q->msg, q->len) == -1) {
		dns_query_fail(q);
		return;
	}
	q->sent = true;
}

/* One framed answer from the resolver. */
static void
dns_conn_answer(struct dns_conn *c, const uint8_t *msg, size_t len)
{
	struct dnsfwd *df = c->df;
	struct dns_query *q;
	struct dns_info ri;
	const char *why;
	uint16_t id;
	size_t n;

	if (len < DNS_HDR_LEN)
		return;
	id = dns_get_id(msg);
	TAILQ_FOREACH(q, &c->queries, entry)
		if (q->id == id && q->sent)
			break;
	if (q == NULL)
		return;		/* late: the query timed out */
	if (!dns_parse(msg, len, &ri, &why) || !ri.qr ||
	    (ri.qdcount > 0 && ri.qtype != q->qtype)) {
		log_debug("dns: bad answer from the resolver: %s",
		    ri.qr ? why : "not a response");
		dns_query_fail(q);
		return;
	}
	n = dns_truncate(df->out, sizeof(df->out), msg, len, &ri, q->limit);
	if (n == 0) {
		dns_query_fail(q);
		return;
	}
	if (n < len)
		df->st.truncated++;
	c->answered++;
	dns_set_id(df->out, q->client_id);
	df->st.tcp++;
	dns_latency(df, &q->start);
	dns_reply(df, (struct sockaddr *)&q->dst,
	    (struct sockaddr *)&q->client, n);
	dns_query_free(q);
}

static void
dns_conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct dns_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t hdr[2];
	size_t len;
	uint8_t *msg;

	for (;;) {
		if (evbuffer_copyout(in, hdr, 2) != 2)
			return;
		len = (size_t)hdr[0] << 8 | hdr[1];
		if (evbuffer_get_length(in) < 2 + len)
			return;
		if ((msg = evbuffer_pullup(in, (ev_ssize_t)(2 + len))) == NULL) {
			dns_conn_close(c, true);
			return;
		}
		dns_conn_answer(c, msg + 2, len);
		evbuffer_drain(in, 2 + len);
	}
}

static void
dns_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct dns_conn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		dns_conn_close(c, true);
}

static void
dns_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->n == 0)
		dns_conn_close(c, false);
}

/*
 * Close a connection.  When it had been open, its queries move to
 * another connection: resolvers close connections after so many
 * queries (dnsmasq: 100) or when idle, so a move does not count against
 * a query when the connection had answered others, and a query moves at
 * most DNS_MOVES_MAX times.  Otherwise they get SERVFAIL.
 */
static void
dns_conn_close(struct dns_conn *c, bool retry)
{
	struct dnsfwd *df = c->df;
	struct dns_query_list moved;
	struct dns_query *q;
	char rs[64];

	log_debug("dns: connection to %s closed, %llu answered, %u waiting",
	    addr_str((struct sockaddr *)&c->resolver, rs, sizeof(rs)),
	    (unsigned long long)c->answered, c->n);
	LIST_REMOVE(c, entry);
	df->nconns--;
	TAILQ_INIT(&moved);
	while ((q = TAILQ_FIRST(&c->queries)) != NULL) {
		TAILQ_REMOVE(&c->queries, q, entry);
		c->n--;
		q->conn = NULL;
		if (retry && c->bev != NULL && q->moves < DNS_MOVES_MAX &&
		    (q->moves == 0 || c->answered > 0)) {
			q->moves++;
			q->sent = false;
			TAILQ_INSERT_TAIL(&moved, q, entry);
		} else
			dns_query_fail(q);
	}
	if (c->dial != NULL)
		upstream_dial_cancel(c->dial);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->idle_ev != NULL)
		event_free(c->idle_ev);
	free(c);
	while ((q = TAILQ_FIRST(&moved)) != NULL) {
		TAILQ_REMOVE(&moved, q, entry);
		dns_dispatch(df, q);
	}
}

/* The upstream tunnel to the resolver is open (or failed). */
static void
dns_conn_dial_cb(void *arg, struct bufferevent *bev, const char *why,
    bool proxy_fault)
{
	struct dns_conn *c = arg;
	struct dns_query *q, *next;
	char rs[64];

	(void)proxy_fault;
	c->dial = NULL;
	if (bev == NULL) {
		static struct log_limit lim;

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "dns: resolver %s "
		    "through %s: %s", addr_str((struct sockaddr *)
		    &c->resolver, rs, sizeof(rs)), upstream_name(c->df->up),
		    why);
		dns_conn_close(c, false);
		return;
	}
	c->bev = bev;
	bufferevent_setcb(bev, dns_conn_read_cb, NULL, dns_conn_event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	for (q = TAILQ_FIRST(&c->queries); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (!q->sent)
			dns_query_send(q);
	}
}

static struct dns_conn *
dns_conn_new(struct dnsfwd *df, const struct sockaddr *resolver)
{
	struct dns_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->df = df;
	memcpy(&c->resolver, resolver, addr_len(resolver));
	TAILQ_INIT(&c->queries);
	if (getrandom(&c->next_id, sizeof(c->next_id), 0) !=
	    sizeof(c->next_id))
		c->next_id = (uint16_t)(uintptr_t)c;
	if ((c->idle_ev = evtimer_new(df->base, dns_conn_idle_cb, c)) == NULL ||
	    (c->dial = upstream_dial(df->up, resolver, dns_conn_dial_cb,
	    c)) == NULL) {
		if (c->idle_ev != NULL)
			event_free(c->idle_ev);
		free(c);
		return NULL;
	}
	LIST_INSERT_HEAD(&df->conns, c, entry);
	df->nconns++;
	return c;
}

/*
 * Put q on a connection to its resolver: the least busy one below
 * DNS_PIPELINE, else a new one while the bounds allow, else the least
 * busy.  SERVFAIL when there is none to be had.
 */
static void
dns_dispatch(struct dnsfwd *df, struct dns_query *q)
{
	const struct sockaddr *r = df->o.server != NULL ? df->o.server :
	    (struct sockaddr *)&q->dst;
	struct dns_conn *c, *best = NULL;
	struct dns_query *o;
	unsigned same = 0;

	LIST_FOREACH(c, &df->conns, entry) {
		if (!addr_equal((struct sockaddr *)&c->resolver, r, true) ||
		    c->stale)
			continue;
		same++;
		if (best == NULL || c->n < best->n)
			best = c;
	}
	if ((best == NULL || best->n >= DNS_PIPELINE) &&
	    same < DNS_CONNS_PER_RESOLVER && df->nconns < DNS_CONNS_MAX &&
	    (c = dns_conn_new(df, r)) != NULL)
		best = c;
	if (best == NULL) {
		dns_query_fail(q);
		return;
	}
	/* an ID no other query on this connection has */
	do {
		q->id = best->next_id++;
		TAILQ_FOREACH(o, &best->queries, entry)
			if (o->id == q->id)
				break;
	} while (o != NULL);
	q->conn = best;
	TAILQ_INSERT_TAIL(&best->queries, q, entry);
	best->n++;
	evtimer_del(best->idle_ev);
	if (best->bev != NULL)
		dns_query_send(q);
}

/* Queue a query for a resolver over TCP. */
static void
dns_forward(struct dnsfwd *df, const struct sockaddr *client,
    const struct sockaddr *dst, const uint8_t *msg, size_t len,
    const struct dns_info *qi)
{
	struct timeval tv = { df->o.timeout_ms / 1000,
	    (df->o.timeout_ms % 1000) * 1000 };
	struct dns_query *q;

	if (df->pending >= DNS_PENDING_MAX ||
	    (q = calloc(1, sizeof(*q) + len)) == NULL) {
		df->st.servfail++;
		dns_reply(df, dst, client, dns_build_response(df->out,
		    sizeof(df->out), msg, len, qi, DNS_RCODE_SERVFAIL));
		return;
	}
	q->df = df;
	df->pending++;
	memcpy(&q->client, client, addr_len(client));
	memcpy(&q->dst, dst, addr_len(dst));
	q->client_id = qi->id;
	q->qtype = qi->qtype;
	q->limit = dns_udp_limit(qi);
	q->len = len;
	memcpy(q->msg, msg, len);
	clock_gettime(CLOCK_MONOTONIC, &q->start);
	if ((q->timer = evtimer_new(df->base, dns_query_timer_cb, q)) ==
	    NULL) {
		dns_query_fail(q);
		return;
	}
	evtimer_add(q->timer, &tv);
	dns_dispatch(df, q);
}

/* ---- fake-ip answers ------------------------------------------------- */

/* Whether name is under one of the excluded suffixes. */
static bool
dns_excluded(const struct dnsfwd *df, const char *name)
{
	const char *s = df->o.exclude, *e;
	char suffix[256];
	size_t n;

	while (s != NULL && *s != '\0') {
		e = strchr(s, ' ');
		n = e != NULL ? (size_t)(e - s) : strlen(s);
		if (n > 0 && n < sizeof(suffix)) {
			memcpy(suffix, s, n);
			suffix[n] = '\0';
			if (dns_name_has_suffix(name, suffix))
				return true;
		}
		s = e != NULL ? e + 1 : NULL;
	}
	return false;
}

/*
 * The address a reverse name stands for: "d.c.b.a.in-addr.arpa" or 32
 * nibbles and "ip6.arpa" (any case, no trailing dot).  false if qname is
 * not one.
 */
static bool
dns_ptr_addr(const char *qname, struct sockaddr_storage *ss)
{
	size_t n = strlen(qname);
	unsigned v[4], i;
	char end;

	memset(ss, 0, sizeof(*ss));
	if (n > 13 && strcasecmp(qname + n - 13, ".in-addr.arpa") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		char buf[32];

		if (n - 13 >= sizeof(buf))
			return false;
		memcpy(buf, qname, n - 13);
		buf[n - 13] = '\0';
		if (sscanf(buf, "%3u.%3u.%3u.%3u%c", &v[0], &v[1], &v[2], &v[3],
		    &end) != 4 || v[0] > 255 || v[1] > 255 || v[2] > 255 ||
		    v[3] > 255)
			return false;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(v[3] << 24 | v[2] << 16 |
		    v[1] << 8 | v[0]);
		return true;
	}
	if (n == 64 + 8 && strcasecmp(qname + 64, "ip6.arpa") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		int d;

		for (i = 0; i < 32; i++) {
			char c = qname[2 * i];

			if (qname[2 * i + 1] != '.')
				return false;
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return false;
			/* the first nibble is the address's last */
			sin6->sin6_addr.s6_addr[15 - i / 2] |=
			    (uint8_t)(i % 2 ? d << 4 : d);
		}
		sin6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

/*
 * A reverse query for a fake address: answered with the name it stands
 * for (NXDOMAIN when it stands for none); false when qname is not the
 * reverse name of a pool address.
 */
static bool
dns_fake_ptr(struct dnsfwd *df, const struct sockaddr *client,
    const struct sockaddr *dst, const uint8_t *msg, size_t len,
    const struct dns_info *qi)
{
	struct sockaddr_storage ss;
	uint8_t rdata[DNS_NAME_WIRE_MAX];
	const char *name;
	size_t n, rlen;

	if (!dns_ptr_addr(qi->qname, &ss) ||
	    !fakeip_contains(df->o.fakeip, (struct sockaddr *)&ss))
		return false;
	df->st.fake++;
	if ((name = fakeip_name(df->o.fakeip, (struct sockaddr *)&ss,
	    false)) == NULL || (rlen = dns_name_encode(name, rdata,
	    sizeof(rdata))) == 0) {
		dns_reply_rcode(df, dst, client, msg, len, DNS_RCODE_NXDOMAIN);
		return true;
	}
	n = dns_build_response(df->out, sizeof(df->out), msg, len, qi,
	    DNS_RCODE_NOERROR);
	if (n > 0)
		n = dns_add_answer(df->out, sizeof(df->out), n, DNS_TYPE_PTR,
		    DNS_FAKE_TTL, rdata, (uint16_t)rlen);
	dns_reply(df, dst, client, n);
	return true;
}

/*
 * Answer from the fake pools when the query is one for them (A, AAAA,
 * HTTPS, SVCB, and PTR of a pool address); false when it should go to a
 * resolver instead.
 */
static bool
dns_fake_answer(struct dnsfwd *df, const struct sockaddr *client,
    const struct sockaddr *dst, const uint8_t *msg, size_t len,
    const struct dns_info *qi)
{
	uint8_t addr[16];
	size_t n;

	if (qi->opcode == 0 && qi->qdcount == 1 && qi->qclass == DNS_CLASS_IN &&
	    qi->qtype == DNS_TYPE_PTR)
		return dns_fake_ptr(df, client, dst, msg, len, qi);
	if (qi->opcode != 0 || qi->qdcount != 1 || qi->qclass != DNS_CLASS_IN ||
	    (qi->qtype != DNS_TYPE_A && qi->qtype != DNS_TYPE_AAAA &&
	    qi->qtype != DNS_TYPE_HTTPS && qi->qtype != DNS_TYPE_SVCB) ||
	    !http_name_ok(qi->qname) || dns_excluded(df, qi->qname))
		return false;
	n = dns_build_response(df->out, sizeof(df->out), msg, len, qi,
	    DNS_RCODE_NOERROR);
	if (qi->qtype == DNS_TYPE_HTTPS || qi->qtype == DNS_TYPE_SVCB) {
		/* NODATA: hints in an answer would name real addresses */
		df->st.nodata++;
		dns_reply(df, dst, client, n);
		return true;
	}
	if (fakeip_addr(df->o.fakeip, qi->qname, qi->qtype == DNS_TYPE_A ?
	    AF_INET : AF_INET6, addr) == -1) {
		static struct log_limit lim;

		log_at_limited(&lim, LOG_LEVEL_WARN, false, "dns: fake-ip "
		    "table full of mappings in use (fake_ip_max): %s gets "
		    "SERVFAIL", qi->qname);
		df->st.servfail++;
		dns_reply_rcode(df, dst, client, msg, len, DNS_RCODE_SERVFAIL);
		return true;
	}
	if (n > 0)
		n = dns_add_answer(df->out, sizeof(df->out), n, qi->qtype,
		    DNS_FAKE_TTL, addr, qi->qtype == DNS_TYPE_A ? 4 : 16);
	df->st.fake++;
	dns_reply(df, dst, client, n);
	return true;
}

/* ---- intake ----------------------------------------------------------- */

bool
dnsfwd_take(void *arg, const struct sockaddr *src, const struct sockaddr *dst,
    const struct iovec *iov, int iovcnt, size_t len)
{
	struct dnsfwd *df = arg;
	static uint8_t msg[DNS_MSG_MAX];
	struct dns_info qi;
	const char *why;
	uint16_t port;
	size_t n = 0;
	unsigned i;
	int k;

	port = addr_port(dst);
	for (i = 0; i < df->o.nports; i++)
		if (df->o.ports[i] == port)
			break;
	if (i == df->o.nports)
		return false;
	df->st.queries++;
	for (k = 0; k < iovcnt && n + iov[k].iov_len <= sizeof(msg); k++) {
		memcpy(msg + n, iov[k].iov_base, iov[k].iov_len);
		n += iov[k].iov_len;
	}
	if (n != len || !dns_parse(msg, len, &qi, &why) || qi.qr) {
		df->st.bad++;
		log_debug("dns: dropped a datagram to port %u: %s", port,
		    n != len ? "too long" : qi.qr ? "a response" : why);
		return true;
	}
	if (df->o.fake_ip && dns_fake_answer(df, src, dst, msg, len, &qi))
		return true;
	dns_forward(df, src, dst, msg, len, &qi);
	return true;
}

/* ---- life cycle ------------------------------------------------------- */

struct dnsfwd *
dnsfwd_new(struct event_base *base, struct stack *stack, struct upstream *up,
    const struct dnsfwd_options *o)
{
	struct dnsfwd *df;

	if ((df = calloc(1, sizeof(*df))) == NULL) {
		log_error("dns: calloc");
		return NULL;
	}
	df->base = base;
	df->stack = stack;
	df->up = up;
	df->o = *o;
	if (df->o.timeout_ms == 0)
		df->o.timeout_ms = 5000;
	LIST_INIT(&df->conns);
	return df;
}

void
dnsfwd_free(struct dnsfwd *df)
{
	struct dns_conn *c;
	struct dns_query *q;

	if (df == NULL)
		return;
	while ((c = LIST_FIRST(&df->conns)) != NULL) {
		while ((q = TAILQ_FIRST(&c->queries)) != NULL)
			dns_query_free(q);
		dns_conn_close(c, false);
	}
	free(df);
}

void
dnsfwd_reconfigure(struct dnsfwd *df, struct upstream *up,
    const struct dnsfwd_options *o)
{
	df->up = up;
	df->o = *o;
	if (df->o.timeout_ms == 0)
		df->o.timeout_ms = 5000;
}

void
dnsfwd_get_stats(const struct dnsfwd *df, struct dnsfwd_stats *st)
{
	*st = df->st;
	st->pending = df->pending;
	st->conns = df->nconns;
	st->p50_ms = dns_quantile(df, 50, 100);
	st->p99_ms = dns_quantile(df, 99, 100);
}
