/*
 * fuzz_http.c - http_parse_response() on prefixes of the input (all of
 * them for short inputs, a spread of split points otherwise) and the
 * CONNECT request builder on strings from the input.
 *
 * Each prefix ends where ASan's view of the buffer ends, so reading past
 * len crashes.  Over growing prefixes the parser must go MORE ... then OK
 * or FAIL for good; OK first appears when len reaches *used, and every
 * longer prefix gives the same code, reason and *used.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>
#include <sanitizer/asan_interface.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ALL_PREFIXES	512	/* every prefix up to this input size */
#define FUZZ_SPLITS		64	/* else this many evenly spread */

struct fuzz_result {
	enum http_status	st;
	int			code;
	size_t			used;
	char			reason[HTTP_REASON_MAX];
	const char		*why;
};

/* Parse buf[0..len) with the rest of the buffer poisoned; check the
 * per-call contract. */
static void
fuzz_parse(char *buf, size_t n, size_t len, struct fuzz_result *r)
{
	size_t i, rl;

	ASAN_POISON_MEMORY_REGION(buf + len, n - len);
	memset(r, 0, sizeof(*r));
	memset(r->reason, 'x', sizeof(r->reason));
	r->code = -1;
	r->used = (size_t)-1;
	r->st = http_parse_response(buf, len, &r->code, r->reason,
	    sizeof(r->reason), &r->used, &r->why);
	ASAN_UNPOISON_MEMORY_REGION(buf + len, n - len);

	switch (r->st) {
	case HTTP_MORE:
		assert(len < HTTP_HEADER_MAX);
		break;
	case HTTP_OK:
		assert(r->used <= len && r->used <= HTTP_HEADER_MAX);
		/* shortest: "HTTP/1.1 200\r\n\r\n" */
		assert(r->used >= 16);
		assert(memcmp(buf + r->used - 4, "\r\n\r\n", 4) == 0);
		assert(memcmp(buf, "HTTP/1.", 7) == 0);
		assert(r->code == 101 || (r->code >= 200 && r->code <= 599));
		rl = strnlen(r->reason, sizeof(r->reason));
		assert(rl < sizeof(r->reason));
		for (i = 0; i < rl; i++) {
			unsigned char c = (unsigned char)r->reason[i];

			assert(c < 0x80);
			assert(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		break;
	case HTTP_FAIL:
		assert(r->why != NULL && r->why[0] != '\0');
		break;
	default:
		assert(!"bad status");
	}
}

/* Compare a prefix's result with the one of the previous (shorter) prefix
 * and with the final one. */
static void
fuzz_check_order(const struct fuzz_result *prev, size_t prevlen,
    const struct fuzz_result *cur, size_t len)
{
	(void)prevlen;
	if (prev->st == HTTP_FAIL)
		assert(cur->st == HTTP_FAIL);
	if (prev->st == HTTP_OK) {
		assert(cur->st == HTTP_OK);
		assert(cur->used == prev->used && cur->code == prev->code);
		assert(strcmp(cur->reason, prev->reason) == 0);
	}
	if (cur->st == HTTP_OK && prev->st == HTTP_MORE)
		assert(cur->used > prevlen);
	if (cur->st == HTTP_OK)
		assert(cur->used <= len);
}

/* Reason with a small buffer: a NUL-terminated prefix of the full one, no
 * byte written past reasonlen. */
static void
fuzz_small_reason(const char *buf, size_t len, const struct fuzz_result *full,
    size_t reasonlen)
{
	char *reason = malloc(reasonlen > 0 ? reasonlen : 1);
	enum http_status st;
	const char *why;
	size_t used;
	int code;

	assert(reason != NULL);
	memset(reason, 'x', reasonlen > 0 ? reasonlen : 1);
	st = http_parse_response(buf, len, &code, reason, reasonlen, &used,
	    &why);
	assert(st == full->st);
	if (st == HTTP_OK) {
		assert(code == full->code && used == full->used);
		if (reasonlen == 0)
			assert(reason[0] == 'x');
		else {
			assert(strnlen(reason, reasonlen) < reasonlen);
			assert(strncmp(reason, full->reason, reasonlen - 1) == 0);
		}
	}
	free(reason);

	st = http_parse_response(buf, len, &code, NULL, 0, &used, &why);
	assert(st == full->st);
}

/* The builder: user NUL pass NUL from the input, dst and cap from bytes. */
static void
fuzz_builder(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	char user[600], pass[600], *out, *p;
	unsigned char cred[HTTP_CRED_MAX + 2];
	size_t cap, n, i, crlf, olen;
	bool with_user, valid;

	if (size < 24)
		return;
	memset(&ss, 0, sizeof(ss));
	if (data[0] & 1) {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, data + 1, 16);
		memcpy(&sin6->sin6_port, data + 17, 2);
	} else {
		sin->sin_family = (data[0] & 2) ? AF_INET : AF_UNIX;
		memcpy(&sin->sin_addr, data + 1, 4);
		memcpy(&sin->sin_port, data + 17, 2);
	}
	with_user = (data[0] & 4) != 0;
	cap = ((size_t)data[19] << 8 | data[20]) % (HTTP_REQUEST_MAX + 64);
	data += 21;
	size -= 21;
	for (i = 0; i < size && data[i] != 0 && i < sizeof(user) - 1; i++)
		user[i] = (char)data[i];
	user[i] = '\0';
	data += i < size ? i + 1 : i;
	size -= i < size ? i + 1 : i;
	for (i = 0; i < size && data[i] != 0 && i < sizeof(pass) - 1; i++)
		pass[i] = (char)data[i];
	pass[i] = '\0';

	out = malloc(cap > 0 ? cap : 1);
	assert(out != NULL);
	n = http_build_connect(out, cap, (struct sockaddr *)&ss,
	    with_user ? user : NULL, pass);
	if (ss.ss_family == AF_UNIX)
		assert(n == 0);
	valid = !with_user || (strchr(user, ':') == NULL &&
	    strlen(user) + 1 + strlen(pass) <= HTTP_CRED_MAX);
	for (p = user; with_user && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			valid = false;
	for (p = pass; with_user && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			valid = false;
	if (!valid)
		assert(n == 0);
	if (n == 0) {
		free(out);
		return;
	}
	assert(n < cap && out[n] == '\0' && strlen(out) == n);
	assert(strncmp(out, "CONNECT ", 8) == 0);
	assert(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
	/* no header injection: CR and LF only as CRLF, one per line */
	for (i = 0, crlf = 0; i < n; i++) {
		if (out[i] == '\r') {
			assert(out[i + 1] == '\n');
			crlf++;
		} else if (out[i] == '\n')
			assert(i > 0 && out[i - 1] == '\r');
	}
	assert(crlf == (with_user ? 4u : 3u));
	if (with_user) {
		p = strstr(out, "\r\nProxy-Authorization: Basic ");
		assert(p != NULL);
		p += strlen("\r\nProxy-Authorization: Basic ");
		assert(mbedtls_base64_decode(cred, sizeof(cred) - 1, &olen,
		    (unsigned char *)p, strcspn(p, "\r")) == 0);
		cred[olen] = '\0';
		assert(strncmp((char *)cred, user, strlen(user)) == 0);
		assert(cred[strlen(user)] == ':');
		assert(strcmp((char *)cred + strlen(user) + 1, pass) == 0);
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result full, prev, cur;
	size_t len, prevlen, step, last;
	char *buf;

	buf = malloc(size > 0 ? size : 1);
	assert(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);

	fuzz_parse(buf, size, size, &full);
	if (full.st == HTTP_MORE)
		assert(size < HTTP_HEADER_MAX);

	/* growing prefixes, ending with the whole input */
	fuzz_parse(buf, size, 0, &prev);
	assert(prev.st == HTTP_MORE);
	prevlen = 0;
	step = size <= FUZZ_ALL_PREFIXES ? 1 : size / FUZZ_SPLITS;
	last = 0;
	for (len = 1; len <= size; len++) {
		bool at_used = full.st == HTTP_OK &&
		    (len + 1 == full.used || len == full.used);

		if (len != size && !at_used && len - last < step)
			continue;
		last = len;
		fuzz_parse(buf, size, len, &cur);
		fuzz_check_order(&prev, prevlen, &cur, len);
		if (full.st == HTTP_OK) {
			if (len < full.used)
				assert(cur.st == HTTP_MORE);
			else
				assert(cur.st == HTTP_OK &&
				    cur.used == full.used);
		}
		prev = cur;
		prevlen = len;
	}

	fuzz_small_reason(buf, size, &full, size > 0 ? data[0] % 9 : 0);
	free(buf);

	fuzz_builder(data, size);
	return 0;
}
