/*
 * dns.c - a DNS message codec (RFC 1035, RFC 6891 EDNS0, RFC 3596 AAAA) as
 * pure functions over bytes, for relaying DNS over TCP (ID rewriting), a
 * local responder and cutting responses down to a client's UDP size.
 *
 * Nothing here does I/O, allocates or keeps state.  Every read is checked
 * against the message's length first.  Names are walked by one function,
 * dns_name_walk(), whose pointer rule (a pointer must lead below the start
 * of the run of labels it ends) makes each hop go strictly backwards, so a
 * walk ends even before the hop limit is reached.
 */
#include <string.h>

#include "dns.h"

#define DNS_FLAG_QR	0x8000
#define DNS_FLAG_TC	0x0200
#define DNS_FLAG_RD	0x0100
#define DNS_FLAG_RA	0x0080
#define DNS_OPCODE_MASK	0x7800

#define DNS_LABEL_MAX	63
#define DNS_LABEL_PTR	0xc0	/* label type 11: a compression pointer */
#define DNS_RR_FIXED	10	/* TYPE, CLASS, TTL, RDLENGTH */
#define DNS_OPT_LEN	(1 + DNS_RR_FIXED)	/* root name, no options */

/* Header field offsets. */
#define DNS_OFF_FLAGS	2
#define DNS_OFF_QDCOUNT	4
#define DNS_OFF_ANCOUNT	6
#define DNS_OFF_NSCOUNT	8
#define DNS_OFF_ARCOUNT	10

static uint16_t
dns_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
dns_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
dns_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Report a failure: set *why (when wanted) and return false. */
static bool
dns_fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return false;
}

/* Append c to the text at *o (escaped when needed); false if cap is short. */
static bool
dns_text_put(char *out, size_t cap, size_t *o, uint8_t c)
{
	size_t	n = (c == '.' || c == '\\' || c < 0x21 || c > 0x7e) ? 4 : 1;

	/* keep a byte for the NUL */
	if (cap - *o <= n)
		return false;
	if (n == 1)
		out[(*o)++] = (char)c;
	else {
		out[(*o)++] = '\\';
		out[(*o)++] = (char)('0' + c / 100);
		out[(*o)++] = (char)('0' + c / 10 % 10);
		out[(*o)++] = (char)('0' + c % 10);
	}
	return true;
}

/*
 * Walk the name at off: check it, write it as text to out (cap bytes) when
 * out is not NULL, and set *next just past it where it started.
 */
static bool
dns_name_walk(const uint8_t *msg, size_t len, size_t off, char *out,
    size_t cap, size_t *next, const char **why)
{
	size_t	pos = off, seg = off, end = 0, wire = 0, o = 0, target, i;
	int	hops = 0;
	uint8_t	c;

	if (out != NULL && cap == 0)
		return dns_fail(why, "name too long as text");
	for (;;) {
		if (pos >= len)
			return dns_fail(why, "truncated name");
		c = msg[pos];
		if ((c & DNS_LABEL_PTR) == DNS_LABEL_PTR) {
			if (len - pos < 2)
				return dns_fail(why, "truncated name");
			if (end == 0)
				end = pos + 2;
			if (++hops > DNS_PTR_HOPS_MAX)
				return dns_fail(why,
				    "too many compression pointers");
			target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
			if (target >= len)
				return dns_fail(why,
				    "compression pointer past the end");
			if (target > pos)
				return dns_fail(why,
				    "forward compression pointer");
			if (target >= seg)
				return dns_fail(why,
				    "compression pointer loop");
			if (target < DNS_HDR_LEN)
				return dns_fail(why,
				    "compression pointer into the header");
			pos = seg = target;
			continue;
		}
		if (c & DNS_LABEL_PTR)	/* 01 (or a length over 63), 10 */
			return dns_fail(why, "bad label type or length");
		if (c == 0)
			break;
		/* this label and at least the root's octet after it */
		wire += 1 + (size_t)c;
		if (wire + 1 > DNS_NAME_WIRE_MAX)
			return dns_fail(why, "name longer than 255 octets");
		if (len - pos - 1 < c)
			return dns_fail(why, "truncated name");
		if (out != NULL) {
			/* the separator is the only '.' not escaped */
			if (o > 0) {
				if (cap - o <= 1)
					return dns_fail(why,
					    "name too long as text");
				out[o++] = '.';
			}
			for (i = 1; i <= c; i++) {
				if (!dns_text_put(out, cap, &o, msg[pos + i]))
					return dns_fail(why,
					    "name too long as text");
			}
		}
		pos += 1 + (size_t)c;
	}
	if (end == 0)
		end = pos + 1;
	if (out != NULL)
		out[o] = '\0';
	if (next != NULL)
		*next = end;
	return true;
}

bool
dns_name_decode(const uint8_t *msg, size_t len, size_t off, char *out,
    size_t cap, size_t *next)
{
	if (msg == NULL || out == NULL)
		return false;
	return dns_name_walk(msg, len, off, out, cap, next, NULL);
}

static bool
dns_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t
dns_name_encode(const char *name, uint8_t *out, size_t cap)
{
	uint8_t		 wire[DNS_NAME_WIRE_MAX];
	const char	*p = name;
	size_t		 w = 0, lab, n;
	unsigned int	 v;

	if (name == NULL || out == NULL)
		return 0;
	if (strcmp(name, ".") == 0)
		p = "";
	while (*p != '\0') {
		/* room for this length octet, a label octet, the root's */
		if (w + 2 >= DNS_NAME_WIRE_MAX)
			return 0;
		lab = w++;
		n = 0;
		while (*p != '\0' && *p != '.') {
			if (*p != '\\')
				v = (unsigned char)*p++;
			else if (dns_is_digit(p[1])) {
				if (!dns_is_digit(p[2]) || !dns_is_digit(p[3]))
					return 0;
				v = (unsigned int)(p[1] - '0') * 100 +
				    (unsigned int)(p[2] - '0') * 10 +
				    (unsigned int)(p[3] - '0');
				if (v > 255)
					return 0;
				p += 4;
			} else if (p[1] != '\0') {
				v = (unsigned char)p[1];
				p += 2;
			} else
				return 0;
			if (n == DNS_LABEL_MAX || w + 1 >= DNS_NAME_WIRE_MAX)
				return 0;
			wire[w++] = (uint8_t)v;
			n++;
		}
		if (n == 0)
			return 0;
		wire[lab] = (uint8_t)n;
		if (*p == '.')
			p++;	/* a trailing one ends the loop */
	}
	wire[w++] = 0;
	if (w > cap)
		return 0;
	memcpy(out, wire, w);
	return w;
}

static uint8_t
dns_lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

bool
dns_name_has_suffix(const char *name, const char *suffix)
{
	uint8_t	nw[DNS_NAME_WIRE_MAX], sw[DNS_NAME_WIRE_MAX];
	size_t	nl, sl, at, i;

	if ((nl = dns_name_encode(name, nw, sizeof(nw))) == 0 ||
	    (sl = dns_name_encode(suffix, sw, sizeof(sw))) == 0 || sl > nl)
		return false;
	/* the suffix must start on one of name's labels */
	for (at = 0; at < nl - sl; at += 1 + nw[at])
		;
	if (at != nl - sl)
		return false;
	/* length octets are at most 63, so lowering leaves them alone */
	for (i = 0; i < sl; i++) {
		if (dns_lower(nw[at + i]) != dns_lower(sw[i]))
			return false;
	}
	return true;
}

uint16_t
dns_get_id(const uint8_t *msg)
{
	return dns_get16(msg);
}

void
dns_set_id(uint8_t *msg, uint16_t id)
{
	dns_put16(msg, id);
}

/* Skip the question at *off (name, QTYPE, QCLASS). */
static bool
dns_skip_question(const uint8_t *msg, size_t len, size_t *off,
    const char **why)
{
	if (!dns_name_walk(msg, len, *off, NULL, 0, off, why))
		return false;
	if (len - *off < 4)
		return dns_fail(why, "truncated question");
	*off += 4;
	return true;
}

/* Skip the RR at *off; *type gets its TYPE. */
static bool
dns_skip_rr(const uint8_t *msg, size_t len, size_t *off, uint16_t *type,
    const char **why)
{
	size_t	rdlen;

	if (!dns_name_walk(msg, len, *off, NULL, 0, off, why))
		return false;
	if (len - *off < DNS_RR_FIXED)
		return dns_fail(why, "truncated resource record");
	*type = dns_get16(msg + *off);
	rdlen = dns_get16(msg + *off + 8);
	*off += DNS_RR_FIXED;
	if (rdlen > len - *off)
		return dns_fail(why, "RDLENGTH past the end");
	*off += rdlen;
	return true;
}

bool
dns_parse(const uint8_t *msg, size_t len, struct dns_info *info,
    const char **why)
{
	struct dns_info	di;
	uint16_t	flags, type;
	size_t		off, rr_off, i, nrr, nfirst;

	if (msg == NULL || len < DNS_HDR_LEN)
		return dns_fail(why, "truncated header");
	memset(&di, 0, sizeof(di));
	di.id = dns_get16(msg);
	flags = dns_get16(msg + DNS_OFF_FLAGS);
	di.qr = (flags & DNS_FLAG_QR) != 0;
	di.opcode = (flags >> 11) & 0x0f;
	di.tc = (flags & DNS_FLAG_TC) != 0;
	di.rd = (flags & DNS_FLAG_RD) != 0;
	di.ra = (flags & DNS_FLAG_RA) != 0;
	di.rcode = flags & 0x0f;
	di.qdcount = dns_get16(msg + DNS_OFF_QDCOUNT);
	di.ancount = dns_get16(msg + DNS_OFF_ANCOUNT);
	di.nscount = dns_get16(msg + DNS_OFF_NSCOUNT);
	di.arcount = dns_get16(msg + DNS_OFF_ARCOUNT);

	off = DNS_HDR_LEN;
	for (i = 0; i < di.qdcount; i++) {
		if (i > 0) {
			if (!dns_skip_question(msg, len, &off, why))
				return false;
			continue;
		}
		if (!dns_name_walk(msg, len, off, di.qname, sizeof(di.qname),
		    &off, why))
			return false;
		if (len - off < 4)
			return dns_fail(why, "truncated question");
		di.qtype = dns_get16(msg + off);
		di.qclass = dns_get16(msg + off + 2);
		off += 4;
	}
	di.question_end = off;

	nfirst = (size_t)di.ancount + di.nscount;
	nrr = nfirst + di.arcount;
	for (i = 0; i < nrr; i++) {
		rr_off = off;
		if (!dns_skip_rr(msg, len, &off, &type, why))
			return false;
		if (type != DNS_TYPE_OPT)
			continue;
		if (i < nfirst)
			return dns_fail(why,
			    "OPT RR outside the additional section");
		if (di.has_edns)
			return dns_fail(why, "more than one OPT RR");
		if (msg[rr_off] != 0)
			return dns_fail(why, "OPT RR not owned by the root");
		/* root name, TYPE, then CLASS and TTL */
		di.has_edns = true;
		di.edns_udp_size = dns_get16(msg + rr_off + 3);
		di.edns_version = msg[rr_off + 6];
		di.edns_flags = dns_get16(msg + rr_off + 7);
	}
	if (off != len)
		return dns_fail(why, "trailing bytes after the last RR");
	if (info != NULL)
		*info = di;
	return true;
}

size_t
dns_build_response(uint8_t *out, size_t cap, const uint8_t *q, size_t len,
    const struct dns_info *qi, uint8_t rcode)
{
	size_t		qend = DNS_HDR_LEN, n;
	uint16_t	id, flags;

	if (out == NULL || q == NULL || qi == NULL || len < DNS_HDR_LEN ||
	    rcode > 0x0f)
		return 0;
	if (qi->qdcount > 0 && !dns_skip_question(q, len, &qend, NULL))
		return 0;
	n = qend + (qi->has_edns ? DNS_OPT_LEN : 0);
	if (n > cap)
		return 0;

	/* read what is kept from q's header before out (maybe q) changes */
	id = dns_get16(q);
	flags = dns_get16(q + DNS_OFF_FLAGS) & (DNS_OPCODE_MASK | DNS_FLAG_RD);
	flags |= DNS_FLAG_QR | DNS_FLAG_RA | rcode;
	memmove(out + DNS_HDR_LEN, q + DNS_HDR_LEN, qend - DNS_HDR_LEN);
	dns_put16(out, id);
	dns_put16(out + DNS_OFF_FLAGS, flags);
	dns_put16(out + DNS_OFF_QDCOUNT, qi->qdcount > 0 ? 1 : 0);
	dns_put16(out + DNS_OFF_ANCOUNT, 0);
	dns_put16(out + DNS_OFF_NSCOUNT, 0);
	dns_put16(out + DNS_OFF_ARCOUNT, qi->has_edns ? 1 : 0);
	if (qi->has_edns) {
		out[qend] = 0;				/* the root */
		dns_put16(out + qend + 1, DNS_TYPE_OPT);
		dns_put16(out + qend + 3, DNS_EDNS_UDP_SIZE);
		out[qend + 5] = 0;			/* extended rcode */
		out[qend + 6] = 0;			/* version */
		dns_put16(out + qend + 7, qi->edns_flags & DNS_EDNS_DO);
		dns_put16(out + qend + 9, 0);		/* RDLENGTH */
	}
	return n;
}

size_t
dns_add_answer(uint8_t *out, size_t cap, size_t rlen, uint16_t type,
    uint32_t ttl, const void *rdata, uint16_t rdlen)
{
	size_t		off = DNS_HDR_LEN, need = 2 + DNS_RR_FIXED + rdlen, i;
	size_t		nrr;
	uint16_t	ancount, qclass, t;

	if (out == NULL || (rdata == NULL && rdlen > 0) || rlen > cap ||
	    rlen < DNS_HDR_LEN || need > cap - rlen)
		return 0;
	ancount = dns_get16(out + DNS_OFF_ANCOUNT);
	if (dns_get16(out + DNS_OFF_QDCOUNT) != 1 || ancount == UINT16_MAX)
		return 0;
	if (!dns_skip_question(out, rlen, &off, NULL))
		return 0;
	qclass = dns_get16(out + off - 2);
	nrr = ancount;
	for (i = 0; i < nrr; i++) {
		if (!dns_skip_rr(out, rlen, &off, &t, NULL))
			return 0;
	}

	memmove(out + off + need, out + off, rlen - off);
	out[off] = DNS_LABEL_PTR;
	out[off + 1] = DNS_HDR_LEN;
	dns_put16(out + off + 2, type);
	dns_put16(out + off + 4, qclass);
	dns_put32(out + off + 6, ttl);
	dns_put16(out + off + 10, rdlen);
	if (rdlen > 0)
		memcpy(out + off + 12, rdata, rdlen);
	dns_put16(out + DNS_OFF_ANCOUNT, ancount + 1);
	return rlen + need;
}

size_t
dns_truncate(uint8_t *out, size_t cap, const uint8_t *r, size_t rlen,
    const struct dns_info *ri, size_t limit)
{
	size_t		n;
	uint16_t	qdcount;

	if (out == NULL || r == NULL || ri == NULL)
		return 0;
	if (rlen <= limit) {
		if (rlen > cap)
			return 0;
		memmove(out, r, rlen);
		return rlen;
	}
	if (limit < DNS_HDR_LEN || rlen < DNS_HDR_LEN ||
	    ri->question_end < DNS_HDR_LEN || ri->question_end > rlen)
		return 0;
	n = ri->question_end;
	qdcount = ri->qdcount;
	if (n > limit) {
		n = DNS_HDR_LEN;
		qdcount = 0;
	}
	if (n > cap)
		return 0;
	memmove(out, r, n);
	out[DNS_OFF_FLAGS] |= DNS_FLAG_TC >> 8;
	dns_put16(out + DNS_OFF_QDCOUNT, qdcount);
	dns_put16(out + DNS_OFF_ANCOUNT, 0);
	dns_put16(out + DNS_OFF_NSCOUNT, 0);
	dns_put16(out + DNS_OFF_ARCOUNT, 0);
	return n;
}

size_t
dns_udp_limit(const struct dns_info *qi)
{
	if (qi == NULL || !qi->has_edns || qi->edns_udp_size < DNS_UDP_MIN)
		return DNS_UDP_MIN;
	return qi->edns_udp_size;
}
