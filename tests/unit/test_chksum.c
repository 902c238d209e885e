/*
 * test_chksum.c - our Internet checksum (arch/cc.h, used by lwIP as
 * LWIP_CHKSUM) against a plain RFC 1071 reference, for every length and
 * alignment that matters, and through lwIP's own inet_chksum().
 */
#include <stdint.h>
#include <stdlib.h>

#include "lwip/inet_chksum.h"

#include "check.h"

/* RFC 1071 over big-endian 16-bit words, returned in memory byte order. */
static uint16_t
ref_chksum(const unsigned char *p, int len)
{
	uint32_t sum = 0;
	uint16_t be, out;
	unsigned char b[2];

	for (int i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	be = (uint16_t)sum;
	b[0] = (unsigned char)(be >> 8);
	b[1] = (unsigned char)be;
	__builtin_memcpy(&out, b, 2);
	return out;
}

int
main(void)
{
	static unsigned char buf[70000];
	int ok = 1;

	srandom(1);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)random();
	for (int off = 0; off < 8; off++)
		for (int len = 0; len <= 300; len++)
			if (sluice_chksum(buf + off, len) !=
			    ref_chksum(buf + off, len))
				ok = 0;
	CHECK(ok);
	CHECK(sluice_chksum(buf + 3, 65535) == ref_chksum(buf + 3, 65535));
	/* all ones: the sum must fold carries correctly */
	for (size_t i = 0; i < 2048; i++)
		buf[i] = 0xff;
	CHECK(sluice_chksum(buf, 2048) == ref_chksum(buf, 2048));
	CHECK(sluice_chksum(buf, 2047) == ref_chksum(buf, 2047));
	/* lwIP's complemented checksum goes through it */
	{
		uint16_t got = inet_chksum(buf + 1, 1500);
		uint16_t want = (uint16_t)(0xffffu ^ ref_chksum(buf + 1, 1500));

		CHECK(got == want);
	}
	/* a header with its checksum filled in sums to 0xffff */
	{
		unsigned char hdr[20] = { 0x45, 0, 0, 0x3c, 0x1c, 0x46, 0x40, 0,
		    0x40, 0x06, 0, 0, 0xac, 0x10, 0x0a, 0x63, 0xac, 0x10,
		    0x0a, 0x0c };
		uint16_t c = inet_chksum(hdr, 20);

		__builtin_memcpy(hdr + 10, &c, 2);
		CHECK(hdr[10] == 0xb1 && hdr[11] == 0xe6);
		CHECK(inet_chksum(hdr, 20) == 0);
	}
	return check_summary("test_chksum");
}
