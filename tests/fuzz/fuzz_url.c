/*
 * fuzz_url.c - url_parse() on the input as a C string.
 *
 * Checks: a parsed URL is sane (host set, port non-zero, credentials only
 * with has_auth); its url_redacted() form is exactly scheme://host:port
 * and parses back to the same endpoint; a rejected URL's error never
 * quotes the password as written in the input, nor, in a URL without an
 * '@', what follows the first ':' (a password typed without "@host").
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bytes that no fixed error text of url.c contains: a password holding one
 * of them cannot match an error message by accident. */
static const char fuzz_rare[] = "!$&*;=~|^{}\"<>\\";

/*
 * The password as written (between the first ':' of the userinfo and the
 * last '@'; without an '@', all after the first ':'), if it is a good
 * canary: at least 4 bytes, with a rare byte and
 * no quote, found nowhere else in s.  Returns its length, 0 for none.
 */
static size_t
fuzz_raw_pass(const char *s, const char **pass)
{
	const char *sep, *at, *colon, *p;
	size_t n, i;
	bool rare = false;

	if ((sep = strstr(s, "://")) == NULL)
		return 0;
	sep += 3;
	if ((at = strrchr(sep, '@')) == NULL) {
		/* no '@': after the first ':' may be a password */
		if ((colon = strchr(sep, ':')) == NULL)
			return 0;
		*pass = colon + 1;
		n = strlen(*pass);
	} else {
		if ((colon = memchr(sep, ':', (size_t)(at - sep))) == NULL)
			return 0;
		*pass = colon + 1;
		n = (size_t)(at - *pass);
	}
	if (n < 4)
		return 0;
	for (i = 0; i < n; i++) {
		if (strchr(fuzz_rare, (*pass)[i]) != NULL)
			rare = true;
		/* errors quote text as `...': a canary holding a quote could
		 * match quoted host text plus the quote */
		if ((*pass)[i] == '`' || (*pass)[i] == '\'')
			return 0;
	}
	if (!rare)
		return 0;
	/* elsewhere in s (overlaps included)? */
	for (p = s; *p != '\0'; p++) {
		if (p != *pass && strncmp(p, *pass, n) == 0)
			return 0;
	}
	return n;
}

/* True if hay holds the n bytes at needle. */
static bool
fuzz_contains(const char *hay, const char *needle, size_t n)
{
	for (; *hay != '\0'; hay++) {
		if (strncmp(hay, needle, n) == 0)
			return true;
	}
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct url u, back;
	char *s, err[256], red[600], want[600], err2[256];
	const char *pass = NULL;
	size_t plen;
	bool ok;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	memset(err, 0, sizeof(err));
	ok = url_parse(s, &u, err, sizeof(err));
	plen = fuzz_raw_pass(s, &pass);
	if (!ok) {
		assert(err[0] != '\0' && strlen(err) < sizeof(err));
		if (plen > 0 && fuzz_contains(err, pass, plen)) {
			/* the same URL with other password bytes: if its
			 * error holds the text too, it is the message's own
			 * wording (" a password; user:"), not a leak */
			char *s2 = strdup(s), err3[256];
			struct url u3;

			assert(s2 != NULL);
			memset(s2 + (pass - s), 'Q', plen);
			memset(err3, 0, sizeof(err3));
			if (!url_parse(s2, &u3, err3, sizeof(err3)))
				assert(fuzz_contains(err3, pass, plen));
			else
				assert(0);
			free(s2);
		}
		/* a tiny error buffer is still NUL-terminated */
		memset(err2, 'x', sizeof(err2));
		assert(!url_parse(s, &back, err2, 5));
		assert(memchr(err2, '\0', 5) != NULL && err2[5] == 'x');
		free(s);
		return 0;
	}

	assert(u.scheme == URL_SOCKS5 || u.scheme == URL_SOCKS5_TLS ||
	    u.scheme == URL_HTTP || u.scheme == URL_HTTPS);
	assert(u.host[0] != '\0' && strlen(u.host) <= URL_HOST_MAX);
	assert(u.port != 0);
	assert(strlen(u.user) <= URL_CRED_MAX && strlen(u.pass) <= URL_CRED_MAX);
	if (!u.has_auth)
		assert(u.user[0] == '\0' && u.pass[0] == '\0');
	else
		assert(u.user[0] != '\0');
	assert(url_is_tls(&u) ==
	    (u.scheme == URL_SOCKS5_TLS || u.scheme == URL_HTTPS));

	/* exactly scheme://host:port, so nothing of user or pass can be in
	 * it (a password that is also part of the host, "u:ex@example.com",
	 * is there as the host, not as the password) */
	url_redacted(&u, red, sizeof(red));
	snprintf(want, sizeof(want), strchr(u.host, ':') != NULL ?
	    "%s://[%s]:%u" : "%s://%s:%u", url_scheme_name(u.scheme), u.host,
	    (unsigned)u.port);
	assert(strcmp(red, want) == 0);
	assert(strchr(red, '@') == NULL);
	if (plen > 0)
		assert(!fuzz_contains(red, pass, plen));

	/* the redacted form is a URL for the same endpoint */
	ok = url_parse(red, &back, err2, sizeof(err2));
	assert(ok);
	assert(back.scheme == u.scheme && back.port == u.port &&
	    strcmp(back.host, u.host) == 0 && !back.has_auth);

	/* a short output buffer is truncated, not overrun */
	memset(red, 'x', sizeof(red));
	url_redacted(&u, red, 8);
	assert(strnlen(red, 8) < 8 && red[8] == 'x');

	free(s);
	return 0;
}
