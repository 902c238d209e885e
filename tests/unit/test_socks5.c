/*
 * test_socks5.c - unit tests for the SOCKS5 codec: builders byte for byte,
 * parsers fed one byte at a time, bad and oversized replies, and the UDP
 * datagram header both ways.
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

	check_connect_fail(badver, 1, "bad version in command reply");
	check_connect_fail(badver, sizeof(badver),
	    "bad version in command reply");
	check_connect_fail(badrsv, 3,
	    "non-zero reserved byte in command reply");
	check_connect_fail(badrsv, sizeof(badrsv),
	    "non-zero reserved byte in command reply");
	check_connect_fail(badatyp, 4, "unknown address type in command reply");
	check_connect_fail(emptyname, 5, "empty domain name in command reply");
	check_connect_fail(emptyname, sizeof(emptyname),
	    "empty domain name in command reply");

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

/* Fill buf with a byte that no builder writes where it is checked. */
#define SENTINEL	0xee

/* An AF_INET address from text and a port in host order. */
static struct sockaddr_in
addr4(const char *text, uint16_t port)
{
	struct sockaddr_in	sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	CHECK(inet_pton(AF_INET, text, &sin.sin_addr) == 1);
	return sin;
}

/* An AF_INET6 address from text and a port in host order. */
static struct sockaddr_in6
addr6(const char *text, uint16_t port)
{
	struct sockaddr_in6	sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(port);
	CHECK(inet_pton(AF_INET6, text, &sin6.sin6_addr) == 1);
	return sin6;
}

/*
 * Check a builder call, an expression over the names buf and cap that this
 * macro declares: with room to spare and with cap == sizeof(want) it writes
 * exactly want and nothing after it; with cap one byte short, or 0, it
 * returns 0 and writes nothing.
 */
#define CHECK_BUILD(call_with_cap, want) do {				\
	uint8_t	 cb_buf_[SOCKS5_MSG_MAX + 1];				\
	uint8_t	*buf = cb_buf_;						\
	size_t	 cap, cb_n_ = sizeof(want);				\
									\
	memset(cb_buf_, SENTINEL, sizeof(cb_buf_));			\
	cap = sizeof(cb_buf_);						\
	CHECK((call_with_cap) == cb_n_);				\
	CHECK(memcmp(cb_buf_, (want), cb_n_) == 0);			\
	CHECK(cb_buf_[cb_n_] == SENTINEL);				\
	memset(cb_buf_, SENTINEL, sizeof(cb_buf_));			\
	cap = cb_n_;							\
	CHECK((call_with_cap) == cb_n_);				\
	CHECK(memcmp(cb_buf_, (want), cb_n_) == 0);			\
	memset(cb_buf_, SENTINEL, sizeof(cb_buf_));			\
	cap = cb_n_ - 1;						\
	CHECK((call_with_cap) == 0);					\
	CHECK(cb_buf_[0] == SENTINEL && cb_buf_[cb_n_ - 1] == SENTINEL);\
	cap = 0;							\
	CHECK((call_with_cap) == 0);					\
} while (0)

static void
test_associate_build(void)
{
	struct sockaddr_in	 sin = addr4("10.1.2.3", 5353);
	struct sockaddr_in6	 sin6 = addr6("2001:db8::2", 40000);
	struct sockaddr_in6	 mapped = addr6("::ffff:192.0.2.1", 1);
	struct sockaddr		 sa;
	uint8_t			 out[64];
	const uint8_t		 want_null[] = { 5, 3, 0, 1, 0, 0, 0, 0,
				    0, 0 };
	const uint8_t		 want4[] = { 5, 3, 0, 1, 10, 1, 2, 3,
				    0x14, 0xe9 };
	const uint8_t		 want6[] = { 5, 3, 0, 4, 0x20, 0x01, 0x0d,
				    0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
				    0x9c, 0x40 };
	const uint8_t		 want_mapped[] = { 5, 3, 0, 1, 192, 0, 2, 1,
				    0, 1 };

	CHECK_BUILD(socks5_build_associate(buf, cap, NULL), want_null);
	CHECK_BUILD(socks5_build_associate(buf, cap,
	    (struct sockaddr *)&sin), want4);
	CHECK_BUILD(socks5_build_associate(buf, cap,
	    (struct sockaddr *)&sin6), want6);
	CHECK_BUILD(socks5_build_associate(buf, cap,
	    (struct sockaddr *)&mapped), want_mapped);

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK(socks5_build_associate(out, sizeof(out), &sa) == 0);
	sa.sa_family = AF_UNSPEC;
	CHECK(socks5_build_associate(out, sizeof(out), &sa) == 0);
	CHECK(socks5_build_associate(NULL, sizeof(out), NULL) == 0);

	/* CONNECT keeps writing a mapped address as it is, ATYP IPv6. */
	CHECK(socks5_build_connect(out, sizeof(out),
	    (struct sockaddr *)&mapped) == 22);
	CHECK(out[1] == 1 && out[3] == 4 && out[14] == 0xff && out[15] == 0xff);
}

static void
test_udp_build(void)
{
	struct sockaddr_in	 sin = addr4("198.51.100.7", 53);
	struct sockaddr_in6	 sin6 = addr6("2001:db8::53", 0xabcd);
	struct sockaddr_in6	 mapped = addr6("::ffff:203.0.113.9", 0x1234);
	struct sockaddr		 sa;
	uint8_t			 out[SOCKS5_UDP_HDR_MAX + 8];
	const uint8_t		 want4[] = { 0, 0, 0, 1, 198, 51, 100, 7,
				    0, 53 };
	const uint8_t		 want6[] = { 0, 0, 0, 4, 0x20, 0x01, 0x0d,
				    0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0x53, 0xab, 0xcd };
	const uint8_t		 want_mapped[] = { 0, 0, 0, 1, 203, 0, 113,
				    9, 0x12, 0x34 };
	const uint8_t		 want_name1[] = { 0, 0, 0, 3, 1, 'a',
				    0x01, 0x02 };
	uint8_t			 want_name255[SOCKS5_UDP_HDR_MAX];
	char			 name255[256], name256[257];

	CHECK(SOCKS5_UDP_HDR_MAX == 262);
	CHECK_BUILD(socks5_udp_build(buf, cap, (struct sockaddr *)&sin),
	    want4);
	CHECK_BUILD(socks5_udp_build(buf, cap, (struct sockaddr *)&sin6),
	    want6);
	CHECK_BUILD(socks5_udp_build(buf, cap, (struct sockaddr *)&mapped),
	    want_mapped);
	CHECK_BUILD(socks5_udp_build_name(buf, cap, "a", 0x0102),
	    want_name1);

	memset(name255, 'n', 255);
	name255[255] = '\0';
	memset(name256, 'm', 256);
	name256[256] = '\0';
	memset(want_name255, 'n', sizeof(want_name255));
	want_name255[0] = 0;
	want_name255[1] = 0;
	want_name255[2] = 0;
	want_name255[3] = 3;
	want_name255[4] = 255;
	want_name255[260] = 0xff;
	want_name255[261] = 0x00;
	CHECK_BUILD(socks5_udp_build_name(buf, cap, name255, 0xff00),
	    want_name255);

	memset(out, SENTINEL, sizeof(out));
	CHECK(socks5_udp_build_name(out, sizeof(out), name256, 1) == 0);
	CHECK(socks5_udp_build_name(out, sizeof(out), "", 1) == 0);
	CHECK(socks5_udp_build_name(out, sizeof(out), NULL, 1) == 0);
	CHECK(socks5_udp_build_name(NULL, sizeof(out), "a", 1) == 0);
	CHECK(out[0] == SENTINEL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	CHECK(socks5_udp_build(out, sizeof(out), &sa) == 0);
	sa.sa_family = AF_UNSPEC;
	CHECK(socks5_udp_build(out, sizeof(out), &sa) == 0);
	CHECK(socks5_udp_build(out, sizeof(out), NULL) == 0);
	CHECK(socks5_udp_build(NULL, sizeof(out), (struct sockaddr *)&sin) ==
	    0);
	CHECK(out[0] == SENTINEL);
}

/*
 * Feed a successful command reply of n bytes one byte at a time: MORE with
 * *bnd and *used untouched until the last byte, then OK with used == n and
 * *bnd filled in.  Returns *bnd.
 */
static struct sockaddr_storage
check_reply_ok(const uint8_t *msg, size_t n)
{
	struct sockaddr_storage	 bnd, untouched;
	const char		*why;
	uint8_t			 rep;
	size_t			 used, i;
	int			 prefix_ok = 1;

	memset(&untouched, 0xa5, sizeof(untouched));
	for (i = 0; i < n; i++) {
		bnd = untouched;
		used = 12345;
		if (socks5_parse_reply(msg, i, &rep, &bnd, &used, &why) !=
		    SOCKS5_MORE || used != 12345 ||
		    memcmp(&bnd, &untouched, sizeof(bnd)) != 0)
			prefix_ok = 0;
	}
	CHECK(prefix_ok);

	rep = 0xaa;
	used = 0;
	bnd = untouched;
	CHECK(socks5_parse_reply(msg, n, &rep, &bnd, &used, &why) ==
	    SOCKS5_OK);
	CHECK(used == n);
	CHECK(rep == SOCKS5_REP_SUCCEEDED);

	/* The same without the address, and through the CONNECT wrapper. */
	used = 0;
	CHECK(socks5_parse_reply(msg, n, NULL, NULL, &used, NULL) ==
	    SOCKS5_OK);
	CHECK(used == n);
	used = 0;
	CHECK(socks5_parse_connect(msg, n, &rep, &used, &why) == SOCKS5_OK);
	CHECK(used == n);
	return bnd;
}

static void
test_reply_parse(void)
{
	const uint8_t		 r4[] = { 5, 0, 0, 1, 127, 0, 0, 1, 0x9c,
				    0x40 };
	const uint8_t		 r6[] = { 5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
				    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77,
				    0x1f, 0x90 };
	const uint8_t		 rname[] = { 5, 0, 0, 3, 13, 'r', 'e', 'l',
				    'a', 'y', '.', 'e', 'x', 'a', 'm', 'p',
				    'l', 'e', 0, 53 };
	const uint8_t		 unsupported[] = { 5, 7, 0, 1, 0, 0, 0, 0,
				    0, 0 };
	const uint8_t		 badrsv[] = { 5, 0, 1, 1, 0, 0, 0, 0, 0, 0 };
	struct sockaddr_storage	 bnd, untouched;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct in6_addr		 a6;
	const char		*why;
	uint8_t			 rep;
	size_t			 used;

	bnd = check_reply_ok(r4, sizeof(r4));
	CHECK(bnd.ss_family == AF_INET);
	sin = (struct sockaddr_in *)&bnd;
	CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(sin->sin_port == htons(40000));

	bnd = check_reply_ok(r6, sizeof(r6));
	CHECK(bnd.ss_family == AF_INET6);
	sin6 = (struct sockaddr_in6 *)&bnd;
	inet_pton(AF_INET6, "2001:db8::77", &a6);
	CHECK(memcmp(&sin6->sin6_addr, &a6, sizeof(a6)) == 0);
	CHECK(sin6->sin6_port == htons(8080));
	CHECK(sin6->sin6_flowinfo == 0 && sin6->sin6_scope_id == 0);

	bnd = check_reply_ok(rname, sizeof(rname));
	CHECK(bnd.ss_family == AF_UNSPEC);

	/* A refused UDP ASSOCIATE: REP on byte 2, *bnd untouched. */
	memset(&untouched, 0xa5, sizeof(untouched));
	bnd = untouched;
	rep = 0;
	why = NULL;
	CHECK(socks5_parse_reply(unsupported, 2, &rep, &bnd, &used, &why) ==
	    SOCKS5_FAIL);
	CHECK(rep == SOCKS5_REP_CMD_UNSUPPORTED);
	CHECK_STR(why, "command not supported");
	CHECK(socks5_parse_reply(unsupported, sizeof(unsupported), &rep, &bnd,
	    &used, &why) == SOCKS5_FAIL);
	CHECK(memcmp(&bnd, &untouched, sizeof(bnd)) == 0);

	why = NULL;
	CHECK(socks5_parse_reply(badrsv, sizeof(badrsv), &rep, &bnd, &used,
	    &why) == SOCKS5_FAIL);
	CHECK_STR(why, "non-zero reserved byte in command reply");
	CHECK(memcmp(&bnd, &untouched, sizeof(bnd)) == 0);
}

/*
 * Parse a datagram expected to be OK with a header of hdrlen bytes, alone
 * and with a payload after it; returns what was parsed.
 */
static struct socks5_udp_addr
check_udp_ok(const uint8_t *hdr, size_t hdrlen)
{
	struct socks5_udp_addr	 from, again;
	uint8_t			 dgram[SOCKS5_UDP_HDR_MAX + 16];
	const char		*why;
	size_t			 n;

	memset(&from, 0xa5, sizeof(from));
	n = 0;
	why = NULL;
	CHECK(socks5_udp_parse(hdr, hdrlen, &from, &n, &why) ==
	    SOCKS5_UDP_OK);
	CHECK(n == hdrlen);
	CHECK(why == NULL);

	memcpy(dgram, hdr, hdrlen);
	memcpy(dgram + hdrlen, "payload!", 8);
	memset(&again, 0x5a, sizeof(again));
	n = 0;
	CHECK(socks5_udp_parse(dgram, hdrlen + 8, &again, &n, &why) ==
	    SOCKS5_UDP_OK);
	CHECK(n == hdrlen);
	CHECK(memcmp(&again.ss, &from.ss, sizeof(from.ss)) == 0);
	CHECK(strcmp(again.name, from.name) == 0);
	CHECK(again.port == from.port);

	/* NULL out-pointers are tolerated. */
	CHECK(socks5_udp_parse(dgram, hdrlen + 1, NULL, NULL, NULL) ==
	    SOCKS5_UDP_OK);
	return from;
}

/* Every proper prefix of a datagram header is BAD and touches nothing. */
static void
check_udp_truncated(const uint8_t *hdr, size_t hdrlen)
{
	struct socks5_udp_addr	 from, untouched;
	const char		*why;
	size_t			 n, i;
	int			 all_bad = 1;

	memset(&untouched, 0xa5, sizeof(untouched));
	for (i = 0; i < hdrlen; i++) {
		from = untouched;
		n = 12345;
		why = NULL;
		if (socks5_udp_parse(hdr, i, &from, &n, &why) !=
		    SOCKS5_UDP_BAD || n != 12345 || why == NULL ||
		    memcmp(&from, &untouched, sizeof(from)) != 0)
			all_bad = 0;
	}
	CHECK(all_bad);
}

/* Parse a datagram expected to give status st with reason want. */
static void
check_udp_fail(const uint8_t *msg, size_t n, enum socks5_udp_status st,
    const char *want)
{
	struct socks5_udp_addr	 from, untouched;
	const char		*why = NULL;
	size_t			 hdrlen = 12345;

	memset(&untouched, 0xa5, sizeof(untouched));
	from = untouched;
	CHECK(socks5_udp_parse(msg, n, &from, &hdrlen, &why) == st);
	CHECK_STR(why, want);
	CHECK(hdrlen == 12345);
	CHECK(memcmp(&from, &untouched, sizeof(from)) == 0);
}

static void
test_udp_parse(void)
{
	const uint8_t		 h4[] = { 0, 0, 0, 1, 8, 8, 4, 4, 0x12, 0x34 };
	const uint8_t		 h6[] = { 0, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
				    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
				    0xab, 0xcd };
	const uint8_t		 hmapped[] = { 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
				    0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
				    0, 7 };
	const uint8_t		 hname[] = { 0, 0, 0, 3, 11, 'd', 'n', 's',
				    '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
				    0x03, 0x55 };
	const uint8_t		 hname1[] = { 0, 0, 0, 3, 1, 'x', 0, 0 };
	const uint8_t		 rsv[] = { 0xff, 0x12, 0, 1, 1, 2, 3, 4,
				    0, 80 };
	const uint8_t		 frag1[] = { 0, 0, 1, 1, 8, 8, 4, 4, 0, 53,
				    'x' };
	const uint8_t		 frag80[] = { 0, 0, 0x80, 1, 8, 8, 4, 4, 0,
				    53 };
	const uint8_t		 emptyname[] = { 0, 0, 0, 3, 0, 0, 53, 'x' };
	const uint8_t		 nul_first[] = { 0, 0, 0, 3, 3, 0, 'b', 'c',
				    0, 53 };
	const uint8_t		 nul_mid[] = { 0, 0, 0, 3, 3, 'a', 0, 'c',
				    0, 53 };
	const uint8_t		 nul_last[] = { 0, 0, 0, 3, 3, 'a', 'b', 0,
				    0, 53 };
	const uint8_t		 atyps[] = { 0, 2, 5, 6, 0x7f, 0xff };
	uint8_t			 hname255[SOCKS5_UDP_HDR_MAX];
	uint8_t			 msg[16];
	struct socks5_udp_addr	 from;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct sockaddr_in6	 want6 = addr6("2001:db8::53", 0xabcd);
	struct sockaddr_in6	 wantm = addr6("::ffff:192.0.2.1", 7);
	size_t			 i;

	/* IPv4: address and port as sent, port byte order both ways */
	from = check_udp_ok(h4, sizeof(h4));
	CHECK(from.ss.ss_family == AF_INET);
	sin = (struct sockaddr_in *)&from.ss;
	CHECK(sin->sin_addr.s_addr == htonl(0x08080404));
	CHECK(sin->sin_port == htons(0x1234));
	CHECK(((uint8_t *)&sin->sin_port)[0] == 0x12 &&
	    ((uint8_t *)&sin->sin_port)[1] == 0x34);
	CHECK(from.port == 0x1234);
	CHECK(from.name[0] == '\0');
	check_udp_truncated(h4, sizeof(h4));

	from = check_udp_ok(h6, sizeof(h6));
	CHECK(from.ss.ss_family == AF_INET6);
	sin6 = (struct sockaddr_in6 *)&from.ss;
	CHECK(memcmp(&sin6->sin6_addr, &want6.sin6_addr, 16) == 0);
	CHECK(sin6->sin6_port == htons(0xabcd));
	CHECK(sin6->sin6_flowinfo == 0 && sin6->sin6_scope_id == 0);
	CHECK(from.port == 0xabcd);
	CHECK(from.name[0] == '\0');
	check_udp_truncated(h6, sizeof(h6));

	/* An IPv4-mapped address under ATYP IPv6 comes back as it was sent. */
	from = check_udp_ok(hmapped, sizeof(hmapped));
	CHECK(from.ss.ss_family == AF_INET6);
	sin6 = (struct sockaddr_in6 *)&from.ss;
	CHECK(memcmp(&sin6->sin6_addr, &wantm.sin6_addr, 16) == 0);
	CHECK(from.port == 7);

	from = check_udp_ok(hname, sizeof(hname));
	CHECK(from.ss.ss_family == AF_UNSPEC);
	CHECK_STR(from.name, "dns.example");
	CHECK(from.port == 853);
	check_udp_truncated(hname, sizeof(hname));

	from = check_udp_ok(hname1, sizeof(hname1));
	CHECK_STR(from.name, "x");
	CHECK(from.port == 0);
	check_udp_truncated(hname1, sizeof(hname1));

	memset(hname255, 'z', sizeof(hname255));
	hname255[0] = 0;
	hname255[1] = 0;
	hname255[2] = 0;
	hname255[3] = 3;
	hname255[4] = 255;
	hname255[260] = 0xff;
	hname255[261] = 0xfe;
	from = check_udp_ok(hname255, sizeof(hname255));
	CHECK(from.ss.ss_family == AF_UNSPEC);
	CHECK(strlen(from.name) == 255 && from.name[0] == 'z' &&
	    from.name[254] == 'z');
	CHECK(from.port == 0xfffe);
	check_udp_truncated(hname255, sizeof(hname255));

	/* RSV is not checked */
	from = check_udp_ok(rsv, sizeof(rsv));
	CHECK(from.ss.ss_family == AF_INET && from.port == 80);

	check_udp_fail(frag1, sizeof(frag1), SOCKS5_UDP_FRAGMENT,
	    "fragmented UDP datagram");
	check_udp_fail(frag80, sizeof(frag80), SOCKS5_UDP_FRAGMENT,
	    "fragmented UDP datagram");
	check_udp_fail(emptyname, sizeof(emptyname), SOCKS5_UDP_BAD,
	    "empty domain name in UDP header");
	check_udp_fail(nul_first, sizeof(nul_first), SOCKS5_UDP_BAD,
	    "NUL byte in domain name in UDP header");
	check_udp_fail(nul_mid, sizeof(nul_mid), SOCKS5_UDP_BAD,
	    "NUL byte in domain name in UDP header");
	check_udp_fail(nul_last, sizeof(nul_last), SOCKS5_UDP_BAD,
	    "NUL byte in domain name in UDP header");
	check_udp_fail(h4, 9, SOCKS5_UDP_BAD, "truncated UDP header");
	check_udp_fail(NULL, 0, SOCKS5_UDP_BAD, "truncated UDP header");
	for (i = 0; i < sizeof(atyps); i++) {
		memcpy(msg, h4, sizeof(h4));
		msg[3] = atyps[i];
		check_udp_fail(msg, sizeof(h4), SOCKS5_UDP_BAD,
		    "unknown address type in UDP header");
		check_udp_fail(msg, 4, SOCKS5_UDP_BAD,
		    "unknown address type in UDP header");
	}
	CHECK(socks5_udp_parse(frag1, sizeof(frag1), NULL, NULL, NULL) ==
	    SOCKS5_UDP_FRAGMENT);
	CHECK(socks5_udp_parse(emptyname, sizeof(emptyname), NULL, NULL,
	    NULL) == SOCKS5_UDP_BAD);
}

/* What socks5_udp_build writes, socks5_udp_parse reads back. */
static void
test_udp_roundtrip(void)
{
	struct sockaddr_in	 sin = addr4("192.0.2.200", 65535);
	struct sockaddr_in6	 sin6 = addr6("fe80::1:2:3:4", 1);
	struct sockaddr_in6	 mapped = addr6("::ffff:10.9.8.7", 4242);
	struct socks5_udp_addr	 from;
	struct sockaddr_in	*got4;
	uint8_t			 buf[SOCKS5_UDP_HDR_MAX];
	size_t			 n, hdrlen;

	n = socks5_udp_build(buf, sizeof(buf), (struct sockaddr *)&sin);
	CHECK(socks5_udp_parse(buf, n, &from, &hdrlen, NULL) ==
	    SOCKS5_UDP_OK);
	CHECK(hdrlen == n && from.port == 65535);
	CHECK(memcmp(&from.ss, &sin, sizeof(sin)) == 0);

	n = socks5_udp_build(buf, sizeof(buf), (struct sockaddr *)&sin6);
	CHECK(socks5_udp_parse(buf, n, &from, &hdrlen, NULL) ==
	    SOCKS5_UDP_OK);
	CHECK(hdrlen == n && from.port == 1);
	CHECK(memcmp(&from.ss, &sin6, sizeof(sin6)) == 0);

	/* a mapped address goes out as IPv4 and comes back AF_INET */
	n = socks5_udp_build(buf, sizeof(buf), (struct sockaddr *)&mapped);
	CHECK(n == 10);
	CHECK(socks5_udp_parse(buf, n, &from, &hdrlen, NULL) ==
	    SOCKS5_UDP_OK);
	got4 = (struct sockaddr_in *)&from.ss;
	CHECK(from.ss.ss_family == AF_INET && from.port == 4242);
	CHECK(got4->sin_addr.s_addr == htonl(0x0a090807));

	n = socks5_udp_build_name(buf, sizeof(buf), "quic.example.net", 443);
	CHECK(socks5_udp_parse(buf, n, &from, &hdrlen, NULL) ==
	    SOCKS5_UDP_OK);
	CHECK(hdrlen == n && from.port == 443);
	CHECK_STR(from.name, "quic.example.net");
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
	test_associate_build();
	test_udp_build();
	test_reply_parse();
	test_udp_parse();
	test_udp_roundtrip();
	test_rep_str();
	return check_summary("test_socks5");
}
