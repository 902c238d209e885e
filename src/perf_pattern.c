/*
 * perf_pattern.c - the bytes `sluice --perf` moves: the byte at stream
 * offset o is perf_pattern[o % PERF_PERIOD]; the period is a prime, so no
 * segment or buffer size lines up with it.  The source reads its bytes
 * from here (with the test-only fault, one byte flipped) and whichever side
 * receives checks every byte against it.
 */
#include <stdio.h>
#include <string.h>

#include "perf_int.h"

static unsigned char	perf_pattern[PERF_PATTERN_LEN];
/* test-only fault: the corrupted stretch, stable while lwIP refers to it */
static unsigned char	perf_corrupt_buf[PERF_CLIENT_BUF];

void
perf_pattern_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	/* xorshift64: cheap, and no short repeats within the period */
	for (i = 0; i < PERF_PERIOD; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		perf_pattern[i] = (unsigned char)(x >> 32);
	}
	/* the tail repeats the head, so any stretch of up to PERF_CLIENT_BUF
	 * bytes is contiguous */
	memcpy(perf_pattern + PERF_PERIOD, perf_pattern, PERF_CLIENT_BUF);
}

/*
 * The len (<= PERF_CLIENT_BUF) bytes the source sends at stream offset
 * off: the pattern itself, or once per run, with the test-only fault, a
 * copy with one byte flipped.  The memory stays valid and unchanged for
 * the rest of the run.
 */
const unsigned char *
perf_source(const struct perf_opts *o, uint64_t off, size_t len)
{
	const unsigned char *src = perf_pattern + off % PERF_PERIOD;

	if (o->corrupt && o->corrupt_at >= off && o->corrupt_at - off < len) {
		memcpy(perf_corrupt_buf, src, len);
		perf_corrupt_buf[o->corrupt_at - off] ^= 0x5a;
		return perf_corrupt_buf;
	}
	return src;
}

/*
 * Check len bytes that `who' received at stream offset off against the
 * pattern.  0, or -1 with the first bad byte described in err.
 */
int
perf_verify(const char *who, uint64_t off, const void *buf, size_t len,
    char *err, size_t errlen)
{
	const unsigned char *b = buf, *want;
	size_t n, i;

	while (len > 0) {
		n = len > PERF_CLIENT_BUF ? PERF_CLIENT_BUF : len;
		want = perf_pattern + off % PERF_PERIOD;
		if (memcmp(b, want, n) != 0) {
			for (i = 0; i < n && b[i] == want[i]; i++)
				;
			snprintf(err, errlen, "%s: data mismatch at byte %llu: "
			    "expected 0x%02x, got 0x%02x", who,
			    (unsigned long long)(off + i), want[i], b[i]);
			return -1;
		}
		b += n;
		off += n;
		len -= n;
	}
	return 0;
}
