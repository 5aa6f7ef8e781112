/*
 * The streamed build context: find the Dockerfile the engine will read and
 * where the archive ends. Pure (no I/O); see buildscan.c.
 */
#ifndef DOCKGATE_BUILDSCAN_H
#define DOCKGATE_BUILDSCAN_H

#include <stddef.h>
#include <stdint.h>

enum bs_capture {
	BS_SKIP = 0,
	BS_EXT_PAX,		/* 'x': records for the next member */
	BS_EXT_GLOBAL,		/* 'g': global records */
	BS_EXT_LONGNAME,	/* 'L': GNU long name of the next member */
	BS_DOCKERFILE,		/* the wanted Dockerfile */
	BS_DOCKERFILE_LOWER,	/* "dockerfile", the engine's fallback */
};

struct bs_text {
	char	*buf;
	size_t	 len;
	size_t	 cap;
	int	 seen;
};

struct buildscan {
	char		 want[1024];	/* cleaned Dockerfile path */
	int		 want_lower;	/* "dockerfile" may stand in */
	size_t		 max;		/* Dockerfile size bound */
	unsigned char	 hdr[512];	/* header being assembled */
	size_t		 hdr_len;
	uint64_t	 left;		/* member bytes still to come */
	size_t		 pad;		/* padding to the next block */
	enum bs_capture	 capture;
	struct bs_text	 ext;		/* extended header content */
	char		*pax_path;
	char		*long_name;
	uint64_t	 pax_size;
	int		 has_pax_size;
	struct bs_text	 df[2];		/* Dockerfile, dockerfile */
	uint64_t	 pos;		/* bytes scanned */
	uint64_t	 released;	/* bytes let through */
	uint64_t	 end_at;	/* where the archive's end begins */
	unsigned	 members;
	int		 ended;		/* a zero block: the archive's end */
	const char	*error;		/* why the context is refused */
};

/* buildscan.c */
int		 buildscan_init(struct buildscan *, const char *, size_t);
void		 buildscan_free(struct buildscan *);
int		 buildscan_feed(struct buildscan *, const unsigned char *,
		    size_t, size_t *);
const char	*buildscan_dockerfile(struct buildscan *, size_t *);

#endif /* DOCKGATE_BUILDSCAN_H */
