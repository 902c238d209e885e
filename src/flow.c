/*
 * flow.c - relay TCP between lwIP pcbs (clients) and upstream bufferevents.
 *
 * Life of a flow: a SYN reaches the catch-all listener; flows_syn_cb()
 * starts an upstream dial and defers the SYN-ACK.  When the tunnel is open
 * the SYN is answered (tcp_syn_release) and bytes flow; when it fails the
 * client gets a RST.  flow_close() is the only function that ends a flow;
 * the struct itself is freed on the next loop turn (reap list), so a
 * callback that closed its flow may still look at it before returning.
 *
 * Backpressure, client -> upstream: bytes are copied into the upstream's
 * output and the receive window is re-opened (tcp_recved) only as that
 * output drains into the socket; the window is flow_buffer.  Upstream ->
 * client: the upstream's input is read up to flow_buffer (read high
 * watermark) and moved into lwIP only as far as the pcb's send buffer has
 * room; the `sent' callback moves more.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "lwip/tcp.h"

#include "flow.h"
#include "log.h"
#include "stack.h"
#include "upstream.h"

#define FLOW_MAX_SINGLE_IO	(256 * 1024)
#define FLOW_CORK_IN_FLIGHT	(8 * 1024)	/* > 2 segments of MTU 1500 */
#define FLOW_CORK_MAX		(64 * 1024)

enum flow_state {
	FLOW_DIALING,
	FLOW_RELAY,
	FLOW_DEAD,
};

struct flow {
	TAILQ_ENTRY(flow)	 entry;
	struct flows		*fl;
	uint64_t		 id;
	enum flow_state		 state;
	struct tcp_pcb		*pcb;		/* NULL once lwIP freed it */
	bool			 pcb_aborted;	/* we tcp_abort()ed it */
	struct bufferevent	*bev;		/* upstream, after the dial */
	struct upstream_dial	*dial;
	struct evbuffer_cb_entry *drain;
	struct event		*idle_ev;
	struct timespec		 last_active;

	/* the two halves */
	bool			 client_eof;	/* FIN from the client */
	bool			 upstream_shut;	/* we shut the upstream write side */
	bool			 upstream_eof;	/* EOF from the upstream */
	bool			 client_fin;	/* we sent FIN to the client */

	uint64_t		 bytes_up;
	uint64_t		 bytes_down;
	char			 desc[112];	/* "src -> dst" */
};

TAILQ_HEAD(flow_list, flow);

struct flows {
	struct event_base	*base;
	struct stack		*stack;
	struct upstream		*up;
	struct flows_limits	 lim;
	struct flow_list	 live;
	struct flow_list	 dead;
	struct event		*reap_ev;
	uint64_t		 next_id;
	struct flows_stats	 st;
};

static void	flow_close(struct flow *, const char *, enum log_level, bool);
static void	flow_to_client(struct flow *);

/* ---- helpers ----------------------------------------------------------- */

static void
flow_touch(struct flow *f)
{
	clock_gettime(CLOCK_MONOTONIC_COARSE, &f->last_active);
}

/* The pcb's local side (the original destination) as a sockaddr. */
static void
flow_pcb_dst(const struct tcp_pcb *pcb, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (IP_IS_V6(&pcb->local_ip)) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_2_ip6(&pcb->local_ip)->addr, 16);
		sin6->sin6_port = htons(pcb->local_port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = ip_2_ip4(&pcb->local_ip)->addr;
		sin->sin_port = htons(pcb->local_port);
	}
}

/* The value an lwIP callback returns after touching flow f. */
static err_t
flow_lwip_ret(const struct flow *f)
{
	return f->pcb_aborted ? ERR_ABRT : ERR_OK;
}

/* Both halves are done: close gracefully. */
static void
flow_maybe_finish(struct flow *f)
{
	if (f->state == FLOW_RELAY && f->client_eof && f->upstream_shut &&
	    f->upstream_eof && f->client_fin)
		flow_close(f, NULL, LOG_LEVEL_DEBUG, false);
}

/* The client sent FIN: pass it on once everything before it is out. */
static void
flow_maybe_shut_upstream(struct flow *f)
{
	if (f->client_eof && !f->upstream_shut && f->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(f->bev)) == 0) {
		upstream_shutdown_write(f->bev);
		f->upstream_shut = true;
	}
}

/* ---- client side (lwIP callbacks) ------------------------------------- */

static err_t
flow_pcb_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct flow *f = arg;
	struct evbuffer *out;
	struct pbuf *q;

	(void)pcb;
	if (f == NULL || f->state != FLOW_RELAY) {
		/* not ours any more: lwIP's default is to drop and ack */
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (p == NULL) {
		f->client_eof = true;
		flow_touch(f);
		flow_maybe_shut_upstream(f);
		flow_maybe_finish(f);
		return flow_lwip_ret(f);
	}
	if (err != ERR_OK) {
		pbuf_free(p);
		return ERR_OK;
	}
	out = bufferevent_get_output(f->bev);
	for (q = p; q != NULL; q = q->next) {
		if (evbuffer_add(out, q->payload, q->len) == -1) {
			pbuf_free(p);
			flow_close(f, "out of memory", LOG_LEVEL_WARN, true);
			return ERR_ABRT;
		}
	}
	f->bytes_up += p->tot_len;
	f->fl->st.bytes_up += p->tot_len;
	pbuf_free(p);
	flow_touch(f);
	return ERR_OK;
}

static err_t
flow_pcb_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct flow *f = arg;

	(void)pcb;
	(void)len;
	if (f == NULL || f->state != FLOW_RELAY)
		return ERR_OK;
	flow_touch(f);
	flow_to_client(f);
	flow_maybe_finish(f);
	return flow_lwip_ret(f);
}

/* Periodic: retry a write that found lwIP's memory full. */
static err_t
flow_pcb_poll_cb(void *arg, struct tcp_pcb *pcb)
{
	struct flow *f = arg;

	(void)pcb;
	if (f == NULL || f->state != FLOW_RELAY)
		return ERR_OK;
	flow_to_client(f);
	flow_maybe_finish(f);
	return flow_lwip_ret(f);
}

/* lwIP freed the pcb (RST from the client, retransmissions ran out). */
static void
flow_pcb_err_cb(void *arg, err_t err)
{
	struct flow *f = arg;

	if (f == NULL)
		return;
	f->pcb = NULL;
	if (err == ERR_RST)
		flow_close(f, "reset by client", LOG_LEVEL_DEBUG, true);
	else if (err == ERR_ABRT)
		flow_close(f, "aborted", LOG_LEVEL_DEBUG, true);
	else
		flow_close(f, lwip_strerr(err), LOG_LEVEL_INFO, true);
}

/* ---- upstream side (bufferevent callbacks) ----------------------------- */

/*
 * Whether to hold freshly queued bytes back for a moment.  A proxy relays
 * a bulk stream in small pieces; sending each as it comes makes many small
 * packets.  While enough data is in flight that the client's ACK is due
 * soon (more than two full segments: no delayed ACK), lwIP sends what is
 * queued when that ACK arrives, as one larger segment.  Anything else
 * (interactive traffic, the end of a burst) goes out at once.
 */
static bool
flow_cork(const struct tcp_pcb *pcb)
{
	u32_t in_flight = pcb->snd_nxt - pcb->lastack;
	u32_t queued = pcb->snd_lbb - pcb->snd_nxt;

	return pcb->unacked != NULL && in_flight >= FLOW_CORK_IN_FLIGHT &&
	    queued < FLOW_CORK_MAX;
}

/* Move what the upstream sent into the pcb, as far as it has room. */
static void
flow_to_client(struct flow *f)
{
	struct evbuffer *in;
	struct evbuffer_iovec v;
	size_t len, n;
	bool wrote = false;
	err_t err;

	if (f->state != FLOW_RELAY || f->pcb == NULL || f->bev == NULL)
		return;
	in = bufferevent_get_input(f->bev);
	while ((len = evbuffer_get_length(in)) > 0) {
		n = tcp_sndbuf(f->pcb);
		if (n == 0)
			break;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		if (n > v.iov_len)
			n = v.iov_len;
		if (n > 0xffff)
			n = 0xffff;
		err = tcp_write(f->pcb, v.iov_base, (u16_t)n,
		    TCP_WRITE_FLAG_COPY | (n < len ? TCP_WRITE_FLAG_MORE : 0));
		if (err == ERR_MEM)
			break;		/* the sent or poll callback retries */
		if (err != ERR_OK) {
			flow_close(f, lwip_strerr(err), LOG_LEVEL_INFO, true);
			return;
		}
		evbuffer_drain(in, n);
		f->bytes_down += n;
		f->fl->st.bytes_down += n;
		wrote = true;
	}
	if (len == 0 && f->upstream_eof && !f->client_fin) {
		if (tcp_shutdown(f->pcb, 0, 1) == ERR_OK) {
			f->client_fin = true;
			wrote = true;
		}
	}
	if (wrote && !flow_cork(f->pcb))
		tcp_output(f->pcb);
}

static void
flow_bev_read_cb(struct bufferevent *bev, void *arg)
{
	struct flow *f = arg;

	(void)bev;
	flow_touch(f);
	flow_to_client(f);
}

static void
flow_bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct flow *f = arg;
	char reason[128];

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		f->upstream_eof = true;
		flow_touch(f);
		flow_to_client(f);
		flow_maybe_finish(f);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int e = EVUTIL_SOCKET_ERROR();

		snprintf(reason, sizeof(reason), "upstream: %s",
		    e ? evutil_socket_error_to_string(e) : "error");
		flow_close(f, reason, LOG_LEVEL_INFO, true);
	}
}

/* The upstream's output drained into the socket: open the window. */
static void
flow_out_drain_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct flow *f = arg;
	size_t n = info->n_deleted;

	(void)buf;
	if (n == 0 || f->state != FLOW_RELAY)
		return;
	if (f->pcb != NULL) {
		while (n > 0) {
			u16_t chunk = n > 0xffff ? 0xffff : (u16_t)n;

			tcp_recved(f->pcb, chunk);
			n -= chunk;
		}
	}
	if (info->orig_size == info->n_deleted)
		flow_maybe_shut_upstream(f);
	flow_maybe_finish(f);
}

static void
flow_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flow *f = arg;
	struct timespec now;
	unsigned idle_ms, lim = f->fl->lim.idle_timeout_ms;
	struct timeval tv;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	idle_ms = (unsigned)((now.tv_sec - f->last_active.tv_sec) * 1000 +
	    (now.tv_nsec - f->last_active.tv_nsec) / 1000000);
	if (idle_ms + 10 >= lim) {
		flow_close(f, "idle timeout", LOG_LEVEL_DEBUG, true);
		return;
	}
	tv.tv_sec = (lim - idle_ms) / 1000;
	tv.tv_usec = ((lim - idle_ms) % 1000) * 1000;
	evtimer_add(f->idle_ev, &tv);
}

/* ---- opening ------------------------------------------------------------ */

static void
flows_dial_cb(void *arg, struct bufferevent *bev, const char *why,
    bool proxy_fault)
{
	struct flow *f = arg;
	struct flows *fl = f->fl;
	struct tcp_pcb *pcb = f->pcb;

	f->dial = NULL;
	if (bev == NULL) {
		fl->st.refused++;
		flow_close(f, why, proxy_fault ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
		    true);
		return;
	}
	f->bev = bev;
	f->state = FLOW_RELAY;
	bufferevent_setcb(bev, flow_bev_read_cb, NULL, flow_bev_event_cb, f);
	bufferevent_setwatermark(bev, EV_READ, 0, fl->lim.flow_buffer);
	/* libevent moves 16k per syscall by default: too little at Gbps */
	bufferevent_set_max_single_read(bev, FLOW_MAX_SINGLE_IO);
	bufferevent_set_max_single_write(bev, FLOW_MAX_SINGLE_IO);
	f->drain = evbuffer_add_cb(bufferevent_get_output(bev),
	    flow_out_drain_cb, f);
	bufferevent_enable(bev, EV_READ | EV_WRITE);

	tcp_recv(pcb, flow_pcb_recv_cb);
	tcp_sent(pcb, flow_pcb_sent_cb);
	tcp_poll(pcb, flow_pcb_poll_cb, 2);
	tcp_nagle_disable(pcb);
	if (fl->lim.idle_timeout_ms > 0) {
		struct timeval tv = {
			fl->lim.idle_timeout_ms / 1000,
			(fl->lim.idle_timeout_ms % 1000) * 1000
		};
		f->idle_ev = evtimer_new(fl->base, flow_idle_cb, f);
		if (f->idle_ev != NULL)
			evtimer_add(f->idle_ev, &tv);
	}
	flow_touch(f);
	if (tcp_syn_release(pcb) != ERR_OK) {
		/* the pcb was aborted and flow_pcb_err_cb closed the flow */
		return;
	}
	fl->st.established++;
	log_debug("flow %llu %s: open", (unsigned long long)f->id, f->desc);
	/* bytes the destination sent first (banners) go out after the SYN */
	flow_to_client(f);
}

static err_t
flows_syn_cb(void *arg, struct tcp_pcb *pcb)
{
	struct flows *fl = arg;
	struct sockaddr_storage dst;
	struct flow *f;
	char src[64], dstr[64];
	tcpwnd_size_t wnd;

	if (fl->st.active >= fl->lim.max_flows) {
		fl->st.over_limit++;
		fl->st.refused++;
		log_info("flow refused %s -> %s: max_flows (%u) reached",
		    stack_pcb_addr(pcb, false, src, sizeof(src)),
		    stack_pcb_addr(pcb, true, dstr, sizeof(dstr)),
		    fl->lim.max_flows);
		return ERR_ABRT;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		fl->st.refused++;
		return ERR_MEM;
	}
	f->fl = fl;
	f->id = ++fl->next_id;
	f->pcb = pcb;
	f->state = FLOW_DIALING;
	snprintf(f->desc, sizeof(f->desc), "%s -> %s",
	    stack_pcb_addr(pcb, false, src, sizeof(src)),
	    stack_pcb_addr(pcb, true, dstr, sizeof(dstr)));
	flow_pcb_dst(pcb, &dst);
	f->dial = upstream_dial(fl->up, (struct sockaddr *)&dst,
	    flows_dial_cb, f);
	if (f->dial == NULL) {
		fl->st.refused++;
		free(f);
		return ERR_ABRT;
	}
	stack_pcb_init(fl->stack, pcb);
	/* the window is the per-flow buffer: memory stays bounded */
	wnd = (tcpwnd_size_t)fl->lim.flow_buffer;
	if (wnd > TCP_WND_MAX(pcb))
		wnd = TCP_WND_MAX(pcb);
	pcb->rcv_wnd = pcb->rcv_ann_wnd = wnd;
	tcp_arg(pcb, f);
	tcp_err(pcb, flow_pcb_err_cb);
	TAILQ_INSERT_TAIL(&fl->live, f, entry);
	fl->st.active++;
	fl->st.accepted++;
	log_debug("flow %llu %s: dialing %s", (unsigned long long)f->id,
	    f->desc, upstream_name(fl->up));
	return ERR_INPROGRESS;
}

/* ---- closing ------------------------------------------------------------ */

/*
 * End a flow: the client gets a RST (rst) or an orderly close, the upstream
 * is closed (reset too when the client reset), and the struct is freed on
 * the next loop turn.  reason NULL means a normal end.  Safe to call from
 * any callback, more than once.
 */
static void
flow_close(struct flow *f, const char *reason, enum log_level level, bool rst)
{
	struct flows *fl = f->fl;

	if (f->state == FLOW_DEAD)
		return;
	if (reason != NULL)
		log_at(level, false, "flow %llu %s: %s%s",
		    (unsigned long long)f->id, f->desc,
		    f->state == FLOW_DIALING ? "refused: " : "closed: ", reason);
	else
		log_debug("flow %llu %s: closed, %llu bytes up, %llu down",
		    (unsigned long long)f->id, f->desc,
		    (unsigned long long)f->bytes_up,
		    (unsigned long long)f->bytes_down);
	f->state = FLOW_DEAD;

	if (f->dial != NULL) {
		upstream_dial_cancel(f->dial);
		f->dial = NULL;
	}
	if (f->idle_ev != NULL) {
		event_free(f->idle_ev);
		f->idle_ev = NULL;
	}
	if (f->pcb != NULL) {
		struct tcp_pcb *pcb = f->pcb;

		f->pcb = NULL;
		tcp_arg(pcb, NULL);
		tcp_recv(pcb, NULL);
		tcp_sent(pcb, NULL);
		tcp_err(pcb, NULL);
		tcp_poll(pcb, NULL, 0);
		if (rst || tcp_close(pcb) != ERR_OK) {
			tcp_abort(pcb);
			f->pcb_aborted = true;
		}
	} else if (f->bev != NULL && rst) {
		/* the client reset: reset the upstream side too */
		struct linger lg = { 1, 0 };
		evutil_socket_t fd = bufferevent_getfd(f->bev);

		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (f->bev != NULL) {
		if (f->drain != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_output(f->bev),
			    f->drain);
		bufferevent_free(f->bev);
		f->bev = NULL;
		f->drain = NULL;
	}
	TAILQ_REMOVE(&fl->live, f, entry);
	TAILQ_INSERT_TAIL(&fl->dead, f, entry);
	fl->st.active--;
	event_active(fl->reap_ev, EV_TIMEOUT, 0);
}

static void
flows_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flows *fl = arg;
	struct flow *f;

	(void)fd;
	(void)what;
	while ((f = TAILQ_FIRST(&fl->dead)) != NULL) {
		TAILQ_REMOVE(&fl->dead, f, entry);
		free(f);
	}
}

/* ---- the set of flows ---------------------------------------------------- */

struct flows *
flows_new(struct event_base *base, struct stack *stack, struct upstream *up,
    const struct flows_limits *lim)
{
	struct flows *fl;

	if ((fl = calloc(1, sizeof(*fl))) == NULL) {
		log_error("flows: calloc");
		return NULL;
	}
	fl->base = base;
	fl->stack = stack;
	fl->up = up;
	fl->lim = *lim;
	TAILQ_INIT(&fl->live);
	TAILQ_INIT(&fl->dead);
	if ((fl->reap_ev = event_new(base, -1, 0, flows_reap_cb, fl)) == NULL) {
		free(fl);
		return NULL;
	}
	if (stack_listen_any(stack, flows_syn_cb, fl) == -1) {
		event_free(fl->reap_ev);
		free(fl);
		return NULL;
	}
	return fl;
}

void
flows_free(struct flows *fl)
{
	struct flow *f;

	if (fl == NULL)
		return;
	stack_unlisten(fl->stack);
	while ((f = TAILQ_FIRST(&fl->live)) != NULL)
		flow_close(f, NULL, LOG_LEVEL_DEBUG, true);
	flows_reap_cb(-1, 0, fl);
	event_free(fl->reap_ev);
	free(fl);
}

void
flows_get_stats(const struct flows *fl, struct flows_stats *st)
{
	*st = fl->st;
}
