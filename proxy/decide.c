/*
 * The decision point: every request passes decide_request() exactly once
 * (plus once per engine fact it needs), and only its verdict sends anything
 * to the engine.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy.h"

static int	 decide_add_fact(struct conn *, const char *, int,
		    const char *, size_t);
static int	 decide_realpath(struct conn *, const char *);
static void	 decide_identity(struct conn *, struct policy_identity *);
static int	 decide_build_start(struct conn *);
static int	 decide_lookup(struct conn *, const char *, int);
static int	 decide_inspect_route(const char *);
static void	 decide_build_release(struct conn *);
static void	 decide_owner_uid(char *, unsigned);

/* The identity the policy sees for a connection. */
static void
decide_identity(struct conn *c, struct policy_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->listener = c->listener->addr.spec;
	id->has_cred = c->has_cred;
	id->uid = c->uid;
	id->gid = c->gid;
	id->pid = c->pid;
	id->cert_cn = c->cert_cn;
}

/* Remember one fact for the next evaluation. */
static int
decide_add_fact(struct conn *c, const char *path, int status,
    const char *body, size_t len)
{
	size_t	 i = c->rq->facts.n;

	if (i >= POLICY_MAX_FACTS)
		return -1;
	if ((c->rq->fact_path[i] = strdup(path)) == NULL)
		return -1;
	if ((c->rq->fact_body[i] = malloc(len + 1)) == NULL) {
		free(c->rq->fact_path[i]);
		c->rq->fact_path[i] = NULL;
		return -1;
	}
	if (len > 0)
		memcpy(c->rq->fact_body[i], body, len);
	c->rq->fact_body[i][len] = '\0';
	c->rq->facts.fact[i].path = c->rq->fact_path[i];
	c->rq->facts.fact[i].status = status;
	c->rq->facts.fact[i].body = c->rq->fact_body[i];
	c->rq->facts.fact[i].body_len = len;
	c->rq->facts.n++;
	return 0;
}

/* Answer a "realpath:" lookup from this host's file system. */
static int
decide_realpath(struct conn *c, const char *lookup)
{
	char	 buf[PATH_MAX], json[PATH_MAX * 2 + 3];
	size_t	 o = 0, i;

	/* A tcp engine's file system is not ours: host_paths stay textual. */
	if (proxy->upstream.kind != ADDR_UNIX)
		return decide_add_fact(c, lookup, 501, "", 0);
	if (realpath(lookup + 9, buf) == NULL)
		return decide_add_fact(c, lookup, errno == ENOENT ? 404 : 500,
		    "", 0);
	json[o++] = '"';
	for (i = 0; buf[i] != '\0'; i++) {
		if (buf[i] == '"' || buf[i] == '\\')
			json[o++] = '\\';
		json[o++] = buf[i];
	}
	json[o++] = '"';
	return decide_add_fact(c, lookup, 200, json, o);
}

/*
 * The decision asked for a fact: answer a realpath: here (0: evaluate
 * again) or ask the engine (1: decide_fact() goes on); -1: refused. A
 * build mid-upload (mid_upload) is refused with its engine connection.
 */
static int
decide_lookup(struct conn *c, const char *lookup, int mid_upload)
{
	if (mid_upload)
		c->must_close = 1;	/* any refusal aborts the upload */
	if (c->rq->facts.n >= POLICY_MAX_FACTS) {
		conn_refuse(c, 403, "the decision needs too many engine "
		    "lookups", "lookup-limit");
		return -1;
	}
	if (strncmp(lookup, "realpath:", 9) == 0) {
		if (decide_realpath(c, lookup) == -1) {
			c->must_close = 1;
			conn_refuse(c, 500, "out of memory", "internal");
			return -1;
		}
		if (mid_upload)
			c->must_close = 0;
		return 0;
	}
	if (lookup[0] != '/') {
		conn_refuse(c, 500, "bad engine lookup", "internal");
		return -1;
	}
	if (!mid_upload)
		c->state = CONN_LOOKUP;
	lookup_start(c, lookup);
	return 1;
}

/*
 * Is this an inspect answer (one JSON object about one object), the only
 * kind "redact" rewrites? Logs, archives, exports and lists pass as they
 * are.
 */
static int
decide_inspect_route(const char *route)
{
	const char	*a, *b;

	if (strncmp(route, "/containers/", 12) == 0 ||
	    strncmp(route, "/exec/", 6) == 0) {
		a = strchr(route + 1, '/') + 1;
		b = strchr(a, '/');
		return b != NULL && b > a && strcmp(b, "/json") == 0;
	}
	if (strncmp(route, "/volumes/", 9) == 0 ||
	    strncmp(route, "/networks/", 10) == 0) {
		a = strchr(route + 1, '/') + 1;
		return *a != '\0' && strchr(a, '/') == NULL;
	}
	return 0;
}

/* "uid:N" into owner (at least 16 bytes), without printf's machinery. */
static void
decide_owner_uid(char *owner, unsigned uid)
{
	char	 digits[16], *d = digits + sizeof(digits);

	*--d = '\0';
	do {
		*--d = (char)('0' + uid % 10);
		uid /= 10;
	} while (uid > 0);
	memcpy(owner, "uid:", 4);
	memcpy(owner + 4, d, (size_t)(digits + sizeof(digits) - d));
}

/* Decide the current request and act on the verdict. */
void
decide_request(struct conn *c)
{
	struct policy_identity		 id;
	const struct policy_profile	*pp;
	struct policy_result		*res = &c->rq->res;
	int				 status, rv;
	struct timespec			 t0, t1;

	if (c->pol == NULL)
		c->pol = policy_ref(proxy->policy);
	if (c->body != NULL) {
		c->rq->req.body_len = evbuffer_get_length(c->body);
		c->rq->req.body = evbuffer_pullup(c->body, -1);
	}
	decide_identity(c, &id);
	/* The owner label value under "ownership": uid:N or cn:NAME. */
	if (c->cert_cn != NULL)
		snprintf(c->rq->owner, sizeof(c->rq->owner), "cn:%s", c->cert_cn);
	else if (c->has_cred)
		decide_owner_uid(c->rq->owner, (unsigned)c->uid);
	c->rq->req.owner = c->rq->owner[0] != '\0' ? c->rq->owner : NULL;
	c->rq->req.protected_paths = proxy->protected_paths;
	pp = policy_resolve(c->pol, &id);
	c->rq->profile = pp;
	if ((status = ratelimit_begin(c, pp)) != 0) {
		char why[128];

		snprintf(why, sizeof(why), "rate limit of profile %s reached; "
		    "retry in %d s (profile key \"rate\")",
		    policy_profile_name(pp), status);
		snprintf(res->profile, sizeof(res->profile), "%s",
		    policy_profile_name(pp));
		c->retry_after = status;
		c->must_close = c->must_close || !c->req_done;
		conn_refuse(c, 429, why, "rate");
		return;
	}
	for (;;) {
		policy_result_clear(res);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rv = policy_eval(c->pol, pp, &c->rq->req, &c->rq->facts, res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		metrics_decision((double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
		if (rv == -1) {
			c->must_close = 1;
			conn_refuse(c, 500, "policy evaluation failed",
			    "internal");
			return;
		}
		if (res->verdict != POLICY_LOOKUP)
			break;
		if (decide_lookup(c, res->lookup, 0) != 0)
			return;
	}
	c->decided = 1;
	switch (res->verdict) {
	case POLICY_DENY:
		if (proxy->dry_run) {
			c->dry_run_deny = 1;
			log_warnx("conn %llu: dry-run: would deny %s %s: %s "
			    "(rule %s)", (unsigned long long)c->id,
			    c->rq->req.method, c->rq->req.path, res->reason, res->rule);
			break;
		}
		status = res->status ? res->status : 403;
		conn_refuse(c, status, res->reason, res->rule);
		return;
	case POLICY_MALFORMED:
		status = res->status ? res->status : 400;
		c->must_close = !c->req_done;
		conn_refuse(c, status, res->reason, res->rule);
		return;
	default:
		break;
	}
	c->state = CONN_FORWARD;
	if (decide_build_start(c) == -1)
		return;
	/* An answer about someone else's object, under "redact", or a list
	 * to filter to what the caller may see ("owner_sees"). */
	c->rq->filtering = res->filter_owned &&
	    strcmp(c->rq->req.method, "GET") == 0;
	if (c->rq->filtering || (res->not_owned &&
	    strcmp(c->rq->req.method, "GET") == 0 &&
	    decide_inspect_route(c->rq->req.route) &&
	    (policy_profile_redacts(pp, "env") ||
	    policy_profile_redacts(pp, "mounts") ||
	    policy_profile_redacts(pp, "network")))) {
		c->rq->redacting = 1;
		c->rq->resp_raw = evbuffer_new();
		c->rq->resp_body = evbuffer_new();
		if (c->rq->resp_raw == NULL || c->rq->resp_body == NULL) {
			c->must_close = 1;
			conn_refuse(c, 500, "out of memory", "internal");
			return;
		}
	}
	if (upstream_start(c) == -1)
		return;
	if (!c->req_done) {
		/* A streamed body: now the client may send it. */
		if (c->rq->framing.expect_continue && c->body == NULL)
			bufferevent_write(c->client,
			    "HTTP/1.1 100 Continue\r\n\r\n", 25);
		conn_client_resume(c);
	}
}

/* An engine fact arrived (status 0: unreachable): evaluate again. */
void
decide_fact(struct conn *c, int status, struct evbuffer *body)
{
	size_t	 len = body ? evbuffer_get_length(body) : 0;
	char	*data = body && len ? (char *)evbuffer_pullup(body, -1) : NULL;

	if (status == 0) {
		c->must_close = !c->req_done;
		conn_refuse(c, 502, "the engine did not answer a lookup the "
		    "decision needs", "engine-unreachable");
		return;
	}
	if (decide_add_fact(c, c->rq->res.lookup, status, data ? data : "",
	    len) == -1) {
		c->must_close = 1;
		conn_refuse(c, 500, "out of memory", "internal");
		return;
	}
	if (c->rq->build_deciding)
		decide_build(c);
	else
		decide_request(c);
}

/* Drop the decision state of a finished request. */
void
decide_clear(struct conn *c)
{
	size_t	 i;

	if (c->pol != NULL) {
		policy_unref(c->pol);
		c->pol = NULL;
	}
	c->decided = 0;
	if (c->rq == NULL)
		return;
	for (i = 0; i < c->rq->facts.n; i++) {
		free(c->rq->fact_path[i]);
		free(c->rq->fact_body[i]);
		c->rq->fact_path[i] = c->rq->fact_body[i] = NULL;
	}
	c->rq->facts.n = 0;
	policy_result_clear(&c->rq->res);
}

/* A forwarded request ended: account for it. */
void
decide_finish(struct conn *c, int status)
{
	if (c->audited)
		return;
	if (status == 0)
		status = c->rq->resp.status_code;
	audit_request(c, c->dry_run_deny ? "deny" :
	    policy_verdict_name(c->rq->res.verdict), status);
}

/* A request was refused by dockgate itself: account for it. */
void
decide_refused(struct conn *c, int status, const char *reason,
    const char *rule)
{
	if (c->rq->res.rule[0] == '\0' || strcmp(c->rq->res.rule, rule) != 0) {
		snprintf(c->rq->res.rule, sizeof(c->rq->res.rule), "%s", rule);
		snprintf(c->rq->res.reason, sizeof(c->rq->res.reason), "%s", reason);
	}
	if (c->decided && (c->rq->res.verdict == POLICY_ALLOW ||
	    c->rq->res.verdict == POLICY_MUTATE))
		audit_request(c, policy_verdict_name(c->rq->res.verdict), status);
	else
		audit_request(c, status == 403 || status == 404 ||
		    status == 429 || status >= 500 ? "deny" : "malformed",
		    status);
}

/*
 * An allowed legacy build (POST /build with a tar context) is inspected as
 * it streams: set up the scan. The body then goes up re-chunked, and the
 * end of the archive waits for the Dockerfile's decision.
 */
static int
decide_build_start(struct conn *c)
{
	const char	*v;
	int		 n;

	if (strcmp(c->rq->req.route, "/build") != 0 ||
	    strcmp(c->rq->req.method, "POST") != 0 || !c->rq->req.has_body ||
	    strcmp(c->rq->res.rule, "unrestricted") == 0)
		return 0;
	v = policy_req_param(&c->rq->req, "version", &n);
	if (v != NULL && strcmp(v, "2") == 0)
		return 0;	/* BuildKit: the context is not in the body */
	if ((c->rq->bs = calloc(1, sizeof(*c->rq->bs))) == NULL ||
	    (c->rq->held = evbuffer_new()) == NULL) {
		c->must_close = 1;
		conn_refuse(c, 500, "out of memory", "internal");
		return -1;
	}
	if (buildscan_init(c->rq->bs, policy_build_dockerfile(&c->rq->req),
	    proxy->max_body_bytes) == -1) {
		c->must_close = 1;
		conn_refuse(c, 403, "the dockerfile parameter is not a "
		    "path inside the build context", "build");
		return -1;
	}
	return 0;
}

/*
 * Body bytes of a scanned build: they join the withheld bytes, and what
 * the scan releases (all before an unfinished tar header or the archive's
 * end) goes up as a chunk. -1: the context is refused.
 */
int
decide_build_feed(struct conn *c, const char *p, size_t n)
{
	size_t	 fwd;
	char	 hdr[32];
	int	 l;

	if (evbuffer_add(c->rq->held, p, n) == -1 ||
	    buildscan_feed(c->rq->bs, (const unsigned char *)p, n, &fwd) == -1)
		return -1;
	if (fwd > 0) {
		l = snprintf(hdr, sizeof(hdr), "%zx\r\n", fwd);
		bufferevent_write(c->up, hdr, (size_t)l);
		evbuffer_remove_buffer(c->rq->held,
		    bufferevent_get_output(c->up), fwd);
		bufferevent_write(c->up, "\r\n", 2);
	}
	if (evbuffer_get_length(c->rq->held) > proxy->max_body_bytes) {
		c->rq->bs->error = "too much data after the end of the build "
		    "context";
		return -1;
	}
	return 0;
}

/* The Dockerfile is allowed: let the end of the context go up. */
static void
decide_build_release(struct conn *c)
{
	char	 hdr[32];
	size_t	 n = evbuffer_get_length(c->rq->held);
	int	 l;

	if (n > 0) {
		l = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
		bufferevent_write(c->up, hdr, (size_t)l);
		bufferevent_write_buffer(c->up, c->rq->held);
		bufferevent_write(c->up, "\r\n", 2);
	}
	bufferevent_write(c->up, "0\r\n\r\n", 5);
}

/* The build context has been read: decide its Dockerfile. */
void
decide_build(struct conn *c)
{
	struct policy_result	*res = &c->rq->res;
	const char		*text;
	size_t			 len = 0;
	int			 status;

	c->rq->build_deciding = 1;
	if ((text = buildscan_dockerfile(c->rq->bs, &len)) == NULL) {
		c->must_close = 1;
		conn_refuse(c, 403, c->rq->bs->error, "build");
		return;
	}
	for (;;) {
		policy_result_clear(res);
		if (policy_eval_dockerfile(c->pol, c->rq->profile, &c->rq->req,
		    text, len, &c->rq->facts, res) == -1) {
			c->must_close = 1;
			conn_refuse(c, 500, "policy evaluation failed",
			    "internal");
			return;
		}
		if (res->verdict != POLICY_LOOKUP)
			break;
		if (decide_lookup(c, res->lookup, 1) != 0)
			return;
	}
	c->decided = 1;
	if (res->verdict == POLICY_DENY || res->verdict == POLICY_MALFORMED) {
		if (proxy->dry_run && res->verdict == POLICY_DENY) {
			c->dry_run_deny = 1;
			log_warnx("conn %llu: dry-run: would deny the build: %s "
			    "(rule %s)", (unsigned long long)c->id,
			    res->reason, res->rule);
		} else {
			/* The engine never gets the end of the context. */
			status = res->status ? res->status : 403;
			c->must_close = 1;
			upstream_close(c);
			conn_refuse(c, status, res->reason, res->rule);
			return;
		}
	}
	decide_build_release(c);
}
