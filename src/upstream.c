/*
 * upstream.c - the proxy dialer: connect to the proxy, wrap the socket in
 * TLS for socks5+tls:// and https://, run the SOCKS5 or HTTP CONNECT
 * exchange with the pure codecs in socks5.c and http.c, enforce the
 * connect timeout over the whole exchange, and hand over the bufferevent.
 *
 * Every socket to the proxy is made here, with the firewall mark and the
 * interface binding applied before connect(2), so that routing can keep
 * it out of the tunnel.  Credentials go out through upstream_write_secret:
 * the bytes are referenced (not copied) by the output buffer and wiped when
 * it lets go of them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <mbedtls/platform_util.h>

#include "http.h"
#include "log.h"
#include "socks5.h"
#include "tls.h"
#include "upstream.h"

struct upstream {
	struct event_base	*base;
	struct url		 url;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	struct timeval		 connect_timeout;
	struct tls_client	*tls;		/* NULL: plain TCP */
	uint32_t		 fwmark;	/* SO_MARK, 0: none */
	char			 interface[IFNAMSIZ];	/* "": none */
	char			 name[URL_HOST_MAX + 32];
	unsigned		 dials;		/* in progress, holding it */
	bool			 released;	/* upstream_free()d: goes with the last dial */
};

enum dial_state {
	DIAL_CONNECTING,	/* TCP, then TLS when there is TLS */
	DIAL_METHOD,		/* SOCKS5 method selection */
	DIAL_AUTH,		/* SOCKS5 username/password */
	DIAL_REPLY,		/* SOCKS5 CONNECT reply */
	DIAL_HTTP,		/* HTTP CONNECT response */
};

struct upstream_dial {
	struct upstream		*up;
	struct bufferevent	*bev;
	struct event		*timer;
	enum dial_state		 state;
	struct sockaddr_storage	 dst;
	upstream_dial_cb	 cb;
	void			*arg;
	upstream_assoc_cb	 assoc_cb;	/* UDP ASSOCIATE, not CONNECT */
	struct timespec		 start;
	bool			 timed_out;
	char			 name[256];	/* CONNECT to a name, not dst */
	uint16_t		 port;		/* ... and this port */
	struct sockaddr_storage	 relay;		/* ... its BND.ADDR/PORT */
};

/* Dials of every upstream since start (reloads replace upstreams). */
static struct upstream_stats upstream_st;
static const double upstream_buckets[UPSTREAM_DIAL_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10,
};

static void	upstream_dial_read_cb(struct bufferevent *, void *);
static void	upstream_dial_event_cb(struct bufferevent *, short, void *);
static int	upstream_relay_fix(struct upstream_dial *);

/*
 * A non-blocking socket of the family and type with the mark and the
 * interface set.  -1 with err (errno kept) when it cannot be had.
 */
static int
upstream_socket(const struct upstream *up, int family, int type, char *err,
    size_t errlen)
{
	int	fd, e;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (up->fwmark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK,
	    &up->fwmark, sizeof(up->fwmark)) == -1) {
		e = errno;
		snprintf(err, errlen, "fwmark %u (SO_MARK): %s%s",
		    (unsigned)up->fwmark, strerror(e), e == EPERM ?
		    " (setting a mark needs CAP_NET_ADMIN or CAP_NET_RAW)" : "");
		goto bad;
	}
	if (up->interface[0] != '\0' && setsockopt(fd, SOL_SOCKET,
	    SO_BINDTODEVICE, up->interface, (socklen_t)strlen(up->interface))
	    == -1) {
		e = errno;
		snprintf(err, errlen, "interface %s (SO_BINDTODEVICE): %s%s",
		    up->interface, strerror(e), e == EPERM ?
		    " (binding needs CAP_NET_RAW)" : "");
		goto bad;
	}
	return fd;
bad:
	close(fd);
	errno = e;
	return -1;
}

/* Free hook for upstream_write_secret's bytes: wipe, then free. */
static void
upstream_secret_cleanup_cb(const void *data, size_t len, void *arg)
{
	(void)arg;
	mbedtls_platform_zeroize((void *)(uintptr_t)data, len);
	free((void *)(uintptr_t)data);
}

/*
 * Queue n secret bytes (credentials) on bev without leaving a copy behind:
 * the output buffer references a heap copy, wiped and freed once sent (or
 * when bev is freed first), and msg is wiped here.  libevent writes a
 * referenced chain to the socket as it is; the TLS layer encrypts it in
 * place from there.  What no one here can wipe: the kernel's socket
 * buffer until the proxy acknowledges, and mbedTLS's record buffer until
 * the next record overwrites it.  -1 if out of memory.
 */
static int
upstream_write_secret(struct bufferevent *bev, void *msg, size_t n)
{
	void	*copy;
	int	 rc = -1;

	if ((copy = malloc(n)) != NULL) {
		memcpy(copy, msg, n);
		if (evbuffer_add_reference(bufferevent_get_output(bev), copy,
		    n, upstream_secret_cleanup_cb, NULL) == 0)
			rc = 0;
		else
			upstream_secret_cleanup_cb(copy, n, NULL);
	}
	mbedtls_platform_zeroize(msg, n);
	return rc;
}

struct upstream *
upstream_new(struct event_base *base, const struct config *c, char *err,
    size_t errlen)
{
	struct upstream *up;
	struct addrinfo hints, *res;
	char port[8], pass[sizeof(up->url.pass)];
	int rc;

	if ((up = calloc(1, sizeof(*up))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	up->base = base;
	up->url = c->upstream;
	up->fwmark = c->fwmark;
	snprintf(up->interface, sizeof(up->interface), "%s", c->interface);
	up->connect_timeout.tv_sec = c->connect_timeout_ms / 1000;
	up->connect_timeout.tv_usec = (c->connect_timeout_ms % 1000) * 1000;
	url_redacted(&up->url, up->name, sizeof(up->name));

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	/* AI_ADDRCONFIG only for names: glibc refuses even 127.0.0.1 with
	 * it where the only IPv4 address is on lo (a fresh namespace) */
	hints.ai_flags = AI_ADDRCONFIG;
	{
		struct in6_addr tmp;

		if (inet_pton(AF_INET, up->url.host, &tmp) == 1 ||
		    inet_pton(AF_INET6, up->url.host, &tmp) == 1)
			hints.ai_flags = AI_NUMERICHOST;
	}
	snprintf(port, sizeof(port), "%u", up->url.port);
	if ((rc = getaddrinfo(up->url.host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "upstream %s: cannot resolve %s: %s",
		    up->name, up->url.host, gai_strerror(rc));
		free(up);
		return NULL;
	}
	memcpy(&up->addr, res->ai_addr, res->ai_addrlen);
	up->addrlen = res->ai_addrlen;
	freeaddrinfo(res);

	/* The password from password_file or SLUICE_PASSWORD, if any. */
	rc = config_password(c, pass, sizeof(pass), err, errlen);
	if (rc == 1)
		memcpy(up->url.pass, pass, sizeof(up->url.pass));
	mbedtls_platform_zeroize(pass, sizeof(pass));
	if (rc == -1) {
		upstream_free(up);
		return NULL;
	}

	/* Fail now, not on every flow, if the socket options are refused. */
	if (up->fwmark != 0 || up->interface[0] != '\0') {
		char	serr[160];
		int	fd;

		if ((fd = upstream_socket(up, up->addr.ss_family, SOCK_STREAM, serr,
		    sizeof(serr))) == -1) {
			snprintf(err, errlen, "upstream %s: %s", up->name,
			    serr);
			upstream_free(up);
			return NULL;
		}
		close(fd);
	}

	if (url_is_tls(&up->url)) {
		struct tls_options o = {
			.ca_file = c->ca_file,
			.server_name = c->server_name,
			.verify = c->verify,
			.client_cert = c->client_cert,
			.client_key = c->client_key,
			.pin_sha256 = c->has_pin ? c->pin_sha256 : NULL,
		};
		char terr[TLS_ERR_MAX];

		if ((up->tls = tls_client_new(&o, up->url.host, terr,
		    sizeof(terr))) == NULL) {
			snprintf(err, errlen, "upstream %s: tls: %s", up->name,
			    terr);
			upstream_free(up);
			return NULL;
		}
	}
	return up;
}

/* Free up for good (its TLS context lives on with TLS connections). */
static void
upstream_destroy(struct upstream *up)
{
	if (up->tls != NULL) {
		unsigned long full, resumed;

		tls_client_stats(up->tls, &full, &resumed);
		/* the master of workers never dials: nothing to say */
		if (full + resumed > 0)
			log_info("upstream %s: %lu full tls handshakes, %lu "
			    "resumed", up->name, full, resumed);
		upstream_st.tls_full += full;	/* the process's totals */
		upstream_st.tls_resumed += resumed;
		tls_client_free(up->tls);
	}
	mbedtls_platform_zeroize(&up->url, sizeof(up->url));
	free(up);
}

void
upstream_free(struct upstream *up)
{
	if (up == NULL)
		return;
	up->released = true;
	if (up->dials == 0)
		upstream_destroy(up);
}

const char *
upstream_name(const struct upstream *up)
{
	return up->name;
}

/* Free a dial's resources; the bev too unless it was handed over. */
static void
upstream_dial_free(struct upstream_dial *d)
{
	struct upstream *up = d->up;

	if (d->timer != NULL)
		event_free(d->timer);
	if (d->bev != NULL)
		bufferevent_free(d->bev);
	free(d);
	if (--up->dials == 0 && up->released)
		upstream_destroy(up);
}

/* Count a dial's outcome: its latency, or the kind of failure. */
static void
upstream_count(struct upstream_dial *d, const char *why, bool proxy_fault)
{
	struct timespec now;
	double s;
	int i;

	if (why == NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		s = (double)(now.tv_sec - d->start.tv_sec) +
		    (double)(now.tv_nsec - d->start.tv_nsec) / 1e9;
		upstream_st.dials++;
		upstream_st.dial_seconds += s;
		for (i = 0; i < UPSTREAM_DIAL_BUCKETS; i++)
			if (s <= upstream_buckets[i])
				upstream_st.dial_le[i]++;
		return;
	}
	if (d->timed_out)
		upstream_st.failed[UPSTREAM_FAIL_TIMEOUT]++;
	else if (strncmp(why, "proxy tls:", 10) == 0)
		upstream_st.failed[UPSTREAM_FAIL_TLS]++;
	else if (d->state == DIAL_CONNECTING)
		upstream_st.failed[UPSTREAM_FAIL_CONNECT]++;
	else if (!proxy_fault && d->assoc_cb == NULL)
		upstream_st.failed[UPSTREAM_FAIL_DESTINATION]++;
	else
		upstream_st.failed[UPSTREAM_FAIL_PROXY]++;
}

void
upstream_get_stats(const struct upstream *up, struct upstream_stats *st)
{
	unsigned long full = 0, resumed = 0;

	*st = upstream_st;
	memcpy(st->le, upstream_buckets, sizeof(st->le));
	if (up != NULL && up->tls != NULL) {
		tls_client_stats(up->tls, &full, &resumed);
		st->tls_full += full;
		st->tls_resumed += resumed;
	}
}

/*
 * Finish a dial: hand over the bev (why == NULL) or report failure.  For
 * an association, proxy_fault means the proxy said no (a REP, or
 * authentication), not that it could not be reached.
 */
static void
upstream_dial_done(struct upstream_dial *d, const char *why, bool proxy_fault)
{
	struct bufferevent *bev = NULL;
	void *arg = d->arg;

	upstream_count(d, why, proxy_fault);
	if (why == NULL) {
		bev = d->bev;
		d->bev = NULL;
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		bufferevent_set_timeouts(bev, NULL, NULL);
	}
	if (d->assoc_cb != NULL)
		d->assoc_cb(arg, bev, why == NULL ?
		    (struct sockaddr *)&d->relay : NULL, why, proxy_fault);
	else
		d->cb(arg, bev, why, proxy_fault);
	upstream_dial_free(d);
}

void
upstream_dial_cancel(struct upstream_dial *d)
{
	if (d != NULL)
		upstream_dial_free(d);
}

static void
upstream_dial_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_dial *d = arg;

	(void)fd;
	(void)what;
	d->timed_out = true;
	upstream_dial_done(d, d->state != DIAL_CONNECTING ?
	    "proxy handshake timed out" : d->up->tls != NULL ?
	    "proxy connect or tls handshake timed out" :
	    "proxy connect timed out", d->assoc_cb == NULL);
}

/* Send the SOCKS5 CONNECT (or UDP ASSOCIATE) request. */
static int
upstream_send_connect(struct upstream_dial *d)
{
	uint8_t msg[SOCKS5_MSG_MAX];
	size_t n;

	/* the address datagrams will come from is not known (NAT, the
	 * family of the relay): all zeros, as RFC 1928 allows */
	if (d->assoc_cb != NULL)
		n = socks5_build_associate(msg, sizeof(msg), NULL);
	else if (d->name[0] != '\0')
		n = socks5_build_connect_name(msg, sizeof(msg), d->name,
		    d->port);
	else
		n = socks5_build_connect(msg, sizeof(msg),
		    (struct sockaddr *)&d->dst);
	if (n == 0 || bufferevent_write(d->bev, msg, n) == -1)
		return -1;
	d->state = DIAL_REPLY;
	return 0;
}

/* Send the HTTP CONNECT request for the flow's destination. */
static int
upstream_send_http(struct upstream_dial *d)
{
	char msg[1024];
	size_t n;
	int rc = 0;

	if (d->name[0] != '\0')
		n = http_build_connect_name(msg, sizeof(msg), d->name, d->port,
		    d->up->url.has_auth ? d->up->url.user : NULL,
		    d->up->url.has_auth ? d->up->url.pass : NULL);
	else
		n = http_build_connect(msg, sizeof(msg),
		    (struct sockaddr *)&d->dst,
		    d->up->url.has_auth ? d->up->url.user : NULL,
		    d->up->url.has_auth ? d->up->url.pass : NULL);
	if (n == 0 || (d->up->url.has_auth ? upstream_write_secret(d->bev,
	    msg, n) : bufferevent_write(d->bev, msg, n)) == -1)
		rc = -1;
	mbedtls_platform_zeroize(msg, sizeof(msg));
	d->state = DIAL_HTTP;
	return rc;
}

/* Read the HTTP CONNECT response; 1 done, 0 need more, -1 failed. */
static int
upstream_read_http(struct upstream_dial *d, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in), used = 0;
	const char *buf, *why = NULL;
	char reason[128], msg[200];
	enum http_status st;
	int code = 0;

	if (len > HTTP_HEADER_MAX)
		len = HTTP_HEADER_MAX;
	buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	st = http_parse_response(buf, len, &code, reason, sizeof(reason),
	    &used, &why);
	if (st == HTTP_MORE)
		return 0;
	if (st == HTTP_FAIL) {
		snprintf(msg, sizeof(msg), "http: bad response: %s", why);
		upstream_dial_done(d, msg, true);
		return -1;
	}
	if (!http_status_ok(code)) {
		/* 502/503/504: the proxy could not reach the destination */
		bool proxy_fault = !(code == 502 || code == 503 || code == 504);

		snprintf(msg, sizeof(msg), "http: %d %s", code, reason);
		upstream_dial_done(d, msg, proxy_fault);
		return -1;
	}
	evbuffer_drain(in, used);
	upstream_dial_done(d, NULL, false);
	return 1;
}

static void
upstream_dial_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_dial *d = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t msg[SOCKS5_MSG_MAX];
	const uint8_t *buf;
	const char *why = NULL;
	enum socks5_status st;
	size_t len, used = 0, n;
	uint8_t method, rep = 0;

	if (d->state == DIAL_HTTP) {
		upstream_read_http(d, in);
		return;
	}
	for (;;) {
		len = evbuffer_get_length(in);
		if (len == 0)
			return;
		buf = evbuffer_pullup(in, -1);
		switch (d->state) {
		case DIAL_METHOD:
			st = socks5_parse_method(buf, len, d->up->url.has_auth,
			    &method, &used, &why);
			if (st != SOCKS5_OK)
				break;
			evbuffer_drain(in, used);
			if (method == SOCKS5_METHOD_USERPASS) {
				n = socks5_build_auth(msg, sizeof(msg),
				    d->up->url.user, d->up->url.pass);
				if (n == 0 ||
				    upstream_write_secret(bev, msg, n) == -1) {
					st = SOCKS5_FAIL;
					why = "cannot send credentials";
				}
				mbedtls_platform_zeroize(msg, sizeof(msg));
				d->state = DIAL_AUTH;
			} else if (upstream_send_connect(d) == -1) {
				st = SOCKS5_FAIL;
				why = "cannot send request";
			}
			break;
		case DIAL_AUTH:
			st = socks5_parse_auth(buf, len, &used, &why);
			if (st != SOCKS5_OK)
				break;
			evbuffer_drain(in, used);
			if (upstream_send_connect(d) == -1) {
				st = SOCKS5_FAIL;
				why = "cannot send request";
			}
			break;
		case DIAL_REPLY:
			st = socks5_parse_reply(buf, len, &rep, &d->relay,
			    &used, &why);
			if (st == SOCKS5_OK && d->assoc_cb != NULL &&
			    upstream_relay_fix(d) == -1) {
				st = SOCKS5_FAIL;
				why = "udp relay address is a name";
			}
			if (st == SOCKS5_OK) {
				evbuffer_drain(in, used);
				upstream_dial_done(d, NULL, false);
				return;
			}
			break;
		default:
			st = SOCKS5_FAIL;
			why = "unexpected data";
			break;
		}
		if (st == SOCKS5_MORE)
			return;
		if (st == SOCKS5_FAIL) {
			char reason[160];
			bool proxy_fault = true;

			if (d->assoc_cb != NULL) {
				/* the proxy answered: refused, or bad */
				proxy_fault = true;
				snprintf(reason, sizeof(reason), "socks5%s: %s",
				    d->state == DIAL_AUTH ? " authentication" :
				    "", why);
			} else if (d->state == DIAL_REPLY && rep != 0) {
				/* the destination's answer, relayed by the proxy */
				proxy_fault = rep == SOCKS5_REP_GENERAL_FAILURE ||
				    rep == SOCKS5_REP_NOT_ALLOWED ||
				    rep == SOCKS5_REP_CMD_UNSUPPORTED ||
				    rep == SOCKS5_REP_ATYP_UNSUPPORTED;
				snprintf(reason, sizeof(reason), "socks5: %s", why);
			} else if (d->state == DIAL_AUTH) {
				snprintf(reason, sizeof(reason),
				    "socks5 authentication: %s", why);
			} else {
				snprintf(reason, sizeof(reason),
				    "socks5: %s", why);
			}
			upstream_dial_done(d, reason, proxy_fault);
			return;
		}
	}
}

/*
 * The UDP relay's address from an ASSOCIATE reply: BND.ADDR 0.0.0.0 or ::
 * means the proxy's own address (where the control connection went).
 * -1 when it is a domain name, which sluice does not resolve.
 */
static int
upstream_relay_fix(struct upstream_dial *d)
{
	struct sockaddr_storage *r = &d->relay;
	in_port_t port;

	if (r->ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)r;

		if (sin->sin_addr.s_addr != htonl(INADDR_ANY))
			return 0;
		port = sin->sin_port;
	} else if (r->ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)r;

		if (!IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			return 0;
		port = sin6->sin6_port;
	} else
		return -1;
	memcpy(r, &d->up->addr, d->up->addrlen);
	if (r->ss_family == AF_INET)
		((struct sockaddr_in *)r)->sin_port = port;
	else
		((struct sockaddr_in6 *)r)->sin6_port = port;
	return 0;
}

static void
upstream_dial_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_dial *d = arg;
	uint8_t msg[8];
	char reason[160];
	size_t n;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		evutil_socket_t fd = bufferevent_getfd(bev);

		if (fd >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof(one));
		bufferevent_enable(bev, EV_READ);
		if (d->up->url.scheme == URL_HTTP ||
		    d->up->url.scheme == URL_HTTPS) {
			if (upstream_send_http(d) == -1)
				upstream_dial_done(d,
				    "http: cannot send request", true);
			return;
		}
		n = socks5_build_greeting(msg, sizeof(msg),
		    d->up->url.has_auth);
		if (n == 0 || bufferevent_write(bev, msg, n) == -1) {
			upstream_dial_done(d, "socks5: cannot send greeting",
			    true);
			return;
		}
		d->state = DIAL_METHOD;
		return;
	}
	if ((what & BEV_EVENT_ERROR) && tls_bufferevent_error(bev) != NULL) {
		snprintf(reason, sizeof(reason), "proxy tls: %s",
		    tls_bufferevent_error(bev));
	} else if (what & BEV_EVENT_ERROR) {
		int e = EVUTIL_SOCKET_ERROR();

		snprintf(reason, sizeof(reason), "proxy %s: %s",
		    d->state == DIAL_CONNECTING ? "connect" : "connection",
		    e ? evutil_socket_error_to_string(e) : "error");
	} else if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason),
		    "proxy closed the connection during the handshake");
	else
		snprintf(reason, sizeof(reason), "proxy: event 0x%x", what);
	/* an association: a close in answer to the request is a refusal */
	upstream_dial_done(d, reason, d->assoc_cb == NULL ||
	    ((what & BEV_EVENT_EOF) && (d->state == DIAL_REPLY ||
	    d->state == DIAL_AUTH)));
}

/* Start connecting d to the proxy; frees d and returns NULL on failure. */
static struct upstream_dial *
upstream_dial_start(struct upstream_dial *d)
{
	struct upstream *up = d->up;
	char serr[160];
	int fd;

	d->state = DIAL_CONNECTING;
	clock_gettime(CLOCK_MONOTONIC, &d->start);
	up->dials++;
	if ((fd = upstream_socket(up, up->addr.ss_family, SOCK_STREAM, serr,
		    sizeof(serr))) == -1) {
		log_warnx_rl("upstream %s: %s", up->name, serr);
		upstream_dial_free(d);
		return NULL;
	}
	d->bev = bufferevent_socket_new(up->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	d->timer = evtimer_new(up->base, upstream_dial_timer_cb, d);
	if (d->bev == NULL || d->timer == NULL) {
		log_warnx_rl("upstream: out of memory");
		if (d->bev == NULL)
			close(fd);
		goto bad;
	}
	if (bufferevent_socket_connect(d->bev, (struct sockaddr *)&up->addr,
	    (int)up->addrlen) == -1) {
		log_warn_rl("upstream: connect %s", up->name);
		goto bad;
	}
	if (up->tls != NULL) {
		struct bufferevent *tbev;

		if ((tbev = tls_bufferevent_new(up->tls, up->base,
		    d->bev)) == NULL) {
			log_warnx_rl("upstream: tls: out of memory");
			goto bad;
		}
		d->bev = tbev;
	}
	bufferevent_setcb(d->bev, upstream_dial_read_cb, NULL,
	    upstream_dial_event_cb, d);
	evtimer_add(d->timer, &up->connect_timeout);
	return d;
bad:
	upstream_dial_free(d);
	return NULL;
}

/* A new dial with its callback (a CONNECT's or an association's). */
static struct upstream_dial *
upstream_dial_alloc(struct upstream *up, upstream_dial_cb cb,
    upstream_assoc_cb assoc_cb, void *arg)
{
	struct upstream_dial *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_warn_rl("upstream: calloc");
		return NULL;
	}
	d->up = up;
	d->cb = cb;
	d->assoc_cb = assoc_cb;
	d->arg = arg;
	return d;
}

struct upstream_dial *
upstream_dial(struct upstream *up, const struct sockaddr *dst,
    upstream_dial_cb cb, void *arg)
{
	struct upstream_dial *d;

	if ((dst->sa_family != AF_INET && dst->sa_family != AF_INET6) ||
	    (d = upstream_dial_alloc(up, cb, NULL, arg)) == NULL)
		return NULL;
	memcpy(&d->dst, dst, dst->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	return upstream_dial_start(d);
}

struct upstream_dial *
upstream_dial_name(struct upstream *up, const char *name, uint16_t port,
    upstream_dial_cb cb, void *arg)
{
	struct upstream_dial *d;

	if (!http_name_ok(name) ||
	    (d = upstream_dial_alloc(up, cb, NULL, arg)) == NULL)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->port = port;
	return upstream_dial_start(d);
}

const char *
upstream_udp_unsupported(const struct upstream *up, bool allow_plain)
{
	switch (up->url.scheme) {
	case URL_SOCKS5:
		return NULL;
	case URL_SOCKS5_TLS:
		return allow_plain ? NULL : "the socks5 udp relay would run "
		    "outside tls, in clear ([udp] allow_plain = yes allows it)";
	default:
		return "an http proxy cannot carry udp";
	}
}

struct upstream_dial *
upstream_associate(struct upstream *up, upstream_assoc_cb cb, void *arg)
{
	struct upstream_dial *d;

	if ((up->url.scheme != URL_SOCKS5 && up->url.scheme !=
	    URL_SOCKS5_TLS) || (d = upstream_dial_alloc(up, NULL, cb,
	    arg)) == NULL)
		return NULL;
	return upstream_dial_start(d);
}

int
upstream_udp_socket(const struct upstream *up, const struct sockaddr *relay,
    char *err, size_t errlen)
{
	socklen_t len = relay->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd, e;

	if ((fd = upstream_socket(up, relay->sa_family, SOCK_DGRAM, err,
	    errlen)) == -1)
		return -1;
	if (connect(fd, relay, len) == -1) {
		e = errno;
		snprintf(err, errlen, "udp relay connect: %s", strerror(e));
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void
upstream_shutdown_write(struct bufferevent *bev)
{
	evutil_socket_t fd;

	if (tls_bufferevent_is_tls(bev)) {
		tls_bufferevent_shutdown_write(bev);
		return;
	}
	if ((fd = bufferevent_getfd(bev)) >= 0)
		shutdown(fd, SHUT_WR);
}

bool
upstream_write_flushed(struct bufferevent *bev)
{
	if (tls_bufferevent_is_tls(bev))
		return tls_bufferevent_write_flushed(bev);
	/*
	 * A socket: the flow calls upstream_shutdown_write() only with the
	 * output empty, and shutdown(2) hands the FIN to the kernel at once;
	 * so this does not look and says true.
	 */
	return true;
}

/* The IPv4 address of sa: AF_INET, or an IPv4-mapped AF_INET6. */
static bool
upstream_ipv4_of(const struct sockaddr *sa, struct in_addr *out)
{
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		*out = ((const struct sockaddr_in *)sa)->sin_addr;
		return true;
	}
	sin6 = (const struct sockaddr_in6 *)sa;
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(out, &sin6->sin6_addr.s6_addr[12], 4);
		return true;
	}
	return false;
}

bool
upstream_is_proxy(const struct upstream *up, const struct sockaddr *dst)
{
	const struct sockaddr *p = (const struct sockaddr *)&up->addr;
	struct in_addr a, b;

	if (upstream_ipv4_of(p, &a) && upstream_ipv4_of(dst, &b))
		return a.s_addr == b.s_addr;
	if (p->sa_family == AF_INET6 && dst->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)dst)->sin6_addr,
		    &((const struct sockaddr_in6 *)p)->sin6_addr, 16) == 0;
	return false;
}

const struct sockaddr *
upstream_addr(const struct upstream *up)
{
	return (const struct sockaddr *)&up->addr;
}
