/*
 * fuzz_imageref: image references (imageref_parse, imageref_prefix,
 * imageref_is_id, imageref_under) and host paths (hostpath_clean).
 *
 * Input: byte 0 bit 0 picks the host-path checks; the rest is the string.
 * Invariants: a parsed reference is normalised: parsing its own
 * repo[:tag][@digest] gives the same parts, its repository is its own
 * prefix and is under it; a clean path is clean again unchanged, and is
 * under itself.
 */
#include "config.h"

#include <stdint.h>

#include "policy-int.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_ref(const char *s)
{
	struct imageref	 r, r2;
	struct strlist	 l;
	char		 again[REF_MAX * 2], pre[REF_MAX], *v[1];

	(void)imageref_is_id(s);
	if (imageref_prefix(s, pre, sizeof(pre)) == 0) {
		char pre2[REF_MAX];

		FCHECK(imageref_prefix(pre, pre2, sizeof(pre2)) == 0,
		    "prefix \"%s\" of \"%s\" is not a prefix", pre, s);
		FCHECK(strcmp(pre, pre2) == 0, "prefix \"%s\" -> \"%s\"", pre,
		    pre2);
	}
	if (imageref_parse(s, &r) == -1)
		return;
	FCHECK(r.repo[0] != '\0', "empty repo for \"%s\"", s);
	FCHECK(r.tag[0] != '\0' || r.digest[0] != '\0', "no tag, no digest");
	/* Docker bounds the normalised path (not the host) to 255 bytes */
	FCHECK(strlen(strchr(r.repo, '/') + 1) <= 255, "path of \"%s\" over"
	    " 255 bytes (from \"%s\")", r.repo, s);
	snprintf(again, sizeof(again), "%s%s%s%s%s", r.repo,
	    r.tag[0] ? ":" : "", r.tag, r.digest[0] ? "@" : "", r.digest);
	FCHECK(imageref_parse(again, &r2) == 0, "\"%s\" -> \"%s\" does not "
	    "parse", s, again);
	FCHECK(strcmp(r.repo, r2.repo) == 0, "repo \"%s\" -> \"%s\" (from "
	    "\"%s\")", r.repo, r2.repo, s);
	FCHECK(strcmp(r.tag, r2.tag) == 0, "tag \"%s\" -> \"%s\"", r.tag,
	    r2.tag);
	FCHECK(strcmp(r.digest, r2.digest) == 0, "digest");
	FCHECK(imageref_prefix(r.repo, pre, sizeof(pre)) == 0,
	    "repo \"%s\" (from \"%s\") is not a valid prefix", r.repo, s);
	FCHECK(strcmp(pre, r.repo) == 0, "repo \"%s\" as a prefix is \"%s\"",
	    r.repo, pre);
	v[0] = pre;
	l.v = v;
	l.n = 1;
	FCHECK(imageref_under(r.repo, &l), "repo not under itself");
}

static void
fuzz_path(const char *s)
{
	char	 out[1024], out2[1024];

	if (hostpath_clean(s, out, sizeof(out)) == -1)
		return;
	FCHECK(out[0] == '/', "clean path \"%s\"", out);
	FCHECK(hostpath_clean(out, out2, sizeof(out2)) == 0 &&
	    strcmp(out, out2) == 0, "clean(\"%s\") = \"%s\" is not clean",
	    s, out);
	FCHECK(strstr(out, "//") == NULL, "\"%s\"", out);
	FCHECK(hostpath_under(out, out), "not under itself");
	(void)hostpath_is_engine_socket(out, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s;

	if (size < 1 || size > 4096)
		return 0;
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_path(s);
	else
		fuzz_ref(s);
	free(s);
	return 0;
}
