/*
 * route.c - policy routing for [route] auto: the routes of sluice's table
 * and the rules that lead into it, over rtnetlink with libmnl (see route.h
 * for what is installed and why).
 *
 * route_up() works as a reconciliation, so that a restart never opens a
 * gap in a kill switch left behind: it builds the list of entries it
 * wants, adds them (a route replaces one of the same prefix and metric, a
 * rule that exists already is kept), and then dumps the rules and routes
 * that are sluice's and deletes those not in the list.  route_down() is
 * the same prune with an empty list.  A dumped entry is deleted by sending
 * the dumped message back as RTM_DELRULE / RTM_DELROUTE, so exactly that
 * entry goes, whatever attributes it has.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "log.h"
#include "route.h"

#define ROUTE_NL_RBUF		32768	/* fits a dump part of any size */
#define ROUTE_NL_SBUF		1024	/* one request */
#define ROUTE_SUPPRESS_NONE	UINT32_MAX	/* no suppress_prefixlength */
#define ROUTE_ATTR_MAX		64	/* above FRA_MAX and RTA_MAX */
#define ROUTE_DESC_MAX		160

enum route_kind {
	ROUTE_KIND_RULE,
	ROUTE_KIND_ROUTE,
};

/*
 * One rule or route, by the fields sluice sets; two entries are the same
 * when these are (route_entry_same).  Parsed from dumps, built for adds.
 */
struct route_entry {
	enum route_kind		kind;
	int			family;
	uint32_t		prio;		/* rule priority, route metric */
	uint32_t		table;
	uint8_t			type;		/* RTN_*, or FR_ACT_* of a rule */
	struct route_cidr	dst;		/* prefix 0: any */
	uint8_t			src_len;	/* 0 for ours */
	uint8_t			tos;		/* 0 for ours */
	unsigned		oif;		/* unicast route: the device */
	uint32_t		fwmark;		/* rule: fwmark (mask all ones) */
	uint32_t		fwmask;
	bool			invert;		/* rule: "not" */
	uint32_t		suppress;	/* rule: suppress_prefixlength */
	int			proto;		/* rtm_protocol/FRA_PROTOCOL, -1 none */
	bool			skip;		/* desired but not installed */
	bool			matched;	/* prune: seen in the dump */
};

struct route_nl {
	struct mnl_socket	*sock;
	unsigned		 portid;
	unsigned		 seq;
	char			*rbuf;
	char			 sbuf[ROUTE_NL_SBUF];
	char			 why[200];	/* the kernel's extended ack text */
};

/* One dump or request in flight: the data callback and its argument. */
struct route_talk {
	struct route_nl		*nl;
	mnl_cb_t		 cb;
	void			*arg;
};

/* A dumped entry of sluice's, with a copy of its message. */
struct route_found {
	struct route_entry	 e;
	struct nlmsghdr		*nlh;
};

struct route_dump {
	const struct route_options *o;
	enum route_kind		 kind;
	struct route_found	*v;
	size_t			 n, cap;
	bool			 nomem;
};

struct route_attrs {
	const struct nlattr	*tb[ROUTE_ATTR_MAX];
};

/* ---- networks ------------------------------------------------------------ */

static int
route_family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

static const char *
route_family_name(int family)
{
	return family == AF_INET ? "ipv4" : "ipv6";
}

/* Clear the host bits of c. */
static void
route_cidr_mask(struct route_cidr *c)
{
	uint8_t *b;
	int i, len, bits = c->prefix;

	if (c->family == AF_INET) {
		b = (uint8_t *)&c->addr.v4;
		len = 4;
	} else {
		b = (uint8_t *)&c->addr.v6;
		len = 16;
	}
	for (i = 0; i < len; i++) {
		if (bits >= 8)
			bits -= 8;
		else {
			b[i] &= (uint8_t)(0xff00 >> bits);
			bits = 0;
		}
	}
}

static bool
route_cidr_same(const struct route_cidr *a, const struct route_cidr *b)
{
	if (a->family != b->family || a->prefix != b->prefix)
		return false;
	if (a->family == AF_INET)
		return a->addr.v4.s_addr == b->addr.v4.s_addr;
	return memcmp(&a->addr.v6, &b->addr.v6, sizeof(a->addr.v6)) == 0;
}

/* One "addr[/len]" token; false if malformed. */
static bool
route_parse_cidr(const char *tok, struct route_cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(tok, '/'), *p;
	size_t alen = slash != NULL ? (size_t)(slash - tok) : strlen(tok);
	int prefix = -1;

	memset(c, 0, sizeof(*c));
	if (alen == 0 || alen >= sizeof(addr))
		return false;
	memcpy(addr, tok, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, &c->addr.v4) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &c->addr.v6) == 1)
		c->family = AF_INET6;
	else
		return false;
	if (slash != NULL) {
		p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return false;
		for (prefix = 0; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return false;
			prefix = prefix * 10 + (*p - '0');
		}
		if (prefix > route_family_bits(c->family))
			return false;
	}
	c->prefix = prefix >= 0 ? prefix : route_family_bits(c->family);
	route_cidr_mask(c);
	return true;
}

bool
route_parse_cidrs(const char *s, struct route_cidr *out, size_t max,
    size_t *n, char *err, size_t errlen)
{
	static const char sep[] = ", \t\r\n";
	char tok[INET6_ADDRSTRLEN + 8];
	size_t len;

	*n = 0;
	for (;;) {
		s += strspn(s, sep);
		if (*s == '\0')
			return true;
		len = strcspn(s, sep);
		if (len >= sizeof(tok)) {
			snprintf(err, errlen, "`%.*s...': not a network "
			    "(address/length)", 40, s);
			return false;
		}
		memcpy(tok, s, len);
		tok[len] = '\0';
		s += len;
		if (*n == max) {
			snprintf(err, errlen, "`%s': more than %zu networks",
			    tok, max);
			return false;
		}
		if (!route_parse_cidr(tok, &out[*n])) {
			snprintf(err, errlen, "`%s': not an IPv4 or IPv6 "
			    "network (address/length)", tok);
			return false;
		}
		(*n)++;
	}
}

const char *
route_cidr_format(const struct route_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, &c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%d", a, c->prefix);
	return buf;
}

/* The proxy's address as a host network (an IPv4-mapped one as IPv4). */
static bool
route_cidr_of_sockaddr(const struct sockaddr *sa, struct route_cidr *c)
{
	const struct sockaddr_in6 *s6;

	memset(c, 0, sizeof(*c));
	if (sa->sa_family == AF_INET) {
		c->family = AF_INET;
		c->addr.v4 = ((const struct sockaddr_in *)sa)->sin_addr;
		c->prefix = 32;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		c->family = AF_INET;
		memcpy(&c->addr.v4, &s6->sin6_addr.s6_addr[12], 4);
		c->prefix = 32;
		return true;
	}
	c->family = AF_INET6;
	c->addr.v6 = s6->sin6_addr;
	c->prefix = 128;
	return true;
}

/* ---- options --------------------------------------------------------------- */

static int
route_check_cidrs(const char *what, const struct route_cidr *v, size_t n,
    char *err, size_t errlen)
{
	size_t i;

	if (n > 0 && v == NULL) {
		snprintf(err, errlen, "route: %s: no list", what);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((v[i].family != AF_INET && v[i].family != AF_INET6) ||
		    v[i].prefix < 0 ||
		    v[i].prefix > route_family_bits(v[i].family)) {
			snprintf(err, errlen, "route: %s: entry %zu is not a "
			    "network", what, i + 1);
			return -1;
		}
	}
	return 0;
}

int
route_check(const struct route_options *o, char *err, size_t errlen)
{
	struct route_cidr c;

	if (o->table == RT_TABLE_UNSPEC || (o->table >= RT_TABLE_COMPAT &&
	    o->table <= RT_TABLE_LOCAL)) {
		snprintf(err, errlen, "route: table %u is one of the kernel's "
		    "(0, 252..255): sluice needs a table of its own",
		    o->table);
		return -1;
	}
	if (o->priority < 1 || o->priority > ROUTE_PRIORITY_MAX) {
		snprintf(err, errlen, "route: priority %u out of range 1..%u "
		    "(sluice's rules take %u priorities, all before the main "
		    "table's rule at 32766)", o->priority, ROUTE_PRIORITY_MAX,
		    ROUTE_NPRIORITY);
		return -1;
	}
	if (o->fwmark == 0) {
		snprintf(err, errlen, "route: fwmark 0: sluice's own sockets "
		    "need a mark to stay out of the tunnel");
		return -1;
	}
	if (o->tun_name != NULL && (o->tun_name[0] == '\0' ||
	    strlen(o->tun_name) >= IFNAMSIZ)) {
		snprintf(err, errlen, "route: bad TUN device name");
		return -1;
	}
	if (o->proxy != NULL && !route_cidr_of_sockaddr(o->proxy, &c)) {
		snprintf(err, errlen, "route: the proxy's address is neither "
		    "IPv4 nor IPv6");
		return -1;
	}
	if (route_check_cidrs("include", o->include, o->ninclude, err,
	    errlen) == -1 ||
	    route_check_cidrs("exclude", o->exclude, o->nexclude, err,
	    errlen) == -1)
		return -1;
	return 0;
}

/* ---- netlink ------------------------------------------------------------- */

static void
route_nl_close(struct route_nl *nl)
{
	if (nl->sock != NULL) {
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
	}
	free(nl->rbuf);
	nl->rbuf = NULL;
}

static int
route_nl_open(struct route_nl *nl, char *err, size_t errlen)
{
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	if ((nl->rbuf = malloc(ROUTE_NL_RBUF)) == NULL) {
		snprintf(err, errlen, "route: out of memory");
		return -1;
	}
	if ((nl->sock = mnl_socket_open(NETLINK_ROUTE)) == NULL ||
	    mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) == -1) {
		snprintf(err, errlen, "route: rtnetlink socket: %s",
		    strerror(errno));
		route_nl_close(nl);
		return -1;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)getpid() << 8;
	/* the kernel's reason in errors, without an echo of the request;
	 * dumps filtered by the kernel (Linux >= 4.20); all optional */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one,
	    sizeof(one));
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one,
	    sizeof(one));
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_GET_STRICT_CHK, &one,
	    sizeof(one));
	return 0;
}

static int
route_nl_ack_attr_cb(const struct nlattr *a, void *arg)
{
	struct route_nl *nl = arg;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
		snprintf(nl->why, sizeof(nl->why), "%s", mnl_attr_get_str(a));
		/* no trailing newline or period in our messages */
		nl->why[strcspn(nl->why, "\n")] = '\0';
	}
	return MNL_CB_OK;
}

/* The extended ack of an error or a dump's end, into nl->why. */
static void
route_nl_ack_text(struct route_nl *nl, const struct nlmsghdr *nlh,
    size_t hdrlen)
{
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return;
	(void)mnl_attr_parse(nlh, (unsigned)hdrlen, route_nl_ack_attr_cb, nl);
}

static int
route_nl_error_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct route_talk *t = arg;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error == 0)
		return MNL_CB_STOP;	/* the ack */
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	route_nl_ack_text(t->nl, nlh, off);
	errno = -e->error;
	return MNL_CB_ERROR;
}

static int
route_nl_done_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct route_talk *t = arg;
	int e;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(e))
		return MNL_CB_STOP;
	memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
	if (e >= 0)
		return MNL_CB_STOP;
	route_nl_ack_text(t->nl, nlh, sizeof(e));
	errno = -e;
	return MNL_CB_ERROR;
}

static int
route_nl_data_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct route_talk *t = arg;

	return t->cb != NULL ? t->cb(nlh, t->arg) : MNL_CB_OK;
}

/* A request in nl->sbuf of this type, with NLM_F_REQUEST and flags. */
static struct nlmsghdr *
route_nl_msg(struct route_nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->sbuf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/*
 * Send nlh (with NLM_F_ACK or NLM_F_DUMP) and read the answers up to its
 * ack or the dump's end, handing each data message to cb.  0, or -1 with
 * errno (the kernel's reason, if any, in nl->why).
 */
static int
route_nl_talk(struct route_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb,
    void *arg)
{
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {	/* libmnl takes no const */
		[NLMSG_ERROR] = route_nl_error_cb,
		[NLMSG_DONE] = route_nl_done_cb,
	};
	struct route_talk t = { nl, cb, arg };
	ssize_t len;
	int rc;

	nl->why[0] = '\0';
	nlh->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) == -1)
		return -1;
	for (;;) {
		len = mnl_socket_recvfrom(nl->sock, nl->rbuf, ROUTE_NL_RBUF);
		if (len == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		rc = mnl_cb_run2(nl->rbuf, (size_t)len, nlh->nlmsg_seq,
		    nl->portid, route_nl_data_cb, &t, ctl, NLMSG_MIN_TYPE);
		if (rc == MNL_CB_ERROR)
			return -1;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

/* "what: strerror[: kernel's reason][ (hint)]" into err, from errno. */
static void
route_nl_err(const struct route_nl *nl, const char *what, char *err,
    size_t errlen)
{
	int e = errno;

	snprintf(err, errlen, "route: %s: %s%s%s%s", what, strerror(e),
	    nl->why[0] != '\0' ? ": " : "", nl->why,
	    e == EPERM ? " (routing needs CAP_NET_ADMIN)" : "");
	errno = e;
}

/* ---- entries ------------------------------------------------------------- */

static bool
route_entry_same(const struct route_entry *a, const struct route_entry *b)
{
	if (a->kind != b->kind || a->family != b->family ||
	    a->prio != b->prio || a->table != b->table ||
	    a->type != b->type || a->src_len != b->src_len ||
	    a->tos != b->tos || !route_cidr_same(&a->dst, &b->dst))
		return false;
	if (a->kind == ROUTE_KIND_ROUTE)
		return a->type != RTN_UNICAST || a->oif == b->oif;
	return a->invert == b->invert && a->fwmark == b->fwmark &&
	    a->fwmask == b->fwmask && a->suppress == b->suppress;
}

/* "rule 14872 not fwmark 0x5cf lookup 1487 (ipv4)", for logs and errors. */
static const char *
route_entry_format(const struct route_entry *e, const char *tun,
    char *buf, size_t len)
{
	char dst[ROUTE_CIDR_STRLEN], sel[ROUTE_CIDR_STRLEN + 48] = "";
	char tbl[16];

	if (e->kind == ROUTE_KIND_ROUTE) {
		snprintf(buf, len, "route %s%s%s%s table %u metric %u (%s)",
		    e->type == RTN_UNREACHABLE ? "unreachable " : "",
		    route_cidr_format(&e->dst, dst, sizeof(dst)),
		    e->type == RTN_UNICAST ? " dev " : "",
		    e->type == RTN_UNICAST ? (tun != NULL ? tun : "?") : "",
		    e->table, e->prio, route_family_name(e->family));
		return buf;
	}
	if (e->dst.prefix > 0)
		snprintf(sel, sizeof(sel), " to %s",
		    route_cidr_format(&e->dst, dst, sizeof(dst)));
	if (e->fwmark != 0)
		snprintf(sel + strlen(sel), sizeof(sel) - strlen(sel),
		    " %sfwmark 0x%x", e->invert ? "not " : "", e->fwmark);
	if (e->table == RT_TABLE_MAIN)
		snprintf(tbl, sizeof(tbl), "main");
	else
		snprintf(tbl, sizeof(tbl), "%u", e->table);
	snprintf(buf, len, "rule %u%s lookup %s%s (%s)", e->prio,
	    sel[0] != '\0' ? sel : " from all", tbl,
	    e->suppress != ROUTE_SUPPRESS_NONE ? " suppress_prefixlength 0" :
	    "", route_family_name(e->family));
	return buf;
}

static void
route_put_addr(struct nlmsghdr *nlh, uint16_t type, const struct route_cidr *c)
{
	if (c->family == AF_INET)
		mnl_attr_put(nlh, type, sizeof(c->addr.v4), &c->addr.v4);
	else
		mnl_attr_put(nlh, type, sizeof(c->addr.v6), &c->addr.v6);
}

/* Add e: a route replaces one of the same prefix and metric; a rule that
 * exists already is left as it is.  0 added, 1 there already, or -1 with
 * errno. */
static int
route_entry_add(struct route_nl *nl, const struct route_entry *e)
{
	struct nlmsghdr *nlh;
	struct fib_rule_hdr *frh;
	struct rtmsg *rtm;

	if (e->kind == ROUTE_KIND_ROUTE) {
		nlh = route_nl_msg(nl, RTM_NEWROUTE,
		    NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = (uint8_t)e->family;
		rtm->rtm_dst_len = (uint8_t)e->dst.prefix;
		rtm->rtm_table = e->table < 256 ? (uint8_t)e->table :
		    RT_TABLE_UNSPEC;
		rtm->rtm_protocol = ROUTE_PROTOCOL;
		rtm->rtm_type = e->type;
		rtm->rtm_scope = e->type == RTN_UNICAST &&
		    e->family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
		mnl_attr_put_u32(nlh, RTA_TABLE, e->table);
		if (e->dst.prefix > 0)
			route_put_addr(nlh, RTA_DST, &e->dst);
		mnl_attr_put_u32(nlh, RTA_PRIORITY, e->prio);
		if (e->type == RTN_UNICAST)
			mnl_attr_put_u32(nlh, RTA_OIF, e->oif);
		return route_nl_talk(nl, nlh, NULL, NULL);
	}
	nlh = route_nl_msg(nl, RTM_NEWRULE,
	    NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (uint8_t)e->family;
	frh->action = e->type;
	frh->table = e->table < 256 ? (uint8_t)e->table : RT_TABLE_UNSPEC;
	frh->dst_len = (uint8_t)e->dst.prefix;
	frh->flags = e->invert ? FIB_RULE_INVERT : 0;
	mnl_attr_put_u32(nlh, FRA_PRIORITY, e->prio);
	mnl_attr_put_u32(nlh, FRA_TABLE, e->table);
	/* an older kernel ignores it; route.h says how ours are found then */
	mnl_attr_put_u8(nlh, FRA_PROTOCOL, ROUTE_PROTOCOL);
	if (e->dst.prefix > 0)
		route_put_addr(nlh, FRA_DST, &e->dst);
	if (e->fwmark != 0) {
		mnl_attr_put_u32(nlh, FRA_FWMARK, e->fwmark);
		mnl_attr_put_u32(nlh, FRA_FWMASK, e->fwmask);
	}
	if (e->suppress != ROUTE_SUPPRESS_NONE)
		mnl_attr_put_u32(nlh, FRA_SUPPRESS_PREFIXLEN, e->suppress);
	if (route_nl_talk(nl, nlh, NULL, NULL) == -1)
		return errno == EEXIST ? 1 : -1;
	return 0;
}

static int
route_attr_cb(const struct nlattr *a, void *arg)
{
	struct route_attrs *ra = arg;
	uint16_t type = mnl_attr_get_type(a);

	if (type < ROUTE_ATTR_MAX)
		ra->tb[type] = a;
	return MNL_CB_OK;
}

static uint32_t
route_attr_u32(const struct nlattr *a, uint32_t dflt)
{
	if (a == NULL || mnl_attr_validate(a, MNL_TYPE_U32) == -1)
		return dflt;
	return mnl_attr_get_u32(a);
}

/* dst of the given prefix length from an address attribute. */
static bool
route_attr_cidr(const struct nlattr *a, int family, int prefix,
    struct route_cidr *c)
{
	size_t alen = family == AF_INET ? 4 : 16;

	memset(c, 0, sizeof(*c));
	c->family = family;
	c->prefix = prefix;
	if (prefix > route_family_bits(family))
		return false;
	if (a == NULL)
		return prefix == 0;
	if (mnl_attr_get_payload_len(a) != alen)
		return false;
	memcpy(&c->addr, mnl_attr_get_payload(a), alen);
	return true;
}

/* Parse a dumped rule; false if it is not one of ours for o. */
static bool
route_rule_parse(const struct nlmsghdr *nlh, const struct route_options *o,
    struct route_entry *e)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct route_attrs ra;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*frh) ||
	    (frh->family != AF_INET && frh->family != AF_INET6))
		return false;
	memset(&ra, 0, sizeof(ra));
	if (mnl_attr_parse(nlh, sizeof(*frh), route_attr_cb, &ra) < 0)
		return false;
	memset(e, 0, sizeof(*e));
	e->kind = ROUTE_KIND_RULE;
	e->family = frh->family;
	e->prio = route_attr_u32(ra.tb[FRA_PRIORITY], 0);
	e->table = route_attr_u32(ra.tb[FRA_TABLE], frh->table);
	e->type = frh->action;
	e->src_len = frh->src_len;
	e->tos = frh->tos;
	e->invert = (frh->flags & FIB_RULE_INVERT) != 0;
	e->fwmark = route_attr_u32(ra.tb[FRA_FWMARK], 0);
	e->fwmask = route_attr_u32(ra.tb[FRA_FWMASK], 0);
	e->suppress = route_attr_u32(ra.tb[FRA_SUPPRESS_PREFIXLEN],
	    ROUTE_SUPPRESS_NONE);
	e->proto = -1;
	if (ra.tb[FRA_PROTOCOL] != NULL &&
	    mnl_attr_validate(ra.tb[FRA_PROTOCOL], MNL_TYPE_U8) == 0)
		e->proto = mnl_attr_get_u8(ra.tb[FRA_PROTOCOL]);
	if (!route_attr_cidr(ra.tb[FRA_DST], e->family, frh->dst_len,
	    &e->dst))
		return false;
	if (e->prio < o->priority || e->prio >= o->priority + ROUTE_NPRIORITY)
		return false;
	if (e->proto != -1)
		return e->proto == ROUTE_PROTOCOL;
	/* a kernel that keeps no protocol: by table */
	return e->table == RT_TABLE_MAIN || e->table == o->table;
}

/* Parse a dumped route; false if it is not one of ours for o. */
static bool
route_route_parse(const struct nlmsghdr *nlh, const struct route_options *o,
    struct route_entry *e)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_attrs ra;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm) ||
	    (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) ||
	    rtm->rtm_protocol != ROUTE_PROTOCOL ||
	    (rtm->rtm_flags & RTM_F_CLONED))
		return false;
	memset(&ra, 0, sizeof(ra));
	if (mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, &ra) < 0)
		return false;
	memset(e, 0, sizeof(*e));
	e->kind = ROUTE_KIND_ROUTE;
	e->family = rtm->rtm_family;
	e->table = route_attr_u32(ra.tb[RTA_TABLE], rtm->rtm_table);
	e->prio = route_attr_u32(ra.tb[RTA_PRIORITY], 0);
	e->type = rtm->rtm_type;
	e->src_len = rtm->rtm_src_len;
	e->tos = rtm->rtm_tos;
	e->oif = route_attr_u32(ra.tb[RTA_OIF], 0);
	e->suppress = ROUTE_SUPPRESS_NONE;
	e->proto = rtm->rtm_protocol;
	if (!route_attr_cidr(ra.tb[RTA_DST], e->family, rtm->rtm_dst_len,
	    &e->dst))
		return false;
	return e->table == o->table;
}

static int
route_dump_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct route_dump *d = arg;
	struct route_found *f;
	struct route_entry e;
	bool ours;

	if (d->kind == ROUTE_KIND_RULE)
		ours = nlh->nlmsg_type == RTM_NEWRULE &&
		    route_rule_parse(nlh, d->o, &e);
	else
		ours = nlh->nlmsg_type == RTM_NEWROUTE &&
		    route_route_parse(nlh, d->o, &e);
	if (!ours)
		return MNL_CB_OK;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		if ((f = reallocarray(d->v, cap, sizeof(*f))) == NULL) {
			d->nomem = true;
			return MNL_CB_OK;
		}
		d->v = f;
		d->cap = cap;
	}
	f = &d->v[d->n];
	if ((f->nlh = malloc(nlh->nlmsg_len)) == NULL) {
		d->nomem = true;
		return MNL_CB_OK;
	}
	memcpy(f->nlh, nlh, nlh->nlmsg_len);
	f->e = e;
	d->n++;
	return MNL_CB_OK;
}

static void
route_dump_clear(struct route_dump *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		free(d->v[i].nlh);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

/*
 * Dump sluice's rules or routes of a family into d.  0; 1 when the kernel
 * has no such family; -1 with err.
 */
static int
route_dump(struct route_nl *nl, const struct route_options *o,
    enum route_kind kind, int family, struct route_dump *d, char *err,
    size_t errlen)
{
	struct nlmsghdr *nlh;
	struct fib_rule_hdr *frh;
	struct rtmsg *rtm;
	char what[64];

	memset(d, 0, sizeof(*d));
	d->o = o;
	d->kind = kind;
	if (kind == ROUTE_KIND_RULE) {
		nlh = route_nl_msg(nl, RTM_GETRULE, NLM_F_DUMP);
		frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
		frh->family = (uint8_t)family;
	} else {
		/* with strict checking the kernel filters by table and
		 * protocol; without, it ignores both and we filter */
		nlh = route_nl_msg(nl, RTM_GETROUTE, NLM_F_DUMP);
		rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
		rtm->rtm_family = (uint8_t)family;
		rtm->rtm_protocol = ROUTE_PROTOCOL;
		mnl_attr_put_u32(nlh, RTA_TABLE, o->table);
	}
	if (route_nl_talk(nl, nlh, route_dump_cb, d) == -1) {
		if (errno == EAFNOSUPPORT || errno == EOPNOTSUPP) {
			route_dump_clear(d);
			return 1;
		}
		if (kind == ROUTE_KIND_ROUTE && errno == ENOENT) {
			route_dump_clear(d);	/* the table does not exist */
			return 0;
		}
		snprintf(what, sizeof(what), "list %s %s",
		    route_family_name(family),
		    kind == ROUTE_KIND_RULE ? "rules" : "routes");
		route_nl_err(nl, what, err, errlen);
		route_dump_clear(d);
		return -1;
	}
	if (d->nomem) {
		snprintf(err, errlen, "route: out of memory");
		route_dump_clear(d);
		return -1;
	}
	return 0;
}

/* Whether the kernel has this family's policy routing (IPv6 may be off). */
static int
route_family_ok(struct route_nl *nl, const struct route_options *o,
    int family, bool *ok, char *err, size_t errlen)
{
	struct route_dump d;
	int rc;

	if ((rc = route_dump(nl, o, ROUTE_KIND_RULE, family, &d, err,
	    errlen)) == -1)
		return -1;
	route_dump_clear(&d);
	*ok = rc == 0;
	return 0;
}

/*
 * Which of a dumped entry of ours stays.  want non-NULL (route_up): those
 * in the list, once each.  Otherwise, with keep_kill: the rules and the
 * unreachable routes; without: none.
 */
static bool
route_keeps(const struct route_entry *e, struct route_entry *want,
    size_t nwant, bool keep_kill)
{
	size_t i;

	if (want == NULL)
		return keep_kill && (e->kind == ROUTE_KIND_RULE ||
		    e->type == RTN_UNREACHABLE);
	for (i = 0; i < nwant; i++) {
		if (want[i].skip || want[i].matched ||
		    !route_entry_same(e, &want[i]))
			continue;
		want[i].matched = true;
		return true;
	}
	return false;
}

/*
 * Delete sluice's rules and routes of a family that route_keeps() does not
 * keep: rules first, so that no rule leads into a table being emptied.
 * Entries already gone are fine.  0, or -1 with err.
 */
static int
route_prune(struct route_nl *nl, const struct route_options *o, int family,
    struct route_entry *want, size_t nwant, bool keep_kill, char *err,
    size_t errlen)
{
	static const enum route_kind kinds[] = { ROUTE_KIND_RULE,
	    ROUTE_KIND_ROUTE };
	struct route_dump d;
	struct nlmsghdr *nlh;
	char desc[ROUTE_DESC_MAX], what[ROUTE_DESC_MAX + 16];
	size_t i, k;
	int rc;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if ((rc = route_dump(nl, o, kinds[k], family, &d, err,
		    errlen)) == -1)
			return -1;
		for (i = 0; i < d.n; i++) {
			if (route_keeps(&d.v[i].e, want, nwant, keep_kill))
				continue;
			nlh = d.v[i].nlh;
			nlh->nlmsg_type = kinds[k] == ROUTE_KIND_RULE ?
			    RTM_DELRULE : RTM_DELROUTE;
			nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
			route_entry_format(&d.v[i].e, o->tun_name, desc,
			    sizeof(desc));
			if (route_nl_talk(nl, nlh, NULL, NULL) == -1 &&
			    errno != ENOENT && errno != ESRCH) {
				snprintf(what, sizeof(what), "delete %s",
				    desc);
				route_nl_err(nl, what, err, errlen);
				route_dump_clear(&d);
				return -1;
			}
			log_debug("route: deleted %s", desc);
		}
		route_dump_clear(&d);
	}
	return 0;
}

/* ---- route_up and route_down ------------------------------------------- */

struct route_plan {
	struct route_entry	*v;
	size_t			 n, cap;
};

/* Append e unless the same is there already (duplicate CIDRs). */
static void
route_plan_add(struct route_plan *p, const struct route_entry *e)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (route_entry_same(&p->v[i], e))
			return;
	if (p->n < p->cap)
		p->v[p->n++] = *e;
}

static void
route_plan_route(struct route_plan *p, const struct route_options *o,
    const struct route_cidr *dst, uint8_t type, unsigned oif)
{
	struct route_entry e;

	memset(&e, 0, sizeof(e));
	e.kind = ROUTE_KIND_ROUTE;
	e.family = dst->family;
	e.table = o->table;
	e.type = type;
	e.dst = *dst;
	e.oif = type == RTN_UNICAST ? oif : 0;
	e.prio = type == RTN_UNICAST ? ROUTE_METRIC_TUN : ROUTE_METRIC_KILL;
	e.suppress = ROUTE_SUPPRESS_NONE;
	e.proto = ROUTE_PROTOCOL;
	route_plan_add(p, &e);
}

static void
route_plan_rule(struct route_plan *p, int family, uint32_t prio,
    uint32_t table, const struct route_cidr *dst, uint32_t notmark,
    uint32_t suppress)
{
	struct route_entry e;

	memset(&e, 0, sizeof(e));
	e.kind = ROUTE_KIND_RULE;
	e.family = family;
	e.prio = prio;
	e.table = table;
	e.type = FR_ACT_TO_TBL;
	if (dst != NULL)
		e.dst = *dst;
	else
		e.dst.family = family;
	if (notmark != 0) {
		e.invert = true;
		e.fwmark = notmark;
		e.fwmask = UINT32_MAX;
	}
	e.suppress = suppress;
	e.proto = ROUTE_PROTOCOL;
	route_plan_add(p, &e);
}

/*
 * The entries of one family, in the order they go in: the routes into
 * the TUN (tun_routes), the unreachable routes (kill switch), the rules.
 * Nothing when the family has no prefix to route or block.
 */
static void
route_plan_family(struct route_plan *p, const struct route_options *o,
    int family, unsigned oif, bool tun_routes)
{
	struct route_cidr any, proxy;
	size_t i, first = p->n, nprefix = 0;
	int pass;

	memset(&any, 0, sizeof(any));
	any.family = family;
	if (!tun_routes && !o->kill_switch)
		return;
	for (pass = 0; pass < 2; pass++) {
		uint8_t type = pass == 0 ? RTN_UNICAST : RTN_UNREACHABLE;

		if ((pass == 0 && !tun_routes) || (pass == 1 && !o->kill_switch))
			continue;
		if (o->ninclude == 0) {
			route_plan_route(p, o, &any, type, oif);
			continue;
		}
		for (i = 0; i < o->ninclude; i++)
			if (o->include[i].family == family)
				route_plan_route(p, o, &o->include[i], type,
				    oif);
	}
	nprefix = p->n - first;
	if (nprefix == 0)
		return;
	for (i = 0; i < o->nexclude; i++)
		if (o->exclude[i].family == family)
			route_plan_rule(p, family, o->priority, RT_TABLE_MAIN,
			    &o->exclude[i], 0, ROUTE_SUPPRESS_NONE);
	if (o->proxy != NULL && route_cidr_of_sockaddr(o->proxy, &proxy) &&
	    proxy.family == family)
		route_plan_rule(p, family, o->priority, RT_TABLE_MAIN, &proxy,
		    0, ROUTE_SUPPRESS_NONE);
	route_plan_rule(p, family, o->priority + 1, RT_TABLE_MAIN, NULL, 0, 0);
	route_plan_rule(p, family, o->priority + 2, o->table, NULL, o->fwmark,
	    ROUTE_SUPPRESS_NONE);
}

/* Mark the rest of a family's plan from index i on as not installed. */
static void
route_plan_skip(struct route_plan *p, size_t i, int family, bool tun_only)
{
	for (; i < p->n; i++)
		if (p->v[i].family == family && (!tun_only ||
		    (p->v[i].kind == ROUTE_KIND_ROUTE &&
		    p->v[i].type == RTN_UNICAST)))
			p->v[i].skip = true;
}

/*
 * Install the plan.  The first IPv6 route into the TUN failing with
 * EACCES means the TUN has IPv6 disabled: the family goes on without
 * routes into it (kill switch), or is left out (*v6_refused set).
 */
static int
route_install(struct route_nl *nl, const struct route_options *o,
    struct route_plan *p, bool *v6_refused, char *err, size_t errlen)
{
	struct route_entry *e;
	char desc[ROUTE_DESC_MAX], what[ROUTE_DESC_MAX + 8];
	size_t i;
	int rc;

	for (i = 0; i < p->n; i++) {
		e = &p->v[i];
		if (e->skip)
			continue;
		route_entry_format(e, o->tun_name, desc, sizeof(desc));
		if ((rc = route_entry_add(nl, e)) != -1) {
			log_debug("route: %s %s", rc == 0 ? "added" : "kept",
			    desc);
			continue;
		}
		if (e->family == AF_INET6 && e->kind == ROUTE_KIND_ROUTE &&
		    e->type == RTN_UNICAST && errno == EACCES) {
			log_warnx("route: %s refuses IPv6 routes (%s): IPv6 "
			    "does not go through the tunnel%s", o->tun_name,
			    nl->why[0] != '\0' ? nl->why : strerror(errno),
			    o->kill_switch ? ", the kill switch blocks it" :
			    "");
			*v6_refused = true;
			route_plan_skip(p, i, AF_INET6, o->kill_switch);
			continue;
		}
		snprintf(what, sizeof(what), "add %s", desc);
		route_nl_err(nl, what, err, errlen);
		return -1;
	}
	return 0;
}

int
route_up(const struct route_options *o, char *err, size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct route_nl nl;
	struct route_plan p;
	bool has[2] = { false, false }, routed[2] = { false, false };
	bool v6_refused = false;
	char e2[256];
	unsigned oif;
	size_t f, n;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	if (route_check(o, err, errlen) == -1)
		return -1;
	if (o->tun_name == NULL) {
		snprintf(err, errlen, "route: no TUN device");
		return -1;
	}
	if ((oif = if_nametoindex(o->tun_name)) == 0) {
		snprintf(err, errlen, "route: %s: %s", o->tun_name,
		    strerror(errno));
		return -1;
	}
	if (route_nl_open(&nl, err, errlen) == -1)
		return -1;
	/* at most: per family, 2 routes per include (or 2 defaults), the
	 * excludes, the proxy and two more rules */
	n = o->ninclude > 0 ? o->ninclude : 1;
	p.cap = 2 * (2 * n + o->nexclude + 3);
	if ((p.v = calloc(p.cap, sizeof(*p.v))) == NULL) {
		snprintf(err, errlen, "route: out of memory");
		goto out;
	}
	for (f = 0; f < 2; f++) {
		if (route_family_ok(&nl, o, families[f], &has[f], err,
		    errlen) == -1)
			goto out;
		if (!has[f]) {
			log_info("route: the kernel has no %s: left out",
			    route_family_name(families[f]));
			continue;
		}
		route_plan_family(&p, o, families[f], oif,
		    f == 0 ? o->ipv4 : o->ipv6);
	}
	if (route_install(&nl, o, &p, &v6_refused, err, errlen) == -1)
		goto fail;
	for (f = 0; f < 2; f++)
		if (has[f] && route_prune(&nl, o, families[f], p.v, p.n, false,
		    err, errlen) == -1)
			goto fail;
	for (n = 0; n < p.n; n++)
		if (!p.v[n].skip && p.v[n].kind == ROUTE_KIND_ROUTE &&
		    p.v[n].type == RTN_UNICAST)
			routed[p.v[n].family == AF_INET ? 0 : 1] = true;
	log_info("route: %s%s%s into %s (table %u, rules %u-%u, fwmark "
	    "0x%x, %zu included, %zu excluded)%s",
	    routed[0] ? "ipv4" : "", routed[0] && routed[1] ? " and " : "",
	    routed[1] ? "ipv6" : "", o->tun_name, o->table, o->priority,
	    o->priority + ROUTE_NPRIORITY - 1, o->fwmark, o->ninclude,
	    o->nexclude, o->kill_switch ? ", kill switch on" : "");
	if (!routed[0] && !routed[1])
		log_warnx("route: nothing is routed into %s", o->tun_name);
	rc = 0;
	goto out;
fail:
	/* undo, keeping what blocks if there is a kill switch */
	for (f = 0; f < 2; f++)
		if (has[f] && route_prune(&nl, o, families[f], NULL, 0,
		    o->kill_switch, e2, sizeof(e2)) == -1)
			log_warnx("%s", e2);
out:
	free(p.v);
	route_nl_close(&nl);
	return rc;
}

int
route_down(const struct route_options *o, bool keep_kill_switch, char *err,
    size_t errlen)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct route_nl nl;
	bool has;
	size_t f;
	int rc = 0;

	if (route_check(o, err, errlen) == -1 ||
	    route_nl_open(&nl, err, errlen) == -1)
		return -1;
	for (f = 0; f < 2 && rc == 0; f++) {
		if (route_family_ok(&nl, o, families[f], &has, err,
		    errlen) == -1) {
			rc = -1;
			break;
		}
		if (has && route_prune(&nl, o, families[f], NULL, 0,
		    keep_kill_switch && o->kill_switch, err, errlen) == -1)
			rc = -1;
	}
	route_nl_close(&nl);
	if (rc == -1)
		return -1;
	if (keep_kill_switch && o->kill_switch)
		log_info("route: kill switch left in place (table %u, rules "
		    "%u-%u); sluice --route-down removes it", o->table,
		    o->priority, o->priority + ROUTE_NPRIORITY - 1);
	else
		log_info("route: routes and rules removed (table %u, rules "
		    "%u-%u)", o->table, o->priority,
		    o->priority + ROUTE_NPRIORITY - 1);
	return 0;
}
