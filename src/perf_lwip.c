/*
 * perf_lwip.c - the server of the stack path of `sluice --perf`: lwIP's raw
 * API on the main thread, a listener on the mode's port, tcp_write()
 * straight from the static pattern (no copy) in reader mode, and in writer
 * mode every received byte checked before tcp_recved().
 */
#include <stdio.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "perf_int.h"

/* Forget the server pcb: clear its callbacks, then close or abort it. */
void
perf_server_drop(struct perf_run *r, bool abort)
{
	struct tcp_pcb *pcb = r->pcb;

	if (pcb == NULL)
		return;
	r->pcb = NULL;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	if (abort || tcp_close(pcb) != ERR_OK)
		tcp_abort(pcb);
}

/*
 * Reader mode: queue pattern bytes as far as the send buffer has room.
 * Only called from lwIP callbacks (accept, sent): tcp_input() runs
 * tcp_output() once they return, so calling it here would only walk the
 * queues twice.
 */
static void
perf_server_fill(struct perf_run *r)
{
	struct tcp_pcb *pcb = r->pcb;
	uint64_t total = r->bytes;
	u16_t mss = tcp_mss(pcb), chunk;
	size_t n;
	err_t err;

	/* whole segments per call, so no segment spans two calls */
	chunk = (u16_t)(mss > 0 ? (0xffff / mss) * mss : 0xffff);
	while (r->queued < total) {
		n = tcp_sndbuf(pcb);
		if (n == 0)
			break;
		if (n > chunk)
			n = chunk;
		if (n > total - r->queued)
			n = (size_t)(total - r->queued);
		/* no copy: the pattern is static and never changes */
		err = tcp_write(pcb, perf_source(&r->p->o, r->queued, n),
		    (u16_t)n, r->queued + n < total ? TCP_WRITE_FLAG_MORE : 0);
		if (err == ERR_MEM)
			break;		/* the sent callback comes back */
		if (err != ERR_OK) {
			perf_main_fail(r, "server: tcp_write: %s",
			    stack_strerr(err));
			return;
		}
		r->queued += n;
	}
	if (r->queued == total && !r->fin_sent &&
	    tcp_shutdown(pcb, 0, 1) == ERR_OK)
		r->fin_sent = true;
}

static err_t
perf_pcb_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct perf_run *r = arg;

	(void)pcb;
	if (r == NULL)
		return ERR_OK;
	r->server_moved += len;
	if (r->p->o.mode == PERF_READER)
		perf_server_fill(r);
	/* a failure aborted the pcb */
	return r->pcb == NULL ? ERR_ABRT : ERR_OK;
}

static err_t
perf_pcb_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct perf_run *r = arg;
	uint64_t total;
	struct pbuf *q;

	if (r == NULL) {
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	total = r->bytes;
	if (p == NULL) {
		/* the client's FIN */
		if (r->p->o.mode == PERF_WRITER ? r->server_moved != total :
		    !r->fin_sent) {
			perf_server_drop(r, true);
			perf_main_fail(r, "server: the client closed after "
			    "%llu of %llu bytes", (unsigned long long)
			    (r->p->o.mode == PERF_WRITER ? r->server_moved :
			    r->queued), (unsigned long long)total);
			return ERR_ABRT;
		}
		perf_server_drop(r, false);
		atomic_store(&r->server_done, true);
		perf_run_check(r->p);
		return ERR_OK;
	}
	if (err != ERR_OK) {
		pbuf_free(p);
		return ERR_OK;
	}
	if (r->p->o.mode == PERF_READER ||
	    r->server_moved + p->tot_len > total) {
		pbuf_free(p);
		perf_server_drop(r, true);
		perf_main_fail(r, "server: the client sent %s",
		    r->p->o.mode == PERF_READER ? "data in reader mode" :
		    "more bytes than expected");
		return ERR_ABRT;
	}
	for (q = p; q != NULL; q = q->next) {
		if (perf_verify("server", r->server_moved, q->payload, q->len,
		    r->server_err, sizeof(r->server_err)) == -1) {
			pbuf_free(p);
			perf_server_drop(r, true);
			perf_main_fail(r, "%s", r->server_err);
			return ERR_ABRT;
		}
		r->server_moved += q->len;
	}
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void
perf_pcb_err_cb(void *arg, err_t err)
{
	struct perf_run *r = arg;

	if (r == NULL)
		return;
	r->pcb = NULL;
	perf_main_fail(r, "server: connection %s after %llu bytes",
	    err == ERR_RST ? "reset" : stack_strerr(err),
	    (unsigned long long)r->server_moved);
}

static err_t
perf_listen_accept_cb(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct perf *p = arg;
	struct perf_run *r = p->run;

	if (err != ERR_OK || pcb == NULL)
		return ERR_VAL;
	if (r == NULL || r->finished || r->pcb != NULL ||
	    atomic_load(&r->accepted)) {
		/* not the connection we are waiting for */
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t_start);
	atomic_store(&r->accepted, true);
	r->pcb = pcb;
	stack_pcb_init(p->stack, pcb);
	tcp_arg(pcb, r);
	tcp_recv(pcb, perf_pcb_recv_cb);
	tcp_sent(pcb, perf_pcb_sent_cb);
	tcp_err(pcb, perf_pcb_err_cb);
	tcp_nagle_disable(pcb);
	perf_tick_arm(p, r);
	if (p->o.mode == PERF_READER)
		perf_server_fill(r);
	return r->pcb == NULL ? ERR_ABRT : ERR_OK;
}

int
perf_listen(struct perf *p)
{
	struct tcp_pcb *pcb, *lpcb;
	uint16_t port = p->o.mode == PERF_READER ? PERF_PORT_READER :
	    PERF_PORT_WRITER;

	if ((pcb = tcp_new_ip_type(IPADDR_TYPE_ANY)) == NULL)
		return -1;
	if (tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
		tcp_abort(pcb);
		return -1;
	}
	if ((lpcb = tcp_listen(pcb)) == NULL) {
		tcp_abort(pcb);
		return -1;
	}
	tcp_arg(lpcb, p);
	tcp_accept(lpcb, perf_listen_accept_cb);
	p->listener = lpcb;
	return 0;
}
