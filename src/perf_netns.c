/*
 * perf_netns.c - the private network namespace of `sluice --perf`: leave
 * the caller's namespace (unshare), bring up lo and the TUN device
 * (198.18.0.1/24, a default route into it), and say which capability is
 * missing when that is not allowed.  Nothing outside the new namespace is
 * touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <net/route.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "perf_int.h"

/* Which of the capabilities --perf needs are missing ("" if none). */
static void
perf_missing_caps(char *buf, size_t len)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];

	buf[0] = '\0';
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == -1)
		return;
	if (!(data[0].effective & (1U << CAP_SYS_ADMIN)))
		snprintf(buf, len, "CAP_SYS_ADMIN (to create a network "
		    "namespace)");
	if (!(data[0].effective & (1U << CAP_NET_ADMIN)))
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
		    buf[0] != '\0' ? " and " : "",
		    "CAP_NET_ADMIN (to create and configure the TUN device)");
}

/* A default route into the TUN device, so any --perf-addr goes there. */
static int
perf_route_default(const char *dev)
{
	struct rtentry rt;
	struct sockaddr_in *sin;
	char name[IFNAMSIZ];
	int s, rc;

	memset(&rt, 0, sizeof(rt));
	sin = (struct sockaddr_in *)&rt.rt_dst;
	sin->sin_family = AF_INET;
	sin = (struct sockaddr_in *)&rt.rt_genmask;
	sin->sin_family = AF_INET;
	snprintf(name, sizeof(name), "%s", dev);
	rt.rt_dev = name;
	rt.rt_flags = RTF_UP;
	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	rc = ioctl(s, SIOCADDRT, &rt);
	if (rc == -1 && errno == EEXIST)
		rc = 0;
	close(s);
	return rc;
}

/*
 * Leave the caller's network namespace for a new private one, and set up
 * lo and the TUN device there.  Nothing outside the new namespace is
 * touched.  0, or -1 with a message on stderr.
 */
int
perf_netns_setup(struct perf *p)
{
	char missing[160];
	struct in_addr tun_addr;

	if (unshare(CLONE_NEWNET) == -1) {
		int e = errno;

		perf_missing_caps(missing, sizeof(missing));
		if (e == EPERM)
			fprintf(stderr, "sluice: --perf: cannot create a "
			    "private network namespace: missing %s; run as "
			    "root\n", missing[0] != '\0' ? missing :
			    "CAP_SYS_ADMIN (to create a network namespace)");
		else
			fprintf(stderr, "sluice: --perf: "
			    "unshare(CLONE_NEWNET): %s\n", strerror(e));
		return -1;
	}
	if (tun_link_up("lo") == -1) {
		fprintf(stderr, "sluice: --perf: cannot bring up lo: %s%s\n",
		    strerror(errno), errno == EPERM ?
		    " (missing CAP_NET_ADMIN)" : "");
		return -1;
	}
	if (access("/dev/net/tun", R_OK | W_OK) == -1) {
		fprintf(stderr, "sluice: --perf: /dev/net/tun: %s\n",
		    strerror(errno));
		return -1;
	}
	perf_missing_caps(missing, sizeof(missing));
	if (strstr(missing, "CAP_NET_ADMIN") != NULL) {
		fprintf(stderr, "sluice: --perf: missing CAP_NET_ADMIN (to "
		    "create and configure the TUN device); run as root\n");
		return -1;
	}
	inet_pton(AF_INET, "198.18.0.1", &tun_addr);
	if ((p->o.offload ? tun_open_offload(&p->tun, PERF_TUN_NAME) :
	    tun_open(&p->tun, PERF_TUN_NAME)) == -1 ||
	    tun_set_mtu(&p->tun, p->o.mtu) == -1 ||
	    tun_add_ipv4(&p->tun, &tun_addr, 24) == -1 ||
	    tun_up(&p->tun) == -1 ||
	    perf_route_default(p->tun.name) == -1) {
		fprintf(stderr, "sluice: --perf: cannot set up the TUN device "
		    "%s%s\n", PERF_TUN_NAME, errno == EPERM ?
		    ": missing CAP_NET_ADMIN" : "");
		return -1;
	}
	return 0;
}
