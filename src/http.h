/*
 * http.h - the client side of HTTP/1.1 CONNECT (RFC 9110 section 9.3.6,
 * message syntax from RFC 9112), as pure functions over bytes.
 *
 * The builder writes one request; the parser looks at the bytes received so
 * far and says whether a complete response header block is in.  Neither
 * does any I/O, so unit tests and fuzzers can feed them byte by byte.
 *
 * Parser rules (strict where the spec allows a choice, and documented):
 * - Status line: "HTTP/1." DIGIT SP 3DIGIT [SP reason] CRLF.  HTTP/1.0 and
 *   HTTP/1.1 are accepted (any 1.x minor); the status code must be
 *   100..599.  The reason may be empty, and the SP before an empty reason
 *   may be missing ("HTTP/1.1 200\r\n"), which some servers send.
 * - Every line must end in CRLF.  A bare LF (or a CR not followed by LF)
 *   is HTTP_FAIL "missing CRLF": RFC 9112 only permits tolerating it, and a
 *   proxy that sends one is broken enough to be worth reporting.
 * - Header lines are "name: value" with a token name and no whitespace
 *   before the colon; values may hold SP, HTAB, VCHAR and obs-text.  Other
 *   control characters (NUL, bare CR, ...) are HTTP_FAIL.
 * - obs-fold (a line starting with SP or HTAB, continuing the previous
 *   header) is accepted and skipped: no header value is interpreted here
 *   (for a 2xx reply to CONNECT, Content-Length and Transfer-Encoding must
 *   be ignored anyway), so replacing the fold with SP, as RFC 9112 section
 *   5.2 asks of user agents, changes nothing.  Whitespace before the first
 *   header line is HTTP_FAIL.
 * - Interim 1xx responses (100 Continue, 102, 103 Early Hints, ...) are
 *   consumed and parsing goes on with the next response.  101 Switching
 *   Protocols is final (it cannot be a valid answer to CONNECT, so the
 *   caller sees a non-2xx code and fails).
 * - All header blocks together, interim ones included, may take at most
 *   HTTP_HEADER_MAX bytes.  So HTTP_MORE implies len < HTTP_HEADER_MAX, and
 *   a caller never needs to look at more than HTTP_HEADER_MAX bytes.
 *
 * The parser is stateless and rescans from the start on every call; a
 * driver passes all bytes received so far (at most HTTP_HEADER_MAX).
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HTTP_HEADER_MAX		16384	/* all response header blocks */
#define HTTP_REQUEST_MAX	1024	/* the longest request we build */
#define HTTP_CRED_MAX		511	/* strlen(user) + 1 + strlen(pass) */
#define HTTP_REASON_MAX		128	/* a sensible reason buffer size */

enum http_status {
	HTTP_MORE,	/* need more bytes; nothing consumed */
	HTTP_OK,	/* a final response header block is complete */
	HTTP_FAIL,	/* not a valid response; *why says why */
};

/*
 * Write "CONNECT host:port HTTP/1.1", "Host: host:port" and, when user is
 * not NULL, "Proxy-Authorization: Basic base64(user:pass)" (RFC 7617), then
 * the empty line.  dst is AF_INET or AF_INET6 (written as [addr]:port).
 * Returns the length, or 0 if it does not fit in cap or an argument is
 * invalid (bad family; user containing ':' or a control character; pass
 * NULL with user set or holding a control character; user:pass longer than
 * HTTP_CRED_MAX).  With credentials, buf holds them in clear-ish text: the
 * caller wipes it once sent.
 */
size_t http_build_connect(char *buf, size_t cap, const struct sockaddr *dst,
    const char *user, const char *pass);
/*
 * The same to a host name and port ("CONNECT name:port"); the name must
 * pass http_name_ok().
 */
size_t http_build_connect_name(char *buf, size_t cap, const char *name,
    uint16_t port, const char *user, const char *pass);
/*
 * Whether name is a plain host name (1..253 of letters, digits, '-', '_'
 * and '.', not starting with '.' or '-'): nothing that could break out of
 * a request line or a header.
 */
bool http_name_ok(const char *name);

/*
 * Parse the proxy's response in buf[0..len).  On HTTP_OK, *code is the
 * final status code, reason (if not NULL and reasonlen > 0) gets its
 * reason phrase, NUL-terminated, truncated to fit, bytes >= 0x80 shown as
 * '?', and *used is the length of all header blocks, interim ones
 * included: bytes after that belong to the tunnel.  On HTTP_FAIL, *why is
 * a static reason.  Never reads past len.
 */
enum http_status http_parse_response(const char *buf, size_t len, int *code,
    char *reason, size_t reasonlen, size_t *used, const char **why);

/* True for 2xx, the only codes after which a CONNECT tunnel is open. */
bool http_status_ok(int code);

#endif
