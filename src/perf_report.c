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
perf_tick_print(struct perf *p, double now, bool last)
{
	uint64_t moved = 0;
	double from = p->tick_at - 1, to = last ? now : p->tick_at;
	uint64_t delta;
	unsigned i;

	if (p->o.quiet || to <= from || p->nstreams == 0)
		return;
	for (i = 0; i < p->nstreams; i++)
		moved += atomic_load_explicit(&p->streams[i]->client_moved,
		    memory_order_relaxed);
	delta = moved - p->tick_bytes;
	fprintf(stderr, "[%3u] %6.2f-%-6.2f sec %6.0f MBytes %6.2f Gbits/sec\n",
	    p->streams[0]->idx, from, to, (double)delta / (1024 * 1024),
	    perf_gbps(delta, to - from));
	p->tick_bytes = moved;
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

/*
 * One JSON object, without its closing brace: a run (worker 0) or one
 * worker's share of it (worker 1..N).
 */
static void
perf_json_row(const struct perf *p, unsigned idx, unsigned worker,
    uint64_t bytes, double secs, double gbps, bool verified,
    const struct stack_stats *st)
{
	const struct perf_opts *o = &p->o;

	printf("{\"type\":\"%s\",\"run\":%u,", worker > 0 ? "worker" : "run",
	    idx);
	if (worker > 0)
		printf("\"worker\":%u,", worker);
	printf("\"mode\":\"%s\","
	    "\"path\":\"%s\",\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,"
	    "\"seconds\":%.6f,\"gbps\":%.3f,\"verified\":%s,"
	    "\"tun_rx_packets\":%llu,\"tun_tx_packets\":%llu,"
	    "\"tun_tx_dropped\":%llu",
	    perf_mode_name(o->mode), perf_path_name(o->path),
	    o->mtu, p->tun.vnet_hdr ? "true" : "false",
	    (unsigned long long)bytes, secs, gbps,
	    verified ? "true" : "false",
	    (unsigned long long)st->rx_packets,
	    (unsigned long long)st->tx_packets,
	    (unsigned long long)st->tx_dropped);
}

/*
 * With workers: each worker's connection, timed on its own, with the bytes
 * its server moved (and checked, in writer mode).
 */
static void
perf_workers_report(const struct perf *p)
{
	const struct perf_run *r;
	double secs, gbps;
	unsigned i;

	for (i = 0; i < p->nstreams; i++) {
		r = p->streams[i];
		secs = perf_ts_diff(&r->t_start, &r->t_end);
		gbps = perf_gbps(r->server_moved, secs);
		if (p->o.json) {
			perf_json_row(p, r->idx, i + 1, r->server_moved, secs,
			    gbps, true, &r->st);
			printf("}\n");
		} else
			printf("client io mode: %s, worker: %u, bytes: %llu, "
			    "throughput: %.3f Gbps\n",
			    perf_mode_name(p->o.mode), i + 1,
			    (unsigned long long)r->server_moved, gbps);
	}
}

void
perf_run_report(struct perf *p, double secs, double gbps)
{
	const struct perf_opts *o = &p->o;
	const char *err = perf_error(p);
	struct stack_stats st, sum;
	unsigned i;

	if (err == NULL && PERF_PARENT(p))
		perf_workers_report(p);
	memset(&sum, 0, sizeof(sum));
	if (!PERF_PARENT(p)) {
		stack_get_stats(p->stack, &st);
		sum.rx_packets = st.rx_packets - p->run->st0.rx_packets;
		sum.tx_packets = st.tx_packets - p->run->st0.tx_packets;
		sum.tx_dropped = st.tx_dropped - p->run->st0.tx_dropped;
	} else {
		for (i = 0; i < p->nstreams; i++) {
			sum.rx_packets += p->streams[i]->st.rx_packets;
			sum.tx_packets += p->streams[i]->st.tx_packets;
			sum.tx_dropped += p->streams[i]->st.tx_dropped;
		}
	}
	if (o->json) {
		perf_json_row(p, p->streams[0]->idx, 0, o->bytes, secs, gbps,
		    err == NULL, &sum);
		if (PERF_PARENT(p))
			printf(",\"workers\":%u", o->workers);
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
	char workers[32];

	if ((v = calloc(n, sizeof(*v))) == NULL)
		return;
	memcpy(v, p->gbps, n * sizeof(*v));
	qsort(v, n, sizeof(*v), perf_cmp_double);
	med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	snprintf(workers, sizeof(workers), ",\"workers\":%u", p->o.workers);
	if (p->o.json)
		printf("{\"type\":\"summary\",\"mode\":\"%s\",\"path\":\"%s\","
		    "\"mtu\":%d,\"offload\":%s,\"bytes\":%llu,\"runs\":%u,"
		    "\"min\":%.3f,\"median\":%.3f,\"max\":%.3f,"
		    "\"threads\":%u%s}\n",
		    perf_mode_name(p->o.mode), perf_path_name(p->o.path),
		    p->o.mtu, p->tun.vnet_hdr ? "true" : "false",
		    (unsigned long long)p->o.bytes, n, v[0], med, v[n - 1],
		    p->o.workers, p->o.workers > 1 ? workers : "");
	else if (n > 1)
		printf("client io mode: %s, runs: %u, throughput "
		    "min/median/max: %.3f/%.3f/%.3f Gbps\n",
		    perf_mode_name(p->o.mode), n, v[0], med, v[n - 1]);
	fflush(stdout);
	free(v);
}
