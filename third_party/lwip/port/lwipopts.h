/*
 * lwipopts.h - lwIP configuration for sluice.
 *
 * One netif (the TUN device), raw API from a single libevent thread
 * (NO_SYS=1), IPv4 and IPv6, TCP tuned for multi-Gbps over a local TUN:
 * window scaling, 1 MiB windows and send buffers, static pools and a static
 * heap (no malloc on the data path).
 */
#ifndef SLUICE_LWIPOPTS_H
#define SLUICE_LWIPOPTS_H

/* ---- system ---------------------------------------------------------- */
#define NO_SYS				1
#define SYS_LIGHTWEIGHT_PROT		0
#define LWIP_SOCKET			0
#define LWIP_NETCONN			0
#define LWIP_NETIF_API			0
#define LWIP_SINGLE_NETIF		1
#define LWIP_TIMERS			1
#define TCP_TMR_INTERVAL		100

/* ---- memory: the libc's heap, static pools ---------------------------- */
/* lwIP's own heap is first fit over one list: with a few hundred flows
 * holding data each allocation walked thousands of blocks (a stalled set
 * of flows kept a core busy).  The libc's malloc does not; MEM_SIZE stays
 * the budget src/stack.c holds lwIP's heap use to (MEM_STATS counts it).
 * The sanitizer build also sets MEMP_MEM_MALLOC=1 (malloc everything, so
 * ASan sees each pcb, segment and pbuf). */
#ifndef MEM_LIBC_MALLOC
#define MEM_LIBC_MALLOC			1
#endif
#ifndef MEMP_MEM_MALLOC
#define MEMP_MEM_MALLOC			0
#endif
#define MEM_ALIGNMENT			8
/* tcp_write() copies into PBUF_RAM segments from the heap; this is the
 * most sluice lets lwIP hold (new flows are refused past 7/8 of it) */
#define MEM_SIZE			(256 * 1024 * 1024)
#define MEMP_NUM_PBUF			4096
#define MEMP_NUM_TCP_PCB		16384
#define MEMP_NUM_TCP_PCB_LISTEN		8
#define MEMP_NUM_TCP_SEG		65535	/* memp counts are u16_t */
#define MEMP_NUM_UDP_PCB		8
/* datagrams being reassembled, and their fragments (a 65,507-byte
 * datagram at MTU 1500 is 45); at most a quarter of the pbuf pool */
#define MEMP_NUM_REASSDATA		64
#define IP_REASS_MAX_PBUFS		1024
/* fragments of one datagram being sent (written out one by one) */
#define MEMP_NUM_FRAG_PBUF		64
#define PBUF_POOL_SIZE			4096
#define PBUF_POOL_BUFSIZE		2048
#define MEMP_OVERFLOW_CHECK		0
#define MEMP_SANITY_CHECK		0

/* ---- link and IP ------------------------------------------------------ */
#define LWIP_ARP			0
#define LWIP_ETHERNET			0
#define LWIP_IPV4			1
#define LWIP_IPV6			1
#define IP_FORWARD			0
#define IP_REASSEMBLY			1
#define IP_FRAG				1
#define IP_DEFAULT_TTL			64
#define LWIP_ICMP			1
#define LWIP_RAW			0
#define LWIP_DHCP			0
#define LWIP_AUTOIP			0
#define LWIP_IGMP			0
#define LWIP_DNS			0
#define LWIP_IPV6_NUM_ADDRESSES		3
#define LWIP_IPV6_FORWARD		0
#define LWIP_IPV6_FRAG			1
#define LWIP_IPV6_REASS			1
#define IPV6_FRAG_COPYHEADER		1
#define LWIP_IPV6_MLD			0
#define LWIP_IPV6_AUTOCONFIG		0
#define LWIP_IPV6_DHCP6			0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT	0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS	0
#define LWIP_ND6_QUEUEING		0
#define LWIP_ICMP6			1

/* checksums on by default; the TUN netif can switch them off at run time */
#define LWIP_CHECKSUM_CTRL_PER_NETIF	1
#define LWIP_CHECKSUM_ON_COPY		0

/* ---- UDP --------------------------------------------------------------- */
#define LWIP_UDP			1

/* ---- TCP --------------------------------------------------------------- */
#define LWIP_TCP			1
#define LWIP_CALLBACK_API		1
#define LWIP_EVENT_API			0
/* the largest MSS we accept or announce; the real one comes from the TUN
 * MTU (TCP_CALCULATE_EFF_SEND_MSS) */
#define TCP_MSS				1460
#define TCP_CALCULATE_EFF_SEND_MSS	1
#define LWIP_WND_SCALE			1
#define TCP_RCV_SCALE			6
#define TCP_WND				(1024 * 1024)
#define TCP_SND_BUF			(1024 * 1024)
#define TCP_SND_QUEUELEN		4096
#define TCP_SNDLOWAT			(0xffff - 4 * TCP_MSS - 1)
#define TCP_SNDQUEUELOWAT		(TCP_SND_QUEUELEN / 2)
#define TCP_WND_UPDATE_THRESHOLD	(4 * TCP_MSS)
#define TCP_QUEUE_OOSEQ			1
#define TCP_OOSEQ_MAX_BYTES		(256 * 1024)
#define TCP_OOSEQ_MAX_PBUFS		256
#define LWIP_TCP_SACK_OUT		1
#define LWIP_TCP_MAX_SACK_NUM		4
#define TCP_LISTEN_BACKLOG		0
#define TCP_OVERSIZE			TCP_MSS
#define LWIP_TCP_TIMESTAMPS		0
#define LWIP_TCP_KEEPALIVE		1
#define TCP_MAXRTX			8
#define TCP_SYNMAXRTX			4
/* TIME-WAIT lasts 2 * TCP_MSL ms; lwIP's default, overridable with -D */
#ifndef TCP_MSL
#define TCP_MSL				60000UL
#endif
/* one slot: src/stack.c keeps the client's SYN MSS there (TSO size) */
#define LWIP_TCP_PCB_NUM_EXT_ARGS	1
/* netif->hints points at the sending pcb while tcp_output_segment runs,
 * so the TUN output knows which pcb a segment is from (no ARP here) */
#define LWIP_NETIF_HWADDRHINT		1

/* ---- hooks (src/lwip_hooks.c, declared in arch/cc.h) -------------------- */
/* RFC 6528 initial sequence numbers: clock + SipHash(4-tuple, secret) */
#define LWIP_HOOK_TCP_ISN		sluice_lwip_tcp_isn
/* the key of the pcb lookup hash (patch 0005), from getrandom() */
#define TCP_PCB_HASH_SEED()		sluice_lwip_hash_seed()
/* the MSS our SYN-ACKs announce (patch 0007): up to the TUN's MTU, which
 * may exceed TCP_MSS (lwIP would announce at most TCP_MSS, 1460: at MTU
 * 8500 without offloads clients then send six packets where one would do) */
#define TCP_MSS_ANNOUNCE		sluice_lwip_mss_announce
/* the IDs of IPv4 headers and IPv6 Fragment headers (patch 0008): worker
 * processes send from the same addresses, each from its own part of the
 * ID space, so a client never reassembles two workers' fragments as one */
#define LWIP_HOOK_IP4_ID()		sluice_lwip_ip4_id()
#define LWIP_HOOK_IP6_FRAG_ID()		sluice_lwip_ip6_frag_id()

/* ---- statistics: counters for dropped and bad packets ------------------- */
#define LWIP_STATS			1
#define LWIP_STATS_DISPLAY		0
#define LINK_STATS			1
#define IP_STATS			1
#define IP6_STATS			1
#define TCP_STATS			1
#define UDP_STATS			0
#define ICMP_STATS			0
#define ICMP6_STATS			0
#define MEM_STATS			1
#define MEMP_STATS			1
#define SYS_STATS			0
#define IPFRAG_STATS			1
#define IP6_FRAG_STATS			1
#define ND6_STATS			0
#define MLD6_STATS			0
#define MIB2_STATS			0

#define LWIP_NETIF_STATUS_CALLBACK	0
#define LWIP_NETIF_LINK_CALLBACK	0
#define LWIP_NETIF_HOSTNAME		0
#define LWIP_NETIF_LOOPBACK		0
#define LWIP_HAVE_LOOPIF		0

#endif
