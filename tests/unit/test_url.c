/*
 * test_url.c - unit tests for upstream URL parsing: schemes, default ports,
 * credentials, IPv6 literals, and error texts that never hold the password.
 */
#include <string.h>

#include "check.h"
#include "url.h"

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
	check_bad("socks5://h:0", "port `0' out of range 1..65535", NULL);
	check_bad("socks5://h:65536", "port `65536' out of range 1..65535",
	    NULL);
	check_bad("socks5://h:99999999999999999999",
	    "port `99999999999999999999' out of range 1..65535", NULL);
	check_bad("socks5://h:-1", "bad port `-1'", NULL);
	check_bad("socks5://h:1080x", "bad port `1080x'", NULL);
	check_bad("socks5://h:10 80", "bad port `10 80'", NULL);
	check_bad("socks5://h:1080/x", "unexpected `/x' after host and port",
	    NULL);
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
	check_bad("socks5://h:1:2", "bad port `1:2'", NULL);
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

	/* http may have a user and no password; socks5 may not. */
	check_good("http://token@h", &u, URL_HTTP, "h", 8080);
	CHECK(u.has_auth);
	CHECK_STR(u.user, "token");
	CHECK_STR(u.pass, "");
	check_good("https://token:@h", &u, URL_HTTPS, "h", 443);
	CHECK_STR(u.pass, "");
	check_bad("socks5://user@h",
	    "empty password: socks5 needs both user and password", NULL);
	check_bad("socks5+tls://user:@h",
	    "empty password: socks5 needs both user and password", NULL);

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

int
main(void)
{
	test_schemes();
	test_hosts_ports();
	test_long_host();
	test_credentials();
	return check_summary("test_url");
}
