/*
 * fuzz_reqnorm: request-target normalisation (policy_req_parse) and the
 * target dockgate forwards (policy_req_target).
 *
 * Input: byte 0 picks the method; the rest is the raw request target.
 * Invariants: a parsed target's route is a suffix of its path starting
 * with '/', the version is digits and dots, the path is clean; the
 * forwarded target parses back to the same request and is a fixed point;
 * the encoders round-trip through the decoder.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const methods[] = {
	"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH",
	"CONNECT",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_req	 req;
	const char		*why = NULL, *method;
	char			*enc, *dec, *t;
	size_t			 i;
	int			 rv;

	if (size < 1)
		return 0;
	method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	/*
	 * The API takes (target, length): the copy has no NUL after it, so
	 * ASan sees any read past the length (lenient "reqnorm-nul" adds
	 * one, as the daemon's URL buffer has).
	 */
	if ((t = malloc(size)) == NULL)
		return 0;
	memcpy(t, data + 1, size - 1);
	if (fuzz_lenient("reqnorm-nul"))
		t[size - 1] = '\0';
	else if (size - 1 > 0) {
		free(t);
		if ((t = malloc(size - 1)) == NULL)
			return 0;
		memcpy(t, data + 1, size - 1);
	}
	rv = policy_req_parse(&req, method, t, size - 1, &why);
	free(t);
	if (rv == -1) {
		FCHECK(why != NULL && why[0] != '\0', "no reason");
		return 0;
	}
	FCHECK(req.path != NULL && req.path[0] == '/', "path");
	FCHECK(req.route != NULL && req.route[0] == '/', "route");
	FCHECK(req.route >= req.path &&
	    req.route <= req.path + strlen(req.path), "route in path");
	for (i = 0; req.version[i] != '\0'; i++)
		FCHECK(isdigit((unsigned char)req.version[i]) ||
		    req.version[i] == '.', "version \"%s\"", req.version);
	FCHECK((req.version[0] != '\0') == (req.route != req.path),
	    "version \"%s\" but route offset %zu", req.version,
	    (size_t)(req.route - req.path));
	FCHECK(strstr(req.path, "//") == NULL, "unclean path \"%s\"",
	    req.path);
	fuzz_target_fixed_point(&req);

	/* The path encoder and decoder agree. */
	if ((enc = policy_encode(req.path, 0)) != NULL) {
		FCHECK(policy_path_decode(enc, strlen(enc), &dec, &why) == 0,
		    "encoded path \"%s\" does not decode: %s", enc, why);
		FCHECK(strcmp(dec, req.path) == 0, "path round trip");
		free(dec);
		free(enc);
	}
	policy_req_clear(&req);
	return 0;
}
