/*
 * dockgate --eval: decide one request offline with the same library the
 * daemon uses, asking the engine (blocking) only for facts the decision
 * needs and only when --upstream was given.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "proxy.h"

struct fetch {
	struct evbuffer	*body;
	int		 done;
};

static int	 eval_parse_as(const char *, struct policy_identity *, char *,
		    size_t);
static char	*eval_read_file(const char *, size_t *);
static int	 eval_fetch(const struct address *, const char *, int *,
		    char **, size_t *);
static int	 fetch_on_body(http_parser *, const char *, size_t);
static int	 fetch_on_complete(http_parser *);
static int	 eval_print(const struct policy_result *, const char *,
		    const struct policy_req *, int);

/* Parse --as: uid=N,gid=N,pid=N,cn=NAME,listener=ADDR (any subset). */
static int
eval_parse_as(const char *as, struct policy_identity *id, char *buf,
    size_t buflen)
{
	char	*tok, *save = NULL, *val, *end;
	long	 n;

	memset(id, 0, sizeof(*id));
	if (as == NULL)
		return 0;
	if (strlen(as) >= buflen)
		return -1;
	strcpy(buf, as);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if ((val = strchr(tok, '=')) == NULL)
			return -1;
		*val++ = '\0';
		if (strcmp(tok, "cn") == 0) {
			id->cert_cn = val;
			continue;
		}
		if (strcmp(tok, "listener") == 0) {
			id->listener = val;
			continue;
		}
		errno = 0;
		n = strtol(val, &end, 10);
		if (*val == '\0' || *end != '\0' || errno != 0 || n < 0)
			return -1;
		if (strcmp(tok, "uid") == 0)
			id->uid = (uid_t)n;
		else if (strcmp(tok, "gid") == 0)
			id->gid = (gid_t)n;
		else if (strcmp(tok, "pid") == 0)
			id->pid = (pid_t)n;
		else
			return -1;
		id->has_cred = 1;
	}
	return 0;
}

/* Read a whole file into a new NUL-terminated buffer. */
static char *
eval_read_file(const char *path, size_t *len)
{
	FILE	*f;
	char	*buf = NULL, *p;
	size_t	 cap = 0, n = 0, r;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(buf, cap)) == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = p;
		}
		if ((r = fread(buf + n, 1, 4096, f)) == 0)
			break;
		n += r;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* http-parser: collect a fetched body. */
static int
fetch_on_body(http_parser *p, const char *at, size_t len)
{
	struct fetch	*f = p->data;

	if (evbuffer_get_length(f->body) + len > DOCKGATE_LOOKUP_MAX)
		return -1;
	return evbuffer_add(f->body, at, len);
}

/* http-parser: the fetched answer is complete. */
static int
fetch_on_complete(http_parser *p)
{
	struct fetch	*f = p->data;

	f->done = 1;
	return 0;
}

/* GET a path from the engine, blocking (10 s); 0 on success. */
static int
eval_fetch(const struct address *up, const char *path, int *status,
    char **body, size_t *len)
{
	static const http_parser_settings s = {
		.on_body = fetch_on_body,
		.on_message_complete = fetch_on_complete,
	};
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct fetch		 f;
	http_parser		 p;
	struct pollfd		 pfd;
	char			 buf[16384], *enc, *req;
	ssize_t			 n;
	int			 fd, rv = -1;

	if (addr_sockaddr(up, &ss, &sslen) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sslen) == -1) {
		close(fd);
		return -1;
	}
	if ((enc = policy_encode(path, 0)) == NULL ||
	    asprintf(&req, "GET %s HTTP/1.1\r\nHost: docker\r\n"
	    "Connection: close\r\n\r\n", enc) == -1) {
		free(enc);
		close(fd);
		return -1;
	}
	free(enc);
	n = write(fd, req, strlen(req));
	free(req);
	memset(&f, 0, sizeof(f));
	if (n <= 0 || (f.body = evbuffer_new()) == NULL) {
		close(fd);
		return -1;
	}
	http_parser_init(&p, HTTP_RESPONSE);
	p.data = &f;
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (!f.done) {
		if (poll(&pfd, 1, 10000) != 1)
			goto out;
		if ((n = read(fd, buf, sizeof(buf))) < 0)
			goto out;
		if ((size_t)http_parser_execute(&p, &s, buf, (size_t)n) !=
		    (size_t)n && !f.done)
			goto out;
		if (n == 0)
			break;
	}
	if (!f.done)
		goto out;
	*status = p.status_code;
	*len = evbuffer_get_length(f.body);
	if ((*body = malloc(*len + 1)) == NULL)
		goto out;
	evbuffer_remove(f.body, *body, *len);
	(*body)[*len] = '\0';
	rv = 0;
 out:
	evbuffer_free(f.body);
	close(fd);
	return rv;
}

/* Print the verdict object; return the exit code. */
static int
eval_print(const struct policy_result *res, const char *verdict,
    const struct policy_req *req, int code)
{
	json_t		*o, *body = NULL, *muts;
	json_error_t	 jerr;
	size_t		 i;

	if (res->body != NULL)
		body = json_loadb(res->body, res->body_len,
		    JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	else if (req != NULL && req->body_len > 0)
		body = json_loadb((const char *)req->body, req->body_len,
		    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
	muts = json_array();
	for (i = 0; i < res->nmutations; i++)
		json_array_append_new(muts, json_string(res->mutations[i]));
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:o?}",
	    "verdict", verdict, "rule", res->rule, "reason", res->reason,
	    "profile", res->profile, "endpoint", res->endpoint,
	    "status", res->status, "mutations", muts, "body", body);
	if (o != NULL) {
		json_dumpf(o, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(o);
	}
	return code;
}

/* The --eval entry point: exit 0 allow/mutate, 1 deny/malformed, 2 error. */
int
eval_main(const char *file, const char *as, const struct address *up,
    int argc, char *argv[])
{
	struct policy_error		 perr;
	struct policy			*pol;
	struct policy_identity		 id;
	const struct policy_profile	*pp;
	struct policy_req		 req;
	struct policy_result		 res;
	struct policy_facts		 facts;
	char				*fbody[POLICY_MAX_FACTS];
	char				*fpath[POLICY_MAX_FACTS];
	char				 asbuf[512], rp[PATH_MAX];
	char				*body = NULL;
	const char			*why;
	size_t				 blen = 0, i;
	int				 code = 2, status;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: dockgate --eval --policy FILE --as "
		    "uid=N,gid=N|cn=NAME [--upstream ADDR] METHOD PATH[?QUERY] "
		    "[BODY.json]\n");
		return 2;
	}
	if (eval_parse_as(as, &id, asbuf, sizeof(asbuf)) == -1) {
		fprintf(stderr, "dockgate: --as %s: expected uid=N,gid=N,"
		    "pid=N,cn=NAME,listener=ADDR\n", as);
		return 2;
	}
	memset(&perr, 0, sizeof(perr));
	if ((pol = policy_load_file(file, &perr)) == NULL) {
		fprintf(stderr, "dockgate: policy %s: %s\n", file, perr.text);
		return 2;
	}
	if (argc == 3 && (body = eval_read_file(argv[2], &blen)) == NULL) {
		fprintf(stderr, "dockgate: %s: %s\n", argv[2], strerror(errno));
		policy_unref(pol);
		return 2;
	}
	memset(&res, 0, sizeof(res));
	memset(&facts, 0, sizeof(facts));
	if (policy_req_parse(&req, argv[0], argv[1], strlen(argv[1]),
	    &why) == -1) {
		snprintf(res.reason, sizeof(res.reason), "%s", why);
		snprintf(res.rule, sizeof(res.rule), "malformed");
		res.status = 400;
		code = eval_print(&res, "malformed", NULL, 1);
		goto done;
	}
	req.has_body = blen > 0;
	req.body = (const unsigned char *)body;
	req.body_len = blen;
	req.content_type = blen > 0 ? "application/json" : NULL;
	pp = policy_resolve(pol, &id);
	for (;;) {
		policy_result_clear(&res);
		if (policy_eval(pol, pp, &req, &facts, &res) == -1) {
			fprintf(stderr, "dockgate: policy evaluation failed\n");
			code = 2;
			break;
		}
		if (res.verdict != POLICY_LOOKUP) {
			code = eval_print(&res, policy_verdict_name(res.verdict),
			    &req, res.verdict == POLICY_ALLOW ||
			    res.verdict == POLICY_MUTATE ? 0 : 1);
			break;
		}
		i = facts.n;
		if (i >= POLICY_MAX_FACTS) {
			fprintf(stderr, "dockgate: too many lookups\n");
			break;
		}
		fpath[i] = strdup(res.lookup);
		fbody[i] = NULL;
		blen = 0;
		if (strncmp(res.lookup, "realpath:", 9) == 0) {
			if (realpath(res.lookup + 9, rp) == NULL)
				status = 404;
			else {
				json_t *js = json_string(rp);

				status = 200;
				fbody[i] = js ? json_dumps(js,
				    JSON_ENCODE_ANY) : NULL;
				json_decref(js);
			}
		} else if (up == NULL) {
			fprintf(stderr, "dockgate: the decision needs the engine "
			    "(GET %s): give --upstream\n", res.lookup);
			free(fpath[i]);
			code = 2;
			break;
		} else if (eval_fetch(up, res.lookup, &status, &fbody[i],
		    &blen) == -1) {
			fprintf(stderr, "dockgate: engine %s: GET %s failed\n",
			    up->spec, res.lookup);
			free(fpath[i]);
			code = 2;
			break;
		}
		if (fbody[i] == NULL)
			fbody[i] = strdup("");
		facts.fact[i].path = fpath[i];
		facts.fact[i].status = status;
		facts.fact[i].body = fbody[i];
		facts.fact[i].body_len = blen ? blen : strlen(fbody[i]);
		facts.n++;
	}
	for (i = 0; i < facts.n; i++) {
		free(fpath[i]);
		free(fbody[i]);
	}
	policy_req_clear(&req);
 done:
	policy_result_clear(&res);
	free(body);
	policy_unref(pol);
	return code;
}
