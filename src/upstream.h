/*
 * upstream.h - dial the upstream proxy for one flow and complete its
 * handshake (SOCKS5 or HTTP CONNECT, either inside TLS or not), then hand the
 * flow a bufferevent on which the tunnel is open.  The relay never learns
 * which protocol was used.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stdbool.h>
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

/* Resolve the proxy and prepare TLS from c.  NULL and err on failure. */
struct upstream	*upstream_new(struct event_base *base, const struct config *c,
		    char *err, size_t errlen);
void		 upstream_free(struct upstream *up);

/*
 * Start a tunnel to dst (AF_INET or AF_INET6).  The callback never runs
 * before this returns.  NULL if the dial could not even start (logged).
 */
struct upstream_dial *upstream_dial(struct upstream *up,
		    const struct sockaddr *dst, upstream_dial_cb cb, void *arg);
/* Abandon a dial in progress; its callback will not run. */
void		 upstream_dial_cancel(struct upstream_dial *d);

/*
 * Half-close: no more data to the destination.  Call once the bev's
 * output is empty; reading goes on.
 */
void		 upstream_shutdown_write(struct bufferevent *bev);

/* "socks5://host:port", no credentials, for logs. */
const char	*upstream_name(const struct upstream *up);

#endif
