/*
 * What a container mounts from the host: Binds, Mounts, VolumesFrom,
 * local-driver volumes with bind options, and their real paths.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-int.h"

/* Ask for the real path of p: EV_OK with *status and out (when 200). */
static int
mounts_realpath(struct eval *ev, const char *p, int *status, char *out,
    size_t len)
{
	const struct policy_fact	*f;
	char				 path[POLICY_MAX_STRING + 16];
	json_error_t			 jerr;
	json_t				*j;

	snprintf(path, sizeof(path), "realpath:%s", p);
	if (ev_fact(ev, path, &f) != EV_OK)
		return (EV_DONE);
	*status = f->status;
	if (f->status == 404 || f->status == 501)
		return (EV_OK);
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the real path of %s could"
		    " not be found (status %d)", p, f->status));
	j = f->body != NULL ? jf_loadb(f->body, f->body_len,
	    JSON_DECODE_ANY, &jerr) : NULL;
	if (j == NULL && f->body != NULL && jf_oom_error(&jerr))
		return (ev_deny(ev, 500, "internal", "out of memory"));
	if (!json_is_string(j) || hostpath_clean(json_string_value(j), out,
	    len) == -1) {
		json_decref(j);
		return (ev_deny(ev, 502, "engine", "unusable real path for"
		    " %s", p));
	}
	json_decref(j);
	return (EV_OK);
}

/* Is resolved path r inside an allowed prefix (textually or as the real
 * path of the prefix pre)? */
static int
mounts_real_inside(struct eval *ev, const char *r, const char *pre,
    const char *src, const char *where)
{
	char	rp[POLICY_MAX_STRING];
	int	st;

	if (hostpath_is_engine_socket(r, ev->req->protected_paths))
		return (ev_deny(ev, 403, "host_paths", "%s: %s resolves to %s,"
		    " the engine socket or a directory holding it, which is"
		    " never allowed", where, src, r));
	if (hostpath_allowed(r, &ev->pr->host_paths) != NULL)
		return (EV_OK);
	if (mounts_realpath(ev, pre, &st, rp, sizeof(rp)) != EV_OK)
		return (EV_DONE);
	if (st == 200 && hostpath_under(r, rp))
		return (EV_OK);
	return (ev_deny(ev, 403, "host_paths", "%s: %s resolves to %s, outside"
	    " host_paths", where, src, r));
}

/*
 * A host path used as a bind source: clean, never the engine socket,
 * under host_paths, and (with a local engine) its real path too.
 */
int
mounts_bind_source(struct eval *ev, const char *src, const char *where,
    int realcheck)
{
	char		 clean[POLICY_MAX_STRING], r[POLICY_MAX_STRING];
	char		 up[POLICY_MAX_STRING], *slash;
	const char	*pre;
	int		 st;

	if (strlen(src) >= sizeof(clean) || hostpath_clean(src, clean,
	    sizeof(clean)) == -1)
		return (ev_deny(ev, 403, "host_paths", "%s: host path \"%s\""
		    " is not a clean absolute path", where, src));
	if (hostpath_is_engine_socket(clean, ev->req->protected_paths))
		return (ev_deny(ev, 403, "host_paths", "%s: %s is the engine"
		    " socket or a directory holding it, which is never"
		    " allowed", where, clean));
	if ((pre = hostpath_allowed(clean, &ev->pr->host_paths)) == NULL)
		return (ev_deny(ev, 403, "host_paths", "%s: host path %s is"
		    " not under host_paths", where, clean));
	if (!realcheck)
		return (EV_OK);
	if (mounts_realpath(ev, clean, &st, r, sizeof(r)) != EV_OK)
		return (EV_DONE);
	if (st == 501)
		return (EV_OK);		/* tcp engine: textual only */
	if (st == 200)
		return (mounts_real_inside(ev, r, pre, clean, where));
	/* Missing: the engine creates it below its deepest existing
	 * ancestor; that ancestor must resolve inside the prefix (or,
	 * above the prefix, to itself). */
	snprintf(up, sizeof(up), "%s", clean);
	for (;;) {
		if ((slash = strrchr(up, '/')) == NULL)
			return (EV_OK);
		if (slash == up)
			up[1] = '\0';
		else
			*slash = '\0';
		if (mounts_realpath(ev, up, &st, r, sizeof(r)) != EV_OK)
			return (EV_DONE);
		if (st == 501)
			return (EV_OK);
		if (st == 200) {
			if (hostpath_under(up, pre))
				return (mounts_real_inside(ev, r, pre, clean,
				    where));
			if (strcmp(r, up) == 0)
				return (EV_OK);
			return (ev_deny(ev, 403, "host_paths", "%s: %s lies"
			    " below %s, which resolves to %s", where, clean,
			    up, r));
		}
		if (strcmp(up, "/") == 0)
			return (EV_OK);
	}
}

/* Mount propagation that reaches back into the host. */
static int
mounts_bad_propagation(const char *s)
{
	return (strcmp(s, "shared") == 0 || strcmp(s, "rshared") == 0);
}

/* Filesystems the local driver would mount from a block device. */
static const char *const mounts_block_fs[] = { "ext2", "ext3", "ext4",
	"xfs", "btrfs", "vfat", "msdos", "exfat", "ntfs", "ntfs3", "iso9660",
	"udf", "squashfs", "f2fs", "jfs", "reiserfs", "hfsplus", "erofs",
	NULL
};

/* Is s one of the strings of list? */
static int
mounts_in(const char *s, const char *const *list)
{
	size_t	i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(s, list[i]) == 0)
			return (1);
	return (0);
}

/*
 * Local driver options (type, device, o), as the driver mounts them
 * (mount(device, path, type, flags of o, rest of o)): a bind of device
 * must pass host_paths; tmpfs and network filesystems have no host path;
 * a block device filesystem needs device, and every path in o, to pass.
 * Any other type is refused: it ignores device and shows the host
 * (proc, sysfs, devtmpfs) or host paths named in o (overlay lowerdir).
 */
int
mounts_local_options(struct eval *ev, const char *type, const char *dev,
    const char *o, const char *where)
{
	static const char *const net[] = { "tmpfs", "nfs", "nfs4", "cifs",
	    "smb3", NULL };
	const char	*p, *eq;
	char		 opt[POLICY_MAX_STRING];
	size_t		 n;
	int		 bind = 0;

	for (p = o; *p != '\0'; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		snprintf(opt, sizeof(opt), "%.*s", (int)(n < 63 ? n : 63), p);
		if (strcmp(opt, "bind") == 0 || strcmp(opt, "rbind") == 0)
			bind = 1;
		if (mounts_bad_propagation(opt))
			return (ev_deny(ev, 403, "host_paths", "%s: %s"
			    " propagation is never allowed", where, opt));
	}
	if (dev[0] == '\0')
		return (EV_OK);
	if (bind)
		return (mounts_bind_source(ev, dev, where, 1));
	if (mounts_in(type, net))
		return (EV_OK);
	if (!mounts_in(type, mounts_block_fs))
		return (ev_deny(ev, 403, "host_paths", "%s: filesystem type"
		    " \"%s\" is neither a bind nor a block device or network"
		    " filesystem: it may show the host whatever the device"
		    " (profile key \"host_paths\")", where, type));
	for (p = o; *p != '\0'; p += n + (p[n] == ',')) {
		n = strcspn(p, ",");
		if (n >= sizeof(opt))
			return (ev_deny(ev, 403, "host_paths", "%s: mount"
			    " option too long", where));
		memcpy(opt, p, n);
		opt[n] = '\0';
		if ((eq = strchr(opt, '=')) != NULL && eq[1] == '/' &&
		    mounts_bind_source(ev, eq + 1, where, 1) != EV_OK)
			return (EV_DONE);
	}
	return (mounts_bind_source(ev, dev, where, 1));
}

/* mounts_local_options() of a jansson options object (absent or not
 * an object: none). */
int
mounts_json_options(struct eval *ev, json_t *opts, const char *where)
{
	json_t		*t, *d, *o;

	if (!json_is_object(opts))
		return (EV_OK);
	t = json_object_get(opts, "type");
	d = json_object_get(opts, "device");
	o = json_object_get(opts, "o");
	return (mounts_local_options(ev, json_is_string(t) ?
	    json_string_value(t) : "", json_is_string(d) ?
	    json_string_value(d) : "", json_is_string(o) ?
	    json_string_value(o) : "", where));
}

/*
 * A named volume: if it exists, it must be a local volume whose options
 * pass; one that does not exist yet becomes a plain local volume.
 */
int
mounts_named_volume(struct eval *ev, const char *name, const char *where)
{
	const struct policy_fact	*f;
	char				w[300];
	const char			*drv;
	json_t				*j;
	int				 rc;

	if (ev_fact_of(ev, "/volumes/", name, 0, "", &f) != EV_OK)
		return (EV_DONE);
	if (f->status == 404)
		return (EV_OK);
	if (f->status != 200)
		return (ev_deny(ev, 502, "engine", "the engine did not answer"
		    " the lookup of volume %s (status %d)", name, f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	drv = json_is_string(json_object_get(j, "Driver")) ?
	    json_string_value(json_object_get(j, "Driver")) : "";
	if (drv[0] != '\0' && strcmp(drv, "local") != 0) {
		ev_deny(ev, 403, "volume_driver", "%s: volume %s uses driver"
		    " \"%s\"; only local volumes are allowed", where, name,
		    drv);
		json_decref(j);
		return (EV_DONE);
	}
	snprintf(w, sizeof(w), "%s (volume %s)", where, name);
	rc = owner_labels_ok(ev, json_object_get(j, "Labels"), "volume", name,
	    0, 1);
	if (rc == EV_OK)
		rc = mounts_json_options(ev, json_object_get(j, "Options"),
		    w);
	json_decref(j);
	return (rc);
}

/* Is s a valid volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)? */
static int
mounts_volume_name(const char *s)
{
	size_t	i;

	if (!isalnum((unsigned char)s[0]) || s[1] == '\0')
		return (0);
	for (i = 1; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '.' && s[i] != '-')
			return (0);
	return (1);
}

/* One Binds entry: "src:dst[:opts]" as the engine's linux parser. */
static int
mounts_bind_spec(struct eval *ev, const char *spec, const char *where)
{
	char		 buf[POLICY_MAX_STRING], *f[4], *p, *o, *last;
	size_t		 n = 0;

	if (strlen(spec) >= sizeof(buf))
		return (ev_deny(ev, 403, "host_paths", "%s: too long", where));
	snprintf(buf, sizeof(buf), "%s", spec);
	for (p = buf; n < 4; n++) {
		f[n] = p;
		if ((p = strchr(p, ':')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (n == 1 && p == NULL && f[0][0] == '/')
		return (EV_OK);		/* an anonymous volume */
	if (p != NULL || n < 2 || n > 3 || f[0][0] == '\0')
		return (ev_malformed(ev, "%s: \"%s\" is not src:dst[:opts]",
		    where, spec));
	if (n == 3)
		for (o = strtok_r(f[2], ",", &last); o != NULL;
		    o = strtok_r(NULL, ",", &last))
			if (mounts_bad_propagation(o))
				return (ev_deny(ev, 403, "host_paths", "%s:"
				    " %s propagation is never allowed", where,
				    o));
	if (f[0][0] == '/')
		return (mounts_bind_source(ev, f[0], where, 1));
	if (!mounts_volume_name(f[0]))
		return (ev_deny(ev, 403, "host_paths", "%s: \"%s\" is neither"
		    " an absolute host path nor a volume name", where, f[0]));
	return (mounts_named_volume(ev, f[0], where));
}

/* One Mounts entry (canonical). */
static int
mounts_mount(struct eval *ev, const struct jn *m, const char *where)
{
	const struct jn	*vo, *dc, *opts;
	const char	*type, *src, *prop, *drv, *sub;

	type = jn_str(m, "Type");
	src = jn_str(m, "Source");
	if (strcmp(type, "tmpfs") == 0)
		return (EV_OK);
	if (strcmp(type, "bind") == 0) {
		prop = jn_str(jn_get(m, "BindOptions"), "Propagation");
		if (mounts_bad_propagation(prop))
			return (ev_deny(ev, 403, "host_paths", "%s: %s"
			    " propagation is never allowed", where, prop));
		return (mounts_bind_source(ev, src, where, 1));
	}
	if (strcmp(type, "volume") != 0)
		return (ev_deny(ev, 403, "host_paths", "%s: mount type \"%s\" is"
		    " not allowed (only bind, volume and tmpfs)", where, type));
	vo = jn_get(m, "VolumeOptions");
	sub = jn_str(vo, "Subpath");
	if (sub[0] == '/' || strcmp(sub, "..") == 0 ||
	    strncmp(sub, "../", 3) == 0 || strstr(sub, "/../") != NULL ||
	    (strlen(sub) >= 3 && strcmp(sub + strlen(sub) - 3, "/..") == 0))
		return (ev_deny(ev, 403, "host_paths", "%s: volume Subpath"
		    " \"%s\" leaves the volume", where, sub));
	dc = jn_get(vo, "DriverConfig");
	drv = jn_str(dc, "Name");
	if (drv[0] != '\0' && strcmp(drv, "local") != 0)
		return (ev_deny(ev, 403, "volume_driver", "%s: volume driver"
		    " \"%s\" is not allowed (only local)", where, drv));
	opts = jn_get(dc, "Options");
	if (mounts_local_options(ev, jn_str(opts, "type"), jn_str(opts,
	    "device"), jn_str(opts, "o"), where) != EV_OK)
		return (EV_DONE);
	if (src[0] == '\0')
		return (EV_OK);
	return (mounts_named_volume(ev, src, where));
}

/* VolumesFrom: every mount of the source container must pass. */
static int
mounts_volumes_from(struct eval *ev, const char *spec, const char *where)
{
	const struct policy_fact	*f;
	char				 name[256], w[400];
	json_t				*j, *mounts, *m;
	const char			*type, *s;
	size_t				 i, n;
	int				 rc = EV_OK;

	n = strcspn(spec, ":");
	if (n == 0 || n >= sizeof(name))
		return (ev_malformed(ev, "%s: bad VolumesFrom \"%s\"", where,
		    spec));
	memcpy(name, spec, n);
	name[n] = '\0';
	if (ev_fact_of(ev, "/containers/", name, 0, "/json", &f) != EV_OK)
		return (EV_DONE);
	if (f->status != 200)
		return (ev_deny(ev, f->status == 404 ? 403 : 502, f->status ==
		    404 ? "host_paths" : "engine", "%s: container %s could not"
		    " be inspected (status %d)", where, name, f->status));
	if ((j = ev_fact_json(ev, f)) == NULL)
		return (EV_DONE);
	if (owner_labels_ok(ev, json_object_get(json_object_get(j, "Config"),
	    "Labels"), "container", name, 0, 0) != EV_OK) {
		json_decref(j);
		return (EV_DONE);
	}
	mounts = json_object_get(j, "Mounts");
	json_array_foreach(mounts, i, m) {
		snprintf(w, sizeof(w), "%s (mount %zu of %s)", where, i, name);
		type = json_is_string(json_object_get(m, "Type")) ?
		    json_string_value(json_object_get(m, "Type")) : "";
		if (strcmp(type, "bind") == 0) {
			s = json_string_value(json_object_get(m,
			    "Propagation"));
			if (s != NULL && mounts_bad_propagation(s))
				rc = ev_deny(ev, 403, "host_paths", "%s: %s"
				    " propagation is never allowed", w, s);
			else
				rc = mounts_bind_source(ev,
				    json_is_string(json_object_get(m,
				    "Source")) ? json_string_value(
				    json_object_get(m, "Source")) : "", w, 1);
		} else if (strcmp(type, "volume") == 0) {
			s = json_string_value(json_object_get(m, "Driver"));
			if (s != NULL && s[0] != '\0' &&
			    strcmp(s, "local") != 0)
				rc = ev_deny(ev, 403, "volume_driver", "%s:"
				    " volume driver \"%s\" is not allowed", w,
				    s);
			else if ((s = json_string_value(json_object_get(m,
			    "Name"))) != NULL && s[0] != '\0')
				rc = mounts_named_volume(ev, s, w);
		} else if (strcmp(type, "tmpfs") != 0)
			rc = ev_deny(ev, 403, "host_paths", "%s: mount type \"%s\""
			    " is not allowed", w, type);
		if (rc != EV_OK)
			break;
	}
	json_decref(j);
	return (rc);
}

/* All host mounts of a create host config. */
int
mounts_check(struct eval *ev, struct jn *hc)
{
	const struct jn	*e;
	const char	*drv;
	char		 where[64];
	size_t		 i;

	drv = jn_str(hc, "VolumeDriver");
	if (drv[0] != '\0' && strcmp(drv, "local") != 0)
		return (ev_deny(ev, 403, "volume_driver", "HostConfig."
		    "VolumeDriver \"%s\" is not allowed (only local)", drv));
	for (i = 0, e = jn_kids(jn_get(hc, "Binds"), JN_ARR); e != NULL;
	    e = e->next, i++) {
		snprintf(where, sizeof(where), "HostConfig.Binds[%zu]", i);
		if (mounts_bind_spec(ev, e->u.s, where) != EV_OK)
			return (EV_DONE);
	}
	for (i = 0, e = jn_kids(jn_get(hc, "Mounts"), JN_ARR); e != NULL;
	    e = e->next, i++) {
		snprintf(where, sizeof(where), "HostConfig.Mounts[%zu]", i);
		if (mounts_mount(ev, e, where) != EV_OK)
			return (EV_DONE);
	}
	for (i = 0, e = jn_kids(jn_get(hc, "VolumesFrom"), JN_ARR); e != NULL;
	    e = e->next, i++) {
		snprintf(where, sizeof(where), "HostConfig.VolumesFrom[%zu]",
		    i);
		if (mounts_volumes_from(ev, e->u.s, where) != EV_OK)
			return (EV_DONE);
	}
	return (EV_OK);
}
