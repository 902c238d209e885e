/*
 * route.h - [route] auto: send the host's traffic into the TUN with policy
 * routing over rtnetlink (libmnl), as wg-quick does, plus a kill switch.
 *
 * What route_up() installs, per address family (F = first priority, T =
 * table, M = fwmark):
 *
 *   table T:  <prefix> dev <tun> metric ROUTE_METRIC_TUN
 *             unreachable <prefix> metric ROUTE_METRIC_KILL  (kill switch)
 *             for each <prefix>: the include CIDRs of the family, or the
 *             default route (0.0.0.0/0, ::/0) when there are none
 *   rules:    F     to <exclude CIDR> lookup main	(one per CIDR)
 *             F     to <proxy address> lookup main
 *             F+1   lookup main suppress_prefixlength 0
 *             F+2   not fwmark M lookup T
 *
 * A packet that is not marked M and not excluded is looked up in main
 * without its default routes first (F+1), so directly connected networks
 * and the host's specific routes stay outside the tunnel; then in T (F+2),
 * which sends it into the TUN.  sluice's own sockets carry M (SO_MARK), so
 * they skip F+2 and leave by the main table: no loop.  The rule for the
 * proxy's address keeps other processes' traffic to it outside the tunnel
 * too, and lets replies from the proxy pass a strict reverse-path filter
 * (rp_filter looks the source up without a mark).  Nothing else is
 * changed: no sysctl, no firewall, the main table untouched.
 *
 * Kill switch.  The unreachable routes sit behind the TUN's routes in T,
 * with the highest metric.  When the TUN goes (sluice stopped or killed:
 * the device and its routes vanish with the process), the rules and the
 * unreachable routes stay, and a lookup in T ends in "unreachable" instead
 * of falling through to main: connect(2) fails at once, nothing leaks by
 * the default route.  Excluded networks, the proxy's address and the
 * networks the host routes without its default route still work.  A
 * family sluice does not route through the TUN (ipv6 false, or the TUN
 * refuses IPv6) is blocked entirely by the kill switch, unless excluded
 * (e.g. route_exclude ::/0).
 *
 * Which entries are sluice's.  Routes: in table T with protocol
 * ROUTE_PROTOCOL.  Rules: priority F..F+2 and protocol ROUTE_PROTOCOL
 * (FRA_PROTOCOL, Linux >= 4.17; on older kernels, which do not keep a
 * rule's protocol, priority F..F+2 and table main or T).  Table T is
 * sluice's alone: a route sluice adds replaces one with the same prefix
 * and metric.  Two sluice instances need different tables, priority
 * ranges and marks.
 *
 * Defaults.  Table 1487 (0x5cf): not one of the kernel's (0, 252..255),
 * nor a number other tunnel tools are known to default to (wg-quick 51820,
 * Tailscale 52, sing-box and mihomo 2022), and below 2^16 so that it prints
 * short.  Priorities 14870..14872: behind the local rule (0) and the
 * ranges of Tailscale (5210..5270) and sing-box (9000..), ahead of main
 * (32766) and of wg-quick's rules, which it numbers just below main.
 * Protocol 83 ('S'): not a number iproute2 or the kernel assign; add "83
 * sluice" to /etc/iproute2/rt_protos.d/sluice.conf to see it named.
 *
 * route_up() and route_down() need CAP_NET_ADMIN in the network namespace
 * (EPERM otherwise, said in err) and keep no socket open between calls;
 * route_up() may be called again with new options (a reload): it moves
 * the entries over without a gap.  Not thread-safe; no event loop needed.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ROUTE_TABLE_DEFAULT	1487		/* 0x5cf */
#define ROUTE_PRIORITY_DEFAULT	14870
#define ROUTE_NPRIORITY		3		/* sluice uses F..F+2 */
#define ROUTE_PRIORITY_MAX	(32766 - ROUTE_NPRIORITY)	/* F+2 < main's 32766 */
#define ROUTE_PROTOCOL		83		/* rtm_protocol, FRA_PROTOCOL */
#define ROUTE_METRIC_TUN	1024		/* the routes into the TUN */
#define ROUTE_METRIC_KILL	UINT32_MAX	/* the unreachable routes */
#define ROUTE_CIDR_STRLEN	(INET6_ADDRSTRLEN + 4)	/* "addr/len" + NUL */

/* A network: family AF_INET or AF_INET6, host bits zero. */
struct route_cidr {
	int		family;
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	} addr;
	int		prefix;		/* 0..32 or 0..128 */
};

struct route_options {
	const char	*tun_name;	/* the TUN device, up; route_up only */
	unsigned	 table;		/* ROUTE_TABLE_DEFAULT; not 0, 252..255 */
	unsigned	 priority;	/* F: 1..ROUTE_PRIORITY_MAX */
	uint32_t	 fwmark;	/* on sluice's own sockets; not 0 */
	const struct route_cidr *include;	/* none: the default routes */
	size_t		 ninclude;
	const struct route_cidr *exclude;	/* looked up in main instead */
	size_t		 nexclude;
	const struct sockaddr *proxy;	/* excluded too; NULL: none */
	bool		 kill_switch;
	bool		 ipv4;		/* route IPv4 into the TUN */
	bool		 ipv6;		/* route IPv6 into the TUN */
};

/*
 * Check the numbers of o (table, priority range, fwmark) and that its
 * CIDRs are well-formed; the TUN and the kernel are not looked at.  0, or
 * -1 with err.  route_up() and route_down() call it first.
 */
int	route_check(const struct route_options *o, char *err, size_t errlen);

/*
 * Install the routes and rules above for o, then remove every entry of
 * sluice's (see above) that is not part of them: left by an earlier run
 * that was killed, or by one with other CIDRs.  An entry that is already
 * there is kept as it is, so a kill switch left behind stays in force
 * until the new routes are in place.  Per family: IPv6 is skipped where
 * the kernel has none; when the TUN refuses IPv6 routes (disable_ipv6)
 * there are none through it, with a warning (the kill switch still
 * blocks the family).  Logs one info line of what it did.
 * 0, or -1 with err; on failure what this call added is undone as by
 * route_down(o, true, ...): with a kill switch, whatever blocks stays.
 */
int	route_up(const struct route_options *o, char *err, size_t errlen);

/*
 * Remove sluice's rules and routes for table o->table and priorities
 * o->priority..+2 (only those: what the current include and exclude lists
 * say does not matter, so a stale set goes too).  With keep_kill_switch
 * and o->kill_switch, the rules and the unreachable routes stay and only
 * the routes into the TUN go: traffic stays blocked until
 * route_down(o, false, ...) (sluice --route-down).  Idempotent: entries
 * already gone are fine.  0, or -1 with err.
 */
int	route_down(const struct route_options *o, bool keep_kill_switch,
	    char *err, size_t errlen);

/*
 * Parse a list of networks "CIDR, CIDR ..." (IPv4 or IPv6, separated by
 * commas and/or blanks; an address without /len is a host: /32, /128;
 * host bits are cleared, "10.1.2.3/8" is 10.0.0.0/8) into out[0..max-1],
 * the count in *n.  An empty list is fine (0).  false on a malformed
 * entry or more than max, with err naming the offending text.
 */
bool	route_parse_cidrs(const char *s, struct route_cidr *out, size_t max,
	    size_t *n, char *err, size_t errlen);

/* "addr/len" of c into buf (ROUTE_CIDR_STRLEN bytes suffice); buf. */
const char *route_cidr_format(const struct route_cidr *c, char *buf,
	    size_t len);

#endif
