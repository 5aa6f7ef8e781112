/*
 * dockgate policy library: internal declarations shared by its files.
 */
#ifndef DOCKGATE_POLICY_INT_H
#define DOCKGATE_POLICY_INT_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
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
	struct strlist	 owner_sees;		/* profile names */
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
	struct jn_arena			*arena;		/* the body's trees */
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
#define EP_MAX_SEGS	64
/* A route split once per request; ok is 0 when it has too many
 * segments (then no pattern matches it). */
struct ep_route {
	const char	*method;
	size_t		 mlen;
	int		 ok;
	size_t		 n;
	const char	*seg[EP_MAX_SEGS];
	size_t		 len[EP_MAX_SEGS];
};
void		 endpoint_route(struct ep_route *, const char *,
		    const char *);
int		 endpoint_match_route(const char *, const struct ep_route *);
const char	*endpoint_find_route(const struct strlist *,
		    const struct ep_route *);
const char	*endpoint_find_default_route(const struct ep_route *);
extern const char *const endpoint_defaults[];

/* preset.c */
json_t		*preset_profile(const char *, int *);
void		 preset_names(char *, size_t);

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
int		 hostpath_is_engine_socket(const char *, const char *const *);

/* jsonfold.c */
enum jf_type {
	JF_BOOL,
	JF_PBOOL,	/* *bool: false is not absent */
	JF_INT,
	JF_PINT,	/* *int64: 0 is not absent */
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
/* A hashed index of a schema's field names, folded (built once). */
#define JF_LOOKUP_SLOTS	256
struct jf_lookup {
	unsigned char	 slot[JF_LOOKUP_SLOTS];	/* field index + 1; 0 empty */
	unsigned char	 exact[JF_LOOKUP_SLOTS];	/* same, by exact name */
	unsigned char	 len[128];		/* strlen of each name */
	unsigned int	 hash[128];		/* jn_hash() of each name */
	int		 exact_ok;	/* no two names equal but for case */
};
struct jf_schema {
	const char		*name;
	const struct jf_field	*fields;
	size_t			 nfields;
	int			 unknown_deny;	/* else unknown keys dropped */
	struct jf_lookup	*lookup;	/* NULL: scanned in turn */
	int			 zero_drop;	/* 0, "", false left out */
};

/*
 * A parsed body: a light tree in an arena, in the input's key order,
 * with exactly what jansson's json_loadb(JSON_REJECT_DUPLICATES |
 * JSON_DECODE_ANY) would hold (bodies it would refuse are refused with
 * its own message).
 */
enum jn_type {
	JN_NULL, JN_TRUE, JN_FALSE, JN_INT, JN_REAL, JN_STR, JN_ARR, JN_OBJ
};
struct jn {
	struct jn	*next;		/* next element or member */
	const char	*key;		/* member of an object: its key */
	size_t		 keylen;
	unsigned int	 keyhash;	/* jn_hash(); 0 on canonical fields */
	unsigned char	 type;		/* enum jn_type */
	size_t		 n;		/* string length; elements; members */
	union {
		json_int_t	 i;
		double		 r;
		const char	*s;	/* NUL-terminated */
		struct jn	*kid;	/* first element or member */
	} u;
};
struct jn_chunk;
struct jn_arena {
	char		*cur, *end;
	struct jn_chunk	*chunks;
	char		 first[12288] __attribute__((__aligned__(16)));
};
/* An object's members as a reader (or the canonicaliser) appends them:
 * duplicate keys found by hash, with a small bloom filter in front (512
 * bits: a create's HostConfig has ~75 keys). */
#define JN_BLOOM_WORDS	8
struct jn_members {
	struct jn	*obj;
	struct jn	**tail;
	uint64_t	 bloom[JN_BLOOM_WORDS];
};
/* A key path, formatted only when an error names it. */
struct jf_path {
	const struct jf_path	*up;
	const char		*s;	/* root string, or key */
	size_t			 idx;
	int			 kind;	/* JFP_* */
};
#define JFP_ROOT	0	/* s itself */
#define JFP_FIELD	1	/* up.s ("." only when up is not "") */
#define JFP_INDEX	2	/* up[idx] */
#define JFP_MAPKEY	3	/* up.s */

/* A key folded once, for lookups in several schemas. */
struct jf_key {
	char		 f[JF_KEY_MAX];
	size_t		 len;
	unsigned int	 hash;
	int		 ok;		/* 0: too long, matches nothing */
};
int		 jf_fold(const char *, char *, size_t);
void		 jf_key_fold(const char *, struct jf_key *);
int		 jf_field_index(const struct jf_schema *, const char *);
int		 jf_field_index_key(const struct jf_schema *,
		    const struct jf_key *);
int		 jf_field_index_jn(const struct jf_schema *,
		    const struct jn *);
int		 jf_field_index_exact(const struct jf_schema *,
		    const struct jn *);
size_t		 jf_field_len(const struct jf_schema *, size_t);
int		 jf_zero_dropped(const struct jf_schema *, size_t,
		    const struct jn *);
int		 jf_canon(struct eval *, const struct jf_schema *, json_t *,
		    const char *, json_t **);
int		 jf_canon_jn(struct eval *, const struct jf_schema *,
		    const struct jn *, const struct jf_path *, struct jn **);
int		 jf_canon_value(struct eval *, const struct jf_field *,
		    const struct jn *, const struct jf_path *, struct jn **);
json_t		*jf_parse(struct eval *, int);
void		 jn_arena_init(struct jn_arena *);
void		 jn_arena_free(struct jn_arena *);
struct jn	*jn_parse(struct eval *, struct jn_arena *, int);
void		*jn_alloc_chunk(struct jn_arena *, size_t);
unsigned int	 jn_hash(const char *, size_t);
struct jn	*jn_from_json(struct jn_arena *, json_t *);
json_t		*jn_to_json(const struct jn *);
struct jn	*jn_dup(struct jn_arena *, const struct jn *);
struct jn	*jn_new_int(struct jn_arena *, json_int_t);
struct jn	*jn_new_str(struct jn_arena *, const char *);
struct jn	*jn_new_bool(struct jn_arena *, int);
struct jn	*jn_kids(const struct jn *, int);
struct jn	*jn_getn(const struct jn *, const char *, size_t);
void		 jn_append(struct jn *, struct jn *, const char *, size_t);
void		 jn_set(struct jn *, const char *, struct jn *);

/* n bytes from the arena (8-aligned); NULL when memory ran out. */
static inline void *
jn_alloc(struct jn_arena *a, size_t n)
{
	void	*p;

	n = (n + 7) & ~(size_t)7;
	if ((size_t)(a->end - a->cur) < n)
		return (jn_alloc_chunk(a, n));
	p = a->cur;
	a->cur += n;
	return (p);
}

/*
 * Length of the run of plain string bytes at p: no control byte, '"' or
 * '\\', and no byte >= 0x80 when high_stops. Eight at a time while
 * eight are left: each stop byte is found exactly (bit 7 of its lane),
 * the first by its position.
 */
static inline size_t
jf_plain_run(const unsigned char *p, const unsigned char *end, int high_stops)
{
	const uint64_t		 low7 = 0x7f7f7f7f7f7f7f7fULL;
	const uint64_t		 ones = 0x0101010101010101ULL;
	const unsigned char	*s = p;
	uint64_t		 w, q, b, stop;

	while (end - p >= 8) {
		memcpy(&w, p, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		stop = ~((((q & low7) + low7) | q | low7) &
		    (((b & low7) + low7) | b | low7) &
		    (((w & low7) + ones * (0x80 - 0x20)) | w | low7));
		if (high_stops)
			stop |= w & ~low7;
		if (stop != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return ((p - s) + (__builtin_ctzll(stop) >> 3));
#else
			break;
#endif
		}
		p += 8;
	}
	while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 &&
	    (*p < 0x80 || !high_stops))
		p++;
	return (p - s);
}

/* A zeroed node of the given type from the arena. */
static inline struct jn *
jn_new(struct jn_arena *a, int type)
{
	struct jn	*n;

	if ((n = jn_alloc(a, sizeof(*n))) == NULL)
		return (NULL);
	memset(n, 0, sizeof(*n));
	n->type = type;
	return (n);
}

/* Are the n bytes at a and b the same? Short keys: compared a word at a
 * time, without a call. */
static inline int
jf_same(const char *a, const char *b, size_t n)
{
	uint64_t	x, y;

	if (n < 8) {
		while (n-- > 0)
			if (*a++ != *b++)
				return (0);
		return (1);
	}
	for (; n > 8; a += 8, b += 8, n -= 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return (0);
	}
	memcpy(&x, a + n - 8, 8);	/* the last eight, overlapping */
	memcpy(&y, b + n - 8, 8);
	return (x == y);
}

/* The member of obj under exactly key, or NULL (obj NULL or not an
 * object included); inline so that a literal key's length is known. */
static inline struct jn *
jn_get(const struct jn *obj, const char *key)
{
	return (jn_getn(obj, key, strlen(key)));
}

/* A string member's value, or "" when absent or not a string. */
static inline const char *
jn_str(const struct jn *obj, const char *key)
{
	const struct jn	*v = jn_get(obj, key);

	return (v != NULL && v->type == JN_STR ? v->u.s : "");
}

/* An integer member's value, or 0 when absent or not an integer. */
static inline json_int_t
jn_int(const struct jn *obj, const char *key)
{
	const struct jn	*v = jn_get(obj, key);

	return (v != NULL && v->type == JN_INT ? v->u.i : 0);
}

/* Is a member true (absent or any other value: no)? */
static inline int
jn_true(const struct jn *obj, const char *key)
{
	const struct jn	*v = jn_get(obj, key);

	return (v != NULL && v->type == JN_TRUE);
}

/* Start appending members to the object obj. */
static inline void
jn_members_init(struct jn_members *m, struct jn *obj)
{
	m->obj = obj;
	m->tail = &obj->u.kid;
	memset(m->bloom, 0, sizeof(m->bloom));
}

/* The member already under key k (hash h), or NULL. */
static inline struct jn *
jn_members_find(const struct jn_members *m, const char *k, size_t kl,
    unsigned int h)
{
	struct jn	*prev;

	if ((m->bloom[(h >> 6) & (JN_BLOOM_WORDS - 1)] &
	    ((uint64_t)1 << (h & 63))) == 0)
		return (NULL);
	for (prev = m->obj->u.kid; prev != NULL; prev = prev->next)
		if (prev->keyhash == h && prev->keylen == kl &&
		    memcmp(prev->key, k, kl) == 0)
			return (prev);
	return (NULL);
}

/* Append c as the member under key k (hash h), in input order. */
static inline void
jn_members_add(struct jn_members *m, struct jn *c, const char *k, size_t kl,
    unsigned int h)
{
	m->bloom[(h >> 6) & (JN_BLOOM_WORDS - 1)] |= (uint64_t)1 << (h & 63);
	c->key = k;
	c->keylen = kl;
	c->keyhash = h;
	*m->tail = c;
	m->tail = &c->next;
	m->obj->n++;
}

/* jsonload.c: json_loadb()'s answers, out of memory told apart */
struct jn	*jn_load(struct jn_arena *, const void *, size_t, int,
		    json_error_t *);
json_t		*jf_loadb(const void *, size_t, int, json_error_t *);
int		 jf_oom_error(const json_error_t *);

/* schema.c */
extern const struct jf_schema schema_config;
extern const struct jf_schema schema_hostconfig;
extern const struct jf_schema schema_networking;
extern const struct jf_schema schema_update;
extern const struct jf_schema schema_exec;
extern const struct jf_schema schema_volume_create;
extern const struct jf_schema schema_network_create;
extern const struct jf_schema schema_mount;
extern const struct jf_schema schema_create_wrapper;
extern const struct jf_schema *const schema_indexed[];

/* eval.c */
int		 ev_deny(struct eval *, int, const char *, const char *, ...)
		    __attribute__((__format__(__printf__, 4, 5)));
int		 ev_malformed(struct eval *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
int		 ev_mutation(struct eval *, const char *, const char *, ...)
		    __attribute__((__format__(__printf__, 3, 4)));
int		 ev_param(struct eval *, const char *, const char **);
int		 ev_fact_of(struct eval *, const char *, const char *, int,
		    const char *, const struct policy_fact **);
int		 ev_fact(struct eval *, const char *,
		    const struct policy_fact **);
json_t		*ev_fact_json(struct eval *, const struct policy_fact *);
int		 ev_set_body(struct eval *, json_t *, int);
int		 ev_set_body_jn(struct eval *, const struct jn *);
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
int		 mounts_local_options(struct eval *, const char *, const char *,
		    const char *, const char *);
int		 mounts_json_options(struct eval *, json_t *, const char *);
int		 mounts_named_volume(struct eval *, const char *, const char *);
int		 mounts_check(struct eval *, struct jn *);

/* owner.c */
int		 owner_eval(struct eval *);
int		 owner_label(struct eval *, struct jn *);
int		 owner_build_labels(struct eval *);
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
