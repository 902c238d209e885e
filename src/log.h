/*
 * log.h - leveled logging to stderr.
 *
 * The level is checked before the arguments are evaluated, so a debug line
 * on the data path costs one compare when debug logging is off.  Messages
 * are lowercase, no trailing period, "what: why".  Never log credentials.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

extern enum log_level log_level_current;

/* Set the threshold and route libevent's own messages into our log. */
void log_init(enum log_level level);
/* Put "tag: " before every message (a worker's number); NULL: none. */
void log_set_tag(const char *tag);
/* Parse "debug|info|warn|error"; false when unknown. */
bool log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

void log_emit(enum log_level level, bool with_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#define log_at(lvl, errno_, ...) do {					\
	if ((lvl) >= log_level_current)					\
		log_emit((lvl), (errno_), __VA_ARGS__);			\
} while (0)

/*
 * Rate limiting for messages that can repeat per flow or per packet: at
 * most LOG_LIMIT_BURST lines per limiter per LOG_LIMIT_INTERVAL seconds;
 * the next line that goes out says how many were suppressed meanwhile.  A limiter is usually
 * a static at the call site (one per reason); log_limit_key() hands out
 * one of a small set by reason text, for messages whose reason varies.
 */
#define LOG_LIMIT_INTERVAL	10
#define LOG_LIMIT_BURST		5

struct log_limit {
	long		until;		/* end of this interval, monotonic s */
	unsigned	burst;		/* lines out in this interval */
	unsigned long	suppressed;
};

/* True when a line may go out now; *suppressed gets the count to report. */
bool log_limit_pass(struct log_limit *l, unsigned long *suppressed);
/* A shared limiter for the reason text s (hashed into a few slots). */
struct log_limit *log_limit_key(const char *s);

/* One line through limiter l; l NULL: no limit. */
void log_emit_limited(struct log_limit *l, enum log_level level,
    bool with_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_at_limited(lim, lvl, errno_, ...) do {			\
	if ((lvl) >= log_level_current)					\
		log_emit_limited((lim), (lvl), (errno_), __VA_ARGS__);	\
} while (0)
/* One static limiter per call site. */
#define log_warnx_rl(...) do {						\
	static struct log_limit log_rl_;				\
	log_at_limited(&log_rl_, LOG_LEVEL_WARN, false, __VA_ARGS__);	\
} while (0)
#define log_warn_rl(...) do {						\
	static struct log_limit log_rl_;				\
	log_at_limited(&log_rl_, LOG_LEVEL_WARN, true, __VA_ARGS__);	\
} while (0)
#define log_info_rl(...) do {						\
	static struct log_limit log_rl_;				\
	log_at_limited(&log_rl_, LOG_LEVEL_INFO, false, __VA_ARGS__);	\
} while (0)

#define log_debug(...)	log_at(LOG_LEVEL_DEBUG, false, __VA_ARGS__)
#define log_info(...)	log_at(LOG_LEVEL_INFO, false, __VA_ARGS__)
#define log_warnx(...)	log_at(LOG_LEVEL_WARN, false, __VA_ARGS__)
/* log_warn appends ": <strerror(errno)>" */
#define log_warn(...)	log_at(LOG_LEVEL_WARN, true, __VA_ARGS__)
#define log_errorx(...)	log_at(LOG_LEVEL_ERROR, false, __VA_ARGS__)
#define log_error(...)	log_at(LOG_LEVEL_ERROR, true, __VA_ARGS__)

#endif
