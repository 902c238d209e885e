/*
 * tls.h - TLS client connections (mbedTLS) behind a plain bufferevent.
 *
 * A tls_client holds what all connections to one upstream share: the
 * mbedTLS configuration (TLS 1.2 at least, which is also mbedTLS 2.28's
 * most; AEAD cipher suites with ECDHE only: AES-GCM, ChaCha20-Poly1305,
 * AES-CCM; groups x25519, secp256r1, secp384r1 and secp521r1 only, which
 * are also the only curves accepted for ECDSA server keys), the CA chain, an optional client certificate, an optional
 * public key pin and the last good session for resumption.
 * tls_bufferevent_new() wraps a socket bufferevent into one that the
 * relay uses exactly like a connected socket bufferevent:
 * bufferevent_setcb, bufferevent_enable/disable, bufferevent_setwatermark,
 * bufferevent_get_input/get_output, bufferevent_write/write_buffer,
 * bufferevent_getfd and bufferevent_free all work, on plaintext.
 *
 * Semantics of the returned bufferevent:
 * - Its callbacks always run deferred (as with BEV_OPT_DEFER_CALLBACKS),
 *   so any callback may free it.
 * - Events: BEV_EVENT_CONNECTED once TCP is up, the handshake is done and
 *   the chain, name and pin checked out.  BEV_EVENT_ERROR (once, and then
 *   nothing more) when connecting, the handshake, verification or the
 *   connection fails; tls_bufferevent_error() says why and errno is the
 *   socket error, ECONNRESET for a close during the handshake, or EPROTO
 *   for a TLS failure.  BEV_EVENT_EOF|READING when the peer closed its
 *   side after the handshake with close_notify, after all data before it
 *   was delivered.  A TCP FIN without close_notify may be an attacker
 *   cutting the stream short: it is BEV_EVENT_ERROR|READING (after all
 *   data before it), tls_bufferevent_error() "connection closed without
 *   close_notify (truncated)" and errno ECONNRESET.
 * - Reading: ciphertext is read from the socket only while EV_READ is
 *   enabled and the input buffer is below its high watermark, and
 *   decrypted plaintext never takes the input buffer past that watermark,
 *   just as with a socket.  Bytes already read when reading stops are
 *   decrypted once it resumes, without waiting for new data.
 * - Writing: plaintext written is encrypted as the socket drains; at most
 *   TLS_OUT_HIGH bytes of ciphertext (plus one record) wait in the socket
 *   bufferevent, so plaintext stays in the output buffer while the peer is
 *   slow and the write callback and output watermarks work as for a
 *   socket.  Data written before BEV_EVENT_CONNECTED is sent after the
 *   handshake.
 * - Half-close: use tls_bufferevent_shutdown_write(), never shutdown(2) on
 *   the fd.  The write callback runs when the write side is flushed
 *   (tls_bufferevent_write_flushed() turns true), whatever the output
 *   watermarks; until then ciphertext and close_notify may still wait in
 *   the socket bufferevent, and freeing the bufferevent would lose them.
 * - bufferevent_set_timeouts() on it gives libevent's generic timeouts:
 *   the read timeout counts time without decrypted input; use your own
 *   timer for the connect and handshake deadline.
 * - Do not touch `under' after handing it over (no callbacks, watermarks
 *   or timeouts of your own); BEV_OPT_THREADSAFE is not supported.
 *
 * Threads: a tls_client may be shared by event loops in several threads
 * (its session cache and counters are locked); each bufferevent belongs to
 * the thread of its event_base.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct tls_client;

#define TLS_ERR_MAX	256		/* a good size for err buffers */
#define TLS_PIN_LEN	32		/* SHA-256 */
#define TLS_SYSTEM_CA	"/etc/ssl/certs/ca-certificates.crt"
#define TLS_OUT_HIGH	(128 * 1024)	/* ciphertext queued on the socket */

struct tls_options {
	const char		*ca_file;	/* NULL or "": TLS_SYSTEM_CA */
	const char		*server_name;	/* NULL or "": the host */
	bool			 verify;	/* false: no chain/name check */
	const char		*client_cert;	/* both NULL/"" or both set: */
	const char		*client_key;	/*   mutual TLS (PEM or DER) */
	const unsigned char	*pin_sha256;	/* NULL or TLS_PIN_LEN bytes */
};

/*
 * Load the CA bundle, client certificate and key, and set up everything
 * connections to host share.  The server name (server_name, else host),
 * when it is a DNS name, is sent as SNI and, when verifying, must match
 * the certificate's DNS names (or its CN when it has no subjectAltName).
 * When it is an IPv4 or IPv6 literal no SNI is sent (RFC 6066 allows only
 * host names there) and, when verifying, the certificate must carry the
 * address as an iPAddress subjectAltName, or spelled as a DNS name (or CN
 * without subjectAltName), as mbedTLS would match a host name.  pin_sha256 is the SHA-256 of the server
 * certificate's SubjectPublicKeyInfo (DER), checked after the handshake
 * even when verify is false; a mismatch refuses the connection.  With
 * verify false a warning is logged here.  Returns NULL with a reason in err
 * on failure.  Nothing from o is kept; the key is held in memory only as
 * mbedTLS needs it.
 */
struct tls_client *tls_client_new(const struct tls_options *o,
    const char *host, char *err, size_t errlen);
/*
 * Drop the caller's reference.  Bufferevents made from c keep it alive
 * until they are freed, so this may be called at any time.  NULL is a
 * no-op.
 */
void tls_client_free(struct tls_client *c);
/* Handshakes completed so far: full ones and resumed ones. */
void tls_client_stats(const struct tls_client *c, unsigned long *full,
    unsigned long *resumed);

/*
 * Wrap `under', a socket bufferevent (made with BEV_OPT_CLOSE_ON_FREE)
 * that is connecting, made from a connected fd, or about to be connected
 * with bufferevent_socket_connect*().  The handshake starts as soon as it
 * is connected, offering the client's last session for resumption.  Takes
 * ownership: freeing the returned bufferevent frees `under'.  Returns
 * NULL on allocation failure, and then `under' is still the caller's.
 */
struct bufferevent *tls_bufferevent_new(struct tls_client *c,
    struct event_base *base, struct bufferevent *under);

/*
 * Why bev failed, e.g. "certificate verify failed: expired", "server
 * public key pin mismatch", "handshake: connection closed by peer",
 * "handshake: not a TLS server"; NULL if it has not failed or is not a TLS
 * bufferevent.  Valid until bev is freed.
 */
const char *tls_bufferevent_error(struct bufferevent *bev);
/*
 * True once tls_bufferevent_shutdown_write() was called and everything,
 * close_notify included, went to the kernel and the socket was shut down
 * for writing (SHUT_WR).  When it turns true the write callback runs.
 * False for a bufferevent that is not ours.
 */
bool tls_bufferevent_write_flushed(struct bufferevent *bev);
/* True if bev came from tls_bufferevent_new(). */
bool tls_bufferevent_is_tls(struct bufferevent *bev);
/*
 * Half-close: once all output written so far is encrypted and flushed,
 * send close_notify and shutdown(SHUT_WR) the socket.  Reading goes on
 * until the peer closes too.  Write nothing after this.  Before the
 * handshake is done, it happens right after it.
 */
void tls_bufferevent_shutdown_write(struct bufferevent *bev);

#endif
