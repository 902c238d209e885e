/*
 * perf_netns.c - the private network namespace of `sluice --perf`: leave
 * the caller's namespace (unshare), bring up lo and the TUN device
 * (198.18.0.1/24, a default route into it), and say which capability is
 * missing when that is not allowed.  Nothing outside the new namespace is
 * touched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <sched.h>
#include <stdint.h>
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
 * A socket filter that returns a TCP/IPv4 packet's source port: attached
 * to the TUN device with TUNSETSTEERINGEBPF, the kernel puts the packet on
 * queue (port % queues).  Raw eBPF: ld_abs/ld_ind need the skb in r6.
 */
static int
perf_steer_load(void)
{
	struct bpf_insn prog[] = {
		/* r6 = skb */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 6,
		  .src_reg = 1 },
		/* r0 = (ip[0] & 0x0f) << 2: the IP header's length */
		{ .code = BPF_LD | BPF_ABS | BPF_B, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = 0,
		  .imm = 0x0f },
		{ .code = BPF_ALU64 | BPF_LSH | BPF_K, .dst_reg = 0, .imm = 2 },
		/* r0 = the 16 bits after it: the source port (a packet too
		 * short for that ends the program with 0: queue 0) */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 7,
		  .src_reg = 0 },
		{ .code = BPF_LD | BPF_IND | BPF_H, .src_reg = 7, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (uint64_t)(uintptr_t)prog;
	attr.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	attr.license = (uint64_t)(uintptr_t)"GPL";
	return (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}

/*
 * --perf-workers N: a device of N queues (fds in p->tun.queues, queue i
 * is the i-th opened), and connection i steered to queue i by its source
 * port; without the steering program the kernel's flow hash decides,
 * which may leave a worker idle.  0 or -1.
 */
static int
perf_tun_open_queues(struct perf *p)
{
	int fds[PERF_WORKERS_MAX], prog;

	if (tun_open_queues(&p->tun, PERF_TUN_NAME, p->o.offload, fds,
	    (int)p->o.workers) != (int)p->o.workers) {
		tun_close(&p->tun);
		return -1;
	}
	if ((prog = perf_steer_load()) == -1 ||
	    ioctl(p->tun.fd, TUNSETSTEERINGEBPF, &prog) == -1) {
		if (!p->o.quiet)
			fprintf(stderr, "sluice: --perf: no steering program "
			    "on the TUN queues (%s): the kernel's flow hash "
			    "spreads the connections\n", strerror(errno));
	} else
		p->steered = true;
	/* the device holds the program */
	if (prog != -1)
		close(prog);
	return 0;
}

uint16_t
perf_client_port(const struct perf *p, unsigned idx, unsigned i)
{
	unsigned n = p->o.workers;

	/* port % n == i; below the ephemeral range (32768-) that the relay
	 * path's own connections use, and a new block each run, so no run
	 * meets the TIME_WAIT of an earlier one (1000 runs x 16 workers
	 * fit) */
	return (uint16_t)(n * ((10000 + n - 1) / n + (idx - 1) %
	    (22000 / n)) + i);
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
	if ((p->o.workers > 1 ? perf_tun_open_queues(p) :
	    p->o.offload ? tun_open_offload(&p->tun, PERF_TUN_NAME) :
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
