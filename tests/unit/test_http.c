/*
 * test_http.c - unit tests for the HTTP CONNECT codec: the request builder
 * byte for byte, the response parser fed one byte at a time, interim 1xx
 * responses, folded, oversized and malformed headers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http.h"

#define TAIL	"\x16\x03\x01tunnel bytes"	/* data after the header */

/*
 * Feed msg (a complete response of n bytes) one byte at a time: every
 * proper prefix must be HTTP_MORE with nothing touched, the whole message
 * HTTP_OK; then again with tunnel bytes after it, which must not be used.
 */
static void
check_ok(const char *msg, int want_code, const char *want_reason)
{
	size_t			 n = strlen(msg), i, used;
	char			*buf, reason[HTTP_REASON_MAX];
	const char		*why;
	enum http_status	 st;
	int			 code, prefix_ok = 1;

	for (i = 0; i < n; i++) {
		used = 12345;
		code = -7;
		why = NULL;
		st = http_parse_response(msg, i, &code, reason, sizeof reason,
		    &used, &why);
		if (st != HTTP_MORE || used != 12345 || code != -7) {
			prefix_ok = 0;
			printf("prefix %zu of `%s': status %d (%s)\n", i, msg,
			    (int)st, why ? why : "");
			break;
		}
	}
	CHECK(prefix_ok);

	used = 0;
	code = 0;
	why = NULL;
	st = http_parse_response(msg, n, &code, reason, sizeof reason, &used,
	    &why);
	CHECK(st == HTTP_OK);
	if (st != HTTP_OK)
		printf("`%s': %s\n", msg, why ? why : "?");
	CHECK(used == n);
	CHECK(code == want_code);
	CHECK_STR(reason, want_reason);

	buf = malloc(n + sizeof TAIL);
	if (buf == NULL)
		abort();
	memcpy(buf, msg, n);
	memcpy(buf + n, TAIL, sizeof TAIL);
	used = 0;
	st = http_parse_response(buf, n + sizeof TAIL - 1, &code, reason,
	    sizeof reason, &used, &why);
	CHECK(st == HTTP_OK);
	CHECK(used == n);
	CHECK(memcmp(buf + used, TAIL, sizeof TAIL) == 0);
	free(buf);
}

/*
 * A response that must fail with want.  Also fed byte by byte: a prefix
 * may be HTTP_MORE or the same failure, never HTTP_OK.
 */
static void
check_fail(const char *msg, size_t n, const char *want)
{
	const char		*why;
	enum http_status	 st;
	size_t			 i, used;
	int			 code, prefix_ok = 1;

	for (i = 0; i < n; i++) {
		why = NULL;
		st = http_parse_response(msg, i, &code, NULL, 0, &used, &why);
		if (st == HTTP_OK ||
		    (st == HTTP_FAIL && (why == NULL || strcmp(why, want) != 0)))
			prefix_ok = 0;
	}
	CHECK(prefix_ok);

	why = NULL;
	st = http_parse_response(msg, n, &code, NULL, 0, &used, &why);
	CHECK(st == HTTP_FAIL);
	CHECK_STR(why, want);
}

#define FAIL_STR(s, why)	check_fail((s), sizeof(s) - 1, (why))

static void
test_parse_good(void)
{
	check_ok("HTTP/1.1 200 Connection established\r\n\r\n", 200,
	    "Connection established");
	check_ok("HTTP/1.0 200 OK\r\n\r\n", 200, "OK");
	check_ok("HTTP/1.1 200 \r\n\r\n", 200, "");
	check_ok("HTTP/1.1 200\r\n\r\n", 200, "");
	check_ok("HTTP/1.1 204 No Content\r\nVia: 1.1 squid\r\n"
	    "Proxy-Agent: test/1.0\r\nX-Empty:\r\n\r\n", 204, "No Content");
	/* Content-Length on a 2xx reply to CONNECT is ignored (RFC 9110). */
	check_ok("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, "OK");
	/* Reasons with tabs, punctuation and obs-text. */
	check_ok("HTTP/1.1 407 Proxy Authentication Required\r\n"
	    "Proxy-Authenticate: Basic realm=\"proxy\"\r\n"
	    "Content-Length: 0\r\n\r\n", 407,
	    "Proxy Authentication Required");
	check_ok("HTTP/1.1 403 Forbidden\tby policy (see /x)\r\n\r\n", 403,
	    "Forbidden\tby policy (see /x)");
	check_ok("HTTP/1.1 502 Bad \xc3\xa9gateway\r\n\r\n", 502,
	    "Bad ??gateway");
	/* obs-fold continuation lines are accepted and skipped. */
	check_ok("HTTP/1.1 200 OK\r\nX-Long: part one\r\n  part two\r\n"
	    "\tpart three\r\nVia: x\r\n\r\n", 200, "OK");
	/* Interim responses are consumed; the final one is returned. */
	check_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 200,
	    "OK");
	check_ok("HTTP/1.1 100 Continue\r\n\r\n"
	    "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
	    "HTTP/1.1 407 Auth Please\r\nProxy-Authenticate: Basic\r\n\r\n",
	    407, "Auth Please");
	/* 101 is final: not a successful CONNECT. */
	check_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
	    101, "Switching Protocols");
	check_ok("HTTP/1.1 599 Weird\r\n\r\n", 599, "Weird");
	check_ok("HTTP/1.9 200 OK\r\n\r\n", 200, "OK");
}

static void
test_parse_split(void)
{
	const char	*a = "HTTP/1.1 200 Conn";
	const char	*full = "HTTP/1.1 200 Connection established\r\n\r\n";
	const char	*why;
	char		 reason[8];
	size_t		 used;
	int		 code;

	/* A status line split anywhere: MORE until the end. */
	CHECK(http_parse_response(full, strlen(a), &code, NULL, 0, &used,
	    &why) == HTTP_MORE);
	CHECK(http_parse_response(full, strlen(full) - 1, &code, NULL, 0,
	    &used, &why) == HTTP_MORE);
	/* A short reason buffer truncates; NULL reason is allowed. */
	CHECK(http_parse_response(full, strlen(full), &code, reason,
	    sizeof reason, &used, &why) == HTTP_OK);
	CHECK_STR(reason, "Connect");
	CHECK(http_parse_response(full, strlen(full), &code, NULL, 0, &used,
	    &why) == HTTP_OK);
	CHECK(used == strlen(full));
	/* Empty input. */
	CHECK(http_parse_response("", 0, &code, NULL, 0, &used, &why) ==
	    HTTP_MORE);
}

static void
test_parse_bad(void)
{
	FAIL_STR("SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP response");
	FAIL_STR("\x05\x00", "not an HTTP response");
	FAIL_STR("http/1.1 200 OK\r\n\r\n", "not an HTTP response");
	FAIL_STR("<html>", "not an HTTP response");
	FAIL_STR("HTTP/2 200\r\n\r\n", "unsupported HTTP version");
	FAIL_STR("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version");
	FAIL_STR("HTTP/1.x 200 OK\r\n\r\n", "malformed status line");
	FAIL_STR("HTTP/1.1  200 OK\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 20 OK\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 2000 OK\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 099 Low\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 600 High\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 abc OK\r\n\r\n", "bad status code");
	FAIL_STR("HTTP/1.1 200 OK\x01\r\n\r\n", "bad character in status line");
	FAIL_STR("HTTP/1.1 200 O\0K\r\n\r\n", "bad character in status line");
	/* Line endings. */
	FAIL_STR("HTTP/1.1 200 OK\n\n", "missing CRLF");
	FAIL_STR("HTTP/1.1 200\n\n", "missing CRLF");
	FAIL_STR("HTTP/1.1 200 OK\rX\r\n\r\n", "missing CRLF");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: x\n\r\n", "missing CRLF");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: x\r\n\n", "missing CRLF");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: x\r\n\rX", "missing CRLF");
	/* Header lines. */
	FAIL_STR("HTTP/1.1 200 OK\r\nVia : x\r\n\r\n", "bad header name");
	FAIL_STR("HTTP/1.1 200 OK\r\n: x\r\n\r\n", "bad header name");
	FAIL_STR("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
	    "bad header name");
	FAIL_STR("HTTP/1.1 200 OK\r\nBad(name): x\r\n\r\n", "bad header name");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: a\x7f\r\n\r\n",
	    "bad character in header");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: a\0b\r\n\r\n",
	    "bad character in header");
	FAIL_STR("HTTP/1.1 200 OK\r\n folded first\r\n\r\n",
	    "whitespace before first header");
	FAIL_STR("HTTP/1.1 200 OK\r\nVia: x\r\n  bad\x01\r\n\r\n",
	    "bad character in header");
	/* Garbage after an interim response. */
	FAIL_STR("HTTP/1.1 100 Continue\r\n\r\nhello", "not an HTTP response");
}

static void
test_parse_limits(void)
{
	char		*buf;
	const char	*why;
	size_t		 n, used, cap = HTTP_HEADER_MAX + 4096;
	int		 code;
	static const char head[] = "HTTP/1.1 200 OK\r\n";

	buf = malloc(cap);
	if (buf == NULL)
		abort();

	/* A header block of exactly HTTP_HEADER_MAX bytes is accepted. */
	memcpy(buf, head, sizeof head - 1);
	n = sizeof head - 1;
	memcpy(buf + n, "X-Pad: ", 7);
	n += 7;
	memset(buf + n, 'a', HTTP_HEADER_MAX - n - 4);
	n = HTTP_HEADER_MAX - 4;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	memcpy(buf + n, TAIL, sizeof TAIL);
	CHECK(http_parse_response(buf, n + sizeof TAIL - 1, &code, NULL, 0,
	    &used, &why) == HTTP_OK);
	CHECK(used == HTTP_HEADER_MAX);
	CHECK(http_parse_response(buf, n - 1, &code, NULL, 0, &used, &why) ==
	    HTTP_MORE);

	/* One byte more is too large, whether more bytes follow or not. */
	memcpy(buf, head, sizeof head - 1);
	n = sizeof head - 1;
	memcpy(buf + n, "X-Pad: ", 7);
	n += 7;
	memset(buf + n, 'a', HTTP_HEADER_MAX - n - 3);
	n = HTTP_HEADER_MAX - 3;
	memcpy(buf + n, "\r\n\r\n", 4);
	n += 4;
	why = NULL;
	CHECK(http_parse_response(buf, n, &code, NULL, 0, &used, &why) ==
	    HTTP_FAIL);
	CHECK_STR(why, "response header too large");
	CHECK(http_parse_response(buf, HTTP_HEADER_MAX, &code, NULL, 0, &used,
	    &why) == HTTP_FAIL);
	CHECK(http_parse_response(buf, HTTP_HEADER_MAX - 1, &code, NULL, 0,
	    &used, &why) == HTTP_MORE);

	/* Endless interim responses count against the same limit. */
	for (n = 0; n + 25 <= cap; n += 25)
		memcpy(buf + n, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	why = NULL;
	CHECK(http_parse_response(buf, n, &code, NULL, 0, &used, &why) ==
	    HTTP_FAIL);
	CHECK_STR(why, "response header too large");

	/* Many short header lines. */
	memcpy(buf, head, sizeof head - 1);
	for (n = sizeof head - 1; n + 8 <= cap; n += 8)
		memcpy(buf + n, "A: bcd\r\n", 8);
	why = NULL;
	CHECK(http_parse_response(buf, n, &code, NULL, 0, &used, &why) ==
	    HTTP_FAIL);
	CHECK_STR(why, "response header too large");
	free(buf);
}

static void
test_build(void)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr		 sa;
	char			 buf[HTTP_REQUEST_MAX], user[300], pass[300];
	const char		*want;
	size_t			 n, i;
	int			 ok;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(80);
	inet_pton(AF_INET, "198.18.1.1", &sin.sin_addr);
	want = "CONNECT 198.18.1.1:80 HTTP/1.1\r\n"
	    "Host: 198.18.1.1:80\r\n\r\n";
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin, NULL,
	    NULL);
	CHECK(n == strlen(want));
	CHECK(n > 0 && memcmp(buf, want, n) == 0);

	/* Exactly fitting (with the NUL) and one byte short. */
	CHECK(http_build_connect(buf, strlen(want) + 1,
	    (struct sockaddr *)&sin, NULL, NULL) == strlen(want));
	for (i = 0, ok = 1; i <= strlen(want); i++) {
		if (http_build_connect(buf, i, (struct sockaddr *)&sin, NULL,
		    NULL) != 0)
			ok = 0;
	}
	CHECK(ok);

	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	want = "CONNECT [2001:db8::1]:65535 HTTP/1.1\r\n"
	    "Host: [2001:db8::1]:65535\r\n\r\n";
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin6,
	    NULL, NULL);
	CHECK(n == strlen(want));
	CHECK(n > 0 && memcmp(buf, want, n) == 0);

	/* RFC 7617's example: Aladdin / open sesame. */
	sin.sin_port = htons(443);
	want = "CONNECT 198.18.1.1:443 HTTP/1.1\r\n"
	    "Host: 198.18.1.1:443\r\n"
	    "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n";
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "Aladdin", "open sesame");
	CHECK(n == strlen(want));
	CHECK(n > 0 && memcmp(buf, want, n) == 0);
	/* Too small anywhere in the auth header: 0, and nothing left. */
	for (i = 0, ok = 1; i <= strlen(want); i++) {
		memset(buf, 'x', sizeof buf);
		if (http_build_connect(buf, i, (struct sockaddr *)&sin,
		    "Aladdin", "open sesame") != 0 ||
		    (i > 0 && memchr(buf, 'Q', i) != NULL))
			ok = 0;
	}
	CHECK(ok);
	/* Empty password and empty user are fine. */
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin, "u",
	    "");
	CHECK(n > 0 && strstr(buf, "Basic dTo=\r\n") != NULL);
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin, "",
	    "p");
	CHECK(n > 0 && strstr(buf, "Basic OnA=\r\n") != NULL);

	/* Invalid arguments. */
	CHECK(http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "a:b", "c") == 0);
	CHECK(http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "a", NULL) == 0);
	CHECK(http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "a\r\nX: y", "c") == 0);
	CHECK(http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "a", "c\n") == 0);
	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNIX;
	CHECK(http_build_connect(buf, sizeof buf, &sa, NULL, NULL) == 0);
	CHECK(http_build_connect(NULL, 10, (struct sockaddr *)&sin, NULL,
	    NULL) == 0);

	/* Longest credentials fit HTTP_REQUEST_MAX with an IPv6 target. */
	memset(user, 'u', 255);
	user[255] = '\0';
	memset(pass, 'p', 255);
	pass[255] = '\0';
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin6,
	    user, pass);
	CHECK(n > 0 && n < sizeof buf);
	pass[255] = 'p';
	pass[256] = '\0';
	CHECK(http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin6,
	    user, pass) == 0);

	/* What we build parses as a request would: sanity of CRLFs. */
	n = http_build_connect(buf, sizeof buf, (struct sockaddr *)&sin,
	    "Aladdin", "open sesame");
	CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
	CHECK(strstr(buf, "\r\n\r\n") == buf + n - 4);
}

static void
test_status_ok(void)
{
	CHECK(http_status_ok(200));
	CHECK(http_status_ok(204));
	CHECK(http_status_ok(299));
	CHECK(!http_status_ok(199));
	CHECK(!http_status_ok(101));
	CHECK(!http_status_ok(300));
	CHECK(!http_status_ok(407));
}

/* CONNECT to a name: exact bytes; names that could inject are refused. */
static void
test_build_name(void)
{
	const char *want = "CONNECT www.example.test:443 HTTP/1.1\r\n"
	    "Host: www.example.test:443\r\n\r\n";
	char buf[512];
	size_t n;

	n = http_build_connect_name(buf, sizeof buf, "www.example.test", 443,
	    NULL, NULL);
	CHECK(n == strlen(want));
	CHECK(memcmp(buf, want, strlen(want) + 1) == 0);
	CHECK(http_build_connect_name(buf, strlen(want), "www.example.test",
	    443, NULL, NULL) == 0);
	n = http_build_connect_name(buf, sizeof buf, "a_b-c.test", 80, "u",
	    "p");
	CHECK(n > 0 && strstr(buf, "Proxy-Authorization: Basic dTpw\r\n") !=
	    NULL);
	CHECK(!http_name_ok(""));
	CHECK(!http_name_ok("a b"));
	CHECK(!http_name_ok("a\r\nX-Evil: 1"));
	CHECK(!http_name_ok("a:80"));
	CHECK(!http_name_ok(".a"));
	CHECK(!http_name_ok("-a"));
	CHECK(!http_name_ok("a\\046b"));
	CHECK(http_name_ok("xn--bcher-kva.example"));
	CHECK(http_build_connect_name(buf, sizeof buf, "a b", 80, NULL,
	    NULL) == 0);
}

int
main(void)
{
	test_parse_good();
	test_parse_split();
	test_parse_bad();
	test_parse_limits();
	test_build();
	test_build_name();
	test_status_ok();
	return check_summary("test_http");
}
