/*
 * test_tls.c - the mbedTLS bufferevent layer against a real TLS server.
 *
 * On 127.0.0.1 only: makes a throwaway CA, server and client certificates
 * with the openssl command in a temporary directory, runs stunnel4 as an
 * echo server (exec /bin/cat) in a child process stopped by PID at the
 * end, and checks with a libevent loop: verification (right CA, wrong CA,
 * wrong name, pins, verify off, IP address names), mutual TLS, the
 * groups offered, a 4 MiB echo with small watermarks and a reader that
 * keeps pausing, half-close and its flush signal, session resumption,
 * writes before the handshake, frees at awkward moments, a stream cut
 * without close_notify, and peers served in-process (non-TLS, SNI).  Every loop is bounded in time and
 * bytes.  Without openssl or stunnel the server tests are counted as
 * skipped, never as passed.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "check.h"
#include "log.h"
#include "tls.h"

#define ECHO_BYTES	(4 * 1024 * 1024)
#define LOOP_SECONDS	20
#define IN_HIGH		4096		/* reader's input high watermark */
#define OUT_LOW		(32 * 1024)	/* writer's output low watermark */
#define OUT_CHUNK	(16 * 1024)

static int	skipped;
static char	tmpdir[64];
static pid_t	server_pid = -1;
static bool	certs_ok;
static int	port_echo, port_mtls, port_ip, port_p224, port_x25519;
static unsigned char pin_good[TLS_PIN_LEN];

/* One client connection under test and what happened to it. */
struct run {
	struct event_base	*base;
	struct bufferevent	*bev;
	struct event		*timer;		/* the time bound */
	struct event		*resume;	/* slow reader's pause */
	bool			 connected, eof, error, timed_out;
	char			 why[TLS_ERR_MAX];
	int			 err;		/* errno at the error */

	/* echo */
	size_t			 total;		/* bytes to send and expect */
	size_t			 sent, received;
	bool			 mismatch;
	bool			 slow;		/* pause reading now and then */
	bool			 shut_early;	/* half-close once all is sent */
	bool			 shut_sent;
	bool			 flushed_early;	/* flushed before shutdown */
	bool			 flushed_cb;	/* write cb saw it flushed */
	size_t			 max_in, max_under_in, max_under_out;
	unsigned		 pauses;

	/* how the socket comes */
	bool			 use_fd;	/* already connected fd */
	bool			 read_late;	/* EV_READ only once connected */
	int			 under_opts;	/* more socket bev options */

	/* awkward frees */
	bool			 free_on_connect;
	bool			 freed;
	const char		*early;		/* written before CONNECTED */
	char			 got[64];
	size_t			 ngot;
};

static unsigned char
pattern(size_t i)
{
	return (unsigned char)(i + (i >> 8) * 7 + (i >> 16) * 13);
}

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command built from fmt; its exit status, -1 on error. */
static int
sh(const char *fmt, ...)
{
	char	cmd[2048];
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r == -1 || !WIFEXITED(r))
		return -1;
	return WEXITSTATUS(r);
}

static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
loopback(struct sockaddr_in *sin, int port)
{
	memset(sin, 0, sizeof *sin);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* True once something accepts on 127.0.0.1:port (waits up to ~5 s). */
static bool
wait_port(int port)
{
	struct sockaddr_in	sin;
	struct timespec		ts = { 0, 50 * 1000 * 1000 };
	int			fd, i, r;

	loopback(&sin, port);
	for (i = 0; i < 100; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			return false;
		r = connect(fd, (struct sockaddr *)&sin, sizeof sin);
		close(fd);
		if (r == 0)
			return true;
		if (server_pid > 0 && waitpid(server_pid, NULL, WNOHANG) ==
		    server_pid) {
			server_pid = -1;
			return false;
		}
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Certificates, keys and the server's SPKI pin, made with openssl. */
static bool
make_certs(void)
{
	static const char *ext_server =
	    "basicConstraints=CA:FALSE\n"
	    "keyUsage=digitalSignature\n"
	    "extendedKeyUsage=serverAuth\n"
	    "subjectAltName=DNS:localhost\n";
	static const char *ext_ip =
	    "basicConstraints=CA:FALSE\n"
	    "keyUsage=digitalSignature\n"
	    "extendedKeyUsage=serverAuth\n"
	    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:ip.example\n";
	static const char *ext_client =
	    "basicConstraints=CA:FALSE\n"
	    "keyUsage=digitalSignature\n"
	    "extendedKeyUsage=clientAuth\n";
	char	 path[128];
	FILE	*f;
	size_t	 n;
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";

	if (sh("command -v openssl >/dev/null 2>&1") != 0)
		return false;
	snprintf(path, sizeof path, "%s/server.ext", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return false;
	fputs(ext_server, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/client.ext", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return false;
	fputs(ext_client, f);
	fclose(f);
	snprintf(path, sizeof path, "%s/ip.ext", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return false;
	fputs(ext_ip, f);
	fclose(f);

	if (sh("(cd %s && "
	    "openssl req -x509 %s -nodes -keyout ca.key -out ca.crt "
	    "-days 2 -subj /CN=sluice-test-ca && "
	    "openssl req -x509 %s -nodes -keyout ca2.key -out ca2.crt "
	    "-days 2 -subj /CN=sluice-other-ca && "
	    "openssl req -new %s -nodes -keyout server.key -out server.csr "
	    "-subj /CN=localhost && "
	    "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile server.ext -out server.crt && "
	    "openssl req -new %s -nodes -keyout client.key -out client.csr "
	    "-subj /CN=sluice-client && "
	    "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile client.ext -out client.crt && "
	    "openssl req -new %s -nodes -keyout ip.key -out ip.csr "
	    "-subj /CN=sluice-ip && "
	    "openssl x509 -req -in ip.csr -CA ca.crt -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile ip.ext -out ip.crt && "
	    "openssl x509 -in server.crt -pubkey -noout | "
	    "openssl pkey -pubin -outform der | "
	    "openssl dgst -sha256 -binary > server.pin"
	    ") >%s/openssl.log 2>&1", tmpdir, ec, ec, ec, ec, ec, tmpdir) != 0)
		return false;

	snprintf(path, sizeof path, "%s/server.pin", tmpdir);
	if ((f = fopen(path, "rb")) == NULL)
		return false;
	n = fread(pin_good, 1, sizeof pin_good, f);
	fclose(f);
	return n == sizeof pin_good;
}

/* stunnel4 with two echo services: plain TLS and mutual TLS. */
static bool
start_server(void)
{
	char	 conf[128], log[128];
	FILE	*f;
	int	 fd;

	if (sh("command -v stunnel4 >/dev/null 2>&1") != 0)
		return false;
	port_echo = free_port();
	port_mtls = free_port();
	port_ip = free_port();
	port_p224 = free_port();
	port_x25519 = free_port();
	if (port_echo <= 0 || port_mtls <= 0 || port_ip <= 0 ||
	    port_p224 <= 0 || port_x25519 <= 0)
		return false;

	snprintf(conf, sizeof conf, "%s/stunnel.conf", tmpdir);
	if ((f = fopen(conf, "w")) == NULL)
		return false;
	fprintf(f, "foreground = yes\npid =\ndebug = 4\n"
	    "[echo]\naccept = 127.0.0.1:%d\n"
	    "cert = %s/server.crt\nkey = %s/server.key\n"
	    "exec = /bin/cat\nexecArgs = cat\n"
	    "[mtls]\naccept = 127.0.0.1:%d\n"
	    "cert = %s/server.crt\nkey = %s/server.key\n"
	    "CAfile = %s/ca.crt\nverifyChain = yes\nrequireCert = yes\n"
	    "exec = /bin/cat\nexecArgs = cat\n",
	    port_echo, tmpdir, tmpdir, port_mtls, tmpdir, tmpdir, tmpdir);
	/* An address in the certificate; servers with one curve only. */
	fprintf(f, "[ip]\naccept = 127.0.0.1:%d\n"
	    "cert = %s/ip.crt\nkey = %s/ip.key\n"
	    "exec = /bin/cat\nexecArgs = cat\n"
	    "[p224]\naccept = 127.0.0.1:%d\ncurves = secp224r1\n"
	    "cert = %s/server.crt\nkey = %s/server.key\n"
	    "exec = /bin/cat\nexecArgs = cat\n"
	    "[x25519]\naccept = 127.0.0.1:%d\ncurves = X25519\n"
	    "cert = %s/server.crt\nkey = %s/server.key\n"
	    "exec = /bin/cat\nexecArgs = cat\n",
	    port_ip, tmpdir, tmpdir, port_p224, tmpdir, tmpdir,
	    port_x25519, tmpdir, tmpdir);
	fclose(f);

	snprintf(log, sizeof log, "%s/stunnel.log", tmpdir);
	switch ((server_pid = fork())) {
	case -1:
		return false;
	case 0:
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd != -1) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("stunnel4", "stunnel4", conf, (char *)NULL);
		_exit(127);
	}
	return wait_port(port_echo) && wait_port(port_mtls) &&
	    wait_port(port_ip) && wait_port(port_p224) &&
	    wait_port(port_x25519);
}

static void
stop_server(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
}

/* ---- the client side ---------------------------------------------------- */

static void
run_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run	*r = arg;

	(void)fd;
	(void)what;
	r->timed_out = true;
	event_base_loopexit(r->base, NULL);
}

static void
run_free_bev(struct run *r)
{
	if (r->bev != NULL) {
		bufferevent_free(r->bev);
		r->bev = NULL;
		r->freed = true;
	}
}

static void
run_sample(struct run *r)
{
	struct bufferevent	*u = bufferevent_get_underlying(r->bev);
	size_t			 n;

	if ((n = evbuffer_get_length(bufferevent_get_input(r->bev))) >
	    r->max_in)
		r->max_in = n;
	if (u == NULL)
		return;
	if ((n = evbuffer_get_length(bufferevent_get_input(u))) >
	    r->max_under_in)
		r->max_under_in = n;
	if ((n = evbuffer_get_length(bufferevent_get_output(u))) >
	    r->max_under_out)
		r->max_under_out = n;
}

/* Keep the output topped up, like a relay that respects watermarks. */
static void
run_write(struct run *r)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);
	unsigned char	 chunk[OUT_CHUNK];
	size_t		 n, i;

	while (r->sent < r->total &&
	    evbuffer_get_length(out) < 2 * OUT_LOW) {
		n = r->total - r->sent;
		if (n > sizeof chunk)
			n = sizeof chunk;
		for (i = 0; i < n; i++)
			chunk[i] = pattern(r->sent + i);
		bufferevent_write(r->bev, chunk, n);
		r->sent += n;
	}
	if (r->shut_early && r->sent == r->total && !r->shut_sent) {
		/* Half-close with output still queued; the echo goes on. */
		r->shut_sent = true;
		if (tls_bufferevent_write_flushed(r->bev))
			r->flushed_early = true;
		tls_bufferevent_shutdown_write(r->bev);
	}
	run_sample(r);
}

/* Take some input; a slow reader stops after a bit and pauses. */
static void
run_consume(struct run *r)
{
	struct evbuffer	*in = bufferevent_get_input(r->bev);
	unsigned char	 buf[1500];
	size_t		 n, i, budget;
	int		 got;

	run_sample(r);
	if (r->early != NULL) {
		got = evbuffer_remove(in, r->got + r->ngot,
		    sizeof r->got - 1 - r->ngot);
		if (got > 0)
			r->ngot += got;
		if (r->ngot >= strlen(r->early))
			event_base_loopexit(r->base, NULL);
		return;
	}
	budget = r->slow ? sizeof buf : (size_t)-1;
	while (budget > 0 && (n = evbuffer_get_length(in)) > 0) {
		if (n > sizeof buf)
			n = sizeof buf;
		got = evbuffer_remove(in, buf, n);
		if (got <= 0)
			break;
		for (i = 0; i < (size_t)got; i++) {
			if (buf[i] != pattern(r->received + i))
				r->mismatch = true;
		}
		r->received += got;
		budget -= budget < (size_t)got ? budget : (size_t)got;
	}
	if (r->received > r->total)
		r->mismatch = true;
	if (r->received >= r->total && !r->shut_sent && r->total > 0) {
		/* All echoed: half-close and wait for the server's EOF. */
		r->shut_sent = true;
		if (tls_bufferevent_write_flushed(r->bev))
			r->flushed_early = true;
		tls_bufferevent_shutdown_write(r->bev);
	}
	if (r->slow && evbuffer_get_length(in) > 0) {
		/*
		 * Pause like a relay whose other side is full: mostly for a
		 * loop turn, now and then long enough for the socket to fill.
		 */
		static const struct timeval turn = { 0, 0 };
		static const struct timeval longer = { 0, 2000 };

		bufferevent_disable(r->bev, EV_READ);
		r->pauses++;
		evtimer_add(r->resume, r->pauses % 64 == 0 ? &longer : &turn);
	}
}

static void
run_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct run	*r = arg;

	(void)fd;
	(void)what;
	if (r->bev == NULL)
		return;
	/* Resume: handle what is buffered, then read again. */
	bufferevent_enable(r->bev, EV_READ);
	run_consume(r);
}

static void
run_read_cb(struct bufferevent *bev, void *arg)
{
	struct run	*r = arg;

	(void)bev;
	if (!(bufferevent_get_enabled(r->bev) & EV_READ))
		r->mismatch = true;	/* never called while disabled */
	run_consume(r);
}

static void
run_write_cb(struct bufferevent *bev, void *arg)
{
	struct run	*r = arg;

	if (tls_bufferevent_write_flushed(bev)) {
		if (!r->shut_sent)
			r->flushed_early = true;
		r->flushed_cb = true;
		return;
	}
	run_write(r);
}

static void
run_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct run	*r = arg;
	const char	*why;

	if (what & BEV_EVENT_CONNECTED) {
		r->connected = true;
		if (r->read_late)
			bufferevent_enable(bev, EV_READ);
		if (r->free_on_connect) {
			run_free_bev(r);
			event_base_loopexit(r->base, NULL);
			return;
		}
		if (r->total > 0)
			run_write(r);
		else if (r->early == NULL)
			event_base_loopexit(r->base, NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		r->error = true;
		r->err = errno;
		why = tls_bufferevent_error(bev);
		snprintf(r->why, sizeof r->why, "%s", why ? why : "(none)");
	}
	if (what & BEV_EVENT_EOF) {
		/* A paused reader still has its input to take. */
		r->eof = true;
		r->slow = false;
		run_consume(r);
	}
	event_base_loopexit(r->base, NULL);
}

/*
 * Connect to 127.0.0.1:port through c and run the loop until the run is
 * over (or LOOP_SECONDS).  wrap_first: wrap the socket bufferevent before
 * bufferevent_socket_connect() instead of after.
 */
static void
run_connect(struct run *r, struct tls_client *c, int port, bool wrap_first)
{
	struct timeval		 tv = { LOOP_SECONDS, 0 };
	struct sockaddr_in	 sin;
	struct bufferevent	*under;

	r->base = event_base_new();
	loopback(&sin, port);
	if (r->use_fd) {
		/* A socket connected before anything else happens. */
		int	fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd == -1 || connect(fd, (struct sockaddr *)&sin,
		    sizeof sin) == -1 || evutil_make_socket_nonblocking(fd))
			abort();
		under = bufferevent_socket_new(r->base, fd,
		    BEV_OPT_CLOSE_ON_FREE | r->under_opts);
		wrap_first = false;
	} else
		under = bufferevent_socket_new(r->base, -1,
		    BEV_OPT_CLOSE_ON_FREE | r->under_opts);
	if (!wrap_first && !r->use_fd)
		bufferevent_socket_connect(under, (struct sockaddr *)&sin,
		    sizeof sin);
	r->bev = tls_bufferevent_new(c, r->base, under);
	if (r->bev == NULL)
		abort();
	if (wrap_first)
		bufferevent_socket_connect(under, (struct sockaddr *)&sin,
		    sizeof sin);
	bufferevent_setcb(r->bev, run_read_cb, run_write_cb, run_event_cb, r);
	bufferevent_enable(r->bev, r->read_late ? EV_WRITE : EV_READ|EV_WRITE);
	if (r->slow)
		bufferevent_setwatermark(r->bev, EV_READ, 0, IN_HIGH);
	bufferevent_setwatermark(r->bev, EV_WRITE, OUT_LOW, 0);
	if (r->early != NULL)
		bufferevent_write(r->bev, r->early, strlen(r->early));

	r->timer = evtimer_new(r->base, run_timer_cb, r);
	r->resume = evtimer_new(r->base, run_resume_cb, r);
	evtimer_add(r->timer, &tv);
	event_base_dispatch(r->base);
}

static void
run_done(struct run *r)
{
	run_free_bev(r);
	event_free(r->timer);
	event_free(r->resume);
	/* Let deferred callbacks and finalizers run. */
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_base_free(r->base);
}

static struct tls_client *
client(const char *ca, const char *name, bool verify,
    const unsigned char *pin, bool mtls)
{
	struct tls_options	 o;
	struct tls_client	*c;
	char			 err[TLS_ERR_MAX], cap[128], cert[128], key[128];

	memset(&o, 0, sizeof o);
	snprintf(cap, sizeof cap, "%s/%s", tmpdir, ca);
	snprintf(cert, sizeof cert, "%s/client.crt", tmpdir);
	snprintf(key, sizeof key, "%s/client.key", tmpdir);
	o.ca_file = cap;
	o.server_name = name;
	o.verify = verify;
	o.pin_sha256 = pin;
	if (mtls) {
		o.client_cert = cert;
		o.client_key = key;
	}
	c = tls_client_new(&o, "127.0.0.1", err, sizeof err);
	if (c == NULL)
		printf("tls_client_new: %s\n", err);
	return c;
}

/* A handshake only, expected to succeed or not; *r tells what happened. */
static void
handshake(struct run *r, struct tls_client *c, int port, bool want_ok)
{
	memset(r, 0, sizeof *r);
	run_connect(r, c, port, false);
	if (want_ok && !r->connected)
		printf("handshake: %s\n", r->timed_out ? "timed out" : r->why);
	run_done(r);
}

/* ---- tests against stunnel ---------------------------------------------- */

static void
test_verify(void)
{
	struct tls_client	*c;
	struct run		 r;
	unsigned char		 pin_bad[TLS_PIN_LEN];
	unsigned long		 full, resumed;

	/* Right CA and name. */
	c = client("ca.crt", "localhost", true, NULL, false);
	CHECK(c != NULL);
	handshake(&r, c, port_echo, true);
	CHECK(r.connected && !r.error && !r.timed_out);
	tls_client_stats(c, &full, &resumed);
	CHECK(full == 1 && resumed == 0);
	/* The next one resumes the session. */
	handshake(&r, c, port_echo, true);
	CHECK(r.connected && !r.error);
	tls_client_stats(c, &full, &resumed);
	CHECK(full == 1 && resumed == 1);
	tls_client_free(c);

	/* Wrong CA. */
	c = client("ca2.crt", "localhost", true, NULL, false);
	memset(&r, 0, sizeof r);
	run_connect(&r, c, port_echo, false);
	CHECK(!r.connected && r.error && !r.timed_out);
	CHECK_STR(r.why, "certificate verify failed: not trusted");
	CHECK(r.err == EPROTO);
	CHECK(tls_bufferevent_error(r.bev) != NULL);
	run_done(&r);
	tls_client_stats(c, &full, &resumed);
	CHECK(full == 0 && resumed == 0);
	tls_client_free(c);

	/* Wrong name. */
	c = client("ca.crt", "wrong.example", true, NULL, false);
	handshake(&r, c, port_echo, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "certificate verify failed: name mismatch");
	tls_client_free(c);

	/* The URL host is the name when server_name is empty. */
	c = client("ca.crt", "", true, NULL, false);
	handshake(&r, c, port_echo, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "certificate verify failed: name mismatch");
	tls_client_free(c);

	/* Pins: the right one passes, a wrong one refuses. */
	c = client("ca.crt", "localhost", true, pin_good, false);
	handshake(&r, c, port_echo, true);
	CHECK(r.connected && !r.error);
	handshake(&r, c, port_echo, true);	/* resumed, pin still checked */
	CHECK(r.connected && !r.error);
	tls_client_free(c);
	memcpy(pin_bad, pin_good, sizeof pin_bad);
	pin_bad[7] ^= 0x01;
	c = client("ca.crt", "localhost", true, pin_bad, false);
	handshake(&r, c, port_echo, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "server public key pin mismatch");
	tls_client_free(c);

	/* verify = false: wrong CA and name pass, but a pin still counts. */
	c = client("ca2.crt", "wrong.example", false, NULL, false);
	handshake(&r, c, port_echo, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
	c = client("ca2.crt", "wrong.example", false, pin_bad, false);
	handshake(&r, c, port_echo, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "server public key pin mismatch");
	tls_client_free(c);
	c = client("ca2.crt", "wrong.example", false, pin_good, false);
	handshake(&r, c, port_echo, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
}

static void
test_mtls(void)
{
	struct tls_client	*c;
	struct run		 r;

	/* The server wants a client certificate. */
	c = client("ca.crt", "localhost", true, NULL, false);
	handshake(&r, c, port_mtls, false);
	CHECK(!r.connected && r.error && !r.timed_out);
	CHECK(strncmp(r.why, "handshake: ", 11) == 0);
	tls_client_free(c);

	c = client("ca.crt", "localhost", true, NULL, true);
	CHECK(c != NULL);
	memset(&r, 0, sizeof r);
	r.early = "mutual hello";
	run_connect(&r, c, port_mtls, false);
	CHECK(r.connected && !r.error && !r.timed_out);
	CHECK(r.ngot == strlen(r.early) &&
	    memcmp(r.got, r.early, r.ngot) == 0);
	run_done(&r);
	tls_client_free(c);
}

/* A name that is an address: no SNI, the address checked by us. */
static void
test_ip_names(void)
{
	struct tls_options	 o;
	struct tls_client	*c;
	struct run		 r;
	char			 err[TLS_ERR_MAX], cap[128];

	/* iPAddress SAN 127.0.0.1: the URL host alone verifies. */
	c = client("ca.crt", "", true, NULL, false);
	handshake(&r, c, port_ip, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
	/* server_name as an address, or as the DNS name it also has. */
	c = client("ca.crt", "127.0.0.1", true, NULL, false);
	handshake(&r, c, port_ip, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
	c = client("ca.crt", "ip.example", true, NULL, false);
	handshake(&r, c, port_ip, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
	/* Another address, or the right one in the wrong family: refused. */
	c = client("ca.crt", "127.0.0.2", true, NULL, false);
	handshake(&r, c, port_ip, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "certificate verify failed: name mismatch");
	tls_client_free(c);
	c = client("ca.crt", "::ffff:127.0.0.1", true, NULL, false);
	handshake(&r, c, port_ip, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "certificate verify failed: name mismatch");
	tls_client_free(c);
	/* An address the certificate does not name, with a wrong CA too. */
	c = client("ca2.crt", "", true, NULL, false);
	handshake(&r, c, port_echo, false);
	CHECK(!r.connected && r.error);
	CHECK_STR(r.why, "certificate verify failed: name mismatch, "
	    "not trusted");
	tls_client_free(c);

	/* IPv6 host: ::1 is in the SAN, but we dial 127.0.0.1 here. */
	memset(&o, 0, sizeof o);
	snprintf(cap, sizeof cap, "%s/ca.crt", tmpdir);
	o.ca_file = cap;
	o.verify = true;
	c = tls_client_new(&o, "::1", err, sizeof err);
	CHECK(c != NULL);
	if (c != NULL) {
		handshake(&r, c, port_ip, true);
		CHECK(r.connected && !r.error);
		tls_client_free(c);
	}
}

/* Only modern groups: secp224r1 alone fails, X25519 alone works. */
static void
test_curves(void)
{
	struct tls_client	*c;
	struct run		 r;

	c = client("ca.crt", "localhost", true, NULL, false);
	handshake(&r, c, port_p224, false);
	CHECK(!r.connected && r.error && !r.timed_out);
	CHECK(strncmp(r.why, "handshake: ", 11) == 0);
	handshake(&r, c, port_x25519, true);
	CHECK(r.connected && !r.error);
	tls_client_free(c);
}

/*
 * A TCP relay in this process between the client and stunnel's echo that
 * can cut the stream toward the client with a FIN, dropping whatever
 * close_notify would follow: an attacker truncating the data.
 */
struct cutter {
	struct bufferevent	*down;		/* to the client */
	struct bufferevent	*up;		/* to stunnel */
};

static void
cutter_read_cb(struct bufferevent *bev, void *arg)
{
	struct cutter	*k = arg;

	if (bev == k->down && k->up != NULL)
		bufferevent_write_buffer(k->up, bufferevent_get_input(bev));
	else if (bev == k->up && k->down != NULL)
		bufferevent_write_buffer(k->down, bufferevent_get_input(bev));
}

static void
cutter_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct cutter		*k = arg;
	struct event_base	*base = evconnlistener_get_base(l);
	struct sockaddr_in	 sin;

	(void)sa;
	(void)salen;
	k->down = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	k->up = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	loopback(&sin, port_echo);
	bufferevent_socket_connect(k->up, (struct sockaddr *)&sin,
	    sizeof sin);
	bufferevent_setcb(k->down, cutter_read_cb, NULL, NULL, k);
	bufferevent_setcb(k->up, cutter_read_cb, NULL, NULL, k);
	bufferevent_enable(k->down, EV_READ | EV_WRITE);
	bufferevent_enable(k->up, EV_READ | EV_WRITE);
}

/* A FIN without close_notify is an error, after the data before it. */
static void
test_truncation(void)
{
	struct tls_client	*c;
	struct run		 r;
	struct cutter		 k = { NULL, NULL };
	struct timeval		 tv = { LOOP_SECONDS, 0 };
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	struct evconnlistener	*l;
	struct bufferevent	*under;

	c = client("ca.crt", "localhost", true, NULL, false);
	memset(&r, 0, sizeof r);
	r.base = event_base_new();
	loopback(&sin, 0);
	l = evconnlistener_new_bind(r.base, cutter_accept_cb, &k,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
	    (struct sockaddr *)&sin, sizeof sin);
	if (l == NULL)
		abort();
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);
	under = bufferevent_socket_new(r.base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_socket_connect(under, (struct sockaddr *)&sin, sizeof sin);
	r.bev = tls_bufferevent_new(c, r.base, under);
	bufferevent_setcb(r.bev, run_read_cb, run_write_cb, run_event_cb, &r);
	bufferevent_enable(r.bev, EV_READ | EV_WRITE);
	r.early = "data before the cut";
	bufferevent_write(r.bev, r.early, strlen(r.early));
	r.timer = evtimer_new(r.base, run_timer_cb, &r);
	r.resume = evtimer_new(r.base, run_resume_cb, &r);
	evtimer_add(r.timer, &tv);
	event_base_dispatch(r.base);	/* until the echo is in */
	CHECK(r.connected && !r.error && !r.eof && !r.timed_out);
	CHECK(r.ngot == strlen(r.early));

	/* Cut: FIN toward the client, nothing more from stunnel. */
	CHECK(k.down != NULL && k.up != NULL);
	if (k.down != NULL && k.up != NULL) {
		bufferevent_free(k.up);
		k.up = NULL;
		shutdown(bufferevent_getfd(k.down), SHUT_WR);
		event_base_dispatch(r.base);
	}
	CHECK(r.error && !r.eof && !r.timed_out);
	CHECK_STR(r.why, "connection closed without close_notify (truncated)");
	CHECK(r.err == ECONNRESET);
	CHECK(strcmp(r.got, r.early) == 0);
	if (k.down != NULL)
		bufferevent_free(k.down);
	evconnlistener_free(l);
	run_done(&r);
	tls_client_free(c);
}

/* Echo total bytes; slow: small watermarks and a reader that pauses. */
static void
echo(struct tls_client *c, size_t total, bool slow, bool wrap_first,
    bool shut_early, int under_opts)
{
	struct run	r;
	struct timespec	t0, t1;
	double		secs;

	memset(&r, 0, sizeof r);
	r.total = total;
	r.slow = slow;
	r.shut_early = shut_early;
	r.under_opts = under_opts;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_connect(&r, c, port_echo, wrap_first);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

	CHECK(r.connected && !r.error && !r.timed_out);
	if (r.error || r.timed_out)
		printf("  echo: %s, sent %zu received %zu\n",
		    r.timed_out ? "timed out" : r.why, r.sent, r.received);
	CHECK(r.sent == total);
	CHECK(r.received == total);
	CHECK(!r.mismatch);
	CHECK(r.shut_sent && r.eof);	/* the server closed after us */
	/* The write callback told us the close_notify and FIN went out. */
	CHECK(r.flushed_cb && !r.flushed_early);
	CHECK(tls_bufferevent_write_flushed(r.bev));
	/* Bounded buffers all along. */
	if (slow) {
		CHECK(r.max_in <= IN_HIGH);
		CHECK(total < 1024 * 1024 || r.pauses > 100);
	}
	CHECK(r.max_under_in <= 64 * 1024 + 16 * 1024);
	CHECK(r.max_under_out <= TLS_OUT_HIGH + 17 * 1024);
	printf("  echo %zu bytes%s%s%s: %.2f s, max input %zu, socket in %zu "
	    "out %zu, %u pauses\n", total, slow ? " (slow reader)" : "",
	    shut_early ? " (early half-close)" : "",
	    under_opts ? " (deferred socket)" : "", secs, r.max_in,
	    r.max_under_in, r.max_under_out, r.pauses);
	run_done(&r);
}

static void
test_echo(void)
{
	struct tls_client	*c;
	unsigned long		 full, resumed;

	c = client("ca.crt", "localhost", true, pin_good, false);
	echo(c, ECHO_BYTES, false, false, false, 0);
	echo(c, ECHO_BYTES, true, true, false, 0);
	echo(c, ECHO_BYTES / 4, true, false, true, 0);
	echo(c, ECHO_BYTES / 4, true, false, true, BEV_OPT_DEFER_CALLBACKS);
	echo(c, 1, true, false, false, 0);
	tls_client_stats(c, &full, &resumed);
	CHECK(full == 1 && resumed == 4);
	tls_client_free(c);
}

static void
test_lifetimes(void)
{
	struct tls_client	*c;
	struct run		 r;

	c = client("ca.crt", "localhost", true, NULL, false);

	/* Data written before the handshake goes out after it. */
	memset(&r, 0, sizeof r);
	r.early = "written before the handshake";
	run_connect(&r, c, port_echo, true);
	CHECK(r.connected && !r.error && !r.timed_out);
	CHECK(r.ngot == strlen(r.early) &&
	    memcmp(r.got, r.early, r.ngot) == 0);
	run_done(&r);

	/*
	 * An fd connected beforehand (the handshake starts at once), and a
	 * user that enables EV_READ only once connected.
	 */
	memset(&r, 0, sizeof r);
	r.early = "already connected";
	r.use_fd = true;
	r.read_late = true;
	run_connect(&r, c, port_echo, false);
	CHECK(r.connected && !r.error && !r.timed_out);
	CHECK(r.ngot == strlen(r.early) &&
	    memcmp(r.got, r.early, r.ngot) == 0);
	run_done(&r);

	/* Freed from inside the CONNECTED callback. */
	memset(&r, 0, sizeof r);
	r.free_on_connect = true;
	run_connect(&r, c, port_echo, false);
	CHECK(r.connected && r.freed && !r.timed_out);
	run_done(&r);

	/* Freed in the middle of the handshake; client freed first. */
	memset(&r, 0, sizeof r);
	r.base = event_base_new();
	{
		struct sockaddr_in	 sin;
		struct bufferevent	*under;

		under = bufferevent_socket_new(r.base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
		loopback(&sin, port_echo);
		bufferevent_socket_connect(under, (struct sockaddr *)&sin,
		    sizeof sin);
		r.bev = tls_bufferevent_new(c, r.base, under);
		CHECK(r.bev != NULL && tls_bufferevent_is_tls(r.bev));
		CHECK(tls_bufferevent_error(r.bev) == NULL);
		tls_client_free(c);	/* r.bev keeps it alive */
		c = NULL;
		event_base_loop(r.base, EVLOOP_ONCE);	/* connected */
		r.timer = evtimer_new(r.base, run_timer_cb, &r);
		r.resume = evtimer_new(r.base, run_resume_cb, &r);
		run_done(&r);
	}
}

/* ---- tests with peers in this process ----------------------------------- */

static void
garbage_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	static const char	msg[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	int			*keep = arg;

	(void)l;
	(void)sa;
	(void)salen;
	if (write(fd, msg, sizeof msg - 1) == -1)
		printf("garbage write: %s\n", strerror(errno));
	*keep = fd;	/* closed at the end, so no RST races the text */
}

static void
closer_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* Read the ClientHello first, so closing sends a FIN, not a RST. */
	bufferevent_free(bev);
}

static void
closer_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent	*bev;

	(void)sa;
	(void)salen;
	(void)arg;
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, closer_read_cb, NULL, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

/* What the ClientHello said about SNI: -1 not seen yet, 0 none, 1 sent. */
static int	hello_sni = -1;
static char	hello_name[256];

/* Find the server_name extension in a ClientHello record; see RFC 6066. */
static void
hello_parse(const unsigned char *p, size_t n)
{
	size_t	off, end, len, type, elen;

	/* record(5) handshake(4) version(2) random(32) */
	if (n < 5 + 4 + 2 + 32 + 1 || p[0] != 0x16 || p[5] != 0x01)
		return;
	off = 5 + 4 + 2 + 32;
	off += 1 + p[off];				/* session id */
	if (off + 2 > n)
		return;
	off += 2 + (size_t)(p[off] << 8 | p[off + 1]);	/* cipher suites */
	if (off + 1 > n)
		return;
	off += 1 + p[off];				/* compression */
	if (off + 2 > n)
		return;
	end = off + 2 + (size_t)(p[off] << 8 | p[off + 1]);
	off += 2;
	if (end > n)
		return;
	hello_sni = 0;
	while (off + 4 <= end) {
		type = (size_t)(p[off] << 8 | p[off + 1]);
		elen = (size_t)(p[off + 2] << 8 | p[off + 3]);
		off += 4;
		if (off + elen > end)
			return;
		/* list len(2), type(1), name len(2), name */
		if (type == 0 && elen >= 5) {
			hello_sni = 1;
			len = (size_t)(p[off + 3] << 8 | p[off + 4]);
			if (len < sizeof hello_name && 5 + len <= elen) {
				memcpy(hello_name, p + off + 5, len);
				hello_name[len] = '\0';
			}
		}
		off += elen;
	}
}

static void
hello_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	unsigned char	*p;
	size_t		 n = evbuffer_get_length(in);

	(void)arg;
	if (n < 5)
		return;
	p = evbuffer_pullup(in, 5);
	if (n < 5 + (size_t)(p[3] << 8 | p[4]))
		return;
	p = evbuffer_pullup(in, -1);
	hello_parse(p, n);
	bufferevent_free(bev);
}

static void
hello_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct bufferevent	*bev;

	(void)sa;
	(void)salen;
	(void)arg;
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, hello_read_cb, NULL, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
}

/* Run a handshake against an in-process listener with callback cb. */
static void
local_peer(evconnlistener_cb cb, struct run *r, struct tls_client *c)
{
	struct timeval		 tv = { LOOP_SECONDS, 0 };
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	struct evconnlistener	*l;
	struct bufferevent	*under;
	int			 keep = -1;

	memset(r, 0, sizeof *r);
	r->base = event_base_new();
	loopback(&sin, 0);
	l = evconnlistener_new_bind(r->base, cb, &keep,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
	    (struct sockaddr *)&sin, sizeof sin);
	if (l == NULL)
		abort();
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);

	under = bufferevent_socket_new(r->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_socket_connect(under, (struct sockaddr *)&sin, sizeof sin);
	r->bev = tls_bufferevent_new(c, r->base, under);
	bufferevent_setcb(r->bev, run_read_cb, run_write_cb, run_event_cb, r);
	r->timer = evtimer_new(r->base, run_timer_cb, r);
	r->resume = evtimer_new(r->base, run_resume_cb, r);
	evtimer_add(r->timer, &tv);
	event_base_dispatch(r->base);
	evconnlistener_free(l);
	run_done(r);
	if (keep != -1)
		close(keep);
}

static void
test_local_peers(void)
{
	struct tls_options	 o;
	struct tls_client	*c;
	struct run		 r;
	struct timeval		 tv = { LOOP_SECONDS, 0 };
	struct sockaddr_in	 sin;
	struct bufferevent	*under, *plain;
	char			 err[TLS_ERR_MAX];
	int			 port;

	memset(&o, 0, sizeof o);
	o.verify = false;
	c = tls_client_new(&o, "localhost", err, sizeof err);
	CHECK(c != NULL);
	if (c == NULL)
		return;

	local_peer(garbage_accept_cb, &r, c);
	CHECK(r.error && !r.connected && !r.timed_out);
	CHECK_STR(r.why, "handshake: not a TLS server");

	local_peer(closer_accept_cb, &r, c);
	CHECK(r.error && !r.connected && !r.timed_out);
	CHECK_STR(r.why, "handshake: connection closed by peer");

	/* SNI: a host name is sent, an address is not. */
	tls_client_free(c);
	c = tls_client_new(&o, "127.0.0.1", err, sizeof err);
	hello_sni = -1;
	local_peer(hello_accept_cb, &r, c);
	CHECK(hello_sni == 0);
	tls_client_free(c);
	c = tls_client_new(&o, "2001:db8::1", err, sizeof err);
	hello_sni = -1;
	local_peer(hello_accept_cb, &r, c);
	CHECK(hello_sni == 0);
	tls_client_free(c);
	o.server_name = "proxy.example";
	c = tls_client_new(&o, "127.0.0.1", err, sizeof err);
	hello_sni = -1;
	local_peer(hello_accept_cb, &r, c);
	CHECK(hello_sni == 1);
	CHECK_STR(hello_name, "proxy.example");
	tls_client_free(c);
	o.server_name = NULL;
	c = tls_client_new(&o, "localhost", err, sizeof err);
	hello_sni = -1;
	local_peer(hello_accept_cb, &r, c);
	CHECK(hello_sni == 1);
	CHECK_STR(hello_name, "localhost");

	/* Nobody listening: a connect error with errno kept. */
	port = free_port();
	memset(&r, 0, sizeof r);
	r.base = event_base_new();
	under = bufferevent_socket_new(r.base, -1, BEV_OPT_CLOSE_ON_FREE);
	loopback(&sin, port);
	r.bev = tls_bufferevent_new(c, r.base, under);
	bufferevent_socket_connect(under, (struct sockaddr *)&sin, sizeof sin);
	bufferevent_setcb(r.bev, run_read_cb, run_write_cb, run_event_cb, &r);
	r.timer = evtimer_new(r.base, run_timer_cb, &r);
	r.resume = evtimer_new(r.base, run_resume_cb, &r);
	evtimer_add(r.timer, &tv);
	event_base_dispatch(r.base);
	CHECK(r.error && !r.timed_out);
	CHECK(r.err == ECONNREFUSED);
	CHECK(strncmp(r.why, "connect: ", 9) == 0);
	run_done(&r);

	/* A plain bufferevent is not ours. */
	r.base = event_base_new();
	plain = bufferevent_socket_new(r.base, -1, BEV_OPT_CLOSE_ON_FREE);
	CHECK(!tls_bufferevent_is_tls(plain));
	CHECK(tls_bufferevent_error(plain) == NULL);
	tls_bufferevent_shutdown_write(plain);	/* harmless */
	bufferevent_free(plain);
	event_base_free(r.base);

	tls_client_free(c);
	tls_client_free(NULL);
}

static void
test_client_new(void)
{
	struct tls_options	 o;
	struct tls_client	*c;
	char			 err[TLS_ERR_MAX], p1[128], p2[128];

	memset(&o, 0, sizeof o);
	o.verify = true;
	o.ca_file = "/nonexistent/ca.pem";
	err[0] = '\0';
	c = tls_client_new(&o, "localhost", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strncmp(err, "ca_file /nonexistent/ca.pem: ", 29) == 0);

	o.verify = false;
	c = tls_client_new(&o, "", err, sizeof err);
	CHECK(c == NULL);
	CHECK_STR(err, "tls: no server name");

	o.client_cert = "/x.crt";
	c = tls_client_new(&o, "localhost", err, sizeof err);
	CHECK(c == NULL);
	CHECK_STR(err, "tls: client_cert and client_key go together");

	/* The system bundle, when this machine has one. */
	if (access(TLS_SYSTEM_CA, R_OK) == 0) {
		memset(&o, 0, sizeof o);
		o.verify = true;
		c = tls_client_new(&o, "example.org", err, sizeof err);
		CHECK(c != NULL);
		tls_client_free(c);
	} else
		skipped++;

	if (!certs_ok)
		return;
	/* A key that does not belong to the certificate. */
	memset(&o, 0, sizeof o);
	snprintf(p1, sizeof p1, "%s/client.crt", tmpdir);
	snprintf(p2, sizeof p2, "%s/server.key", tmpdir);
	o.client_cert = p1;
	o.client_key = p2;
	c = tls_client_new(&o, "localhost", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strstr(err, "does not match") != NULL);
	snprintf(p2, sizeof p2, "%s/client.crt", tmpdir);
	o.client_key = p2;		/* not a key at all */
	c = tls_client_new(&o, "localhost", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strncmp(err, "client_key ", 11) == 0);
}

static int
cleanup_one(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		printf("remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void
cleanup(void)
{
	stop_server();
	if (tmpdir[0] != '\0' && strncmp(tmpdir, "/tmp/sluice-tls-", 16) == 0)
		nftw(tmpdir, cleanup_one, 8, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	const char	*dbg = getenv("TEST_TLS_DEBUG");
	bool		 have_server = false;

	log_init(dbg != NULL && *dbg != '\0' ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_ERROR);
	signal(SIGPIPE, SIG_IGN);

	snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-tls-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		tmpdir[0] = '\0';
	else if (!(certs_ok = make_certs()))
		printf("skip: cannot make certificates with openssl\n");
	else if (!start_server())
		printf("skip: cannot start stunnel4 (see %s/stunnel.log)\n",
		    tmpdir);
	else
		have_server = true;

	test_client_new();
	test_local_peers();
	if (have_server) {
		test_verify();
		test_mtls();
		test_echo();
		test_lifetimes();
		test_ip_names();
		test_curves();
		test_truncation();
	} else
		skipped += 7;	/* the seven server test groups */

	cleanup();
	if (skipped > 0)
		printf("test_tls: %d skipped\n", skipped);
	return check_summary("test_tls");
}
