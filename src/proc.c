/*
 * proc.c - hooks and the privilege drop (see proc.h).
 *
 * The drop follows the usual order: keep capabilities across the uid
 * change (PR_SET_KEEPCAPS), set the groups, then the gid and the uid
 * (real, effective and saved, so that there is no way back), then set
 * exactly the capabilities to keep (libcap), raise them as ambient for
 * the hooks, and set no_new_privs so that nothing exec'd gains more.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/capability.h>

#include "log.h"
#include "proc.h"

int
proc_run_hook(const char *what, const char *cmd, char *const env[],
    unsigned timeout_ms)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	unsigned waited = 0;
	pid_t pid, r;
	int status, i;

	if ((pid = fork()) == -1) {
		log_warn("hook %s: fork", what);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;

		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		/* the daemon takes its signals from a signalfd */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (i = 0; env != NULL && env[i] != NULL; i++)
			putenv(env[i]);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r == -1 && errno != EINTR) {
			log_warn("hook %s: waitpid", what);
			return -1;
		}
		if (waited >= timeout_ms) {
			log_warnx("hook %s: still running after %u ms: killed",
			    what, timeout_ms);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
				;
			return -1;
		}
		nanosleep(&tick, NULL);
		waited += 10;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("hook %s: done", what);
		return 0;
	}
	if (WIFEXITED(status))
		log_warnx("hook %s: `%s' exited %d", what, cmd,
		    WEXITSTATUS(status));
	else
		log_warnx("hook %s: `%s' killed by signal %d", what, cmd,
		    WTERMSIG(status));
	return -1;
}

int
proc_drop(const char *user, const char *group, bool net_admin, bool net_raw,
    char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;
	cap_value_t keep[2];
	cap_t caps = NULL;
	uid_t uid;
	gid_t gid;
	int n = 0, i;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user %s: %s", user, errno ?
		    strerror(errno) : "no such user");
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (group != NULL && group[0] != '\0') {
		errno = 0;
		if ((gr = getgrnam(group)) == NULL) {
			snprintf(err, errlen, "group %s: %s", group, errno ?
			    strerror(errno) : "no such group");
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (net_admin)
		keep[n++] = CAP_NET_ADMIN;
	if (net_raw)
		keep[n++] = CAP_NET_RAW;

	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1 ||
	    setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "switching to %s:%u: %s%s", user,
		    (unsigned)gid, strerror(errno), errno == EPERM ?
		    " (only root, or CAP_SETUID and CAP_SETGID, may)" : "");
		return -1;
	}
	if ((caps = cap_init()) == NULL ||
	    (n > 0 && (cap_set_flag(caps, CAP_PERMITTED, n, keep,
	    CAP_SET) == -1 || cap_set_flag(caps, CAP_EFFECTIVE, n, keep,
	    CAP_SET) == -1 || cap_set_flag(caps, CAP_INHERITABLE, n, keep,
	    CAP_SET) == -1)) || cap_set_proc(caps) == -1) {
		snprintf(err, errlen, "capabilities: %s", strerror(errno));
		cap_free(caps);
		return -1;
	}
	cap_free(caps);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (i = 0; i < n; i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, keep[i], 0,
		    0) == -1)
			log_debug("ambient capability %d: %s", (int)keep[i],
			    strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "prctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}
