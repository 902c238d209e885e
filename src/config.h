/*
 * config.h - sluice's configuration: one struct, filled from defaults, an
 * INI file (inih) and command-line overrides, in that order.
 *
 * Every setting has one setter, config_set(), used by the file parser and by
 * the command line alike, so both accept exactly the same values.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "route.h"
#include "url.h"

#define CONFIG_ERR_MAX	512

/* [tun] icmp: what echo requests into the TUN get */
enum config_icmp {
	CONFIG_ICMP_DROP,		/* nothing: the path is unknown */
	CONFIG_ICMP_LOCAL,		/* an answer from sluice itself */
};

/* [dns] mode: what happens to DNS queries over UDP */
enum config_dns_mode {
	CONFIG_DNS_TCP,		/* DNS over TCP through the upstream */
	CONFIG_DNS_FAKE_IP,	/* A/AAAA from the fake pools; the proxy resolves */
	CONFIG_DNS_UDP,		/* like any UDP, through UDP ASSOCIATE */
	CONFIG_DNS_OFF,		/* the same: not treated specially */
};

#define CONFIG_PORTS_MAX	8
#define CONFIG_ROUTE_CIDRS_MAX	64	/* [route] include, exclude */

/* A network and its prefix length. */
struct config_cidr {
	union {
		struct in_addr	v4;
		struct in6_addr	v6;
	} addr;
	int		prefix;
};

/* [udp] filtering (RFC 4787): which remotes may reach a mapping */
enum config_udp_filter {
	CONFIG_UDP_ENDPOINT_INDEPENDENT,	/* any remote */
	CONFIG_UDP_ADDRESS_DEPENDENT,	/* addresses the client sent to */
};

#define CONFIG_WORKERS_MAX	16
#define CONFIG_WORKERS_AUTO_MAX	8

struct config {
	/* [tun] */
	char		tun_name[IFNAMSIZ];	/* default "sluice0" */
	int		mtu;			/* default 1500; 576..65535 */
	bool		has_ipv4;
	struct in_addr	ipv4;
	int		ipv4_prefix;		/* 0..32 */
	bool		has_ipv6;
	struct in6_addr	ipv6;
	int		ipv6_prefix;		/* 0..128 */
	int		tun_fd;			/* -1: open/create by name */
	bool		offload;		/* default true: TSO/csum offloads */
	int		icmp;			/* enum config_icmp; default drop */

	/* [upstream] */
	bool		has_upstream;
	struct url	upstream;
	unsigned	connect_timeout_ms;	/* default 10s */
	uint32_t	fwmark;			/* SO_MARK; 0 = none */
	char		interface[IFNAMSIZ];	/* SO_BINDTODEVICE; "" = none */
	char		password_file[256];	/* "" = none */
	/* TLS (socks5+tls://, https://) */
	char		ca_file[256];		/* default: system bundle */
	char		server_name[256];	/* default: the URL host */
	bool		verify;			/* default true; "verify = none" */
	char		client_cert[256];
	char		client_key[256];
	bool		has_pin;
	unsigned char	pin_sha256[32];

	/* [limits] */
	unsigned	max_flows;		/* default 4096 */
	unsigned	idle_timeout_ms;	/* default 5m; 0 = never */
	size_t		flow_buffer;		/* default 256k; 16k..64m */
	size_t		max_memory;		/* default 512m; 0 = no budget */

	/* [udp] */
	bool		udp;			/* default true */
	unsigned	udp_timeout_ms;		/* default 60s */
	int		udp_filtering;		/* enum config_udp_filter */
	unsigned	udp_max_flows;		/* default 1024 */
	bool		udp_allow_plain;	/* default false */

	/* [dns] */
	int		dns_mode;		/* enum config_dns_mode; tcp */
	uint16_t	dns_ports[CONFIG_PORTS_MAX];	/* default 53 */
	unsigned	dns_nports;
	struct sockaddr_storage dns_server;	/* AF_UNSPEC: as addressed */
	unsigned	dns_timeout_ms;		/* default 5s */
	struct config_cidr fake_ipv4;		/* default 198.18.0.0/15 */
	struct config_cidr fake_ipv6;		/* default fd00:5:1ce::/64 */
	unsigned	fake_ip_max;		/* default 65536 */
	char		dns_exclude[512];	/* suffixes, blank-separated */
	char		state_file[256];	/* "" = none */

	/* [route] */
	bool		route_auto;		/* default false */
	unsigned	route_table;		/* default ROUTE_TABLE_DEFAULT */
	unsigned	route_priority;		/* default ROUTE_PRIORITY_DEFAULT */
	struct route_cidr route_include[CONFIG_ROUTE_CIDRS_MAX];	/* none: all */
	size_t		route_ninclude;
	struct route_cidr route_exclude[CONFIG_ROUTE_CIDRS_MAX];
	size_t		route_nexclude;
	char		route_up_cmd[1024];	/* run when up; "" = none */
	char		route_down_cmd[1024];	/* run before going down */

	/* [metrics] */
	struct sockaddr_storage metrics_listen;	/* AF_UNSPEC: off */

	/* [process] */
	char		user[64];		/* "" = stay as started */
	char		group[64];		/* "" = the user's group */
	unsigned	workers;		/* processes, one per TUN queue;
						 * 0 = auto (CPUs, at most
						 * CONFIG_WORKERS_AUTO_MAX) */
	unsigned	worker_timeout_ms;	/* a worker whose loop stops
						 * this long is killed and
						 * restarted; 0 = never */
	bool		kill_switch;		/* default false */

	/* [log] */
	enum log_level	log_level;		/* default info */
};

/* Fill in every default. */
void config_defaults(struct config *c);

/*
 * Set one key.  Returns 0, or -1 with a message in err that quotes the
 * offending text ("unknown key `foo' in section [tun]", "bad value `12x'
 * for mtu: expected an integer 576..65535"); the url value is never quoted.
 * An empty value unsets ca_file, server_name, client_cert, client_key and
 * pin_sha256; for every other key it is an error.
 */
int config_set(struct config *c, const char *section, const char *key,
    const char *value, char *err, size_t errlen);

/*
 * Parse an INI file into c (on top of what it holds).  Returns 0, or -1
 * with "FILE:LINE: message" in err (FILE alone when it cannot be opened).
 * Unknown sections and keys are errors.  Lines and values may be of any
 * length (up to CONFIG_LINE_MAX): inih's own line limit does not apply.
 * A value ends at an inline comment: a ';' after a blank.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

#define CONFIG_LINE_MAX	65536

/*
 * Cross-key checks (an upstream is required, ...), including that the
 * password from config_password() can be had.  0 or -1 and err.
 */
int config_validate(const struct config *c, char *err, size_t errlen);

/*
 * The upstream password from elsewhere than the URL, in this order:
 * the first line of password_file (its line end stripped), else the
 * environment variable SLUICE_PASSWORD when set and not empty.  Either
 * overrides a password in the URL, and needs a URL with a user name.
 * Returns 1 with the password in pass (NUL-terminated; wipe it after
 * use), 0 if there is none (pass empty), or -1 with a reason in err that
 * never holds the password.
 */
int config_password(const struct config *c, char *pass, size_t len,
    char *err, size_t errlen);

/* "10s", "250ms", "5m", "1h", bare number = seconds.  false if malformed. */
bool config_parse_duration(const char *s, unsigned *ms);
/* "65536", "256k", "4m", "1g" (powers of 1024).  false if malformed. */
bool config_parse_size(const char *s, size_t *bytes);
/* "198.18.0.1/24" or "fd00::1/64" into address + prefix.  false if bad. */
bool config_parse_prefix(const char *s, int family, void *addr, int *prefix);
/* 64 hex digits or base64 of 32 bytes.  false if malformed. */
bool config_parse_pin(const char *s, unsigned char out[32]);

#endif
