/*
 * socks5.c - the client side of SOCKS5 (RFC 1928) and username/password
 * authentication (RFC 1929) as pure functions over bytes.
 *
 * Nothing here does I/O.  Parsers look only at the first len bytes, check
 * each field as soon as it has arrived (so a bad reply fails without
 * waiting for bytes that may never come) and report SOCKS5_MORE for any
 * proper prefix of a valid message.
 *
 * The UDP request header (RFC 1928 section 7) that prefixes each datagram
 * to and from the proxy's relay is different: a datagram arrives whole, so
 * its parser has no MORE, and a short one is simply bad.
 */
#include <netinet/in.h>
#include <string.h>

#include "socks5.h"

#define SOCKS5_VERSION			0x05
#define SOCKS5_AUTH_VERSION		0x01	/* RFC 1929 sub-negotiation */
#define SOCKS5_CMD_CONNECT		0x01
#define SOCKS5_CMD_UDP_ASSOCIATE	0x03
#define SOCKS5_ATYP_IPV4		0x01
#define SOCKS5_ATYP_NAME		0x03
#define SOCKS5_ATYP_IPV6		0x04

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

/* Write VER CMD RSV of a request; the caller has checked the room. */
static void
socks5_put_header(uint8_t *buf, uint8_t cmd)
{
	buf[0] = SOCKS5_VERSION;
	buf[1] = cmd;
	buf[2] = 0;
}

/*
 * Write ATYP, ADDR and PORT of an AF_INET or AF_INET6 address at buf, with
 * an IPv4-mapped IPv6 address as ATYP IPv4 when unmap is set.  Returns the
 * length (1 + 4 + 2 or 1 + 16 + 2), or 0 if it does not fit in cap or the
 * family is neither.
 */
static size_t
socks5_put_addr(uint8_t *buf, size_t cap, const struct sockaddr *sa,
    bool unmap)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	switch (sa->sa_family) {
	case AF_INET:
		if (cap < 1 + 4 + 2)
			return 0;
		sin = (const struct sockaddr_in *)sa;
		buf[0] = SOCKS5_ATYP_IPV4;
		memcpy(buf + 1, &sin->sin_addr, 4);
		memcpy(buf + 5, &sin->sin_port, 2);	/* both big-endian */
		return 1 + 4 + 2;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		if (unmap && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (cap < 1 + 4 + 2)
				return 0;
			buf[0] = SOCKS5_ATYP_IPV4;
			memcpy(buf + 1, &sin6->sin6_addr.s6_addr[12], 4);
			memcpy(buf + 5, &sin6->sin6_port, 2);
			return 1 + 4 + 2;
		}
		if (cap < 1 + 16 + 2)
			return 0;
		buf[0] = SOCKS5_ATYP_IPV6;
		memcpy(buf + 1, &sin6->sin6_addr, 16);
		memcpy(buf + 17, &sin6->sin6_port, 2);
		return 1 + 16 + 2;
	default:
		return 0;
	}
}

/*
 * Write ATYP 3, LEN, NAME (1..255 bytes) and PORT into cap bytes.  Its
 * length, or 0 (nothing written) if it does not fit or name is bad.
 */
static size_t
socks5_put_name(uint8_t *buf, size_t cap, const char *name, uint16_t port)
{
	size_t	n;

	if (name == NULL)
		return 0;
	n = strlen(name);
	if (n < 1 || n > 255 || cap < 4 + n)
		return 0;
	buf[0] = SOCKS5_ATYP_NAME;
	buf[1] = (uint8_t)n;
	memcpy(buf + 2, name, n);
	buf[2 + n] = (uint8_t)(port >> 8);
	buf[3 + n] = (uint8_t)(port & 0xff);
	return 4 + n;
}

size_t
socks5_build_connect(uint8_t *buf, size_t cap, const struct sockaddr *dst)
{
	size_t	n;

	if (buf == NULL || dst == NULL || cap < 4)
		return 0;
	if ((n = socks5_put_addr(buf + 3, cap - 3, dst, false)) == 0)
		return 0;
	socks5_put_header(buf, SOCKS5_CMD_CONNECT);
	return 3 + n;
}

size_t
socks5_build_connect_name(uint8_t *buf, size_t cap, const char *name,
    uint16_t port)
{
	size_t	n;

	if (buf == NULL || cap < 3 ||
	    (n = socks5_put_name(buf + 3, cap - 3, name, port)) == 0)
		return 0;
	socks5_put_header(buf, SOCKS5_CMD_CONNECT);
	return 3 + n;
}

size_t
socks5_build_associate(uint8_t *buf, size_t cap, const struct sockaddr *src)
{
	struct sockaddr_in	any;
	size_t			n;

	if (buf == NULL || cap < 4)
		return 0;
	if (src == NULL) {
		memset(&any, 0, sizeof(any));
		any.sin_family = AF_INET;	/* 0.0.0.0:0, "not known" */
		src = (const struct sockaddr *)&any;
	}
	if ((n = socks5_put_addr(buf + 3, cap - 3, src, true)) == 0)
		return 0;
	socks5_put_header(buf, SOCKS5_CMD_UDP_ASSOCIATE);
	return 3 + n;
}

/*
 * Decode ATYP, ADDR and PORT at p (already known to be complete, with a
 * non-empty name) into a sockaddr_in / sockaddr_in6, or AF_UNSPEC for a
 * domain name.  Returns the port in host order.
 */
static uint16_t
socks5_get_addr(const uint8_t *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const uint8_t		*port;

	memset(ss, 0, sizeof(*ss));
	switch (p[0]) {
	case SOCKS5_ATYP_IPV4:
		sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, p + 1, 4);
		memcpy(&sin->sin_port, p + 5, 2);
		port = p + 5;
		break;
	case SOCKS5_ATYP_IPV6:
		sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, p + 1, 16);
		memcpy(&sin6->sin6_port, p + 17, 2);
		port = p + 17;
		break;
	default:			/* SOCKS5_ATYP_NAME */
		ss->ss_family = AF_UNSPEC;
		port = p + 2 + p[1];
		break;
	}
	return (uint16_t)(port[0] << 8 | port[1]);
}

enum socks5_status
socks5_parse_reply(const uint8_t *buf, size_t len, uint8_t *rep,
    struct sockaddr_storage *bnd, size_t *used, const char **why)
{
	size_t	total;

	if (len < 1)
		return SOCKS5_MORE;
	if (buf[0] != SOCKS5_VERSION)
		return socks5_fail(why, "bad version in command reply");
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
		    "non-zero reserved byte in command reply");
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
			    "empty domain name in command reply");
		total = 4 + 1 + (size_t)buf[4] + 2;
		break;
	default:
		return socks5_fail(why,
		    "unknown address type in command reply");
	}
	if (len < total)
		return SOCKS5_MORE;
	if (bnd != NULL)
		socks5_get_addr(buf + 3, bnd);
	return socks5_ok(used, total);
}

enum socks5_status
socks5_parse_connect(const uint8_t *buf, size_t len, uint8_t *rep,
    size_t *used, const char **why)
{
	return socks5_parse_reply(buf, len, rep, NULL, used, why);
}

size_t
socks5_udp_build(uint8_t *buf, size_t cap, const struct sockaddr *dst)
{
	size_t	n;

	if (buf == NULL || dst == NULL || cap < 3)
		return 0;
	if ((n = socks5_put_addr(buf + 3, cap - 3, dst, true)) == 0)
		return 0;
	buf[0] = 0;			/* RSV */
	buf[1] = 0;
	buf[2] = 0;			/* FRAG: a whole datagram */
	return 3 + n;
}

size_t
socks5_udp_build_name(uint8_t *buf, size_t cap, const char *name,
    uint16_t port)
{
	size_t	n;

	if (buf == NULL || cap < 3 ||
	    (n = socks5_put_name(buf + 3, cap - 3, name, port)) == 0)
		return 0;
	buf[0] = 0;			/* RSV */
	buf[1] = 0;
	buf[2] = 0;			/* FRAG: a whole datagram */
	return 3 + n;
}

/* Report a bad datagram: set *why (when wanted) and return status. */
static enum socks5_udp_status
socks5_udp_fail(const char **why, enum socks5_udp_status status,
    const char *reason)
{
	if (why != NULL)
		*why = reason;
	return status;
}

enum socks5_udp_status
socks5_udp_parse(const uint8_t *buf, size_t len,
    struct socks5_udp_addr *from, size_t *hdrlen, const char **why)
{
	size_t	total;

	if (len < 4)
		return socks5_udp_fail(why, SOCKS5_UDP_BAD,
		    "truncated UDP header");
	/* buf[0] and buf[1] are RSV, not checked */
	if (buf[2] != 0)
		return socks5_udp_fail(why, SOCKS5_UDP_FRAGMENT,
		    "fragmented UDP datagram");
	switch (buf[3]) {
	case SOCKS5_ATYP_IPV4:
		total = 4 + 4 + 2;
		break;
	case SOCKS5_ATYP_IPV6:
		total = 4 + 16 + 2;
		break;
	case SOCKS5_ATYP_NAME:
		if (len < 5)
			return socks5_udp_fail(why, SOCKS5_UDP_BAD,
			    "truncated UDP header");
		if (buf[4] == 0)
			return socks5_udp_fail(why, SOCKS5_UDP_BAD,
			    "empty domain name in UDP header");
		total = 4 + 1 + (size_t)buf[4] + 2;
		break;
	default:
		return socks5_udp_fail(why, SOCKS5_UDP_BAD,
		    "unknown address type in UDP header");
	}
	if (len < total)
		return socks5_udp_fail(why, SOCKS5_UDP_BAD,
		    "truncated UDP header");
	if (buf[3] == SOCKS5_ATYP_NAME && memchr(buf + 5, 0, buf[4]) != NULL)
		return socks5_udp_fail(why, SOCKS5_UDP_BAD,
		    "NUL byte in domain name in UDP header");
	if (from != NULL) {
		from->port = socks5_get_addr(buf + 3, &from->ss);
		if (buf[3] == SOCKS5_ATYP_NAME) {
			memcpy(from->name, buf + 5, buf[4]);
			from->name[buf[4]] = '\0';
		} else
			from->name[0] = '\0';
	}
	if (hdrlen != NULL)
		*hdrlen = total;
	return SOCKS5_UDP_OK;
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
