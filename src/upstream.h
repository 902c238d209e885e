/*
 * upstream.h - dial the upstream proxy for one flow and complete its
 * handshake (SOCKS5 or HTTP CONNECT, either inside TLS or not), then hand the
 * flow a bufferevent on which the tunnel is open.  The relay never learns
 * which protocol was used.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"

struct upstream;
struct upstream_dial;

/*
 * Dial result.  On success bev is the open tunnel and now belongs to the
 * callee (its callbacks are cleared; bytes the proxy already relayed may
 * wait in its input).  On failure bev is NULL, why says what went wrong
 * (valid during the call only) and proxy_fault tells whether the proxy
 * itself failed (unreachable, bad reply, TLS) rather than reporting the
 * destination's answer (refused, unreachable).  The dial is freed when the
 * callback returns; do not cancel it from inside.
 */
typedef void (*upstream_dial_cb)(void *arg, struct bufferevent *bev,
    const char *why, bool proxy_fault);

/*
 * Resolve the proxy, take the password from config_password() over the
 * URL's, check that a socket with fwmark and interface can be made (EPERM
 * and ENODEV are explained), and prepare TLS from c.  NULL and err on
 * failure.  Every socket to the proxy gets SO_MARK (c->fwmark, unless 0)
 * and SO_BINDTODEVICE (c->interface, unless empty) before connect(2).
 */
struct upstream	*upstream_new(struct event_base *base, const struct config *c,
		    char *err, size_t errlen);
/*
 * Let go of up: it is freed at once, or (after a reload) when the last
 * dial that uses it ends.  NULL is ok.
 */
void		 upstream_free(struct upstream *up);

/*
 * Start a tunnel to dst (AF_INET or AF_INET6).  The callback never runs
 * before this returns.  NULL if the dial could not even start (logged).
 */
struct upstream_dial *upstream_dial(struct upstream *up,
		    const struct sockaddr *dst, upstream_dial_cb cb, void *arg);
/*
 * The same to a host name and port (SOCKS5 ATYP DOMAINNAME, HTTP
 * "CONNECT name:port"): the proxy resolves it.  NULL if the name is not a
 * plain host name (http_name_ok()) or the dial could not start.
 */
struct upstream_dial *upstream_dial_name(struct upstream *up,
		    const char *name, uint16_t port, upstream_dial_cb cb,
		    void *arg);

/*
 * SOCKS5 UDP ASSOCIATE result.  On success bev is the control connection
 * (the callee's now, callbacks cleared; the association lives as long as
 * it stays open) and relay the proxy's UDP relay address (a BND.ADDR of
 * 0.0.0.0 or :: replaced by the proxy's address).  On failure bev and
 * relay are NULL, why says what went wrong (valid during the call only),
 * and refused tells that the proxy answered no (a REP, or authentication)
 * rather than could not be reached.
 */
typedef void (*upstream_assoc_cb)(void *arg, struct bufferevent *bev,
    const struct sockaddr *relay, const char *why, bool refused);
/*
 * Open a UDP association (socks5:// and socks5+tls:// upstreams only; see
 * upstream_udp_unsupported()).  Cancel with upstream_dial_cancel().  NULL
 * if it could not even start (logged).
 */
struct upstream_dial *upstream_associate(struct upstream *up,
		    upstream_assoc_cb cb, void *arg);
/*
 * Why datagrams cannot go through this upstream (http:// and https://;
 * socks5+tls:// unless allow_plain, since the relay would run in clear),
 * or NULL when they can.
 */
const char	*upstream_udp_unsupported(const struct upstream *up,
		    bool allow_plain);
/*
 * A non-blocking UDP socket with the upstream's mark and interface,
 * connected to relay (so only the relay's datagrams come in).  -1 with
 * err on failure.
 */
int		 upstream_udp_socket(const struct upstream *up,
		    const struct sockaddr *relay, char *err, size_t errlen);
/* Abandon a dial in progress; its callback will not run. */
void		 upstream_dial_cancel(struct upstream_dial *d);

/*
 * Half-close: no more data to the destination.  Call once the bev's
 * output is empty; reading goes on.
 */
void		 upstream_shutdown_write(struct bufferevent *bev);

/*
 * Whether the half-close asked for with upstream_shutdown_write() is done:
 * every byte and the close (for TLS: close_notify, then a FIN) are in the
 * kernel.  The write callback runs when the write side is flushed (TLS:
 * up to TLS_OUT_HIGH of ciphertext and close_notify may wait in the
 * socket bufferevent until then).  Until then, freeing bev would lose the
 * tail of the data.  A plain socket is flushed as soon as
 * upstream_shutdown_write() ran, since it is called with the output
 * empty; for one this does not look and returns true, so call it only
 * after upstream_shutdown_write().
 */
bool		 upstream_write_flushed(struct bufferevent *bev);
/*
 * Whether dst (any port) is the proxy's own address (an IPv4-mapped IPv6
 * address counts as the IPv4 one): a flow to it means the route to the
 * proxy leads into the tunnel, a loop.
 */
bool		 upstream_is_proxy(const struct upstream *up,
		    const struct sockaddr *dst);

/* The proxy's address, as resolved by upstream_new(). */
const struct sockaddr *upstream_addr(const struct upstream *up);

/* Kinds of failed dials. */
enum upstream_fail {
	UPSTREAM_FAIL_TIMEOUT,		/* connect_timeout ran out */
	UPSTREAM_FAIL_CONNECT,		/* the proxy could not be reached */
	UPSTREAM_FAIL_TLS,		/* the TLS handshake failed */
	UPSTREAM_FAIL_PROXY,		/* bad reply, authentication, refusal */
	UPSTREAM_FAIL_DESTINATION,	/* the proxy could not reach it */
	UPSTREAM_FAIL_KINDS,
};
#define UPSTREAM_DIAL_BUCKETS	13

/* Dials since start, over every upstream a reload replaced too. */
struct upstream_stats {
	uint64_t	dials;			/* opened */
	double		dial_seconds;		/* their latency, summed */
	double		le[UPSTREAM_DIAL_BUCKETS];	/* bucket bounds, s */
	uint64_t	dial_le[UPSTREAM_DIAL_BUCKETS];	/* cumulative */
	uint64_t	failed[UPSTREAM_FAIL_KINDS];
	uint64_t	tls_full;		/* handshakes */
	uint64_t	tls_resumed;
};
/* The counters, with up's TLS handshakes (NULL: earlier ones only). */
void		 upstream_get_stats(const struct upstream *up,
		    struct upstream_stats *st);

/* "socks5://host:port", no credentials, for logs. */
const char	*upstream_name(const struct upstream *up);

#endif
