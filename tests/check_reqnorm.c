/*
 * Request-target normalisation: the table of what the engine routes (Go
 * percent-decodes the path, mux redirects unclean paths, /v[0-9.]+ is an
 * optional prefix, url.ParseQuery reads the query) and what dockgate
 * forwards.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

struct target_case {
	const char	*target;
	int		 ok;
	const char	*path;		/* decoded, with prefix */
	const char	*route;
	const char	*version;
	const char	*forward;	/* policy_req_target() */
};

static const struct target_case targets[] = {
	{ "/_ping", 1, "/_ping", "/_ping", "", "/_ping" },
	{ "/v1.41/containers/json", 1, "/v1.41/containers/json",
	    "/containers/json", "1.41", "/v1.41/containers/json" },
	{ "/v1.41.0/info", 1, "/v1.41.0/info", "/info", "1.41.0",
	    "/v1.41.0/info" },
	{ "/v01.41/info", 1, "/v01.41/info", "/info", "01.41", "/v01.41/info" },
	{ "/V1.41/info", 1, "/V1.41/info", "/V1.41/info", "", "/V1.41/info" },
	{ "/v/info", 1, "/v/info", "/v/info", "", "/v/info" },
	{ "/v1.41", 1, "/v1.41", "/v1.41", "", "/v1.41" },
	{ "/v1.41/v1.40/info", 1, "/v1.41/v1.40/info", "/v1.40/info", "1.41",
	    "/v1.41/v1.40/info" },
	{ "/v1.41/containers%2Fcreate", 1, "/v1.41/containers/create",
	    "/containers/create", "1.41", "/v1.41/containers/create" },
	{ "/%761.41/containers/create", 1, "/v1.41/containers/create",
	    "/containers/create", "1.41", "/v1.41/containers/create" },
	{ "/containers/%63reate", 1, "/containers/create",
	    "/containers/create", "", "/containers/create" },
	{ "/images/busybox:latest/json", 1, "/images/busybox:latest/json",
	    "/images/busybox:latest/json", "", "/images/busybox:latest/json" },
	{ "/images/a%20b/json", 1, "/images/a b/json", "/images/a b/json", "",
	    "/images/a%20b/json" },
	{ "/containers/x%3Fy/json", 1, "/containers/x?y/json",
	    "/containers/x?y/json", "", "/containers/x%3Fy/json" },
	{ "/containers/json?all=1&filters=%7B%22a%22%3A1%7D", 1,
	    "/containers/json", "/containers/json", "",
	    "/containers/json?all=1&filters=%7B%22a%22%3A1%7D" },
	{ "/images/create?fromImage=busy+box&tag=1", 1, "/images/create",
	    "/images/create", "", "/images/create?fromImage=busy%20box&tag=1" },
	{ "/build?t=a&t=b", 1, "/build", "/build", "", "/build?t=a&t=b" },
	{ "/x?&&a=1&", 1, "/x", "/x", "", "/x?a=1" },
	{ "/x?a", 1, "/x", "/x", "", "/x?a=" },
	{ "/x?", 1, "/x", "/x", "", "/x" },
	{ "/containers/json/", 1, "/containers/json/", "/containers/json/", "",
	    "/containers/json/" },
	{ "http://docker/v1.41/_ping", 1, "/v1.41/_ping", "/_ping", "1.41",
	    "/v1.41/_ping" },
	{ "HTTP://docker:2375/info?a=b", 1, "/info", "/info", "", "/info?a=b" },
	/* Refused: unclean after decoding, bad escapes, odd forms. */
	{ "//containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41//containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/./containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/x/../containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/containers/json/..", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/containers/json/.", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/%2e%2e/containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/x/%2E%2E/containers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41%2F%2Fcontainers/json", 0, NULL, NULL, NULL, NULL },
	{ "/v1.41/x%2F..%2Fcontainers/json", 0, NULL, NULL, NULL, NULL },
	{ "/containers/%zz/json", 0, NULL, NULL, NULL, NULL },
	{ "/containers/%4", 0, NULL, NULL, NULL, NULL },
	{ "/containers/%", 0, NULL, NULL, NULL, NULL },
	{ "/containers/a%00b/json", 0, NULL, NULL, NULL, NULL },
	{ "/x?a=%00", 0, NULL, NULL, NULL, NULL },
	{ "/x?a=%G1", 0, NULL, NULL, NULL, NULL },
	{ "/x?a=1;b=2", 0, NULL, NULL, NULL, NULL },
	{ "/x#frag", 0, NULL, NULL, NULL, NULL },
	{ "*", 0, NULL, NULL, NULL, NULL },
	{ "docker:2375", 0, NULL, NULL, NULL, NULL },
	{ "containers/json", 0, NULL, NULL, NULL, NULL },
	{ "http://docker", 0, NULL, NULL, NULL, NULL },
	{ "/v1234567890123456789.1/info", 0, NULL, NULL, NULL, NULL },
};

START_TEST(test_targets)
{
	const struct target_case	*tc = &targets[_i];
	struct policy_req		 req;
	const char			*why = NULL;
	char				*fwd;
	int				 rv;

	rv = policy_req_parse(&req, "GET", tc->target, strlen(tc->target),
	    &why);
	if (!tc->ok) {
		ck_assert_msg(rv == -1, "%s: accepted", tc->target);
		ck_assert_ptr_nonnull(why);
		return;
	}
	ck_assert_msg(rv == 0, "%s: refused: %s", tc->target, why);
	ck_assert_str_eq(req.path, tc->path);
	ck_assert_str_eq(req.route, tc->route);
	ck_assert_str_eq(req.version, tc->version);
	fwd = policy_req_target(&req);
	ck_assert_ptr_nonnull(fwd);
	ck_assert_str_eq(fwd, tc->forward);
	free(fwd);
	policy_req_clear(&req);
}
END_TEST

/* The forwarded target is a fixed point: parsing it again changes nothing. */
START_TEST(test_forward_fixed_point)
{
	const struct target_case	*tc = &targets[_i];
	struct policy_req		 a, b;
	const char			*why;
	char				*fa, *fb;

	if (!tc->ok)
		return;
	ck_assert_int_eq(policy_req_parse(&a, "GET", tc->target,
	    strlen(tc->target), &why), 0);
	fa = policy_req_target(&a);
	ck_assert_int_eq(policy_req_parse(&b, "GET", fa, strlen(fa), &why), 0);
	fb = policy_req_target(&b);
	ck_assert_str_eq(a.path, b.path);
	ck_assert_str_eq(fa, fb);
	free(fa);
	free(fb);
	policy_req_clear(&a);
	policy_req_clear(&b);
}
END_TEST

START_TEST(test_params)
{
	struct policy_req	 req;
	const char		*why, *v;
	int			 n;
	const char		*t = "/build?t=a&t=b&q=%2Bx+y&empty=&n%61me=1";

	ck_assert_int_eq(policy_req_parse(&req, "POST", t, strlen(t), &why), 0);
	ck_assert_uint_eq(req.nparams, 5);
	v = policy_req_param(&req, "t", &n);
	ck_assert_str_eq(v, "a");
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(policy_req_param(&req, "q", &n), "+x y");
	ck_assert_str_eq(policy_req_param(&req, "empty", &n), "");
	ck_assert_str_eq(policy_req_param(&req, "name", &n), "1");
	ck_assert_ptr_null(policy_req_param(&req, "missing", &n));
	ck_assert_int_eq(n, 0);
	ck_assert_str_eq(req.method, "POST");
	policy_req_clear(&req);
}
END_TEST

START_TEST(test_encode)
{
	char	*s;

	s = policy_encode("/a b/c?d#e%f:g@h", 0);
	ck_assert_str_eq(s, "/a%20b/c%3Fd%23e%25f:g@h");
	free(s);
	s = policy_encode("{\"a\":[1]} &=+", 1);
	ck_assert_str_eq(s, "%7B%22a%22%3A%5B1%5D%7D%20%26%3D%2B");
	free(s);
}
END_TEST

/* The query is read within the given length only (found by fuzzing). */
START_TEST(test_length_bound)
{
	struct policy_req	 req;
	const char		*why;
	static const char	 t[] = "/x?a=1&b=2";

	ck_assert_int_eq(policy_req_parse(&req, "GET", t, 6, &why), 0);
	ck_assert_uint_eq(req.nparams, 1);
	ck_assert_str_eq(req.params[0].value, "1");
	policy_req_clear(&req);
	ck_assert_int_eq(policy_req_parse(&req, "GET", "/x?a=1\0&b", 10,
	    &why), -1);
}
END_TEST

/* An absolute-form target is read within its length too: in a buffer of
 * exactly that many bytes (no NUL), ASan sees any read past it (found by
 * fuzzing: the scheme was skipped with strstr()). */
START_TEST(test_length_bound_absolute)
{
	static const char *const t[] = { "https://docker/v1.41/_ping",
	    "HTTP://docker/_ping", "http://docker?x", "https://d" };
	struct policy_req	 req;
	const char		*why;
	char			*b;
	size_t			 i, n;
	int			 rc;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = strlen(t[i]);
		ck_assert_ptr_nonnull(b = malloc(n));
		memcpy(b, t[i], n);
		rc = policy_req_parse(&req, "GET", b, n, &why);
		free(b);
		ck_assert_int_eq(rc, i < 2 ? 0 : -1);
		if (rc == 0) {
			ck_assert_str_eq(req.route, "/_ping");
			policy_req_clear(&req);
		}
	}
}
END_TEST

START_TEST(test_bad_method)
{
	struct policy_req	 req;
	const char		*why;

	ck_assert_int_eq(policy_req_parse(&req, "", "/x", 2, &why), -1);
	ck_assert_int_eq(policy_req_parse(&req, "AVERYLONGMETHODNAMEXX", "/x",
	    2, &why), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("reqnorm");
	TCase	*tc = tcase_create("targets");
	SRunner	*sr;
	int	 nf;

	tcase_add_loop_test(tc, test_targets, 0,
	    sizeof(targets) / sizeof(targets[0]));
	tcase_add_loop_test(tc, test_forward_fixed_point, 0,
	    sizeof(targets) / sizeof(targets[0]));
	tcase_add_test(tc, test_params);
	tcase_add_test(tc, test_encode);
	tcase_add_test(tc, test_bad_method);
	tcase_add_test(tc, test_length_bound);
	tcase_add_test(tc, test_length_bound_absolute);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
