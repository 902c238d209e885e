/*
 * tunnel.c - wire the stack, the TCP flows, the UDP relay, DNS and the
 * fake-IP table together on one TUN queue, and take them apart again.
 *
 * What used to be set up twice (main.c and perf.c) lives here once; the
 * daemon with one worker, every worker process and --perf's relay path
 * all call tunnel_new().
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "tunnel.h"

struct tunnel {
	struct event_base	*base;
	const struct config	*c;
	struct upstream		*up;
	struct stack		*stack;
	struct flows		*flows;
	struct udps		*udps;
	struct dnsfwd		*dnsfwd;
	struct fakeip		*fakeip;
	bool			 own_fakeip;	/* else shared: not ours to free */
	struct dnsfwd_options	 dns;		/* points into c */
};

/* The limits of flows and of UDP associations in c. */
static void
tunnel_limits(const struct config *c, struct flows_limits *lim,
    struct udps_limits *ulim)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_flows = c->max_flows;
	lim->idle_timeout_ms = c->idle_timeout_ms;
	lim->flow_buffer = c->flow_buffer;
	lim->max_memory = c->max_memory;
	memset(ulim, 0, sizeof(*ulim));
	ulim->enable = c->udp;
	ulim->max_flows = c->udp_max_flows;
	ulim->timeout_ms = c->udp_timeout_ms;
	ulim->address_dependent =
	    c->udp_filtering == CONFIG_UDP_ADDRESS_DEPENDENT;
	ulim->allow_plain = c->udp_allow_plain;
}

/* The options of DNS in tcp and fake-ip mode (pointing into t->c). */
static void
tunnel_dns_options(struct tunnel *t)
{
	const struct config *c = t->c;
	struct dnsfwd_options *o = &t->dns;

	memset(o, 0, sizeof(*o));
	o->fake_ip = c->dns_mode == CONFIG_DNS_FAKE_IP;
	o->ports = c->dns_ports;
	o->nports = c->dns_nports;
	o->server = c->dns_server.ss_family != AF_UNSPEC ?
	    (const struct sockaddr *)&c->dns_server : NULL;
	o->timeout_ms = c->dns_timeout_ms;
	o->exclude = c->dns_exclude;
	o->fakeip = t->fakeip;
}

/*
 * Keep real addresses that lie in the fake pools out of them: the TUN's
 * own and the proxy's (a default pool of 198.18.0.0/15 holds the usual
 * TUN address 198.18.0.1).
 */
static void
tunnel_fakeip_reserve(struct fakeip *fi, const struct config *c,
    struct upstream *up)
{
	struct sockaddr_storage ss;
	char a[64];

	memset(&ss, 0, sizeof(ss));
	if (c->has_ipv4) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr = c->ipv4;
		if (fakeip_reserve(fi, (struct sockaddr *)&ss))
			log_info("dns: fake_ipv4 holds the TUN's address %s: "
			    "it is not handed out", inet_ntop(AF_INET, &c->ipv4,
			    a, sizeof(a)));
	}
	if (c->has_ipv6) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_addr = c->ipv6;
		if (fakeip_reserve(fi, (struct sockaddr *)&ss))
			log_info("dns: fake_ipv6 holds the TUN's address %s: "
			    "it is not handed out", inet_ntop(AF_INET6,
			    &c->ipv6, a, sizeof(a)));
	}
	if (up != NULL && fakeip_reserve(fi, upstream_addr(up)))
		log_warnx("dns: the proxy's address %s lies in a fake-ip pool: "
		    "it is not handed out, but pick a pool apart from real "
		    "addresses", addr_str(upstream_addr(up), a, sizeof(a)));
}

struct fakeip *
tunnel_fakeip_new(const struct config *c, struct upstream *up, bool shared)
{
	struct fakeip *fi;
	char err[CONFIG_ERR_MAX];

	if ((fi = (shared ? fakeip_new_shared : fakeip_new)(
	    &c->fake_ipv4.addr.v4, c->fake_ipv4.prefix, &c->fake_ipv6.addr.v6,
	    c->fake_ipv6.prefix, c->fake_ip_max, err, sizeof(err))) == NULL) {
		log_errorx("dns: %s", err);
		return NULL;
	}
	tunnel_fakeip_reserve(fi, c, up);
	if (c->state_file[0] != '\0' && fakeip_load(fi, c->state_file, err,
	    sizeof(err)) == -1)
		log_warnx("dns: state_file: %s", err);
	return fi;
}

/*
 * DNS per [dns] mode: tcp and fake-ip take queries from the UDP relay;
 * fake-ip also sends flows and datagrams to fake addresses by name.
 */
static int
tunnel_dns_setup(struct tunnel *t, struct fakeip *shared)
{
	const struct config *c = t->c;

	if (c->dns_mode != CONFIG_DNS_TCP && c->dns_mode != CONFIG_DNS_FAKE_IP)
		return 0;
	if (c->dns_mode == CONFIG_DNS_FAKE_IP) {
		if (shared != NULL)
			t->fakeip = shared;
		else {
			if ((t->fakeip = tunnel_fakeip_new(c, t->up,
			    false)) == NULL)
				return -1;
			t->own_fakeip = true;
		}
		flows_set_fakeip(t->flows, t->fakeip);
		udps_set_fakeip(t->udps, t->fakeip);
	}
	tunnel_dns_options(t);
	if ((t->dnsfwd = dnsfwd_new(t->base, t->stack, t->up, &t->dns)) == NULL)
		return -1;
	udps_set_take(t->udps, dnsfwd_take, t->dnsfwd);
	return 0;
}

struct tunnel *
tunnel_new(struct event_base *base, int tun_fd, bool vnet_hdr,
    const struct config *c, struct upstream *up, struct fakeip *fi,
    stack_fatal_cb fatal_cb, void *fatal_arg)
{
	struct tunnel *t;
	struct flows_limits lim;
	struct udps_limits ulim;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		log_error("tunnel: calloc");
		return NULL;
	}
	t->base = base;
	t->c = c;
	t->up = up;
	if ((t->stack = stack_new(base, tun_fd, c->mtu)) == NULL ||
	    (vnet_hdr && stack_set_vnet_hdr(t->stack) == -1))
		goto bad;
	if (fatal_cb != NULL)
		stack_set_fatal_cb(t->stack, fatal_cb, fatal_arg);
	stack_set_icmp_echo(t->stack, c->icmp == CONFIG_ICMP_LOCAL);
	tunnel_limits(c, &lim, &ulim);
	if ((t->flows = flows_new(base, t->stack, up, &lim)) == NULL ||
	    (t->udps = udps_new(base, t->stack, up, &ulim)) == NULL ||
	    tunnel_dns_setup(t, fi) == -1)
		goto bad;
	return t;
bad:
	tunnel_free(t);
	return NULL;
}

void
tunnel_free(struct tunnel *t)
{
	if (t == NULL)
		return;
	udps_free(t->udps);
	flows_free(t->flows);
	dnsfwd_free(t->dnsfwd);
	if (t->own_fakeip)
		fakeip_free(t->fakeip);
	/* let libevent finalize the bufferevents of the flows just closed */
	event_base_loop(t->base, EVLOOP_NONBLOCK);
	stack_free(t->stack);
	free(t);
}

void
tunnel_reconfigure(struct tunnel *t, struct upstream *up)
{
	struct flows_limits lim;
	struct udps_limits ulim;

	t->up = up;
	tunnel_limits(t->c, &lim, &ulim);
	flows_reconfigure(t->flows, up, &lim);
	udps_reconfigure(t->udps, up, &ulim);
	stack_set_icmp_echo(t->stack, t->c->icmp == CONFIG_ICMP_LOCAL);
	if (t->dnsfwd != NULL) {
		tunnel_dns_options(t);
		dnsfwd_reconfigure(t->dnsfwd, up, &t->dns);
	}
}

void
tunnel_set_share(struct tunnel *t, struct flows_share *fs,
    struct udps_share *us, unsigned n, unsigned self)
{
	flows_set_share(t->flows, fs, n, self);
	udps_set_share(t->udps, us, n, self);
}

struct stack *
tunnel_stack(const struct tunnel *t)
{
	return t->stack;
}

struct udps *
tunnel_udps(const struct tunnel *t)
{
	return t->udps;
}

struct fakeip *
tunnel_fakeip(const struct tunnel *t)
{
	return t->fakeip;
}

void
tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *st)
{
	memset(st, 0, sizeof(*st));
	stack_get_stats(t->stack, &st->stack);
	flows_get_stats(t->flows, &st->flows);
	udps_get_stats(t->udps, &st->udp);
	st->has_udp = true;
	if (t->dnsfwd != NULL) {
		dnsfwd_get_stats(t->dnsfwd, &st->dns);
		st->has_dns = true;
	}
	if (t->fakeip != NULL) {
		fakeip_get_stats(t->fakeip, &st->fakeip);
		st->has_fakeip = true;
	}
	upstream_get_stats(t->up, &st->up);
}

#define ADD(f)	(a->f += b->f)
#define MAX(f)	(a->f = a->f > b->f ? a->f : b->f)
#define GAUGE(f) (a->f += gauges ? b->f : 0)

void
tunnel_stats_add(struct tunnel_stats *a, const struct tunnel_stats *b,
    bool gauges)
{
	int i;

	ADD(stack.rx_packets); ADD(stack.rx_bytes); ADD(stack.rx_dropped);
	ADD(stack.rx_batches); ADD(stack.tx_packets); ADD(stack.tx_bytes);
	ADD(stack.tx_dropped); ADD(stack.ip_dropped); ADD(stack.tcp_dropped);
	ADD(stack.lwip_asserts); ADD(stack.echo_dropped);
	ADD(stack.frag_steered); ADD(stack.frag_taken);
	if (gauges) {
		MAX(stack.heap_used_pct);
		MAX(stack.seg_used_pct);
	}

	ADD(flows.accepted); ADD(flows.refused); ADD(flows.over_limit);
	ADD(flows.over_memory); ADD(flows.loops); ADD(flows.established);
	ADD(flows.bytes_up); ADD(flows.bytes_down);
	GAUGE(flows.active); GAUGE(flows.held);

	GAUGE(udp.active);
	ADD(udp.opened); ADD(udp.failed); ADD(udp.expired); ADD(udp.up);
	ADD(udp.up_bytes); ADD(udp.down); ADD(udp.down_bytes);
	ADD(udp.no_udp); ADD(udp.refused); ADD(udp.queue_full);
	ADD(udp.over_max); ADD(udp.fragmented); ADD(udp.filtered);
	ADD(udp.bad_reply); ADD(udp.send_error); ADD(udp.icmp_sent);
	ADD(udp.icmp_limited);

	ADD(dns.queries); ADD(dns.fake); ADD(dns.nodata); ADD(dns.tcp);
	ADD(dns.truncated); ADD(dns.servfail); ADD(dns.timeouts);
	ADD(dns.bad);
	GAUGE(dns.pending); GAUGE(dns.conns);
	if (gauges) {
		MAX(dns.p50_ms);
		MAX(dns.p99_ms);
	}

	/* the fake-IP table is one, seen alike by every worker */
	if (b->has_fakeip && gauges)
		a->fakeip = b->fakeip;

	ADD(up.dials); ADD(up.dial_seconds); ADD(up.tls_full);
	ADD(up.tls_resumed);
	for (i = 0; i < UPSTREAM_DIAL_BUCKETS; i++) {
		a->up.le[i] = b->up.le[i];
		ADD(up.dial_le[i]);
	}
	for (i = 0; i < UPSTREAM_FAIL_KINDS; i++)
		ADD(up.failed[i]);
	a->has_udp |= b->has_udp;
	a->has_dns |= b->has_dns;
	a->has_fakeip |= b->has_fakeip;
}

#undef ADD
#undef MAX
#undef GAUGE

void
tunnel_log_stats(const struct tunnel_stats *st,
    unsigned long long kernel_drops, const char *who)
{
	const struct stack_stats *ss = &st->stack;
	const struct flows_stats *fs = &st->flows;
	const struct udps_stats *us = &st->udp;
	const struct dnsfwd_stats *ds = &st->dns;
	const struct fakeip_stats *f4 = &st->fakeip;

	log_info("%s: flows %u active, %llu accepted, %llu refused "
	    "(%llu over max_flows, %llu over memory, %llu loops), %llu bytes "
	    "up, %llu down, %zu KiB buffered; tun rx %llu packets (%llu "
	    "dropped, %llu kernel-drops, %llu fragments-steered), tx %llu (%llu "
	    "dropped); lwip dropped %llu ip, %llu "
	    "tcp, %llu assertions, heap %u%%, segments %u%%; udp %u "
	    "associations (%llu opened, %llu failed, %llu expired), %llu "
	    "udp-up (%llu bytes), %llu udp-down (%llu bytes), dropped %llu "
	    "no-udp %llu udp-refused %llu queue-full %llu udp-over-max %llu "
	    "fragmented %llu filtered %llu bad-reply %llu send-error; icmp "
	    "%llu unreachable %llu rate-limited %llu echo-dropped; dns %llu "
	    "queries (%llu fake, %llu nodata, %llu tcp, %llu truncated, %llu "
	    "servfail, %llu timeouts, %llu bad-query), %u pending, %u "
	    "dns-conns, p50 %u ms, p99 %u ms; fake-ip %u mappings (%llu "
	    "created, %llu evicted, %llu full, %llu unmapped)",
	    who != NULL ? who : "stats",
	    fs->active, (unsigned long long)fs->accepted,
	    (unsigned long long)fs->refused, (unsigned long long)fs->over_limit,
	    (unsigned long long)fs->over_memory, (unsigned long long)fs->loops,
	    (unsigned long long)fs->bytes_up, (unsigned long long)fs->bytes_down,
	    fs->held >> 10,
	    (unsigned long long)ss->rx_packets,
	    (unsigned long long)ss->rx_dropped, kernel_drops,
	    (unsigned long long)ss->frag_steered,
	    (unsigned long long)ss->tx_packets,
	    (unsigned long long)ss->tx_dropped,
	    (unsigned long long)ss->ip_dropped,
	    (unsigned long long)ss->tcp_dropped,
	    (unsigned long long)ss->lwip_asserts, ss->heap_used_pct,
	    ss->seg_used_pct, us->active, (unsigned long long)us->opened,
	    (unsigned long long)us->failed, (unsigned long long)us->expired,
	    (unsigned long long)us->up, (unsigned long long)us->up_bytes,
	    (unsigned long long)us->down, (unsigned long long)us->down_bytes,
	    (unsigned long long)us->no_udp, (unsigned long long)us->refused,
	    (unsigned long long)us->queue_full,
	    (unsigned long long)us->over_max,
	    (unsigned long long)us->fragmented,
	    (unsigned long long)us->filtered,
	    (unsigned long long)us->bad_reply,
	    (unsigned long long)us->send_error,
	    (unsigned long long)us->icmp_sent,
	    (unsigned long long)us->icmp_limited,
	    (unsigned long long)ss->echo_dropped,
	    (unsigned long long)ds->queries, (unsigned long long)ds->fake,
	    (unsigned long long)ds->nodata, (unsigned long long)ds->tcp,
	    (unsigned long long)ds->truncated,
	    (unsigned long long)ds->servfail,
	    (unsigned long long)ds->timeouts, (unsigned long long)ds->bad,
	    ds->pending, ds->conns, ds->p50_ms, ds->p99_ms, f4->mappings,
	    (unsigned long long)f4->created, (unsigned long long)f4->evicted,
	    (unsigned long long)f4->full, (unsigned long long)f4->unmapped);
}
