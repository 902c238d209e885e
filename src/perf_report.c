/*
 * perf_report.c - what `sluice --perf` prints: iperf3-style interval lines
 * on stderr, one line (or JSON object) per run and the min/median/max
 * summary on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf_int.h"

/* Print the interval lines due, iperf3-style, to stderr. */
void
perf_tick_print(struct perf *p, struct perf_run *r, double now, bool last)
{
	uint64_t moved = atomic_load_explicit(&r->client_moved,
	    memory_order_relaxed);
	double from = r->tick_at - 1, to = last ? now : r->tick_at;
	uint64_t delta = moved - r->tick_bytes;

	if (p->o.quiet || to <= from)
		return;
	fprintf(stderr, "[%3u] %6.2f-%-6.2f sec %6.0f MBytes %6.2f Gbits/sec\n",
	    r->idx, from, to, (double)delta / (1024 * 1024),
	    perf_gbps(delta, to - from));
	r->tick_bytes = moved;
}

static void
perf_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void
perf_run_report(struct perf *p, struct perf_run *r, double secs, double gbps)
{
	const struct perf_opts *o = &p->o;
	const char *err = perf_run_error(r);
	struct stack_stats st;

	if (o->json) {
		stack_get_stats(p->stack, &st);
		printf("{\"type\":\"run\",\"run\":%u,\"mode\":\"%s\","
		    "\"path\":\"%s\",\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,"
		    "\"seconds\":%.6f,\"gbps\":%.3f,\"verified\":%s,"
		    "\"tun_rx_packets\":%llu,\"tun_tx_packets\":%llu,"
		    "\"tun_tx_dropped\":%llu",
		    r->idx, perf_mode_name(o->mode), perf_path_name(o->path),
		    o->mtu, p->tun.vnet_hdr ? "true" : "false",
		    (unsigned long long)o->bytes, secs, gbps,
		    err == NULL ? "true" : "false",
		    (unsigned long long)(st.rx_packets - r->st0.rx_packets),
		    (unsigned long long)(st.tx_packets - r->st0.tx_packets),
		    (unsigned long long)(st.tx_dropped - r->st0.tx_dropped));
		if (err != NULL) {
			printf(",\"error\":");
			perf_json_string(stdout, err);
		}
		printf("}\n");
	} else if (err == NULL) {
		printf("client io mode: %s, throughput: %.3f Gbps\n",
		    perf_mode_name(o->mode), gbps);
	}
	fflush(stdout);
}

static int
perf_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void
perf_summary(const struct perf *p)
{
	unsigned n = p->o.runs;
	double *v, med;

	if ((v = calloc(n, sizeof(*v))) == NULL)
		return;
	memcpy(v, p->gbps, n * sizeof(*v));
	qsort(v, n, sizeof(*v), perf_cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	if (p->o.json)
		printf("{\"type\":\"summary\",\"mode\":\"%s\",\"path\":\"%s\","
		    "\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,\"runs\":%u,"
		    "\"min\":%.3f,\"median\":%.3f,\"max\":%.3f,"
		    "\"threads\":1}\n",
		    perf_mode_name(p->o.mode), perf_path_name(p->o.path),
		    p->o.mtu, p->tun.vnet_hdr ? "true" : "false",
		    (unsigned long long)p->o.bytes, n, v[0], med, v[n - 1]);
	else if (n > 1)
		printf("client io mode: %s, runs: %u, throughput "
		    "min/median/max: %.3f/%.3f/%.3f Gbps\n",
		    perf_mode_name(p->o.mode), n, v[0], med, v[n - 1]);
	fflush(stdout);
	free(v);
}
