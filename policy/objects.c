/*
 * Other writes: start, volume and network create, image pull and
 * import, tag, commit and build parameters.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-int.h"

/* POST /containers/{id}/start: no body but null or {}. */
int
objects_start(struct eval *ev)
{
	json_t	*j;
	int	 ok;

	if ((j = jf_parse(ev, 1)) == NULL)
		return (EV_DONE);
	ok = json_is_null(j) || (json_is_object(j) && json_object_size(j) == 0);
	json_decref(j);
	if (!ok)
		return (ev_deny(ev, 403, "start_body", "a start body (a"
		    " replacement host config for old API versions) is not"
		    " allowed (only profile key \"unrestricted\" forwards"
		    " one)"));
	return (EV_OK);
}

/* POST /volumes/create: local driver only; its options pass host_paths. */
int
objects_volume_create(struct eval *ev)
{
	json_t		*body, *v = NULL, *e;
	const char	*drv;
	int		 rc = EV_DONE;

	if ((body = jf_parse(ev, 1)) == NULL)
		return (EV_DONE);
	if (json_is_null(body) && !ev->pr->ownership) {
		json_decref(body);
		return (EV_OK);
	}
	if (json_is_null(body)) {
		json_decref(body);
		body = json_object();
	}
	if (!json_is_object(body)) {
		ev_malformed(ev, "the volume create body must be a JSON"
		    " object");
		goto out;
	}
	if (jf_canon(ev, &schema_volume_create, body, "", &v) != EV_OK)
		goto out;
	e = json_object_get(v, "Driver");
	drv = json_is_string(e) ? json_string_value(e) : "";
	if (drv[0] != '\0' && strcmp(drv, "local") != 0) {
		ev_deny(ev, 403, "volume_driver", "volume driver \"%s\" is not"
		    " allowed (only local)", drv);
		goto out;
	}
	if (json_object_get(v, "ClusterVolumeSpec") != NULL &&
	    !ev->pr->swarm) {
		ev_deny(ev, 403, "swarm", "cluster volumes need the profile"
		    " key \"swarm\"");
		goto out;
	}
	if (mounts_json_options(ev, json_object_get(v, "DriverOpts"),
	    "DriverOpts") != EV_OK)
		goto out;
	rc = ev_set_body(ev, v, 1);
out:
	json_decref(body);
	json_decref(v);
	return (rc);
}

/* POST /networks/create: network_drivers. */
int
objects_network_create(struct eval *ev)
{
	json_t		*body, *n = NULL, *e;
	const char	*drv;
	int		 rc = EV_DONE;

	if ((body = jf_parse(ev, 0)) == NULL)
		return (EV_DONE);
	if (!json_is_object(body)) {
		ev_malformed(ev, "the network create body must be a JSON"
		    " object");
		goto out;
	}
	if (jf_canon(ev, &schema_network_create, body, "", &n) != EV_OK)
		goto out;
	e = json_object_get(n, "Driver");
	drv = json_is_string(e) && json_string_length(e) > 0 ?
	    json_string_value(e) : "bridge";
	if (!strlist_has(&ev->pr->network_drivers, drv)) {
		ev_deny(ev, 403, "network_drivers", "network driver \"%s\" is"
		    " not allowed (profile key \"network_drivers\")", drv);
		goto out;
	}
	if ((json_is_true(json_object_get(n, "Ingress")) ||
	    strcmp(json_is_string(json_object_get(n, "Scope")) ?
	    json_string_value(json_object_get(n, "Scope")) : "",
	    "swarm") == 0) && !ev->pr->swarm) {
		ev_deny(ev, 403, "swarm", "swarm-scoped networks need the"
		    " profile key \"swarm\"");
		goto out;
	}
	rc = ev_set_body(ev, n, 1);
out:
	json_decref(body);
	json_decref(n);
	return (rc);
}

/*
 * A name a locally made image takes: under local_images, and never under
 * trusted_registries (local content never passes as pulled).
 */
int
objects_local_name(struct eval *ev, const char *name, const char *what)
{
	struct imageref	r;

	if (imageref_parse(name, &r) == -1)
		return (ev_malformed(ev, "%s: invalid image name \"%s\"", what,
		    name));
	if (imageref_under(r.repo, &ev->pr->trusted_registries))
		return (ev_deny(ev, 403, "local_images", "%s: %s (%s) is under"
		    " trusted_registries; locally made images may not take"
		    " a trusted name", what, name, r.repo));
	if (!imageref_under(r.repo, &ev->pr->local_images))
		return (ev_deny(ev, 403, "local_images", "%s: %s (%s) is not"
		    " under local_images", what, name, r.repo));
	return (EV_OK);
}

/* Join repo and tag the way the engine does for these endpoints. */
static int
objects_join(struct eval *ev, const char *repo, const char *tag, char *out,
    size_t len)
{
	int	n;

	if (tag != NULL && tag[0] != '\0')
		n = snprintf(out, len, "%s%s%s", repo,
		    strchr(tag, ':') != NULL ? "@" : ":", tag);
	else
		n = snprintf(out, len, "%s", repo);
	if (n < 0 || (size_t)n >= len)
		return (ev_malformed(ev, "image name too long"));
	return (EV_OK);
}

/* POST /images/create: pull (fromImage) or import (fromSrc). */
int
objects_image_create(struct eval *ev)
{
	const char	*from, *src, *repo, *tag;
	char		 name[REF_MAX + 160];
	struct imageref	 r;

	if (ev_param(ev, "fromImage", &from) != EV_OK ||
	    ev_param(ev, "fromSrc", &src) != EV_OK ||
	    ev_param(ev, "repo", &repo) != EV_OK ||
	    ev_param(ev, "tag", &tag) != EV_OK)
		return (EV_DONE);
	if (from != NULL && from[0] != '\0') {
		if (imageref_parse(from, &r) == -1)
			return (ev_malformed(ev, "invalid image reference"
			    " \"%s\"", from));
		return (ev_image_allowed(ev, from, "pull"));
	}
	if (!ev->pr->image_import)
		return (ev_deny(ev, 403, "image_import", "importing images"
		    " (fromSrc) is not allowed (profile key"
		    " \"image_import\")"));
	if (repo == NULL || repo[0] == '\0')
		return (EV_OK);
	if (objects_join(ev, repo, tag, name, sizeof(name)) != EV_OK)
		return (EV_DONE);
	return (objects_local_name(ev, name, "import repo"));
}

/* Does the engine know the image by a trusted name? */
static int
objects_source_trusted(struct eval *ev, const char *src, int *trusted)
{
	const struct policy_fact	*f;
	struct imageref			 r;
	json_t				*j, *l, *e;
	size_t				 i;
	const char			*k[] = { "RepoTags", "RepoDigests" };
	size_t				 ki;

	*trusted = 0;
	if (ev_fact_of(ev, "/images/", src, 1, "/json", &f) != EV_OK)
		return (EV_DONE);
	if (f->status == 404)
		return (EV_OK);
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the engine did not answer"
		    " the image lookup for %s (status %d)", src, f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	for (ki = 0; ki < 2; ki++) {
		l = json_object_get(j, k[ki]);
		json_array_foreach(l, i, e)
			if (json_is_string(e) && imageref_parse(
			    json_string_value(e), &r) == 0 &&
			    imageref_under(r.repo,
			    &ev->pr->trusted_registries))
				*trusted = 1;
	}
	json_decref(j);
	return (EV_OK);
}

/* POST /images/{name}/tag: local names, or trusted from trusted. */
int
objects_tag(struct eval *ev)
{
	const char	*repo, *tag, *route = ev->req->route;
	char		 src[REF_MAX], name[REF_MAX + 160];
	struct imageref	 r;
	size_t		 n;
	int		 trusted;

	if (ev_param(ev, "repo", &repo) != EV_OK ||
	    ev_param(ev, "tag", &tag) != EV_OK)
		return (EV_DONE);
	if (repo == NULL || repo[0] == '\0')
		return (ev_malformed(ev, "tag: no repo"));
	n = strlen(route) - strlen("/images/") - strlen("/tag");
	if (n == 0 || n >= sizeof(src))
		return (ev_malformed(ev, "tag: bad source image"));
	memcpy(src, route + strlen("/images/"), n);
	src[n] = '\0';
	if (objects_join(ev, repo, tag, name, sizeof(name)) != EV_OK)
		return (EV_DONE);
	if (imageref_parse(name, &r) == -1)
		return (ev_malformed(ev, "tag: invalid image name \"%s\"",
		    name));
	if (!imageref_under(r.repo, &ev->pr->trusted_registries))
		return (objects_local_name(ev, name, "tag"));
	if (objects_source_trusted(ev, src, &trusted) != EV_OK)
		return (EV_DONE);
	if (!trusted)
		return (ev_deny(ev, 403, "local_images", "tag: %s is under"
		    " trusted_registries but image %s carries no trusted name"
		    " (locally made images may not take a trusted name)",
		    name, src));
	return (EV_OK);
}

/* POST /commit: the new name (repo, tag) is a local name. */
int
objects_commit(struct eval *ev)
{
	const char	*repo, *tag;
	char		 name[REF_MAX + 160];
	json_t		*j;

	if (ev_param(ev, "repo", &repo) != EV_OK ||
	    ev_param(ev, "tag", &tag) != EV_OK)
		return (EV_DONE);
	if ((j = jf_parse(ev, 1)) == NULL)
		return (EV_DONE);
	json_decref(j);
	if (repo == NULL || repo[0] == '\0')
		return (EV_OK);
	if (objects_join(ev, repo, tag, name, sizeof(name)) != EV_OK)
		return (EV_DONE);
	return (objects_local_name(ev, name, "commit repo"));
}

/* POST /build: the build key and its parameters. */
int
objects_build(struct eval *ev)
{
	const struct policy_req	*req = ev->req;
	const char		*v, *ct;
	char			*end;
	long long		 m;
	size_t			 i;

	if (ev_param(ev, "version", &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && strcmp(v, "2") == 0) {
		if (!ev->pr->buildkit)
			return (ev_deny(ev, 403, "buildkit", "BuildKit builds"
			    " are not allowed (profile key \"buildkit\")"));
	} else if (!ev->pr->build)
		return (ev_deny(ev, 403, "build", "image builds are not"
		    " allowed (profile key \"build\")"));
	if (ev_param(ev, "remote", &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && v[0] != '\0')
		return (ev_deny(ev, 403, "build", "remote build contexts"
		    " (remote=) are never allowed"));
	if (ev_param(ev, "networkmode", &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && !ev->pr->host_namespaces &&
	    (strcasecmp(v, "host") == 0 || strncasecmp(v, "container:",
	    10) == 0 || strncasecmp(v, "ns:", 3) == 0))
		return (ev_deny(ev, 403, "host_namespaces", "build"
		    " networkmode=%s is not allowed (profile key"
		    " \"host_namespaces\")", v));
	if (ev_param(ev, "cgroupparent", &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && v[0] != '\0' && !ev->pr->cgroup_parent)
		return (ev_deny(ev, 403, "cgroup_parent", "build"
		    " cgroupparent=%s is not allowed (profile key"
		    " \"cgroup_parent\")", v));
	if (ev_param(ev, "memory", &v) != EV_OK)
		return (EV_DONE);
	if (v != NULL && v[0] != '\0') {
		errno = 0;
		m = strtoll(v, &end, 10);
		if (errno != 0 || *end != '\0' || end == v)
			return (ev_malformed(ev, "build memory=%s is not a"
			    " number", v));
		if (ev->pr->mem_max > 0 && m > ev->pr->mem_max)
			return (ev_deny(ev, 403, "memory", "build memory=%s is"
			    " above the profile's memory.max (profile key"
			    " \"memory\")", v));
	}
	ct = req->content_type;
	if (ct != NULL && ct[0] != '\0' &&
	    strncasecmp(ct, "application/x-tar", 17) != 0)
		return (ev_deny(ev, 403, "build", "build contexts must be"
		    " uncompressed tar (application/x-tar), not %s", ct));
	for (i = 0; i < req->nparams; i++)
		if (strcmp(req->params[i].name, "t") == 0 &&
		    req->params[i].value != NULL &&
		    req->params[i].value[0] != '\0' &&
		    objects_local_name(ev, req->params[i].value,
		    "build t") != EV_OK)
			return (EV_DONE);
	return (owner_build_labels(ev));
}
