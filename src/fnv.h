/*
 * fnv.h - FNV-1a, 32 bits: a hash with no key, so every worker process
 * computes the same one (which worker owns a UDP source, an IP fragment),
 * and cheap enough for log rate-limit keys.
 */
#ifndef SLUICE_FNV_H
#define SLUICE_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT	2166136261u

/* h, continued over len bytes at p (start from FNV1A_INIT). */
static inline uint32_t
fnv1a(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

#endif
