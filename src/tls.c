/*
 * tls.c - TLS client connections with mbedTLS behind a bufferevent.
 *
 * libevent 2.1 has no mbedTLS bufferevent, so this is a small one built
 * from public libevent API only.  The bufferevent handed out is a filter
 * bufferevent (bufferevent_filter_new) over the socket bufferevent:
 *
 *   user plaintext -> filter output -> tls_filter_out_cb (mbedtls_ssl_write)
 *     -> tls_bio_send_cb -> socket bufferevent output -> kernel
 *   kernel -> socket bufferevent input -> tls_bio_recv_cb
 *     -> tls_filter_in_cb (mbedtls_ssl_read) -> filter input -> user
 *
 * The filter gives us a real bufferevent with its own buffers, watermarks,
 * enable/disable and callbacks, a destructor hook (free_context) and
 * ownership of the socket bufferevent (BEV_OPT_CLOSE_ON_FREE).  Its own
 * callbacks on the socket bufferevent are replaced by ours
 * (tls_under_*_cb): libevent's would pass the socket's CONNECTED on before
 * the handshake and drop filter errors.  We drive the filter through its
 * public entry points instead: bufferevent_flush() runs the input or
 * output filter under libevent's own conditions (input: EV_READ enabled
 * and input below its high watermark; output: socket output below its
 * high watermark), and bufferevent_trigger*() runs the user's callbacks,
 * always deferred, so the user may free the bufferevent from any callback
 * and never re-enters this file.
 *
 * Reading backpressure mostly comes for free: when the user disables
 * EV_READ or its input reaches the high watermark, the filter suspends
 * reading on the socket bufferevent.  What libevent does not do is look at
 * bytes read already (ciphertext in the socket input, a record decrypted
 * inside mbedTLS) when reading resumes and the socket has nothing new.
 * For that we arm a "resume probe": a 1 us read timeout on the suspended
 * socket bufferevent.  Its timer only runs while its read event is added,
 * that is once the filter lets it read again; when it fires (or data comes)
 * we decrypt what is pending.  There is no other way to notice, from
 * outside libevent, that the user re-enabled reading.  (A timed-out
 * socket bufferevent disables its reading and libevent keeps re-arming a
 * read timeout until it is cleared while the event is pending; see
 * tls_probe_clear and tls_probe_fired.)
 *
 * The handshake must read whatever the user's EV_READ state, so while it
 * runs the socket bufferevent does not read: an event of our own reads the
 * fd into a buffer of ours (hs_in, drained first by tls_bio_recv_cb) and
 * steps mbedtls_ssl_handshake.  Handshake records go to the socket
 * bufferevent's output like any other.
 */
#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <arpa/inet.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "log.h"
#include "tls.h"

#define TLS_OUT_LOW	(32 * 1024)	/* refill the socket output below */
#define TLS_READ_MAX	(64 * 1024)	/* one socket read */
#define TLS_RECORD_MAX	16384		/* plaintext per record */
#define TLS_MASTER_LEN	48
#define TLS_SPKI_MAX	2600		/* DER SPKI of up to RSA-16384 */

/*
 * AEAD with ECDHE only, fastest first.  mbedTLS 2.28's GCM multiplies one
 * 16-byte block at a time even with PCLMUL; its ChaCha20-Poly1305 runs
 * about twice as fast here (306 vs 161 MB/s for 16 KiB records on this
 * machine's x86-64), so it leads.
 */
static const int tls_ciphersuites[] = {
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CCM,
	0
};

/*
 * Key exchange groups, and the curves accepted for ECDSA server keys:
 * X25519 first, then the NIST curves in common use.  Nothing below 256
 * bits (mbedTLS 2.28's default list also offers secp192r1, secp224r1,
 * secp192k1, secp224k1 and the brainpool curves).
 */
static const mbedtls_ecp_group_id tls_curves[] = {
	MBEDTLS_ECP_DP_CURVE25519,
	MBEDTLS_ECP_DP_SECP256R1,
	MBEDTLS_ECP_DP_SECP384R1,
	MBEDTLS_ECP_DP_SECP521R1,
	MBEDTLS_ECP_DP_NONE
};

static const struct timeval tls_probe_tv = { 0, 1 };

struct tls_client {
	mbedtls_ssl_config	 conf;
	mbedtls_entropy_context	 entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_x509_crt	 ca;
	mbedtls_x509_crt	 cert;
	mbedtls_pk_context	 key;
	char			*server_name;
	bool			 name_is_ip;	/* no SNI; tls_verify_ip_cb */
	int			 ip_family;	/* of ip: AF_INET, AF_INET6 */
	unsigned char		 ip[16];
	bool			 has_pin;
	unsigned char		 pin[TLS_PIN_LEN];

	pthread_mutex_t		 lock;		/* guards what follows */
	unsigned		 refs;		/* owner + connections */
	bool			 has_session;
	mbedtls_ssl_session	 session;	/* last good one */
	unsigned long		 full;
	unsigned long		 resumed;
};

enum tls_state {
	TLS_CONNECTING,		/* waiting for TCP */
	TLS_HANDSHAKE,
	TLS_OPEN,
	TLS_FAILED,		/* the user got BEV_EVENT_ERROR */
};

struct tls_conn {
	struct tls_client	*client;
	struct event_base	*base;
	struct bufferevent	*bev;		/* the filter: the user's */
	struct bufferevent	*under;		/* the socket */
	struct event		*hs_ev;		/* reads the fd in handshake */
	struct evbuffer		*hs_in;		/* what hs_ev read */
	mbedtls_ssl_context	 ssl;
	enum tls_state		 state;

	bool			 offered;	/* a saved session was offered */
	unsigned char		 offered_master[TLS_MASTER_LEN];
	bool			 first_seen;	/* first bytes checked */

	bool			 produced;	/* input filter made plaintext */
	bool			 probe_armed;	/* resume probe timeout set */
	bool			 probe_stale;	/* libevent may still have it */
	bool			 tcp_eof;	/* TCP FIN from the peer */
	bool			 peer_closed;	/* close_notify from the peer */
	bool			 eof_sent;	/* user got BEV_EVENT_EOF */
	bool			 shut_wanted;
	bool			 close_sent;	/* our close_notify queued */
	bool			 shut_done;	/* shutdown(SHUT_WR) done */
	char			 error[TLS_ERR_MAX];
};

static void	tls_under_read_cb(struct bufferevent *, void *);
static void	tls_pump(struct tls_conn *);
static void	tls_flush_out(struct tls_conn *);

/* Text for an mbedTLS error code. */
static const char *
tls_strerror(int r, char *buf, size_t len)
{
	mbedtls_strerror(r, buf, len);
	return buf;
}

/* ---- the shared client ------------------------------------------------ */

static void
tls_client_destroy(struct tls_client *c)
{
	mbedtls_ssl_session_free(&c->session);
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_x509_crt_free(&c->cert);
	mbedtls_pk_free(&c->key);
	mbedtls_ctr_drbg_free(&c->drbg);
	mbedtls_entropy_free(&c->entropy);
	mbedtls_platform_zeroize(c->pin, sizeof c->pin);
	free(c->server_name);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static void
tls_client_ref(struct tls_client *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

static void
tls_client_unref(struct tls_client *c)
{
	unsigned	refs;

	pthread_mutex_lock(&c->lock);
	refs = --c->refs;
	pthread_mutex_unlock(&c->lock);
	if (refs == 0)
		tls_client_destroy(c);
}

static bool
tls_is_set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* ---- a server name that is an IP address ----------------------------- */

/* True if b holds name, ignoring case. */
static bool
tls_buf_eq(const mbedtls_x509_buf *b, const char *name)
{
	size_t	n = strlen(name);

	return b->len == n && strncasecmp((const char *)b->p, name, n) == 0;
}

/*
 * True if the iPAddress entries of crt's subjectAltName hold the len
 * bytes at ip.  mbedTLS 2.28 lists only dNSName and otherName entries in
 * subject_alt_names, so the extension is walked here.
 */
static bool
tls_san_has_ip(const mbedtls_x509_crt *crt, const unsigned char *ip,
    size_t iplen)
{
	unsigned char		*p, *end, *ext_end, *san_end, tag;
	mbedtls_x509_buf	 oid;
	size_t			 len;
	int			 crit;

	if (crt->v3_ext.p == NULL || crt->v3_ext.len == 0)
		return false;
	p = crt->v3_ext.p;
	end = p + crt->v3_ext.len;
	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED |
	    MBEDTLS_ASN1_SEQUENCE) != 0)
		return false;
	end = p + len;
	while (p < end) {
		/* Extension ::= SEQUENCE { OID, critical BOOLEAN?, OCTETS } */
		if (mbedtls_asn1_get_tag(&p, end, &len,
		    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return false;
		ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len,
		    MBEDTLS_ASN1_OID) != 0)
			return false;
		oid.p = p;
		p += oid.len;
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) != 0) {
			p = ext_end;
			continue;
		}
		(void)mbedtls_asn1_get_bool(&p, ext_end, &crit);
		if (mbedtls_asn1_get_tag(&p, ext_end, &len,
		    MBEDTLS_ASN1_OCTET_STRING) != 0 ||
		    mbedtls_asn1_get_tag(&p, p + len, &len,
		    MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return false;
		san_end = p + len;
		while (p < san_end) {
			tag = *p++;
			if (mbedtls_asn1_get_len(&p, san_end, &len) != 0)
				return false;
			if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) &&
			    len == iplen && memcmp(p, ip, iplen) == 0)
				return true;
			p += len;
		}
		return false;
	}
	return false;
}

/*
 * Does crt name the address c->server_name?  An iPAddress SAN with the
 * address, or, as mbedTLS checks a host name, a dNSName SAN spelling it
 * (or, without a SAN extension, a CN spelling it).
 */
static bool
tls_crt_names_ip(const struct tls_client *c, const mbedtls_x509_crt *crt)
{
	const mbedtls_x509_sequence	*san;
	const mbedtls_x509_name		*n;

	if (tls_san_has_ip(crt, c->ip, c->ip_family == AF_INET ? 4 : 16))
		return true;
	if (crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) {
		for (san = &crt->subject_alt_names; san != NULL;
		    san = san->next) {
			if (san->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) &&
			    tls_buf_eq(&san->buf, c->server_name))
				return true;
		}
		return false;
	}
	for (n = &crt->subject; n != NULL; n = n->next) {
		if (n->oid.p != NULL &&
		    MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 &&
		    tls_buf_eq(&n->val, c->server_name))
			return true;
	}
	return false;
}

/*
 * Verification callback when the server name is an IP address: mbedTLS
 * gets no host name (so no SNI goes out, RFC 6066 forbids addresses
 * there), and the server's certificate is checked for the address here.
 */
static int
tls_verify_ip_cb(void *arg, mbedtls_x509_crt *crt, int depth,
    uint32_t *flags)
{
	const struct tls_client	*c = arg;

	if (depth == 0 && !tls_crt_names_ip(c, crt))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

/* Load the CA chain for verification; -1 with err set on failure. */
static int
tls_client_load_ca(struct tls_client *c, const char *path, char *err,
    size_t errlen)
{
	char	ebuf[128];
	int	r;

	r = mbedtls_x509_crt_parse_file(&c->ca, path);
	if (r < 0) {
		snprintf(err, errlen, "ca_file %s: %s", path,
		    tls_strerror(r, ebuf, sizeof ebuf));
		return -1;
	}
	if (c->ca.version == 0) {
		snprintf(err, errlen, "ca_file %s: no usable certificate",
		    path);
		return -1;
	}
	if (r > 0)
		log_debug("tls: ca_file %s: skipped %d certificates that "
		    "could not be parsed", path, r);
	mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
	return 0;
}

/* Load the client certificate and key for mutual TLS. */
static int
tls_client_load_cert(struct tls_client *c, const char *cert,
    const char *key, char *err, size_t errlen)
{
	char	ebuf[128];
	int	r;

	if ((r = mbedtls_x509_crt_parse_file(&c->cert, cert)) != 0) {
		snprintf(err, errlen, "client_cert %s: %s", cert,
		    r > 0 ? "bad certificate" :
		    tls_strerror(r, ebuf, sizeof ebuf));
		return -1;
	}
	if ((r = mbedtls_pk_parse_keyfile(&c->key, key, NULL)) != 0) {
		snprintf(err, errlen, "client_key %s: %s", key,
		    tls_strerror(r, ebuf, sizeof ebuf));
		return -1;
	}
	if (mbedtls_pk_check_pair(&c->cert.pk, &c->key) != 0) {
		snprintf(err, errlen, "client_key %s: does not match "
		    "client_cert %s", key, cert);
		return -1;
	}
	if ((r = mbedtls_ssl_conf_own_cert(&c->conf, &c->cert,
	    &c->key)) != 0) {
		snprintf(err, errlen, "client_cert %s: %s", cert,
		    tls_strerror(r, ebuf, sizeof ebuf));
		return -1;
	}
	return 0;
}

struct tls_client *
tls_client_new(const struct tls_options *o, const char *host, char *err,
    size_t errlen)
{
	static const unsigned char	 pers[] = "sluice tls client";
	struct tls_client		*c;
	const char			*name;
	char				 ebuf[128];
	int				 r;

	name = tls_is_set(o->server_name) ? o->server_name : host;
	if (!tls_is_set(name)) {
		snprintf(err, errlen, "tls: no server name");
		return NULL;
	}
	if (tls_is_set(o->client_cert) != tls_is_set(o->client_key)) {
		snprintf(err, errlen, "tls: client_cert and client_key go "
		    "together");
		return NULL;
	}

	if ((c = calloc(1, sizeof *c)) == NULL) {
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_entropy_init(&c->entropy);
	mbedtls_ctr_drbg_init(&c->drbg);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->cert);
	mbedtls_pk_init(&c->key);
	mbedtls_ssl_session_init(&c->session);
	pthread_mutex_init(&c->lock, NULL);
	c->refs = 1;

	if ((c->server_name = strdup(name)) == NULL) {
		snprintf(err, errlen, "tls: out of memory");
		goto bad;
	}
	if (inet_pton(AF_INET, name, c->ip) == 1)
		c->ip_family = AF_INET;
	else if (inet_pton(AF_INET6, name, c->ip) == 1)
		c->ip_family = AF_INET6;
	c->name_is_ip = c->ip_family != 0;
	if ((r = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func,
	    &c->entropy, pers, sizeof pers - 1)) != 0) {
		snprintf(err, errlen, "tls: random generator: %s",
		    tls_strerror(r, ebuf, sizeof ebuf));
		goto bad;
	}
	if ((r = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
		snprintf(err, errlen, "tls: config: %s",
		    tls_strerror(r, ebuf, sizeof ebuf));
		goto bad;
	}
	mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
	mbedtls_ssl_conf_min_version(&c->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(&c->conf, tls_ciphersuites);
	mbedtls_ssl_conf_curves(&c->conf, tls_curves);
	mbedtls_ssl_conf_session_tickets(&c->conf,
	    MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_renegotiation(&c->conf,
	    MBEDTLS_SSL_RENEGOTIATION_DISABLED);

	if (o->verify) {
		if (tls_client_load_ca(c, tls_is_set(o->ca_file) ?
		    o->ca_file : TLS_SYSTEM_CA, err, errlen) == -1)
			goto bad;
		mbedtls_ssl_conf_authmode(&c->conf,
		    MBEDTLS_SSL_VERIFY_REQUIRED);
		if (c->name_is_ip)
			mbedtls_ssl_conf_verify(&c->conf, tls_verify_ip_cb, c);
	} else
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);

	if (tls_is_set(o->client_cert) && tls_client_load_cert(c,
	    o->client_cert, o->client_key, err, errlen) == -1)
		goto bad;

	if (o->pin_sha256 != NULL) {
		memcpy(c->pin, o->pin_sha256, sizeof c->pin);
		c->has_pin = true;
	}
	if (!o->verify)
		log_warnx("tls: %s: certificate verification is off%s", name,
		    c->has_pin ? " (public key pinned)" : "");
	return c;

bad:
	tls_client_destroy(c);
	return NULL;
}

void
tls_client_free(struct tls_client *c)
{
	if (c != NULL)
		tls_client_unref(c);
}

void
tls_client_stats(const struct tls_client *c, unsigned long *full,
    unsigned long *resumed)
{
	/* The lock is not part of the client's logical state. */
	pthread_mutex_t	*lock = (pthread_mutex_t *)&c->lock;

	pthread_mutex_lock(lock);
	*full = c->full;
	*resumed = c->resumed;
	pthread_mutex_unlock(lock);
}

/* ---- one connection: plumbing ---------------------------------------- */

/* mbedTLS wants to send: queue the bytes on the socket bufferevent. */
static int
tls_bio_send_cb(void *arg, const unsigned char *buf, size_t len)
{
	struct tls_conn	*t = arg;

	if (evbuffer_add(bufferevent_get_output(t->under), buf, len) == -1)
		return MBEDTLS_ERR_NET_SEND_FAILED;
	return (int)len;
}

/*
 * mbedTLS wants bytes: take them from what the handshake read, then from
 * the socket bufferevent's input.
 */
static int
tls_bio_recv_cb(void *arg, unsigned char *buf, size_t len)
{
	struct tls_conn	*t = arg;
	int		 n;

	if (t->hs_in != NULL && evbuffer_get_length(t->hs_in) > 0)
		n = evbuffer_remove(t->hs_in, buf, len);
	else
		n = evbuffer_remove(bufferevent_get_input(t->under), buf,
		    len);
	if (n <= 0)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return n;
}

/* The connection behind a bufferevent, or NULL if it is not ours. */
static struct tls_conn *
tls_conn_from_bev(struct bufferevent *bev)
{
	struct bufferevent	*under;
	bufferevent_data_cb	 readcb;
	void			*arg;

	if (bev == NULL || (under = bufferevent_get_underlying(bev)) == NULL)
		return NULL;
	bufferevent_getcb(under, &readcb, NULL, NULL, &arg);
	if (readcb != tls_under_read_cb)
		return NULL;
	return arg;
}

/*
 * False once the user freed the bufferevent: freeing the filter frees the
 * socket bufferevent, which clears its callbacks, while deferred callbacks
 * may keep both allocated a little longer.
 */
static bool
tls_conn_live(struct tls_conn *t)
{
	bufferevent_data_cb	readcb;

	bufferevent_getcb(t->under, &readcb, NULL, NULL, NULL);
	return readcb == tls_under_read_cb;
}

/*
 * Forget the resume probe.  libevent also remembers a read timeout inside
 * the socket's read event and re-arms it whenever that event fires, until
 * the timeout is cleared while the event is pending; so this is called
 * from the read callback, where it is, until that has happened once.
 */
static void
tls_probe_clear(struct tls_conn *t)
{
	if (t->probe_armed || t->probe_stale) {
		t->probe_armed = false;
		t->probe_stale = false;
		bufferevent_set_timeouts(t->under, NULL, NULL);
	}
}

/*
 * Pending input could not be decrypted because the user stopped reading:
 * have the socket bufferevent tell us when reading is allowed again.
 */
static void
tls_probe_arm(struct tls_conn *t)
{
	if (!t->probe_armed) {
		t->probe_armed = true;
		t->probe_stale = true;
		bufferevent_set_timeouts(t->under, &tls_probe_tv, NULL);
	}
	/* After EOF or a probe libevent disabled it; the filter gates it. */
	bufferevent_enable(t->under, EV_READ);
}

/*
 * The probe fired (or a stale timeout did): libevent disabled reading on
 * the socket bufferevent.  Enable it again, then drop the timeout, which
 * also clears libevent's copy when the read event is pending by then.
 */
static void
tls_probe_fired(struct tls_conn *t)
{
	bufferevent_enable(t->under, EV_READ);
	if (t->probe_armed) {
		t->probe_armed = false;
		bufferevent_set_timeouts(t->under, NULL, NULL);
	}
	t->probe_stale = true;	/* until a read callback clears it */
	tls_pump(t);
}

/* The connection failed: stop everything and tell the user, once. */
static void __attribute__((format(printf, 4, 5)))
tls_fail(struct tls_conn *t, short what, int err, const char *fmt, ...)
{
	struct tls_client	*c = t->client;
	va_list			 ap;

	if (t->state == TLS_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof t->error, fmt, ap);
	va_end(ap);

	if (t->state == TLS_HANDSHAKE && t->offered) {
		/* Do not keep offering a session that may be the problem. */
		pthread_mutex_lock(&c->lock);
		if (c->has_session) {
			mbedtls_ssl_session_free(&c->session);
			mbedtls_ssl_session_init(&c->session);
			c->has_session = false;
		}
		pthread_mutex_unlock(&c->lock);
	}
	t->state = TLS_FAILED;
	if (t->hs_ev != NULL)
		event_del(t->hs_ev);
	tls_probe_clear(t);
	bufferevent_disable(t->under, EV_READ|EV_WRITE);
	log_debug("tls: %s: %s", c->server_name, t->error);

	errno = err;
	bufferevent_trigger_event(t->bev, BEV_EVENT_ERROR | what, 0);
}

/* ---- the filter: encryption and decryption --------------------------- */

/* Decrypt ciphertext from src (the socket input) into dst (user input). */
static enum bufferevent_filter_result
tls_filter_in_cb(struct evbuffer *src, struct evbuffer *dst,
    ev_ssize_t lim, enum bufferevent_flush_mode mode, void *arg)
{
	struct tls_conn	*t = arg;
	struct evbuffer_iovec iov;
	size_t		 want, got = 0;
	char		 ebuf[128];
	int		 r;

	(void)src;
	(void)mode;
	if (t->state != TLS_OPEN || t->peer_closed)
		return BEV_NEED_MORE;

	for (;;) {
		want = TLS_RECORD_MAX;
		if (lim >= 0) {
			if (got >= (size_t)lim)
				break;
			if (want > (size_t)lim - got)
				want = (size_t)lim - got;
		}
		if (evbuffer_reserve_space(dst, want, &iov, 1) < 1) {
			tls_fail(t, BEV_EVENT_READING, ENOMEM,
			    "read: out of memory");
			return BEV_ERROR;
		}
		if (want > iov.iov_len)
			want = iov.iov_len;
		r = mbedtls_ssl_read(&t->ssl, iov.iov_base, want);
		if (r > 0) {
			iov.iov_len = r;
			evbuffer_commit_space(dst, &iov, 1);
			got += r;
			t->produced = true;
			continue;
		}
		if (r == MBEDTLS_ERR_SSL_WANT_READ ||
		    r == MBEDTLS_ERR_SSL_WANT_WRITE)
			break;
		if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == 0) {
			t->peer_closed = true;
			break;
		}
		tls_fail(t, BEV_EVENT_READING, EPROTO, "read: %s",
		    tls_strerror(r, ebuf, sizeof ebuf));
		return BEV_ERROR;
	}
	/* BEV_OK with bytes left in src would make libevent call again. */
	return t->peer_closed ? BEV_NEED_MORE : BEV_OK;
}

/* Encrypt plaintext from src (user output) into dst (socket output). */
static enum bufferevent_filter_result
tls_filter_out_cb(struct evbuffer *src, struct evbuffer *dst,
    ev_ssize_t lim, enum bufferevent_flush_mode mode, void *arg)
{
	struct tls_conn	*t = arg;
	unsigned char	*p;
	size_t		 len, n, before, queued = 0, max;
	char		 ebuf[128];
	int		 r;

	(void)mode;
	if (t->state == TLS_FAILED || t->close_sent)
		return BEV_ERROR;
	if (t->state != TLS_OPEN)
		return BEV_NEED_MORE;	/* keep it until the handshake is done */

	r = mbedtls_ssl_get_max_out_record_payload(&t->ssl);
	max = r > 0 && r < TLS_RECORD_MAX ? (size_t)r : TLS_RECORD_MAX;
	while ((len = evbuffer_get_length(src)) > 0) {
		if (lim >= 0 && queued >= (size_t)lim)
			break;
		n = len < max ? len : max;
		if ((p = evbuffer_pullup(src, n)) == NULL) {
			tls_fail(t, BEV_EVENT_WRITING, ENOMEM,
			    "write: out of memory");
			return BEV_ERROR;
		}
		before = evbuffer_get_length(dst);
		r = mbedtls_ssl_write(&t->ssl, p, n);
		if (r == MBEDTLS_ERR_SSL_WANT_READ ||
		    r == MBEDTLS_ERR_SSL_WANT_WRITE)
			return BEV_NEED_MORE;
		if (r < 0) {
			tls_fail(t, BEV_EVENT_WRITING, EPROTO, "write: %s",
			    tls_strerror(r, ebuf, sizeof ebuf));
			return BEV_ERROR;
		}
		evbuffer_drain(src, r);
		queued += evbuffer_get_length(dst) - before;
	}
	return BEV_OK;
}

/* The user's bufferevent is being destroyed. */
static void
tls_filter_free_cb(void *arg)
{
	struct tls_conn	*t = arg;

	if (t->hs_ev != NULL)
		event_free(t->hs_ev);
	if (t->hs_in != NULL)
		evbuffer_free(t->hs_in);
	mbedtls_ssl_free(&t->ssl);
	mbedtls_platform_zeroize(t->offered_master, sizeof t->offered_master);
	tls_client_unref(t->client);
	free(t);
}

/* ---- data flow -------------------------------------------------------- */

/*
 * Decrypt what has been read, as far as the user's EV_READ state and
 * input watermark allow, and deliver EOF after the last byte.
 */
static void
tls_pump(struct tls_conn *t)
{
	struct evbuffer	*uin = bufferevent_get_input(t->under);

	if (t->state != TLS_OPEN || t->eof_sent)
		return;
	t->produced = false;
	bufferevent_flush(t->bev, EV_READ, BEV_NORMAL);
	if (t->state != TLS_OPEN)
		return;
	if (t->produced)
		bufferevent_trigger(t->bev, EV_READ, 0);

	if (!t->peer_closed && (evbuffer_get_length(uin) > 0 ||
	    (t->hs_in != NULL && evbuffer_get_length(t->hs_in) > 0) ||
	    mbedtls_ssl_get_bytes_avail(&t->ssl) > 0 ||
	    mbedtls_ssl_check_pending(&t->ssl))) {
		tls_probe_arm(t);
		return;
	}
	if (t->tcp_eof && !t->peer_closed) {
		/* An attacker's FIN must not pass for the end of the data. */
		tls_fail(t, BEV_EVENT_READING, ECONNRESET, "connection closed "
		    "without close_notify (truncated)");
		return;
	}
	if (t->peer_closed) {
		t->eof_sent = true;
		tls_probe_clear(t);
		bufferevent_disable(t->under, EV_READ);
		bufferevent_trigger_event(t->bev,
		    BEV_EVENT_EOF | BEV_EVENT_READING, 0);
	}
}

/* Send close_notify and SHUT_WR once everything before is flushed. */
static void
tls_shutdown_step(struct tls_conn *t)
{
	int	fd, r;

	if (!t->shut_wanted || t->shut_done || t->state != TLS_OPEN)
		return;
	if (!t->close_sent) {
		if (evbuffer_get_length(bufferevent_get_output(t->bev)) > 0)
			return;
		r = mbedtls_ssl_close_notify(&t->ssl);
		if (r != 0 && r != MBEDTLS_ERR_SSL_WANT_WRITE)
			log_debug("tls: %s: close_notify failed (%d)",
			    t->client->server_name, r);
		t->close_sent = true;
	}
	if (evbuffer_get_length(bufferevent_get_output(t->under)) > 0)
		return;
	t->shut_done = true;
	fd = bufferevent_getfd(t->under);
	if (fd >= 0 && shutdown(fd, SHUT_WR) == -1 && errno != ENOTCONN)
		log_debug("tls: %s: shutdown: %s", t->client->server_name,
		    strerror(errno));
	else
		log_debug("tls: %s: sent close_notify and FIN",
		    t->client->server_name);
	/* Tell the user: the write callback runs once flushed. */
	bufferevent_trigger(t->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
	    BEV_TRIG_DEFER_CALLBACKS);
}

/* Encrypt more of the user's output, then move the half-close along. */
static void
tls_flush_out(struct tls_conn *t)
{
	if (t->state != TLS_OPEN)
		return;
	if (!t->close_sent)
		bufferevent_flush(t->bev, EV_WRITE, BEV_NORMAL);
	tls_shutdown_step(t);
}

/* ---- handshake -------------------------------------------------------- */

struct tls_verify_reason {
	uint32_t	 flag;
	const char	*text;
};

static const struct tls_verify_reason tls_verify_reasons[] = {
	{ MBEDTLS_X509_BADCERT_EXPIRED,		"expired" },
	{ MBEDTLS_X509_BADCERT_FUTURE,		"not yet valid" },
	{ MBEDTLS_X509_BADCERT_REVOKED,		"revoked" },
	{ MBEDTLS_X509_BADCERT_CN_MISMATCH,	"name mismatch" },
	{ MBEDTLS_X509_BADCERT_NOT_TRUSTED,	"not trusted" },
	{ MBEDTLS_X509_BADCERT_MISSING,		"no certificate" },
	{ MBEDTLS_X509_BADCERT_KEY_USAGE,	"key usage" },
	{ MBEDTLS_X509_BADCERT_EXT_KEY_USAGE,	"extended key usage" },
	{ MBEDTLS_X509_BADCERT_NS_CERT_TYPE,	"certificate type" },
	{ MBEDTLS_X509_BADCERT_BAD_MD,		"weak signature hash" },
	{ MBEDTLS_X509_BADCERT_BAD_PK,		"unacceptable key type" },
	{ MBEDTLS_X509_BADCERT_BAD_KEY,		"weak key" },
	{ MBEDTLS_X509_BADCERT_OTHER,		"rejected" },
	{ MBEDTLS_X509_BADCRL_NOT_TRUSTED | MBEDTLS_X509_BADCRL_EXPIRED |
	  MBEDTLS_X509_BADCRL_FUTURE | MBEDTLS_X509_BADCRL_BAD_MD |
	  MBEDTLS_X509_BADCRL_BAD_PK | MBEDTLS_X509_BADCRL_BAD_KEY,
						"bad CRL" },
};

/* "expired, name mismatch" for mbedTLS verify flags. */
static const char *
tls_verify_str(uint32_t flags, char *buf, size_t len)
{
	size_t	i, off = 0;
	int	n;

	buf[0] = '\0';
	for (i = 0; i < sizeof tls_verify_reasons /
	    sizeof tls_verify_reasons[0]; i++) {
		if ((flags & tls_verify_reasons[i].flag) == 0)
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
		    tls_verify_reasons[i].text);
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += n;
	}
	if (off == 0)
		snprintf(buf, len, "unknown reason (0x%x)", (unsigned)flags);
	return buf;
}

static void
tls_handshake_fail(struct tls_conn *t, int r)
{
	char	buf[160];

	switch (r) {
	case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
		tls_fail(t, 0, EPROTO, "certificate verify failed: %s",
		    tls_verify_str(mbedtls_ssl_get_verify_result(&t->ssl),
		    buf, sizeof buf));
		break;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_SSL_CONN_EOF:
		tls_fail(t, 0, ECONNRESET,
		    "handshake: connection closed by peer");
		break;
	case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
		tls_fail(t, 0, EPROTO, "handshake: fatal alert from server");
		break;
	case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
		tls_fail(t, 0, EPROTO, "handshake: server does not do TLS 1.2");
		break;
	default:
		tls_fail(t, 0, EPROTO, "handshake: %s",
		    tls_strerror(r, buf, sizeof buf));
		break;
	}
}

/* Compare the server's public key with the pin; -1 with t failed. */
static int
tls_check_pin(struct tls_conn *t)
{
	const mbedtls_x509_crt	*crt;
	unsigned char		 der[TLS_SPKI_MAX], hash[32];
	unsigned char		 diff = 0;
	size_t			 i;
	int			 n;

	if (!t->client->has_pin)
		return 0;
	if ((crt = mbedtls_ssl_get_peer_cert(&t->ssl)) == NULL) {
		tls_fail(t, 0, EPROTO, "server sent no certificate to pin");
		return -1;
	}
	/* mbedtls_pk_write_pubkey_der writes at the end of der. */
	n = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)&crt->pk, der,
	    sizeof der);
	if (n <= 0 || mbedtls_sha256_ret(der + sizeof der - n, n, hash,
	    0) != 0) {
		tls_fail(t, 0, EPROTO, "server public key: cannot encode");
		return -1;
	}
	for (i = 0; i < sizeof hash; i++)
		diff |= hash[i] ^ t->client->pin[i];
	if (diff != 0) {
		tls_fail(t, 0, EPROTO, "server public key pin mismatch");
		return -1;
	}
	return 0;
}

/* Keep the session for the next connection and count the handshake. */
static void
tls_session_save(struct tls_conn *t, bool *resumed)
{
	struct tls_client	*c = t->client;
	int			 r;

	pthread_mutex_lock(&c->lock);
	r = mbedtls_ssl_get_session(&t->ssl, &c->session);
	c->has_session = r == 0;
	/* A resumed session keeps the master secret it was offered with. */
	*resumed = r == 0 && t->offered && memcmp(c->session.master,
	    t->offered_master, TLS_MASTER_LEN) == 0;
	if (*resumed)
		c->resumed++;
	else
		c->full++;
	pthread_mutex_unlock(&c->lock);
	mbedtls_platform_zeroize(t->offered_master, sizeof t->offered_master);
}

static void
tls_handshake_done(struct tls_conn *t)
{
	bool	resumed;

	if (tls_check_pin(t) == -1)
		return;
	tls_session_save(t, &resumed);
	event_del(t->hs_ev);
	t->state = TLS_OPEN;
	log_debug("tls: %s: %s %s%s", t->client->server_name,
	    mbedtls_ssl_get_version(&t->ssl),
	    mbedtls_ssl_get_ciphersuite(&t->ssl),
	    resumed ? ", resumed" : "");

	bufferevent_enable(t->under, EV_READ);
	bufferevent_trigger_event(t->bev, BEV_EVENT_CONNECTED, 0);
	tls_flush_out(t);
	tls_pump(t);
}

static void
tls_handshake_step(struct tls_conn *t)
{
	int	r;

	r = mbedtls_ssl_handshake(&t->ssl);
	if (r == MBEDTLS_ERR_SSL_WANT_READ || r == MBEDTLS_ERR_SSL_WANT_WRITE)
		return;
	if (r != 0)
		tls_handshake_fail(t, r);
	else
		tls_handshake_done(t);
}

/*
 * The socket has bytes during the handshake.  They go to a buffer of our
 * own: a socket bufferevent's input does not take bytes from outside.
 */
static void
tls_fd_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn	*t = arg;
	struct evbuffer	*in = t->hs_in;
	unsigned char	 head[2];
	int		 n;

	(void)what;
	if (!tls_conn_live(t) || t->state != TLS_HANDSHAKE)
		return;
	n = evbuffer_read(in, fd, TLS_READ_MAX);
	if (n == 0) {
		tls_fail(t, 0, ECONNRESET,
		    "handshake: connection closed by peer");
		return;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		tls_fail(t, 0, errno, "handshake: %s", strerror(errno));
		return;
	}
	if (!t->first_seen) {
		/* A TLS server answers with a handshake or alert record. */
		n = evbuffer_copyout(in, head, sizeof head);
		if ((head[0] != 0x16 && head[0] != 0x15) ||
		    (n == 2 && head[1] != 0x03)) {
			tls_fail(t, 0, EPROTO, "handshake: not a TLS server");
			return;
		}
		t->first_seen = true;
	}
	tls_handshake_step(t);
}

static void
tls_handshake_start(struct tls_conn *t)
{
	evutil_socket_t	fd;

	fd = bufferevent_getfd(t->under);
	t->state = TLS_HANDSHAKE;
	if (fd < 0) {
		tls_fail(t, 0, EBADF, "handshake: no socket");
		return;
	}
	t->hs_in = evbuffer_new();
	t->hs_ev = event_new(t->base, fd, EV_READ | EV_PERSIST,
	    tls_fd_read_cb, t);
	if (t->hs_in == NULL || t->hs_ev == NULL ||
	    event_add(t->hs_ev, NULL) == -1) {
		tls_fail(t, 0, ENOMEM, "handshake: out of memory");
		return;
	}
	tls_handshake_step(t);
}

/* ---- socket bufferevent callbacks ------------------------------------ */

static void
tls_under_read_cb(struct bufferevent *under, void *arg)
{
	struct tls_conn	*t = arg;

	(void)under;
	tls_probe_clear(t);	/* first, while the read event is pending */
	tls_pump(t);
}

static void
tls_under_write_cb(struct bufferevent *under, void *arg)
{
	struct tls_conn	*t = arg;

	(void)under;
	tls_flush_out(t);
}

static void
tls_under_event_cb(struct bufferevent *under, short what, void *arg)
{
	struct tls_conn	*t = arg;
	int		 err = errno;
	short		 dir = what & (BEV_EVENT_READING | BEV_EVENT_WRITING);

	(void)under;
	if (t->state == TLS_FAILED)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (t->state == TLS_CONNECTING)
			tls_handshake_start(t);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    t->state == TLS_OPEN) {
		/* We set no timeouts but the probe's. */
		tls_probe_fired(t);
		return;
	}

	switch (t->state) {
	case TLS_CONNECTING:
		tls_fail(t, dir, err, "connect: %s", strerror(err));
		break;
	case TLS_HANDSHAKE:
		if (what & BEV_EVENT_EOF)
			tls_fail(t, 0, ECONNRESET,
			    "handshake: connection closed by peer");
		else
			tls_fail(t, dir, err, "handshake: %s", strerror(err));
		break;
	case TLS_OPEN:
		if (what & BEV_EVENT_EOF) {
			t->tcp_eof = true;
			tls_pump(t);
		} else if (what & BEV_EVENT_ERROR)
			tls_fail(t, dir, err, "%s: %s",
			    (what & BEV_EVENT_WRITING) ? "write" : "read",
			    strerror(err));
		break;
	case TLS_FAILED:
		break;
	}
}

/* ---- the public bufferevent ------------------------------------------ */

struct bufferevent *
tls_bufferevent_new(struct tls_client *c, struct event_base *base,
    struct bufferevent *under)
{
	struct tls_conn		*t;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof ss;
	evutil_socket_t		 fd;

	if ((t = calloc(1, sizeof *t)) == NULL)
		return NULL;
	t->client = c;
	t->base = base;
	t->under = under;
	t->state = TLS_CONNECTING;
	mbedtls_ssl_init(&t->ssl);
	if (mbedtls_ssl_setup(&t->ssl, &c->conf) != 0 ||
	    mbedtls_ssl_set_hostname(&t->ssl,
	    c->name_is_ip ? NULL : c->server_name) != 0)
		goto bad;
	mbedtls_ssl_set_bio(&t->ssl, t, tls_bio_send_cb, tls_bio_recv_cb,
	    NULL);

	pthread_mutex_lock(&c->lock);
	if (c->has_session && mbedtls_ssl_set_session(&t->ssl,
	    &c->session) == 0) {
		t->offered = true;
		memcpy(t->offered_master, c->session.master, TLS_MASTER_LEN);
	}
	pthread_mutex_unlock(&c->lock);

	t->bev = bufferevent_filter_new(under, tls_filter_in_cb,
	    tls_filter_out_cb, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
	    tls_filter_free_cb, t);
	if (t->bev == NULL)
		goto bad;
	tls_client_ref(c);

	/* From here on the socket bufferevent is driven by us. */
	bufferevent_setcb(under, tls_under_read_cb, tls_under_write_cb,
	    tls_under_event_cb, t);
	bufferevent_disable(under, EV_READ);
	bufferevent_setwatermark(under, EV_READ, 0, 0);
	bufferevent_setwatermark(under, EV_WRITE, TLS_OUT_LOW, TLS_OUT_HIGH);
	bufferevent_set_max_single_read(under, TLS_READ_MAX);
	bufferevent_set_max_single_write(under, TLS_OUT_HIGH);

	fd = bufferevent_getfd(under);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
		tls_handshake_start(t);
	return t->bev;

bad:
	mbedtls_ssl_free(&t->ssl);
	mbedtls_platform_zeroize(t->offered_master, sizeof t->offered_master);
	free(t);
	return NULL;
}

const char *
tls_bufferevent_error(struct bufferevent *bev)
{
	struct tls_conn	*t = tls_conn_from_bev(bev);

	if (t == NULL || t->state != TLS_FAILED)
		return NULL;
	return t->error;
}

bool
tls_bufferevent_write_flushed(struct bufferevent *bev)
{
	struct tls_conn	*t = tls_conn_from_bev(bev);

	return t != NULL && t->shut_done;
}

bool
tls_bufferevent_is_tls(struct bufferevent *bev)
{
	return tls_conn_from_bev(bev) != NULL;
}

void
tls_bufferevent_shutdown_write(struct bufferevent *bev)
{
	struct tls_conn	*t = tls_conn_from_bev(bev);

	if (t == NULL || t->shut_wanted)
		return;
	t->shut_wanted = true;
	tls_flush_out(t);
}
