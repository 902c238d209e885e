/*
 * tun.h - the TUN device: open or create it by name (or adopt an open fd),
 * set its MTU and addresses and bring it up.
 */
#ifndef SLUICE_TUN_H
#define SLUICE_TUN_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>

#define TUN_QUEUES_MAX	16

struct tun {
	int		fd;			/* non-blocking; -1 when closed */
	int		queues[TUN_QUEUES_MAX];	/* multi-queue: every queue's fd
						 * (queues[0] == fd) */
	int		nqueues;		/* 0: a single-queue device */
	char		name[IFNAMSIZ];
	bool		created;		/* we made it; it goes with the fd */
	bool		adopted;		/* came from --tun-fd */
	bool		vnet_hdr;		/* packets carry a virtio_net_hdr */
};

/*
 * Open the TUN device `name` (created if missing; an existing persistent
 * one is attached), IFF_TUN|IFF_NO_PI, non-blocking.  0 or -1 (logged).
 */
int	tun_open(struct tun *t, const char *name);
/*
 * The same with offloads: IFF_VNET_HDR, and the kernel may hand us TCP
 * super-packets (TSO) and unchecksummed packets while we may write them.
 * Falls back to a plain device (vnet_hdr false) where the kernel refuses.
 */
int	tun_open_offload(struct tun *t, const char *name);
/*
 * A multi-queue device (IFF_MULTI_QUEUE): n queues (1..TUN_QUEUES_MAX)
 * of one device, each its own non-blocking fd, with offloads as above
 * when vnet_hdr.  The kernel spreads flows over the queues by their hash
 * and keeps each flow on one.  The fds go to fds[0..] and t->queues, and
 * t->fd is fds[0].  The number of queues opened, or -1 (logged); an
 * existing device made without IFF_MULTI_QUEUE gives one queue (said).
 */
int	tun_open_queues(struct tun *t, const char *name, bool vnet_hdr,
	    int *fds, int n);
/*
 * Adopt an already-open TUN fd (e.g. handed over by a VPN manager); with
 * IFF_VNET_HDR set on it, offloads are switched on as above.
 */
int	tun_adopt(struct tun *t, int fd);
/* The device's MTU, or -1 (logged). */
int	tun_get_mtu(const struct tun *t);
/* Set MTU; 0 or -1 (logged). */
int	tun_set_mtu(const struct tun *t, int mtu);
/* Add an address; an address that is already there is not an error. */
int	tun_add_ipv4(const struct tun *t, const struct in_addr *a, int prefix);
int	tun_add_ipv6(const struct tun *t, const struct in6_addr *a, int prefix);
/* Bring the link up. */
int	tun_up(const struct tun *t);
/* Bring any interface of the current namespace up (e.g. "lo"), quietly. */
int	tun_link_up(const char *name);
/* Close the fd (every queue's); a device we created disappears with it.
 * Idempotent. */
void	tun_close(struct tun *t);
/*
 * Packets the kernel dropped on their way to us because the device's
 * queue was full (its tx_dropped: we read too slowly), or 0 if unknown.
 */
unsigned long long tun_kernel_dropped(const char *name);

#endif
