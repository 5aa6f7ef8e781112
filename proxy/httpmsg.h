/*
 * HTTP message helpers that need no I/O: header collection, framing rules,
 * refusal bodies. Shared by the daemon and its unit tests.
 */
#ifndef DOCKGATE_HTTPMSG_H
#define DOCKGATE_HTTPMSG_H

#include <stddef.h>

#define HTTPMSG_MAX_HEADERS	128

struct httpmsg_hdr {
	char	*name;
	char	*value;
};

/* The headers of one message, as the parser delivered them. */
struct httpmsg {
	struct httpmsg_hdr	*hdr;		/* grown on demand */
	size_t			 nhdr;
	size_t			 cap;
	int			 in_value;	/* last callback was a value */
	int			 overflow;	/* too many headers */
	char			*buf;		/* every name and value, each
						   NUL-terminated, in order */
	size_t			 len;
	size_t			 size;
};

/* What the framing headers of a request say, after validation. */
struct httpmsg_framing {
	int	 chunked;		/* Transfer-Encoding: chunked */
	int	 has_length;		/* Content-Length present */
	unsigned long long length;
	int	 upgrade;		/* Connection: upgrade + Upgrade given */
	char	 upgrade_proto[32];	/* the Upgrade token, lower-cased */
	int	 conn_close;		/* Connection: close */
	int	 expect_continue;	/* Expect: 100-continue */
	const char *host;		/* borrowed Host value or NULL */
	const char *content_type;	/* borrowed Content-Type or NULL */
	const char *connection;		/* borrowed Connection or NULL */
};

/*
 * The framing of a chunked body (size lines, extensions, line ends,
 * trailers: all but chunk data), read strictly, since a non-strict
 * http-parser is lenient there (a bare CR or any two bytes end chunk
 * data; a byte of 0x80 or above passes as a size digit). Sizes are read
 * here too, so a chunk's data must be exactly where and as long as this
 * reading says. Fed over one buffer at a time: httpmsg_chunks_begin()
 * before http_parser_execute(), _data() from on_body, _end() after it.
 */
struct httpmsg_chunks {
	const char		*from;		/* framing not scanned; NULL: off */
	int			 state;		/* where in the framing */
	int			 last;		/* the size line read is 0 */
	unsigned long long	 left;		/* data left in this chunk */
};

/* httpmsg.c */
int		 httpmsg_add_field(struct httpmsg *, const char *, size_t);
int		 httpmsg_add_value(struct httpmsg *, const char *, size_t);
void		 httpmsg_clear(struct httpmsg *);
const char	*httpmsg_get(const struct httpmsg *, const char *, int *);
int		 httpmsg_framing(const struct httpmsg *, struct httpmsg_framing *,
		    const char **);
int		 httpmsg_is_hop(const char *);
int		 httpmsg_head_scan(char *, const char *, size_t,
		    const char **);
char		*httpmsg_refusal(int, const char *, const char *, int, int,
		    size_t *);
const char	*httpmsg_status_text(int);
int		 httpmsg_token_list_has(const char *, const char *);
void		 httpmsg_chunks_reset(struct httpmsg_chunks *);
void		 httpmsg_chunks_begin(struct httpmsg_chunks *, const char *);
int		 httpmsg_chunks_data(struct httpmsg_chunks *, const char *,
		    size_t);
int		 httpmsg_chunks_end(struct httpmsg_chunks *, const char *);

#endif /* DOCKGATE_HTTPMSG_H */
