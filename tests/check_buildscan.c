/*
 * The streamed build-context scan: the Dockerfile found must be the one
 * Go's archive/tar and the engine would use, whatever the archive's tricks,
 * and nothing from the archive's end on may be let through early.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildscan.h"

struct tarbuf {
	unsigned char	 b[65536];
	size_t		 len;
};

/* Append one member (header + data + padding) in ustar or GNU form. */
static void
tar_add(struct tarbuf *t, const char *name, char type, const char *data,
    const char *prefix, int gnu)
{
	unsigned char	*h = t->b + t->len;
	size_t		 dl = data ? strlen(data) : 0, i;
	unsigned	 sum = 0;

	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011o", (unsigned)(dl & 07777777));
	snprintf((char *)h + 136, 12, "%011o", 0);
	h[156] = (unsigned char)type;
	if (type == '2' || type == '1')
		snprintf((char *)h + 157, 100, "%s", data ? data : "x");
	if (gnu)
		memcpy(h + 257, "ustar  \0", 8);
	else
		memcpy(h + 257, "ustar\0" "00", 8);
	if (prefix != NULL)
		snprintf((char *)h + 345, 155, "%s", prefix);
	memset(h + 148, ' ', 8);
	for (i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	t->len += 512;
	if (type == '2' || type == '1')
		return;
	memcpy(t->b + t->len, data, dl);
	t->len += (dl + 511) / 512 * 512;
}

/* The two zero blocks that end an archive. */
static size_t
tar_end(struct tarbuf *t)
{
	size_t	 at = t->len;

	memset(t->b + t->len, 0, 1024);
	t->len += 1024;
	return at;
}

/* A PAX 'x' member carrying one record. */
static void
tar_pax(struct tarbuf *t, const char *key, const char *val, char type)
{
	char	 rec[512];
	int	 n = (int)(strlen(key) + strlen(val) + 3), d;

	/* The length prefix counts itself. */
	d = snprintf(NULL, 0, "%d", n);
	d = snprintf(NULL, 0, "%d", n + d);
	snprintf(rec, sizeof(rec), "%d %s=%s\n", n + d, key, val);
	tar_add(t, "PaxHeaders/x", type, rec, NULL, 0);
}

/* Scan t fed in pieces of step bytes; return the Dockerfile or NULL. */
static const char *
scan(struct buildscan *bs, const char *want, struct tarbuf *t, size_t step,
    size_t *let_through)
{
	size_t	 off = 0, fwd, k, len;

	ck_assert_int_eq(buildscan_init(bs, want, 65536), 0);
	*let_through = 0;
	while (off < t->len) {
		k = t->len - off < step ? t->len - off : step;
		if (buildscan_feed(bs, t->b + off, k, &fwd) == -1)
			return NULL;
		*let_through += fwd;
		/* Never more than what has arrived. */
		ck_assert_uint_le(*let_through, off + k);
		off += k;
	}
	return buildscan_dockerfile(bs, &len);
}

static const size_t steps[] = { 1, 7, 511, 512, 513, 4096, 65536 };

START_TEST(test_plain_and_end_withheld)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	const char		*df;
	size_t			 end, through;

	tar_add(&t, "x", '0', "hello", NULL, 0);
	tar_add(&t, "./Dockerfile", '0', "FROM tiny\n", NULL, 0);
	end = tar_end(&t);
	df = scan(&bs, "Dockerfile", &t, steps[_i], &through);
	ck_assert_ptr_nonnull(df);
	ck_assert_str_eq(df, "FROM tiny\n");
	ck_assert_uint_eq(through, end);
	buildscan_free(&bs);
}
END_TEST

START_TEST(test_last_member_wins)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	size_t			 through;

	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_add(&t, "a/../Dockerfile", '0', "FROM evil\n", NULL, 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, steps[_i], &through),
	    "FROM evil\n");
	buildscan_free(&bs);
}
END_TEST

START_TEST(test_lowercase_fallback)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	size_t			 through;

	tar_add(&t, "dockerfile", '0', "FROM evil\n", NULL, 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 512, &through),
	    "FROM evil\n");
	buildscan_free(&bs);
	/* Both present: the engine reads Dockerfile. */
	t.len = 0;
	tar_add(&t, "dockerfile", '0', "FROM evil\n", NULL, 0);
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 512, &through),
	    "FROM tiny\n");
	buildscan_free(&bs);
	/* No fallback for a named file. */
	t.len = 0;
	tar_add(&t, "other.df", '0', "FROM evil\n", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Other.df", &t, 512, &through));
	buildscan_free(&bs);
}
END_TEST

START_TEST(test_name_forms)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	size_t			 through;
	char			 longname[300];

	/* ustar prefix + name. */
	tar_add(&t, "Dockerfile", '0', "FROM a\n", "sub/dir", 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "sub/dir/Dockerfile", &t, 100, &through),
	    "FROM a\n");
	buildscan_free(&bs);
	/* GNU form has no prefix field. */
	t.len = 0;
	tar_add(&t, "Dockerfile", '0', "FROM b\n", NULL, 1);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 100, &through),
	    "FROM b\n");
	buildscan_free(&bs);
	/* PAX path renames the next member to the Dockerfile. */
	t.len = 0;
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_pax(&t, "path", "Dockerfile", 'x');
	tar_add(&t, "innocent.txt", '0', "FROM evil\n", NULL, 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 33, &through),
	    "FROM evil\n");
	buildscan_free(&bs);
	/* GNU long name. */
	memset(longname, 'd', sizeof(longname));
	memcpy(longname + 150, "/Dockerfile", 12);
	t.len = 0;
	tar_add(&t, "././@LongLink", 'L', longname, NULL, 1);
	tar_add(&t, "short", '0', "FROM long\n", NULL, 1);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, longname, &t, 512, &through),
	    "FROM long\n");
	buildscan_free(&bs);
	/* PAX size overrides the header size. */
	t.len = 0;
	tar_pax(&t, "size", "10", 'x');
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_end(&t);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 512, &through),
	    "FROM tiny\n");
	buildscan_free(&bs);
}
END_TEST

START_TEST(test_refused)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	size_t			 through, fwd;
	static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0, 0, 0 };

	/* A symlinked Dockerfile. */
	tar_add(&t, "evil", '0', "FROM evil\n", NULL, 0);
	tar_add(&t, "Dockerfile", '2', "evil", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	ck_assert_ptr_nonnull(bs.error);
	buildscan_free(&bs);
	/* A hard link. */
	t.len = 0;
	tar_add(&t, "Dockerfile", '1', "evil", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* A link on a directory above it. */
	t.len = 0;
	tar_add(&t, "sub", '2', "elsewhere", NULL, 0);
	tar_add(&t, "sub/Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "sub/Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* Missing. */
	t.len = 0;
	tar_add(&t, "x", '0', "x", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* Bad checksum. */
	t.len = 0;
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	t.b[0] = 'd';
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* Compressed. */
	ck_assert_int_eq(buildscan_init(&bs, "Dockerfile", 4096), 0);
	ck_assert_int_eq(buildscan_feed(&bs, gz, sizeof(gz), &fwd), -1);
	ck_assert_uint_eq(fwd, 0);
	buildscan_free(&bs);
	/* Ends inside a member. */
	t.len = 0;
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	t.len -= 100;
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* Global PAX path. */
	t.len = 0;
	tar_pax(&t, "path", "Dockerfile", 'g');
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	tar_end(&t);
	ck_assert_ptr_null(scan(&bs, "Dockerfile", &t, 512, &through));
	buildscan_free(&bs);
	/* Too large to inspect. */
	ck_assert_int_eq(buildscan_init(&bs, "Dockerfile", 4), 0);
	t.len = 0;
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	ck_assert_int_eq(buildscan_feed(&bs, t.b, t.len, &fwd), -1);
	buildscan_free(&bs);
	/* A dockerfile= value that is no path inside the context. */
	ck_assert_int_eq(buildscan_init(&bs, "/", 4096), -1);
	ck_assert_int_eq(buildscan_init(&bs, "..", 4096), -1);
}
END_TEST

START_TEST(test_no_end_marker)
{
	struct tarbuf		 t = { .len = 0 };
	struct buildscan	 bs;
	size_t			 through;

	/* Go's reader takes a clean EOF at a header boundary as the end. */
	tar_add(&t, "Dockerfile", '0', "FROM tiny\n", NULL, 0);
	ck_assert_str_eq(scan(&bs, "Dockerfile", &t, 512, &through),
	    "FROM tiny\n");
	ck_assert_uint_eq(through, t.len);
	buildscan_free(&bs);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("buildscan");
	TCase	*tc = tcase_create("tar");
	SRunner	*sr;
	int	 nf;
	int	 n = (int)(sizeof(steps) / sizeof(steps[0]));

	tcase_add_loop_test(tc, test_plain_and_end_withheld, 0, n);
	tcase_add_loop_test(tc, test_last_member_wins, 0, n);
	tcase_add_test(tc, test_lowercase_fallback);
	tcase_add_test(tc, test_name_forms);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_no_end_marker);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
