/*
 * dockgate policy library: request in, decision out.
 *
 * Pure: no sockets, no libevent, no logging, no global state. Everything the
 * daemon needs from the policy goes through this header.
 *
 * Ownership follows jansson's words: a function that returns a "new"
 * pointer hands the caller a reference (or allocation) to release; a
 * "borrowed" pointer lives as long as the object it came from.
 */
#ifndef DOCKGATE_POLICY_H
#define DOCKGATE_POLICY_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

/* A load or validation error: where and what. */
struct policy_error {
	int	 line;			/* 1-based; 0 when not known */
	int	 column;		/* 1-based; 0 when not known */
	char	 path[256];		/* key path, e.g. "profiles.ci.memory.max" */
	char	 text[512];		/* whole message, ready to print */
};

struct policy;				/* opaque, immutable once loaded */
struct policy_profile;			/* borrowed from its policy */

/* Who is asking. Strings are borrowed for the duration of the call. */
struct policy_identity {
	const char	*listener;	/* listener ADDR exactly as given */
	int		 has_cred;	/* unix peer credentials known */
	uid_t		 uid;
	gid_t		 gid;
	pid_t		 pid;
	const char	*cert_cn;	/* verified client certificate CN or NULL */
};

/* One decoded query parameter. */
struct policy_param {
	char	*name;
	char	*value;
};

/*
 * A normalised request, built by policy_req_parse() from the request line.
 * The daemon fills the header and body fields itself.
 */
struct policy_req {
	char			 method[16];	/* as sent: "GET", "POST", ... */
	char			*path;		/* percent-decoded, with version prefix */
	const char		*route;		/* into path: after the version prefix */
	char			 version[16];	/* "1.41", or "" when absent */
	struct policy_param	*params;	/* decoded, in order */
	size_t			 nparams;

	const char		*content_type;	/* borrowed; NULL when absent */
	int			 has_body;	/* the client sends a body */
	const unsigned char	*body;		/* buffered body (inspected mode) */
	size_t			 body_len;

	/* Addition: the owner label value for this client under "ownership"
	 * ("uid:1000" or "cn:NAME"), set by the daemon; NULL when unknown. */
	const char		*owner;

	/* Addition: sockets the daemon itself uses (the engine's, its own
	 * listeners), their real paths included; NULL-terminated or NULL.
	 * Like the well-known engine sockets, they and every directory that
	 * holds them are never allowed as bind sources. */
	const char *const	*protected_paths;
};

/* How the daemon must treat a request body. */
enum policy_body_mode {
	POLICY_BODY_BUFFER = 0,	/* read it whole (bounded), decide on it */
	POLICY_BODY_STREAM,	/* decide first, then relay it as it comes */
};

enum policy_verdict {
	POLICY_ALLOW = 0,	/* forward as is */
	POLICY_MUTATE,		/* forward result.body and/or result.target */
	POLICY_DENY,		/* answer result.status (403, 404, 429...) */
	POLICY_MALFORMED,	/* answer result.status (400, 413) */
	POLICY_LOOKUP,		/* ask the engine GET result.lookup, then again */
};

#define POLICY_MAX_MUTATIONS	16
#define POLICY_MAX_FACTS	8

/* What policy_eval() decided. Clear with policy_result_clear(). */
struct policy_result {
	enum policy_verdict	 verdict;
	int			 status;	/* HTTP status for DENY/MALFORMED */
	char			 rule[64];	/* rule id, e.g. "privileged" */
	char			 reason[512];	/* human reason, names the key */
	char			 profile[64];	/* profile that decided */
	char			 endpoint[128];	/* matched pattern, "" when none */

	char			*body;		/* new: body to forward, or NULL */
	size_t			 body_len;
	char			*target;	/* new: path?query to forward, or NULL */

	char			*mutations[POLICY_MAX_MUTATIONS];	/* new */
	size_t			 nmutations;

	char			 lookup[512];	/* POLICY_LOOKUP: engine path (and
						   query) to GET, percent-encoded */

	/* Addition: allowed by read_others on an object the caller does not
	 * own: the daemon redacts the answer as the profile's "redact" says. */
	int			 not_owned;

	/* Addition: a list answer the daemon must pass through
	 * policy_filter_owned() (profiles with "owner_sees"). */
	int			 filter_owned;
};

/* One engine answer the daemon fetched for a POLICY_LOOKUP. */
struct policy_fact {
	const char	*path;		/* the lookup path that was asked */
	int		 status;	/* engine's HTTP status; 0 = unreachable */
	const char	*body;		/* response body (JSON) */
	size_t		 body_len;
};

struct policy_facts {
	struct policy_fact	 fact[POLICY_MAX_FACTS];
	size_t			 n;
};

/* policy.c */
struct policy	*policy_load_file(const char *, struct policy_error *);
struct policy	*policy_load_buffer(const char *, size_t, const char *,
		    struct policy_error *);
struct policy	*policy_ref(struct policy *);
void		 policy_unref(struct policy *);
char		*policy_summary(const struct policy *);
const struct policy_profile *
		 policy_resolve(const struct policy *,
		    const struct policy_identity *);
const char	*policy_profile_name(const struct policy_profile *);

/* load.c: additions */
struct policy_rate {
	double		 requests_per_second;	/* 0 = none */
	int64_t		 burst;
	int64_t		 concurrent;
};
const struct policy_profile *
		 policy_profile_find(const struct policy *, const char *);
int		 policy_profile_flag(const struct policy_profile *,
		    const char *);
int		 policy_profile_rate(const struct policy_profile *,
		    struct policy_rate *);
int		 policy_profile_redacts(const struct policy_profile *,
		    const char *);

/* eval.c */
enum policy_body_mode
		 policy_body_mode(const struct policy_req *);
int		 policy_eval(const struct policy *,
		    const struct policy_profile *, const struct policy_req *,
		    const struct policy_facts *, struct policy_result *);
void		 policy_result_clear(struct policy_result *);
const char	*policy_verdict_name(enum policy_verdict);

/* build.c: additions */
const char	*policy_build_dockerfile(const struct policy_req *);
int		 policy_eval_dockerfile(const struct policy *,
		    const struct policy_profile *, const struct policy_req *,
		    const char *, size_t, const struct policy_facts *,
		    struct policy_result *);

/* redact.c */
int		 policy_redact(const struct policy_profile *, const char *,
		    size_t, char **, size_t *);
int		 policy_filter_owned(const struct policy_profile *,
		    const char *, const char *, size_t, char **, size_t *);

/* preset.c: built-in profiles, named "preset:NAME" in extends */
#define POLICY_PRESET_PREFIX	"preset:"
char		*policy_preset_text(const char *);
const char	*policy_preset_name(size_t);

/* reqnorm.c */
int		 policy_req_parse(struct policy_req *, const char *,
		    const char *, size_t, const char **);
void		 policy_req_clear(struct policy_req *);
const char	*policy_req_param(const struct policy_req *, const char *,
		    int *);
char		*policy_req_target(const struct policy_req *);
int		 policy_path_decode(const char *, size_t, char **,
		    const char **);
char		*policy_encode(const char *, int);

#endif /* DOCKGATE_POLICY_H */
