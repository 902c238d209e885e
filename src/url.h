/*
 * url.h - upstream proxy URLs.
 *
 *   socks5://[user:pass@]host[:port]       RFC 1928 (+ RFC 1929 auth)
 *   socks5+tls://[user:pass@]host[:port]   the same inside TLS
 *   http://[user:pass@]host[:port]         HTTP/1.1 CONNECT
 *   https://[user:pass@]host[:port]        the same inside TLS
 *
 * host is a name, an IPv4 literal or a bracketed IPv6 literal.  user and
 * pass are percent-decoded.  Default ports: 1080 for socks5 and socks5+tls,
 * 8080 for http, 443 for https.  A user without a password parses for
 * every scheme (the password may come from elsewhere: config_password());
 * socks5 needs one in the end, config_validate() checks.
 */
#ifndef SLUICE_URL_H
#define SLUICE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum url_scheme {
	URL_SOCKS5,
	URL_SOCKS5_TLS,
	URL_HTTP,
	URL_HTTPS,
};

#define URL_HOST_MAX	255
#define URL_CRED_MAX	255	/* RFC 1929 limit for user and for pass */

struct url {
	enum url_scheme	scheme;
	char		host[URL_HOST_MAX + 1];	/* no brackets */
	uint16_t	port;
	bool		has_auth;
	char		user[URL_CRED_MAX + 1];
	char		pass[URL_CRED_MAX + 1];
};

/*
 * Parse s into *out.  On failure return false and write a reason into err.
 * The reason never quotes the user info (anything before the last '@');
 * without an '@', it quotes nothing after the first ':' of the authority
 * (a password typed without "@host" would be there), and with more than
 * one ':' nothing at all.
 */
bool url_parse(const char *s, struct url *out, char *err, size_t errlen);
/* True for the schemes that run inside TLS. */
bool url_is_tls(const struct url *u);
/* "socks5", "socks5+tls", "http", "https" */
const char *url_scheme_name(enum url_scheme s);
/* Write "scheme://host:port" (no credentials) for logs; returns buf. */
const char *url_redacted(const struct url *u, char *buf, size_t len);

#endif
