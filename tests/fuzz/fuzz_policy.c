/*
 * fuzz_policy: the policy file loader (policy_load_buffer), then
 * policy_summary, profile resolution and one decision per profile.
 *
 * Invariants: a refused file has a message; a loaded one summarises,
 * resolves every identity to one of its profiles (or the built-in one),
 * and decides a fixed request without failing.
 */
#include "config.h"

#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

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
	char			*s;
	int			 uid;

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
