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

/*
 * Resolve the proxy, take the password from config_password() over the
 * URL's, check that a socket with fwmark and interface can be made (EPERM
 * and ENODEV are explained), and prepare TLS from c.  NULL and err on
 * failure.  Every socket to the proxy gets SO_MARK (c->fwmark, unless 0)
 * and SO_BINDTODEVICE (c->interface, unless empty) before connect(2).
 */
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

/* "socks5://host:port", no credentials, for logs. */
const char	*upstream_name(const struct upstream *up);

#endif
