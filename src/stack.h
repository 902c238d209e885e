/*
 * stack.h - sluice's glue to lwIP: one netif on a TUN fd, packets read in
 * batches from a libevent read event, output written straight back to the
 * fd, lwIP's timers on a libevent timer, and a catch-all TCP listener.
 *
 * lwIP is single-instance and not thread-safe: one stack per process, and
 * every lwIP call happens on the thread that runs the stack's event_base.
 */
#ifndef SLUICE_STACK_H
#define SLUICE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>

struct tcp_pcb;
struct stack;

/* Counters, for logs, metrics and benchmarks. */
struct stack_stats {
	uint64_t	rx_packets;	/* read from the TUN */
	uint64_t	rx_bytes;
	uint64_t	rx_dropped;	/* not IPv4/IPv6, truncated, no buffer */
	uint64_t	rx_batches;	/* wakeups that read >= 1 packet */
	uint64_t	tx_packets;	/* written to the TUN */
	uint64_t	tx_bytes;
	uint64_t	tx_dropped;	/* write failed */
	uint64_t	ip_dropped;	/* dropped by lwIP's IP layer (bad header, ...) */
	uint64_t	tcp_dropped;	/* dropped by lwIP's TCP (bad checksum, ...) */
	uint64_t	lwip_asserts;	/* lwIP assertions that fired (not fatal) */
	uint64_t	echo_dropped;	/* ICMP echo requests not answered */
	uint64_t	frag_steered;	/* IP fragments handed to their owner */
	uint64_t	frag_taken;	/* ... that other workers handed us */
	unsigned	heap_used_pct;	/* lwIP heap in use, percent */
	unsigned	seg_used_pct;	/* lwIP TCP segment pool in use, percent */
};

/*
 * Called once when the TUN device fails for good (deleted, EBADFD, EIO):
 * the stack stops reading and the daemon should exit non-zero.
 */
typedef void (*stack_fatal_cb)(void *arg, const char *why);

/*
 * Called for every SYN no other listener takes; the pcb's local address and
 * port are the original destination.  Return ERR_OK to answer with a
 * SYN-ACK now, ERR_INPROGRESS to answer later with tcp_syn_release() (or
 * refuse with tcp_abort()), anything else to refuse with a RST.
 */
typedef signed char (*stack_syn_cb)(void *arg, struct tcp_pcb *pcb);

/* The MSS of pcbs on a link with TSO: one IP packet of at most 64 KiB */
#define STACK_GSO_MSS	(65535 - 40 - 20 - 40 - 535)

/*
 * Bring up lwIP on the TUN fd (non-blocking, IFF_TUN|IFF_NO_PI) with the
 * given MTU.  The fd stays the caller's.  NULL on failure (logged).
 */
struct stack	*stack_new(struct event_base *base, int tun_fd, int mtu);
/*
 * The fd carries a virtio_net_hdr before each packet and has TSO/checksum
 * offloads (tun_open_offload): read TCP super-packets, write TCP segments
 * of up to 64 KiB for the kernel to split, and leave TCP checksums to it.
 * Call right after stack_new().  0 or -1.
 */
int		 stack_set_vnet_hdr(struct stack *s);
/*
 * Fit a pcb to the link only: with offloads its MSS grows to 64 KiB (the
 * MSS announced to the peer stays that of the TUN MTU).  For benchmarks;
 * the relay uses stack_pcb_setup().
 */
void		 stack_pcb_init(struct stack *s, struct tcp_pcb *pcb);
/* Tell cb when the TUN device is gone (see stack_fatal_cb). */
void		 stack_set_fatal_cb(struct stack *s, stack_fatal_cb cb, void *arg);

/*
 * All of sluice's lwIP policy for a pcb lives here, so the relay uses only
 * lwIP's public tcp_* API.
 *
 * Fit a new pcb (from the SYN hook) to the link and to the flow's budget:
 * the receive window is `buffer' (capped at what the pcb can announce),
 * the send buffer is 4 x `buffer' (at most 1 MiB; what is in flight
 * counts too) and its segment queue is bounded to match;
 * with offloads lwIP builds segments of up to 64 KiB that the kernel cuts
 * at the client's own MSS (the one in its SYN) or the TUN's, the smaller.
 */
void		 stack_pcb_setup(struct stack *s, struct tcp_pcb *pcb,
		    size_t buffer);
/*
 * How many bytes tcp_write() may take now: the send buffer's room, but no
 * more than the client's window plus 64 KiB ahead; 0 when
 * the pcb's segment queue is at its bound or the shared segment pool is
 * nearly exhausted (so stalled clients cannot starve the others).
 */
size_t		 stack_pcb_room(const struct tcp_pcb *pcb);
/*
 * Whether to hold freshly queued bytes for a moment: enough is in flight
 * that the client's ACK is due soon, and it will carry what is queued out
 * as one larger segment.
 */
bool		 stack_pcb_cork(const struct tcp_pcb *pcb);
/* The pcb's local side (the flow's original destination) as a sockaddr. */
void		 stack_pcb_dst(const struct tcp_pcb *pcb,
		    struct sockaddr_storage *ss);
/*
 * Whether lwIP's shared memory (heap, segment pool) is so full that a new
 * flow should be refused.
 */
bool		 stack_mem_pressure(const struct stack *s);
/* Text for an lwIP err_t ("connection reset", ...); never empty. */
const char	*stack_strerr(signed char err);
/* Stop reading, close the listener, shut lwIP's netif down.  NULL is ok. */
void		 stack_free(struct stack *s);
/* Accept TCP for any address and port, IPv4 and IPv6.  0 or -1. */
int		 stack_listen_any(struct stack *s, stack_syn_cb cb, void *arg);
/* Stop taking new connections (existing pcbs are untouched). */
void		 stack_unlisten(struct stack *s);
/* Compute (or not) IP and TCP checksums ourselves (TUN offload tests). */
void		 stack_set_checksums(struct stack *s, bool generate, bool check);
void		 stack_get_stats(const struct stack *s, struct stack_stats *st);
/*
 * Feed one IP packet to the stack as if read from the TUN (fuzzers,
 * benchmarks).  Bad packets are dropped and counted like real ones.
 */
void		 stack_input(struct stack *s, const void *pkt, size_t len);
/*
 * Worker processes: the kernel puts an IP fragment on a TUN queue by its
 * addresses alone, and a reply written to those addresses by one worker
 * draws the choice to that worker's queue, so the fragments of one
 * datagram can reach two workers.  Each fragment has an owner among n
 * workers, a hash of its addresses, protocol and identification (so the
 * same for every fragment of a datagram, in every worker), or -1 when the
 * packet (its first len bytes) is no fragment or too short to tell.
 */
int		 stack_frag_owner(const unsigned char *pkt, size_t len,
		    unsigned n);
/* Hand the fragment pkt (len bytes, valid during the call) to its owner. */
typedef void (*stack_frag_cb)(void *arg, unsigned owner, const void *pkt,
    size_t len);
/*
 * We are worker self of n: fragments that another worker owns go to cb
 * instead of lwIP (cb NULL or n < 2: none do), and the IP identifications
 * we send come from our n-th of the space (lwip_hooks_id_split), so a
 * client never mixes two workers' fragments.  0 or -1.
 */
int		 stack_set_workers(struct stack *s, unsigned self,
		    unsigned n, stack_frag_cb cb, void *arg);
/* A fragment another worker handed us: to lwIP, counted as frag_taken. */
void		 stack_input_fragment(struct stack *s, const void *pkt,
		    size_t len);
/*
 * One UDP datagram from the TUN, reassembled: src is the client's address
 * and port, dst where it was sent.  The payload (len bytes in iovcnt
 * pieces) is valid during the call only.
 */
typedef void (*stack_udp_cb)(void *arg, const struct sockaddr *src,
    const struct sockaddr *dst, const struct iovec *iov, int iovcnt,
    size_t len);
/*
 * Take UDP for any unicast address and port, IPv4 and IPv6 (NULL: stop;
 * lwIP then drops datagrams silently).
 */
void		 stack_udp_any(struct stack *s, stack_udp_cb cb, void *arg);
/*
 * Send a datagram of len bytes to the client `to', from `from' (its
 * remote), fragmented to the TUN's MTU when longer: up to 65,507 bytes
 * over IPv4 and 65,527 over IPv6.  Both of one family.  0 or -1.
 */
int		 stack_udp_output(struct stack *s, const struct sockaddr *from,
		    const struct sockaddr *to, const void *data, size_t len);
/*
 * Tell the client that its datagram to dst (data: its first len bytes,
 * quoted in part) found no port there: ICMP or ICMPv6 port unreachable,
 * from dst.  The caller rate-limits.  0 or -1.
 */
int		 stack_icmp_port_unreach(struct stack *s,
		    const struct sockaddr *client, const struct sockaddr *dst,
		    const void *data, size_t len);
/* Answer ICMP and ICMPv6 echo requests to any address (true) or drop them. */
void		 stack_set_icmp_echo(struct stack *s, bool answer);
/* "a.b.c.d:port" or "[v6]:port" of a pcb side, for logs. */
const char	*stack_pcb_addr(const struct tcp_pcb *pcb, bool local,
		    char *buf, unsigned len);

#endif
