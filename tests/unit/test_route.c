/*
 * test_route.c - unit tests for route.c's pure parts: the CIDR list
 * parser (separators, host bits, bare addresses, errors, the limit), the
 * formatter, and route_check()'s limits on table, priority and mark.  The
 * netlink side is tested in namespaces by tests/e2e/route.sh.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "route.h"

/* s parses into exactly the networks in want (a blank-separated list in
 * canonical form) */
static void
check_list(const char *s, const char *want)
{
	struct route_cidr v[8];
	char err[256] = "", got[512] = "", buf[ROUTE_CIDR_STRLEN];
	size_t n = 99, i;
	bool ok;

	ok = route_parse_cidrs(s, v, 8, &n, err, sizeof(err));
	CHECK(ok);
	if (!ok) {
		printf("  `%s': %s\n", s, err);
		return;
	}
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(got, " ");
		strcat(got, route_cidr_format(&v[i], buf, sizeof(buf)));
	}
	CHECK_STR(got, want);
}

/* s does not parse; the error quotes bad */
static void
check_bad(const char *s, const char *bad)
{
	struct route_cidr v[8];
	char err[256] = "";
	size_t n;

	CHECK(!route_parse_cidrs(s, v, 8, &n, err, sizeof(err)));
	CHECK(strstr(err, bad) != NULL);
	if (strstr(err, bad) == NULL)
		printf("  `%s': error `%s' lacks `%s'\n", s, err, bad);
}

static void
test_parse(void)
{
	check_list("", "");
	check_list(" ,\t, ", "");
	check_list("10.0.0.0/8", "10.0.0.0/8");
	check_list("10.0.0.0/8, 2001:db8::/32 192.168.1.1",
	    "10.0.0.0/8 2001:db8::/32 192.168.1.1/32");
	check_list("10.0.0.0/8,,172.16.0.0/12", "10.0.0.0/8 172.16.0.0/12");
	check_list("0.0.0.0/0 ::/0", "0.0.0.0/0 ::/0");
	check_list("2001:db8::1", "2001:db8::1/128");
	/* host bits are cleared */
	check_list("10.1.2.3/8", "10.0.0.0/8");
	check_list("198.18.7.129/25", "198.18.7.128/25");
	check_list("198.18.7.255/31", "198.18.7.254/31");
	check_list("1.2.3.4/0", "0.0.0.0/0");
	check_list("2001:db8:ffff::1/33", "2001:db8:8000::/33");
	check_list("2001:db8::1/127", "2001:db8::/127");
	check_list("::ffff:198.18.0.1/128", "::ffff:198.18.0.1/128");

	check_bad("10.0.0.0/33", "10.0.0.0/33");
	check_bad("2001:db8::/129", "2001:db8::/129");
	check_bad("10.0.0.0/", "10.0.0.0/");
	check_bad("/8", "/8");
	check_bad("10.0.0.0/8x", "10.0.0.0/8x");
	check_bad("10.0.0.0/-1", "10.0.0.0/-1");
	check_bad("10.0.0.0/1000", "10.0.0.0/1000");
	check_bad("10.0.0/8", "10.0.0/8");
	check_bad("1.2.3.4, example.com", "example.com");
	check_bad("fe80::1%eth0/64", "fe80::1%eth0/64");
	check_bad("10.0.0.0/8/8", "10.0.0.0/8/8");
	check_bad("1.2.3.4;5.6.7.8", "1.2.3.4;5.6.7.8");
	check_bad("2001:0db8:0000:0000:0000:0000:0000:0000:0000/64", "2001:0db8");
}

static void
test_limit(void)
{
	struct route_cidr v[2];
	char err[256] = "";
	size_t n = 0;

	CHECK(route_parse_cidrs("10.0.0.0/8 11.0.0.0/8", v, 2, &n, err,
	    sizeof(err)));
	CHECK(n == 2);
	CHECK(!route_parse_cidrs("10.0.0.0/8 11.0.0.0/8 12.0.0.0/8", v, 2, &n,
	    err, sizeof(err)));
	CHECK(strstr(err, "12.0.0.0/8") != NULL);
	CHECK(strstr(err, "more than 2") != NULL);
	CHECK(route_parse_cidrs("", v, 0, &n, err, sizeof(err)) && n == 0);
}

static void
test_format(void)
{
	struct route_cidr c;
	char buf[ROUTE_CIDR_STRLEN];

	memset(&c, 0, sizeof(c));
	c.family = AF_INET6;
	memset(&c.addr.v6, 0xff, sizeof(c.addr.v6));
	c.prefix = 128;
	CHECK_STR(route_cidr_format(&c, buf, sizeof(buf)),
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	CHECK(strlen(buf) < sizeof(buf));
	c.family = AF_INET;
	inet_pton(AF_INET, "198.18.7.1", &c.addr.v4);
	c.prefix = 32;
	CHECK_STR(route_cidr_format(&c, buf, sizeof(buf)), "198.18.7.1/32");
}

static void
defaults(struct route_options *o)
{
	memset(o, 0, sizeof(*o));
	o->tun_name = "sluice0";
	o->table = ROUTE_TABLE_DEFAULT;
	o->priority = ROUTE_PRIORITY_DEFAULT;
	o->fwmark = ROUTE_TABLE_DEFAULT;
	o->ipv4 = o->ipv6 = true;
}

static void
test_check(void)
{
	static const unsigned bad_tables[] = { 0, 252, 253, 254, 255 };
	struct route_options o;
	struct route_cidr c[2];
	struct sockaddr_in sin;
	struct sockaddr_un sun;
	char err[256];
	size_t i;

	defaults(&o);
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	CHECK(ROUTE_PRIORITY_DEFAULT + ROUTE_NPRIORITY - 1 < 32766);
	for (i = 0; i < sizeof(bad_tables) / sizeof(bad_tables[0]); i++) {
		o.table = bad_tables[i];
		CHECK(route_check(&o, err, sizeof(err)) == -1);
		CHECK(strstr(err, "table") != NULL);
	}
	o.table = 251;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	o.table = 256;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	o.table = UINT32_MAX;
	CHECK(route_check(&o, err, sizeof(err)) == 0);

	defaults(&o);
	o.priority = 0;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	o.priority = 1;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	o.priority = ROUTE_PRIORITY_MAX;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	CHECK(o.priority + ROUTE_NPRIORITY - 1 == 32765);
	o.priority = ROUTE_PRIORITY_MAX + 1;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	CHECK(strstr(err, "priority") != NULL);

	defaults(&o);
	o.fwmark = 0;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	CHECK(strstr(err, "fwmark") != NULL);

	/* route_down needs no device; an empty or long name is wrong */
	defaults(&o);
	o.tun_name = NULL;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	o.tun_name = "";
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	o.tun_name = "a-name-too-long-for-linux";
	CHECK(route_check(&o, err, sizeof(err)) == -1);

	defaults(&o);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	o.proxy = (struct sockaddr *)&sin;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	o.proxy = (struct sockaddr *)&sun;
	CHECK(route_check(&o, err, sizeof(err)) == -1);

	defaults(&o);
	memset(c, 0, sizeof(c));
	c[0].family = AF_INET;
	c[0].prefix = 8;
	c[1].family = AF_INET6;
	c[1].prefix = 129;
	o.include = c;
	o.ninclude = 1;
	CHECK(route_check(&o, err, sizeof(err)) == 0);
	o.ninclude = 2;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	CHECK(strstr(err, "include") != NULL);
	o.ninclude = 0;
	o.exclude = c;
	o.nexclude = 2;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
	CHECK(strstr(err, "exclude") != NULL);
	o.exclude = NULL;
	CHECK(route_check(&o, err, sizeof(err)) == -1);
}

int
main(void)
{
	test_parse();
	test_limit();
	test_format();
	test_check();
	return check_summary("test_route");
}
