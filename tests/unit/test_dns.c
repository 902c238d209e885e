/*
 * test_dns.c - unit tests for the DNS codec: hand-built messages parsed
 * field by field, every rejection with its reason, compressed names and
 * pointer chains, name text escapes both ways, label-wise suffixes,
 * responses and added answers byte for byte, truncation and UDP limits.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dns.h"

/* www.example.test: at offset 12 of a message, "example.test" is at 16 */
#define NAME_WWW	3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', \
			'e', 4, 't', 'e', 's', 't', 0
#define QUESTION_WWW_A	NAME_WWW, 0, 1, 0, 1	/* A IN, 22 bytes */
/* a header: ID 0x1234, the flags, then QD/AN/NS/AR counts under 256 */
#define HDR(f1, f2, qd, an, ns, ar) \
			0x12, 0x34, f1, f2, 0, qd, 0, an, 0, ns, 0, ar
/* a response header: QR RD RA, NOERROR */
#define RHDR(qd, an, ns, ar)	HDR(0x81, 0x80, qd, an, ns, ar)
/* an A RR's fixed part after its name: A IN TTL 60 RDLENGTH 4 */
#define RR_A_60		0, 1, 0, 1, 0, 0, 0, 60, 0, 4
/* an OPT RR: root, OPT, UDP size 1232, rcode/version 0, no flags, empty */
#define OPT_1232	0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0

/* A plain A query for www.example.test, RD set. */
static const uint8_t q_a[] = {
	0x12, 0x34,		/* ID */
	0x01, 0x00,		/* RD */
	0, 1, 0, 0, 0, 0, 0, 0,	/* QD 1 */
	QUESTION_WWW_A,		/* 12..33 */
};

/* An AAAA query for Example.COM with EDNS0: 1232, DO, a cookie option. */
static const uint8_t q_aaaa_edns[] = {
	0xbe, 0xef,		/* ID */
	0x01, 0x20,		/* RD, AD */
	0, 1, 0, 0, 0, 0, 0, 1,	/* QD 1, AR 1 */
	7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
	0, 28, 0, 1,		/* AAAA IN; the question ends at 29 */
	0,			/* OPT: the root */
	0, 41,			/* TYPE OPT */
	0x04, 0xd0,		/* CLASS: UDP size 1232 */
	0, 0, 0x80, 0x00,	/* TTL: ext rcode 0, version 0, DO */
	0, 12,			/* RDLENGTH */
	0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,	/* COOKIE, client part */
};

/*
 * A response to q_a with compressed names:
 *   www.example.test CNAME web.example.test	(name: pointer to 12)
 *   web.example.test A 198.18.0.7	(pointer to the CNAME's RDATA, whose
 *					 "web" ends in a pointer to 16)
 *   example.test NS ns1.example.test
 *   web.example.test A 198.18.0.8	(pointer to the pointer at 52)
 */
static const uint8_t r_compressed[] = {
	RHDR(1, 2, 1, 1),
	QUESTION_WWW_A,
	/* 34: answer 1 */
	0xc0, 12, 0, 5, 0, 1, 0, 0, 0x01, 0x2c, 0, 6,
	3, 'w', 'e', 'b', 0xc0, 16,		/* 46: RDATA */
	/* 52: answer 2 */
	0xc0, 46, RR_A_60, 198, 18, 0, 7,
	/* 68: authority */
	0xc0, 16, 0, 2, 0, 1, 0, 0, 0x0e, 0x10, 0, 6,
	3, 'n', 's', '1', 0xc0, 16,		/* 80: RDATA */
	/* 86: additional */
	0xc0, 52, RR_A_60, 198, 18, 0, 8,
	/* 102: the end */
};

/* Parse msg expecting failure with reason want. */
static void
check_bad(const uint8_t *msg, size_t len, const char *want)
{
	struct dns_info	 di;
	const char	*why = NULL;

	memset(&di, 0x5a, sizeof(di));
	CHECK(!dns_parse(msg, len, &di, &why));
	CHECK_STR(why, want);
	CHECK(di.id == 0x5a5a);		/* not written on failure */
}

static void
test_parse_a(void)
{
	struct dns_info	 di;
	uint8_t		 buf[sizeof(q_a) + 1];
	const char	*why = NULL;
	size_t		 i;
	int		 prefixes_fail = 1;

	CHECK(dns_parse(q_a, sizeof(q_a), &di, &why));
	CHECK(why == NULL);
	CHECK(di.id == 0x1234);
	CHECK(!di.qr && di.opcode == 0 && !di.tc && di.rd && !di.ra);
	CHECK(di.rcode == 0);
	CHECK(di.qdcount == 1 && di.ancount == 0 && di.nscount == 0 &&
	    di.arcount == 0);
	CHECK_STR(di.qname, "www.example.test");
	CHECK(di.qtype == DNS_TYPE_A && di.qclass == DNS_CLASS_IN);
	CHECK(di.question_end == 34);
	CHECK(!di.has_edns && di.edns_udp_size == 0 && di.edns_flags == 0 &&
	    di.edns_version == 0);
	CHECK(dns_udp_limit(&di) == 512);
	CHECK(dns_get_id(q_a) == 0x1234);

	/* NULL info and why are fine */
	CHECK(dns_parse(q_a, sizeof(q_a), NULL, NULL));

	/* every proper prefix is bad */
	for (i = 0; i < sizeof(q_a); i++) {
		if (dns_parse(q_a, i, &di, &why))
			prefixes_fail = 0;
	}
	CHECK(prefixes_fail);
	for (i = 0; i < DNS_HDR_LEN; i++)
		check_bad(q_a, i, "truncated header");
	/* the name is cut (13..29), then QTYPE/QCLASS (30..33) */
	check_bad(q_a, 13, "truncated name");
	check_bad(q_a, 29, "truncated name");
	check_bad(q_a, 30, "truncated question");
	check_bad(q_a, 33, "truncated question");

	/* one byte too many */
	memcpy(buf, q_a, sizeof(q_a));
	buf[sizeof(q_a)] = 0;
	check_bad(buf, sizeof(buf), "trailing bytes after the last RR");
}

static void
test_parse_edns(void)
{
	struct dns_info	 di;
	uint8_t		 buf[sizeof(q_aaaa_edns)];
	const char	*why = NULL;

	CHECK(dns_parse(q_aaaa_edns, sizeof(q_aaaa_edns), &di, &why));
	CHECK(di.id == 0xbeef && !di.qr && di.rd);
	CHECK(di.qdcount == 1 && di.arcount == 1);
	CHECK_STR(di.qname, "Example.COM");
	CHECK(di.qtype == DNS_TYPE_AAAA && di.qclass == DNS_CLASS_IN);
	CHECK(di.question_end == 29);
	CHECK(di.has_edns);
	CHECK(di.edns_udp_size == 1232);
	CHECK(di.edns_flags == DNS_EDNS_DO);
	CHECK(di.edns_version == 0);
	CHECK(dns_udp_limit(&di) == 1232);

	/* an extended rcode byte, version 1, size 4096 */
	memcpy(buf, q_aaaa_edns, sizeof(buf));
	buf[32] = 0x10;
	buf[33] = 0x00;
	buf[34] = 0x01;
	buf[35] = 1;
	buf[36] = 0x80;
	buf[37] = 0x01;
	CHECK(dns_parse(buf, sizeof(buf), &di, &why));
	CHECK(di.edns_udp_size == 4096 && di.edns_version == 1 &&
	    di.edns_flags == 0x8001);
	CHECK(dns_udp_limit(&di) == 4096);
	/* the RDATA cut short */
	check_bad(buf, sizeof(buf) - 1, "RDLENGTH past the end");
	/* the OPT's fixed part cut short */
	check_bad(buf, 29 + 10, "truncated resource record");
}

static void
test_parse_compressed(void)
{
	struct dns_info	 di;
	uint8_t		 buf[sizeof(r_compressed)];
	char		 text[DNS_NAME_TEXT_MAX];
	const char	*why = NULL;
	size_t		 next;

	CHECK(dns_parse(r_compressed, sizeof(r_compressed), &di, &why));
	CHECK(di.qr && di.rd && di.ra && di.rcode == DNS_RCODE_NOERROR);
	CHECK(di.qdcount == 1 && di.ancount == 2 && di.nscount == 1 &&
	    di.arcount == 1);
	CHECK_STR(di.qname, "www.example.test");
	CHECK(di.question_end == 34 && !di.has_edns);

	/* pointer to the question */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 34, text,
	    sizeof(text), &next));
	CHECK_STR(text, "www.example.test");
	CHECK(next == 36);
	/* labels, then a pointer into the question */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 46, text,
	    sizeof(text), &next));
	CHECK_STR(text, "web.example.test");
	CHECK(next == 52);
	/* a pointer to those labels: two hops */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 52, text,
	    sizeof(text), &next));
	CHECK_STR(text, "web.example.test");
	CHECK(next == 54);
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 68, text,
	    sizeof(text), &next));
	CHECK_STR(text, "example.test");
	CHECK(next == 70);
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 80, text,
	    sizeof(text), &next));
	CHECK_STR(text, "ns1.example.test");
	CHECK(next == 86);
	/* a pointer to a pointer to a pointer: three hops */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 86, text,
	    sizeof(text), &next));
	CHECK_STR(text, "web.example.test");
	CHECK(next == 88);
	/* the name at 24 is "test", at 29 the root */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 24, text,
	    sizeof(text), &next));
	CHECK_STR(text, "test");
	CHECK(next == 30);
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 29, text,
	    sizeof(text), &next));
	CHECK_STR(text, "");
	CHECK(next == 30);
	/* NULL next is fine; off past the end is not */
	CHECK(dns_name_decode(r_compressed, sizeof(r_compressed), 86, text,
	    sizeof(text), NULL));
	CHECK(!dns_name_decode(r_compressed, sizeof(r_compressed),
	    sizeof(r_compressed), text, sizeof(text), &next));

	/* an answer count one too high: the next name is missing */
	memcpy(buf, r_compressed, sizeof(buf));
	buf[7] = 3;
	check_bad(buf, sizeof(buf), "truncated name");
	/* one too low: the last RR is trailing */
	buf[7] = 2;
	buf[11] = 0;
	check_bad(buf, sizeof(buf), "trailing bytes after the last RR");
}

static void
test_parse_pointers(void)
{
	/* an answer's name pointing at itself */
	static const uint8_t self[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xc0, 34, RR_A_60, 1, 2, 3, 4,
	};
	/* a question name pointing at itself */
	static const uint8_t qself[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0),
		0xc0, 12, 0, 1, 0, 1,
	};
	/* "x" then a pointer back to the "x": a loop through a label */
	static const uint8_t label_loop[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		1, 'x', 0xc0, 34, RR_A_60, 1, 2, 3, 4,
	};
	/* a pointer into the middle of the same RR, past itself */
	static const uint8_t forward[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xc0, 40, RR_A_60, 1, 2, 3, 4,
	};
	/* a pointer to 255, in a 50-byte message */
	static const uint8_t past[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xc0, 0xff, RR_A_60, 1, 2, 3, 4,
	};
	/* the largest pointer, 0x3fff */
	static const uint8_t past_max[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xff, 0xff, RR_A_60, 1, 2, 3, 4,
	};
	/* a pointer to byte 4 of the header */
	static const uint8_t header[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xc0, 4, RR_A_60, 1, 2, 3, 4,
	};
	/* a pointer whose second byte is missing */
	static const uint8_t half[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0),
		1, 'a', 0xc0,
	};
	/*
	 * A chain: "c" then a pointer to the pointer at 21, which leads to
	 * "a" at 12; every hop lands below the run of labels it ends.
	 */
	static const uint8_t chain[] = {
		RHDR(1, 0, 0, 2),
		1, 'a', 0, 0, 1, 0, 1,			/* 12: a A IN */
		1, 'b', 0xc0, 12, RR_A_60, 1, 2, 3, 4,	/* 19: b.a */
		1, 'c', 0xc0, 21, RR_A_60, 5, 6, 7, 8,	/* 37: c.a */
	};
	char	text[DNS_NAME_TEXT_MAX];
	size_t	next;

	check_bad(self, sizeof(self), "compression pointer loop");
	check_bad(qself, sizeof(qself), "compression pointer loop");
	check_bad(label_loop, sizeof(label_loop), "compression pointer loop");
	check_bad(forward, sizeof(forward), "forward compression pointer");
	check_bad(past, sizeof(past), "compression pointer past the end");
	check_bad(past_max, sizeof(past_max),
	    "compression pointer past the end");
	check_bad(header, sizeof(header),
	    "compression pointer into the header");
	check_bad(half, sizeof(half), "truncated name");

	CHECK(dns_parse(chain, sizeof(chain), NULL, NULL));
	CHECK(dns_name_decode(chain, sizeof(chain), 37, text, sizeof(text),
	    &next));
	CHECK_STR(text, "c.a");
	CHECK(next == 41);
	CHECK(dns_name_decode(chain, sizeof(chain), 19, text, sizeof(text),
	    &next));
	CHECK_STR(text, "b.a");
	CHECK(next == 23);
	/* the pointer at 21 on its own */
	CHECK(dns_name_decode(chain, sizeof(chain), 21, text, sizeof(text),
	    &next));
	CHECK_STR(text, "a");
	CHECK(next == 23);
}

/*
 * A response whose one question is "a" at 12 and whose answer (a TXT RR
 * at 19, named by a pointer to 12) has RDATA at 31 holding a chain of nptr
 * pointers: the first to 12, each next one to the one before, so that
 * the one at 31 + 2 * i takes i + 1 hops.  Returns the length, 31 + 2 *
 * nptr.
 */
static size_t
make_chain(uint8_t *buf, size_t nptr)
{
	static const uint8_t head[] = {
		RHDR(1, 1, 0, 0),
		1, 'a', 0, 0, 16, 0, 1,		/* 12: a TXT IN */
		0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0,	/* 19: a TXT IN 0 */
	};
	size_t	i, to, off = sizeof(head) + 2;

	memcpy(buf, head, sizeof(head));
	buf[off - 2] = (uint8_t)(2 * nptr >> 8);	/* RDLENGTH */
	buf[off - 1] = (uint8_t)(2 * nptr);
	for (i = 0; i < nptr; i++) {
		to = i == 0 ? 12 : off + 2 * i - 2;
		buf[off + 2 * i] = (uint8_t)(0xc0 | to >> 8);
		buf[off + 2 * i + 1] = (uint8_t)to;
	}
	return off + 2 * nptr;
}

static void
test_parse_hops(void)
{
	uint8_t	buf[512];
	char	text[DNS_NAME_TEXT_MAX];
	size_t	len, next;

	/* 128 pointers: the last takes 128 hops, the one before 127 */
	len = make_chain(buf, 128);
	CHECK(len == 31 + 256);
	CHECK(dns_parse(buf, len, NULL, NULL));
	CHECK(!dns_name_decode(buf, len, 31 + 2 * 127, text, sizeof(text),
	    &next));
	CHECK(dns_name_decode(buf, len, 31 + 2 * 126, text, sizeof(text),
	    &next));
	CHECK_STR(text, "a");
	CHECK(next == 31 + 2 * 127);

	/*
	 * In dns_parse: a second answer at 287 whose name points at the
	 * pointer at 281 (1 + 126 hops), then at 283 (1 + 127).
	 */
	buf[7] = 2;			/* ANCOUNT */
	buf[len++] = 0xc1;		/* 281 = 0x119 */
	buf[len++] = 0x19;
	memcpy(buf + len, (const uint8_t []){ RR_A_60, 1, 2, 3, 4 }, 14);
	len += 14;
	CHECK(dns_parse(buf, len, NULL, NULL));
	buf[288] = 0x1b;		/* 283 */
	check_bad(buf, len, "too many compression pointers");
}

/* Fill buf with a query whose name has labels of the given lengths. */
static size_t
make_long_name(uint8_t *buf, const size_t *labels, size_t n)
{
	static const uint8_t head[] = { HDR(0x01, 0x00, 1, 0, 0, 0) };
	size_t	off = sizeof(head), i;

	memcpy(buf, head, sizeof(head));
	for (i = 0; i < n; i++) {
		buf[off++] = (uint8_t)labels[i];
		memset(buf + off, 'a' + (int)i, labels[i]);
		off += labels[i];
	}
	buf[off++] = 0;
	buf[off++] = 0;		/* A IN */
	buf[off++] = 1;
	buf[off++] = 0;
	buf[off++] = 1;
	return off;
}

static void
test_parse_labels(void)
{
	static const size_t	 l255[] = { 63, 63, 63, 61 };
	static const size_t	 l256[] = { 63, 63, 63, 62 };
	static const size_t	 l64[] = { 64 };
	static const size_t	 l63[] = { 63 };
	/* label type 01: 0x41 */
	static const uint8_t	 ext[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0), 0x41, 'x', 0, 0, 1, 0, 1,
	};
	/* label type 10: 0x80 */
	static const uint8_t	 rsv[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0), 0x80, 'x', 0, 0, 1, 0, 1,
	};
	/* an additional RR whose name starts with label type 01 */
	static const uint8_t	 rsv_rr[] = {
		RHDR(1, 0, 0, 1), QUESTION_WWW_A,
		0x40, RR_A_60, 1, 2, 3, 4,
	};
	uint8_t			 buf[400];
	struct dns_info		 di;
	char			 want[DNS_NAME_TEXT_MAX];
	size_t			 len;

	/* 255 octets on the wire: 253 characters of text, fits qname */
	len = make_long_name(buf, l255, 4);
	CHECK(len == 12 + 255 + 4);
	CHECK(dns_parse(buf, len, &di, NULL));
	memset(want, 'a', 63);
	want[63] = '.';
	memset(want + 64, 'b', 63);
	want[127] = '.';
	memset(want + 128, 'c', 63);
	want[191] = '.';
	memset(want + 192, 'd', 61);
	want[253] = '\0';
	CHECK_STR(di.qname, want);
	CHECK(di.question_end == len);

	len = make_long_name(buf, l256, 4);
	check_bad(buf, len, "name longer than 255 octets");
	len = make_long_name(buf, l64, 1);
	check_bad(buf, len, "bad label type or length");
	len = make_long_name(buf, l63, 1);
	CHECK(dns_parse(buf, len, NULL, NULL));

	check_bad(ext, sizeof(ext), "bad label type or length");
	check_bad(rsv, sizeof(rsv), "bad label type or length");
	check_bad(rsv_rr, sizeof(rsv_rr), "bad label type or length");
}

static void
test_parse_opt(void)
{
	/* two OPT RRs */
	static const uint8_t two[] = {
		HDR(0x01, 0x00, 1, 0, 0, 2), QUESTION_WWW_A,
		OPT_1232, OPT_1232,
	};
	/* an OPT RR as the answer */
	static const uint8_t in_answer[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A, OPT_1232,
	};
	/* an OPT RR as the authority */
	static const uint8_t in_authority[] = {
		RHDR(1, 0, 1, 0), QUESTION_WWW_A, OPT_1232,
	};
	/* an OPT RR owned by "a" */
	static const uint8_t named[] = {
		HDR(0x01, 0x00, 1, 0, 0, 1), QUESTION_WWW_A,
		1, 'a', 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	/* the OPT RR after an A RR, in the additional section */
	static const uint8_t second[] = {
		RHDR(1, 0, 0, 2), QUESTION_WWW_A,
		0xc0, 12, RR_A_60, 1, 2, 3, 4,
		0, 0, 41, 0x02, 0x00, 0, 0, 0, 0, 0, 0,	/* size 512 */
	};
	/* a query without a question: only a cookie (RFC 7873 5.4) */
	static const uint8_t no_question[] = {
		HDR(0x00, 0x00, 0, 0, 0, 1),
		0, 0, 41, 0x00, 0x80, 0, 0, 0, 0,	/* size 128 */
		0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	};
	struct dns_info	di;

	check_bad(two, sizeof(two), "more than one OPT RR");
	check_bad(in_answer, sizeof(in_answer),
	    "OPT RR outside the additional section");
	check_bad(in_authority, sizeof(in_authority),
	    "OPT RR outside the additional section");
	check_bad(named, sizeof(named), "OPT RR not owned by the root");

	CHECK(dns_parse(second, sizeof(second), &di, NULL));
	CHECK(di.has_edns && di.edns_udp_size == 512 && di.arcount == 2);

	CHECK(dns_parse(no_question, sizeof(no_question), &di, NULL));
	CHECK(di.qdcount == 0 && di.question_end == 12);
	CHECK_STR(di.qname, "");
	CHECK(di.qtype == 0 && di.qclass == 0);
	CHECK(di.has_edns && di.edns_udp_size == 128);
	CHECK(dns_udp_limit(&di) == 512);
}

static void
test_name_text(void)
{
	/* a label "a. \xff\\b" and "Lan", as a TXT question */
	static const uint8_t odd[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0),
		6, 'a', '.', ' ', 0xff, '\\', 'b', 3, 'L', 'a', 'n', 0,
		0, 16, 0, 1,
	};
	static const char odd_text[] = "a\\046\\032\\255\\092b.Lan";
	/* a root question */
	static const uint8_t root[] = {
		HDR(0x01, 0x00, 1, 0, 0, 0), 0, 0, 2, 0, 1,
	};
	/* labels of 63 octets 0xff and "a": 254 characters, one too many */
	uint8_t		 big[12 + 1 + 63 + 2 + 1 + 4];
	struct dns_info	 di;
	char		 text[400];
	uint8_t		 wire[DNS_NAME_WIRE_MAX];
	size_t		 next;

	CHECK(dns_parse(odd, sizeof(odd), &di, NULL));
	CHECK_STR(di.qname, odd_text);
	CHECK(di.qtype == DNS_TYPE_TXT);
	CHECK(dns_name_encode(di.qname, wire, sizeof(wire)) == 12);
	CHECK(memcmp(wire, odd + 12, 12) == 0);

	/* the text exactly fits, or is one byte short */
	CHECK(dns_name_decode(odd, sizeof(odd), 12, text,
	    sizeof(odd_text), &next));
	CHECK_STR(text, odd_text);
	CHECK(next == 24);
	CHECK(!dns_name_decode(odd, sizeof(odd), 12, text,
	    sizeof(odd_text) - 1, &next));
	CHECK(!dns_name_decode(odd, sizeof(odd), 12, text, 0, &next));
	CHECK(dns_name_decode(odd, sizeof(odd), 19, text, 4, &next));
	CHECK_STR(text, "Lan");
	CHECK(!dns_name_decode(odd, sizeof(odd), 19, text, 3, &next));

	CHECK(dns_parse(root, sizeof(root), &di, NULL));
	CHECK_STR(di.qname, "");
	CHECK(di.qtype == DNS_TYPE_NS && di.question_end == 17);
	CHECK(dns_name_decode(root, sizeof(root), 12, text, 1, &next));
	CHECK_STR(text, "");

	memcpy(big, (const uint8_t []){ HDR(0x01, 0x00, 1, 0, 0, 0) }, 12);
	big[12] = 63;
	memset(big + 13, 0xff, 63);
	memcpy(big + 76, (const uint8_t []){ 1, 'a', 0, 0, 1, 0, 1 }, 7);
	check_bad(big, sizeof(big), "name too long as text");
	CHECK(dns_name_decode(big, sizeof(big), 12, text, sizeof(text),
	    &next));
	CHECK(strlen(text) == 254 && strncmp(text, "\\255\\255", 8) == 0);
	CHECK(strcmp(text + 248, "\\255.a") == 0);
	CHECK(next == 79);
	CHECK(dns_name_decode(big, sizeof(big), 12, text, 255, &next));
	CHECK(!dns_name_decode(big, sizeof(big), 12, text, 254, &next));
}

/* Encode text, expecting the wire bytes want (n of them, 0: bad). */
static void
check_encode(const char *text, const uint8_t *want, size_t n)
{
	uint8_t	wire[DNS_NAME_WIRE_MAX + 8];
	char	back[1024], again[1024];
	uint8_t	wire2[DNS_NAME_WIRE_MAX];
	size_t	next;

	memset(wire, 0xee, sizeof(wire));
	CHECK(dns_name_encode(text, wire, sizeof(wire)) == n);
	if (n == 0) {
		CHECK(wire[0] == 0xee);
		return;
	}
	CHECK(memcmp(wire, want, n) == 0);
	CHECK(wire[n] == 0xee);
	/* the cap: exactly, one short (nothing written) */
	memset(wire, 0xee, sizeof(wire));
	CHECK(dns_name_encode(text, wire, n - 1) == 0);
	CHECK(wire[0] == 0xee);
	CHECK(dns_name_encode(text, wire, n) == n);
	/* decode, encode and decode again: the same text and wire */
	CHECK(dns_name_decode(wire, n, 0, back, sizeof(back), &next));
	CHECK(next == n);
	CHECK(dns_name_encode(back, wire2, sizeof(wire2)) == n);
	CHECK(memcmp(wire2, want, n) == 0);
	CHECK(dns_name_decode(wire2, n, 0, again, sizeof(again), &next));
	CHECK_STR(again, back);
}

static void
test_name_encode(void)
{
	static const uint8_t www[] = { NAME_WWW };
	static const uint8_t root[] = { 0 };
	static const uint8_t dotted[] = { 3, 'a', '.', 'b', 0 };
	static const uint8_t escaped[] = { 4, 'a', '.', 'b', ' ', 3, 'l',
	    'a', 'n', 0 };
	static const uint8_t bytes[] = { 3, 0xff, 0x00, '\\', 0 };
	static const uint8_t plain_x[] = { 2, 'a', 'q', 0 };
	static const uint8_t raw[] = { 3, 'a', ' ', 0xc3, 0 };
	char	name[300];
	uint8_t	want[DNS_NAME_WIRE_MAX];
	size_t	i, o;

	check_encode("www.example.test", www, sizeof(www));
	check_encode("www.example.test.", www, sizeof(www));
	check_encode("", root, 1);
	check_encode(".", root, 1);
	check_encode("a\\.b", dotted, sizeof(dotted));
	check_encode("a\\046b", dotted, sizeof(dotted));
	check_encode("a\\.b\\032.lan.", escaped, sizeof(escaped));
	check_encode("\\255\\000\\\\", bytes, sizeof(bytes));
	check_encode("a\\q", plain_x, sizeof(plain_x));
	/* other bytes stand for themselves */
	check_encode("a \xc3", raw, sizeof(raw));

	check_encode("a..b", NULL, 0);
	check_encode(".a", NULL, 0);
	check_encode("..", NULL, 0);
	check_encode("a.\\", NULL, 0);
	check_encode("\\25", NULL, 0);
	check_encode("\\2a5", NULL, 0);
	check_encode("\\256", NULL, 0);
	check_encode("\\999", NULL, 0);
	check_encode("a\\", NULL, 0);
	CHECK(dns_name_encode(NULL, want, sizeof(want)) == 0);

	/* labels of 63 and 64 octets */
	memset(name, 'x', 64);
	name[63] = '\0';
	want[0] = 63;
	memset(want + 1, 'x', 63);
	want[64] = 0;
	check_encode(name, want, 65);
	name[63] = 'x';
	name[64] = '\0';
	check_encode(name, NULL, 0);
	/* 63 escaped octets are one label of 63 */
	for (i = 0, o = 0; i < 63; i++, o += 4)
		memcpy(name + o, "\\046", 4);
	name[o] = '\0';
	memset(want + 1, '.', 63);
	check_encode(name, want, 65);
	memcpy(name + o, "\\046", 5);
	check_encode(name, NULL, 0);

	/* 255 octets (4 labels: 63 63 63 61), then 256 */
	for (i = 0, o = 0; i < 4; i++) {
		size_t n = i < 3 ? 63 : 61;

		want[o] = (uint8_t)n;
		memset(want + o + 1, 'a' + (int)i, n);
		o += 1 + n;
	}
	want[o++] = 0;
	CHECK(o == 255);
	CHECK(dns_name_decode(want, o, 0, name, sizeof(name), NULL));
	CHECK(strlen(name) == 253);
	check_encode(name, want, 255);
	strcat(name, ".");
	check_encode(name, want, 255);
	name[253] = 'd';
	name[254] = '\0';
	check_encode(name, NULL, 0);
	strcpy(name + 253, ".e");
	check_encode(name, NULL, 0);
}

static void
test_has_suffix(void)
{
	CHECK(dns_name_has_suffix("a.lan", "lan"));
	CHECK(!dns_name_has_suffix("alan", "lan"));
	CHECK(dns_name_has_suffix("lan", "lan"));
	CHECK(dns_name_has_suffix("A.LaN", "lan"));
	CHECK(dns_name_has_suffix("a.lan", "LAN"));
	CHECK(dns_name_has_suffix("x.a.lan", "a.lan"));
	CHECK(!dns_name_has_suffix("x.ba.lan", "a.lan"));
	CHECK(!dns_name_has_suffix("lan", "a.lan"));
	CHECK(!dns_name_has_suffix("lan.a", "lan"));
	CHECK(dns_name_has_suffix("anything.at.all", ""));
	CHECK(dns_name_has_suffix("", ""));
	CHECK(!dns_name_has_suffix("", "lan"));
	/* trailing dots and escapes do not matter */
	CHECK(dns_name_has_suffix("a.lan.", "lan"));
	CHECK(dns_name_has_suffix("a.lan", "lan."));
	CHECK(dns_name_has_suffix("a.l\\097n", "lan"));
	/* a label with a dot in it is one label */
	CHECK(!dns_name_has_suffix("a\\.lan", "lan"));
	CHECK(!dns_name_has_suffix("a\\046lan", "lan"));
	CHECK(dns_name_has_suffix("x.a\\.lan", "a\\046lan"));
	/* a case fold is ASCII only */
	CHECK(!dns_name_has_suffix("a.\\196", "\\228"));
	/* invalid names never match */
	CHECK(!dns_name_has_suffix("a..lan", "lan"));
	CHECK(!dns_name_has_suffix("a.lan", ".lan"));
	CHECK(!dns_name_has_suffix(NULL, ""));
	CHECK(!dns_name_has_suffix("a", NULL));
}

static void
test_id(void)
{
	uint8_t	buf[sizeof(q_a)];

	memcpy(buf, q_a, sizeof(buf));
	dns_set_id(buf, 0xa55a);
	CHECK(buf[0] == 0xa5 && buf[1] == 0x5a);
	CHECK(dns_get_id(buf) == 0xa55a);
	CHECK(memcmp(buf + 2, q_a + 2, sizeof(q_a) - 2) == 0);
	dns_set_id(buf, 0);
	CHECK(dns_get_id(buf) == 0);
}

static void
test_response_a(void)
{
	/* NOERROR: QR RD RA, the question as it was */
	static const uint8_t want[] = {
		RHDR(1, 0, 0, 0), QUESTION_WWW_A,
	};
	/* with an A answer: 198.18.0.5, TTL 60 */
	static const uint8_t want_a[] = {
		RHDR(1, 1, 0, 0), QUESTION_WWW_A,
		0xc0, 12, RR_A_60, 198, 18, 0, 5,
	};
	/* with a second A answer: 198.18.0.6, TTL 0x01020304 */
	static const uint8_t want_aa[] = {
		RHDR(1, 2, 0, 0), QUESTION_WWW_A,
		0xc0, 12, RR_A_60, 198, 18, 0, 5,
		0xc0, 12, 0, 1, 0, 1, 1, 2, 3, 4, 0, 4, 198, 18, 0, 6,
	};
	/* NXDOMAIN */
	static const uint8_t want_nx[] = {
		HDR(0x81, 0x83, 1, 0, 0, 0), QUESTION_WWW_A,
	};
	static const uint8_t a5[] = { 198, 18, 0, 5 };
	static const uint8_t a6[] = { 198, 18, 0, 6 };
	struct dns_info	qi, ri;
	uint8_t		out[128];
	size_t		n;

	CHECK(dns_parse(q_a, sizeof(q_a), &qi, NULL));
	memset(out, 0xee, sizeof(out));
	n = dns_build_response(out, sizeof(out), q_a, sizeof(q_a), &qi,
	    DNS_RCODE_NOERROR);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);
	CHECK(out[n] == 0xee);
	n = dns_add_answer(out, sizeof(out), n, DNS_TYPE_A, 60, a5, 4);
	CHECK(n == sizeof(want_a) && memcmp(out, want_a, n) == 0);
	n = dns_add_answer(out, sizeof(out), n, DNS_TYPE_A, 0x01020304, a6,
	    4);
	CHECK(n == sizeof(want_aa) && memcmp(out, want_aa, n) == 0);
	CHECK(dns_parse(out, n, &ri, NULL));
	CHECK(ri.id == 0x1234 && ri.qr && ri.ra && ri.rd && ri.ancount == 2);
	CHECK_STR(ri.qname, "www.example.test");

	/* no room: exactly, one byte short */
	n = dns_build_response(out, sizeof(want), q_a, sizeof(q_a), &qi,
	    DNS_RCODE_NOERROR);
	CHECK(n == sizeof(want));
	CHECK(dns_add_answer(out, sizeof(want_a) - 1, n, DNS_TYPE_A, 60, a5,
	    4) == 0);
	CHECK(memcmp(out, want, sizeof(want)) == 0);
	CHECK(dns_add_answer(out, sizeof(want_a), n, DNS_TYPE_A, 60, a5,
	    4) == sizeof(want_a));
	memset(out, 0xee, sizeof(out));
	CHECK(dns_build_response(out, sizeof(want) - 1, q_a, sizeof(q_a),
	    &qi, DNS_RCODE_NOERROR) == 0);
	CHECK(out[0] == 0xee);

	n = dns_build_response(out, sizeof(out), q_a, sizeof(q_a), &qi,
	    DNS_RCODE_NXDOMAIN);
	CHECK(n == sizeof(want_nx) && memcmp(out, want_nx, n) == 0);
	/* rcodes beyond 4 bits need EDNS0: not made here */
	CHECK(dns_build_response(out, sizeof(out), q_a, sizeof(q_a), &qi,
	    16) == 0);

	/* in place */
	memcpy(out, q_a, sizeof(q_a));
	n = dns_build_response(out, sizeof(out), out, sizeof(q_a), &qi,
	    DNS_RCODE_NOERROR);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);

	/* add_answer needs a question and a sound message */
	CHECK(dns_add_answer(out, sizeof(out), 11, DNS_TYPE_A, 60, a5, 4) ==
	    0);
	CHECK(dns_add_answer(out, sizeof(out), n - 1, DNS_TYPE_A, 60, a5,
	    4) == 0);
	CHECK(dns_add_answer(out, sizeof(out), n, DNS_TYPE_A, 60, NULL,
	    4) == 0);
	out[5] = 0;
	CHECK(dns_add_answer(out, sizeof(out), n, DNS_TYPE_A, 60, a5, 4) ==
	    0);
}

static void
test_response_opcode(void)
{
	/* a STATUS query (opcode 2) with CD, without RD */
	static const uint8_t q[] = {
		HDR(0x10, 0x10, 1, 0, 0, 0), QUESTION_WWW_A,
	};
	/* NOTIMP: QR, opcode 2, RA; no RD, no CD */
	static const uint8_t want[] = {
		HDR(0x90, 0x84, 1, 0, 0, 0), QUESTION_WWW_A,
	};
	struct dns_info	qi;
	uint8_t		out[64];
	size_t		n;

	CHECK(dns_parse(q, sizeof(q), &qi, NULL));
	CHECK(qi.opcode == 2 && !qi.rd);
	n = dns_build_response(out, sizeof(out), q, sizeof(q), &qi,
	    DNS_RCODE_NOTIMP);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);
}

static void
test_response_edns(void)
{
	/* NOERROR with OPT: 1232, DO copied, no options */
	static const uint8_t want[] = {
		0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 1,
		7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
		0, 28, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0,
	};
	/* with an AAAA answer 2001:db8::1, TTL 300, before the OPT */
	static const uint8_t want_aaaa[] = {
		0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 1,
		7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
		0, 28, 0, 1,
		0xc0, 12, 0, 28, 0, 1, 0, 0, 0x01, 0x2c, 0, 16,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0,
	};
	/* SERVFAIL to the same query without DO, size 4096 */
	static const uint8_t want_sf[] = {
		0xbe, 0xef, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 1,
		7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'O', 'M', 0,
		0, 28, 0, 1,
		0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0,
	};
	/* a cookie-only query: no question, an OPT */
	static const uint8_t q_cookie[] = {
		HDR(0x00, 0x00, 0, 0, 0, 1),
		0, 0, 41, 0x10, 0x00, 0, 0, 0, 0,
		0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	};
	static const uint8_t want_cookie[] = {
		HDR(0x80, 0x80, 0, 0, 0, 1), OPT_1232,
	};
	static const uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 1 };
	struct dns_info	qi, ri;
	uint8_t		q[sizeof(q_aaaa_edns)], out[128];
	size_t		n;

	CHECK(dns_parse(q_aaaa_edns, sizeof(q_aaaa_edns), &qi, NULL));
	n = dns_build_response(out, sizeof(out), q_aaaa_edns,
	    sizeof(q_aaaa_edns), &qi, DNS_RCODE_NOERROR);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);
	n = dns_add_answer(out, sizeof(out), n, DNS_TYPE_AAAA, 300, a6, 16);
	CHECK(n == sizeof(want_aaaa) && memcmp(out, want_aaaa, n) == 0);
	CHECK(dns_parse(out, n, &ri, NULL));
	CHECK(ri.id == 0xbeef && ri.ancount == 1 && ri.arcount == 1);
	CHECK(ri.has_edns && ri.edns_udp_size == 1232 &&
	    ri.edns_flags == DNS_EDNS_DO);
	CHECK_STR(ri.qname, "Example.COM");
	/* one byte short for the answer */
	CHECK(dns_add_answer(out, n + 27, n, DNS_TYPE_AAAA, 300, a6, 16) ==
	    0);
	/* an empty RDATA is fine */
	CHECK(dns_add_answer(out, sizeof(out), n, DNS_TYPE_TXT, 0, NULL,
	    0) == n + 12);

	memcpy(q, q_aaaa_edns, sizeof(q));
	q[32] = 0x10;		/* size 4096 */
	q[33] = 0x00;
	q[36] = 0;		/* no DO */
	CHECK(dns_parse(q, sizeof(q), &qi, NULL));
	n = dns_build_response(out, sizeof(out), q, sizeof(q), &qi,
	    DNS_RCODE_SERVFAIL);
	CHECK(n == sizeof(want_sf) && memcmp(out, want_sf, n) == 0);

	CHECK(dns_parse(q_cookie, sizeof(q_cookie), &qi, NULL));
	n = dns_build_response(out, sizeof(out), q_cookie, sizeof(q_cookie),
	    &qi, DNS_RCODE_NOERROR);
	CHECK(n == sizeof(want_cookie) && memcmp(out, want_cookie, n) == 0);
	CHECK(dns_add_answer(out, sizeof(out), n, DNS_TYPE_A, 1, a6, 4) ==
	    0);
}

/*
 * A response to "big.test TXT" with EDNS0 (size 4096): 16 TXT RRs each of
 * one 255-byte string, then an OPT RR.  4,325 bytes.
 */
static size_t
make_big_txt(uint8_t *buf)
{
	static const uint8_t head[] = {
		0x42, 0x42, 0x81, 0x80, 0, 1, 0, 16, 0, 0, 0, 1,
		3, 'b', 'i', 'g', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1,
	};
	static const uint8_t rr[] = {
		0xc0, 12, 0, 16, 0, 1, 0, 0, 0x0e, 0x10, 0x01, 0x00, 255,
	};
	static const uint8_t opt[] = {
		0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0,
	};
	size_t	off = sizeof(head), i;

	memcpy(buf, head, sizeof(head));
	for (i = 0; i < 16; i++) {
		memcpy(buf + off, rr, sizeof(rr));
		off += sizeof(rr);
		memset(buf + off, 'a' + (int)i, 255);
		off += 255;
	}
	memcpy(buf + off, opt, sizeof(opt));
	return off + sizeof(opt);
}

static void
test_truncate(void)
{
	/* TC set, counts 0 but QD, the question */
	static const uint8_t want[] = {
		0x42, 0x42, 0x83, 0x80, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'b', 'i', 'g', 4, 't', 'e', 's', 't', 0, 0, 16, 0, 1,
	};
	struct dns_info	qi, ri, ti;
	uint8_t		r[4400], out[4400];
	size_t		rlen, n;

	rlen = make_big_txt(r);
	CHECK(rlen == 26 + 16 * (13 + 255) + 11);
	CHECK(rlen > 4096);
	CHECK(dns_parse(r, rlen, &ri, NULL));
	CHECK(ri.ancount == 16 && ri.has_edns && ri.question_end == 26);

	/* to 512 */
	memset(out, 0xee, sizeof(out));
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, DNS_UDP_MIN);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);
	CHECK(out[n] == 0xee);
	CHECK(dns_parse(out, n, &ti, NULL));
	CHECK(ti.tc && ti.id == 0x4242 && ti.qtype == DNS_TYPE_TXT);
	CHECK_STR(ti.qname, "big.test");

	/* to the limit of q_aaaa_edns (1232) */
	CHECK(dns_parse(q_aaaa_edns, sizeof(q_aaaa_edns), &qi, NULL));
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, dns_udp_limit(&qi));
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);

	/* to a limit it fits: unchanged, exactly or with room */
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, 65535);
	CHECK(n == rlen && memcmp(out, r, n) == 0);
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, rlen);
	CHECK(n == rlen && memcmp(out, r, n) == 0);
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, rlen - 1);
	CHECK(n == sizeof(want) && memcmp(out, want, n) == 0);

	/* out too small */
	CHECK(dns_truncate(out, rlen - 1, r, rlen, &ri, rlen) == 0);
	CHECK(dns_truncate(out, sizeof(want) - 1, r, rlen, &ri, 512) == 0);
	CHECK(dns_truncate(out, sizeof(want), r, rlen, &ri, 512) ==
	    sizeof(want));

	/* not even the question fits: the header alone */
	n = dns_truncate(out, sizeof(out), r, rlen, &ri, 25);
	CHECK(n == 12 && memcmp(out, want, 4) == 0);
	CHECK(out[4] == 0 && out[5] == 0 && out[7] == 0 && out[11] == 0);
	CHECK(dns_parse(out, n, &ti, NULL) && ti.tc && ti.qdcount == 0);
	CHECK(dns_truncate(out, sizeof(out), r, rlen, &ri, 11) == 0);

	/* in place */
	n = dns_truncate(r, sizeof(r), r, rlen, &ri, 512);
	CHECK(n == sizeof(want) && memcmp(r, want, n) == 0);
}

static void
test_udp_limit(void)
{
	struct dns_info	qi;

	memset(&qi, 0, sizeof(qi));
	CHECK(dns_udp_limit(&qi) == 512);
	qi.has_edns = true;
	CHECK(dns_udp_limit(&qi) == 512);	/* size 0 */
	qi.edns_udp_size = 511;
	CHECK(dns_udp_limit(&qi) == 512);
	qi.edns_udp_size = 512;
	CHECK(dns_udp_limit(&qi) == 512);
	qi.edns_udp_size = 1232;
	CHECK(dns_udp_limit(&qi) == 1232);
	qi.edns_udp_size = 65535;
	CHECK(dns_udp_limit(&qi) == 65535);
	qi.has_edns = false;
	CHECK(dns_udp_limit(&qi) == 512);
	CHECK(dns_udp_limit(NULL) == 512);
}

int
main(void)
{
	test_parse_a();
	test_parse_edns();
	test_parse_compressed();
	test_parse_pointers();
	test_parse_hops();
	test_parse_labels();
	test_parse_opt();
	test_name_text();
	test_name_encode();
	test_has_suffix();
	test_id();
	test_response_a();
	test_response_opcode();
	test_response_edns();
	test_truncate();
	test_udp_limit();
	return check_summary("test_dns");
}
