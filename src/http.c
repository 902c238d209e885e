/*
 * http.c - HTTP/1.1 CONNECT request builder and response parser: pure
 * functions over bytes, see http.h for the exact rules.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "http.h"

/* "[" INET6_ADDRSTRLEN "]:65535" */
#define HTTP_AUTHORITY_MAX	(INET6_ADDRSTRLEN + 8)

/* tchar (RFC 9110 section 5.6.2): the characters of a header name. */
static int
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* HTAB, SP, VCHAR or obs-text: what a header value or reason may hold. */
static int
http_is_text(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
http_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Control characters are not allowed in user-id or password (RFC 7617). */
static int
http_has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	}
	return 0;
}

/* Write "a.b.c.d:port" or "[v6]:port"; -1 for another family. */
static int
http_format_authority(const struct sockaddr *sa, char *out, size_t len)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	char				 addr[INET6_ADDRSTRLEN];
	int				 n;

	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		if (inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr) ==
		    NULL)
			return -1;
		n = snprintf(out, len, "%s:%u", addr, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof addr) ==
		    NULL)
			return -1;
		n = snprintf(out, len, "[%s]:%u", addr, ntohs(sin6->sin6_port));
		break;
	default:
		return -1;
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

/* Append "Proxy-Authorization: Basic ...\r\n" at buf[*off]; -1 if no room. */
static int
http_add_auth(char *buf, size_t cap, size_t *off, const char *user,
    const char *pass)
{
	static const char	 prefix[] = "Proxy-Authorization: Basic ";
	unsigned char		 cred[HTTP_CRED_MAX + 1];
	size_t			 ulen, plen, olen;
	int			 r;

	if (pass == NULL || strchr(user, ':') != NULL || http_has_ctl(user) ||
	    http_has_ctl(pass))
		return -1;
	ulen = strlen(user);
	plen = strlen(pass);
	if (ulen + 1 + plen > HTTP_CRED_MAX)
		return -1;
	if (cap - *off < sizeof prefix - 1)
		return -1;
	memcpy(buf + *off, prefix, sizeof prefix - 1);
	*off += sizeof prefix - 1;

	memcpy(cred, user, ulen);
	cred[ulen] = ':';
	memcpy(cred + ulen + 1, pass, plen);
	/* mbedtls_base64_encode also writes a NUL after the text. */
	r = mbedtls_base64_encode((unsigned char *)buf + *off, cap - *off,
	    &olen, cred, ulen + 1 + plen);
	mbedtls_platform_zeroize(cred, sizeof cred);
	if (r != 0)
		return -1;
	*off += olen;

	if (cap - *off < 3)
		return -1;
	memcpy(buf + *off, "\r\n", 3);
	*off += 2;
	return 0;
}

/*
 * After the request line and Host (n bytes, as snprintf said): the
 * credentials, if any, and the empty line.  The length, or 0 (and buf
 * wiped, so no half-written credentials stay) if it does not fit.
 */
static size_t
http_finish_connect(char *buf, size_t cap, int n, const char *user,
    const char *pass)
{
	size_t	off;

	if (n < 0 || (size_t)n >= cap)
		return 0;
	off = (size_t)n;
	if (user != NULL && http_add_auth(buf, cap, &off, user, pass) == -1)
		goto bad;
	if (cap - off < 3)
		goto bad;
	memcpy(buf + off, "\r\n", 3);
	return off + 2;
bad:
	mbedtls_platform_zeroize(buf, cap);
	return 0;
}

size_t
http_build_connect(char *buf, size_t cap, const struct sockaddr *dst,
    const char *user, const char *pass)
{
	char	authority[HTTP_AUTHORITY_MAX];
	int	n;

	if (buf == NULL || cap == 0 || dst == NULL)
		return 0;
	if (http_format_authority(dst, authority, sizeof authority) == -1)
		return 0;

	n = snprintf(buf, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n",
	    authority, authority);
	return http_finish_connect(buf, cap, n, user, pass);
}

bool
http_name_ok(const char *name)
{
	size_t	i, n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > 253 || name[0] == '.' || name[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

size_t
http_build_connect_name(char *buf, size_t cap, const char *name,
    uint16_t port, const char *user, const char *pass)
{
	int	n;

	if (buf == NULL || cap == 0 || !http_name_ok(name))
		return 0;
	n = snprintf(buf, cap, "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n",
	    name, port, name, port);
	return http_finish_connect(buf, cap, n, user, pass);
}

/*
 * Scan text from buf[*pos] to the end of the line.  HTTP_OK with *pos just
 * past the CRLF, HTTP_MORE if the line is not complete yet, HTTP_FAIL on a
 * character that is not allowed (reason bad) or a missing CRLF.
 */
static enum http_status
http_scan_line(const char *buf, size_t len, size_t *pos, const char *bad,
    const char **why)
{
	size_t		i;
	unsigned char	c;

	for (i = *pos; i < len; i++) {
		c = buf[i];
		if (c == '\r') {
			if (i + 1 >= len)
				return HTTP_MORE;
			if (buf[i + 1] != '\n') {
				*why = "missing CRLF";
				return HTTP_FAIL;
			}
			*pos = i + 2;
			return HTTP_OK;
		}
		if (c == '\n') {
			*why = "missing CRLF";
			return HTTP_FAIL;
		}
		if (!http_is_text(c)) {
			*why = bad;
			return HTTP_FAIL;
		}
	}
	return HTTP_MORE;
}

/*
 * Status line.  On HTTP_OK: *code, the reason as buf[*rstart..+*rlen) and
 * *pos past the CRLF.  Checks each byte as soon as it is in, so garbage
 * fails early and every proper prefix of a good line is HTTP_MORE.
 */
static enum http_status
http_parse_status(const char *buf, size_t len, int *code, size_t *rstart,
    size_t *rlen, size_t *pos, const char **why)
{
	static const char	proto[] = "HTTP/";
	enum http_status	st;
	size_t			i, start;
	unsigned char		c;

	for (i = 0; i < sizeof proto - 1; i++) {
		if (i >= len)
			return HTTP_MORE;
		if (buf[i] != proto[i]) {
			*why = "not an HTTP response";
			return HTTP_FAIL;
		}
	}
	/* "1" "." DIGIT SP */
	for (i = 5; i < 9; i++) {
		if (i >= len)
			return HTTP_MORE;
		c = buf[i];
		if (i == 5 && http_is_digit(c) && c != '1') {
			*why = "unsupported HTTP version";
			return HTTP_FAIL;
		}
		if ((i == 5 && c != '1') || (i == 6 && c != '.') ||
		    (i == 7 && !http_is_digit(c)) || (i == 8 && c != ' ')) {
			*why = "malformed status line";
			return HTTP_FAIL;
		}
	}
	/* 3DIGIT, 100..599 */
	*code = 0;
	for (i = 9; i < 12; i++) {
		if (i >= len)
			return HTTP_MORE;
		c = buf[i];
		if (!http_is_digit(c) || (i == 9 && (c < '1' || c > '5'))) {
			*why = "bad status code";
			return HTTP_FAIL;
		}
		*code = *code * 10 + (c - '0');
	}
	if (len < 13)
		return HTTP_MORE;
	switch (buf[12]) {
	case ' ':
		start = 13;
		break;
	case '\r':
		start = 12;	/* empty reason without its SP */
		break;
	case '\n':
		*why = "missing CRLF";
		return HTTP_FAIL;
	default:
		*why = "bad status code";
		return HTTP_FAIL;
	}
	i = start;
	st = http_scan_line(buf, len, &i, "bad character in status line", why);
	if (st != HTTP_OK)
		return st;
	*rstart = start;
	*rlen = i - 2 - start;
	*pos = i;
	return HTTP_OK;
}

/* Header lines from buf[*pos] up to and including the empty line. */
static enum http_status
http_parse_fields(const char *buf, size_t len, size_t *pos, const char **why)
{
	enum http_status	st;
	size_t			i = *pos, name;
	int			first = 1;
	unsigned char		c;

	for (;;) {
		if (i >= len)
			return HTTP_MORE;
		c = buf[i];
		if (c == '\r') {
			if (i + 1 >= len)
				return HTTP_MORE;
			if (buf[i + 1] != '\n') {
				*why = "missing CRLF";
				return HTTP_FAIL;
			}
			*pos = i + 2;
			return HTTP_OK;
		}
		if (c == '\n') {
			*why = "missing CRLF";
			return HTTP_FAIL;
		}
		if (c == ' ' || c == '\t') {
			if (first) {
				*why = "whitespace before first header";
				return HTTP_FAIL;
			}
			/* obs-fold: more of the previous value, skipped. */
		} else {
			name = i;
			while (i < len && http_is_tchar(buf[i]))
				i++;
			if (i >= len)
				return HTTP_MORE;
			if (buf[i] != ':' || i == name) {
				*why = "bad header name";
				return HTTP_FAIL;
			}
			i++;
		}
		st = http_scan_line(buf, len, &i, "bad character in header",
		    why);
		if (st != HTTP_OK)
			return st;
		first = 0;
	}
}

/* One response (status line and header block) at the start of buf. */
static enum http_status
http_parse_one(const char *buf, size_t len, int *code, size_t *rstart,
    size_t *rlen, size_t *used, const char **why)
{
	enum http_status	st;
	size_t			pos = 0;

	st = http_parse_status(buf, len, code, rstart, rlen, &pos, why);
	if (st != HTTP_OK)
		return st;
	st = http_parse_fields(buf, len, &pos, why);
	if (st != HTTP_OK)
		return st;
	*used = pos;
	return HTTP_OK;
}

enum http_status
http_parse_response(const char *buf, size_t len, int *code, char *reason,
    size_t reasonlen, size_t *used, const char **why)
{
	enum http_status	st;
	size_t			off = 0, lim, n, rstart, rlen, i;
	int			c;

	lim = len < HTTP_HEADER_MAX ? len : HTTP_HEADER_MAX;
	for (;;) {
		c = 0;
		n = rstart = rlen = 0;
		st = http_parse_one(buf + off, lim - off, &c, &rstart, &rlen,
		    &n, why);
		if (st == HTTP_FAIL)
			return HTTP_FAIL;
		if (st == HTTP_MORE) {
			if (len >= HTTP_HEADER_MAX) {
				*why = "response header too large";
				return HTTP_FAIL;
			}
			return HTTP_MORE;
		}
		rstart += off;
		off += n;
		if (c >= 100 && c <= 199 && c != 101)
			continue;	/* interim response */
		break;
	}

	if (reason != NULL && reasonlen > 0) {
		if (rlen > reasonlen - 1)
			rlen = reasonlen - 1;
		for (i = 0; i < rlen; i++) {
			unsigned char ch = buf[rstart + i];

			reason[i] = ch < 0x80 ? (char)ch : '?';
		}
		reason[rlen] = '\0';
	}
	*code = c;
	*used = off;
	return HTTP_OK;
}

bool
http_status_ok(int code)
{
	return code >= 200 && code <= 299;
}
