/*
 * test_isn.c - RFC 6528 initial sequence numbers and LWIP_RAND()
 * (src/lwip_hooks.c): SipHash-2-4 against the reference vectors, ISNs that
 * differ by 4-tuple and by secret and advance with the clock, and the hooks
 * as lwIP calls them.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "lwip/ip_addr.h"

#include "check.h"
#include "lwip_hooks.h"

/* Spin until CLOCK_MONOTONIC has moved by at least us microseconds. */
static void
wait_us(long us)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) /
	    1000 < us);
}

int
main(void)
{
	uint8_t key[16], key2[16], msg[64];
	ip_addr_t l4, r4, r4b, l6, r6;
	uint32_t a, b, c, d, isn[8];
	int i, j, distinct;

	/* SipHash-2-4, the reference paper's vectors (key 00..0f) */
	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	CHECK(lwip_hooks_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ull);
	CHECK(lwip_hooks_siphash(key, msg, 15) == 0xa129ca6149be45e5ull);
	CHECK(lwip_hooks_siphash(key, msg, 8) == 0x93f5f5799a932462ull);
	CHECK(lwip_hooks_siphash(key, msg, 63) == 0x958a324ceb064572ull);

	IP_ADDR4(&l4, 198, 18, 1, 1);
	IP_ADDR4(&r4, 198, 18, 0, 2);
	IP_ADDR4(&r4b, 198, 18, 0, 3);
	IP_ADDR6(&l6, PP_HTONL(0x20010db8), 0, 0, PP_HTONL(1));
	IP_ADDR6(&r6, PP_HTONL(0x20010db8), 0, 0, PP_HTONL(2));

	/* a pure function of key, clock and tuple */
	a = lwip_hooks_isn(key, 1000, &l4, 80, &r4, 40000);
	CHECK(a == lwip_hooks_isn(key, 1000, &l4, 80, &r4, 40000));
	/* the clock part adds: M + F */
	CHECK(lwip_hooks_isn(key, 1000 + 250000, &l4, 80, &r4, 40000) ==
	    a + 250000);
	/* every element of the tuple counts */
	CHECK(a != lwip_hooks_isn(key, 1000, &l4, 81, &r4, 40000));
	CHECK(a != lwip_hooks_isn(key, 1000, &l4, 80, &r4, 40001));
	CHECK(a != lwip_hooks_isn(key, 1000, &l4, 80, &r4b, 40000));
	CHECK(a != lwip_hooks_isn(key, 1000, &r4, 80, &l4, 40000));
	CHECK(a != lwip_hooks_isn(key, 1000, &l4, 40000, &r4, 80));
	c = lwip_hooks_isn(key, 1000, &l6, 80, &r6, 40000);
	CHECK(c != lwip_hooks_isn(key, 1000, &l6, 80, &r6, 40001));
	CHECK(c != a);
	/* consecutive source ports: no visible pattern (all distinct, and
	 * not a constant step) */
	for (i = 0; i < 8; i++)
		isn[i] = lwip_hooks_isn(key, 1000, &l4, 80, &r4,
		    (uint16_t)(40000 + i));
	distinct = 1;
	for (i = 0; i < 8; i++)
		for (j = i + 1; j < 8; j++)
			if (isn[i] == isn[j])
				distinct = 0;
	CHECK(distinct);
	CHECK(isn[1] - isn[0] != isn[2] - isn[1]);
	/* another secret, another ISN */
	memcpy(key2, key, sizeof(key2));
	key2[15] ^= 1;
	CHECK(a != lwip_hooks_isn(key2, 1000, &l4, 80, &r4, 40000));
	CHECK(c != lwip_hooks_isn(key2, 1000, &l6, 80, &r6, 40000));

	/* the hook lwIP calls: the process's secret and the 4-us clock */
	a = sluice_lwip_tcp_isn(&l4, 80, &r4, 40000);
	b = sluice_lwip_tcp_isn(&l4, 80, &r4b, 40000);
	CHECK(a != b);
	wait_us(10000);
	c = sluice_lwip_tcp_isn(&l4, 80, &r4, 40000);
	d = c - a;		/* 10 ms is 2500 ticks; allow a slow machine */
	CHECK(d >= 2500 && d < 2500 * 100);

	/* LWIP_RAND(): not stuck, not trivially repeating */
	a = sluice_lwip_rand();
	b = sluice_lwip_rand();
	c = sluice_lwip_rand();
	CHECK(a != b && b != c && a != c);
	CHECK(sluice_lwip_hash_seed() == sluice_lwip_hash_seed());

	return check_summary("test_isn");
}
