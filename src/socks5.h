/*
 * socks5.h - the client side of SOCKS5 (RFC 1928) and its username/password
 * sub-negotiation (RFC 1929), as pure functions over bytes.
 *
 * Builders write a message into buf and return its length (0 if it does not
 * fit or an argument is invalid).  Parsers look at the bytes received so far
 * and return SOCKS5_MORE (need more bytes; nothing consumed), SOCKS5_OK
 * (*used set to the length of the message) or SOCKS5_FAIL (*why set to a
 * static reason).  They may be called again with a longer buffer after
 * SOCKS5_MORE, so a driver can feed them byte by byte.  The exception is
 * socks5_udp_parse: a datagram comes whole, so it is complete or bad.
 */
#ifndef SLUICE_SOCKS5_H
#define SLUICE_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum socks5_status {
	SOCKS5_MORE,
	SOCKS5_OK,
	SOCKS5_FAIL,
};

#define SOCKS5_METHOD_NONE	0x00
#define SOCKS5_METHOD_USERPASS	0x02
#define SOCKS5_METHOD_REFUSED	0xff

#define SOCKS5_REP_SUCCEEDED		0x00
#define SOCKS5_REP_GENERAL_FAILURE	0x01
#define SOCKS5_REP_NOT_ALLOWED		0x02
#define SOCKS5_REP_NET_UNREACHABLE	0x03
#define SOCKS5_REP_HOST_UNREACHABLE	0x04
#define SOCKS5_REP_CONN_REFUSED		0x05
#define SOCKS5_REP_TTL_EXPIRED		0x06
#define SOCKS5_REP_CMD_UNSUPPORTED	0x07
#define SOCKS5_REP_ATYP_UNSUPPORTED	0x08

/* Largest message any builder writes (auth request: 3 + 255 + 255). */
#define SOCKS5_MSG_MAX	513

/* Greeting: VER 5, offering no-auth, or only user/pass when with_auth. */
size_t socks5_build_greeting(uint8_t *buf, size_t cap, bool with_auth);
/* Method selection reply; *method gets the chosen method. */
enum socks5_status socks5_parse_method(const uint8_t *buf, size_t len,
    bool with_auth, uint8_t *method, size_t *used, const char **why);

/* RFC 1929 request: user and pass each 1..255 bytes. */
size_t socks5_build_auth(uint8_t *buf, size_t cap, const char *user,
    const char *pass);
/* RFC 1929 reply: SOCKS5_OK only when STATUS is 0. */
enum socks5_status socks5_parse_auth(const uint8_t *buf, size_t len,
    size_t *used, const char **why);

/* CONNECT to an IPv4 or IPv6 socket address (AF_INET/AF_INET6). */
size_t socks5_build_connect(uint8_t *buf, size_t cap,
    const struct sockaddr *dst);
/* CONNECT to a domain name (1..255 bytes) and port. */
size_t socks5_build_connect_name(uint8_t *buf, size_t cap, const char *name,
    uint16_t port);
/*
 * UDP ASSOCIATE request (CMD 3).  src is the address the client will send
 * its datagrams from, or NULL when unknown (then ATYP IPv4 0.0.0.0:0).
 * An IPv4-mapped AF_INET6 src is written as ATYP IPv4, as the proxy will
 * see it.
 */
size_t socks5_build_associate(uint8_t *buf, size_t cap,
    const struct sockaddr *src);

/*
 * Reply to CONNECT or UDP ASSOCIATE.  Checks VER, RSV and ATYP strictly.
 * *rep gets the REP field whenever the first two bytes are in; a non-zero
 * REP is SOCKS5_FAIL with *why = socks5_rep_str(rep).  On SOCKS5_OK, when
 * bnd is not NULL, *bnd gets BND.ADDR and BND.PORT as a sockaddr_in or
 * sockaddr_in6 (port in network order), or ss_family AF_UNSPEC when
 * BND.ADDR is a domain name; it is not touched otherwise.
 */
enum socks5_status socks5_parse_reply(const uint8_t *buf, size_t len,
    uint8_t *rep, struct sockaddr_storage *bnd, size_t *used,
    const char **why);
/* CONNECT reply: socks5_parse_reply without BND.ADDR. */
enum socks5_status socks5_parse_connect(const uint8_t *buf, size_t len,
    uint8_t *rep, size_t *used, const char **why);

/*
 * The UDP request header (RFC 1928 section 7) before each datagram sent to
 * or received from the proxy's UDP relay.  Longest: RSV(2) FRAG ATYP LEN
 * NAME(255) PORT(2).
 */
#define SOCKS5_UDP_HDR_MAX	(4 + 1 + 255 + 2)

/*
 * The header of a datagram to dst (AF_INET or AF_INET6; an IPv4-mapped
 * AF_INET6 address is written as ATYP IPv4): RSV 0 0, FRAG 0, ATYP,
 * DST.ADDR, DST.PORT.  Its length, or 0 if it does not fit / bad family.
 */
size_t socks5_udp_build(uint8_t *buf, size_t cap, const struct sockaddr *dst);
/* The same to a domain name (1..255 bytes) and port (host order). */
size_t socks5_udp_build_name(uint8_t *buf, size_t cap, const char *name,
    uint16_t port);

enum socks5_udp_status {
	SOCKS5_UDP_OK,
	SOCKS5_UDP_FRAGMENT,	/* FRAG != 0: fragments are not supported */
	SOCKS5_UDP_BAD,		/* truncated, unknown ATYP, empty name */
};

/* Where a datagram came from. */
struct socks5_udp_addr {
	/* AF_INET/AF_INET6 with the port; AF_UNSPEC for a name */
	struct sockaddr_storage	ss;
	/* ATYP 3: the NUL-terminated name, else "" */
	char			name[256];
	/* host order, always set on OK */
	uint16_t		port;
};

/*
 * Parse the header of a datagram from the proxy's UDP relay (a whole
 * datagram, not a stream): on SOCKS5_UDP_OK *from is the remote that sent
 * it and *hdrlen the header length (the payload follows, possibly empty).
 * The two RSV bytes are not checked (be liberal).  *why gets a static
 * reason on FRAGMENT/BAD.  A name containing a NUL byte is BAD.  An
 * IPv4-mapped address under ATYP IPv6 is returned as it came, AF_INET6.
 * from, hdrlen and why may be NULL; *from and *hdrlen are set only on OK.
 */
enum socks5_udp_status socks5_udp_parse(const uint8_t *buf, size_t len,
    struct socks5_udp_addr *from, size_t *hdrlen, const char **why);

/* Text for a REP code, e.g. "connection refused". */
const char *socks5_rep_str(uint8_t rep);

#endif
