/*
 * proc.h - what sluice does as a process on the system: run the
 * [route] up and down hooks, and give up root for [process] user and
 * group, keeping only the capabilities it still needs.
 */
#ifndef SLUICE_PROC_H
#define SLUICE_PROC_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Run cmd with /bin/sh -c, its environment ours plus the NULL-ended
 * "NAME=value" strings of env, and wait for it, at most timeout_ms (then
 * its process group is killed).  what names it in logs ("up").  0 when it
 * exited 0, else -1 (logged).
 */
int	proc_run_hook(const char *what, const char *cmd, char *const env[],
	    unsigned timeout_ms);

/*
 * Become user (and group, or the user's own group when NULL or "")
 * with no supplementary groups, keeping CAP_NET_ADMIN (net_admin) and
 * CAP_NET_RAW (net_raw) and no other capability, also as ambient ones
 * so that hooks run later get them; then no_new_privs.  -1 with err.
 */
int	proc_drop(const char *user, const char *group, bool net_admin,
	    bool net_raw, char *err, size_t errlen);

#endif
