/*
 * HTTP framing rules (httpmsg.c) and the http-parser behaviour the proxy's
 * glue relies on: pausing after the head, chunked bodies decoded whatever
 * the read boundaries, pipelined requests kept apart.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "httpmsg.h"

struct frame_case {
	const char	*hdrs;		/* "Name: value\n" lines */
	int		 ok;
	int		 chunked;
	int		 has_length;
	unsigned long long length;
	int		 upgrade;
};

static const struct frame_case frames[] = {
	{ "Host: docker\n", 1, 0, 0, 0, 0 },
	{ "Content-Length: 12\n", 1, 0, 1, 12, 0 },
	{ "content-length: 0\n", 1, 0, 1, 0, 0 },
	{ "Transfer-Encoding: chunked\n", 1, 1, 0, 0, 0 },
	{ "Transfer-Encoding: CHUNKED\n", 1, 1, 0, 0, 0 },
	{ "Connection: Upgrade\nUpgrade: tcp\n", 1, 0, 0, 0, 1 },
	{ "Connection: keep-alive, upgrade\nUpgrade: TCP\n", 1, 0, 0, 0, 1 },
	{ "Upgrade: tcp\n", 1, 0, 0, 0, 0 },
	{ "Connection: upgrade\n", 1, 0, 0, 0, 0 },
	{ "Expect: 100-continue\nContent-Length: 3\n", 1, 0, 1, 3, 0 },
	/* Refused. */
	{ "Content-Length: 1\nContent-Length: 1\n", 0, 0, 0, 0, 0 },
	{ "Content-Length: 1\nTransfer-Encoding: chunked\n", 0, 0, 0, 0, 0 },
	{ "Transfer-Encoding: chunked\nTransfer-Encoding: chunked\n", 0, 0, 0,
	    0, 0 },
	{ "Transfer-Encoding: gzip, chunked\n", 0, 0, 0, 0, 0 },
	{ "Transfer-Encoding: identity\n", 0, 0, 0, 0, 0 },
	{ "Transfer-Encoding: chunked, chunked\n", 0, 0, 0, 0, 0 },
	{ "Content-Length: -1\n", 0, 0, 0, 0, 0 },
	{ "Content-Length: +1\n", 0, 0, 0, 0, 0 },
	{ "Content-Length: 1 \n", 0, 0, 0, 0, 0 },
	{ "Content-Length: 0x10\n", 0, 0, 0, 0, 0 },
	{ "Content-Length: \n", 0, 0, 0, 0, 0 },
	{ "Content-Length: 99999999999999999999\n", 0, 0, 0, 0, 0 },
	{ "Host: a\nHost: b\n", 0, 0, 0, 0, 0 },
	{ "Content-Type: a\nContent-Type: b\n", 0, 0, 0, 0, 0 },
	{ "Expect: 200-ok\n", 0, 0, 0, 0, 0 },
	{ "Connection: upgrade\nUpgrade: tcp\nUpgrade: h2c\n", 0, 0, 0, 0, 0 },
	/* http-parser lets a space into a name; Go refuses it, so do we. */
	{ "Host : d\n", 0, 0, 0, 0, 0 },
	{ "Content-Length : 5\n", 0, 0, 0, 0, 0 },
	{ "X\"y: 1\n", 0, 0, 0, 0, 0 },
};

/* Fill m from "Name: value\n" lines. */
static void
load_headers(struct httpmsg *m, const char *text)
{
	const char	*p = text, *colon, *nl;

	memset(m, 0, sizeof(*m));
	while (*p != '\0') {
		colon = strchr(p, ':');
		nl = strchr(p, '\n');
		ck_assert_int_eq(httpmsg_add_field(m, p, (size_t)(colon - p)), 0);
		colon++;
		while (*colon == ' ')
			colon++;
		ck_assert_int_eq(httpmsg_add_value(m, colon,
		    (size_t)(nl - colon)), 0);
		p = nl + 1;
	}
}

START_TEST(test_framing)
{
	const struct frame_case	*fc = &frames[_i];
	struct httpmsg		 m;
	struct httpmsg_framing	 f;
	const char		*why = NULL;
	int			 rv;

	load_headers(&m, fc->hdrs);
	rv = httpmsg_framing(&m, &f, &why);
	if (!fc->ok) {
		ck_assert_msg(rv == -1, "accepted: %s", fc->hdrs);
		ck_assert_ptr_nonnull(why);
	} else {
		ck_assert_msg(rv == 0, "refused: %s: %s", fc->hdrs, why);
		ck_assert_int_eq(f.chunked, fc->chunked);
		ck_assert_int_eq(f.has_length, fc->has_length);
		ck_assert_uint_eq(f.length, fc->length);
		ck_assert_int_eq(f.upgrade, fc->upgrade);
	}
	httpmsg_clear(&m);
}
END_TEST

START_TEST(test_fragments_and_limits)
{
	struct httpmsg	 m;
	struct httpmsg_framing f;
	const char	*why;
	int		 i, n;
	char		 name[32];

	memset(&m, 0, sizeof(m));
	/* Names and values may arrive in pieces. */
	httpmsg_add_field(&m, "Cont", 4);
	httpmsg_add_field(&m, "ent-Length", 10);
	httpmsg_add_value(&m, "1", 1);
	httpmsg_add_value(&m, "7", 1);
	httpmsg_add_field(&m, "X", 1);
	httpmsg_add_value(&m, "y", 1);
	ck_assert_str_eq(httpmsg_get(&m, "content-length", &n), "17");
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(m.nhdr, 2);
	httpmsg_clear(&m);
	/* Too many fields is an error, not a truncation. */
	for (i = 0; i <= HTTPMSG_MAX_HEADERS; i++) {
		snprintf(name, sizeof(name), "X-%d", i);
		httpmsg_add_field(&m, name, strlen(name));
		httpmsg_add_value(&m, "v", 1);
	}
	ck_assert_int_eq(m.overflow, 1);
	ck_assert_int_eq(httpmsg_framing(&m, &f, &why), -1);
	httpmsg_clear(&m);
}
END_TEST

START_TEST(test_tokens_and_hop)
{
	ck_assert(httpmsg_token_list_has("keep-alive, Upgrade", "upgrade"));
	ck_assert(httpmsg_token_list_has(" close ", "close"));
	ck_assert(!httpmsg_token_list_has("closed", "close"));
	ck_assert(!httpmsg_token_list_has("", "close"));
	ck_assert(httpmsg_is_hop("transfer-encoding"));
	ck_assert(httpmsg_is_hop("Connection"));
	ck_assert(httpmsg_is_hop("Expect"));
	ck_assert(!httpmsg_is_hop("X-Registry-Auth"));
	ck_assert(!httpmsg_is_hop("Content-Type"));
}
END_TEST

START_TEST(test_head_scan)
{
	const char	*why;
	char		 prev = 0;
	const char	*ok = "GET / HTTP/1.1\r\nHost: a\r\nX: b\tc\r\n\r\n";
	const char	*fold = "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n";

	ck_assert_int_eq(httpmsg_head_scan(&prev, ok, strlen(ok), &why), 0);
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, fold, strlen(fold), &why), -1);
	/* A fold split across two reads is still seen. */
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, fold, 22, &why), 0);
	ck_assert_int_eq(httpmsg_head_scan(&prev, fold + 22, 3, &why), -1);
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, "GET /\x01 HTTP/1.1", 16,
	    &why), -1);
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, "GET / HTTP/1.1\rX: y", 19,
	    &why), -1);
	/* A CR at the end of one read, its LF in the next: fine. */
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, "GET / HTTP/1.1\r", 15,
	    &why), 0);
	ck_assert_int_eq(httpmsg_head_scan(&prev, "\nHost: a\r\n", 10,
	    &why), 0);
	prev = 0;
	ck_assert_int_eq(httpmsg_head_scan(&prev, "GET / HTTP/1.1\r\nA: \0",
	    20, &why), -1);
}
END_TEST

START_TEST(test_refusal)
{
	size_t	 len;
	char	*r;

	r = httpmsg_refusal(403, "privileged \"x\" \\ denied\n", "privileged",
	    0, 0, &len);
	ck_assert_uint_eq(strlen(r), len);
	ck_assert(strncmp(r, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	ck_assert_ptr_nonnull(strstr(r, "Content-Type: application/json\r\n"));
	ck_assert_ptr_nonnull(strstr(r, "{\"message\":\"dockgate: privileged "
	    "\\\"x\\\" \\\\ denied\\u000a (rule privileged)\"}"));
	ck_assert_ptr_null(strstr(r, "Connection: close"));
	{
		const char *body = strstr(r, "\r\n\r\n") + 4;
		char want[64];

		snprintf(want, sizeof(want), "Content-Length: %zu\r\n",
		    strlen(body));
		ck_assert_ptr_nonnull(strstr(r, want));
	}
	free(r);
	r = httpmsg_refusal(429, "slow down", "rate", 1, 7, &len);
	ck_assert_ptr_nonnull(strstr(r, "Retry-After: 7\r\n"));
	ck_assert_ptr_nonnull(strstr(r, "Connection: close\r\n"));
	free(r);
	ck_assert_str_eq(httpmsg_status_text(431),
	    "Request Header Fields Too Large");
}
END_TEST

/* A minimal copy of the proxy's parser glue, to pin http-parser's rules. */
struct glue {
	char	 body[4096];
	size_t	 blen;
	int	 heads;
	int	 done;
	int	 pause_head;
};

static int
g_headers_complete(http_parser *p)
{
	struct glue *g = p->data;

	g->heads++;
	if (g->pause_head)
		http_parser_pause(p, 1);
	return 0;
}

static int
g_body(http_parser *p, const char *at, size_t len)
{
	struct glue *g = p->data;

	ck_assert(g->blen + len < sizeof(g->body));
	memcpy(g->body + g->blen, at, len);
	g->blen += len;
	return 0;
}

static int
g_complete(http_parser *p)
{
	struct glue *g = p->data;

	g->done++;
	if (!p->upgrade)
		http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings gs = {
	.on_headers_complete = g_headers_complete,
	.on_body = g_body,
	.on_message_complete = g_complete,
};

/* Feed data in steps of step bytes, unpausing as the proxy does. */
static size_t
feed(http_parser *p, const char *data, size_t len, size_t step,
    int stop_at_done)
{
	struct glue	*g = p->data;
	size_t		 off = 0, n, k;

	while (off < len) {
		k = len - off < step ? len - off : step;
		n = http_parser_execute(p, &gs, data + off, k);
		off += n;
		if (HTTP_PARSER_ERRNO(p) == HPE_PAUSED)
			http_parser_pause(p, 0);
		else
			ck_assert_msg(HTTP_PARSER_ERRNO(p) == HPE_OK, "%s",
			    http_errno_name(HTTP_PARSER_ERRNO(p)));
		if (stop_at_done && g->done)
			break;
	}
	return off;
}

START_TEST(test_chunked_any_split)
{
	static const char req[] =
	    "POST /containers/create HTTP/1.1\r\nHost: d\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"
	    "5\r\n{\"Ima\r\n"
	    "a;ext=1\r\nge\":\"tiny\"\r\n"
	    "1\r\n}\r\n"
	    "0\r\nTrailer: x\r\n\r\n";
	http_parser	 p;
	struct glue	 g;
	size_t		 step = (size_t)_i + 1;

	memset(&g, 0, sizeof(g));
	g.pause_head = 1;
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &g;
	ck_assert_uint_eq(feed(&p, req, sizeof(req) - 1, step, 1),
	    sizeof(req) - 1);
	ck_assert_int_eq(g.done, 1);
	ck_assert_int_eq(g.heads, 1);
	g.body[g.blen] = '\0';
	ck_assert_str_eq(g.body, "{\"Image\":\"tiny\"}");
}
END_TEST

/* The daemon's chunk framing scan fed as conn_parse() feeds it. */
struct cglue {
	struct httpmsg_chunks	 ch;
	int			 head, done, bad;
};

/* Head read: pause, as the daemon does. */
static int
c_headers_complete(http_parser *p)
{
	struct cglue *g = p->data;

	g->head = 1;
	http_parser_pause(p, 1);
	return 0;
}

/* Chunk data: the framing before it to the scan. */
static int
c_body(http_parser *p, const char *at, size_t len)
{
	struct cglue *g = p->data;

	if (httpmsg_chunks_data(&g->ch, at, len) == -1) {
		g->bad = 1;
		return -1;
	}
	return 0;
}

/* Message read: pause, as the daemon does. */
static int
c_complete(http_parser *p)
{
	struct cglue *g = p->data;

	g->done = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings cs = {
	.on_headers_complete = c_headers_complete,
	.on_body = c_body,
	.on_message_complete = c_complete,
};

/* A chunked request read in steps: 1 accepted whole, 0 refused. */
static int
chunked_read(const char *req, size_t len, size_t step)
{
	http_parser	 p;
	struct cglue	 g;
	size_t		 off = 0, n, k;

	memset(&g, 0, sizeof(g));
	httpmsg_chunks_reset(&g.ch);
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &g;
	while (off < len && !g.done) {
		k = len - off < step ? len - off : step;
		httpmsg_chunks_begin(&g.ch, g.head ? req + off : NULL);
		n = http_parser_execute(&p, &cs, req + off, k);
		if (httpmsg_chunks_end(&g.ch, req + off + n) == -1 || g.bad)
			return 0;
		off += n;
		if (HTTP_PARSER_ERRNO(&p) == HPE_PAUSED)
			http_parser_pause(&p, 0);
		else if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
			return 0;
	}
	return g.done && off == len;
}

/* Chunk framing a lenient http-parser takes and the daemon refuses:
 * a bare CR, any two bytes or a bare LF after chunk data. */
START_TEST(test_chunk_framing_scan)
{
	static const char head[] = "POST /build HTTP/1.1\r\nHost: d\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	static const struct {
		const char	*body;
		int		 ok;
	} bodies[] = {
		{ "5\r\nhello\r\n0\r\n\r\n", 1 },
		{ "5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n", 1 },
		{ "5\r\nhello\rX0\r\n\r\n", 0 },	/* CR, any byte */
		{ "5\r\nhelloXY0\r\n\r\n", 0 },		/* any two bytes */
		{ "5\r\nhello\n0\r\n\r\n", 0 },		/* bare LF after data */
		{ "5\rX\nhello\r\n0\r\n\r\n", 0 },	/* CR in a size line */
		{ "5\r\nhello\r\n0\r\nT: v\rX\r\n\r\n", 0 },	/* trailer */
		{ "5\r\nhello\r\n0\r\n\rX", 0 },	/* the last line end */
		{ "1\r\na\r\n\xff" "0\r\n\r\n", 0 },	/* 0x80+ as a digit */
		{ "1\r\na\r\n\x80\x80" "1\r\nb\r\n0\r\n\r\n", 0 },
		{ "1 \r\na\r\n0\r\n\r\n", 1 },	/* http-parser's BWS */
		{ "A\r\n0123456789\r\n0000\r\n\r\n", 1 },
		{ "1;a\nb\r\nx\r\n0\r\n\r\n", 0 },	/* LF in an extension */
		{ "5\r\nhello\r\n0\r\nT: v\n\r\n", 0 },	/* bare LF, trailer */
		{ "5\r\nhello\r\n0\r\n\n", 0 },	/* bare LF at the end */
	};
	char	 req[256];
	size_t	 i, len, step;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		len = (size_t)snprintf(req, sizeof(req), "%s%s", head,
		    bodies[i].body);
		for (step = 1; step <= len; step++)
			ck_assert_msg(chunked_read(req, len, step) ==
			    bodies[i].ok, "body %zu, step %zu: %s", i, step,
			    bodies[i].ok ? "refused" : "accepted");
	}
}
END_TEST

START_TEST(test_pipelined_stop)
{
	static const char two[] =
	    "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"
	    "GET /version HTTP/1.1\r\nHost: d\r\n\r\n";
	http_parser	 p;
	struct glue	 g;
	size_t		 n;

	memset(&g, 0, sizeof(g));
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &g;
	n = feed(&p, two, sizeof(two) - 1, sizeof(two), 1);
	/* The first request ends exactly where the second begins. */
	ck_assert_int_eq(g.done, 1);
	ck_assert_uint_eq(n, strlen("GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"));
}
END_TEST

START_TEST(test_upgrade_request_ends_at_head)
{
	static const char up[] =
	    "POST /containers/x/attach?stdin=1 HTTP/1.1\r\nHost: d\r\n"
	    "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nRAWSTDIN";
	http_parser	 p;
	struct glue	 g;
	size_t		 n;

	memset(&g, 0, sizeof(g));
	g.pause_head = 1;
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &g;
	n = feed(&p, up, sizeof(up) - 1, 7, 1);
	ck_assert_int_eq(g.done, 1);
	/* Nothing of the raw stream was taken as part of the request. */
	ck_assert_uint_eq(n, sizeof(up) - 1 - 8);
}
END_TEST

START_TEST(test_smuggling_forms_rejected_by_parser)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "GET / HTTP/1.1 \r\n\r\n",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http_parser	 p;
		struct glue	 g;

		memset(&g, 0, sizeof(g));
		http_parser_init(&p, HTTP_REQUEST);
		p.data = &g;
		http_parser_execute(&p, &gs, bad[i], strlen(bad[i]));
		ck_assert_msg(HTTP_PARSER_ERRNO(&p) != HPE_OK &&
		    HTTP_PARSER_ERRNO(&p) != HPE_PAUSED, "accepted: %s",
		    bad[i]);
	}
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("http");
	TCase	*tc = tcase_create("framing");
	TCase	*tp = tcase_create("parser");
	SRunner	*sr;
	int	 nf;

	tcase_add_loop_test(tc, test_framing, 0,
	    sizeof(frames) / sizeof(frames[0]));
	tcase_add_test(tc, test_fragments_and_limits);
	tcase_add_test(tc, test_tokens_and_hop);
	tcase_add_test(tc, test_head_scan);
	tcase_add_test(tc, test_refusal);
	suite_add_tcase(s, tc);
	tcase_add_loop_test(tp, test_chunked_any_split, 0, 40);
	tcase_add_test(tp, test_chunk_framing_scan);
	tcase_add_test(tp, test_pipelined_stop);
	tcase_add_test(tp, test_upgrade_request_ends_at_head);
	tcase_add_test(tp, test_smuggling_forms_rejected_by_parser);
	suite_add_tcase(s, tp);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
