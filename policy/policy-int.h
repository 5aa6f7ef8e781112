/*
 * dockgate policy library: internal declarations shared by its files.
 */
#ifndef DOCKGATE_POLICY_INT_H
#define DOCKGATE_POLICY_INT_H

#include <stdarg.h>
#include <jansson.h>

#include "policy.h"

#define PROFILE_NAME_MAX	64
#define POLICY_MAX_PROFILES	256
#define POLICY_MAX_IDENTITIES	1024
#define POLICY_MAX_LIST		1024
#define POLICY_MAX_STRING	1024
#define REF_MAX			512	/* normalised image reference */
#define JF_KEY_MAX		128	/* longest struct field key we fold */

/* A list of strings owned by a profile. */
struct strlist {
	char	**v;
	size_t	  n;
};

enum ports_mode {
	PORTS_LOOPBACK = 0,
	PORTS_ANY,
	PORTS_NONE,
};

/* The effective (inheritance resolved) settings of one profile. */
struct policy_profile {
	char		 name[PROFILE_NAME_MAX];

	/* Permissions: 1 allows. */
	int		 unrestricted;
	int		 privileged;
	int		 host_namespaces;
	int		 devices;
	int		 unconfined;
	int		 cgroup_parent;
	int		 build;
	int		 buildkit;
	int		 image_import;
	int		 image_load;
	int		 plugins;
	int		 swarm;
	int		 read_others;

	/* Requirements: 1 enforces. */
	int		 drop_all_capabilities;
	int		 run_as_non_root;
	int		 no_new_privileges;
	int		 read_only_rootfs;
	int		 ownership;

	struct strlist	 trusted_registries;	/* normalised prefixes */
	struct strlist	 local_images;		/* normalised prefixes */
	struct strlist	 capabilities;		/* upper case, no CAP_ */
	struct strlist	 host_paths;		/* clean absolute paths */
	struct strlist	 sysctls;
	struct strlist	 runtimes;
	struct strlist	 network_drivers;
	struct strlist	 redact;
	struct strlist	 ep_allow;
	struct strlist	 ep_deny;
	int		 ep_allow_set;		/* else the default list */

	int64_t		 mem_default;		/* bytes; 0 = none */
	int64_t		 mem_max;
	int64_t		 pids_default;
	int64_t		 pids_max;
	int64_t		 cpus_default;		/* nano CPUs; 0 = none */
	int64_t		 cpus_max;
	enum ports_mode	 ports;

	double		 rate_rps;		/* 0 = none */
	int64_t		 rate_burst;
	int64_t		 rate_concurrent;
};

/* One identities[] entry. */
struct policy_ident {
	char		*listener;
	int		 has_uid, has_gid;
	uid_t		 uid;
	gid_t		 gid;
	char		*cert_cn;
	size_t		 profile;		/* index into profiles */
};

struct policy {
	int			 refs;
	char			*source;
	struct policy_profile	*profiles;
	size_t			 nprofiles;
	struct policy_ident	*idents;
	size_t			 nidents;
	int			 has_default;
	size_t			 default_profile;
	struct policy_profile	 builtin;	/* every key at its safe value */
};

/* The state of one policy_eval() call. */
struct eval {
	const struct policy		*pol;
	const struct policy_profile	*pr;
	const struct policy_req		*req;
	const struct policy_facts	*facts;
	struct policy_result		*res;
	int				 mutated;
};

/* Outcome of a check: go on, or the result is decided. */
#define EV_OK		0
#define EV_DONE		(-1)

/* profile.c */
void		 profile_safe(struct policy_profile *);
int		 profile_builtin(struct policy_profile *, const char *);
void		 profile_free(struct policy_profile *);
int		 strlist_has(const struct strlist *, const char *);
int		 strlist_add(struct strlist *, const char *);
void		 strlist_free(struct strlist *);
int		 profile_parse_size(const char *, int64_t *);
void		 profile_fmt_size(char *, size_t, int64_t);
char		*profile_summary(const struct policy_profile *);

/* endpoint.c */
int		 endpoint_valid(const char *, const char **);
int		 endpoint_match(const char *, const char *, const char *);
const char	*endpoint_find(const struct strlist *, const char *,
		    const char *);
const char	*endpoint_find_default(const char *, const char *);
extern const char *const endpoint_defaults[];

/* imageref.c */
struct imageref {
	char	 repo[REF_MAX];		/* domain/path, normalised */
	char	 tag[130];
	char	 digest[160];
};
int		 imageref_parse(const char *, struct imageref *);
int		 imageref_is_id(const char *);
int		 imageref_prefix(const char *, char *, size_t);
int		 imageref_under(const char *, const struct strlist *);

/* hostpath.c */
int		 hostpath_clean(const char *, char *, size_t);
int		 hostpath_under(const char *, const char *);
const char	*hostpath_allowed(const char *, const struct strlist *);
int		 hostpath_is_engine_socket(const char *);

/* jsonfold.c */
enum jf_type {
	JF_BOOL,
	JF_INT,
	JF_UINT,
	JF_STR,
	JF_STRLIST,	/* []string */
	JF_STRSLICE,	/* string or []string (strslice.StrSlice) */
	JF_STRMAP,	/* map[string]string */
	JF_SET,		/* map[string]struct{} */
	JF_OBJ,		/* struct */
	JF_OBJLIST,	/* []struct */
	JF_OBJMAP,	/* map[string]*struct */
	JF_OBJLISTMAP,	/* map[string][]struct (nat.PortMap) */
	JF_UINT2,	/* [2]uint */
	JF_ANY,		/* decoded by the engine, not a policy matter */
};

struct jf_schema;
struct jf_field {
	const char		*name;
	enum jf_type		 type;
	const struct jf_schema	*sub;
};
struct jf_schema {
	const char		*name;
	const struct jf_field	*fields;
	size_t			 nfields;
	int			 unknown_deny;	/* else unknown keys dropped */
};

int		 jf_fold(const char *, char *, size_t);
int		 jf_field_index(const struct jf_schema *, const char *);
int		 jf_canon(struct eval *, const struct jf_schema *, json_t *,
		    const char *, json_t **);
int		 jf_canon_value(struct eval *, const struct jf_field *,
		    json_t *, const char *, json_t **);
json_t		*jf_parse(struct eval *, int);

/* schema.c */
extern const struct jf_schema schema_config;
extern const struct jf_schema schema_hostconfig;
extern const struct jf_schema schema_networking;
extern const struct jf_schema schema_update;
extern const struct jf_schema schema_exec;
extern const struct jf_schema schema_volume_create;
extern const struct jf_schema schema_network_create;
extern const struct jf_schema schema_mount;

/* eval.c */
int		 ev_deny(struct eval *, int, const char *, const char *, ...)
		    __attribute__((__format__(__printf__, 4, 5)));
int		 ev_malformed(struct eval *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
int		 ev_mutation(struct eval *, const char *, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));
int		 ev_param(struct eval *, const char *, const char **);
int		 ev_fact(struct eval *, const char *,
		    const struct policy_fact **);
json_t		*ev_fact_json(struct eval *, const struct policy_fact *);
int		 ev_set_body(struct eval *, json_t *);
char		*ev_encode(const char *, int);
int		 ev_image_allowed(struct eval *, const char *, const char *);
int		 ev_user_nonroot(const char *, int *);

/* create.c */
int		 create_eval(struct eval *);
int		 update_eval(struct eval *);
int		 exec_eval(struct eval *);

/* mounts.c */
int		 mounts_bind_source(struct eval *, const char *, const char *,
		    int);
int		 mounts_local_options(struct eval *, json_t *, const char *);
int		 mounts_named_volume(struct eval *, const char *, const char *);
int		 mounts_check(struct eval *, json_t *);

/* owner.c */
int		 owner_eval(struct eval *);
int		 owner_label(struct eval *, json_t *);
int		 owner_labels_ok(struct eval *, json_t *, const char *,
		    const char *, int, int);
int		 owner_container(struct eval *, const char *, int);
int		 owner_network(struct eval *, const char *, int);

/* objects.c */
int		 objects_volume_create(struct eval *);
int		 objects_network_create(struct eval *);
int		 objects_image_create(struct eval *);
int		 objects_tag(struct eval *);
int		 objects_commit(struct eval *);
int		 objects_build(struct eval *);
int		 objects_start(struct eval *);
int		 objects_local_name(struct eval *, const char *, const char *);

#endif /* DOCKGATE_POLICY_INT_H */
