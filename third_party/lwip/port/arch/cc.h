/*
 * arch/cc.h - lwIP's compiler/platform glue for sluice (Linux, gcc/clang).
 * Diagnostics go to sluice's log (src/stack.c); assertions, LWIP_RAND()
 * and the TCP hooks of lwipopts.h to src/lwip_hooks.c.
 */
#ifndef SLUICE_LWIP_ARCH_CC_H
#define SLUICE_LWIP_ARCH_CC_H

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE	0
#define LWIP_ERRNO_STDINCLUDE	1
/* the libc has htons() and friends; lwIP must not redefine them */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS	1

void	sluice_lwip_diag(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

/* src/lwip_hooks.c */
struct ip_addr;
void	sluice_lwip_assert_failed(const char *msg, const char *file, int line);
void	sluice_lwip_assert_abort(const char *msg, const char *file, int line)
	    __attribute__((noreturn));
uint32_t sluice_lwip_rand(void);
uint32_t sluice_lwip_hash_seed(void);
/* IP identifications (patch 0008): each worker its own part of the space */
uint16_t sluice_lwip_ip4_id(void);
uint32_t sluice_lwip_ip6_frag_id(void);
/* the MSS announced in SYNs (patch 0007): the TUN's MTU less the headers
 * without offloads, TCP_MSS with them; set by src/stack.c */
extern unsigned short sluice_lwip_mss_announce;
uint32_t sluice_lwip_tcp_isn(const struct ip_addr *local_ip,
	    uint16_t local_port, const struct ip_addr *remote_ip,
	    uint16_t remote_port);

#define LWIP_PLATFORM_DIAG(x)	do { sluice_lwip_diag x; } while (0)
/*
 * A failed assertion is logged and counted, and lwIP goes on (its code
 * after an assertion mostly has an LWIP_ERROR fallback), unless the build
 * defines SLUICE_LWIP_ASSERT_ABORT (fuzzing, sanitizers): then it aborts.
 */
#ifdef SLUICE_LWIP_ASSERT_ABORT
#define LWIP_PLATFORM_ASSERT(x)	sluice_lwip_assert_abort((x), __FILE__, __LINE__)
#else
#define LWIP_PLATFORM_ASSERT(x)	sluice_lwip_assert_failed((x), __FILE__, __LINE__)
#endif

/* splitmix64 seeded from getrandom() (src/lwip_hooks.c) */
#define LWIP_RAND()		sluice_lwip_rand()

/* byte swapping by the compiler, not by lwIP's C loops */
#if BYTE_ORDER == LITTLE_ENDIAN
#define lwip_htons(x)		((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define lwip_htonl(x)		((uint32_t)__builtin_bswap32((uint32_t)(x)))
#endif

/*
 * The Internet checksum (RFC 1071) of len bytes: the 16-bit one's
 * complement sum, not complemented, in the byte order of the data, as
 * lwIP's LWIP_CHKSUM expects.  Adds 32-bit halves of 64-bit loads into a
 * 64-bit accumulator: several times faster than lwIP's 16-bit loop.
 */
static inline uint16_t
sluice_chksum(const void *data, int len)
{
	const unsigned char *p = data;
	uint64_t sum = 0, x;
	uint32_t w;
	uint16_t h;

	while (len >= 32) {
		__builtin_memcpy(&x, p, 8);
		sum += (x & 0xffffffffu) + (x >> 32);
		__builtin_memcpy(&x, p + 8, 8);
		sum += (x & 0xffffffffu) + (x >> 32);
		__builtin_memcpy(&x, p + 16, 8);
		sum += (x & 0xffffffffu) + (x >> 32);
		__builtin_memcpy(&x, p + 24, 8);
		sum += (x & 0xffffffffu) + (x >> 32);
		p += 32;
		len -= 32;
	}
	while (len >= 4) {
		__builtin_memcpy(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		__builtin_memcpy(&h, p, 2);
		sum += h;
		p += 2;
		len -= 2;
	}
	if (len > 0) {
		/* the last byte is the first of a 16-bit word in memory */
		unsigned char last[2] = { *p, 0 };

		__builtin_memcpy(&h, last, 2);
		sum += h;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}
#define LWIP_CHKSUM	sluice_chksum

#endif
