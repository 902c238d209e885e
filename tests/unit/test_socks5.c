/*
 * test_socks5.c - unit tests for the SOCKS5 codec: builders byte for byte,
 * parsers fed one byte at a time, bad and oversized replies.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "socks5.h"

#define REPLY_PAD	8	/* extra bytes appended to test "used" */

/*
 * Feed a valid connect reply of n bytes one byte at a time: every proper
 * prefix must give SOCKS5_MORE, the whole message SOCKS5_OK with used == n,
 * and the same with trailing bytes that must be left alone.
 */
static void
check_connect_ok(const uint8_t *msg, size_t n)
{
	uint8_t			 buf[600];
	enum socks5_status	 st;
	uint8_t			 rep;
	size_t			 used, i;
	const char		*why;
	int			 prefix_ok = 1;

	for (i = 0; i < n; i++) {
		used = 12345;
		if (socks5_parse_connect(msg, i, &rep, &used, &why) !=
		    SOCKS5_MORE || used != 12345)
			prefix_ok = 0;
	}
	CHECK(prefix_ok);

	rep = 0xaa;
	used = 0;
	st = socks5_parse_connect(msg, n, &rep, &used, &why);
	CHECK(st == SOCKS5_OK);
	CHECK(used == n);
	CHECK(rep == SOCKS5_REP_SUCCEEDED);

	/* Extra bytes after the reply belong to the data stream. */
	memcpy(buf, msg, n);
	memset(buf + n, 0x5a, REPLY_PAD);
	used = 0;
	st = socks5_parse_connect(buf, n + REPLY_PAD, &rep, &used, &why);
	CHECK(st == SOCKS5_OK);
	CHECK(used == n);
	CHECK(buf[n] == 0x5a && buf[n + REPLY_PAD - 1] == 0x5a);
}

/* Parse a connect reply expected to fail with reason want. */
static void
check_connect_fail(const uint8_t *msg, size_t n, const char *want)
{
	const char	*why = NULL;
	uint8_t		 rep;
	size_t		 used;

	CHECK(socks5_parse_connect(msg, n, &rep, &used, &why) == SOCKS5_FAIL);
	CHECK_STR(why, want);
}

static void
test_greeting(void)
{
	uint8_t	buf[8];

	memset(buf, 0xee, sizeof(buf));
	CHECK(socks5_build_greeting(buf, sizeof(buf), false) == 3);
	CHECK(buf[0] == 5 && buf[1] == 1 && buf[2] == 0x00);
	CHECK(buf[3] == 0xee);
	CHECK(socks5_build_greeting(buf, sizeof(buf), true) == 3);
	CHECK(buf[0] == 5 && buf[1] == 1 && buf[2] == 0x02);

	memset(buf, 0xee, sizeof(buf));
	CHECK(socks5_build_greeting(buf, 2, false) == 0);
	CHECK(socks5_build_greeting(buf, 0, true) == 0);
	CHECK(buf[0] == 0xee && buf[1] == 0xee);
	CHECK(socks5_build_greeting(buf, 3, true) == 3);
}

static void
test_method(void)
{
	const uint8_t		 none[] = { 5, 0x00 };
	const uint8_t		 userpass[] = { 5, 0x02 };
	const uint8_t		 refused[] = { 5, 0xff };
	const uint8_t		 badver[] = { 4, 0x00 };
	const uint8_t		 gssapi[] = { 5, 0x01 };
	const uint8_t		 extra[] = { 5, 0x00, 1, 2, 3 };
	const char		*why;
	uint8_t			 method;
	size_t			 used;

	/* Every proper prefix is "more". */
	used = 99;
	CHECK(socks5_parse_method(none, 0, false, &method, &used, &why) ==
	    SOCKS5_MORE);
	CHECK(socks5_parse_method(none, 1, false, &method, &used, &why) ==
	    SOCKS5_MORE);
	CHECK(used == 99);

	CHECK(socks5_parse_method(none, 2, false, &method, &used, &why) ==
	    SOCKS5_OK);
	CHECK(used == 2 && method == SOCKS5_METHOD_NONE);
	CHECK(socks5_parse_method(userpass, 2, true, &method, &used, &why) ==
	    SOCKS5_OK);
	CHECK(used == 2 && method == SOCKS5_METHOD_USERPASS);

	/* Oversized: used covers only the reply. */
	used = 0;
	CHECK(socks5_parse_method(extra, sizeof(extra), false, &method, &used,
	    &why) == SOCKS5_OK);
	CHECK(used == 2);

	why = NULL;
	CHECK(socks5_parse_method(refused, 2, true, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "no acceptable authentication method");
	CHECK(method == 0xff);
	why = NULL;
	CHECK(socks5_parse_method(refused, 2, false, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "no acceptable authentication method");

	/* A method we did not offer. */
	why = NULL;
	CHECK(socks5_parse_method(userpass, 2, false, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "server chose a method we did not offer");
	why = NULL;
	CHECK(socks5_parse_method(none, 2, true, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "server chose a method we did not offer");
	why = NULL;
	CHECK(socks5_parse_method(gssapi, 2, true, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "server chose a method we did not offer");

	/* Wrong version fails on the first byte. */
	why = NULL;
	CHECK(socks5_parse_method(badver, 1, false, &method, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "bad version in method selection reply");
	CHECK(socks5_parse_method(badver, 2, false, &method, &used, &why) ==
	    SOCKS5_FAIL);

	/* NULL out-pointers are tolerated. */
	CHECK(socks5_parse_method(none, 2, false, NULL, NULL, NULL) ==
	    SOCKS5_OK);
	CHECK(socks5_parse_method(refused, 2, false, NULL, NULL, NULL) ==
	    SOCKS5_FAIL);
}

static void
test_auth_build(void)
{
	uint8_t	buf[SOCKS5_MSG_MAX + 8];
	char	u255[256], p255[256], u256[257];
	size_t	n;

	n = socks5_build_auth(buf, sizeof(buf), "alice", "s3cret");
	CHECK(n == 3 + 5 + 6);
	CHECK(buf[0] == 1 && buf[1] == 5);
	CHECK(memcmp(buf + 2, "alice", 5) == 0);
	CHECK(buf[7] == 6);
	CHECK(memcmp(buf + 8, "s3cret", 6) == 0);

	/* Exactly enough room, and one byte short. */
	CHECK(socks5_build_auth(buf, 14, "alice", "s3cret") == 14);
	CHECK(socks5_build_auth(buf, 13, "alice", "s3cret") == 0);
	CHECK(socks5_build_auth(buf, 0, "a", "b") == 0);

	/* Empty credentials are not allowed by RFC 1929. */
	CHECK(socks5_build_auth(buf, sizeof(buf), "", "x") == 0);
	CHECK(socks5_build_auth(buf, sizeof(buf), "x", "") == 0);
	CHECK(socks5_build_auth(buf, sizeof(buf), NULL, "x") == 0);
	CHECK(socks5_build_auth(buf, sizeof(buf), "x", NULL) == 0);

	/* 255 bytes each is the maximum and fits SOCKS5_MSG_MAX. */
	memset(u255, 'u', 255);
	u255[255] = '\0';
	memset(p255, 'p', 255);
	p255[255] = '\0';
	memset(u256, 'v', 256);
	u256[256] = '\0';
	n = socks5_build_auth(buf, SOCKS5_MSG_MAX, u255, p255);
	CHECK(n == SOCKS5_MSG_MAX);
	CHECK(buf[1] == 255 && buf[2] == 'u' && buf[256] == 'u');
	CHECK(buf[257] == 255 && buf[258] == 'p' && buf[512] == 'p');
	CHECK(socks5_build_auth(buf, SOCKS5_MSG_MAX - 1, u255, p255) == 0);
	CHECK(socks5_build_auth(buf, sizeof(buf), u256, "x") == 0);
	CHECK(socks5_build_auth(buf, sizeof(buf), "x", u256) == 0);
}

static void
test_auth_parse(void)
{
	const uint8_t	 ok[] = { 1, 0 }, denied[] = { 1, 1 };
	const uint8_t	 badver[] = { 5, 0 }, extra[] = { 1, 0, 0x42 };
	const char	*why;
	size_t		 used;

	used = 7;
	CHECK(socks5_parse_auth(ok, 0, &used, &why) == SOCKS5_MORE);
	CHECK(socks5_parse_auth(ok, 1, &used, &why) == SOCKS5_MORE);
	CHECK(used == 7);
	CHECK(socks5_parse_auth(ok, 2, &used, &why) == SOCKS5_OK);
	CHECK(used == 2);
	used = 0;
	CHECK(socks5_parse_auth(extra, sizeof(extra), &used, &why) ==
	    SOCKS5_OK);
	CHECK(used == 2);

	why = NULL;
	CHECK(socks5_parse_auth(denied, 2, &used, &why) == SOCKS5_FAIL);
	CHECK_STR(why, "authentication failed");
	CHECK(socks5_parse_auth(denied, 1, &used, &why) == SOCKS5_MORE);

	why = NULL;
	CHECK(socks5_parse_auth(badver, 1, &used, &why) == SOCKS5_FAIL);
	CHECK_STR(why, "bad version in authentication reply");
}

static void
test_connect_build(void)
{
	struct sockaddr_in	 sin;
	struct sockaddr_in6	 sin6;
	struct sockaddr		 sa;
	uint8_t			 buf[SOCKS5_MSG_MAX];
	const uint8_t		 want4[] = { 5, 1, 0, 1, 198, 18, 0, 7,
				    0x01, 0xbb };
	const uint8_t		 want6_head[] = { 5, 1, 0, 4, 0x20, 0x01,
				    0x0d, 0xb8 };
	char			 name255[256], name256[257];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(443);
	inet_pton(AF_INET, "198.18.0.7", &sin.sin_addr);
	CHECK(socks5_build_connect(buf, sizeof(buf),
	    (struct sockaddr *)&sin) == 10);
	CHECK(memcmp(buf, want4, sizeof(want4)) == 0);
	CHECK(socks5_build_connect(buf, 10, (struct sockaddr *)&sin) == 10);
	CHECK(socks5_build_connect(buf, 9, (struct sockaddr *)&sin) == 0);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(8080);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	CHECK(socks5_build_connect(buf, sizeof(buf),
	    (struct sockaddr *)&sin6) == 22);
	CHECK(memcmp(buf, want6_head, sizeof(want6_head)) == 0);
	CHECK(buf[19] == 1);
	CHECK(buf[20] == 0x1f && buf[21] == 0x90);
	CHECK(socks5_build_connect(buf, 22, (struct sockaddr *)&sin6) == 22);
	CHECK(socks5_build_connect(buf, 21, (struct sockaddr *)&sin6) == 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK(socks5_build_connect(buf, sizeof(buf), &sa) == 0);
	CHECK(socks5_build_connect(buf, sizeof(buf), NULL) == 0);

	CHECK(socks5_build_connect_name(buf, sizeof(buf), "example.com",
	    80) == 7 + 11);
	CHECK(buf[0] == 5 && buf[1] == 1 && buf[2] == 0 && buf[3] == 3);
	CHECK(buf[4] == 11 && memcmp(buf + 5, "example.com", 11) == 0);
	CHECK(buf[16] == 0 && buf[17] == 80);
	CHECK(socks5_build_connect_name(buf, 18, "example.com", 80) == 18);
	CHECK(socks5_build_connect_name(buf, 17, "example.com", 80) == 0);
	CHECK(socks5_build_connect_name(buf, sizeof(buf), "", 80) == 0);
	CHECK(socks5_build_connect_name(buf, sizeof(buf), NULL, 80) == 0);

	memset(name255, 'a', 255);
	name255[255] = '\0';
	memset(name256, 'b', 256);
	name256[256] = '\0';
	CHECK(socks5_build_connect_name(buf, sizeof(buf), name255, 65535) ==
	    262);
	CHECK(buf[4] == 255 && buf[260] == 0xff && buf[261] == 0xff);
	CHECK(socks5_build_connect_name(buf, sizeof(buf), name256, 1) == 0);
}

static void
test_connect_parse(void)
{
	const uint8_t	 r4[] = { 5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38 };
	const uint8_t	 r6[] = { 5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0,
			    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90 };
	const uint8_t	 rname[] = { 5, 0, 0, 3, 9, 'l', 'o', 'c', 'a', 'l',
			    'h', 'o', 's', 't', 0, 80 };
	const uint8_t	 rname1[] = { 5, 0, 0, 3, 1, 'x', 0, 1 };
	const uint8_t	 badver[] = { 4, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	const uint8_t	 badrsv[] = { 5, 0, 1, 1, 0, 0, 0, 0, 0, 0 };
	const uint8_t	 badatyp[] = { 5, 0, 0, 2, 0, 0, 0, 0, 0, 0 };
	const uint8_t	 emptyname[] = { 5, 0, 0, 3, 0, 0, 80 };
	uint8_t		 rname255[4 + 1 + 255 + 2];
	uint8_t		 msg[10];
	const char	*why;
	uint8_t		 rep;
	const uint8_t	 codes[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7f, 0xff };
	size_t		 used, i;

	check_connect_ok(r4, sizeof(r4));
	check_connect_ok(r6, sizeof(r6));
	check_connect_ok(rname, sizeof(rname));
	check_connect_ok(rname1, sizeof(rname1));
	memset(rname255, 'n', sizeof(rname255));
	rname255[0] = 5;
	rname255[1] = 0;
	rname255[2] = 0;
	rname255[3] = 3;
	rname255[4] = 255;
	check_connect_ok(rname255, sizeof(rname255));

	/* Truncated replies are "more", however far they got. */
	CHECK(socks5_parse_connect(r6, 21, &rep, &used, &why) == SOCKS5_MORE);
	CHECK(socks5_parse_connect(rname, 4, &rep, &used, &why) ==
	    SOCKS5_MORE);
	CHECK(socks5_parse_connect(rname, 5, &rep, &used, &why) ==
	    SOCKS5_MORE);
	CHECK(socks5_parse_connect(NULL, 0, &rep, &used, &why) == SOCKS5_MORE);

	check_connect_fail(badver, 1, "bad version in connect reply");
	check_connect_fail(badver, sizeof(badver),
	    "bad version in connect reply");
	check_connect_fail(badrsv, 3,
	    "non-zero reserved byte in connect reply");
	check_connect_fail(badrsv, sizeof(badrsv),
	    "non-zero reserved byte in connect reply");
	check_connect_fail(badatyp, 4, "unknown address type in connect reply");
	check_connect_fail(emptyname, 5, "empty domain name in connect reply");
	check_connect_fail(emptyname, sizeof(emptyname),
	    "empty domain name in connect reply");

	/* Every error code 1..8 and some unknown ones fail on byte 2. */
	for (i = 0; i < sizeof(codes); i++) {
		memcpy(msg, r4, sizeof(msg));
		msg[1] = codes[i];
		rep = 0;
		why = NULL;
		CHECK(socks5_parse_connect(msg, 1, &rep, &used, &why) ==
		    SOCKS5_MORE);
		CHECK(socks5_parse_connect(msg, 2, &rep, &used, &why) ==
		    SOCKS5_FAIL);
		CHECK(rep == codes[i]);
		CHECK_STR(why, socks5_rep_str(codes[i]));
		rep = 0;
		CHECK(socks5_parse_connect(msg, sizeof(msg), &rep, &used,
		    &why) == SOCKS5_FAIL);
		CHECK(rep == codes[i]);
	}
	CHECK(socks5_parse_connect(r4, 2, &rep, &used, &why) == SOCKS5_MORE);
	CHECK(rep == SOCKS5_REP_SUCCEEDED);
	memcpy(msg, r4, sizeof(msg));
	msg[1] = SOCKS5_REP_CONN_REFUSED;
	why = NULL;
	CHECK(socks5_parse_connect(msg, sizeof(msg), &rep, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK(rep == SOCKS5_REP_CONN_REFUSED);
	CHECK_STR(why, "connection refused");
	msg[1] = 0x09;
	why = NULL;
	CHECK(socks5_parse_connect(msg, sizeof(msg), &rep, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK_STR(why, "unknown reply code");
}

static void
test_rep_str(void)
{
	CHECK_STR(socks5_rep_str(0), "succeeded");
	CHECK_STR(socks5_rep_str(1), "general SOCKS server failure");
	CHECK_STR(socks5_rep_str(2), "connection not allowed by ruleset");
	CHECK_STR(socks5_rep_str(3), "network unreachable");
	CHECK_STR(socks5_rep_str(4), "host unreachable");
	CHECK_STR(socks5_rep_str(5), "connection refused");
	CHECK_STR(socks5_rep_str(6), "TTL expired");
	CHECK_STR(socks5_rep_str(7), "command not supported");
	CHECK_STR(socks5_rep_str(8), "address type not supported");
	CHECK_STR(socks5_rep_str(9), "unknown reply code");
	CHECK_STR(socks5_rep_str(0xff), "unknown reply code");
}

int
main(void)
{
	test_greeting();
	test_method();
	test_auth_build();
	test_auth_parse();
	test_connect_build();
	test_connect_parse();
	test_rep_str();
	return check_summary("test_socks5");
}
