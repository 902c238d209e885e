/*
 * log.c - leveled logging to stderr, with libevent's messages folded in.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "fnv.h"
#include "log.h"

enum log_level log_level_current = LOG_LEVEL_INFO;

static const char *const log_names[] = { "debug", "info", "warn", "error" };
static char log_tag[32];	/* "worker 1: ", or empty */

void
log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s%s", tag != NULL ? tag : "",
	    tag != NULL && tag[0] != '\0' ? ": " : "");
}

/* libevent's internal messages go through our levels. */
static void
log_libevent_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	case EVENT_LOG_WARN:
		log_warnx("libevent: %s", msg);
		break;
	default:
		log_errorx("libevent: %s", msg);
		break;
	}
}

void
log_init(enum log_level level)
{
	log_level_current = level;
	event_set_log_callback(log_libevent_cb);
}

bool
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return true;
	}
	return false;
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level < sizeof(log_names) / sizeof(log_names[0]))
		return log_names[level];
	return "?";
}

static void __attribute__((format(printf, 3, 0)))
log_vemit(enum log_level level, bool with_errno, const char *fmt, va_list ap)
{
	char msg[2048];
	int saved = errno;
	struct timespec ts;
	struct tm tm;
	char stamp[32];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	if (with_errno)
		fprintf(stderr, "%s.%03ld %s: %s%s: %s\n", stamp,
		    ts.tv_nsec / 1000000, log_level_name(level), log_tag, msg,
		    strerror(saved));
	else
		fprintf(stderr, "%s.%03ld %s: %s%s\n", stamp,
		    ts.tv_nsec / 1000000, log_level_name(level), log_tag, msg);
	errno = saved;
}

void
log_emit(enum log_level level, bool with_errno, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(level, with_errno, fmt, ap);
	va_end(ap);
}

bool
log_limit_pass(struct log_limit *l, unsigned long *suppressed)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	if (ts.tv_sec >= l->until) {
		l->until = ts.tv_sec + LOG_LIMIT_INTERVAL;
		l->burst = 0;
	}
	if (l->burst >= LOG_LIMIT_BURST) {
		l->suppressed++;
		return false;
	}
	l->burst++;
	*suppressed = l->suppressed;
	l->suppressed = 0;
	return true;
}

struct log_limit *
log_limit_key(const char *s)
{
	static struct log_limit slots[32];
	uint32_t h = fnv1a(FNV1A_INIT, s, s != NULL ? strlen(s) : 0);

	return &slots[h % (sizeof(slots) / sizeof(slots[0]))];
}

void
log_emit_limited(struct log_limit *l, enum log_level level, bool with_errno,
    const char *fmt, ...)
{
	unsigned long n;
	va_list ap;
	char msg[2048];
	int saved = errno;

	if (l == NULL)
		n = 0;
	else if (!log_limit_pass(l, &n))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errno = saved;
	if (n > 0)
		log_emit(level, with_errno, "%s (%lu similar suppressed)", msg, n);
	else
		log_emit(level, with_errno, "%s", msg);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, true, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit(LOG_LEVEL_ERROR, false, fmt, ap);
	va_end(ap);
	exit(1);
}
