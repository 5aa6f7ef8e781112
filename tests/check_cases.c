/*
 * Data-driven policy cases: every JSON file in tests/cases is a group of
 * requests with the decision each must get. Format (tests/cases/README):
 *
 *   { "group": "...", "policy": {...} | "profile": {...},
 *     "cases": [ { "name", "method", "target", "body" | "body_raw" |
 *                  "body_hex", "dockerfile" (policy_eval_dockerfile),
 *                  "content_type", "as", "policy" | "profile", "facts",
 *                  "expect": { "verdict", "status", "rule", "lookup",
 *                              "target", "not_owned", "filter_owned",
 *                              "reason_contains", "profile",
 *                              "body_contains", "body_equals",
 *                              "body_absent", "mutations" } } ] }
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

#define CASES_MAX	4096

struct tcase_ref {
	json_t	*group;
	json_t	*c;
	char	 file[256];
};

static struct tcase_ref	 cases[CASES_MAX];
static size_t		 ncases;
static const char	*cases_dir;

/* A policy from a "policy" object, or a one-profile policy. */
static json_t *
cases_policy_json(json_t *c, json_t *g)
{
	json_t	*p, *prof;
	char	 path[1024];

	if ((p = json_object_get(c, "policy_file")) != NULL ||
	    (!json_object_get(c, "policy") && !json_object_get(c, "profile") &&
	    (p = json_object_get(g, "policy_file")) != NULL)) {
		snprintf(path, sizeof(path), "%s/%s", cases_dir,
		    json_string_value(p));
		return (json_load_file(path, 0, NULL));
	}
	if ((p = json_object_get(c, "policy")) != NULL)
		return (json_incref(p));
	prof = json_object_get(c, "profile");
	if (prof == NULL && (p = json_object_get(g, "policy")) != NULL)
		return (json_incref(p));
	if (prof == NULL)
		prof = json_object_get(g, "profile");
	if (prof == NULL)
		prof = json_object();
	else
		json_incref(prof);
	return (json_pack("{s:i, s:s, s:{s:o}}", "version", 1,
	    "default_profile", "t", "profiles", "t", prof));
}

/* Is every key of want found, equal, in have (recursively; arrays
 * element by element)? */
static int
cases_subset(json_t *want, json_t *have)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	if (json_is_array(want)) {
		if (!json_is_array(have) ||
		    json_array_size(have) != json_array_size(want))
			return (0);
		json_array_foreach(want, i, v)
			if (!cases_subset(v, json_array_get(have, i)))
				return (0);
		return (1);
	}
	if (json_is_object(want)) {
		if (!json_is_object(have))
			return (0);
		json_object_foreach(want, k, v)
			if (!cases_subset(v, json_object_get(have, k)))
				return (0);
		return (1);
	}
	return (have != NULL && json_equal(want, have));
}

/* Follow a dotted path in a JSON object. */
static json_t *
cases_path(json_t *j, const char *path)
{
	char	 buf[256], *p, *dot;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; j != NULL && p != NULL; p = dot) {
		if ((dot = strchr(p, '.')) != NULL)
			*dot++ = '\0';
		j = json_object_get(j, p);
	}
	return (j);
}

/* Decode a hex string (for bodies that are not valid UTF-8). */
static char *
cases_unhex(const char *h)
{
	size_t	 n = strlen(h) / 2, i;
	char	*out;
	unsigned int b;

	if ((out = malloc(n + 1)) == NULL)
		return (NULL);
	for (i = 0; i < n; i++) {
		if (sscanf(h + 2 * i, "%2x", &b) != 1)
			b = '?';
		out[i] = (char)b;
	}
	out[n] = '\0';
	return (out);
}

/* Run case _i. */
START_TEST(test_case)
{
	struct tcase_ref		*t = &cases[_i];
	json_t				*c = t->c, *pj, *exp, *v, *e, *fb;
	struct policy			*pol;
	struct policy_error		 err;
	struct policy_identity		 id;
	struct policy_req		 req;
	struct policy_result		 res;
	struct policy_facts		 facts;
	const struct policy_profile	*pp;
	char				*ptext, *btext = NULL;
	char				*fbody[POLICY_MAX_FACTS];
	const char			*why, *name, *target, *method;
	json_t				*got;
	size_t				 i;
	char				 label[512], owner[300];

	name = json_string_value(json_object_get(c, "name"));
	snprintf(label, sizeof(label), "%s: %s", t->file, name ? name : "?");
	pj = cases_policy_json(c, t->group);
	ck_assert_msg(pj != NULL, "%s: policy file", label);
	ptext = json_dumps(pj, 0);
	json_decref(pj);
	pol = policy_load_buffer(ptext, strlen(ptext), "case", &err);
	free(ptext);
	ck_assert_msg(pol != NULL, "%s: policy: %s", label, err.text);

	memset(&id, 0, sizeof(id));
	if ((v = json_object_get(c, "as")) != NULL) {
		id.listener = json_string_value(json_object_get(v, "listener"));
		id.cert_cn = json_string_value(json_object_get(v, "cert_cn"));
		if (json_object_get(v, "uid") || json_object_get(v, "gid")) {
			id.has_cred = 1;
			id.uid = json_integer_value(json_object_get(v, "uid"));
			id.gid = json_integer_value(json_object_get(v, "gid"));
		}
	}
	pp = policy_resolve(pol, &id);

	method = json_string_value(json_object_get(c, "method"));
	target = json_string_value(json_object_get(c, "target"));
	ck_assert_msg(method != NULL && target != NULL, "%s: no method or"
	    " target", label);
	exp = json_object_get(c, "expect");
	ck_assert_msg(exp != NULL, "%s: no expect", label);
	if (policy_req_parse(&req, method, target, strlen(target),
	    &why) == -1) {
		ck_assert_msg(strcmp(json_string_value(json_object_get(exp,
		    "verdict")), "malformed") == 0, "%s: target refused: %s",
		    label, why);
		policy_unref(pol);
		return;
	}
	req.content_type = json_string_value(json_object_get(c,
	    "content_type"));
	/* The owner label the daemon derives: cn:NAME, else uid:N. */
	owner[0] = '\0';
	if ((v = json_object_get(c, "as")) != NULL) {
		if (json_is_string(json_object_get(v, "owner")))
			snprintf(owner, sizeof(owner), "%s", json_string_value(
			    json_object_get(v, "owner")));
		else if (id.cert_cn != NULL)
			snprintf(owner, sizeof(owner), "cn:%s", id.cert_cn);
		else if (id.has_cred)
			snprintf(owner, sizeof(owner), "uid:%lu",
			    (unsigned long)id.uid);
	}
	req.owner = owner[0] != '\0' ? owner : NULL;
	if ((v = json_object_get(c, "body_raw")) != NULL)
		btext = strdup(json_string_value(v));
	else if ((v = json_object_get(c, "body_hex")) != NULL)
		btext = cases_unhex(json_string_value(v));
	else if ((v = json_object_get(c, "body")) != NULL)
		btext = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (btext != NULL) {
		req.has_body = 1;
		req.body = (const unsigned char *)btext;
		req.body_len = strlen(btext);
	}
	memset(&facts, 0, sizeof(facts));
	memset(fbody, 0, sizeof(fbody));
	json_array_foreach(json_object_get(c, "facts"), i, e) {
		if (i >= POLICY_MAX_FACTS)
			break;
		facts.fact[i].path = json_string_value(json_object_get(e,
		    "path"));
		facts.fact[i].status = json_integer_value(json_object_get(e,
		    "status"));
		if ((fb = json_object_get(e, "body_raw")) != NULL)
			fbody[i] = strdup(json_string_value(fb));
		else if ((fb = json_object_get(e, "body")) != NULL)
			fbody[i] = json_dumps(fb, JSON_COMPACT |
			    JSON_ENCODE_ANY);
		facts.fact[i].body = fbody[i];
		facts.fact[i].body_len = fbody[i] ? strlen(fbody[i]) : 0;
		facts.n = i + 1;
	}

	if ((v = json_object_get(c, "dockerfile")) != NULL)
		policy_eval_dockerfile(pol, pp, &req, json_string_value(v),
		    json_string_length(v), &facts, &res);
	else
		policy_eval(pol, pp, &req, &facts, &res);

	if ((v = json_object_get(exp, "verdict")) != NULL)
		ck_assert_msg(strcmp(policy_verdict_name(res.verdict),
		    json_string_value(v)) == 0, "%s: verdict %s (rule %s:"
		    " %s; lookup %s), expected %s", label,
		    policy_verdict_name(res.verdict), res.rule, res.reason,
		    res.lookup, json_string_value(v));
	if ((v = json_object_get(exp, "status")) != NULL)
		ck_assert_msg(res.status == json_integer_value(v), "%s: status"
		    " %d (%s), expected %lld", label, res.status, res.reason,
		    (long long)json_integer_value(v));
	if ((v = json_object_get(exp, "rule")) != NULL)
		ck_assert_msg(strcmp(res.rule, json_string_value(v)) == 0,
		    "%s: rule %s (%s), expected %s", label, res.rule,
		    res.reason, json_string_value(v));
	if ((v = json_object_get(exp, "lookup")) != NULL)
		ck_assert_msg(strcmp(res.lookup, json_string_value(v)) == 0,
		    "%s: lookup \"%s\", expected \"%s\"", label, res.lookup,
		    json_string_value(v));
	if ((v = json_object_get(exp, "target")) != NULL)
		ck_assert_msg(res.target != NULL && strcmp(res.target,
		    json_string_value(v)) == 0, "%s: target %s, expected %s",
		    label, res.target ? res.target : "(none)",
		    json_string_value(v));
	if ((v = json_object_get(exp, "not_owned")) != NULL)
		ck_assert_msg(res.not_owned == json_is_true(v), "%s: not_owned"
		    " %d", label, res.not_owned);
	if ((v = json_object_get(exp, "filter_owned")) != NULL)
		ck_assert_msg(res.filter_owned == json_is_true(v), "%s:"
		    " filter_owned %d", label, res.filter_owned);
	if ((v = json_object_get(exp, "profile")) != NULL)
		ck_assert_msg(strcmp(res.profile, json_string_value(v)) == 0,
		    "%s: profile %s, expected %s", label, res.profile,
		    json_string_value(v));
	if ((v = json_object_get(exp, "reason_contains")) != NULL)
		ck_assert_msg(strstr(res.reason, json_string_value(v)) != NULL,
		    "%s: reason \"%s\" lacks \"%s\"", label, res.reason,
		    json_string_value(v));
	if ((v = json_object_get(exp, "mutations")) != NULL)
		ck_assert_msg(res.nmutations == (size_t)json_integer_value(v),
		    "%s: %zu mutations, expected %lld", label, res.nmutations,
		    (long long)json_integer_value(v));
	got = NULL;
	if (res.body != NULL)
		got = json_loadb(res.body, res.body_len, JSON_DECODE_ANY,
		    NULL);
	if ((v = json_object_get(exp, "body_equals")) != NULL)
		ck_assert_msg(got != NULL && json_equal(v, got), "%s: body"
		    " %s", label, res.body ? res.body : "(none)");
	if ((v = json_object_get(exp, "body_contains")) != NULL)
		ck_assert_msg(cases_subset(v, got), "%s: body %s", label,
		    res.body ? res.body : "(none)");
	json_array_foreach(json_object_get(exp, "body_absent"), i, e)
		ck_assert_msg(got != NULL && cases_path(got,
		    json_string_value(e)) == NULL, "%s: body has %s: %s",
		    label, json_string_value(e), res.body ? res.body :
		    "(none)");
	if (json_is_true(json_object_get(exp, "no_body")))
		ck_assert_msg(res.body == NULL, "%s: unexpected body %s",
		    label, res.body);
	json_decref(got);
	policy_result_clear(&res);
	policy_req_clear(&req);
	for (i = 0; i < POLICY_MAX_FACTS; i++)
		free(fbody[i]);
	free(btext);
	policy_unref(pol);
}
END_TEST

/* Compare names for a stable order of files. */
static int
cases_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *)a, *(char *const *)b));
}

/* Load every *.json file of the cases directory. */
static void
cases_load(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		*names[512], path[1024];
	size_t		 nn = 0, i, j, len;
	json_t		*g, *c;
	json_error_t	 jerr;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "check_cases: %s: cannot open\n", dir);
		exit(1);
	}
	while ((de = readdir(d)) != NULL && nn < 512) {
		len = strlen(de->d_name);
		if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0)
			names[nn++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nn, sizeof(names[0]), cases_cmp);
	for (i = 0; i < nn; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((g = json_load_file(path, JSON_REJECT_DUPLICATES,
		    &jerr)) == NULL) {
			fprintf(stderr, "check_cases: %s:%d:%d: %s\n", path,
			    jerr.line, jerr.column, jerr.text);
			exit(1);
		}
		json_array_foreach(json_object_get(g, "cases"), j, c) {
			if (ncases >= CASES_MAX)
				break;
			cases[ncases].group = g;
			cases[ncases].c = c;
			snprintf(cases[ncases].file,
			    sizeof(cases[ncases].file), "%s", names[i]);
			ncases++;
		}
		free(names[i]);
	}
}

int
main(void)
{
	const char	*dir = getenv("CASES_DIR");
	Suite		*s = suite_create("cases");
	TCase		*tc = tcase_create("corpus");
	SRunner		*sr;
	int		 nf;

	if (dir == NULL || dir[0] == '\0')
		dir = TOP_SRCDIR "/tests/cases";
	cases_dir = dir;
	cases_load(dir);
	printf("check_cases: %zu cases from %s\n", ncases, dir);
	if (ncases == 0)
		return (EXIT_FAILURE);
	tcase_add_loop_test(tc, test_case, 0, (int)ncases);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
