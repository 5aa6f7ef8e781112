/*
 * The build context as it streams: a tar reader that follows the archive
 * the way Go's archive/tar does (ustar prefix, PAX path and size records,
 * GNU long names, base-256 sizes, checksums), keeps the Dockerfile the
 * engine will read, and tells the daemon where the archive ends so that the
 * end is withheld until the Dockerfile has been decided. No I/O here.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildscan.h"

#define BS_BLOCK	512

static int	 bs_clean(const char *, char *, size_t);
static int	 bs_octal(const unsigned char *, size_t, uint64_t *);
static int	 bs_header(struct buildscan *);
static int	 bs_pax(struct buildscan *);
static int	 bs_member_done(struct buildscan *);
static int	 bs_fail(struct buildscan *, const char *);
static int	 bs_grow(struct bs_text *, const unsigned char *, size_t,
		    size_t);

/* Clean a tar member name as the engine does (path.Clean, no leading /). */
static int
bs_clean(const char *in, char *out, size_t len)
{
	char		 tmp[4096];
	const char	*p = in, *seg;
	size_t		 o = 0, n;

	while (*p == '/')
		p++;
	while (*p != '\0') {
		seg = p;
		n = strcspn(p, "/");
		p += n;
		while (*p == '/')
			p++;
		if (n == 0 || (n == 1 && seg[0] == '.'))
			continue;
		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			/* Up one; above the root stays at the root. */
			while (o > 0 && tmp[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		if (o + n + 2 > sizeof(tmp))
			return -1;
		if (o > 0)
			tmp[o++] = '/';
		memcpy(tmp + o, seg, n);
		o += n;
	}
	if (o + 1 > len)
		return -1;
	memcpy(out, tmp, o);
	out[o] = '\0';
	return 0;
}

/* Start a scan for the Dockerfile named by the build's dockerfile= value. */
int
buildscan_init(struct buildscan *bs, const char *dockerfile, size_t max)
{
	memset(bs, 0, sizeof(*bs));
	bs->max = max;
	if (bs_clean(dockerfile, bs->want, sizeof(bs->want)) == -1 ||
	    bs->want[0] == '\0')
		return -1;
	/* The engine falls back to "dockerfile" for the default name. */
	bs->want_lower = strcmp(bs->want, "Dockerfile") == 0;
	return 0;
}

/* Free what the scan holds. */
void
buildscan_free(struct buildscan *bs)
{
	free(bs->ext.buf);
	free(bs->pax_path);
	free(bs->long_name);
	free(bs->df[0].buf);
	free(bs->df[1].buf);
	memset(bs, 0, sizeof(*bs));
}

/* Record why the context is refused; stop scanning. */
static int
bs_fail(struct buildscan *bs, const char *why)
{
	if (bs->error == NULL)
		bs->error = why;
	return -1;
}

/* Append to a bounded text buffer. */
static int
bs_grow(struct bs_text *t, const unsigned char *p, size_t n, size_t max)
{
	char	*b;

	if (t->len + n > max)
		return -1;
	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;

		if (cap > max + 1)
			cap = max + 1;
		if ((b = realloc(t->buf, cap)) == NULL)
			return -1;
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return 0;
}

/* A numeric header field: octal text, or GNU base-256 binary. */
static int
bs_octal(const unsigned char *f, size_t len, uint64_t *out)
{
	uint64_t	 v = 0;
	size_t		 i = 0;

	if (f[0] & 0x80) {
		if (f[0] != 0x80)
			return -1;	/* negative or too large */
		for (i = 1; i < len; i++) {
			if (v >> 56)
				return -1;
			v = v << 8 | f[i];
		}
		*out = v;
		return 0;
	}
	while (i < len && (f[i] == ' ' || f[i] == '\0'))
		i++;
	for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return -1;
	*out = v;
	return 0;
}

/* Apply the records of a PAX extended header to the next member. */
static int
bs_pax(struct buildscan *bs)
{
	const char	*p = bs->ext.buf, *end = p + bs->ext.len, *eq, *sp;
	char		*rec_end;
	unsigned long	 n;
	uint64_t	 size;

	while (p < end) {
		n = strtoul(p, &rec_end, 10);
		if (rec_end == p || *rec_end != ' ' || n == 0 ||
		    n > (size_t)(end - p) || p[n - 1] != '\n')
			return bs_fail(bs, "malformed PAX header");
		sp = rec_end + 1;
		eq = memchr(sp, '=', (size_t)(p + n - 1 - sp));
		if (eq == NULL)
			return bs_fail(bs, "malformed PAX record");
		if ((size_t)(eq - sp) == 4 && memcmp(sp, "path", 4) == 0) {
			free(bs->pax_path);
			bs->pax_path = strndup(eq + 1,
			    (size_t)(p + n - 1 - eq - 1));
			if (bs->pax_path == NULL)
				return bs_fail(bs, "out of memory");
		} else if ((size_t)(eq - sp) == 4 && memcmp(sp, "size", 4) == 0) {
			char num[32];
			size_t l = (size_t)(p + n - 1 - eq - 1);

			if (l == 0 || l >= sizeof(num))
				return bs_fail(bs, "bad PAX size");
			memcpy(num, eq + 1, l);
			num[l] = '\0';
			if (strspn(num, "0123456789") != l)
				return bs_fail(bs, "bad PAX size");
			size = strtoull(num, NULL, 10);
			bs->pax_size = size;
			bs->has_pax_size = 1;
		} else if ((size_t)(eq - sp) > 10 &&
		    memcmp(sp, "GNU.sparse", 10) == 0)
			return bs_fail(bs, "sparse files in the build context");
		p += n;
	}
	return 0;
}

/* A complete 512-byte header is in bs->hdr: set up the member. */
static int
bs_header(struct buildscan *bs)
{
	const unsigned char	*h = bs->hdr;
	char			 name[4096], clean[4096];
	uint64_t		 size, sum, want = 0;
	size_t			 i;
	int			 ustar, gnu;
	unsigned char		 type = h[156];

	for (i = 0; i < BS_BLOCK; i++)
		if (h[i] != 0)
			break;
	if (i == BS_BLOCK) {
		/* A zero block: the end of the archive for Go's reader. */
		bs->ended = 1;
		return 0;
	}
	for (i = 0; i < BS_BLOCK; i++)
		want += (i >= 148 && i < 156) ? ' ' : h[i];
	if (bs_octal(h + 148, 8, &sum) == -1 || sum != want)
		return bs_fail(bs, "bad tar header checksum");
	if (bs_octal(h + 124, 12, &size) == -1)
		return bs_fail(bs, "bad tar member size");
	if (bs->has_pax_size) {
		size = bs->pax_size;
		bs->has_pax_size = 0;
	}
	ustar = memcmp(h + 257, "ustar\0" "00", 8) == 0;
	gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
	if (ustar && h[345] != '\0')
		snprintf(name, sizeof(name), "%.155s/%.100s",
		    (const char *)h + 345, (const char *)h + 0);
	else
		snprintf(name, sizeof(name), "%.100s", (const char *)h);
	(void)gnu;
	bs->left = size;
	bs->pad = (size_t)((BS_BLOCK - size % BS_BLOCK) % BS_BLOCK);
	bs->capture = BS_SKIP;
	switch (type) {
	case 'x':
		bs->capture = BS_EXT_PAX;
		bs->ext.len = 0;
		return 0;
	case 'L':
		bs->capture = BS_EXT_LONGNAME;
		bs->ext.len = 0;
		return 0;
	case 'K':
		return 0;	/* a long link target: a link is refused below */
	case 'g':
		bs->capture = BS_EXT_GLOBAL;
		bs->ext.len = 0;
		return 0;
	case 'S':
		return bs_fail(bs, "sparse files in the build context");
	default:
		break;
	}
	if (bs->pax_path != NULL) {
		snprintf(name, sizeof(name), "%s", bs->pax_path);
		free(bs->pax_path);
		bs->pax_path = NULL;
	} else if (bs->long_name != NULL) {
		snprintf(name, sizeof(name), "%s", bs->long_name);
		free(bs->long_name);
		bs->long_name = NULL;
	}
	if (bs_clean(name, clean, sizeof(clean)) == -1)
		return bs_fail(bs, "tar member name too long");
	bs->members++;
	/* A link on the Dockerfile or on a directory above it could point the
	 * engine at another file than the one inspected. */
	if (type == '1' || type == '2') {
		size_t cl = strlen(clean);

		if (strcmp(clean, bs->want) == 0 ||
		    (bs->want_lower && strcmp(clean, "dockerfile") == 0) ||
		    (strncmp(bs->want, clean, cl) == 0 &&
		    bs->want[cl] == '/'))
			return bs_fail(bs, "the Dockerfile (or a directory "
			    "above it) is a link in the build context");
		return 0;
	}
	if (type != '0' && type != '\0' && type != '7')
		return 0;
	if (strcmp(clean, bs->want) == 0)
		bs->capture = BS_DOCKERFILE;
	else if (bs->want_lower && strcmp(clean, "dockerfile") == 0)
		bs->capture = BS_DOCKERFILE_LOWER;
	if (bs->capture != BS_SKIP) {
		/* A later member of the same name replaces the earlier one. */
		struct bs_text *t = &bs->df[bs->capture - BS_DOCKERFILE];

		t->len = 0;
		t->seen = 1;
		if (size > bs->max)
			return bs_fail(bs, "the Dockerfile is too large to "
			    "inspect");
	}
	return 0;
}

/*
 * Scan n more body bytes. *fwd gets how many bytes of the stream (counted
 * from what earlier calls released) may go to the engine now: everything
 * before a header block that is still incomplete, and nothing from the
 * archive's end on; the caller keeps the rest until the decision. Returns
 * -1 when the context is refused (bs->error says why).
 */
int
buildscan_feed(struct buildscan *bs, const unsigned char *p, size_t n,
    size_t *fwd)
{
	size_t		 i = 0, k;
	uint64_t	 base = bs->pos, limit;

	*fwd = 0;
	if (bs->error != NULL)
		return -1;
	if (base == 0 && n > 0) {
		/* Compressed contexts are not inspected: refuse them. */
		if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
			return bs_fail(bs, "a compressed build context "
			    "(send an uncompressed tar)");
		if ((n >= 3 && memcmp(p, "BZh", 3) == 0) ||
		    (n >= 6 && memcmp(p, "\xfd" "7zXZ\0", 6) == 0) ||
		    (n >= 4 && memcmp(p, "\x28\xb5\x2f\xfd", 4) == 0))
			return bs_fail(bs, "a compressed build context "
			    "(send an uncompressed tar)");
	}
	bs->pos += n;
	while (i < n && !bs->ended) {
		if (bs->left > 0) {
			k = n - i;
			if (k > bs->left)
				k = (size_t)bs->left;
			if (bs->capture >= BS_DOCKERFILE) {
				struct bs_text *t =
				    &bs->df[bs->capture - BS_DOCKERFILE];

				if (bs_grow(t, p + i, k, bs->max) == -1)
					return bs_fail(bs, "the Dockerfile is "
					    "too large to inspect");
			} else if (bs->capture >= BS_EXT_PAX &&
			    bs_grow(&bs->ext, p + i, k, 1024 * 1024) == -1)
				return bs_fail(bs, "tar extended header too "
				    "large");
			bs->left -= k;
			i += k;
			if (bs->left == 0 && bs_member_done(bs) == -1)
				return -1;
			continue;
		}
		if (bs->pad > 0) {
			k = n - i;
			if (k > bs->pad)
				k = bs->pad;
			bs->pad -= k;
			i += k;
			continue;
		}
		k = BS_BLOCK - bs->hdr_len;
		if (k > n - i)
			k = n - i;
		memcpy(bs->hdr + bs->hdr_len, p + i, k);
		bs->hdr_len += k;
		i += k;
		if (bs->hdr_len < BS_BLOCK)
			break;
		bs->hdr_len = 0;
		if (bs_header(bs) == -1)
			return -1;
		if (bs->ended)
			bs->end_at = base + i - BS_BLOCK;
		else if (bs->left == 0 && bs_member_done(bs) == -1)
			return -1;
	}
	limit = bs->ended ? bs->end_at : bs->pos - bs->hdr_len;
	if (limit > bs->released) {
		*fwd = (size_t)(limit - bs->released);
		bs->released = limit;
	}
	return 0;
}

/* A member's data is complete: apply what an extended header said. */
static int
bs_member_done(struct buildscan *bs)
{
	char	*save;

	if (bs->capture == BS_EXT_PAX)
		return bs_pax(bs);
	if (bs->capture == BS_EXT_GLOBAL) {
		save = bs->pax_path;
		bs->pax_path = NULL;
		if (bs_pax(bs) == -1) {
			free(save);
			return -1;
		}
		if (bs->pax_path != NULL) {
			free(save);
			return bs_fail(bs, "a global PAX path in the build "
			    "context");
		}
		bs->pax_path = save;
		bs->has_pax_size = 0;	/* a global size is not applied */
		return 0;
	}
	if (bs->capture == BS_EXT_LONGNAME) {
		free(bs->long_name);
		bs->long_name = strndup(bs->ext.buf ? bs->ext.buf : "",
		    bs->ext.len);
		if (bs->long_name == NULL)
			return bs_fail(bs, "out of memory");
	}
	return 0;
}

/*
 * The body ended: the Dockerfile the engine will read, or NULL with
 * bs->error set.
 */
const char *
buildscan_dockerfile(struct buildscan *bs, size_t *len)
{
	struct bs_text	*t;

	if (bs->error != NULL)
		return NULL;
	if (!bs->ended && (bs->left > 0 || bs->pad > 0 || bs->hdr_len > 0)) {
		bs_fail(bs, "the build context ends inside a tar member");
		return NULL;
	}
	t = bs->df[0].seen ? &bs->df[0] : bs->want_lower && bs->df[1].seen ?
	    &bs->df[1] : NULL;
	if (t == NULL) {
		bs_fail(bs, "no Dockerfile in the build context");
		return NULL;
	}
	*len = t->len;
	return t->buf != NULL ? t->buf : "";
}
