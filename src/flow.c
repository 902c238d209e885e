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
 * client: the upstream's input is read up to flow_buffer (a plain socket
 * by the flow itself, in large reads; TLS by libevent) and moved into
 * lwIP only as far as the pcb's send buffer has room; the `sent' callback
 * moves more, and reading resumes once half the buffer has gone.
 *
 * Closing: each direction has its own state (enum flow_up, flow_down).  A
 * FIN from the client is passed on once everything before it has left for
 * the upstream (and, for TLS, once close_notify is flushed too); EOF from
 * the upstream becomes a FIN to the client after the last byte.  Once both
 * FINs have passed the pcb is detached (lwIP ends the close alone and may
 * free the pcb at any time); the flow ends when both directions are done,
 * so no acknowledged byte is ever thrown away.
 *
 * Limits: max_flows, a memory budget over the bytes all flows buffer
 * (max_memory) and lwIP's own pools (stack_mem_pressure) are checked for
 * every SYN; a SYN to the proxy's own address (a routing loop) is refused.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "lwip/tcp.h"

#include "addr.h"
#include "fakeip.h"
#include "flow.h"
#include "log.h"
#include "stack.h"
#include "tls.h"
#include "upstream.h"

#define FLOW_MAX_SINGLE_IO	(256 * 1024)
#define FLOW_MIN_READ		(16 * 1024)
/* the proxy socket's receive buffer: flow_buffer, doubled up to this many
 * times flow_buffer for a flow that has moved FLOW_RCVBUF_GROW_BYTES since
 * the last step and still finds a large read's worth queued */
#define FLOW_RCVBUF_MAX_X	4
#define FLOW_RCVBUF_GROW_BYTES	(4u * 1024 * 1024)
#define FLOW_RCVBUF_GROW_READ	(64 * 1024)

enum flow_state {
	FLOW_DIALING,
	FLOW_RELAY,
	FLOW_DEAD,
};

/* Client -> upstream. */
enum flow_up {
	UP_OPEN,	/* relaying the client's bytes */
	UP_EOF,		/* FIN from the client; what we hold drains upstream */
	UP_SHUT,	/* shut the upstream's write side; TLS may still flush */
	UP_DONE,	/* every byte and the close are in the kernel */
};

/* Upstream -> client. */
enum flow_down {
	DOWN_OPEN,	/* relaying the upstream's bytes */
	DOWN_EOF,	/* EOF from the upstream; what we hold drains to lwIP */
	DOWN_DONE,	/* FIN queued to the client after the last byte */
};

/*
 * A flow is two halves.  The pcb (the client's connection) is ours until
 * both FINs have passed (up >= UP_EOF and down == DOWN_DONE); then it is
 * detached: lwIP finishes the close alone (LAST_ACK, TIME_WAIT) and frees
 * the pcb without telling us, so we never touch it again.  The upstream
 * bufferevent is ours until both of its directions are done.
 */
struct flow {
	TAILQ_ENTRY(flow)	 entry;
	struct flows		*fl;
	uint64_t		 id;
	enum flow_state		 state;
	enum flow_up		 up;
	enum flow_down		 down;
	struct tcp_pcb		*pcb;		/* NULL once detached or gone */
	bool			 pcb_aborted;	/* we tcp_abort()ed it */
	bool			 read_paused;	/* upstream input at flow_buffer */
	struct bufferevent	*bev;		/* upstream, after the dial */
	struct event		*rd_ev;		/* reads a plain bev's socket */
	size_t			 rd_size;	/* what rd_ev asks a read for */
	int			 rcvbuf;	/* its socket's SO_RCVBUF, or 0 */
	uint64_t		 rcvbuf_grow_at; /* bytes_down to grow it */
	struct upstream_dial	*dial;
	struct evbuffer_cb_entry *out_cb;	/* upstream output accounting */
	struct event		*idle_ev;
	struct timespec		 last_active;

	size_t			 held;		/* bytes in our buffers */
	size_t			 held_in;	/* of which upstream input */
	uint64_t		 bytes_up;
	uint64_t		 bytes_down;
	struct sockaddr_storage	 fake;		/* a fake-IP destination held */
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
	size_t			 held;		/* sum of the flows' held */
	struct fakeip		*fakeip;	/* DNS fake-ip mode, or NULL */
	struct flows_share	*share;		/* workers: every one's counts */
	unsigned		 nshare;
	struct flows_share	*self;		/* ours among them */
	struct flows_stats	 st;
};

static void	flow_close(struct flow *, const char *, enum log_level, bool);
static void	flow_to_client(struct flow *);
static void	flow_step(struct flow *);
static void	flow_read_set(struct flow *, bool);

/* ---- helpers ----------------------------------------------------------- */

static void
flow_touch(struct flow *f)
{
	clock_gettime(CLOCK_MONOTONIC_COARSE, &f->last_active);
}

/* The value an lwIP callback returns after touching flow f. */
static err_t
flow_lwip_ret(const struct flow *f)
{
	return f->pcb_aborted ? ERR_ABRT : ERR_OK;
}

/* Forget the pcb: clear its callbacks so lwIP never calls us about it. */
static struct tcp_pcb *
flow_pcb_forget(struct flow *f)
{
	struct tcp_pcb *pcb = f->pcb;

	if (pcb != NULL) {
		tcp_arg(pcb, NULL);
		tcp_recv(pcb, NULL);
		tcp_sent(pcb, NULL);
		tcp_err(pcb, NULL);
		tcp_poll(pcb, NULL, 0);
		f->pcb = NULL;
	}
	return pcb;
}

/*
 * Move both halves along: shut the upstream's write side once the client
 * finished and everything before its FIN is out, note when that close is
 * flushed, detach the pcb once both FINs passed, and end the flow when
 * both directions are done.  Safe from any callback; may close f.
 */
static void
flow_step(struct flow *f)
{
	if (f->state != FLOW_RELAY)
		return;
	if (f->up == UP_EOF &&
	    evbuffer_get_length(bufferevent_get_output(f->bev)) == 0) {
		upstream_shutdown_write(f->bev);
		f->up = UP_SHUT;
	}
	if (f->up == UP_SHUT && upstream_write_flushed(f->bev))
		f->up = UP_DONE;
	if (f->up >= UP_EOF && f->down == DOWN_DONE && f->pcb != NULL) {
		/* both FINs passed: the rest of the close is lwIP's */
		tcp_output(f->pcb);
		flow_pcb_forget(f);
	}
	if (f->up == UP_DONE && f->down == DOWN_DONE)
		flow_close(f, NULL, LOG_LEVEL_DEBUG, false);
}

/* Count bytes entering (+) or leaving (-) our buffers. */
static void
flow_held(struct flow *f, size_t added, size_t deleted)
{
	f->held += added;
	f->held -= deleted;
	f->fl->held += added;
	f->fl->held -= deleted;
	if (f->fl->self != NULL)
		atomic_store_explicit(&f->fl->self->held, f->fl->held,
		    memory_order_relaxed);
}

/* Open flows and buffered bytes of the whole daemon (every worker). */
static void
flows_totals(const struct flows *fl, unsigned *active, size_t *held)
{
	*active = fl->st.active;
	*held = fl->held;
	for (unsigned i = 0; i < fl->nshare; i++) {
		if (&fl->share[i] == fl->self)
			continue;
		*active += atomic_load_explicit(&fl->share[i].active,
		    memory_order_relaxed);
		*held += atomic_load_explicit(&fl->share[i].held,
		    memory_order_relaxed);
	}
}

/*
 * Workers: take a place among max_flows before counting the others, so
 * that two workers racing for the last place may both refuse but never
 * both take it.  false when, counted again, there is none.
 */
static bool
flows_claim(struct flows *fl)
{
	unsigned n = fl->st.active + 1;

	if (fl->self == NULL)
		return true;
	atomic_store_explicit(&fl->self->active, n, memory_order_seq_cst);
	for (unsigned i = 0; i < fl->nshare; i++)
		if (&fl->share[i] != fl->self)
			n += atomic_load_explicit(&fl->share[i].active,
			    memory_order_seq_cst);
	return n <= fl->lim.max_flows;
}

static void
flows_publish(struct flows *fl)
{
	if (fl->self != NULL)
		atomic_store_explicit(&fl->self->active, fl->st.active,
		    memory_order_relaxed);
}

/*
 * The upstream's input is now len bytes.  Sampled where the relay looks
 * at it anyway (every read and every move to the client), which is
 * cheaper than an evbuffer callback on every read and drain.
 */
static void
flow_held_in(struct flow *f, size_t len)
{
	if (len > f->held_in)
		flow_held(f, len - f->held_in, 0);
	else
		flow_held(f, 0, f->held_in - len);
	f->held_in = len;
}

/* ---- client side (lwIP callbacks) ------------------------------------- */

static err_t
flow_pcb_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct flow *f = arg;
	struct evbuffer *out;
	struct pbuf *q;

	if (f == NULL || f->state != FLOW_RELAY || f->up != UP_OPEN) {
		/* not ours any more: drop and ack, as lwIP's default does */
		if (p != NULL) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (p == NULL) {
		f->up = UP_EOF;
		flow_touch(f);
		flow_step(f);
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
	return flow_lwip_ret(f);
}

/*
 * lwIP freed the pcb: a RST from the client, or retransmissions that ran
 * out.  (Its normal end, ERR_CLSD, never comes here: flow_step() detaches
 * the pcb as soon as both FINs have passed.)
 */
static void
flow_pcb_err_cb(void *arg, err_t err)
{
	struct flow *f = arg;

	if (f == NULL)
		return;
	f->pcb = NULL;
	flow_close(f, stack_strerr(err),
	    err == ERR_RST ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, true);
}

/* ---- upstream side (bufferevent callbacks) ----------------------------- */

/* Move what the upstream sent into the pcb, as far as it has room. */
static void
flow_to_client(struct flow *f)
{
	struct evbuffer *in;
	struct evbuffer_iovec v;
	size_t len, n;
	bool wrote = false;
	err_t err;

	if (f->state != FLOW_RELAY || f->pcb == NULL || f->down == DOWN_DONE)
		return;
	in = bufferevent_get_input(f->bev);
	while ((len = evbuffer_get_length(in)) > 0) {
		n = stack_pcb_room(f->pcb);
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
			flow_close(f, stack_strerr(err), LOG_LEVEL_INFO, true);
			return;
		}
		evbuffer_drain(in, n);
		f->bytes_down += n;
		f->fl->st.bytes_down += n;
		wrote = true;
	}
	/*
	 * Read from the upstream only while the input is below flow_buffer,
	 * and once it reached it, only after the client took half: then one
	 * read brings half a buffer, where resuming at every ACK brought a
	 * segment or two per wakeup.  libevent's own high watermark would do
	 * the pausing, but libevent >= 2.1.11 re-runs the read callback on
	 * every loop turn while the input sits at the mark (a busy loop for
	 * every stalled client); the sent and poll callbacks resume reading
	 * as the client takes data.
	 */
	flow_held_in(f, len);
	if (len >= f->fl->lim.flow_buffer)
		flow_read_set(f, false);
	else if (len <= f->fl->lim.flow_buffer / 2 && f->down == DOWN_OPEN)
		flow_read_set(f, true);
	if (len == 0 && f->down == DOWN_EOF &&
	    tcp_shutdown(f->pcb, 0, 1) == ERR_OK) {
		f->down = DOWN_DONE;	/* tcp_shutdown sent the FIN */
		flow_step(f);
		return;
	}
	if (wrote && !stack_pcb_cork(f->pcb))
		tcp_output(f->pcb);
}

/* Read from the upstream (on) or not; the flow's own reader or libevent's. */
static void
flow_read_set(struct flow *f, bool on)
{
	if (f->read_paused == !on)
		return;
	f->read_paused = !on;
	if (f->rd_ev != NULL) {
		if (on)
			event_add(f->rd_ev, NULL);
		else
			event_del(f->rd_ev);
	} else if (on)
		bufferevent_enable(f->bev, EV_READ);
	else
		bufferevent_disable(f->bev, EV_READ);
}

/* EOF from the upstream: the client gets a FIN after the last byte. */
static void
flow_up_eof(struct flow *f)
{
	if (f->down == DOWN_OPEN)
		f->down = DOWN_EOF;
	flow_read_set(f, false);
	flow_touch(f);
	flow_to_client(f);
}

/*
 * A read took all it asked for, and more may wait: the proxy's window (our
 * receive buffer) may be what holds the flow back.  A flow that has moved
 * FLOW_RCVBUF_GROW_BYTES since the last step gets twice the buffer, up to
 * FLOW_RCVBUF_MAX_X x flow_buffer.  A client that stops reading stops the
 * flow well before that many bytes, so stalled flows keep flow_buffer.
 */
static void
flow_rcvbuf_grow(struct flow *f, int fd)
{
	size_t max = f->fl->lim.flow_buffer * FLOW_RCVBUF_MAX_X;
	int next;

	if (f->rcvbuf == 0 || f->bytes_down < f->rcvbuf_grow_at ||
	    (size_t)f->rcvbuf >= max || f->rcvbuf > INT_MAX / 4)
		return;
	next = f->rcvbuf * 2;
	if ((size_t)next > max)
		next = (int)max;
	f->rcvbuf_grow_at = f->bytes_down + FLOW_RCVBUF_GROW_BYTES;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &next, sizeof(next)) == 0)
		f->rcvbuf = next;
	else
		f->rcvbuf = 0;	/* do not try again */
}

/*
 * The upstream's socket is readable (plain TCP; a TLS upstream is read
 * through its filter by libevent).  One readv straight into the
 * bufferevent's input, of as much as flow_buffer leaves room for: libevent
 * reads at most 4 KiB per wakeup and asks FIONREAD before each read, two
 * syscalls and a trip through the loop per 4 KiB.  A short read means the
 * socket is drained: no second read to see EAGAIN.  The size asked for
 * doubles while reads fill it and halves when they bring far less, so a
 * trickle does not hold large buffers.
 */
static void
flow_up_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flow *f = arg;
	struct evbuffer *in;
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t len, want, left;
	ssize_t n;
	int nv, i, e;
	char reason[160];

	(void)what;
	if (f->state != FLOW_RELAY || f->down != DOWN_OPEN) {
		flow_read_set(f, false);
		return;
	}
	in = bufferevent_get_input(f->bev);
	len = evbuffer_get_length(in);
	if (len >= f->fl->lim.flow_buffer) {
		flow_read_set(f, false);
		return;
	}
	want = f->fl->lim.flow_buffer - len;
	if (want > f->rd_size)
		want = f->rd_size;
	/* a socket bufferevent keeps its input's end frozen but while it
	 * reads, as here */
	evbuffer_unfreeze(in, 0);
	if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2)) < 1) {
		evbuffer_freeze(in, 0);
		flow_close(f, "out of memory", LOG_LEVEL_WARN, true);
		return;
	}
	for (i = 0, left = want; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len < left ? v[i].iov_len : left;
		left -= iov[i].iov_len;
	}
	n = readv(fd, iov, nv);
	e = errno;
	if (n > 0) {
		if ((size_t)n == want && want >= FLOW_RCVBUF_GROW_READ)
			flow_rcvbuf_grow(f, fd);
		if ((size_t)n == f->rd_size && f->rd_size < FLOW_MAX_SINGLE_IO)
			f->rd_size *= 2;
		else if ((size_t)n < want / 4 && f->rd_size > FLOW_MIN_READ)
			f->rd_size /= 2;
		for (i = 0, left = (size_t)n; i < nv && left > 0; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
		}
		evbuffer_commit_space(in, v, i);
	}
	evbuffer_freeze(in, 0);
	if (n == 0) {
		flow_up_eof(f);
		return;
	}
	if (n < 0) {
		if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
			return;
		snprintf(reason, sizeof(reason), "upstream: %s",
		    evutil_socket_error_to_string(e));
		flow_close(f, reason, LOG_LEVEL_INFO, true);
		return;
	}
	flow_touch(f);
	flow_to_client(f);
}

static void
flow_bev_read_cb(struct bufferevent *bev, void *arg)
{
	struct flow *f = arg;

	(void)bev;
	flow_touch(f);
	flow_to_client(f);
}

/* The output drained below its low mark, or (TLS) the close is flushed. */
static void
flow_bev_write_cb(struct bufferevent *bev, void *arg)
{
	struct flow *f = arg;

	(void)bev;
	flow_step(f);
}

/*
 * EOF or an error from the upstream.  Its callbacks are deferred, so one
 * call may carry both (EOF from reading, then a reset from writing): an
 * error wins, since the upstream is gone and took what we still had for it.
 */
static void
flow_bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct flow *f = arg;
	const char *tls_why;
	char reason[160];

	if (f->state != FLOW_RELAY)
		return;
	if (what & BEV_EVENT_ERROR) {
		int e = EVUTIL_SOCKET_ERROR();

		if ((tls_why = tls_bufferevent_error(bev)) != NULL)
			snprintf(reason, sizeof(reason), "upstream: %s",
			    tls_why);
		else
			snprintf(reason, sizeof(reason), "upstream: %s%s",
			    e ? evutil_socket_error_to_string(e) : "error",
			    (what & BEV_EVENT_WRITING) ? " (writing)" : "");
		flow_close(f, reason, LOG_LEVEL_INFO, true);
		return;
	}
	if (what & BEV_EVENT_EOF)
		flow_up_eof(f);
}

/*
 * The upstream's output changed: bytes the client sent entered it, or
 * drained into the socket.  Re-open the client's window by what drained,
 * and move the half-close along once it is empty.
 */
static void
flow_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct flow *f = arg;
	size_t n = info->n_deleted;

	(void)buf;
	flow_held(f, info->n_added, info->n_deleted);
	if (n == 0 || f->state != FLOW_RELAY)
		return;
	flow_touch(f);
	if (f->pcb != NULL && f->up == UP_OPEN) {
		while (n > 0) {
			u16_t chunk = n > 0xffff ? 0xffff : (u16_t)n;

			tcp_recved(f->pcb, chunk);
			n -= chunk;
		}
	}
	if (info->orig_size + info->n_added == info->n_deleted)
		flow_step(f);
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
	bufferevent_setcb(bev, flow_bev_read_cb, flow_bev_write_cb,
	    flow_bev_event_cb, f);
	/* libevent moves 16k per syscall by default: too little at Gbps */
	bufferevent_set_max_single_read(bev, FLOW_MAX_SINGLE_IO);
	bufferevent_set_max_single_write(bev, FLOW_MAX_SINGLE_IO);
	f->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), flow_out_cb, f);
	if (f->out_cb == NULL) {
		flow_close(f, "out of memory", LOG_LEVEL_WARN, true);
		return;
	}
	/* a plain socket is read by the flow itself (flow_up_read_cb);
	 * libevent writes it, and reads and writes through TLS */
	if (bufferevent_get_underlying(bev) == NULL &&
	    bufferevent_getfd(bev) >= 0) {
		size_t rb = fl->lim.flow_buffer;
		int rbi = rb > INT_MAX / 2 ? INT_MAX / 2 : (int)rb;

		/*
		 * Bound what the kernel holds for the flow: fed by large
		 * fast reads, the socket's receive buffer autotunes up to
		 * tcp_rmem's maximum (32 MiB on some hosts), and when
		 * clients stop reading, a few hundred such flows fill the
		 * host's TCP memory (tcp_mem) and every other socket
		 * stalls.  So flow_buffer at first (the kernel doubles it;
		 * roughly flow_buffer of window), and up to 4 x for a flow
		 * that keeps moving (flow_rcvbuf_grow): raise flow_buffer
		 * for long fat paths to the proxy.
		 */
		if (setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_RCVBUF,
		    &rbi, sizeof(rbi)) == 0) {
			f->rcvbuf = rbi;
			f->rcvbuf_grow_at = FLOW_RCVBUF_GROW_BYTES;
		}
		f->rd_size = FLOW_MIN_READ;
		f->rd_ev = event_new(fl->base, bufferevent_getfd(bev),
		    EV_READ | EV_PERSIST, flow_up_read_cb, f);
		if (f->rd_ev == NULL || event_add(f->rd_ev, NULL) == -1) {
			flow_close(f, "out of memory", LOG_LEVEL_WARN, true);
			return;
		}
		bufferevent_enable(bev, EV_WRITE);
	} else {
		bufferevent_setwatermark(bev, EV_READ, 0, fl->lim.flow_buffer);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	}

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

/* Refuse a SYN before a flow exists: the client gets a RST. */
static err_t
flows_refuse(struct flows *fl, struct tcp_pcb *pcb, uint64_t *counter,
    struct log_limit *lim, enum log_level level, const char *why)
{
	char src[64], dst[64];

	fl->st.refused++;
	flows_publish(fl);	/* give back the place flows_claim() took */
	if (counter != NULL)
		(*counter)++;
	log_at_limited(lim, level, false, "flow refused %s -> %s: %s",
	    stack_pcb_addr(pcb, false, src, sizeof(src)),
	    stack_pcb_addr(pcb, true, dst, sizeof(dst)), why);
	return ERR_ABRT;
}

static err_t
flows_syn_cb(void *arg, struct tcp_pcb *pcb)
{
	static struct log_limit lim_flows, lim_mem, lim_loop;
	static struct log_limit lim_fake;
	struct flows *fl = arg;
	struct sockaddr_storage dst;
	struct flow *f;
	const char *name = NULL;
	char src[64], dstr[64], why[128];
	unsigned active;
	size_t held;

	stack_pcb_dst(pcb, &dst);
	if (upstream_is_proxy(fl->up, (struct sockaddr *)&dst))
		return flows_refuse(fl, pcb, &fl->st.loops, &lim_loop,
		    LOG_LEVEL_WARN, "destination is the upstream proxy "
		    "itself: routing loop (route the proxy's address outside "
		    "the tunnel, or use fwmark or interface)");
	flows_totals(fl, &active, &held);
	if (active >= fl->lim.max_flows || !flows_claim(fl)) {
		snprintf(why, sizeof(why), "max_flows (%u) reached",
		    fl->lim.max_flows);
		return flows_refuse(fl, pcb, &fl->st.over_limit, &lim_flows,
		    LOG_LEVEL_WARN, why);
	}
	if ((fl->lim.max_memory > 0 && held >= fl->lim.max_memory) ||
	    stack_mem_pressure(fl->stack)) {
		snprintf(why, sizeof(why), "memory budget exhausted "
		    "(%zu KiB buffered, max_memory %zu KiB)", held >> 10,
		    fl->lim.max_memory >> 10);
		return flows_refuse(fl, pcb, &fl->st.over_memory, &lim_mem,
		    LOG_LEVEL_WARN, why);
	}
	if (fl->fakeip != NULL &&
	    fakeip_contains(fl->fakeip, (struct sockaddr *)&dst) &&
	    (name = fakeip_name(fl->fakeip, (struct sockaddr *)&dst,
	    false)) == NULL)
		return flows_refuse(fl, pcb, &fl->st.refused, &lim_fake,
		    LOG_LEVEL_WARN, "a fake-ip address that stands for no "
		    "name (a restart without [dns] state_file, or a mapping "
		    "long forgotten)");
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		fl->st.refused++;
		flows_publish(fl);
		return ERR_MEM;
	}
	f->fl = fl;
	f->id = ++fl->next_id;
	f->pcb = pcb;
	f->state = FLOW_DIALING;
	snprintf(f->desc, sizeof(f->desc), "%s -> %s",
	    stack_pcb_addr(pcb, false, src, sizeof(src)),
	    stack_pcb_addr(pcb, true, dstr, sizeof(dstr)));
	if (name != NULL) {
		/* the proxy resolves the name; the mapping is held */
		uint16_t port = addr_port((struct sockaddr *)&dst);

		snprintf(f->desc, sizeof(f->desc), "%s -> %s (%s)",
		    stack_pcb_addr(pcb, false, src, sizeof(src)), name,
		    stack_pcb_addr(pcb, true, dstr, sizeof(dstr)));
		f->dial = upstream_dial_name(fl->up, name, port,
		    flows_dial_cb, f);
		if (f->dial != NULL) {
			fakeip_name(fl->fakeip, (struct sockaddr *)&dst, true);
			memcpy(&f->fake, &dst, sizeof(dst));
		}
	} else
		f->dial = upstream_dial(fl->up, (struct sockaddr *)&dst,
		    flows_dial_cb, f);
	if (f->dial == NULL) {
		fl->st.refused++;
		flows_publish(fl);
		free(f);
		return ERR_ABRT;
	}
	stack_pcb_setup(fl->stack, pcb, fl->lim.flow_buffer);
	tcp_arg(pcb, f);
	tcp_err(pcb, flow_pcb_err_cb);
	TAILQ_INSERT_TAIL(&fl->live, f, entry);
	fl->st.active++;
	flows_publish(fl);
	fl->st.accepted++;
	log_debug("flow %llu %s: dialing %s", (unsigned long long)f->id,
	    f->desc, upstream_name(fl->up));
	return ERR_INPROGRESS;
}

/* ---- closing ------------------------------------------------------------ */

/*
 * End a flow: the client gets a RST (rst) or, when its pcb is still ours,
 * an orderly close; the upstream is closed (reset too when the client
 * reset); the struct is freed on the next loop turn.  reason NULL means a
 * normal end.  Safe to call from any callback, more than once.
 */
static void
flow_close(struct flow *f, const char *reason, enum log_level level, bool rst)
{
	struct flows *fl = f->fl;
	struct tcp_pcb *pcb;

	if (f->state == FLOW_DEAD)
		return;
	if (reason != NULL)	/* warnings can repeat per flow: limited */
		log_at_limited(level >= LOG_LEVEL_WARN ?
		    log_limit_key(reason) : NULL, level, false,
		    "flow %llu %s: %s%s", (unsigned long long)f->id, f->desc,
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
	if ((pcb = flow_pcb_forget(f)) != NULL) {
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
	if (f->rd_ev != NULL) {
		event_free(f->rd_ev);
		f->rd_ev = NULL;
	}
	if (f->bev != NULL) {
		if (f->out_cb != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_output(f->bev),
			    f->out_cb);
		bufferevent_free(f->bev);
		f->bev = NULL;
		f->out_cb = NULL;
	}
	flow_held(f, 0, f->held);
	f->held_in = 0;
	if (f->fake.ss_family != AF_UNSPEC) {
		fakeip_release(fl->fakeip, (struct sockaddr *)&f->fake);
		f->fake.ss_family = AF_UNSPEC;
	}
	TAILQ_REMOVE(&fl->live, f, entry);
	TAILQ_INSERT_TAIL(&fl->dead, f, entry);
	fl->st.active--;
	flows_publish(fl);
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
flows_reconfigure(struct flows *fl, struct upstream *up,
    const struct flows_limits *lim)
{
	fl->up = up;
	fl->lim = *lim;
}

void
flows_set_fakeip(struct flows *fl, struct fakeip *fi)
{
	fl->fakeip = fi;
}

void
flows_set_share(struct flows *fl, struct flows_share *all, unsigned n,
    unsigned self)
{
	fl->share = all;
	fl->nshare = n;
	fl->self = &all[self];
	flows_publish(fl);
	atomic_store_explicit(&fl->self->held, fl->held, memory_order_relaxed);
}

void
flows_get_stats(const struct flows *fl, struct flows_stats *st)
{
	*st = fl->st;
	st->held = fl->held;
}
