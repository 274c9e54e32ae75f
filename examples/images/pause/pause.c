/*
 * pause: the infra process of a pod that shares a PID namespace.
 *
 * It does nothing, quietly, until asked to stop:
 *   - SIGINT or SIGTERM: exit 0.
 *   - SIGCHLD: reap every exited child (as PID 1 of a namespace it inherits
 *     the namespace's orphans and must not let them stay zombies).
 * It prints nothing and takes no arguments.
 *
 * The signals are blocked and collected with sigwaitinfo(2) rather than
 * handled asynchronously: as PID 1 the kernel drops signals whose disposition
 * is the default, but never drops a blocked signal, so this works both as
 * PID 1 and as an ordinary process.
 *
 * Built by examples/images: gcc -static -Os -s -Wl,--build-id=none.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static void reap(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0)
			continue;
		if (pid < 0 && errno == EINTR)
			continue;
		return; /* 0: children still running; -1/ECHILD: none left */
	}
}

int main(void)
{
	sigset_t set;

	/* Start from the default dispositions whatever the parent left us
	 * (e.g. SIG_IGN from nohup). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return 1;

	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		switch (sig) {
		case SIGINT:
		case SIGTERM:
			return 0;
		case SIGCHLD:
			reap();
			break;
		default: /* -1 with EINTR (e.g. after SIGSTOP/SIGCONT): wait again */
			break;
		}
	}
}
