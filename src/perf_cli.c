/*
 * perf_cli.c - the command line of `sluice --perf`: usage text and the
 * parser that fills struct perf_opts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "perf_int.h"

static void
perf_usage(FILE *f)
{
	fprintf(f,
"usage: sluice --perf reader|writer [options]\n"
"\n"
"Throughput self-benchmark.  A client thread moves bytes over a kernel TCP\n"
"socket through a TUN device to a server on sluice's own stack, in a\n"
"private network namespace sluice creates for itself (needs CAP_SYS_ADMIN\n"
"and CAP_NET_ADMIN; the host's network is never touched).  Every byte is\n"
"checked; a mismatch fails with exit status 1.\n"
"\n"
"  reader: the server writes, the client reads (port 1234)\n"
"  writer: the client writes, the server reads (port 1235)\n"
"\n"
"      --perf-bytes N        bytes per run (1e9)\n"
"      --perf-runs N         runs; more than one adds min/median/max (1)\n"
"      --perf-path PATH      stack: the server is lwIP's raw API (default)\n"
"                            relay: the flow relay and a SOCKS5 handshake to\n"
"                            an in-process SOCKS5 server that sources/sinks\n"
"      --perf-workers N      N worker processes, each with its own TUN queue,\n"
"                            lwIP stack and server, and N client connections\n"
"                            (one per worker), 1..16 (1)\n"
"      --perf-addr ADDR      IPv4 address the client connects to (198.18.0.2)\n"
"      --perf-timeout SEC    give up on a run after SEC seconds (120)\n"
"      --mtu N               TUN MTU, 576..65535 (1500)\n"
"      --tun-offload yes|no  TSO and checksum offloads on the TUN, as the\n"
"                            tunnel's [tun] offload (yes)\n"
"      --flow-buffer SIZE    relay path: buffer per flow (256k)\n"
"      --json                one JSON object per run, then a summary\n"
"      --quiet               no per-second interval lines on stderr\n"
"      --log-level LEVEL     debug, info, warn or error (warn)\n"
"      --perf-corrupt OFF    test only: flip the byte at stream offset OFF\n"
"                            at its source, to prove that the check works\n"
"  -h, --help                this help\n"
"\n"
"The data path runs on one thread (lwIP is one instance per process).  With\n"
"--perf-workers N the TUN device has N queues, connection i is steered to\n"
"queue i, and each run prints one line per worker (its bytes, timed on its\n"
"own) before the run's total line.\n");
}

/* "1000000000", "1e9", "50000000": a whole number 1..max. */
static bool
perf_parse_count(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	double d;
	unsigned long long u;

	errno = 0;
	u = strtoull(s, &end, 10);
	if (*s != '\0' && *s != '-' && *end == '\0' && errno == 0) {
		if (u < 1 || u > max)
			return false;
		*out = u;
		return true;
	}
	errno = 0;
	d = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || d < 1 ||
	    d > (double)max || d != floor(d))
		return false;
	*out = (uint64_t)d;
	return true;
}

enum {
	PERF_OPT_MODE = 1000,
	PERF_OPT_BYTES,
	PERF_OPT_RUNS,
	PERF_OPT_PATH,
	PERF_OPT_ADDR,
	PERF_OPT_TIMEOUT,
	PERF_OPT_MTU,
	PERF_OPT_OFFLOAD,
	PERF_OPT_FLOW_BUFFER,
	PERF_OPT_JSON,
	PERF_OPT_QUIET,
	PERF_OPT_LOG_LEVEL,
	PERF_OPT_CORRUPT,
	PERF_OPT_WORKERS,
};

static const struct option perf_longopts[] = {
	{ "perf",		required_argument,	NULL, PERF_OPT_MODE },
	{ "perf-bytes",		required_argument,	NULL, PERF_OPT_BYTES },
	{ "perf-runs",		required_argument,	NULL, PERF_OPT_RUNS },
	{ "perf-path",		required_argument,	NULL, PERF_OPT_PATH },
	{ "perf-addr",		required_argument,	NULL, PERF_OPT_ADDR },
	{ "perf-timeout",	required_argument,	NULL, PERF_OPT_TIMEOUT },
	{ "mtu",		required_argument,	NULL, PERF_OPT_MTU },
	{ "tun-offload",	required_argument,	NULL, PERF_OPT_OFFLOAD },
	{ "flow-buffer",	required_argument,	NULL, PERF_OPT_FLOW_BUFFER },
	{ "json",		no_argument,		NULL, PERF_OPT_JSON },
	{ "quiet",		no_argument,		NULL, PERF_OPT_QUIET },
	{ "log-level",		required_argument,	NULL, PERF_OPT_LOG_LEVEL },
	{ "perf-corrupt",	required_argument,	NULL, PERF_OPT_CORRUPT },
	{ "perf-workers",	required_argument,	NULL, PERF_OPT_WORKERS },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL,			0,			NULL, 0 },
};

/* Fill o from argv.  0, 1 (printed help: exit 0) or -1 (error printed). */
int
perf_parse(int argc, char *argv[], struct perf_opts *o)
{
	struct config c;
	uint64_t v;
	bool have_mode = false;
	int ch;
	uint32_t a;
	size_t sz;

	config_defaults(&c);
	memset(o, 0, sizeof(*o));
	o->offload = c.offload;		/* as the tunnel */
	o->path = PERF_PATH_STACK;
	o->bytes = PERF_BYTES_DEFAULT;
	o->runs = 1;
	o->workers = 1;
	o->timeout_s = PERF_TIMEOUT_DEFAULT;
	o->mtu = 1500;
	o->log_level = LOG_LEVEL_WARN;
	inet_pton(AF_INET, "198.18.0.2", &o->addr);

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", perf_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case PERF_OPT_MODE:
			if (strcmp(optarg, "-h") == 0 ||
			    strcmp(optarg, "--help") == 0) {
				perf_usage(stdout);
				return 1;
			}
			if (strcmp(optarg, "reader") == 0)
				o->mode = PERF_READER;
			else if (strcmp(optarg, "writer") == 0)
				o->mode = PERF_WRITER;
			else
				goto bad_value;
			have_mode = true;
			break;
		case PERF_OPT_BYTES:
			if (!perf_parse_count(optarg, PERF_BYTES_MAX,
			    &o->bytes))
				goto bad_value;
			break;
		case PERF_OPT_RUNS:
			if (!perf_parse_count(optarg, PERF_RUNS_MAX, &v))
				goto bad_value;
			o->runs = (unsigned)v;
			break;
		case PERF_OPT_PATH:
			if (strcmp(optarg, "stack") == 0)
				o->path = PERF_PATH_STACK;
			else if (strcmp(optarg, "relay") == 0)
				o->path = PERF_PATH_RELAY;
			else
				goto bad_value;
			break;
		case PERF_OPT_ADDR:
			if (inet_pton(AF_INET, optarg, &o->addr) != 1)
				goto bad_value;
			a = ntohl(o->addr.s_addr);
			/* through the TUN: not lo, not the TUN's own address,
			 * not multicast or broadcast */
			if ((a >> 24) == 127 || (a >> 24) == 0 ||
			    a >= 0xe0000000 || a == 0xc6120001 ||
			    a == 0xc61200ff) {
				fprintf(stderr, "sluice: --perf-addr %s: must "
				    "be a unicast address reached through the "
				    "TUN device (not 198.18.0.1, lo or "
				    "multicast)\n", optarg);
				return -1;
			}
			break;
		case PERF_OPT_TIMEOUT:
			if (!perf_parse_count(optarg, 3600, &v))
				goto bad_value;
			o->timeout_s = (unsigned)v;
			break;
		case PERF_OPT_MTU:
			if (!perf_parse_count(optarg, 65535, &v) || v < 576)
				goto bad_value;
			o->mtu = (int)v;
			break;
		case PERF_OPT_OFFLOAD:
			if (strcmp(optarg, "yes") == 0)
				o->offload = true;
			else if (strcmp(optarg, "no") == 0)
				o->offload = false;
			else
				goto bad_value;
			break;
		case PERF_OPT_FLOW_BUFFER:
			if (!config_parse_size(optarg, &sz) || sz < 16384 ||
			    sz > 64 * 1024 * 1024)
				goto bad_value;
			o->flow_buffer = sz;
			break;
		case PERF_OPT_JSON:
			o->json = true;
			break;
		case PERF_OPT_QUIET:
			o->quiet = true;
			break;
		case PERF_OPT_LOG_LEVEL:
			if (!log_level_parse(optarg, &o->log_level))
				goto bad_value;
			break;
		case PERF_OPT_CORRUPT:
			errno = 0;
			v = strtoull(optarg, NULL, 10);
			if (errno != 0 || optarg[0] < '0' || optarg[0] > '9')
				goto bad_value;
			o->corrupt = true;
			o->corrupt_at = v;
			break;
		case PERF_OPT_WORKERS:
			if (!perf_parse_count(optarg, PERF_WORKERS_MAX, &v))
				goto bad_value;
			o->workers = (unsigned)v;
			break;
		case 'h':
			perf_usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, "sluice: %s: needs a value\n",
			    argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "sluice: --perf: unknown option `%s'\n",
			    argv[optind - 1]);
			perf_usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice: --perf: unexpected argument `%s'\n",
		    argv[optind]);
		return -1;
	}
	if (!have_mode) {
		fprintf(stderr, "sluice: --perf: reader or writer?\n");
		return -1;
	}
	if (o->workers > o->bytes) {
		fprintf(stderr, "sluice: --perf-workers: more workers than "
		    "--perf-bytes\n");
		return -1;
	}
	if (o->corrupt && o->workers > 1) {
		/* the client threads would share the corrupted stretch */
		fprintf(stderr, "sluice: --perf-corrupt: not with "
		    "--perf-workers\n");
		return -1;
	}
	if (o->corrupt && o->corrupt_at >= o->bytes) {
		fprintf(stderr, "sluice: --perf-corrupt: offset beyond "
		    "--perf-bytes\n");
		return -1;
	}
	return 0;

bad_value:
	fprintf(stderr, "sluice: %s: bad value `%s'\n", argv[optind - 1] ==
	    optarg ? argv[optind - 2] : argv[optind - 1], optarg);
	return -1;
}
