/*
 * fuzz_config.c - config_load() on the input as a file (a memfd, opened by
 * its /proc/self/fd path), then the value parsers on the input as a string.
 *
 * Checks: a load error reads "PATH:LINE: message" (or "PATH: message" for
 * I/O trouble) with LINE within the file; an error about a `url =' line
 * never quotes its password; the value parsers agree with a slow
 * reference and their results survive a round trip through text.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_fd = -1;
static char fuzz_path[64];

/* Bytes that none of config.c's or url.c's fixed texts contain ('=' is
 * in "expected key = value"). */
static const char fuzz_rare[] = "!$&*;~|^{}\"<>\\";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR);
	if ((fuzz_fd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1) {
		perror("memfd_create");
		abort();
	}
	snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
	return 0;
}

/* How many times the n bytes at needle occur in data[0..size). */
static int
fuzz_count(const uint8_t *data, size_t size, const char *needle, size_t n)
{
	size_t i;
	int c = 0;

	for (i = 0; i + n <= size; i++)
		if (memcmp(data + i, needle, n) == 0)
			c++;
	return c;
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

/*
 * The password written in line `want' of the file, if that line's key is
 * url: the text between the userinfo's ':' and the last '@', when it makes
 * a good canary (4+ bytes, a rare byte, no quote, found once in the
 * file).  file is data[0..size) cut at its first NUL (config_load stops
 * there).  Returns the canary's length (0: none) and sets *pass.
 */
static size_t
fuzz_url_password(const uint8_t *data, size_t size, const char *file,
    long want, const char **pass)
{
	const char *line, *end, *p, *sep, *at = NULL, *colon, *q;
	size_t n, i;
	bool rare = false;
	long no;

	for (line = file, no = 1; no < want && *line != '\0'; no++) {
		line += strcspn(line, "\n");
		if (*line == '\n')
			line++;
	}
	if (no != want)
		return 0;
	end = line + strcspn(line, "\n");
	p = line + strspn(line, " \t");
	if (strncmp(p, "url", 3) != 0)
		return 0;
	p += 3;
	p += strspn(p, " \t");
	if (*p != '=' && *p != ':')
		return 0;
	if ((sep = strstr(p, "://")) == NULL || sep >= end)
		return 0;
	sep += 3;
	for (q = sep; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL ||
	    (colon = memchr(sep, ':', (size_t)(at - sep))) == NULL)
		return 0;
	n = (size_t)(at - colon - 1);
	for (i = 0; i < n; i++) {
		if (strchr(fuzz_rare, colon[1 + i]) != NULL)
			rare = true;
		/* errors quote text as `...': a canary holding a quote could
		 * match other quoted text plus the quote */
		if (colon[1 + i] == '`' || colon[1 + i] == '\'')
			return 0;
	}
	if (n < 4 || !rare || fuzz_count(data, size, colon + 1, n) != 1)
		return 0;
	*pass = colon + 1;
	return n;
}

/* Load the input as a file and check the error format. */
static void
fuzz_load(const uint8_t *data, size_t size)
{
	struct config c;
	char err[CONFIG_ERR_MAX], *file, *p;
	const char *pass = NULL;
	size_t plen, pl = strlen(fuzz_path), i;
	long line = 0, lines;

	if (ftruncate(fuzz_fd, 0) == -1 ||
	    (size > 0 && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size))
		abort();

	config_defaults(&c);
	memset(err, 0, sizeof(err));
	if (config_load(&c, fuzz_path, err, sizeof(err)) == 0) {
		/* a good file gives a config validate() can judge */
		(void)config_validate(&c, err, sizeof(err));
		assert(c.mtu >= 576 && c.mtu <= 65535);
		assert(c.ipv4_prefix >= 0 && c.ipv4_prefix <= 32);
		assert(c.ipv6_prefix >= 0 && c.ipv6_prefix <= 128);
		assert(memchr(c.tun_name, '\0', sizeof(c.tun_name)) != NULL);
		return;
	}

	assert(strlen(err) < sizeof(err));
	assert(strncmp(err, fuzz_path, pl) == 0 && err[pl] == ':');
	if (isdigit((unsigned char)err[pl + 1])) {
		line = strtol(err + pl + 1, &p, 10);
		assert(*p == ':' && p[1] == ' ' && p[2] != '\0');
		for (lines = 1, i = 0; i < size; i++)
			if (data[i] == '\n')
				lines++;
		assert(line >= 1 && line <= lines);
	} else
		assert(err[pl + 1] == ' ');

	/* the url value is never quoted: if the error is about a url line,
	 * it must not hold that line's password */
	if (line < 1 || (file = malloc(size + 1)) == NULL)
		return;
	memcpy(file, data, size);
	file[size] = '\0';
	if ((plen = fuzz_url_password(data, size, file, line, &pass)) > 0)
		assert(!fuzz_contains(err, pass, plen));
	free(file);
}

/* Reference for config_parse_duration/size: digits, then a suffix. */
static bool
fuzz_ref_number(const char *s, const char *const *suf,
    const unsigned long long *mult, int nsuf, unsigned long long max,
    unsigned long long *out)
{
	unsigned __int128 v = 0;
	int i;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return false;
	}
	for (i = 0; i < nsuf; i++) {
		if (strcasecmp(s, suf[i]) == 0) {
			v *= mult[i];
			if (v > max)
				return false;
			*out = (unsigned long long)v;
			return true;
		}
	}
	return false;
}

static void
fuzz_values(const char *s)
{
	static const char *const dsuf[] = { "", "s", "ms", "m", "h" };
	static const unsigned long long dmul[] = { 1000, 1000, 1, 60000,
	    3600000 };
	static const char *const ssuf[] = { "", "k", "m", "g" };
	static const unsigned long long smul[] = { 1, 1024, 1024 * 1024,
	    1024 * 1024 * 1024 };
	unsigned char a[16], b[16], pin[32], pin2[32];
	char txt[128], ip[INET6_ADDRSTRLEN];
	unsigned long long ref;
	unsigned ms, ms2;
	size_t sz, sz2;
	int pfx, pfx2, i, fam;
	bool ok;

	ok = config_parse_duration(s, &ms);
	assert(ok == fuzz_ref_number(s, dsuf, dmul, 5, UINT_MAX, &ref));
	if (ok) {
		assert(ms == ref);
		snprintf(txt, sizeof(txt), "%ums", ms);
		assert(config_parse_duration(txt, &ms2) && ms2 == ms);
	}

	ok = config_parse_size(s, &sz);
	assert(ok == fuzz_ref_number(s, ssuf, smul, 4, SIZE_MAX, &ref));
	if (ok) {
		assert(sz == ref);
		snprintf(txt, sizeof(txt), "%zu", sz);
		assert(config_parse_size(txt, &sz2) && sz2 == sz);
	}

	for (fam = 0; fam < 2; fam++) {
		int af = fam == 0 ? AF_INET : AF_INET6;
		size_t alen = fam == 0 ? 4 : 16;

		memset(a, 0, sizeof(a));
		if (!config_parse_prefix(s, af, a, &pfx))
			continue;
		assert(pfx >= 0 && pfx <= (fam == 0 ? 32 : 128));
		assert(inet_ntop(af, a, ip, sizeof(ip)) != NULL);
		snprintf(txt, sizeof(txt), "%s/%d", ip, pfx);
		memset(b, 0, sizeof(b));
		assert(config_parse_prefix(txt, af, b, &pfx2));
		assert(pfx2 == pfx && memcmp(a, b, alen) == 0);
	}

	if (config_parse_pin(s, pin)) {
		for (i = 0; i < 32; i++)
			snprintf(txt + 2 * i, 3, "%02x", pin[i]);
		assert(config_parse_pin(txt, pin2) &&
		    memcmp(pin, pin2, 32) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	fuzz_load(data, size);

	if (size > 256)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	fuzz_values(s);
	free(s);
	return 0;
}
