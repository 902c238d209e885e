/*
 * test_config.c - unit tests for the configuration: defaults, every key with
 * good and bad values, the file loader's FILE:LINE errors, the value
 * parsers' edge cases, cross-key validation and conf/sluice.conf itself.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

#define EXAMPLE_CONF	"conf/sluice.conf"

/* SHA-256 of the empty string, in the encodings a pin accepts. */
static const unsigned char pin_bytes[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
	0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
	0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};
#define PIN_HEX	\
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define PIN_HEX_COLONS	\
	"E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:" \
	"27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
#define NAME_EXPECT	"an interface name of 1..15 characters without `/', " \
			"`:' or blanks"
#define PIN_B64		"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define PIN_B64_NOPAD	"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"

/* Write text to a new file under /tmp; its name goes into path. */
static void
temp_write(char *path, size_t len, const char *text)
{
	size_t	n = strlen(text);
	int	fd;

	snprintf(path, len, "/tmp/sluice-test-config-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd != -1);
	if (fd == -1)
		return;
	CHECK(write(fd, text, n) == (ssize_t)n);
	close(fd);
}

/* Load text as a file into c (after defaults); returns config_load's. */
static int
load_text(struct config *c, const char *text, char *path, size_t pathlen,
    char *err, size_t errlen)
{
	int	rc;

	config_defaults(c);
	temp_write(path, pathlen, text);
	err[0] = '\0';
	rc = config_load(c, path, err, errlen);
	unlink(path);
	return rc;
}

/* Loading text must fail with "TMPFILE:line: want". */
static void
check_load_err(const char *text, int line, const char *want)
{
	struct config	c;
	char		path[64], err[CONFIG_ERR_MAX], exp[CONFIG_ERR_MAX];

	CHECK(load_text(&c, text, path, sizeof(path), err, sizeof(err)) == -1);
	snprintf(exp, sizeof(exp), "%s:%d: %s", path, line, want);
	CHECK_STR(err, exp);
}

/* Loading text must succeed; the result is left in *c. */
static void
check_load_ok(struct config *c, const char *text)
{
	char	path[64], err[CONFIG_ERR_MAX];
	int	rc;

	rc = load_text(c, text, path, sizeof(path), err, sizeof(err));
	CHECK(rc == 0);
	if (rc != 0)
		printf("  unexpected error: %s\n", err);
}

/* config_set must accept value; *c starts from defaults. */
static void
check_set_ok(struct config *c, const char *section, const char *key,
    const char *value)
{
	char	err[CONFIG_ERR_MAX] = "";
	int	rc;

	config_defaults(c);
	rc = config_set(c, section, key, value, err, sizeof(err));
	CHECK(rc == 0);
	if (rc != 0)
		printf("  [%s] %s = %s: %s\n", section, key, value, err);
}

/* config_set must refuse value with exactly want, and change nothing. */
static void
check_set_err(const char *section, const char *key, const char *value,
    const char *want)
{
	struct config	c, before;
	char		err[CONFIG_ERR_MAX] = "";

	config_defaults(&c);
	before = c;
	CHECK(config_set(&c, section, key, value, err, sizeof(err)) == -1);
	CHECK_STR(err, want);
	CHECK(memcmp(&c, &before, sizeof(c)) == 0);
}

static void
test_defaults(void)
{
	struct config	c;

	memset(&c, 0xa5, sizeof(c));
	config_defaults(&c);
	CHECK_STR(c.tun_name, "sluice0");
	CHECK(c.mtu == 1500);
	CHECK(!c.has_ipv4 && !c.has_ipv6);
	CHECK(c.tun_fd == -1);
	CHECK(!c.has_upstream);
	CHECK(c.connect_timeout_ms == 10000);
	CHECK_STR(c.ca_file, "");
	CHECK_STR(c.server_name, "");
	CHECK(c.verify);
	CHECK_STR(c.client_cert, "");
	CHECK_STR(c.client_key, "");
	CHECK(!c.has_pin);
	CHECK(c.max_flows == 4096);
	CHECK(c.idle_timeout_ms == 5 * 60 * 1000);
	CHECK(c.flow_buffer == 256 * 1024);
	CHECK(c.log_level == LOG_LEVEL_INFO);
}

static void
test_tun_keys(void)
{
	struct config	c;
	struct in_addr	a4;
	struct in6_addr	a6;

	check_set_ok(&c, "tun", "name", "tun7");
	CHECK_STR(c.tun_name, "tun7");
	check_set_ok(&c, "tun", "name", "abcdefghijklmno");
	CHECK_STR(c.tun_name, "abcdefghijklmno");
	check_set_ok(&c, "tun", "name", "tun%d");
	check_set_err("tun", "name", "abcdefghijklmnop", "bad value "
	    "`abcdefghijklmnop' for name: expected " NAME_EXPECT);
	check_set_err("tun", "name", "",
	    "bad value `' for name: expected " NAME_EXPECT);
	check_set_err("tun", "name", "a/b",
	    "bad value `a/b' for name: expected " NAME_EXPECT);
	check_set_err("tun", "name", "a:b",
	    "bad value `a:b' for name: expected " NAME_EXPECT);
	check_set_err("tun", "name", "a b",
	    "bad value `a b' for name: expected " NAME_EXPECT);
	check_set_err("tun", "name", "..",
	    "bad value `..' for name: expected " NAME_EXPECT);

	check_set_ok(&c, "tun", "mtu", "576");
	CHECK(c.mtu == 576);
	check_set_ok(&c, "tun", "mtu", "65535");
	CHECK(c.mtu == 65535);
	check_set_ok(&c, "tun", "mtu", "09000");
	CHECK(c.mtu == 9000);
	check_set_err("tun", "mtu", "12x",
	    "bad value `12x' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "575",
	    "bad value `575' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "65536",
	    "bad value `65536' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "",
	    "bad value `' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "-1500",
	    "bad value `-1500' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "+1500",
	    "bad value `+1500' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", " 1500",
	    "bad value ` 1500' for mtu: expected an integer 576..65535");
	check_set_err("tun", "mtu", "99999999999999999999999",
	    "bad value `99999999999999999999999' for mtu: expected an integer "
	    "576..65535");

	check_set_ok(&c, "tun", "ipv4", "198.18.0.1/15");
	inet_pton(AF_INET, "198.18.0.1", &a4);
	CHECK(c.has_ipv4 && c.ipv4.s_addr == a4.s_addr && c.ipv4_prefix == 15);
	check_set_ok(&c, "tun", "ipv4", "10.0.0.1");
	CHECK(c.has_ipv4 && c.ipv4_prefix == 32);
	check_set_err("tun", "ipv4", "10.0.0.1/33", "bad value `10.0.0.1/33' "
	    "for ipv4: expected an IPv4 address with an optional /0..32");
	check_set_err("tun", "ipv4", "fd00::1", "bad value `fd00::1' "
	    "for ipv4: expected an IPv4 address with an optional /0..32");
	check_set_err("tun", "ipv4", "", "bad value `' "
	    "for ipv4: expected an IPv4 address with an optional /0..32");

	check_set_ok(&c, "tun", "ipv6", "fd00:5c::1/64");
	inet_pton(AF_INET6, "fd00:5c::1", &a6);
	CHECK(c.has_ipv6 && memcmp(&c.ipv6, &a6, 16) == 0 &&
	    c.ipv6_prefix == 64);
	check_set_ok(&c, "tun", "ipv6", "::1");
	CHECK(c.has_ipv6 && c.ipv6_prefix == 128);
	check_set_err("tun", "ipv6", "fd00::1/129", "bad value `fd00::1/129' "
	    "for ipv6: expected an IPv6 address with an optional /0..128");
	check_set_err("tun", "ipv6", "10.0.0.1", "bad value `10.0.0.1' "
	    "for ipv6: expected an IPv6 address with an optional /0..128");

	check_set_ok(&c, "tun", "fd", "3");
	CHECK(c.tun_fd == 3);
	check_set_ok(&c, "tun", "fd", "0");
	CHECK(c.tun_fd == 0);
	check_set_ok(&c, "tun", "fd", "-1");
	CHECK(c.tun_fd == -1);
	check_set_ok(&c, "tun", "fd", "2147483647");
	CHECK(c.tun_fd == INT_MAX);
	check_set_err("tun", "fd", "-2",
	    "bad value `-2' for fd: expected an integer -1..2147483647");
	check_set_err("tun", "fd", "2147483648",
	    "bad value `2147483648' for fd: expected an integer "
	    "-1..2147483647");
	check_set_err("tun", "fd", "three",
	    "bad value `three' for fd: expected an integer -1..2147483647");
	check_set_err("tun", "fd", "-",
	    "bad value `-' for fd: expected an integer -1..2147483647");
	check_set_err("tun", "fd", "",
	    "bad value `' for fd: expected an integer -1..2147483647");
}

static void
test_upstream_keys(void)
{
	struct config	c;
	char		err[CONFIG_ERR_MAX], longv[300];

	check_set_ok(&c, "upstream", "url", "https://u:pw@proxy:8443");
	CHECK(c.has_upstream && c.upstream.scheme == URL_HTTPS);
	CHECK_STR(c.upstream.host, "proxy");
	CHECK(c.upstream.port == 8443 && c.upstream.has_auth);
	CHECK_STR(c.upstream.pass, "pw");
	check_set_err("upstream", "url", "socks5://u:hunter2@h:0",
	    "bad value for url: port `0' out of range 1..65535");
	check_set_err("upstream", "url", "",
	    "bad value for url: empty URL");
	check_set_err("upstream", "url", "ftp://h",
	    "bad value for url: unknown scheme `ftp'");

	/* A bad URL leaves a good earlier one alone. */
	check_set_ok(&c, "upstream", "url", "socks5://a:b@h1");
	CHECK(config_set(&c, "upstream", "url", "socks5://x:y@h2:0", err,
	    sizeof(err)) == -1);
	CHECK(c.has_upstream && strcmp(c.upstream.host, "h1") == 0);
	CHECK_STR(c.upstream.pass, "b");

	check_set_ok(&c, "upstream", "connect_timeout", "250ms");
	CHECK(c.connect_timeout_ms == 250);
	check_set_ok(&c, "upstream", "connect_timeout", "20");
	CHECK(c.connect_timeout_ms == 20000);
	check_set_ok(&c, "upstream", "connect_timeout", "1ms");
	CHECK(c.connect_timeout_ms == 1);
	check_set_err("upstream", "connect_timeout", "0",
	    "bad value `0' for connect_timeout: expected a duration like "
	    "250ms or 10s, at most 20s");
	check_set_err("upstream", "connect_timeout", "10x",
	    "bad value `10x' for connect_timeout: expected a duration like "
	    "250ms or 10s, at most 20s");
	check_set_err("upstream", "connect_timeout", "",
	    "bad value `' for connect_timeout: expected a duration like "
	    "250ms or 10s, at most 20s");

	check_set_ok(&c, "upstream", "ca_file", "/etc/ssl/ca.pem");
	CHECK_STR(c.ca_file, "/etc/ssl/ca.pem");
	CHECK(config_set(&c, "upstream", "ca_file", "", err, sizeof(err)) == 0);
	CHECK_STR(c.ca_file, "");
	memset(longv, 'f', 255);
	longv[255] = '\0';
	check_set_ok(&c, "upstream", "ca_file", longv);
	CHECK_STR(c.ca_file, longv);
	longv[255] = 'f';
	longv[256] = '\0';
	check_set_err("upstream", "ca_file", longv, "bad value `ffffffffffffff"
	    "ffffffffffffffffffffffffffffffffffffffffffffffffff...' for "
	    "ca_file: longer than 255 bytes");

	check_set_ok(&c, "upstream", "server_name", "proxy.example");
	CHECK_STR(c.server_name, "proxy.example");
	check_set_ok(&c, "upstream", "client_cert", "/c.pem");
	CHECK_STR(c.client_cert, "/c.pem");
	check_set_ok(&c, "upstream", "client_key", "/k.pem");
	CHECK_STR(c.client_key, "/k.pem");
	check_set_err("upstream", "client_key", longv, "bad value `ffffffffffff"
	    "ffffffffffffffffffffffffffffffffffffffffffffffffffff...' for "
	    "client_key: longer than 255 bytes");

	check_set_ok(&c, "upstream", "verify", "no");
	CHECK(!c.verify);
	check_set_ok(&c, "upstream", "verify", "none");
	CHECK(!c.verify);
	check_set_ok(&c, "upstream", "verify", "false");
	CHECK(!c.verify);
	check_set_ok(&c, "upstream", "verify", "OFF");
	CHECK(!c.verify);
	config_defaults(&c);
	c.verify = false;
	CHECK(config_set(&c, "upstream", "verify", "yes", err,
	    sizeof(err)) == 0 && c.verify);
	c.verify = false;
	CHECK(config_set(&c, "upstream", "verify", "True", err,
	    sizeof(err)) == 0 && c.verify);
	c.verify = false;
	CHECK(config_set(&c, "upstream", "verify", "on", err,
	    sizeof(err)) == 0 && c.verify);
	check_set_err("upstream", "verify", "maybe",
	    "bad value `maybe' for verify: expected yes, no or none");
	check_set_err("upstream", "verify", "",
	    "bad value `' for verify: expected yes, no or none");

	check_set_ok(&c, "upstream", "pin_sha256", PIN_B64);
	CHECK(c.has_pin && memcmp(c.pin_sha256, pin_bytes, 32) == 0);
	CHECK(config_set(&c, "upstream", "pin_sha256", "", err,
	    sizeof(err)) == 0);
	CHECK(!c.has_pin);
	check_set_err("upstream", "pin_sha256", "abcd", "bad value `abcd' for "
	    "pin_sha256: expected 64 hex digits or the base64 of 32 bytes");
}

static void
test_socket_keys(void)
{
	struct config	c;
	char		err[CONFIG_ERR_MAX];

	config_defaults(&c);
	CHECK(c.fwmark == 0 && c.interface[0] == '\0');
	check_set_ok(&c, "upstream", "fwmark", "100");
	CHECK(c.fwmark == 100);
	check_set_ok(&c, "upstream", "fwmark", "4294967295");
	CHECK(c.fwmark == 0xffffffffu);
	check_set_ok(&c, "upstream", "fwmark", "0x1A");
	CHECK(c.fwmark == 0x1a);
	check_set_ok(&c, "upstream", "fwmark", "0XdeadBEEF");
	CHECK(c.fwmark == 0xdeadbeefu);
	check_set_ok(&c, "upstream", "fwmark", "0");
	CHECK(c.fwmark == 0);
#define MARK_EXPECT "expected an integer 0..4294967295 or 0x and up to 8 " \
		    "hex digits"
	check_set_err("upstream", "fwmark", "4294967296",
	    "bad value `4294967296' for fwmark: " MARK_EXPECT);
	check_set_err("upstream", "fwmark", "-1",
	    "bad value `-1' for fwmark: " MARK_EXPECT);
	check_set_err("upstream", "fwmark", "0x",
	    "bad value `0x' for fwmark: " MARK_EXPECT);
	check_set_err("upstream", "fwmark", "0x123456789",
	    "bad value `0x123456789' for fwmark: " MARK_EXPECT);
	check_set_err("upstream", "fwmark", "0xg",
	    "bad value `0xg' for fwmark: " MARK_EXPECT);
	check_set_err("upstream", "fwmark", "",
	    "bad value `' for fwmark: " MARK_EXPECT);

	check_set_ok(&c, "upstream", "interface", "eth0");
	CHECK_STR(c.interface, "eth0");
	CHECK_STR(c.tun_name, "sluice0");	/* its own field */
	CHECK(config_set(&c, "upstream", "interface", "", err,
	    sizeof(err)) == 0);
	CHECK_STR(c.interface, "");
	check_set_err("upstream", "interface", "a/b", "bad value `a/b' for "
	    "interface: expected " NAME_EXPECT ", or nothing");
	check_set_err("upstream", "interface", "abcdefghijklmnop",
	    "bad value `abcdefghijklmnop' for interface: expected "
	    NAME_EXPECT ", or nothing");
	/* [tun] name still may not be empty */
	check_set_err("tun", "name", "", "bad value `' for name: expected "
	    NAME_EXPECT);

	check_set_ok(&c, "upstream", "password_file", "/etc/sluice/pw");
	CHECK_STR(c.password_file, "/etc/sluice/pw");
}

/* Write text to a temporary password file; its name goes into path. */
static void
pw_file(char *path, size_t len, const char *text)
{
	temp_write(path, len, text);
}

/* The password from password_file and SLUICE_PASSWORD. */
static void
test_password(void)
{
	struct config	c;
	char		err[CONFIG_ERR_MAX], pass[URL_CRED_MAX + 1];
	char		path[64], long_pw[400];

	unsetenv("SLUICE_PASSWORD");
	config_defaults(&c);
	CHECK(config_set(&c, "upstream", "url", "socks5://alice:url-pw@h",
	    err, sizeof(err)) == 0);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 0);
	CHECK_STR(pass, "");

	/* The environment overrides the URL; empty is unset. */
	setenv("SLUICE_PASSWORD", "env-pw", 1);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 1);
	CHECK_STR(pass, "env-pw");
	setenv("SLUICE_PASSWORD", "", 1);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 0);

	/* The file overrides both; only its first line, line end cut. */
	setenv("SLUICE_PASSWORD", "env-pw", 1);
	pw_file(path, sizeof(path), "file pw; with blanks \r\nsecond\n");
	snprintf(c.password_file, sizeof(c.password_file), "%s", path);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 1);
	CHECK_STR(pass, "file pw; with blanks ");
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
	unlink(path);
	pw_file(path, sizeof(path), "no newline");
	snprintf(c.password_file, sizeof(c.password_file), "%s", path);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 1);
	CHECK_STR(pass, "no newline");
	unlink(path);

	/* Bad files: the password is never in the message. */
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK(strstr(err, "cannot open: No such file") != NULL);
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	pw_file(path, sizeof(path), "");
	snprintf(c.password_file, sizeof(c.password_file), "%s", path);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK(strstr(err, ": empty file") != NULL);
	unlink(path);
	pw_file(path, sizeof(path), "\nhunter2\n");
	snprintf(c.password_file, sizeof(c.password_file), "%s", path);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK(strstr(err, ": empty first line") != NULL);
	CHECK(strstr(err, "hunter2") == NULL);
	unlink(path);
	memset(long_pw, 'h', 256);
	long_pw[256] = '\0';
	pw_file(path, sizeof(path), long_pw);
	snprintf(c.password_file, sizeof(c.password_file), "%s", path);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK(strstr(err, ": password longer than 255 bytes") != NULL);
	CHECK(strstr(err, "hhhh") == NULL);
	unlink(path);
	c.password_file[0] = '\0';
	setenv("SLUICE_PASSWORD", long_pw, 1);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK_STR(err, "SLUICE_PASSWORD: password longer than 255 bytes");

	/* A password from elsewhere needs a user in the URL. */
	setenv("SLUICE_PASSWORD", "hunter2", 1);
	CHECK(config_set(&c, "upstream", "url", "socks5://h", err,
	    sizeof(err)) == 0);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK_STR(err, "SLUICE_PASSWORD gives a password, but the url has no "
	    "user name: write scheme://user@host");
	CHECK_STR(pass, "");
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "hunter2") == NULL);

	/* socks5://user@h: fine with a password from elsewhere only. */
	CHECK(config_set(&c, "upstream", "url", "socks5://alice@h", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
	unsetenv("SLUICE_PASSWORD");
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	CHECK_STR(err, "empty password: socks5 needs both user and password "
	    "(in the url, password_file or SLUICE_PASSWORD)");
	CHECK(config_set(&c, "upstream", "url", "http://alice@h", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);

	/* HTTP Basic cannot carry control characters. */
	setenv("SLUICE_PASSWORD", "a\tb", 1);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == -1);
	CHECK_STR(err, "SLUICE_PASSWORD: control character in the password: "
	    "HTTP Basic cannot carry it");
	CHECK(config_set(&c, "upstream", "url", "socks5://alice@h", err,
	    sizeof(err)) == 0);
	CHECK(config_password(&c, pass, sizeof(pass), err, sizeof(err)) == 1);
	unsetenv("SLUICE_PASSWORD");
}

static void
test_limits_log_keys(void)
{
	struct config	c;

	check_set_ok(&c, "limits", "max_flows", "1");
	CHECK(c.max_flows == 1);
	check_set_ok(&c, "limits", "max_flows", "16000");
	CHECK(c.max_flows == 16000);
	check_set_err("limits", "max_flows", "0",
	    "bad value `0' for max_flows: expected an integer 1..16000");
	check_set_err("limits", "max_flows", "1000001",
	    "bad value `1000001' for max_flows: expected an integer "
	    "1..16000");
	check_set_err("limits", "max_flows", "-1",
	    "bad value `-1' for max_flows: expected an integer 1..16000");
	check_set_err("limits", "max_flows", "",
	    "bad value `' for max_flows: expected an integer 1..16000");

	check_set_ok(&c, "limits", "idle_timeout", "0");
	CHECK(c.idle_timeout_ms == 0);
	check_set_ok(&c, "limits", "idle_timeout", "1h");
	CHECK(c.idle_timeout_ms == 3600000);
	check_set_err("limits", "idle_timeout", "-5m",
	    "bad value `-5m' for idle_timeout: expected a duration like "
	    "250ms, 10s, 5m or 1h, 0 for never");
	check_set_err("limits", "idle_timeout", "50d",
	    "bad value `50d' for idle_timeout: expected a duration like "
	    "250ms, 10s, 5m or 1h, 0 for never");
	check_set_err("limits", "idle_timeout", "",
	    "bad value `' for idle_timeout: expected a duration like "
	    "250ms, 10s, 5m or 1h, 0 for never");

	/* [process] worker_timeout: 0 (never) or 3s..1h */
	config_defaults(&c);
	CHECK(c.worker_timeout_ms == 30000);
	check_set_ok(&c, "process", "worker_timeout", "0");
	CHECK(c.worker_timeout_ms == 0);
	check_set_ok(&c, "process", "worker_timeout", "3s");
	CHECK(c.worker_timeout_ms == 3000);
	check_set_ok(&c, "process", "worker_timeout", "1h");
	CHECK(c.worker_timeout_ms == 3600000);
	check_set_err("process", "worker_timeout", "2999ms",
	    "bad value `2999ms' for worker_timeout: expected a duration "
	    "like 30s or 2m, 3s..1h, 0 for never");
	check_set_err("process", "worker_timeout", "61m",
	    "bad value `61m' for worker_timeout: expected a duration "
	    "like 30s or 2m, 3s..1h, 0 for never");

	check_set_ok(&c, "limits", "flow_buffer", "16k");
	CHECK(c.flow_buffer == 16384);
	check_set_ok(&c, "limits", "flow_buffer", "64M");
	CHECK(c.flow_buffer == 64 * 1024 * 1024);
	check_set_ok(&c, "limits", "flow_buffer", "100000");
	CHECK(c.flow_buffer == 100000);
	check_set_err("limits", "flow_buffer", "16383",
	    "bad value `16383' for flow_buffer: expected a size 16k..64m");
	check_set_err("limits", "flow_buffer", "67108865",
	    "bad value `67108865' for flow_buffer: expected a size 16k..64m");
	check_set_err("limits", "flow_buffer", "1g",
	    "bad value `1g' for flow_buffer: expected a size 16k..64m");
	check_set_err("limits", "flow_buffer", "256kb",
	    "bad value `256kb' for flow_buffer: expected a size 16k..64m");
	check_set_err("limits", "flow_buffer", "",
	    "bad value `' for flow_buffer: expected a size 16k..64m");

	check_set_ok(&c, "log", "level", "debug");
	CHECK(c.log_level == LOG_LEVEL_DEBUG);
	check_set_ok(&c, "log", "level", "warn");
	CHECK(c.log_level == LOG_LEVEL_WARN);
	check_set_ok(&c, "log", "level", "error");
	CHECK(c.log_level == LOG_LEVEL_ERROR);
	check_set_ok(&c, "log", "level", "info");
	CHECK(c.log_level == LOG_LEVEL_INFO);
	check_set_err("log", "level", "loud",
	    "bad value `loud' for level: expected debug, info, warn or error");
	check_set_err("log", "level", "",
	    "bad value `' for level: expected debug, info, warn or error");
}

static void
test_unknown(void)
{
	check_set_err("tun", "foo", "1", "unknown key `foo' in section [tun]");
	check_set_err("upstream", "mtu", "1500",
	    "unknown key `mtu' in section [upstream]");
	check_set_err("bar", "mtu", "1500", "unknown section [bar]");
	check_set_err("TUN", "mtu", "1500", "unknown section [TUN]");
	check_set_err("tun", "MTU", "1500",
	    "unknown key `MTU' in section [tun]");
	check_set_err("", "mtu", "1500", "key `mtu' outside any section");
	check_set_err(NULL, "mtu", "1500", "key `mtu' outside any section");
}

static void
test_duration(void)
{
	unsigned	ms = 777;

	CHECK(config_parse_duration("0", &ms) && ms == 0);
	CHECK(config_parse_duration("250ms", &ms) && ms == 250);
	CHECK(config_parse_duration("10s", &ms) && ms == 10000);
	CHECK(config_parse_duration("10", &ms) && ms == 10000);
	CHECK(config_parse_duration("5m", &ms) && ms == 300000);
	CHECK(config_parse_duration("1h", &ms) && ms == 3600000);
	CHECK(config_parse_duration("10S", &ms) && ms == 10000);
	CHECK(config_parse_duration("007ms", &ms) && ms == 7);
	CHECK(config_parse_duration("4294967295ms", &ms) && ms == UINT_MAX);
	CHECK(config_parse_duration("4294967s", &ms) && ms == 4294967000u);
	CHECK(config_parse_duration("71582m", &ms) && ms == 4294920000u);
	CHECK(config_parse_duration("1193h", &ms) && ms == 4294800000u);

	ms = 777;
	CHECK(!config_parse_duration("4294967296ms", &ms));
	CHECK(!config_parse_duration("4294968s", &ms));
	CHECK(!config_parse_duration("4294968", &ms));
	CHECK(!config_parse_duration("71583m", &ms));
	CHECK(!config_parse_duration("1194h", &ms));
	CHECK(!config_parse_duration("99999999999999999999999ms", &ms));
	CHECK(!config_parse_duration("", &ms));
	CHECK(!config_parse_duration("-1", &ms));
	CHECK(!config_parse_duration("+1", &ms));
	CHECK(!config_parse_duration("1x", &ms));
	CHECK(!config_parse_duration("1 s", &ms));
	CHECK(!config_parse_duration(" 1", &ms));
	CHECK(!config_parse_duration("1.5s", &ms));
	CHECK(!config_parse_duration("ms", &ms));
	CHECK(!config_parse_duration("s", &ms));
	CHECK(!config_parse_duration("1sec", &ms));
	CHECK(!config_parse_duration("1d", &ms));
	CHECK(!config_parse_duration("1ms5", &ms));
	CHECK(!config_parse_duration(NULL, &ms));
	CHECK(ms == 777);
}

static void
test_size(void)
{
	size_t	sz = 777;

	CHECK(config_parse_size("0", &sz) && sz == 0);
	CHECK(config_parse_size("65536", &sz) && sz == 65536);
	CHECK(config_parse_size("256k", &sz) && sz == 262144);
	CHECK(config_parse_size("256K", &sz) && sz == 262144);
	CHECK(config_parse_size("4m", &sz) && sz == 4194304);
	CHECK(config_parse_size("4M", &sz) && sz == 4194304);
	CHECK(config_parse_size("1g", &sz) && sz == 1073741824);
	CHECK(config_parse_size("3G", &sz) && sz == 3ull * 1073741824);
	CHECK(config_parse_size("18446744073709551615", &sz) &&
	    sz == SIZE_MAX);
	CHECK(config_parse_size("17179869183g", &sz) &&
	    sz == 17179869183ull * 1073741824);

	sz = 777;
	CHECK(!config_parse_size("18446744073709551616", &sz));
	CHECK(!config_parse_size("17179869184g", &sz));
	CHECK(!config_parse_size("18014398509481984k", &sz));
	CHECK(!config_parse_size("", &sz));
	CHECK(!config_parse_size("-1", &sz));
	CHECK(!config_parse_size("+1", &sz));
	CHECK(!config_parse_size("k", &sz));
	CHECK(!config_parse_size("1kb", &sz));
	CHECK(!config_parse_size("1kk", &sz));
	CHECK(!config_parse_size("1.5k", &sz));
	CHECK(!config_parse_size(" 1", &sz));
	CHECK(!config_parse_size("1 k", &sz));
	CHECK(!config_parse_size("1t", &sz));
	CHECK(!config_parse_size(NULL, &sz));
	CHECK(sz == 777);
}

static void
test_prefix(void)
{
	struct in_addr	a4, w4;
	struct in6_addr	a6, w6;
	int		p;

	inet_pton(AF_INET, "198.18.0.1", &w4);
	CHECK(config_parse_prefix("198.18.0.1/24", AF_INET, &a4, &p) &&
	    a4.s_addr == w4.s_addr && p == 24);
	CHECK(config_parse_prefix("198.18.0.1", AF_INET, &a4, &p) && p == 32);
	CHECK(config_parse_prefix("198.18.0.1/0", AF_INET, &a4, &p) && p == 0);
	CHECK(config_parse_prefix("198.18.0.1/32", AF_INET, &a4, &p) &&
	    p == 32);
	CHECK(config_parse_prefix("198.18.0.1/08", AF_INET, &a4, &p) && p == 8);
	inet_pton(AF_INET6, "fd00::1", &w6);
	CHECK(config_parse_prefix("fd00::1/64", AF_INET6, &a6, &p) &&
	    memcmp(&a6, &w6, 16) == 0 && p == 64);
	CHECK(config_parse_prefix("fd00::1", AF_INET6, &a6, &p) && p == 128);
	CHECK(config_parse_prefix("::/0", AF_INET6, &a6, &p) && p == 0);
	CHECK(config_parse_prefix("::ffff:1.2.3.4/128", AF_INET6, &a6, &p) &&
	    p == 128);

	/* Failures leave the outputs alone. */
	a4.s_addr = 0x01020304;
	p = 99;
	CHECK(!config_parse_prefix("198.18.0.1/33", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("/24", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/-1", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/+8", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/ 8", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/8x", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/8/8", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.1/99999999999999999999", AF_INET,
	    &a4, &p));
	CHECK(!config_parse_prefix("198.18.0", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("198.18.0.256", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix(" 198.18.0.1", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("fd00::1", AF_INET, &a4, &p));
	CHECK(!config_parse_prefix("fd00::1/129", AF_INET6, &a6, &p));
	CHECK(!config_parse_prefix("fd00::1%lo/64", AF_INET6, &a6, &p));
	CHECK(!config_parse_prefix("198.18.0.1", AF_INET6, &a6, &p));
	CHECK(!config_parse_prefix("1111:2222:3333:4444:5555:6666:7777:8888:9"
	    "/64", AF_INET6, &a6, &p));
	CHECK(!config_parse_prefix("198.18.0.1", AF_UNIX, &a4, &p));
	CHECK(!config_parse_prefix(NULL, AF_INET, &a4, &p));
	CHECK(a4.s_addr == 0x01020304 && p == 99);
}

static void
test_pin(void)
{
	unsigned char	out[32];
	char		s[128];

	memset(out, 0, sizeof(out));
	CHECK(config_parse_pin(PIN_HEX, out) &&
	    memcmp(out, pin_bytes, 32) == 0);
	memset(out, 0, sizeof(out));
	CHECK(config_parse_pin(PIN_HEX_COLONS, out) &&
	    memcmp(out, pin_bytes, 32) == 0);
	memset(out, 0, sizeof(out));
	CHECK(config_parse_pin(PIN_B64, out) &&
	    memcmp(out, pin_bytes, 32) == 0);
	memset(out, 0, sizeof(out));
	CHECK(config_parse_pin(PIN_B64_NOPAD, out) &&
	    memcmp(out, pin_bytes, 32) == 0);
	/* Upper-case hex, some colons only. */
	memset(out, 0, sizeof(out));
	snprintf(s, sizeof(s), "E3B0:C442%s", &PIN_HEX[8]);
	CHECK(config_parse_pin(s, out) && memcmp(out, pin_bytes, 32) == 0);

	memset(out, 0x11, sizeof(out));
	CHECK(!config_parse_pin("", out));
	CHECK(!config_parse_pin(NULL, out));
	CHECK(!config_parse_pin(PIN_HEX "0", out));
	CHECK(!config_parse_pin(PIN_HEX "00", out));
	snprintf(s, sizeof(s), "%.63s", PIN_HEX);
	CHECK(!config_parse_pin(s, out));
	snprintf(s, sizeof(s), "%.62s", PIN_HEX);
	CHECK(!config_parse_pin(s, out));
	snprintf(s, sizeof(s), "%.63sg", PIN_HEX);
	CHECK(!config_parse_pin(s, out));
	CHECK(!config_parse_pin(":" PIN_HEX, out));
	CHECK(!config_parse_pin(PIN_HEX ":", out));
	snprintf(s, sizeof(s), "e3::b0%s", &PIN_HEX[4]);
	CHECK(!config_parse_pin(s, out));
	snprintf(s, sizeof(s), "e:3b0%s", &PIN_HEX[4]);
	CHECK(!config_parse_pin(s, out));
	snprintf(s, sizeof(s), "%s ", PIN_B64);
	CHECK(!config_parse_pin(s, out));
	CHECK(!config_parse_pin(PIN_B64 "=", out));
	CHECK(!config_parse_pin(PIN_B64_NOPAD "==", out));
	/* base64 of 31 and 33 bytes. */
	CHECK(!config_parse_pin("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==",
	    out));
	CHECK(!config_parse_pin("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFVV",
	    out));
	/* Invalid characters, url-safe alphabet, embedded blank. */
	CHECK(!config_parse_pin("47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	    out));
	CHECK(!config_parse_pin("47DEQpj8HBSa+/TImW+5JCe QeRkm5NMpJWZG3hSuFU=",
	    out));
	CHECK(!config_parse_pin("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS=FU=",
	    out));
	/* 64 base64 characters are 48 bytes, not hex. */
	CHECK(!config_parse_pin("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
	    "47DEQpj8HBSa+/TImW+", out));
	CHECK(out[0] == 0x11 && out[31] == 0x11);
}

static void
test_load(void)
{
	struct config	c;
	char		line[400], text[1200];

	check_load_ok(&c,
	    "; a comment\n"
	    "# another\n"
	    "\n"
	    "[tun]\n"
	    "name = sl1\n"
	    "  mtu=1400\n"
	    "\tipv4 = 198.18.0.1/15 ; inline comment\n"
	    "ipv6 = fd00::1/64\n"
	    "fd = 5\n"
	    "[upstream]\n"
	    "url = socks5://u:p%40ss@[::1]:1081\n"
	    "connect_timeout = 3s\n"
	    "ca_file = /ca.pem\n"
	    "server_name = proxy.test\n"
	    "verify = none\n"
	    "client_cert = /c.pem\n"
	    "client_key = /k.pem\n"
	    "pin_sha256 = " PIN_HEX_COLONS "\n"
	    "[limits]\n"
	    "max_flows = 10\n"
	    "idle_timeout = 0\n"
	    "flow_buffer = 1m\n"
	    "[log]\n"
	    "level = debug\n"
	    "[tun]\n"
	    "mtu = 1280\n");
	CHECK_STR(c.tun_name, "sl1");
	CHECK(c.mtu == 1280);		/* last one wins */
	CHECK(c.has_ipv4 && c.ipv4_prefix == 15);
	CHECK(c.has_ipv6 && c.ipv6_prefix == 64);
	CHECK(c.tun_fd == 5);
	CHECK(c.has_upstream && c.upstream.scheme == URL_SOCKS5);
	CHECK_STR(c.upstream.host, "::1");
	CHECK_STR(c.upstream.pass, "p@ss");
	CHECK(c.upstream.port == 1081);
	CHECK(c.connect_timeout_ms == 3000);
	CHECK_STR(c.ca_file, "/ca.pem");
	CHECK_STR(c.server_name, "proxy.test");
	CHECK(!c.verify);
	CHECK_STR(c.client_cert, "/c.pem");
	CHECK_STR(c.client_key, "/k.pem");
	CHECK(c.has_pin && memcmp(c.pin_sha256, pin_bytes, 32) == 0);
	CHECK(c.max_flows == 10);
	CHECK(c.idle_timeout_ms == 0);
	CHECK(c.flow_buffer == 1024 * 1024);
	CHECK(c.log_level == LOG_LEVEL_DEBUG);

	/* CRLF line ends, a UTF-8 BOM, no newline at the end. */
	check_load_ok(&c, "\xef\xbb\xbf[tun]\r\nmtu = 9000\r\n[log]\r\n"
	    "level = warn");
	CHECK(c.mtu == 9000 && c.log_level == LOG_LEVEL_WARN);

	/* An empty file and a file of comments change nothing. */
	check_load_ok(&c, "");
	CHECK(c.mtu == 1500 && !c.has_upstream);
	check_load_ok(&c, "# nothing\n;\n\n[tun]\n");
	CHECK(c.mtu == 1500);

	/* Errors carry the right line and quote the text. */
	check_load_err("[tun]\nmtu = 12x\n", 2,
	    "bad value `12x' for mtu: expected an integer 576..65535");
	check_load_err("[tun]\nmtu =\n", 2,
	    "bad value `' for mtu: expected an integer 576..65535");
	check_load_err("\n\n[tun]\n\nfoo = 1\n", 5,
	    "unknown key `foo' in section [tun]");
	check_load_err("[tun]\nmtu = 1400\n[bar]\nx = 1\n", 3,
	    "unknown section [bar]");
	check_load_err("[tun]\n[bar]\n", 2, "unknown section [bar]");
	check_load_err("mtu = 1400\n", 1, "key `mtu' outside any section");
	check_load_err("[tun]\nmtu 1400\n", 2,
	    "expected key = value, not `mtu 1400'");
	check_load_err("[tun]\n  just words \n", 2,
	    "expected key = value, not `just words'");
	check_load_err("# c\n[tun\nmtu = 1400\n", 2,
	    "bad section header `[tun': expected [name]");
	check_load_err("[upstream]\nurl = socks5://u:hunter2@h:99999\n", 2,
	    "bad value for url: port `99999' out of range 1..65535");
	check_load_err("[log]\nlevel = loud\n", 2,
	    "bad value `loud' for level: expected debug, info, warn or error");

	/* The first error wins, whichever kind it is. */
	check_load_err("[tun]\nmtu = 1\nbogus line\n", 2,
	    "bad value `1' for mtu: expected an integer 576..65535");
	check_load_err("[tun]\nbogus line\nmtu = 1\n", 2,
	    "expected key = value, not `bogus line'");
	check_load_err("[tun]\nbogus\n[nope]\n", 2,
	    "expected key = value, not `bogus'");
	check_load_err("[tun]\r\nmtu = 12x\r\n", 2,
	    "bad value `12x' for mtu: expected an integer 576..65535");

	/*
	 * Lines longer than inih's buffer (199 bytes) are whole lines: a
	 * long comment, a long value, a long URL; line numbers stay exact.
	 */
	memset(line, 'a', 300);
	line[300] = '\0';
	snprintf(text, sizeof(text), "# %s\n[upstream]\nca_file = %.250s\n"
	    "ca_file = %s\n", line, line, line);
	check_load_err(text, 4, "bad value `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa...' for ca_file: longer than 255 "
	    "bytes");
	snprintf(text, sizeof(text), "# %s\n[upstream]\nca_file = %.250s "
	    "; %s\n", line, line, line);
	check_load_ok(&c, text);
	CHECK(strlen(c.ca_file) == 250);
	{
		/* A 2000-byte URL: credentials of 765 bytes each, encoded. */
		char	url[2400], big[4800], user[800], host[256];
		char	host2[500];
		size_t	i;

		user[0] = '\0';
		for (i = 0; i < 255; i++)
			strcat(user, "%41");
		memset(host, 'h', 240);
		host[240] = '\0';
		snprintf(url, sizeof(url), "socks5+tls://%s:%s@%s.example:1080",
		    user, user, host);
		CHECK(strlen(url) > 1790);	/* about the longest valid */
		snprintf(big, sizeof(big), "[upstream]\n\nurl = %s\n[tun]\n"
		    "mtu = 1400\n", url);
		check_load_ok(&c, big);
		CHECK(c.has_upstream && c.upstream.scheme == URL_SOCKS5_TLS);
		CHECK(strlen(c.upstream.user) == 255 &&
		    strlen(c.upstream.pass) == 255);
		CHECK(strlen(c.upstream.host) == 248);
		CHECK(c.mtu == 1400);
		/* ... and one 2000 bytes long with a host too long */
		memset(host2, 'h', 460);
		host2[460] = '\0';
		snprintf(url, sizeof(url), "socks5://%s:%s@%s.x:1080", user,
		    user, host2);
		CHECK(strlen(url) >= 2000);
		snprintf(big, sizeof(big), "[upstream]\n\nurl = %s\n", url);
		check_load_err(big, 3,
		    "bad value for url: host name longer than 255 bytes");
		snprintf(big, sizeof(big), "[upstream]\n# %s\n[tun]\n"
		    "mtu = 1\n", url);
		check_load_err(big, 4,
		    "bad value `1' for mtu: expected an integer 576..65535");
	}

	/* An inline comment cuts a URL; the error says so, no password. */
	check_load_err("[upstream]\nurl = socks5://alice:hunter2 ;old@host\n",
	    2, "bad value for url: bad port: expected 1..65535 (not shown: it "
	    "may be a password; user:pass goes before an `@') (the url ended "
	    "at ` ;', which starts a comment: write a `;' in a password as "
	    "%3B)");
	check_load_ok(&c, "[upstream]\nurl = socks5://alice:hunter2%20;old@host"
	    " ; comment\n");
	CHECK_STR(c.upstream.pass, "hunter2 ;old");
	/* A value may hold a ';' not after a blank, and start with one. */
	check_load_ok(&c, "[upstream]\nserver_name = a;b\nca_file = ;x\n");
	CHECK_STR(c.server_name, "a;b");
	CHECK_STR(c.ca_file, ";x");
	/* `:' separates like `='; a key line with a comment first fails */
	check_load_ok(&c, "[tun]\nmtu: 1400\n");
	CHECK(c.mtu == 1400);
	check_load_err("[tun]\nmtu ; x = 1400\n", 2,
	    "expected key = value, not `mtu ; x = 1400'");
	/* A NUL byte in a line is an error too. */
	{
		char	path[64], err[CONFIG_ERR_MAX], exp[128];
		FILE	*f;

		config_defaults(&c);
		temp_write(path, sizeof(path), "");
		f = fopen(path, "w");
		CHECK(f != NULL);
		if (f != NULL) {
			static const char nul[] = "[tun]\nmtu = 1\0" "400\n";

			fwrite(nul, 1, sizeof(nul) - 1, f);
			fclose(f);
		}
		CHECK(config_load(&c, path, err, sizeof(err)) == -1);
		snprintf(exp, sizeof(exp), "%s:2: NUL byte in line", path);
		CHECK_STR(err, exp);
		unlink(path);
	}
}

static void
test_load_open(void)
{
	struct config	c;
	char		err[CONFIG_ERR_MAX];

	config_defaults(&c);
	CHECK(config_load(&c, "/nonexistent/sluice.conf", err,
	    sizeof(err)) == -1);
	CHECK_STR(err, "/nonexistent/sluice.conf: cannot open: "
	    "No such file or directory");
	CHECK(config_load(&c, "/tmp", err, sizeof(err)) == -1);
	CHECK_STR(err, "/tmp: read error: Is a directory");
	/* A tiny error buffer is still NUL-terminated. */
	CHECK(config_load(&c, "/nonexistent/sluice.conf", err, 5) == -1);
	CHECK_STR(err, "/non");
}

static void
test_validate(void)
{
	struct config	c;
	char		err[CONFIG_ERR_MAX];

	config_defaults(&c);
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	CHECK_STR(err, "no upstream: set [upstream] url or --upstream");

	CHECK(config_set(&c, "upstream", "url", "socks5://h", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);

	CHECK(config_set(&c, "upstream", "client_cert", "/c", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	CHECK_STR(err, "client_cert and client_key must be set together");
	CHECK(config_set(&c, "upstream", "client_key", "/k", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
	CHECK(config_set(&c, "upstream", "client_cert", "", err,
	    sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == -1);
	CHECK_STR(err, "client_cert and client_key must be set together");
	CHECK(config_set(&c, "upstream", "client_key", "", err,
	    sizeof(err)) == 0);

	/* TLS settings with a plain scheme, and fd with a name, are fine. */
	CHECK(config_set(&c, "upstream", "ca_file", "/ca", err,
	    sizeof(err)) == 0);
	CHECK(config_set(&c, "upstream", "pin_sha256", PIN_HEX, err,
	    sizeof(err)) == 0);
	CHECK(config_set(&c, "upstream", "verify", "no", err,
	    sizeof(err)) == 0);
	CHECK(config_set(&c, "tun", "fd", "3", err, sizeof(err)) == 0);
	CHECK(config_set(&c, "tun", "name", "tun3", err, sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
}

/* The shipped example parses, and its commented-out defaults are true. */
static void
test_example_conf(void)
{
	struct config	c, d;
	char		err[CONFIG_ERR_MAX], path[64];
	char		text[16384], line[512];
	size_t		used = 0, n;
	FILE		*f;
	int		keys = 0;

	config_defaults(&c);
	CHECK(config_load(&c, EXAMPLE_CONF, err, sizeof(err)) == 0);
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
	CHECK(c.has_upstream && c.upstream.scheme == URL_SOCKS5);
	CHECK_STR(c.upstream.host, "198.19.0.2");
	CHECK(c.upstream.port == 1080 && !c.upstream.has_auth);
	d = c;
	config_defaults(&c);
	c.has_upstream = d.has_upstream;
	c.upstream = d.upstream;
	CHECK(memcmp(&c, &d, sizeof(c)) == 0);

	/* Uncomment every "#key = value" line and load that. */
	f = fopen(EXAMPLE_CONF, "r");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;

		if (line[0] == '#' && line[1] >= 'a' && line[1] <= 'z' &&
		    (strstr(line, " = ") != NULL ||
		    strstr(line, " =\n") != NULL)) {
			p = line + 1;
			keys++;
		}
		n = strlen(p);
		if (used + n < sizeof(text)) {
			memcpy(text + used, p, n);
			used += n;
		}
	}
	fclose(f);
	text[used] = '\0';
	/* every key but url, which is set (at least those known here) */
	CHECK(keys >= 20);
	CHECK(strstr(text, "\npassword_file =") != NULL);
	CHECK(strstr(text, "\nfwmark = 0\n") != NULL);
	CHECK(strstr(text, "\ninterface =\n") != NULL);

	CHECK(load_text(&c, text, path, sizeof(path), err, sizeof(err)) == 0);
	CHECK_STR(c.tun_name, "sluice0");
	CHECK(c.mtu == 1500 && c.tun_fd == -1);
	CHECK(c.has_ipv4 && c.has_ipv6);
	CHECK(c.connect_timeout_ms == 10000 && c.verify && c.offload);
	CHECK(c.ca_file[0] != '\0' && c.server_name[0] != '\0');
	CHECK(c.client_cert[0] != '\0' && c.client_key[0] != '\0');
	CHECK(c.has_pin && memcmp(c.pin_sha256, pin_bytes, 32) == 0);
	CHECK(c.max_flows == 4096 && c.idle_timeout_ms == 300000);
	CHECK(c.flow_buffer == 262144 && c.log_level == LOG_LEVEL_INFO);
	CHECK(c.fwmark == 0 && c.interface[0] == '\0' &&
	    c.password_file[0] == '\0');
	CHECK(config_validate(&c, err, sizeof(err)) == 0);
}

int
main(void)
{
	unsetenv("SLUICE_PASSWORD");	/* config_validate() reads it */
	test_defaults();
	test_tun_keys();
	test_upstream_keys();
	test_socket_keys();
	test_password();
	test_limits_log_keys();
	test_unknown();
	test_duration();
	test_size();
	test_prefix();
	test_pin();
	test_load();
	test_load_open();
	test_validate();
	test_example_conf();
	return check_summary("test_config");
}
