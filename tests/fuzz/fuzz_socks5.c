/*
 * fuzz_socks5.c - the SOCKS5 reply parsers fed every prefix of the input,
 * as a driver reading byte by byte would, plus the request builders.
 *
 * Each prefix lies at the very end of an ASan-visible region (the rest of
 * the buffer is poisoned), so a parser that reads past len crashes.  Over
 * growing prefixes a parser must say MORE, MORE, ... and then OK or FAIL
 * for good; the first OK comes exactly when len reaches *used.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum fuzz_parser {
	FUZZ_METHOD_NOAUTH,
	FUZZ_METHOD_AUTH,
	FUZZ_AUTH,
	FUZZ_CONNECT,
	FUZZ_NPARSERS,
};

/* Longest reply each parser must decide on: 4 + 1 + 255 + 2 for CONNECT. */
static const size_t fuzz_decide_by[FUZZ_NPARSERS] = { 2, 2, 2, 262 };

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
	case FUZZ_CONNECT:
		st = socks5_parse_connect(buf, len, &b, used, why);
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
		case FUZZ_CONNECT:
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
	free(buf);

	fuzz_builders(data, size);
	return 0;
}
