/*
 * tun.c - open and configure a Linux TUN device with plain ioctls (no
 * netlink needed for MTU, addresses and link state).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tun.h"

/* <linux/ipv6.h>'s in6_ifreq, which clashes with <netinet/in.h> */
struct tun_in6_ifreq {
	struct in6_addr	addr;
	uint32_t	prefixlen;
	int		ifindex;
};

static int
tun_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/* Let the kernel hand us TSO super-packets and partial checksums. */
static int
tun_set_offload(int fd)
{
	unsigned int off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;

	return ioctl(fd, TUNSETOFFLOAD, off);
}

static void	tun_setiff_error(const char *, bool, int);

#define TUN_TXQUEUELEN	4096

/*
 * A multi-queue device that exists and is not persistent is open in
 * another process (it would be gone otherwise), and the kernel would let
 * us add queues beside its own: say so instead.  The kernel shows the
 * device's flags in sysfs, IFF_PERSIST among them.
 */
static bool
tun_held_elsewhere(const char *name)
{
	char path[96];
	unsigned flags = 0;
	FILE *f;
	bool held = false;

	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fscanf(f, "%x", &flags) == 1)
		held = (flags & IFF_MULTI_QUEUE) && !(flags & IFF_PERSIST);
	fclose(f);
	return held;
}

/*
 * Open one fd of the device name: the only one, or (mq) one more queue.
 * t->name, t->vnet_hdr and t->created describe the device.  The fd, or
 * -1 (logged; *mq_refused when the device exists without multi-queue).
 */
static int
tun_open_fd(struct tun *t, const char *name, bool vnet, bool mq,
    bool *mq_refused)
{
	struct ifreq ifr;
	bool existed = if_nametoindex(name) != 0;
	int fd;

	if (existed && t->fd == -1 && tun_held_elsewhere(name)) {
		tun_setiff_error(name, existed, EBUSY);
		return -1;
	}
	if ((fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)) == -1) {
		int e = errno;

		if (e == ENOENT || e == ENODEV || e == ENXIO)
			log_errorx("tun: /dev/net/tun: %s: load the tun module "
			    "(modprobe tun), or in a container pass the device "
			    "in (docker run --device /dev/net/tun, systemd "
			    "DeviceAllow=/dev/net/tun rw)", strerror(e));
		else if (e == EACCES || e == EPERM)
			log_errorx("tun: /dev/net/tun: %s: sluice needs root "
			    "or CAP_NET_ADMIN, and access to the device",
			    strerror(e));
		else
			log_error("tun: open /dev/net/tun");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) |
	    (mq ? IFF_MULTI_QUEUE : 0);
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) == -1) {
		if (mq && errno == EINVAL && existed && t->fd == -1) {
			*mq_refused = true;
			close(fd);
			return -1;
		}
		tun_setiff_error(name, existed, errno);
		goto bad;
	}
	if (vnet && tun_set_offload(fd) == -1) {
		if (t->fd != -1) {
			log_error("tun: %s: TUNSETOFFLOAD", name);
			goto bad;
		}
		/* an old kernel: close and start over without */
		log_info("tun: %s: no offloads (%s)", name, strerror(errno));
		close(fd);
		return tun_open_fd(t, name, false, mq, mq_refused);
	}
	/* a persistent device keeps the offloads of an earlier run with
	 * them; without a virtio_net_hdr they would hand us super-packets
	 * and unfinished checksums that we must drop */
	if (!vnet && ioctl(fd, TUNSETOFFLOAD, 0) == -1)
		log_debug("tun: %s: clear offloads: %s", name, strerror(errno));
	if (tun_set_nonblock(fd) == -1) {
		log_error("tun: %s: O_NONBLOCK", name);
		goto bad;
	}
	if (t->fd == -1) {
		t->vnet_hdr = vnet;
		memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
		t->name[IFNAMSIZ - 1] = '\0';
		t->created = !existed;
		log_debug("tun: %s %s", t->created ? "created" : "attached to",
		    t->name);
	}
	return fd;
bad:
	close(fd);
	return -1;
}

static int
tun_open_flags(struct tun *t, const char *name, bool vnet)
{
	bool refused = false;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if ((t->fd = tun_open_fd(t, name, vnet, false, &refused)) == -1)
		return -1;
	return 0;
}

int
tun_open(struct tun *t, const char *name)
{
	return tun_open_flags(t, name, false);
}

int
tun_open_offload(struct tun *t, const char *name)
{
	return tun_open_flags(t, name, true);
}

int
tun_open_queues(struct tun *t, const char *name, bool vnet, int *fds, int n)
{
	bool refused = false;
	int fd;

	if (n < 1 || n > TUN_QUEUES_MAX) {
		log_errorx("tun: %d queues: 1..%d", n, TUN_QUEUES_MAX);
		return -1;
	}
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	while (t->nqueues < n) {
		fd = tun_open_fd(t, t->fd == -1 ? name : t->name,
		    t->fd == -1 ? vnet : t->vnet_hdr, true, &refused);
		if (fd == -1 && refused) {
			log_warnx("tun: %s exists without multi-queue: one "
			    "queue (delete it, or make it with ip tuntap add "
			    "... multi_queue, for more)", name);
			if (tun_open_flags(t, name, vnet) == -1)
				return -1;
			t->queues[0] = t->fd;
			t->nqueues = 1;
			break;
		}
		if (fd == -1) {
			tun_close(t);
			return -1;
		}
		if (t->fd == -1)
			t->fd = fd;
		t->queues[t->nqueues++] = fd;
	}
	memcpy(fds, t->queues, (size_t)t->nqueues * sizeof(*fds));
	return t->nqueues;
}

int
tun_adopt(struct tun *t, int fd)
{
	struct ifreq ifr;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) == -1) {
		log_error("tun: fd %d is not a TUN device", fd);
		return -1;
	}
	if (!(ifr.ifr_flags & IFF_TUN) || !(ifr.ifr_flags & IFF_NO_PI)) {
		log_errorx("tun: fd %d: need IFF_TUN|IFF_NO_PI", fd);
		return -1;
	}
	if (tun_set_nonblock(fd) == -1) {
		log_error("tun: fd %d: O_NONBLOCK", fd);
		return -1;
	}
	if ((ifr.ifr_flags & IFF_VNET_HDR) && tun_set_offload(fd) == -1) {
		log_error("tun: fd %d: IFF_VNET_HDR without offloads", fd);
		return -1;
	}
	if (!(ifr.ifr_flags & IFF_VNET_HDR))
		(void)ioctl(fd, TUNSETOFFLOAD, 0);	/* as in tun_open_flags */
	t->vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
	t->fd = fd;
	t->adopted = true;
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = '\0';
	return 0;
}

/* Say why TUNSETIFF failed in words a person can act on. */
static void
tun_setiff_error(const char *name, bool existed, int e)
{
	switch (e) {
	case EPERM:
		log_errorx("tun: %s: %s: creating or attaching a TUN device "
		    "needs root or CAP_NET_ADMIN (or a persistent device made "
		    "for this user: ip tuntap add %s mode tun user USER)",
		    name, strerror(e), name);
		break;
	case EBUSY:
		log_errorx("tun: %s: the device is held by another process "
		    "(another sluice, or a VPN): stop it, or pick another name "
		    "with --tun", name);
		break;
	case EINVAL:
		if (existed) {
			log_errorx("tun: %s: a device of that name exists but "
			    "is not a TUN device of the kind sluice opens (a "
			    "tap, veth, bridge, or a multi-queue TUN): pick "
			    "another name with --tun", name);
			break;
		}
		/* FALLTHROUGH */
	default:
		errno = e;
		log_error("tun: %s: TUNSETIFF", name);
		break;
	}
}

unsigned long long
tun_kernel_dropped(const char *name)
{
	char path[96];
	unsigned long long n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/tx_dropped",
	    name);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu", &n) != 1)
		n = 0;
	fclose(f);
	return n;
}

/* Run one interface ioctl on a throwaway socket of the given family. */
static int
tun_ioctl(int family, unsigned long req, void *arg)
{
	int s, rc;

	if ((s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = ioctl(s, req, arg);
	if (rc == -1) {
		int saved = errno;
		close(s);
		errno = saved;
		return -1;
	}
	close(s);
	return 0;
}

int
tun_get_mtu(const struct tun *t)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, IFNAMSIZ);
	if (tun_ioctl(AF_INET, SIOCGIFMTU, &ifr) == -1) {
		log_error("tun: %s: get mtu", t->name);
		return -1;
	}
	return ifr.ifr_mtu;
}

int
tun_set_mtu(const struct tun *t, int mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, IFNAMSIZ);
	ifr.ifr_mtu = mtu;
	if (tun_ioctl(AF_INET, SIOCSIFMTU, &ifr) == -1) {
		log_error("tun: %s: set mtu %d", t->name, mtu);
		return -1;
	}
	return 0;
}

int
tun_add_ipv4(const struct tun *t, const struct in_addr *a, int prefix)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, IFNAMSIZ);
	sin->sin_family = AF_INET;
	sin->sin_addr = *a;
	if (tun_ioctl(AF_INET, SIOCSIFADDR, &ifr) == -1 && errno != EEXIST) {
		log_error("tun: %s: set ipv4 address", t->name);
		return -1;
	}
	sin->sin_addr.s_addr = prefix == 0 ? 0 :
	    htonl(0xffffffffu << (32 - prefix));
	if (tun_ioctl(AF_INET, SIOCSIFNETMASK, &ifr) == -1) {
		log_error("tun: %s: set ipv4 netmask /%d", t->name, prefix);
		return -1;
	}
	return 0;
}

int
tun_add_ipv6(const struct tun *t, const struct in6_addr *a, int prefix)
{
	/* sized like struct ifreq, which is what valgrind checks */
	union {
		struct tun_in6_ifreq	r6;
		struct ifreq		r;
	} u;

	memset(&u, 0, sizeof(u));
	u.r6.addr = *a;
	u.r6.prefixlen = (uint32_t)prefix;
	if ((u.r6.ifindex = (int)if_nametoindex(t->name)) == 0) {
		log_error("tun: %s: ifindex", t->name);
		return -1;
	}
	if (tun_ioctl(AF_INET6, SIOCSIFADDR, &u) == -1 && errno != EEXIST) {
		log_error("tun: %s: set ipv6 address", t->name);
		return -1;
	}
	return 0;
}

/* Set IFF_UP (and IFF_RUNNING) on an interface by name; 0 or -1. */
int
tun_link_up(const char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (tun_ioctl(AF_INET, SIOCGIFFLAGS, &ifr) == -1)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return tun_ioctl(AF_INET, SIOCSIFFLAGS, &ifr);
}

/*
 * A device we made gets a queue of TUN_TXQUEUELEN packets (the kernel's
 * own is 500): without offloads a few TCP uploads with 1 MiB windows
 * outrun 500 packets between two reads, and every packet lost there is
 * a retransmission.  An existing device keeps what its owner set.
 */
static void
tun_set_queue(const struct tun *t)
{
	struct ifreq ifr;

	if (!t->created)
		return;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, t->name, IFNAMSIZ);
	ifr.ifr_qlen = TUN_TXQUEUELEN;
	if (tun_ioctl(AF_INET, SIOCSIFTXQLEN, &ifr) == -1)
		log_info("tun: %s: queue of %d packets: %s", t->name,
		    TUN_TXQUEUELEN, strerror(errno));
}

int
tun_up(const struct tun *t)
{
	tun_set_queue(t);
	if (tun_link_up(t->name) == -1) {
		log_error("tun: %s: set up", t->name);
		return -1;
	}
	return 0;
}

void
tun_close(struct tun *t)
{
	for (int i = 0; i < t->nqueues; i++)
		if (t->queues[i] != t->fd && t->queues[i] != -1)
			close(t->queues[i]);
	t->nqueues = 0;
	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
}
