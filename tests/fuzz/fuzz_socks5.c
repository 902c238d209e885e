/*
 * fuzz_socks5.c - the SOCKS5 reply parsers fed every prefix of the input,
 * as a driver reading byte by byte would; the input as a datagram from the
 * proxy's UDP relay; and the request and datagram header builders.
 *
 * Each prefix lies at the very end of an ASan-visible region (the rest of
 * the buffer is poisoned), so a parser that reads past len crashes.  Over
 * growing prefixes a parser must say MORE, MORE, ... and then OK or FAIL
 * for good; the first OK comes exactly when len reaches *used.  The UDP
 * header parser has no MORE: a datagram is whole, so a proper prefix of a
 * good header is BAD, and what it parses must build back into the same
 * header.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <sanitizer/asan_interface.h>

#include "socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_parser {
	FUZZ_METHOD_NOAUTH,
	FUZZ_METHOD_AUTH,
	FUZZ_AUTH,
	FUZZ_REPLY,
	FUZZ_NPARSERS,
};

/* Longest reply each parser must decide on: 4 + 1 + 255 + 2 for a command. */
static const size_t fuzz_decide_by[FUZZ_NPARSERS] = { 2, 2, 2, 262 };

/*
 * socks5_parse_reply, checking *bnd against BND.ADDR and BND.PORT on OK and
 * it untouched otherwise, and that socks5_parse_connect says the same.
 */
static enum socks5_status
fuzz_reply(const uint8_t *buf, size_t len, uint8_t *rep, size_t *used,
    const char **why)
{
	struct sockaddr_storage		 bnd, untouched;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	enum socks5_status		 st, st2;
	size_t				 used2 = (size_t)-1;
	const char			*why2 = NULL;
	uint8_t				 rep2 = 0xaa;

	memset(&untouched, 0xa5, sizeof(untouched));
	bnd = untouched;
	st = socks5_parse_reply(buf, len, rep, &bnd, used, why);
	st2 = socks5_parse_connect(buf, len, &rep2, &used2, &why2);
	assert(st == st2 && *rep == rep2);
	if (st == SOCKS5_OK)
		assert(*used == used2);
	if (st == SOCKS5_FAIL)
		assert(why2 == *why);
	if (st != SOCKS5_OK) {
		assert(memcmp(&bnd, &untouched, sizeof(bnd)) == 0);
		return st;
	}

	switch (buf[3]) {
	case 1:
		assert(bnd.ss_family == AF_INET && *used == 10);
		sin = (const struct sockaddr_in *)&bnd;
		assert(memcmp(&sin->sin_addr, buf + 4, 4) == 0);
		assert(memcmp(&sin->sin_port, buf + 8, 2) == 0);
		break;
	case 4:
		assert(bnd.ss_family == AF_INET6 && *used == 22);
		sin6 = (const struct sockaddr_in6 *)&bnd;
		assert(memcmp(&sin6->sin6_addr, buf + 4, 16) == 0);
		assert(memcmp(&sin6->sin6_port, buf + 20, 2) == 0);
		assert(sin6->sin6_flowinfo == 0 && sin6->sin6_scope_id == 0);
		break;
	case 3:
		assert(bnd.ss_family == AF_UNSPEC);
		break;
	default:
		assert(!"OK with an unknown ATYP");
	}
	return st;
}

/* One call: status, *used, and the method or REP byte when it is set. */
static enum socks5_status
fuzz_call(enum fuzz_parser p, const uint8_t *buf, size_t len, size_t *used,
    int *aux, const char **why)
{
	uint8_t	b = 0xaa;
	enum socks5_status st;

	*aux = -1;
	switch (p) {
	case FUZZ_METHOD_NOAUTH:
	case FUZZ_METHOD_AUTH:
		st = socks5_parse_method(buf, len, p == FUZZ_METHOD_AUTH, &b,
		    used, why);
		/* the method is only promised on OK */
		if (st == SOCKS5_OK)
			*aux = b;
		return st;
	case FUZZ_AUTH:
		return socks5_parse_auth(buf, len, used, why);
	case FUZZ_REPLY:
		st = fuzz_reply(buf, len, &b, used, why);
		/* REP is promised whenever the first two bytes are in */
		if (len >= 2 && buf[0] == 5)
			*aux = b;
		return st;
	default:
		abort();
	}
}

/* Feed buf[0..n) to parser p at every prefix length; check the contract. */
static void
fuzz_prefixes(enum fuzz_parser p, uint8_t *buf, size_t n)
{
	enum socks5_status st, done = SOCKS5_MORE;
	size_t len, used, done_used = 0;
	const char *why;
	int aux, done_aux = -1;

	ASAN_POISON_MEMORY_REGION(buf, n);
	for (len = 0; len <= n; len++) {
		ASAN_UNPOISON_MEMORY_REGION(buf, len);
		used = (size_t)-1;
		why = NULL;
		st = fuzz_call(p, buf, len, &used, &aux, &why);
		switch (st) {
		case SOCKS5_MORE:
			assert(done == SOCKS5_MORE);
			assert(len < fuzz_decide_by[p]);
			break;
		case SOCKS5_OK:
			assert(done != SOCKS5_FAIL);
			assert(used >= 2 && used <= len);
			if (done == SOCKS5_MORE) {
				/* complete exactly when the last byte is in */
				assert(used == len);
				done_used = used;
				done_aux = aux;
			}
			assert(used == done_used && aux == done_aux);
			break;
		case SOCKS5_FAIL:
			assert(done != SOCKS5_OK);
			assert(why != NULL && why[0] != '\0');
			break;
		default:
			assert(!"bad status");
		}
		done = st;

		switch (p) {
		case FUZZ_METHOD_NOAUTH:
		case FUZZ_METHOD_AUTH:
			if (st == SOCKS5_OK)
				assert(aux == (p == FUZZ_METHOD_AUTH ?
				    SOCKS5_METHOD_USERPASS : SOCKS5_METHOD_NONE));
			break;
		case FUZZ_AUTH:
			if (st == SOCKS5_OK)
				assert(buf[0] == 1 && buf[1] == 0);
			break;
		case FUZZ_REPLY:
			if (aux > 0)
				assert(st == SOCKS5_FAIL && why != NULL &&
				    strcmp(why, socks5_rep_str((uint8_t)aux)) == 0);
			if (st == SOCKS5_OK) {
				assert(aux == 0);
				assert(used == 10 || used == 22 ||
				    (buf[3] == 3 && used == 7u + buf[4]));
			}
			break;
		default:
			break;
		}
	}
	ASAN_UNPOISON_MEMORY_REGION(buf, n);
}

/* A cap-byte heap buffer, so a builder writing past cap crashes. */
static uint8_t *
fuzz_out(size_t cap)
{
	uint8_t *b = malloc(cap > 0 ? cap : 1);

	assert(b != NULL);
	return b;
}

/*
 * Build the datagram header for what socks5_udp_parse found into a heap
 * buffer of cap bytes: socks5_udp_build_name for a name, socks5_udp_build
 * for an address.  Returns the length and frees the buffer unless out is
 * not NULL.
 */
static size_t
fuzz_udp_rebuild(const struct socks5_udp_addr *from, size_t cap,
    uint8_t **out)
{
	uint8_t *b = fuzz_out(cap);
	size_t n;

	if (from->ss.ss_family == AF_UNSPEC)
		n = socks5_udp_build_name(b, cap, from->name, from->port);
	else
		n = socks5_udp_build(b, cap, (const struct sockaddr *)&from->ss);
	assert(n <= cap);
	if (out != NULL)
		*out = b;
	else
		free(b);
	return n;
}

/* Check what socks5_udp_parse says of a whole datagram buf[0..len). */
static void
fuzz_udp_check(const uint8_t *buf, size_t len, enum socks5_udp_status st,
    const struct socks5_udp_addr *from, size_t hdrlen, const char *why)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;
	uint8_t want[SOCKS5_UDP_HDR_MAX], *out;
	size_t wantlen, n;
	bool mapped = false;

	if (st == SOCKS5_UDP_FRAGMENT) {
		assert(len >= 3 && buf[2] != 0);
		assert(why != NULL && why[0] != '\0');
		return;
	}
	if (st == SOCKS5_UDP_BAD) {
		assert(why != NULL && why[0] != '\0');
		return;
	}
	assert(st == SOCKS5_UDP_OK);
	assert(hdrlen >= 4 && hdrlen <= len && hdrlen <= SOCKS5_UDP_HDR_MAX);
	assert(buf[2] == 0);

	switch (buf[3]) {
	case 1:
		assert(hdrlen == 10 && from->ss.ss_family == AF_INET);
		sin = (const struct sockaddr_in *)&from->ss;
		assert(memcmp(&sin->sin_addr, buf + 4, 4) == 0);
		assert(sin->sin_port == htons(from->port));
		assert(from->name[0] == '\0');
		break;
	case 4:
		assert(hdrlen == 22 && from->ss.ss_family == AF_INET6);
		sin6 = (const struct sockaddr_in6 *)&from->ss;
		assert(memcmp(&sin6->sin6_addr, buf + 4, 16) == 0);
		assert(sin6->sin6_port == htons(from->port));
		assert(from->name[0] == '\0');
		mapped = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
		break;
	case 3:
		assert(hdrlen == 7u + buf[4] && buf[4] > 0);
		assert(from->ss.ss_family == AF_UNSPEC);
		assert(strlen(from->name) == buf[4]);
		assert(memcmp(from->name, buf + 5, buf[4]) == 0);
		break;
	default:
		assert(!"OK with an unknown ATYP");
	}
	assert(from->port == (buf[hdrlen - 2] << 8 | buf[hdrlen - 1]));

	/*
	 * The builders give back the same header but for RSV, which they
	 * write as 0 0; except that an IPv4-mapped address sent as ATYP
	 * IPv6 comes back as ATYP IPv4.
	 */
	memcpy(want, buf, hdrlen);
	want[0] = 0;
	want[1] = 0;
	wantlen = hdrlen;
	if (mapped) {
		want[3] = 1;
		memmove(want + 4, buf + 4 + 12, 4 + 2);
		wantlen = 10;
	}
	n = fuzz_udp_rebuild(from, wantlen, &out);
	assert(n == wantlen);
	assert(memcmp(out, want, wantlen) == 0);
	free(out);
	assert(fuzz_udp_rebuild(from, wantlen - 1, NULL) == 0);
	assert(fuzz_udp_rebuild(from, 0, NULL) == 0);
}

/*
 * The input as a datagram from the UDP relay, whole and cut at every
 * length, each at the end of its ASan-visible region.  A proper prefix of
 * a good header is BAD; past the header the payload does not matter.
 */
static void
fuzz_udp(uint8_t *buf, size_t n)
{
	struct socks5_udp_addr from, whole, untouched;
	enum socks5_udp_status st, whole_st;
	size_t len, hdrlen, whole_hdrlen;
	const char *why;

	memset(&untouched, 0xa5, sizeof(untouched));
	whole = untouched;
	whole_hdrlen = (size_t)-1;
	why = NULL;
	whole_st = socks5_udp_parse(buf, n, &whole, &whole_hdrlen, &why);
	fuzz_udp_check(buf, n, whole_st, &whole, whole_hdrlen, why);
	if (whole_st != SOCKS5_UDP_OK) {
		assert(whole_hdrlen == (size_t)-1);
		assert(memcmp(&whole, &untouched, sizeof(whole)) == 0);
	}

	ASAN_POISON_MEMORY_REGION(buf, n);
	for (len = 0; len < n; len++) {
		ASAN_UNPOISON_MEMORY_REGION(buf, len);
		from = untouched;
		hdrlen = (size_t)-1;
		why = NULL;
		st = socks5_udp_parse(buf, len, &from, &hdrlen, &why);
		fuzz_udp_check(buf, len, st, &from, hdrlen, why);
		if (st != SOCKS5_UDP_OK) {
			assert(hdrlen == (size_t)-1);
			assert(memcmp(&from, &untouched, sizeof(from)) == 0);
		}
		if (whole_st == SOCKS5_UDP_OK && len < whole_hdrlen)
			assert(st == SOCKS5_UDP_BAD);
		if (whole_st == SOCKS5_UDP_OK && len >= whole_hdrlen) {
			assert(st == SOCKS5_UDP_OK && hdrlen == whole_hdrlen);
			assert(memcmp(&from, &whole, sizeof(from)) == 0);
		}
		if (whole_st == SOCKS5_UDP_FRAGMENT && len >= 4)
			assert(st == SOCKS5_UDP_FRAGMENT);
	}
	ASAN_UNPOISON_MEMORY_REGION(buf, n);
}

/*
 * A socket address from the input: data[0] picks AF_INET, AF_INET6, an
 * IPv4-mapped AF_INET6, or a family no builder takes; the address and port
 * bytes follow.  Returns the SOCKS5 ATYP the builders must write, 1 or 4,
 * or 0 for none, with *want the ADDR and PORT bytes they must write.
 */
static int
fuzz_sockaddr(const uint8_t *data, size_t size, struct sockaddr_storage *ss,
    uint8_t *want)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	uint8_t raw[1 + 16 + 2];

	memset(raw, 0, sizeof(raw));
	memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
	memset(ss, 0, sizeof(*ss));
	switch (raw[0] % 4) {
	case 0:
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, raw + 1, 4);
		memcpy(&sin->sin_port, raw + 5, 2);
		memcpy(want, raw + 1, 4 + 2);
		return 1;
	case 1:
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, raw + 1, 16);
		memcpy(&sin6->sin6_port, raw + 17, 2);
		sin6->sin6_scope_id = raw[0];	/* not written */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(want, raw + 1 + 12, 4 + 2);
			return 1;
		}
		memcpy(want, raw + 1, 16 + 2);
		return 4;
	case 2:
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr.s6_addr[10] = 0xff;
		sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], raw + 1, 4);
		memcpy(&sin6->sin6_port, raw + 17, 2);
		memcpy(want, raw + 1, 4);
		memcpy(want + 4, raw + 17, 2);
		return 1;
	default:
		ss->ss_family = raw[1] == 0 ? AF_UNSPEC : AF_UNIX;
		return 0;
	}
}

/* The address builders: UDP ASSOCIATE, CONNECT and the datagram header. */
static void
fuzz_addr_builders(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	uint8_t want[16 + 2], *out;
	size_t cap, n, alen;
	int atyp;

	if (size < 2)
		return;
	cap = data[0] % 32;		/* around the longest, 22 */
	atyp = fuzz_sockaddr(data + 1, size - 1, &ss, want);
	alen = atyp == 4 ? 16 : 4;

	out = fuzz_out(cap);
	n = socks5_udp_build(out, cap, sa);
	if (atyp == 0 || cap < 4 + alen + 2)
		assert(n == 0);
	else {
		assert(n == 4 + alen + 2);
		assert(out[0] == 0 && out[1] == 0 && out[2] == 0);
		assert(out[3] == atyp);
		assert(memcmp(out + 4, want, alen + 2) == 0);
	}
	free(out);

	out = fuzz_out(cap);
	n = socks5_build_associate(out, cap, sa);
	if (atyp == 0 || cap < 4 + alen + 2)
		assert(n == 0);
	else {
		assert(n == 4 + alen + 2);
		assert(out[0] == 5 && out[1] == 3 && out[2] == 0);
		assert(out[3] == atyp);
		assert(memcmp(out + 4, want, alen + 2) == 0);
	}
	free(out);

	/* no source address: 0.0.0.0:0 */
	out = fuzz_out(cap);
	n = socks5_build_associate(out, cap, NULL);
	if (cap < 10)
		assert(n == 0);
	else {
		assert(n == 10);
		assert(out[0] == 5 && out[1] == 3 && out[2] == 0 &&
		    out[3] == 1);
		assert(memcmp(out + 4, "\0\0\0\0\0\0", 6) == 0);
	}
	free(out);

	/* CONNECT writes any AF_INET6 address as ATYP IPv6 */
	out = fuzz_out(cap);
	n = socks5_build_connect(out, cap, sa);
	if (ss.ss_family == AF_INET6)
		assert(n == (cap < 22 ? 0 : 22));
	else if (ss.ss_family == AF_INET)
		assert(n == (cap < 10 ? 0 : 10));
	else
		assert(n == 0);
	free(out);
}

/* The builders, with strings and caps taken from the input. */
static void
fuzz_builders(const uint8_t *data, size_t size)
{
	char user[300], pass[300];
	size_t cap, n, ulen, plen, i;
	uint8_t *out;

	if (size < 2)
		return;
	cap = (size_t)data[0] * 3;	/* 0..765: around SOCKS5_MSG_MAX */
	data++;
	size--;

	/* user NUL pass, each clipped */
	for (i = 0; i < size && data[i] != 0 && i < sizeof(user) - 1; i++)
		user[i] = (char)data[i];
	user[i] = '\0';
	ulen = i;
	data += i < size ? i + 1 : i;
	size -= i < size ? i + 1 : i;
	for (i = 0; i < size && data[i] != 0 && i < sizeof(pass) - 1; i++)
		pass[i] = (char)data[i];
	pass[i] = '\0';
	plen = i;

	out = fuzz_out(cap);
	n = socks5_build_auth(out, cap, user, pass);
	if (ulen < 1 || ulen > 255 || plen < 1 || plen > 255 ||
	    cap < 3 + ulen + plen)
		assert(n == 0);
	else {
		assert(n == 3 + ulen + plen);
		assert(out[0] == 1 && out[1] == ulen && out[2 + ulen] == plen);
		assert(memcmp(out + 2, user, ulen) == 0);
		assert(memcmp(out + 3 + ulen, pass, plen) == 0);
	}
	free(out);

	out = fuzz_out(cap);
	n = socks5_build_connect_name(out, cap, user, (uint16_t)(cap * 77));
	if (ulen < 1 || ulen > 255 || cap < 7 + ulen)
		assert(n == 0);
	else {
		assert(n == 7 + ulen);
		assert(out[0] == 5 && out[1] == 1 && out[2] == 0 &&
		    out[3] == 3 && out[4] == ulen);
		assert(memcmp(out + 5, user, ulen) == 0);
	}
	free(out);

	out = fuzz_out(cap);
	n = socks5_udp_build_name(out, cap, user, (uint16_t)(cap * 77));
	if (ulen < 1 || ulen > 255 || cap < 7 + ulen)
		assert(n == 0);
	else {
		assert(n == 7 + ulen);
		assert(out[0] == 0 && out[1] == 0 && out[2] == 0 &&
		    out[3] == 3 && out[4] == ulen);
		assert(memcmp(out + 5, user, ulen) == 0);
		assert(out[5 + ulen] << 8 == ((cap * 77) & 0xff00));
		assert(out[6 + ulen] == ((cap * 77) & 0xff));
	}
	free(out);

	out = fuzz_out(cap);
	n = socks5_build_greeting(out, cap, (cap & 1) != 0);
	assert(n <= cap);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	int p;

	buf = malloc(size > 0 ? size : 1);
	assert(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	for (p = 0; p < FUZZ_NPARSERS; p++)
		fuzz_prefixes((enum fuzz_parser)p, buf, size);
	fuzz_udp(buf, size);
	free(buf);

	fuzz_builders(data, size);
	fuzz_addr_builders(data, size);
	return 0;
}
