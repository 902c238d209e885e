/*
 * fuzz_dns.c - the DNS codec on arbitrary messages.
 *
 * The input is one DNS message, copied to the very end of a heap block so
 * that ASan sees a read past len.  Every offset is tried as a name: what
 * dns_name_decode() accepts must encode again to the same labels (checked
 * against a naive expansion here) and decode to the same text.  A message
 * dns_parse() accepts is walked name by name to the same end, each name
 * also checked for its text's exact size and its suffixes; it gets a
 * response built (also in place), an A and an AAAA answer added, and is
 * cut down by dns_truncate() to several limits; each result must parse
 * again with the same ID and question.  Output
 * buffers are exactly as large as the result, so a write past cap crashes.
 * The rcode and one limit come from the ID, so the corpus stays plain DNS
 * messages.  The input is also tried as the text of a name.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_TEXT_MAX	1024	/* 4 characters per octet, and more */

/* A heap copy of n bytes (NULL: garbage) ending at the block's end. */
static uint8_t *
fuzz_dup(const void *p, size_t n)
{
	uint8_t *b = malloc(n > 0 ? n : 1);

	assert(b != NULL);
	if (p != NULL && n > 0)
		memcpy(b, p, n);
	else
		memset(b, 0xa5, n > 0 ? n : 1);
	return b;
}

/*
 * The labels of the (already accepted) name at off, uncompressed, the
 * naive way; its length.
 */
static size_t
fuzz_expand(const uint8_t *msg, size_t len, size_t off, uint8_t *out)
{
	size_t	n = 0, steps;

	for (steps = 0; steps < 1000; steps++) {
		assert(off < len);
		if ((msg[off] & 0xc0) == 0xc0) {
			off = (size_t)(msg[off] & 0x3f) << 8 | msg[off + 1];
			continue;
		}
		assert(msg[off] <= 63 && n + 1 + msg[off] <= DNS_NAME_WIRE_MAX);
		memcpy(out + n, msg + off, 1 + (size_t)msg[off]);
		n += 1 + (size_t)msg[off];
		if (msg[off] == 0)
			return n;
		off += 1 + (size_t)msg[off];
	}
	abort();
}

/*
 * The name at off, if any: decode, encode, decode must agree.  With all,
 * the text's exact size and suffixes too (for the names of a parsed
 * message; every offset of the input gets the rest).  Returns the offset
 * past the name, 0 if there is none.
 */
static size_t
fuzz_name_at(const uint8_t *msg, size_t len, size_t off, bool all)
{
	char	text[FUZZ_TEXT_MAX], again[FUZZ_TEXT_MAX], *dot;
	uint8_t	wire[DNS_NAME_WIRE_MAX], naive[DNS_NAME_WIRE_MAX];
	size_t	next, next2, tl, wl;

	if (!dns_name_decode(msg, len, off, text, sizeof(text), &next)) {
		assert(!dns_name_decode(msg, len, off, text,
		    DNS_NAME_TEXT_MAX, &next));
		return 0;
	}
	tl = strlen(text);
	assert(tl + 1 < sizeof(text));
	assert(next > off && next <= len);

	wl = dns_name_encode(text, wire, sizeof(wire));
	assert(wl >= 1 && wl <= DNS_NAME_WIRE_MAX);
	assert(fuzz_expand(msg, len, off, naive) == wl);
	assert(memcmp(wire, naive, wl) == 0);
	assert(dns_name_decode(wire, wl, 0, again, sizeof(again), &next2));
	assert(next2 == wl && strcmp(again, text) == 0);
	if (!all)
		return next;

	/* the text fits exactly, not one byte less; the wire the same */
	assert(dns_name_decode(msg, len, off, again, tl + 1, &next2));
	assert(next2 == next && strcmp(again, text) == 0);
	assert(!dns_name_decode(msg, len, off, again, tl, &next2));
	assert(dns_name_encode(text, wire, wl - 1) == 0);

	/* a name has itself and its parent as suffixes, and the root */
	assert(dns_name_has_suffix(text, text));
	assert(dns_name_has_suffix(text, ""));
	if ((dot = strchr(text, '.')) != NULL) {
		assert(dns_name_has_suffix(text, dot + 1));
		assert(!dns_name_has_suffix(dot + 1, text));
	}
	return next;
}

static uint16_t
fuzz_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Walk the sections of a parsed message by its names, as dns_parse did. */
static void
fuzz_walk(const uint8_t *msg, size_t len, const struct dns_info *mi)
{
	size_t	off = DNS_HDR_LEN, i, nrr;

	for (i = 0; i < mi->qdcount; i++) {
		off = fuzz_name_at(msg, len, off, true);
		assert(off > 0 && len - off >= 4);
		off += 4;
	}
	assert(off == mi->question_end);
	nrr = (size_t)mi->ancount + mi->nscount + mi->arcount;
	for (i = 0; i < nrr; i++) {
		off = fuzz_name_at(msg, len, off, true);
		assert(off > 0 && len - off >= 10);
		off += 10 + fuzz_get16(msg + off + 8);
		assert(off <= len);
	}
	assert(off == len);
}

/* Check r (n bytes) parses as an answer to m (parsed into mi). */
static void
fuzz_check_same_question(const uint8_t *r, size_t n, const uint8_t *m,
    const struct dns_info *mi, struct dns_info *ri)
{
	uint8_t	wire[DNS_NAME_WIRE_MAX];
	size_t	wl;

	assert(dns_parse(r, n, ri, NULL));
	assert(ri->id == mi->id);
	if (ri->qdcount == 0)
		return;
	assert(strcmp(ri->qname, mi->qname) == 0);
	assert(ri->qtype == mi->qtype && ri->qclass == mi->qclass);
	/* the first question's bytes, as they were (never compressed) */
	wl = dns_name_encode(mi->qname, wire, sizeof(wire));
	assert(wl > 0 && memcmp(m + DNS_HDR_LEN, wire, wl) == 0);
	assert(memcmp(r + DNS_HDR_LEN, m + DNS_HDR_LEN, wl + 4) == 0);
}

/* dns_build_response() and dns_add_answer() on the parsed message m. */
static void
fuzz_response(const uint8_t *m, size_t len, const struct dns_info *mi)
{
	static const uint8_t a4[4] = { 198, 18, 0, 1 };
	static const uint8_t a16[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 1 };
	struct dns_info	 ri;
	uint8_t		 wire[DNS_NAME_WIRE_MAX], *out, *inplace;
	uint8_t		 rcode = mi->id & 0x0f;
	size_t		 qend = DNS_HDR_LEN, need, n, cap;

	if (mi->qdcount > 0)
		qend += dns_name_encode(mi->qname, wire, sizeof(wire)) + 4;
	need = qend + (mi->has_edns ? 11 : 0);
	cap = need + (mi->qdcount > 0 ? 16 + 28 : 0);

	out = fuzz_dup(NULL, cap);
	assert(dns_build_response(out, need - 1, m, len, mi, rcode) == 0);
	assert(dns_build_response(out, cap, m, len, mi, 16) == 0);
	n = dns_build_response(out, cap, m, len, mi, rcode);
	assert(n == need);
	fuzz_check_same_question(out, n, m, mi, &ri);
	assert(ri.qr && ri.ra && !ri.tc && ri.rcode == rcode);
	assert(ri.opcode == mi->opcode && ri.rd == mi->rd);
	assert(ri.qdcount == (mi->qdcount > 0 ? 1 : 0));
	assert(ri.ancount == 0 && ri.nscount == 0);
	assert(ri.has_edns == mi->has_edns);
	if (ri.has_edns)
		assert(ri.edns_udp_size == DNS_EDNS_UDP_SIZE &&
		    ri.edns_version == 0 &&
		    ri.edns_flags == (mi->edns_flags & DNS_EDNS_DO));

	/* the same, built in place over a copy of the query */
	inplace = fuzz_dup(NULL, len > need ? len : need);
	memcpy(inplace, m, len);
	assert(dns_build_response(inplace, len > need ? len : need, inplace,
	    len, mi, rcode) == need);
	assert(memcmp(inplace, out, need) == 0);
	free(inplace);

	if (mi->qdcount == 0) {
		assert(dns_add_answer(out, cap, n, DNS_TYPE_A, 60, a4, 4) == 0);
		free(out);
		return;
	}
	n = dns_add_answer(out, cap, n, DNS_TYPE_A, 60, a4, 4);
	assert(n == need + 16);
	assert(dns_add_answer(out, n + 27, n, DNS_TYPE_AAAA, 60, a16,
	    16) == 0);
	n = dns_add_answer(out, cap, n, DNS_TYPE_AAAA, 60, a16, 16);
	assert(n == cap);
	fuzz_check_same_question(out, n, m, mi, &ri);
	assert(ri.ancount == 2 && ri.arcount == (mi->has_edns ? 1 : 0));
	assert(ri.has_edns == mi->has_edns);
	/* the answers, right after the question */
	assert(memcmp(out + qend, "\xc0\x0c\x00\x01", 4) == 0);
	assert(memcmp(out + qend + 12, a4, 4) == 0);
	assert(memcmp(out + qend + 16, "\xc0\x0c\x00\x1c", 4) == 0);
	assert(memcmp(out + qend + 28, a16, 16) == 0);
	free(out);
}

/* dns_truncate() of the parsed message m to limit. */
static void
fuzz_truncate(const uint8_t *m, size_t len, const struct dns_info *mi,
    size_t limit)
{
	struct dns_info	 ti;
	uint8_t		*out;
	size_t		 want, n;

	if (len <= limit)
		want = len;
	else if (limit < DNS_HDR_LEN)
		want = 0;
	else if (mi->question_end <= limit)
		want = mi->question_end;
	else
		want = DNS_HDR_LEN;
	out = fuzz_dup(NULL, want);
	if (want > 0)
		assert(dns_truncate(out, want - 1, m, len, mi, limit) == 0);
	n = dns_truncate(out, want, m, len, mi, limit);
	assert(n == want);
	if (n == 0) {
		free(out);
		return;
	}
	assert(n <= limit);
	fuzz_check_same_question(out, n, m, mi, &ti);
	if (n == len)
		assert(memcmp(out, m, n) == 0);
	else {
		assert(ti.tc && ti.ancount == 0 && ti.nscount == 0 &&
		    ti.arcount == 0 && !ti.has_edns);
		assert(ti.qdcount == (n == DNS_HDR_LEN ? 0 : mi->qdcount));
		assert(ti.qr == mi->qr && ti.opcode == mi->opcode &&
		    ti.rd == mi->rd && ti.ra == mi->ra &&
		    ti.rcode == mi->rcode);
		assert(memcmp(out + DNS_HDR_LEN, m + DNS_HDR_LEN,
		    n - DNS_HDR_LEN) == 0);
	}
	free(out);
}

/* The input as the text of a name: encode, decode, encode must agree. */
static void
fuzz_text(const uint8_t *data, size_t size)
{
	char	text[FUZZ_TEXT_MAX], back[FUZZ_TEXT_MAX];
	uint8_t	wire[DNS_NAME_WIRE_MAX], wire2[DNS_NAME_WIRE_MAX];
	size_t	i, wl;

	for (i = 0; i < size && i < sizeof(text) - 1 && data[i] != 0; i++)
		text[i] = (char)data[i];
	text[i] = '\0';
	if ((wl = dns_name_encode(text, wire, sizeof(wire))) == 0) {
		assert(!dns_name_has_suffix(text, ""));
		return;
	}
	assert(wl <= DNS_NAME_WIRE_MAX && wire[wl - 1] == 0);
	assert(dns_name_decode(wire, wl, 0, back, sizeof(back), NULL));
	assert(dns_name_encode(back, wire2, sizeof(wire2)) == wl);
	assert(memcmp(wire, wire2, wl) == 0);
	assert(dns_name_has_suffix(text, back) &&
	    dns_name_has_suffix(back, text));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_info	 mi, mi2;
	const char	*why = NULL;
	uint8_t		*msg;
	size_t		 off, limit;

	msg = fuzz_dup(data, size);
	for (off = 0; off < size; off++)
		(void)fuzz_name_at(msg, size, off, false);
	fuzz_text(data, size);

	if (!dns_parse(msg, size, &mi, &why)) {
		assert(why != NULL && why[0] != '\0');
		assert(!dns_parse(msg, size, NULL, NULL));
		free(msg);
		return 0;
	}
	assert(dns_parse(msg, size, NULL, NULL));
	assert(dns_parse(msg, size, &mi2, NULL));
	assert(memcmp(&mi, &mi2, sizeof(mi)) == 0);
	assert(mi.id == dns_get_id(msg));
	assert(mi.question_end >= DNS_HDR_LEN && mi.question_end <= size);
	if (mi.qdcount == 0)
		assert(mi.qname[0] == '\0' && mi.question_end == DNS_HDR_LEN);
	assert(dns_udp_limit(&mi) >= DNS_UDP_MIN);
	fuzz_walk(msg, size, &mi);

	fuzz_response(msg, size, &mi);

	limit = (size_t)(mi.id >> 4);
	fuzz_truncate(msg, size, &mi, limit);
	fuzz_truncate(msg, size, &mi, DNS_UDP_MIN);
	fuzz_truncate(msg, size, &mi, dns_udp_limit(&mi));
	fuzz_truncate(msg, size, &mi, size - 1);
	fuzz_truncate(msg, size, &mi, mi.question_end);
	fuzz_truncate(msg, size, &mi, mi.question_end - 1);
	fuzz_truncate(msg, size, &mi, DNS_HDR_LEN - 1);

	/* a new ID, and back */
	dns_set_id(msg, (uint16_t)~mi.id);
	assert(dns_get_id(msg) == (uint16_t)~mi.id);
	assert(dns_parse(msg, size, &mi2, NULL) && mi2.id == (uint16_t)~mi.id);
	free(msg);
	return 0;
}
