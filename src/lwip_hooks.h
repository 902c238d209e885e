/*
 * lwip_hooks.h - sluice's answers to lwIP's platform hooks (arch/cc.h,
 * lwipopts.h): assertion failures, LWIP_RAND(), the TCP initial sequence
 * number (RFC 6528) and the key of the pcb lookup hash.
 *
 * The hooks seed themselves from getrandom() on first use, which is
 * lwip_init() (tcp_init() draws LWIP_RAND() and the hash seed): at start-up.
 * Every hook runs on the thread that owns lwIP; lwip_hooks_assert_count()
 * may be read from any thread.
 */
#ifndef SLUICE_LWIP_HOOKS_H
#define SLUICE_LWIP_HOOKS_H

#include <stddef.h>
#include <stdint.h>

struct ip_addr;

/* lwIP assertion failures since start (logged: the first, then limited). */
uint64_t	lwip_hooks_assert_count(void);

/*
 * The RFC 6528 ISN for a connection: clock + SipHash-2-4(key, 4-tuple),
 * clock in 4-microsecond ticks.  Ports in host byte order.  Exposed for
 * tests; lwIP calls sluice_lwip_tcp_isn() (arch/cc.h), which uses the
 * process's secret and CLOCK_MONOTONIC.
 */
uint32_t	lwip_hooks_isn(const uint8_t key[16], uint32_t clock_4us,
		    const struct ip_addr *local_ip, uint16_t local_port,
		    const struct ip_addr *remote_ip, uint16_t remote_port);
/*
 * For tests: the state of LWIP_RAND() (splitmix64), so a test can replay
 * the draw that lwIP makes next.  The secrets stay seeded from getrandom().
 */
void		lwip_hooks_rand_set(uint64_t state);
/*
 * Worker processes: this lwIP instance is self of n, and the IDs it puts
 * in IPv4 headers and IPv6 Fragment headers come from its own n-th of each
 * space, so two workers never send fragments under one ID at once.
 */
void		lwip_hooks_id_split(unsigned self, unsigned n);
uint16_t	sluice_lwip_ip4_id(void);
uint32_t	sluice_lwip_ip6_frag_id(void);
/* SipHash-2-4 of len bytes under a 128-bit key (the reference's output). */
uint64_t	lwip_hooks_siphash(const uint8_t key[16], const void *data,
		    size_t len);

#endif
