/*
 * test_url.c - unit tests for upstream URL parsing: schemes, default ports,
 * credentials, IPv6 literals, and error texts that never hold the password.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "url.h"

#define PORT_HIDDEN	"bad port: expected 1..65535 (not shown: it may be " \
			"a password; user:pass goes before an `@')"
#define RANGE_HIDDEN	"port out of range 1..65535 (not shown: it may be " \
			"a password; user:pass goes before an `@')"

/* Parse s, which must succeed; returns the result in *u. */
static void
check_good(const char *s, struct url *u, enum url_scheme scheme,
    const char *host, unsigned port)
{
	char	err[256] = "";
	bool	ok;

	ok = url_parse(s, u, err, sizeof(err));
	CHECK(ok);
	if (!ok)
		printf("  %s: %s\n", s, err);
	CHECK(u->scheme == scheme);
	CHECK_STR(u->host, host);
	CHECK(u->port == port);
}

/* Parse s, which must fail with want; the error must not hold secret. */
static void
check_bad(const char *s, const char *want, const char *secret)
{
	struct url	u;
	char		err[256] = "";

	memset(&u, 0x55, sizeof(u));
	CHECK(!url_parse(s, &u, err, sizeof(err)));
	CHECK_STR(err, want);
	if (secret != NULL) {
		CHECK(strstr(err, secret) == NULL);
		CHECK(strstr(u.pass, secret) == NULL);
	}
}

static void
test_schemes(void)
{
	struct url	u;
	char		buf[300];

	check_good("socks5://198.19.0.2", &u, URL_SOCKS5, "198.19.0.2", 1080);
	CHECK(!u.has_auth && !url_is_tls(&u));
	check_good("socks5+tls://proxy.example", &u, URL_SOCKS5_TLS,
	    "proxy.example", 1080);
	CHECK(url_is_tls(&u));
	check_good("http://proxy", &u, URL_HTTP, "proxy", 8080);
	CHECK(!url_is_tls(&u));
	check_good("https://proxy", &u, URL_HTTPS, "proxy", 443);
	CHECK(url_is_tls(&u));
	check_good("SOCKS5://Proxy:1", &u, URL_SOCKS5, "Proxy", 1);
	check_good("HTTPS://h:65535/", &u, URL_HTTPS, "h", 65535);

	CHECK_STR(url_scheme_name(URL_SOCKS5), "socks5");
	CHECK_STR(url_scheme_name(URL_SOCKS5_TLS), "socks5+tls");
	CHECK_STR(url_scheme_name(URL_HTTP), "http");
	CHECK_STR(url_scheme_name(URL_HTTPS), "https");

	check_good("https://u:p@[2001:db8::1]:8443/", &u, URL_HTTPS,
	    "2001:db8::1", 8443);
	CHECK_STR(url_redacted(&u, buf, sizeof(buf)),
	    "https://[2001:db8::1]:8443");
	check_good("socks5://alice:secret@10.0.0.1", &u, URL_SOCKS5,
	    "10.0.0.1", 1080);
	CHECK_STR(url_redacted(&u, buf, sizeof(buf)), "socks5://10.0.0.1:1080");
	CHECK(strstr(buf, "secret") == NULL && strstr(buf, "alice") == NULL);
	check_good("socks5+tls://h.example", &u, URL_SOCKS5_TLS, "h.example",
	    1080);
	CHECK_STR(url_redacted(&u, buf, sizeof(buf)),
	    "socks5+tls://h.example:1080");
	/* A short buffer truncates, NUL-terminated. */
	CHECK_STR(url_redacted(&u, buf, 7), "socks5");
}

static void
test_hosts_ports(void)
{
	struct url	u;

	check_good("socks5://[::1]", &u, URL_SOCKS5, "::1", 1080);
	check_good("socks5://[::1]:9050", &u, URL_SOCKS5, "::1", 9050);
	check_good("socks5://[fe80::1:2:3:4]/", &u, URL_SOCKS5,
	    "fe80::1:2:3:4", 1080);
	check_good("http://my-proxy_1.local:3128", &u, URL_HTTP,
	    "my-proxy_1.local", 3128);
	check_good("http://h:00080", &u, URL_HTTP, "h", 80);
	check_good("http://h/", &u, URL_HTTP, "h", 8080);

	check_bad("", "empty URL", NULL);
	check_bad("proxy:1080", "missing scheme: expected socks5://, "
	    "socks5+tls://, http:// or https://", NULL);
	check_bad("socks4://h", "unknown scheme `socks4'", NULL);
	check_bad("socks5h://h", "unknown scheme `socks5h'", NULL);
	check_bad("://h", "bad scheme", NULL);
	check_bad("socks5://", "empty host", NULL);
	check_bad("socks5://:1080", "empty host", NULL);
	check_bad("socks5:///", "empty host", NULL);
	check_bad("socks5://[]:1080", "empty host", NULL);
	check_bad("socks5://u:p@", "empty host", "p@");
	check_bad("socks5://h:", "empty port after `:'", NULL);
	/* Without an '@' the port may be a password: it is not quoted. */
	check_bad("socks5://h:0", RANGE_HIDDEN, NULL);
	check_bad("socks5://h:65536", RANGE_HIDDEN, NULL);
	check_bad("socks5://h:99999999999999999999", RANGE_HIDDEN, NULL);
	check_bad("socks5://h:-1", PORT_HIDDEN, NULL);
	check_bad("socks5://h:1080x", PORT_HIDDEN, NULL);
	check_bad("socks5://h:10 80", PORT_HIDDEN, NULL);
	check_bad("socks5://h:1080/x", "unexpected text after host and port",
	    NULL);
	/* After an '@' nothing can be the password: quoted. */
	check_bad("socks5://u:p@h:0", "port `0' out of range 1..65535", NULL);
	check_bad("socks5://u:p@h:65536",
	    "port `65536' out of range 1..65535", NULL);
	check_bad("socks5://u:p@h:-1", "bad port `-1'", NULL);
	check_bad("socks5://u:p@h:1080x", "bad port `1080x'", NULL);
	check_bad("socks5://u:p@h:1080/x",
	    "unexpected `/x' after host and port", NULL);
	check_bad("socks5://[::1]:1080x", PORT_HIDDEN, NULL);
	check_bad("socks5://u:p@[::1]:1080x", "bad port `1080x'", NULL);
	check_bad("socks5://h//", "unexpected `//' after host and port", NULL);
	check_bad("socks5://h?a=b", "unexpected `?a=b' after host and port",
	    NULL);
	check_bad("socks5://h#frag", "unexpected `#frag' after host and port",
	    NULL);
	check_bad("socks5://[::1", "missing `]' after IPv6 address", NULL);
	check_bad("socks5://[::1]x", "unexpected `x' after host", NULL);
	check_bad("socks5://[::1]:", "empty port after `:'", NULL);
	check_bad("socks5://[1.2.3.4]", "bad IPv6 address `1.2.3.4'", NULL);
	check_bad("socks5://[fe80::1%eth0]", "bad IPv6 address `fe80::1%eth0'",
	    NULL);
	check_bad("socks5://::1", "IPv6 address must be in brackets", NULL);
	check_bad("socks5://2001:db8::1:1080",
	    "IPv6 address must be in brackets", NULL);
	check_bad("socks5://h:1:2", PORT_HIDDEN, NULL);
	check_bad("socks5://u@h:1:2", "bad port `1:2'", NULL);
	check_bad("socks5://ho st", "bad host name `ho st'", NULL);
	check_bad("socks5://h%41", "bad host name `h%41'", NULL);
}

static void
test_long_host(void)
{
	struct url	u;
	char		s[400], host[300];

	memset(host, 'a', 255);
	host[255] = '\0';
	snprintf(s, sizeof(s), "socks5://%s:1", host);
	check_good(s, &u, URL_SOCKS5, host, 1);
	snprintf(s, sizeof(s), "socks5://%sa:1", host);
	check_bad(s, "host name longer than 255 bytes", NULL);
}

static void
test_credentials(void)
{
	struct url	u;
	char		s[1200], cred[600], want[300];

	check_good("socks5://alice:s3cret@h", &u, URL_SOCKS5, "h", 1080);
	CHECK(u.has_auth);
	CHECK_STR(u.user, "alice");
	CHECK_STR(u.pass, "s3cret");

	/* Percent-decoding, ':' in the password, raw '@' and '/'. */
	check_good("socks5://a%3Ab%40c:p%25w%3a:d@h:1", &u, URL_SOCKS5, "h", 1);
	CHECK_STR(u.user, "a:b@c");
	CHECK_STR(u.pass, "p%w::d");
	check_good("socks5://bob:p@ss/w#rd?@[::1]:2", &u, URL_SOCKS5, "::1", 2);
	CHECK_STR(u.user, "bob");
	CHECK_STR(u.pass, "p@ss/w#rd?");
	check_good("http://u%20x:%C3%A9@h", &u, URL_HTTP, "h", 8080);
	CHECK_STR(u.user, "u x");
	CHECK_STR(u.pass, "\xc3\xa9");

	/*
	 * A user without a password parses: it may come from password_file
	 * or SLUICE_PASSWORD (config_validate() wants one for socks5).
	 */
	check_good("http://token@h", &u, URL_HTTP, "h", 8080);
	CHECK(u.has_auth);
	CHECK_STR(u.user, "token");
	CHECK_STR(u.pass, "");
	check_good("https://token:@h", &u, URL_HTTPS, "h", 443);
	CHECK_STR(u.pass, "");
	check_good("socks5://user@h", &u, URL_SOCKS5, "h", 1080);
	CHECK(u.has_auth && u.pass[0] == '\0');
	check_good("socks5+tls://user:@h", &u, URL_SOCKS5_TLS, "h", 1080);
	CHECK(u.has_auth && u.pass[0] == '\0');

	check_bad("socks5://@h", "empty user name before `@'", NULL);
	check_bad("socks5://:hunter2@h", "empty user name before `@'",
	    "hunter2");
	check_bad("socks5://u%4:hunter2@h", "bad percent-encoding in user name",
	    "hunter2");
	check_bad("socks5://u%zz:hunter2@h",
	    "bad percent-encoding in user name", "hunter2");
	check_bad("socks5://u%00:hunter2@h",
	    "bad percent-encoding in user name", "hunter2");
	check_bad("socks5://u:hunter2%@h", "bad percent-encoding in password",
	    "hunter2");
	check_bad("socks5://u:hunter2%g0@h", "bad percent-encoding in password",
	    "hunter2");

	/* The password never shows in any error. */
	check_bad("socks5://u:hunter2@h:0", "port `0' out of range 1..65535",
	    "hunter2");
	check_bad("socks5://u:hunter2@", "empty host", "hunter2");
	check_bad("socks5://u:hunter2@h/x",
	    "unexpected `/x' after host and port", "hunter2");
	check_bad("socks5://u:hunter2@ho st", "bad host name `ho st'",
	    "hunter2");
	check_bad("socks5:/u:hunter2@h", "missing scheme: expected socks5://, "
	    "socks5+tls://, http:// or https://", "hunter2");
	check_bad("u:hunter2@h://x", "bad scheme", "hunter2");
	check_bad("x:hunter2://h", "bad scheme", "hunter2");
	check_bad("socks5://u:hunter2/x@h:bad", "bad port `bad'", "hunter2");

	/*
	 * Typed without "@host", or with an inline comment cutting it off
	 * ("url = socks5://alice:hunter2 ;old@host" reaches us as
	 * "socks5://alice:hunter2"): nothing after the ':' is quoted.
	 */
	check_bad("socks5://alice:hunter2", PORT_HIDDEN, "hunter2");
	check_bad("socks5://alice:hunter2:198.19.7.1:1080", PORT_HIDDEN,
	    "hunter2");
	check_bad("socks5://alice:1234567", RANGE_HIDDEN, "1234567");
	check_bad("socks5://alice:1234/hunter2",
	    "unexpected text after host and port", "hunter2");
	check_bad("socks5://alice:hunter2/x", PORT_HIDDEN, "hunter2");
	check_bad("socks5://al ice:hunter2:h:1", "bad host name", "hunter2");
	check_bad("socks5://[::1]:hunter2:x", PORT_HIDDEN, "hunter2");
	check_bad("socks5://[::1:hunter2]:1", "bad IPv6 address `::1:hunter2'",
	    NULL);	/* one ':' after ']' at most: a bracketed host */
	check_bad("http://alice:hunter2?x", PORT_HIDDEN, "hunter2");
	check_bad("socks5://alice:hunter2#x", PORT_HIDDEN, "hunter2");
	check_bad("socks5://alice:hunter2 ;old", PORT_HIDDEN, "hunter2");

	/* 255 bytes decoded is the limit, for user and for password. */
	memset(want, 'x', 255);
	want[255] = '\0';
	snprintf(s, sizeof(s), "socks5://%s:%s@h", want, want);
	check_good(s, &u, URL_SOCKS5, "h", 1080);
	CHECK_STR(u.user, want);
	CHECK_STR(u.pass, want);
	snprintf(s, sizeof(s), "socks5://%sx:p@h", want);
	check_bad(s, "user name longer than 255 bytes", NULL);
	snprintf(s, sizeof(s), "socks5://u:%sy@h", want);
	check_bad(s, "password longer than 255 bytes", want);

	/* Encoded: 255 "%41" is 765 bytes of URL but 255 decoded. */
	cred[0] = '\0';
	for (int i = 0; i < 255; i++)
		strcat(cred, i % 2 ? "%41" : "B");
	snprintf(s, sizeof(s), "socks5://u:%s@h", cred);
	check_good(s, &u, URL_SOCKS5, "h", 1080);
	CHECK(strlen(u.pass) == 255 && u.pass[0] == 'B' && u.pass[1] == 'A');
	snprintf(s, sizeof(s), "socks5://u:%s%%41@h", cred);
	check_bad(s, "password longer than 255 bytes", "%41");
}

/* True if err holds 4 or more bytes in a row of "hunter2". */
static bool
leaks(const char *err)
{
	static const char	pw[] = "hunter2";
	char			part[8];
	size_t			i;

	for (i = 0; i + 4 <= sizeof(pw) - 1; i++) {
		memcpy(part, pw + i, 4);
		part[4] = '\0';
		if (strstr(err, part) != NULL)
			return true;
	}
	return false;
}

/*
 * Many malformed URLs with the password in them, and every prefix and
 * one-byte mutation of good ones: no error quotes the password.
 */
static void
test_no_leaks(void)
{
	static const char *const bad[] = {
		"socks5://alice:hunter2@", "socks5://alice:hunter2@h:x",
		"socks5://alice:hunter2@h:0", "socks5://alice:hunter2@h/x/y",
		"socks5://alice:hunter2@[::1", "socks5://alice:hunter2@[zz]",
		"socks5://alice:hunter2@h h", "socks5://alice:hunter2@::1",
		"socks5://alice:hunter2", "socks5://alice:hunter2/",
		"socks5://alice:hunter2:", "socks5://alice:hunter2:1.2.3.4",
		"socks5://alice:hunter2:1.2.3.4:1080",
		"socks5://alice:hunter2@1.2.3.4:1080:",
		"socks5://alice:hunter2%zz@h", "socks5://alice:hunter2%@h",
		"http://a:b:hunter2@h:1:2", "socks5:/alice:hunter2@h",
		"alice:hunter2@h", "socks9://alice:hunter2@h",
		"socks5://:hunter2@h", "https://alice:hunter2@h?q",
		"socks5://alice:hunter2 ;old", "http://x:hunter2@@@",
		"socks5://hunter2:x@h:99999", "socks5://[::1]:hunter2",
		"socks5://alice:hunter2:@h:1:2", "http://alice:hunter2",
	};
	static const char *const good[] = {
		"socks5://alice:hunter2@198.19.7.1:1080",
		"https://alice:hunter2@[2001:db8::7]:8443/",
		"socks5+tls://hunter2:hunter2@proxy.example",
	};
	static const char	swaps[] = " @:/[]%?#x0";
	struct url		u;
	char			err[256], s[128];
	size_t			i, j, k, n, tried = 0, leaked = 0;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(!url_parse(bad[i], &u, err, sizeof(err)));
		if (leaks(err))
			printf("  leak: %s -> %s\n", bad[i], err);
		CHECK(!leaks(err));
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = strlen(good[i]);
		for (j = 0; j < n; j++) {
			/* every prefix */
			snprintf(s, sizeof(s), "%.*s", (int)j, good[i]);
			if (!url_parse(s, &u, err, sizeof(err))) {
				tried++;
				leaked += leaks(err);
			}
			/* every one-byte change */
			for (k = 0; k < sizeof(swaps) - 1; k++) {
				snprintf(s, sizeof(s), "%s", good[i]);
				s[j] = swaps[k];
				if (!url_parse(s, &u, err, sizeof(err))) {
					tried++;
					if (leaks(err)) {
						leaked++;
						printf("  leak: %s -> %s\n", s,
						    err);
					}
				}
			}
		}
	}
	CHECK(tried > 200);
	CHECK(leaked == 0);
}

int
main(void)
{
	test_schemes();
	test_hosts_ports();
	test_long_host();
	test_credentials();
	test_no_leaks();
	return check_summary("test_url");
}
