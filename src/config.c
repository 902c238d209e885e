/*
 * config.c - defaults, one setter per key (config_set) shared by the INI
 * file and the command line, the file loader on top of inih, cross-key
 * validation, and the value parsers (durations, sizes, prefixes, pins).
 *
 * inih reads the file through our own line reader.  The reader counts
 * lines (so every error carries FILE:LINE), strips leading blanks (so
 * indented keys are keys, never inih's multi-line continuations), rejects
 * unknown [sections] even when empty, and stops at the first error our
 * handler reports.  It also takes every value out of its line, the way
 * inih would cut it (blanks around it and an inline "; comment" go), and
 * hands inih only "name=": inih's line buffer (199 bytes in Debian's
 * libinih) then limits nothing but section headers, and a long URL is
 * never split or refused.  inih calls the handler for a line before it
 * reads the next, so the handler takes the value of the line just read.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#include "config.h"

enum config_type {
	CONFIG_IFNAME,		/* char[IFNAMSIZ]; min 1: empty = unset */
	CONFIG_MARK,		/* uint32_t, decimal or 0x hex */
	CONFIG_INT,		/* int, min..max */
	CONFIG_UINT,		/* unsigned, min..max */
	CONFIG_PREFIX4,		/* ipv4 address/prefix */
	CONFIG_PREFIX6,		/* ipv6 address/prefix */
	CONFIG_URL,		/* the upstream URL */
	CONFIG_DURATION,	/* unsigned ms, min..max */
	CONFIG_SIZE,		/* size_t bytes, min..max */
	CONFIG_PATH,		/* char[max]; empty = unset */
	CONFIG_BOOL,		/* yes/no */
	CONFIG_PIN,		/* SHA-256 pin; empty = unset */
	CONFIG_LOG_LEVEL,	/* debug/info/warn/error */
	CONFIG_ENUM,		/* int: the index of a word in words */
	CONFIG_CIDR4,		/* struct config_cidr: IPv4 network/prefix */
	CONFIG_CIDR6,		/* struct config_cidr: IPv6 network/prefix */
	CONFIG_PORTS,		/* dns_ports: 1..CONFIG_PORTS_MAX ports */
	CONFIG_SOCKADDR,	/* struct sockaddr_storage: ADDR[:PORT] */
	CONFIG_SUFFIXES,	/* char[max]: domain suffixes, space-separated */
	CONFIG_CIDRS,		/* [route] include/exclude: route_parse_cidrs() */
	CONFIG_LISTEN,		/* struct sockaddr_storage: [ADDR:]PORT */
};

struct config_key {
	const char		*section;
	const char		*name;
	enum config_type	 type;
	size_t			 off;		/* into struct config */
	long long		 min;
	long long		 max;		/* for CONFIG_PATH: the size */
	const char		*expect;	/* for error messages */
};

#define OFF(field)	offsetof(struct config, field)

/* The words of CONFIG_ENUM keys, in the order of their enums. */
static const char *const config_icmp_words[] = { "drop", "local", NULL };
static const char *const config_filter_words[] = {
	"endpoint-independent", "address-dependent", NULL };
static const char *const config_dns_words[] = {
	"tcp", "fake-ip", "udp", "off", NULL };

/* The words a CONFIG_ENUM key takes, NULL-ended. */
static const char *const *
config_enum_words(const char *key)
{
	if (strcmp(key, "icmp") == 0)
		return config_icmp_words;
	if (strcmp(key, "mode") == 0)
		return config_dns_words;
	return config_filter_words;
}
#define SIZE(field)	sizeof(((struct config *)NULL)->field)

static const struct config_key config_keys[] = {
	{ "tun", "name", CONFIG_IFNAME, OFF(tun_name), 0, 0,
	    "an interface name of 1..15 characters without `/', `:' or "
	    "blanks" },
	{ "tun", "mtu", CONFIG_INT, OFF(mtu), 576, 65535,
	    "an integer 576..65535" },
	{ "tun", "ipv4", CONFIG_PREFIX4, 0, 0, 0,
	    "an IPv4 address with an optional /0..32" },
	{ "tun", "ipv6", CONFIG_PREFIX6, 0, 0, 0,
	    "an IPv6 address with an optional /0..128" },
	{ "tun", "offload", CONFIG_BOOL, OFF(offload), 0, 0,
	    "yes or no" },
	{ "tun", "fd", CONFIG_INT, OFF(tun_fd), -1, INT_MAX,
	    "an integer -1..2147483647" },
	{ "tun", "icmp", CONFIG_ENUM, OFF(icmp), 0, 0, "drop or local" },

	{ "upstream", "url", CONFIG_URL, 0, 0, 0, NULL },
	{ "upstream", "connect_timeout", CONFIG_DURATION,
	    OFF(connect_timeout_ms), 1, 20000,
	    "a duration like 250ms or 10s, at most 20s" },
	{ "upstream", "fwmark", CONFIG_MARK, OFF(fwmark), 0, UINT32_MAX,
	    "an integer 0..4294967295 or 0x and up to 8 hex digits" },
	{ "upstream", "interface", CONFIG_IFNAME, OFF(interface), 1, 0,
	    "an interface name of 1..15 characters without `/', `:' or "
	    "blanks, or nothing" },
	{ "upstream", "password_file", CONFIG_PATH, OFF(password_file), 0,
	    SIZE(password_file), NULL },
	{ "upstream", "ca_file", CONFIG_PATH, OFF(ca_file), 0,
	    SIZE(ca_file), NULL },
	{ "upstream", "server_name", CONFIG_PATH, OFF(server_name), 0,
	    SIZE(server_name), NULL },
	{ "upstream", "verify", CONFIG_BOOL, OFF(verify), 0, 0,
	    "yes, no or none" },
	{ "upstream", "client_cert", CONFIG_PATH, OFF(client_cert), 0,
	    SIZE(client_cert), NULL },
	{ "upstream", "client_key", CONFIG_PATH, OFF(client_key), 0,
	    SIZE(client_key), NULL },
	{ "upstream", "pin_sha256", CONFIG_PIN, 0, 0, 0,
	    "64 hex digits or the base64 of 32 bytes" },

	/* lwIP has MEMP_NUM_TCP_PCB (16384) pcbs, TIME_WAIT ones included */
	{ "limits", "max_flows", CONFIG_UINT, OFF(max_flows), 1, 16000,
	    "an integer 1..16000" },
	{ "limits", "idle_timeout", CONFIG_DURATION, OFF(idle_timeout_ms),
	    0, UINT_MAX, "a duration like 250ms, 10s, 5m or 1h, 0 for never" },
	{ "limits", "flow_buffer", CONFIG_SIZE, OFF(flow_buffer),
	    16 * 1024, 64 * 1024 * 1024, "a size 16k..64m" },
	{ "limits", "max_memory", CONFIG_SIZE, OFF(max_memory),
	    0, 1024LL * 1024 * 1024 * 1024, "a size like 512m or 2g, 0 for "
	    "no budget" },

	{ "udp", "enable", CONFIG_BOOL, OFF(udp), 0, 0, "yes or no" },
	{ "udp", "timeout", CONFIG_DURATION, OFF(udp_timeout_ms), 1000,
	    24 * 3600 * 1000, "a duration like 30s or 5m, 1s..24h" },
	{ "udp", "filtering", CONFIG_ENUM, OFF(udp_filtering), 0, 0,
	    "endpoint-independent or address-dependent" },
	/* each association holds two sockets: a TCP one and a UDP one */
	{ "udp", "max_flows", CONFIG_UINT, OFF(udp_max_flows), 1, 16000,
	    "an integer 1..16000" },
	{ "udp", "allow_plain", CONFIG_BOOL, OFF(udp_allow_plain), 0, 0,
	    "yes or no" },

	{ "dns", "mode", CONFIG_ENUM, OFF(dns_mode), 0, 0,
	    "tcp, fake-ip, udp or off" },
	{ "dns", "ports", CONFIG_PORTS, 0, 0, 0,
	    "1 to 8 ports 1..65535, separated by commas or blanks" },
	{ "dns", "server", CONFIG_SOCKADDR, OFF(dns_server), 0, 0,
	    "an IPv4 or IPv6 address with an optional port (1.2.3.4, "
	    "1.2.3.4:5353, 2001:db8::1, [2001:db8::1]:5353), or nothing" },
	{ "dns", "timeout", CONFIG_DURATION, OFF(dns_timeout_ms), 100,
	    60 * 1000, "a duration like 500ms or 5s, 100ms..60s" },
	{ "dns", "fake_ipv4", CONFIG_CIDR4, OFF(fake_ipv4), 0, 0,
	    "an IPv4 network with a prefix /8../30, like 198.18.0.0/15" },
	{ "dns", "fake_ipv6", CONFIG_CIDR6, OFF(fake_ipv6), 0, 0,
	    "an IPv6 network with a prefix /64../120, like fd00:5:1ce::/64" },
	{ "dns", "fake_ip_max", CONFIG_UINT, OFF(fake_ip_max), 16, 4000000,
	    "an integer 16..4000000" },
	{ "dns", "exclude", CONFIG_SUFFIXES, OFF(dns_exclude), 0,
	    SIZE(dns_exclude), "domain suffixes (letters, digits, `-', `_' "
	    "and `.') separated by commas or blanks" },
	{ "dns", "state_file", CONFIG_PATH, OFF(state_file), 0,
	    SIZE(state_file), NULL },

	{ "route", "auto", CONFIG_BOOL, OFF(route_auto), 0, 0, "yes or no" },
	{ "route", "table", CONFIG_UINT, OFF(route_table), 1, UINT32_MAX,
	    "an integer 1..4294967295 other than 252..255" },
	{ "route", "priority", CONFIG_UINT, OFF(route_priority), 1,
	    ROUTE_PRIORITY_MAX, "an integer 1..32763" },
	{ "route", "include", CONFIG_CIDRS, 0, 0, 0, NULL },
	{ "route", "exclude", CONFIG_CIDRS, 0, 0, 0, NULL },
	{ "route", "kill_switch", CONFIG_BOOL, OFF(kill_switch), 0, 0,
	    "yes or no" },
	{ "route", "up", CONFIG_PATH, OFF(route_up_cmd), 0,
	    SIZE(route_up_cmd), NULL },
	{ "route", "down", CONFIG_PATH, OFF(route_down_cmd), 0,
	    SIZE(route_down_cmd), NULL },

	{ "metrics", "listen", CONFIG_LISTEN, OFF(metrics_listen), 0, 0,
	    "PORT (on 127.0.0.1) or ADDR:PORT ([ADDR]:PORT for IPv6), or "
	    "nothing for off" },

	{ "process", "user", CONFIG_PATH, OFF(user), 0, SIZE(user), NULL },
	{ "process", "group", CONFIG_PATH, OFF(group), 0, SIZE(group), NULL },
	{ "process", "workers", CONFIG_UINT, OFF(workers), 0, CONFIG_WORKERS_MAX,
	    "auto, or an integer 1..16" },
	/* a worker publishes every second: less than 3s would kill healthy
	 * ones (0, never, is let through below) */
	{ "process", "worker_timeout", CONFIG_DURATION,
	    OFF(worker_timeout_ms), 3000, 3600 * 1000,
	    "a duration like 30s or 2m, 3s..1h, 0 for never" },

	{ "log", "level", CONFIG_LOG_LEVEL, 0, 0, 0,
	    "debug, info, warn or error" },
};
#define CONFIG_NKEYS	(sizeof(config_keys) / sizeof(config_keys[0]))

/* State of one config_load(), shared by the reader and the handler. */
struct config_load {
	struct config	*c;
	const char	*path;
	FILE		*f;
	char		*line;		/* getline() buffer */
	size_t		 linecap;
	char		*value;		/* the value of the line just read */
	size_t		 valuecap;
	bool		 has_value;	/* ... when it was a key line */
	bool		 comment_cut;	/* ... and lost an inline comment */
	int		 lineno;	/* lines handed to inih so far */
	int		 err_line;	/* line of our first error, 0: none */
	char		 msg[CONFIG_ERR_MAX];	/* and its message */
};

/* Format an error into err (if there is room) and return -1. */
static int __attribute__((format(printf, 3, 4)))
config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->tun_name, sizeof(c->tun_name), "sluice0");
	c->mtu = 1500;
	c->ipv4_prefix = 32;
	c->ipv6_prefix = 128;
	c->tun_fd = -1;
	c->connect_timeout_ms = 10 * 1000;
	c->verify = true;
	c->offload = true;
	c->max_flows = 4096;
	c->idle_timeout_ms = 5 * 60 * 1000;
	c->flow_buffer = 256 * 1024;
	c->max_memory = 512 * 1024 * 1024;
	c->icmp = CONFIG_ICMP_DROP;
	c->udp = true;
	c->udp_timeout_ms = 60 * 1000;
	c->udp_filtering = CONFIG_UDP_ENDPOINT_INDEPENDENT;
	c->udp_max_flows = 1024;
	c->worker_timeout_ms = 30 * 1000;
	c->dns_mode = CONFIG_DNS_TCP;
	c->dns_ports[0] = 53;
	c->dns_nports = 1;
	c->dns_timeout_ms = 5 * 1000;
	inet_pton(AF_INET, "198.18.0.0", &c->fake_ipv4.addr.v4);
	c->fake_ipv4.prefix = 15;
	inet_pton(AF_INET6, "fd00:5:1ce::", &c->fake_ipv6.addr.v6);
	c->fake_ipv6.prefix = 64;
	c->fake_ip_max = 65536;
	snprintf(c->dns_exclude, sizeof(c->dns_exclude),
	    "local localhost lan home.arpa internal");
	c->route_table = ROUTE_TABLE_DEFAULT;
	c->route_priority = ROUTE_PRIORITY_DEFAULT;
	c->log_level = LOG_LEVEL_INFO;
}

/* Parse a decimal integer, optionally negative, into min..max. */
static bool
config_parse_int(const char *s, long long min, long long max, long long *out)
{
	unsigned long long	v = 0, limit;
	bool			neg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s == '\0')
		return false;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (limit - (unsigned long long)(*s - '0')) / 10)
			return false;
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	if (neg)
		*out = v == 0 ? 0 : -(long long)(v - 1) - 1;
	else
		*out = (long long)v;
	return *out >= min && *out <= max;
}

/*
 * Read the leading decimal digits of *sp into *v, advancing *sp; false if
 * there are none or the number exceeds limit.
 */
static bool
config_parse_digits(const char **sp, unsigned long long limit,
    unsigned long long *v)
{
	const char	*s = *sp;

	*v = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (*v > (limit - (unsigned long long)(*s - '0')) / 10)
			return false;
		*v = *v * 10 + (unsigned long long)(*s - '0');
	}
	*sp = s;
	return true;
}

bool
config_parse_duration(const char *s, unsigned *ms)
{
	unsigned long long	v, mult;

	if (s == NULL || !config_parse_digits(&s, UINT_MAX, &v))
		return false;
	if (*s == '\0' || strcasecmp(s, "s") == 0)
		mult = 1000;
	else if (strcasecmp(s, "ms") == 0)
		mult = 1;
	else if (strcasecmp(s, "m") == 0)
		mult = 60 * 1000;
	else if (strcasecmp(s, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return false;
	if (v > UINT_MAX / mult)
		return false;
	*ms = (unsigned)(v * mult);
	return true;
}

bool
config_parse_size(const char *s, size_t *bytes)
{
	unsigned long long	v, mult;

	if (s == NULL || !config_parse_digits(&s, SIZE_MAX, &v))
		return false;
	if (*s == '\0')
		mult = 1;
	else if (strcasecmp(s, "k") == 0)
		mult = 1024;
	else if (strcasecmp(s, "m") == 0)
		mult = 1024 * 1024;
	else if (strcasecmp(s, "g") == 0)
		mult = 1024 * 1024 * 1024;
	else
		return false;
	if (v > SIZE_MAX / mult)
		return false;
	*bytes = (size_t)(v * mult);
	return true;
}

bool
config_parse_prefix(const char *s, int family, void *addr, int *prefix)
{
	unsigned char		 tmp[sizeof(struct in6_addr)];
	char			 buf[INET6_ADDRSTRLEN];
	const char		*slash, *p;
	unsigned long long	 v;
	size_t			 n;
	int			 max;

	if (s == NULL)
		return false;
	if (family == AF_INET)
		max = 32;
	else if (family == AF_INET6)
		max = 128;
	else
		return false;

	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(family, buf, tmp) != 1)
		return false;

	v = (unsigned long long)max;
	if (slash != NULL) {
		p = slash + 1;
		if (!config_parse_digits(&p, 1000, &v) || *p != '\0' ||
		    v > (unsigned long long)max)
			return false;
	}
	memcpy(addr, tmp, family == AF_INET ? sizeof(struct in_addr) :
	    sizeof(struct in6_addr));
	*prefix = (int)v;
	return true;
}

/* Value of one hex digit, or -1. */
static int
config_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A 32-bit mark: decimal, or 0x and 1..8 hex digits. */
static bool
config_parse_mark(const char *s, long long *out)
{
	unsigned long long	v = 0;
	int			d, n = 0;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return config_parse_int(s, 0, UINT32_MAX, out);
	for (s += 2; *s != '\0'; s++, n++) {
		if ((d = config_hex_value(*s)) < 0 || n == 8)
			return false;
		v = v << 4 | (unsigned long long)d;
	}
	if (n == 0)
		return false;
	*out = (long long)v;
	return true;
}

/* 64 hex digits, optionally with a ':' between byte pairs. */
static bool
config_parse_pin_hex(const char *s, unsigned char out[32])
{
	int	i, hi, lo;

	for (i = 0; i < 32; i++) {
		if (i > 0 && *s == ':')
			s++;
		if ((hi = config_hex_value(s[0])) < 0 ||
		    (lo = config_hex_value(s[1])) < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return *s == '\0';
}

/* Standard base64 of 32 bytes: 43 characters, then an optional '='. */
static bool
config_parse_pin_base64(const char *s, unsigned char out[32])
{
	unsigned char	buf[48], dec[48];
	size_t		n, i, olen;
	char		c;

	n = strlen(s);
	if (n == 44 && s[43] == '=')
		n = 43;
	if (n != 43)
		return false;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
		buf[i] = (unsigned char)c;
	}
	buf[n++] = '=';
	if (mbedtls_base64_decode(dec, sizeof(dec), &olen, buf, n) != 0 ||
	    olen != 32)
		return false;
	memcpy(out, dec, 32);
	return true;
}

bool
config_parse_pin(const char *s, unsigned char out[32])
{
	unsigned char	tmp[32];

	if (s == NULL)
		return false;
	if (!config_parse_pin_hex(s, tmp) && !config_parse_pin_base64(s, tmp))
		return false;
	memcpy(out, tmp, sizeof(tmp));
	return true;
}

/* Ports separated by commas or blanks: 1..CONFIG_PORTS_MAX of 1..65535. */
static bool
config_parse_ports(const char *s, uint16_t *ports, unsigned *n)
{
	char buf[128], *tok, *save = NULL;
	uint16_t tmp[CONFIG_PORTS_MAX];
	unsigned cnt = 0;
	long long v;

	if (strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ", \t", &save); tok != NULL;
	    tok = strtok_r(NULL, ", \t", &save)) {
		if (cnt == CONFIG_PORTS_MAX ||
		    !config_parse_int(tok, 1, 65535, &v))
			return false;
		tmp[cnt++] = (uint16_t)v;
	}
	if (cnt == 0)
		return false;
	memcpy(ports, tmp, cnt * sizeof(*ports));
	*n = cnt;
	return true;
}

/*
 * ADDR or ADDR:PORT (IPv4), ADDR or [ADDR]:PORT (IPv6), into *ss with
 * defport when none is given; "" unsets (AF_UNSPEC).
 */
static bool
config_parse_sockaddr(const char *s, uint16_t defport,
    struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *port = NULL, *end;
	long long v = defport;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (*s == '\0')
		return true;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return false;
		n = (size_t)(end - s - 1);
		port = end + 2;
		s++;
	} else if ((end = strchr(s, ':')) != NULL && strchr(end + 1, ':') ==
	    NULL) {
		n = (size_t)(end - s);
		port = end + 1;
	} else
		n = strlen(s);
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	if (port != NULL && !config_parse_int(port, 1, 65535, &v))
		return false;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)v);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)v);
		return true;
	}
	memset(ss, 0, sizeof(*ss));
	return false;
}

/*
 * Domain suffixes separated by commas or blanks, stored lower-case and
 * blank-separated in out (cap bytes), leading dots dropped.
 */
static bool
config_parse_suffixes(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	char c;

	while (*s != '\0') {
		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		while (*s == '.')
			s++;
		if (*s == '\0')
			break;
		if (o > 0) {
			if (o + 1 >= cap)
				return false;
			out[o++] = ' ';
		}
		for (; *s != '\0' && *s != ',' && *s != ' ' && *s != '\t';
		    s++) {
			c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_' || c == '.') || o + 1 >= cap)
				return false;
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return true;
}

/* yes/no in its usual spellings; "none" is no (verify = none). */
static bool
config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on" };
	static const char *const no[] = { "no", "false", "off", "none" };
	size_t	i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* A name the kernel accepts for a network interface. */
static bool
config_valid_ifname(const char *s)
{
	size_t	n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ)
		return false;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	return strcspn(s, "/: \t\n\r\f\v") == n;
}

/* Find the key, or explain why there is none. */
static const struct config_key *
config_find_key(const char *section, const char *key, char *err,
    size_t errlen)
{
	bool	known_section = false;
	size_t	i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) != 0)
			continue;
		known_section = true;
		if (strcmp(config_keys[i].name, key) == 0)
			return &config_keys[i];
	}
	if (*section == '\0')
		config_error(err, errlen, "key `%s' outside any section", key);
	else if (!known_section)
		config_error(err, errlen, "unknown section [%s]", section);
	else
		config_error(err, errlen, "unknown key `%s' in section [%s]",
		    key, section);
	return NULL;
}

/* True if [name] is a section we know. */
static bool
config_known_section(const char *name)
{
	size_t	i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, name) == 0)
			return true;
	}
	return false;
}

/* The url key: parse into a scratch copy so a bad URL changes nothing. */
static int
config_set_url(struct config *c, const char *value, char *err,
    size_t errlen)
{
	struct url	u;
	char		why[CONFIG_ERR_MAX];
	int		rc = 0;

	if (url_parse(value, &u, why, sizeof(why))) {
		c->upstream = u;
		c->has_upstream = true;
	} else
		rc = config_error(err, errlen, "bad value for url: %s", why);
	mbedtls_platform_zeroize(&u, sizeof(u));
	return rc;
}

int
config_set(struct config *c, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	const struct config_key	*k;
	char			*field;
	long long		 ll;
	unsigned		 ms;
	size_t			 sz;
	bool			 b;
	enum log_level		 level;
	const char *const	*words;
	size_t			 i;

	if (section == NULL)
		section = "";
	if (value == NULL)
		value = "";
	if ((k = config_find_key(section, key, err, errlen)) == NULL)
		return -1;
	field = (char *)c + k->off;

	switch (k->type) {
	case CONFIG_IFNAME:
		if (!(k->min == 1 && *value == '\0') &&
		    !config_valid_ifname(value))
			goto bad;
		snprintf(field, IFNAMSIZ, "%s", value);
		break;
	case CONFIG_MARK:
		if (!config_parse_mark(value, &ll))
			goto bad;
		*(uint32_t *)(void *)field = (uint32_t)ll;
		break;
	case CONFIG_INT:
		if (!config_parse_int(value, k->min, k->max, &ll))
			goto bad;
		*(int *)(void *)field = (int)ll;
		break;
	case CONFIG_UINT:
		/* [process] workers = auto (0: the number of CPUs) */
		if (k->off == OFF(workers) && strcmp(value, "auto") == 0) {
			c->workers = 0;
			break;
		}
		if (!config_parse_int(value, k->off == OFF(workers) ? 1 :
		    k->min, k->max, &ll))
			goto bad;
		*(unsigned *)(void *)field = (unsigned)ll;
		break;
	case CONFIG_PREFIX4:
		if (!config_parse_prefix(value, AF_INET, &c->ipv4,
		    &c->ipv4_prefix))
			goto bad;
		c->has_ipv4 = true;
		break;
	case CONFIG_PREFIX6:
		if (!config_parse_prefix(value, AF_INET6, &c->ipv6,
		    &c->ipv6_prefix))
			goto bad;
		c->has_ipv6 = true;
		break;
	case CONFIG_URL:
		return config_set_url(c, value, err, errlen);
	case CONFIG_DURATION:
		if (!config_parse_duration(value, &ms) ||
		    ((ms < (unsigned long long)k->min &&
		    !(ms == 0 && k->off == OFF(worker_timeout_ms))) ||
		    ms > (unsigned long long)k->max))
			goto bad;
		*(unsigned *)(void *)field = ms;
		break;
	case CONFIG_SIZE:
		if (!config_parse_size(value, &sz) ||
		    sz < (unsigned long long)k->min ||
		    sz > (unsigned long long)k->max)
			goto bad;
		*(size_t *)(void *)field = sz;
		break;
	case CONFIG_PATH:
		if (strlen(value) >= (size_t)k->max)
			return config_error(err, errlen, "bad value `%.64s...' "
			    "for %s: longer than %lld bytes", value, key,
			    k->max - 1);
		snprintf(field, (size_t)k->max, "%s", value);
		break;
	case CONFIG_BOOL:
		if (!config_parse_bool(value, &b))
			goto bad;
		*(bool *)(void *)field = b;
		break;
	case CONFIG_PIN:
		if (*value == '\0') {
			c->has_pin = false;
			memset(c->pin_sha256, 0, sizeof(c->pin_sha256));
			break;
		}
		if (!config_parse_pin(value, c->pin_sha256))
			goto bad;
		c->has_pin = true;
		break;
	case CONFIG_LOG_LEVEL:
		if (!log_level_parse(value, &level))
			goto bad;
		c->log_level = level;
		break;
	case CONFIG_CIDR4:
	case CONFIG_CIDR6: {
		struct config_cidr *cidr = (struct config_cidr *)(void *)field;

		if (!config_parse_prefix(value, k->type == CONFIG_CIDR4 ?
		    AF_INET : AF_INET6, &cidr->addr, &cidr->prefix) ||
		    (k->type == CONFIG_CIDR4 && (cidr->prefix < 8 ||
		    cidr->prefix > 30 || strchr(value, '/') == NULL)) ||
		    (k->type == CONFIG_CIDR6 && (cidr->prefix < 64 ||
		    cidr->prefix > 120 || strchr(value, '/') == NULL)))
			goto bad;
		break;
	}
	case CONFIG_PORTS:
		if (!config_parse_ports(value, c->dns_ports, &c->dns_nports))
			goto bad;
		break;
	case CONFIG_SOCKADDR:
		if (!config_parse_sockaddr(value, 53,
		    (struct sockaddr_storage *)(void *)field))
			goto bad;
		break;
	case CONFIG_LISTEN: {
		struct sockaddr_storage *ss =
		    (struct sockaddr_storage *)(void *)field;
		char buf[80];

		/* a bare port listens on loopback */
		if (*value != '\0' && strspn(value, "0123456789") ==
		    strlen(value)) {
			snprintf(buf, sizeof(buf), "127.0.0.1:%s", value);
			value = buf;
		}
		if (!config_parse_sockaddr(value, 0, ss))
			goto bad;
		if (ss->ss_family != AF_UNSPEC && (ss->ss_family == AF_INET ?
		    ((struct sockaddr_in *)ss)->sin_port :
		    ((struct sockaddr_in6 *)ss)->sin6_port) == 0) {
			memset(ss, 0, sizeof(*ss));
			goto bad;
		}
		break;
	}
	case CONFIG_SUFFIXES:
		if (!config_parse_suffixes(value, field, (size_t)k->max))
			goto bad;
		break;
	case CONFIG_CIDRS: {
		bool inc = strcmp(k->name, "include") == 0;
		char why[CONFIG_ERR_MAX - 64];

		if (!route_parse_cidrs(value, inc ? c->route_include :
		    c->route_exclude, CONFIG_ROUTE_CIDRS_MAX, inc ?
		    &c->route_ninclude : &c->route_nexclude, why, sizeof(why)))
			return config_error(err, errlen, "bad value for %s: %s",
			    key, why);
		break;
	}
	case CONFIG_ENUM:
		words = config_enum_words(k->name);
		for (i = 0; words[i] != NULL; i++)
			if (strcasecmp(value, words[i]) == 0)
				break;
		if (words[i] == NULL)
			goto bad;
		*(int *)(void *)field = (int)i;
		break;
	}
	return 0;

bad:
	return config_error(err, errlen, "bad value `%s' for %s: expected %s",
	    value, key, k->expect);
}

/* inih's handler: set one key, remember the first error. */
#if INI_HANDLER_LINENO
static int
config_ini_value_cb(void *arg, const char *section, const char *name,
    const char *value, int lineno)
#else
static int
config_ini_value_cb(void *arg, const char *section, const char *name,
    const char *value)
#endif
{
	struct config_load	*cl = arg;
	size_t			 n;

#if INI_HANDLER_LINENO
	(void)lineno;		/* ours counts every line the same way */
#endif
	if (cl->err_line != 0)
		return 1;
	if (!cl->has_value || *value != '\0') {
		/* Never: the reader handed over "name=" for this line. */
		snprintf(cl->msg, sizeof(cl->msg), "internal error: no value");
		cl->err_line = cl->lineno;
		return 0;
	}
	cl->has_value = false;
	if (config_set(cl->c, section, name, cl->value, cl->msg,
	    sizeof(cl->msg)) == 0)
		return 1;
	n = strlen(cl->msg);
	if (cl->comment_cut && strcmp(name, "url") == 0 &&
	    strcmp(section, "upstream") == 0)
		snprintf(cl->msg + n, sizeof(cl->msg) - n, " (the url ended "
		    "at ` ;', which starts a comment: write a `;' in a "
		    "password as %%3B)");
	cl->err_line = cl->lineno;
	return 0;
}

/* Record an error for the current line; the reader then stops. */
static void __attribute__((format(printf, 2, 3)))
config_load_error(struct config_load *cl, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(cl->msg, sizeof(cl->msg), fmt, ap);
	va_end(ap);
	cl->err_line = cl->lineno;
}

/* Read line n (1-based) of cl->f again, trimmed, into buf; false if gone. */
static bool
config_load_reread(struct config_load *cl, int n, char *buf, size_t len)
{
	char	*s;
	size_t	 n2;
	int	 i;

	rewind(cl->f);
	for (i = 0; i < n; i++) {
		if (getline(&cl->line, &cl->linecap, cl->f) < 0)
			return false;
	}
	s = cl->line + strspn(cl->line, " \t");
	n2 = strlen(s);
	while (n2 > 0 && strchr(" \t\r\n", s[n2 - 1]) != NULL)
		s[--n2] = '\0';
	snprintf(buf, len, "%s", s);
	return true;
}

/*
 * Keep the value that starts at v (the text after the key's `=' or `:')
 * in cl->value, cut as inih cuts values: blanks around it go, and so does
 * an inline comment, a ';' after a blank.  -1 (error set) if out of memory.
 */
static int
config_load_value(struct config_load *cl, const char *v)
{
	const char	*end;
	bool		 was_space = false;
	size_t		 n;
	char		*p;

	while (isspace((unsigned char)*v))
		v++;
	for (end = v; *end != '\0'; end++) {
		if (was_space && *end == ';')
			break;
		was_space = isspace((unsigned char)*end);
	}
	cl->comment_cut = *end == ';';
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	n = (size_t)(end - v);
	if (n + 1 > cl->valuecap) {
		if ((p = malloc(n + 1)) == NULL) {
			config_load_error(cl, "out of memory");
			return -1;
		}
		if (cl->value != NULL) {
			mbedtls_platform_zeroize(cl->value, cl->valuecap);
			free(cl->value);
		}
		cl->value = p;
		cl->valuecap = n + 1;
	}
	memcpy(cl->value, v, n);
	cl->value[n] = '\0';
	cl->has_value = true;
	return 0;
}

/*
 * inih's reader (fgets-like): hand over one line, without its leading
 * blanks, or NULL to stop at EOF or after an error.  A key line goes over
 * as "name=" (or "name:") alone, its value kept in cl->value for the
 * handler; a comment line goes over as an empty line.
 */
static char *
config_ini_read_cb(char *str, int num, void *arg)
{
	struct config_load	*cl = arg;
	ssize_t			 n;
	size_t			 len;
	char			*s, *sep, *end;
	bool			 was_space = false;

	if (cl->err_line != 0)
		return NULL;
	cl->has_value = false;
	if ((n = getline(&cl->line, &cl->linecap, cl->f)) < 0)
		return NULL;
	cl->lineno++;
	if (memchr(cl->line, '\0', (size_t)n) != NULL) {
		config_load_error(cl, "NUL byte in line");
		return NULL;
	}
	if (n > CONFIG_LINE_MAX) {
		config_load_error(cl, "line longer than %d bytes",
		    CONFIG_LINE_MAX);
		return NULL;
	}
	s = cl->line;
	if (cl->lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;		/* a UTF-8 byte order mark */
	s += strspn(s, " \t");
	len = strlen(s);
	if (num < 8) {
		config_load_error(cl, "inih line buffer too small");
		return NULL;
	}

	if (*s == '[') {
		/* Catch an unknown section even when no key follows it. */
		if ((end = strchr(s, ']')) != NULL) {
			*end = '\0';
			if (!config_known_section(s + 1)) {
				config_load_error(cl, "unknown section [%.64s%s]",
				    s + 1, strlen(s + 1) > 64 ? "..." : "");
				return NULL;
			}
			*end = ']';
		}
		if (len >= (size_t)num) {
			config_load_error(cl, "section line longer than %d "
			    "characters", num - 2);
			return NULL;
		}
		memcpy(str, s, len + 1);
		return str;
	}
	if (*s == ';' || *s == '#' || strspn(s, " \t\r\n") == len) {
		snprintf(str, (size_t)num, "\n");
		return str;
	}

	/* name, then `=' or `:', unless an inline comment comes first */
	for (sep = s; *sep != '\0' && *sep != '=' && *sep != ':'; sep++) {
		if (was_space && *sep == ';')
			break;
		was_space = isspace((unsigned char)*sep);
	}
	if (*sep != '=' && *sep != ':') {
		/* inih reports it; the message quotes the line from the file */
		snprintf(str, (size_t)num, "?\n");
		return str;
	}
	len = (size_t)(sep - s) + 1;
	if (len + 2 > (size_t)num) {
		config_load_error(cl, "key name longer than %d characters",
		    num - 4);
		return NULL;
	}
	if (config_load_value(cl, sep + 1) == -1)
		return NULL;
	memcpy(str, s, len);
	memcpy(str + len, "\n", 2);
	return str;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config_load	 cl;
	char			 text[256];
	int			 rc, ret = -1;

	memset(&cl, 0, sizeof(cl));
	cl.c = c;
	cl.path = path;
	if ((cl.f = fopen(path, "r")) == NULL)
		return config_error(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));

	rc = ini_parse_stream(config_ini_read_cb, &cl, config_ini_value_cb,
	    &cl);
	if (rc == -2) {
		config_error(err, errlen, "%s: out of memory", path);
		goto out;
	}
	if (ferror(cl.f)) {
		config_error(err, errlen, "%s: read error: %s", path,
		    strerror(errno));
		goto out;
	}
	if (rc > 0 && (cl.err_line == 0 || rc < cl.err_line)) {
		/* A syntax error inih found itself, before any of ours. */
		if (!config_load_reread(&cl, rc, text, sizeof(text)))
			config_error(err, errlen, "%s:%d: syntax error", path,
			    rc);
		else if (text[0] == '[')
			config_error(err, errlen, "%s:%d: bad section header "
			    "`%s': expected [name]", path, rc, text);
		else
			config_error(err, errlen, "%s:%d: expected key = "
			    "value, not `%s'", path, rc, text);
		goto out;
	}
	if (cl.err_line != 0) {
		config_error(err, errlen, "%s:%d: %s", path, cl.err_line,
		    cl.msg);
		goto out;
	}
	ret = 0;

out:
	if (cl.line != NULL) {
		mbedtls_platform_zeroize(cl.line, cl.linecap);
		free(cl.line);
	}
	if (cl.value != NULL) {
		mbedtls_platform_zeroize(cl.value, cl.valuecap);
		free(cl.value);
	}
	fclose(cl.f);
	return ret;
}

/* Read the first line of path into pass; -1 with err on failure. */
static int
config_read_password(const char *path, char *pass, size_t len, char *err,
    size_t errlen)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 rc = -1;

	if ((f = fopen(path, "re")) == NULL)
		return config_error(err, errlen, "password_file %s: cannot "
		    "open: %s", path, strerror(errno));
	errno = 0;
	n = getline(&line, &cap, f);
	if (n < 0 && ferror(f))
		config_error(err, errlen, "password_file %s: read error: %s",
		    path, strerror(errno));
	else if (n < 0)
		config_error(err, errlen, "password_file %s: empty file",
		    path);
	else {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (n == 0)
			config_error(err, errlen, "password_file %s: empty "
			    "first line", path);
		else if (memchr(line, '\0', (size_t)n) != NULL)
			config_error(err, errlen, "password_file %s: NUL byte "
			    "in the password", path);
		else if ((size_t)n > URL_CRED_MAX || (size_t)n >= len)
			config_error(err, errlen, "password_file %s: password "
			    "longer than %d bytes", path, URL_CRED_MAX);
		else {
			memcpy(pass, line, (size_t)n + 1);
			rc = 0;
		}
	}
	if (line != NULL) {
		mbedtls_platform_zeroize(line, cap);
		free(line);
	}
	fclose(f);
	return rc;
}

int
config_password(const struct config *c, char *pass, size_t len, char *err,
    size_t errlen)
{
	const char	*env, *from;
	size_t		 i;

	if (len == 0)
		return config_error(err, errlen, "no room for the password");
	pass[0] = '\0';
	if (c->password_file[0] != '\0') {
		from = "password_file";
		if (config_read_password(c->password_file, pass, len, err,
		    errlen) == -1)
			return -1;
	} else if ((env = getenv("SLUICE_PASSWORD")) != NULL &&
	    *env != '\0') {
		from = "SLUICE_PASSWORD";
		if (strlen(env) > URL_CRED_MAX || strlen(env) >= len)
			return config_error(err, errlen, "SLUICE_PASSWORD: "
			    "password longer than %d bytes", URL_CRED_MAX);
		memcpy(pass, env, strlen(env) + 1);
	} else
		return 0;

	if (!c->has_upstream || !c->upstream.has_auth) {
		mbedtls_platform_zeroize(pass, len);
		return config_error(err, errlen, "%s gives a password, but "
		    "the url has no user name: write scheme://user@host",
		    from);
	}
	if (c->upstream.scheme == URL_HTTP || c->upstream.scheme == URL_HTTPS) {
		for (i = 0; pass[i] != '\0'; i++) {
			if ((unsigned char)pass[i] < 0x20 || pass[i] == 0x7f) {
				mbedtls_platform_zeroize(pass, len);
				return config_error(err, errlen, "%s: control "
				    "character in the password: HTTP Basic "
				    "cannot carry it", from);
			}
		}
	}
	return 1;
}

int
config_validate(const struct config *c, char *err, size_t errlen)
{
	char	pass[URL_CRED_MAX + 1];
	int	rc;

	if (!c->has_upstream)
		return config_error(err, errlen,
		    "no upstream: set [upstream] url or --upstream");
	if (c->kill_switch && !c->route_auto)
		return config_error(err, errlen,
		    "kill_switch needs [route] auto = yes");
	if (c->route_table >= 252 && c->route_table <= 255)
		return config_error(err, errlen, "[route] table %u is one of "
		    "the kernel's (252..255)", c->route_table);
	if ((c->client_cert[0] == '\0') != (c->client_key[0] == '\0'))
		return config_error(err, errlen,
		    "client_cert and client_key must be set together");
	rc = config_password(c, pass, sizeof(pass), err, errlen);
	mbedtls_platform_zeroize(pass, sizeof(pass));
	if (rc == -1)
		return -1;
	if (rc == 0 && c->upstream.has_auth && c->upstream.pass[0] == '\0' &&
	    (c->upstream.scheme == URL_SOCKS5 ||
	    c->upstream.scheme == URL_SOCKS5_TLS))
		return config_error(err, errlen, "empty password: socks5 needs "
		    "both user and password (in the url, password_file or "
		    "SLUICE_PASSWORD)");
	return 0;
}
