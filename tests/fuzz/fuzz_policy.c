/*
 * fuzz_policy: the policy file loader (policy_load_buffer), then
 * policy_summary, profile resolution and one decision per profile.
 *
 * Invariants: a refused file has a message; a loaded one summarises,
 * resolves every identity to one of its profiles (or the built-in one),
 * and decides a fixed request without failing. The same bytes read by
 * the library's JSON reader (jf_loadb, policy/jsonload.c) give what
 * jansson's json_loadb() gives: the same value, or the same message,
 * line, column, position and error code; and the create path's body
 * parser (jn_parse) gives that value or refuses with that message.
 */
#include "config.h"

#include <stdint.h>

#include "fuzz_common.h"
#include "policy-int.h"
#include "../body_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* jf_loadb() against json_loadb() with one set of flags. */
static void
json_reader_same(const uint8_t *data, size_t size, int flags)
{
	json_error_t	 ea, eb;
	json_t		*a, *b;
	char		*da, *db;

	a = json_loadb((const char *)data, size, flags, &ea);
	b = jf_loadb(data, size, flags, &eb);
	FCHECK((a == NULL) == (b == NULL), "flags %d: jansson %s, reader %s",
	    flags, a != NULL ? "loads" : ea.text, b != NULL ? "loads" :
	    eb.text);
	if (a != NULL) {
		da = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
		db = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
		FCHECK(da != NULL && db != NULL && strcmp(da, db) == 0,
		    "flags %d: values %s vs %s", flags, da, db);
		free(da);
		free(db);
	} else
		FCHECK(strcmp(ea.text, eb.text) == 0 && ea.line == eb.line &&
		    ea.column == eb.column &&
		    json_error_code(&ea) == json_error_code(&eb),
		    "flags %d: \"%s\" %d:%d vs \"%s\" %d:%d", flags, ea.text,
		    ea.line, ea.column, eb.text, eb.line, eb.column);
	FCHECK(ea.position == eb.position, "flags %d: position %d vs %d",
	    flags, ea.position, eb.position);
	json_decref(a);
	json_decref(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	 body[] = "{\"Image\":\"busybox\",\"HostConfig\":"
	    "{\"Binds\":[\"/srv/x:/x\"],\"Memory\":1}}";
	struct policy		*pol;
	struct policy_error	 err;
	struct policy_identity	 id;
	struct policy_req	 req;
	struct policy_result	 res;
	struct policy_rate	 rate;
	const struct policy_profile *pp;
	const char		*why;
	char			*s, diff[1024];
	int			 uid;

	json_reader_same(data, size, JSON_REJECT_DUPLICATES);
	json_reader_same(data, size, JSON_DECODE_ANY);
	json_reader_same(data, size, JSON_DISABLE_EOF_CHECK);
	FCHECK(!body_parser_differs(data, size, diff, sizeof(diff)),
	    "body parser: %s", diff);
	memset(&err, 0, sizeof(err));
	pol = policy_load_buffer((const char *)data, size, "fuzz", &err);
	if (pol == NULL) {
		FCHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL &&
		    err.text[0] != '\0', "refused without a message");
		return 0;
	}
	s = policy_summary(pol);
	FCHECK(s != NULL, "no summary");
	free(s);
	if (policy_req_parse(&req, "POST", "/v1.41/containers/create",
	    25, &why) == -1)
		abort();
	req.body = (const unsigned char *)body;
	req.body_len = sizeof(body) - 1;
	req.has_body = 1;
	req.content_type = "application/json";
	req.owner = "uid:0";
	for (uid = 0; uid < 1002; uid += 1001) {
		memset(&id, 0, sizeof(id));
		id.listener = "unix:/run/dockgate.sock";
		id.has_cred = 1;
		id.uid = (uid_t)uid;
		id.gid = (gid_t)uid;
		id.cert_cn = uid ? "build-runner" : NULL;
		pp = policy_resolve(pol, &id);
		if (pp != NULL) {
			FCHECK(policy_profile_name(pp) != NULL, "name");
			/* NULL: the built-in profile, not in the file */
			FCHECK(policy_profile_find(pol,
			    policy_profile_name(pp)) == pp ||
			    policy_profile_find(pol,
			    policy_profile_name(pp)) == NULL,
			    "profile %s found as another",
			    policy_profile_name(pp));
			(void)policy_profile_flag(pp, "privileged");
			(void)policy_profile_rate(pp, &rate);
			(void)policy_profile_redacts(pp, "env");
		}
		FCHECK(policy_eval(pol, pp, &req, NULL, &res) == 0,
		    "eval failed");
		policy_result_clear(&res);
	}
	policy_req_clear(&req);
	pol = policy_ref(pol);
	policy_unref(pol);
	policy_unref(pol);
	return 0;
}
