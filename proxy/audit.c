/*
 * The audit log: one JSON line per decided request, written when it ends.
 * Registry credentials never reach it: no request header is logged.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "proxy.h"

static char	*audit_path;
static int	 audit_fd = -1;
static uint64_t	 audit_failures;

/* Open the audit destination ("-" is stdout). */
int
audit_open(const char *path, char *err, size_t errlen)
{
	int	 fd;

	if (strcmp(path, "-") == 0)
		fd = STDOUT_FILENO;
	else if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	free(audit_path);
	audit_path = strdup(path);
	audit_fd = fd;
	return 0;
}

/* SIGHUP: reopen the file (log rotation); keep the old one on failure. */
void
audit_reopen(void)
{
	int	 fd;

	if (audit_path == NULL || strcmp(audit_path, "-") == 0)
		return;
	if ((fd = open(audit_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0640)) == -1) {
		log_warn("audit: reopen %s", audit_path);
		return;
	}
	close(audit_fd);
	audit_fd = fd;
}

/* Close the audit file at exit. */
void
audit_close(void)
{
	if (audit_fd != -1 && audit_fd != STDOUT_FILENO)
		close(audit_fd);
	audit_fd = -1;
	free(audit_path);
	audit_path = NULL;
}

/* Write the line for the request that just ended. */
void
audit_request(struct conn *c, const char *verdict, int status)
{
	json_t		*o, *peer, *muts;
	struct timeval	 now, mono;
	struct tm	 tm;
	char		 ts[64], *line;
	size_t		 i, len;
	ssize_t		 n;
	long		 ms;

	c->audited = 1;
	metrics_request(c, verdict, status);
	if (audit_fd == -1)
		return;
	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ",
	    (long)now.tv_usec / 1000);
	io_now(&mono);
	ms = c->t_start.tv_sec || c->t_start.tv_usec ?
	    (long)((mono.tv_sec - c->t_start.tv_sec) * 1000 +
	    (mono.tv_usec - c->t_start.tv_usec) / 1000) : 0;
	if (ms < 0)
		ms = 0;
	if (c->has_cred)
		peer = json_pack("{s:I,s:I,s:I}", "uid", (json_int_t)c->uid,
		    "gid", (json_int_t)c->gid, "pid", (json_int_t)c->pid);
	else {
		json_t	*san = json_array();
		char	*sans, *tok, *save = NULL;

		if (c->cert_san != NULL && (sans = strdup(c->cert_san)) != NULL) {
			for (tok = strtok_r(sans, ",", &save); tok != NULL &&
			    san != NULL; tok = strtok_r(NULL, ",", &save))
				json_array_append_new(san, json_string(tok));
			free(sans);
		}
		peer = json_pack("{s:s,s:s?,s:o?}", "addr", c->peer_addr,
		    "cn", c->cert_cn, "san", san);
	}
	muts = json_array();
	for (i = 0; i < c->rq->res.nmutations && muts != NULL; i++)
		json_array_append_new(muts, json_string(c->rq->res.mutations[i]));
	o = json_pack("{s:s,s:I,s:s,s:o?,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o?,"
	    "s:b,s:i,s:I,s:I,s:I}",
	    "time", ts,
	    "conn", (json_int_t)c->id,
	    "listener", c->listener->addr.spec,
	    "peer", peer,
	    "profile", c->rq->res.profile,
	    "method", c->req_parsed ? c->rq->req.method : "",
	    "path", c->url ? c->url : "",
	    "endpoint", c->rq->res.endpoint,
	    "verdict", verdict,
	    "rule", c->rq->res.rule,
	    "reason", c->rq->res.reason,
	    "mutations", muts,
	    "dry_run", c->dry_run_deny,
	    "status", status,
	    "bytes_in", (json_int_t)c->bytes_in,
	    "bytes_out", (json_int_t)c->bytes_out,
	    "duration_ms", (json_int_t)ms);
	if (o == NULL) {
		audit_failures++;
		return;
	}
	line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (line == NULL) {
		audit_failures++;
		return;
	}
	len = strlen(line);
	line[len++] = '\n';	/* json_dumps left room for the NUL */
	n = write(audit_fd, line, len);
	if (n != (ssize_t)len) {
		if (audit_failures++ % 1000 == 0)
			log_warn("audit: write failed (%llu so far)",
			    (unsigned long long)audit_failures);
	}
	free(line);
}
