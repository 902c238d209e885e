/*
 * lwip_hooks.c - the platform hooks lwIP calls through arch/cc.h and
 * lwipopts.h: what an lwIP assertion does, LWIP_RAND(), RFC 6528 initial
 * sequence numbers, the seed of the pcb lookup hash (our lwIP patch
 * 0005) and IP identifications (patch 0008).
 *
 * Assertions: lwIP checks its own invariants with LWIP_ASSERT and, in
 * most places, falls back on an LWIP_ERROR path right after.  A daemon
 * that carries every flow of a host must not stop on one: unless lwIP is
 * built with SLUICE_LWIP_ASSERT_ABORT (the fuzz and sanitizer builds, where
 * a failed assertion is the bug to find), a failure is logged (the first
 * one, then at most one line a minute with the count so far), counted,
 * and lwIP goes on as with LWIP_NOASSERT.
 *
 * Randomness: one getrandom() at start-up seeds a 128-bit ISN secret, a
 * separate 32-bit hash seed, the state of a splitmix64 generator for
 * LWIP_RAND() (ports, IDs: unpredictable enough, not a secret) and where
 * the IP identification counters start.  The ISN is
 * RFC 6528's M + F(4-tuple, secret): M a 4-microsecond CLOCK_MONOTONIC
 * clock, F SipHash-2-4, so a peer can neither guess the ISN of another
 * connection nor learn the secret from its own.
 */
#include <sys/random.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lwip/ip_addr.h"

#include "log.h"
#include "lwip_hooks.h"

/* at most one line about failed assertions per interval, after the first */
#define LWIP_HOOKS_ASSERT_LOG_INTERVAL	60	/* seconds */

static uint64_t	lwip_hooks_asserts;

static bool	lwip_hooks_seeded;
static uint8_t	lwip_hooks_isn_key[16];
static uint32_t	lwip_hooks_seed32;
static uint64_t	lwip_hooks_rand_state;
/* IP identifications (patch 0008): counters from a random start */
static uint32_t	lwip_hooks_id4, lwip_hooks_id6;

/* ---- assertions ----------------------------------------------------- */

uint64_t
lwip_hooks_assert_count(void)
{
	return __atomic_load_n(&lwip_hooks_asserts, __ATOMIC_RELAXED);
}

/* LWIP_PLATFORM_ASSERT in production: log (limited), count, go on. */
void
sluice_lwip_assert_failed(const char *msg, const char *file, int line)
{
	static time_t next_log;
	struct timespec ts;
	uint64_t n;

	n = __atomic_add_fetch(&lwip_hooks_asserts, 1, __ATOMIC_RELAXED);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (n == 1)
		log_errorx("lwip: assertion \"%s\" failed at %s:%d; "
		    "continuing", msg, file, line);
	else if (ts.tv_sec >= next_log)
		log_errorx("lwip: assertion \"%s\" failed at %s:%d; %llu "
		    "failures so far", msg, file, line, (unsigned long long)n);
	else
		return;
	next_log = ts.tv_sec + LWIP_HOOKS_ASSERT_LOG_INTERVAL;
}

/* LWIP_PLATFORM_ASSERT with SLUICE_LWIP_ASSERT_ABORT: log and stop. */
void
sluice_lwip_assert_abort(const char *msg, const char *file, int line)
{
	__atomic_add_fetch(&lwip_hooks_asserts, 1, __ATOMIC_RELAXED);
	log_errorx("lwip: assertion \"%s\" failed at %s:%d", msg, file, line);
	abort();
}

/* ---- seeding ---------------------------------------------------------- */

/*
 * Fill buf from the kernel's CSPRNG; false if it cannot be read.  Every
 * kernel sluice runs on has getrandom(2) (3.17 and later; the TUN offloads
 * and everything else need newer), so there is no /dev/urandom fallback.
 */
static bool
lwip_hooks_getrandom(void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Seed everything once; lwip_init() gets here first, at start-up. */
static void
lwip_hooks_seed(void)
{
	uint8_t buf[16 + 4 + 8 + 4 + 4];

	if (lwip_hooks_seeded)
		return;
	if (!lwip_hooks_getrandom(buf, sizeof(buf)))
		fatal("lwip: cannot seed the TCP sequence numbers: getrandom");
	memcpy(lwip_hooks_isn_key, buf, 16);
	memcpy(&lwip_hooks_seed32, buf + 16, 4);
	memcpy(&lwip_hooks_rand_state, buf + 20, 8);
	memcpy(&lwip_hooks_id4, buf + 28, 4);
	memcpy(&lwip_hooks_id6, buf + 32, 4);
	explicit_bzero(buf, sizeof(buf));
	lwip_hooks_seeded = true;
}

/* LWIP_RAND(): splitmix64, the upper half. */
uint32_t
sluice_lwip_rand(void)
{
	uint64_t z;

	lwip_hooks_seed();
	z = (lwip_hooks_rand_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint32_t)(z >> 32);
}

void
lwip_hooks_rand_set(uint64_t state)
{
	lwip_hooks_seed();
	lwip_hooks_rand_state = state;
}

/*
 * IP identifications (LWIP_HOOK_IP4_ID, LWIP_HOOK_IP6_FRAG_ID, patch
 * 0008): instance self of n takes the self-th of n equal parts of each
 * space and counts through it from a random point (drawn with the other
 * seeds, at lwip_init(), before lwIP sends anything).  Workers send from the
 * same addresses to the same clients, and lwIP's own counters (one per
 * process, all starting at 0) gave two workers' datagrams the same ID at
 * the same time: the client's reassembly mixed their fragments and lost
 * both.
 */
static uint32_t	lwip_hooks_id_self, lwip_hooks_id_n = 1;

void
lwip_hooks_id_split(unsigned self, unsigned n)
{
	lwip_hooks_id_n = n > 0 ? n : 1;
	lwip_hooks_id_self = self < lwip_hooks_id_n ? self : 0;
}

uint16_t
sluice_lwip_ip4_id(void)
{
	uint32_t size = 0x10000u / lwip_hooks_id_n;

	return (uint16_t)(lwip_hooks_id_self * size + lwip_hooks_id4++ % size);
}

uint32_t
sluice_lwip_ip6_frag_id(void)
{
	uint64_t size = 0x100000000ull / lwip_hooks_id_n;

	return (uint32_t)(lwip_hooks_id_self * size +
	    lwip_hooks_id6++ % size);
}

/* The MSS of our SYN-ACKs (TCP_MSS_ANNOUNCE in lwipopts.h, patch 0007). */
unsigned short sluice_lwip_mss_announce = TCP_MSS;

/* The key of lwIP's pcb lookup hash (TCP_PCB_HASH_SEED in lwipopts.h). */
uint32_t
sluice_lwip_hash_seed(void)
{
	lwip_hooks_seed();
	return lwip_hooks_seed32;
}

/* ---- SipHash-2-4 ------------------------------------------------------ */

#define SIP_ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIP_ROUND(v0, v1, v2, v3) do {					\
	v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0; v0 = SIP_ROTL(v0, 32); \
	v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;			\
	v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;			\
	v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2; v2 = SIP_ROTL(v2, 32); \
} while (0)

/* A little-endian 64-bit word. */
static uint64_t
sip_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t
lwip_hooks_siphash(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k0 = sip_le64(key), k1 = sip_le64(key + 8), m, b;
	uint64_t v0 = 0x736f6d6570736575ull ^ k0;
	uint64_t v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0;
	uint64_t v3 = 0x7465646279746573ull ^ k1;
	size_t left = len;
	int i;

	for (; left >= 8; p += 8, left -= 8) {
		m = sip_le64(p);
		v3 ^= m;
		SIP_ROUND(v0, v1, v2, v3);
		SIP_ROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	b = (uint64_t)len << 56;
	for (i = (int)left - 1; i >= 0; i--)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIP_ROUND(v0, v1, v2, v3);
	SIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (i = 0; i < 4; i++)
		SIP_ROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- initial sequence numbers (RFC 6528) ---------------------------- */

/* Append an address (family byte, then 4 or 16 bytes) at p; its end. */
static uint8_t *
lwip_hooks_put_addr(uint8_t *p, const ip_addr_t *a)
{
	if (IP_IS_V6(a)) {
		*p++ = 6;
		memcpy(p, ip_2_ip6(a)->addr, 16);
		return p + 16;
	}
	*p++ = 4;
	memcpy(p, &ip_2_ip4(a)->addr, 4);
	return p + 4;
}

uint32_t
lwip_hooks_isn(const uint8_t key[16], uint32_t clock_4us,
    const struct ip_addr *local_ip, uint16_t local_port,
    const struct ip_addr *remote_ip, uint16_t remote_port)
{
	uint8_t buf[2 * 17 + 4], *p = buf;

	p = lwip_hooks_put_addr(p, local_ip);
	p = lwip_hooks_put_addr(p, remote_ip);
	*p++ = (uint8_t)(local_port >> 8);
	*p++ = (uint8_t)local_port;
	*p++ = (uint8_t)(remote_port >> 8);
	*p++ = (uint8_t)remote_port;
	return clock_4us +
	    (uint32_t)lwip_hooks_siphash(key, buf, (size_t)(p - buf));
}

/* LWIP_HOOK_TCP_ISN: the ISN of a new pcb. */
uint32_t
sluice_lwip_tcp_isn(const struct ip_addr *local_ip, uint16_t local_port,
    const struct ip_addr *remote_ip, uint16_t remote_port)
{
	struct timespec ts;
	uint64_t us;

	lwip_hooks_seed();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	return lwip_hooks_isn(lwip_hooks_isn_key, (uint32_t)(us / 4),
	    local_ip, local_port, remote_ip, remote_port);
}
