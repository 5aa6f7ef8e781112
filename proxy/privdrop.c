/*
 * Least privilege: after binding, drop to --user (keeping the group that
 * may reach the engine socket), forbid new privileges, and apply the
 * sandbox picked at configure time (seccomp filter or none).
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_SECCOMP
#include <seccomp.h>
#endif

#include "proxy.h"

/* Resolve USER now, while /etc/passwd is readable. */
int
privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd	*pw;
	char		*end;
	unsigned long	 v;

	if ((pw = getpwnam(user)) != NULL) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		return 0;
	}
	errno = 0;
	v = strtoul(user, &end, 10);
	if (*user != '\0' && *end == '\0' && errno == 0 && v != 0) {
		*uid = (uid_t)v;
		*gid = (gid_t)v;
		return 0;
	}
	snprintf(err, errlen, "--user %s: no such user", user);
	return -1;
}

/*
 * Become uid/gid for good. The supplementary groups are the user's primary
 * group and the group of the engine's unix socket, so the engine stays
 * reachable.
 */
int
privdrop_apply(uid_t uid, gid_t gid, const char *engine_sock, char *err,
    size_t errlen)
{
	gid_t		 groups[2];
	int		 ngroups = 0;
	struct stat	 st;

	groups[ngroups++] = gid;
	if (engine_sock != NULL && stat(engine_sock, &st) == 0 &&
	    st.st_gid != gid)
		groups[ngroups++] = st.st_gid;
	if (setgroups((size_t)ngroups, groups) == -1 ||
	    setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "cannot drop privileges to %u:%u: %s",
		    (unsigned)uid, (unsigned)gid, strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "privileges could be regained");
		return -1;
	}
	return 0;
}

/* No new privileges, then the seccomp filter where the build has one. */
int
privdrop_sandbox(char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s",
		    strerror(errno));
		return -1;
	}
#if defined(HAVE_SECCOMP) && !defined(DOCKGATE_SANITIZERS)
	{
		static const int allowed[] = {
			SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv),
			SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(close),
			SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg),
			SCMP_SYS(sendmsg), SCMP_SYS(accept), SCMP_SYS(accept4),
			SCMP_SYS(socket), SCMP_SYS(connect), SCMP_SYS(shutdown),
			SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
			SCMP_SYS(getsockname), SCMP_SYS(getpeername),
			SCMP_SYS(bind), SCMP_SYS(listen),
			SCMP_SYS(epoll_create), SCMP_SYS(epoll_create1),
			SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
			SCMP_SYS(epoll_pwait), SCMP_SYS(poll), SCMP_SYS(ppoll),
			SCMP_SYS(select), SCMP_SYS(pselect6),
			SCMP_SYS(fcntl), SCMP_SYS(ioctl), SCMP_SYS(pipe),
			SCMP_SYS(pipe2), SCMP_SYS(eventfd2), SCMP_SYS(dup),
			SCMP_SYS(dup2), SCMP_SYS(dup3),
			SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
			SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
			SCMP_SYS(time), SCMP_SYS(brk), SCMP_SYS(mmap),
			SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
			SCMP_SYS(mprotect), SCMP_SYS(open), SCMP_SYS(openat),
			SCMP_SYS(stat), SCMP_SYS(fstat), SCMP_SYS(lstat),
			SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(lseek),
			SCMP_SYS(access), SCMP_SYS(faccessat),
			SCMP_SYS(faccessat2), SCMP_SYS(readlink),
			SCMP_SYS(readlinkat), SCMP_SYS(getdents64),
			SCMP_SYS(getcwd), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
			SCMP_SYS(umask), SCMP_SYS(chmod), SCMP_SYS(fchmod),
			SCMP_SYS(exit), SCMP_SYS(exit_group),
			SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
			SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
			SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid),
			SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
			SCMP_SYS(tgkill), SCMP_SYS(kill), SCMP_SYS(getrandom),
			SCMP_SYS(futex), SCMP_SYS(sched_yield),
			SCMP_SYS(sched_getaffinity), SCMP_SYS(uname),
			SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
			SCMP_SYS(restart_syscall), SCMP_SYS(sysinfo),
			SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
			SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
		};
		scmp_filter_ctx	 ctx;
		size_t		 i;
		int		 rv = 0;

		/* Anything else fails with EPERM rather than killing. */
		if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL) {
			snprintf(err, errlen, "seccomp_init failed");
			return -1;
		}
		for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]) &&
		    rv == 0; i++)
			if (allowed[i] >= 0)
				rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
				    allowed[i], 0);
		if (rv == 0)
			rv = seccomp_load(ctx);
		seccomp_release(ctx);
		if (rv != 0) {
			snprintf(err, errlen, "seccomp: %s", strerror(-rv));
			return -1;
		}
	}
#endif
	return 0;
}
