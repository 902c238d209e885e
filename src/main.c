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
#include <sys/signalfd.h>
#include <sys/sysinfo.h>
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
#include "tunnel.h"
#include "udp.h"
#include "upstream.h"
#include "worker.h"

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
	{ "workers",		"process",	"workers" },
	{ "worker-timeout",	"process",	"worker_timeout" },
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
"      --workers N|auto      processes relaying, one per TUN queue (auto:\n"
"                            the CPUs, at most 8)                        [process] workers\n"
"      --worker-timeout T    kill and restart a worker whose loop has not\n"
"                            run for T (30s; 0: never)                   [process] worker_timeout\n"
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
	struct tunnel	*tunnel;	/* one process; or a worker's own */
	struct workers	*workers;	/* the master of several workers */
	const struct worker_self *self;	/* in a worker */
	struct tun	*tun;
	bool		 failed;	/* the TUN device died */
	bool		 routed;	/* [route] auto: route_up() done */
	const char	*tun_name;
	struct metrics	*metrics;
	struct fakeip	*fakeip;	/* fake-ip with workers: shared */
	int		 sigfd;		/* the master's signals */
	sigset_t	 sigmask;	/* as it was before */
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

/*
 * Keys a reload cannot change: name those that nc changes (in one
 * warning) and keep the running values.
 */
static void
main_reload_fixed(const struct config *c, struct config *nc, bool quiet)
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
	MAIN_FIXED(c->workers != nc->workers, "[process] workers");
#undef MAIN_FIXED
	if (n > 0 && !quiet)
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
	nc->workers = c->workers;
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
	char err[CONFIG_ERR_MAX + 64], upname[URL_HOST_MAX + 32];

	if (ctx->self == NULL) {
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
	/* the master says what did not change, once */
	main_reload_fixed(ctx->c, nc, ctx->self != NULL);
	memcpy(ctx->c, nc, sizeof(*nc));
	log_init(ctx->c->log_level);
	main_fd_limit(ctx->c);
	upstream_free(ctx->up);		/* freed when its last dial ends */
	ctx->up = up;
	if (ctx->tunnel != NULL)
		tunnel_reconfigure(ctx->tunnel, up);
	/* each worker reads the file again itself */
	if (ctx->workers != NULL) {
		workers_set_timeout(ctx->workers, ctx->c->worker_timeout_ms);
		workers_signal(ctx->workers, SIGHUP);
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
	if (ctx->self == NULL)
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

/*
 * One line of counters, on SIGUSR1 and at exit; with workers, a short
 * line for each before it (how the flows spread over the queues).
 */
static void
main_log_stats(const struct main_ctx *ctx)
{
	struct tunnel_stats st, each[WORKERS_MAX];
	unsigned long long kd = ctx->tun_name != NULL ?
	    tun_kernel_dropped(ctx->tun_name) : 0;

	if (ctx->workers != NULL) {
		workers_stats(ctx->workers, &st, each);
		for (unsigned i = 0; i < workers_count(ctx->workers); i++)
			log_info("worker %u: flows %u active, %llu "
			    "accepted, %llu bytes up, %llu down; tun rx %llu "
			    "packets (%llu fragments out, %llu in), tx %llu; "
			    "udp %u associations, %llu udp-up, %llu udp-down",
			    i, each[i].flows.active,
			    (unsigned long long)each[i].flows.accepted,
			    (unsigned long long)each[i].flows.bytes_up,
			    (unsigned long long)each[i].flows.bytes_down,
			    (unsigned long long)each[i].stack.rx_packets,
			    (unsigned long long)each[i].stack.frag_steered,
			    (unsigned long long)each[i].stack.frag_taken,
			    (unsigned long long)each[i].stack.tx_packets,
			    each[i].udp.active,
			    (unsigned long long)each[i].udp.up,
			    (unsigned long long)each[i].udp.down);
		if (workers_restarts(ctx->workers) > 0)
			log_info("workers: %llu restarted",
			    workers_restarts(ctx->workers));
	} else if (ctx->tunnel != NULL)
		tunnel_get_stats(ctx->tunnel, &st);
	else
		return;
	tunnel_log_stats(&st, kd, NULL);
}

static void
main_stats_ready(void *arg)
{
	main_log_stats(arg);
}

/* The numbers for /metrics and /status. */
static void
main_metrics_get(void *arg, struct metrics_snapshot *s)
{
	const struct main_ctx *ctx = arg;
	struct tunnel_stats each[WORKERS_MAX];

	memset(s, 0, sizeof(*s));
	s->rss = metrics_rss(0);
	s->fds = metrics_fds(0);
	if (ctx->workers != NULL) {
		workers_stats(ctx->workers, &s->st, each);
		s->nworkers = workers_count(ctx->workers);
		s->restarts = workers_restarts(ctx->workers);
		for (unsigned i = 0; i < s->nworkers &&
		    i < METRICS_WORKERS_MAX; i++) {
			pid_t pid = workers_pid(ctx->workers, i);

			s->w[i].accepted = each[i].flows.accepted;
			s->w[i].rx_packets = each[i].stack.rx_packets;
			if (pid != 0) {
				s->rss += metrics_rss(pid);
				s->fds += metrics_fds(pid);
			}
		}
	} else if (ctx->tunnel != NULL)
		tunnel_get_stats(ctx->tunnel, &s->st);
	if (ctx->tun_name != NULL)
		s->kernel_drops = tun_kernel_dropped(ctx->tun_name);
	s->upstream = ctx->up != NULL ? upstream_name(ctx->up) : NULL;
}

static void
main_sigusr1_cb(evutil_socket_t sig, short what, void *arg)
{
	struct main_ctx *ctx = arg;

	(void)sig;
	(void)what;
	/* the workers publish first, then the sum is logged */
	if (ctx->workers != NULL)
		workers_refresh(ctx->workers, main_stats_ready, ctx);
	else
		main_log_stats(ctx);
}

/*
 * The daemon's signals come through a signalfd, not libevent's signal
 * events: libevent keeps those in globals that a forked worker would
 * inherit, and the worker has its own.
 */
static void
main_signalfd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_ctx *ctx = arg;
	struct signalfd_siginfo si;

	(void)what;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGINT:
		case SIGTERM:
			log_info("signal %d: shutting down", (int)si.ssi_signo);
			event_base_loopexit(ctx->base, NULL);
			break;
		case SIGHUP:
			main_reload(ctx);
			break;
		case SIGUSR1:
			main_sigusr1_cb(-1, 0, ctx);
			break;
		case SIGCHLD:
			if (ctx->workers != NULL)
				workers_reap(ctx->workers);
			break;
		}
	}
}

/* ---- a worker process ---------------------------------------------------- */

/*
 * In a worker: the master's context as it was.  Its objects stay as they
 * are (they belong to the master's event base, which a worker never
 * touches) and reachable, for the leak checkers.
 */
static struct main_ctx main_master __attribute__((used));

#define MAIN_PUBLISH_MS	1000

/* Counters to the master: every second and when it asks (SIGUSR1). */
static void
main_worker_publish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_ctx *ctx = arg;
	struct tunnel_stats st;

	(void)fd;
	(void)what;
	tunnel_get_stats(ctx->tunnel, &st);
	worker_publish(ctx->self, &st);
}

static void
main_worker_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

/*
 * The body of a worker (workers_run_cb), in the child: its own event
 * loop, upstream and tunnel on its queue.  ctx is the child's copy of the
 * master's; the master's event base is never touched here.
 */
static int
main_worker_run(void *arg, const struct worker_self *self)
{
	struct main_ctx *ctx = arg;
	struct event *ev[5] = { NULL };
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	struct timeval tv = { MAIN_PUBLISH_MS / 1000,
	    (MAIN_PUBLISH_MS % 1000) * 1000 };
	char err[CONFIG_ERR_MAX + 64];
	int rc = 1;

	main_master = *ctx;
	close(ctx->sigfd);
	ctx->sigfd = -1;
	ctx->self = self;
	ctx->workers = NULL;
	ctx->metrics = NULL;
	ctx->routed = false;
	ctx->tunnel = NULL;
	if ((ctx->base = event_base_new()) == NULL) {
		log_errorx("event_base_new failed");
		return 1;
	}
	/* the master's upstream is bound to the master's loop */
	if ((ctx->up = upstream_new(ctx->base, ctx->c, err,
	    sizeof(err))) == NULL) {
		log_errorx("%s", err);
		goto out;
	}
	if ((ctx->tunnel = tunnel_new(ctx->base, self->queue_fd,
	    ctx->tun->vnet_hdr, ctx->c, ctx->up, ctx->fakeip, main_stack_fatal_cb,
	    ctx)) == NULL)
		goto out;
	tunnel_set_share(ctx->tunnel, self->flows, self->udps, self->n,
	    self->idx);
	if (udps_set_steer(tunnel_udps(ctx->tunnel), self->idx, self->n,
	    self->steer_tx, self->steer_rx) == -1)
		goto out;
	for (int i = 0; i < 4; i++) {
		if (sigs[i] == SIGHUP)
			ev[i] = evsignal_new(ctx->base, sigs[i], main_sighup_cb,
			    ctx);
		else if (sigs[i] == SIGUSR1)
			ev[i] = evsignal_new(ctx->base, sigs[i],
			    main_worker_publish_cb, ctx);
		else
			ev[i] = evsignal_new(ctx->base, sigs[i],
			    main_worker_stop_cb, ctx->base);
		if (ev[i] == NULL || evsignal_add(ev[i], NULL) == -1) {
			log_errorx("cannot install signal handlers");
			goto out;
		}
	}
	if ((ev[4] = event_new(ctx->base, -1, EV_PERSIST,
	    main_worker_publish_cb, ctx)) == NULL ||
	    event_add(ev[4], &tv) == -1) {
		log_errorx("cannot add the publishing timer");
		goto out;
	}
	sigprocmask(SIG_SETMASK, &ctx->sigmask, NULL);
	main_worker_publish_cb(-1, 0, ctx);	/* set up: the master waits */
	log_debug("relaying on queue %u", self->idx);
	if (event_base_dispatch(ctx->base) == -1)
		log_errorx("event loop failed");
	else
		rc = ctx->failed ? WORKER_EXIT_FATAL : 0;
	main_worker_publish_cb(-1, 0, ctx);
out:
	/* first the events that read the tunnel: freeing it runs the loop */
	for (int i = 0; i < 5; i++)
		if (ev[i] != NULL)
			event_free(ev[i]);
	tunnel_free(ctx->tunnel);
	upstream_free(ctx->up);
	event_base_free(ctx->base);
	return rc;
}

/* How many workers: [process] workers, or the CPUs (auto). */
static unsigned
main_workers(const struct config *c)
{
	int n;

	if (c->workers > 0)
		return c->workers;
	n = get_nprocs();
	if (n < 1)
		n = 1;
	return n > CONFIG_WORKERS_AUTO_MAX ? CONFIG_WORKERS_AUTO_MAX :
	    (unsigned)n;
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
	struct event *sigev = NULL, *watchdog = NULL;
	sigset_t sigs;
	uint64_t wd_usec;
	struct main_ctx ctx;
	struct upstream *up = NULL;
	struct tun tun = { .fd = -1 };
	int queues[TUN_QUEUES_MAX];
	unsigned nworkers;
	char upname[URL_HOST_MAX + 32];

	memset(&ctx, 0, sizeof(ctx));
	ctx.sigfd = -1;
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
	ctx.tun = &tun;
	nworkers = main_workers(&c);
	if (nworkers > 1 && c.tun_fd >= 0) {
		log_info("process: an adopted TUN fd is one queue: one worker");
		nworkers = 1;
	}
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
		int n;

		if (nworkers > 1) {
			if ((n = tun_open_queues(&tun, c.tun_name, c.offload,
			    queues, (int)nworkers)) == -1)
				goto out;
			nworkers = (unsigned)n;
		} else if ((c.offload ? tun_open_offload(&tun, c.tun_name) :
		    tun_open(&tun, c.tun_name)) == -1)
			goto out;
		if (tun_set_mtu(&tun, c.mtu) == -1 ||
		    (c.has_ipv4 && tun_add_ipv4(&tun, &c.ipv4, c.ipv4_prefix) == -1) ||
		    (c.has_ipv6 && tun_add_ipv6(&tun, &c.ipv6, c.ipv6_prefix) == -1) ||
		    tun_up(&tun) == -1)
			goto out;
	}
	ctx.base = base;
	ctx.tun_name = tun.name;
	/* one worker: the tunnel runs here; more: in the workers, later */
	if (nworkers == 1 && (ctx.tunnel = tunnel_new(base, tun.fd,
	    tun.vnet_hdr, &c, up, NULL, main_stack_fatal_cb, &ctx)) == NULL)
		goto out;
	if (c.metrics_listen.ss_family != AF_UNSPEC) {
		if ((ctx.metrics = metrics_new(base,
		    (struct sockaddr *)&c.metrics_listen, main_metrics_get,
		    &ctx, err, sizeof(err))) == NULL) {
			log_errorx("metrics: %s", err);
			goto out;
		}
		log_info("metrics: http://%s/metrics", addr_str((struct sockaddr *)
		    &c.metrics_listen, upname, sizeof(upname)));
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &sigs, &ctx.sigmask) == -1 ||
	    (ctx.sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) ==
	    -1 || (sigev = event_new(base, ctx.sigfd, EV_READ | EV_PERSIST,
	    main_signalfd_cb, &ctx)) == NULL || event_add(sigev, NULL) == -1) {
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
	if (nworkers > 1 && c.dns_mode == CONFIG_DNS_FAKE_IP &&
	    (ctx.fakeip = tunnel_fakeip_new(&c, up, true)) == NULL)
		goto out;
	if (nworkers > 1) {
		/* after the privilege drop: a restarted worker is forked
		 * from this process as it is then */
		if ((ctx.workers = workers_new(base, nworkers, queues,
		    main_worker_run, &ctx)) == NULL)
			goto out;
		workers_set_timeout(ctx.workers, c.worker_timeout_ms);
		if (!workers_wait_up(ctx.workers, 10000)) {
			log_errorx("process: a worker did not start");
			goto out;
		}
	}
	log_info("ready: tun %s mtu %d%s, upstream %s, %u worker%s", tun.name,
	    c.mtu, tun.vnet_hdr ? " offloads" : "",
	    url_redacted(&c.upstream, upname, sizeof(upname)), nworkers,
	    nworkers > 1 ? "s" : "");
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
	if (ctx.workers != NULL) {
		/* they close their flows and publish their last counters */
		workers_stop(ctx.workers, 5000);
		if (workers_failed(ctx.workers))
			rc = 1;
		else if (workers_exit_code(ctx.workers) != 0)
			rc = workers_exit_code(ctx.workers);
	}
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
	{
		struct fakeip *fi = ctx.fakeip != NULL ? ctx.fakeip :
		    ctx.tunnel != NULL ? tunnel_fakeip(ctx.tunnel) : NULL;

		if (fi != NULL && c.state_file[0] != '\0' && fakeip_save(fi,
		    c.state_file, err, sizeof(err)) == -1)
			log_warnx("dns: state_file: %s", err);
	}
	metrics_free(ctx.metrics);
	tunnel_free(ctx.tunnel);
	workers_free(ctx.workers);
	fakeip_free(ctx.fakeip);
	tun_close(&tun);
	upstream_free(ctx.up);
	if (sigev != NULL)
		event_free(sigev);
	if (ctx.sigfd != -1)
		close(ctx.sigfd);
	if (watchdog != NULL)
		event_free(watchdog);
	if (base != NULL)
		event_base_free(base);
	explicit_bzero(&c, sizeof(c));
	free(ov);
	return rc;
}
