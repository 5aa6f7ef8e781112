/*
 * Ownership (shared gateway): what a caller creates carries the label
 * dockgate.owner=<owner> (and dockgate.profile=<its profile>); later calls
 * on containers, execs, volumes and networks are confined to owned objects
 * (others answer 404), lists and prunes are filtered by the label.
 * read_others lets reads through; owner_sees lets reads of the objects of
 * the profiles it names through, and their lists are then filtered in the
 * answer (label filters cannot say "mine or theirs"), as /system/df's
 * always are (it has no filters parameter).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

#define OWNER_LABEL	"dockgate.owner"
#define PROFILE_LABEL	"dockgate.profile"
#define OWNER_MAX_SEGS	8

/* Is the caller's owner string usable? */
static int
owner_known(struct eval *ev)
{
	const char	*o = ev->req->owner;

	if (o == NULL || o[0] == '\0')
		return (ev_deny(ev, 403, "ownership", "the profile's"
		    " \"ownership\" needs an identity to own objects"));
	return (EV_OK);
}

/* Set Labels[dockgate.owner] on a body object (container config, volume
 * or network create) in ev's arena. */
int
owner_label(struct eval *ev, struct jn *obj)
{
	struct jn	*labels, *v;
	const char	*owner = ev->req->owner;

	if (!ev->pr->ownership)
		return (EV_OK);
	if (owner_known(ev) != EV_OK)
		return (EV_DONE);
	labels = jn_get(obj, "Labels");
	if (labels == NULL || labels->type != JN_OBJ) {
		if ((v = jn_new(ev->arena, JN_OBJ)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_set(obj, "Labels", v);
		labels = jn_get(obj, "Labels");
	}
	v = jn_get(labels, PROFILE_LABEL);
	if (v == NULL || v->type != JN_STR || strcmp(v->u.s,
	    ev->pr->name) != 0) {
		if ((v = jn_new_str(ev->arena, ev->pr->name)) == NULL)
			return (ev_deny(ev, 500, "internal", "out of memory"));
		jn_set(labels, PROFILE_LABEL, v);
		if (ev_mutation(ev, "ownership", "Labels: " PROFILE_LABEL
		    "=%s", ev->pr->name) != EV_OK)
			return (EV_DONE);
	}
	v = jn_get(labels, OWNER_LABEL);
	if (v != NULL && v->type == JN_STR && strcmp(v->u.s, owner) == 0)
		return (EV_OK);
	if ((v = jn_new_str(ev->arena, owner)) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	jn_set(labels, OWNER_LABEL, v);
	return (ev_mutation(ev, "ownership", "Labels: " OWNER_LABEL "=%s",
	    owner));
}

/* Was an object with these labels made under a profile pr's owner_sees
 * names? */
static int
owner_seen(const struct policy_profile *pr, json_t *labels)
{
	json_t	*prof = json_object_get(labels, PROFILE_LABEL);

	return (json_is_string(prof) && json_is_string(json_object_get(labels,
	    OWNER_LABEL)) && strlist_has(&pr->owner_sees,
	    json_string_value(prof)));
}

/*
 * Access to an object with these labels: owned passes; an unlabelled
 * object passes when shared_ok (predefined networks, implicit volumes);
 * others pass only for reads with read_others (and are redacted).
 */
int
owner_labels_ok(struct eval *ev, json_t *labels, const char *kind,
    const char *name, int read, int shared_ok)
{
	json_t	*cur;

	if (!ev->pr->ownership)
		return (EV_OK);
	if (owner_known(ev) != EV_OK)
		return (EV_DONE);
	cur = json_object_get(labels, OWNER_LABEL);
	if (json_is_string(cur) &&
	    strcmp(json_string_value(cur), ev->req->owner) == 0)
		return (EV_OK);
	if (cur == NULL && shared_ok)
		return (EV_OK);
	if (read && owner_seen(ev->pr, labels))
		return (EV_OK);
	if (read && ev->pr->read_others) {
		ev->res->not_owned = 1;
		return (EV_OK);
	}
	return (ev_deny(ev, 404, "ownership", "no such %s: %s (it belongs to"
	    " another owner; profile key \"read_others\" allows reading)",
	    kind, name));
}

/* Look an object up and check its owner; 404 from the engine passes
 * (the engine answers 404 itself). */
static int
owner_lookup(struct eval *ev, const char *kind, const char *base,
    const char *name, const char *suffix, int read, int shared_ok,
    json_t **found)
{
	const struct policy_fact	*f;
	json_t				*j, *labels;
	int				 rc;

	if (found != NULL)
		*found = NULL;
	/* Image names keep their slashes, as the engine's route reads them. */
	if (ev_fact_of(ev, base, name, strcmp(kind, "image") == 0, suffix,
	    &f) != EV_OK)
		return (EV_DONE);
	if (f->status == 404)
		return (EV_OK);
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the engine did not answer"
		    " the lookup of %s %s (status %d)", kind, name, f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	if (strcmp(kind, "exec instance") == 0) {
		/* An exec belongs to its container. */
		if (found != NULL)
			*found = j;
		else
			json_decref(j);
		return (EV_OK);
	}
	labels = strcmp(kind, "container") == 0 || strcmp(kind, "image") == 0 ?
	    json_object_get(json_object_get(j, "Config"), "Labels") :
	    json_object_get(j, "Labels");
	rc = owner_labels_ok(ev, labels, kind, name, read, shared_ok);
	json_decref(j);
	return (rc);
}

/* A container referenced by ID or name. */
int
owner_container(struct eval *ev, const char *id, int read)
{
	return (owner_lookup(ev, "container", "/containers/", id, "/json",
	    read, 0, NULL));
}

/* A network joined or used by name or ID. */
int
owner_network(struct eval *ev, const char *id, int read)
{
	return (owner_lookup(ev, "network", "/networks/", id, "", read, 1,
	    NULL));
}

/* An exec instance: its container decides. */
static int
owner_exec(struct eval *ev, const char *id, int read)
{
	json_t		*j;
	const char	*cid;
	char		 buf[256];
	int		 rc;

	if (owner_lookup(ev, "exec instance", "/exec/", id, "/json", read, 0,
	    &j) != EV_OK)
		return (EV_DONE);
	if (j == NULL)
		return (EV_OK);
	cid = json_string_value(json_object_get(j, "ContainerID"));
	snprintf(buf, sizeof(buf), "%s", cid != NULL ? cid : "");
	json_decref(j);
	if (buf[0] == '\0')
		return (ev_deny(ev, 502, "engine", "exec %s has no container",
		    id));
	rc = owner_container(ev, buf, read);
	return (rc);
}

/* Does a list filter already hold the string want? */
static int
owner_filter_has(json_t *list, const char *want)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v),
		    want) == 0)
			return (1);
	return (0);
}

/* Does a filters object use the map form ({"key":{"value":true}})? */
static int
owner_filter_maps(json_t *j)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(j, k, v)
		if (json_is_object(v))
			return (1);
	return (0);
}

/* Query parameter name as a JSON object, an empty one when absent: EV_OK
 * with *out (a new reference), else the refusal. */
static int
owner_param_object(struct eval *ev, const char *name, json_t **out)
{
	const char	*v;
	json_error_t	 jerr;
	json_t		*j;

	*out = NULL;
	if (ev_param(ev, name, &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && v[0] != '\0') {
		j = jf_loadb(v, strlen(v), JSON_REJECT_DUPLICATES, &jerr);
		if (j == NULL && jf_oom_error(&jerr))
			return (ev_deny(ev, 500, "internal", "out of memory"));
	} else if ((j = json_object()) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	if (!json_is_object(j)) {
		json_decref(j);
		return (ev_malformed(ev, "the %s parameter is not a JSON"
		    " object", name));
	}
	*out = j;
	return (EV_OK);
}

/* Forward the request with query parameter name set to value (given once,
 * last); value NULL means out of memory. */
static int
owner_set_param(struct eval *ev, const char *name, const char *value)
{
	const struct policy_req	*req = ev->req;
	struct policy_req	 copy;
	struct policy_param	*params;
	size_t			 i, n;

	if (value == NULL ||
	    (params = calloc(req->nparams + 1, sizeof(*params))) == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	for (i = 0, n = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, name) != 0)
			params[n++] = req->params[i];
	params[n].name = (char *)name;
	params[n++].value = (char *)value;
	copy = *req;
	copy.params = params;
	copy.nparams = n;
	free(ev->res->target);
	ev->res->target = policy_req_target(&copy);
	free(params);
	if (ev->res->target == NULL)
		return (ev_deny(ev, 500, "internal", "out of memory"));
	return (EV_OK);
}

/* Add label=dockgate.owner=<owner> to the filters of a list or prune,
 * once: a forwarded target evaluated again comes out the same. */
static int
owner_filter(struct eval *ev)
{
	const struct policy_req	*req = ev->req;
	char			 want[300], *nf;
	json_t			*j, *label;
	int			 rc;

	if (owner_param_object(ev, "filters", &j) != EV_OK)
		return (EV_DONE);
	snprintf(want, sizeof(want), OWNER_LABEL "=%s", req->owner);
	label = json_object_get(j, "label");
	if (label == NULL && owner_filter_maps(j))
		/* The engine reads all filters in one form: the CLI's is
		 * {"name":{"x":true}}, so add the label the same way. */
		rc = json_object_set_new(j, "label", json_pack("{s:b}", want,
		    1));
	else if (label == NULL)
		rc = json_object_set_new(j, "label", json_pack("[s]", want));
	else if (json_is_array(label) && owner_filter_has(label, want))
		rc = 0;
	else if (json_is_array(label))
		rc = json_array_append_new(label, json_string(want));
	else if (json_is_object(label))
		rc = json_object_set_new(label, want, json_true());
	else {
		json_decref(j);
		return (ev_malformed(ev, "the label filter is neither a list"
		    " nor a map"));
	}
	nf = rc == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	rc = owner_set_param(ev, "filters", nf);
	free(nf);
	if (rc != EV_OK)
		return (EV_DONE);
	return (ev_mutation(ev, "ownership", "filters: label %s", want));
}

/* An image build under ownership: its labels= parameter gets the owner
 * and profile labels, as creates do (a forged one is overwritten). */
int
owner_build_labels(struct eval *ev)
{
	char		*nl;
	json_t		*j, *cur, *prof;
	int		 rc;

	if (!ev->pr->ownership)
		return (EV_OK);
	if (owner_known(ev) != EV_OK ||
	    owner_param_object(ev, "labels", &j) != EV_OK)
		return (EV_DONE);
	cur = json_object_get(j, OWNER_LABEL);
	prof = json_object_get(j, PROFILE_LABEL);
	if (json_is_string(cur) && json_is_string(prof) &&
	    strcmp(json_string_value(cur), ev->req->owner) == 0 &&
	    strcmp(json_string_value(prof), ev->pr->name) == 0) {
		json_decref(j);
		return (EV_OK);
	}
	rc = json_object_set_new(j, OWNER_LABEL, json_string(ev->req->owner));
	if (rc == 0)
		rc = json_object_set_new(j, PROFILE_LABEL,
		    json_string(ev->pr->name));
	nl = rc == 0 ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	rc = owner_set_param(ev, "labels", nl);
	free(nl);
	if (rc != EV_OK)
		return (EV_DONE);
	return (ev_mutation(ev, "ownership", "labels: " OWNER_LABEL "=%s",
	    ev->req->owner));
}

/* A list of containers, volumes or networks: all (read_others), the
 * caller's by label filter, or filtered in the answer (owner_sees). */
static int
owner_list(struct eval *ev)
{
	if (ev->pr->read_others)
		return (EV_OK);
	if (ev->pr->owner_sees.n == 0)
		return (owner_filter(ev));
	ev->res->filter_owned = 1;
	return (EV_OK);
}

/* Every image of a repository (a push without a tag) must be readable. */
static int
owner_repo_tags(struct eval *ev, const char *repo)
{
	const struct policy_fact	*f;
	json_t				*j, *filt, *e;
	char				*q;
	size_t				 i;
	int				 rc = EV_OK;

	if ((filt = json_pack("{s:[s]}", "reference", repo)) == NULL ||
	    (q = json_dumps(filt, JSON_COMPACT)) == NULL) {
		json_decref(filt);
		return (ev_deny(ev, 500, "internal", "out of memory"));
	}
	json_decref(filt);
	rc = ev_fact_of(ev, "/images/json?filters=", q, 0, "", &f);
	free(q);
	if (rc != EV_OK)
		return (EV_DONE);
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the engine did not answer"
		    " the lookup of the images of %s (status %d)", repo,
		    f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	json_array_foreach(j, i, e)
		if ((rc = owner_labels_ok(ev, json_object_get(e, "Labels"),
		    "image", repo, 1, 1)) != EV_OK)
			break;
	json_decref(j);
	return (rc);
}

/*
 * Image save and push read an image out: one built by another owner (it
 * carries their label; pulled images carry none and pass) is a 404 unless
 * read_others or owner_sees lets it be read.
 */
static int
owner_image_out(struct eval *ev)
{
	const struct policy_req	*req = ev->req;
	const char		*r = req->route, *end, *tag;
	char			 name[512], full[700];
	int			 n;
	size_t			 i, len;

	if (strcmp(r, "/images/get") == 0) {
		for (i = 0; i < req->nparams; i++)
			if (strcmp(req->params[i].name, "names") == 0 &&
			    req->params[i].value != NULL &&
			    owner_lookup(ev, "image", "/images/",
			    req->params[i].value, "/json", 1, 1, NULL) !=
			    EV_OK)
				return (EV_DONE);
		return (EV_OK);
	}
	/* /images/NAME/get or /images/NAME/push: NAME may hold slashes. */
	end = strrchr(r, '/');
	len = end - (r + 8);
	if (len == 0 || len >= sizeof(name))
		return (EV_OK);		/* the engine answers 404 */
	memcpy(name, r + 8, len);
	name[len] = '\0';
	if (strcmp(end, "/push") != 0)
		return (owner_lookup(ev, "image", "/images/", name, "/json", 1,
		    1, NULL));
	/* A push names a tag, or pushes every tag of the repository. */
	if (ev_param(ev, "tag", &tag) != EV_OK)
		return (EV_DONE);
	if (tag != NULL && tag[0] != '\0') {
		n = snprintf(full, sizeof(full), "%s%s%s", name,
		    strchr(tag, ':') == NULL ? ":" : "@", tag);
		if (n < 0 || (size_t)n >= sizeof(full))
			return (ev_deny(ev, 403, "lookup_limit", "image name"
			    " too long"));
		return (owner_lookup(ev, "image", "/images/", full, "/json", 1,
		    1, NULL));
	}
	return (owner_repo_tags(ev, name));
}

/* Network connect and disconnect: the container must be the caller's. */
static int
owner_connect(struct eval *ev)
{
	static const struct jf_field	 f[] = { { "Container", JF_STR, NULL },
	    { "EndpointConfig", JF_ANY, NULL }, { "Force", JF_BOOL, NULL } };
	static const struct jf_schema	 s = { "NetworkConnect", f, 3, 1,
	    NULL, 0 };
	json_t				*body, *c = NULL;
	const char			*id;
	char				 buf[256];

	if ((body = jf_parse(ev, 0)) == NULL)
		return (EV_DONE);
	if (!json_is_object(body)) {
		json_decref(body);
		return (ev_malformed(ev, "the body must be a JSON object"));
	}
	if (jf_canon(ev, &s, body, "", &c) != EV_OK) {
		json_decref(body);
		return (EV_DONE);
	}
	json_decref(body);
	id = json_string_value(json_object_get(c, "Container"));
	snprintf(buf, sizeof(buf), "%s", id != NULL ? id : "");
	if (ev_set_body(ev, c, 0) != EV_OK) {
		json_decref(c);
		return (EV_DONE);
	}
	json_decref(c);
	if (buf[0] == '\0')
		return (ev_malformed(ev, "connect: no Container"));
	return (owner_container(ev, buf, 0));
}

/* Split a route into at most OWNER_MAX_SEGS segments. */
static size_t
owner_split(const char *route, char seg[][256])
{
	const char	*p = route, *s;
	size_t		 n = 0, l;

	while (*p == '/' && n < OWNER_MAX_SEGS) {
		s = ++p;
		while (*p != '\0' && *p != '/')
			p++;
		l = p - s;
		if (l >= 256)
			l = 255;
		memcpy(seg[n], s, l);
		seg[n][l] = '\0';
		n++;
	}
	return (n);
}

/* Confine a request to owned objects (before the endpoint's check). */
int
owner_eval(struct eval *ev)
{
	char		 seg[OWNER_MAX_SEGS][256];
	const char	*m = ev->req->method;
	size_t		 n;
	int		 get, read, join;

	get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	if (!ev->pr->ownership) {
		/* Nothing is owned: redact applies to every answer. */
		if (get && ev->pr->redact.n > 0)
			ev->res->not_owned = 1;
		return (EV_OK);
	}
	if (owner_known(ev) != EV_OK)
		return (EV_DONE);
	n = owner_split(ev->req->route, seg);
	if (n == 0)
		return (EV_OK);
	if (n == 1 && get && strcmp(seg[0], "events") == 0)
		return (ev->pr->read_others ? EV_OK : owner_filter(ev));
	if (n == 1 && get && (strcmp(seg[0], "volumes") == 0 ||
	    strcmp(seg[0], "networks") == 0))
		return (owner_list(ev));
	/* Disk usage lists containers, volumes and build cache records:
	 * no filter parameter, so the answer is filtered. */
	if (n == 2 && get && strcmp(seg[0], "system") == 0 &&
	    strcmp(seg[1], "df") == 0) {
		if (!ev->pr->read_others)
			ev->res->filter_owned = 1;
		return (EV_OK);
	}
	if (n == 2 && strcmp(seg[1], "prune") == 0)
		return (owner_filter(ev));
	if (strcmp(seg[0], "images") == 0 && n >= 2 && !ev->pr->read_others &&
	    ((get && strcmp(seg[n - 1], "get") == 0) ||
	    (strcmp(m, "POST") == 0 && n >= 3 &&
	    strcmp(seg[n - 1], "push") == 0)))
		return (owner_image_out(ev));
	/* Commit reads a container's file system into an image. */
	if (n == 1 && strcmp(seg[0], "commit") == 0) {
		const char *id;

		if (ev_param(ev, "container", &id) != EV_OK)
			return (EV_DONE);
		return (id != NULL && id[0] != '\0' ?
		    owner_container(ev, id, 1) : EV_OK);
	}
	if (strcmp(seg[0], "containers") == 0 && n >= 2) {
		if (n == 2 && strcmp(seg[1], "json") == 0)
			return (owner_list(ev));
		if (n == 2 && strcmp(seg[1], "create") == 0)
			return (EV_OK);
		read = get || (n >= 3 && strcmp(seg[2], "attach") == 0);
		if (n >= 3 && strcmp(seg[2], "archive") == 0 &&
		    strcmp(m, "PUT") == 0)
			read = 0;
		return (owner_container(ev, seg[1], read));
	}
	if (strcmp(seg[0], "exec") == 0 && n >= 2)
		return (owner_exec(ev, seg[1], get));
	if (strcmp(seg[0], "volumes") == 0 && n >= 2 &&
	    strcmp(seg[1], "create") != 0)
		return (owner_lookup(ev, "volume", "/volumes/", seg[1], "",
		    get, 0, NULL));
	if (strcmp(seg[0], "networks") == 0 && n >= 2 &&
	    strcmp(seg[1], "create") != 0) {
		join = n == 3 && (strcmp(seg[2], "connect") == 0 ||
		    strcmp(seg[2], "disconnect") == 0);
		if (owner_lookup(ev, "network", "/networks/", seg[1], "", get,
		    get || join, NULL) != EV_OK)
			return (EV_DONE);
		return (join ? owner_connect(ev) : EV_OK);
	}
	return (EV_OK);
}

/* Keep the owner's and the seen profiles' objects of a JSON array. */
static int
owner_filter_array(const struct policy_profile *pp, const char *owner,
    json_t *arr)
{
	json_t	*e, *labels, *cur;
	size_t	 i = 0;

	while (i < json_array_size(arr)) {
		e = json_array_get(arr, i);
		labels = json_object_get(e, "Labels");
		cur = json_object_get(labels, OWNER_LABEL);
		if ((json_is_string(cur) &&
		    strcmp(json_string_value(cur), owner) == 0) ||
		    owner_seen(pp, labels))
			i++;
		else if (json_array_remove(arr, i) == -1)
			return (-1);
	}
	return (0);
}

/*
 * The object answers: a volume list ({"Volumes": [...]}) and disk usage
 * (also "Containers", and "BuildCache", which names no owner and is
 * emptied). -1 when it is neither.
 */
static int
owner_filter_df(const struct policy_profile *pp, const char *owner,
    json_t *root)
{
	static const char *const keys[] = { "Containers", "Volumes", NULL };
	json_t	*arr;
	size_t	 i;
	int	 seen = 0;

	for (i = 0; keys[i] != NULL; i++) {
		if ((arr = json_object_get(root, keys[i])) == NULL)
			continue;
		seen = 1;
		if (json_is_null(arr))
			continue;
		if (!json_is_array(arr) ||
		    owner_filter_array(pp, owner, arr) == -1)
			return (-1);
	}
	if (!seen)
		return (-1);
	arr = json_object_get(root, "BuildCache");
	if (json_is_array(arr) && json_array_clear(arr) == -1)
		return (-1);
	return (0);
}

/*
 * Filter a list answer (containers, networks: an array; volumes and disk
 * usage: objects) to what owner and pp's owner_sees profiles made. Returns
 * the new body in *out, or -1 when the body is not such a list (the daemon
 * then withholds it).
 */
int
policy_filter_owned(const struct policy_profile *pp, const char *owner,
    const char *body, size_t len, char **out, size_t *outlen)
{
	json_t	*root;
	int	 rc;

	*out = NULL;
	*outlen = 0;
	if (owner == NULL ||
	    (root = jf_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL)) ==
	    NULL)
		return (-1);
	if (json_is_array(root))
		rc = owner_filter_array(pp, owner, root);
	else if (json_is_object(root))
		rc = owner_filter_df(pp, owner, root);
	else
		rc = -1;
	if (rc == 0 && (*out = json_dumps(root, JSON_COMPACT)) == NULL)
		rc = -1;
	json_decref(root);
	if (rc == 0)
		*outlen = strlen(*out);
	return (rc);
}
