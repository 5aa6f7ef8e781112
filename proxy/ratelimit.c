/*
 * Per-identity rate and concurrency limits (profile key "rate"): a token
 * bucket of requests_per_second refilling up to burst, and a count of
 * requests in flight (streams and hijacked sessions included while open).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define RL_MAX_ENTRIES	4096

struct rl_entry {
	char		 key[640];	/* profile + identity */
	double		 tokens;
	struct timeval	 last;
	unsigned	 active;	/* requests in flight */
	int		 used;
};

static struct rl_entry	*table;

/* The entry for key: found, or a free or idle one taken over. */
static struct rl_entry *
rl_entry(const char *key, double burst)
{
	struct rl_entry	*e, *victim = NULL;
	size_t		 i;

	if (table == NULL &&
	    (table = calloc(RL_MAX_ENTRIES, sizeof(*table))) == NULL)
		return NULL;
	for (i = 0; i < RL_MAX_ENTRIES; i++) {
		e = &table[i];
		if (e->used && strcmp(e->key, key) == 0)
			return e;
		if (!e->used && victim == NULL)
			victim = e;
	}
	if (victim == NULL) {
		/* Full: reuse the idle entry whose bucket is fullest. */
		for (i = 0; i < RL_MAX_ENTRIES; i++) {
			e = &table[i];
			if (e->active == 0 && (victim == NULL ||
			    e->tokens > victim->tokens))
				victim = e;
		}
		if (victim == NULL)
			return NULL;
	}
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->tokens = burst;
	event_base_gettimeofday_cached(proxy->base, &victim->last);
	victim->used = 1;
	return victim;
}

/*
 * May this request start? 0: yes (and it counts as in flight until
 * ratelimit_end()); else the seconds the client should wait.
 */
int
ratelimit_begin(struct conn *c, const struct policy_profile *pp)
{
	struct policy_rate	 r;
	struct rl_entry		*e;
	struct timeval		 now;
	char			 key[640];
	double			 burst, dt;

	if (c->rl != NULL)
		return 0;	/* counted already (a lookup round) */
	memset(&r, 0, sizeof(r));
	if (policy_profile_rate(pp, &r) == -1 ||
	    (r.requests_per_second <= 0 && r.concurrent <= 0))
		return 0;
	snprintf(key, sizeof(key), "%.63s/%.512s", policy_profile_name(pp),
	    c->rq->owner[0] ? c->rq->owner : c->listener->addr.spec);
	burst = r.burst > 0 ? (double)r.burst :
	    (r.requests_per_second >= 1 ? r.requests_per_second : 1);
	if ((e = rl_entry(key, burst)) == NULL)
		return 1;	/* no room to account: refuse, briefly */
	if (r.requests_per_second > 0) {
		event_base_gettimeofday_cached(proxy->base, &now);
		dt = (double)(now.tv_sec - e->last.tv_sec) +
		    (double)(now.tv_usec - e->last.tv_usec) / 1e6;
		e->last = now;
		if (dt > 0)
			e->tokens += dt * r.requests_per_second;
		if (e->tokens > burst)
			e->tokens = burst;
		if (e->tokens < 1)
			return (int)ceil((1 - e->tokens) /
			    r.requests_per_second);
	}
	if (r.concurrent > 0 && e->active >= (unsigned)r.concurrent)
		return 1;
	if (r.requests_per_second > 0)
		e->tokens -= 1;
	e->active++;
	c->rl = e;
	return 0;
}

/* The request (or stream, or tunnel) is over. */
void
ratelimit_end(struct conn *c)
{
	struct rl_entry	*e = c->rl;

	if (e == NULL)
		return;
	if (e->active > 0)
		e->active--;
	c->rl = NULL;
}

/* Free the table at exit. */
void
ratelimit_free(void)
{
	free(table);
	table = NULL;
}
