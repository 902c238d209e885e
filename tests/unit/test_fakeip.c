/*
 * test_fakeip.c - the fake-IP table: addresses from the pools, lookups
 * both ways, case, the bound with LRU eviction that spares held
 * mappings, reuse as late as possible, and the state file.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fakeip.h"

static struct fakeip *
table(const char *net4, int p4, unsigned max)
{
	struct in_addr a4;
	struct in6_addr a6;
	char err[128] = "";
	struct fakeip *fi;

	inet_pton(AF_INET, net4, &a4);
	inet_pton(AF_INET6, "fd00:5:1ce::", &a6);
	fi = fakeip_new(&a4, p4, &a6, 120, max, err, sizeof(err));
	if (fi == NULL)
		printf("  fakeip_new: %s\n", err);
	return fi;
}

/* The IPv4 fake address of name, as text ("" if none). */
static const char *
addr4(struct fakeip *fi, const char *name, char *buf)
{
	struct in_addr a;

	if (fakeip_addr(fi, name, AF_INET, &a) == -1)
		return "";
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static struct sockaddr_storage
sa_of(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr))
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr))
		ss.ss_family = AF_INET6;
	return ss;
}

static void
test_basic(void)
{
	struct fakeip *fi = table("198.18.128.0", 24, 100);
	struct sockaddr_storage ss;
	struct in6_addr a6;
	char b[64], b2[64];

	CHECK(fi != NULL);
	CHECK_STR(addr4(fi, "one.test", b), "198.18.128.1");
	CHECK_STR(addr4(fi, "two.test", b), "198.18.128.2");
	/* the same name (any case) keeps its address */
	CHECK_STR(addr4(fi, "ONE.Test", b), "198.18.128.1");
	ss = sa_of("198.18.128.2");
	CHECK_STR(fakeip_name(fi, (struct sockaddr *)&ss, false), "two.test");
	ss = sa_of("198.18.128.3");
	CHECK(fakeip_contains(fi, (struct sockaddr *)&ss));
	CHECK(fakeip_name(fi, (struct sockaddr *)&ss, false) == NULL);
	ss = sa_of("198.18.129.1");
	CHECK(!fakeip_contains(fi, (struct sockaddr *)&ss));
	ss = sa_of("198.18.128.0");
	CHECK(!fakeip_contains(fi, (struct sockaddr *)&ss));
	ss = sa_of("198.18.128.255");
	CHECK(!fakeip_contains(fi, (struct sockaddr *)&ss));

	/* IPv6: its own pool */
	CHECK(fakeip_addr(fi, "one.test", AF_INET6, &a6) == 0);
	CHECK_STR(inet_ntop(AF_INET6, &a6, b2, sizeof(b2)), "fd00:5:1ce::1");
	ss = sa_of("fd00:5:1ce::1");
	CHECK_STR(fakeip_name(fi, (struct sockaddr *)&ss, false), "one.test");
	ss = sa_of("fd00:5:1ce::1:1");
	CHECK(!fakeip_contains(fi, (struct sockaddr *)&ss));
	fakeip_free(fi);
}

static void
test_bound(void)
{
	struct fakeip *fi = table("10.99.0.0", 24, 3);
	struct fakeip_stats st;
	struct sockaddr_storage ss;
	char b[64];

	CHECK_STR(addr4(fi, "a", b), "10.99.0.1");
	CHECK_STR(addr4(fi, "b", b), "10.99.0.2");
	CHECK_STR(addr4(fi, "c", b), "10.99.0.3");
	/* a flow holds a; b is touched: c goes first, then b... */
	ss = sa_of("10.99.0.1");
	CHECK_STR(fakeip_name(fi, (struct sockaddr *)&ss, true), "a");
	CHECK_STR(addr4(fi, "b", b), "10.99.0.2");
	CHECK_STR(addr4(fi, "d", b), "10.99.0.4");	/* c forgotten */
	ss = sa_of("10.99.0.3");
	CHECK(fakeip_name(fi, (struct sockaddr *)&ss, false) == NULL);
	CHECK_STR(addr4(fi, "e", b), "10.99.0.5");	/* b forgotten */
	CHECK_STR(addr4(fi, "f", b), "10.99.0.6");	/* d forgotten */
	/* a survived everything: it is held */
	ss = sa_of("10.99.0.1");
	CHECK_STR(fakeip_name(fi, (struct sockaddr *)&ss, false), "a");
	fakeip_get_stats(fi, &st);
	CHECK(st.mappings == 3);
	CHECK(st.evicted == 3);
	/* released, a is the most recently used: e and f go first */
	fakeip_release(fi, (struct sockaddr *)&ss);
	CHECK_STR(addr4(fi, "g", b), "10.99.0.7");
	CHECK_STR(addr4(fi, "h", b), "10.99.0.8");
	CHECK_STR(addr4(fi, "i", b), "10.99.0.9");	/* now a goes */
	CHECK(fakeip_name(fi, (struct sockaddr *)&ss, false) == NULL);
	fakeip_free(fi);

	/* every mapping held: no room */
	fi = table("10.99.0.0", 24, 2);
	CHECK_STR(addr4(fi, "a", b), "10.99.0.1");
	CHECK_STR(addr4(fi, "b", b), "10.99.0.2");
	ss = sa_of("10.99.0.1");
	fakeip_name(fi, (struct sockaddr *)&ss, true);
	ss = sa_of("10.99.0.2");
	fakeip_name(fi, (struct sockaddr *)&ss, true);
	CHECK_STR(addr4(fi, "c", b), "");
	fakeip_get_stats(fi, &st);
	CHECK(st.full == 1);
	fakeip_free(fi);
}

static void
test_wrap(void)
{
	/* a /30 has two usable addresses: reuse comes around in turn */
	struct fakeip *fi = table("10.99.0.0", 30, 10);
	char b[64];

	CHECK_STR(addr4(fi, "a", b), "10.99.0.1");
	CHECK_STR(addr4(fi, "b", b), "10.99.0.2");
	CHECK_STR(addr4(fi, "c", b), "10.99.0.1");	/* a forgotten */
	CHECK_STR(addr4(fi, "d", b), "10.99.0.2");
	fakeip_free(fi);
}

static void
test_state(void)
{
	struct fakeip *fi = table("198.18.128.0", 24, 100), *fi2;
	char path[] = "/tmp/test_fakeip.XXXXXX", err[256] = "", b[64];
	struct sockaddr_storage ss;
	struct in6_addr a6;
	int fd;

	fd = mkstemp(path);
	CHECK(fd != -1);
	close(fd);
	addr4(fi, "one.test", b);
	addr4(fi, "two.test", b);
	fakeip_addr(fi, "six.test", AF_INET6, &a6);
	CHECK(fakeip_save(fi, path, err, sizeof(err)) == 0);
	fakeip_free(fi);

	fi2 = table("198.18.128.0", 24, 100);
	CHECK(fakeip_load(fi2, path, err, sizeof(err)) == 0);
	ss = sa_of("198.18.128.2");
	CHECK_STR(fakeip_name(fi2, (struct sockaddr *)&ss, false), "two.test");
	ss = sa_of("fd00:5:1ce::1");
	CHECK_STR(fakeip_name(fi2, (struct sockaddr *)&ss, false), "six.test");
	/* new names continue after the loaded ones */
	CHECK_STR(addr4(fi2, "three.test", b), "198.18.128.3");
	CHECK_STR(addr4(fi2, "one.test", b), "198.18.128.1");
	fakeip_free(fi2);

	/* a file for another pool loads nothing that does not fit */
	fi2 = table("10.99.0.0", 24, 100);
	CHECK(fakeip_load(fi2, path, err, sizeof(err)) == 0);
	ss = sa_of("198.18.128.2");
	CHECK(fakeip_name(fi2, (struct sockaddr *)&ss, false) == NULL);
	CHECK_STR(addr4(fi2, "two.test", b), "10.99.0.1");
	fakeip_free(fi2);
	unlink(path);

	/* no file yet: fine */
	fi2 = table("10.99.0.0", 24, 100);
	CHECK(fakeip_load(fi2, "/nonexistent/sluice-fakeip", err,
	    sizeof(err)) == 0);
	fakeip_free(fi2);
}

/* A real address in the pool (the TUN's) is never handed out. */
static void
test_reserved(void)
{
	struct fakeip *fi = table("198.18.0.0", 24, 100);
	struct sockaddr_storage ss = sa_of("198.18.0.1");
	char b[64];

	CHECK(fakeip_reserve(fi, (struct sockaddr *)&ss));
	CHECK(!fakeip_contains(fi, (struct sockaddr *)&ss));
	CHECK_STR(addr4(fi, "a.test", b), "198.18.0.2");
	ss = sa_of("10.0.0.1");
	CHECK(!fakeip_reserve(fi, (struct sockaddr *)&ss));
	fakeip_free(fi);
}

/*
 * A shared table (worker processes): what a forked child maps, the
 * parent sees and can look up both ways; the bound with eviction holds
 * across processes, and names handed back are copies.
 */
static void
test_shared(void)
{
	struct in_addr a4, b4;
	struct in6_addr a6;
	struct sockaddr_in sin;
	struct fakeip_stats st;
	char err[128] = "", buf[INET_ADDRSTRLEN], name[32];
	struct fakeip *fi;
	const char *n;
	pid_t pid;
	int status = -1;

	inet_pton(AF_INET, "198.18.0.0", &a4);
	inet_pton(AF_INET6, "fd00:5:1ce::", &a6);
	fi = fakeip_new_shared(&a4, 15, &a6, 64, 100, err, sizeof(err));
	CHECK(fi != NULL);
	if (fi == NULL)
		return;
	if ((pid = fork()) == 0) {
		int bad = 0;

		for (int i = 0; i < 150; i++) {
			snprintf(name, sizeof(name), "host%d.test", i);
			if (fakeip_addr(fi, name, AF_INET, &b4) == -1)
				bad++;
		}
		_exit(bad);
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fakeip_get_stats(fi, &st);
	CHECK(st.mappings == 100);
	CHECK(st.created == 150);
	CHECK(st.evicted == 50);
	/* the child's last mapping, seen from here, both ways */
	CHECK(fakeip_addr(fi, "HOST149.test", AF_INET, &b4) == 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = b4;
	n = fakeip_name(fi, (struct sockaddr *)&sin, false);
	CHECK(n != NULL && strcmp(n, "host149.test") == 0);
	/* an evicted one is gone: host0 got a new address now */
	CHECK(strcmp(addr4(fi, "host0.test", buf), "") != 0);
	fakeip_get_stats(fi, &st);
	CHECK(st.mappings == 100);
	fakeip_free(fi);
}

static void
test_bad(void)
{
	struct in_addr a4;
	struct in6_addr a6;
	char err[128] = "";

	inet_pton(AF_INET, "10.0.0.0", &a4);
	inet_pton(AF_INET6, "fd00::", &a6);
	CHECK(fakeip_new(&a4, 31, &a6, 64, 10, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "fake_ipv4") != NULL);
	CHECK(fakeip_new(&a4, 16, &a6, 48, 10, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "fake_ipv6") != NULL);
}

int
main(void)
{
	test_basic();
	test_bound();
	test_wrap();
	test_state();
	test_reserved();
	test_shared();
	test_bad();
	return check_summary("test_fakeip");
}
