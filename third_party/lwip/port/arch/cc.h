/*
 * arch/cc.h - lwIP's compiler/platform glue for sluice (Linux, gcc/clang).
 * Diagnostics and assertions go to sluice's log (src/stack.c).
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
void	sluice_lwip_assert(const char *msg, const char *file, int line)
	    __attribute__((noreturn));

#define LWIP_PLATFORM_DIAG(x)	do { sluice_lwip_diag x; } while (0)
#define LWIP_PLATFORM_ASSERT(x)	sluice_lwip_assert((x), __FILE__, __LINE__)

#define LWIP_RAND()		((uint32_t)random())

/* byte swapping by the compiler, not by lwIP's C loops */
#if BYTE_ORDER == LITTLE_ENDIAN
#define lwip_htons(x)		((uint16_t)__builtin_bswap16((uint16_t)(x)))
#define lwip_htonl(x)		((uint32_t)__builtin_bswap32((uint32_t)(x)))
#endif

#endif
