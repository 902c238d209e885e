/*
 * metrics.c - /metrics and /status over evhttp (see metrics.h).
 *
 * Names follow Prometheus conventions: sluice_ prefix, _total for
 * counters, _bytes and _seconds for units, labels for the kinds of one
 * thing (reasons of refusals and drops).  Everything is read from the
 * modules' stats getters at scrape time; nothing is kept here.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>

#include "addr.h"
#include "dnsfwd.h"
#include "fakeip.h"
#include "flow.h"
#include "log.h"
#include "metrics.h"
#include "stack.h"
#include "tun.h"
#include "udp.h"
#include "upstream.h"

struct metrics {
	struct evhttp		*http;
	metrics_get_cb		 get;
	void			*arg;
};

/* The HELP and TYPE lines of a metric. */
static void
metrics_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A metric with one sample and no labels. */
static void
metrics_one(struct evbuffer *b, const char *name, const char *type,
    const char *help, unsigned long long v)
{
	metrics_head(b, name, type, help);
	evbuffer_add_printf(b, "%s %llu\n", name, v);
}

/* One sample with one label. */
static void
metrics_label(struct evbuffer *b, const char *name, const char *label,
    const char *value, unsigned long long v)
{
	evbuffer_add_printf(b, "%s{%s=\"%s\"} %llu\n", name, label, value, v);
}

unsigned long long
metrics_rss(pid_t pid)
{
	unsigned long long size = 0, rss = 0;
	char path[64];
	FILE *f;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/statm");
	else
		snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * (unsigned long long)sysconf(_SC_PAGESIZE);
}

unsigned long long
metrics_fds(pid_t pid)
{
	unsigned long long n = 0;
	struct dirent *de;
	char path[64];
	DIR *d;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/fd");
	else
		snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	/* not the one opendir holds */
	return pid == 0 && n > 0 ? n - 1 : n;
}

static void
metrics_flows(struct evbuffer *b, const struct metrics_snapshot *src)
{
	const struct flows_stats fs = src->st.flows;
	uint64_t other;

	metrics_one(b, "sluice_flows_active", "gauge",
	    "TCP flows open now.", fs.active);
	metrics_one(b, "sluice_flows_accepted_total", "counter",
	    "TCP flows (SYNs) taken.", fs.accepted);
	metrics_one(b, "sluice_flows_established_total", "counter",
	    "TCP flows whose tunnel opened.", fs.established);
	metrics_head(b, "sluice_flows_refused_total", "counter",
	    "TCP flows refused with a RST, by reason.");
	other = fs.refused - fs.over_limit - fs.over_memory - fs.loops;
	metrics_label(b, "sluice_flows_refused_total", "reason", "max_flows",
	    fs.over_limit);
	metrics_label(b, "sluice_flows_refused_total", "reason", "memory",
	    fs.over_memory);
	metrics_label(b, "sluice_flows_refused_total", "reason", "loop",
	    fs.loops);
	metrics_label(b, "sluice_flows_refused_total", "reason", "upstream",
	    other);
	metrics_head(b, "sluice_flow_bytes_total", "counter",
	    "TCP payload relayed, by direction.");
	metrics_label(b, "sluice_flow_bytes_total", "direction", "up",
	    fs.bytes_up);
	metrics_label(b, "sluice_flow_bytes_total", "direction", "down",
	    fs.bytes_down);
	metrics_one(b, "sluice_flow_buffered_bytes", "gauge",
	    "Bytes the TCP flows hold in sluice's buffers.", fs.held);
}

static void
metrics_upstream(struct evbuffer *b, const struct metrics_snapshot *src)
{
	static const char *const kinds[UPSTREAM_FAIL_KINDS] = {
		"timeout", "connect", "tls", "proxy", "destination",
	};
	const struct upstream_stats us = src->st.up;
	int i;

	metrics_head(b, "sluice_upstream_dial_seconds", "histogram",
	    "Time to open a tunnel through the upstream proxy (connect, TLS, "
	    "proxy handshake).");
	for (i = 0; i < UPSTREAM_DIAL_BUCKETS; i++)
		evbuffer_add_printf(b, "sluice_upstream_dial_seconds_bucket"
		    "{le=\"%g\"} %llu\n", us.le[i],
		    (unsigned long long)us.dial_le[i]);
	evbuffer_add_printf(b, "sluice_upstream_dial_seconds_bucket"
	    "{le=\"+Inf\"} %llu\n", (unsigned long long)us.dials);
	evbuffer_add_printf(b, "sluice_upstream_dial_seconds_sum %.6f\n",
	    us.dial_seconds);
	evbuffer_add_printf(b, "sluice_upstream_dial_seconds_count %llu\n",
	    (unsigned long long)us.dials);
	metrics_head(b, "sluice_upstream_dial_failures_total", "counter",
	    "Tunnels that could not be opened, by kind.");
	for (i = 0; i < UPSTREAM_FAIL_KINDS; i++)
		metrics_label(b, "sluice_upstream_dial_failures_total", "kind",
		    kinds[i], us.failed[i]);
	metrics_head(b, "sluice_tls_handshakes_total", "counter",
	    "TLS handshakes with the upstream, full or resumed.");
	metrics_label(b, "sluice_tls_handshakes_total", "type", "full",
	    us.tls_full);
	metrics_label(b, "sluice_tls_handshakes_total", "type", "resumed",
	    us.tls_resumed);
}

static void
metrics_udp(struct evbuffer *b, const struct metrics_snapshot *src)
{
	const struct udps_stats u = src->st.udp;

	if (!src->st.has_udp)
		return;
	metrics_one(b, "sluice_udp_associations_active", "gauge",
	    "UDP associations opening or open.", u.active);
	metrics_one(b, "sluice_udp_associations_opened_total", "counter",
	    "UDP associations the proxy granted.", u.opened);
	metrics_one(b, "sluice_udp_associations_failed_total", "counter",
	    "UDP associations refused or that failed to open.", u.failed);
	metrics_one(b, "sluice_udp_associations_expired_total", "counter",
	    "UDP associations closed after the idle timeout.", u.expired);
	metrics_head(b, "sluice_udp_datagrams_total", "counter",
	    "UDP datagrams relayed, by direction.");
	metrics_label(b, "sluice_udp_datagrams_total", "direction", "up",
	    u.up);
	metrics_label(b, "sluice_udp_datagrams_total", "direction", "down",
	    u.down);
	metrics_head(b, "sluice_udp_bytes_total", "counter",
	    "UDP payload relayed, by direction.");
	metrics_label(b, "sluice_udp_bytes_total", "direction", "up",
	    u.up_bytes);
	metrics_label(b, "sluice_udp_bytes_total", "direction", "down",
	    u.down_bytes);
	metrics_head(b, "sluice_udp_dropped_total", "counter",
	    "UDP datagrams dropped, by reason.");
	metrics_label(b, "sluice_udp_dropped_total", "reason", "no_udp",
	    u.no_udp);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "refused",
	    u.refused);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "queue_full",
	    u.queue_full);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "max_flows",
	    u.over_max);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "fragmented",
	    u.fragmented);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "filtered",
	    u.filtered);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "bad_reply",
	    u.bad_reply);
	metrics_label(b, "sluice_udp_dropped_total", "reason", "send_error",
	    u.send_error);
	metrics_head(b, "sluice_icmp_unreachable_total", "counter",
	    "ICMP port unreachable for datagrams that could not go, sent or "
	    "held back by the rate limit.");
	metrics_label(b, "sluice_icmp_unreachable_total", "result", "sent",
	    u.icmp_sent);
	metrics_label(b, "sluice_icmp_unreachable_total", "result",
	    "rate_limited", u.icmp_limited);
}

static void
metrics_dns(struct evbuffer *b, const struct metrics_snapshot *src)
{
	const struct dnsfwd_stats d = src->st.dns;
	const struct fakeip_stats f = src->st.fakeip;

	if (src->st.has_dns) {
		metrics_head(b, "sluice_dns_queries_total", "counter",
		    "DNS queries over UDP taken, by outcome.");
		metrics_label(b, "sluice_dns_queries_total", "outcome",
		    "fake", d.fake);
		metrics_label(b, "sluice_dns_queries_total", "outcome",
		    "nodata", d.nodata);
		metrics_label(b, "sluice_dns_queries_total", "outcome", "tcp",
		    d.tcp);
		metrics_label(b, "sluice_dns_queries_total", "outcome",
		    "servfail", d.servfail);
		metrics_label(b, "sluice_dns_queries_total", "outcome", "bad",
		    d.bad);
		metrics_one(b, "sluice_dns_truncated_total", "counter",
		    "DNS answers sent back cut to the client's UDP size (TC).",
		    d.truncated);
		metrics_one(b, "sluice_dns_timeouts_total", "counter",
		    "DNS queries answered SERVFAIL for want of an answer.",
		    d.timeouts);
		metrics_one(b, "sluice_dns_pending", "gauge",
		    "DNS queries waiting for a resolver.", d.pending);
		metrics_one(b, "sluice_dns_connections", "gauge",
		    "TCP connections to resolvers.", d.conns);
	}
	if (src->st.has_fakeip) {
		metrics_one(b, "sluice_fakeip_mappings", "gauge",
		    "Names mapped to fake addresses.", f.mappings);
		metrics_one(b, "sluice_fakeip_evicted_total", "counter",
		    "Fake-IP mappings forgotten to make room.", f.evicted);
		metrics_one(b, "sluice_fakeip_unmapped_total", "counter",
		    "Traffic to fake addresses that stand for no name.",
		    f.unmapped);
	}
}

static void
metrics_stack(struct evbuffer *b, const struct metrics_snapshot *src)
{
	const struct stack_stats ss = src->st.stack;

	metrics_head(b, "sluice_tun_packets_total", "counter",
	    "Packets through the TUN device, by direction.");
	metrics_label(b, "sluice_tun_packets_total", "direction", "rx",
	    ss.rx_packets);
	metrics_label(b, "sluice_tun_packets_total", "direction", "tx",
	    ss.tx_packets);
	metrics_head(b, "sluice_tun_bytes_total", "counter",
	    "Bytes through the TUN device, by direction.");
	metrics_label(b, "sluice_tun_bytes_total", "direction", "rx",
	    ss.rx_bytes);
	metrics_label(b, "sluice_tun_bytes_total", "direction", "tx",
	    ss.tx_bytes);
	metrics_head(b, "sluice_tun_dropped_total", "counter",
	    "Packets dropped at the TUN device or in the stack, by where.");
	metrics_label(b, "sluice_tun_dropped_total", "where", "rx",
	    ss.rx_dropped);
	metrics_label(b, "sluice_tun_dropped_total", "where", "tx",
	    ss.tx_dropped);
	metrics_label(b, "sluice_tun_dropped_total", "where", "ip",
	    ss.ip_dropped);
	metrics_label(b, "sluice_tun_dropped_total", "where", "tcp",
	    ss.tcp_dropped);
	metrics_label(b, "sluice_tun_dropped_total", "where", "icmp_echo",
	    ss.echo_dropped);
	metrics_label(b, "sluice_tun_dropped_total", "where",
	    "kernel_queue", src->kernel_drops);
	metrics_one(b, "sluice_tun_fragments_steered_total", "counter",
	    "IP fragments a worker handed to the worker that reassembles "
	    "them.", ss.frag_steered);
	metrics_one(b, "sluice_lwip_assertions_total", "counter",
	    "lwIP assertions that fired (logged, not fatal).",
	    ss.lwip_asserts);
	metrics_head(b, "sluice_lwip_pool_used_ratio", "gauge",
	    "Share of lwIP's memory in use, by pool.");
	evbuffer_add_printf(b, "sluice_lwip_pool_used_ratio{pool=\"heap\"} "
	    "%.2f\n", ss.heap_used_pct / 100.0);
	evbuffer_add_printf(b, "sluice_lwip_pool_used_ratio{pool=\"tcp_seg\"} "
	    "%.2f\n", ss.seg_used_pct / 100.0);
}

/* One counter per worker, labelled with its number. */
static void
metrics_per_worker(struct evbuffer *b, const struct metrics_snapshot *src,
    const char *name, const char *help, bool rx)
{
	char w[16];

	metrics_head(b, name, "counter", help);
	for (unsigned i = 0; i < src->nworkers; i++) {
		snprintf(w, sizeof(w), "%u", i);
		metrics_label(b, name, "worker", w, rx ? src->w[i].rx_packets :
		    src->w[i].accepted);
	}
}

/* Worker processes: each one's share, and restarts. */
static void
metrics_workers(struct evbuffer *b, const struct metrics_snapshot *src)
{
	if (src->nworkers <= 1)
		return;
	metrics_one(b, "sluice_workers", "gauge",
	    "Worker processes, one per TUN queue.", src->nworkers);
	metrics_one(b, "sluice_worker_restarts_total", "counter",
	    "Worker processes that died and were started again.",
	    src->restarts);
	metrics_per_worker(b, src, "sluice_worker_flows_accepted_total",
	    "TCP flows taken, by worker (since it started).", false);
	metrics_per_worker(b, src, "sluice_worker_tun_rx_packets_total",
	    "Packets read from the TUN, by worker (queue).", true);
}

int
metrics_render(struct evbuffer *out, const struct metrics_snapshot *src)
{
	metrics_flows(out, src);
	metrics_upstream(out, src);
	metrics_udp(out, src);
	metrics_dns(out, src);
	metrics_stack(out, src);
	metrics_workers(out, src);
	metrics_one(out, "sluice_process_resident_memory_bytes", "gauge",
	    "Resident memory of the sluice processes (workers too).",
	    src->rss);
	metrics_one(out, "sluice_process_open_fds", "gauge",
	    "File descriptors open in the sluice processes (workers too).",
	    src->fds);
	return 0;
}

/* /status: the headline numbers as one JSON object. */
static void
metrics_status(struct evbuffer *b, const struct metrics_snapshot *src)
{
	const struct flows_stats fs = src->st.flows;
	const struct udps_stats us = src->st.udp;

	evbuffer_add_printf(b, "{\"upstream\":\"%s\",\"flows_active\":%u,"
	    "\"flows_accepted\":%llu,\"flows_refused\":%llu,\"bytes_up\":%llu,"
	    "\"bytes_down\":%llu,\"udp_associations\":%u,"
	    "\"rss_bytes\":%llu,\"open_fds\":%llu,\"workers\":%u}\n",
	    src->upstream != NULL ? src->upstream : "",
	    fs.active, (unsigned long long)fs.accepted,
	    (unsigned long long)fs.refused, (unsigned long long)fs.bytes_up,
	    (unsigned long long)fs.bytes_down, us.active, src->rss, src->fds,
	    src->nworkers > 1 ? src->nworkers : 1);
}

static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *uri = u != NULL ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *b;
	struct metrics_snapshot *snap = NULL;
	const char *type;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (uri == NULL)
		uri = "";
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (strcmp(uri, "/metrics") == 0 || strcmp(uri, "/status") == 0) {
		if ((snap = calloc(1, sizeof(*snap))) == NULL) {
			evbuffer_free(b);
			evhttp_send_error(req, HTTP_INTERNAL, NULL);
			return;
		}
		m->get(m->arg, snap);
	}
	if (strcmp(uri, "/metrics") == 0) {
		metrics_render(b, snap);
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (strcmp(uri, "/status") == 0) {
		metrics_status(b, snap);
		type = "application/json";
	} else {
		evbuffer_free(b);
		free(snap);
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
	free(snap);
}

struct metrics *
metrics_new(struct event_base *base, const struct sockaddr *addr,
    metrics_get_cb get, void *arg, char *err, size_t errlen)
{
	struct metrics *m;
	evutil_socket_t fd = -1;
	socklen_t len = addr->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int one = 1;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(m);
		return NULL;
	}
	m->get = get;
	m->arg = arg;
	if ((fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, addr, len) == -1 || listen(fd, 16) == -1 ||
	    evhttp_accept_socket(m->http, fd) == -1) {
		char a[64];

		snprintf(err, errlen, "listen %s: %s", addr_str(addr, a,
		    sizeof(a)), strerror(errno));
		if (fd != -1)
			close(fd);
		evhttp_free(m->http);
		free(m);
		return NULL;
	}
	/* the others reach the callback, which answers 405 */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	evhttp_free(m->http);
	free(m);
}
