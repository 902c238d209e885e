/*
 * main.c - command line, configuration merge, start-up and shutdown.
 *
 * Order matters: everything that can fail on bad input (config, URL, proxy
 * name resolution) is checked before the TUN device is touched, and a
 * signal tears down in reverse order, so the device sluice created is gone
 * when it exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "config.h"
#include "dnsfwd.h"
#include "fakeip.h"
#include "flow.h"
#include "log.h"
#include "notify.h"
#include "metrics.h"
#include "perf.h"
#include "proc.h"
#include "route.h"
#include "stack.h"
#include "tun.h"
#include "udp.h"
#include "upstream.h"

struct main_override {
	const char	*flag;
	const char	*section;
	const char	*key;
	const char	*value;
};

/* long options that map 1:1 to a config key */
static const struct main_key_opt {
	const char	*name;
	const char	*section;
	const char	*key;
} main_key_opts[] = {
	{ "upstream",		"upstream",	"url" },
	{ "connect-timeout",	"upstream",	"connect_timeout" },
	{ "password-file",	"upstream",	"password_file" },
	{ "fwmark",		"upstream",	"fwmark" },
	{ "interface",		"upstream",	"interface" },
	{ "ca-file",		"upstream",	"ca_file" },
	{ "server-name",	"upstream",	"server_name" },
	{ "tls-verify",		"upstream",	"verify" },
	{ "client-cert",	"upstream",	"client_cert" },
	{ "client-key",		"upstream",	"client_key" },
	{ "pin-sha256",		"upstream",	"pin_sha256" },
	{ "tun",		"tun",		"name" },
	{ "mtu",		"tun",		"mtu" },
	{ "ipv4",		"tun",		"ipv4" },
	{ "ipv6",		"tun",		"ipv6" },
	{ "tun-fd",		"tun",		"fd" },
	{ "tun-offload",	"tun",		"offload" },
	{ "tun-icmp",		"tun",		"icmp" },
	{ "max-flows",		"limits",	"max_flows" },
	{ "idle-timeout",	"limits",	"idle_timeout" },
	{ "flow-buffer",	"limits",	"flow_buffer" },
	{ "max-memory",		"limits",	"max_memory" },
	{ "udp",		"udp",		"enable" },
	{ "udp-timeout",	"udp",		"timeout" },
	{ "udp-filtering",	"udp",		"filtering" },
	{ "udp-max-flows",	"udp",		"max_flows" },
	{ "udp-allow-plain",	"udp",		"allow_plain" },
	{ "dns",		"dns",		"mode" },
	{ "dns-ports",		"dns",		"ports" },
	{ "dns-server",		"dns",		"server" },
	{ "dns-timeout",	"dns",		"timeout" },
	{ "fake-ipv4",		"dns",		"fake_ipv4" },
	{ "fake-ipv6",		"dns",		"fake_ipv6" },
	{ "fake-ip-max",	"dns",		"fake_ip_max" },
	{ "dns-exclude",	"dns",		"exclude" },
	{ "dns-state-file",	"dns",		"state_file" },
	{ "auto-route",		"route",	"auto" },
	{ "route-table",	"route",	"table" },
	{ "route-priority",	"route",	"priority" },
	{ "route-include",	"route",	"include" },
	{ "route-exclude",	"route",	"exclude" },
	{ "kill-switch",	"route",	"kill_switch" },
	{ "route-up",		"route",	"up" },
	{ "route-down-hook",	"route",	"down" },
	{ "user",		"process",	"user" },
	{ "group",		"process",	"group" },
	{ "metrics",		"metrics",	"listen" },
	{ "log-level",		"log",		"level" },
};
#define MAIN_NKEY_OPTS	(sizeof(main_key_opts) / sizeof(main_key_opts[0]))

static void
main_usage(FILE *f)
{
	fprintf(f,
"usage: sluice [-c FILE] [options]\n"
"       sluice -t [-c FILE] [options]\n"
"       sluice --perf reader|writer [options]   self-benchmark (sluice --perf --help)\n"
"\n"
"Relay every TCP flow and UDP datagram routed into a TUN device through an\n"
"upstream proxy.\n"
"Options override the same keys of the configuration file.\n"
"\n"
"  -c, --config FILE         INI configuration file (see sluice.conf(5))\n"
"  -t, --check-config        validate the configuration and exit 0 or 1\n"
"      --upstream URL        proxy URL (required), one of                [upstream] url\n"
"                              socks5://[user:pass@]host[:port]      (port 1080)\n"
"                              socks5+tls://[user:pass@]host[:port]  (port 1080)\n"
"                              http://[user:pass@]host[:port]        (port 8080)\n"
"                              https://[user:pass@]host[:port]       (port 443)\n"
"      --connect-timeout DUR proxy connect + handshake limit (10s)       [upstream] connect_timeout\n"
"      --password-file FILE  proxy password: the file's first line       [upstream] password_file\n"
"                              (overrides SLUICE_PASSWORD, which overrides the URL's)\n"
"      --fwmark N            SO_MARK on proxy sockets, 0 = none (0)      [upstream] fwmark\n"
"      --interface NAME      bind proxy sockets to NAME (none)           [upstream] interface\n"
"      --ca-file FILE        TLS: CA bundle (system bundle)              [upstream] ca_file\n"
"      --server-name NAME    TLS: SNI and name to verify (URL host)      [upstream] server_name\n"
"      --tls-verify yes|no   TLS: verify the server (yes; none = no)     [upstream] verify\n"
"      --client-cert FILE    TLS: client certificate                     [upstream] client_cert\n"
"      --client-key FILE     TLS: client key                             [upstream] client_key\n"
"      --pin-sha256 PIN      TLS: server public key SHA-256 pin          [upstream] pin_sha256\n"
"      --tun NAME            TUN device, created if missing (sluice0)    [tun] name\n"
"      --mtu N               TUN MTU, 576..65535 (1500)                  [tun] mtu\n"
"      --ipv4 ADDR/PREFIX    IPv4 address of the TUN device              [tun] ipv4\n"
"      --ipv6 ADDR/PREFIX    IPv6 address of the TUN device              [tun] ipv6\n"
"      --tun-fd N            use this already-open TUN fd as it is       [tun] fd\n"
"      --tun-offload yes|no  TSO and checksum offloads on the TUN (yes)  [tun] offload\n"
"      --tun-icmp drop|local ping to any address: unanswered, or answered\n"
"                            by sluice itself (drop)                     [tun] icmp\n"
"      --max-flows N         concurrent flows, 1..16000; more SYNs get a RST (4096)\n"
"                                                                        [limits] max_flows\n"
"      --idle-timeout DUR    close flows idle this long, 0 = never (5m)  [limits] idle_timeout\n"
"      --flow-buffer SIZE    buffer per flow and direction (256k)        [limits] flow_buffer\n"
"      --max-memory SIZE     refuse new flows while the flows buffer this\n"
"                            much, 0 = no budget (512m)                  [limits] max_memory\n"
"      --udp yes|no          relay UDP via SOCKS5 UDP ASSOCIATE (yes)    [udp] enable\n"
"      --udp-timeout DUR     end an association idle this long (60s)     [udp] timeout\n"
"      --udp-filtering MODE  endpoint-independent or address-dependent\n"
"                            (endpoint-independent)                      [udp] filtering\n"
"      --udp-max-flows N     concurrent associations, 1..16000 (1024)    [udp] max_flows\n"
"      --udp-allow-plain yes|no  with socks5+tls://, relay UDP in clear\n"
"                            beside the TLS connection (no)              [udp] allow_plain\n"
"      --dns MODE            DNS over UDP: tcp (DNS over TCP through the\n"
"                            proxy), fake-ip (the proxy resolves names),\n"
"                            udp (like any UDP) or off (tcp)             [dns] mode\n"
"      --dns-ports LIST      the ports DNS is taken from (53)            [dns] ports\n"
"      --dns-server ADDR[:PORT]  send every query there (none: to the\n"
"                            resolver the client addressed)              [dns] server\n"
"      --dns-timeout DUR     SERVFAIL after this long (5s)               [dns] timeout\n"
"      --fake-ipv4 CIDR      fake-ip pool (198.18.0.0/15)                [dns] fake_ipv4\n"
"      --fake-ipv6 CIDR      fake-ip pool (fd00:5:1ce::/64)              [dns] fake_ipv6\n"
"      --fake-ip-max N       fake-ip mappings kept (65536)               [dns] fake_ip_max\n"
"      --dns-exclude LIST    suffixes resolved for real in fake-ip mode\n"
"                            (local localhost lan home.arpa internal)    [dns] exclude\n"
"      --dns-state-file FILE keep the fake-ip table across restarts      [dns] state_file\n"
"      --auto-route yes|no   route everything (or --route-include) into\n"
"                            the TUN with policy routing (no)            [route] auto\n"
"      --route-table N       sluice's routing table (1487)               [route] table\n"
"      --route-priority N    first of its 3 rule priorities (14870)      [route] priority\n"
"      --route-include LIST  route only these networks (all)             [route] include\n"
"      --route-exclude LIST  keep these networks outside (none)          [route] exclude\n"
"      --kill-switch yes|no  when sluice dies, block instead of leaking (no)\n"
"                                                                        [route] kill_switch\n"
"      --route-down          remove sluice's routes, rules and kill switch, exit\n"
"      --route-up CMD        run CMD (sh -c) once the TUN and routes are up,\n"
"                            the TUN in SLUICE_* variables (none)         [route] up\n"
"      --route-down-hook CMD run CMD before they go down (none)          [route] down\n"
"      --user NAME           after set-up, run as NAME, keeping only\n"
"                            CAP_NET_ADMIN/CAP_NET_RAW as needed (none)  [process] user\n"
"      --group NAME          ... and group NAME (the user's)             [process] group\n"
"      --metrics [ADDR:]PORT serve Prometheus /metrics and /status there\n"
"                            (127.0.0.1 when only a port; off)           [metrics] listen\n"
"      --log-level LEVEL     debug, info, warn or error (info)           [log] level\n"
"  -h, --help                this help\n"
"  -V, --version             print the version\n"
"\n"
"Signals: SIGINT/SIGTERM shut down cleanly; SIGUSR1 logs counters; SIGHUP\n"
"reloads the configuration file (new flows follow it, open ones go on).\n"
"UDP through an upstream that cannot carry it (http://, https://, socks5+tls://\n"
"without --udp-allow-plain, a SOCKS5 server that refuses UDP ASSOCIATE) gets\n"
"ICMP port unreachable at once.\n"
"\n"
"Durations: 250ms, 10s, 5m, 1h.  Sizes: 65536, 256k, 4m.\n"
"Routes: with --auto-route sluice installs policy routing itself (and the\n"
"kill switch); without, route what should go through the proxy into the\n"
"TUN device yourself and keep the route to the proxy outside it (or use\n"
"--fwmark / --interface).  Environment: SLUICE_PASSWORD, the proxy password.\n"
"\n"
"  --perf reader|writer      run the TUN throughput self-benchmark in a private\n"
"                            network namespace; see sluice --perf --help\n");
}

struct main_ctx {
	struct event_base *base;
	struct stack	*stack;
	struct flows	*flows;
	struct udps	*udps;
	struct dnsfwd	*dnsfwd;
	struct fakeip	*fakeip;
	bool		 failed;	/* the TUN device died */
	bool		 routed;	/* [route] auto: route_up() done */
	const char	*tun_name;
	struct metrics	*metrics;
	struct metrics_sources msrc;
	/* what a reload needs */
	struct config	*c;		/* the running configuration */
	struct upstream	*up;
	const char	*conf_path;
	const struct main_override *ov;
	int		 nov;
};

/* fds sluice needs besides one socket per flow (TUN, epoll, signals...) */
#define MAIN_FD_SPARE	64

/*
 * Make room for max_flows upstream sockets and two per UDP association:
 * raise the soft fd limit (often 1024, systemd's default) as far as
 * needed and the hard limit allows; if it does not, lower max_flows (and
 * then udp max_flows) to fit and say so once.
 */
static void
main_fd_limit(struct config *c)
{
	struct rlimit rl;
	rlim_t udp = c->udp ? 2 * (rlim_t)c->udp_max_flows : 0;
	rlim_t want = (rlim_t)c->max_flows + udp + MAIN_FD_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ?
		    want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
			    (unsigned long long)rl.rlim_cur);
			if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
				return;
		}
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
		rlim_t room = rl.rlim_cur > 2 * MAIN_FD_SPARE ?
		    rl.rlim_cur - MAIN_FD_SPARE : MAIN_FD_SPARE;
		unsigned tcp, uflows = c->udp_max_flows;

		/* TCP gets what is left after UDP, but at least half */
		if (udp > room / 2) {
			uflows = (unsigned)(room / 4);
			if (uflows == 0)
				uflows = 1;
			udp = 2 * (rlim_t)uflows;
		}
		tcp = (unsigned)(room - udp);
		log_warnx("max_flows %u and udp max_flows %u need %llu file "
		    "descriptors but the limit is %llu (hard %llu): lowered "
		    "to %u and %u; raise LimitNOFILE= or ulimit -Hn to allow "
		    "more", c->max_flows, c->udp ? c->udp_max_flows : 0,
		    (unsigned long long)want, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max,
		    tcp < c->max_flows ? tcp : c->max_flows,
		    c->udp ? uflows : 0);
		if (tcp < c->max_flows)
			c->max_flows = tcp;
		c->udp_max_flows = uflows;
	}
}

/* The TUN device is gone: leave the loop and exit non-zero. */
static void
main_stack_fatal_cb(void *arg, const char *why)
{
	struct main_ctx *ctx = arg;

	log_errorx("%s: exiting", why);
	ctx->failed = true;
	event_base_loopexit(ctx->base, NULL);
}

/* The options of DNS in tcp and fake-ip mode from c (pointing into it). */
static void
main_dns_options(const struct main_ctx *ctx, const struct config *c,
    struct dnsfwd_options *o)
{
	memset(o, 0, sizeof(*o));
	o->fake_ip = c->dns_mode == CONFIG_DNS_FAKE_IP;
	o->ports = c->dns_ports;
	o->nports = c->dns_nports;
	o->server = c->dns_server.ss_family != AF_UNSPEC ?
	    (const struct sockaddr *)&c->dns_server : NULL;
	o->timeout_ms = c->dns_timeout_ms;
	o->exclude = c->dns_exclude;
	o->fakeip = ctx->fakeip;
}

/*
 * Keep real addresses that lie in the fake pools out of them: the TUN's
 * own and the proxy's (a default pool of 198.18.0.0/15 holds the usual
 * TUN address 198.18.0.1).
 */
static void
main_fakeip_reserve(struct main_ctx *ctx, const struct config *c)
{
	struct sockaddr_storage ss;
	char a[64];

	memset(&ss, 0, sizeof(ss));
	if (c->has_ipv4) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr = c->ipv4;
		if (fakeip_reserve(ctx->fakeip, (struct sockaddr *)&ss))
			log_info("dns: fake_ipv4 holds the TUN's address %s: "
			    "it is not handed out", inet_ntop(AF_INET, &c->ipv4,
			    a, sizeof(a)));
	}
	if (c->has_ipv6) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_addr = c->ipv6;
		if (fakeip_reserve(ctx->fakeip, (struct sockaddr *)&ss))
			log_info("dns: fake_ipv6 holds the TUN's address %s: "
			    "it is not handed out", inet_ntop(AF_INET6,
			    &c->ipv6, a, sizeof(a)));
	}
	if (ctx->up != NULL && fakeip_reserve(ctx->fakeip,
	    upstream_addr(ctx->up)))
		log_warnx("dns: the proxy's address %s lies in a fake-ip pool: "
		    "it is not handed out, but pick a pool apart from real "
		    "addresses", addr_str(upstream_addr(ctx->up), a,
		    sizeof(a)));
}

/*
 * DNS per [dns] mode: tcp and fake-ip take queries from the UDP relay;
 * fake-ip also sends flows and datagrams to fake addresses by name.
 */
static int
main_dns_setup(struct main_ctx *ctx, const struct config *c,
    struct upstream *up)
{
	struct dnsfwd_options o;
	char err[CONFIG_ERR_MAX];

	if (c->dns_mode != CONFIG_DNS_TCP && c->dns_mode != CONFIG_DNS_FAKE_IP)
		return 0;
	if (c->dns_mode == CONFIG_DNS_FAKE_IP) {
		if ((ctx->fakeip = fakeip_new(&c->fake_ipv4.addr.v4,
		    c->fake_ipv4.prefix, &c->fake_ipv6.addr.v6,
		    c->fake_ipv6.prefix, c->fake_ip_max, err,
		    sizeof(err))) == NULL) {
			log_errorx("dns: %s", err);
			return -1;
		}
		main_fakeip_reserve(ctx, c);
		if (c->state_file[0] != '\0' && fakeip_load(ctx->fakeip,
		    c->state_file, err, sizeof(err)) == -1)
			log_warnx("dns: state_file: %s", err);
		flows_set_fakeip(ctx->flows, ctx->fakeip);
		udps_set_fakeip(ctx->udps, ctx->fakeip);
	}
	main_dns_options(ctx, c, &o);
	if ((ctx->dnsfwd = dnsfwd_new(ctx->base, ctx->stack, up, &o)) == NULL)
		return -1;
	udps_set_take(ctx->udps, dnsfwd_take, ctx->dnsfwd);
	return 0;
}

/*
 * Defaults, then the file, then the command line, then the checks across
 * keys, into c.  -1 with err ("FILE:LINE: ...", "--flag: ...").
 */
static int
main_config(const struct main_ctx *ctx, struct config *c, char *err,
    size_t errlen)
{
	char e[CONFIG_ERR_MAX];

	config_defaults(c);
	if (ctx->conf_path != NULL && config_load(c, ctx->conf_path, err,
	    errlen) == -1)
		return -1;
	for (int i = 0; i < ctx->nov; i++) {
		if (config_set(c, ctx->ov[i].section, ctx->ov[i].key,
		    ctx->ov[i].value, e, sizeof(e)) == -1) {
			snprintf(err, errlen, "--%s: %s", ctx->ov[i].flag, e);
			return -1;
		}
	}
	if (config_validate(c, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "%s%s%s", ctx->conf_path ?
		    ctx->conf_path : "", ctx->conf_path ? ": " : "", e);
		return -1;
	}
	/* with [route] auto, sluice's own sockets must carry a mark */
	if (c->route_auto && c->fwmark == 0)
		c->fwmark = c->route_table;
	return 0;
}

/* The [route] options of c for the TUN tun_name and the proxy (or NULL). */
static void
main_route_options(const struct config *c, const char *tun_name,
    const struct sockaddr *proxy, struct route_options *o)
{
	memset(o, 0, sizeof(*o));
	o->tun_name = tun_name;
	o->table = c->route_table;
	o->priority = c->route_priority;
	o->fwmark = c->fwmark != 0 ? c->fwmark : c->route_table;
	o->include = c->route_include;
	o->ninclude = c->route_ninclude;
	o->exclude = c->route_exclude;
	o->nexclude = c->route_nexclude;
	o->proxy = proxy;
	o->kill_switch = c->kill_switch;
	/* a family goes into the TUN when the TUN has an address of it
	 * (an adopted one: when it takes the routes) */
	o->ipv4 = c->has_ipv4 || c->tun_fd >= 0;
	o->ipv6 = c->has_ipv6 || c->tun_fd >= 0;
}

/* sluice --route-down: the file and options without the checks that
 * need an upstream; 0 or 1. */
static int
main_route_down(const struct main_ctx *ctx)
{
	struct config *c;
	struct route_options o;
	char err[CONFIG_ERR_MAX + 64], e[CONFIG_ERR_MAX];
	int rc = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	config_defaults(c);
	if (ctx->conf_path != NULL && config_load(c, ctx->conf_path, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	for (int i = 0; i < ctx->nov; i++) {
		if (config_set(c, ctx->ov[i].section, ctx->ov[i].key,
		    ctx->ov[i].value, e, sizeof(e)) == -1) {
			fprintf(stderr, "sluice: --%s: %s\n", ctx->ov[i].flag, e);
			goto out;
		}
	}
	log_init(c->log_level);
	main_route_options(c, NULL, NULL, &o);
	if (route_down(&o, false, err, sizeof(err)) == -1) {
		log_errorx("%s", err);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(c, sizeof(*c));
	free(c);
	return rc;
}

#define MAIN_HOOK_TIMEOUT_MS	30000

/*
 * Run the [route] up or down hook, if set, with the TUN described in its
 * environment (as hev-socks5-tunnel's post-up and pre-down scripts):
 * SLUICE_EVENT, SLUICE_TUN, SLUICE_TUN_INDEX, SLUICE_TUN_MTU,
 * SLUICE_TUN_IPV4, SLUICE_TUN_IPV6 (ADDR/PREFIX or empty), SLUICE_UPSTREAM
 * (no credentials) and SLUICE_ROUTE_TABLE (with [route] auto, else
 * empty).  0, or -1 when it failed.
 */
static int
main_hook(const struct config *c, const char *tun_name, const char *event,
    const char *cmd)
{
	static char e_event[32], e_tun[48], e_index[48], e_mtu[48],
	    e_v4[80], e_v6[96], e_up[URL_HOST_MAX + 64], e_table[48];
	char *env[] = { e_event, e_tun, e_index, e_mtu, e_v4, e_v6, e_up,
	    e_table, NULL };
	char a[INET6_ADDRSTRLEN], upname[URL_HOST_MAX + 32];

	if (cmd == NULL || cmd[0] == '\0')
		return 0;
	snprintf(e_event, sizeof(e_event), "SLUICE_EVENT=%s", event);
	snprintf(e_tun, sizeof(e_tun), "SLUICE_TUN=%s", tun_name);
	snprintf(e_index, sizeof(e_index), "SLUICE_TUN_INDEX=%u",
	    if_nametoindex(tun_name));
	snprintf(e_mtu, sizeof(e_mtu), "SLUICE_TUN_MTU=%d", c->mtu);
	if (c->has_ipv4)
		snprintf(e_v4, sizeof(e_v4), "SLUICE_TUN_IPV4=%s/%d",
		    inet_ntop(AF_INET, &c->ipv4, a, sizeof(a)), c->ipv4_prefix);
	else
		snprintf(e_v4, sizeof(e_v4), "SLUICE_TUN_IPV4=");
	if (c->has_ipv6)
		snprintf(e_v6, sizeof(e_v6), "SLUICE_TUN_IPV6=%s/%d",
		    inet_ntop(AF_INET6, &c->ipv6, a, sizeof(a)), c->ipv6_prefix);
	else
		snprintf(e_v6, sizeof(e_v6), "SLUICE_TUN_IPV6=");
	snprintf(e_up, sizeof(e_up), "SLUICE_UPSTREAM=%s",
	    url_redacted(&c->upstream, upname, sizeof(upname)));
	if (c->route_auto)
		snprintf(e_table, sizeof(e_table), "SLUICE_ROUTE_TABLE=%u",
		    c->route_table);
	else
		snprintf(e_table, sizeof(e_table), "SLUICE_ROUTE_TABLE=");
	return proc_run_hook(event, cmd, env, MAIN_HOOK_TIMEOUT_MS);
}

/* The limits of flows and of UDP associations from c. */
static void
main_limits(const struct config *c, struct flows_limits *lim,
    struct udps_limits *ulim)
{
	lim->max_flows = c->max_flows;
	lim->idle_timeout_ms = c->idle_timeout_ms;
	lim->flow_buffer = c->flow_buffer;
	lim->max_memory = c->max_memory;
	ulim->enable = c->udp;
	ulim->max_flows = c->udp_max_flows;
	ulim->timeout_ms = c->udp_timeout_ms;
	ulim->address_dependent =
	    c->udp_filtering == CONFIG_UDP_ADDRESS_DEPENDENT;
	ulim->allow_plain = c->udp_allow_plain;
}

/*
 * Keys a reload cannot change: name those that nc changes (in one
 * warning) and keep the running values.
 */
static void
main_reload_fixed(const struct config *c, struct config *nc)
{
	char names[512] = "";
	size_t n = 0;

#define MAIN_FIXED(cond, name) do {					\
	if (cond)							\
		n += (size_t)snprintf(names + n, n < sizeof(names) ?	\
		    sizeof(names) - n : 0, "%s%s", n ? ", " : "", name);	\
} while (0)
	MAIN_FIXED(strcmp(c->tun_name, nc->tun_name) != 0, "[tun] name");
	MAIN_FIXED(c->mtu != nc->mtu, "[tun] mtu");
	MAIN_FIXED(c->has_ipv4 != nc->has_ipv4 || c->ipv4_prefix !=
	    nc->ipv4_prefix || memcmp(&c->ipv4, &nc->ipv4,
	    sizeof(c->ipv4)) != 0, "[tun] ipv4");
	MAIN_FIXED(c->has_ipv6 != nc->has_ipv6 || c->ipv6_prefix !=
	    nc->ipv6_prefix || memcmp(&c->ipv6, &nc->ipv6,
	    sizeof(c->ipv6)) != 0, "[tun] ipv6");
	MAIN_FIXED(c->tun_fd != nc->tun_fd, "[tun] fd");
	MAIN_FIXED(c->offload != nc->offload, "[tun] offload");
	MAIN_FIXED(c->dns_mode != nc->dns_mode, "[dns] mode");
	MAIN_FIXED(memcmp(&c->fake_ipv4, &nc->fake_ipv4,
	    sizeof(c->fake_ipv4)) != 0, "[dns] fake_ipv4");
	MAIN_FIXED(memcmp(&c->fake_ipv6, &nc->fake_ipv6,
	    sizeof(c->fake_ipv6)) != 0, "[dns] fake_ipv6");
	MAIN_FIXED(c->fake_ip_max != nc->fake_ip_max, "[dns] fake_ip_max");
	MAIN_FIXED(strcmp(c->state_file, nc->state_file) != 0,
	    "[dns] state_file");
	MAIN_FIXED(strcmp(c->user, nc->user) != 0 ||
	    strcmp(c->group, nc->group) != 0, "[process] user and group");
	MAIN_FIXED(memcmp(&c->metrics_listen, &nc->metrics_listen,
	    sizeof(c->metrics_listen)) != 0, "[metrics] listen");
	MAIN_FIXED(c->route_auto != nc->route_auto, "[route] auto");
	MAIN_FIXED(c->route_table != nc->route_table, "[route] table");
	MAIN_FIXED(c->route_priority != nc->route_priority,
	    "[route] priority");
#undef MAIN_FIXED
	if (n > 0)
		log_warnx("reload: %s cannot change while sluice runs: "
		    "restart for that; the running value%s stay%s", names,
		    strchr(names, ',') ? "s" : "", strchr(names, ',') ? "" :
		    "s");
	memcpy(nc->tun_name, c->tun_name, sizeof(nc->tun_name));
	nc->mtu = c->mtu;
	nc->has_ipv4 = c->has_ipv4;
	nc->ipv4 = c->ipv4;
	nc->ipv4_prefix = c->ipv4_prefix;
	nc->has_ipv6 = c->has_ipv6;
	nc->ipv6 = c->ipv6;
	nc->ipv6_prefix = c->ipv6_prefix;
	nc->tun_fd = c->tun_fd;
	nc->offload = c->offload;
	nc->dns_mode = c->dns_mode;
	nc->fake_ipv4 = c->fake_ipv4;
	nc->fake_ipv6 = c->fake_ipv6;
	nc->fake_ip_max = c->fake_ip_max;
	memcpy(nc->state_file, c->state_file, sizeof(nc->state_file));
	memcpy(nc->user, c->user, sizeof(nc->user));
	memcpy(nc->group, c->group, sizeof(nc->group));
	nc->metrics_listen = c->metrics_listen;
	nc->route_auto = c->route_auto;
	nc->route_table = c->route_table;
	nc->route_priority = c->route_priority;
}

/*
 * SIGHUP: read the configuration again.  A file with an error, or an
 * upstream that cannot be set up, changes nothing; otherwise new flows,
 * associations and DNS queries follow it, and those that exist go on.
 */
static void
main_reload(struct main_ctx *ctx)
{
	struct config *nc;
	struct upstream *up;
	struct flows_limits lim;
	struct udps_limits ulim;
	struct dnsfwd_options o;
	char err[CONFIG_ERR_MAX + 64], upname[URL_HOST_MAX + 32];

	{
		struct timespec ts;

		/* MONOTONIC_USEC: what systemd's Type=notify-reload expects */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		notify_send("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
		    (unsigned long long)ts.tv_sec * 1000000ULL +
		    (unsigned long long)ts.tv_nsec / 1000);
	}
	if ((nc = calloc(1, sizeof(*nc))) == NULL) {
		log_warn("reload: calloc");
		goto done;
	}
	if (main_config(ctx, nc, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; the running configuration stays", err);
		goto done;
	}
	if ((up = upstream_new(ctx->base, nc, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s; the running configuration stays", err);
		goto done;
	}
	main_reload_fixed(ctx->c, nc);
	memcpy(ctx->c, nc, sizeof(*nc));
	log_init(ctx->c->log_level);
	main_fd_limit(ctx->c);
	upstream_free(ctx->up);		/* freed when its last dial ends */
	ctx->up = up;
	main_limits(ctx->c, &lim, &ulim);
	flows_reconfigure(ctx->flows, up, &lim);
	udps_reconfigure(ctx->udps, up, &ulim);
	stack_set_icmp_echo(ctx->stack, ctx->c->icmp == CONFIG_ICMP_LOCAL);
	if (ctx->dnsfwd != NULL) {
		main_dns_options(ctx, ctx->c, &o);
		dnsfwd_reconfigure(ctx->dnsfwd, up, &o);
	}
	if (ctx->routed) {
		struct route_options ro;

		/* include, exclude, kill switch and the proxy's address */
		main_route_options(ctx->c, ctx->tun_name, upstream_addr(up),
		    &ro);
		if (route_up(&ro, err, sizeof(err)) == -1)
			log_warnx("reload: %s", err);
	}
	log_info("reload: %s: upstream %s", ctx->conf_path ? ctx->conf_path :
	    "(command line)", url_redacted(&ctx->c->upstream, upname,
	    sizeof(upname)));
done:
	if (nc != NULL) {
		explicit_bzero(nc, sizeof(*nc));
		free(nc);
	}
	notify_send("READY=1\nSTATUS=relaying");
}

static void
main_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

static void
main_sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	main_reload(arg);
}

/* One line of counters: on SIGUSR1 and at exit. */
static void
main_log_stats(const struct main_ctx *ctx)
{
	struct stack_stats ss;
	struct flows_stats fs;
	struct udps_stats us;
	struct dnsfwd_stats ds;
	struct fakeip_stats fs4;

	if (ctx->stack == NULL || ctx->flows == NULL)
		return;
	memset(&us, 0, sizeof(us));
	memset(&ds, 0, sizeof(ds));
	memset(&fs4, 0, sizeof(fs4));
	if (ctx->udps != NULL)
		udps_get_stats(ctx->udps, &us);
	if (ctx->dnsfwd != NULL)
		dnsfwd_get_stats(ctx->dnsfwd, &ds);
	if (ctx->fakeip != NULL)
		fakeip_get_stats(ctx->fakeip, &fs4);
	stack_get_stats(ctx->stack, &ss);
	flows_get_stats(ctx->flows, &fs);
	log_info("stats: flows %u active, %llu accepted, %llu refused "
	    "(%llu over max_flows, %llu over memory, %llu loops), %llu bytes "
	    "up, %llu down, %zu KiB buffered; tun rx %llu packets (%llu "
	    "dropped, %llu kernel-drops), tx %llu (%llu "
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
	    fs.active, (unsigned long long)fs.accepted,
	    (unsigned long long)fs.refused, (unsigned long long)fs.over_limit,
	    (unsigned long long)fs.over_memory, (unsigned long long)fs.loops,
	    (unsigned long long)fs.bytes_up, (unsigned long long)fs.bytes_down,
	    fs.held >> 10,
	    (unsigned long long)ss.rx_packets, (unsigned long long)ss.rx_dropped,
	    ctx->tun_name != NULL ? tun_kernel_dropped(ctx->tun_name) : 0,
	    (unsigned long long)ss.tx_packets, (unsigned long long)ss.tx_dropped,
	    (unsigned long long)ss.ip_dropped,
	    (unsigned long long)ss.tcp_dropped,
	    (unsigned long long)ss.lwip_asserts, ss.heap_used_pct,
	    ss.seg_used_pct, us.active, (unsigned long long)us.opened,
	    (unsigned long long)us.failed, (unsigned long long)us.expired,
	    (unsigned long long)us.up, (unsigned long long)us.up_bytes,
	    (unsigned long long)us.down, (unsigned long long)us.down_bytes,
	    (unsigned long long)us.no_udp, (unsigned long long)us.refused,
	    (unsigned long long)us.queue_full,
	    (unsigned long long)us.over_max,
	    (unsigned long long)us.fragmented,
	    (unsigned long long)us.filtered,
	    (unsigned long long)us.bad_reply,
	    (unsigned long long)us.send_error,
	    (unsigned long long)us.icmp_sent,
	    (unsigned long long)us.icmp_limited,
	    (unsigned long long)ss.echo_dropped,
	    (unsigned long long)ds.queries, (unsigned long long)ds.fake,
	    (unsigned long long)ds.nodata, (unsigned long long)ds.tcp,
	    (unsigned long long)ds.truncated,
	    (unsigned long long)ds.servfail,
	    (unsigned long long)ds.timeouts, (unsigned long long)ds.bad,
	    ds.pending, ds.conns, ds.p50_ms, ds.p99_ms, fs4.mappings,
	    (unsigned long long)fs4.created, (unsigned long long)fs4.evicted,
	    (unsigned long long)fs4.full, (unsigned long long)fs4.unmapped);
}

static void
main_sigusr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	main_log_stats(arg);
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;

	(void)what;
	log_info("signal %d: shutting down", (int)sig);
	event_base_loopexit(base, NULL);
}

int
main(int argc, char *argv[])
{
	struct option longopts[MAIN_NKEY_OPTS + 6];
	struct route_options ro;
	bool routed = false, route_down_only = false, hooked = false;
	struct main_override *ov;
	struct config c;
	const char *conf_path = NULL;
	char err[CONFIG_ERR_MAX + 64];
	bool check_only = false;
	int ch, idx, nov = 0, rc = 1;
	struct event_base *base = NULL;
	struct event *sigint = NULL, *sigterm = NULL, *sigusr1 = NULL;
	struct event *sighup = NULL, *watchdog = NULL;
	uint64_t wd_usec;
	struct main_ctx ctx;
	struct upstream *up = NULL;
	struct tun tun = { .fd = -1 };
	struct stack *stack = NULL;
	struct flows *flows = NULL;
	struct flows_limits lim;
	struct udps_limits ulim;
	char upname[URL_HOST_MAX + 32];

	memset(&ctx, 0, sizeof(ctx));
	/*
	 * libevent's buffer chains come and go in 256 KiB pieces; glibc's
	 * default trimming returns and refetches them from the kernel all
	 * the time (page faults, TLB shootdowns).  Keep them.
	 */
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);

	/* the self-benchmark has its own options */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--perf") == 0 ||
		    strncmp(argv[i], "--perf=", 7) == 0)
			return perf_main(argc, argv);
	}

	memset(longopts, 0, sizeof(longopts));
	for (size_t i = 0; i < MAIN_NKEY_OPTS; i++) {
		longopts[i].name = main_key_opts[i].name;
		longopts[i].has_arg = required_argument;
		longopts[i].val = 1000 + (int)i;
	}
	longopts[MAIN_NKEY_OPTS + 0] = (struct option){ "config", required_argument, NULL, 'c' };
	longopts[MAIN_NKEY_OPTS + 1] = (struct option){ "check-config", no_argument, NULL, 't' };
	longopts[MAIN_NKEY_OPTS + 2] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[MAIN_NKEY_OPTS + 3] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[MAIN_NKEY_OPTS + 4] = (struct option){ "route-down", no_argument, NULL, 'D' };

	if ((ov = calloc((size_t)argc, sizeof(*ov))) == NULL)
		fatal("calloc");
	while ((ch = getopt_long(argc, argv, "c:thV", longopts, &idx)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'h':
			main_usage(stdout);
			free(ov);
			return 0;
		case 'V':
			printf("sluice %s\n", SLUICE_VERSION);
			free(ov);
			return 0;
		case 'D':
			route_down_only = true;
			break;
		default:
			if (ch >= 1000 && ch < 1000 + (int)MAIN_NKEY_OPTS) {
				const struct main_key_opt *k =
				    &main_key_opts[ch - 1000];
				ov[nov++] = (struct main_override){ k->name,
				    k->section, k->key, optarg };
				break;
			}
			main_usage(stderr);
			free(ov);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice: unexpected argument `%s'\n", argv[optind]);
		free(ov);
		return 1;
	}

	ctx.conf_path = conf_path;
	ctx.ov = ov;
	ctx.nov = nov;
	ctx.c = &c;
	if (route_down_only) {
		rc = main_route_down(&ctx);
		free(ov);
		return rc;
	}
	if (main_config(&ctx, &c, err, sizeof(err)) == -1) {
		fprintf(stderr, "sluice: %s\n", err);
		goto out;
	}
	if (check_only) {
		printf("sluice: configuration ok\n");
		rc = 0;
		goto out;
	}
	log_init(c.log_level);
	signal(SIGPIPE, SIG_IGN);
	main_fd_limit(&c);

	if ((base = event_base_new()) == NULL) {
		log_errorx("event_base_new failed");
		goto out;
	}
	/* the proxy must resolve before the TUN device is touched */
	if ((up = upstream_new(base, &c, err, sizeof(err))) == NULL) {
		log_errorx("%s", err);
		goto out;
	}
	ctx.up = up;
	if (c.tun_fd >= 0) {
		int mtu;

		/* whoever opened it configured it: take its MTU as it is */
		if (tun_adopt(&tun, c.tun_fd) == -1 ||
		    (mtu = tun_get_mtu(&tun)) == -1)
			goto out;
		if (mtu != c.mtu)
			log_info("tun: %s has mtu %d; using it", tun.name, mtu);
		if (mtu < 576) {
			log_errorx("tun: %s: mtu %d is below 576", tun.name, mtu);
			goto out;
		}
		c.mtu = mtu;
	} else {
		if ((c.offload ? tun_open_offload(&tun, c.tun_name) :
		    tun_open(&tun, c.tun_name)) == -1)
			goto out;
		if (tun_set_mtu(&tun, c.mtu) == -1 ||
		    (c.has_ipv4 && tun_add_ipv4(&tun, &c.ipv4, c.ipv4_prefix) == -1) ||
		    (c.has_ipv6 && tun_add_ipv6(&tun, &c.ipv6, c.ipv6_prefix) == -1) ||
		    tun_up(&tun) == -1)
			goto out;
	}
	if ((stack = stack_new(base, tun.fd, c.mtu)) == NULL ||
	    (tun.vnet_hdr && stack_set_vnet_hdr(stack) == -1))
		goto out;
	main_limits(&c, &lim, &ulim);
	ctx.base = base;
	stack_set_fatal_cb(stack, main_stack_fatal_cb, &ctx);
	if ((flows = flows_new(base, stack, up, &lim)) == NULL)
		goto out;
	ctx.stack = stack;
	ctx.flows = flows;
	ctx.tun_name = tun.name;
	stack_set_icmp_echo(stack, c.icmp == CONFIG_ICMP_LOCAL);
	if ((ctx.udps = udps_new(base, stack, up, &ulim)) == NULL ||
	    main_dns_setup(&ctx, &c, up) == -1)
		goto out;
	if (c.metrics_listen.ss_family != AF_UNSPEC) {
		ctx.msrc = (struct metrics_sources){ stack, flows, ctx.udps,
		    ctx.dnsfwd, ctx.fakeip, &ctx.up, tun.name };
		if ((ctx.metrics = metrics_new(base,
		    (struct sockaddr *)&c.metrics_listen, &ctx.msrc, err,
		    sizeof(err))) == NULL) {
			log_errorx("metrics: %s", err);
			goto out;
		}
		log_info("metrics: http://%s/metrics", addr_str((struct sockaddr *)
		    &c.metrics_listen, upname, sizeof(upname)));
	}

	sigint = evsignal_new(base, SIGINT, main_signal_cb, base);
	sigterm = evsignal_new(base, SIGTERM, main_signal_cb, base);
	sigusr1 = evsignal_new(base, SIGUSR1, main_sigusr1_cb, &ctx);
	sighup = evsignal_new(base, SIGHUP, main_sighup_cb, &ctx);
	if (sigint == NULL || sigterm == NULL || sigusr1 == NULL ||
	    sighup == NULL || evsignal_add(sigint, NULL) == -1 ||
	    evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigusr1, NULL) == -1 ||
	    evsignal_add(sighup, NULL) == -1) {
		log_errorx("cannot install signal handlers");
		goto out;
	}
	if (c.route_auto) {
		struct in6_addr tmp;

		if (c.kill_switch && inet_pton(AF_INET, c.upstream.host,
		    &tmp) != 1 && inet_pton(AF_INET6, c.upstream.host,
		    &tmp) != 1)
			log_warnx("route: the proxy is given by name (%s): "
			    "after a crash the kill switch blocks the lookup a "
			    "restart needs; give its address", c.upstream.host);
		main_route_options(&c, tun.name, upstream_addr(up), &ro);
		if (route_up(&ro, err, sizeof(err)) == -1) {
			log_errorx("%s", err);
			goto out;
		}
		routed = true;
		ctx.routed = true;
		ctx.tun_name = tun.name;
	}
	if (main_hook(&c, tun.name, "up", c.route_up_cmd) == -1)
		goto out;
	hooked = true;
	if (c.user[0] != '\0') {
		/* CAP_NET_ADMIN for routes (reload, exit) and SO_MARK,
		 * CAP_NET_RAW for SO_BINDTODEVICE */
		if (proc_drop(c.user, c.group, c.route_auto || c.fwmark != 0,
		    c.interface[0] != '\0', err, sizeof(err)) == -1) {
			log_errorx("process: %s", err);
			goto out;
		}
		log_info("process: running as %s%s%s, capabilities kept:%s%s%s",
		    c.user, c.group[0] != '\0' ? ":" : "", c.group,
		    c.route_auto || c.fwmark != 0 ? " CAP_NET_ADMIN" : "",
		    c.interface[0] != '\0' ? " CAP_NET_RAW" : "",
		    c.route_auto || c.fwmark != 0 || c.interface[0] != '\0' ?
		    "" : " none");
	}
	log_info("ready: tun %s mtu %d%s, upstream %s", tun.name, c.mtu,
	    tun.vnet_hdr ? " offloads" : "",
	    url_redacted(&c.upstream, upname, sizeof(upname)));
	notify_send("READY=1\nSTATUS=relaying: tun %s, upstream %s\n"
	    "MAINPID=%ld", tun.name, upname, (long)getpid());
	if ((wd_usec = notify_watchdog_usec()) > 0) {
		/* WatchdogSec=: a keep-alive at half the interval, from
		 * the event loop, so a stuck loop is noticed */
		struct timeval tv = { (time_t)(wd_usec / 2 / 1000000),
		    (suseconds_t)(wd_usec / 2 % 1000000) };

		if ((watchdog = event_new(base, -1, EV_PERSIST,
		    main_watchdog_cb, NULL)) == NULL ||
		    event_add(watchdog, &tv) == -1)
			log_warnx("watchdog: cannot add the timer");
	}
	if (event_base_dispatch(base) == -1)
		log_errorx("event loop failed");
	else
		rc = ctx.failed ? 1 : 0;
out:
	notify_send("STOPPING=1\nSTATUS=stopping");
	if (hooked)
		main_hook(&c, tun.name, "down", c.route_down_cmd);
	/*
	 * The kill switch stays after any exit, a clean stop too: until
	 * sluice runs again or sluice --route-down lifts it, what it would
	 * carry is refused, not sent around the proxy.
	 */
	if (routed) {
		main_route_options(&c, tun.name, NULL, &ro);
		if (route_down(&ro, true, err, sizeof(err)) == -1)
			log_warnx("%s", err);
	}
	main_log_stats(&ctx);
	if (ctx.fakeip != NULL && c.state_file[0] != '\0' &&
	    fakeip_save(ctx.fakeip, c.state_file, err, sizeof(err)) == -1)
		log_warnx("dns: state_file: %s", err);
	metrics_free(ctx.metrics);
	udps_free(ctx.udps);
	flows_free(flows);
	dnsfwd_free(ctx.dnsfwd);
	fakeip_free(ctx.fakeip);
	/* let libevent finalize the bufferevents of the flows just closed */
	if (base != NULL)
		event_base_loop(base, EVLOOP_NONBLOCK);
	stack_free(stack);
	tun_close(&tun);
	upstream_free(ctx.up);
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (sigusr1 != NULL)
		event_free(sigusr1);
	if (sighup != NULL)
		event_free(sighup);
	if (watchdog != NULL)
		event_free(watchdog);
	if (base != NULL)
		event_base_free(base);
	explicit_bzero(&c, sizeof(c));
	free(ov);
	return rc;
}
