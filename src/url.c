/*
 * url.c - parse upstream proxy URLs (scheme://[user[:pass]@]host[:port][/]).
 *
 * The credentials are split off at the last '@', so a password holding a
 * raw '/', '?', '#' or '@' still works.  Error messages never quote
 * anything before that '@'; the password must not reach a log.  Without
 * an '@' a mistyped URL may still hold one ("socks5://alice:hunter2",
 * "socks5://alice:hunter2:host:1080"): then nothing after the first ':'
 * is quoted, and with more than one ':' nothing at all.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/platform_util.h>

#include "url.h"

static const struct {
	enum url_scheme	 scheme;
	const char	*name;
	uint16_t	 port;
} url_schemes[] = {
	{ URL_SOCKS5,		"socks5",	1080 },
	{ URL_SOCKS5_TLS,	"socks5+tls",	1080 },
	{ URL_HTTP,		"http",		8080 },
	{ URL_HTTPS,		"https",	443 },
};
#define URL_NSCHEMES	(sizeof(url_schemes) / sizeof(url_schemes[0]))

/* What an error message may quote of the text after "scheme://". */
enum url_quote {
	URL_QUOTE_ALL,		/* host, port and what follows */
	URL_QUOTE_HOST,		/* the host only */
	URL_QUOTE_NONE,		/* nothing */
};

/* Format an error into err (if there is room) and return false. */
static bool __attribute__((format(printf, 3, 4)))
url_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* Value of one hex digit, or -1. */
static int
url_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode the n bytes at s into out (room for URL_CRED_MAX bytes and
 * a NUL).  Returns 0, or -1 for a bad escape or %00, or -2 if too long.
 */
static int
url_decode_cred(const char *s, size_t n, char *out)
{
	size_t	i, o = 0;
	int	hi, lo;
	char	c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '%') {
			if (n - i < 3)
				return -1;
			hi = url_hex_value(s[i + 1]);
			lo = url_hex_value(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o == URL_CRED_MAX)
			return -2;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* A host name: letters, digits, '-', '.', '_'. */
static bool
url_valid_name(const char *s, size_t n)
{
	size_t	i;
	char	c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

/* True if s, up to a '/', '?' or '#', is an IPv6 literal without brackets. */
static bool
url_is_bare_ipv6(const char *s)
{
	struct in6_addr	in6;
	char		tmp[INET6_ADDRSTRLEN];
	size_t		n;

	n = strcspn(s, "/?#");
	if (n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, &in6) == 1;
}

/* A scheme: a letter, then letters, digits, '+', '-' or '.'. */
static bool
url_valid_scheme(const char *s, size_t n)
{
	size_t	i;
	char	c;

	if (n == 0 || n > 16)
		return false;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (i > 0 && ((c >= '0' && c <= '9') || c == '+' ||
		    c == '-' || c == '.'))))
			return false;
	}
	return true;
}

/* Parse "user[:pass]" (n bytes at s) into out; false with err. */
static bool
url_parse_userinfo(const char *s, size_t n, struct url *out, char *err,
    size_t errlen)
{
	const char	*colon;
	size_t		 ulen;
	int		 rc;

	colon = memchr(s, ':', n);
	ulen = colon != NULL ? (size_t)(colon - s) : n;
	if (ulen == 0)
		return url_error(err, errlen, "empty user name before `@'");
	rc = url_decode_cred(s, ulen, out->user);
	if (rc == -1)
		return url_error(err, errlen,
		    "bad percent-encoding in user name");
	if (rc == -2)
		return url_error(err, errlen, "user name longer than %d bytes",
		    URL_CRED_MAX);
	if (colon != NULL) {
		rc = url_decode_cred(colon + 1, n - ulen - 1, out->pass);
		if (rc == -1)
			return url_error(err, errlen,
			    "bad percent-encoding in password");
		if (rc == -2)
			return url_error(err, errlen,
			    "password longer than %d bytes", URL_CRED_MAX);
	}
	if ((out->scheme == URL_HTTP || out->scheme == URL_HTTPS) &&
	    strchr(out->user, ':') != NULL)
		return url_error(err, errlen,
		    "user name with `:': HTTP Basic cannot carry it");
	out->has_auth = true;
	return true;
}

/*
 * Parse "host[:port][/]" (the NUL-terminated s) into out; false with err,
 * which quotes only what q allows.
 */
static bool
url_parse_hostport(const char *s, enum url_quote q, struct url *out,
    char *err, size_t errlen)
{
	const char	*host, *end, *p, *t;
	struct in6_addr	 in6;
	size_t		 hlen;
	unsigned long	 port;
	char		 tmp[INET6_ADDRSTRLEN];
	bool		 ok;

	if (*s == '[') {
		host = s + 1;
		end = strchr(host, ']');
		if (end == NULL)
			return url_error(err, errlen,
			    "missing `]' after IPv6 address");
		hlen = (size_t)(end - host);
		if (hlen == 0)
			return url_error(err, errlen, "empty host");
		ok = hlen < sizeof(tmp);
		if (ok) {
			memcpy(tmp, host, hlen);
			tmp[hlen] = '\0';
			ok = inet_pton(AF_INET6, tmp, &in6) == 1;
		}
		if (!ok) {
			if (q == URL_QUOTE_NONE)
				return url_error(err, errlen,
				    "bad IPv6 address");
			return url_error(err, errlen, "bad IPv6 address `%.*s'",
			    (int)hlen, host);
		}
		p = end + 1;
	} else {
		host = s;
		hlen = strcspn(host, ":/?#");
		p = host + hlen;
		if (*p == ':' && url_is_bare_ipv6(host))
			return url_error(err, errlen,
			    "IPv6 address must be in brackets");
		if (hlen == 0)
			return url_error(err, errlen, "empty host");
		if (hlen > URL_HOST_MAX)
			return url_error(err, errlen,
			    "host name longer than %d bytes", URL_HOST_MAX);
		if (!url_valid_name(host, hlen)) {
			if (q == URL_QUOTE_NONE)
				return url_error(err, errlen, "bad host name");
			return url_error(err, errlen, "bad host name `%.*s'",
			    (int)hlen, host);
		}
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';

	if (*p == ':') {
		t = p + 1;
		p = t + strcspn(t, "/?#");
		if (p == t)
			return url_error(err, errlen, "empty port after `:'");
		port = 0;
		for (end = t; end < p; end++) {
			if (*end < '0' || *end > '9') {
				if (q != URL_QUOTE_ALL)
					return url_error(err, errlen, "bad "
					    "port: expected 1..65535 (not "
					    "shown: it may be a password; "
					    "user:pass goes before an `@')");
				return url_error(err, errlen, "bad port `%.*s'",
				    (int)(p - t), t);
			}
			if (port <= 65535)
				port = port * 10 + (unsigned long)(*end - '0');
		}
		if ((port == 0 || port > 65535) && q != URL_QUOTE_ALL)
			return url_error(err, errlen, "port out of range "
			    "1..65535 (not shown: it may be a password; "
			    "user:pass goes before an `@')");
		if (port == 0 || port > 65535)
			return url_error(err, errlen,
			    "port `%.*s' out of range 1..65535", (int)(p - t),
			    t);
		out->port = (uint16_t)port;
	} else if (*p != '\0' && *p != '/' && *p != '?' && *p != '#') {
		if (q == URL_QUOTE_NONE)
			return url_error(err, errlen,
			    "unexpected text after host");
		return url_error(err, errlen, "unexpected `%s' after host", p);
	}

	/* Nothing may follow but a single '/'. */
	if (*p != '\0' && strcmp(p, "/") != 0) {
		if (q != URL_QUOTE_ALL)
			return url_error(err, errlen,
			    "unexpected text after host and port");
		return url_error(err, errlen,
		    "unexpected `%s' after host and port", p);
	}
	return true;
}

/*
 * What errors may quote of auth, the text after "scheme://": all of it
 * after an '@' (the userinfo is before it), and without one only up to a
 * ':' that may start a password; nothing if there are more ':'s.
 */
static enum url_quote
url_quote_policy(const char *auth, bool has_at)
{
	const char	*p = auth, *rb;
	size_t		 colons = 0;

	if (has_at)
		return URL_QUOTE_ALL;
	if (*p == '[' && (rb = strchr(p, ']')) != NULL) {
		/* "[v6]:port": the colons inside are the address's */
		for (p = rb + 1; *p != '\0'; p++)
			colons += *p == ':';
	} else {
		for (; *p != '\0'; p++)
			colons += *p == ':';
	}
	if (colons == 0)
		return URL_QUOTE_ALL;
	return colons == 1 ? URL_QUOTE_HOST : URL_QUOTE_NONE;
}

bool
url_parse(const char *s, struct url *out, char *err, size_t errlen)
{
	const char	*sep, *auth, *at;
	size_t		 slen, i;

	memset(out, 0, sizeof(*out));
	if (s == NULL || *s == '\0')
		return url_error(err, errlen, "empty URL");

	sep = strstr(s, "://");
	if (sep == NULL)
		return url_error(err, errlen, "missing scheme: expected "
		    "socks5://, socks5+tls://, http:// or https://");
	slen = (size_t)(sep - s);
	for (i = 0; i < URL_NSCHEMES; i++) {
		if (strlen(url_schemes[i].name) == slen &&
		    strncasecmp(s, url_schemes[i].name, slen) == 0)
			break;
	}
	if (i == URL_NSCHEMES) {
		/* Quote only what looks like a scheme, never credentials. */
		if (!url_valid_scheme(s, slen))
			return url_error(err, errlen, "bad scheme");
		return url_error(err, errlen, "unknown scheme `%.*s'",
		    (int)slen, s);
	}
	out->scheme = url_schemes[i].scheme;
	out->port = url_schemes[i].port;

	auth = sep + 3;
	at = strrchr(auth, '@');
	if (at != NULL) {
		if (!url_parse_userinfo(auth, (size_t)(at - auth), out, err,
		    errlen))
			goto bad;
		auth = at + 1;
	}
	if (!url_parse_hostport(auth, url_quote_policy(auth, at != NULL), out,
	    err, errlen))
		goto bad;
	return true;

bad:
	mbedtls_platform_zeroize(out, sizeof(*out));
	return false;
}

bool
url_is_tls(const struct url *u)
{
	return u->scheme == URL_SOCKS5_TLS || u->scheme == URL_HTTPS;
}

const char *
url_scheme_name(enum url_scheme s)
{
	size_t	i;

	for (i = 0; i < URL_NSCHEMES; i++) {
		if (url_schemes[i].scheme == s)
			return url_schemes[i].name;
	}
	return "?";
}

const char *
url_redacted(const struct url *u, char *buf, size_t len)
{
	const char	*lb = "", *rb = "";

	if (len == 0)
		return buf;
	if (strchr(u->host, ':') != NULL) {
		lb = "[";
		rb = "]";
	}
	snprintf(buf, len, "%s://%s%s%s:%u", url_scheme_name(u->scheme), lb,
	    u->host, rb, (unsigned)u->port);
	return buf;
}
