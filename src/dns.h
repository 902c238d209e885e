/*
 * dns.h - a DNS message codec (RFC 1035, EDNS0 of RFC 6891, AAAA of RFC
 * 3596) as pure functions over bytes: parse a message, decode and encode
 * names, build a response to a query, cut a response down for UDP.
 *
 * Nothing here does I/O, allocates or keeps state.  Messages are whole DNS
 * messages: a UDP payload, or a TCP one without its 2-byte length.
 * Builders return the length written, 0 when it does not fit or the input
 * is bad; they never write past cap, and write nothing on failure unless
 * said otherwise.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HDR_LEN		12
#define DNS_NAME_WIRE_MAX	255	/* RFC 1035 2.3.4, length octets included */
#define DNS_NAME_TEXT_MAX	254	/* "a.b.c" without the root dot, plus NUL */
#define DNS_UDP_MIN		512	/* RFC 1035 4.2.1: without EDNS0 */
#define DNS_EDNS_UDP_SIZE	1232	/* the UDP size our OPT RRs offer */
#define DNS_PTR_HOPS_MAX	127	/* compression pointers in one name */

#define DNS_TYPE_A	1
#define DNS_TYPE_NS	2
#define DNS_TYPE_CNAME	5
#define DNS_TYPE_SOA	6
#define DNS_TYPE_PTR	12
#define DNS_TYPE_TXT	16
#define DNS_TYPE_AAAA	28
#define DNS_TYPE_OPT	41
#define DNS_TYPE_SVCB	64
#define DNS_TYPE_HTTPS	65
#define DNS_CLASS_IN	1
#define DNS_RCODE_NOERROR	0
#define DNS_RCODE_FORMERR	1
#define DNS_RCODE_SERVFAIL	2
#define DNS_RCODE_NXDOMAIN	3
#define DNS_RCODE_NOTIMP	4
#define DNS_RCODE_REFUSED	5

#define DNS_EDNS_DO	0x8000	/* DNSSEC OK, in dns_info's edns_flags */

/* What dns_parse() learned about a message. */
struct dns_info {
	uint16_t	id;
	bool		qr;		/* a response */
	uint8_t		opcode;
	bool		tc, rd, ra;
	uint8_t		rcode;		/* the header's 4 bits */
	uint16_t	qdcount, ancount, nscount, arcount;
	/* the first question (qdcount >= 1) */
	char		qname[DNS_NAME_TEXT_MAX];	/* text, as sent (case kept), "" for the root */
	uint16_t	qtype, qclass;
	size_t		question_end;	/* offset just past the question section */
	bool		has_edns;	/* an OPT RR in the additional section */
	uint16_t	edns_udp_size;	/* its CLASS field (the UDP payload size); 0 without */
	uint16_t	edns_flags;	/* DO bit etc. (low 16 bits of its TTL) */
	uint8_t		edns_version;
};

/*
 * Parse a whole message (a UDP payload, or a TCP one without its 2-byte
 * length): the header, every question, and every RR of the three other
 * sections (names decoded with compression; each RR's RDLENGTH checked to
 * lie within the message).  Names: compression pointers must point strictly
 * backwards (so no loops), at most 127 pointer hops, labels 1..63 octets,
 * the whole name at most 255 octets on the wire; label types 01/10 are
 * rejected.  More than one OPT RR is an error.  Trailing bytes after the
 * last RR are an error.  false with *why (static text) on a bad message.
 *
 * In detail: a pointer must lead below the start of the run of labels it
 * ends (the name's own start, or where the previous pointer led), and not
 * into the header.  An OPT RR must be in the additional section and owned
 * by the root.  With no question, qname is "" and qtype and qclass are 0.
 * A first question whose name does not fit qname as text (labels full of
 * bytes written as \DDD) is rejected too.  info and why may be NULL; *info
 * is written only on success.
 */
bool	dns_parse(const uint8_t *msg, size_t len, struct dns_info *info,
	    const char **why);

/*
 * Decode the name at off into text ("www.example.test", "" for the root;
 * a label byte that is '.', '\\' or outside 0x21..0x7e is written as \DDD
 * as in RFC 1035 zone files, so that text maps back to exactly one wire
 * name).  *next gets the offset just past the name where it started (not
 * where a pointer led).  false if malformed or the text does not fit cap.
 * Names are checked as by dns_parse(); next may be NULL.
 */
bool	dns_name_decode(const uint8_t *msg, size_t len, size_t off, char *out,
	    size_t cap, size_t *next);
/* Text to wire form (accepting the \DDD and \X escapes dns_name_decode
 * writes, and an optional trailing dot).  Its length, or 0 if bad.
 * "" and "." are the root; any other byte stands for itself.  Bad: an
 * empty label, a label over 63 octets, a name over 255, \DDD over 255,
 * a '\' without three digits or a character after it. */
size_t	dns_name_encode(const char *name, uint8_t *out, size_t cap);
/* Whether name is suffix or ends in ".suffix", ASCII case-insensitively,
 * label-wise ("a.lan" has suffix "lan", "alan" does not; "" matches all).
 * Both are compared in wire form, so escapes and a trailing dot do not
 * matter; false when either is not a valid name for dns_name_encode(). */
bool	dns_name_has_suffix(const char *name, const char *suffix);

/* The ID of a message with at least 2 bytes; set it in place. */
uint16_t dns_get_id(const uint8_t *msg);
void	 dns_set_id(uint8_t *msg, uint16_t id);

/*
 * A response to the query q (len bytes, parsed into qi): the header with
 * q's ID, QR=1, the opcode and RD copied, RA=1, the given rcode, q's first
 * question copied as it was on the wire (so case and 0x20 randomization
 * survive), and -- when q carried EDNS0 -- an OPT RR with UDP size 1232 and
 * no options.  Answers are appended with dns_add_answer().  Its length, or
 * 0 if it does not fit cap.  Used for SERVFAIL, NXDOMAIN, REFUSED and
 * NODATA (NOERROR, no answer).
 *
 * rcode goes in the header's 4 bits: a larger one gives 0.  The OPT RR
 * has the query's DO bit (RFC 3225 3), version 0 and no extended rcode.
 * out may be q (built in place).
 */
size_t	dns_build_response(uint8_t *out, size_t cap, const uint8_t *q,
	    size_t len, const struct dns_info *qi, uint8_t rcode);
/*
 * Append an answer RR for the first question (its name as a compression
 * pointer to offset 12) of type/class, ttl and rdata to a response made by
 * dns_build_response() (out holds rlen bytes): inserted before the OPT RR
 * if there is one, ANCOUNT incremented.  The new length, or 0 if it does
 * not fit cap.
 *
 * The class is the question's.  The RR goes at the end of the answer
 * section, so the authority and additional sections move down.  0 too
 * when out has other than one question or its sections do not parse.
 */
size_t	dns_add_answer(uint8_t *out, size_t cap, size_t rlen, uint16_t type,
	    uint32_t ttl, const void *rdata, uint16_t rdlen);
/*
 * Cut a response r (rlen bytes, parsed into ri) for a client that takes at
 * most limit bytes over UDP: if rlen <= limit, copy it unchanged; else the
 * header with TC=1 and AN/NS/AR counts 0, and the question section only
 * (RFC 2181 9: the client retries over TCP).  Its length, or 0 if it does
 * not fit cap.
 *
 * Should even the question section be over limit, the header alone, with
 * QDCOUNT 0 too; 0 when limit is under DNS_HDR_LEN.  out may be r.
 */
size_t	dns_truncate(uint8_t *out, size_t cap, const uint8_t *r, size_t rlen,
	    const struct dns_info *ri, size_t limit);
/* The UDP size a query's sender takes: its EDNS0 size (at least 512), or 512. */
size_t	dns_udp_limit(const struct dns_info *qi);

#endif
