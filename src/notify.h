/*
 * notify.h - readiness and status for a service manager: the sd_notify(3)
 * protocol, a datagram of "KEY=value" lines to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace).  Without
 * that variable (not started by systemd with Type=notify) nothing is sent.
 */
#ifndef SLUICE_NOTIFY_H
#define SLUICE_NOTIFY_H

#include <stdint.h>

/*
 * Send one message, e.g. "READY=1\nSTATUS=relaying".  0 when sent or
 * when there is no $NOTIFY_SOCKET; -1 if sending failed (not logged).
 */
int		notify_send(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));
/*
 * The watchdog interval systemd asks for (WatchdogSec=, through
 * $WATCHDOG_USEC for this PID), in microseconds; 0 when none.
 */
uint64_t	notify_watchdog_usec(void);

#endif
