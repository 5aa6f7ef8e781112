/*
 * Logging in the relayd style: log_warn appends strerror(errno), log_warnx
 * does not; fatal and fatalx log and exit. Lines go to stderr (the service
 * manager's journal) or syslog.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "proxy.h"

static int	 log_to_syslog;
static int	 log_verbose;

static void	 log_escape(char *, size_t);
static void	 vlog(int, const char *, va_list, int)
		    __attribute__((format(printf, 2, 0)));

/* Choose the destination and verbosity. */
void
log_init(int use_syslog, int verbose)
{
	log_to_syslog = use_syslog;
	log_verbose = verbose;
	if (use_syslog)
		openlog("dockgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/*
 * Make a message one printable line: paths and reasons come from clients,
 * and a decoded %0A must not forge a log line (nor %1B drive a terminal).
 */
static void
log_escape(char *msg, size_t size)
{
	char	 out[2048];
	size_t	 i, o = 0;

	for (i = 0; msg[i] != '\0' && o + 5 < sizeof(out); i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, sizeof(out) - o,
			    "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	snprintf(msg, size, "%s", out);
}

/* Write one line at a priority, with strerror(errno) when asked. */
static void
vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
	char		 msg[2048];
	int		 saved = errno;
	static const char *const pname[] = {
		"emerg", "alert", "crit", "error", "warning", "notice",
		"info", "debug"
	};

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		size_t n = strlen(msg);

		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(saved));
	}
	log_escape(msg, sizeof(msg));
	if (log_to_syslog)
		syslog(pri, "%s", msg);
	else
		fprintf(stderr, "dockgate: %s: %s\n", pname[pri & 7], msg);
	errno = saved;
}

/* A warning with the current errno. */
void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 1);
	va_end(ap);
}

/* A warning. */
void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, 0);
	va_end(ap);
}

/* An informational line (shown with -v). */
void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, 0);
	va_end(ap);
}

/* A debugging line (shown with -vv). */
void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 2)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, 0);
	va_end(ap);
}

/* Log with errno and exit. */
void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

/* Log and exit. */
void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(1);
}
