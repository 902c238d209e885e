/*
 * socks5.c - the client side of SOCKS5 (RFC 1928) and username/password
 * authentication (RFC 1929) as pure functions over bytes.
 *
 * Nothing here does I/O.  Parsers look only at the first len bytes, check
 * each field as soon as it has arrived (so a bad reply fails without
 * waiting for bytes that may never come) and report SOCKS5_MORE for any
 * proper prefix of a valid message.
 */
#include <netinet/in.h>
#include <string.h>

#include "socks5.h"

#define SOCKS5_VERSION		0x05
#define SOCKS5_AUTH_VERSION	0x01	/* RFC 1929 sub-negotiation */
#define SOCKS5_CMD_CONNECT	0x01
#define SOCKS5_ATYP_IPV4	0x01
#define SOCKS5_ATYP_NAME	0x03
#define SOCKS5_ATYP_IPV6	0x04

/* Report a failure: set *why (when wanted) and return SOCKS5_FAIL. */
static enum socks5_status
socks5_fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return SOCKS5_FAIL;
}

/* Report success: set *used (when wanted) and return SOCKS5_OK. */
static enum socks5_status
socks5_ok(size_t *used, size_t n)
{
	if (used != NULL)
		*used = n;
	return SOCKS5_OK;
}

size_t
socks5_build_greeting(uint8_t *buf, size_t cap, bool with_auth)
{
	if (buf == NULL || cap < 3)
		return 0;
	buf[0] = SOCKS5_VERSION;
	buf[1] = 1;			/* NMETHODS */
	buf[2] = with_auth ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NONE;
	return 3;
}

enum socks5_status
socks5_parse_method(const uint8_t *buf, size_t len, bool with_auth,
    uint8_t *method, size_t *used, const char **why)
{
	uint8_t	offered;

	if (len < 1)
		return SOCKS5_MORE;
	if (buf[0] != SOCKS5_VERSION)
		return socks5_fail(why,
		    "bad version in method selection reply");
	if (len < 2)
		return SOCKS5_MORE;
	if (method != NULL)
		*method = buf[1];
	if (buf[1] == SOCKS5_METHOD_REFUSED)
		return socks5_fail(why, "no acceptable authentication method");
	offered = with_auth ? SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NONE;
	if (buf[1] != offered)
		return socks5_fail(why,
		    "server chose a method we did not offer");
	return socks5_ok(used, 2);
}

size_t
socks5_build_auth(uint8_t *buf, size_t cap, const char *user,
    const char *pass)
{
	size_t	ulen, plen;

	if (buf == NULL || user == NULL || pass == NULL)
		return 0;
	ulen = strlen(user);
	plen = strlen(pass);
	if (ulen < 1 || ulen > 255 || plen < 1 || plen > 255)
		return 0;
	if (cap < 3 + ulen + plen)
		return 0;
	buf[0] = SOCKS5_AUTH_VERSION;
	buf[1] = (uint8_t)ulen;
	memcpy(buf + 2, user, ulen);
	buf[2 + ulen] = (uint8_t)plen;
	memcpy(buf + 3 + ulen, pass, plen);
	return 3 + ulen + plen;
}

enum socks5_status
socks5_parse_auth(const uint8_t *buf, size_t len, size_t *used,
    const char **why)
{
	if (len < 1)
		return SOCKS5_MORE;
	if (buf[0] != SOCKS5_AUTH_VERSION)
		return socks5_fail(why, "bad version in authentication reply");
	if (len < 2)
		return SOCKS5_MORE;
	if (buf[1] != 0)
		return socks5_fail(why, "authentication failed");
	return socks5_ok(used, 2);
}

/* Write VER CMD RSV ATYP; the caller has checked the room. */
static void
socks5_put_header(uint8_t *buf, uint8_t atyp)
{
	buf[0] = SOCKS5_VERSION;
	buf[1] = SOCKS5_CMD_CONNECT;
	buf[2] = 0;
	buf[3] = atyp;
}

size_t
socks5_build_connect(uint8_t *buf, size_t cap, const struct sockaddr *dst)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (buf == NULL || dst == NULL)
		return 0;
	switch (dst->sa_family) {
	case AF_INET:
		if (cap < 10)
			return 0;
		sin = (const struct sockaddr_in *)dst;
		socks5_put_header(buf, SOCKS5_ATYP_IPV4);
		memcpy(buf + 4, &sin->sin_addr, 4);
		memcpy(buf + 8, &sin->sin_port, 2);	/* both big-endian */
		return 10;
	case AF_INET6:
		if (cap < 22)
			return 0;
		sin6 = (const struct sockaddr_in6 *)dst;
		socks5_put_header(buf, SOCKS5_ATYP_IPV6);
		memcpy(buf + 4, &sin6->sin6_addr, 16);
		memcpy(buf + 20, &sin6->sin6_port, 2);
		return 22;
	default:
		return 0;
	}
}

size_t
socks5_build_connect_name(uint8_t *buf, size_t cap, const char *name,
    uint16_t port)
{
	size_t	n;

	if (buf == NULL || name == NULL)
		return 0;
	n = strlen(name);
	if (n < 1 || n > 255 || cap < 7 + n)
		return 0;
	socks5_put_header(buf, SOCKS5_ATYP_NAME);
	buf[4] = (uint8_t)n;
	memcpy(buf + 5, name, n);
	buf[5 + n] = (uint8_t)(port >> 8);
	buf[6 + n] = (uint8_t)(port & 0xff);
	return 7 + n;
}

enum socks5_status
socks5_parse_connect(const uint8_t *buf, size_t len, uint8_t *rep,
    size_t *used, const char **why)
{
	size_t	total;

	if (len < 1)
		return SOCKS5_MORE;
	if (buf[0] != SOCKS5_VERSION)
		return socks5_fail(why, "bad version in connect reply");
	if (len < 2)
		return SOCKS5_MORE;
	if (rep != NULL)
		*rep = buf[1];
	if (buf[1] != SOCKS5_REP_SUCCEEDED)
		return socks5_fail(why, socks5_rep_str(buf[1]));
	if (len < 3)
		return SOCKS5_MORE;
	if (buf[2] != 0)
		return socks5_fail(why,
		    "non-zero reserved byte in connect reply");
	if (len < 4)
		return SOCKS5_MORE;
	switch (buf[3]) {
	case SOCKS5_ATYP_IPV4:
		total = 4 + 4 + 2;
		break;
	case SOCKS5_ATYP_IPV6:
		total = 4 + 16 + 2;
		break;
	case SOCKS5_ATYP_NAME:
		if (len < 5)
			return SOCKS5_MORE;
		if (buf[4] == 0)
			return socks5_fail(why,
			    "empty domain name in connect reply");
		total = 4 + 1 + (size_t)buf[4] + 2;
		break;
	default:
		return socks5_fail(why,
		    "unknown address type in connect reply");
	}
	if (len < total)
		return SOCKS5_MORE;
	return socks5_ok(used, total);
}

const char *
socks5_rep_str(uint8_t rep)
{
	switch (rep) {
	case SOCKS5_REP_SUCCEEDED:
		return "succeeded";
	case SOCKS5_REP_GENERAL_FAILURE:
		return "general SOCKS server failure";
	case SOCKS5_REP_NOT_ALLOWED:
		return "connection not allowed by ruleset";
	case SOCKS5_REP_NET_UNREACHABLE:
		return "network unreachable";
	case SOCKS5_REP_HOST_UNREACHABLE:
		return "host unreachable";
	case SOCKS5_REP_CONN_REFUSED:
		return "connection refused";
	case SOCKS5_REP_TTL_EXPIRED:
		return "TTL expired";
	case SOCKS5_REP_CMD_UNSUPPORTED:
		return "command not supported";
	case SOCKS5_REP_ATYP_UNSUPPORTED:
		return "address type not supported";
	default:
		return "unknown reply code";
	}
}
